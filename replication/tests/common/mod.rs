//! Shared driver for the many-seed simulator tests.
#![allow(dead_code)] // each test file uses only some of these helpers

use rand_chacha::ChaCha8Rng;
use replication::sim::{Adversary, Campaign, CryptoKind, Scenario, seeds_from_env};
use replication::{PartyId, Protocol, Target};
use std::collections::VecDeque;

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

/// Runs `seeds` seeds per configuration with the real cryptography; seed `i` faces adversary
/// `i mod (number of adversaries)`, so every adversary is covered. Panics with the seed,
/// adversary and replay command on the first failure.
pub fn run_real_crypto<S: Scenario>(scenario: &S, test_name: &str, seeds: u64) {
    let adversaries = Adversary::all();
    let only = std::env::var("REPLICATION_SEED").ok().and_then(|s| s.parse::<u64>().ok());
    for (n, t) in CONFIGS {
        for seed in 0..seeds_from_env(seeds) {
            if only.is_some_and(|o| o != seed) {
                continue;
            }
            let (name, adversary) = adversaries[(seed % adversaries.len() as u64) as usize];
            let mut campaign = Campaign::new(n, t, adversary);
            campaign.crypto = CryptoKind::Real;
            if let Err(error) = campaign.run_one(scenario, seed) {
                panic!(
                    "{} with real cryptography n={n} t={t} adversary={name}: seed {seed} failed: {error}\n\
                     replay: REPLICATION_SEED={seed} cargo test -p replication --release {test_name}",
                    scenario.name()
                );
            }
        }
    }
}

/// Delivers every queued message, and every message that causes, in order to its targets (a
/// hand-driven cluster without an adversary); returns what each node output.
pub fn deliver_all<P: Protocol>(
    nodes: &mut [P],
    mut queue: VecDeque<(PartyId, Target, P::Message)>,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<P::Output>> {
    let mut outputs: Vec<Vec<P::Output>> = (0..nodes.len()).map(|_| Vec::new()).collect();
    while let Some((from, target, message)) = queue.pop_front() {
        let targets: Vec<PartyId> = match target {
            Target::All => (0..nodes.len()).collect(),
            Target::Node(to) => vec![to],
        };
        for to in targets {
            let step = nodes[to].handle_message(from, message.clone(), rng);
            queue.extend(step.messages.into_iter().map(|m| (to, m.target, m.message)));
            outputs[to].extend(step.output);
        }
    }
    outputs
}

/// Gives node `id` an input and delivers the messages that causes, and everything they cause in
/// turn ([`deliver_all`]); returns what each node output on those messages.
pub fn input_and_deliver<P: Protocol>(
    nodes: &mut [P],
    id: PartyId,
    input: P::Input,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<P::Output>> {
    let step = nodes[id].handle_input(input, rng);
    deliver_all(nodes, step.messages.into_iter().map(|m| (id, m.target, m.message)).collect(), rng)
}
