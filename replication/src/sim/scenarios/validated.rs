//! Multi-valued validated agreement: every node proposes; values starting with `0xff` fail the
//! external predicate (Byzantine nodes sometimes propose them).

use crate::agreement::binary::AbbaMessage;
use crate::agreement::validated::{MvbaMessage, MvbaOutput, ValidatedAgreement, abba_id, verify_output};
use crate::broadcast::consistent::Validator;
use crate::crypto::NetworkInfo;
use crate::id::{IdPart, ProtocolKind};
use crate::sim::byzantine::{Adversarial, flip_bit, other_bytes};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Protocol};
use rand::RngCore;
use std::sync::Arc;

pub struct ValidatedScenario;

fn instance() -> InstanceId {
    InstanceId::root(0).child(&[IdPart::Protocol(ProtocolKind::ValidatedAgreement), IdPart::Round(0)])
}

pub fn predicate() -> Validator {
    Arc::new(|v: &[u8]| v.first() != Some(&0xff))
}

impl MvbaMessage {
    /// [`Adversarial::abba`] for a message of the agreement `id`.
    pub(crate) fn abba_in(&self, id: &InstanceId) -> Option<(InstanceId, &AbbaMessage)> {
        match self {
            MvbaMessage::Abba { index, message } => Some((abba_id(id, *index), message)),
            _ => None,
        }
    }

    /// [`Adversarial::with_abba`].
    pub(crate) fn replace_abba(&self, message: AbbaMessage) -> Option<Self> {
        match self {
            MvbaMessage::Abba { index, .. } => Some(MvbaMessage::Abba { index: *index, message }),
            _ => None,
        }
    }
}

impl Adversarial for MvbaMessage {
    fn equivocate(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            MvbaMessage::Cbc { proposer, message } => {
                message.equivocate(keys, rng).map(|message| MvbaMessage::Cbc { proposer: *proposer, message })
            }
            MvbaMessage::Abba { index, message } => {
                message.equivocate(keys, rng).map(|message| MvbaMessage::Abba { index: *index, message })
            }
            MvbaMessage::Vote { index, candidate, proposal } => Some(MvbaMessage::Vote {
                index: *index,
                candidate: if proposal.is_some() { *candidate } else { (*candidate + 1) % keys.n() },
                proposal: None,
            }),
            // A request for a value nobody holds, and a forged answer.
            MvbaMessage::Want { candidate, digest } => {
                let mut digest = *digest;
                flip_bit(&mut digest, rng);
                Some(MvbaMessage::Want { candidate: *candidate, digest })
            }
            MvbaMessage::Value { candidate, value } => {
                Some(MvbaMessage::Value { candidate: *candidate, value: other_bytes(value, rng) })
            }
            // A commitment to fewer proposals than a quorum.
            MvbaMessage::Committed { proposals } => {
                Some(MvbaMessage::Committed { proposals: proposals.iter().take(1).cloned().collect() })
            }
            MvbaMessage::Coin(_) => None,
        }
    }

    fn corrupt(&self, keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            MvbaMessage::Cbc { proposer, message } => {
                message.corrupt(keys, rng).map(|message| MvbaMessage::Cbc { proposer: *proposer, message })
            }
            MvbaMessage::Abba { index, message } => {
                message.corrupt(keys, rng).map(|message| MvbaMessage::Abba { index: *index, message })
            }
            MvbaMessage::Vote { index, candidate, proposal: Some(p) } => {
                let mut p = p.clone();
                flip_bit(&mut p.proof.0, rng);
                Some(MvbaMessage::Vote { index: *index, candidate: *candidate, proposal: Some(p) })
            }
            MvbaMessage::Coin(share) => {
                let mut share = share.clone();
                flip_bit(&mut share.bytes, rng);
                Some(MvbaMessage::Coin(share))
            }
            MvbaMessage::Value { candidate, value } => {
                let mut value = value.clone();
                flip_bit(&mut value, rng);
                Some(MvbaMessage::Value { candidate: *candidate, value })
            }
            MvbaMessage::Committed { proposals } => {
                let mut proposals = proposals.clone();
                let (_, first) = proposals.first_mut()?;
                flip_bit(&mut first.proof.0, rng);
                Some(MvbaMessage::Committed { proposals })
            }
            MvbaMessage::Vote { .. } | MvbaMessage::Want { .. } => None,
        }
    }

    fn is_coin_share(&self) -> bool {
        match self {
            MvbaMessage::Coin(_) => true,
            MvbaMessage::Abba { message, .. } => message.is_coin_share(),
            _ => false,
        }
    }

    fn abba(&self) -> Option<(InstanceId, &AbbaMessage)> {
        self.abba_in(&instance())
    }

    fn with_abba(&self, message: AbbaMessage) -> Option<Self> {
        self.replace_abba(message)
    }
}

impl Scenario for ValidatedScenario {
    type P = ValidatedAgreement;

    fn name(&self) -> &'static str {
        "mvba"
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> ValidatedAgreement {
        ValidatedAgreement::new(info, instance(), predicate())
    }

    fn inputs(&self, node: PartyId, honest: bool, _: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<Vec<u8>> {
        let mut value = vec![0u8; 8 + (rng.next_u32() % 64) as usize];
        rng.fill_bytes(&mut value);
        value[0] = if honest {
            1
        } else if rng.next_u32().is_multiple_of(2) {
            0xff
        } else {
            0xbb
        };
        value[1] = node as u8;
        vec![value]
    }

    fn done(
        &self,
        node: &ValidatedAgreement,
        _outputs: &[MvbaOutput],
        _inputs: &[Vec<<ValidatedAgreement as Protocol>::Input>],
        _honest: &[PartyId],
    ) -> bool {
        node.terminated()
    }

    fn check(&self, run: &RunReport<ValidatedAgreement>) -> Result<(), String> {
        let honest = run.honest_nodes();
        let mut agreed: Option<&Vec<u8>> = None;
        for &p in &honest {
            let [out] = run.outputs[p].as_slice() else {
                return Err(format!("integrity: node {p} output {} values", run.outputs[p].len()));
            };
            if *agreed.get_or_insert(&out.value) != &out.value {
                return Err(format!("agreement: node {p} decided a different value"));
            }
            if !verify_output(&run.nodes[p].public_keys(), &instance(), &predicate(), out) {
                return Err(format!("proof: node {p}'s output does not verify"));
            }
            if out.value.first() == Some(&0xff) {
                return Err(format!("validity: node {p} decided a value failing the predicate"));
            }
            if !run.byzantine.contains(&out.proposer) && Some(&out.value) != run.inputs[out.proposer].first() {
                return Err(format!("validity: node {p} decided a value node {} never proposed", out.proposer));
            }
        }
        Ok(())
    }

    fn abba_rounds(&self, node: &ValidatedAgreement) -> Vec<u64> {
        node.abba_rounds()
    }

    fn delivered_requests(&self, _run: &RunReport<ValidatedAgreement>) -> usize {
        1
    }
}
