//! The ceremony's output, checked the way an operator and an ordinary verifier would: files and
//! modes, `dealer verify`, and the real `openssl verify -x509_strict` on certificates whose
//! signatures were combined from threshold shares.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use dealer::ceremony::{self, CeremonyError, CeremonyParams};
use dealer::certs::{self, Issuer, ReplicaRole};
use dealer::hosts::{self, HostSpec};
use dealer::layout;
use der::{DecodePem, EncodePem, pem::LineEnding};
use p256::pkcs8::EncodePublicKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use threshold::cluster::ClusterFile;
use threshold::encoding::{from_json, to_json};
use threshold::rsa::RsaKeyShare;
use x509_cert::Certificate;

/// Small keys keep the suite fast; the size is not what these tests are about.
const TEST_BITS: u32 = 1024;

fn params(dir: &Path, n: usize, t: usize) -> CeremonyParams {
    CeremonyParams {
        n,
        t,
        name: "Test Root CA".into(),
        hosts: hosts::local_hosts(n, 18440).unwrap(),
        bits: TEST_BITS,
        out: dir.join("ca"),
    }
}

fn run_ceremony(dir: &Path, n: usize, t: usize, seed: u64) -> PathBuf {
    let p = params(dir, n, t);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    ceremony::run(&p, TEST_BITS, &mut rng, &mut |_| {}).expect("ceremony");
    p.out
}

fn cluster(out: &Path) -> ClusterFile {
    from_json(&std::fs::read_to_string(out.join("public/cluster.json")).unwrap()).unwrap()
}

fn share(out: &Path, id: usize) -> RsaKeyShare {
    from_json(&std::fs::read_to_string(layout::replica_dir(out, id).join(layout::RSA_SHARE)).unwrap()).unwrap()
}

fn openssl_verify(root: &Path, cert: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .arg(cert)
        .output()
        .expect("the openssl binary must be installed (.ci/run installs it)")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Issues a leaf certificate whose signature is combined from the shares of `signers` only.
fn leaf_signed_by_shares(out: &Path, signers: &[usize], serial_seed: u64) -> Certificate {
    let cluster = cluster(out);
    let root = Certificate::from_pem(std::fs::read(out.join("public/root.pem")).unwrap()).unwrap();
    let shares: Vec<RsaKeyShare> = signers.iter().map(|&i| share(out, i)).collect();
    let sign = |bytes: &[u8]| {
        let sig_shares: Vec<_> = shares.iter().map(|s| s.sign(&cluster.rsa, bytes)).collect();
        cluster.rsa.combine(bytes, &sig_shares).expect("honest shares combine").value
    };
    let issuer = Issuer {
        name: root.tbs_certificate.subject.clone(),
        key_id: certs::key_identifier(&root.tbs_certificate.subject_public_key_info),
        not_after: root.tbs_certificate.validity.not_after.to_system_time(),
        sign: &sign,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(serial_seed);
    let key = p256::SecretKey::random(&mut rng);
    let spki = key.public_key().to_public_key_der().unwrap().decode_msg().unwrap();
    let host = HostSpec { host: "leaf.localhost".into(), https_port: 1, peer_port: 2 };
    certs::replica_certificate(
        &issuer,
        0,
        &host,
        ReplicaRole::Https,
        spki,
        certs::random_serial(&mut rng).unwrap(),
        SystemTime::now(),
    )
    .unwrap()
}

#[test]
fn certificates_signed_by_any_t_plus_1_shares_pass_openssl_strict_verification() {
    for (n, t) in [(4, 1), (7, 2), (10, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let out = run_ceremony(dir.path(), n, t, n as u64);
        // The first and the last t+1 replicas: disjoint signer sets must both work.
        for signers in [(0..=t).collect::<Vec<_>>(), (n - t - 1..n).collect()] {
            let cert = leaf_signed_by_shares(&out, &signers, 7);
            let path = dir.path().join(format!("leaf-{n}-{}.pem", signers[0]));
            std::fs::write(&path, cert.to_pem(LineEnding::LF).unwrap()).unwrap();
            let result = openssl_verify(&out.join("public/root.pem"), &path);
            assert!(
                result.status.success(),
                "n={n} t={t} signers {signers:?}: {}{}",
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            );
        }
    }
}

#[test]
fn ceremony_output_verifies_and_keeps_secrets_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 1);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let report = dealer::verify::verify(&out, &mut rng).expect("fresh ceremony verifies");
    assert_eq!((report.n, report.t), (4, 1));

    let cluster = cluster(&out);
    cluster.check().unwrap();
    assert_eq!(cluster.replicas.len(), 4);
    assert_eq!(mode(&out.join("public/root.pem")), 0o644);
    for id in 0..4 {
        let replica = layout::replica_dir(&out, id);
        assert_eq!(mode(&replica), 0o700);
        for file in [
            layout::REPLICA_TOML,
            layout::RSA_SHARE,
            layout::BLS_SHARES,
            layout::SIGNING_KEY,
            layout::PEER_KEY,
            layout::PEER_CERT,
            layout::HTTPS_KEY,
            layout::HTTPS_CERT,
        ] {
            assert_eq!(mode(&replica.join(file)), 0o600, "{file} of replica {id}");
        }
        // Each replica's HTTPS and peer certificates chain to the root under strict checks.
        for cert in [layout::HTTPS_CERT, layout::PEER_CERT] {
            let result = openssl_verify(&out.join("public/root.pem"), &replica.join(cert));
            assert!(result.status.success(), "{cert}: {}", String::from_utf8_lossy(&result.stderr));
        }
    }
    // No staging folder is left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("ca")]);
}

#[test]
fn root_certificate_is_a_strict_self_signed_ca() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 3);
    let root = out.join("public/root.pem");
    let verify = openssl_verify(&root, &root);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let text = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&root).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("Subject Key Identifier"), "{text}");
    assert!(text.contains("Subject: CN = Test Root CA"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(text.contains(&format!("Public-Key: ({TEST_BITS} bit)")), "{text}");
}

#[test]
fn ceremony_refuses_an_existing_output_folder_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(dir.path(), 4, 1);
    std::fs::create_dir(&p.out).unwrap();
    std::fs::write(p.out.join("keep.txt"), "mine").unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let err = ceremony::run(&p, TEST_BITS, &mut rng, &mut |_| {}).unwrap_err();
    assert!(matches!(err, CeremonyError::OutputExists(_)), "{err}");
    assert_eq!(std::fs::read_to_string(p.out.join("keep.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&p.out).unwrap().count(), 1);
}

#[test]
fn ceremony_rejects_inconsistent_parameters_before_doing_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let check = |p: CeremonyParams| ceremony::check_params(&p, ceremony::MIN_PRODUCTION_BITS).unwrap_err();
    let mut p = params(dir.path(), 4, 1);
    p.bits = 2048;
    assert!(ceremony::check_params(&p, ceremony::MIN_PRODUCTION_BITS).is_ok());
    assert!(matches!(check(CeremonyParams { t: 2, ..p.clone() }), CeremonyError::Resilience { n: 4, t: 2 }));
    assert!(matches!(check(CeremonyParams { n: 3, ..p.clone() }), CeremonyError::Resilience { .. }));
    assert!(matches!(check(CeremonyParams { bits: 1024, ..p.clone() }), CeremonyError::Bits(1024)));
    assert!(matches!(check(CeremonyParams { bits: 2047, ..p.clone() }), CeremonyError::Bits(2047)));
    assert!(matches!(check(CeremonyParams { name: String::new(), ..p.clone() }), CeremonyError::Name(_)));
    let five_hosts = hosts::local_hosts(5, 18440).unwrap();
    assert!(matches!(check(CeremonyParams { hosts: five_hosts, ..p.clone() }), CeremonyError::HostCount { .. }));
    let nowhere = dir.path().join("missing/parent/ca");
    assert!(matches!(check(CeremonyParams { out: nowhere, ..p }), CeremonyError::NoParent(_)));
}

#[test]
fn verify_names_a_tampered_share_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 5);
    // Replace replica 2's RSA share with replica 1's (a valid share, but not replica 2's).
    let foreign = to_json(&share(&out, 1));
    let target = layout::replica_dir(&out, 2).join(layout::RSA_SHARE);
    std::fs::write(&target, foreign.replace("\"party\": 1", "\"party\": 2").as_bytes()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let err = dealer::verify::verify(&out, &mut rng).unwrap_err().to_string();
    assert!(err.contains("replica-2/secrets/rsa-share.json"), "{err}");
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn verify_names_a_verification_key_that_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 7);
    // Swap two replicas' Ed25519 keys in the public description.
    let path = out.join("public/cluster.json");
    let mut cluster = cluster(&out);
    let key0 = cluster.replicas[0].signing_key;
    cluster.replicas[0].signing_key = cluster.replicas[1].signing_key;
    cluster.replicas[1].signing_key = key0;
    let tampered = to_json(&cluster);
    std::fs::write(&path, tampered.as_bytes()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let err = dealer::verify::verify(&out, &mut rng).unwrap_err().to_string();
    assert!(err.contains("replica-0/cluster.json") && err.contains("differs"), "{err}");
    // Even with every copy tampered alike, the keys themselves give it away.
    for id in 0..4 {
        std::fs::write(layout::replica_dir(&out, id).join(layout::CLUSTER_JSON), tampered.as_bytes()).unwrap();
    }
    let err = dealer::verify::verify(&out, &mut rng).unwrap_err().to_string();
    assert!(err.contains("replica-0/secrets/ed25519-key.json") && err.contains("does not match"), "{err}");
}

#[test]
fn verify_refuses_a_secret_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 9);
    let key = layout::replica_dir(&out, 3).join(layout::HTTPS_KEY);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let err = dealer::verify::verify(&out, &mut rng).unwrap_err().to_string();
    assert!(err.contains("https-key.pem") && err.contains("mode 644"), "{err}");
}
