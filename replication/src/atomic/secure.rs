//! Secure causal atomic broadcast: clients seal requests with threshold encryption; replicas
//! order the ciphertexts with atomic broadcast (a ciphertext is checked for validity before it
//! is disseminated or accepted in a batch) and release their decryption share of a request only
//! once the request's position in the order is fixed; `t+1` shares open it. So no one, `t`
//! corrupted replicas included, learns a request before its position is fixed, and the
//! adversary cannot make the order depend on a request's content.

use super::batch::BatchRules;
use super::broadcast::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast, DeliveredRound};
use crate::agreement::validated::MvbaOutput;
use crate::crypto::{CombineError, DecryptionShare, NetworkInfo, digest};
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScabcMessage {
    Abc(AbcMessage),
    /// A decryption share of the request at `index` of delivered round `round`.
    Decryption {
        round: u64,
        index: u32,
        share: DecryptionShare,
    },
}

#[derive(Debug, Clone)]
pub enum ScabcInput {
    /// A sealed request from a client (an encoded ciphertext).
    Submit(Vec<u8>),
    Clock(u64),
}

/// A delivered round with its requests opened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedRound {
    pub round: u64,
    pub time: u64,
    pub seed: [u8; 32],
    /// Digests of the ordered ciphertexts.
    pub ciphertexts: Vec<[u8; 32]>,
    /// The plaintexts; `None` for a ciphertext whose (verified) shares do not open it (its
    /// client malformed it; every replica reaches the same verdict).
    pub plaintexts: Vec<Option<Vec<u8>>>,
    pub proof: MvbaOutput,
}

pub type ScabcStep = Step<ScabcMessage, OpenedRound>;

/// Remembered valid ciphertexts before the memory is cleared.
const VALID_CACHE_LIMIT: usize = 1 << 16;

/// Share releases remembered for inspection.
const RELEASE_LOG_LIMIT: usize = 1 << 16;

/// A decryption share released: which request, and whether its position was fixed then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRelease {
    pub round: u64,
    pub index: u32,
    pub ciphertext: [u8; 32],
    pub position_fixed: bool,
}

struct Opening {
    delivered: DeliveredRound,
    shares: Vec<BTreeMap<PartyId, DecryptionShare>>,
    opened: Vec<Option<Option<Vec<u8>>>>,
}

pub struct SecureAtomicBroadcast {
    info: Arc<NetworkInfo>,
    abc: AtomicBroadcast,
    opening: BTreeMap<u64, Opening>,
    /// Shares for rounds not yet delivered here (bounded: rounds within the ABC window, one
    /// share per party and request).
    early: BTreeMap<(u64, u32), BTreeMap<PartyId, DecryptionShare>>,
    next_output: u64,
    releases: Vec<ShareRelease>,
}

impl SecureAtomicBroadcast {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, config: AbcConfig) -> Self {
        let public = info.public.clone();
        // Validating a ciphertext costs pairings and the same one is checked in every batch
        // and proposal that carries it: valid ones are remembered (bounded).
        let valid = std::sync::Mutex::new(std::collections::HashSet::<[u8; 32]>::new());
        let rules = BatchRules {
            max_requests: config.max_batch,
            request_valid: Arc::new(move |ct: &[u8]| {
                let d = digest(ct);
                if valid.lock().is_ok_and(|v| v.contains(&d)) {
                    return true;
                }
                let ok = public.encryption.validate(ct);
                if ok && let Ok(mut v) = valid.lock() {
                    if v.len() >= VALID_CACHE_LIMIT {
                        v.clear();
                    }
                    v.insert(d);
                }
                ok
            }),
        };
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

    pub fn atomic(&self) -> &AtomicBroadcast {
        &self.abc
    }

    /// Every decryption share this replica released (for the causality check).
    pub fn releases(&self) -> &[ShareRelease] {
        &self.releases
    }

    fn max_index(&self) -> u32 {
        (self.abc.config().max_batch * self.info.n()) as u32
    }

    fn lift_abc(&mut self, child: Step<AbcMessage, DeliveredRound>, step: &mut ScabcStep) {
        for delivered in step.absorb(child, ScabcMessage::Abc) {
            self.ordered(delivered, step);
        }
    }

    /// A round's order is fixed: release our shares and start opening.
    fn ordered(&mut self, delivered: DeliveredRound, step: &mut ScabcStep) {
        let round = delivered.round;
        let count = delivered.requests.len();
        for (index, ct) in delivered.requests.iter().enumerate() {
            if let Some(share) = self.info.secret.decryption.share(ct) {
                // The record is for the simulator's causality check; bounded.
                if self.releases.len() >= RELEASE_LOG_LIMIT {
                    self.releases.clear();
                }
                self.releases.push(ShareRelease {
                    round,
                    index: index as u32,
                    ciphertext: digest(ct),
                    position_fixed: self.abc.round() > round,
                });
                step.broadcast(ScabcMessage::Decryption { round, index: index as u32, share });
            }
        }
        let mut shares = vec![BTreeMap::new(); count];
        for (i, slot) in shares.iter_mut().enumerate() {
            if let Some(early) = self.early.remove(&(round, i as u32)) {
                *slot = early;
            }
        }
        // Shares for indexes the round does not have were impossible.
        let stale: Vec<(u64, u32)> = self.early.range((round, 0)..=(round, u32::MAX)).map(|(k, _)| *k).collect();
        for key in stale {
            if let Some(bad) = self.early.remove(&key) {
                for party in bad.keys() {
                    step.fault(Fault::new(*party, FaultKind::ImpossibleInstance));
                }
            }
        }
        self.opening.insert(round, Opening { delivered, shares, opened: vec![None; count] });
        for index in 0..count {
            self.try_open(round, index, step);
        }
    }

    fn try_open(&mut self, round: u64, index: usize, step: &mut ScabcStep) {
        let required = self.info.t() + 1;
        let Some(opening) = self.opening.get_mut(&round) else {
            return;
        };
        if opening.opened[index].is_some() || opening.shares[index].len() < required {
            return;
        }
        let ct = &opening.delivered.requests[index];
        let shares: Vec<DecryptionShare> = opening.shares[index].values().cloned().collect();
        let (result, faulty) = match self.info.public.encryption.open(ct, &shares) {
            Ok(c) => (Some(Some(c.value)), c.faulty),
            // Enough shares, none of them bad, and still no plaintext: the client malformed it.
            Err(CombineError::NotEnoughValidShares { faulty, .. }) if faulty.is_empty() => (Some(None), faulty),
            Err(CombineError::NotEnoughValidShares { faulty, .. }) => (None, faulty),
            Err(CombineError::NotEnoughShares { .. }) => (None, Vec::new()),
        };
        for party in faulty {
            opening.shares[index].remove(&party);
            step.fault(Fault::new(party, FaultKind::InvalidDecryptionShare));
        }
        opening.opened[index] = result;
    }

    fn emit(&mut self, step: &mut ScabcStep) {
        while let Some(opening) = self.opening.get(&self.next_output) {
            if opening.opened.iter().any(|o| o.is_none()) {
                return;
            }
            let Some(opening) = self.opening.remove(&self.next_output) else {
                return;
            };
            let d = opening.delivered;
            step.output(OpenedRound {
                round: d.round,
                time: d.time,
                seed: d.seed,
                ciphertexts: d.requests.iter().map(|r| digest(r)).collect(),
                plaintexts: opening.opened.into_iter().flatten().collect(),
                proof: d.proof,
            });
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
            let Some(slot) = opening.shares.get_mut(index as usize) else {
                step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                return;
            };
            slot.entry(from).or_insert(share);
            self.try_open(round, index as usize, step);
        } else {
            self.early.entry((round, index)).or_default().entry(from).or_insert(share);
        }
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
            ScabcInput::Submit(ct) => AbcInput::Submit(ct),
            ScabcInput::Clock(now) => AbcInput::Clock(now),
        };
        let child = self.abc.handle_input(input, rng);
        self.lift_abc(child, &mut step);
        self.emit(&mut step);
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: ScabcMessage, rng: &mut dyn RngCore) -> ScabcStep {
        let mut step = Step::new();
        match msg {
            ScabcMessage::Abc(m) => {
                let child = self.abc.handle_message(from, m, rng);
                self.lift_abc(child, &mut step);
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
