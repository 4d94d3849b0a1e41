//! Atomic broadcast: every node submits a few requests (disseminated by reliable broadcast) with
//! its clock reading; every honest node must deliver every honest node's requests, in the same
//! rounds, with the same times and seeds, each round with a verifiable proof.

use crate::agreement::binary::AbbaMessage;
use crate::atomic::batch::SignedBatch;
use crate::atomic::broadcast::AbcStep;
use crate::atomic::dissemination::{decode_batch, encode_batch};
use crate::atomic::round_proof::round_instance;
use crate::atomic::{AbcConfig, AbcInput, AbcMessage, AtomicBroadcast, DeliveredRound, verify_round_proof};
use crate::broadcast::reliable::RbcMessage;
use crate::crypto::NetworkInfo;
use crate::id::{IdPart, ProtocolKind};
use crate::sim::byzantine::{Adversarial, flip_bit};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Step};
use rand::RngCore;
use std::collections::HashSet;
use std::sync::Arc;

pub struct AtomicScenario {
    pub config: AbcConfig,
    /// Most requests each node submits.
    pub max_requests_per_node: u32,
    /// Honest nodes `0..t` are held for the whole run ([`AbcInput::Hold`]): the others must
    /// still order everything, the held nodes' requests included.
    pub hold_first_t: bool,
    /// Size of each submitted request (at least 10 bytes: node, index and 8 random bytes, padded
    /// with random bytes; real CA requests are about 1 kB).
    pub request_bytes: usize,
}

impl Default for AtomicScenario {
    fn default() -> Self {
        AtomicScenario {
            config: AbcConfig { max_batch: 4, ..AbcConfig::default() },
            max_requests_per_node: 3,
            hold_first_t: false,
            request_bytes: 10,
        }
    }
}

const HONEST_CLOCK_BASE: u64 = 1_700_000_000_000;
/// First byte of a request a Byzantine node made up and disseminated, followed by its id (honest
/// requests start with their submitter's id, below `n`).
const INJECTED: u8 = 0xee;
const HONEST_CLOCK_SPREAD: u64 = 1_000;

pub fn instance() -> InstanceId {
    InstanceId::root(0).child(&[IdPart::Protocol(ProtocolKind::AtomicBroadcast)])
}

impl Adversarial for AbcMessage {
    fn equivocate(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            AbcMessage::Disseminate { sender, seq, message } => {
                // Another batch that still decodes (flipped bytes would only be blamed): the
                // same requests plus one the Byzantine node made up.
                let altered = |value: &[u8], rng: &mut dyn RngCore| {
                    let mut requests = decode_batch(*sender, value).ok()?;
                    requests.push(vec![INJECTED, keys.id as u8, rng.next_u32() as u8]);
                    Some(encode_batch(requests))
                };
                let message = match message {
                    RbcMessage::Send(v) => altered(v, rng).map(RbcMessage::Send),
                    RbcMessage::Echo(v) => altered(v, rng).map(RbcMessage::Echo),
                    RbcMessage::Ready(_) => message.equivocate(keys, rng),
                }?;
                Some(AbcMessage::Disseminate { sender: *sender, seq: *seq, message })
            }
            AbcMessage::Batch(b) => {
                // A validly signed, conflicting batch (a Byzantine replica may sign anything).
                let mut requests = b.requests.clone();
                requests.reverse();
                requests.push(vec![INJECTED, rng.next_u32() as u8]);
                requests.truncate(b.requests.len().max(1));
                Some(AbcMessage::Batch(SignedBatch::sign(
                    &instance(),
                    b.signer,
                    b.round,
                    b.clock,
                    requests,
                    &*keys.secret.signing,
                )))
            }
            AbcMessage::Mvba { round, message } => {
                message.equivocate(keys, rng).map(|message| AbcMessage::Mvba { round: *round, message })
            }
        }
    }

    fn corrupt(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            AbcMessage::Disseminate { sender, seq, message } => message
                .corrupt(keys, rng)
                .map(|message| AbcMessage::Disseminate { sender: *sender, seq: *seq, message }),
            AbcMessage::Batch(b) => {
                let mut b = b.clone();
                flip_bit(&mut b.signature, rng);
                Some(AbcMessage::Batch(b))
            }
            AbcMessage::Mvba { round, message } => {
                message.corrupt(keys, rng).map(|message| AbcMessage::Mvba { round: *round, message })
            }
        }
    }

    fn is_coin_share(&self) -> bool {
        matches!(self, AbcMessage::Mvba { message, .. } if message.is_coin_share())
    }

    fn abba(&self) -> Option<(InstanceId, &AbbaMessage)> {
        match self {
            AbcMessage::Mvba { round, message } => message.abba_in(&round_instance(&instance(), *round)),
            _ => None,
        }
    }

    fn with_abba(&self, abba: AbbaMessage) -> Option<Self> {
        match self {
            AbcMessage::Mvba { round, message } => {
                message.replace_abba(abba).map(|message| AbcMessage::Mvba { round: *round, message })
            }
            _ => None,
        }
    }
}

fn submitted(inputs: &[AbcInput]) -> impl Iterator<Item = &Vec<u8>> {
    inputs.iter().filter_map(|i| match i {
        AbcInput::Submit(r) => Some(r),
        AbcInput::Clock(_) | AbcInput::Hold(_) => None,
    })
}

impl Scenario for AtomicScenario {
    type P = AtomicBroadcast;

    fn name(&self) -> &'static str {
        "abc"
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> AtomicBroadcast {
        AtomicBroadcast::new(info, instance(), self.config)
    }

    fn inputs(&self, node: PartyId, honest: bool, cluster: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<AbcInput> {
        let clock = if honest {
            HONEST_CLOCK_BASE + rng.next_u64() % HONEST_CLOCK_SPREAD
        } else if rng.next_u32().is_multiple_of(2) {
            0
        } else {
            u64::MAX / 2
        };
        let mut inputs = vec![AbcInput::Clock(clock)];
        if self.hold_first_t && honest && node < cluster.network_info(node).t() {
            inputs.push(AbcInput::Hold(true));
        }
        let count = rng.next_u32() % (self.max_requests_per_node + 1);
        for i in 0..count {
            let mut request = vec![node as u8, i as u8];
            request.extend((0..self.request_bytes.max(10) - 2).map(|_| rng.next_u32() as u8));
            inputs.push(AbcInput::Submit(request));
        }
        // Every node also submits one request all nodes know (a client retrying everywhere):
        // it must be delivered exactly once.
        inputs.push(AbcInput::Submit(b"shared request".to_vec()));
        inputs
    }

    fn done(
        &self,
        _node: &AtomicBroadcast,
        outputs: &[DeliveredRound],
        inputs: &[Vec<AbcInput>],
        honest: &[PartyId],
    ) -> bool {
        let delivered: HashSet<&Vec<u8>> = outputs.iter().flat_map(|r| &r.requests).collect();
        honest.iter().all(|&p| submitted(&inputs[p]).all(|r| delivered.contains(r)))
    }

    fn check(&self, run: &RunReport<AtomicBroadcast>) -> Result<(), String> {
        let honest = run.honest_nodes();
        let all_submitted: HashSet<&Vec<u8>> = run.inputs.iter().flat_map(|i| submitted(i)).collect();
        let public = match honest.first() {
            Some(&p) => run.nodes[p].public_keys(),
            None => return Ok(()),
        };
        let abc = instance();
        for &p in &honest {
            let mut seen = HashSet::new();
            let mut last_time = 0;
            for (i, round) in run.outputs[p].iter().enumerate() {
                if round.round != i as u64 {
                    return Err(format!("total order: node {p} delivered round {} at position {i}", round.round));
                }
                for r in &round.requests {
                    if !seen.insert(r) {
                        return Err(format!("integrity: node {p} delivered a request twice"));
                    }
                }
                if round.time < last_time {
                    return Err(format!("time: node {p} round {i} went back in time"));
                }
                last_time = round.time;
                if !(HONEST_CLOCK_BASE..HONEST_CLOCK_BASE + HONEST_CLOCK_SPREAD).contains(&round.time) {
                    return Err(format!("time: node {p} round {i} time {} outside honest clocks", round.time));
                }
                match verify_round_proof(&public, &abc, round.round, run.nodes[p].rules(), &round.proof) {
                    Ok(batches) => {
                        let in_batches: HashSet<&Vec<u8>> = batches.iter().flat_map(|b| &b.requests).collect();
                        // A Byzantine replica may put anything in its own batch (the CA checks
                        // client signatures); any other request must have been submitted.
                        let injected: HashSet<&Vec<u8>> = batches
                            .iter()
                            .filter(|b| run.byzantine.contains(&b.signer))
                            .flat_map(|b| &b.requests)
                            .collect();
                        for r in &round.requests {
                            if !in_batches.contains(r) {
                                return Err(format!("proof: node {p} round {i} delivered a request not in its proof"));
                            }
                            // As may a Byzantine disseminator (marked: see `INJECTED`).
                            let disseminated_by_byzantine = r.first() == Some(&INJECTED)
                                && r.get(1).is_some_and(|&b| run.byzantine.contains(&PartyId::from(b)));
                            if !all_submitted.contains(r) && !injected.contains(r) && !disseminated_by_byzantine {
                                return Err(format!("validity: node {p} delivered a request nobody submitted"));
                            }
                        }
                    }
                    Err(e) => return Err(format!("proof: node {p} round {i}: {e}")),
                }
            }
        }
        // Agreement and total order: the same rounds (requests, time, seed) in the same order.
        type RoundSummary = (u64, Vec<Vec<u8>>, u64, [u8; 32]);
        let summaries: Vec<Vec<RoundSummary>> = run
            .outputs
            .iter()
            .map(|o| o.iter().map(|r| (r.round, r.requests.clone(), r.time, r.seed)).collect())
            .collect();
        super::check_agreement(&honest, &summaries)
    }

    /// The peer's delivered rounds from the first one not delivered here, in order, each
    /// verified from its proof alone before it is delivered (the transferable round proof).
    fn catch_up(
        &self,
        node: &mut AtomicBroadcast,
        _peer: PartyId,
        peer_outputs: &[DeliveredRound],
        rng: &mut dyn RngCore,
    ) -> Option<AbcStep> {
        let mut step = Step::new();
        for round in peer_outputs.iter().skip(node.round() as usize) {
            if node.verify_round(round.round, &round.proof).is_err() {
                break;
            }
            step.extend(node.handle_verified_round(round.round, round.proof.clone(), rng));
        }
        Some(step)
    }

    fn abba_rounds(&self, node: &AtomicBroadcast) -> Vec<u64> {
        node.abba_rounds().to_vec()
    }

    fn delivered_requests(&self, run: &RunReport<AtomicBroadcast>) -> usize {
        run.honest_nodes().first().map_or(0, |&p| run.outputs[p].iter().map(|r| r.requests.len()).sum())
    }
}
