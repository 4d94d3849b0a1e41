//! Secure causal atomic broadcast: clients submit plain requests or seal them with threshold
//! encryption; replicas order the requests with atomic broadcast (a sealed one is checked for
//! validity before it is disseminated or accepted in a batch) and release their decryption share
//! of a sealed request only once its position in the order is fixed; `t+1` shares open it. So no
//! one, `t` corrupted replicas included, learns a sealed request before its position is fixed,
//! and the adversary cannot make the order depend on its content.
//!
//! Every opened round carries a [`RoundRecord`]: the round's agreement proof and `t+1` valid
//! decryption shares of each sealed request. A replica that fell behind verifies a peer's record
//! with the public keys alone and delivers the round from it
//! ([`SecureAtomicBroadcast::handle_round_record`]) instead of trusting the peer.
//!
//! The whole state can be written out ([`SecureAtomicBroadcast::snapshot`]) and restored
//! exactly ([`SecureAtomicBroadcast::restore`]): a restored replica sends the same messages and
//! outputs for the same later inputs as the original would have, so replaying its logged inputs
//! after a crash never makes it contradict what it sent before.

use super::batch::BatchRules;
use super::broadcast::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast, DeliveredRound};
use super::round_proof::verify_round_proof;
use crate::agreement::validated::MvbaOutput;
use crate::crypto::{CombineError, DecryptionShare, NetworkInfo, digest};
pub use crate::wire::SnapshotError;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step, wire};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const TAG_PLAIN: u8 = 0;
const TAG_SEALED: u8 = 1;

/// A client request: plain (ordered and delivered as is) or sealed (an encoded threshold
/// ciphertext, opened only once its position in the order is fixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Plain(Vec<u8>),
    Sealed(Vec<u8>),
}

impl Request {
    /// One tag byte, then the bytes. This encoding is what atomic broadcast orders and what
    /// [`OrderedRequest::digest`] is taken of.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, bytes) = match self {
            Request::Plain(b) => (TAG_PLAIN, b),
            Request::Sealed(b) => (TAG_SEALED, b),
        };
        let mut out = Vec::with_capacity(1 + bytes.len());
        out.push(tag);
        out.extend_from_slice(bytes);
        out
    }

    /// `None` for an empty input or an unknown tag.
    pub fn decode(bytes: &[u8]) -> Option<Request> {
        let (&tag, rest) = bytes.split_first()?;
        match tag {
            TAG_PLAIN => Some(Request::Plain(rest.to_vec())),
            TAG_SEALED => Some(Request::Sealed(rest.to_vec())),
            _ => None,
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self, Request::Sealed(_))
    }
}

/// The ciphertext of an encoded sealed request, without copying it; `None` for anything else.
fn sealed_ciphertext(encoded: &[u8]) -> Option<&[u8]> {
    match encoded.split_first() {
        Some((&TAG_SEALED, ciphertext)) => Some(ciphertext),
        _ => None,
    }
}

/// The bytes of an encoded plain request.
fn plain_bytes(encoded: &[u8]) -> Option<&[u8]> {
    match encoded.split_first() {
        Some((&TAG_PLAIN, bytes)) => Some(bytes),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScabcMessage {
    Abc(AbcMessage),
    /// A decryption share of the (sealed) request at `index` of delivered round `round`.
    Decryption {
        round: u64,
        index: u32,
        share: DecryptionShare,
    },
}

/// The round a message belongs to; `None` for request dissemination (not tied to a round).
pub fn message_round(msg: &ScabcMessage) -> Option<u64> {
    match msg {
        ScabcMessage::Abc(m) => AtomicBroadcast::message_round(m),
        ScabcMessage::Decryption { round, .. } => Some(*round),
    }
}

#[derive(Debug, Clone)]
pub enum ScabcInput {
    /// A request from a client.
    Submit(Request),
    Clock(u64),
    /// The application is behind (or caught up again): see [`AbcInput::Hold`].
    Hold(bool),
}

/// One request of a delivered round, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderedRequest {
    /// Digest of the encoded request ([`Request::encode`]).
    pub digest: [u8; 32],
    pub sealed: bool,
    /// The plain request, or the opened sealed one; `None` for a sealed request whose valid
    /// shares do not open it (its client malformed it; every replica reaches the same verdict).
    #[serde(with = "crate::wire::opt_bytes")]
    pub payload: Option<Vec<u8>>,
}

/// A delivered round in transferable form: anyone holding the public keys can check it and
/// deliver the round from it ([`SecureAtomicBroadcast::handle_round_record`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RoundRecord {
    pub round: u64,
    /// The round's agreement proof ([`super::verify_round_proof`]).
    pub proof: MvbaOutput,
    /// Per delivered request, in order: `t+1` valid decryption shares if it is sealed, none if
    /// it is plain.
    pub shares: Vec<Vec<DecryptionShare>>,
}

/// A delivered round with its requests opened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedRound {
    pub round: u64,
    pub time: u64,
    pub seed: [u8; 32],
    pub requests: Vec<OrderedRequest>,
    /// The round's agreement proof (the same as `record.proof`).
    pub proof: MvbaOutput,
    /// The round in transferable form, for peers that fell behind.
    pub record: RoundRecord,
}

pub type ScabcStep = Step<ScabcMessage, OpenedRound>;

/// Remembered valid ciphertexts before the memory is cleared.
const VALID_CACHE_LIMIT: usize = 1 << 16;

/// Share releases remembered for inspection.
const RELEASE_LOG_LIMIT: usize = 1 << 16;

/// The snapshot format; a snapshot of another version is refused, not guessed at.
/// 2: dissemination broadcasts carry batches of requests.
/// 3: proposals send each distinct request once (`batch::encode_proposal`).
/// 4: delivered requests are remembered by round, for `AbcConfig::remember_rounds` rounds.
/// 5: echoes, votes and pre-processing are quorum certificates (`crypto::quorum`); state from
///    before holds BLS shares and signatures that no longer verify.
const SNAPSHOT_VERSION: u32 = 5;

/// A decryption share released: which request, and whether its position was fixed then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRelease {
    pub round: u64,
    pub index: u32,
    /// Digest of the encoded request.
    pub ciphertext: [u8; 32],
    pub position_fixed: bool,
}

/// One request of a round being opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Slot {
    /// A sealed request waiting for `t+1` valid shares; those received so far, by party.
    Sealed { shares: BTreeMap<PartyId, DecryptionShare> },
    /// Ready for output: the payload and the shares that opened it (none for plain requests).
    Done {
        #[serde(with = "crate::wire::opt_bytes")]
        payload: Option<Vec<u8>>,
        shares: Vec<DecryptionShare>,
    },
}

#[derive(Serialize, Deserialize)]
struct Opening {
    delivered: DeliveredRound,
    slots: Vec<Slot>,
}

/// The serde impls are the snapshot's: decode only through [`Self::restore`], which supplies
/// the keys and batch rules a snapshot cannot carry (an instance decoded otherwise accepts and
/// signs nothing valid).
#[derive(Serialize, Deserialize)]
pub struct SecureAtomicBroadcast {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    abc: AtomicBroadcast,
    opening: BTreeMap<u64, Opening>,
    /// Shares for rounds not yet delivered here (bounded: rounds within the ABC window, one
    /// share per party and request).
    early: BTreeMap<(u64, u32), BTreeMap<PartyId, DecryptionShare>>,
    next_output: u64,
    /// An inspection log, not protocol state: a restored replica starts an empty one.
    #[serde(skip)]
    releases: Vec<ShareRelease>,
}

/// What the atomic broadcast of secure causal atomic broadcast orders: decodable requests, a
/// sealed one only if its ciphertext is valid.
fn secure_rules(info: &NetworkInfo, config: AbcConfig) -> BatchRules {
    let public = info.public.clone();
    // Validating a ciphertext costs pairings and the same one is checked in every batch and
    // proposal that carries it: valid ones are remembered (bounded; a pure cache, so it is left
    // out of snapshots).
    let valid = std::sync::Mutex::new(BTreeSet::<[u8; 32]>::new());
    BatchRules {
        max_requests: config.max_batch,
        request_valid: Arc::new(move |encoded: &[u8]| {
            if plain_bytes(encoded).is_some() {
                return true;
            }
            let Some(ciphertext) = sealed_ciphertext(encoded) else {
                return false;
            };
            let d = digest(encoded);
            if valid.lock().is_ok_and(|v| v.contains(&d)) {
                return true;
            }
            let ok = public.encryption.validate(ciphertext);
            if ok && let Ok(mut v) = valid.lock() {
                if v.len() >= VALID_CACHE_LIMIT {
                    v.clear();
                }
                v.insert(d);
            }
            ok
        }),
    }
}

impl SecureAtomicBroadcast {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, config: AbcConfig) -> Self {
        let rules = secure_rules(&info, config);
        let abc = AtomicBroadcast::with_rules(info.clone(), id, config, rules);
        SecureAtomicBroadcast {
            info,
            abc,
            opening: BTreeMap::new(),
            early: BTreeMap::new(),
            next_output: 0,
            releases: Vec::new(),
        }
    }

    /// The complete state, CBOR-encoded (keys and predicates excepted: [`Self::restore`]
    /// supplies them).
    pub fn snapshot(&self) -> Vec<u8> {
        let info = &self.info;
        // Encoding into memory cannot fail for these types (no I/O, no fallible `Serialize`
        // impl); were it ever to, the empty result is refused by `restore`, never taken for
        // a state.
        wire::encode(&(SNAPSHOT_VERSION, info.id, info.n(), info.t(), self)).unwrap_or_default()
    }

    /// Rebuilds the instance [`Self::snapshot`] wrote, for the same replica, cluster, instance
    /// and configuration. From then on it behaves exactly as the original would have: same
    /// messages, outputs and faults for the same inputs.
    pub fn restore(
        info: Arc<NetworkInfo>,
        id: InstanceId,
        config: AbcConfig,
        bytes: &[u8],
    ) -> Result<Self, SnapshotError> {
        let (version, ..): (
            u32,
            serde::de::IgnoredAny,
            serde::de::IgnoredAny,
            serde::de::IgnoredAny,
            serde::de::IgnoredAny,
        ) = wire::decode_snapshot(bytes)?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version { expected: SNAPSHOT_VERSION, found: version });
        }
        let (_, party, n, t, mut state): (u32, PartyId, usize, usize, SecureAtomicBroadcast) =
            wire::decode_snapshot(bytes)?;
        if party != info.id {
            return Err(SnapshotError::WrongParty { expected: info.id, found: party });
        }
        if (n, t) != (info.n(), info.t()) {
            return Err(SnapshotError::WrongCluster { n: info.n(), t: info.t(), found_n: n, found_t: t });
        }
        if *state.abc.id() != id {
            return Err(SnapshotError::WrongInstance { expected: id, found: state.abc.id().clone() });
        }
        // `with_rules` takes the batch size from the rules, which `secure_rules` takes from the
        // configuration: the stored configuration is the given one, or the state is foreign.
        if state.abc.config() != config {
            return Err(SnapshotError::WrongConfig { expected: config, found: state.abc.config() });
        }
        if state.opening.values().any(|o| o.slots.len() != o.delivered.requests.len()) {
            return Err(SnapshotError::Inconsistent("a round being opened without one slot per request"));
        }
        if state.next_output > state.abc.round() {
            return Err(SnapshotError::Inconsistent("more rounds output than delivered"));
        }
        state.abc.rebind(&info, secure_rules(&info, config))?;
        state.info = info;
        Ok(state)
    }

    pub fn atomic(&self) -> &AtomicBroadcast {
        &self.abc
    }

    /// The next round to output (rounds before it are opened and output).
    pub fn next_round(&self) -> u64 {
        self.next_output
    }

    /// Requests pending here (disseminated or own, not yet delivered).
    pub fn pending_len(&self) -> usize {
        self.abc.pending_len()
    }

    /// This replica's own requests accepted and not yet delivered, including those waiting for
    /// room in its dissemination window (the runtime's backpressure measure).
    pub fn own_queued(&self) -> usize {
        self.abc.own_queued()
    }

    /// Whether the request with digest `d` reached this replica (see [`AtomicBroadcast::knows`]).
    pub fn knows(&self, d: &[u8; 32]) -> bool {
        self.abc.knows(d)
    }

    /// Rounds whose order is fixed here but whose sealed requests are not all opened yet.
    pub fn rounds_opening(&self) -> usize {
        self.opening.len()
    }

    /// Requests delivered in total.
    pub fn delivered_requests(&self) -> usize {
        self.abc.delivered_count()
    }

    /// ABBA rounds used by the agreements of the delivered rounds (statistics).
    pub fn abba_rounds(&self) -> &[u64] {
        self.abc.abba_rounds()
    }

    /// Every decryption share this replica released since it was created or restored (for the
    /// causality check).
    pub fn releases(&self) -> &[ShareRelease] {
        &self.releases
    }

    fn max_index(&self) -> u32 {
        (self.abc.config().max_batch * self.info.n()) as u32
    }

    /// Takes atomic broadcast's step; its delivered rounds are opened, round `from_record`'s
    /// (if any) with the shares of a verified record.
    fn lift_abc(
        &mut self,
        child: Step<AbcMessage, DeliveredRound>,
        mut from_record: Option<(u64, Vec<Vec<DecryptionShare>>)>,
        step: &mut ScabcStep,
    ) {
        for delivered in step.absorb(child, ScabcMessage::Abc) {
            let shares = from_record.take_if(|(round, _)| *round == delivered.round).map(|(_, s)| s);
            self.ordered(delivered, shares, step);
        }
    }

    /// A round's order is fixed: release our shares (unless a record brings enough) and start
    /// opening.
    fn ordered(&mut self, delivered: DeliveredRound, record: Option<Vec<Vec<DecryptionShare>>>, step: &mut ScabcStep) {
        let round = delivered.round;
        let count = delivered.requests.len();
        let mut slots = Vec::with_capacity(count);
        for (index, encoded) in delivered.requests.iter().enumerate() {
            if let Some(ciphertext) = sealed_ciphertext(encoded) {
                // A round delivered from a record has been opened by the others already: our
                // share would help no one.
                if record.is_none()
                    && let Some(share) = self.info.secret.decryption.share(ciphertext)
                {
                    // The log is for the simulator's causality check; bounded.
                    if self.releases.len() >= RELEASE_LOG_LIMIT {
                        self.releases.clear();
                    }
                    self.releases.push(ShareRelease {
                        round,
                        index: index as u32,
                        ciphertext: digest(encoded),
                        position_fixed: self.abc.round() > round,
                    });
                    step.broadcast(ScabcMessage::Decryption { round, index: index as u32, share });
                }
                slots.push(Slot::Sealed { shares: BTreeMap::new() });
            } else {
                // The batch rules admit only plain and valid sealed requests, so this is plain.
                let payload = plain_bytes(encoded).map(<[u8]>::to_vec);
                slots.push(Slot::Done { payload, shares: Vec::new() });
            }
        }
        // Shares that arrived before the round was delivered here.
        let early: Vec<(u64, u32)> = self.early.range((round, 0)..=(round, u32::MAX)).map(|(k, _)| *k).collect();
        for key in early {
            let Some(shares) = self.early.remove(&key) else { continue };
            match slots.get_mut(key.1 as usize) {
                Some(Slot::Sealed { shares: slot }) => {
                    if record.is_none() {
                        *slot = shares;
                    }
                }
                // Shares for a plain request or an index the round does not have: honest
                // replicas release shares only for sealed requests of the agreed round.
                _ => {
                    for party in shares.keys() {
                        step.fault(Fault::new(*party, FaultKind::ImpossibleInstance));
                    }
                }
            }
        }
        if let Some(record) = record {
            for (slot, given) in slots.iter_mut().zip(record) {
                if let Slot::Sealed { shares } = slot {
                    shares.extend(given.into_iter().map(|s| (s.id, s)));
                }
            }
        }
        self.opening.insert(round, Opening { delivered, slots });
        for index in 0..count {
            self.try_open(round, index, step);
        }
    }

    /// Opens a sealed request once `t+1` shares are in. Exactly `t+1` are combined, so when they
    /// open it (or, all verified, show that nothing can) they are the valid shares the round's
    /// record carries; shares found invalid are blamed and dropped, and the next ones tried.
    fn try_open(&mut self, round: u64, index: usize, step: &mut ScabcStep) {
        let required = self.info.t() + 1;
        let encryption = self.info.public.encryption.clone();
        let Some(opening) = self.opening.get_mut(&round) else {
            return;
        };
        let Some(ciphertext) = opening.delivered.requests.get(index).and_then(|e| sealed_ciphertext(e)) else {
            return;
        };
        let Some(Slot::Sealed { shares }) = opening.slots.get_mut(index) else {
            return;
        };
        while shares.len() >= required {
            let chosen: Vec<DecryptionShare> = shares.values().take(required).cloned().collect();
            let (payload, faulty) = match encryption.open(ciphertext, &chosen) {
                Ok(c) => (Some(c.value), c.faulty),
                Err(CombineError::NotEnoughValidShares { faulty, .. }) => (None, faulty),
                // Cannot happen: the shares are distinct by party.
                Err(CombineError::NotEnoughShares { .. }) => return,
            };
            if faulty.is_empty() {
                // Opened, or all `t+1` valid and still no plaintext: the client malformed it.
                opening.slots[index] = Slot::Done { payload, shares: chosen };
                return;
            }
            for party in faulty {
                shares.remove(&party);
                step.fault(Fault::new(party, FaultKind::InvalidDecryptionShare));
            }
        }
    }

    fn emit(&mut self, step: &mut ScabcStep) {
        while let Some(opening) = self.opening.get(&self.next_output) {
            if opening.slots.iter().any(|s| matches!(s, Slot::Sealed { .. })) {
                return;
            }
            let Some(opening) = self.opening.remove(&self.next_output) else {
                return;
            };
            let d = opening.delivered;
            let mut requests = Vec::with_capacity(d.requests.len());
            let mut record_shares = Vec::with_capacity(d.requests.len());
            for (encoded, slot) in d.requests.iter().zip(opening.slots) {
                let Slot::Done { payload, shares } = slot else {
                    continue;
                };
                let sealed = sealed_ciphertext(encoded).is_some();
                requests.push(OrderedRequest { digest: digest(encoded), sealed, payload });
                record_shares.push(shares);
            }
            let record = RoundRecord { round: d.round, proof: d.proof.clone(), shares: record_shares };
            step.output(OpenedRound { round: d.round, time: d.time, seed: d.seed, requests, proof: d.proof, record });
            self.next_output += 1;
        }
    }

    fn handle_share(&mut self, from: PartyId, round: u64, index: u32, share: DecryptionShare, step: &mut ScabcStep) {
        if share.id != from {
            step.fault(Fault::new(from, FaultKind::ShareOfAnotherParty));
            return;
        }
        if index >= self.max_index() {
            step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
            return;
        }
        if round < self.next_output || round > self.abc.round() + self.abc.config().future_rounds {
            return;
        }
        if let Some(opening) = self.opening.get_mut(&round) {
            let Some(encoded) = opening.delivered.requests.get(index as usize) else {
                step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                return;
            };
            if sealed_ciphertext(encoded).is_none() {
                step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                return;
            }
            if let Some(Slot::Sealed { shares }) = opening.slots.get_mut(index as usize) {
                shares.entry(from).or_insert(share);
                self.try_open(round, index as usize, step);
            }
        } else {
            self.early.entry((round, index)).or_default().entry(from).or_insert(share);
        }
    }

    /// Checks that `shares` are what a record of a round delivering `requests` must carry: per
    /// request, none for a plain one and `t+1` valid shares of distinct parties for a sealed one.
    fn record_shares_valid(&self, requests: &[Vec<u8>], shares: &[Vec<DecryptionShare>]) -> bool {
        let required = self.info.t() + 1;
        requests.len() == shares.len()
            && requests.iter().zip(shares).all(|(encoded, given)| match sealed_ciphertext(encoded) {
                None => given.is_empty(),
                Some(ciphertext) => {
                    let parties: BTreeSet<PartyId> = given.iter().map(|s| s.id).collect();
                    given.len() == required
                        && parties.len() == required
                        && given.iter().all(|s| s.id < self.info.n())
                        && given.iter().all(|s| self.info.public.encryption.verify_share(ciphertext, s))
                }
            })
    }

    /// A peer's record of a delivered round (catch-up). If it is of the next round this
    /// replica's atomic broadcast has to deliver, it is verified with the public keys alone and
    /// the round delivered from it exactly as if the local agreement had decided it; the
    /// replica then goes on with the next rounds as usual. If the round is delivered here but
    /// still waits for decryption shares, the record's shares open it. Records of other rounds
    /// are ignored (the runtime fetches in order); an invalid record is `from`'s fault and
    /// changes nothing.
    pub fn handle_round_record(&mut self, from: PartyId, record: RoundRecord, rng: &mut dyn RngCore) -> ScabcStep {
        let mut step = Step::new();
        let round = record.round;
        if let Some(opening) = self.opening.get(&round) {
            let abc = &self.abc;
            let proof_ok = verify_round_proof(&self.info.public, abc.id(), round, abc.rules(), &record.proof).is_ok();
            if !proof_ok || !self.record_shares_valid(&opening.delivered.requests, &record.shares) {
                step.fault(Fault::new(from, FaultKind::InvalidRoundRecord));
                return step;
            }
            if let Some(opening) = self.opening.get_mut(&round) {
                for (slot, given) in opening.slots.iter_mut().zip(record.shares) {
                    if let Slot::Sealed { shares } = slot {
                        shares.extend(given.into_iter().map(|s| (s.id, s)));
                    }
                }
            }
            let count = self.opening.get(&round).map_or(0, |o| o.slots.len());
            for index in 0..count {
                self.try_open(round, index, &mut step);
            }
        } else if round == self.abc.round() {
            let valid = match self.abc.verify_round(round, &record.proof) {
                Ok(requests) => self.record_shares_valid(&requests, &record.shares),
                Err(_) => false,
            };
            if !valid {
                step.fault(Fault::new(from, FaultKind::InvalidRoundRecord));
                return step;
            }
            let child = self.abc.handle_verified_round(round, record.proof, rng);
            self.lift_abc(child, Some((round, record.shares)), &mut step);
        }
        self.emit(&mut step);
        step
    }
}

impl Protocol for SecureAtomicBroadcast {
    type Input = ScabcInput;
    type Message = ScabcMessage;
    type Output = OpenedRound;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, input: ScabcInput, rng: &mut dyn RngCore) -> ScabcStep {
        let mut step = Step::new();
        let input = match input {
            ScabcInput::Submit(request) => AbcInput::Submit(request.encode()),
            ScabcInput::Clock(now) => AbcInput::Clock(now),
            ScabcInput::Hold(held) => AbcInput::Hold(held),
        };
        let child = self.abc.handle_input(input, rng);
        self.lift_abc(child, None, &mut step);
        self.emit(&mut step);
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: ScabcMessage, rng: &mut dyn RngCore) -> ScabcStep {
        let mut step = Step::new();
        match msg {
            ScabcMessage::Abc(m) => {
                let child = self.abc.handle_message(from, m, rng);
                self.lift_abc(child, None, &mut step);
            }
            ScabcMessage::Decryption { round, index, share } => self.handle_share(from, round, index, share, &mut step),
        }
        self.emit(&mut step);
        step
    }

    fn terminated(&self) -> bool {
        false
    }
}
