//! Shared driver for the many-seed simulator tests.

use replication::sim::{Adversary, Campaign, Scenario, seeds_from_env};

/// The configurations every protocol is tested in.
pub const CONFIGS: [(usize, usize); 3] = [(4, 1), (7, 2), (10, 3)];

/// Runs `seeds` seeds (overridable by `REPLICATION_SEEDS`) of `scenario` for every configuration
/// and every adversary; panics with the seed and replay command on the first failure.
pub fn run_all_adversaries<S: Scenario>(scenario: &S, test_name: &str, seeds: u64) {
    let seeds = seeds_from_env(seeds);
    for (n, t) in CONFIGS {
        for (_, adversary) in Adversary::all() {
            Campaign::new(n, t, adversary).assert_seeds(scenario, test_name, seeds);
        }
    }
}

/// `release` in optimised test builds, `debug` otherwise (where the simulator is several times
/// slower); either is overridden by `REPLICATION_SEEDS`.
pub fn seeds(release: u64, debug: u64) -> u64 {
    if cfg!(debug_assertions) { debug } else { release }
}
