//! End to end with real processes: a 1024-bit dealer ceremony, four `ca-server run` replicas on
//! loopback, and the `ca-client` binary as a user runs it. OpenSSL checks what the client wrote.
//!
//! The `ca-server` binary is taken from this build's target folder (`cargo build -p ca-server`
//! first), or from `ITCA_SERVER_BIN`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::cli_cluster::{Cluster, show};

const N: usize = 4;
const T: usize = 1;

fn openssl(args: &[&str], dir: &Path) -> String {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?} failed:\n{}", show(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The serial of a PEM certificate, lowercase hex as the API writes it.
fn serial_of(cert: &Path) -> String {
    let text = openssl(&["x509", "-in", &cert.to_string_lossy(), "-noout", "-serial"], Path::new("."));
    let hex = text.trim().trim_start_matches("serial=").to_ascii_lowercase();
    hex.trim_start_matches("00").to_string()
}

/// Flips one byte of log entry `index`'s stored leaf in a stopped replica's database.
fn tamper_with_entry(database: &Path, index: i64) {
    use sqlx::Row;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let url = format!("sqlite://{}", database.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open the replica's database");
        let row = sqlx::query("SELECT leaf FROM entries WHERE log_index = ?")
            .bind(index)
            .fetch_one(&pool)
            .await
            .expect("entry");
        let mut leaf: Vec<u8> = row.get("leaf");
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01;
        sqlx::query("UPDATE entries SET leaf = ? WHERE log_index = ?")
            .bind(leaf)
            .bind(index)
            .execute(&pool)
            .await
            .expect("update");
        pool.close().await;
    });
}

#[test]
fn four_real_replicas_issue_verify_revoke_and_audit_and_tolerate_a_faulty_one() {
    let started = Instant::now();
    let mut cluster = Cluster::deal(N, T);
    eprintln!("ceremony: {:?}", started.elapsed());
    for id in 0..N {
        cluster.start(id);
    }
    cluster.wait_healthy(N);
    eprintln!("replicas ready: {:?}", started.elapsed());
    let dir = cluster.dir.path().to_path_buf();
    let root = cluster.root().to_string_lossy().into_owned();

    // Issue for three key types, sealed and plain; OpenSSL agrees with what the client checked.
    for (key_type, sealed) in [("ec-p256", true), ("ed25519", true), ("rsa-2048", false)] {
        let (key, cert) = (format!("{key_type}.key"), format!("{key_type}.pem"));
        let names = [format!("{key_type}.localhost"), format!("www.{key_type}.localhost")];
        let mut args = vec!["request", "--name", &names[0], "--name", &names[1], "--key-type", key_type];
        args.extend(["--key-out", &key, "--cert-out", &cert]);
        if !sealed {
            args.push("--plain");
        }
        let out = cluster.ok(&args);
        assert!(out.contains("issued certificate"), "{out}");
        let mode = std::fs::metadata(dir.join(&key)).expect("key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key} must be readable by its owner only");
        let verified = openssl(&["verify", "-x509_strict", "-CAfile", &root, &cert], &dir);
        assert_eq!(verified.trim(), format!("{cert}: OK"));
        let text = openssl(&["x509", "-in", &cert, "-noout", "-ext", "subjectAltName"], &dir);
        assert!(text.contains(&format!("DNS:{}", names[0])) && text.contains(&format!("DNS:{}", names[1])), "{text}");
        let from_key = openssl(&["pkey", "-in", &key, "-pubout"], &dir);
        let from_cert = openssl(&["x509", "-in", &cert, "-noout", "-pubkey"], &dir);
        assert_eq!(from_key, from_cert, "the certificate is for the key written beside it");
    }
    eprintln!("issued three certificates: {:?}", started.elapsed());

    // A CSR made by OpenSSL, with its own key: the names come from the CSR.
    openssl(
        &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "csr.key"]
            .into_iter()
            .chain(["-out", "csr.pem", "-subj", "/CN=csr.localhost", "-addext", "subjectAltName=DNS:csr.localhost"])
            .collect::<Vec<_>>(),
        &dir,
    );
    let out = cluster.ok(&["request", "--csr", "csr.pem", "--cert-out", "csr-cert.pem"]);
    assert!(out.contains("for csr.localhost"), "{out}");
    openssl(&["verify", "-x509_strict", "-CAfile", &root, "csr-cert.pem"], &dir);

    // A name the policy does not allow is refused, and no key is left behind.
    let refused = cluster.client(&[
        "request",
        "--name",
        "www.example.com",
        "--key-out",
        "refused.key",
        "--cert-out",
        "refused.pem",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("name_not_allowed"), "{}", show(&refused));
    assert!(!dir.join("refused.key").exists() && !dir.join("refused.pem").exists());

    // verify, get.
    let out = cluster.ok(&["verify", "ec-p256.pem"]);
    assert!(out.contains("not revoked") && out.trim_end().ends_with("OK"), "{out}");
    let serial = serial_of(&dir.join("ec-p256.pem"));
    cluster.ok(&["get", &serial, "--out", "fetched.pem"]);
    assert_eq!(std::fs::read(dir.join("fetched.pem")).unwrap(), std::fs::read(dir.join("ec-p256.pem")).unwrap());

    // Revoke by the certificate's own key; verify then reports it from a CRL signed by the root.
    let out = cluster.ok(&["revoke", "ec-p256.pem", "--key", "ec-p256.key", "--reason", "keyCompromise"]);
    assert!(out.contains(&format!("revoked certificate {serial}")), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = cluster.client(&["verify", "ec-p256.pem"]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("REVOKED") {
            assert!(!output.status.success(), "a revoked certificate must not verify");
            assert!(text.contains("keyCompromise"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the CRL never listed the revocation:\n{}", show(&output));
        std::thread::sleep(Duration::from_millis(300));
    }
    // And by the account, by serial.
    let rsa_serial = serial_of(&dir.join("rsa-2048.pem"));
    cluster.ok(&["revoke", "--serial", &rsa_serial, "--reason", "superseded", "--plain"]);
    eprintln!("revoked two certificates: {:?}", started.elapsed());

    // The audit checks out, and a second one is consistent with the first.
    let out = cluster.ok(&["audit"]);
    assert!(out.contains("audit: OK") && out.contains("last head seen: none"), "{out}");
    let out = cluster.ok(&["audit"]);
    assert!(out.contains("audit: OK") && out.contains("last head seen: size"), "{out}");

    // One replica down: t + 1 others still issue, and status and audit say who is down.
    cluster.stop(3);
    cluster.wait_healthy(N - 1);
    let out = cluster.ok(&["request", "--name", "down.localhost", "--key-out", "down.key", "--cert-out", "down.pem"]);
    assert!(out.contains("issued certificate"), "{out}");
    openssl(&["verify", "-x509_strict", "-CAfile", &root, "down.pem"], &dir);
    let status = cluster.client(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.lines().any(|l| l.starts_with('3') && l.contains("down")), "{text}");
    let out = cluster.ok(&["audit"]);
    assert!(out.contains("replica 3: down") && out.contains("audit: OK"), "{out}");
    eprintln!("issued and audited with a replica down: {:?}", started.elapsed());

    // A replica whose stored log was altered is named by the audit, which then fails.
    cluster.stop(2);
    tamper_with_entry(&cluster.ca().join("replica-2/data/ca.sqlite"), 1);
    cluster.start(2);
    cluster.start(3);
    cluster.wait_healthy(N);
    let output = cluster.client(&["audit"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success(), "{}", show(&output));
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("replica 2:")).expect("a line for replica 2");
    assert!(lines[at + 1].starts_with("  INCONSISTENT"), "{text}");
    // The others may lag (a note), but none is accused.
    for other in [0, 1, 3] {
        let at = lines.iter().position(|l| l.starts_with(&format!("replica {other}:"))).unwrap();
        let accused = lines[at + 1..]
            .iter()
            .take_while(|l| l.starts_with("  "))
            .any(|l| l.starts_with("  INCONSISTENT") || l.starts_with("  INVALID"));
        assert!(!accused, "replica {other} is honest:\n{text}");
    }
    eprintln!("audit named the tampered replica: {:?}", started.elapsed());
}

#[test]
fn bench_counts_every_request_once_and_reads_every_replicas_cpu_memory_and_traffic() {
    let started = Instant::now();
    let mut cluster = Cluster::deal(N, T);
    for id in 0..N {
        cluster.start(id);
    }
    cluster.wait_healthy(N);
    let requests = 20;
    let output = cluster.client(&["bench", "--clients", "4", "--requests", &requests.to_string(), "--json"]);
    assert!(output.status.success(), "ca-client bench failed:\n{}\n{}", show(&output), cluster.logs());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    let count = |key: &str| report[key].as_u64().unwrap_or_else(|| panic!("no {key} in {report}"));
    assert_eq!(count("issued") + count("refused") + count("failed"), requests, "{report}");
    assert_eq!(count("issued"), requests, "every certificate issued: {report}");
    assert_eq!(report["latency"]["samples"].as_u64(), Some(requests), "{report}");
    assert!(report["throughput"].as_f64().is_some_and(|t| t > 0.0), "{report}");
    let p50 = report["latency"]["p50_ms"].as_f64().expect("p50");
    let max = report["latency"]["max_ms"].as_f64().expect("max");
    assert!(0.0 < p50 && p50 <= max, "{report}");
    assert_eq!(report["settled"], true, "{report}");
    let replicas = report["replicas"].as_array().expect("replicas");
    assert_eq!(replicas.len(), N);
    for replica in replicas {
        // Every replica worked on the certificates and talked to its peers.
        assert!(replica["cpu_seconds"].as_f64().is_some_and(|s| s > 0.0), "CPU not read: {replica}");
        assert!(replica["shares_computed"].as_f64().is_some(), "shares not read: {replica}");
        assert!(replica["rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "RSS not read: {replica}");
        assert!(replica["bytes_sent"].as_f64().is_some_and(|b| b > 0.0), "traffic not read: {replica}");
        assert!(replica["messages_sent"].as_f64().is_some_and(|m| m > 0.0), "messages not read: {replica}");
    }
    assert!(report["link_bytes_per_certificate"].as_f64().is_some_and(|b| b > 0.0), "{report}");
    // t + 1 = 2 shares per certificate at least; tree heads add up to one object per certificate.
    assert!(report["shares_per_certificate"].as_f64().is_some_and(|s| (2.0..8.0).contains(&s)), "{report}");
    // Each object is combined by its combiner alone, who sends the others the signature: one
    // combination per object, where all four replicas combining would make at least 4.
    assert!(report["combinations_per_certificate"].as_f64().is_some_and(|c| (1.0..4.0).contains(&c)), "{report}");
    eprintln!("bench of {requests} certificates: {:?} in all", started.elapsed());
}
