//! Request dissemination: each replica reliably broadcasts the requests it accepts, so a request
//! accepted by one honest replica reaches every honest replica's queue.
//!
//! One broadcast carries a batch of requests: a replica keeps at most [`IN_FLIGHT`] of its own
//! broadcasts undelivered, and what its clients submit meanwhile waits and goes out together in
//! the next one. At low load every request still leaves at once, alone; under load the messages
//! per request (`1 + 2n^2` for one broadcast) are shared by the whole batch.
//!
//! Memory is bounded per sender: only instances with sequence numbers in
//! `[lowest undelivered, lowest undelivered + WINDOW)` hold state; an honest sender keeps at most
//! [`IN_FLIGHT`] (less than `WINDOW / 2`) of its own broadcasts undelivered.
//! Messages for the next `WINDOW` instances beyond the window are held, unprocessed, until the
//! window reaches them; messages further ahead are ignored without blame.
//!
//! Holding is what keeps a slow receiver in the protocol. A receiver's window starts at the
//! lowest instance it has not *delivered*, but it echoes and readies instances it has not
//! delivered yet, and its peers may deliver (and move on) with its ready before it hears enough
//! readys itself. So an honest peer can be up to `WINDOW` instances further than the receiver and
//! send for instances up to `2 * WINDOW` beyond the receiver's lowest. Those messages are sent
//! once (the link acknowledged them; nothing retransmits them), so a receiver that dropped a
//! sender's message never echoes that instance; when its echo is needed (`t` replicas down, so
//! every live replica's echo counts), the instance never completes, its request is never
//! ordered, and it holds a slot of the sender's window for good. Peers can only be further ahead
//! than that when they do not need this receiver at all, and then the window slides (below).
//!
//! A receiver that missed some of a sender's broadcasts for good (it was down, or partitioned
//! for longer than its peers keep messages) would otherwise never deliver the lowest one, so its
//! window would never move and it would ignore that sender forever. So the window also slides
//! when `t+1` distinct parties have sent messages for the sender's instances beyond it: at least
//! one of them is honest, and an honest party sends for instance `x` only once it delivered every
//! instance of the sender up to `x - WINDOW` (its own window holds `x`). The window moves up to
//! where that is certain, abandoning the instances below. Abandoning costs nothing but those
//! requests in this replica's queue: an honest party delivered them, so every honest party will
//! (totality), and they reach the order through the others' batches.

use crate::broadcast::reliable::{RbcMessage, ReliableBroadcast};
use crate::crypto::{NetworkInfo, digest};
use crate::id::{IdPart, ProtocolKind};
use crate::wire::SnapshotError;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub const WINDOW: u64 = 64;

/// Most of this replica's own broadcasts undelivered at once (at most `WINDOW / 2`).
pub const IN_FLIGHT: usize = 4;

/// Most requests, and most bytes of requests, one broadcast carries. A request larger than the
/// byte limit (up to `MAX_REQUEST_BYTES`) travels alone. Echoes carry the batch to every party,
/// so the bytes are kept well below a frame.
const BATCH_REQUESTS: usize = 256;
const BATCH_BYTES: usize = 256 * 1024;

/// A request delivered by dissemination, with who broadcast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disseminated {
    pub sender: PartyId,
    pub request: Vec<u8>,
}

pub type DisseminationStep = Step<(PartyId, u64, RbcMessage), Disseminated>;

#[derive(Default, Serialize, Deserialize)]
struct SenderState {
    /// Lowest sequence number not yet delivered (or abandoned).
    low: u64,
    /// Delivered sequence numbers at or above `low`.
    delivered_above: BTreeSet<u64>,
    instances: BTreeMap<u64, ReliableBroadcast>,
    /// Per party, the highest sequence number beyond the window it sent a message for (one
    /// number per party: bounded).
    ahead: BTreeMap<PartyId, u64>,
    /// Messages for instances in `[low + WINDOW, low + 2 * WINDOW)`, handled once the window
    /// reaches them: per instance at most one message of each kind per party (an honest party
    /// sends no more), so at most `3n` per instance.
    #[serde(default)]
    held: BTreeMap<u64, Vec<(PartyId, RbcMessage)>>,
}

impl SenderState {
    /// Keeps `message` for instance `seq` (beyond the window, within the held range) unless
    /// `from` already has one of its kind held there.
    fn hold(&mut self, from: PartyId, seq: u64, message: RbcMessage) {
        let kind = |m: &RbcMessage| std::mem::discriminant(m);
        let held = self.held.entry(seq).or_default();
        if !held.iter().any(|(f, m)| *f == from && kind(m) == kind(&message)) {
            held.push((from, message));
        }
    }
}

/// Serializable for snapshots: the keys are skipped and supplied again by `rebind`.
#[derive(Serialize, Deserialize)]
pub struct Dissemination {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    senders: Vec<SenderState>,
    next_seq: u64,
    #[serde(with = "crate::wire::seq_bytes")]
    waiting: VecDeque<Vec<u8>>,
    /// This replica's own broadcasts not yet delivered here: sequence number and the digests of
    /// the requests it carries not yet ordered (see [`Dissemination::ordered`]). At most
    /// [`IN_FLIGHT`] entries.
    own_in_flight: BTreeMap<u64, BTreeSet<[u8; 32]>>,
}

impl Dissemination {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId) -> Self {
        let senders = (0..info.n()).map(|_| SenderState::default()).collect();
        Dissemination { info, id, senders, next_seq: 0, waiting: VecDeque::new(), own_in_flight: BTreeMap::new() }
    }

    /// Supplies the keys to an instance decoded from a snapshot, and to its broadcasts.
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>) -> Result<(), SnapshotError> {
        if self.senders.len() != info.n() {
            return Err(SnapshotError::Inconsistent("dissemination without one window per party"));
        }
        for rbc in self.senders.iter_mut().flat_map(|s| s.instances.values_mut()) {
            rbc.rebind(info);
        }
        self.info = info.clone();
        Ok(())
    }

    /// Requests accepted here and still waiting for room in this replica's window.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// The lowest sequence number of `sender` not yet delivered (or abandoned) here.
    pub fn low(&self, sender: PartyId) -> Option<u64> {
        self.senders.get(sender).map(|s| s.low)
    }

    fn instance_id(&self, sender: PartyId, seq: u64) -> InstanceId {
        self.id.child(&[IdPart::Protocol(ProtocolKind::ReliableBroadcast), IdPart::Party(sender), IdPart::Index(seq)])
    }

    /// Broadcasts a request accepted by this replica (or queues it while the window is full).
    pub fn submit(&mut self, request: Vec<u8>, rng: &mut dyn RngCore) -> DisseminationStep {
        self.waiting.push_back(request);
        self.start_waiting(rng)
    }

    fn start_waiting(&mut self, rng: &mut dyn RngCore) -> DisseminationStep {
        let mut step = Step::new();
        let me = self.info.id;
        while self.own_in_flight.len() < IN_FLIGHT && self.next_seq < self.senders[me].low + WINDOW / 2 {
            let requests = self.next_batch();
            if requests.is_empty() {
                break;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.own_in_flight.insert(seq, requests.iter().map(|r| digest(r)).collect());
            let id = self.instance_id(me, seq);
            let value = encode_batch(requests);
            let rbc = self.senders[me]
                .instances
                .entry(seq)
                .or_insert_with(|| ReliableBroadcast::new(self.info.clone(), id, me));
            let child = rbc.handle_input(value, rng);
            let outputs = step.absorb(child, |m| (me, seq, m));
            self.deliver(me, seq, outputs, &mut step);
        }
        step
    }

    /// The oldest waiting requests, as many as one broadcast carries (at least one).
    fn next_batch(&mut self) -> Vec<Vec<u8>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(request) = self.waiting.front() {
            let full = batch.len() >= BATCH_REQUESTS || bytes + request.len() > BATCH_BYTES;
            if !batch.is_empty() && full {
                break;
            }
            bytes += request.len();
            batch.extend(self.waiting.pop_front());
        }
        batch
    }

    /// Handles the held messages of `sender` the window now admits (and forgets those below
    /// it), until the window stops moving.
    fn release_held(&mut self, sender: PartyId, rng: &mut dyn RngCore, step: &mut DisseminationStep) {
        loop {
            let state = &mut self.senders[sender];
            state.held = state.held.split_off(&state.low);
            let end = state.low + WINDOW;
            let Some(entry) = state.held.first_entry() else {
                return;
            };
            if *entry.key() >= end {
                return;
            }
            let (seq, messages) = entry.remove_entry();
            for (from, message) in messages {
                self.receive(from, sender, seq, message, rng, step);
            }
        }
    }

    fn deliver(&mut self, sender: PartyId, seq: u64, outputs: Vec<Vec<u8>>, step: &mut DisseminationStep) {
        for value in outputs {
            if sender == self.info.id {
                self.own_in_flight.remove(&seq);
            }
            let state = &mut self.senders[sender];
            state.instances.remove(&seq);
            state.delivered_above.insert(seq);
            while state.delivered_above.remove(&state.low) {
                state.low += 1;
            }
            // Every honest party delivers the same value, so all of them blame a sender whose
            // batch does not decode.
            match decode_batch(sender, &value) {
                Ok(requests) => {
                    step.output.extend(requests.into_iter().map(|request| Disseminated { sender, request }))
                }
                Err(fault) => step.fault(fault),
            }
        }
    }

    /// `from` sent a message for `sender`'s instance `seq`, beyond the window. Once `t+1`
    /// parties have, the `(t+1)`-th highest such sequence number `v` is at most what some honest
    /// party sent for, so that party delivered every instance up to `v - WINDOW`: the window
    /// slides to start at `v - WINDOW + 1` (and so holds `v`).
    fn note_ahead(&mut self, sender: PartyId, from: PartyId, seq: u64) {
        let t = self.info.t();
        let state = &mut self.senders[sender];
        let highest = state.ahead.entry(from).or_insert(seq);
        *highest = (*highest).max(seq);
        let end = state.low + WINDOW;
        state.ahead.retain(|_, s| *s >= end);
        if state.ahead.len() <= t {
            return;
        }
        let mut beyond: Vec<u64> = state.ahead.values().copied().collect();
        beyond.sort_unstable_by(|a, b| b.cmp(a));
        let new_low = beyond[t] - (WINDOW - 1);
        state.instances = state.instances.split_off(&new_low);
        state.delivered_above = state.delivered_above.split_off(&new_low);
        state.low = new_low;
        while state.delivered_above.remove(&state.low) {
            state.low += 1;
        }
        let end = state.low + WINDOW;
        state.ahead.retain(|_, s| *s >= end);
        if sender == self.info.id {
            // Only after a lost state could peers be ahead of our own broadcasts; never reuse
            // a sequence number below the window.
            self.next_seq = self.next_seq.max(self.senders[sender].low);
            self.own_in_flight = self.own_in_flight.split_off(&self.senders[sender].low);
        }
    }

    /// The order delivered the request whose digest is `request`: an own broadcast none of whose
    /// requests is still unordered is retired, and the room it held in this replica's window is
    /// used.
    ///
    /// Without this a replica whose peers dropped messages for it (an outbox drops its oldest
    /// once a replica is away long enough to fill it) never delivers its own broadcasts that
    /// were under way when it went away: the others delivered and ordered them without it, and
    /// no one sends for them again. Their slots at the bottom of its window stay taken for good,
    /// and once its `WINDOW / 2` slots are taken every later request its clients submit waits
    /// in its queue forever (accepted, never ordered). The window of other senders slides when
    /// `t + 1` parties show they are past it; nobody but this replica sends for its own
    /// broadcasts, so for them the order is the evidence.
    pub fn ordered(&mut self, request: &[u8; 32], rng: &mut dyn RngCore) -> DisseminationStep {
        let mut retired = Vec::new();
        for (seq, digests) in &mut self.own_in_flight {
            if digests.remove(request) && digests.is_empty() {
                retired.push(*seq);
            }
        }
        if retired.is_empty() {
            return Step::new();
        }
        let me = self.info.id;
        let state = &mut self.senders[me];
        for seq in retired {
            self.own_in_flight.remove(&seq);
            state.instances.remove(&seq);
            if seq >= state.low {
                state.delivered_above.insert(seq);
            }
        }
        while state.delivered_above.remove(&state.low) {
            state.low += 1;
        }
        let mut step = Step::new();
        self.release_held(me, rng, &mut step);
        step.extend(self.start_waiting(rng));
        step
    }

    pub fn handle_message(
        &mut self,
        from: PartyId,
        sender: PartyId,
        seq: u64,
        message: RbcMessage,
        rng: &mut dyn RngCore,
    ) -> DisseminationStep {
        let mut step = Step::new();
        if sender >= self.info.n() {
            step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
            return step;
        }
        self.receive(from, sender, seq, message, rng, &mut step);
        self.release_held(sender, rng, &mut step);
        if sender == self.info.id {
            step.extend(self.start_waiting(rng));
        }
        step
    }

    /// One message for `sender`'s instance `seq`: handled in the window, held just beyond it,
    /// ignored otherwise. The caller releases what a moved window admits.
    fn receive(
        &mut self,
        from: PartyId,
        sender: PartyId,
        seq: u64,
        message: RbcMessage,
        rng: &mut dyn RngCore,
        step: &mut DisseminationStep,
    ) {
        if seq >= self.senders[sender].low + WINDOW {
            self.note_ahead(sender, from, seq);
        }
        let state = &mut self.senders[sender];
        if seq < state.low || state.delivered_above.contains(&seq) {
            return;
        }
        if seq >= state.low + WINDOW {
            if seq < state.low + 2 * WINDOW {
                state.hold(from, seq, message);
            }
            return;
        }
        let id = self.instance_id(sender, seq);
        let info = self.info.clone();
        let rbc = self.senders[sender].instances.entry(seq).or_insert_with(|| ReliableBroadcast::new(info, id, sender));
        let child = rbc.handle_message(from, message, rng);
        let outputs = step.absorb(child, |m| (sender, seq, m));
        self.deliver(sender, seq, outputs, step);
    }
}

/// The value of one dissemination broadcast: the requests it carries, in submission order.
#[derive(Serialize, Deserialize)]
struct RequestBatch(#[serde(with = "crate::wire::seq_bytes")] Vec<Vec<u8>>);

pub(crate) fn encode_batch(requests: Vec<Vec<u8>>) -> Vec<u8> {
    // A list of byte strings always encodes (into memory, which cannot fail).
    crate::wire::encode(&RequestBatch(requests)).unwrap_or_default()
}

/// The requests a delivered broadcast of `sender` carries; bytes that are no batch are its fault.
pub(crate) fn decode_batch(sender: PartyId, value: &[u8]) -> Result<Vec<Vec<u8>>, Fault> {
    crate::wire::decode::<RequestBatch>(sender, value).map(|RequestBatch(requests)| requests)
}
