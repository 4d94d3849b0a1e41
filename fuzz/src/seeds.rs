//! Writes the seed corpus: real values for every fuzz target, so the fuzzer starts from inputs
//! that get deep into each decoder instead of discovering CBOR, JSON and DER from nothing.
//! Running `seeds` writes `$ITCA_SEEDS_DIR/<target>/<name>` (default `fuzz/seeds`); the same
//! bytes every run. It is built as a libFuzzer binary that does its work at initialisation and
//! exits, because every binary of the instrumented build must link libFuzzer.
#![no_main]
// The init block exits the process: the fuzz body after it never runs.
#![allow(unreachable_code)]

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use ca_api::AccountSecret;
use ca_api::api;
use ca_api::command::{CaRequest, Command, KeyRevocation, KeyRevocationStatement, RevocationReason, SignedCommand};
use ca_api::policy::{NameRule, Policy};
use ca_server::signing::{HashedShare, HashedSignature, SigningMessage};
use const_oid::db::{rfc4519, rfc5280, rfc5912, rfc8410};
use der::asn1::{BitString, Ia5String, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use replication::atomic::AbcConfig;
use replication::atomic::secure::{OpenedRound, Request, ScabcInput, ScabcMessage, SecureAtomicBroadcast};
use replication::runtime::control::{Control, StoredRound};
use replication::runtime::link::Frame;
use replication::{Protocol, Target, wire};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, Version};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
/// Signs a request info: the algorithm identifier and the signature.
type Signer<'a> = &'a dyn Fn(&[u8]) -> (AlgorithmIdentifierOwned, Vec<u8>);

struct Out {
    dir: PathBuf,
    count: usize,
}

impl Out {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        self.count += 1;
        Ok(())
    }

    /// `prefix` then `bytes`: the targets whose first bytes pick a mode or a type.
    fn write_with(&mut self, target: &str, name: &str, prefix: &[u8], bytes: &[u8]) -> Result<()> {
        let mut all = prefix.to_vec();
        all.extend_from_slice(bytes);
        self.write(target, name, &all)
    }
}

fn cn(name: &str) -> Result<Name> {
    let atv = AttributeTypeAndValue { oid: rfc4519::CN, value: Any::new(Tag::Utf8String, name.as_bytes())? };
    Ok(RdnSequence(vec![RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv])?)]))
}

/// A DER PKCS#10 request for `names` (DNS names, or IP addresses where they parse as one).
fn csr(subject: Name, names: &[&str], spki: SubjectPublicKeyInfoOwned, sign: Signer<'_>) -> Result<Vec<u8>> {
    let mut attributes = Vec::new();
    if !names.is_empty() {
        let mut general = Vec::new();
        for name in names {
            general.push(match name.parse::<std::net::IpAddr>() {
                Ok(ip) => GeneralName::from(ip),
                Err(_) => GeneralName::DnsName(Ia5String::new(name)?),
            });
        }
        let san = Extension {
            extn_id: rfc5280::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(SubjectAltName(general).to_der()?)?,
        };
        let mut values = SetOfVec::new();
        values.insert(Any::encode_from(&vec![san])?)?;
        attributes.push(Attribute { oid: rfc5912::ID_EXTENSION_REQ, values });
    }
    let info = CertReqInfo { version: Version::V1, subject, public_key: spki, attributes: attributes.try_into()? };
    let (algorithm, signature) = sign(&info.to_der()?);
    Ok(CertReq { info, algorithm, signature: BitString::from_bytes(&signature)? }.to_der()?)
}

fn ed25519_spki(key: &ed25519_dalek::SigningKey) -> Result<SubjectPublicKeyInfoOwned> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None },
        subject_public_key: BitString::from_bytes(key.verifying_key().as_bytes())?,
    })
}

fn csr_seeds(out: &mut Out) -> Result<Vec<Vec<u8>>> {
    let ed = itca_fuzz::resign_key();
    let ed_sign = |m: &[u8]| {
        let signature = ed25519_dalek::Signer::sign(&ed, m);
        (AlgorithmIdentifierOwned { oid: rfc8410::ID_ED_25519, parameters: None }, signature.to_bytes().to_vec())
    };
    let p256 = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into())?;
    let p256_spki = {
        use p256::pkcs8::EncodePublicKey;
        SubjectPublicKeyInfoOwned::from_der(p256.verifying_key().to_public_key_der()?.as_bytes())?
    };
    let p256_sign = |m: &[u8]| {
        let signature: p256::ecdsa::DerSignature = p256::ecdsa::signature::Signer::sign(&p256, m);
        (AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None }, signature.as_bytes().to_vec())
    };
    let requests = vec![
        (
            "ed25519-san",
            csr(cn("www.example.com")?, &["www.example.com", "example.com"], ed25519_spki(&ed)?, &ed_sign)?,
        ),
        ("ed25519-cn-only", csr(cn("host.test")?, &[], ed25519_spki(&ed)?, &ed_sign)?),
        ("ed25519-wildcard", csr(RdnSequence(Vec::new()), &["*.example.com"], ed25519_spki(&ed)?, &ed_sign)?),
        (
            "ed25519-idn-ip",
            csr(cn("x")?, &["xn--bcher-kva.example", "127.0.0.1", "::1"], ed25519_spki(&ed)?, &ed_sign)?,
        ),
        ("p256-localhost", csr(cn("a.localhost")?, &["a.localhost"], p256_spki, &p256_sign)?),
    ];
    let mut ders = Vec::new();
    for (name, der) in requests {
        out.write_with("csr", &format!("{name}.der"), &[0], &der)?;
        out.write_with("csr", &format!("{name}.resign"), &[1], &der)?;
        out.write_with("csr", &format!("{name}.pem"), &[2], itca_fuzz::pem("CERTIFICATE REQUEST", &der).as_bytes())?;
        ders.push(der);
    }
    Ok(ders)
}

/// A short run of the real cluster's ordering (one plain and one sealed request) to collect
/// protocol messages of every kind and the delivered rounds.
fn ordering_run(plain: &[u8]) -> Result<(Vec<ScabcMessage>, Vec<OpenedRound>, Vec<u8>)> {
    let cluster = itca_fuzz::cluster();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let sealed = cluster.seal(b"itca ca-request v1", plain, &mut rng).ok_or("sealing failed")?;
    let mut nodes: Vec<SecureAtomicBroadcast> = (0..4)
        .map(|id| {
            SecureAtomicBroadcast::new(Arc::new(cluster.network_info(id)), itca_fuzz::instance(), AbcConfig::default())
        })
        .collect();
    let mut queue: VecDeque<(usize, usize, ScabcMessage)> = VecDeque::new();
    let mut outputs = Vec::new();
    let mut dispatch = |from: usize, step: replication::Step<ScabcMessage, OpenedRound>, queue: &mut VecDeque<_>| {
        for message in step.messages {
            let recipients: Vec<usize> = match message.target {
                Target::All => (0..4).collect(),
                Target::Node(to) => vec![to],
            };
            for to in recipients {
                queue.push_back((from, to, message.message.clone()));
            }
        }
        outputs.extend(step.output);
    };
    for (id, node) in nodes.iter_mut().enumerate() {
        let step = node.handle_input(ScabcInput::Clock(1_750_000_000_000 + id as u64), &mut rng);
        dispatch(id, step, &mut queue);
        let step = node.handle_input(ScabcInput::Submit(Request::Plain(plain.to_vec())), &mut rng);
        dispatch(id, step, &mut queue);
        let step = node.handle_input(ScabcInput::Submit(Request::Sealed(sealed.clone())), &mut rng);
        dispatch(id, step, &mut queue);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut messages = Vec::new();
    let mut delivered = 0;
    while let Some((from, to, message)) = queue.pop_front() {
        delivered += 1;
        if delivered > 200_000 {
            break;
        }
        // Two of each shape: the first capitalised words of the Debug text name the nested
        // variants and structs.
        let debug = format!("{message:?}");
        let shape: Vec<&str> = debug
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
            .take(8)
            .collect();
        let shape = shape.join("/");
        let count = seen.entry(shape).or_default();
        if *count < 2 {
            *count += 1;
            messages.push(message.clone());
        }
        let step = nodes[to].handle_message(from, message, &mut rng);
        dispatch(to, step, &mut queue);
    }
    Ok((messages, outputs, sealed))
}

fn wire_seeds(out: &mut Out, plain: &[u8], signing: &[u8]) -> Result<()> {
    let (messages, rounds, sealed) = ordering_run(plain)?;
    eprintln!("ordering run: {} message shapes, {} delivered rounds", messages.len(), rounds.len());
    let mut stream = Vec::new();
    Frame::Hello { received_up_to: 3 }.encode_into(&mut stream)?;
    for (i, message) in messages.iter().enumerate() {
        let bytes = wire::encode(message)?;
        // The sender byte: 0, 1, 2 are parties 1, 2, 3.
        out.write_with("wire_message", &format!("scabc-{i}"), &[0, (i % 3) as u8], &bytes)?;
        if i < 16 {
            Frame::Data { seq: i as u64 + 1, payload: bytes.into() }.encode_into(&mut stream)?;
        }
    }
    let mut controls = vec![
        Control::Status { next_round: 5 },
        Control::Fetch { from_round: 0, max: 64 },
        Control::App(signing.to_vec()),
    ];
    for (i, round) in rounds.iter().take(2).enumerate() {
        controls.push(Control::Round(round.record.clone()));
        let stored = StoredRound {
            round: round.round,
            time: round.time,
            seed: round.seed,
            requests: round.requests.clone(),
            record: round.record.clone(),
        };
        out.write_with("wire_message", &format!("stored-round-{i}"), &[3, 0], &wire::encode(&stored)?)?;
    }
    for (i, control) in controls.iter().enumerate() {
        let bytes = wire::encode(control)?;
        out.write_with("wire_message", &format!("control-{i}"), &[1, 0], &bytes)?;
        Frame::Control { payload: bytes.into() }.encode_into(&mut stream)?;
    }
    out.write_with("wire_message", "sealed", &[2, 0], &sealed)?;
    out.write_with("wire_message", "request-plain", &[4, 0], &Request::Plain(plain.to_vec()).encode())?;
    out.write_with("wire_message", "request-sealed", &[4, 0], &Request::Sealed(sealed).encode())?;

    Frame::Ack { up_to: 16 }.encode_into(&mut stream)?;
    Frame::Skip { up_to: 20 }.encode_into(&mut stream)?;
    // Chunk sizes 1, 7 and 64; the last limit (255) lets every frame through.
    out.write_with("link_frame", "stream-chunk1", &[0, 255], &stream)?;
    out.write_with("link_frame", "stream-chunk7", &[6, 255], &stream)?;
    out.write_with("link_frame", "stream-chunk64-limit200", &[63, 200], &stream)?;
    let mut small = Vec::new();
    Frame::Hello { received_up_to: 0 }.encode_into(&mut small)?;
    Frame::Data { seq: 1, payload: b"payload".to_vec().into() }.encode_into(&mut small)?;
    out.write_with("link_frame", "small", &[3, 64], &small)?;
    Ok(())
}

fn signing_seeds(out: &mut Out) -> Result<Vec<u8>> {
    let share = |id: usize, proof: bool| threshold::rsa::SignatureShare {
        id,
        value: (0..256).map(|i| (i * 7 + id) as u8).collect(),
        proof: proof.then(|| threshold::rsa::ShareProof { c: vec![0x11; 16], z: vec![0x22; 289] }),
    };
    let messages = [
        SigningMessage::Shares {
            shares: vec![
                HashedShare { hash: [1; 32], share: share(1, false) },
                HashedShare { hash: [2; 32], share: share(1, true) },
            ],
        },
        SigningMessage::Request { hashes: vec![[3; 32], [4; 32]], with_proof: true },
        SigningMessage::Signatures { signatures: vec![HashedSignature { hash: [5; 32], signature: vec![0x5a; 256] }] },
    ];
    for (i, message) in messages.iter().enumerate() {
        out.write("signing_message", &format!("message-{i}.json"), &message.encode())?;
    }
    Ok(messages[0].encode())
}

fn command_seeds(out: &mut Out, csr_der: &[u8]) -> Result<(Vec<u8>, String)> {
    let operator = AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let policy = Policy::default_for(
        operator.public(),
        ["localhost", "example.com", "*.example.com", "=host.test"]
            .iter()
            .map(|r| r.parse())
            .collect::<std::result::Result<Vec<NameRule>, _>>()?,
    );
    let policy_json = threshold::encoding::to_json(&policy).to_string();
    let commands = [
        Command::issue(csr_der, "default", Some(30), "00112233445566778899aabbccddeeff".into()),
        Command::issue(csr_der, "default", None, "n1".into()),
        Command::Revoke { serial_hex: "4f3a2b".into(), reason: RevocationReason::KeyCompromise, nonce: "n2".into() },
        Command::SetPolicy { policy_json: policy_json.clone(), nonce: "n3".into() },
    ];
    let mut requests: Vec<CaRequest> =
        commands.iter().map(|c| CaRequest::Signed(SignedCommand::sign(&operator, c))).collect();
    let statement =
        KeyRevocationStatement { serial_hex: "01ff".into(), reason: RevocationReason::Superseded, nonce: "n4".into() };
    let key = itca_fuzz::resign_key();
    requests.push(CaRequest::RevokeByKey(KeyRevocation::sign_with(&statement, |m| {
        ed25519_dalek::Signer::sign(&key, m).to_bytes().to_vec()
    })));
    for (i, request) in requests.iter().enumerate() {
        out.write("ca_request", &format!("request-{i}.json"), &request.to_bytes())?;
    }
    Ok((requests[0].to_bytes(), policy_json))
}

fn api_seeds(out: &mut Out, request: &[u8], sealed: &[u8]) -> Result<()> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut write = |kind: u8, name: &str, value: serde_json::Value| {
        out.write_with("api_json", name, &[kind], value.to_string().as_bytes())
    };
    let submission = api::Submission::Plain { request: b64(request) };
    write(0, "submission-plain", serde_json::to_value(&submission)?)?;
    write(0, "submission-sealed", serde_json::to_value(api::Submission::Sealed { request: b64(sealed) })?)?;
    let status = api::RequestStatus {
        request_id: hex::encode([7u8; 32]),
        state: api::RequestState::Issued,
        log_index: Some(4),
        round: Some(2),
        serial: Some("4f3a2b".into()),
        refusal: Some(api::Refusal { code: "name-not-allowed".into(), message: "no".into() }),
        certificate_chain_pem: Some("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n".into()),
    };
    write(1, "request-status", serde_json::to_value(&status)?)?;
    let info = api::CertificateInfo {
        serial: "4f3a2b".into(),
        log_index: 4,
        profile: "default".into(),
        dns_names: vec!["www.example.com".into()],
        not_before: 1_750_000_000,
        not_after: 1_752_592_000,
        revoked_at: Some(1_751_000_000),
        revocation_reason: Some("keyCompromise".into()),
        certificate_pem: None,
    };
    write(2, "certificate-info", serde_json::to_value(&info)?)?;
    write(
        3,
        "certificate-list",
        serde_json::to_value(api::CertificateList { certificates: vec![info], next_after: Some(4) })?,
    )?;
    let ca = api::CaInfo {
        name: "Fuzz CA".into(),
        n: 4,
        t: 1,
        root_certificate_pem: itca_fuzz::pem("CERTIFICATE", include_bytes!("../fixtures/root.der")),
        root_certificate_sha256: hex::encode([1u8; 32]),
        policy_sha256: hex::encode([2u8; 32]),
        replicas: (0..4).map(|id| api::ReplicaInfo { id, url: format!("https://localhost:{}", 8440 + id) }).collect(),
        replica: 0,
    };
    write(4, "ca-info", serde_json::to_value(&ca)?)?;
    let sth = api::SignedTreeHead {
        tree_size: 5,
        timestamp: 1_750_000_000_000,
        root_hash: hex::encode([3u8; 32]),
        signature: b64(&[9; 256]),
    };
    write(5, "sth", serde_json::to_value(&sth)?)?;
    write(
        6,
        "entries",
        serde_json::to_value(api::Entries { entries: vec![api::Entry { index: 0, leaf: b64(b"leaf") }] })?,
    )?;
    let inclusion = api::InclusionProof {
        leaf_index: 1,
        tree_size: 5,
        leaf_hash: hex::encode([4u8; 32]),
        audit_path: vec![hex::encode([5u8; 32])],
    };
    write(7, "inclusion", serde_json::to_value(&inclusion)?)?;
    write(
        8,
        "consistency",
        serde_json::to_value(api::ConsistencyProof { first: 2, second: 5, proof: vec![hex::encode([6u8; 32])] })?,
    )?;
    let health =
        api::Health { status: "ok".into(), reason: None, replica: 1, next_round: 3, log_size: 5, peers_connected: 3 };
    write(9, "health", serde_json::to_value(&health)?)?;
    write(10, "refusal", serde_json::json!({"code": "csr-invalid", "message": "bad"}))?;
    for (i, serial) in ["4f3a2b", "00ff", "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "0"].iter().enumerate() {
        out.write_with("api_json", &format!("serial-{i}"), &[11], serial.as_bytes())?;
    }
    Ok(())
}

fn policy_seeds(out: &mut Out, policy_json: &str) -> Result<()> {
    out.write_with("policy", "policy.json", &[0], policy_json.as_bytes())?;
    for (i, pair) in [
        "example.com\nwww.example.com",
        "*.example.com\n*.EXAMPLE.com",
        "=host.test\nHOST.test",
        "localhost\na.b.localhost",
    ]
    .iter()
    .enumerate()
    {
        out.write_with("policy", &format!("rule-{i}"), &[1], pair.as_bytes())?;
    }
    for (i, name) in ["www.example.com", "*.example.com", "xn--bcher-kva.example", "a-b.c-d.test", "WWW.Example.COM"]
        .iter()
        .enumerate()
    {
        out.write_with("policy", &format!("name-{i}"), &[2], name.as_bytes())?;
    }
    Ok(())
}

fn generate(dir: PathBuf) -> Result<()> {
    let mut out = Out { dir, count: 0 };
    let csrs = csr_seeds(&mut out)?;
    let signing = signing_seeds(&mut out)?;
    let (request, policy_json) = command_seeds(&mut out, &csrs[0])?;
    wire_seeds(&mut out, &request, &signing)?;
    let sealed = itca_fuzz::cluster()
        .seal(b"itca ca-request v1", &request, &mut ChaCha20Rng::seed_from_u64(12))
        .ok_or("sealing failed")?;
    api_seeds(&mut out, &request, &sealed)?;
    policy_seeds(&mut out, &policy_json)?;
    println!("wrote {} seeds under {}", out.count, out.dir.display());
    Ok(())
}

libfuzzer_sys::fuzz_target!(
    init: {
        let dir = std::env::var_os("ITCA_SEEDS_DIR")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"), PathBuf::from);
        let code = match generate(dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("seeds: {e}");
                1
            }
        };
        std::process::exit(code);
    },
    |_data: &[u8]| {}
);
