//! The ceremony's output, checked the way an operator and an ordinary verifier would: files and
//! modes, `dealer verify`, the policy and the operator's key, and the real `openssl verify
//! -x509_strict` on certificates whose signatures were combined from threshold shares.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use ca_api::account::AccountSecret;
use ca_api::policy::{NameError, NameRule, Policy, policy_sha256};
use dealer::ceremony::{self, CeremonyError, CeremonyParams};
use dealer::certs::{self, Issuer, ReplicaRole};
use dealer::hosts::{self, HostSpec};
use dealer::layout;
use der::{DecodePem, EncodePem, pem::LineEnding};
use p256::pkcs8::EncodePublicKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use threshold::cluster::{ClusterFile, ReplicaConfig};
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
        names: vec![NameRule::Subdomain("localhost".into()), NameRule::Exact("www.example.com".into())],
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
    let bad_rule = vec![NameRule::Subdomain("Example.com".into())];
    assert!(matches!(
        check(CeremonyParams { names: bad_rule, ..p.clone() }),
        CeremonyError::NameRule { reason: NameError::InvalidCharacter('E'), .. }
    ));
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

fn verify_error(out: &Path, seed: u64) -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    dealer::verify::verify(out, &mut rng).unwrap_err().to_string()
}

#[test]
fn ceremony_writes_a_pinned_policy_and_an_owner_only_operator_key_that_is_its_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 11);
    let public_policy = out.join("public").join(layout::POLICY_JSON);
    let policy_bytes = std::fs::read(&public_policy).unwrap();
    assert_eq!(mode(&public_policy), 0o644);
    assert_eq!(cluster(&out).policy_sha256, policy_sha256(&policy_bytes));
    let policy = Policy::parse(std::str::from_utf8(&policy_bytes).unwrap()).unwrap();
    assert_eq!(policy.profiles[0].names, params(dir.path(), 4, 1).names);

    // The operator's folder and key are the operator's alone.
    assert_eq!(mode(&out.join(layout::OPERATOR_DIR)), 0o700);
    let key_path = out.join(layout::OPERATOR_KEY);
    assert_eq!(mode(&key_path), 0o600);
    let key = AccountSecret::from_pkcs8_pem(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let account = policy.account_for(&key.public()).expect("the operator key is an account");
    assert!(account.admin && account.may_revoke_any && account.expires_at.is_none());
    assert_eq!(account.profiles, [Policy::DEFAULT_PROFILE]);
    let read = Command::new("openssl").args(["pkey", "-noout", "-in"]).arg(&key_path).output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));

    // Every replica holds the same bytes, found through its replica.toml.
    for id in 0..4 {
        let replica = layout::replica_dir(&out, id);
        let config: ReplicaConfig =
            toml::from_str(&std::fs::read_to_string(replica.join(layout::REPLICA_TOML)).unwrap()).unwrap();
        assert_eq!(config.policy, layout::POLICY_JSON);
        let copy = replica.join(&config.policy);
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(std::fs::read(&copy).unwrap(), policy_bytes, "replica {id}");
    }
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let report = dealer::verify::verify(&out, &mut rng).unwrap();
    assert_eq!(report.operator_account.as_deref(), Some(Policy::OPERATOR));
    assert_eq!((report.accounts, report.profiles), (1, 1));
}

#[test]
fn verify_names_a_tampered_policy_copy() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 13);
    let copy = layout::replica_dir(&out, 1).join(layout::POLICY_JSON);
    let text = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(&copy, text.replace("\"max_validity_days\": 90", "\"max_validity_days\": 398")).unwrap();
    let err = verify_error(&out, 14);
    assert!(err.contains("replica-1/policy.json") && err.contains("differs from public/policy.json"), "{err}");
}

#[test]
fn verify_names_a_policy_whose_hash_differs_from_cluster_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 15);
    // A consistent, still valid policy everywhere, but not the one the ceremony dealt.
    let public_policy = out.join("public").join(layout::POLICY_JSON);
    let text = std::fs::read_to_string(&public_policy).unwrap();
    let widened = text.replace("\"www.example.com\"", "\"example.com\"");
    assert_ne!(widened, text);
    std::fs::write(&public_policy, &widened).unwrap();
    for id in 0..4 {
        std::fs::write(layout::replica_dir(&out, id).join(layout::POLICY_JSON), &widened).unwrap();
    }
    let err = verify_error(&out, 16);
    assert!(err.contains("public/policy.json") && err.contains("differs from policy_sha256"), "{err}");

    // A policy that does not check is named as such, before its hash is compared.
    std::fs::write(&public_policy, text.replace("\"default_validity_days\": 30", "\"default_validity_days\": 91"))
        .unwrap();
    let err = verify_error(&out, 17);
    assert!(err.contains("public/policy.json") && err.contains("exceeds the maximum"), "{err}");
}

#[test]
fn verify_checks_the_operator_key_when_present() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ceremony(dir.path(), 4, 1, 18);
    let key_path = out.join(layout::OPERATOR_KEY);
    let original = std::fs::read(&key_path).unwrap();

    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = verify_error(&out, 19);
    assert!(err.contains("operator/account-key.pem") && err.contains("mode 644"), "{err}");

    // A key that is not an account in the policy.
    std::fs::remove_file(&key_path).unwrap();
    let stranger = AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(20));
    layout::write_new(&key_path, stranger.to_pkcs8_pem().unwrap().as_bytes(), layout::Access::OwnerOnly).unwrap();
    let err = verify_error(&out, 21);
    assert!(err.contains("operator/account-key.pem") && err.contains("is not an account"), "{err}");

    // Carried away to the operator's machine: nothing left to check, the rest still verifies.
    std::fs::remove_file(&key_path).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    assert_eq!(dealer::verify::verify(&out, &mut rng).unwrap().operator_account, None);
    layout::write_new(&key_path, &original, layout::Access::OwnerOnly).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    assert!(dealer::verify::verify(&out, &mut rng).unwrap().operator_account.is_some());
}

#[test]
fn allow_rules_parse_into_the_default_profile_names() {
    use dealer::policy::default_profile_names;
    let allow: Vec<String> =
        ["=Host.Example.com", "*.example.org", "example.net", "example.net"].map(String::from).to_vec();
    assert_eq!(
        default_profile_names(&allow, false).unwrap(),
        [
            NameRule::Exact("host.example.com".into()),
            NameRule::Wildcard("example.org".into()),
            NameRule::Subdomain("example.net".into()),
        ]
    );
    assert_eq!(default_profile_names(&[], true).unwrap(), [NameRule::Subdomain("localhost".into())]);
    assert_eq!(default_profile_names(&allow[..1], true).unwrap().len(), 2);
    assert!(default_profile_names(&[], false).unwrap().is_empty());
    let err = default_profile_names(&["example..com".to_string()], false).unwrap_err();
    assert_eq!(err.reason, NameError::EmptyLabel);
}

#[test]
fn summary_says_in_one_line_when_the_default_profile_allows_no_names() {
    let none = dealer::policy::describe_names(&[]);
    assert_eq!(none.lines().count(), 1);
    assert!(none.contains("allows no names") && none.contains("refused"), "{none}");
    let some = dealer::policy::describe_names(&[
        NameRule::Subdomain("localhost".into()),
        NameRule::Wildcard("example.org".into()),
    ]);
    assert_eq!(some, "The default profile allows: localhost and every name below it; *.example.org.");
}
