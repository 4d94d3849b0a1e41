//! Issuance benchmark (DESIGN.md §8; issue 8): in one run on this machine, clusters of n = 4, 7
//! and 10 release-build `ca-server run` processes with 2048-bit root keys, and n = 4 with 3072,
//! each driven at low load and to saturation by `ca_client::bench` over HTTPS; beside them the
//! baseline a user would pick instead, one process signing the same certificates with one full
//! RSA key. Writes a markdown table and SVG plots.
//!
//! Run with `cargo bench -p ca-server --bench issuance` (add `-- --quick` for a short smoke run).
//! `cargo bench` builds the `ca-server` binary with the bench profile (the release profile) into
//! `target/release/ca-server`; if it is missing anyway, `cargo build --release -p ca-server`.
//!
//! Options (after `--`): `--quick`; `--configs=4x2048,7x2048,10x2048,4x3072` (the default);
//! `--low=N` (sequential low-load requests), `--requests=N` and `--clients=C1,C2,...` (saturation
//! with each number of closed-loop clients; default 32 and 128: the first is where latency is
//! judged, the larger one lets rounds grow to where throughput stops rising);
//! `--baseline=N` (certificates the single-key baseline signs); `--out=DIR` (default
//! `docs/bench` in the workspace: `issuance.md` and the `*.svg` plots); `--keep` (keep the
//! clusters' folders).
//!
//! Per configuration:
//! 1. a dealer ceremony (t = (n - 1) / 3, every replica on 127.0.0.1) and n replica processes;
//! 2. the RSA share's CPU time in this process (median of 50 before the runs and 50 after) and the §8 ceiling
//!    `cores / (n x share time)`;
//! 3. a warm-up (one certificate per replica), then low load (one client, a pause before each
//!    request) and saturation (`C` closed-loop clients): throughput of verified certificates,
//!    exact latency percentiles, refusals and failures, and from every replica's `/metrics`
//!    its CPU and memory and the bytes and messages it sent to its peers.
//!
//! P-256 CSRs and the signed commands are made before any timing starts, for the cluster and the
//! baseline alike.

use ca_api::AccountSecret;
use ca_api::policy::Policy;
use ca_client::bench::{self, BenchConfig, Report};
use ca_client::keys::{KeyType, PrivateKey};
use ca_client::{Client, Options as ClientOptions};
use ca_server::certificate::{self, EndEntity, Issuer};
use ca_server::config::CaConfig;
use ca_server::csr::{self, CsrLimits};
use ca_server::profile;
use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x509_cert::name::RdnSequence;

/// Pause (not timed) before each low-load request, so each one meets an idle cluster.
const LOW_LOAD_GAP: Duration = Duration::from_millis(50);
/// Seconds a submission asks the replica to wait for the signed certificate.
const SERVER_WAIT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn fail(message: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
    message.into().into()
}

// ---------------------------------------------------------------- options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    n: usize,
    bits: u32,
}

impl Config {
    fn t(self) -> usize {
        (self.n - 1) / 3
    }

    fn label(self) -> String {
        format!("n = {}, RSA-{}", self.n, self.bits)
    }
}

struct Options {
    quick: bool,
    configs: Vec<Config>,
    low: usize,
    requests: usize,
    clients: Vec<usize>,
    baseline: usize,
    out: PathBuf,
    keep: bool,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            quick,
            configs: [(4, 2048), (7, 2048), (10, 2048), (4, 3072)].map(|(n, bits)| Config { n, bits }).to_vec(),
            low: if quick { 10 } else { 50 },
            requests: if quick { 100 } else { 2000 },
            clients: if quick { vec![16] } else { vec![32, 128] },
            baseline: if quick { 100 } else { 2000 },
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench"),
            keep: args.iter().any(|a| a == "--keep"),
        };
        for arg in &args {
            let number = |v: &str| -> Result<usize> {
                v.parse::<usize>().map(|v| v.max(1)).map_err(|_| fail(format!("{arg}: not a number")))
            };
            if let Some(v) = arg.strip_prefix("--low=") {
                options.low = number(v)?;
            } else if let Some(v) = arg.strip_prefix("--requests=") {
                options.requests = number(v)?;
            } else if let Some(v) = arg.strip_prefix("--clients=") {
                options.clients = v.split(',').map(number).collect::<Result<_>>()?;
            } else if let Some(v) = arg.strip_prefix("--baseline=") {
                options.baseline = number(v)?;
            } else if let Some(v) = arg.strip_prefix("--out=") {
                options.out = PathBuf::from(v);
            } else if let Some(v) = arg.strip_prefix("--configs=") {
                options.configs = v
                    .split(',')
                    .map(|c| {
                        let (n, bits) = c.split_once('x').ok_or_else(|| fail(format!("{c}: expected NxBITS")))?;
                        let config = Config { n: number(n)?, bits: number(bits)? as u32 };
                        if config.n < 4 {
                            return Err(fail(format!("{c}: n must be at least 4")));
                        }
                        Ok(config)
                    })
                    .collect::<Result<_>>()?;
            }
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------- the cluster

/// The `ca-server` binary `cargo bench` built with the bench (= release) profile.
fn server_binary() -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_ca-server"));
    if !path.is_file() {
        return Err(fail(format!(
            "the release binary {} is missing: build it with `cargo build --release -p ca-server` \
             (or run this through `cargo bench -p ca-server --bench issuance`, which builds it)",
            path.display()
        )));
    }
    if !path.components().any(|c| c.as_os_str() == "release") {
        eprintln!("warning: {} does not look like a release build", path.display());
    }
    Ok(path)
}

/// A base port with `2 n` free ports after it on 127.0.0.1 (HTTPS ports, then peer ports).
fn free_base(n: usize) -> u16 {
    // Outside the ephemeral port range, so no outgoing connection takes a replica's port.
    hosts::free_local_base(n, rand::random()).expect("free ports outside the ephemeral range")
}

/// `n` replica processes; stopped (SIGTERM, then SIGKILL) when dropped, and killed by the kernel
/// if this process dies first.
struct Cluster {
    dir: PathBuf,
    ca: PathBuf,
    children: Vec<Child>,
    keep: bool,
}

impl Cluster {
    fn start(binary: &Path, config: Config, keep: bool) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("itca-bench-").tempdir()?.keep();
        // From here on, dropping `cluster` removes the folder and stops what was started.
        let mut cluster = Cluster { ca: dir.join("ca"), dir, children: Vec::new(), keep };
        let params = CeremonyParams {
            n: config.n,
            t: config.t(),
            name: "Issuance Bench CA".into(),
            hosts: hosts::local_hosts(config.n, free_base(config.n))?,
            bits: config.bits,
            out: cluster.ca.clone(),
            names: dealer::policy::default_profile_names(&[], true)?,
        };
        let started = Instant::now();
        eprintln!("dealer ceremony ({}, t = {}) in {} ...", config.label(), config.t(), cluster.dir.display());
        ceremony::run(&params, config.bits, &mut ChaCha20Rng::from_entropy(), &mut |_| {})?;
        eprintln!("ceremony done in {:.1} s", started.elapsed().as_secs_f64());
        for id in 0..config.n {
            let log = std::fs::File::create(cluster.dir.join(format!("replica-{id}.log")))?;
            let mut command = Command::new(binary);
            command
                .args(["run", "--config"])
                .arg(cluster.ca.join(format!("replica-{id}/replica.toml")))
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null());
            ca_server::server::child::die_with_parent(&mut command);
            cluster.children.push(command.spawn()?);
        }
        Ok(cluster)
    }

    fn stop(&mut self) {
        for child in &self.children {
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if self.keep {
            eprintln!("kept the cluster folder {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn wait_healthy(client: &Client) -> Result<()> {
    let start = Instant::now();
    loop {
        let statuses = client.status().await;
        let healthy = |s: &ca_client::client::ReplicaStatus| {
            s.health.as_ref().is_ok_and(|h| h.status == "ok") && s.peers_connected == Some(client.n() - 1)
        };
        if statuses.iter().all(healthy) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(fail("the replicas were not all healthy and connected within 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------- the machine

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {} cores, {mem_gib:.0} GiB, Linux {}", cores(), kernel.trim())
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

// ---------------------------------------------------------------- the single-key baseline

/// What one process with the whole RSA key costs per certificate: the same CSR checks, profile
/// check, TBS builder and certificate assembly the replicas run, and one full-key RSA signature
/// (the `rsa` crate, blinded), on every core at once.
struct Baseline {
    bits: u32,
    certificates: usize,
    seconds: f64,
    /// CPU time of all its threads.
    cpu: Duration,
    threads: usize,
}

impl Baseline {
    fn throughput(&self) -> f64 {
        self.certificates as f64 / self.seconds
    }

    fn run(bits: u32, csrs: &[Vec<u8>], policy: &Policy, issuer: &Issuer) -> Result<Baseline> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits as usize)?;
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
        let profile = policy.profile("default").ok_or_else(|| fail("the policy has no default profile"))?;
        let limits = CsrLimits::default();
        let threads = cores().min(csrs.len()).max(1);
        let chunk = csrs.len().div_ceil(threads);
        let started = Instant::now();
        let cpu = std::thread::scope(|scope| -> Result<Duration> {
            let handles: Vec<_> = csrs
                .chunks(chunk)
                .enumerate()
                .map(|(part, csrs)| {
                    let signer = &signer;
                    scope.spawn(move || -> Result<Duration> {
                        let cpu_start = thread_cpu_time();
                        let mut rng = rand::rngs::OsRng;
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
                        for (i, der) in csrs.iter().enumerate() {
                            let csr = csr::parse_der(der, &limits)?;
                            let allowed = profile::check(profile, &csr, None)?;
                            let cert = EndEntity {
                                serial: certificate::serial_from([part as u8; 32], i as u64),
                                not_before: now,
                                not_after: now + u64::from(allowed.validity_days) * 86_400 - 1,
                                subject: RdnSequence(Vec::new()),
                                dns_names: allowed.dns_names,
                                ip_addresses: Vec::new(),
                                public_key: csr.public_key,
                                extended_key_usages: allowed.extended_key_usages,
                                crl_url: None,
                            };
                            let tbs = certificate::tbs_certificate(issuer, &cert)?;
                            let signature = signer.sign_with_rng(&mut rng, &tbs).to_vec();
                            std::hint::black_box(certificate::assemble(&tbs, &signature)?);
                        }
                        Ok(thread_cpu_time().saturating_sub(cpu_start))
                    })
                })
                .collect();
            let mut cpu = Duration::ZERO;
            for handle in handles {
                cpu += handle.join().map_err(|_| fail("a baseline thread panicked"))??;
            }
            Ok(cpu)
        })?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(Baseline { bits, certificates: csrs.len(), seconds, cpu, threads })
    }
}

// ---------------------------------------------------------------- one configuration

struct Measured {
    config: Config,
    /// CPU time of one signature share (median of the samples before and after the runs), and
    /// its wall time.
    share_time: Duration,
    /// The CPU-time medians before and after the runs alone: how far the machine drifted.
    share_before: Duration,
    share_after: Duration,
    share_wall: Duration,
    ceiling: f64,
    low: Report,
    /// One run per number of clients ([`Options::clients`]), in that order.
    saturation: Vec<Report>,
}

impl Measured {
    /// The saturation run with the highest throughput.
    fn best(&self) -> Option<&Report> {
        self.saturation.iter().max_by(|a, b| a.throughput.total_cmp(&b.throughput))
    }
}

fn measure(options: &Options, binary: &Path, config: Config, runtime: &tokio::runtime::Runtime) -> Result<Measured> {
    let mut cluster = Cluster::start(binary, config, options.keep)?;
    let result = measure_cluster(options, &cluster, config, runtime);
    if let Err(e) = &result {
        eprintln!("{}: {e}; the replicas' logs are in {} (kept)", config.label(), cluster.dir.display());
        cluster.keep = true;
    }
    cluster.stop();
    result
}

fn measure_cluster(
    options: &Options,
    cluster: &Cluster,
    config: Config,
    runtime: &tokio::runtime::Runtime,
) -> Result<Measured> {
    let client_options =
        ClientOptions { request_timeout: SERVER_WAIT + Duration::from_secs(30), ..ClientOptions::default() };
    let client = Client::open(&cluster.ca.join("public/cluster.json"), client_options)?;
    let operator =
        AccountSecret::from_pkcs8_pem(&std::fs::read_to_string(cluster.ca.join("operator/account-key.pem"))?)
            .map_err(|e| fail(format!("the operator key: {e}")))?;
    runtime.block_on(wait_healthy(&client))?;
    eprintln!("{}: replicas healthy", config.label());

    // The share time, while the cluster is idle: before the runs and again after them, because
    // this machine's speed drifts over minutes (a share took 2.0 ms in one run and 3.0 ms an
    // hour later), and the ceiling must describe the machine the runs had.
    let replica = CaConfig::load(&cluster.ca.join("replica-0/replica.toml"), cluster.dir.join("unused.sqlite"))?;
    let (mut cpu, mut wall) = share_samples(&replica);
    eprintln!(
        "{}: share {:.2} ms CPU, {:.2} ms wall before the runs (medians of {SHARE_SAMPLES})",
        config.label(),
        ms(median(cpu.clone())),
        ms(median(wall.clone()))
    );

    let run = |clients: usize, requests: usize, think_time: Duration| -> Result<Report> {
        let bench_config = BenchConfig {
            clients,
            requests,
            key_type: KeyType::EcP256,
            server_wait: SERVER_WAIT,
            think_time,
            progress: true,
            ..BenchConfig::default()
        };
        Ok(runtime.block_on(bench::run(&client, &operator, &bench_config))?)
    };
    // Warm-up: connections, caches and the first CRL, one certificate through each replica.
    let warmup = run(config.n, config.n, Duration::ZERO)?;
    if warmup.issued != config.n {
        return Err(fail(format!("warm-up: {}", warmup.to_text())));
    }
    let low = run(1, options.low, LOW_LOAD_GAP)?;
    eprintln!("{}: low load\n{}", config.label(), low.to_text());
    let mut saturation = Vec::new();
    for &clients in &options.clients {
        let report = run(clients, options.requests, Duration::ZERO)?;
        eprintln!("{}: saturation, {clients} clients\n{}", config.label(), report.to_text());
        if report.issued < options.requests / 2 {
            return Err(fail("fewer than half the saturation requests were issued"));
        }
        saturation.push(report);
    }
    let (cpu_after, wall_after) = share_samples(&replica);
    let (before, after) = (median(cpu.clone()), median(cpu_after.clone()));
    cpu.extend(cpu_after);
    wall.extend(wall_after);
    let (share_time, share_wall) = (median(cpu), median(wall));
    let ceiling = cores() as f64 / (config.n as f64 * share_time.as_secs_f64());
    eprintln!(
        "{}: share {:.2} ms CPU after the runs; {:.2} ms CPU over both (ceiling {ceiling:.0} certificates/s)",
        config.label(),
        ms(after),
        ms(share_time)
    );
    Ok(Measured { config, share_time, share_before: before, share_after: after, share_wall, ceiling, low, saturation })
}

/// Signature shares timed per measurement.
const SHARE_SAMPLES: usize = 50;

/// The CPU and wall time of [`SHARE_SAMPLES`] signature shares with `replica`'s key share.
fn share_samples(replica: &CaConfig) -> (Vec<Duration>, Vec<Duration>) {
    let message = [0x5a_u8; 32];
    for _ in 0..5 {
        std::hint::black_box(replica.rsa_share.sign(&replica.cluster.rsa, &message));
    }
    // CPU time, not wall time: the ceiling is a CPU budget, and on a shared machine preemption
    // would inflate a wall-clock figure (it did, by 2x, in a quick run at load average 10).
    (0..SHARE_SAMPLES)
        .map(|_| {
            let (cpu_start, start) = (thread_cpu_time(), Instant::now());
            std::hint::black_box(replica.rsa_share.sign(&replica.cluster.rsa, &message));
            (thread_cpu_time().saturating_sub(cpu_start), start.elapsed())
        })
        .unzip()
}

// ---------------------------------------------------------------- the report

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn table(options: &Options, measured: &[Measured], baselines: &[Baseline], loads: &str) -> String {
    let mut out = String::new();
    let baseline = |bits: u32| baselines.iter().find(|b| b.bits == bits);
    let _ = writeln!(out, "# Issuance benchmark{}\n", if options.quick { " (quick smoke run)" } else { "" });
    let _ = writeln!(
        out,
        "Written by `cargo bench -p ca-server --bench issuance{}`.\n",
        if options.quick { " -- --quick" } else { "" }
    );
    let _ = writeln!(out, "| Condition | Value |\n|---|---|");
    let _ = writeln!(out, "| Machine | {} |", machine());
    let _ = writeln!(out, "| Machine load (1/5/15 min) at the start of each configuration | {loads} |");
    let _ = writeln!(out, "| Replicas | all n on this machine, release build, 127.0.0.1 over HTTPS, t = (n - 1) / 3 |");
    let _ = writeln!(
        out,
        "| Requests | P-256 CSRs and operator-signed commands made before timing, plain (not sealed), `?wait={}` at replica i mod n |",
        SERVER_WAIT.as_secs()
    );
    let _ = writeln!(
        out,
        "| Low load | {} sequential requests, {} ms pause (not timed) before each |",
        options.low,
        LOW_LOAD_GAP.as_millis()
    );
    let clients: Vec<String> = options.clients.iter().map(ToString::to_string).collect();
    let _ =
        writeln!(out, "| Saturation | {} requests, {} closed-loop clients |", options.requests, clients.join(" and "));
    let _ = writeln!(
        out,
        "| Client | `ca_client::bench` in this process on the same {} cores; a certificate counts when its chain verifies under the root |",
        cores()
    );
    let _ = writeln!(
        out,
        "| Ceiling (DESIGN.md §8) | {} cores / (n x share time), the share's CPU time measured here with replica 0's key share (median of 50 before and 50 after the runs) |",
        cores()
    );
    for b in baselines {
        let _ = writeln!(
            out,
            "| Single-key baseline, RSA-{} | one process, {} threads, {} certificates: same CSR and profile checks, TBS builder and assembly, one full-key `rsa` crate signature each: **{:.0} certificates/s**, {:.2} ms CPU per certificate |",
            b.bits,
            b.threads,
            b.certificates,
            b.throughput(),
            ms(b.cpu) / b.certificates as f64
        );
    }
    let _ = writeln!(
        out,
        "\n| Cluster | Load | Throughput (cert/s) | Ceiling | Fraction of ceiling | Ratio to baseline | p50 / p90 / p99 / max (ms) | Issued / refused / failed | Bytes between replicas per cert | Messages per cert | Requests per round | RSA shares per cert | Combinations per cert | Replica CPU per cert (ms, all) | Largest RSS (MiB) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in measured {
        for (load, r) in std::iter::once(("low", &m.low)).chain(m.saturation.iter().map(|r| ("saturation", r))) {
            let saturated = load == "saturation";
            let fraction = saturated.then(|| 100.0 * r.throughput / m.ceiling);
            let ratio = baseline(m.config.bits).filter(|_| saturated).map(|b| r.throughput / b.throughput());
            let rss = r.replicas.iter().filter_map(|u| u.rss_bytes).max().map(|b| b as f64 / 1_048_576.0);
            let per_round: Vec<f64> = r.replicas.iter().filter_map(|u| u.requests_per_round).collect();
            let per_round = (!per_round.is_empty()).then(|| per_round.iter().sum::<f64>() / per_round.len() as f64);
            let l = &r.latency;
            let _ = writeln!(
                out,
                "| {} (t = {}) | {load}, {} client{} | {:.1} | {:.0} | {} | {} | {:.0} / {:.0} / {:.0} / {:.0} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} |",
                m.config.label(),
                m.config.t(),
                r.clients,
                if r.clients == 1 { "" } else { "s" },
                r.throughput,
                m.ceiling,
                fraction.map_or_else(|| "-".into(), |f| format!("{f:.0}%")),
                ratio.map_or_else(|| "-".into(), |x| format!("{x:.3}")),
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.max_ms,
                r.issued,
                r.refused,
                r.failed,
                opt(r.link_bytes_per_certificate, 0),
                opt(r.link_messages_per_certificate, 0),
                opt(per_round, 1),
                opt(r.shares_per_certificate, 2),
                opt(r.combinations_per_certificate, 2),
                opt(r.cpu_ms_per_certificate, 1),
                opt(rss, 0),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nShare times: {}.",
        measured
            .iter()
            .map(|m| {
                format!(
                    "{}: {:.2} ms CPU ({:.2} ms wall; {:.2} ms CPU before the runs, {:.2} after)",
                    m.config.label(),
                    ms(m.share_time),
                    ms(m.share_wall),
                    ms(m.share_before),
                    ms(m.share_after)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        out,
        "Bytes and messages are the payloads the replicas sent each other (ordering and signature shares), summed over the replicas, per issued certificate; CPU, RSS and RSA shares come from each replica's `/metrics`. The ceiling counts n shares per certificate, as DESIGN.md §8 does; the replicas compute t + 1 when all are live (a rotation by object), and the shares column counts what they computed, tree heads and CRLs included."
    );
    let _ = writeln!(
        out,
        "\n![throughput against n](throughput.svg)\n\n![saturation latency](latency-saturation.svg)\n\n![low-load latency](latency-low.svg)"
    );
    out
}

// ---------------------------------------------------------------- plots

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

type PlotResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Throughput at saturation (the best of the client counts) against n (2048-bit), with the §8
/// ceiling and the single-key baseline; other key sizes as separate points.
fn plot_throughput(path: &Path, measured: &[Measured], baselines: &[Baseline]) -> PlotResult {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_n = measured.iter().map(|m| m.config.n).max().unwrap_or(10) + 1;
    let top = measured
        .iter()
        .map(|m| m.ceiling.max(m.best().map_or(0.0, |r| r.throughput)))
        .chain(baselines.iter().map(Baseline::throughput))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Issuance throughput at saturation", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(3.0..max_n as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("replicas n (all on one machine)")
        .y_desc("certificates per second")
        .x_labels(max_n)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let mut bits: Vec<u32> = measured.iter().map(|m| m.config.bits).collect();
    bits.sort();
    bits.dedup();
    for (i, bits) in bits.iter().enumerate() {
        let colour = COLOURS[(2 * i) % COLOURS.len()];
        let ceiling_colour = COLOURS[(2 * i + 1) % COLOURS.len()];
        let points: Vec<(f64, f64)> = measured
            .iter()
            .filter(|m| m.config.bits == *bits)
            .filter_map(|m| Some((m.config.n as f64, m.best()?.throughput)))
            .collect();
        let ceilings: Vec<(f64, f64)> =
            measured.iter().filter(|m| m.config.bits == *bits).map(|m| (m.config.n as f64, m.ceiling)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(format!("measured, RSA-{bits}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
        chart
            .draw_series(LineSeries::new(ceilings.clone(), ceiling_colour.stroke_width(1)))?
            .label(format!("ceiling cores / (n x share), RSA-{bits}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ceiling_colour.stroke_width(1)));
        chart.draw_series(ceilings.iter().map(|p| TriangleMarker::new(*p, 4, ceiling_colour.filled())))?;
        if let Some(b) = baselines.iter().find(|b| b.bits == *bits) {
            let line = vec![(3.0, b.throughput()), (max_n as f64, b.throughput())];
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, colour.stroke_width(1)))?
                .label(format!("single-key baseline, RSA-{bits}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(1)));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The distribution of latencies of each configuration, as cumulative curves.
fn plot_latency(path: &Path, title: &str, runs: &[(String, &Report)]) -> PlotResult {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let right = runs.iter().map(|(_, r)| r.latency.max_ms).fold(1.0_f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..right, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("fraction of requests at or below")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (i, (label, report)) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut sorted: Vec<f64> = report.latencies.iter().map(|d| ms(*d)).collect();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len() as f64;
        let points: Vec<(f64, f64)> = sorted.iter().enumerate().map(|(k, v)| (*v, (k + 1) as f64 / count)).collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------- main

fn main() -> Result<()> {
    let options = Options::parse()?;
    let binary = server_binary()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    // The baseline first, on an idle machine (the clusters are not started yet).
    let prepared = Instant::now();
    let csrs: Vec<Vec<u8>> = (0..options.baseline)
        .map(|i| -> Result<Vec<u8>> {
            let key = PrivateKey::generate(KeyType::EcP256, &mut rand::rngs::OsRng)?;
            Ok(key.csr(&[format!("baseline-{i}.localhost")])?)
        })
        .collect::<Result<_>>()?;
    eprintln!("{} baseline CSRs made in {:.1} s", csrs.len(), prepared.elapsed().as_secs_f64());
    let mut bits: Vec<u32> = options.configs.iter().map(|c| c.bits).collect();
    bits.sort();
    bits.dedup();
    // Any ceremony's root and policy serve as the issuer and profile: only the signing key
    // differs, and the baseline holds it whole.
    let (issuer, policy) = {
        let dir = tempfile::tempdir()?;
        let params = CeremonyParams {
            n: 4,
            t: 1,
            name: "Issuance Bench Baseline".into(),
            hosts: hosts::local_hosts(4, free_base(4))?,
            bits: 2048,
            out: dir.path().join("ca"),
            names: dealer::policy::default_profile_names(&[], true)?,
        };
        ceremony::run(&params, 2048, &mut ChaCha20Rng::from_entropy(), &mut |_| {})?;
        let public = dir.path().join("ca/public");
        let issuer = Issuer::from_pem(&std::fs::read_to_string(public.join("root.pem"))?)?;
        (issuer, Policy::parse(&std::fs::read_to_string(public.join("policy.json"))?)?)
    };
    let mut baselines = Vec::new();
    for bits in bits {
        let baseline = Baseline::run(bits, &csrs, &policy, &issuer)?;
        eprintln!(
            "single-key baseline RSA-{bits}: {:.0} certificates/s ({} threads)",
            baseline.throughput(),
            baseline.threads
        );
        baselines.push(baseline);
    }

    let mut measured = Vec::new();
    let mut loads = Vec::new();
    for config in &options.configs {
        loads.push(format!("{}: {}", config.label(), load_average()));
        measured.push(measure(&options, &binary, *config, &runtime)?);
    }

    std::fs::create_dir_all(&options.out)?;
    let text = table(&options, &measured, &baselines, &loads.join("; "));
    println!("{text}");
    std::fs::write(options.out.join("issuance.md"), &text)?;
    let plot = |result: PlotResult, name: &str| -> Result<()> { result.map_err(|e| fail(format!("{name}: {e}"))) };
    plot(plot_throughput(&options.out.join("throughput.svg"), &measured, &baselines), "throughput.svg")?;
    let runs = |pick: fn(&Measured) -> Option<&Report>| -> Vec<(String, &Report)> {
        measured.iter().filter_map(|m| Some((m.config.label(), pick(m)?))).collect()
    };
    plot(
        plot_latency(
            &options.out.join("latency-saturation.svg"),
            &format!("Latency at saturation ({} clients)", options.clients[0]),
            &runs(|m| m.saturation.first()),
        ),
        "latency-saturation.svg",
    )?;
    plot(
        plot_latency(
            &options.out.join("latency-low.svg"),
            "Latency at low load (one request at a time)",
            &runs(|m| Some(&m.low)),
        ),
        "latency-low.svg",
    )?;
    eprintln!("wrote {}/issuance.md and the plots beside it", options.out.display());
    Ok(())
}
