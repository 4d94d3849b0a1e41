//! Verifiable consistent broadcast from party 0 (who may be Byzantine).

use crate::broadcast::consistent::{CbcMessage, CbcOutput, ConsistentBroadcast, verify_proof};
use crate::crypto::NetworkInfo;
use crate::crypto::digest;
use crate::id::{IdPart, ProtocolKind};
use crate::sim::byzantine::{Adversarial, flip_bit, other_bytes};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Protocol};
use rand::RngCore;
use std::sync::Arc;

pub struct ConsistentScenario;

const SENDER: PartyId = 0;

fn instance() -> InstanceId {
    InstanceId::root(0).child(&[IdPart::Protocol(ProtocolKind::ConsistentBroadcast), IdPart::Party(SENDER)])
}

impl Adversarial for CbcMessage {
    fn equivocate(&self, _keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            CbcMessage::Send(v) => Some(CbcMessage::Send(other_bytes(v, rng))),
            CbcMessage::Final(v, s) => Some(CbcMessage::Final(other_bytes(v, rng), s.clone())),
            CbcMessage::Proof(d, s) => {
                let mut d = *d;
                flip_bit(&mut d, rng);
                Some(CbcMessage::Proof(d, s.clone()))
            }
            CbcMessage::Echo(_) => None,
        }
    }
    fn corrupt(&self, _keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            CbcMessage::Echo(share) => {
                let mut share = share.clone();
                flip_bit(&mut share.bytes, rng);
                Some(CbcMessage::Echo(share))
            }
            CbcMessage::Final(v, s) => {
                let mut s = s.clone();
                flip_bit(&mut s.0, rng);
                Some(CbcMessage::Final(v.clone(), s))
            }
            CbcMessage::Proof(d, s) => {
                let mut s = s.clone();
                flip_bit(&mut s.0, rng);
                Some(CbcMessage::Proof(*d, s))
            }
            CbcMessage::Send(_) => None,
        }
    }
}

impl Scenario for ConsistentScenario {
    type P = ConsistentBroadcast;

    fn name(&self) -> &'static str {
        "cbc"
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> ConsistentBroadcast {
        // Values starting with 0xff are "invalid" under the external predicate.
        ConsistentBroadcast::new(info, instance(), SENDER, Arc::new(|v: &[u8]| v.first() != Some(&0xff)))
    }

    fn inputs(&self, node: PartyId, honest: bool, _: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<Vec<u8>> {
        if node != SENDER {
            return Vec::new();
        }
        let mut value = vec![0u8; 1 + (rng.next_u32() % 100) as usize];
        rng.fill_bytes(&mut value);
        value[0] = if honest {
            1
        } else if rng.next_u32().is_multiple_of(4) {
            0xff
        } else {
            0xbb
        };
        vec![value]
    }

    fn done(
        &self,
        node: &ConsistentBroadcast,
        _outputs: &[CbcOutput],
        _inputs: &[Vec<<ConsistentBroadcast as Protocol>::Input>],
        _honest: &[PartyId],
    ) -> bool {
        node.terminated()
    }

    fn termination_required(&self, run: &RunReport<ConsistentBroadcast>) -> bool {
        run.honest_nodes().contains(&SENDER)
    }

    fn check(&self, run: &RunReport<ConsistentBroadcast>) -> Result<(), String> {
        let honest = run.honest_nodes();
        for &p in &honest {
            if run.outputs[p].len() > 1 {
                return Err(format!("integrity: node {p} delivered {} times", run.outputs[p].len()));
            }
            for out in &run.outputs[p] {
                if out.digest != digest(&out.value)
                    || !verify_proof(&run.nodes[p].info_public(), &instance(), &out.digest, &out.proof)
                {
                    return Err(format!("proof: node {p} delivered a value whose proof does not verify"));
                }
                if out.value.first() == Some(&0xff) {
                    return Err(format!("validity: node {p} delivered a value failing the predicate"));
                }
            }
        }
        let values: Vec<Vec<Vec<u8>>> =
            run.outputs.iter().map(|o| o.iter().map(|c| c.value.clone()).collect()).collect();
        // Consistency: honest nodes that deliver, deliver the same value.
        let delivering: Vec<PartyId> = honest.iter().copied().filter(|&p| !values[p].is_empty()).collect();
        super::check_agreement(&delivering, &values)?;
        if honest.contains(&SENDER) {
            for &p in &honest {
                if values[p].first() != run.inputs[SENDER].first() {
                    return Err(format!("validity: node {p} did not deliver the honest sender's value"));
                }
            }
        }
        Ok(())
    }

    fn delivered_requests(&self, run: &RunReport<ConsistentBroadcast>) -> usize {
        run.honest_nodes().first().map_or(0, |&p| run.outputs[p].len())
    }
}
