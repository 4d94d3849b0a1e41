//! Issuance benchmark (DESIGN.md §8, the targets of the CA issue): four release-build
//! `ca-server run` processes on this machine from a 2048-bit dealer ceremony, driven over HTTPS.
//!
//! Run with `cargo bench -p ca-server --bench issuance` (add `-- --quick` for a short run).
//! `cargo bench` builds the `ca-server` binary with the bench profile (which is the release
//! profile) into `target/release/ca-server` and hands its path to this harness; if it is missing
//! anyway, build it with `cargo build --release -p ca-server`.
//!
//! Options (after `--`): `--quick`, `--low=N` (sequential requests), `--requests=N` and
//! `--clients=N` (saturation phase), `--keep` (keep the temporary cluster folder).
//!
//! What it measures:
//! 1. the RSA-2048 threshold share time in-process (median of 50) and the §8 ceiling
//!    `cores / (n x share time)`;
//! 2. low load: one request at a time through a rotating replica (`?wait=30`): latency until the
//!    signed certificate chain is returned;
//! 3. saturation: `C` concurrent clients issuing `R` certificates in total, spread over the
//!    replicas: throughput of fully signed certificates, latency percentiles, fraction of the
//!    ceiling; requests answered 503 `busy` are retried after a short pause and counted;
//! 4. each replica's RSS (VmRSS, and VmHWM) and CPU time, and how many certificates it holds;
//! 5. a markdown table with the conditions.
//!
//! CSRs (P-256) and the signed commands are all made before any timing starts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::AccountSecret;
use ca_api::command::{CaRequest, Command as CaCommand, SignedCommand, new_nonce};
use ca_server::config::CaConfig;
use const_oid::db::{rfc4519, rfc5280, rfc5912};
use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use der::asn1::{BitString, Ia5String, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use p256::ecdsa::signature::Signer;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo};

const N: usize = 4;
const T: usize = 1;
const BITS: u32 = 2048;
/// Seconds a submission asks the replica to wait for the signed certificate.
const WAIT_SECONDS: u64 = 30;
/// Pause before resubmitting a request answered 503 `busy`.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// Pause between low-load requests (not timed), so each one meets an idle cluster.
const LOW_LOAD_GAP: Duration = Duration::from_millis(50);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn fail(message: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
    message.into().into()
}

// ---------------------------------------------------------------- options

struct Options {
    quick: bool,
    low: usize,
    requests: usize,
    clients: usize,
    keep: bool,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            quick,
            low: if quick { 10 } else { 50 },
            requests: if quick { 300 } else { 2000 },
            clients: 32,
            keep: args.iter().any(|a| a == "--keep"),
        };
        for arg in &args {
            let value = |prefix: &str| -> Result<Option<usize>> {
                match arg.strip_prefix(prefix) {
                    Some(v) => Ok(Some(v.parse().map_err(|_| fail(format!("{arg}: not a number")))?)),
                    None => Ok(None),
                }
            };
            if let Some(v) = value("--low=")? {
                options.low = v.max(1);
            }
            if let Some(v) = value("--requests=")? {
                options.requests = v.max(1);
            }
            if let Some(v) = value("--clients=")? {
                options.clients = v.max(1);
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

fn free_base(n: usize) -> u16 {
    let mut rng = rand::thread_rng();
    loop {
        let base: u16 = rand::Rng::gen_range(&mut rng, 20_000..60_000);
        if (0..2 * n as u16).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

/// Four replica processes; killed (SIGTERM, then SIGKILL) when dropped, and by the kernel if
/// this process dies first.
struct Cluster {
    dir: PathBuf,
    ca: PathBuf,
    ports: Vec<u16>,
    children: Vec<Child>,
    keep: bool,
}

impl Cluster {
    fn start(binary: &Path, keep: bool) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("itca-bench-").tempdir()?.keep();
        let base = free_base(N);
        // From here on, dropping `cluster` removes the folder and stops what was started.
        let mut cluster = Cluster {
            ca: dir.join("ca"),
            dir,
            ports: (0..N).map(|i| base + i as u16).collect(),
            children: Vec::new(),
            keep,
        };
        let params = CeremonyParams {
            n: N,
            t: T,
            name: "Issuance Bench CA".into(),
            hosts: hosts::local_hosts(N, base)?,
            bits: BITS,
            out: cluster.ca.clone(),
            names: dealer::policy::default_profile_names(&[], true)?,
        };
        let started = Instant::now();
        eprintln!("dealer ceremony ({BITS}-bit, n = {N}, t = {T}) in {} ...", cluster.dir.display());
        ceremony::run(&params, BITS, &mut ChaCha20Rng::from_entropy(), &mut |_| {})?;
        eprintln!("ceremony done in {:.1} s", started.elapsed().as_secs_f64());
        for id in 0..N {
            let log = std::fs::File::create(cluster.dir.join(format!("replica-{id}.log")))?;
            let mut command = Command::new(binary);
            command
                .args(["run", "--config"])
                .arg(cluster.ca.join(format!("replica-{id}/replica.toml")))
                .stdout(log.try_clone()?)
                .stderr(log)
                .stdin(Stdio::null());
            // SAFETY: only prctl between fork and exec; the replicas die with this process.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            cluster.children.push(command.spawn()?);
        }
        Ok(cluster)
    }

    fn url(&self, id: usize, path: &str) -> String {
        format!("https://localhost:{}{path}", self.ports[id])
    }

    fn pid(&self, id: usize) -> u32 {
        self.children[id].id()
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

// ---------------------------------------------------------------- /proc

/// `VmRSS` and `VmHWM` in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU seconds of a process (`self` for this one).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at field 3.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Machine-wide busy CPU seconds (all cores; everything but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (total - idle) as f64 / hz
}

// ---------------------------------------------------------------- requests

fn cn(name: &str) -> Result<Name> {
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value: Any::new(Tag::Utf8String, name.as_bytes())? };
    Ok(RdnSequence(vec![RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv])?)]))
}

/// A fresh P-256 key's DER CSR for `name` (CN and a DNS subjectAltName).
fn make_csr(name: &str) -> Result<Vec<u8>> {
    use p256::pkcs8::EncodePublicKey;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let spki = SubjectPublicKeyInfoOwned::from_der(key.verifying_key().to_public_key_der()?.as_bytes())?;
    let san = SubjectAltName(vec![GeneralName::DnsName(Ia5String::new(name)?)]);
    let extension = Extension {
        extn_id: rfc5280::ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(san.to_der()?)?,
    };
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(&vec![extension])?)?;
    let attribute = Attribute { oid: rfc5912::ID_EXTENSION_REQ, values };
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: cn(name)?,
        public_key: spki,
        attributes: SetOfVec::try_from(vec![attribute])?,
    };
    let signature: p256::ecdsa::DerSignature = key.sign(&info.to_der()?);
    let algorithm = AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None };
    Ok(CertReq { info, algorithm, signature: BitString::from_bytes(signature.as_bytes())? }.to_der()?)
}

/// The JSON bodies of `count` signed issue commands, ready to POST.
fn make_bodies(operator: &AccountSecret, prefix: &str, count: usize) -> Result<Vec<Vec<u8>>> {
    (0..count)
        .map(|i| {
            let csr = make_csr(&format!("{prefix}-{i}.localhost"))?;
            let command = CaCommand::issue(&csr, "default", None, new_nonce(&mut rand::rngs::OsRng));
            let request = CaRequest::Signed(SignedCommand::sign(operator, &command)).to_bytes();
            let body = serde_json::json!({ "encoding": "plain", "request": BASE64.encode(request) });
            Ok(serde_json::to_vec(&body)?)
        })
        .collect()
}

// ---------------------------------------------------------------- HTTP

fn http_client(root_pem: &[u8]) -> Result<reqwest::Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem) {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // The replicas listen on 127.0.0.1; their certificates name `localhost`.
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(WAIT_SECONDS + 60))
        .build()?)
}

#[derive(Default)]
struct Counters {
    busy: AtomicUsize,
    /// Answered 202 (the wait ran out before the certificate was signed) and then polled.
    polled: AtomicUsize,
    errors: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("lock");
        if first.is_none() {
            *first = Some(message);
        }
    }
}

fn issued(answer: &Value) -> bool {
    answer["state"] == "issued" && answer["certificate_chain_pem"].as_str().is_some_and(|c| c.contains("CERTIFICATE"))
}

/// Submits one issue request through replica `via` and waits until the signed chain is back.
/// Returns the latency from the first submission, or `None` if the request failed.
async fn issue_one(
    client: &reqwest::Client,
    cluster_urls: &[String],
    via: usize,
    body: &[u8],
    counters: &Counters,
) -> Option<Duration> {
    let start = Instant::now();
    let url = format!("{}/v1/certificates?wait={WAIT_SECONDS}", cluster_urls[via]);
    let answer = loop {
        let sent = client.post(&url).header("content-type", "application/json").body(body.to_vec()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                counters.error(format!("POST via replica {via}: {e}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status {
            200 | 202 => break answer,
            503 if answer["type"] == "urn:itca:problem:busy" => {
                counters.busy.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(BUSY_PAUSE).await;
            }
            _ => {
                counters.error(format!("replica {via} answered {status}: {}", String::from_utf8_lossy(&bytes)));
                return None;
            }
        }
    };
    if issued(&answer) {
        return Some(start.elapsed());
    }
    if answer["state"] != "pending" && answer["state"] != "issued" {
        counters.error(format!("replica {via} settled the request otherwise: {answer}"));
        return None;
    }
    // The wait ran out: poll the request's status.
    counters.polled.fetch_add(1, Ordering::Relaxed);
    let id = answer["request_id"].as_str().unwrap_or_default().to_string();
    let status_url = format!("{}/v1/requests/{id}", cluster_urls[via]);
    while start.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(response) = client.get(&status_url).send().await
            && let Ok(bytes) = response.bytes().await
            && issued(&serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        {
            return Some(start.elapsed());
        }
    }
    counters.error(format!("request {id} not signed within 300 s"));
    None
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        return Err(fail(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&bytes))));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

async fn wait_healthy(client: &reqwest::Client, urls: &[String]) -> Result<()> {
    let start = Instant::now();
    for (id, url) in urls.iter().enumerate() {
        loop {
            if let Ok(response) = client.get(format!("{url}/healthz")).send().await
                && response.status().is_success()
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(90) {
                return Err(fail(format!("replica {id} not healthy within 90 s")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// `(certificates, signed_certificates)` at replica `id`.
async fn certificate_counts(client: &reqwest::Client, url: &str) -> Result<(u64, u64)> {
    let status = get_json(client, &format!("{url}/v1/replica")).await?;
    let count = |key: &str| status["ca"][key].as_u64().unwrap_or(0);
    Ok((count("certificates"), count("signed_certificates")))
}

/// The sum of every sample of the Prometheus metric `name` (all label sets).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let metric = key.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// What the replication layer counted, summed over the replicas.
#[derive(Clone, Copy, Default)]
struct OrderingStats {
    rounds: f64,
    requests: f64,
    latency_sum: f64,
    latency_count: f64,
}

impl OrderingStats {
    async fn scrape(client: &reqwest::Client, urls: &[String]) -> OrderingStats {
        let mut total = OrderingStats::default();
        for url in urls {
            let Ok(response) = client.get(format!("{url}/metrics")).send().await else { continue };
            let text = response.text().await.unwrap_or_default();
            total.rounds += metric_sum(&text, "replication_rounds_delivered_total");
            total.requests += metric_sum(&text, "replication_requests_delivered_total");
            total.latency_sum += metric_sum(&text, "replication_request_latency_seconds_sum");
            total.latency_count += metric_sum(&text, "replication_request_latency_seconds_count");
        }
        total
    }

    fn since(self, before: OrderingStats) -> OrderingStats {
        OrderingStats {
            rounds: self.rounds - before.rounds,
            requests: self.requests - before.requests,
            latency_sum: self.latency_sum - before.latency_sum,
            latency_count: self.latency_count - before.latency_count,
        }
    }

    /// Mean ms from a replica accepting its own request to the request's delivery in order.
    fn mean_ordering_ms(self) -> f64 {
        1000.0 * self.latency_sum / self.latency_count.max(1.0)
    }

    /// Requests per delivered round (the same at every replica, so the sums' ratio).
    fn batch(self) -> f64 {
        self.requests / self.rounds.max(1.0)
    }

    /// Rounds delivered per replica.
    fn rounds_per_replica(self) -> f64 {
        self.rounds / N as f64
    }
}

/// Where the requests in flight are, sampled during the saturation phase (means over samples).
#[derive(Default)]
struct Backlog {
    samples: usize,
    /// Accepted by a replica, not yet delivered in order (summed over the replicas: each request
    /// is counted at the replica that accepted it).
    own_queued: f64,
    /// Delivered rounds a replica has not applied yet (mean per replica).
    unapplied_rounds: f64,
    /// Applied certificates a replica has not got the signature of yet (mean per replica).
    unsigned: f64,
}

impl Backlog {
    async fn sample(&mut self, client: &reqwest::Client, urls: &[String]) {
        let mut sample = Backlog { samples: 1, ..Backlog::default() };
        for url in urls {
            let Ok(status) = get_json(client, &format!("{url}/v1/replica")).await else { return };
            let number = |v: &Value| v.as_f64().unwrap_or(0.0);
            sample.own_queued += number(&status["replication"]["own_queued"]);
            sample.unapplied_rounds +=
                (number(&status["replication"]["delivered_rounds"]) - number(&status["ca"]["next_round"])).max(0.0)
                    / N as f64;
            sample.unsigned +=
                (number(&status["ca"]["certificates"]) - number(&status["ca"]["signed_certificates"])) / N as f64;
        }
        self.samples += 1;
        self.own_queued += sample.own_queued;
        self.unapplied_rounds += sample.unapplied_rounds;
        self.unsigned += sample.unsigned;
    }

    fn mean(&self, value: f64) -> f64 {
        value / self.samples.max(1) as f64
    }
}

// ---------------------------------------------------------------- statistics

/// Nearest-rank percentile of sorted latencies, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

struct ReplicaReport {
    certificates: u64,
    signed: u64,
    rss_base_kib: u64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_saturation_s: f64,
}

// ---------------------------------------------------------------- the benchmark

fn main() -> Result<()> {
    let options = Options::parse()?;
    let binary = server_binary()?;
    let mut cluster = Cluster::start(&binary, options.keep)?;
    let result = run(&options, &cluster);
    if result.is_err() {
        eprintln!("the replicas' logs are in {} (kept)", cluster.dir.display());
        cluster.keep = true;
    }
    cluster.stop();
    result
}

fn run(options: &Options, cluster: &Cluster) -> Result<()> {
    // Replica 0's dealt files: its RSA share and the public key, for the in-process share time.
    let config = CaConfig::load(&cluster.ca.join("replica-0/replica.toml"), cluster.dir.join("unused.sqlite"))?;
    let operator =
        AccountSecret::from_pkcs8_pem(&std::fs::read_to_string(cluster.ca.join("operator/account-key.pem"))?)
            .map_err(|e| fail(format!("operator key: {e}")))?;

    // Requests, before any timing.
    let prepared = Instant::now();
    let warmup = make_bodies(&operator, "warm", N)?;
    let low = make_bodies(&operator, "low", options.low)?;
    let saturation = Arc::new(make_bodies(&operator, "sat", options.requests)?);
    eprintln!(
        "{} CSRs and signed commands prepared in {:.1} s",
        N + options.low + options.requests,
        prepared.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client = http_client(&std::fs::read(cluster.ca.join("public/root.pem"))?)?;
    let urls: Vec<String> = (0..N).map(|id| cluster.url(id, "")).collect();
    runtime.block_on(wait_healthy(&client, &urls))?;
    eprintln!("replicas healthy");

    // 1. The share time and the ceiling (the cluster is idle now).
    let message = [0x5a_u8; 32];
    for _ in 0..5 {
        let _ = config.rsa_share.sign(&config.cluster.rsa, &message);
    }
    let share_times: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let share = config.rsa_share.sign(&config.cluster.rsa, &message);
            let elapsed = start.elapsed();
            std::hint::black_box(share);
            elapsed
        })
        .collect();
    let share_time = median(share_times);
    let ceiling = cores() as f64 / (N as f64 * share_time.as_secs_f64());
    eprintln!("RSA-{BITS} share: {:.2} ms (median of 50); ceiling {ceiling:.0} certificates/s", ms(share_time));

    let counters = Counters::default();
    // Warm-up: one certificate through each replica (connections, caches, first CRL).
    for (via, body) in warmup.iter().enumerate() {
        if runtime.block_on(issue_one(&client, &urls, via, body, &counters)).is_none() {
            return Err(fail(format!("warm-up failed: {:?}", counters.first_error.lock().expect("lock"))));
        }
    }

    // 2. Low load.
    let load_before = load_average();
    let replicas_cpu = || -> f64 { (0..N).map(|id| cpu_seconds(&cluster.pid(id).to_string())).sum() };
    // What the idle cluster burns (timers, status messages), to subtract below.
    let idle_before = replicas_cpu();
    let idle_started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let idle_rate = (replicas_cpu() - idle_before) / idle_started.elapsed().as_secs_f64();
    let low_cpu_before = replicas_cpu();
    let low_started = Instant::now();
    let ordering_low_before = runtime.block_on(OrderingStats::scrape(&client, &urls));
    let mut low_latencies = Vec::new();
    for (i, body) in low.iter().enumerate() {
        std::thread::sleep(LOW_LOAD_GAP);
        if let Some(latency) = runtime.block_on(issue_one(&client, &urls, i % N, body, &counters)) {
            low_latencies.push(latency);
        }
    }
    low_latencies.sort();
    let low_cpu = replicas_cpu() - low_cpu_before - idle_rate * low_started.elapsed().as_secs_f64();
    let ordering_low = runtime.block_on(OrderingStats::scrape(&client, &urls)).since(ordering_low_before);
    let low_errors = counters.errors.load(Ordering::Relaxed);
    let low_busy = counters.busy.load(Ordering::Relaxed);
    eprintln!(
        "low load: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&low_latencies, 50.0),
        percentile(&low_latencies, 90.0),
        percentile(&low_latencies, 100.0)
    );
    std::thread::sleep(Duration::from_millis(500));
    let rss_base: Vec<u64> = (0..N).map(|id| memory_kib(cluster.pid(id)).0).collect();
    let certs_base = (N + options.low) as f64;

    // 3. Saturation.
    let counters = Arc::new(Counters::default());
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(options.requests)));
    let cpu_before: Vec<f64> = (0..N).map(|id| cpu_seconds(&cluster.pid(id).to_string())).collect();
    let cpu_self_before = cpu_seconds("self");
    let machine_before = machine_busy_seconds();
    let ordering_sat_before = runtime.block_on(OrderingStats::scrape(&client, &urls));
    let started = Instant::now();
    let backlog = runtime.block_on(async {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (client, urls, done) = (client.clone(), urls.clone(), done.clone());
            tokio::spawn(async move {
                let mut backlog = Backlog::default();
                tokio::time::sleep(Duration::from_secs(1)).await;
                while !done.load(Ordering::Relaxed) {
                    backlog.sample(&client, &urls).await;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                backlog
            })
        };
        let mut tasks = Vec::new();
        for _ in 0..options.clients {
            let (client, urls, counters, next, latencies, bodies) =
                (client.clone(), urls.clone(), counters.clone(), next.clone(), latencies.clone(), saturation.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    if let Some(latency) = issue_one(&client, &urls, i % N, body, &counters).await {
                        latencies.lock().expect("lock").push(latency);
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        done.store(true, Ordering::Relaxed);
        sampler.await.unwrap_or_default()
    });
    let elapsed = started.elapsed();
    let cpu_after: Vec<f64> = (0..N).map(|id| cpu_seconds(&cluster.pid(id).to_string())).collect();
    let cpu_self = cpu_seconds("self") - cpu_self_before;
    let machine_busy = machine_busy_seconds() - machine_before;
    let load_after = load_average();
    let ordering_sat = runtime.block_on(OrderingStats::scrape(&client, &urls)).since(ordering_sat_before);
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("lock"));
    latencies.sort();
    let completed = latencies.len();
    let throughput = completed as f64 / elapsed.as_secs_f64();
    eprintln!(
        "saturation: {completed} certificates in {:.1} s = {throughput:.1}/s ({:.0}% of the ceiling)",
        elapsed.as_secs_f64(),
        100.0 * throughput / ceiling
    );

    // 4. Every replica signed everything; then its memory.
    let total = (N + options.low + options.requests) as u64;
    let catch_up = Instant::now();
    let mut counts = [(0, 0); N];
    runtime.block_on(async {
        loop {
            for (id, url) in urls.iter().enumerate() {
                counts[id] = certificate_counts(&client, url).await.unwrap_or((0, 0));
            }
            if counts.iter().all(|&(_, signed)| signed >= total) || catch_up.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let catch_up = catch_up.elapsed();
    let replicas: Vec<ReplicaReport> = (0..N)
        .map(|id| {
            let (rss, hwm) = memory_kib(cluster.pid(id));
            ReplicaReport {
                certificates: counts[id].0,
                signed: counts[id].1,
                rss_base_kib: rss_base[id],
                rss_kib: rss,
                hwm_kib: hwm,
                cpu_saturation_s: cpu_after[id] - cpu_before[id],
            }
        })
        .collect();

    // 5. The report.
    let sat_busy = counters.busy.load(Ordering::Relaxed);
    let sat_polled = counters.polled.load(Ordering::Relaxed);
    let sat_errors = counters.errors.load(Ordering::Relaxed);
    let certs_end = total as f64;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("## Issuance benchmark{}", if options.quick { " (quick)" } else { "" }));
    line(String::new());
    line("| Condition | Value |".into());
    line("|---|---|".into());
    line(format!("| Machine | {} |", machine()));
    line(format!("| Replicas | n = {N}, t = {T}, all on this machine, release build, 127.0.0.1 over HTTPS |"));
    line(format!("| Root key | RSA-{BITS} threshold (n = {N}) |"));
    line("| CSRs | P-256, prepared before timing; commands signed by the operator key beforehand |".into());
    line(format!(
        "| Low load | {} sequential requests, rotating replica, `?wait={WAIT_SECONDS}`, {} ms pause between |",
        options.low,
        LOW_LOAD_GAP.as_millis()
    ));
    line(format!(
        "| Saturation | {} requests, {} concurrent clients, request i via replica i mod {N}, `?wait={WAIT_SECONDS}` |",
        options.requests, options.clients
    ));
    line(format!("| Client | this process (reqwest + rustls, HTTP/1.1), on the same {} cores |", cores()));
    line(format!("| Machine load (1/5/15 min) | {load_before} before low load; {load_after} after saturation |"));
    line(String::new());
    line("| Metric | Value | Target |".into());
    line("|---|---|---|".into());
    line(format!("| RSA-{BITS} share time (median of 50, in-process) | {:.2} ms | |", ms(share_time)));
    line(format!("| Ceiling {} cores / ({N} x share) | {ceiling:.0} certificates/s | |", cores()));
    line(format!(
        "| Low load latency p50 / p90 / max | {:.1} / {:.1} / {:.1} ms | p50 < 100 ms |",
        percentile(&low_latencies, 50.0),
        percentile(&low_latencies, 90.0),
        percentile(&low_latencies, 100.0)
    ));
    line(format!(
        "| Low load: completed / errors / busy retries | {} / {low_errors} / {low_busy} | |",
        low_latencies.len()
    ));
    line(format!(
        "| Low load: ordering (accept to delivery, mean) / rounds per request | {:.1} ms / {:.2} | |",
        ordering_low.mean_ordering_ms(),
        ordering_low.rounds_per_replica() / low_latencies.len().max(1) as f64
    ));
    line(format!(
        "| Low load: replica CPU per certificate (all {N} replicas, idle {:.0} ms/s subtracted) | {:.1} ms | |",
        1000.0 * idle_rate,
        1000.0 * low_cpu / low_latencies.len().max(1) as f64
    ));
    line(format!(
        "| Saturation throughput (signed, chain returned) | {throughput:.1} certificates/s ({} in {:.1} s) | >= {:.0}/s |",
        completed,
        elapsed.as_secs_f64(),
        0.6 * ceiling
    ));
    line(format!("| Fraction of the ceiling | {:.0}% | >= 60% |", 100.0 * throughput / ceiling));
    line(format!(
        "| Saturation latency p50 / p90 / p99 / max | {:.0} / {:.0} / {:.0} / {:.0} ms | |",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0)
    ));
    line(format!(
        "| Saturation: errors / 503 busy retries / answered 202 and polled | {sat_errors} / {sat_busy} / {sat_polled} | |"
    ));
    line(format!(
        "| Saturation: ordering (accept to delivery, mean) / requests per round / rounds | {:.0} ms / {:.1} / {:.0} | |",
        ordering_sat.mean_ordering_ms(),
        ordering_sat.batch(),
        ordering_sat.rounds_per_replica()
    ));
    line(format!(
        "| Saturation: of {} requests in flight, mean waiting to be ordered / in delivered rounds not yet applied (per replica) / applied but unsigned (per replica) | {:.1} / {:.1} rounds / {:.1} | |",
        options.clients,
        backlog.mean(backlog.own_queued),
        backlog.mean(backlog.unapplied_rounds),
        backlog.mean(backlog.unsigned)
    ));
    let replica_cpu: f64 = replicas.iter().map(|r| r.cpu_saturation_s).sum();
    line(format!(
        "| CPU during saturation: replicas / client / others | {replica_cpu:.1} s / {cpu_self:.2} s / {:.1} s of {:.1} s available | |",
        (machine_busy - replica_cpu - cpu_self).max(0.0),
        cores() as f64 * elapsed.as_secs_f64()
    ));
    line(format!(
        "| Replica CPU per certificate (all {N} replicas) | {:.1} ms (of which {N} shares: {:.1} ms) | |",
        1000.0 * replica_cpu / completed.max(1) as f64,
        N as f64 * ms(share_time)
    ));
    line(format!("| All replicas signed everything after saturation | {:.1} s later | |", catch_up.as_secs_f64()));
    line(String::new());
    line("| Replica | Certificates (signed / held) | VmRSS after low load | VmRSS after run | VmHWM | RSS at 10,000 (linear extrapolation) | CPU in saturation |".into());
    line("|---|---|---|---|---|---|---|".into());
    for (id, r) in replicas.iter().enumerate() {
        let slope = (r.rss_kib as f64 - r.rss_base_kib as f64) / (certs_end - certs_base).max(1.0);
        let at_10k = r.rss_kib as f64 + slope * (10_000.0 - certs_end);
        let extrapolated =
            if certs_end >= 10_000.0 { "measured".to_string() } else { format!("{:.0} MB", at_10k / 1024.0) };
        line(format!(
            "| {id} | {} / {} | {:.0} MB | {:.0} MB | {:.0} MB | {extrapolated} | {:.1} s |",
            r.signed,
            r.certificates,
            r.rss_base_kib as f64 / 1024.0,
            r.rss_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0,
            r.cpu_saturation_s
        ));
    }
    if let Some(error) = counters.first_error.lock().expect("lock").as_ref() {
        line(String::new());
        line(format!("First error: {error}"));
    }
    println!("{out}");
    if completed < options.requests / 2 {
        return Err(fail("fewer than half the saturation requests completed"));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
