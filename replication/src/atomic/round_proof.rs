//! Checking a delivered round from its proof and the public keys alone (the runtime's catch-up
//! fetches rounds from any peer and verifies them instead of trusting it).

use super::batch::{BatchRules, SignedBatch, check_proposal, proposal_is_valid};
use crate::InstanceId;
use crate::agreement::validated::{MvbaOutput, verify_output};
use crate::broadcast::consistent::Validator;
use crate::crypto::PublicKeys;
use crate::crypto::digest;
use crate::id::{IdPart, ProtocolKind};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundProofError {
    #[error("the agreement proof does not verify")]
    InvalidAgreement,
    #[error("the agreed value is not n-t valid signed batches of the round")]
    InvalidBatches,
}

/// The id of round `round`'s validated agreement inside the atomic broadcast `abc`.
pub fn round_instance(abc: &InstanceId, round: u64) -> InstanceId {
    abc.child(&[IdPart::Protocol(ProtocolKind::ValidatedAgreement), IdPart::Round(round)])
}

/// The external validity predicate of round `round`'s agreement. The same proposal is checked
/// many times (echo, votes, ABBA proofs, delivery), so valid ones are remembered by digest.
pub fn round_predicate(public: PublicKeys, abc: InstanceId, round: u64, rules: BatchRules) -> Validator {
    let valid = Mutex::new(HashSet::<[u8; 32]>::new());
    Arc::new(move |value: &[u8]| {
        let d = digest(value);
        if valid.lock().is_ok_and(|v| v.contains(&d)) {
            return true;
        }
        let ok = proposal_is_valid(&public, &abc, round, &rules, value);
        if ok && let Ok(mut v) = valid.lock() {
            v.insert(d);
        }
        ok
    })
}

/// Verifies round `round` of atomic broadcast `abc` and returns its agreed batches (sorted by
/// signer); the delivered requests, time and seed follow deterministically from them, the
/// proof's coin and the previous rounds.
pub fn verify_round_proof(
    public: &PublicKeys,
    abc: &InstanceId,
    round: u64,
    rules: &BatchRules,
    proof: &MvbaOutput,
) -> Result<Vec<SignedBatch>, RoundProofError> {
    let predicate = round_predicate(public.clone(), abc.clone(), round, rules.clone());
    if !verify_output(public, &round_instance(abc, round), &predicate, proof) {
        return Err(RoundProofError::InvalidAgreement);
    }
    check_proposal(public, abc, round, rules, &proof.value).ok_or(RoundProofError::InvalidBatches)
}
