//! The fault campaign's Byzantine replicas against a real cluster: `t` replicas run the
//! test-only `byzantine-replica` binary (a real replica whose outputs are falsified), the others
//! `ca-server run`, and the `ca-client` binary is used as a user uses it. For each kind of
//! misbehaviour: every certificate is issued and verifies under the root alone, the honest
//! replicas hold identical tree heads, the client names the lying replica where it lies to
//! clients, and the honest replicas count the faults against it.
//!
//! CI runs n = 4 with one Byzantine replica per kind; `ITCA_CAMPAIGN=full` adds n = 7 with two
//! and more certificates per run, and n = 7 with one Byzantine replica while an honest one is
//! killed (SIGKILL) and restarted under the requests (the `t = 2` faults split between a liar
//! and a crash).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::cli_cluster::{Cluster, show};
use support::cluster::full_campaign;

fn byzantine_binary() -> std::path::PathBuf {
    let path = support::server_binary().with_file_name("byzantine-replica");
    assert!(path.exists(), "{} is missing: run `cargo build -p ca-server --features byzantine`", path.display());
    path
}

fn openssl_verifies(root: &Path, cert: &Path) -> bool {
    let output = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .arg(cert)
        .output()
        .expect("openssl is installed");
    output.status.success()
}

/// GETs `path` from replica `id` with curl trusting only the root.
fn get(cluster: &Cluster, id: usize, path: &str) -> String {
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cluster.cluster_file()).expect("cluster.json")).expect("JSON");
    // Versioned file: the description is under `data`.
    let replica = &file["data"]["replicas"][id];
    let url = format!("https://{}:{}{path}", replica["host"].as_str().expect("host"), replica["https_port"]);
    let output = Command::new("curl")
        // The test ceremony's 1024-bit root is below OpenSSL's default security level.
        .args(["-s", "--ciphers", "DEFAULT@SECLEVEL=0", "--max-time", "30", "--cacert"])
        .arg(cluster.root())
        .arg(url)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Faults the honest replicas attribute to `peer`: the runtime's protocol faults and the CA's
/// signature-share faults, from their metrics.
fn faults_against(cluster: &Cluster, honest: &[usize], peer: usize) -> u64 {
    let label = format!("peer=\"{peer}\"");
    let mut total = 0.0;
    for id in honest {
        for line in get(cluster, *id, "/metrics").lines() {
            let counted = (line.starts_with("replication_faults") || line.starts_with("itca_signature_share_faults"))
                && line.contains(&label);
            if counted && let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                total += value;
            }
        }
    }
    total as u64
}

/// Waits until the honest replicas serve the same signed tree head, of at least `min_size`.
fn honest_tree_heads_agree(cluster: &Cluster, honest: &[usize], min_size: u64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let heads: Vec<String> = honest.iter().map(|id| get(cluster, *id, "/v1/audit/sth")).collect();
        let first: serde_json::Value = serde_json::from_str(&heads[0]).unwrap_or_default();
        if heads.iter().all(|h| *h == heads[0]) && first["tree_size"].as_u64().is_some_and(|s| s >= min_size) {
            return first;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the honest replicas never agreed on a tree head: {heads:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One run: `t` Byzantine replicas (the last ones) doing `kind`, the rest honest.
/// `crash`: one of the `t` faults is honest replica 0, killed halfway through the requests and
/// restarted two requests later; `t - 1` replicas lie.
fn run(n: usize, t: usize, kind: &str, certificates: usize, crash: bool) {
    let started = Instant::now();
    let mut cluster = Cluster::deal(n, t);
    let liars = if crash { t - 1 } else { t };
    let byzantine: Vec<usize> = (n - liars..n).collect();
    let honest: Vec<usize> = (0..n - liars).collect();
    let program = byzantine_binary();
    for id in 0..n {
        if byzantine.contains(&id) {
            cluster.start_program(id, &program, &["--misbehave", kind]);
        } else {
            cluster.start(id);
        }
    }
    cluster.wait_healthy_at_least(n - t);
    let dir = cluster.dir.path().to_path_buf();
    let mut serials = Vec::new();
    for i in 0..certificates {
        if crash && i == certificates / 2 {
            cluster.stop(0);
        }
        if crash && i == certificates / 2 + 2 {
            cluster.start(0);
        }
        let (name, key, cert) = (format!("b{i}.localhost"), format!("b{i}.key"), format!("b{i}.pem"));
        let output = cluster.client(&["request", "--name", &name, "--key-out", &key, "--cert-out", &cert]);
        assert!(output.status.success(), "[{kind}, n={n}] request {i} failed:\n{}\n{}", show(&output), cluster.logs());
        assert!(openssl_verifies(&cluster.root(), &dir.join(&cert)), "[{kind}] certificate {i} does not verify");
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(dir.join(&cert))
            .output()
            .expect("openssl");
        serials.push(String::from_utf8_lossy(&text.stdout).trim().trim_start_matches("serial=").to_lowercase());
    }
    let head = honest_tree_heads_agree(&cluster, &honest, certificates as u64);
    // Exactly the certificates asked for were issued, wherever the lies went.
    let listed: serde_json::Value =
        serde_json::from_str(&get(&cluster, honest[0], "/v1/certificates?limit=1000")).expect("certificate list");
    assert_eq!(listed["certificates"].as_array().map(Vec::len), Some(certificates), "[{kind}] {listed}");

    match kind {
        "forged-http" => {
            // The client still gets the true certificate, and names the replica that lied.
            let output = cluster.client(&["get", &serials[0], "--out", "fetched.pem"]);
            assert!(output.status.success(), "[{kind}] get failed:\n{}", show(&output));
            assert!(openssl_verifies(&cluster.root(), &dir.join("fetched.pem")));
            // The audit checks every replica's tree head: it names the forger (and fails, as
            // evidence of a compromised replica should), while the honest heads verify.
            let audit = cluster.client(&["audit"]);
            let said = show(&audit);
            for id in &byzantine {
                assert!(
                    said.contains(&format!("replica {id}: INVALID")),
                    "[{kind}] the audit did not name {id}:\n{said}"
                );
            }
            for id in &honest {
                assert!(said.contains(&format!("replica {id}: tree head of size")), "[{kind}] {said}");
            }
        }
        "forged-requests" => {
            // Ordered, refused with a logged reason, never issued.
            let size = head["tree_size"].as_u64().unwrap_or(0);
            assert!(size > certificates as u64, "[{kind}] no forged request reached the log (size {size})");
        }
        "corrupt" | "garbage" | "bad-rsa-shares" => {
            for id in &byzantine {
                let started = Instant::now();
                while faults_against(&cluster, &honest, *id) == 0 {
                    assert!(started.elapsed() < Duration::from_secs(20), "[{kind}] no fault counted against {id}");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        // Silence, replays and equivocation need not be attributable; what counts is that they
        // change nothing above.
        _ => {}
    }
    eprintln!("[{kind}, n={n}, t={t}, crash={crash}] {certificates} certificates, {:?}", started.elapsed());
}

const KINDS: [&str; 8] =
    ["corrupt", "equivocate", "withhold", "replay", "garbage", "bad-rsa-shares", "forged-requests", "forged-http"];

/// The kinds to run (`ITCA_BYZANTINE=kind,kind` to replay some).
fn kinds() -> Vec<String> {
    match std::env::var("ITCA_BYZANTINE") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => KINDS.iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn one_byzantine_replica_of_each_kind_in_four_changes_nothing_a_client_sees() {
    let certificates = if full_campaign() { 10 } else { 2 };
    for kind in &kinds() {
        run(4, 1, kind, certificates, false);
    }
}

#[test]
fn two_byzantine_replicas_of_each_kind_in_seven_change_nothing_a_client_sees() {
    if !full_campaign() {
        eprintln!("n = 7 runs in the full campaign only (ITCA_CAMPAIGN=full)");
        return;
    }
    for kind in &kinds() {
        run(7, 2, kind, 10, false);
    }
}

#[test]
fn one_byzantine_replica_of_each_kind_and_one_crashing_in_seven_change_nothing_a_client_sees() {
    if !full_campaign() {
        eprintln!("runs in the full campaign only (ITCA_CAMPAIGN=full)");
        return;
    }
    for kind in &kinds() {
        run(7, 2, kind, 10, true);
    }
}
