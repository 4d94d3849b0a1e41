//! The client against fake replicas, some of which lie: every operation must still succeed with
//! `t + 1` honest answers and name each replica whose answer did not check out.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::api::{ConsistencyProof, Entries, Entry, Health, RequestState, RequestStatus, SignedTreeHead, Submission};
use ca_api::{AccountSecret, RevocationReason};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::audit::{AuditOptions, HeadOutcome, TreeHead};
use crate::client::{Client, Cluster, IssueRequest, Options, Revocation, RevokeAuthority, no_progress};
use crate::error::{ClientError, FindingKind};
use crate::keys::{KeyType, PrivateKey};
use crate::merkle::{self, Hash};
use crate::transport::{HttpRequest, Method, Reply, Transport, TransportError};
use crate::verify::fixtures::{TestCa, now};
use crate::verify::{Expectation, VerifiedCertificate};

type Handler = Box<dyn Fn(&HttpRequest) -> Result<Reply, TransportError> + Send + Sync>;

/// Replicas as functions from request to answer.
struct Fakes(Vec<Handler>);

impl Transport for Fakes {
    fn send(&self, replica: usize, request: HttpRequest) -> impl Future<Output = Result<Reply, TransportError>> + Send {
        let answer = self.0[replica](&request);
        async move { answer }
    }
}

fn json(status: u16, body: &impl serde::Serialize) -> Result<Reply, TransportError> {
    Ok(Reply { status, content_type: "application/json".into(), body: serde_json::to_vec(body).unwrap() })
}

fn problem(status: u16, kind: &str, detail: &str) -> Result<Reply, TransportError> {
    let body = serde_json::json!({"type": format!("urn:itca:problem:{kind}"), "title": kind, "status": status, "detail": detail});
    Ok(Reply { status, content_type: "application/problem+json".into(), body: serde_json::to_vec(&body).unwrap() })
}

fn down() -> Result<Reply, TransportError> {
    Err(TransportError::Unreachable("connection refused".into()))
}

/// A replica that never answers.
fn no_answer() -> Handler {
    Box::new(|_: &HttpRequest| down())
}

/// Asserts that a submission was accepted by one replica of the two needed, and that the
/// findings summary says `why` the others did not.
fn assert_accepted_by_one_of_two(result: Result<crate::client::Issued, ClientError>, why: &str) {
    match result {
        Err(ClientError::NotEnoughReplicas { accepted: 1, needed: 2, summary }) => {
            assert!(summary.contains(why), "{summary}")
        }
        other => panic!("expected too few acceptances, got {other:?}"),
    }
}

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new(21, "Fake Cluster CA"))
}

fn impostor() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new(22, "Fake Cluster CA"))
}

fn client(replicas: Vec<Handler>) -> Client<Fakes> {
    client_waiting(replicas, Duration::from_secs(5))
}

fn client_waiting(replicas: Vec<Handler>, wait: Duration) -> Client<Fakes> {
    client_with(replicas, Options { wait_timeout: wait, poll_interval: Duration::from_millis(5), ..Options::default() })
}

fn client_with(replicas: Vec<Handler>, options: Options) -> Client<Fakes> {
    let n = replicas.len();
    let cluster = Cluster {
        name: "Fake Cluster CA".into(),
        n,
        t: (n - 1) / 3,
        urls: (0..n).map(|i| format!("https://replica-{i}.invalid")).collect(),
        encryption: threshold::seal::deal(n, (n - 1) / 3 + 1, &mut ChaCha20Rng::seed_from_u64(5)).0,
    };
    Client::with_transport(cluster, ca().root.clone(), Fakes(replicas), options)
}

/// The request id of a submission body, as a replica computes it.
fn request_id(body: &[u8]) -> String {
    let submission: Submission = serde_json::from_slice(body).unwrap();
    let (tag, encoded) = match submission {
        Submission::Plain { request } => (0, request),
        Submission::Sealed { request } => (1, request),
    };
    hex::encode(Submission::request_id(tag, &BASE64.decode(encoded).unwrap()))
}

fn pending(id: &str) -> RequestStatus {
    RequestStatus {
        request_id: id.into(),
        state: RequestState::Pending,
        log_index: None,
        round: None,
        serial: None,
        refusal: None,
        certificate_chain_pem: None,
    }
}

fn pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap()
}

/// How a fake replica answers about an issuance it accepted.
#[derive(Clone)]
enum Answers {
    Issues(String),
    Refuses(&'static str),
    Pending,
}

/// A replica that accepts submissions, remembers the id, and answers status queries per `answers`.
fn replica(answers: Answers) -> Handler {
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    Box::new(move |request: &HttpRequest| {
        let mut seen = seen.lock().unwrap();
        if request.method == Method::Post {
            let id = request_id(request.body.as_deref().unwrap());
            *seen = Some(id.clone());
            return json(202, &pending(&id));
        }
        let Some(id) = seen.clone().or_else(|| request.path.strip_prefix("/v1/requests/").map(String::from)) else {
            return problem(404, "unknown", "");
        };
        let mut status = pending(&id);
        match &answers {
            Answers::Issues(chain) => {
                status.state = RequestState::Issued;
                status.log_index = Some(3);
                status.serial = Some("01abcd".into());
                status.certificate_chain_pem = Some(chain.clone());
            }
            Answers::Refuses(code) => {
                status.state = RequestState::Refused;
                status.refusal = Some(ca_api::api::Refusal { code: code.to_string(), message: "no".into() });
            }
            Answers::Pending => {}
        }
        json(200, &status)
    })
}

struct Issuance {
    request: IssueRequest,
    good_chain: String,
}

fn issuance() -> Issuance {
    let key = PrivateKey::generate(KeyType::EcP256, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    let names = vec!["www.example.test".to_string()];
    let spki_der = key.public_key_der().unwrap();
    let spki = der::Decode::from_der(&spki_der).unwrap();
    let t = now();
    let good = ca().issue(&[0x01, 0xab, 0xcd], &["www.example.test"], spki, (t - 60, t + 86400));
    Issuance {
        request: IssueRequest {
            csr_der: key.csr(&names).unwrap(),
            profile: "default".into(),
            validity_days: None,
            expect: Expectation { dns_names: Some(names), public_key: Some(spki_der), serial_hex: None },
            seal: false,
        },
        good_chain: pem(&good) + &ca().root.pem(),
    }
}

fn account() -> AccountSecret {
    AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(4))
}

fn kinds_for(findings: &[crate::Finding], replica: usize) -> Vec<FindingKind> {
    findings.iter().filter(|f| f.replica == replica).map(|f| f.kind).collect()
}

#[tokio::test]
async fn a_forged_certificate_is_named_and_the_genuine_one_is_returned() {
    let issue = issuance();
    let t = now();
    let spki = der::Decode::from_der(issue.request.expect.public_key.as_ref().unwrap()).unwrap();
    // Replica 0 hands out a certificate under another key with the CA's name; replica 1 one
    // for the right key but another name.
    let forged = pem(&impostor().issue(&[0x01, 0xab, 0xcd], &["www.example.test"], spki, (t - 60, t + 86400)));
    let spki = der::Decode::from_der(issue.request.expect.public_key.as_ref().unwrap()).unwrap();
    let renamed = pem(&ca().issue(&[0x01, 0xab, 0xcd], &["evil.example.test"], spki, (t - 60, t + 86400)));
    let client = client(vec![
        replica(Answers::Issues(forged)),
        replica(Answers::Issues(renamed)),
        replica(Answers::Issues(issue.good_chain.clone())),
        replica(Answers::Pending),
    ]);
    let issued = client.request_certificate(&account(), &issue.request, &no_progress).await.unwrap();
    assert_eq!(issued.certificate.serial_hex, "01abcd");
    assert_eq!(issued.source, 2);
    assert!(issued.chain_pem.starts_with(&issue.good_chain[..200]));
    // The forgery was caught wherever it arrived (the accepting replicas' answers or a poll).
    let forged_findings = kinds_for(&issued.findings, 0);
    let renamed_findings = kinds_for(&issued.findings, 1);
    let submitted_to_0 = !forged_findings.is_empty();
    if submitted_to_0 {
        assert_eq!(forged_findings, [FindingKind::Invalid], "{:?}", issued.findings);
    }
    assert!(renamed_findings.iter().all(|k| *k == FindingKind::Invalid), "{:?}", issued.findings);
    assert!(kinds_for(&issued.findings, 2).is_empty());
}

#[tokio::test]
async fn one_replica_claiming_a_refusal_is_outvoted_by_a_signed_certificate_and_named() {
    let issue = issuance();
    let client = client(vec![
        replica(Answers::Refuses("name_not_allowed")),
        replica(Answers::Pending),
        replica(Answers::Pending),
        replica(Answers::Issues(issue.good_chain.clone())),
    ]);
    let issued = client.request_certificate(&account(), &issue.request, &no_progress).await.unwrap();
    assert_eq!(issued.source, 3);
    // Replica 0's unsigned claim may be seen before the certificate or not at all; if seen, the
    // certificate disproves it.
    assert!(kinds_for(&issued.findings, 0).iter().all(|k| *k == FindingKind::Inconsistent), "{:?}", issued.findings);
}

#[tokio::test]
async fn a_refusal_is_believed_when_t_plus_1_replicas_report_it() {
    let issue = issuance();
    let client = client(vec![
        replica(Answers::Refuses("name_not_allowed")),
        replica(Answers::Refuses("name_not_allowed")),
        replica(Answers::Pending),
        replica(Answers::Pending),
    ]);
    match client.request_certificate(&account(), &issue.request, &no_progress).await {
        Err(ClientError::RefusedByLog { code, .. }) => assert_eq!(code, "name_not_allowed"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn two_different_refusal_claims_are_not_enough_and_the_wait_times_out() {
    let issue = issuance();
    let replicas = vec![
        replica(Answers::Refuses("name_not_allowed")),
        replica(Answers::Refuses("unknown_account")),
        replica(Answers::Pending),
        replica(Answers::Pending),
    ];
    let client = client_waiting(replicas, Duration::from_millis(300));
    match client.request_certificate(&account(), &issue.request, &no_progress).await {
        Err(ClientError::Timeout { summary, .. }) => assert!(summary.contains("refused:name_not_allowed"), "{summary}"),
        other => panic!("expected a time-out, got {other:?}"),
    }
}

#[tokio::test]
async fn a_submission_needs_t_plus_1_replicas_to_accept() {
    let issue = issuance();
    let client = client(vec![no_answer(), no_answer(), no_answer(), replica(Answers::Pending)]);
    let result = client.request_certificate(&account(), &issue.request, &no_progress).await;
    assert_accepted_by_one_of_two(result, "replica 0: unreachable");
}

#[tokio::test]
async fn a_busy_replica_is_asked_again_after_a_pause_and_not_counted_as_down() {
    let issue = issuance();
    // A replica that refuses the first `busy` submissions as busy, then issues.
    let busy_then = |busy: usize| -> Handler {
        let honest = replica(Answers::Issues(issue.good_chain.clone()));
        let refused = Mutex::new(0);
        Box::new(move |request: &HttpRequest| {
            let mut refused = refused.lock().unwrap();
            if request.method == Method::Post && *refused < busy {
                *refused += 1;
                return problem(503, "busy", "300 of this replica's requests are waiting to be ordered");
            }
            honest(request)
        })
    };
    let options = Options {
        poll_interval: Duration::from_millis(5),
        busy_pause: Duration::from_millis(5),
        request_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    // Two replicas are down and the other two are busy at first: only asking those two again
    // gets the t + 1 acceptances.
    let client = client_with(vec![no_answer(), no_answer(), busy_then(2), busy_then(2)], options.clone());
    let issued = client.request_certificate(&account(), &issue.request, &no_progress).await.expect("issued");
    assert_eq!(issued.chain_pem, issue.good_chain);

    // One that stays busy for longer than a request may take counts as down, with the reason.
    let client = client_with(vec![no_answer(), no_answer(), busy_then(usize::MAX), busy_then(0)], options);
    let result = client.request_certificate(&account(), &issue.request, &no_progress).await;
    assert_accepted_by_one_of_two(result, "replica 2: unreachable: HTTP 503 (busy)");
}

#[tokio::test]
async fn a_replica_the_request_has_not_reached_yet_counts_as_pending_not_as_refusing() {
    let issue = issuance();
    let not_reached = || -> Handler {
        Box::new(|request: &HttpRequest| match request.method {
            Method::Post => down(),
            _ => problem(404, "unknown-request", "the request has not reached this replica"),
        })
    };
    let honest = || replica(Answers::Issues(issue.good_chain.clone()));
    let client = client(vec![honest(), honest(), not_reached(), not_reached()]);
    let issued = client.request_certificate(&account(), &issue.request, &no_progress).await.expect("issued");
    for replica in [2, 3] {
        assert!(
            !kinds_for(&issued.findings, replica).contains(&FindingKind::Refused),
            "replica {replica}: {:?}",
            issued.findings
        );
    }
}

#[tokio::test]
async fn a_refusal_at_submission_from_t_plus_1_replicas_is_reported_with_its_kind() {
    let issue = issuance();
    let refuse = || -> Handler {
        Box::new(|_: &HttpRequest| problem(403, "name-not-allowed", "www.example.test is not allowed"))
    };
    let client = client(vec![refuse(), refuse(), refuse(), refuse()]);
    match client.request_certificate(&account(), &issue.request, &no_progress).await {
        Err(ClientError::Refused { kind, detail }) => {
            assert_eq!(kind, "name-not-allowed");
            assert!(detail.contains("www.example.test"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_replica_acknowledging_another_request_is_named_and_skipped() {
    let issue = issuance();
    let liar: Handler = Box::new(|_: &HttpRequest| json(202, &pending(&"ab".repeat(32))));
    let client = client(vec![
        liar,
        replica(Answers::Issues(issue.good_chain.clone())),
        replica(Answers::Pending),
        replica(Answers::Pending),
    ]);
    let issued = client.request_certificate(&account(), &issue.request, &no_progress).await.unwrap();
    // Replica 0 was asked if it came early in the random order; either way it was never counted.
    for finding in issued.findings.iter().filter(|f| f.replica == 0) {
        assert_eq!(finding.kind, FindingKind::Invalid, "{finding}");
    }
}

/// A replica that serves `crl` at `/v1/crl`.
fn crl_replica(crl: Vec<u8>) -> Handler {
    Box::new(move |request: &HttpRequest| {
        assert_eq!(request.path, "/v1/crl");
        Ok(Reply { status: 200, content_type: "application/pkix-crl".into(), body: crl.clone() })
    })
}

#[tokio::test]
async fn verify_uses_the_newest_crl_that_verifies_and_names_forged_and_stale_ones() {
    let t = now();
    let serial = [0x01, 0x02, 0x03];
    let der = ca().issue(&serial, &["a.example.test"], crate::verify::fixtures::p256_spki(3), (t - 60, t + 3600));
    let chain = pem(&der);
    let client = client(vec![
        // A CRL by an impostor saying nothing is revoked.
        crl_replica(impostor().crl(9, &[], t, t + 3600)),
        // An old, genuine CRL from before the revocation.
        crl_replica(ca().crl(4, &[], t - 100, t + 3600)),
        crl_replica(ca().crl(5, &[(&serial, 1)], t, t + 3600)),
        Box::new(|_: &HttpRequest| problem(404, "no-crl-yet", "none")),
    ]);
    let status = client.verify_certificate(&chain).await.unwrap();
    assert!(matches!(status.revocation, Revocation::Revoked { crl_number: Some(5), entry } if entry.reason == Some(1)));
    assert!(!status.is_good());
    assert_eq!(status.crl_source, Some(2));
    assert_eq!(kinds_for(&status.findings, 0), [FindingKind::Invalid]);
    assert_eq!(kinds_for(&status.findings, 1), [FindingKind::Stale]);
    assert!(kinds_for(&status.findings, 3).is_empty());
}

#[tokio::test]
async fn get_returns_a_certificate_that_verifies_and_names_replicas_serving_others() {
    let t = now();
    let good = pem(&ca().issue(&[0x07], &["a.example.test"], crate::verify::fixtures::p256_spki(3), (t, t + 3600)));
    let other_serial =
        pem(&ca().issue(&[0x08], &["a.example.test"], crate::verify::fixtures::p256_spki(3), (t, t + 3600)));
    let forged =
        pem(&impostor().issue(&[0x07], &["a.example.test"], crate::verify::fixtures::p256_spki(3), (t, t + 3600)));
    let serve = |chain: String| -> Handler {
        Box::new(move |_: &HttpRequest| {
            Ok(Reply {
                status: 200,
                content_type: "application/pem-certificate-chain".into(),
                body: chain.clone().into_bytes(),
            })
        })
    };
    let client = client(vec![
        serve(forged),
        serve(other_serial),
        serve(good),
        Box::new(|_: &HttpRequest| problem(404, "unknown-serial", "no")),
    ]);
    let fetched = client.get_certificate("07").await.unwrap();
    assert_eq!(fetched.source, 2);
    assert_eq!(fetched.certificate.serial_hex, "07");
    assert_eq!(kinds_for(&fetched.findings, 0), [FindingKind::Invalid]);
    assert_eq!(kinds_for(&fetched.findings, 1), [FindingKind::Invalid]);
    // Denying a certificate that exists is being behind (or lying); it is named either way.
    assert_eq!(kinds_for(&fetched.findings, 3), [FindingKind::Stale]);
}

#[tokio::test]
async fn get_reports_not_found_only_when_t_plus_1_replicas_agree() {
    let missing = || -> Handler { Box::new(|_: &HttpRequest| problem(404, "unknown-serial", "no")) };
    let client1 = client(vec![missing(), missing(), no_answer(), no_answer()]);
    assert!(matches!(client1.get_certificate("07").await, Err(ClientError::NotFound(_))));
    let client2 = client(vec![missing(), no_answer(), no_answer(), no_answer()]);
    assert!(matches!(client2.get_certificate("07").await, Err(ClientError::NoValidAnswer(_))));
}

#[tokio::test]
async fn revoking_by_key_needs_the_certificates_own_key() {
    let key = PrivateKey::generate(KeyType::Ed25519, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
    let other = PrivateKey::generate(KeyType::Ed25519, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
    let t = now();
    let spki = der::Decode::from_der(&key.public_key_der().unwrap()).unwrap();
    let cert =
        VerifiedCertificate::verify(&ca().root, &ca().issue(&[0x05], &["a.example.test"], spki, (t, t + 60))).unwrap();
    let client = client(vec![
        replica(Answers::Pending),
        replica(Answers::Pending),
        replica(Answers::Pending),
        replica(Answers::Pending),
    ]);
    let authority = RevokeAuthority::CertificateKey { certificate: &cert, key: &other };
    let result = client.revoke("05", RevocationReason::KeyCompromise, authority, false, &no_progress).await;
    assert!(matches!(result, Err(ClientError::Verify(crate::verify::VerifyError::KeyMismatch))));
}

#[tokio::test]
async fn a_revocation_is_believed_when_t_plus_1_replicas_report_it_for_the_right_serial() {
    let revoked = |serial: &'static str| -> Handler {
        let seen: Arc<Mutex<Option<String>>> = Arc::default();
        Box::new(move |request: &HttpRequest| {
            let mut seen = seen.lock().unwrap();
            if request.method == Method::Post {
                *seen = Some(request_id(request.body.as_deref().unwrap()));
                return json(202, &pending(seen.as_deref().unwrap()));
            }
            if request.path == "/v1/crl" {
                return problem(404, "no-crl-yet", "none");
            }
            // A replica the request was not submitted to learns it through the order.
            let id = seen.clone().or_else(|| request.path.strip_prefix("/v1/requests/").map(String::from)).unwrap();
            let mut status = pending(&id);
            status.state = RequestState::Revoked;
            status.serial = Some(serial.into());
            json(200, &status)
        })
    };
    // Replica 0 claims another serial was revoked: it is named, and the others carry the day.
    let client = client(vec![revoked("99"), revoked("05"), revoked("05"), revoked("05")]);
    let result = client
        .revoke("0005", RevocationReason::Superseded, RevokeAuthority::Account(&account()), true, &no_progress)
        .await
        .unwrap();
    assert_eq!(result.serial_hex, "05");
    assert_eq!(result.listed_in_crl, None);
    assert!(kinds_for(&result.findings, 0).iter().all(|k| *k == FindingKind::Invalid), "{:?}", result.findings);
}

#[tokio::test]
async fn status_shows_down_replicas_and_names_one_answering_as_another() {
    let health = |id: usize| -> Handler {
        Box::new(move |request: &HttpRequest| match request.path.as_str() {
            "/healthz" => json(
                200,
                &Health {
                    status: "ok".into(),
                    reason: None,
                    replica: id,
                    next_round: 7,
                    log_size: 3,
                    peers_connected: 3,
                },
            ),
            _ => json(
                200,
                &serde_json::json!({"replica": id, "replication": {"round": 7, "peers": [{"faults": 2}, {"faults": 1}]},
                "ca": {"log_size": 3, "signature_share_faults": [{"peer": 0, "invalid_shares": 4}]}}),
            ),
        })
    };
    let client = client(vec![health(0), health(0), no_answer(), health(3)]);
    let status = client.status().await;
    assert_eq!(status[0].round, Some(7));
    assert_eq!(status[0].log_size, Some(3));
    assert_eq!(status[0].faults, Some(7));
    assert!(status[2].health.is_err());
    assert_eq!(status[1].findings.iter().map(|f| f.kind).collect::<Vec<_>>(), [FindingKind::Invalid]);
    assert!(status[3].findings.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

/// A log of `size` refused-request entries, as the server encodes leaves.
fn log(size: u64) -> Vec<Vec<u8>> {
    (0..size)
        .map(|index| {
            let mut leaf = vec![1];
            leaf.extend_from_slice(&index.to_be_bytes());
            leaf.extend_from_slice(&(index / 2).to_be_bytes());
            leaf.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
            leaf.extend_from_slice(&[index as u8; 32]);
            leaf.push(3);
            leaf.push(8);
            leaf.extend_from_slice(b"replayed");
            leaf
        })
        .collect()
}

fn hashes(leaves: &[Vec<u8>]) -> Vec<Hash> {
    leaves.iter().map(|l| merkle::leaf_hash(l)).collect()
}

fn head(ca: &TestCa, leaves: &[Vec<u8>], timestamp_ms: u64) -> SignedTreeHead {
    let mut head = TreeHead {
        tree_size: leaves.len() as u64,
        timestamp_ms,
        root: merkle::root_of(&hashes(leaves)),
        signature: Vec::new(),
    };
    head.signature = ca.sign(&head.signed_bytes());
    head.to_api()
}

/// How a fake log replica misbehaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Log {
    Honest,
    /// Serves the head with a signature by another key.
    ForgedHead,
    /// Serves one altered entry.
    TamperedEntry,
    /// Serves consistency proofs with a flipped hash.
    BadProof,
    /// Serves an older (but genuine) head.
    Behind,
}

fn log_replica(leaves: Vec<Vec<u8>>, behaviour: Log) -> Handler {
    Box::new(move |request: &HttpRequest| {
        let (path, query) = request.path.split_once('?').unwrap_or((request.path.as_str(), ""));
        let param = |name: &str| -> u64 {
            query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
        };
        match path {
            "/v1/audit/sth" => match behaviour {
                Log::ForgedHead => json(200, &head(impostor(), &leaves, 5)),
                Log::Behind => json(200, &head(ca(), &leaves[..leaves.len() - 2], 4)),
                _ => json(200, &head(ca(), &leaves, 5)),
            },
            "/v1/audit/entries" => {
                let (start, end) = (param("start"), param("end"));
                let entries = (start..=end.min(leaves.len() as u64 - 1))
                    .map(|i| {
                        let mut leaf = leaves[i as usize].clone();
                        if behaviour == Log::TamperedEntry && i == 1 {
                            *leaf.last_mut().unwrap() ^= 1;
                        }
                        Entry { index: i, leaf: BASE64.encode(leaf) }
                    })
                    .collect();
                json(200, &Entries { entries })
            }
            "/v1/audit/proof/consistency" => {
                let (first, second) = (param("first"), param("second"));
                let mut proof = merkle::reference::consistency(first as usize, &hashes(&leaves[..second as usize]));
                if behaviour == Log::BadProof {
                    proof[0][0] ^= 1;
                }
                json(200, &ConsistencyProof { first, second, proof: proof.iter().map(hex::encode).collect() })
            }
            other => panic!("unexpected request {other}"),
        }
    })
}

fn previous_head(leaves: &[Vec<u8>]) -> TreeHead {
    TreeHead::verify(&ca().root, &head(ca(), leaves, 1)).unwrap()
}

#[tokio::test]
async fn an_honest_log_audits_clean_and_the_state_advances() {
    let leaves = log(2500);
    let client = client((0..4).map(|_| log_replica(leaves.clone(), Log::Honest)).collect());
    let previous = previous_head(&leaves[..1234]);
    let report = client.audit(Some(&previous), AuditOptions::default(), &no_progress).await.unwrap();
    assert!(report.is_consistent(), "{:?}", report.findings);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.entries_checked, 2500);
    assert_eq!(report.next_state.as_ref().map(|h| h.tree_size), Some(2500));
}

#[tokio::test]
async fn every_lying_replica_is_named_and_the_audit_fails() {
    let leaves = log(37);
    let client = client(vec![
        log_replica(leaves.clone(), Log::TamperedEntry),
        log_replica(leaves.clone(), Log::ForgedHead),
        log_replica(leaves.clone(), Log::BadProof),
        log_replica(leaves.clone(), Log::Honest),
    ]);
    let previous = previous_head(&leaves[..20]);
    let report = client.audit(Some(&previous), AuditOptions::default(), &no_progress).await.unwrap();
    assert!(!report.is_consistent());
    assert!(report.complete, "the honest replica's entries still verify the log");
    // Replica 2's proofs lie but its entries are genuine, so it may be the source; 0's never.
    assert!(matches!(report.entries_source, Some(2 | 3)), "{:?}", report.findings);
    assert_eq!(kinds_for(&report.findings, 0), [FindingKind::Inconsistent], "{:?}", report.findings);
    assert_eq!(kinds_for(&report.findings, 1), [FindingKind::Invalid], "{:?}", report.findings);
    assert_eq!(kinds_for(&report.findings, 2), [FindingKind::Inconsistent], "{:?}", report.findings);
    assert!(kinds_for(&report.findings, 3).is_empty());
    assert!(matches!(report.heads[1].1, HeadOutcome::Invalid(_)));
    // The verified latest head still checked out and is remembered.
    assert_eq!(report.next_state.as_ref().map(|h| h.tree_size), Some(37));
}

#[tokio::test]
async fn a_replica_with_an_altered_log_is_named_even_when_others_serve_the_log() {
    let leaves = log(12);
    let replicas = || {
        vec![
            log_replica(leaves.clone(), Log::Honest),
            log_replica(leaves.clone(), Log::Honest),
            log_replica(leaves.clone(), Log::TamperedEntry),
            log_replica(leaves.clone(), Log::Honest),
        ]
    };
    let report = client(replicas()).audit(None, AuditOptions::default(), &no_progress).await.unwrap();
    assert!(!report.is_consistent());
    assert_eq!(kinds_for(&report.findings, 2), [FindingKind::Inconsistent], "{:?}", report.findings);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    // Quick mode trusts the first replica whose entries hash to the root, and looks no further.
    let quick = client(replicas()).audit(None, AuditOptions { quick: true }, &no_progress).await.unwrap();
    assert!(quick.is_consistent(), "{:?}", quick.findings);
    assert_eq!(quick.entries_checked, 12);
}

#[tokio::test]
async fn a_replica_behind_is_stale_but_not_a_failure() {
    let leaves = log(10);
    let client = client(vec![
        log_replica(leaves.clone(), Log::Behind),
        log_replica(leaves.clone(), Log::Honest),
        no_answer(),
        log_replica(leaves.clone(), Log::Honest),
    ]);
    let report = client.audit(None, AuditOptions::default(), &no_progress).await.unwrap();
    assert!(report.is_consistent(), "{:?}", report.findings);
    assert_eq!(kinds_for(&report.findings, 0), [FindingKind::Stale]);
    assert_eq!(kinds_for(&report.findings, 2), [FindingKind::Unreachable]);
}

#[tokio::test]
async fn a_log_that_no_longer_extends_the_head_seen_before_fails_the_audit() {
    let leaves = log(10);
    let mut other_history = log(6);
    other_history[2][20] ^= 1;
    let previous = previous_head(&other_history);
    let client = client((0..4).map(|_| log_replica(leaves.clone(), Log::Honest)).collect());
    let report = client.audit(Some(&previous), AuditOptions::default(), &no_progress).await.unwrap();
    assert!(!report.is_consistent());
    // Every replica's consistency proof fails against the remembered head, and the state stays.
    for replica in 0..4 {
        assert!(
            kinds_for(&report.findings, replica).contains(&FindingKind::Inconsistent),
            "{replica}: {:?}",
            report.findings
        );
    }
    assert_eq!(report.next_state, Some(previous));
}

#[tokio::test]
async fn two_signed_heads_of_one_size_with_different_roots_are_a_fork() {
    let leaves = log(8);
    let mut forked = leaves.clone();
    forked[7][30] ^= 1;
    let client = client(vec![
        log_replica(leaves.clone(), Log::Honest),
        log_replica(forked, Log::Honest),
        log_replica(leaves.clone(), Log::Honest),
        log_replica(leaves, Log::Honest),
    ]);
    let report = client.audit(None, AuditOptions::default(), &no_progress).await.unwrap();
    assert!(!report.is_consistent());
    assert!(kinds_for(&report.findings, 1).contains(&FindingKind::Inconsistent), "{:?}", report.findings);
}

#[tokio::test]
async fn an_empty_log_audits_clean() {
    let empty = || -> Handler { Box::new(|_: &HttpRequest| problem(404, "no-tree-head-yet", "empty")) };
    let client = client(vec![empty(), empty(), empty(), empty()]);
    let report = client.audit(None, AuditOptions::default(), &no_progress).await.unwrap();
    assert!(report.is_consistent());
    assert!(report.latest.is_none());
}

#[test]
fn the_audit_state_round_trips_and_is_refused_for_another_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/state.json");
    let head = previous_head(&log(5));
    crate::audit::save_state(&path, &ca().root, &head).unwrap();
    assert_eq!(crate::audit::load_state(&path, &ca().root).unwrap(), Some(head));
    assert!(crate::audit::load_state(&path, &impostor().root).is_err());
    assert_eq!(crate::audit::load_state(&dir.path().join("missing.json"), &ca().root).unwrap(), None);
    // An edited head no longer verifies.
    let text = std::fs::read_to_string(&path).unwrap().replace("\"tree_size\": 5", "\"tree_size\": 6");
    std::fs::write(&path, text).unwrap();
    assert!(crate::audit::load_state(&path, &ca().root).is_err());
}

#[test]
fn a_tree_head_signed_by_the_root_verifies_and_an_altered_one_does_not() {
    let sth = head(ca(), &log(3), 42);
    let verified = TreeHead::verify(&ca().root, &sth).unwrap();
    assert_eq!((verified.tree_size, verified.timestamp_ms), (3, 42));
    let mut bigger = sth.clone();
    bigger.tree_size = 4;
    assert!(TreeHead::verify(&ca().root, &bigger).is_err());
    let mut later = sth.clone();
    later.timestamp += 1;
    assert!(TreeHead::verify(&ca().root, &later).is_err());
    assert!(TreeHead::verify(&impostor().root, &sth).is_err());
    let mut garbage = sth;
    garbage.signature = "***".into();
    assert!(TreeHead::verify(&ca().root, &garbage).is_err());
}
