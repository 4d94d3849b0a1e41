//! Runtime benchmark (issue 4's targets): four replica runtimes in one process on 127.0.0.1,
//! real TLS links, real cryptography, write-ahead logging with fsync. Prints a table:
//! - saturated ordering throughput of small plain requests (no faults);
//! - p50/p99 delivery latency of one request at a time (low load), all up and one replica down;
//! - how long a replica that missed 10,000 requests takes to be back in step after a restart.
//!
//! Run with `cargo bench -p replication --bench runtime` (add `-- --quick` for a short run).

use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use prometheus_client::registry::Registry;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use replication::atomic::secure::Request;
use replication::runtime::{OrderedRound, Runtime, RuntimeConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

struct Replica {
    runtime: Option<Arc<Runtime>>,
    delivered: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
    count: Arc<std::sync::atomic::AtomicU64>,
}

fn free_base(n: usize) -> u16 {
    // Outside the ephemeral port range, so no outgoing connection takes a replica's port.
    hosts::free_local_base(n, 0).expect("free ports outside the ephemeral range")
}

async fn start(ca: &Path, data: &Path, id: usize) -> Replica {
    let mut config = RuntimeConfig::new(ca.join(format!("replica-{id}/replica.toml")), data.join(format!("data-{id}")));
    config.limits.max_own_queued = 50_000;
    let mut registry = Registry::default();
    let (runtime, outputs) = Runtime::start(config, &mut registry).await.expect("runtime starts");
    let rounds = outputs.rounds;
    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(drain(rounds, delivered.clone(), count.clone()));
    Replica { runtime: Some(Arc::new(runtime)), delivered, count }
}

async fn drain(
    mut rounds: mpsc::Receiver<OrderedRound>,
    delivered: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
    count: Arc<std::sync::atomic::AtomicU64>,
) {
    while let Some(round) = rounds.recv().await {
        let now = Instant::now();
        let mut map = delivered.lock().await;
        for r in &round.requests {
            map.insert(r.digest, now);
        }
        count.fetch_add(round.requests.len() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn wait_count(replica: &Replica, at_least: u64, timeout: Duration) -> bool {
    let start = Instant::now();
    while replica.count.load(std::sync::atomic::Ordering::SeqCst) < at_least {
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// One request at a time through `via`; latency until `via` delivers it.
async fn low_load_latency(replicas: &[Replica], via: usize, samples: usize, tag: &str) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for i in 0..samples {
        let runtime = replicas[via].runtime.as_ref().expect("running");
        let start = Instant::now();
        let digest = runtime.submit(Request::Plain(format!("{tag}-{i}").into_bytes())).await.expect("submit accepted");
        loop {
            if let Some(at) = replicas[via].delivered.lock().await.get(&digest) {
                latencies.push(at.duration_since(start));
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("request {i} not delivered within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    latencies
}

/// Submits `total` requests from `clients` concurrent submitters spread over `via`, and
/// returns the time until replica `via[0]` delivered them all.
async fn saturate(replicas: &[Replica], via: &[usize], total: usize, clients: usize, tag: &str) -> Duration {
    let observer = &replicas[via[0]];
    let before = observer.count.load(std::sync::atomic::Ordering::SeqCst);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let runtime = replicas[via[c % via.len()]].runtime.clone().expect("running");
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (c..total).step_by(clients) {
                let request =
                    Request::Plain(format!("{tag}-{i:08}-padding-to-sixty-four-bytes-xxxxxxxxxxxx").into_bytes());
                loop {
                    match runtime.submit(request.clone()).await {
                        Ok(_) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("submitter");
    }
    assert!(wait_count(observer, before + total as u64, Duration::from_secs(300)).await, "saturation run finished");
    start.elapsed()
}

fn row(name: &str, value: String, target: &str) {
    println!("| {name:<52} | {value:>14} | {target:<22} |");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (saturation_requests, samples, missed) = if quick { (2_000, 20, 2_000) } else { (20_000, 100, 10_000) };
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca: PathBuf = tmp.path().join("ca");
    let params = CeremonyParams {
        n: 4,
        t: 1,
        name: "Runtime Bench CA".into(),
        hosts: hosts::local_hosts(4, free_base(4)).expect("ports"),
        bits: 1024,
        out: ca.clone(),
        names: Vec::new(),
    };
    ceremony::run(&params, 1024, &mut ChaCha20Rng::seed_from_u64(1), &mut |_| {}).expect("ceremony");
    let mut replicas = Vec::new();
    for id in 0..4 {
        replicas.push(start(&ca, tmp.path(), id).await);
    }
    // Warm-up: links up, first rounds done.
    let _ = low_load_latency(&replicas, 0, 5, "warmup").await;

    println!("| {:<52} | {:>14} | {:<22} |", "measurement (n = 4, t = 1, one machine)", "result", "target");
    println!("|{}|{}|{}|", "-".repeat(54), "-".repeat(16), "-".repeat(24));
    let latencies = low_load_latency(&replicas, 0, samples, "low").await;
    let p50_all = percentile(&latencies, 0.5);
    row("low load: p50 delivery latency", format!("{:.1} ms", p50_all.as_secs_f64() * 1e3), "< 50 ms");
    row("low load: p99 delivery latency", format!("{:.1} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3), "");

    let elapsed = saturate(&replicas, &[0, 1, 2, 3], saturation_requests, 64, "sat").await;
    let rate = saturation_requests as f64 / elapsed.as_secs_f64();
    row(
        &format!("saturated: {saturation_requests} requests of 64 B, 64 submitters"),
        format!("{rate:.0} req/s"),
        ">= 2,000 req/s",
    );

    // One replica down.
    if let Some(rt) = replicas[3].runtime.take()
        && let Ok(rt) = Arc::try_unwrap(rt)
    {
        rt.shutdown().await.expect("shutdown");
    }
    let latencies = low_load_latency(&replicas, 0, samples, "down").await;
    let p50_down = percentile(&latencies, 0.5);
    row(
        "one replica down: p50 delivery latency",
        format!("{:.1} ms ({:.1}x)", p50_down.as_secs_f64() * 1e3, p50_down.as_secs_f64() / p50_all.as_secs_f64()),
        "<= 2x the p50 above",
    );

    // Replica 3 misses `missed` requests, then restarts and catches up.
    let _ = saturate(&replicas, &[0, 1, 2], missed, 64, "missed").await;
    let target = replicas[0].count.load(std::sync::atomic::Ordering::SeqCst);
    let restart = Instant::now();
    replicas[3] = start(&ca, tmp.path(), 3).await;
    let caught_up = wait_count(&replicas[3], target, Duration::from_secs(120)).await;
    let took = restart.elapsed();
    row(
        &format!("restart after missing {missed} requests: back in step"),
        if caught_up { format!("{:.2} s", took.as_secs_f64()) } else { "did not".into() },
        "<= 10 s",
    );
    for r in replicas.iter_mut() {
        if let Some(rt) = r.runtime.take()
            && let Ok(rt) = Arc::try_unwrap(rt)
        {
            let _ = rt.shutdown().await;
        }
    }
}
