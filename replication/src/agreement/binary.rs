//! Binary Byzantine agreement, ABBA (Cachin-Kursawe-Shoup, PODC 2000), with the threshold coin
//! and the validated variant (a vote for `1` must carry an external proof).
//!
//! Round 0 is pre-processing: each party signs its input with the `t+1` key; `t+1` shares on `b`
//! justify a first pre-vote for `b`. Each round `r >= 1`:
//! - pre-vote `b`, justified by round `r-1`'s evidence: a main-vote for `b` (its `n-t` signature
//!   on pre-votes for `b`: *hard*), or the `n-t` signature on abstaining main-votes plus the
//!   round's coin with value `b` (*soft*);
//! - on `n-t` justified pre-votes: main-vote `b` if all are for `b` (justified by their combined
//!   `n-t` signature), else abstain (justified by one pre-vote for each value);
//! - on `n-t` main-votes: all for `b` decides `b` (the combined signature is the decision
//!   certificate, sent to all); otherwise release the coin share for `r`.
//!
//! The coin of round `r` is revealed only after `n-t` main-votes of round `r`: by then the only
//! value that can be carried into round `r+1` by a hard pre-vote is fixed, so the adversary cannot
//! steer votes against the coin (the known attack on protocols that reveal it earlier).

use crate::crypto::share_set::ShareSet;
use crate::crypto::{CombineError, NetworkInfo, PublicKeys, Signature, SignatureShare, coin_value};
use crate::id::statement;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const DST_PRE_PROCESS: &[u8] = b"replication/abba/pre-process/v1";
const DST_PRE_VOTE: &[u8] = b"replication/abba/pre-vote/v1";
const DST_MAIN_VOTE: &[u8] = b"replication/abba/main-vote/v1";
const DST_COIN: &[u8] = b"replication/abba/coin/v1";

/// Messages for rounds further ahead than this are ignored (not stored): it bounds memory per
/// peer, and honest parties get that far ahead without deciding only with probability about
/// `2^-MAX_FUTURE_ROUNDS` (the decision certificate then brings this party along).
pub const MAX_FUTURE_ROUNDS: u64 = 16;

/// The external validity predicate for `1` in the validated variant.
pub type ProofValidator = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Why a pre-vote for a value in a round is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreVoteJustification {
    /// Round 1: the `t+1` signature on pre-processing votes for the value.
    Initial(Signature),
    /// A main-vote of the previous round for the value: the `n-t` signature on its pre-votes.
    Hard(Signature),
    /// All main-votes of the previous round abstained: their `n-t` signature, and the coin of
    /// the previous round (whose value is the pre-voted one).
    Soft { abstain: Signature, coin: Signature },
}

/// A pre-vote with what justifies it (and, for `1` in the validated variant, the proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JustifiedPreVote {
    pub value: bool,
    pub justification: PreVoteJustification,
    #[serde(with = "crate::wire::opt_bytes")]
    pub proof: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainVote {
    /// All `n-t` pre-votes seen were for `value`; their combined signature.
    Value {
        value: bool,
        justification: Signature,
        #[serde(with = "crate::wire::opt_bytes")]
        proof: Option<Vec<u8>>,
    },
    /// Pre-votes for both values were seen.
    Abstain { zero: Box<JustifiedPreVote>, one: Box<JustifiedPreVote> },
}

impl MainVote {
    fn code(&self) -> u8 {
        match self {
            MainVote::Value { value: false, .. } => 0,
            MainVote::Value { value: true, .. } => 1,
            MainVote::Abstain { .. } => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbbaMessage {
    PreProcess {
        value: bool,
        share: SignatureShare,
        #[serde(with = "crate::wire::opt_bytes")]
        proof: Option<Vec<u8>>,
    },
    PreVote {
        round: u64,
        vote: JustifiedPreVote,
        share: SignatureShare,
    },
    MainVote {
        round: u64,
        vote: MainVote,
        share: SignatureShare,
    },
    Coin {
        round: u64,
        share: SignatureShare,
    },
    /// The decision certificate: the `n-t` signature on main-votes for `value` in `round`.
    Decide {
        round: u64,
        value: bool,
        signature: Signature,
        #[serde(with = "crate::wire::opt_bytes")]
        proof: Option<Vec<u8>>,
    },
}

/// The decision with its transferable certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbbaDecision {
    pub value: bool,
    pub round: u64,
    pub signature: Signature,
    /// For `1` in the validated variant: the external proof.
    #[serde(with = "crate::wire::opt_bytes")]
    pub proof: Option<Vec<u8>>,
}

pub type AbbaStep = Step<AbbaMessage, AbbaDecision>;

/// Input: the value and, for `1` in the validated variant, its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbbaInput {
    pub value: bool,
    pub proof: Option<Vec<u8>>,
}

fn pre_process_statement(id: &InstanceId, value: bool) -> Vec<u8> {
    statement(&[&id.to_bytes(), &[value as u8]])
}
fn pre_vote_statement(id: &InstanceId, round: u64, value: bool) -> Vec<u8> {
    statement(&[&id.to_bytes(), &round.to_be_bytes(), &[value as u8]])
}
fn main_vote_statement(id: &InstanceId, round: u64, code: u8) -> Vec<u8> {
    statement(&[&id.to_bytes(), &round.to_be_bytes(), &[code]])
}
fn coin_statement(id: &InstanceId, round: u64) -> Vec<u8> {
    statement(&[&id.to_bytes(), &round.to_be_bytes()])
}

/// The coin bit of a combined coin signature.
pub fn coin_bit(signature: &Signature) -> bool {
    coin_value(signature)[0] & 1 == 1
}

/// A pre-vote of `round` for `vote`, signed by `info`'s party. Any justification valid for the
/// round serves any party, so a Byzantine one can sign one it saw elsewhere (the simulator's
/// adaptive coin adversary does).
pub fn signed_pre_vote(info: &NetworkInfo, id: &InstanceId, round: u64, vote: JustifiedPreVote) -> AbbaMessage {
    let share = info.secret.vote.sign(DST_PRE_VOTE, &pre_vote_statement(id, round, vote.value));
    AbbaMessage::PreVote { round, vote, share }
}

/// A main-vote of `round`, signed by `info`'s party (see [`signed_pre_vote`]).
pub fn signed_main_vote(info: &NetworkInfo, id: &InstanceId, round: u64, vote: MainVote) -> AbbaMessage {
    let share = info.secret.vote.sign(DST_MAIN_VOTE, &main_vote_statement(id, round, vote.code()));
    AbbaMessage::MainVote { round, vote, share }
}

/// `info`'s party's share of the coin of `round`.
pub fn coin_share(info: &NetworkInfo, id: &InstanceId, round: u64) -> SignatureShare {
    info.secret.coin.sign(DST_COIN, &coin_statement(id, round))
}

/// The coin of `round` from shares of it: any `t+1` valid ones determine it, so whoever holds
/// them knows the coin, the network (the adversary) included.
pub fn combine_coin(
    public: &PublicKeys,
    id: &InstanceId,
    round: u64,
    shares: &[SignatureShare],
) -> Result<bool, CombineError> {
    public.coin.combine(DST_COIN, &coin_statement(id, round), shares).map(|c| coin_bit(&c.value))
}

/// Checks a decision certificate against the public keys alone.
pub fn verify_decision(public: &PublicKeys, id: &InstanceId, decision: &AbbaDecision) -> bool {
    public.vote.verify(
        DST_MAIN_VOTE,
        &main_vote_statement(id, decision.round, decision.value as u8),
        &decision.signature,
    )
}

/// A main-vote for a value seen in a round: it justifies a hard pre-vote in the next one.
#[derive(Clone, Serialize, Deserialize)]
struct HardJustification {
    value: bool,
    signature: Signature,
    #[serde(with = "crate::wire::opt_bytes")]
    proof: Option<Vec<u8>>,
}

#[derive(Default, Serialize, Deserialize)]
struct RoundState {
    /// Justified pre-votes counted, by sender.
    pre_votes: BTreeMap<PartyId, bool>,
    pre_vote_shares: [ShareSet; 2],
    /// One justified pre-vote per value (to justify abstaining).
    examples: [Option<JustifiedPreVote>; 2],
    main_votes: BTreeMap<PartyId, u8>,
    main_vote_shares: [ShareSet; 3],
    /// A hard justification for the next round, from a main-vote for a value.
    hard: Option<HardJustification>,
    coin_shares: ShareSet,
    sent_pre_vote: bool,
    sent_main_vote: bool,
    /// `n-t` main-votes seen without deciding: the coin share is out.
    finished: bool,
    coin: Option<Signature>,
}

/// The validator of an instance decoded from a snapshot until `rebind` supplies the real one:
/// the validated variant accepting no proof (fail-closed).
fn unbound_proof_validator() -> Option<ProofValidator> {
    Some(Arc::new(|_: &[u8]| false))
}

/// Serializable for snapshots: keys and validator are skipped and supplied again by
/// `rebind`.
#[derive(Serialize, Deserialize)]
pub struct BinaryAgreement {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    #[serde(skip, default = "unbound_proof_validator")]
    validator: Option<ProofValidator>,
    input: Option<bool>,
    /// A valid proof for `1`, once seen (validated variant).
    #[serde(with = "crate::wire::opt_bytes")]
    proof: Option<Vec<u8>>,
    pre_process: BTreeMap<PartyId, bool>,
    pre_process_shares: [ShareSet; 2],
    /// Current round; 0 while pre-processing.
    round: u64,
    rounds: BTreeMap<u64, RoundState>,
    /// Parties caught sending invalid shares: ignored from then on.
    banned: BTreeSet<PartyId>,
    decision: Option<AbbaDecision>,
    /// Coin shares released: (round, main-votes of that round held at the time), for the
    /// coin-timing check.
    coin_released: Vec<(u64, usize)>,
}

impl BinaryAgreement {
    /// `validator`: `Some` for the validated variant (a `1` needs a proof that passes it).
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, validator: Option<ProofValidator>) -> Self {
        BinaryAgreement {
            info,
            id,
            validator,
            input: None,
            proof: None,
            pre_process: BTreeMap::new(),
            pre_process_shares: Default::default(),
            round: 0,
            rounds: BTreeMap::new(),
            banned: BTreeSet::new(),
            decision: None,
            coin_released: Vec::new(),
        }
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Supplies keys and validator to an instance decoded from a snapshot (what [`Self::new`]
    /// was given).
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>, validator: Option<ProofValidator>) {
        self.info = info.clone();
        self.validator = validator;
    }

    pub fn decision(&self) -> Option<&AbbaDecision> {
        self.decision.as_ref()
    }

    /// Rounds holding state here (bounded by the future window).
    pub fn rounds_held(&self) -> usize {
        self.rounds.len()
    }

    /// The round this party is in (or decided in).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// True once this party has an input (or decided).
    pub fn has_input(&self) -> bool {
        self.input.is_some() || self.decision.is_some()
    }

    /// Rounds whose coin share this party released, each with the number of that round's
    /// main-votes it held then (the simulator checks it is at least `n-t`).
    pub fn coin_released(&self) -> &[(u64, usize)] {
        &self.coin_released
    }

    fn proof_ok(&self, value: bool, proof: &Option<Vec<u8>>) -> bool {
        match (&self.validator, value) {
            (Some(valid), true) => proof.as_deref().is_some_and(|p| valid(p)),
            _ => true,
        }
    }

    fn learn_proof(&mut self, value: bool, proof: &Option<Vec<u8>>) {
        if value && self.proof.is_none() && self.validator.is_some() {
            self.proof = proof.clone();
        }
    }

    fn our_proof(&self, value: bool) -> Option<Vec<u8>> {
        if value && self.validator.is_some() { self.proof.clone() } else { None }
    }

    fn verify_pre_vote(&self, round: u64, vote: &JustifiedPreVote) -> bool {
        if round == 0 || !self.proof_ok(vote.value, &vote.proof) {
            return false;
        }
        let public = &self.info.public;
        match &vote.justification {
            PreVoteJustification::Initial(sig) => {
                round == 1
                    && public.pre_process.verify(DST_PRE_PROCESS, &pre_process_statement(&self.id, vote.value), sig)
            }
            PreVoteJustification::Hard(sig) => {
                round > 1 && public.vote.verify(DST_PRE_VOTE, &pre_vote_statement(&self.id, round - 1, vote.value), sig)
            }
            PreVoteJustification::Soft { abstain, coin } => {
                round > 1
                    && coin_bit(coin) == vote.value
                    && public.coin.verify(DST_COIN, &coin_statement(&self.id, round - 1), coin)
                    && public.vote.verify(DST_MAIN_VOTE, &main_vote_statement(&self.id, round - 1, 2), abstain)
            }
        }
    }

    fn verify_main_vote(&self, round: u64, vote: &MainVote) -> bool {
        match vote {
            MainVote::Value { value, justification, proof } => {
                self.proof_ok(*value, proof)
                    && self.info.public.vote.verify(
                        DST_PRE_VOTE,
                        &pre_vote_statement(&self.id, round, *value),
                        justification,
                    )
            }
            MainVote::Abstain { zero, one } => {
                !zero.value && one.value && self.verify_pre_vote(round, zero) && self.verify_pre_vote(round, one)
            }
        }
    }

    fn ban(&mut self, parties: &[PartyId], kind: FaultKind, step: &mut AbbaStep) {
        for &p in parties {
            step.fault(Fault::new(p, kind));
            self.banned.insert(p);
            self.pre_process.remove(&p);
            for s in &mut self.pre_process_shares {
                s.remove(p);
            }
            for state in self.rounds.values_mut() {
                state.pre_votes.remove(&p);
                state.main_votes.remove(&p);
                for s in &mut state.pre_vote_shares {
                    s.remove(p);
                }
                for s in &mut state.main_vote_shares {
                    s.remove(p);
                }
                state.coin_shares.remove(p);
            }
        }
    }

    /// Rounds a message may name: from the current one up to the future window. Earlier rounds
    /// are complete here and need nothing more, except the coin shares of the round whose coin
    /// this party still waits for.
    fn round_acceptable(&self, round: u64) -> bool {
        round >= 1 && round + 1 >= self.round && round <= self.round + MAX_FUTURE_ROUNDS
    }

    fn decide(&mut self, decision: AbbaDecision, step: &mut AbbaStep) {
        if self.decision.is_some() {
            return;
        }
        step.broadcast(AbbaMessage::Decide {
            round: decision.round,
            value: decision.value,
            signature: decision.signature.clone(),
            proof: decision.proof.clone(),
        });
        self.decision = Some(decision.clone());
        self.rounds.clear();
        self.pre_process.clear();
        self.pre_process_shares = Default::default();
        step.output(decision);
    }

    fn send_pre_vote(&mut self, round: u64, vote: JustifiedPreVote, step: &mut AbbaStep) {
        self.rounds.entry(round).or_default().sent_pre_vote = true;
        step.broadcast(signed_pre_vote(&self.info, &self.id, round, vote));
    }

    /// Moves the state machine as far as the votes received allow.
    fn progress(&mut self, step: &mut AbbaStep) {
        while self.decision.is_none() && self.try_advance(step) {}
    }

    fn try_advance(&mut self, step: &mut AbbaStep) -> bool {
        let (n_t, t) = (self.info.quorum(), self.info.t());
        if self.round == 0 {
            if self.input.is_none() || self.pre_process.len() < n_t {
                return false;
            }
            let ones = self.pre_process.values().filter(|v| **v).count();
            let zeros = self.pre_process.len() - ones;
            let order = if ones >= zeros { [true, false] } else { [false, true] };
            for value in order {
                let count = if value { ones } else { zeros };
                if count <= t {
                    continue;
                }
                let msg = pre_process_statement(&self.id, value);
                let (sig, faulty) = self.pre_process_shares[value as usize].combine(
                    &*self.info.public.pre_process,
                    DST_PRE_PROCESS,
                    &msg,
                );
                self.ban(&faulty, FaultKind::InvalidSignatureShare, step);
                if let Some(sig) = sig {
                    let proof = self.our_proof(value);
                    if value && proof.is_none() && self.validator.is_some() {
                        continue;
                    }
                    self.round = 1;
                    let vote = JustifiedPreVote { value, justification: PreVoteJustification::Initial(sig), proof };
                    self.send_pre_vote(1, vote, step);
                    return true;
                }
            }
            return false;
        }
        let r = self.round;
        let proofs = [None, self.our_proof(true)];
        let validated = self.validator.is_some();
        let id = self.id.clone();
        let info = self.info.clone();
        let state = self.rounds.entry(r).or_default();
        if !state.sent_main_vote {
            if state.pre_votes.len() < n_t {
                return false;
            }
            let ones = state.pre_votes.values().filter(|v| **v).count();
            let vote = if ones == 0 || ones == state.pre_votes.len() {
                let value = ones > 0;
                let msg = pre_vote_statement(&id, r, value);
                let (sig, faulty) =
                    state.pre_vote_shares[value as usize].combine(&*info.public.vote, DST_PRE_VOTE, &msg);
                if !faulty.is_empty() {
                    self.ban(&faulty, FaultKind::InvalidSignatureShare, step);
                    return true;
                }
                let Some(sig) = sig else { return false };
                let proof = proofs[value as usize].clone();
                MainVote::Value { value, justification: sig, proof }
            } else {
                let (Some(zero), Some(one)) = (state.examples[0].clone(), state.examples[1].clone()) else {
                    return false;
                };
                MainVote::Abstain { zero: Box::new(zero), one: Box::new(one) }
            };
            state.sent_main_vote = true;
            step.broadcast(signed_main_vote(&info, &id, r, vote));
            return true;
        }
        if !state.finished {
            if state.main_votes.len() < n_t {
                return false;
            }
            let codes: BTreeSet<u8> = state.main_votes.values().copied().collect();
            if codes.len() == 1 && !codes.contains(&2) {
                let value = codes.contains(&1);
                let msg = main_vote_statement(&id, r, value as u8);
                let (sig, faulty) =
                    state.main_vote_shares[value as usize].combine(&*info.public.vote, DST_MAIN_VOTE, &msg);
                if !faulty.is_empty() {
                    self.ban(&faulty, FaultKind::InvalidSignatureShare, step);
                    return true;
                }
                let Some(signature) = sig else { return false };
                let proof = proofs[value as usize].clone();
                self.decide(AbbaDecision { value, round: r, signature, proof }, step);
                return true;
            }
            if state.hard.is_none() {
                // All abstained: the soft justification needs their combined signature.
                let msg = main_vote_statement(&id, r, 2);
                let (sig, faulty) = state.main_vote_shares[2].combine(&*info.public.vote, DST_MAIN_VOTE, &msg);
                if !faulty.is_empty() {
                    self.ban(&faulty, FaultKind::InvalidSignatureShare, step);
                    return true;
                }
                if sig.is_none() {
                    return false;
                }
            }
            state.finished = true;
            self.coin_released.push((r, state.main_votes.len()));
            step.broadcast(AbbaMessage::Coin { round: r, share: coin_share(&info, &id, r) });
            return true;
        }
        // Round finished: enter r+1 with a hard pre-vote, or a soft one once the coin is known.
        let vote = if let Some(HardJustification { value, signature, proof }) = state.hard.clone() {
            JustifiedPreVote { value, justification: PreVoteJustification::Hard(signature), proof }
        } else {
            let (coin, faulty) = state.coin_shares.combine(&*info.public.coin, DST_COIN, &coin_statement(&id, r));
            if !faulty.is_empty() {
                self.ban(&faulty, FaultKind::InvalidCoinShare, step);
                return true;
            }
            let Some(coin) = coin else { return false };
            state.coin = Some(coin.clone());
            let Some(abstain) = state.main_vote_shares[2].combined().cloned() else {
                return false;
            };
            let value = coin_bit(&coin);
            let proof = proofs[value as usize].clone();
            if value && proof.is_none() && validated {
                // Cannot happen: an abstaining main-vote carries a justified pre-vote for 1.
                return false;
            }
            JustifiedPreVote { value, justification: PreVoteJustification::Soft { abstain, coin }, proof }
        };
        self.round = r + 1;
        // Rounds before r are no longer needed.
        self.rounds = self.rounds.split_off(&r);
        self.send_pre_vote(r + 1, vote, step);
        true
    }

    fn check_share(&mut self, from: PartyId, share: &SignatureShare, step: &mut AbbaStep) -> bool {
        if share.id != from {
            self.ban(&[from], FaultKind::ShareOfAnotherParty, step);
            return false;
        }
        true
    }

    fn handle(&mut self, from: PartyId, msg: AbbaMessage, step: &mut AbbaStep) {
        match msg {
            AbbaMessage::Decide { round, value, signature, proof } => {
                let decision = AbbaDecision { value, round, signature, proof };
                if !verify_decision(&self.info.public, &self.id, &decision) {
                    step.fault(Fault::new(from, FaultKind::InvalidSignature));
                } else if !self.proof_ok(value, &decision.proof) {
                    step.fault(Fault::new(from, FaultKind::InvalidValue));
                } else {
                    self.decide(decision, step);
                }
            }
            AbbaMessage::PreProcess { value, share, proof } => {
                if !self.check_share(from, &share, step) || self.round > 0 {
                    return;
                }
                // One per party, looked up before the proof is checked: proofs are not unique
                // (a quorum certificate's signers vary), so a peer repeating its vote with fresh
                // proofs must not cost a verification each time.
                match self.pre_process.get(&from) {
                    Some(prev) if *prev != value => step.fault(Fault::new(from, FaultKind::Equivocation)),
                    Some(_) => {}
                    None if !self.proof_ok(value, &proof) => step.fault(Fault::new(from, FaultKind::InvalidValue)),
                    None => {
                        self.learn_proof(value, &proof);
                        self.pre_process.insert(from, value);
                        self.pre_process_shares[value as usize].insert(share);
                    }
                }
            }
            AbbaMessage::PreVote { round, vote, share } => {
                if !self.check_share(from, &share, step) || !self.round_acceptable(round) {
                    return;
                }
                let known = self.rounds.get(&round).and_then(|s| s.pre_votes.get(&from).copied());
                match known {
                    Some(prev) if prev != vote.value => {
                        step.fault(Fault::new(from, FaultKind::Equivocation));
                        return;
                    }
                    Some(_) => return,
                    None => {}
                }
                if !self.verify_pre_vote(round, &vote) {
                    step.fault(Fault::new(from, FaultKind::InvalidJustification));
                    return;
                }
                self.learn_proof(vote.value, &vote.proof);
                let state = self.rounds.entry(round).or_default();
                state.pre_votes.insert(from, vote.value);
                state.pre_vote_shares[vote.value as usize].insert(share);
                let slot = &mut state.examples[vote.value as usize];
                if slot.is_none() {
                    *slot = Some(vote);
                }
            }
            AbbaMessage::MainVote { round, vote, share } => {
                if !self.check_share(from, &share, step) || !self.round_acceptable(round) {
                    return;
                }
                let code = vote.code();
                let known = self.rounds.get(&round).and_then(|s| s.main_votes.get(&from).copied());
                match known {
                    Some(prev) if prev != code => {
                        step.fault(Fault::new(from, FaultKind::Equivocation));
                        return;
                    }
                    Some(_) => return,
                    None => {}
                }
                if !self.verify_main_vote(round, &vote) {
                    step.fault(Fault::new(from, FaultKind::InvalidJustification));
                    return;
                }
                match &vote {
                    MainVote::Value { value, proof, .. } => self.learn_proof(*value, proof),
                    MainVote::Abstain { one, .. } => self.learn_proof(true, &one.proof),
                }
                let state = self.rounds.entry(round).or_default();
                state.main_votes.insert(from, code);
                state.main_vote_shares[code as usize].insert(share);
                if let MainVote::Value { value, justification, proof } = vote
                    && state.hard.is_none()
                {
                    state.hard = Some(HardJustification { value, signature: justification, proof });
                }
            }
            AbbaMessage::Coin { round, share } => {
                if !self.check_share(from, &share, step) || !self.round_acceptable(round) {
                    return;
                }
                self.rounds.entry(round).or_default().coin_shares.insert(share);
            }
        }
    }
}

impl Protocol for BinaryAgreement {
    type Input = AbbaInput;
    type Message = AbbaMessage;
    type Output = AbbaDecision;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, input: AbbaInput, _rng: &mut dyn RngCore) -> AbbaStep {
        let mut step = Step::new();
        if self.input.is_some() || self.decision.is_some() {
            return step;
        }
        // A 1 without a valid proof is not a legal input in the validated variant: vote 0.
        let value = input.value && self.proof_ok(true, &input.proof);
        self.learn_proof(value, &input.proof);
        self.input = Some(value);
        let share = self.info.secret.pre_process.sign(DST_PRE_PROCESS, &pre_process_statement(&self.id, value));
        step.broadcast(AbbaMessage::PreProcess { value, share, proof: self.our_proof(value) });
        self.progress(&mut step);
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: AbbaMessage, _rng: &mut dyn RngCore) -> AbbaStep {
        let mut step = Step::new();
        if self.decision.is_some() || self.banned.contains(&from) {
            return step;
        }
        self.handle(from, msg, &mut step);
        self.progress(&mut step);
        step
    }

    fn terminated(&self) -> bool {
        self.decision.is_some()
    }
}

impl BinaryAgreement {
    /// The cluster's public keys (to check certificates this instance produced).
    pub fn public_keys(&self) -> PublicKeys {
        self.info.public.clone()
    }
}
