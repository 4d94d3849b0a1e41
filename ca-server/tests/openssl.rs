//! The CA's building blocks checked by an independent implementation: the `openssl` command-line
//! tool makes the requests and the root, and judges the certificates and CRLs built here. The
//! root's private key (an ordinary RSA key made by openssl) stands in for the threshold key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use ca_server::certificate::{EndEntity, ExtendedKeyUsage, Issuer, assemble, serial_from, tbs_certificate};
use ca_server::crl::{CrlContents, RevocationReason, RevokedEntry, assemble_crl, tbs_crl};
use ca_server::csr::{Csr, CsrError, CsrLimits, KeyType, parse};
use ca_server::names::DnsName;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};

/// Runs openssl in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl tool is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

/// Runs openssl in `dir` expecting it to fail; returns its output.
fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl tool is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "openssl {args:?} should have failed:\n{text}");
    text
}

struct Root {
    dir: PathBuf,
    issuer: Issuer,
    key: rsa::RsaPrivateKey,
}

impl Root {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(self.key.clone()).sign(message).to_vec()
    }
}

/// One root for the whole file, made by `openssl req -x509` in a temporary folder.
fn root() -> &'static Root {
    static ROOT: OnceLock<(tempfile::TempDir, Root)> = OnceLock::new();
    &ROOT
        .get_or_init(|| {
            let temp = tempfile::tempdir().unwrap();
            let dir = temp.path().to_path_buf();
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    "root.key",
                    "-out",
                    "root.pem",
                    "-subj",
                    "/CN=Test Root CA",
                    "-days",
                    "3650",
                    "-sha256",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
            let issuer = Issuer::from_pem(&std::fs::read_to_string(dir.join("root.pem")).unwrap()).unwrap();
            let key =
                rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(dir.join("root.key")).unwrap()).unwrap();
            (temp, Root { dir, issuer, key })
        })
        .1
}

/// A new request from openssl for `newkey` (an `openssl req -newkey` argument), PEM.
fn openssl_request(dir: &Path, newkey: &[&str], extra: &[&str]) -> Vec<u8> {
    let mut args =
        vec!["req", "-new", "-nodes", "-keyout", "key.pem", "-out", "req.pem", "-subj", "/CN=www.example.com"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-addext",
        "subjectAltName=DNS:www.example.com,DNS:Example.COM,IP:192.0.2.1,IP:2001:db8::1",
    ]);
    args.extend_from_slice(extra);
    openssl(dir, &args);
    std::fs::read(dir.join("req.pem")).unwrap()
}

const KEY_TYPES: [(&[&str], KeyType); 4] = [
    (&["-newkey", "rsa:2048"], KeyType::Rsa { bits: 2048 }),
    (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], KeyType::EcP256),
    (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], KeyType::EcP384),
    (&["-newkey", "ed25519"], KeyType::Ed25519),
];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
}

/// Text with every run of whitespace made one space, so matches do not depend on indentation.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check_names(csr: &Csr) {
    assert_eq!(csr.dns_names, ["www.example.com", "Example.COM"]);
    assert_eq!(csr.ip_addresses, ["192.0.2.1".parse::<std::net::IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
}

#[test]
fn openssl_requests_of_every_key_type_parse_and_verify_as_pem_and_der() {
    let dir = tempfile::tempdir().unwrap();
    for (newkey, key_type) in KEY_TYPES {
        let pem_bytes = openssl_request(dir.path(), newkey, &[]);
        let csr = parse(&pem_bytes, &CsrLimits::default()).unwrap_or_else(|e| panic!("{key_type}: {e}"));
        assert_eq!(csr.key_type, key_type);
        check_names(&csr);
        openssl(dir.path(), &["req", "-in", "req.pem", "-outform", "DER", "-out", "req.der"]);
        let der_bytes = std::fs::read(dir.path().join("req.der")).unwrap();
        assert_eq!(parse(&der_bytes, &CsrLimits::default()), Ok(csr));
    }
}

#[test]
fn ecdsa_requests_with_every_sha2_digest_verify() {
    let dir = tempfile::tempdir().unwrap();
    for curve in ["P-256", "P-384"] {
        let curve_opt = format!("ec_paramgen_curve:{curve}");
        for digest in ["-sha256", "-sha384", "-sha512"] {
            let request = openssl_request(dir.path(), &["-newkey", "ec", "-pkeyopt", &curve_opt], &[digest]);
            assert!(parse(&request, &CsrLimits::default()).is_ok(), "{curve} {digest}");
        }
    }
}

#[test]
fn rsa_requests_with_sha384_sha512_and_pss_verify() {
    let dir = tempfile::tempdir().unwrap();
    let _ = openssl_request(dir.path(), &["-newkey", "rsa:2048"], &[]);
    for extra in [
        &["-sha384"][..],
        &["-sha512"],
        &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
        &["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max"],
        &["-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
    ] {
        let mut args = vec!["req", "-new", "-key", "key.pem", "-out", "again.pem", "-subj", "/CN=x"];
        args.extend_from_slice(extra);
        openssl(dir.path(), &args);
        let request = std::fs::read(dir.path().join("again.pem")).unwrap();
        let csr = parse(&request, &CsrLimits::default()).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        assert_eq!(csr.key_type, KeyType::Rsa { bits: 2048 });
    }
}

#[test]
fn a_request_with_one_flipped_signature_byte_is_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    for (newkey, key_type) in KEY_TYPES {
        openssl_request(dir.path(), newkey, &[]);
        openssl(dir.path(), &["req", "-in", "req.pem", "-outform", "DER", "-out", "req.der"]);
        let mut der = std::fs::read(dir.path().join("req.der")).unwrap();
        // The signature BIT STRING ends the request; its last byte is always signature value.
        *der.last_mut().unwrap() ^= 0x40;
        assert_eq!(parse(&der, &CsrLimits::default()), Err(CsrError::BadSignature), "{key_type}");
    }
}

#[test]
fn a_1024_bit_rsa_request_is_refused_as_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let request = openssl_request(dir.path(), &["-newkey", "rsa:1024"], &[]);
    assert_eq!(parse(&request, &CsrLimits::default()), Err(CsrError::RsaKeyTooSmall { bits: 1024, min: 2048 }));
}

/// Issues a certificate for `csr` under the openssl root, writes it as `name`, returns its DER.
fn issue(dir: &Path, csr: &Csr, serial: Vec<u8>, name: &str) -> Vec<u8> {
    let root = root();
    let dns_names = csr.dns_names.iter().map(|n| DnsName::parse(n).unwrap()).collect();
    let cert = EndEntity {
        serial,
        not_before: now() - 3600,
        not_after: now() + 90 * 86400,
        subject: csr.subject.clone(),
        dns_names,
        ip_addresses: csr.ip_addresses.clone(),
        public_key: csr.public_key.clone(),
        extended_key_usages: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
        crl_url: Some("http://ca.example/v1/crl".into()),
    };
    let tbs = tbs_certificate(&root.issuer, &cert).unwrap();
    let der = assemble(&tbs, &root.sign(&tbs)).unwrap();
    std::fs::write(dir.join(name), pem("CERTIFICATE", &der)).unwrap();
    der
}

#[test]
fn certificates_for_every_key_type_pass_openssl_strict_verification() {
    let dir = tempfile::tempdir().unwrap();
    let root_pem = root().dir.join("root.pem");
    let root_pem = root_pem.to_str().unwrap();
    for (index, (newkey, key_type)) in KEY_TYPES.into_iter().enumerate() {
        let csr = parse(&openssl_request(dir.path(), newkey, &[]), &CsrLimits::default()).unwrap();
        let serial = serial_from([3; 32], index as u64);
        issue(dir.path(), &csr, serial.clone(), "cert.pem");
        for purpose in ["sslserver", "sslclient"] {
            let verdict =
                openssl(dir.path(), &["verify", "-x509_strict", "-purpose", purpose, "-CAfile", root_pem, "cert.pem"]);
            assert!(verdict.contains("cert.pem: OK"), "{key_type}: {verdict}");
        }
        let text = openssl(dir.path(), &["x509", "-in", "cert.pem", "-noout", "-text"]);
        for expected in [
            "Issuer: CN = Test Root CA",
            "Subject: CN = www.example.com",
            "DNS:www.example.com, DNS:example.com, IP Address:192.0.2.1, IP Address:2001:DB8:0:0:0:0:0:1",
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "X509v3 Basic Constraints: critical CA:FALSE",
            "URI:http://ca.example/v1/crl",
            "Signature Algorithm: sha256WithRSAEncryption",
        ] {
            assert!(squash(&text).contains(expected), "{key_type}: missing {expected:?} in\n{text}");
        }
        let serial_text = serial.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        assert!(text.contains(&serial_text), "{key_type}: serial {serial_text} not in\n{text}");
        let rsa = matches!(key_type, KeyType::Rsa { .. });
        assert_eq!(text.contains("Key Encipherment"), rsa, "{key_type}: keyEncipherment only for RSA");
    }
}

#[test]
fn a_crl_verifies_with_openssl_and_revokes_the_listed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = root();
    let root_pem = root.dir.join("root.pem");
    let root_pem = root_pem.to_str().unwrap();
    let csr = parse(&openssl_request(dir.path(), &["-newkey", "ed25519"], &[]), &CsrLimits::default()).unwrap();
    let revoked_serial = serial_from([5; 32], 41);
    let kept_serial = serial_from([5; 32], 42);
    issue(dir.path(), &csr, revoked_serial.clone(), "revoked.pem");
    issue(dir.path(), &csr, kept_serial, "kept.pem");

    let contents = CrlContents {
        crl_number: 3,
        this_update: now() - 60,
        next_update: now() + 86400,
        revoked: vec![RevokedEntry {
            serial: revoked_serial.clone(),
            revoked_at: now() - 120,
            reason: RevocationReason::KeyCompromise,
        }],
    };
    let tbs = tbs_crl(&root.issuer, &contents).unwrap();
    let crl = assemble_crl(&tbs, &root.sign(&tbs)).unwrap();
    std::fs::write(dir.path().join("crl.pem"), pem("X509 CRL", &crl)).unwrap();

    let verdict = openssl(dir.path(), &["crl", "-in", "crl.pem", "-CAfile", root_pem, "-noout"]);
    assert!(verdict.contains("verify OK"), "{verdict}");
    let text = openssl(dir.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    let serial_hex: String = revoked_serial.iter().map(|b| format!("{b:02X}")).collect();
    for expected in [
        format!("Serial Number: {serial_hex}"),
        "X509v3 CRL Reason Code: Key Compromise".to_string(),
        "X509v3 CRL Number: 3".to_string(),
        "Issuer: CN = Test Root CA".to_string(),
        "Version 2 (0x1)".to_string(),
    ] {
        assert!(squash(&text).contains(&expected), "missing {expected:?} in\n{text}");
    }

    let check = ["verify", "-x509_strict", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", root_pem];
    let revoked = openssl_fails(dir.path(), &[&check[..], &["revoked.pem"]].concat());
    assert!(revoked.contains("certificate revoked"), "{revoked}");
    let kept = openssl(dir.path(), &[&check[..], &["kept.pem"]].concat());
    assert!(kept.contains("kept.pem: OK"), "{kept}");
}
