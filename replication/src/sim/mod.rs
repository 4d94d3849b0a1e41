//! The deterministic adversarial simulator (test support): `n` nodes, one `u64` seed, a scheduler
//! that eventually delivers every honest message in an order the adversary picks, crashed and
//! Byzantine nodes, and property checks on every run. A failing run reports its seed and the
//! command that replays it exactly.

pub mod adversary;
pub mod byzantine;
mod coin_adversary;
pub mod network;
pub mod scenarios;

pub use adversary::{Adversary, Behaviour, SchedulerKind};
pub use byzantine::Adversarial;
pub use network::{RunReport, Simulation};

use crate::Protocol;
use crate::crypto::NetworkInfo;
use crate::crypto::standin::StandinCluster;
use crate::crypto::threshold_backend::RealCluster;
use crate::{Fault, PartyId, Step};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// A step of protocol `P`.
pub type ProtocolStep<P> = Step<<P as Protocol>::Message, <P as Protocol>::Output>;

/// The cryptography a simulated cluster runs on.
pub trait SimCluster {
    fn network_info(&self, id: PartyId) -> Arc<NetworkInfo>;
    /// Seals a request as a client would (threshold encryption).
    fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8>;
}

impl SimCluster for StandinCluster {
    fn network_info(&self, id: PartyId) -> Arc<NetworkInfo> {
        Arc::new(StandinCluster::network_info(self, id))
    }
    fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
        StandinCluster::seal(self, label, plaintext, rng)
    }
}

impl SimCluster for RealCluster {
    fn network_info(&self, id: PartyId) -> Arc<NetworkInfo> {
        Arc::new(RealCluster::network_info(self, id))
    }
    fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut crypto_rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        RealCluster::seal(self, label, plaintext, &mut crypto_rng).unwrap_or_default()
    }
}

/// Which cryptography a campaign uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoKind {
    /// The fast deterministic stand-in (many seeds).
    Standin,
    /// The real schemes of `threshold` (BLS12-381, threshold encryption, Ed25519).
    Real,
}

pub fn deal(kind: CryptoKind, n: usize, t: usize, rng: &mut ChaCha8Rng) -> Box<dyn SimCluster> {
    match kind {
        CryptoKind::Standin => Box::new(StandinCluster::deal(n, t, rng)),
        CryptoKind::Real => Box::new(RealCluster::deal(n, t, rng)),
    }
}

/// A protocol under test: how to build its nodes, what to feed them, what must hold at the end.
pub trait Scenario {
    type P: Protocol<Message: Adversarial, Input: Clone>;

    /// Short name used by the example's `--protocol`.
    fn name(&self) -> &'static str;

    fn create(&self, info: Arc<NetworkInfo>, cluster: &dyn SimCluster) -> Self::P;

    /// Inputs given to `node` at the start. `honest` is false for Byzantine nodes, which may
    /// get a different (but still well-formed) input.
    fn inputs(
        &self,
        node: PartyId,
        honest: bool,
        cluster: &dyn SimCluster,
        rng: &mut dyn RngCore,
    ) -> Vec<<Self::P as Protocol>::Input>;

    /// True once `node` has all the outputs the scenario expects (the run stops when every
    /// honest, non-crashed node is done).
    /// `inputs` are every node's inputs; `honest` the nodes honest throughout.
    fn done(
        &self,
        node: &Self::P,
        outputs: &[<Self::P as Protocol>::Output],
        inputs: &[Vec<<Self::P as Protocol>::Input>],
        honest: &[PartyId],
    ) -> bool;

    /// Whether every honest node must finish in this run (e.g. not for a reliable broadcast
    /// whose sender is Byzantine and no honest node delivered).
    fn termination_required(&self, _run: &RunReport<Self::P>) -> bool {
        true
    }

    /// Protocol-specific properties (agreement, validity, ...) over the run.
    fn check(&self, run: &RunReport<Self::P>) -> Result<(), String>;

    /// `node` rebuilt from a snapshot of itself (for the restore tests); `Err` if the scenario
    /// cannot, or restoring fails.
    fn restore(&self, _node: &Self::P, _info: Arc<NetworkInfo>) -> Result<Self::P, String> {
        Err(format!("scenario {} does not support restoring nodes", self.name()))
    }

    /// The runtime's catch-up: `node` is behind `peer` (it has output fewer rounds) and nothing
    /// moves, so it fetches the rounds it lacks from `peer`, in transferable form, and applies
    /// them (the protocol verifies each, trusting no peer). `None` for protocols without such
    /// catch-up.
    fn catch_up(
        &self,
        _node: &mut Self::P,
        _peer: PartyId,
        _peer_outputs: &[<Self::P as Protocol>::Output],
        _rng: &mut dyn RngCore,
    ) -> Option<ProtocolStep<Self::P>> {
        None
    }

    /// Number of ABBA rounds a node used, for the statistics (0 if not applicable).
    fn abba_rounds(&self, _node: &Self::P) -> Vec<u64> {
        Vec::new()
    }

    /// Number of delivered requests (for per-request costs), counted at one honest node.
    fn delivered_requests(&self, run: &RunReport<Self::P>) -> usize;
}

/// Statistics of one campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignStats {
    pub seeds: u64,
    pub failures: Vec<(u64, String)>,
    pub abba_rounds_total: u64,
    pub abba_instances: u64,
    pub abba_rounds_max: u64,
    pub messages: u64,
    pub bytes: u64,
    pub delivered_requests: u64,
    /// Faults honest nodes reported (all attributed to Byzantine nodes, or the run fails).
    pub faults: u64,
    /// Rounds nodes output from records fetched by catch-up ([`Scenario::catch_up`]).
    pub caught_up: u64,
    /// See [`RunReport::coins_learned`] and [`RunReport::votes_steered`].
    pub coins_learned: u64,
    pub votes_steered: u64,
}

impl CampaignStats {
    pub fn mean_abba_rounds(&self) -> f64 {
        if self.abba_instances == 0 { 0.0 } else { self.abba_rounds_total as f64 / self.abba_instances as f64 }
    }
}

/// Extras of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Record a digest of every step ([`RunReport::trace`]).
    pub trace: bool,
    /// `(deliveries, node)`: once that many messages have been delivered, replace `node` by
    /// [`Scenario::restore`] of itself.
    pub restarts: Vec<(u64, PartyId)>,
}

/// Settings of one campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub n: usize,
    pub t: usize,
    pub adversary: Adversary,
    pub crypto: CryptoKind,
    /// Encode every message to count bytes (slower).
    pub count_bytes: bool,
}

impl Campaign {
    pub fn new(n: usize, t: usize, adversary: Adversary) -> Self {
        Campaign { n, t, adversary, crypto: CryptoKind::Standin, count_bytes: false }
    }

    /// Runs one seed and checks every property; `Err` names what failed.
    pub fn run_one<S: Scenario>(&self, scenario: &S, seed: u64) -> Result<RunReport<S::P>, String> {
        self.run_one_with(scenario, seed, RunOptions::default())
    }

    /// [`Self::run_one`] with tracing or node restarts.
    pub fn run_one_with<S: Scenario>(
        &self,
        scenario: &S,
        seed: u64,
        options: RunOptions,
    ) -> Result<RunReport<S::P>, String> {
        let report = Simulation::new(scenario, self, seed).with_options(options).run(scenario);
        if let Some(why) = &report.failure {
            return Err(why.clone());
        }
        if let Some(why) = &report.stuck
            && scenario.termination_required(&report)
        {
            return Err(why.clone());
        }
        check_faults_attributed(&report.faults, &report.byzantine)?;
        scenario.check(&report)?;
        Ok(report)
    }

    /// Runs `seeds`, collecting failures instead of stopping at the first.
    pub fn run_many<S: Scenario>(&self, scenario: &S, seeds: impl IntoIterator<Item = u64>) -> CampaignStats {
        let mut stats = CampaignStats::default();
        for seed in seeds {
            stats.seeds += 1;
            match self.run_one(scenario, seed) {
                Ok(report) => {
                    stats.messages += report.messages;
                    stats.faults += report.faults.len() as u64;
                    stats.caught_up += report.caught_up;
                    stats.coins_learned += report.coins_learned;
                    stats.votes_steered += report.votes_steered;
                    stats.bytes += report.bytes;
                    stats.delivered_requests += scenario.delivered_requests(&report) as u64;
                    for node in report.honest_nodes() {
                        for rounds in scenario.abba_rounds(&report.nodes[node]) {
                            stats.abba_instances += 1;
                            stats.abba_rounds_total += rounds;
                            stats.abba_rounds_max = stats.abba_rounds_max.max(rounds);
                        }
                    }
                }
                Err(e) => stats.failures.push((seed, e)),
            }
        }
        stats
    }

    /// Runs `seeds` (or only `REPLICATION_SEED` when that is set) and panics on the first
    /// failing seed with the command that replays it.
    pub fn assert_seeds<S: Scenario>(&self, scenario: &S, test_name: &str, seeds: u64) -> CampaignStats {
        let seeds: Vec<u64> = match std::env::var("REPLICATION_SEED").ok().and_then(|s| s.parse().ok()) {
            Some(seed) => vec![seed],
            None => (0..seeds).collect(),
        };
        let stats = self.run_many(scenario, seeds);
        if let Some((seed, error)) = stats.failures.first() {
            panic!(
                "{} n={} t={} adversary={:?}: seed {seed} failed: {error}\n\
                 replay: REPLICATION_SEED={seed} cargo test -p replication --release {test_name}",
                scenario.name(),
                self.n,
                self.t,
                self.adversary,
            );
        }
        stats
    }
}

/// Every fault an honest node reported names a Byzantine node.
fn check_faults_attributed(faults: &[(PartyId, Fault)], byzantine: &[PartyId]) -> Result<(), String> {
    for (reporter, fault) in faults {
        if !byzantine.contains(&fault.party) {
            return Err(format!("honest node {reporter} blamed non-Byzantine node {}: {:?}", fault.party, fault.kind));
        }
    }
    Ok(())
}

/// The number of seeds a many-seed test runs: `REPLICATION_SEEDS` if set, else `default`.
pub fn seeds_from_env(default: u64) -> u64 {
    std::env::var("REPLICATION_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
