//! The CA end to end: four real `ca-server run` processes on 127.0.0.1 from a full-size (2048-bit)
//! dealer ceremony, driven with real clients only: `curl --cacert root.pem` for the API,
//! `openssl` for CSRs and verification, a rustls client for a TLS handshake with an issued
//! certificate. The tests share one cluster (started once, killed when the test binary exits);
//! the cluster and client helpers are in `support/`.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::AccountSecret;
use ca_api::command::{CaRequest, Command as CaCommand, RevocationReason, SignedCommand, new_nonce};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::disk::SmallDisk;
use support::{
    Cluster, chain_from, cluster, curl, free_base, issue, issue_request, json, make_csr, openssl, post, start_cluster,
    start_replica, submission_file, wait_healthy,
};
#[test]
fn certificates_for_rsa_p256_and_ed25519_pass_strict_openssl_verification_and_are_identical_at_every_replica() {
    let cluster = cluster();
    for (i, key_type) in ["rsa", "p256", "ed25519"].into_iter().enumerate() {
        let dir = cluster.work_dir(&format!("issue-{key_type}"));
        let name = format!("{key_type}.localhost");
        let answer = issue(cluster, &dir, key_type, &name, i % 4);
        let serial = answer["serial"].as_str().expect("serial").to_string();
        let chain = answer["certificate_chain_pem"].as_str().expect("chain");
        std::fs::write(dir.join("chain.pem"), chain).expect("write chain");
        let root = cluster.root();
        let (ok, out) = openssl(
            &dir,
            &["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", root.to_str().unwrap(), "chain.pem"],
        );
        assert!(ok, "openssl verify ({key_type}): {out}");
        let (_, text) = openssl(&dir, &["x509", "-in", "chain.pem", "-noout", "-text"]);
        assert!(text.contains(&format!("DNS:{name}")), "{text}");
        let copies: Vec<String> = (0..4).map(|id| chain_from(cluster, id, &serial)).collect();
        assert!(copies.iter().all(|c| c == &copies[0]), "replicas serve different bytes for {serial}");
        assert_eq!(copies[0], chain, "the waited-for answer is the served certificate");
    }
}

#[test]
fn a_rustls_client_completes_a_handshake_with_a_server_using_an_issued_certificate() {
    let cluster = cluster();
    let dir = cluster.work_dir("handshake");
    let answer = issue(cluster, &dir, "p256", "tls.localhost", 1);
    std::fs::write(dir.join("chain.pem"), answer["certificate_chain_pem"].as_str().expect("chain")).expect("chain");
    let port = free_base(1);
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-cert", "chain.pem", "-key", "key.pem", "-accept"])
        .arg(port.to_string())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let mut roots = rustls::RootCertStore::empty();
    let root_pem = std::fs::read(cluster.root()).expect("root");
    for cert in rustls_pemfile_certs(&root_pem) {
        roots.add(cert).expect("root certificate");
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("tls.localhost").expect("name");
    let start = Instant::now();
    let handshake = loop {
        let attempt = (|| -> Result<(), String> {
            let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config.clone()), name.clone())
                .map_err(|e| e.to_string())?;
            let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
            }
            Ok(())
        })();
        if attempt.is_ok() || start.elapsed() > Duration::from_secs(10) {
            break attempt;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    handshake.expect("rustls trusts the issued certificate through the root alone");
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().expect("PEM certificates")
}

#[test]
fn a_revoked_certificate_appears_in_the_jointly_signed_crl() {
    let cluster = cluster();
    let dir = cluster.work_dir("revoke");
    let answer = issue(cluster, &dir, "p256", "revoked.localhost", 2);
    let serial = answer["serial"].as_str().expect("serial").to_string();
    std::fs::write(dir.join("chain.pem"), answer["certificate_chain_pem"].as_str().expect("chain")).expect("chain");
    let command = CaCommand::Revoke {
        serial_hex: serial.clone(),
        reason: RevocationReason::KeyCompromise,
        nonce: new_nonce(&mut rand::rngs::OsRng),
    };
    let request = CaRequest::Signed(SignedCommand::sign(&cluster.operator(), &command)).to_bytes();
    let body = submission_file(&dir, "revoke.json", &request);
    let (status, answer) = post(cluster, 3, "/v1/revocations?wait=60", &body);
    assert_eq!((status, answer["state"].as_str()), (200, Some("revoked")), "{answer}");

    // The CRL that lists it (a replica may still be combining the newest one).
    let start = Instant::now();
    loop {
        let (status, crl) = curl(cluster, &[&cluster.url(0, "/v1/crl")]);
        assert_eq!(status, 200);
        std::fs::write(dir.join("crl.der"), &crl).expect("crl");
        let (ok, text) = openssl(
            &dir,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "crl.der",
                "-noout",
                "-text",
                "-CAfile",
                cluster.root().to_str().unwrap(),
            ],
        );
        assert!(ok, "openssl crl verifies it: {text}");
        if text.to_lowercase().contains(&serial.trim_start_matches('0').to_lowercase()) {
            assert!(text.contains("Key Compromise"), "{text}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the CRL never listed {serial}: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, crl_pem) = openssl(&dir, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
    let _ = crl_pem;
    let mut both = std::fs::read_to_string(cluster.root()).expect("root");
    both.push_str(&std::fs::read_to_string(dir.join("crl.pem")).expect("crl pem"));
    std::fs::write(dir.join("root-and-crl.pem"), both).expect("bundle");
    let (ok, out) = openssl(&dir, &["verify", "-crl_check", "-CAfile", "root-and-crl.pem", "chain.pem"]);
    assert!(!ok && out.contains("revoked"), "openssl -crl_check refuses the revoked certificate: {out}");
}

fn problem(status: u16, body: &Value, kind: &str) {
    assert_eq!(body["type"], format!("urn:itca:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
}

#[test]
fn every_bad_request_is_its_own_clear_problem() {
    let cluster = cluster();
    let dir = cluster.work_dir("refusals");

    // A name the policy does not allow.
    let csr = make_csr(&dir, "p256", "www.example.com");
    let body = submission_file(&dir, "name.json", &issue_request(cluster, &csr));
    let (status, answer) = post(cluster, 0, "/v1/certificates", &body);
    assert_eq!(status, 403);
    problem(403, &answer, "name-not-allowed");

    // A CSR whose self-signature is broken.
    let mut csr = make_csr(&dir, "p256", "bad.localhost");
    let last = csr.len() - 3;
    csr[last] ^= 0x40;
    let body = submission_file(&dir, "csr.json", &issue_request(cluster, &csr));
    let (status, answer) = post(cluster, 1, "/v1/certificates", &body);
    problem(status, &answer, "csr-invalid");
    assert_eq!(status, 400);

    // Malformed body.
    let path = dir.join("garbage.json");
    std::fs::write(&path, b"{not json").expect("write");
    let (status, answer) = post(cluster, 2, "/v1/certificates", &path);
    problem(status, &answer, "malformed-body");
    assert_eq!(status, 400);

    // Oversized body.
    let path = dir.join("huge.json");
    std::fs::write(&path, vec![b'x'; 300 * 1024]).expect("write");
    let (status, answer) = post(cluster, 3, "/v1/certificates", &path);
    problem(status, &answer, "body-too-large");
    assert_eq!(status, 413);

    // An account that expired: the operator adds it to the policy, then it asks.
    let policy_text = std::fs::read_to_string(cluster.ca.join("public/policy.json")).expect("policy");
    let mut policy: Value = serde_json::from_str(&policy_text).expect("policy JSON");
    let expired = AccountSecret::generate(&mut rand::rngs::OsRng);
    let mut account = policy["data"]["accounts"][0].clone();
    account["name"] = "expired".into();
    account["public_key"] = expired.public().to_string().into();
    account["admin"] = false.into();
    account["expires_at"] = 1_000_000_000u64.into();
    policy["data"]["accounts"].as_array_mut().expect("accounts").push(account);
    let command = CaCommand::SetPolicy { policy_json: policy.to_string(), nonce: new_nonce(&mut rand::rngs::OsRng) };
    let request = CaRequest::Signed(SignedCommand::sign(&cluster.operator(), &command)).to_bytes();
    let body = submission_file(&dir, "policy.json", &request);
    let (status, answer) = post(cluster, 0, "/v1/policy?wait=60", &body);
    assert_eq!((status, answer["state"].as_str()), (200, Some("policy_changed")), "{answer}");
    let policy_change = answer["request_id"].as_str().expect("request id").to_string();
    let csr = make_csr(&dir, "p256", "late.localhost");
    let command = CaCommand::issue(&csr, "default", None, new_nonce(&mut rand::rngs::OsRng));
    let request = CaRequest::Signed(SignedCommand::sign(&expired, &command)).to_bytes();
    let body = submission_file(&dir, "expired.json", &request);
    // Every replica applied the policy change before answering `wait` at replica 0 only; ask
    // replica 0, which has.
    let (status, answer) = post(cluster, 0, "/v1/certificates", &body);
    problem(status, &answer, "account-expired");
    assert_eq!(status, 403);

    // A request's status by its id, and an id that reached no replica.
    let (status, body) = curl(cluster, &[&cluster.url(0, &format!("/v1/requests/{policy_change}"))]);
    let body = json(&body);
    assert_eq!((status, body["state"].as_str()), (200, Some("policy_changed")), "{body}");
    let unknown = hex::encode(rand::random::<[u8; 32]>());
    for replica in 0..4 {
        let (status, body) = curl(cluster, &[&cluster.url(replica, &format!("/v1/requests/{unknown}"))]);
        problem(404, &json(&body), "unknown-request");
        assert_eq!(status, 404);
    }

    // No such endpoint.
    let (status, body) = curl(cluster, &[&cluster.url(0, "/v1/nothing")]);
    assert_eq!(status, 404);
    problem(404, &json(&body), "no-such-endpoint");
}

fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 6962 §2.1's MTH, recursively: an implementation independent of the server's.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            // The largest power of two smaller than n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2 inclusion verification.
fn verify_inclusion(index: u64, size: u64, leaf: [u8; 32], path: &[[u8; 32]], root: [u8; 32]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

fn hashes(value: &Value) -> Vec<[u8; 32]> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex").try_into().expect("32 bytes"))
        .collect()
}

#[test]
fn tree_heads_verify_under_the_root_key_and_proofs_verify_independently() {
    let cluster = cluster();
    let dir = cluster.work_dir("audit");
    let first = issue(cluster, &dir, "ed25519", "audit.localhost", 0);
    let index = first["log_index"].as_u64().expect("index");
    // The tree head covering it (after every round that changed the log).
    let start = Instant::now();
    let sth = loop {
        let (status, body) = curl(cluster, &[&cluster.url(0, "/v1/audit/sth")]);
        if status == 200 {
            let sth = json(&body);
            if sth["tree_size"].as_u64().is_some_and(|s| s > index) {
                break sth;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no tree head covers entry {index}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let size = sth["tree_size"].as_u64().expect("size");
    let root: [u8; 32] = hex::decode(sth["root_hash"].as_str().expect("root")).expect("hex").try_into().expect("32");

    // The signature: RFC 6962 TreeHeadSignature under the root certificate's RSA key.
    let mut signed = vec![0u8, 1u8];
    signed.extend_from_slice(&sth["timestamp"].as_u64().expect("timestamp").to_be_bytes());
    signed.extend_from_slice(&size.to_be_bytes());
    signed.extend_from_slice(&root);
    std::fs::write(dir.join("sth.bin"), &signed).expect("sth");
    std::fs::write(dir.join("sth.sig"), BASE64.decode(sth["signature"].as_str().expect("sig")).expect("b64"))
        .expect("sig");
    openssl(&dir, &["x509", "-in", cluster.root().to_str().unwrap(), "-pubkey", "-noout", "-out", "root-key.pem"]);
    let (ok, out) = openssl(&dir, &["dgst", "-sha256", "-verify", "root-key.pem", "-signature", "sth.sig", "sth.bin"]);
    assert!(ok, "openssl verifies the tree head under the root key: {out}");

    // The root recomputed from every entry.
    let (status, body) = curl(cluster, &[&cluster.url(1, &format!("/v1/audit/entries?start=0&end={}", size - 1))]);
    assert_eq!(status, 200);
    let leaves: Vec<[u8; 32]> = json(&body)["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| leaf_hash(&BASE64.decode(e["leaf"].as_str().expect("leaf")).expect("b64")))
        .collect();
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(mth(&leaves), root, "the entries hash to the signed root");

    // Inclusion of the issuance.
    let (status, body) =
        curl(cluster, &[&cluster.url(2, &format!("/v1/audit/proof/inclusion?index={index}&tree_size={size}"))]);
    assert_eq!(status, 200);
    let proof = json(&body);
    assert!(verify_inclusion(index, size, leaves[index as usize], &hashes(&proof["audit_path"]), root));

    // Consistency: every earlier size's root is a prefix of this one (checked against the
    // recomputed prefix roots).
    for first_size in 1..size {
        let (status, body) =
            curl(cluster, &[&cluster.url(3, &format!("/v1/audit/proof/consistency?first={first_size}&second={size}"))]);
        assert_eq!(status, 200);
        let proof = hashes(&json(&body)["proof"]);
        assert!(
            verify_consistency(first_size, size, mth(&leaves[..first_size as usize]), root, &proof),
            "consistency {first_size} -> {size}"
        );
    }
}

/// RFC 9162 §2.1.4.2 consistency verification.
fn verify_consistency(
    first: u64,
    second: u64,
    first_root: [u8; 32],
    second_root: [u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == first_root && sr == second_root
}

fn sth_of(cluster: &Cluster, id: usize) -> Option<Value> {
    let (status, body) = curl(cluster, &[&cluster.url(id, "/v1/audit/sth")]);
    (status == 200).then(|| json(&body))
}

/// Replica `id` serves these certificates byte for byte as replica 0 does and, at the same size,
/// the same signed tree head (waiting for it to catch up).
fn serves_what_replica_0_serves(cluster: &Cluster, id: usize, serials: &[String]) {
    for serial in serials {
        assert_eq!(chain_from(cluster, id, serial), chain_from(cluster, 0, serial), "certificate {serial}");
    }
    let start = Instant::now();
    loop {
        let heads: Vec<Option<Value>> = [0, id].iter().map(|id| sth_of(cluster, *id)).collect();
        if heads[0].is_some() && heads[0] == heads[1] {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "replica {id}'s tree head never matched: {heads:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_replica_killed_under_load_restarts_and_serves_the_same_certificates_and_tree_heads() {
    let cluster = start_cluster(11);
    let dir = cluster.work_dir("restart");
    // Requests go to replicas 0-2 while replica 3 is killed (SIGKILL) in the middle.
    let mut serials = Vec::new();
    for i in 0..6 {
        if i == 2 {
            let pid = cluster.pids.lock().expect("pids")[3];
            // SAFETY: kill(2) on a child we spawned.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let sub = dir.join(format!("r{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let answer = issue(&cluster, &sub, "p256", &format!("r{i}.localhost"), i % 3);
        serials.push(answer["serial"].as_str().expect("serial").to_string());
    }
    start_replica(&cluster, 3);
    wait_healthy(&cluster, 3);
    // It catches up: the same certificates and, at the same size, the same signed tree head.
    serves_what_replica_0_serves(&cluster, 3, &serials);
}

fn health_of(cluster: &Cluster, id: usize) -> (u16, Value) {
    let (status, body) = curl(cluster, &[&cluster.url(id, "/healthz")]);
    (status, json(&body))
}

#[test]
fn a_replica_whose_disk_fills_pauses_says_so_in_healthz_and_resumes_without_loss_once_it_has_room() {
    let cluster = start_cluster(13);
    let dir = cluster.work_dir("disk-full");
    let Some(disk) = SmallDisk::mount(&cluster.dir.join("small-disk"), "16m") else {
        return;
    };
    // Replica 3's database moves onto the small disk (its replication log stays where it was).
    let pid = cluster.pids.lock().expect("pids")[3];
    // SAFETY: kill(2) on a child we spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(300));
    let data = cluster.ca.join("replica-3/data");
    for suffix in ["", "-wal", "-shm"] {
        let from = data.join(format!("ca.sqlite{suffix}"));
        if from.exists() {
            std::fs::copy(&from, disk.0.join(format!("ca.sqlite{suffix}"))).expect("copy the database");
            std::fs::remove_file(&from).expect("remove the old copy");
        }
    }
    std::os::unix::fs::symlink(disk.0.join("ca.sqlite"), data.join("ca.sqlite")).expect("symlink");
    start_replica(&cluster, 3);
    wait_healthy(&cluster, 3);

    let filler = disk.fill();
    let mut serials = Vec::new();
    for i in 0..4 {
        let sub = dir.join(format!("f{i}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let answer = issue(&cluster, &sub, "p256", &format!("full{i}.localhost"), i % 3);
        serials.push(answer["serial"].as_str().expect("serial").to_string());
    }
    let start = Instant::now();
    loop {
        let (status, body) = health_of(&cluster, 3);
        if status == 503 {
            assert_eq!(body["status"], "degraded", "{body}");
            assert!(body["reason"].as_str().is_some_and(|r| r.contains("storage")), "{body}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the full disk never showed in /healthz: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(cluster.dir.join("replica-3.log")).expect("log");
    assert!(log.contains("applying is paused"), "the pause is logged");

    // Room again: it resumes by itself, applies what it missed and serves the same state.
    std::fs::remove_file(filler).expect("remove the filler");
    wait_healthy(&cluster, 3);
    serves_what_replica_0_serves(&cluster, 3, &serials);
    let (status, _) = health_of(&cluster, 3);
    assert_eq!(status, 200);
}

#[test]
fn a_replica_whose_https_port_is_taken_refuses_to_start_instead_of_running_unreachable() {
    // A copy of replica 0's folder whose HTTPS port another socket holds (its peer port is free).
    let cluster = cluster();
    let work = cluster.work_dir("https-port-taken");
    let replica = work.join("replica");
    let copied = Command::new("cp").arg("-r").arg(cluster.ca.join("replica-0")).arg(&replica).status().expect("run cp");
    assert!(copied.success());
    let taken = std::net::TcpListener::bind(("127.0.0.1", free_base(1))).expect("hold a port");
    let https = taken.local_addr().expect("address").port();
    let peer = free_base(1);
    let toml = std::fs::read_to_string(replica.join("replica.toml")).expect("replica.toml");
    let toml: String = toml
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some(("https", _)) => format!("https = \"127.0.0.1:{https}\""),
            Some(("peer", _)) => format!("peer = \"127.0.0.1:{peer}\""),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(replica.join("replica.toml"), toml).expect("write replica.toml");

    let mut child = Command::new(support::BIN)
        .args(["run", "--config"])
        .arg(replica.join("replica.toml"))
        .arg("--data")
        .arg(work.join("data"))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ca-server");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!("the replica kept running without its HTTPS port:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&format!("binding the HTTPS listener on 127.0.0.1:{https}")), "{stderr}");
    assert!(!stderr.contains("replica ready"), "it must not claim to be ready:\n{stderr}");
    drop(taken);
}
