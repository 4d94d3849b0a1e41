//! Reliable broadcast from party 0 (who may be Byzantine).

use crate::broadcast::reliable::{RbcMessage, ReliableBroadcast};
use crate::crypto::NetworkInfo;
use crate::id::{IdPart, ProtocolKind};
use crate::sim::byzantine::{Adversarial, flip_bit, other_bytes};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Protocol};
use rand::RngCore;
use std::sync::Arc;

pub struct ReliableScenario;

const SENDER: PartyId = 0;

impl Adversarial for RbcMessage {
    fn equivocate(&self, _keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        Some(match self {
            RbcMessage::Send(v) => RbcMessage::Send(other_bytes(v, rng)),
            RbcMessage::Echo(v) => RbcMessage::Echo(other_bytes(v, rng)),
            RbcMessage::Ready(d) => {
                let mut d = *d;
                flip_bit(&mut d, rng);
                RbcMessage::Ready(d)
            }
        })
    }
    fn corrupt(&self, _keys: &NetworkInfo, _rng: &mut dyn RngCore) -> Option<Self> {
        None
    }
}

impl Scenario for ReliableScenario {
    type P = ReliableBroadcast;

    fn name(&self) -> &'static str {
        "rbc"
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> ReliableBroadcast {
        let id = InstanceId::root(0).child(&[IdPart::Protocol(ProtocolKind::ReliableBroadcast), IdPart::Party(SENDER)]);
        ReliableBroadcast::new(info, id, SENDER)
    }

    fn inputs(&self, node: PartyId, honest: bool, _: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<Vec<u8>> {
        if node != SENDER {
            return Vec::new();
        }
        let mut value = vec![0u8; 1 + (rng.next_u32() % 100) as usize];
        rng.fill_bytes(&mut value);
        if !honest {
            value.insert(0, 0xbb);
        }
        vec![value]
    }

    fn done(
        &self,
        node: &ReliableBroadcast,
        _outputs: &[Vec<u8>],
        _inputs: &[Vec<Vec<u8>>],
        _honest: &[PartyId],
    ) -> bool {
        node.terminated()
    }

    fn termination_required(&self, run: &RunReport<ReliableBroadcast>) -> bool {
        // Totality: if the sender is honest, or any honest node delivered, all must.
        let honest = run.honest_nodes();
        honest.contains(&SENDER) || honest.iter().any(|&p| !run.outputs[p].is_empty())
    }

    fn check(&self, run: &RunReport<ReliableBroadcast>) -> Result<(), String> {
        let honest = run.honest_nodes();
        for &p in &honest {
            if run.outputs[p].len() > 1 {
                return Err(format!("integrity: node {p} delivered {} times", run.outputs[p].len()));
            }
        }
        super::check_agreement(&honest, &run.outputs)?;
        if honest.contains(&SENDER) {
            for &p in &honest {
                if run.outputs[p].first() != run.inputs[SENDER].first() {
                    return Err(format!("validity: node {p} did not deliver the honest sender's value"));
                }
            }
        }
        Ok(())
    }

    fn delivered_requests(&self, run: &RunReport<ReliableBroadcast>) -> usize {
        run.honest_nodes().first().map_or(0, |&p| run.outputs[p].len())
    }
}
