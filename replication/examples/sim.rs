//! Long simulator campaigns: `cargo run -p replication --release --features sim --example sim -- --seeds N
//! --protocol P --adversary A [--n N --t T] [--from SEED] [--crypto standin|real]
//! [--requests R --batch B] [--request-bytes S (abc)] [--no-bytes]`. `P` is one of rbc, cbc, abba,
//! abba-validated, mvba, abc, scabc (or `all`); `A` an adversary name or `all`. Prints one table row per
//! (protocol, configuration, adversary): seeds, failures, mean/max ABBA rounds, messages and
//! bytes per delivered request, faults reported, rounds nodes took from a peer's records because
//! they fell too far behind (the runtime's catch-up), wall time, and the process's CPU
//! milliseconds per delivered request (all nodes run on one thread, so this is the CPU cost of
//! ordering for the whole cluster, including the simulator's own checks; CPU rather than wall
//! time, so a busy machine does not inflate it). Exits non-zero if any seed failed (the first failing seeds are
//! printed with the `--from SEED --seeds 1` that replays them). `--help` lists the flags.

use replication::sim::scenarios::atomic::AtomicScenario;
use replication::sim::scenarios::binary::BinaryScenario;
use replication::sim::scenarios::consistent::ConsistentScenario;
use replication::sim::scenarios::reliable::ReliableScenario;
use replication::sim::scenarios::secure::SecureScenario;
use replication::sim::scenarios::validated::ValidatedScenario;
use replication::sim::{Adversary, Campaign, CampaignStats, CryptoKind, Scenario};
use std::time::Instant;

const USAGE: &str = "\
usage: sim [--protocol P] [--adversary A] [--seeds N] [--from SEED] [--n N [--t T]]
           [--crypto standin|real] [--requests R] [--batch B] [--request-bytes S] [--no-bytes]
  --protocol P        rbc, cbc, abba, abba-validated, mvba, abc, scabc or all (default all)
  --adversary A       random, starve, partition, crash-start, crash-random, silent, equivocate,
                      invalid-shares, replay, garbage, coin-timing, coin-adaptive or all
                      (default all)
  --seeds N           seeds per row (default 100), starting at --from (default 0)
  --n N --t T         one configuration (t defaults to (n-1)/3; default: 4/1, 7/2 and 10/3)
  --crypto C          standin (fast, default) or real (BLS12-381, threshold encryption, Ed25519)
  --requests R        most requests per node (abc, scabc)
  --batch B           batch size (abc, scabc)
  --request-bytes S   size of each request (abc)
  --no-bytes          skip encoding every message (faster; bytes/req shows 0)
A failing seed is printed with its replay value; --from SEED --seeds 1 reruns exactly that run.";

struct Args {
    seeds: u64,
    from: u64,
    protocol: String,
    adversary: String,
    configs: Vec<(usize, usize)>,
    crypto: CryptoKind,
    /// Most requests per node (atomic broadcast protocols).
    requests: Option<u32>,
    /// Batch size (atomic broadcast protocols).
    batch: Option<usize>,
    /// Size of each request (atomic broadcast protocols).
    request_bytes: Option<usize>,
    /// Skip encoding every message (faster; bytes/req shows 0).
    no_bytes: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 100,
        from: 0,
        protocol: "all".into(),
        adversary: "all".into(),
        configs: vec![(4, 1), (7, 2), (10, 3)],
        crypto: CryptoKind::Standin,
        requests: None,
        batch: None,
        request_bytes: None,
        no_bytes: false,
    };
    let mut n = None;
    let mut t = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => args.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--from" => args.from = value()?.parse().map_err(|e| format!("--from: {e}"))?,
            "--protocol" => args.protocol = value()?,
            "--adversary" => args.adversary = value()?,
            "--crypto" => {
                args.crypto = match value()?.as_str() {
                    "standin" => CryptoKind::Standin,
                    "real" => CryptoKind::Real,
                    other => return Err(format!("--crypto: unknown {other} (standin, real)")),
                }
            }
            "--requests" => args.requests = Some(value()?.parse().map_err(|e| format!("--requests: {e}"))?),
            "--batch" => args.batch = Some(value()?.parse().map_err(|e| format!("--batch: {e}"))?),
            "--request-bytes" => {
                args.request_bytes = Some(value()?.parse().map_err(|e| format!("--request-bytes: {e}"))?)
            }
            "--no-bytes" => args.no_bytes = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--n" => n = Some(value()?.parse().map_err(|e| format!("--n: {e}"))?),
            "--t" => t = Some(value()?.parse().map_err(|e| format!("--t: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if let Some(n) = n {
        let t = t.unwrap_or((n - 1) / 3);
        if n <= 3 * t {
            return Err(format!("need n > 3t (n={n}, t={t})"));
        }
        args.configs = vec![(n, t)];
    }
    Ok(args)
}

fn row<S: Scenario>(scenario: &S, args: &Args, failed: &mut bool) {
    let adversaries: Vec<(&str, Adversary)> = if args.adversary == "all" {
        Adversary::all()
    } else {
        Adversary::all().into_iter().filter(|(name, _)| *name == args.adversary).collect()
    };
    for &(n, t) in &args.configs {
        for (name, adversary) in &adversaries {
            let mut campaign = Campaign::new(n, t, *adversary);
            campaign.count_bytes = !args.no_bytes;
            campaign.crypto = args.crypto;
            let start = Instant::now();
            let cpu_start = cpu_seconds();
            let stats: CampaignStats = campaign.run_many(scenario, args.from..args.from + args.seeds);
            let per = |x: u64| {
                if stats.delivered_requests == 0 { 0.0 } else { x as f64 / stats.delivered_requests as f64 }
            };
            println!(
                "{:<15} {:>3} {:>2} {:<15} {:>7} {:>8} {:>10.2} {:>9} {:>12.1} {:>12.1} {:>9} {:>9} {:>9.2} {:>10.3}",
                scenario.name(),
                n,
                t,
                name,
                stats.seeds,
                stats.failures.len(),
                stats.mean_abba_rounds(),
                stats.abba_rounds_max,
                per(stats.messages),
                per(stats.bytes),
                stats.faults,
                stats.caught_up,
                start.elapsed().as_secs_f64(),
                per(((cpu_seconds() - cpu_start) * 1e6) as u64) / 1000.0,
            );
            for (seed, error) in stats.failures.iter().take(3) {
                *failed = true;
                println!("    seed {seed}: {error}  (replay: --from {seed} --seeds 1)");
            }
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{:<15} {:>3} {:>2} {:<15} {:>7} {:>8} {:>10} {:>9} {:>12} {:>12} {:>9} {:>9} {:>9} {:>10}",
        "protocol",
        "n",
        "t",
        "adversary",
        "seeds",
        "failures",
        "abba-mean",
        "abba-max",
        "msgs/req",
        "bytes/req",
        "faults",
        "caught-up",
        "secs",
        "cpu-ms/req"
    );
    let mut failed = false;
    let p = args.protocol.as_str();
    let mut known = false;
    if p == "all" || p == "rbc" {
        known = true;
        row(&ReliableScenario, &args, &mut failed);
    }
    if p == "all" || p == "cbc" {
        known = true;
        row(&ConsistentScenario, &args, &mut failed);
    }
    if p == "all" || p == "abba" {
        known = true;
        row(&BinaryScenario { validated: false }, &args, &mut failed);
    }
    if p == "all" || p == "abba-validated" {
        known = true;
        row(&BinaryScenario { validated: true }, &args, &mut failed);
    }
    if p == "all" || p == "mvba" {
        known = true;
        row(&ValidatedScenario, &args, &mut failed);
    }
    if p == "all" || p == "abc" {
        known = true;
        let mut scenario = AtomicScenario::default();
        if let Some(r) = args.requests {
            scenario.max_requests_per_node = r;
        }
        if let Some(b) = args.batch {
            scenario.config.max_batch = b;
        }
        if let Some(bytes) = args.request_bytes {
            scenario.request_bytes = bytes;
        }
        row(&scenario, &args, &mut failed);
    }
    if p == "all" || p == "scabc" {
        known = true;
        let mut scenario = SecureScenario::default();
        if let Some(r) = args.requests {
            scenario.max_requests_per_node = r;
        }
        if let Some(b) = args.batch {
            scenario.config.max_batch = b;
        }
        row(&scenario, &args, &mut failed);
    }
    if !known {
        eprintln!("error: unknown protocol {p}");
        std::process::exit(2);
    }
    if failed {
        std::process::exit(1);
    }
}

/// CPU time (user and system) this process has used, in seconds, from `/proc/self/stat` (clock
/// ticks of 1/100 s, enough for runs of seconds); 0 where that file does not exist.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
