//! Network faults between real replicas, injected by TCP proxies the test controls on every
//! replica-to-replica link (127.0.0.1 only; see `support::proxy` for why not `tc netem`):
//! - a partition that leaves no quorum (2 | 2 with n = 4): no replica applies anything new and no
//!   two logs diverge; once healed, progress resumes and every accepted request settles;
//! - one replica isolated: the other three keep issuing; back, it catches up;
//! - delay, loss and resets on every link: requests still complete and the replicas agree.
//!
//! Clients reach every replica directly throughout: the faults are between replicas. CI runs a
//! short slice; `ITCA_CAMPAIGN=full` runs every scenario with several seeds (docs/RELIABILITY.md).

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use support::cluster::{Load, Replicas, campaign_seed, full_campaign, wait_accepted};
use support::proxy::{Mode, Proxy, isolate, link, proxy_every_link};

/// The scenarios run one at a time: three four-replica clusters at once would measure the
/// machine's two cores, not the protocol.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runs() -> usize {
    if full_campaign() { 5 } else { 1 }
}

/// Seeds for each run: the first is the printed one, so the slice replays exactly.
fn run_seeds(test: &str) -> Vec<u64> {
    let seed = campaign_seed(test);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..runs()).map(|run| if run == 0 { seed } else { rng.r#gen() }).collect()
}

/// A cluster with a proxy on every link, started, with a load running and a first request
/// settled everywhere (so the links are known to work before faults are injected).
fn proxied_cluster(seed: u64) -> (Replicas, BTreeMap<(usize, usize), Proxy>, Load) {
    let mut replicas = Replicas::local(seed);
    let proxies = proxy_every_link(&replicas, seed);
    replicas.start_all();
    replicas.wait_healthy(&[0, 1, 2, 3], Duration::from_secs(60));
    let load = Load::start(&replicas, 2, Duration::from_millis(200), seed);
    assert!(wait_accepted(&load, 3, Duration::from_secs(30)), "the load never got going\n{}", replicas.logs(20));
    replicas.wait_applied(&[0, 1, 2, 3], 1, Duration::from_secs(60));
    (replicas, proxies, load)
}

/// Waits until every accepted request settled at every replica and all four logs are one.
fn settle_and_converge(replicas: &Replicas, load: Load, seed: u64, what: &str) {
    replicas.settle_and_converge(load, &[0, 1, 2, 3], &format!("seed {seed}: {what}"));
}

#[test]
fn a_partition_without_a_quorum_stops_progress_without_divergence_and_progress_resumes_when_healed() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in run_seeds("partition 2|2") {
        let started = Instant::now();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (replicas, proxies, load) = proxied_cluster(seed);
        // A random 2 | 2 split: neither side has the n - t = 3 a round needs.
        let mut order = [0, 1, 2, 3];
        order.shuffle(&mut rng);
        let (left, right) = (order[..2].to_vec(), order[2..].to_vec());
        for a in &left {
            for b in &right {
                proxies[&link(*a, *b)].cut();
            }
        }
        // Rounds whose messages were already through may still finish; then nothing may.
        std::thread::sleep(Duration::from_secs(2));
        let frozen = replicas.log_sizes();
        let accepted_at_cut = load.accepted_count();
        let window = if full_campaign() { 10 } else { 4 };
        std::thread::sleep(Duration::from_secs(window));
        let later = replicas.log_sizes();
        assert!(frozen.iter().all(Option::is_some), "every replica still answers: {frozen:?}");
        assert_eq!(later, frozen, "seed {seed}: a replica applied entries without a quorum ({left:?} | {right:?})");
        assert!(
            load.accepted_count() > accepted_at_cut,
            "seed {seed}: the replicas kept accepting requests during the partition"
        );
        replicas.assert_prefix_consistent(&[0, 1, 2, 3]);
        eprintln!(
            "seed {seed}: {left:?} | {right:?}: logs frozen at {frozen:?} for {window} s while {} more requests were accepted",
            load.accepted_count() - accepted_at_cut
        );

        for proxy in proxies.values() {
            proxy.heal();
        }
        let healed = Instant::now();
        let before: u64 = frozen.iter().flatten().copied().max().unwrap_or(0);
        while replicas.log_sizes().iter().flatten().copied().max().unwrap_or(0) <= before {
            assert!(healed.elapsed() < Duration::from_secs(60), "seed {seed}: no progress after healing");
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("seed {seed}: progress resumed {:?} after healing", healed.elapsed());
        settle_and_converge(&replicas, load, seed, "partition healed");
        eprintln!("seed {seed}: partition scenario took {:?}", started.elapsed());
    }
}

#[test]
fn an_isolated_replica_does_not_stop_the_others_and_catches_up_when_back() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in run_seeds("one replica isolated") {
        let started = Instant::now();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (replicas, proxies, load) = proxied_cluster(seed);
        let isolated = rng.gen_range(0..4);
        let others: Vec<usize> = (0..4).filter(|id| *id != isolated).collect();
        isolate(&proxies, isolated, false);
        std::thread::sleep(Duration::from_secs(1));
        let at_cut = replicas.log_sizes();
        let size_at_cut = others.iter().filter_map(|id| at_cut[*id]).max().unwrap_or(0);
        // The isolated replica still accepts requests from clients (it reaches no peer, so they
        // wait in its queue); the other three keep ordering theirs.
        let window = Duration::from_secs(if full_campaign() { 15 } else { 4 });
        std::thread::sleep(window);
        let grown = replicas.wait_applied(&others, size_at_cut + 1, Duration::from_secs(60));
        let isolated_size = replicas.health(isolated).map(|h| h.log_size);
        assert!(
            isolated_size.is_some_and(|s| s < grown),
            "seed {seed}: the isolated replica {isolated} cannot have applied what the others ordered without it: {isolated_size:?} vs {grown}"
        );
        replicas.assert_prefix_consistent(&[0, 1, 2, 3]);
        eprintln!("seed {seed}: replica {isolated} isolated: the others went from {size_at_cut} to {grown} entries");

        isolate(&proxies, isolated, true);
        settle_and_converge(&replicas, load, seed, "isolated replica back");
        eprintln!("seed {seed}: isolation scenario took {:?}", started.elapsed());
    }
}

#[test]
fn requests_complete_and_replicas_agree_over_links_with_delay_loss_and_resets() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in run_seeds("delay and loss") {
        let started = Instant::now();
        let (replicas, proxies, load) = proxied_cluster(seed);
        for proxy in proxies.values() {
            proxy.set(Mode::LOSSY);
        }
        let before = load.accepted_count();
        let size_before = replicas.log_sizes().iter().flatten().copied().max().unwrap_or(0);
        let window = Duration::from_secs(if full_campaign() { 30 } else { 4 });
        std::thread::sleep(window);
        let accepted = load.accepted_count() - before;
        // What was accepted over the faulty links is ordered over them too: the links stay
        // faulty until every request has settled.
        settle_and_converge(&replicas, load, seed, "faulty links");
        let resets: u64 = proxies.values().map(Proxy::resets).sum();
        let size = replicas.log_sizes().iter().flatten().copied().max().unwrap_or(0);
        assert!(size > size_before, "seed {seed}: nothing was ordered over the faulty links");
        eprintln!(
            "seed {seed}: {accepted} requests accepted over faulty links ({resets} connections reset), log {size_before} -> {size}; {:?}",
            started.elapsed()
        );
    }
}
