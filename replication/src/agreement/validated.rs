//! Multi-valued validated Byzantine agreement (Cachin-Kursawe-Petzold-Shoup, Crypto 2001) with an
//! external validity predicate.
//!
//! 1. Every party consistent-broadcasts its proposal; honest parties echo only values that pass
//!    the predicate, so every delivered proposal carries a transferable proof of validity.
//! 2. After `n-t` deliveries a party tells all (`Committed`); after `n-t` such messages it releases
//!    its share of the coin that orders the candidates. The order is thus fixed only after the
//!    sets of delivered proposals are, so the adversary cannot pick which candidates come first.
//! 3. Candidates are taken in that order. For each, parties send a vote (the candidate's proposal
//!    with its proof if they have it), and on `n-t` votes enter a validated ABBA with `1` (proof:
//!    a proposal from a vote) if any vote was `1`. The first ABBA that decides `1` fixes the
//!    output; its proof carries the proposal, so every party learns it.
//!
//! Termination: each honest party votes after holding `n-t` proposals, so with `n > 3t` some
//! candidate is held by `t+1` honest parties; any `n-t` votes for it include a `1`, every honest
//! party enters its ABBA with `1`, and ABBA's validity decides `1`.

use crate::agreement::binary::{AbbaDecision, AbbaInput, AbbaMessage, BinaryAgreement, ProofValidator};
use crate::broadcast::consistent::{CbcMessage, ConsistentBroadcast, Validator, verify_proof};
use crate::crypto::share_set::ShareSet;
use crate::crypto::{NetworkInfo, PublicKeys, Signature, SignatureShare, coin_value, digest};
use crate::id::{IdPart, ProtocolKind, statement};
use crate::wire::SnapshotError;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step, wire};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const DST_PERMUTATION: &[u8] = b"replication/mvba/permutation/v1";

/// A proposal with its consistent-broadcast proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(with = "crate::wire::bytes")]
    pub value: Vec<u8>,
    pub proof: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MvbaMessage {
    Cbc { proposer: PartyId, message: CbcMessage },
    Committed,
    Coin(SignatureShare),
    Vote { index: u64, candidate: PartyId, proposal: Option<Proposal> },
    Abba { index: u64, message: AbbaMessage },
}

/// The agreed value with everything needed to verify it from the public keys alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvbaOutput {
    #[serde(with = "crate::wire::bytes")]
    pub value: Vec<u8>,
    pub proposer: PartyId,
    /// The consistent-broadcast proof of `value` in `proposer`'s instance.
    pub proposal_proof: Signature,
    /// The coin that ordered the candidates.
    pub permutation_coin: Signature,
    /// Position of `proposer` in that order.
    pub index: u64,
    /// The candidate's ABBA decision (`1`).
    pub decision: AbbaDecision,
}

pub type MvbaStep = Step<MvbaMessage, MvbaOutput>;

fn cbc_id(id: &InstanceId, proposer: PartyId) -> InstanceId {
    id.child(&[IdPart::Protocol(ProtocolKind::ConsistentBroadcast), IdPart::Party(proposer)])
}

fn abba_id(id: &InstanceId, index: u64) -> InstanceId {
    id.child(&[IdPart::Protocol(ProtocolKind::BinaryAgreement), IdPart::Index(index)])
}

fn permutation_statement(id: &InstanceId) -> Vec<u8> {
    statement(&[&id.to_bytes()])
}

/// The candidate order derived from the coin: parties sorted by a hash of the coin and their id.
pub fn permutation(coin: &Signature, n: usize) -> Vec<PartyId> {
    let seed = coin_value(coin);
    let mut order: Vec<PartyId> = (0..n).collect();
    order.sort_by_key(|&j| {
        let mut data = seed.to_vec();
        data.extend_from_slice(&(j as u64).to_be_bytes());
        digest(&data)
    });
    order
}

fn proposal_valid(
    public: &PublicKeys,
    id: &InstanceId,
    proposer: PartyId,
    p: &Proposal,
    predicate: &Validator,
) -> bool {
    predicate(&p.value) && verify_proof(public, &cbc_id(id, proposer), &p.value, &p.proof)
}

/// Checks an agreed value against the public keys alone: the coin fixes the candidate at
/// `index`, the ABBA certificate says `1` for it, and the proposal is that candidate's
/// consistently broadcast, valid value.
pub fn verify_output(public: &PublicKeys, id: &InstanceId, predicate: &Validator, out: &MvbaOutput) -> bool {
    let order = permutation(&out.permutation_coin, public.n);
    let proposal = Proposal { value: out.value.clone(), proof: out.proposal_proof.clone() };
    public.coin.verify(DST_PERMUTATION, &permutation_statement(id), &out.permutation_coin)
        && order.get(out.index as usize) == Some(&out.proposer)
        && out.decision.value
        && crate::agreement::binary::verify_decision(public, &abba_id(id, out.index), &out.decision)
        && proposal_valid(public, id, out.proposer, &proposal, predicate)
}

/// The external proof for voting `1` on candidate `index`: the coin fixing the order, the
/// candidate it puts at `index`, and that candidate's proposal with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateProof {
    pub coin: Signature,
    pub candidate: PartyId,
    pub proposal: Proposal,
}

impl CandidateProof {
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        // The sender is irrelevant here: the proof is checked, not blamed, by the caller.
        wire::decode(0, bytes).ok()
    }
}

/// ABBA's predicate for `1` on candidate `index`. Verified proofs are remembered (by digest):
/// the same proof travels in many votes.
fn candidate_validator(public: PublicKeys, id: InstanceId, index: u64, predicate: Validator) -> ProofValidator {
    let verified = std::sync::Mutex::new(BTreeSet::<[u8; 32]>::new());
    Arc::new(move |bytes: &[u8]| {
        let d = digest(bytes);
        if verified.lock().is_ok_and(|v| v.contains(&d)) {
            return true;
        }
        let ok = CandidateProof::decode(bytes).is_some_and(|p| {
            public.coin.verify(DST_PERMUTATION, &permutation_statement(&id), &p.coin)
                && permutation(&p.coin, public.n).get(index as usize) == Some(&p.candidate)
                && proposal_valid(&public, &id, p.candidate, &p.proposal, &predicate)
        });
        if ok && let Ok(mut v) = verified.lock() {
            v.insert(d);
        }
        ok
    })
}

/// Serializable for snapshots: keys and predicate (and the validators derived from it) are
/// skipped and supplied again by `rebind`.
#[derive(Serialize, Deserialize)]
pub struct ValidatedAgreement {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    #[serde(skip, default = "crate::broadcast::consistent::unbound_validator")]
    predicate: Validator,
    cbcs: Vec<ConsistentBroadcast>,
    proposed: bool,
    delivered: BTreeMap<PartyId, Proposal>,
    sent_committed: bool,
    committed: BTreeSet<PartyId>,
    coin_shares: ShareSet,
    sent_coin: bool,
    coin: Option<Signature>,
    order: Option<Vec<PartyId>>,
    /// Votes per candidate index, by voter: (candidate named, proposal if any).
    votes: BTreeMap<u64, BTreeMap<PartyId, (PartyId, bool)>>,
    /// A valid proposal seen in a vote, per candidate index.
    vote_proposals: BTreeMap<u64, Proposal>,
    /// Current candidate index.
    index: u64,
    voted: BTreeSet<u64>,
    abba_input: BTreeSet<u64>,
    abbas: BTreeMap<u64, BinaryAgreement>,
    /// ABBA decisions not yet acted upon.
    decisions: BTreeMap<u64, AbbaDecision>,
    output: Option<MvbaOutput>,
    /// ABBA rounds per decided instance, kept for statistics after pruning.
    abba_rounds_used: Vec<u64>,
}

impl ValidatedAgreement {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, predicate: Validator) -> Self {
        let cbcs = (0..info.n())
            .map(|j| ConsistentBroadcast::new(info.clone(), cbc_id(&id, j), j, predicate.clone()))
            .collect();
        ValidatedAgreement {
            info,
            id,
            predicate,
            cbcs,
            proposed: false,
            delivered: BTreeMap::new(),
            sent_committed: false,
            committed: BTreeSet::new(),
            coin_shares: ShareSet::default(),
            sent_coin: false,
            coin: None,
            order: None,
            votes: BTreeMap::new(),
            vote_proposals: BTreeMap::new(),
            index: 0,
            voted: BTreeSet::new(),
            abba_input: BTreeSet::new(),
            abbas: BTreeMap::new(),
            decisions: BTreeMap::new(),
            output: None,
            abba_rounds_used: Vec::new(),
        }
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Supplies keys and predicate to an instance decoded from a snapshot, and to its children,
    /// exactly as [`Self::new`] and [`Self::abba`] build them.
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>, predicate: Validator) -> Result<(), SnapshotError> {
        if self.cbcs.len() != info.n() {
            return Err(SnapshotError::Inconsistent("validated agreement without one consistent broadcast per party"));
        }
        if self.order.as_ref().is_some_and(|order| order.len() != info.n()) {
            return Err(SnapshotError::Inconsistent("candidate order of another cluster size"));
        }
        if self.abbas.keys().any(|&k| k >= info.n() as u64) {
            return Err(SnapshotError::Inconsistent("binary agreement for an impossible candidate"));
        }
        for cbc in &mut self.cbcs {
            cbc.rebind(info, &predicate);
        }
        for (&index, abba) in &mut self.abbas {
            let validator = candidate_validator(info.public.clone(), self.id.clone(), index, predicate.clone());
            abba.rebind(info, Some(validator));
        }
        self.info = info.clone();
        self.predicate = predicate;
        Ok(())
    }

    pub fn output(&self) -> Option<&MvbaOutput> {
        self.output.as_ref()
    }

    pub fn public_keys(&self) -> PublicKeys {
        self.info.public.clone()
    }

    pub fn predicate(&self) -> &Validator {
        &self.predicate
    }

    /// Rounds each ABBA instance this party decided took.
    pub fn abba_rounds(&self) -> Vec<u64> {
        if self.output.is_some() {
            return self.abba_rounds_used.clone();
        }
        self.abbas.values().filter_map(|a| a.decision().map(|d| d.round)).collect()
    }

    fn abba(&mut self, index: u64) -> &mut BinaryAgreement {
        let (info, id, predicate) = (self.info.clone(), self.id.clone(), self.predicate.clone());
        self.abbas.entry(index).or_insert_with(|| {
            let validator = candidate_validator(info.public.clone(), id.clone(), index, predicate);
            BinaryAgreement::new(info, abba_id(&id, index), Some(validator))
        })
    }

    fn candidate_proof(&self, candidate: PartyId, proposal: Proposal) -> Option<Vec<u8>> {
        let coin = self.coin.clone()?;
        wire::encode(&CandidateProof { coin, candidate, proposal }).ok()
    }

    fn lift_abba(&mut self, index: u64, child: Step<AbbaMessage, AbbaDecision>, step: &mut MvbaStep) {
        for decision in step.absorb(child, |message| MvbaMessage::Abba { index, message }) {
            self.decisions.insert(index, decision);
        }
    }

    fn lift_cbc(
        &mut self,
        proposer: PartyId,
        child: Step<CbcMessage, crate::broadcast::consistent::CbcOutput>,
        step: &mut MvbaStep,
    ) {
        for out in step.absorb(child, |message| MvbaMessage::Cbc { proposer, message }) {
            self.delivered.insert(proposer, Proposal { value: out.value, proof: out.proof });
        }
    }

    fn progress(&mut self, step: &mut MvbaStep, rng: &mut dyn RngCore) {
        let n_t = self.info.quorum();
        loop {
            if self.output.is_some() {
                return;
            }
            if !self.sent_committed && self.delivered.len() >= n_t {
                self.sent_committed = true;
                step.broadcast(MvbaMessage::Committed);
            }
            if self.sent_committed && !self.sent_coin && self.committed.len() >= n_t {
                self.sent_coin = true;
                let share = self.info.secret.coin.sign(DST_PERMUTATION, &permutation_statement(&self.id));
                step.broadcast(MvbaMessage::Coin(share));
            }
            if self.order.is_none() && self.sent_coin {
                let (coin, faulty) = self.coin_shares.combine(
                    &*self.info.public.coin,
                    DST_PERMUTATION,
                    &permutation_statement(&self.id),
                );
                for p in faulty {
                    step.fault(Fault::new(p, FaultKind::InvalidCoinShare));
                }
                if let Some(coin) = coin {
                    self.order = Some(permutation(&coin, self.info.n()));
                    self.coin = Some(coin);
                    // Votes received before the order was known may name the wrong candidate.
                    self.drop_mismatched_votes(step);
                }
            }
            let Some(order) = self.order.clone() else {
                return;
            };
            let k = self.index;
            let Some(&candidate) = order.get(k as usize) else {
                return;
            };
            if !self.voted.contains(&k) {
                self.voted.insert(k);
                let proposal = self.delivered.get(&candidate).cloned();
                step.broadcast(MvbaMessage::Vote { index: k, candidate, proposal });
            }
            let votes = self.votes.get(&k).map_or(0, |v| v.len());
            if !self.abba_input.contains(&k) && votes >= n_t {
                self.abba_input.insert(k);
                let proposal = self.delivered.get(&candidate).cloned().or_else(|| self.vote_proposals.get(&k).cloned());
                let proof = proposal.and_then(|p| self.candidate_proof(candidate, p));
                let input = AbbaInput { value: proof.is_some(), proof };
                let child = self.abba(k).handle_input(input, rng);
                self.lift_abba(k, child, step);
                continue;
            }
            let Some(decision) = self.decisions.get(&k).cloned() else {
                return;
            };
            if !decision.value {
                self.index += 1;
                continue;
            }
            let proposal = decision
                .proof
                .as_deref()
                .and_then(CandidateProof::decode)
                .filter(|p| p.candidate == candidate)
                .map(|p| p.proposal)
                .or_else(|| self.delivered.get(&candidate).cloned());
            let (Some(proposal), Some(coin)) = (proposal, self.coin.clone()) else {
                // A 1-decision always carries a valid proof for its candidate.
                return;
            };
            let out = MvbaOutput {
                value: proposal.value,
                proposer: candidate,
                proposal_proof: proposal.proof,
                permutation_coin: coin,
                index: k,
                decision,
            };
            self.output = Some(out.clone());
            self.prune();
            step.output(out);
            return;
        }
    }

    fn drop_mismatched_votes(&mut self, step: &mut MvbaStep) {
        let Some(order) = &self.order else { return };
        for (k, votes) in self.votes.iter_mut() {
            let expected = order.get(*k as usize).copied();
            votes.retain(|voter, (candidate, _)| {
                let ok = Some(*candidate) == expected;
                if !ok {
                    step.faults.push(Fault::new(*voter, FaultKind::InvalidJustification));
                }
                ok
            });
        }
        let proposals = std::mem::take(&mut self.vote_proposals);
        self.vote_proposals = proposals
            .into_iter()
            .filter(|(k, _)| self.votes.get(k).is_some_and(|v| v.values().any(|(_, has)| *has)))
            .collect();
    }

    /// After the decision only the output and the consistent broadcasts are kept: parties
    /// still deciding may need this party's echoes (and its own proposal's completion) to
    /// collect `n-t` proposals. Everything else they get from the certificates already sent.
    fn prune(&mut self) {
        self.abba_rounds_used = self.abbas.values().filter_map(|a| a.decision().map(|d| d.round)).collect();
        self.votes.clear();
        self.vote_proposals.clear();
        self.abbas.clear();
        self.decisions.clear();
        self.coin_shares = ShareSet::default();
        self.committed.clear();
    }

    fn handle(&mut self, from: PartyId, msg: MvbaMessage, step: &mut MvbaStep, rng: &mut dyn RngCore) {
        let n = self.info.n();
        match msg {
            MvbaMessage::Cbc { proposer, message } => {
                if proposer >= n {
                    step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                    return;
                }
                let child = self.cbcs[proposer].handle_message(from, message, rng);
                self.lift_cbc(proposer, child, step);
            }
            MvbaMessage::Committed => {
                self.committed.insert(from);
            }
            MvbaMessage::Coin(share) => {
                if share.id != from {
                    step.fault(Fault::new(from, FaultKind::ShareOfAnotherParty));
                    return;
                }
                self.coin_shares.insert(share);
            }
            MvbaMessage::Vote { index, candidate, proposal } => {
                if index >= n as u64 || candidate >= n {
                    step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                    return;
                }
                if let Some(order) = &self.order
                    && order[index as usize] != candidate
                {
                    step.fault(Fault::new(from, FaultKind::InvalidJustification));
                    return;
                }
                if self.votes.get(&index).is_some_and(|v| v.contains_key(&from)) {
                    return;
                }
                let has = proposal.is_some();
                if let Some(p) = proposal {
                    if !proposal_valid(&self.info.public, &self.id, candidate, &p, &self.predicate) {
                        step.fault(Fault::new(from, FaultKind::InvalidSignature));
                        return;
                    }
                    self.vote_proposals.entry(index).or_insert(p);
                }
                self.votes.entry(index).or_default().insert(from, (candidate, has));
            }
            MvbaMessage::Abba { index, message } => {
                if index >= n as u64 {
                    step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                    return;
                }
                let child = self.abba(index).handle_message(from, message, rng);
                self.lift_abba(index, child, step);
            }
        }
    }
}

impl Protocol for ValidatedAgreement {
    type Input = Vec<u8>;
    type Message = MvbaMessage;
    type Output = MvbaOutput;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, value: Vec<u8>, rng: &mut dyn RngCore) -> MvbaStep {
        let mut step = Step::new();
        if self.proposed || self.output.is_some() {
            return step;
        }
        self.proposed = true;
        let me = self.info.id;
        let child = self.cbcs[me].handle_input(value, rng);
        self.lift_cbc(me, child, &mut step);
        self.progress(&mut step, rng);
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: MvbaMessage, rng: &mut dyn RngCore) -> MvbaStep {
        let mut step = Step::new();
        if self.output.is_some() && !matches!(msg, MvbaMessage::Cbc { .. }) {
            return step;
        }
        self.handle(from, msg, &mut step, rng);
        self.progress(&mut step, rng);
        step
    }

    fn terminated(&self) -> bool {
        self.output.is_some()
    }
}
