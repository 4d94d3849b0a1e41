//! Verifiable consistent broadcast (echo broadcast): the sender sends `m`, parties answer with a
//! signature share on `(id, digest(m))`, and the sender combines `ceil((n+t+1)/2)` of them into a
//! quorum certificate ([`crate::crypto::quorum`]) that it sends with `m` to the parties it did not
//! hear from, and alone (with `m`'s digest) to those whose shares it combined: they signed `m`, so
//! they hold it, and the value is not sent twice to most parties. Two such quorums meet in an
//! honest party, which signs only one value per instance, so `(digest(m), signature)` is a
//! transferable proof that no other value can be delivered for `id`. The proof is over the
//! digest so that it can travel (and be checked) without the value: the agreement built on top
//! carries only digests in its votes and fetches a value it lacks from a party holding it.
//!
//! A quorum of `ceil((n+t+1)/2)` includes an honest party, and honest parties echo only values
//! that pass the validator, so a valid proof also shows that the value passes it.

use crate::crypto::{NetworkInfo, PublicKeys, Signature, SignatureShare, digest};
use crate::id::statement;
use crate::{Fault, FaultKind, InstanceId, PartyId, Protocol, Step};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const DST: &[u8] = b"replication/consistent-broadcast/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CbcMessage {
    Send(#[serde(with = "crate::wire::bytes")] Vec<u8>),
    Echo(SignatureShare),
    /// The value with its proof; anyone may forward it.
    Final(#[serde(with = "crate::wire::bytes")] Vec<u8>, Signature),
    /// The proof alone, with the digest of the value it is for: sent to parties whose echo the
    /// proof combined, who hold that value. A party that does not hold it ignores this (only a
    /// Byzantine sender sends it so).
    Proof(#[serde(with = "crate::wire::digest")] [u8; 32], Signature),
}

/// A delivered value and its transferable proof (over `digest`, the value's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CbcOutput {
    #[serde(with = "crate::wire::bytes")]
    pub value: Vec<u8>,
    #[serde(with = "crate::wire::digest")]
    pub digest: [u8; 32],
    pub proof: Signature,
}

pub type CbcStep = Step<CbcMessage, CbcOutput>;

/// External validity: honest parties sign only values that pass it.
pub type Validator = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// The validator of an instance decoded from a snapshot until `rebind` supplies the real one:
/// accepts nothing (fail-closed).
pub(crate) fn unbound_validator() -> Validator {
    Arc::new(|_: &[u8]| false)
}

fn signed_statement(id: &InstanceId, value_digest: &[u8; 32]) -> Vec<u8> {
    statement(&[&id.to_bytes(), value_digest])
}

/// Checks a consistent-broadcast proof for the value with digest `value_digest` against the
/// public keys alone (the value itself is not needed).
pub fn verify_proof(public: &PublicKeys, id: &InstanceId, value_digest: &[u8; 32], proof: &Signature) -> bool {
    public.echo.verify(DST, &signed_statement(id, value_digest), proof)
}

/// [`verify_proof`] for a value at hand.
pub fn verify_value_proof(public: &PublicKeys, id: &InstanceId, value: &[u8], proof: &Signature) -> bool {
    verify_proof(public, id, &digest(value), proof)
}

/// Serializable for snapshots: keys and validator are skipped and supplied again by
/// `rebind`.
#[derive(Serialize, Deserialize)]
pub struct ConsistentBroadcast {
    #[serde(skip, default = "crate::crypto::unbound_info")]
    info: Arc<NetworkInfo>,
    id: InstanceId,
    sender: PartyId,
    #[serde(skip, default = "unbound_validator")]
    validator: Validator,
    /// Digest of the value we signed (at most one per instance).
    echoed: Option<[u8; 32]>,
    /// The value we signed, kept until this instance delivers (its parent keeps the output): a
    /// proof needs a quorum that includes at least `t+1` honest parties like this one, so
    /// whoever learns only the digest (from a proof in an agreement) can always fetch the value
    /// from one of them.
    #[serde(with = "crate::wire::opt_bytes")]
    echoed_value: Option<Vec<u8>>,
    /// The sender's own value, while it collects shares.
    #[serde(with = "crate::wire::opt_bytes")]
    proposing: Option<Vec<u8>>,
    shares: BTreeMap<PartyId, SignatureShare>,
    finalized: bool,
    delivered: bool,
}

impl ConsistentBroadcast {
    pub fn new(info: Arc<NetworkInfo>, id: InstanceId, sender: PartyId, validator: Validator) -> Self {
        ConsistentBroadcast {
            info,
            id,
            sender,
            validator,
            echoed: None,
            echoed_value: None,
            proposing: None,
            shares: BTreeMap::new(),
            finalized: false,
            delivered: false,
        }
    }

    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// Supplies keys and validator to an instance decoded from a snapshot (what [`Self::new`]
    /// was given).
    pub(crate) fn rebind(&mut self, info: &Arc<NetworkInfo>, validator: &Validator) {
        self.info = info.clone();
        self.validator = validator.clone();
    }

    fn handle_echo(&mut self, from: PartyId, share: SignatureShare, step: &mut CbcStep) {
        if self.info.id != self.sender || self.finalized {
            return;
        }
        let Some(value) = self.proposing.clone() else {
            return;
        };
        if share.id != from {
            step.fault(Fault::new(from, FaultKind::ShareOfAnotherParty));
            return;
        }
        self.shares.entry(from).or_insert(share);
        if self.shares.len() < self.info.echo_quorum() {
            return;
        }
        let value_digest = digest(&value);
        let msg = signed_statement(&self.id, &value_digest);
        let shares: Vec<SignatureShare> = self.shares.values().cloned().collect();
        match self.info.public.echo.combine(DST, &msg, &shares) {
            Ok(combined) => {
                self.blame(&combined.faulty, step);
                self.finalized = true;
                // Whoever gave a share signed this value's digest, so holds the value (a
                // Byzantine party that does not only hurts itself).
                let holders = std::mem::take(&mut self.shares);
                for party in 0..self.info.public.n {
                    let message = if holders.contains_key(&party) {
                        CbcMessage::Proof(value_digest, combined.value.clone())
                    } else {
                        CbcMessage::Final(value.clone(), combined.value.clone())
                    };
                    step.send(party, message);
                }
            }
            Err(crate::crypto::CombineError::NotEnoughValidShares { faulty, .. }) => {
                self.blame(&faulty, step);
            }
            Err(_) => {}
        }
    }

    /// Delivers `value` (whose digest is `d`) if `proof` is valid for it; blames `from` if not.
    fn deliver(&mut self, from: PartyId, value: Vec<u8>, d: [u8; 32], proof: Signature, step: &mut CbcStep) {
        if !verify_proof(&self.info.public, &self.id, &d, &proof) {
            step.fault(Fault::new(from, FaultKind::InvalidSignature));
            return;
        }
        self.delivered = true;
        self.proposing = None;
        self.echoed_value = None;
        step.output(CbcOutput { value, digest: d, proof });
    }

    fn blame(&mut self, faulty: &[PartyId], step: &mut CbcStep) {
        for &p in faulty {
            self.shares.remove(&p);
            step.fault(Fault::new(p, FaultKind::InvalidSignatureShare));
        }
    }
}

impl Protocol for ConsistentBroadcast {
    type Input = Vec<u8>;
    type Message = CbcMessage;
    type Output = CbcOutput;

    fn our_id(&self) -> PartyId {
        self.info.id
    }

    fn handle_input(&mut self, value: Vec<u8>, _rng: &mut dyn RngCore) -> CbcStep {
        let mut step = Step::new();
        if self.info.id == self.sender && self.proposing.is_none() {
            self.proposing = Some(value.clone());
            step.broadcast(CbcMessage::Send(value));
        }
        step
    }

    fn handle_message(&mut self, from: PartyId, msg: CbcMessage, _rng: &mut dyn RngCore) -> CbcStep {
        let mut step = Step::new();
        match msg {
            CbcMessage::Send(value) => {
                if from != self.sender {
                    step.fault(Fault::new(from, FaultKind::NotTheSender));
                    return step;
                }
                let d = digest(&value);
                match self.echoed {
                    Some(prev) if prev != d => step.fault(Fault::new(from, FaultKind::Equivocation)),
                    Some(_) => {}
                    None if !(self.validator)(&value) => step.fault(Fault::new(from, FaultKind::InvalidValue)),
                    None => {
                        self.echoed = Some(d);
                        let share = self.info.secret.echo.sign(DST, &signed_statement(&self.id, &d));
                        self.echoed_value = Some(value);
                        step.send(self.sender, CbcMessage::Echo(share));
                    }
                }
            }
            CbcMessage::Echo(share) => self.handle_echo(from, share, &mut step),
            CbcMessage::Final(value, proof) => {
                if !self.delivered {
                    let d = digest(&value);
                    self.deliver(from, value, d, proof, &mut step);
                }
            }
            CbcMessage::Proof(d, proof) => {
                if self.delivered {
                    return step;
                }
                // Without the value there is nothing to deliver; the proof may still reach this
                // party with the value (a `Final` forwarded, or the agreement's fetch by digest).
                if let Some(value) = self.echoed_value(&d).map(<[u8]>::to_vec) {
                    self.deliver(from, value, d, proof, &mut step);
                }
            }
        }
        step
    }

    fn terminated(&self) -> bool {
        self.delivered
    }
}

impl ConsistentBroadcast {
    /// The cluster's public keys (to check proofs this instance delivered).
    pub fn info_public(&self) -> PublicKeys {
        self.info.public.clone()
    }

    /// The value this party echoed, if its digest is `value_digest` and this instance has not
    /// delivered yet (afterwards the parent holds the output).
    pub fn echoed_value(&self, value_digest: &[u8; 32]) -> Option<&[u8]> {
        match (&self.echoed, &self.echoed_value) {
            (Some(d), Some(value)) if d == value_digest => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::standin::StandinCluster;
    use crate::id::IdPart;
    use crate::step::Target;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn parties(n: usize, t: usize) -> Vec<ConsistentBroadcast> {
        let cluster = StandinCluster::deal(n, t, &mut ChaCha8Rng::seed_from_u64(5));
        let id = InstanceId::root(0).child(&[IdPart::Party(0)]);
        let any: Validator = Arc::new(|_: &[u8]| true);
        (0..n)
            .map(|p| ConsistentBroadcast::new(Arc::new(cluster.network_info(p)), id.clone(), 0, any.clone()))
            .collect()
    }

    /// Runs the broadcast to the end, delivering every message in order, except that party
    /// `silent` neither receives the `Send` nor answers. Returns what each party was sent as the
    /// sender's final message and what each delivered.
    fn run(n: usize, t: usize, silent: PartyId) -> (Vec<Option<CbcMessage>>, Vec<Vec<CbcOutput>>) {
        let mut parties = parties(n, t);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut queue: Vec<(PartyId, PartyId, CbcMessage)> = Vec::new();
        let mut finals = vec![None; n];
        let mut outputs = vec![Vec::new(); n];
        let push = |from: PartyId, step: CbcStep, queue: &mut Vec<_>, outputs: &mut Vec<Vec<CbcOutput>>| {
            assert!(step.faults.is_empty(), "{:?}", step.faults);
            outputs[from].extend(step.output);
            for m in step.messages {
                let targets: Vec<PartyId> = match m.target {
                    Target::All => (0..n).collect(),
                    Target::Node(p) => vec![p],
                };
                for to in targets {
                    queue.push((from, to, m.message.clone()));
                }
            }
        };
        let step = parties[0].handle_input(b"a proposal".to_vec(), &mut rng);
        push(0, step, &mut queue, &mut outputs);
        while !queue.is_empty() {
            let (from, to, message) = queue.remove(0);
            if matches!(message, CbcMessage::Final(..) | CbcMessage::Proof(..)) {
                finals[to] = Some(message.clone());
            } else if to == silent {
                continue;
            }
            let step = parties[to].handle_message(from, message, &mut rng);
            push(to, step, &mut queue, &mut outputs);
        }
        (finals, outputs)
    }

    #[test]
    fn the_value_goes_again_only_to_parties_whose_echo_the_proof_did_not_combine() {
        let (finals, outputs) = run(4, 1, 3);
        // Parties 0, 1 and 2 echoed (the quorum of 3); party 3 never saw the `Send`.
        for (p, last) in finals.iter().enumerate().take(3) {
            assert!(matches!(last, Some(CbcMessage::Proof(..))), "party {p}: {last:?}");
        }
        assert!(matches!(finals[3], Some(CbcMessage::Final(..))), "{:?}", finals[3]);
        for (p, delivered) in outputs.iter().enumerate() {
            assert_eq!(delivered.len(), 1, "party {p} delivers once");
            assert_eq!(delivered[0].value, b"a proposal", "party {p}");
        }
    }

    #[test]
    fn a_proof_for_a_value_the_party_never_signed_delivers_nothing_and_blames_no_one() {
        let (finals, _) = run(4, 1, 3);
        let Some(CbcMessage::Proof(d, proof)) = finals[0].clone() else { panic!("a proof") };
        // A fresh party 3 (it never echoed) is sent the proof alone.
        let mut fresh = parties(4, 1).remove(3);
        let step = fresh.handle_message(0, CbcMessage::Proof(d, proof.clone()), &mut ChaCha8Rng::seed_from_u64(7));
        assert!(step.output.is_empty() && step.faults.is_empty(), "{step:?}");
        // The value with the proof then delivers it.
        let step = fresh.handle_message(
            1,
            CbcMessage::Final(b"a proposal".to_vec(), proof),
            &mut ChaCha8Rng::seed_from_u64(7),
        );
        assert_eq!(step.output.len(), 1);
    }

    #[test]
    fn a_proof_that_does_not_verify_is_blamed_on_its_sender() {
        let (finals, _) = run(4, 1, 3);
        let Some(CbcMessage::Proof(d, mut proof)) = finals[1].clone() else { panic!("a proof") };
        proof.0[0] ^= 1;
        let mut parties = parties(4, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let _ = parties[1].handle_message(0, CbcMessage::Send(b"a proposal".to_vec()), &mut rng);
        let step = parties[1].handle_message(0, CbcMessage::Proof(d, proof), &mut rng);
        assert!(step.output.is_empty());
        assert_eq!(step.faults, vec![Fault::new(0, FaultKind::InvalidSignature)]);
    }
}
