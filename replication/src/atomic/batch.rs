//! Signed batches (a replica's pending requests and clock reading for one round) and the
//! proposal predicate: `n-t` valid batches of the round from distinct replicas.

use crate::crypto::{PublicKeys, digest};
use crate::id::statement;
use crate::{InstanceId, PartyId, wire};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

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
    let digests: Vec<[u8; 32]> = requests.iter().map(|r| digest(r)).collect();
    statement_of_digests(id, signer, round, clock, &digests)
}

/// What a batch's signature is over: the requests enter by digest only.
fn statement_of_digests(id: &InstanceId, signer: PartyId, round: u64, clock: u64, digests: &[[u8; 32]]) -> Vec<u8> {
    statement(&[
        SIGNING_CONTEXT,
        &id.to_bytes(),
        &(signer as u64).to_be_bytes(),
        &round.to_be_bytes(),
        &clock.to_be_bytes(),
        digests.as_flattened(),
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
        let requests: Vec<&[u8]> = self.requests.iter().map(Vec::as_slice).collect();
        let digests: Vec<[u8; 32]> = requests.iter().map(|r| digest(r)).collect();
        requests.iter().all(|r| request_ok(rules, r))
            && batch_ok(public, id, rules, self.signer, self.round, self.clock, &requests, &digests, &self.signature)
    }
}

/// A request a batch may carry: not too large, and passing the rules' predicate.
fn request_ok(rules: &BatchRules, request: &[u8]) -> bool {
    request.len() <= MAX_REQUEST_BYTES && (rules.request_valid)(request)
}

/// A batch's limits and signature, its requests (with their digests) already checked one by one.
#[allow(clippy::too_many_arguments)]
fn batch_ok(
    public: &PublicKeys,
    id: &InstanceId,
    rules: &BatchRules,
    signer: PartyId,
    round: u64,
    clock: u64,
    requests: &[&[u8]],
    digests: &[[u8; 32]],
    signature: &[u8],
) -> bool {
    signer < public.n
        && requests.len() <= rules.max_requests
        && requests.iter().map(|r| r.len()).sum::<usize>() <= batch_byte_budget(public.n)
        && public.replicas.verify(signer, &statement_of_digests(id, signer, round, clock, digests), signature)
}

/// A proposal as it travels: each distinct request once, and the batches naming theirs by
/// index. The `n-t` batches of a round mostly carry the same requests (each starts with the
/// oldest pending ones and fills up with the rest), and a proposal goes to every party in the
/// consistent broadcast's `Send` and `Final`: at n = 10 under load, batches written out in full
/// made proposals about 7 times the round's requests and most of the bytes between replicas.
#[derive(Serialize, Deserialize)]
struct ProposalWire {
    #[serde(with = "crate::wire::vec_bytes")]
    requests: Vec<Vec<u8>>,
    batches: Vec<BatchByIndex>,
}

#[derive(Serialize, Deserialize)]
struct BatchByIndex {
    signer: PartyId,
    round: u64,
    clock: u64,
    /// Positions in [`ProposalWire::requests`], in the batch's order.
    indices: Vec<u32>,
    #[serde(with = "crate::wire::bytes")]
    signature: Vec<u8>,
}

impl ProposalWire {
    /// The batches written out in full, or `None` if an index is out of range.
    fn into_batches(self) -> Option<Vec<SignedBatch>> {
        let requests = self.requests;
        self.batches
            .into_iter()
            .map(|b| {
                let batch_requests =
                    b.indices.iter().map(|&i| requests.get(i as usize).cloned()).collect::<Option<Vec<_>>>()?;
                Some(SignedBatch {
                    signer: b.signer,
                    round: b.round,
                    clock: b.clock,
                    requests: batch_requests,
                    signature: b.signature,
                })
            })
            .collect()
    }
}

/// A proposal: `n-t` batches of one round, sorted by signer.
pub fn encode_proposal(batches: &[SignedBatch]) -> Vec<u8> {
    let mut position: HashMap<[u8; 32], u32> = HashMap::new();
    let mut requests: Vec<Vec<u8>> = Vec::new();
    let batches = batches
        .iter()
        .map(|b| BatchByIndex {
            signer: b.signer,
            round: b.round,
            clock: b.clock,
            indices: b
                .requests
                .iter()
                .map(|r| {
                    *position.entry(digest(r)).or_insert_with(|| {
                        requests.push(r.clone());
                        // A proposal fits in a frame, so its requests are far fewer than 2^32.
                        u32::try_from(requests.len() - 1).unwrap_or(u32::MAX)
                    })
                })
                .collect(),
            signature: b.signature.clone(),
        })
        .collect();
    wire::encode(&ProposalWire { requests, batches }).unwrap_or_default()
}

/// The batches of a proposal already known to be valid (an agreement's decision); `None` if the
/// bytes are no proposal.
pub fn decode_proposal(bytes: &[u8]) -> Option<Vec<SignedBatch>> {
    wire::decode::<ProposalWire>(0, bytes).ok()?.into_batches()
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
    checked_proposal(public, id, round, rules, bytes)?.into_batches()
}

/// [`check_proposal`] without writing the batches out.
pub fn proposal_is_valid(public: &PublicKeys, id: &InstanceId, round: u64, rules: &BatchRules, bytes: &[u8]) -> bool {
    checked_proposal(public, id, round, rules, bytes).is_some()
}

/// Each distinct request is checked and hashed once, however many batches carry it. The
/// encoding is strict: every listed request is distinct and named by some batch, so a proposer
/// cannot pad a proposal with requests no batch signed.
fn checked_proposal(
    public: &PublicKeys,
    id: &InstanceId,
    round: u64,
    rules: &BatchRules,
    bytes: &[u8],
) -> Option<ProposalWire> {
    let proposal: ProposalWire = wire::decode(0, bytes).ok()?;
    let batches = &proposal.batches;
    let shape_ok = batches.len() == public.n - public.t
        && batches.windows(2).all(|w| w[0].signer < w[1].signer)
        && batches.iter().all(|b| b.round == round);
    if !shape_ok {
        return None;
    }
    let digests: Vec<[u8; 32]> = proposal.requests.iter().map(|r| digest(r)).collect();
    let mut named = vec![false; digests.len()];
    for b in batches {
        for &i in &b.indices {
            *named.get_mut(i as usize)? = true;
        }
    }
    let distinct: HashSet<&[u8; 32]> = digests.iter().collect();
    if distinct.len() != digests.len()
        || !named.iter().all(|n| *n)
        || !proposal.requests.iter().all(|r| request_ok(rules, r))
    {
        return None;
    }
    let all_signed = batches.iter().all(|b| {
        let requests: Vec<&[u8]> = b.indices.iter().map(|&i| proposal.requests[i as usize].as_slice()).collect();
        let batch_digests: Vec<[u8; 32]> = b.indices.iter().map(|&i| digests[i as usize]).collect();
        batch_ok(public, id, rules, b.signer, b.round, b.clock, &requests, &batch_digests, &b.signature)
    });
    all_signed.then_some(proposal)
}

/// The round's time from the batches' clock readings: the `(t+1)`-th smallest, which at most
/// `t` faulty readings cannot push outside the honest readings' range.
pub fn round_time(batches: &[SignedBatch], t: usize) -> u64 {
    let mut clocks: Vec<u64> = batches.iter().map(|b| b.clock).collect();
    clocks.sort_unstable();
    clocks.get(t).or(clocks.last()).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::standin::StandinCluster;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const ROUND: u64 = 7;

    /// Batches of `ROUND` signed by parties `0..requests.len()` of a stand-in cluster of 4.
    fn signed(requests: &[Vec<Vec<u8>>]) -> (StandinCluster, InstanceId, Vec<SignedBatch>) {
        let cluster = StandinCluster::deal(4, 1, &mut ChaCha8Rng::seed_from_u64(1));
        let id = InstanceId::root(3);
        let batches = requests
            .iter()
            .enumerate()
            .map(|(signer, r)| {
                SignedBatch::sign(&id, signer, ROUND, 1_000, r.clone(), &*cluster.secrets[signer].signing)
            })
            .collect();
        (cluster, id, batches)
    }

    fn three_overlapping_batches() -> Vec<Vec<Vec<u8>>> {
        let r = |b: u8| vec![b; 400];
        vec![vec![r(1), r(2), r(3)], vec![r(2), r(1), r(4)], vec![r(1), r(5)]]
    }

    #[test]
    fn a_proposal_sends_each_shared_request_once_and_checks_to_the_batches_it_was_made_of() {
        let (cluster, id, batches) = signed(&three_overlapping_batches());
        let bytes = encode_proposal(&batches);
        let full = wire::encode(&batches).unwrap();
        // 8 requests in the batches, 5 distinct: 3 fewer sent, less a few bytes of indices.
        assert!(bytes.len() + 3 * 400 <= full.len() + 64, "{} bytes against {} in full", bytes.len(), full.len());
        let rules = BatchRules::any(100);
        assert_eq!(check_proposal(&cluster.public, &id, ROUND, &rules, &bytes), Some(batches.clone()));
        assert_eq!(decode_proposal(&bytes), Some(batches));
    }

    /// Re-encodes `bytes` after `edit` changes the wire form.
    fn edited(bytes: &[u8], edit: impl FnOnce(&mut ProposalWire)) -> Vec<u8> {
        let mut proposal: ProposalWire = wire::decode(0, bytes).unwrap();
        edit(&mut proposal);
        wire::encode(&proposal).unwrap()
    }

    #[test]
    fn a_proposal_with_a_request_no_batch_names_a_repeated_request_or_a_bad_index_is_invalid() {
        let (cluster, id, batches) = signed(&three_overlapping_batches());
        let bytes = encode_proposal(&batches);
        let rules = BatchRules::any(100);
        let valid = |b: &[u8]| proposal_is_valid(&cluster.public, &id, ROUND, &rules, b);
        assert!(valid(&bytes));
        let padded = edited(&bytes, |p| p.requests.push(vec![9; 400]));
        let repeated = edited(&bytes, |p| {
            let first = p.requests[0].clone();
            p.requests.push(first);
            p.batches[2].indices[0] = 5;
        });
        let out_of_range = edited(&bytes, |p| p.batches[0].indices[0] = 99);
        let swapped = edited(&bytes, |p| p.batches[0].indices.swap(0, 1));
        for (what, b) in
            [("padded", padded), ("repeated", repeated), ("out of range", out_of_range), ("reordered", swapped)]
        {
            assert!(!valid(&b), "{what}");
        }
        assert_eq!(decode_proposal(&edited(&bytes, |p| p.batches[0].indices[0] = 99)), None);
    }

    #[test]
    fn a_proposal_breaking_the_batch_rules_is_invalid() {
        let (cluster, id, batches) = signed(&three_overlapping_batches());
        let bytes = encode_proposal(&batches);
        let tight = BatchRules::any(2);
        assert!(!proposal_is_valid(&cluster.public, &id, ROUND, &tight, &bytes), "a batch of 3 with at most 2");
        let refuse_5 = BatchRules { max_requests: 100, request_valid: std::sync::Arc::new(|r: &[u8]| r[0] != 5) };
        assert!(!proposal_is_valid(&cluster.public, &id, ROUND, &refuse_5, &bytes), "an invalid request");
        assert!(!proposal_is_valid(&cluster.public, &id, ROUND + 1, &BatchRules::any(100), &bytes), "another round");
        let (_, _, two) = signed(&three_overlapping_batches()[..2]);
        assert!(!proposal_is_valid(&cluster.public, &id, ROUND, &BatchRules::any(100), &encode_proposal(&two)));
    }

    proptest! {
        #[test]
        fn any_three_signed_batches_encode_and_check_to_themselves(
            picks in proptest::collection::vec(proptest::collection::vec(0u8..12, 0..8), 3),
        ) {
            // Requests drawn from a small pool, so batches share some; a batch may repeat one.
            let requests: Vec<Vec<Vec<u8>>> =
                picks.iter().map(|p| p.iter().map(|&b| vec![b; 1 + b as usize]).collect()).collect();
            let (cluster, id, batches) = signed(&requests);
            let bytes = encode_proposal(&batches);
            prop_assert_eq!(
                check_proposal(&cluster.public, &id, ROUND, &BatchRules::any(100), &bytes),
                Some(batches)
            );
        }
    }
}
