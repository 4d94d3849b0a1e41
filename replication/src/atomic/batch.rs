//! Signed batches (a replica's pending requests and clock reading for one round) and the
//! proposal predicate: `n-t` valid batches of the round from distinct replicas.

use crate::crypto::{PublicKeys, digest};
use crate::id::statement;
use crate::{InstanceId, PartyId, wire};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const SIGNING_CONTEXT: &[u8] = b"replication/abc/batch/v1";

/// The largest request ordered; larger ones are refused on submission and never disseminated.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Bytes of requests one batch may carry in a cluster of `n`: `n-t` batches make a proposal,
/// which (in the consistent broadcast's `Send` and `Final`, an answer to `Want`, and a round
/// record with its proof) must fit in one frame.
pub fn batch_byte_budget(n: usize) -> usize {
    (wire::MAX_MESSAGE_BYTES / (4 * n.max(1))).min(1 << 20)
}

/// What a batch may contain: at most `max_requests` requests, each passing `request_valid`
/// (e.g. a well-formed sealed request in secure causal atomic broadcast).
#[derive(Clone)]
pub struct BatchRules {
    pub max_requests: usize,
    pub request_valid: crate::broadcast::consistent::Validator,
}

impl BatchRules {
    /// Any request, at most `max_requests` per batch.
    pub fn any(max_requests: usize) -> Self {
        BatchRules { max_requests, request_valid: std::sync::Arc::new(|_: &[u8]| true) }
    }

    /// The rules of an instance decoded from a snapshot until `rebind` supplies the real ones:
    /// nothing is valid (fail-closed).
    pub(crate) fn unbound() -> Self {
        BatchRules { max_requests: 0, request_valid: crate::broadcast::consistent::unbound_validator() }
    }
}

/// One replica's batch for a round, signed with its individual (Ed25519) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    pub signer: PartyId,
    pub round: u64,
    /// The signer's clock reading (milliseconds since the Unix epoch).
    pub clock: u64,
    #[serde(with = "crate::wire::vec_bytes")]
    pub requests: Vec<Vec<u8>>,
    #[serde(with = "crate::wire::bytes")]
    pub signature: Vec<u8>,
}

fn batch_statement(id: &InstanceId, signer: PartyId, round: u64, clock: u64, requests: &[Vec<u8>]) -> Vec<u8> {
    let mut hashes = Vec::with_capacity(requests.len() * 32);
    for r in requests {
        hashes.extend_from_slice(&digest(r));
    }
    statement(&[
        SIGNING_CONTEXT,
        &id.to_bytes(),
        &(signer as u64).to_be_bytes(),
        &round.to_be_bytes(),
        &clock.to_be_bytes(),
        &hashes,
    ])
}

impl SignedBatch {
    pub fn sign(
        id: &InstanceId,
        signer: PartyId,
        round: u64,
        clock: u64,
        requests: Vec<Vec<u8>>,
        key: &dyn crate::crypto::IndividualSigner,
    ) -> Self {
        let signature = key.sign(&batch_statement(id, signer, round, clock, &requests));
        SignedBatch { signer, round, clock, requests, signature }
    }

    pub fn verify(&self, public: &PublicKeys, id: &InstanceId, rules: &BatchRules) -> bool {
        self.signer < public.n
            && self.requests.len() <= rules.max_requests
            && self.requests.iter().all(|r| r.len() <= MAX_REQUEST_BYTES)
            && self.requests.iter().map(Vec::len).sum::<usize>() <= batch_byte_budget(public.n)
            && self.requests.iter().all(|r| (rules.request_valid)(r))
            && public.replicas.verify(
                self.signer,
                &batch_statement(id, self.signer, self.round, self.clock, &self.requests),
                &self.signature,
            )
    }
}

/// A proposal: `n-t` batches of one round, sorted by signer.
pub fn encode_proposal(batches: &[SignedBatch]) -> Vec<u8> {
    wire::encode(&batches).unwrap_or_default()
}

/// Decodes and checks a proposal for `round`: `n-t` batches of that round from distinct
/// signers, each validly signed. Returns the batches sorted by signer.
pub fn check_proposal(
    public: &PublicKeys,
    id: &InstanceId,
    round: u64,
    rules: &BatchRules,
    bytes: &[u8],
) -> Option<Vec<SignedBatch>> {
    let batches: Vec<SignedBatch> = wire::decode(0, bytes).ok()?;
    let signers: BTreeSet<PartyId> = batches.iter().map(|b| b.signer).collect();
    let ok = batches.len() == public.n - public.t
        && signers.len() == batches.len()
        && batches.windows(2).all(|w| w[0].signer < w[1].signer)
        && batches.iter().all(|b| b.round == round && b.verify(public, id, rules));
    ok.then_some(batches)
}

/// The round's time from the batches' clock readings: the `(t+1)`-th smallest, which at most
/// `t` faulty readings cannot push outside the honest readings' range.
pub fn round_time(batches: &[SignedBatch], t: usize) -> u64 {
    let mut clocks: Vec<u64> = batches.iter().map(|b| b.clock).collect();
    clocks.sort_unstable();
    clocks.get(t).or(clocks.last()).copied().unwrap_or(0)
}
