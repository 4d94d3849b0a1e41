//! The node loop: the one owner of a replica's protocol state. It takes link events, client
//! requests and timer ticks from one channel, in groups; logs every protocol input to the
//! write-ahead log; runs the secure causal atomic broadcast; syncs the log and the round store
//! once per group; and only then sends the group's messages and acknowledgements, answers
//! submitters and hands delivered rounds to the application (write-ahead: nothing leaves before
//! the inputs that caused it are on disk).
//!
//! Messages a replica sends itself are handled at once, right after the input that caused
//! them, so they are a function of the logged inputs and need no log records of their own.
//!
//! When the log or the round store cannot be written for a reason that can pass (a full disk,
//! a quota, storage made read-only), the node pauses instead of stopping: see
//! [`Node::until_written`]. A failed fsync still stops it (see `commit`).

use super::control::{Control, StoredRound};
use super::link::{Accept, Frame, Inbox, LinkConfig, LinkEvent, Links, Outbox};
use super::metrics::Metrics;
use super::pause::{Effect, StoragePause};
use super::rounds::RoundStore;
use super::snapshot::{self, NodeSnapshot, SnapshotFileError};
use super::status::{PeerStatus, Status};
use super::wal::Wal;
use super::{AppMessage, OrderedRound, RuntimeError, SubmitError};
use crate::atomic::batch::MAX_REQUEST_BYTES;
use crate::atomic::broadcast::AbcConfig;
use crate::atomic::secure::{
    OpenedRound, Request, RoundRecord, ScabcInput, ScabcMessage, SecureAtomicBroadcast, message_round,
};
use crate::crypto::{NetworkInfo, digest};
use crate::{InstanceId, PartyId, Protocol, Step, Target, wire};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// One input of the state machine, as logged.
#[derive(Serialize, Deserialize)]
pub(super) enum Event {
    /// A protocol message from a peer, with its link sequence number.
    Message {
        from: PartyId,
        seq: u64,
        #[serde(with = "crate::wire::bytes")]
        payload: Vec<u8>,
    },
    /// A request this replica accepted from a client.
    Submit(#[serde(with = "crate::wire::bytes")] Vec<u8>),
    /// The replica's clock (ms since the Unix epoch), read before a group of inputs.
    Clock(u64),
    /// A delivered round fetched from a peer (verified by the protocol before it is applied).
    Record { from: PartyId, record: RoundRecord },
    /// A peer will never resend its messages up to `up_to` (it reclaimed them: those rounds
    /// are fetched as records instead).
    Skip { from: PartyId, up_to: u64 },
    /// The application is behind (true) or caught up (false): see `AbcInput::Hold`. Logged,
    /// because it decides when this replica's batches are signed.
    Hold(bool),
}

/// Where a submission's answer goes: the request's digest once it is durable, or why not.
pub(super) type SubmitReply = oneshot::Sender<Result<[u8; 32], SubmitError>>;

pub(super) enum NodeInput {
    Link(LinkEvent),
    Submit {
        request: Request,
        reply: SubmitReply,
    },
    /// A best-effort application message to one peer or (None) to all.
    App {
        to: Option<PartyId>,
        payload: Vec<u8>,
    },
    /// See [`Event::Hold`].
    Hold(bool),
    /// Whether a request reached this replica (`SecureAtomicBroadcast::knows`).
    Knows {
        digest: [u8; 32],
        reply: oneshot::Sender<bool>,
    },
    Tick,
    Shutdown,
}

#[derive(Debug, Clone)]
pub struct NodeLimits {
    /// Own requests accepted but not yet delivered, beyond which submissions are refused.
    pub max_own_queued: usize,
    /// Inputs between snapshots (each snapshot lets the log before it be deleted).
    pub snapshot_every: u64,
    /// Rounds fetched per catch-up request.
    pub fetch_rounds: u32,
    /// How long a replica that is behind waits for normal progress before fetching rounds.
    pub fetch_after: Duration,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_own_queued: 20_000,
            snapshot_every: 20_000,
            fetch_rounds: 16,
            fetch_after: Duration::from_millis(500),
        }
    }
}

/// Rounds behind the current one whose messages are still kept for a peer (older ones are
/// answered with the round's record instead).
const KEEP_ROUNDS: u64 = 8;
/// Inputs handled between two syncs at most.
const GROUP: usize = 512;
/// Log bytes after which a snapshot is taken whatever the number of inputs (a peer's large
/// messages must not grow the log, or the replay after a restart, without bound).
const SNAPSHOT_LOG_BYTES: u64 = 256 * 1024 * 1024;
/// How often a replica tells its peers which round it is on.
const STATUS_EVERY: Duration = Duration::from_millis(300);

pub(super) struct Node {
    info: Arc<NetworkInfo>,
    protocol: SecureAtomicBroadcast,
    wal: Wal,
    rounds: RoundStore,
    dir: PathBuf,
    outboxes: Vec<Outbox>,
    inboxes: Vec<Inbox>,
    rng_seed: [u8; 32],
    limits: NodeLimits,
    // Volatile: not part of the deterministic state.
    links: Option<Links>,
    connected: Vec<bool>,
    sent_up_to: Vec<u64>,
    acked_up_to: Vec<u64>,
    peer_rounds: Vec<u64>,
    events_since_snapshot: u64,
    replies: Vec<(SubmitReply, [u8; 32])>,
    new_rounds: Vec<OrderedRound>,
    deliver_to: mpsc::Sender<OrderedRound>,
    app_to: mpsc::Sender<AppMessage>,
    /// The first round the application has not been handed yet.
    next_emit: u64,
    last_clock: u64,
    last_status: Instant,
    last_progress: (u64, Instant),
    /// The peer asked for rounds, the end of the range asked for, and when.
    fetch_pending: Option<(PartyId, u64, Instant)>,
    /// Which of the peers ahead of us the next fetch asks (see `tick`).
    fetch_turn: usize,
    /// A delivered round could not be queued for the round store (it does not encode, or is out
    /// of order): the node stops at the next commit.
    storage_error: Option<RuntimeError>,
    /// Set while the log or the round store cannot be written and the node waits to retry.
    pause: StoragePause,
    /// Set while snapshots fail, and when to try the next one.
    snapshot_pause: StoragePause,
    snapshot_retry_at: Option<Instant>,
    /// The runtime is shutting down: a pause ends (the node takes no input while paused).
    stop: Arc<AtomicBool>,
    submitted_at: HashMap<[u8; 32], Instant>,
    #[cfg(feature = "byzantine")]
    tamperer: Option<super::byzantine::Tamperer>,
    faults: Vec<HashMap<String, u64>>,
    metrics: Arc<Metrics>,
    status: watch::Sender<Status>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(feature = "byzantine")]
fn seed_of(rng_seed: &[u8; 32]) -> u64 {
    u64::from_le_bytes(rng_seed[..8].try_into().unwrap_or_default())
}

pub(super) struct NodeParts {
    pub info: Arc<NetworkInfo>,
    pub instance: InstanceId,
    pub abc: AbcConfig,
    pub dir: PathBuf,
    pub rng_seed: [u8; 32],
    pub limits: NodeLimits,
    pub deliver_to: mpsc::Sender<OrderedRound>,
    pub app_to: mpsc::Sender<AppMessage>,
    pub resume_from: u64,
    #[cfg(feature = "byzantine")]
    pub misbehaviour: super::byzantine::Misbehaviour,
    pub metrics: Arc<Metrics>,
    pub status: watch::Sender<Status>,
    pub stop: Arc<AtomicBool>,
}

/// Sleeps `wait` in short steps, so that a stop request ends it at once; false if one came.
fn sleep_unless_stopped(stop: &AtomicBool, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    false
}

impl Node {
    /// Restores the last snapshot and replays the log after it. Nothing is sent: the links are
    /// attached afterwards, and connecting peers get everything they have not acknowledged.
    pub fn recover(parts: NodeParts) -> Result<Node, RuntimeError> {
        let n = parts.info.n();
        let snapshot = snapshot::load(&parts.dir)?;
        let (protocol, outboxes, inboxes, from) = match snapshot {
            Some(s) => {
                let protocol =
                    SecureAtomicBroadcast::restore(parts.info.clone(), parts.instance, parts.abc, &s.protocol)
                        .map_err(|e| RuntimeError::Restore(e.to_string()))?;
                (protocol, s.outboxes, s.inboxes, s.next_event)
            }
            None => {
                let protocol = SecureAtomicBroadcast::new(parts.info.clone(), parts.instance, parts.abc);
                (protocol, (0..n).map(|_| Outbox::default()).collect(), (0..n).map(|_| Inbox::default()).collect(), 0)
            }
        };
        let (wal, replay) = Wal::open(&parts.dir.join("wal"), from)?;
        let rounds = RoundStore::open(&parts.dir.join("rounds.log"))?;
        let mut node = Node {
            info: parts.info,
            protocol,
            wal,
            rounds,
            dir: parts.dir,
            outboxes,
            inboxes,
            rng_seed: parts.rng_seed,
            limits: parts.limits,
            links: None,
            connected: vec![false; n],
            sent_up_to: vec![0; n],
            acked_up_to: vec![0; n],
            peer_rounds: vec![0; n],
            events_since_snapshot: 0,
            replies: Vec::new(),
            new_rounds: Vec::new(),
            deliver_to: parts.deliver_to,
            app_to: parts.app_to,
            next_emit: parts.resume_from,
            last_clock: 0,
            last_status: Instant::now(),
            last_progress: (0, Instant::now()),
            fetch_pending: None,
            fetch_turn: 0,
            storage_error: None,
            pause: StoragePause::new(Effect::Paused),
            snapshot_pause: StoragePause::new(Effect::SnapshotsSkipped),
            snapshot_retry_at: None,
            stop: parts.stop,
            submitted_at: HashMap::new(),
            #[cfg(feature = "byzantine")]
            tamperer: (!parts.misbehaviour.is_honest())
                .then(|| super::byzantine::Tamperer::new(parts.misbehaviour.clone(), seed_of(&parts.rng_seed))),
            faults: vec![HashMap::new(); n],
            metrics: parts.metrics,
            status: parts.status,
        };
        let replayed = replay.len();
        for (index, bytes) in replay {
            let event: Event = wire::decode(node.info.id, &bytes).map_err(|_| RuntimeError::LogRecord(index))?;
            node.apply(index, event);
        }
        node.events_since_snapshot = replayed as u64;
        node.acked_up_to = node.inboxes.iter().map(|i| i.received_up_to()).collect();
        node.rounds.sync()?;
        tracing::info!(replayed, round = node.protocol.atomic().round(), "recovered replica state");
        Ok(node)
    }

    /// Starts the links (in the caller's Tokio runtime), telling each peer in `Hello` what we
    /// hold durably from it.
    pub fn connect(&mut self, mut config: LinkConfig, events: mpsc::Sender<LinkEvent>) -> Result<(), RuntimeError> {
        for peer in &mut config.peers {
            peer.received_up_to = self.inboxes.get(peer.id).map_or(0, Inbox::received_up_to);
        }
        self.links = Some(Links::start(config, events)?);
        Ok(())
    }

    /// The loop: runs until shutdown or until every input sender is gone.
    pub fn run(self, inputs: mpsc::Receiver<NodeInput>) -> Result<(), RuntimeError> {
        match self.run_loop(inputs) {
            Err(RuntimeError::StoppedWhilePaused) => {
                // Nothing that was not durable has left this replica; a restart replays the log.
                tracing::warn!("stopped while paused on a storage fault");
                Ok(())
            }
            result => result,
        }
    }

    fn run_loop(mut self, mut inputs: mpsc::Receiver<NodeInput>) -> Result<(), RuntimeError> {
        self.emit_stored()?;
        self.publish_status();
        loop {
            let Some(first) = inputs.blocking_recv() else {
                return Ok(());
            };
            let mut group = vec![first];
            while group.len() < GROUP
                && let Ok(next) = inputs.try_recv()
            {
                group.push(next);
            }
            let mut shutdown = false;
            let mut clock_logged = false;
            for input in group {
                let needs_clock = matches!(input, NodeInput::Submit { .. } | NodeInput::Link(LinkEvent::Data { .. }));
                if needs_clock && !clock_logged {
                    clock_logged = true;
                    self.log_clock()?;
                }
                match input {
                    NodeInput::Shutdown => shutdown = true,
                    NodeInput::Tick => self.tick()?,
                    NodeInput::Hold(held) => {
                        if held != self.protocol.atomic().held() {
                            self.log(Event::Hold(held))?;
                        }
                    }
                    NodeInput::Submit { request, reply } => self.submit(request, reply)?,
                    NodeInput::Knows { digest, reply } => {
                        let _ = reply.send(self.protocol.knows(&digest));
                    }
                    NodeInput::Link(event) => self.link_event(event)?,
                    NodeInput::App { to, payload } => {
                        let message = Control::App(payload);
                        match to {
                            Some(peer) => self.send_control(peer, &message),
                            None => {
                                for peer in self.peers() {
                                    self.send_control(peer, &message);
                                }
                            }
                        }
                    }
                }
            }
            self.commit()?;
            if shutdown {
                return Ok(());
            }
        }
    }

    /// Every replica but this one.
    fn peers(&self) -> Vec<PartyId> {
        (0..self.info.n()).filter(|p| *p != self.info.id).collect()
    }

    fn log(&mut self, event: Event) -> Result<(), RuntimeError> {
        let bytes = wire::encode(&event).map_err(|e| RuntimeError::Encode(e.to_string()))?;
        let index = self.wal.append(&bytes)?;
        // Applied only once its record is in the log file, so the state never holds an input
        // the log lacks. It is not durable yet: what it causes leaves after the group's fsync.
        self.until_written(|node| Ok(node.wal.write()?))?;
        self.events_since_snapshot += 1;
        self.apply(index, event);
        Ok(())
    }

    /// Runs a storage write until it works. A failure that can pass (a full disk, a quota,
    /// storage made read-only) pauses the whole node: it takes no input (the links stop reading,
    /// so peers keep their messages queued and resend them), sends, acknowledges and delivers
    /// nothing, refuses submissions, and tries again with growing pauses, saying why in its
    /// status. Any other failure stops it. A failed write leaves the file ending at its last
    /// complete record and the data queued, so the retry writes exactly what failed.
    fn until_written(
        &mut self,
        mut write: impl FnMut(&mut Node) -> Result<(), RuntimeError>,
    ) -> Result<(), RuntimeError> {
        loop {
            match write(self) {
                Ok(()) => {
                    if self.pause.succeeded() {
                        self.publish_status();
                    }
                    return Ok(());
                }
                Err(error) if error.retryable() => {
                    let wait = self.pause.failed(&error);
                    self.publish_status();
                    if !sleep_unless_stopped(&self.stop, wait) {
                        return Err(RuntimeError::StoppedWhilePaused);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn log_clock(&mut self) -> Result<(), RuntimeError> {
        let now = now_ms();
        // A new reading only when it moved: idle replicas write nothing.
        if now > self.last_clock + 20 {
            self.last_clock = now;
            self.log(Event::Clock(now))?;
        }
        Ok(())
    }

    fn rng(&self, index: u64) -> ChaCha20Rng {
        let mut input = self.rng_seed.to_vec();
        input.extend_from_slice(&index.to_be_bytes());
        ChaCha20Rng::from_seed(digest(&input))
    }

    /// Applies one logged input (live or replayed: the same code, so the same result).
    fn apply(&mut self, index: u64, event: Event) {
        let mut rng = self.rng(index);
        let step = match event {
            Event::Message { from, seq, payload } => {
                if from >= self.inboxes.len() || self.inboxes[from].accept(seq) != Accept::New {
                    return;
                }
                match wire::decode::<ScabcMessage>(from, &payload) {
                    Ok(message) => self.protocol.handle_message(from, message, &mut rng),
                    Err(fault) => {
                        let mut step = Step::new();
                        step.fault(fault);
                        step
                    }
                }
            }
            Event::Submit(bytes) => match Request::decode(&bytes) {
                Some(request) => self.protocol.handle_input(ScabcInput::Submit(request), &mut rng),
                None => Step::new(),
            },
            Event::Clock(now) => {
                self.last_clock = self.last_clock.max(now);
                self.protocol.handle_input(ScabcInput::Clock(now), &mut rng)
            }
            Event::Record { from, record } => self.protocol.handle_round_record(from, record, &mut rng),
            Event::Hold(held) => self.protocol.handle_input(ScabcInput::Hold(held), &mut rng),
            Event::Skip { from, up_to } => {
                if let Some(inbox) = self.inboxes.get_mut(from) {
                    inbox.skip_to(up_to);
                }
                return;
            }
        };
        self.process(step, &mut rng);
    }

    /// Routes a step's messages (our own handled at once), outputs and faults.
    fn process(&mut self, step: Step<ScabcMessage, OpenedRound>, rng: &mut ChaCha20Rng) {
        let me = self.info.id;
        let mut queue = VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            let mut local = Vec::new();
            for targeted in step.messages {
                if !matches!(targeted.target, Target::Node(p) if p == me) {
                    // Dissemination messages carry no round: they stay queued until the peer has
                    // them (the outbox's byte cap bounds a long-absent peer's cost), because a
                    // replica that misses one for good stalls its sender's requests for ever.
                    let round = message_round(&targeted.message);
                    let peers: Vec<PartyId> = match targeted.target {
                        Target::All => (0..self.outboxes.len()).filter(|p| *p != me).collect(),
                        Target::Node(p) if p < self.outboxes.len() => vec![p],
                        Target::Node(_) => Vec::new(),
                    };
                    if !self.tampered(&peers, round, &targeted.message)
                        && let Ok(bytes) = wire::encode(&targeted.message)
                    {
                        let payload: Arc<[u8]> = bytes.into();
                        for peer in peers {
                            self.outboxes[peer].push(round, payload.clone());
                        }
                    }
                }
                if matches!(targeted.target, Target::All) || targeted.target == Target::Node(me) {
                    local.push(targeted.message);
                }
            }
            for fault in step.faults {
                self.record_fault(fault.party, &format!("{:?}", fault.kind));
            }
            for round in step.output {
                self.delivered(round);
            }
            // Our own messages, in the order they were made.
            for message in local {
                queue.push_back(self.protocol.handle_message(me, message, rng));
            }
        }
    }

    /// A Byzantine test replica queues its falsified versions of `message` instead (true).
    #[cfg(feature = "byzantine")]
    fn tampered(&mut self, peers: &[PartyId], round: Option<u64>, message: &ScabcMessage) -> bool {
        let Some(tamperer) = self.tamperer.as_mut() else {
            return false;
        };
        for &peer in peers {
            for payload in tamperer.outgoing(&self.info, peer, message) {
                self.outboxes[peer].push(round, payload);
            }
        }
        true
    }

    #[cfg(not(feature = "byzantine"))]
    fn tampered(&mut self, _: &[PartyId], _: Option<u64>, _: &ScabcMessage) -> bool {
        false
    }

    fn record_fault(&mut self, party: PartyId, kind: &str) {
        if let Some(counts) = self.faults.get_mut(party) {
            *counts.entry(kind.to_string()).or_default() += 1;
        }
        self.metrics.fault(party, kind);
        tracing::warn!(peer = party, kind, "fault observed");
    }

    fn delivered(&mut self, opened: OpenedRound) {
        let round = opened.round;
        let stored = StoredRound {
            round,
            time: opened.time,
            seed: opened.seed,
            requests: opened.requests.clone(),
            record: opened.record,
        };
        if round >= self.rounds.len() && self.storage_error.is_none() {
            let stored = wire::encode(&stored).map_err(|e| RuntimeError::Encode(e.to_string()));
            if let Err(e) = stored.and_then(|b| self.rounds.append(round, &b).map_err(RuntimeError::from)) {
                // Only queued here (written in `commit`), so this is not a storage fault but a
                // round that cannot be stored at all. Not handed on, never snapshotted past: the
                // node stops at the next commit and a restart delivers the round again from the log.
                self.storage_error = Some(e);
            }
        }
        for request in &opened.requests {
            if let Some(at) = self.submitted_at.remove(&request.digest) {
                self.metrics.latency(at.elapsed());
            }
        }
        self.metrics.round(opened.requests.len());
        self.new_rounds.push(OrderedRound { round, time: opened.time, seed: opened.seed, requests: opened.requests });
        let keep_from = self.protocol.atomic().round().saturating_sub(KEEP_ROUNDS);
        for outbox in &mut self.outboxes {
            outbox.reclaim_below(keep_from);
        }
    }

    fn submit(&mut self, request: Request, reply: SubmitReply) -> Result<(), RuntimeError> {
        let bytes = request.encode();
        if bytes.len() > MAX_REQUEST_BYTES {
            let _ = reply.send(Err(SubmitError::TooLarge { len: bytes.len(), max: MAX_REQUEST_BYTES }));
            return Ok(());
        }
        let queued = self.protocol.own_queued();
        if queued >= self.limits.max_own_queued {
            let _ = reply.send(Err(SubmitError::Busy { queued }));
            return Ok(());
        }
        let d = digest(&bytes);
        if self.submitted_at.len() < 4 * self.limits.max_own_queued {
            self.submitted_at.insert(d, Instant::now());
        }
        self.log(Event::Submit(bytes))?;
        // Answered after the sync: accepted means durable.
        self.replies.push((reply, d));
        Ok(())
    }

    fn link_event(&mut self, event: LinkEvent) -> Result<(), RuntimeError> {
        match event {
            LinkEvent::Data { from, seq, payload } => {
                if from >= self.inboxes.len() || from == self.info.id {
                    return Ok(());
                }
                self.metrics.received(from, payload.len());
                // Duplicates and gaps are dropped: right after a reconnect a frame can overtake
                // the resend that fills the gap before it.
                if self.inboxes[from].received_up_to().checked_add(1) == Some(seq) {
                    self.log(Event::Message { from, seq, payload: payload.to_vec() })?;
                }
            }
            LinkEvent::Skip { from, up_to } => {
                if from < self.inboxes.len() && up_to > self.inboxes[from].received_up_to() {
                    self.log(Event::Skip { from, up_to })?;
                }
            }
            LinkEvent::Ack { from, up_to } => {
                if let Some(outbox) = self.outboxes.get_mut(from) {
                    outbox.ack(up_to);
                }
            }
            LinkEvent::Connected { peer, peer_received_up_to } => {
                if peer < self.connected.len() {
                    self.connected[peer] = true;
                    // The peer's Hello reports what it holds durably.
                    self.outboxes[peer].ack(peer_received_up_to);
                    self.sent_up_to[peer] = peer_received_up_to;
                    // Tell it at once where we are, so it can fetch what it missed.
                    self.send_control(peer, &Control::Status { next_round: self.protocol.next_round() });
                    self.acked_up_to[peer] = 0;
                    // Watchers of the links (the CA's choice of signers) learn it now.
                    self.publish_status();
                }
            }
            LinkEvent::Disconnected { peer } => {
                if peer < self.connected.len() {
                    self.connected[peer] = false;
                    self.publish_status();
                }
            }
            LinkEvent::Control { from, payload } => self.control(from, &payload)?,
            LinkEvent::Fault { from, kind } => self.record_fault(from, &format!("{kind:?}")),
        }
        Ok(())
    }

    fn control(&mut self, from: PartyId, payload: &[u8]) -> Result<(), RuntimeError> {
        if from >= self.peer_rounds.len() {
            return Ok(());
        }
        let message: Control = match wire::decode(from, payload) {
            Ok(m) => m,
            Err(_) => {
                self.record_fault(from, "UndecodableControl");
                return Ok(());
            }
        };
        match message {
            Control::Status { next_round } => self.peer_rounds[from] = next_round,
            Control::Fetch { from_round, max } => {
                let end = self.rounds.len().min(from_round.saturating_add(u64::from(max.min(64))));
                for round in from_round..end {
                    let Some(bytes) = self.rounds.get(round)? else {
                        break;
                    };
                    let Ok(stored) = wire::decode::<StoredRound>(self.info.id, &bytes) else {
                        break;
                    };
                    self.send_control(from, &Control::Round(stored.record));
                }
            }
            Control::App(payload) => {
                // Best effort by contract: a full queue drops, the application asks again.
                let _ = self.app_to.try_send(AppMessage { from, payload });
            }
            Control::Round(record) => {
                // Only answers to our own fetch: an unsolicited record would cost a log record
                // and a verification each time a peer chose to send one.
                let Some((asked, until, _)) = self.fetch_pending else {
                    return Ok(());
                };
                if asked != from {
                    return Ok(());
                }
                if record.round.saturating_add(1) >= until {
                    self.fetch_pending = None;
                }
                // Only rounds not yet output are useful (ordered ones may still wait for
                // decryption shares, which the record carries); the protocol verifies the record
                // against the public keys before applying it, so no peer is trusted.
                if record.round >= self.protocol.next_round() && record.round <= self.protocol.atomic().round() {
                    self.log_clock()?;
                    self.log(Event::Record { from, record })?;
                }
            }
        }
        Ok(())
    }

    fn send_control(&mut self, peer: PartyId, message: &Control) {
        if let (Some(links), Ok(payload)) = (&self.links, wire::encode(message))
            && self.connected.get(peer).copied().unwrap_or(false)
        {
            self.metrics.sent(peer, payload.len());
            links.send(peer, Frame::Control { payload: payload.into() });
        }
    }

    fn tick(&mut self) -> Result<(), RuntimeError> {
        let round = self.protocol.next_round();
        if round != self.last_progress.0 {
            self.last_progress = (round, Instant::now());
        }
        if self.last_status.elapsed() >= STATUS_EVERY {
            self.last_status = Instant::now();
            for peer in self.peers() {
                self.send_control(peer, &Control::Status { next_round: round });
            }
            self.publish_status();
        }
        if let Some((_, _, since)) = self.fetch_pending
            && since.elapsed() > Duration::from_secs(2)
        {
            self.fetch_pending = None;
        }
        // Behind a peer and not progressing on our own: fetch the missing rounds from a peer
        // ahead (any will do: every round is verified before it is applied). The peers ahead
        // are asked in turn: a Byzantine peer that claims a far round and never answers (or
        // answers with records that do not verify) would otherwise be the one asked every time
        // (it is always furthest ahead), and the replica would never catch up. Now it costs at
        // most one fetch timeout in each turn round the peers.
        let ahead: Vec<PartyId> = (0..self.peer_rounds.len())
            .filter(|p| *p != self.info.id && self.connected[*p] && self.peer_rounds[*p] > round)
            .collect();
        if let Some(&peer) = ahead.get(self.fetch_turn % ahead.len().max(1))
            && self.fetch_pending.is_none()
            && self.last_progress.1.elapsed() >= self.limits.fetch_after
        {
            let until = round + u64::from(self.limits.fetch_rounds);
            self.fetch_pending = Some((peer, until, Instant::now()));
            self.fetch_turn = self.fetch_turn.wrapping_add(1);
            self.send_control(peer, &Control::Fetch { from_round: round, max: self.limits.fetch_rounds });
        }
        Ok(())
    }

    /// Makes the group durable, then lets its effects out.
    fn commit(&mut self) -> Result<(), RuntimeError> {
        if let Some(e) = self.storage_error.take() {
            return Err(e);
        }
        // The log's records were written as they came (`log`); the group's rounds are written
        // here, pausing while the disk is full.
        self.until_written(|node| Ok(node.rounds.write()?))?;
        // A failed fsync stops the node instead of being retried: Linux may drop the dirty pages
        // it could not write and report the next fsync clean, so a retry could "succeed" with
        // records lost while the messages they caused leave. A restart replays what really is
        // on disk (and cuts any torn tail).
        self.wal.sync()?;
        self.rounds.sync()?;
        for (reply, d) in self.replies.drain(..) {
            let _ = reply.send(Ok(d));
        }
        self.flush_links();
        self.emit_new()?;
        let due =
            self.events_since_snapshot >= self.limits.snapshot_every || self.wal.segment_bytes() >= SNAPSHOT_LOG_BYTES;
        if due && self.snapshot_retry_at.is_none_or(|at| Instant::now() >= at) {
            self.snapshot()?;
        }
        Ok(())
    }

    fn flush_links(&mut self) {
        let Some(links) = &self.links else {
            return;
        };
        for peer in (0..self.outboxes.len()).filter(|p| *p != self.info.id) {
            if !self.connected[peer] {
                continue;
            }
            let received = self.inboxes[peer].received_up_to();
            if received > self.acked_up_to[peer] {
                self.acked_up_to[peer] = received;
                links.send(peer, Frame::Ack { up_to: received });
            }
            for frame in self.outboxes[peer].resend_from(self.sent_up_to[peer]) {
                if let Frame::Data { seq, payload } = &frame {
                    self.metrics.sent(peer, payload.len());
                    self.sent_up_to[peer] = *seq;
                }
                links.send(peer, frame);
            }
        }
    }

    fn emit_new(&mut self) -> Result<(), RuntimeError> {
        for round in std::mem::take(&mut self.new_rounds) {
            if round.round == self.next_emit {
                self.next_emit += 1;
                self.deliver_to.blocking_send(round).map_err(|_| RuntimeError::ApplicationGone)?;
            }
        }
        Ok(())
    }

    /// Hands the application the stored rounds it has not applied yet (after a restart).
    fn emit_stored(&mut self) -> Result<(), RuntimeError> {
        self.new_rounds.clear();
        while self.next_emit < self.rounds.len() {
            let Some(bytes) = self.rounds.get(self.next_emit)? else {
                break;
            };
            let stored: StoredRound =
                wire::decode(self.info.id, &bytes).map_err(|_| RuntimeError::StoredRound(self.next_emit))?;
            let round =
                OrderedRound { round: stored.round, time: stored.time, seed: stored.seed, requests: stored.requests };
            self.deliver_to.blocking_send(round).map_err(|_| RuntimeError::ApplicationGone)?;
            self.next_emit += 1;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<(), RuntimeError> {
        let next_event = self.wal.next_index();
        let protocol = self.protocol.snapshot();
        if protocol.is_empty() {
            // Rotating the log away without a usable snapshot would make the state unrecoverable.
            return Err(RuntimeError::Encode("the protocol state did not encode".into()));
        }
        let snapshot =
            NodeSnapshot { next_event, protocol, outboxes: self.outboxes.clone(), inboxes: self.inboxes.clone() };
        match snapshot::store(&self.dir, &snapshot) {
            Ok(()) => self.events_since_snapshot = 0,
            // Nothing relies on a snapshot until the log is rotated after it: skipping this one
            // keeps the previous snapshot and every log record since, so the state recovers.
            Err(error @ SnapshotFileError::Io { .. }) => {
                self.snapshot_failed(&error);
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        match self.wal.rotate(next_event) {
            Ok(()) => {}
            // The snapshot is in place; the segments before it stay until a rotation works.
            Err(error) if error.retryable() => {
                self.snapshot_failed(&error);
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        self.snapshot_retry_at = None;
        if self.snapshot_pause.succeeded() {
            self.publish_status();
        }
        tracing::debug!(next_event, "snapshot written");
        Ok(())
    }

    fn snapshot_failed(&mut self, error: &dyn std::fmt::Display) {
        let wait = self.snapshot_pause.failed(error);
        self.snapshot_retry_at = Some(Instant::now() + wait);
        self.publish_status();
    }

    fn publish_status(&mut self) {
        let me = self.info.id;
        let peers = (0..self.outboxes.len())
            .filter(|p| *p != me)
            .map(|p| PeerStatus {
                id: p,
                connected: self.connected[p],
                round: self.peer_rounds[p],
                queued_messages: self.outboxes[p].len(),
                faults: self.faults[p].values().sum(),
                dropped_messages: self.outboxes[p].dropped_by_cap(),
            })
            .collect();
        let status = Status {
            id: me,
            round: self.protocol.atomic().round(),
            delivered_rounds: self.rounds.len(),
            pending_requests: self.protocol.pending_len(),
            own_queued: self.protocol.own_queued(),
            log_index: self.wal.next_index(),
            paused: self.pause.reason().is_some(),
            storage: self.pause.reason().or_else(|| self.snapshot_pause.reason()),
            peers,
        };
        self.metrics.status(&status);
        let _ = self.status.send(status);
    }
}
