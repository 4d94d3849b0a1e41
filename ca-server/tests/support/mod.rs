//! What the end-to-end tests of the replica daemon share: a real cluster of four `ca-server run`
//! processes on 127.0.0.1 from a full-size (2048-bit) dealer ceremony, and the clients that drive
//! it (`curl --cacert root.pem`, `openssl`). Replicas die with the test process.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod disk;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::AccountSecret;
use ca_api::command::{CaRequest, Command as CaCommand, SignedCommand, new_nonce};
use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ca-server");

pub struct Cluster {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub ports: Vec<u16>,
    pub pids: std::sync::Mutex<Vec<u32>>,
}

pub fn free_base(n: usize) -> u16 {
    // Outside the ephemeral port range, so no outgoing connection takes a stopped replica's port.
    hosts::free_local_base(n, rand::random()).expect("free ports outside the ephemeral range")
}

pub fn start_replica(cluster: &Cluster, id: usize) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cluster.dir.join(format!("replica-{id}.log")))
        .expect("log file");
    let mut command = Command::new(BIN);
    command
        .args(["run", "--config"])
        .arg(cluster.ca.join(format!("replica-{id}/replica.toml")))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null());
    ca_server::server::child::die_with_parent(&mut command);
    let pid = command.spawn().expect("start ca-server").id();
    if let Ok(mut pids) = cluster.pids.lock() {
        pids[id] = pid;
    }
}

/// A fresh cluster whose replicas die with the thread that calls this (the parent-death signal
/// follows the spawning thread).
pub fn start_cluster(seed: u64) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let base = free_base(4);
    let ca = dir.join("ca");
    let params = CeremonyParams {
        n: 4,
        t: 1,
        name: "HTTP Test CA".into(),
        hosts: hosts::local_hosts(4, base).expect("ports"),
        bits: 2048,
        out: ca.clone(),
        names: dealer::policy::default_profile_names(&[], true).expect("names"),
    };
    ceremony::run(&params, 2048, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("ceremony");
    let cluster =
        Cluster { dir, ca, ports: (0..4).map(|i| base + i).collect(), pids: std::sync::Mutex::new(vec![0; 4]) };
    for id in 0..4 {
        start_replica(&cluster, id);
    }
    for id in 0..4 {
        wait_healthy(&cluster, id);
    }
    cluster
}

/// The cluster most tests share, started from a thread that never ends (so it outlives every
/// test thread and dies with the test process).
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(start_cluster(5));
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("cluster started")
    })
}

impl Cluster {
    pub fn root(&self) -> PathBuf {
        self.ca.join("public/root.pem")
    }

    pub fn url(&self, id: usize, path: &str) -> String {
        format!("https://localhost:{}{path}", self.ports[id])
    }

    pub fn operator(&self) -> AccountSecret {
        let pem = std::fs::read_to_string(self.ca.join("operator/account-key.pem")).expect("operator key");
        AccountSecret::from_pkcs8_pem(&pem).expect("operator key parses")
    }

    pub fn work_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).expect("work dir");
        dir
    }
}

pub fn wait_healthy(cluster: &Cluster, id: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if curl(cluster, &["-X", "GET", &cluster.url(id, "/healthz")]).0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("replica {id} not healthy within 60 s");
}

/// Runs curl trusting only the root; returns the status and the body.
pub fn curl(cluster: &Cluster, args: &[&str]) -> (u16, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "90", "--cacert"])
        .arg(cluster.root())
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let mut body = output.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[split..]).trim().parse().unwrap_or(0);
    body.truncate(split);
    (status, body)
}

pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// POSTs `body` (a file) to `path` at replica `id`.
pub fn post(cluster: &Cluster, id: usize, path: &str, body: &Path) -> (u16, Value) {
    let data = format!("@{}", body.display());
    let (status, bytes) = curl(
        cluster,
        &["-X", "POST", "-H", "content-type: application/json", "--data-binary", &data, &cluster.url(id, path)],
    );
    (status, json(&bytes))
}

pub fn submission_file(dir: &Path, name: &str, request: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let body = serde_json::json!({ "encoding": "plain", "request": BASE64.encode(request) });
    std::fs::write(&path, body.to_string()).expect("write body");
    path
}

pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

/// A key and a DER CSR for `name` made by openssl.
pub fn make_csr(dir: &Path, key_type: &str, name: &str) -> Vec<u8> {
    let newkey = match key_type {
        "rsa" => "rsa:2048",
        "p256" => "ec",
        "ed25519" => "ed25519",
        other => panic!("unknown key type {other}"),
    };
    let mut args = vec!["req", "-new", "-newkey", newkey];
    if key_type == "p256" {
        args.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    let subject = format!("/CN={name}");
    let san = format!("subjectAltName=DNS:{name}");
    args.extend([
        "-nodes", "-keyout", "key.pem", "-subj", &subject, "-addext", &san, "-outform", "DER", "-out", "csr.der",
    ]);
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "openssl req: {out}");
    std::fs::read(dir.join("csr.der")).expect("csr")
}

pub fn issue_request(cluster: &Cluster, csr: &[u8]) -> Vec<u8> {
    let command = CaCommand::issue(csr, "default", None, new_nonce(&mut rand::rngs::OsRng));
    CaRequest::Signed(SignedCommand::sign(&cluster.operator(), &command)).to_bytes()
}

/// Issues through replica `via` (waiting for the outcome) and returns the settled status.
pub fn issue(cluster: &Cluster, dir: &Path, key_type: &str, name: &str, via: usize) -> Value {
    let csr = make_csr(dir, key_type, name);
    let body = submission_file(dir, "issue.json", &issue_request(cluster, &csr));
    let (status, answer) = post(cluster, via, "/v1/certificates?wait=60", &body);
    assert_eq!(status, 200, "issuance answered {status}: {answer}");
    assert_eq!(answer["state"], "issued", "{answer}");
    answer
}

/// A certificate as every replica serves it (waiting for each to have it signed).
pub fn chain_from(cluster: &Cluster, id: usize, serial: &str) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = curl(
            cluster,
            &[
                "-H",
                "accept: application/pem-certificate-chain",
                &cluster.url(id, &format!("/v1/certificates/{serial}")),
            ],
        );
        if status == 200 {
            return String::from_utf8(body).expect("PEM");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "replica {id} never served {serial} (last status {status})");
        std::thread::sleep(Duration::from_millis(100));
    }
}
