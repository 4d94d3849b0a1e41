//! Multi-valued validated Byzantine agreement (Cachin-Kursawe-Petzold-Shoup, Crypto 2001) with an
//! external validity predicate.
//!
//! 1. Every party consistent-broadcasts its proposal; honest parties echo only values that pass
//!    the predicate, so every delivered proposal carries a transferable proof of validity.
//! 2. After `n-t` deliveries a party tells all (`Committed`, with the digests and proofs of those
//!    `n-t` proposals); after `n-t` valid such messages it releases its share of the coin that
//!    orders the candidates, and holds the proofs of every proposal they named. The order is thus
//!    fixed only after `n-t` sets of delivered proposals are, so the adversary cannot pick which
//!    candidates come first. The proofs are what makes that count: without them `t` Byzantine
//!    parties could claim to have committed, and when the coin became known only `n-2t` honest
//!    parties' sets would be fixed, too few (from `t = 3`) to guarantee a candidate that `t+1`
//!    of them hold, so the adversary could steer the first candidates to ones that most honest
//!    parties vote `0` on. With the proofs, every honest party that released its coin share
//!    holds the proofs of the `n-t` sets it saw, and votes `1` for any candidate in them.
//! 3. Candidates are taken in that order. For each, parties send a vote (the digest of the
//!    candidate's proposal with its proof if they have it), and on `n-t` votes enter a validated
//!    ABBA with `1` (proof: a digest and proof from a vote) if any vote was `1`. The first ABBA
//!    that decides `1` fixes the output; its proof names the proposal by digest.
//! 4. A party that decided `1` for a candidate whose proposal it does not hold asks everyone for
//!    it (`Want`); any party holding a value with that digest answers once per asker (`Value`).
//!
//! Proofs carry digests, not values: the consistent broadcast signs `(id, digest(value))`, so a
//! proposal travels in the broadcast's `Send` and `Final` only, plus the rare `Value` answer.
//! Nor do votes and ABBA proofs re-run the predicate: a valid proof is a quorum certificate of
//! `ceil((n+t+1)/2)` parties, which include an honest one, and honest parties echo only values
//! passing the predicate.
//!
//! Termination: each honest party votes after holding `n-t` proposals, so with `n > 3t` some
//! candidate is held by `t+1` honest parties; any `n-t` votes for it include a `1`, every honest
//! party enters its ABBA with `1`, and ABBA's validity decides `1`. A party deciding `1` without
//! the value gets it: the proof's quorum includes at least `t+1` honest parties that echoed the
//! value and keep it (a broadcast instance keeps what it echoed, and a delivered proposal is kept
//! with the agreement) until the agreement is dropped, and they answer a `Want` even after they
//! decided. (Atomic broadcast keeps a decided agreement a few rounds; a replica further behind
//! catches up from round records instead.)

use crate::agreement::binary::{AbbaDecision, AbbaInput, AbbaMessage, BinaryAgreement, ProofValidator};
use crate::broadcast::consistent::{CbcMessage, CbcOutput, ConsistentBroadcast, Validator, verify_proof};
use crate::crypto::share_set::ShareSet;
use crate::crypto::verified::VerifiedCache;
use crate::crypto::{NetworkInfo, PublicKeys, Signature, SignatureShare, coin_value, digest};
use crate::id::{IdPart, ProtocolKind, statement};
use crate::wire::SnapshotError;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step, wire};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const DST_PERMUTATION: &[u8] = b"replication/mvba/permutation/v1";

/// A proposal with its consistent-broadcast proof (over `digest`, the value's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    #[serde(with = "crate::wire::bytes")]
    pub value: Vec<u8>,
    #[serde(with = "crate::wire::digest")]
    pub digest: [u8; 32],
    pub proof: Signature,
}

impl Proposal {
    fn digest_proof(&self) -> DigestProof {
        DigestProof { digest: self.digest, proof: self.proof.clone() }
    }
}

/// A consistent-broadcast proof without its value: the digest the quorum signed and the
/// signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestProof {
    #[serde(with = "crate::wire::digest")]
    pub digest: [u8; 32],
    pub proof: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MvbaMessage {
    Cbc {
        proposer: PartyId,
        message: CbcMessage,
    },
    /// The sender delivered these `n-t` proposals (distinct proposers, each with its proof).
    Committed {
        proposals: Vec<(PartyId, DigestProof)>,
    },
    Coin(SignatureShare),
    /// The voter's view of candidate `index`: the digest and proof of its proposal, if held.
    Vote {
        index: u64,
        candidate: PartyId,
        proposal: Option<DigestProof>,
    },
    Abba {
        index: u64,
        message: AbbaMessage,
    },
    /// The sender decided `candidate`'s proposal, known to it by digest only: whoever holds the
    /// value answers (once per asker and agreement).
    Want {
        candidate: PartyId,
        #[serde(with = "crate::wire::digest")]
        digest: [u8; 32],
    },
    /// The answer to a `Want`: the value, which the asker checks against the digest it asked
    /// for (it has the proof already, from the decision).
    Value {
        candidate: PartyId,
        #[serde(with = "crate::wire::bytes")]
        value: Vec<u8>,
    },
}

/// A proposal known by digest only, asked for with `Want`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Wanted {
    candidate: PartyId,
    #[serde(with = "crate::wire::digest")]
    digest: [u8; 32],
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

/// The id of the binary agreement on candidate `index` of the agreement `id`.
pub fn abba_id(id: &InstanceId, index: u64) -> InstanceId {
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

/// Whether `proof` is `proposer`'s consistent-broadcast proof for the value with `digest`. No
/// predicate check is needed: the proof's quorum includes an honest party, which echoed only a
/// value passing the predicate.
fn digest_proof_valid(public: &PublicKeys, id: &InstanceId, proposer: PartyId, p: &DigestProof) -> bool {
    verify_proof(public, &cbc_id(id, proposer), &p.digest, &p.proof)
}

/// Checks an agreed value against the public keys alone: the coin fixes the candidate at
/// `index`, the ABBA certificate says `1` for it, and the value is that candidate's
/// consistently broadcast (digest-signed) value and passes the predicate.
pub fn verify_output(public: &PublicKeys, id: &InstanceId, predicate: &Validator, out: &MvbaOutput) -> bool {
    let order = permutation(&out.permutation_coin, public.n);
    let proposal = DigestProof { digest: digest(&out.value), proof: out.proposal_proof.clone() };
    public.coin.verify(DST_PERMUTATION, &permutation_statement(id), &out.permutation_coin)
        && order.get(out.index as usize) == Some(&out.proposer)
        && out.decision.value
        && crate::agreement::binary::verify_decision(public, &abba_id(id, out.index), &out.decision)
        && digest_proof_valid(public, id, out.proposer, &proposal)
        && predicate(&out.value)
}

/// The external proof for voting `1` on candidate `index`: the coin fixing the order, the
/// candidate it puts at `index`, and the digest of that candidate's proposal with its
/// consistent-broadcast proof (not the value: that travels only in the broadcast and in answers
/// to `Want`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateProof {
    pub coin: Signature,
    pub candidate: PartyId,
    #[serde(with = "crate::wire::digest")]
    pub digest: [u8; 32],
    pub proof: Signature,
}

impl CandidateProof {
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        // The sender is irrelevant here: the proof is checked, not blamed, by the caller.
        wire::decode(0, bytes).ok()
    }
}

/// ABBA's predicate for `1` on candidate `index`: the coin, the candidate's position in its
/// order, and the consistent-broadcast proof over the digest. The external predicate is not
/// run again: the proof is a quorum certificate of `ceil((n+t+1)/2)` parties, which include an
/// honest one, and honest parties echo only values passing the predicate. Verified proofs are
/// remembered (by digest, at most [`VERIFIED_PROOFS`]): the same proof travels in many votes,
/// and a Byzantine peer can make any number of distinct valid ones.
fn candidate_validator(public: PublicKeys, id: InstanceId, index: u64) -> ProofValidator {
    let verified = VerifiedCache::with_limit(VERIFIED_PROOFS);
    Arc::new(move |bytes: &[u8]| {
        let d = digest(bytes);
        if verified.contains(&d) {
            return true;
        }
        let ok = CandidateProof::decode(bytes).is_some_and(|p| {
            public.coin.verify(DST_PERMUTATION, &permutation_statement(&id), &p.coin)
                && permutation(&p.coin, public.n).get(index as usize) == Some(&p.candidate)
                && digest_proof_valid(&public, &id, p.candidate, &DigestProof { digest: p.digest, proof: p.proof })
        });
        if ok {
            verified.remember(d);
        }
        ok
    })
}

/// Verified candidate proofs remembered per ABBA instance before the memory is cleared.
const VERIFIED_PROOFS: usize = 64;

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
    /// Proofs of proposals learned from valid `Committed` messages (values perhaps not held).
    #[serde(default)]
    proven: BTreeMap<PartyId, DigestProof>,
    coin_shares: ShareSet,
    sent_coin: bool,
    coin: Option<Signature>,
    order: Option<Vec<PartyId>>,
    /// Votes per candidate index, by voter: (candidate named, proposal if any).
    votes: BTreeMap<u64, BTreeMap<PartyId, (PartyId, bool)>>,
    /// A valid proposal digest and proof seen in a vote, per candidate index.
    vote_proposals: BTreeMap<u64, DigestProof>,
    /// Current candidate index.
    index: u64,
    voted: BTreeSet<u64>,
    abba_input: BTreeSet<u64>,
    abbas: BTreeMap<u64, BinaryAgreement>,
    /// ABBA decisions not yet acted upon.
    decisions: BTreeMap<u64, AbbaDecision>,
    output: Option<MvbaOutput>,
    /// The digest of the output's value.
    #[serde(with = "crate::wire::opt_digest")]
    output_digest: Option<[u8; 32]>,
    /// The proposal a `1`-decision named and this party asked for with `Want`, not holding its
    /// value.
    wanted: Option<Wanted>,
    /// The value of `wanted`, once a peer answered with it.
    #[serde(with = "crate::wire::opt_bytes")]
    fetched: Option<Vec<u8>>,
    /// Parties whose `Want` this party answered (one answer each: a faulty party cannot make
    /// it send more than one value per peer and agreement).
    answered: BTreeSet<PartyId>,
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
            proven: BTreeMap::new(),
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
            output_digest: None,
            wanted: None,
            fetched: None,
            answered: BTreeSet::new(),
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
            let validator = candidate_validator(info.public.clone(), self.id.clone(), index);
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
        let (info, id) = (self.info.clone(), self.id.clone());
        self.abbas.entry(index).or_insert_with(|| {
            let validator = candidate_validator(info.public.clone(), id.clone(), index);
            BinaryAgreement::new(info, abba_id(&id, index), Some(validator))
        })
    }

    fn candidate_proof(&self, candidate: PartyId, proposal: DigestProof) -> Option<Vec<u8>> {
        let coin = self.coin.clone()?;
        wire::encode(&CandidateProof { coin, candidate, digest: proposal.digest, proof: proposal.proof }).ok()
    }

    /// The value of `candidate`'s proposal with digest `value_digest`, if this party holds it:
    /// delivered, echoed, fetched or output.
    fn held_value(&self, candidate: PartyId, value_digest: &[u8; 32]) -> Option<&[u8]> {
        if let Some(p) = self.delivered.get(&candidate)
            && p.digest == *value_digest
        {
            return Some(&p.value);
        }
        if let Some(value) = self.cbcs.get(candidate).and_then(|cbc| cbc.echoed_value(value_digest)) {
            return Some(value);
        }
        if self.wanted == Some(Wanted { candidate, digest: *value_digest })
            && let Some(value) = &self.fetched
        {
            return Some(value);
        }
        self.output
            .as_ref()
            .filter(|out| out.proposer == candidate && self.output_digest == Some(*value_digest))
            .map(|out| out.value.as_slice())
    }

    fn lift_abba(&mut self, index: u64, child: Step<AbbaMessage, AbbaDecision>, step: &mut MvbaStep) {
        for decision in step.absorb(child, |message| MvbaMessage::Abba { index, message }) {
            self.decisions.insert(index, decision);
        }
    }

    fn lift_cbc(&mut self, proposer: PartyId, child: Step<CbcMessage, CbcOutput>, step: &mut MvbaStep) {
        for out in step.absorb(child, |message| MvbaMessage::Cbc { proposer, message }) {
            self.delivered.insert(proposer, Proposal { value: out.value, digest: out.digest, proof: out.proof });
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
                let proposals = self.delivered.iter().take(n_t).map(|(p, d)| (*p, d.digest_proof())).collect();
                step.broadcast(MvbaMessage::Committed { proposals });
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
                let proposal = self.held_proof(candidate);
                step.broadcast(MvbaMessage::Vote { index: k, candidate, proposal });
            }
            let votes = self.votes.get(&k).map_or(0, |v| v.len());
            if !self.abba_input.contains(&k) && votes >= n_t {
                self.abba_input.insert(k);
                let proposal = self.held_proof(candidate).or_else(|| self.vote_proposals.get(&k).cloned());
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
                .map(|p| DigestProof { digest: p.digest, proof: p.proof })
                .or_else(|| self.delivered.get(&candidate).map(Proposal::digest_proof));
            let (Some(proposal), Some(coin)) = (proposal, self.coin.clone()) else {
                // A 1-decision always carries a valid proof for its candidate.
                return;
            };
            let Some(value) = self.held_value(candidate, &proposal.digest).map(<[u8]>::to_vec) else {
                // Decided by digest only: ask everyone. At least t+1 honest parties echoed the
                // value and keep it; a `Value` answer or the candidate's `Final` completes this.
                if self.wanted.is_none() {
                    self.wanted = Some(Wanted { candidate, digest: proposal.digest });
                    step.broadcast(MvbaMessage::Want { candidate, digest: proposal.digest });
                }
                return;
            };
            let out = MvbaOutput {
                value,
                proposer: candidate,
                proposal_proof: proposal.proof,
                permutation_coin: coin,
                index: k,
                decision,
            };
            self.output = Some(out.clone());
            self.output_digest = Some(proposal.digest);
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

    /// After the decision only the output, the proposals held and the consistent broadcasts are
    /// kept: parties still deciding may need this party's echoes (and its own proposal's
    /// completion) to collect `n-t` proposals, and a proposal's value to answer a `Want`.
    /// Everything else they get from the certificates already sent.
    fn prune(&mut self) {
        self.abba_rounds_used = self.abbas.values().filter_map(|a| a.decision().map(|d| d.round)).collect();
        self.votes.clear();
        self.vote_proposals.clear();
        self.abbas.clear();
        self.decisions.clear();
        self.coin_shares = ShareSet::default();
        self.committed.clear();
        self.proven.clear();
        self.fetched = None;
    }

    /// The digest and proof of `candidate`'s proposal, if delivered here or proven by a commit.
    fn held_proof(&self, candidate: PartyId) -> Option<DigestProof> {
        self.delivered.get(&candidate).map(Proposal::digest_proof).or_else(|| self.proven.get(&candidate).cloned())
    }

    /// Counts `from` as committed if it names `n-t` distinct proposals with valid proofs, and
    /// keeps those proofs; anything less is its fault.
    fn handle_committed(&mut self, from: PartyId, proposals: Vec<(PartyId, DigestProof)>, step: &mut MvbaStep) {
        // After the output commitments serve nothing (a delivered round's agreement still gets
        // slow peers' messages): no proof is checked for them.
        if self.committed.contains(&from) || self.output.is_some() {
            return;
        }
        let n = self.info.n();
        let proposers: BTreeSet<PartyId> = proposals.iter().map(|(p, _)| *p).collect();
        if proposers.len() != proposals.len()
            || proposers.len() < self.info.quorum()
            || proposers.iter().any(|p| *p >= n)
        {
            step.fault(Fault::new(from, FaultKind::InvalidJustification));
            return;
        }
        for (proposer, p) in &proposals {
            // An honest proposer combines one proof and sends it to all: most arrive here already
            // checked (or delivered). Another valid one (a Byzantine proposer's) is checked.
            if self.held_proof(*proposer).as_ref() != Some(p)
                && !digest_proof_valid(&self.info.public, &self.id, *proposer, p)
            {
                step.fault(Fault::new(from, FaultKind::InvalidSignature));
                return;
            }
        }
        for (proposer, p) in proposals {
            self.proven.entry(proposer).or_insert(p);
        }
        self.committed.insert(from);
    }

    /// Answers a peer's `Want` with the value, if held, once per peer.
    fn answer_want(&mut self, from: PartyId, candidate: PartyId, value_digest: [u8; 32], step: &mut MvbaStep) {
        if from == self.info.id || self.answered.contains(&from) {
            return;
        }
        let Some(value) = self.held_value(candidate, &value_digest).map(<[u8]>::to_vec) else {
            return;
        };
        self.answered.insert(from);
        step.send(from, MvbaMessage::Value { candidate, value });
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
            MvbaMessage::Committed { proposals } => self.handle_committed(from, proposals, step),
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
                    // The proposer's one proof arrives in many votes: check each one once.
                    let known = self.vote_proposals.get(&index) == Some(&p)
                        || self.delivered.get(&candidate).is_some_and(|d| d.digest == p.digest && d.proof == p.proof);
                    if !known && !digest_proof_valid(&self.info.public, &self.id, candidate, &p) {
                        step.fault(Fault::new(from, FaultKind::InvalidSignature));
                        return;
                    }
                    self.vote_proposals.entry(index).or_insert(p);
                }
                self.votes.entry(index).or_default().insert(from, (candidate, has));
            }
            MvbaMessage::Want { candidate, digest: value_digest } => {
                if candidate >= n {
                    step.fault(Fault::new(from, FaultKind::ImpossibleInstance));
                    return;
                }
                self.answer_want(from, candidate, value_digest, step);
            }
            MvbaMessage::Value { candidate, value } => {
                // Only an answer to our own `Want` counts; honest parties send no other (a late
                // or unsolicited one is ignored without blame).
                let Some(wanted) = self.wanted else { return };
                if candidate != wanted.candidate || self.fetched.is_some() || self.output.is_some() {
                    return;
                }
                if digest(&value) != wanted.digest {
                    // Honest parties answer only with a value of the digest asked for.
                    step.fault(Fault::new(from, FaultKind::InvalidValue));
                    return;
                }
                self.fetched = Some(value);
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
        // Decided: the consistent broadcasts still serve parties collecting proposals, and a
        // `Want` is still answered.
        if self.output.is_some() && !matches!(msg, MvbaMessage::Cbc { .. } | MvbaMessage::Want { .. }) {
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
