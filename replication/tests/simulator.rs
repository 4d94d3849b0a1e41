//! The simulator itself: a seed replays exactly, and a failing run names its seed.

use rand::RngCore;
use replication::PartyId;
use replication::agreement::binary::{AbbaDecision, AbbaInput};
use replication::crypto::NetworkInfo;
use replication::sim::scenarios::atomic::AtomicScenario;
use replication::sim::scenarios::binary::BinaryScenario;
use replication::sim::{Adversary, Campaign, RunReport, Scenario, SimCluster};
use std::sync::Arc;

#[test]
fn same_seed_replays_exactly() {
    for (name, adversary) in Adversary::all() {
        let campaign = Campaign::new(4, 1, adversary);
        let scenario = AtomicScenario::default();
        let a = campaign.run_one(&scenario, 42).expect("run passes");
        let b = campaign.run_one(&scenario, 42).expect("run passes");
        assert_eq!(a.outputs, b.outputs, "{name}");
        assert_eq!((a.messages, a.deliveries), (b.messages, b.deliveries), "{name}");
        assert_eq!(a.faults, b.faults, "{name}");
    }
}

#[test]
fn byzantine_adversaries_are_observed_and_blamed() {
    // The invalid-share, equivocation and garbage adversaries must actually be caught (and
    // only the Byzantine nodes blamed, which every run checks).
    for name in ["invalid-shares", "equivocate", "garbage"] {
        let adversary = Adversary::by_name(name).expect("known adversary");
        let stats = Campaign::new(4, 1, adversary).run_many(&BinaryScenario { validated: true }, 0..50);
        assert!(stats.failures.is_empty(), "{name}: {:?}", stats.failures.first());
        assert!(stats.faults > 0, "{name}: no fault observed in 50 runs");
    }
}

/// Binary agreement with an extra (false) property: "the decision is always 0". Random inputs
/// make some seed decide 1, which the campaign must report with its seed.
struct AlwaysZero(BinaryScenario);

impl Scenario for AlwaysZero {
    type P = <BinaryScenario as Scenario>::P;
    fn name(&self) -> &'static str {
        "always-zero"
    }
    fn create(&self, info: Arc<NetworkInfo>, cluster: &dyn SimCluster) -> Self::P {
        self.0.create(info, cluster)
    }
    fn inputs(&self, node: PartyId, honest: bool, cluster: &dyn SimCluster, rng: &mut dyn RngCore) -> Vec<AbbaInput> {
        self.0.inputs(node, honest, cluster, rng)
    }
    fn done(&self, node: &Self::P, outputs: &[AbbaDecision], inputs: &[Vec<AbbaInput>], honest: &[PartyId]) -> bool {
        self.0.done(node, outputs, inputs, honest)
    }
    fn check(&self, run: &RunReport<Self::P>) -> Result<(), String> {
        self.0.check(run)?;
        match run.outputs.iter().flatten().find(|d| d.value) {
            Some(_) => Err("decided 1".into()),
            None => Ok(()),
        }
    }
    fn delivered_requests(&self, run: &RunReport<Self::P>) -> usize {
        self.0.delivered_requests(run)
    }
}

#[test]
#[should_panic(expected = "replay: REPLICATION_SEED=")]
fn a_failing_run_reports_its_seed_and_replay_command() {
    let adversary = Adversary::by_name("random").expect("known adversary");
    Campaign::new(4, 1, adversary).assert_seeds(&AlwaysZero(BinaryScenario { validated: false }), "a_failing_run", 200);
}
