//! Binary agreement (plain and validated) with random inputs.

use crate::agreement::binary::{
    AbbaDecision, AbbaInput, AbbaMessage, BinaryAgreement, MainVote, ProofValidator, signed_pre_vote, verify_decision,
};
use crate::crypto::NetworkInfo;
use crate::id::{IdPart, ProtocolKind};
use crate::sim::byzantine::{Adversarial, flip_bit};
use crate::sim::{RunReport, Scenario, SimCluster};
use crate::{InstanceId, PartyId, Protocol};
use rand::RngCore;
use std::sync::Arc;

/// Binary agreement; `validated` makes a `1` need a proof (`b"valid"`).
pub struct BinaryScenario {
    pub validated: bool,
}

const VALID_PROOF: &[u8] = b"valid";

fn instance() -> InstanceId {
    InstanceId::root(0).child(&[IdPart::Protocol(ProtocolKind::BinaryAgreement), IdPart::Index(0)])
}

impl Adversarial for AbbaMessage {
    fn equivocate(&self, keys: &NetworkInfo, _rng: &mut dyn RngCore) -> Option<Self> {
        match self {
            AbbaMessage::PreProcess { value, proof, .. } => {
                let value = !value;
                let share = keys.secret.pre_process.sign(
                    b"replication/abba/pre-process/v1",
                    &crate::id::statement(&[&instance().to_bytes(), &[value as u8]]),
                );
                Some(AbbaMessage::PreProcess { value, share, proof: proof.clone() })
            }
            AbbaMessage::PreVote { round, vote, .. } => {
                // Signed with its own key, so the share is valid; the justification is not (it
                // was made for the other value).
                let mut vote = vote.clone();
                vote.value = !vote.value;
                Some(signed_pre_vote(keys, &instance(), *round, vote))
            }
            AbbaMessage::Decide { round, value, signature, proof } => Some(AbbaMessage::Decide {
                round: *round,
                value: !value,
                signature: signature.clone(),
                proof: proof.clone(),
            }),
            AbbaMessage::MainVote { .. } | AbbaMessage::Coin { .. } => None,
        }
    }

    fn corrupt(&self, _keys: &NetworkInfo, rng: &mut dyn RngCore) -> Option<Self> {
        let mut m = self.clone();
        match &mut m {
            AbbaMessage::PreProcess { share, .. }
            | AbbaMessage::PreVote { share, .. }
            | AbbaMessage::MainVote { share, .. }
            | AbbaMessage::Coin { share, .. } => flip_bit(&mut share.bytes, rng),
            AbbaMessage::Decide { signature, .. } => flip_bit(&mut signature.0, rng),
        }
        if let AbbaMessage::MainVote { vote: MainVote::Value { proof: Some(p), .. }, .. } = &mut m
            && rng.next_u32().is_multiple_of(2)
        {
            flip_bit(p, rng);
        }
        Some(m)
    }

    fn is_coin_share(&self) -> bool {
        matches!(self, AbbaMessage::Coin { .. })
    }

    fn abba(&self) -> Option<(InstanceId, &AbbaMessage)> {
        Some((instance(), self))
    }

    fn with_abba(&self, message: AbbaMessage) -> Option<Self> {
        Some(message)
    }
}

impl Scenario for BinaryScenario {
    type P = BinaryAgreement;

    fn name(&self) -> &'static str {
        if self.validated { "abba-validated" } else { "abba" }
    }

    fn create(&self, info: Arc<NetworkInfo>, _cluster: &dyn SimCluster) -> BinaryAgreement {
        let validator: Option<ProofValidator> =
            self.validated.then(|| Arc::new(|p: &[u8]| p == VALID_PROOF) as ProofValidator);
        BinaryAgreement::new(info, instance(), validator)
    }

    fn inputs(&self, _node: PartyId, honest: bool, _: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<AbbaInput> {
        let value = rng.next_u32() % 2 == 1;
        let proof = match (self.validated, value, honest) {
            (true, true, true) => Some(VALID_PROOF.to_vec()),
            (true, true, false) => Some(b"forged".to_vec()),
            _ => None,
        };
        vec![AbbaInput { value, proof }]
    }

    fn done(
        &self,
        node: &BinaryAgreement,
        _outputs: &[AbbaDecision],
        _inputs: &[Vec<<BinaryAgreement as Protocol>::Input>],
        _honest: &[PartyId],
    ) -> bool {
        node.terminated()
    }

    fn check(&self, run: &RunReport<BinaryAgreement>) -> Result<(), String> {
        let honest = run.honest_nodes();
        let mut decided = None;
        for &p in &honest {
            let [decision] = run.outputs[p].as_slice() else {
                return Err(format!("integrity: node {p} output {} decisions", run.outputs[p].len()));
            };
            if *decided.get_or_insert(decision.value) != decision.value {
                return Err(format!("agreement: node {p} decided {}", decision.value));
            }
            if !verify_decision(&run.nodes[p].public_keys(), &instance(), decision) {
                return Err(format!("certificate: node {p}'s decision certificate does not verify"));
            }
            if self.validated && decision.value && decision.proof.as_deref() != Some(VALID_PROOF) {
                return Err(format!("validity: node {p} decided 1 without a valid proof"));
            }
            let node = &run.nodes[p];
            if let Some((r, _)) = node.coin_released().iter().find(|(_, votes)| *votes < run.n - run.t) {
                return Err(format!("coin timing: node {p} released the coin of round {r} early"));
            }
        }
        // Validity: a value every honest node proposed (with a valid proof) is the decision;
        // crashed nodes were honest too until they crashed.
        let inputs: Vec<bool> =
            (0..run.n).filter(|p| !run.byzantine.contains(p)).map(|p| run.inputs[p][0].value).collect();
        if let (Some(d), Some(&first)) = (decided, inputs.first())
            && inputs.iter().all(|&v| v == first)
            && d != first
        {
            return Err(format!("validity: every honest node proposed {first}, decided {d}"));
        }
        Ok(())
    }

    fn abba_rounds(&self, node: &BinaryAgreement) -> Vec<u64> {
        node.decision().map(|d| vec![d.round]).unwrap_or_default()
    }

    fn delivered_requests(&self, _run: &RunReport<BinaryAgreement>) -> usize {
        1
    }
}
