//! The atomic broadcast state machine: rounds of agreement on `n-t` signed batches.
//!
//! In round `r` a replica signs a batch of its oldest pending requests with its clock reading
//! and sends it to all; with `n-t` batches of round `r` it proposes them to round `r`'s validated
//! agreement (predicate: `n-t` valid batches of round `r` from distinct replicas). The agreed
//! batches are delivered in signer order, requests in batch order, duplicates and requests
//! delivered before removed. The round's time is the `(t+1)`-th smallest clock reading, made
//! monotonic; its random seed is derived from the agreement's coin.
//!
//! A replica starts round `r` when it has pending requests or sees `t+1` batches of round `r`
//! (so at least one honest replica wants it). While its application is behind it is *held*
//! ([`AbcInput::Hold`]): it then starts a round only on `t+1` batches, so requests accumulate
//! into larger rounds and the fixed cost of an agreement is shared by more of them. Holding
//! never stops the order: a held replica still joins every round at least `t+1` others start. Requests arrive by reliable broadcast
//! ([`super::dissemination`]), so a request accepted by one honest replica is eventually pending
//! at all of them.

use super::batch::{
    BatchRules, MAX_REQUEST_BYTES, SignedBatch, batch_byte_budget, decode_proposal, encode_proposal, round_time,
};
use super::dissemination::Dissemination;
use super::round_proof::{RoundProofError, round_instance, round_predicate, verify_round_proof};
use crate::agreement::validated::{MvbaMessage, MvbaOutput, ValidatedAgreement};
use crate::broadcast::reliable::RbcMessage;
use crate::crypto::{NetworkInfo, coin_value, digest};
use crate::wire::SnapshotError;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbcConfig {
    /// Most requests in one replica's batch.
    pub max_batch: usize,
    /// Rounds ahead of the current one whose messages are processed at once.
    pub future_rounds: u64,
    /// Messages for rounds further ahead kept per peer, the newest (older ones are dropped
    /// without blame).
    pub future_buffer_per_peer: usize,
    /// Delivered rounds whose agreement keeps serving peers still deciding them.
    pub keep_rounds: u64,
    /// Delivered rounds whose requests are remembered, so that a request ordered again within
    /// them is dropped as a duplicate. Older ones are forgotten, so memory does not grow with
    /// the log; the application must tolerate a request ordered again after that (the CA does:
    /// a command's replay key is refused a second time).
    #[serde(default = "default_remember_rounds")]
    pub remember_rounds: u64,
}

fn default_remember_rounds() -> u64 {
    4096
}

impl Default for AbcConfig {
    fn default() -> Self {
        AbcConfig {
            max_batch: 100,
            future_rounds: 8,
            future_buffer_per_peer: 4096,
            keep_rounds: 4,
            remember_rounds: default_remember_rounds(),
        }
    }
}

/// The requests one delivered round added to the order, by digest.
#[derive(Serialize, Deserialize)]
struct RememberedRound {
    round: u64,
    #[serde(with = "crate::wire::digests")]
    digests: Vec<[u8; 32]>,
}

#[derive(Debug, Clone)]
pub enum AbcInput {
    /// A client request this replica accepted.
    Submit(Vec<u8>),
    /// The replica's current clock reading (ms since the Unix epoch), used in its next batch.
    Clock(u64),
    /// Whether the application is behind: a held replica starts a round only when `t+1` others
    /// have (it still joins those), not for its own pending requests.
    Hold(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbcMessage {
    Disseminate { sender: PartyId, seq: u64, message: RbcMessage },
    Batch(SignedBatch),
    Mvba { round: u64, message: MvbaMessage },
}

/// One delivered round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredRound {
    pub round: u64,
    #[serde(with = "crate::wire::seq_bytes")]
    pub requests: Vec<Vec<u8>>,
    /// Agreed time: the `(t+1)`-th smallest clock reading, made monotonic.
    pub time: u64,
    /// Agreed random seed of the round.
    pub seed: [u8; 32],
    /// The transferable proof ([`super::verify_round_proof`]).
    pub proof: MvbaOutput,
}

pub type AbcStep = Step<AbcMessage, DeliveredRound>;

#[derive(Serialize, Deserialize)]
struct RoundState {
    started: bool,
    proposed: bool,
    batches: BTreeMap<PartyId, SignedBatch>,
    mvba: ValidatedAgreement,
}

/// Serializable for snapshots: keys and batch rules (and the round predicates derived from
/// them) are skipped and supplied again by `rebind`. Every collection is ordered, so
/// nothing about this state depends on hashing or on the order things were inserted in beyond
/// what the protocol itself records.
#[derive(Serialize, Deserialize)]
pub struct AtomicBroadcast {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    config: AbcConfig,
    #[serde(skip, default = "BatchRules::unbound")]
    rules: BatchRules,
    dissemination: Dissemination,
    #[serde(with = "crate::wire::digests")]
    pending_order: VecDeque<[u8; 32]>,
    #[serde(with = "crate::wire::digest_map_bytes")]
    pending: BTreeMap<[u8; 32], Vec<u8>>,
    /// Requests this replica accepted from its own clients and has not delivered yet.
    #[serde(with = "crate::wire::digests")]
    own: BTreeSet<[u8; 32]>,
    /// Requests delivered in the last `config.remember_rounds` rounds: an index of `remembered`,
    /// rebuilt from it after a snapshot rather than stored twice.
    #[serde(skip)]
    delivered: BTreeSet<[u8; 32]>,
    /// The requests each remembered round delivered, oldest first, to forget them in order.
    remembered: VecDeque<RememberedRound>,
    clock: u64,
    /// The next round to deliver.
    round: u64,
    rounds: BTreeMap<u64, RoundState>,
    decided: BTreeMap<u64, MvbaOutput>,
    /// Agreements of recently delivered rounds, still answering peers.
    finished: BTreeMap<u64, ValidatedAgreement>,
    last_time: u64,
    /// See [`AbcInput::Hold`].
    #[serde(default)]
    held: bool,
    future: BTreeMap<PartyId, VecDeque<AbcMessage>>,
    /// Requests delivered in total (for statistics).
    delivered_count: usize,
    abba_rounds: Vec<u64>,
}

const ABBA_STATS_LIMIT: usize = 10_000;

impl AtomicBroadcast {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, config: AbcConfig) -> Self {
        Self::with_rules(info, id, config, BatchRules::any(config.max_batch))
    }

    /// Atomic broadcast that orders only requests passing `rules.request_valid`
    /// (`rules.max_requests` overrides `config.max_batch`).
    pub fn with_rules(info: Arc<NetworkInfo>, id: InstanceId, mut config: AbcConfig, rules: BatchRules) -> Self {
        config.max_batch = rules.max_requests;
        let dissemination = Dissemination::new(info.clone(), id.clone());
        AtomicBroadcast {
            info,
            id,
            config,
            rules,
            dissemination,
            pending_order: VecDeque::new(),
            pending: BTreeMap::new(),
            own: BTreeSet::new(),
            delivered: BTreeSet::new(),
            remembered: VecDeque::new(),
            clock: 0,
            round: 0,
            rounds: BTreeMap::new(),
            decided: BTreeMap::new(),
            finished: BTreeMap::new(),
            last_time: 0,
            held: false,
            future: BTreeMap::new(),
            delivered_count: 0,
            abba_rounds: Vec::new(),
        }
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Supplies keys and batch rules to an instance decoded from a snapshot, and to every
    /// agreement it holds, exactly as [`Self::with_rules`] and `round_state` build them; and
    /// rebuilds the index of delivered requests, which the snapshot does not store.
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>, rules: BatchRules) -> Result<(), SnapshotError> {
        self.delivered = self.remembered.iter().flat_map(|r| r.digests.iter().copied()).collect();
        self.dissemination.rebind(info)?;
        let rounds = self.rounds.iter_mut().map(|(r, s)| (*r, &mut s.mvba));
        for (round, mvba) in rounds.chain(self.finished.iter_mut().map(|(r, m)| (*r, m))) {
            let predicate = round_predicate(info.public.clone(), self.id.clone(), round, rules.clone());
            mvba.rebind(info, predicate)?;
        }
        self.info = info.clone();
        self.rules = rules;
        Ok(())
    }

    pub fn config(&self) -> AbcConfig {
        self.config
    }

    pub fn rules(&self) -> &BatchRules {
        &self.rules
    }

    /// The next round to be delivered.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Messages held for rounds beyond the window, over all peers.
    pub fn future_buffered(&self) -> usize {
        self.future.values().map(|q| q.len()).sum()
    }

    /// Agreement instances held: open rounds and recently delivered ones.
    pub fn instances_held(&self) -> usize {
        self.rounds.len() + self.finished.len()
    }

    /// Requests pending here (disseminated or own, not yet delivered).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// See [`AbcInput::Hold`].
    pub fn held(&self) -> bool {
        self.held
    }

    /// This replica's own requests accepted and not yet delivered, including those still
    /// waiting for room in its dissemination window (the runtime's backpressure measure).
    pub fn own_queued(&self) -> usize {
        self.own.len()
    }

    /// Whether the request with digest `d` reached this replica: accepted from its own clients,
    /// disseminated to it, or delivered in the remembered rounds.
    pub fn knows(&self, d: &[u8; 32]) -> bool {
        self.own.contains(d) || self.pending.contains_key(d) || self.delivered.contains(d)
    }

    /// Requests delivered in total.
    pub fn delivered_count(&self) -> usize {
        self.delivered_count
    }

    /// The dissemination layer (for statistics).
    pub fn dissemination(&self) -> &Dissemination {
        &self.dissemination
    }

    pub fn public_keys(&self) -> crate::crypto::PublicKeys {
        self.info.public.clone()
    }

    /// ABBA rounds used by the agreements of the delivered rounds (statistics; the most recent
    /// `ABBA_STATS_LIMIT`).
    pub fn abba_rounds(&self) -> &[u64] {
        &self.abba_rounds
    }

    fn round_state(&mut self, round: u64) -> &mut RoundState {
        let (info, rules, abc) = (self.info.clone(), self.rules.clone(), self.id.clone());
        self.rounds.entry(round).or_insert_with(|| {
            let predicate = round_predicate(info.public.clone(), abc.clone(), round, rules);
            RoundState {
                started: false,
                proposed: false,
                batches: BTreeMap::new(),
                mvba: ValidatedAgreement::new(info, round_instance(&abc, round), predicate),
            }
        })
    }

    /// Queues a request; one that fails the request predicate is never ordered (its
    /// disseminator is to blame: honest replicas check before disseminating).
    fn add_pending(&mut self, sender: PartyId, request: Vec<u8>, step: &mut AbcStep) {
        if request.len() > MAX_REQUEST_BYTES || !(self.rules.request_valid)(&request) {
            step.fault(Fault::new(sender, FaultKind::InvalidValue));
            return;
        }
        let d = digest(&request);
        if self.delivered.contains(&d) || self.pending.contains_key(&d) {
            return;
        }
        self.pending.insert(d, request);
        self.pending_order.push_back(d);
    }

    /// The batch for a new round: the oldest pending requests fill an eighth of it (so a
    /// request pending at `t+1` honest replicas is in an agreed batch within a round or so),
    /// this replica's own clients' requests come next and any other pending requests the rest.
    /// Every honest batch repeats the oldest part, so it is kept small: with a backlog the `n-t`
    /// agreed batches then add up to nearly `n-t` batches' worth of requests (with half of each
    /// batch taken by the oldest, rounds carried a third fewer).
    fn select_batch(&self, max_batch: usize) -> Vec<Vec<u8>> {
        let mut taken = BTreeSet::new();
        let oldest = self.pending_order.iter().take(max_batch.div_ceil(8));
        let own = self.pending_order.iter().filter(|d| self.own.contains(*d));
        let rest = self.pending_order.iter();
        // Within the byte budget too, so a proposal of n-t batches always fits in a frame.
        let budget = batch_byte_budget(self.info.n());
        let mut bytes = 0;
        oldest
            .chain(own)
            .chain(rest)
            .filter(|d| taken.insert(**d))
            .filter_map(|d| self.pending.get(d).cloned())
            .take_while(|r| {
                bytes += r.len();
                bytes <= budget
            })
            .take(max_batch)
            .collect()
    }

    /// Starts the current round and proposes when possible; delivers decided rounds in order.
    fn progress(&mut self, step: &mut AbcStep, rng: &mut dyn RngCore) {
        loop {
            let r = self.round;
            if let Some(out) = self.decided.remove(&r) {
                self.deliver(r, out, step, rng);
                continue;
            }
            let t = self.info.t();
            let want = !self.pending.is_empty() && !self.held;
            let (clock, max_batch, id, me) = (self.clock, self.config.max_batch, self.id.clone(), self.info.id);
            let info = self.info.clone();
            let state = self.round_state(r);
            if !state.started && (want || state.batches.len() > t) {
                state.started = true;
                let requests = self.select_batch(max_batch);
                let batch = SignedBatch::sign(&id, me, r, clock, requests, &*info.secret.signing);
                step.broadcast(AbcMessage::Batch(batch));
            }
            let state = self.round_state(r);
            if state.started && !state.proposed && state.batches.len() >= info.quorum() {
                state.proposed = true;
                let chosen: Vec<SignedBatch> = state.batches.values().take(info.quorum()).cloned().collect();
                let child = state.mvba.handle_input(encode_proposal(&chosen), rng);
                self.lift_mvba(r, child, step);
                continue;
            }
            return;
        }
    }

    /// The requests (with their digests) the agreed `batches` add to the order: in signer
    /// order, requests in batch order, without those delivered before or repeated.
    fn new_requests(&self, batches: &[SignedBatch]) -> Vec<([u8; 32], Vec<u8>)> {
        let mut seen = BTreeSet::new();
        let mut requests = Vec::new();
        for request in batches.iter().flat_map(|b| &b.requests) {
            let d = digest(request);
            if !self.delivered.contains(&d) && seen.insert(d) {
                requests.push((d, request.clone()));
            }
        }
        requests
    }

    /// Verifies a peer's proof of round `round` with the public keys alone and returns the
    /// requests it would deliver here. Meaningful for the next round to deliver
    /// ([`Self::round`]): which requests are new depends on the rounds delivered before.
    pub fn verify_round(&self, round: u64, proof: &MvbaOutput) -> Result<Vec<Vec<u8>>, RoundProofError> {
        let batches = verify_round_proof(&self.info.public, &self.id, round, &self.rules, proof)?;
        Ok(self.new_requests(&batches).into_iter().map(|(_, r)| r).collect())
    }

    /// Delivers round `round` as if this replica's agreement had decided `proof`, which the
    /// caller has verified ([`Self::verify_round`]), e.g. from a peer's round record. Only the
    /// next round to deliver is taken (anything else is ignored); afterwards the replica goes
    /// on as usual: delivers later rounds its agreements decided, drains messages buffered for
    /// rounds now within reach, and starts its batch for the round the others are on.
    pub fn handle_verified_round(&mut self, round: u64, proof: MvbaOutput, rng: &mut dyn RngCore) -> AbcStep {
        let mut step = Step::new();
        if round != self.round {
            return step;
        }
        self.decided.insert(round, proof);
        self.progress(&mut step, rng);
        step
    }

    /// Records what round `round` delivered and forgets the rounds `config.remember_rounds`
    /// behind it. Every honest replica delivers the same rounds, so all forget the same digests
    /// at the same round and keep delivering the same requests.
    fn remember(&mut self, round: u64, digests: Vec<[u8; 32]>) {
        self.remembered.push_back(RememberedRound { round, digests });
        while let Some(oldest) = self.remembered.front()
            && oldest.round.saturating_add(self.config.remember_rounds) <= round
        {
            if let Some(forgotten) = self.remembered.pop_front() {
                for d in &forgotten.digests {
                    self.delivered.remove(d);
                }
            }
        }
    }

    fn deliver(&mut self, round: u64, out: MvbaOutput, step: &mut AbcStep, rng: &mut dyn RngCore) {
        // The agreement decides only values that passed the predicate here (n-t valid batches),
        // and a peer's round was checked with `verify_round_proof`, so decoding suffices.
        let batches = decode_proposal(&out.value).unwrap_or_default();
        let mut requests = Vec::new();
        let mut digests = Vec::new();
        for (d, request) in self.new_requests(&batches) {
            self.delivered.insert(d);
            self.pending.remove(&d);
            self.own.remove(&d);
            digests.push(d);
            requests.push(request);
        }
        self.remember(round, digests);
        self.pending_order.retain(|d| self.pending.contains_key(d));
        // Own broadcasts whose requests are now ordered free their room in our window, even if
        // we never delivered them ourselves (see `Dissemination::ordered`).
        for request in &requests {
            let child = self.dissemination.ordered(&digest(request), rng);
            let started = step.absorb(child, |(sender, seq, message)| AbcMessage::Disseminate { sender, seq, message });
            for d in started {
                self.add_pending(d.sender, d.request, step);
            }
        }
        self.last_time = self.last_time.max(round_time(&batches, self.info.t()));
        let mut seed_input = b"replication/abc/round-seed/v1".to_vec();
        seed_input.extend_from_slice(&coin_value(&out.permutation_coin));
        let seed = digest(&seed_input);
        self.delivered_count += requests.len();
        step.output(DeliveredRound { round, requests, time: self.last_time, seed, proof: out });
        if let Some(state) = self.rounds.remove(&round) {
            if self.abba_rounds.len() < ABBA_STATS_LIMIT {
                self.abba_rounds.extend(state.mvba.abba_rounds());
            }
            self.finished.insert(round, state.mvba);
        }
        self.round = round + 1;
        let keep_from = self.round.saturating_sub(self.config.keep_rounds);
        self.finished = self.finished.split_off(&keep_from);
        self.drain_future(step, rng);
    }

    fn lift_mvba(&mut self, round: u64, child: Step<MvbaMessage, MvbaOutput>, step: &mut AbcStep) {
        for out in step.absorb(child, |message| AbcMessage::Mvba { round, message }) {
            if round >= self.round {
                self.decided.insert(round, out);
            }
        }
    }

    /// The round a message belongs to; `None` for dissemination (not tied to a round).
    pub fn message_round(msg: &AbcMessage) -> Option<u64> {
        match msg {
            AbcMessage::Disseminate { .. } => None,
            AbcMessage::Batch(b) => Some(b.round),
            AbcMessage::Mvba { round, .. } => Some(*round),
        }
    }

    /// Re-handles buffered messages that the current round now admits.
    fn drain_future(&mut self, step: &mut AbcStep, rng: &mut dyn RngCore) {
        let limit = self.round + self.config.future_rounds;
        let mut ready = Vec::new();
        for (peer, queue) in self.future.iter_mut() {
            let (now, later): (Vec<_>, Vec<_>) =
                queue.drain(..).partition(|m| Self::message_round(m).is_none_or(|r| r <= limit));
            queue.extend(later);
            ready.extend(now.into_iter().map(|m| (*peer, m)));
        }
        self.future.retain(|_, q| !q.is_empty());
        for (peer, msg) in ready {
            self.handle(peer, msg, step, rng);
        }
    }

    fn handle(&mut self, from: PartyId, msg: AbcMessage, step: &mut AbcStep, rng: &mut dyn RngCore) {
        if let Some(round) = Self::message_round(&msg)
            && round > self.round + self.config.future_rounds
        {
            // When full, the oldest message goes: a replica this far behind catches up on the
            // intermediate rounds from round records, but the messages of the round its peers
            // are on now (a proposal it must echo, a batch the round waits for) are sent once.
            let cap = self.config.future_buffer_per_peer;
            let queue = self.future.entry(from).or_default();
            if cap > 0 {
                if queue.len() >= cap {
                    queue.pop_front();
                }
                queue.push_back(msg);
            }
            return;
        }
        match msg {
            AbcMessage::Disseminate { sender, seq, message } => {
                let child = self.dissemination.handle_message(from, sender, seq, message, rng);
                let delivered =
                    step.absorb(child, |(sender, seq, message)| AbcMessage::Disseminate { sender, seq, message });
                for d in delivered {
                    self.add_pending(d.sender, d.request, step);
                }
            }
            AbcMessage::Batch(batch) => {
                if batch.round < self.round {
                    return;
                }
                if batch.signer != from || !batch.verify(&self.info.public, &self.id, &self.rules) {
                    step.fault(Fault::new(from, FaultKind::InvalidIndividualSignature));
                    return;
                }
                let state = self.round_state(batch.round);
                match state.batches.get(&from) {
                    Some(prev) if *prev != batch => step.fault(Fault::new(from, FaultKind::Equivocation)),
                    Some(_) => {}
                    None => {
                        state.batches.insert(from, batch);
                    }
                }
            }
            AbcMessage::Mvba { round, message } => {
                if round < self.round {
                    // Delivered: only the consistent broadcasts still serve slower peers.
                    if let Some(mvba) = self.finished.get_mut(&round) {
                        let child = mvba.handle_message(from, message, rng);
                        let _ = step.absorb(child, |message| AbcMessage::Mvba { round, message });
                    }
                    return;
                }
                let child = self.round_state(round).mvba.handle_message(from, message, rng);
                self.lift_mvba(round, child, step);
            }
        }
    }
}

impl Protocol for AtomicBroadcast {
    type Input = AbcInput;
    type Message = AbcMessage;
    type Output = DeliveredRound;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, input: AbcInput, rng: &mut dyn RngCore) -> AbcStep {
        let mut step = Step::new();
        match input {
            AbcInput::Clock(now) => self.clock = now,
            AbcInput::Hold(held) => self.held = held,
            AbcInput::Submit(request) => {
                // Checked before dissemination: an honest replica never spreads what it would
                // have to blame itself for.
                if request.len() > MAX_REQUEST_BYTES || !(self.rules.request_valid)(&request) {
                    return step;
                }
                // Already ordered: nothing to spread (and an own broadcast carrying it could
                // not be retired by the order, see `Dissemination::ordered`).
                let d = digest(&request);
                if self.delivered.contains(&d) {
                    return step;
                }
                self.own.insert(d);
                let child = self.dissemination.submit(request, rng);
                let delivered =
                    step.absorb(child, |(sender, seq, message)| AbcMessage::Disseminate { sender, seq, message });
                for d in delivered {
                    self.add_pending(d.sender, d.request, &mut step);
                }
            }
        }
        self.progress(&mut step, rng);
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: AbcMessage, rng: &mut dyn RngCore) -> AbcStep {
        let mut step = Step::new();
        self.handle(from, msg, &mut step, rng);
        self.progress(&mut step, rng);
        step
    }

    /// Atomic broadcast never terminates; it is idle when nothing is pending.
    fn terminated(&self) -> bool {
        false
    }
}
