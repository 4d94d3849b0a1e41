//! Secure causal atomic broadcast: nodes submit plain and sealed requests; every honest node
//! must deliver every honest node's requests (sealed ones opened), in the same order, with a
//! round record that verifies, and no honest node may release a decryption share before the
//! request's position is fixed (causality).

use crate::agreement::binary::AbbaMessage;
use crate::atomic::secure::{
    OpenedRound, OrderedRequest, Request, ScabcInput, ScabcMessage, ScabcStep, SecureAtomicBroadcast,
};
use crate::atomic::{AbcConfig, verify_round_proof};
use crate::crypto::{NetworkInfo, digest};
use crate::sim::byzantine::{Adversarial, flip_bit};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Step};
use rand::RngCore;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a client submitted: sealed or not, and the plaintext.
type Submitted = (bool, Vec<u8>);

pub struct SecureScenario {
    pub config: AbcConfig,
    pub max_requests_per_node: u32,
    /// Digest of the encoded request -> (sealed, plaintext) of everything submitted in the
    /// current run.
    submitted: RefCell<BTreeMap<[u8; 32], Submitted>>,
}

impl Default for SecureScenario {
    fn default() -> Self {
        SecureScenario {
            config: AbcConfig { max_batch: 4, ..AbcConfig::default() },
            max_requests_per_node: 2,
            submitted: RefCell::default(),
        }
    }
}

pub fn instance() -> InstanceId {
    // Same id as the plain atomic broadcast scenario: Byzantine batch equivocation re-signs
    // under it.
    crate::sim::scenarios::atomic::instance()
}

impl Adversarial for ScabcMessage {
    fn equivocate(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            ScabcMessage::Abc(m) => m.equivocate(keys, rng).map(ScabcMessage::Abc),
            ScabcMessage::Decryption { .. } => None,
        }
    }

    fn corrupt(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            ScabcMessage::Abc(m) => m.corrupt(keys, rng).map(ScabcMessage::Abc),
            ScabcMessage::Decryption { round, index, share } => {
                let mut share = share.clone();
                flip_bit(&mut share.bytes, rng);
                Some(ScabcMessage::Decryption { round: *round, index: *index, share })
            }
        }
    }

    fn is_coin_share(&self) -> bool {
        matches!(self, ScabcMessage::Abc(m) if m.is_coin_share())
    }

    fn abba(&self) -> Option<(InstanceId, &AbbaMessage)> {
        match self {
            ScabcMessage::Abc(m) => m.abba(),
            ScabcMessage::Decryption { .. } => None,
        }
    }

    fn with_abba(&self, abba: AbbaMessage) -> Option<Self> {
        match self {
            ScabcMessage::Abc(m) => m.with_abba(abba).map(ScabcMessage::Abc),
            ScabcMessage::Decryption { .. } => None,
        }
    }
}

fn submitted(inputs: &[ScabcInput]) -> impl Iterator<Item = [u8; 32]> + '_ {
    inputs.iter().filter_map(|i| match i {
        ScabcInput::Submit(request) => Some(digest(&request.encode())),
        ScabcInput::Clock(_) | ScabcInput::Hold(_) => None,
    })
}

impl Scenario for SecureScenario {
    type P = SecureAtomicBroadcast;

    fn name(&self) -> &'static str {
        "scabc"
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> SecureAtomicBroadcast {
        SecureAtomicBroadcast::new(info, instance(), self.config)
    }

    /// Restores `node` from its snapshot, and checks on the way that a snapshot of the restored
    /// node is byte for byte the original's (nothing lost, nothing order-dependent).
    fn restore(&self, node: &SecureAtomicBroadcast, info: Arc<NetworkInfo>) -> Result<SecureAtomicBroadcast, String> {
        let snapshot = node.snapshot();
        let restored =
            SecureAtomicBroadcast::restore(info, instance(), self.config, &snapshot).map_err(|e| e.to_string())?;
        if restored.snapshot() != snapshot {
            return Err("the restored node's snapshot differs from the original's".into());
        }
        Ok(restored)
    }

    fn inputs(&self, node: PartyId, honest: bool, cluster: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<ScabcInput> {
        if node == 0 {
            self.submitted.borrow_mut().clear();
        }
        let clock = 1_700_000_000_000 + rng.next_u64() % 1000;
        let mut inputs = vec![ScabcInput::Clock(clock)];
        let count = 1 + rng.next_u32() % self.max_requests_per_node;
        for i in 0..count {
            let mut plaintext = vec![node as u8, i as u8];
            plaintext.extend((0..16).map(|_| rng.next_u32() as u8));
            // Mostly sealed, some plain: both kinds share rounds and batches.
            let request = if rng.next_u32().is_multiple_of(3) {
                Request::Plain(plaintext.clone())
            } else {
                Request::Sealed(cluster.seal(b"csr", &plaintext, rng))
            };
            self.submitted.borrow_mut().insert(digest(&request.encode()), (request.is_sealed(), plaintext));
            inputs.push(ScabcInput::Submit(request));
        }
        if !honest {
            // A forged ciphertext: honest replicas must never order it.
            inputs.push(ScabcInput::Submit(Request::Sealed(vec![0xee; 40])));
        }
        inputs
    }

    fn done(
        &self,
        _node: &SecureAtomicBroadcast,
        outputs: &[OpenedRound],
        inputs: &[Vec<ScabcInput>],
        honest: &[PartyId],
    ) -> bool {
        let delivered: BTreeSet<&[u8; 32]> =
            outputs.iter().flat_map(|r| r.requests.iter().map(|q| &q.digest)).collect();
        honest.iter().all(|&p| submitted(&inputs[p]).all(|d| delivered.contains(&d)))
    }

    fn check(&self, run: &RunReport<SecureAtomicBroadcast>) -> Result<(), String> {
        let honest = run.honest_nodes();
        let submitted = self.submitted.borrow();
        for &p in &honest {
            let node = &run.nodes[p];
            let mut seen = BTreeSet::new();
            for (i, round) in run.outputs[p].iter().enumerate() {
                if round.round != i as u64 {
                    return Err(format!("total order: node {p} delivered round {} at position {i}", round.round));
                }
                if verify_round_proof(
                    &node.atomic().public_keys(),
                    &instance(),
                    round.round,
                    node.atomic().rules(),
                    &round.proof,
                )
                .is_err()
                {
                    return Err(format!("proof: node {p} round {i} does not verify"));
                }
                if round.record.round != round.round
                    || round.record.proof != round.proof
                    || round.record.shares.len() != round.requests.len()
                {
                    return Err(format!("record: node {p} round {i} carries a record of something else"));
                }
                for OrderedRequest { digest, sealed, payload } in &round.requests {
                    if !seen.insert(*digest) {
                        return Err(format!("integrity: node {p} delivered a request twice"));
                    }
                    match (submitted.get(digest), payload) {
                        (Some((was_sealed, expected)), Some(payload))
                            if expected == payload && was_sealed == sealed => {}
                        (None, _) => {
                            return Err(format!("validity: node {p} delivered a request no client submitted"));
                        }
                        _ => {
                            return Err(format!("validity: node {p} opened a request to the wrong payload"));
                        }
                    }
                }
            }
            // Causality: every share released after the request's position was fixed, and only
            // for requests this node delivered at that position.
            for release in node.releases() {
                let ordered = run.outputs[p]
                    .get(release.round as usize)
                    .and_then(|r| r.requests.get(release.index as usize))
                    .is_none_or(|q| q.digest == release.ciphertext && q.sealed);
                if !release.position_fixed || !ordered {
                    return Err(format!(
                        "causality: node {p} released a decryption share before the position was fixed"
                    ));
                }
            }
        }
        type RoundSummary = (u64, Vec<OrderedRequest>, u64, [u8; 32]);
        let summaries: Vec<Vec<RoundSummary>> = run
            .outputs
            .iter()
            .map(|o| o.iter().map(|r| (r.round, r.requests.clone(), r.time, r.seed)).collect())
            .collect();
        super::check_agreement(&honest, &summaries)
    }

    /// The peer's round records from the first round not output here, in order, as the runtime
    /// fetches them; the protocol verifies each and ignores those it cannot use yet.
    fn catch_up(
        &self,
        node: &mut SecureAtomicBroadcast,
        peer: PartyId,
        peer_outputs: &[OpenedRound],
        rng: &mut dyn RngCore,
    ) -> Option<ScabcStep> {
        let mut step = Step::new();
        for round in peer_outputs.iter().skip(node.next_round() as usize) {
            step.extend(node.handle_round_record(peer, round.record.clone(), rng));
        }
        Some(step)
    }

    fn abba_rounds(&self, node: &SecureAtomicBroadcast) -> Vec<u64> {
        node.atomic().abba_rounds().to_vec()
    }

    fn delivered_requests(&self, run: &RunReport<SecureAtomicBroadcast>) -> usize {
        run.honest_nodes().first().map_or(0, |&p| run.outputs[p].iter().map(|r| r.requests.len()).sum())
    }
}
