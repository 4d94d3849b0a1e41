//! A load generator: `C` closed-loop clients issue `R` certificates through a running cluster and
//! the [`Report`] says how fast (throughput, exact latency percentiles), how many were refused or
//! failed, and what each replica spent (CPU, resident memory, bytes and messages to its peers),
//! read from the replicas' own `/metrics` over HTTPS, so the load can come from another machine.
//!
//! Every CSR and signed command is made before timing starts. Request `i` goes to replica
//! `i mod n` (so the load is spread evenly) with `?wait=`, and the answer counts once its chain
//! verifies under the root; a request still pending when the wait runs out is polled. A replica
//! that answers 503 `busy` is asked again after a short pause, and the retries are counted.
//! `ca-client bench` and the benchmark in `ca-server/benches/issuance.rs` both call [`run`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ca_api::api::{RequestState, RequestStatus};
use ca_api::command::{Command, SignedCommand, new_nonce};
use ca_api::{AccountSecret, CaRequest};
use futures_util::future::join_all;
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use serde::Serialize;

use crate::client::{Client, parse_json, parse_problem};
use crate::keys::{KeyType, PrivateKey};
use crate::request::{PreparedRequest, prepare};
use crate::transport::{HttpRequest, Transport};
use crate::verify::VerifiedCertificate;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Closed-loop clients: each sends its next request when the previous one is settled.
    pub clients: usize,
    /// Certificates to ask for in all.
    pub requests: usize,
    /// The certificate keys (and so the CSRs) to make.
    pub key_type: KeyType,
    pub profile: String,
    /// Certificates are for `bench-<run>-<i>.<domain>`; the profile must allow it.
    pub domain: String,
    /// Seal requests to the cluster's encryption key (as `ca-client request` does by default).
    pub seal: bool,
    /// How long a replica is asked to hold a submission open for its outcome (`?wait=`, at most
    /// 60 s); must be shorter than the client's request timeout.
    pub server_wait: Duration,
    /// The pause before resubmitting a request a replica answered 503 `busy`.
    pub busy_pause: Duration,
    /// Between polls of a request still pending after the wait.
    pub poll_interval: Duration,
    /// A request that has no outcome this long after its first submission counts as failed.
    pub give_up_after: Duration,
    /// A pause (not timed) before each request of a client: with one client, a low-load run.
    pub think_time: Duration,
    /// After the load, how long to wait for every replica to hold every certificate signed before
    /// the last metrics are read (the shares of replicas not needed for the answer come later).
    pub settle: Duration,
    /// Draw progress bars on standard error.
    pub progress: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            clients: 32,
            requests: 1000,
            key_type: KeyType::EcP256,
            profile: "default".into(),
            domain: "localhost".into(),
            seal: false,
            server_wait: Duration::from_secs(30),
            busy_pause: Duration::from_millis(50),
            poll_interval: Duration::from_millis(50),
            give_up_after: Duration::from_secs(300),
            think_time: Duration::ZERO,
            settle: Duration::from_secs(60),
            progress: false,
        }
    }
}

/// Why a benchmark could not run at all (a request that fails is counted, not an error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Config(String),
    #[error("preparing request {index}: {reason}")]
    Prepare { index: usize, reason: String },
}

/// Latency percentiles (nearest rank over every sample, so exact), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From samples in any order.
    pub fn of(samples: &[Duration]) -> Latency {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let ms = |p: f64| percentile(&sorted, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let total: f64 = sorted.iter().map(Duration::as_secs_f64).sum();
        Latency {
            samples: sorted.len(),
            mean_ms: if sorted.is_empty() { 0.0 } else { 1000.0 * total / sorted.len() as f64 },
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }
}

/// The nearest-rank percentile `p` (0 < p <= 100) of `sorted`: the smallest sample with at least
/// `p`% of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().clamp(1.0, sorted.len() as f64) as usize;
    Some(sorted[rank - 1])
}

/// What one replica's `/metrics` said at one moment; `None` where a metric was absent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsSample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub max_resident_bytes: Option<u64>,
    /// Summed over peers: payload bytes and frames this replica sent to the others.
    pub bytes_sent: Option<f64>,
    pub messages_sent: Option<f64>,
    /// Rounds of the atomic broadcast delivered, and the requests they carried.
    pub rounds_delivered: Option<f64>,
    pub requests_delivered: Option<f64>,
    /// RSA signature shares this replica computed.
    pub shares_computed: Option<f64>,
    /// Combinations of shares this replica ran.
    pub combinations: Option<f64>,
}

impl MetricsSample {
    /// From OpenMetrics / Prometheus text.
    pub fn parse(text: &str) -> MetricsSample {
        MetricsSample {
            cpu_seconds: metric_sum(text, "process_cpu_seconds_total"),
            resident_bytes: metric_sum(text, "process_resident_memory_bytes").map(|v| v as u64),
            max_resident_bytes: metric_sum(text, "process_max_resident_memory_bytes").map(|v| v as u64),
            bytes_sent: metric_sum(text, "replication_bytes_sent_total"),
            messages_sent: metric_sum(text, "replication_messages_sent_total"),
            rounds_delivered: metric_sum(text, "replication_rounds_delivered_total"),
            requests_delivered: metric_sum(text, "replication_requests_delivered_total"),
            shares_computed: metric_sum(text, "itca_signature_shares_computed_total"),
            combinations: metric_sum(text, "itca_signature_combinations_total"),
        }
    }
}

/// The sum of every sample of metric `name` (all label sets), or `None` if there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
        let metric = key.split('{').next().unwrap_or(key);
        if metric == name
            && let Ok(value) = value.parse::<f64>()
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// What one replica spent during the run, from its `/metrics` before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaUsage {
    pub id: usize,
    /// CPU seconds (user + system) from the start of the load to the end of settling.
    pub cpu_seconds: Option<f64>,
    /// Resident memory at the end.
    pub rss_bytes: Option<u64>,
    /// Peak resident memory since the replica started.
    pub max_rss_bytes: Option<u64>,
    /// Payload bytes and messages sent to the other replicas during the run.
    pub bytes_sent: Option<f64>,
    pub messages_sent: Option<f64>,
    /// Ordered requests per delivered round during the run (how far a round's fixed cost is
    /// shared).
    pub requests_per_round: Option<f64>,
    /// RSA signature shares computed during the run.
    pub shares_computed: Option<f64>,
    /// Combinations of shares run during the run.
    pub combinations: Option<f64>,
    /// Why the metrics could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReplicaUsage {
    fn between(id: usize, before: &Result<MetricsSample, String>, after: &Result<MetricsSample, String>) -> Self {
        let (before, after) = match (before, after) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => return ReplicaUsage { id, error: Some(e.clone()), ..Default::default() },
        };
        let delta = |b: Option<f64>, a: Option<f64>| Some(a? - b?);
        ReplicaUsage {
            id,
            cpu_seconds: delta(before.cpu_seconds, after.cpu_seconds),
            rss_bytes: after.resident_bytes,
            max_rss_bytes: after.max_resident_bytes,
            bytes_sent: delta(before.bytes_sent, after.bytes_sent),
            messages_sent: delta(before.messages_sent, after.messages_sent),
            requests_per_round: delta(before.requests_delivered, after.requests_delivered)
                .zip(delta(before.rounds_delivered, after.rounds_delivered))
                .and_then(|(requests, rounds)| (rounds > 0.0).then(|| requests / rounds)),
            shares_computed: delta(before.shares_computed, after.shares_computed),
            combinations: delta(before.combinations, after.combinations),
            error: None,
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub n: usize,
    pub t: usize,
    pub clients: usize,
    pub requests: usize,
    pub key_type: String,
    pub sealed: bool,
    /// Certificates whose chain came back and verified under the root.
    pub issued: usize,
    /// Requests the CA refused (a problem document before ordering, or a refusal in the log).
    pub refused: usize,
    /// Requests with no outcome: transport errors, server errors, bad answers, time-outs.
    pub failed: usize,
    /// 503 `busy` answers, each followed by a resubmission.
    pub busy_retries: u64,
    /// Requests still pending when the replica's wait ran out, then polled.
    pub polled: u64,
    /// From the first submission to the last outcome.
    pub elapsed_seconds: f64,
    /// Issued certificates per second over `elapsed_seconds`.
    pub throughput: f64,
    /// Over issued certificates, from the first submission to a verified chain.
    pub latency: Latency,
    /// From the end of the load until every replica held every certificate signed (or the
    /// settle time ran out).
    pub settle_seconds: f64,
    pub settled: bool,
    pub replicas: Vec<ReplicaUsage>,
    /// Bytes and messages all replicas sent each other, per issued certificate (`None` if a
    /// replica's metrics were missing).
    pub link_bytes_per_certificate: Option<f64>,
    pub link_messages_per_certificate: Option<f64>,
    /// Replica CPU (all replicas) per issued certificate, in ms.
    pub cpu_ms_per_certificate: Option<f64>,
    /// RSA signature shares all replicas computed per issued certificate (tree heads and CRLs
    /// included: they are signed too).
    pub shares_per_certificate: Option<f64>,
    /// Combinations of shares all replicas ran per issued certificate (one when each object's
    /// combiner sends the others its signature; `n` if every replica combined).
    pub combinations_per_certificate: Option<f64>,
    /// The first few distinct reasons for refusals and failures, with how often each came.
    pub problems: Vec<(String, usize)>,
    /// Every issued certificate's latency, in completion order (for plots; not in the JSON).
    #[serde(skip)]
    pub latencies: Vec<Duration>,
}

impl Report {
    /// Refused, failed and issued requests add up to the requests asked for.
    pub fn counts_add_up(&self) -> bool {
        self.issued + self.refused + self.failed == self.requests
    }

    /// A plain-text summary, one figure per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let show =
            |v: Option<f64>, scale: f64, unit: &str| v.map_or("-".to_string(), |v| format!("{:.1}{unit}", v * scale));
        line(format!(
            "{} requests ({} keys, {}), {} clients, cluster n = {}, t = {}",
            self.requests,
            self.key_type,
            if self.sealed { "sealed" } else { "plain" },
            self.clients,
            self.n,
            self.t
        ));
        line(format!(
            "issued {} / refused {} / failed {} ({} busy retries, {} polled)",
            self.issued, self.refused, self.failed, self.busy_retries, self.polled
        ));
        line(format!("throughput: {:.1} certificates/s over {:.2} s", self.throughput, self.elapsed_seconds));
        let l = &self.latency;
        line(format!(
            "latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1} (mean {:.1}, {} samples)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms, l.samples
        ));
        line(format!(
            "between replicas per certificate: {} bytes, {} messages; replica CPU per certificate: {}; RSA shares per certificate: {}; combinations per certificate: {}",
            self.link_bytes_per_certificate.map_or("-".to_string(), |v| format!("{v:.0}")),
            show(self.link_messages_per_certificate, 1.0, ""),
            show(self.cpu_ms_per_certificate, 1.0, " ms"),
            self.shares_per_certificate.map_or("-".to_string(), |v| format!("{v:.2}")),
            self.combinations_per_certificate.map_or("-".to_string(), |v| format!("{v:.2}"))
        ));
        line(format!(
            "settled: {} after {:.1} s",
            if self.settled { "every replica signed everything" } else { "NOT every replica signed everything" },
            self.settle_seconds
        ));
        for r in &self.replicas {
            match &r.error {
                Some(e) => line(format!("replica {}: metrics unreadable: {e}", r.id)),
                None => line(format!(
                    "replica {}: CPU {} s, RSS {} MiB (peak {} MiB), sent {} kB in {} messages, {} requests per round",
                    r.id,
                    show(r.cpu_seconds, 1.0, ""),
                    show(r.rss_bytes.map(|v| v as f64), 1.0 / 1_048_576.0, ""),
                    show(r.max_rss_bytes.map(|v| v as f64), 1.0 / 1_048_576.0, ""),
                    show(r.bytes_sent, 1e-3, ""),
                    r.messages_sent.map_or("-".to_string(), |v| format!("{v:.0}")),
                    show(r.requests_per_round, 1.0, "")
                )),
            }
        }
        for (problem, count) in &self.problems {
            line(format!("{count} x {problem}"));
        }
        out
    }
}

/// What happened to one request.
enum Outcome {
    Issued(Duration),
    Refused(String),
    Failed(String),
}

/// Shared by the clients while the load runs.
#[derive(Default)]
struct Tally {
    next: AtomicUsize,
    issued: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
    busy: AtomicU64,
    polled: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    problems: Mutex<BTreeMap<String, usize>>,
}

/// At most this many distinct problems are kept (the rest are counted under the last).
const MAX_PROBLEMS: usize = 20;

impl Tally {
    fn problem(&self, what: String) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        let key =
            if problems.len() >= MAX_PROBLEMS && !problems.contains_key(&what) { "(others)".into() } else { what };
        *problems.entry(key).or_default() += 1;
    }
}

/// Runs the load described by `config` against `client`'s cluster, signing with `account`.
pub async fn run<T: Transport>(
    client: &Client<T>,
    account: &AccountSecret,
    config: &BenchConfig,
) -> Result<Report, BenchError> {
    if config.clients == 0 || config.requests == 0 {
        return Err(BenchError::Config("at least one client and one request".into()));
    }
    if client.options().request_timeout <= config.server_wait {
        return Err(BenchError::Config(format!(
            "the client's request timeout ({} s) must exceed the replicas' wait ({} s)",
            client.options().request_timeout.as_secs(),
            config.server_wait.as_secs()
        )));
    }
    let prepared = prepare_all(client, account, config)?;
    let n = client.n();

    let before = scrape_all(client).await;
    let tally = Tally::default();
    let bar = bar(
        config.progress,
        config.requests as u64,
        "{bar:40} {pos}/{len} issued+refused+failed, {per_sec} [{elapsed}] {msg}",
    );
    let started = Instant::now();
    let workers = (0..config.clients.min(config.requests)).map(|_| async {
        loop {
            let index = tally.next.fetch_add(1, Ordering::Relaxed);
            let Some(request) = prepared.get(index) else { break };
            if !config.think_time.is_zero() {
                tokio::time::sleep(config.think_time).await;
            }
            match issue_one(client, config, index % n, request, &tally).await {
                Outcome::Issued(latency) => {
                    tally.issued.fetch_add(1, Ordering::Relaxed);
                    tally.latencies.lock().unwrap_or_else(|e| e.into_inner()).push(latency);
                }
                Outcome::Refused(why) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    tally.problem(format!("refused: {why}"));
                }
                Outcome::Failed(why) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    tally.problem(format!("failed: {why}"));
                }
            }
            bar.inc(1);
            let (refused, failed) = (tally.refused.load(Ordering::Relaxed), tally.failed.load(Ordering::Relaxed));
            if refused + failed > 0 {
                bar.set_message(format!("{refused} refused, {failed} failed"));
            }
        }
    });
    join_all(workers).await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let settling = Instant::now();
    let settled = settle(client, config.settle).await;
    let settle_seconds = settling.elapsed().as_secs_f64();
    let after = scrape_all(client).await;

    let replicas: Vec<ReplicaUsage> = (0..n).map(|id| ReplicaUsage::between(id, &before[id], &after[id])).collect();
    let issued = tally.issued.load(Ordering::Relaxed);
    let per_certificate = |values: Option<f64>| values.map(|v| v / issued.max(1) as f64);
    let total = |f: fn(&ReplicaUsage) -> Option<f64>| replicas.iter().map(f).sum::<Option<f64>>();
    let latencies = std::mem::take(&mut *tally.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let mut problems: Vec<(String, usize)> =
        std::mem::take(&mut *tally.problems.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
    problems.sort_by_key(|p| std::cmp::Reverse(p.1));
    Ok(Report {
        n,
        t: client.cluster().t,
        clients: config.clients,
        requests: config.requests,
        key_type: config.key_type.to_string(),
        sealed: config.seal,
        issued,
        refused: tally.refused.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        busy_retries: tally.busy.load(Ordering::Relaxed),
        polled: tally.polled.load(Ordering::Relaxed),
        elapsed_seconds: elapsed.as_secs_f64(),
        throughput: issued as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: Latency::of(&latencies),
        settle_seconds,
        settled,
        link_bytes_per_certificate: per_certificate(total(|r| r.bytes_sent)),
        link_messages_per_certificate: per_certificate(total(|r| r.messages_sent)),
        cpu_ms_per_certificate: per_certificate(total(|r| r.cpu_seconds)).map(|s| 1000.0 * s),
        shares_per_certificate: per_certificate(total(|r| r.shares_computed)),
        combinations_per_certificate: per_certificate(total(|r| r.combinations)),
        replicas,
        problems,
        latencies,
    })
}

fn bar(visible: bool, len: u64, template: &str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Keys, CSRs, signed commands and bodies for every request, on every core.
fn prepare_all<T: Transport>(
    client: &Client<T>,
    account: &AccountSecret,
    config: &BenchConfig,
) -> Result<Vec<PreparedRequest>, BenchError> {
    // Names unique to this run, so runs against one cluster never ask for the same names.
    let run = format!("{:08x}", rand::rngs::OsRng.next_u32());
    let seal_to = config.seal.then_some(&client.cluster().encryption);
    let bar = bar(config.progress, config.requests as u64, "preparing {bar:40} {pos}/{len} [{elapsed}]");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(config.requests);
    let chunk = config.requests.div_ceil(threads);
    let results: Vec<Result<Vec<PreparedRequest>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|part| {
                let (run, bar) = (&run, &bar);
                scope.spawn(move || {
                    let mut rng = rand::rngs::OsRng;
                    let range = part * chunk..((part + 1) * chunk).min(config.requests);
                    range
                        .map(|index| {
                            let fail = |reason: String| BenchError::Prepare { index, reason };
                            let key =
                                PrivateKey::generate(config.key_type, &mut rng).map_err(|e| fail(e.to_string()))?;
                            let name = format!("bench-{run}-{index}.{}", config.domain);
                            let csr = key.csr(&[name]).map_err(|e| fail(e.to_string()))?;
                            let command = Command::issue(&csr, &config.profile, None, new_nonce(&mut rng));
                            let signed = CaRequest::Signed(SignedCommand::sign(account, &command));
                            let request = prepare(&signed, seal_to, &mut rng).map_err(|e| fail(e.to_string()))?;
                            bar.inc(1);
                            Ok(request)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(BenchError::Config("a preparing thread panicked".into()))))
            .collect()
    });
    bar.finish_and_clear();
    let mut prepared = Vec::with_capacity(config.requests);
    for part in results {
        prepared.extend(part?);
    }
    Ok(prepared)
}

/// Submits one request through replica `via` and follows it to its outcome.
async fn issue_one<T: Transport>(
    client: &Client<T>,
    config: &BenchConfig,
    via: usize,
    prepared: &PreparedRequest,
    tally: &Tally,
) -> Outcome {
    let start = Instant::now();
    let id = prepared.id_hex();
    let path = format!("/v1/certificates?wait={}", config.server_wait.as_secs());
    let status = loop {
        let request = HttpRequest::post_json(path.clone(), prepared.body.clone());
        let reply = match client.transport().send(via, request).await {
            Ok(reply) => reply,
            Err(e) => return Outcome::Failed(format!("replica {via}: {e}")),
        };
        match reply.status {
            200 | 202 => match parse_json::<RequestStatus>(via, &reply) {
                Ok(status) => break status,
                Err(finding) => return Outcome::Failed(finding.to_string()),
            },
            status => {
                let problem = parse_problem(&reply);
                if status == 503 && problem.kind == "busy" && start.elapsed() < config.give_up_after {
                    tally.busy.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(config.busy_pause).await;
                    continue;
                }
                if (400..500).contains(&status) {
                    return Outcome::Refused(problem.kind);
                }
                return Outcome::Failed(format!("HTTP {status} ({})", problem.kind));
            }
        }
    };
    let mut status = status;
    let mut polled = false;
    loop {
        if !status.request_id.eq_ignore_ascii_case(&id) {
            return Outcome::Failed(format!("replica {via} answered for another request"));
        }
        match status.state {
            RequestState::Refused => {
                let code = status.refusal.map_or_else(|| "no reason given".to_string(), |r| r.code);
                return Outcome::Refused(code);
            }
            RequestState::Issued if status.certificate_chain_pem.is_some() => {
                let chain = status.certificate_chain_pem.unwrap_or_default();
                return match VerifiedCertificate::verify_chain_pem(client.root(), &chain) {
                    Ok(_) => Outcome::Issued(start.elapsed()),
                    Err(e) => Outcome::Failed(format!("replica {via}: a chain that does not verify: {e}")),
                };
            }
            RequestState::Pending | RequestState::Issued => {}
            RequestState::Revoked | RequestState::PolicyChanged => {
                return Outcome::Failed(format!("replica {via} reports an outcome of another kind"));
            }
        }
        if start.elapsed() >= config.give_up_after {
            return Outcome::Failed(format!("no outcome within {} s", config.give_up_after.as_secs()));
        }
        if !polled {
            polled = true;
            tally.polled.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(config.poll_interval).await;
        status = match client.transport().send(via, HttpRequest::get(format!("/v1/requests/{id}"))).await {
            Ok(reply) if reply.status == 200 => match parse_json::<RequestStatus>(via, &reply) {
                Ok(status) => status,
                Err(finding) => return Outcome::Failed(finding.to_string()),
            },
            // A lost poll is asked again; the deadline above still holds.
            Ok(_) | Err(_) => status,
        };
    }
}

/// Every replica's metrics, or why they could not be had.
async fn scrape_all<T: Transport>(client: &Client<T>) -> Vec<Result<MetricsSample, String>> {
    join_all((0..client.n()).map(|id| async move {
        match client.transport().send(id, HttpRequest::get_as("/metrics", "text/plain")).await {
            Ok(reply) if reply.status == 200 => Ok(MetricsSample::parse(&String::from_utf8_lossy(&reply.body))),
            Ok(reply) => Err(format!("/metrics answered HTTP {}", reply.status)),
            Err(e) => Err(format!("/metrics: {e}")),
        }
    }))
    .await
}

/// Waits until every replica holds the same number of certificates, all signed; `false` if
/// that did not happen within `limit`.
async fn settle<T: Transport>(client: &Client<T>, limit: Duration) -> bool {
    #[derive(serde::Deserialize)]
    struct Counts {
        certificates: u64,
        signed_certificates: u64,
    }
    #[derive(serde::Deserialize)]
    struct ReplicaStatus {
        ca: Counts,
    }
    let deadline = Instant::now() + limit;
    loop {
        let counts = join_all((0..client.n()).map(|id| async move {
            let reply = client.transport().send(id, HttpRequest::get("/v1/replica")).await.ok()?;
            let status: ReplicaStatus = parse_json(id, &reply).ok()?;
            Some((status.ca.certificates, status.ca.signed_certificates))
        }))
        .await;
        let first = counts.first().copied().flatten();
        let done = first.is_some()
            && counts.iter().all(|c| *c == first && c.is_some_and(|(certificates, signed)| signed >= certificates));
        if done {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_are_the_nearest_rank_of_the_samples() {
        let sorted = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 90.0), Some(Duration::from_millis(90)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        // Ten samples: p99 is the largest, p50 the fifth, p90 the ninth; a tiny p is the smallest.
        let ten = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&ten, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&ten, 90.0), Some(Duration::from_millis(9)));
        assert_eq!(percentile(&ten, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&ten, 0.1), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_summary_sorts_the_samples_and_takes_the_mean() {
        let latency = Latency::of(&ms(&[40, 10, 30, 20]));
        assert_eq!(latency.samples, 4);
        assert_eq!(latency.mean_ms, 25.0);
        assert_eq!(latency.p50_ms, 20.0);
        assert_eq!(latency.p90_ms, 40.0);
        assert_eq!(latency.max_ms, 40.0);
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn metrics_are_summed_over_label_sets_and_absent_ones_are_none() {
        let text = "# HELP replication_bytes_sent Payload bytes sent, per peer\n\
                    # TYPE replication_bytes_sent counter\n\
                    replication_bytes_sent_total{peer=\"1\"} 1000\n\
                    replication_bytes_sent_total{peer=\"2\"} 500\n\
                    replication_messages_sent_total{peer=\"1\"} 7\n\
                    process_cpu_seconds_total 12.5\n\
                    process_resident_memory_bytes 4096\n\
                    itca_signature_shares_computed_total 31\n\
                    itca_signature_combinations_total 12\n\
                    # EOF\n";
        let sample = MetricsSample::parse(text);
        assert_eq!(sample.bytes_sent, Some(1500.0));
        assert_eq!(sample.messages_sent, Some(7.0));
        assert_eq!(sample.cpu_seconds, Some(12.5));
        assert_eq!(sample.resident_bytes, Some(4096));
        assert_eq!(sample.max_resident_bytes, None);
        assert_eq!(sample.shares_computed, Some(31.0));
        assert_eq!(sample.combinations, Some(12.0));
    }

    #[test]
    fn replica_usage_is_the_difference_of_counters_and_the_last_gauges() {
        let before = MetricsSample {
            cpu_seconds: Some(1.0),
            resident_bytes: Some(10),
            max_resident_bytes: Some(10),
            bytes_sent: Some(100.0),
            messages_sent: Some(3.0),
            rounds_delivered: Some(5.0),
            requests_delivered: Some(40.0),
            shares_computed: Some(8.0),
            combinations: Some(4.0),
        };
        let after = MetricsSample {
            cpu_seconds: Some(3.5),
            resident_bytes: Some(20),
            max_resident_bytes: Some(25),
            bytes_sent: Some(1100.0),
            messages_sent: Some(13.0),
            rounds_delivered: Some(9.0),
            requests_delivered: Some(140.0),
            shares_computed: Some(60.0),
            combinations: Some(30.0),
        };
        let usage = ReplicaUsage::between(2, &Ok(before), &Ok(after));
        assert_eq!(usage.cpu_seconds, Some(2.5));
        assert_eq!(usage.rss_bytes, Some(20));
        assert_eq!(usage.max_rss_bytes, Some(25));
        assert_eq!(usage.bytes_sent, Some(1000.0));
        assert_eq!(usage.messages_sent, Some(10.0));
        assert_eq!(usage.requests_per_round, Some(25.0));
        assert_eq!(usage.shares_computed, Some(52.0));
        assert_eq!(usage.combinations, Some(26.0));
        let broken = ReplicaUsage::between(2, &Ok(before), &Err("down".into()));
        assert_eq!(broken.error.as_deref(), Some("down"));
        assert_eq!(broken.cpu_seconds, None);
    }
}
