//! Snapshots of secure causal atomic broadcast are exact: a replica restored from its snapshot
//! at any point sends, outputs and blames exactly what the original would have (else a
//! restarted replica replaying its log could contradict what it sent before the crash), and a
//! seed replays byte for byte.

mod common;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replication::PartyId;
use replication::atomic::AbcConfig;
use replication::atomic::secure::{SecureAtomicBroadcast, SnapshotError};
use replication::sim::scenarios::secure::{SecureScenario, instance};
use replication::sim::{Adversary, Campaign, CryptoKind, RunOptions, RunReport, seeds_from_env};

const CONFIGS: [(usize, usize); 2] = [(4, 1), (7, 2)];

/// Node restarts per run.
const RESTARTS: usize = 3;

/// `0..seeds`, or only `REPLICATION_SEED` when that is set.
fn seed_list(seeds: u64) -> Vec<u64> {
    match std::env::var("REPLICATION_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..seeds_from_env(seeds)).collect(),
    }
}

fn traced(restarts: Vec<(u64, PartyId)>) -> RunOptions {
    RunOptions { trace: true, restarts }
}

/// Where two runs first differ, if they do.
fn divergence(a: &RunReport<SecureAtomicBroadcast>, b: &RunReport<SecureAtomicBroadcast>) -> Option<String> {
    if let Some(step) = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y) {
        return Some(format!("traces differ from step {step} of {}", a.trace.len()));
    }
    if a.trace.len() != b.trace.len() {
        return Some(format!("traces have {} and {} steps", a.trace.len(), b.trace.len()));
    }
    if a.outputs != b.outputs {
        return Some("outputs differ".into());
    }
    if a.faults != b.faults {
        return Some("faults differ".into());
    }
    if (a.messages, a.deliveries) != (b.messages, b.deliveries) {
        return Some("message or delivery counts differ".into());
    }
    None
}

fn fail(what: &str, n: usize, t: usize, adversary: &str, seed: u64, why: &str, test: &str) -> ! {
    panic!(
        "{what} n={n} t={t} adversary={adversary}: seed {seed}: {why}\n\
         replay: REPLICATION_SEED={seed} cargo test -p replication --test snapshot_restore {test}"
    )
}

#[test]
fn a_node_restored_from_its_snapshot_mid_run_sends_outputs_and_blames_exactly_as_the_original() {
    let test = "a_node_restored_from_its_snapshot_mid_run_sends_outputs_and_blames_exactly_as_the_original";
    let scenario = SecureScenario::default();
    for (n, t) in CONFIGS {
        for (name, adversary) in Adversary::all() {
            let campaign = Campaign::new(n, t, adversary);
            for seed in seed_list(common::seeds(50, 30)) {
                let original = campaign
                    .run_one_with(&scenario, seed, traced(Vec::new()))
                    .unwrap_or_else(|e| fail("original run", n, t, name, seed, &e, test));
                // The restart points come from their own generator: the run's randomness (the
                // scheduler's and the adversary's choices) must stay the same.
                let mut pick = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_7374_6f72_6521);
                let honest = original.honest_nodes();
                let restarts = (0..RESTARTS)
                    .map(|_| (pick.gen_range(0..original.deliveries), honest[pick.gen_range(0..honest.len())]))
                    .collect();
                let restarted = campaign
                    .run_one_with(&scenario, seed, traced(restarts))
                    .unwrap_or_else(|e| fail("run with restarts", n, t, name, seed, &e, test));
                if let Some(why) = divergence(&original, &restarted) {
                    fail("restored run diverged", n, t, name, seed, &why, test);
                }
            }
        }
    }
}

#[test]
fn the_same_seed_gives_byte_identical_message_traces() {
    let test = "the_same_seed_gives_byte_identical_message_traces";
    let scenario = SecureScenario::default();
    for (n, t) in CONFIGS {
        for (name, adversary) in Adversary::all() {
            let campaign = Campaign::new(n, t, adversary);
            for seed in seed_list(common::seeds(5, 5)) {
                let a = campaign.run_one_with(&scenario, seed, traced(Vec::new()));
                let b = campaign.run_one_with(&scenario, seed, traced(Vec::new()));
                let (a, b) = match (a, b) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => fail("run", n, t, name, seed, &e, test),
                };
                assert!(!a.trace.is_empty());
                if let Some(why) = divergence(&a, &b) {
                    fail("same seed diverged", n, t, name, seed, &why, test);
                }
            }
        }
    }
}

#[test]
fn restore_refuses_another_partys_instances_configurations_and_corrupt_snapshots() {
    let scenario = SecureScenario::default();
    let report = Campaign::new(4, 1, Adversary::by_name("random").expect("known adversary"))
        .run_one(&scenario, 3)
        .expect("run passes");
    let config = scenario.config;
    let snapshot = report.nodes[1].snapshot();
    let keys = |p: usize| report.keys[p].clone();
    assert!(SecureAtomicBroadcast::restore(keys(1), instance(), config, &snapshot).is_ok());
    assert!(matches!(
        SecureAtomicBroadcast::restore(keys(2), instance(), config, &snapshot),
        Err(SnapshotError::WrongParty { expected: 2, found: 1 })
    ));
    let other = replication::InstanceId::root(99);
    assert!(matches!(
        SecureAtomicBroadcast::restore(keys(1), other, config, &snapshot),
        Err(SnapshotError::WrongInstance { .. })
    ));
    let bigger = AbcConfig { max_batch: config.max_batch + 1, ..config };
    assert!(matches!(
        SecureAtomicBroadcast::restore(keys(1), instance(), bigger, &snapshot),
        Err(SnapshotError::WrongConfig { .. })
    ));
    for bad in [Vec::new(), snapshot[..snapshot.len() / 2].to_vec(), [snapshot.as_slice(), &[0]].concat()] {
        assert!(matches!(
            SecureAtomicBroadcast::restore(keys(1), instance(), config, &bad),
            Err(SnapshotError::Decode(_))
        ));
    }
    // Another format version is refused before its contents are interpreted.
    let mut versioned = snapshot.clone();
    assert_eq!(versioned[0..2], [0x85, 0x05], "a 5-tuple starting with version 5");
    // Version 4 is the last one with BLS echoes and votes.
    versioned[1] = 0x04;
    assert!(matches!(
        SecureAtomicBroadcast::restore(keys(1), instance(), config, &versioned),
        Err(SnapshotError::Version { expected: 5, found: 4 })
    ));
}

#[test]
fn with_the_real_cryptography_a_restored_node_also_behaves_exactly_as_the_original() {
    // BLS signature and decryption shares and Ed25519 signatures are deterministic, so exact
    // replay holds with the real schemes too; a few seeds, each adversary in turn.
    let test = "with_the_real_cryptography_a_restored_node_also_behaves_exactly_as_the_original";
    let scenario = SecureScenario::default();
    let adversaries = Adversary::all();
    let (n, t) = (4, 1);
    for seed in seed_list(common::seeds(4, 4)) {
        let (name, adversary) = adversaries[seed as usize % adversaries.len()];
        let mut campaign = Campaign::new(n, t, adversary);
        campaign.crypto = CryptoKind::Real;
        let original = campaign
            .run_one_with(&scenario, seed, traced(Vec::new()))
            .unwrap_or_else(|e| fail("original run", n, t, name, seed, &e, test));
        let honest = original.honest_nodes();
        let restarts = vec![(original.deliveries / 2, honest[seed as usize % honest.len()])];
        let restarted = campaign
            .run_one_with(&scenario, seed, traced(restarts))
            .unwrap_or_else(|e| fail("run with a restart", n, t, name, seed, &e, test));
        if let Some(why) = divergence(&original, &restarted) {
            fail("restored run diverged", n, t, name, seed, &why, test);
        }
    }
}
