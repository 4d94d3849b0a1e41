//! [`Client`]: the operations, each of which asks several replicas and believes only what it can
//! check.
//!
//! The rules, for a cluster of `n` replicas of which at most `t` are faulty:
//! - A request counts as submitted once `t + 1` replicas have accepted it: at least one of them is
//!   honest and will get it ordered.
//! - Anything signed with the root key (a certificate, a CRL, a tree head) is believed from a
//!   single replica once its signature verifies: the root key is a threshold key, so `t + 1`
//!   replicas, at least one honest, took part in signing it.
//! - Anything unsigned (a refusal, a revocation's outcome, a "not found") is believed only when
//!   `t + 1` replicas say the same.
//! - Every answer that fails these checks is recorded as a [`Finding`] naming the replica.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ca_api::api::{self, Health, RequestState, RequestStatus};
use ca_api::command::{Command, KeyRevocation, KeyRevocationStatement, SignedCommand, new_nonce};
use ca_api::{AccountSecret, CaRequest, RevocationReason};
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use rand::seq::SliceRandom;
use serde::de::DeserializeOwned;
use threshold::cluster::ClusterFile;
use threshold::seal::EncryptionPublicKey;

use crate::error::{ClientError, Finding, FindingKind, Findings};
use crate::keys::PrivateKey;
use crate::request::{PreparedRequest, prepare};
use crate::transport::{HttpRequest, HttpsTransport, Reply, Transport, base_url};
use crate::verify::{
    Expectation, RevokedEntry, Root, Validity, VerifiedCertificate, VerifiedCrl, normalise_serial, unix_now,
};

/// The media type of a certificate chain (RFC 8555).
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";
/// The media type of a DER CRL.
pub const PKIX_CRL: &str = "application/pkix-crl";
const PROBLEM_PREFIX: &str = "urn:itca:problem:";

/// Timing of the operations.
#[derive(Debug, Clone)]
pub struct Options {
    /// One HTTP exchange with one replica.
    pub request_timeout: Duration,
    /// Waiting for a submitted request's outcome.
    pub wait_timeout: Duration,
    /// Between two rounds of status queries while waiting.
    pub poll_interval: Duration,
    /// Before asking a busy replica again (replicas say 1 s in `Retry-After`).
    pub busy_pause: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            request_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_millis(250),
            busy_pause: Duration::from_secs(1),
        }
    }
}

/// What a long operation reports as it goes (the CLI draws a spinner from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Replica `replica` accepted the request; `accepted` of the `needed` so far.
    Accepted { replica: usize, accepted: usize, needed: usize },
    /// Waiting for the outcome: how many replicas answered the last query and what they said.
    Waiting { elapsed: Duration, states: String },
    /// Audit entries fetched so far from one replica.
    Entries { replica: usize, fetched: u64, total: u64 },
}

/// Something to report progress to; the CLI's spinner, or nothing.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// Reports nothing.
pub fn no_progress(_: Progress) {}

/// An RFC 9457 problem document a replica answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    /// The stable kind, without the `urn:itca:problem:` prefix.
    pub kind: String,
    pub detail: String,
}

/// What one exchange with a replica came to.
pub(crate) enum Answer {
    Ok(Reply),
    Problem(Problem),
    Down(String),
}

/// Which endpoint takes a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Certificates,
    Revocations,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Certificates => "/v1/certificates",
            Endpoint::Revocations => "/v1/revocations",
        }
    }
}

/// A request accepted by at least `t + 1` replicas.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub request: PreparedRequest,
    pub accepted_by: Vec<usize>,
    /// The status each accepting replica answered with.
    pub answers: Vec<(usize, RequestStatus)>,
    pub findings: Findings,
}

/// What to ask a certificate for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub csr_der: Vec<u8>,
    pub profile: String,
    pub validity_days: Option<u32>,
    /// What the certificate must be: the names asked for and the key held.
    pub expect: Expectation,
    /// Seal the request to the cluster's encryption key.
    pub seal: bool,
}

/// An issued certificate that verified.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: VerifiedCertificate,
    /// The certificate and the root, PEM.
    pub chain_pem: String,
    pub request_id: String,
    pub log_index: Option<u64>,
    /// The replica whose certificate verified first.
    pub source: usize,
    pub findings: Vec<Finding>,
}

/// Who authorises a revocation.
pub enum RevokeAuthority<'a> {
    /// An account registered in the policy.
    Account(&'a AccountSecret),
    /// The certificate's own key.
    CertificateKey { certificate: &'a VerifiedCertificate, key: &'a PrivateKey },
}

/// A revocation the ordered log carried out, as `t + 1` replicas report it.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub serial_hex: String,
    pub request_id: String,
    pub log_index: Option<u64>,
    /// Whether a CRL that verified under the root already lists it (`None`: no CRL could be had).
    pub listed_in_crl: Option<bool>,
    pub findings: Vec<Finding>,
}

/// A certificate fetched by serial.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub certificate: VerifiedCertificate,
    pub chain_pem: String,
    pub source: usize,
    pub findings: Vec<Finding>,
}

/// The newest CRL that verified, among all the replicas served.
#[derive(Debug, Clone)]
pub struct CrlReport {
    pub crl: Option<VerifiedCrl>,
    /// The replica it came from.
    pub source: Option<usize>,
    pub findings: Vec<Finding>,
}

/// A certificate's revocation status according to the newest verified CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Good {
        crl_number: Option<u128>,
        crl_this_update: u64,
    },
    Revoked {
        entry: RevokedEntry,
        crl_number: Option<u128>,
    },
    /// No replica served a CRL that verifies.
    Unknown,
}

/// The outcome of checking a certificate.
#[derive(Debug, Clone)]
pub struct CertificateStatus {
    pub certificate: VerifiedCertificate,
    pub validity: Validity,
    pub revocation: Revocation,
    /// Whether the CRL used is past its `nextUpdate`.
    pub crl_stale: bool,
    pub crl_source: Option<usize>,
    pub findings: Vec<Finding>,
}

impl CertificateStatus {
    /// Valid now and not revoked by a CRL that verified.
    pub fn is_good(&self) -> bool {
        self.validity == Validity::Valid && matches!(self.revocation, Revocation::Good { .. })
    }
}

/// One replica's state, as `status` shows it.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    pub id: usize,
    pub url: String,
    /// `Err` when the replica did not answer `/healthz`.
    pub health: Result<Health, String>,
    /// The ordering round it is on.
    pub round: Option<u64>,
    pub log_size: Option<u64>,
    pub peers_connected: Option<usize>,
    /// Faults it has attributed to its peers since it started.
    pub faults: Option<u64>,
    pub findings: Vec<Finding>,
}

/// What the client needs of the cluster description.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub n: usize,
    pub t: usize,
    /// Each replica's base URL, by replica number.
    pub urls: Vec<String>,
    /// The threshold-encryption key requests are sealed to.
    pub encryption: EncryptionPublicKey,
}

impl Cluster {
    pub fn from_file(file: &ClusterFile) -> Cluster {
        Cluster {
            name: file.name.clone(),
            n: file.n,
            t: file.t,
            urls: file.replicas.iter().map(|r| base_url(&r.host, r.https_port)).collect(),
            encryption: file.encryption.clone(),
        }
    }
}

/// Talks to the replicas of one cluster.
pub struct Client<T: Transport = HttpsTransport> {
    cluster: Cluster,
    root: Root,
    transport: T,
    options: Options,
}

/// Reads `cluster.json` and the `root.pem` beside it, and checks the root is the one the
/// cluster file names.
pub fn load_cluster(cluster_path: &Path) -> Result<(ClusterFile, Root), ClientError> {
    let text = std::fs::read_to_string(cluster_path)
        .map_err(|error| ClientError::Io { path: cluster_path.to_path_buf(), error })?;
    let cluster: ClusterFile = threshold::encoding::from_json(&text)
        .map_err(|e| ClientError::File { path: cluster_path.to_path_buf(), reason: e.to_string() })?;
    cluster.check().map_err(|e| ClientError::File { path: cluster_path.to_path_buf(), reason: e.to_string() })?;
    let root_path = root_path(cluster_path);
    let pem =
        std::fs::read_to_string(&root_path).map_err(|error| ClientError::Io { path: root_path.clone(), error })?;
    let root =
        Root::from_pem(&pem).map_err(|e| ClientError::File { path: root_path.clone(), reason: e.to_string() })?;
    if root.fingerprint() != cluster.root_certificate_sha256.to_ascii_lowercase() {
        return Err(ClientError::RootMismatch {
            path: root_path,
            expected: cluster.root_certificate_sha256.clone(),
            found: root.fingerprint(),
        });
    }
    Ok((cluster, root))
}

/// `root.pem` beside `cluster.json`.
pub fn root_path(cluster_path: &Path) -> PathBuf {
    cluster_path.parent().unwrap_or(Path::new(".")).join("root.pem")
}

impl Client<HttpsTransport> {
    /// A client for the cluster described by `cluster_path` (its `root.pem` beside it).
    pub fn open(cluster_path: &Path, options: Options) -> Result<Self, ClientError> {
        let (cluster, root) = load_cluster(cluster_path)?;
        let transport = HttpsTransport::new(&cluster, &root, options.request_timeout)?;
        Ok(Client { cluster: Cluster::from_file(&cluster), root, transport, options })
    }
}

impl<T: Transport> Client<T> {
    /// A client over any transport (tests use fake replicas).
    pub fn with_transport(cluster: Cluster, root: Root, transport: T, options: Options) -> Self {
        Client { cluster, root, transport, options }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn n(&self) -> usize {
        self.cluster.urls.len()
    }

    /// How many replicas must agree (or accept) before the client relies on it: `t + 1`.
    pub fn needed(&self) -> usize {
        self.cluster.t + 1
    }

    /// The timing the client was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The raw way to the replicas (the load generator needs every status code as it came).
    pub(crate) fn transport(&self) -> &T {
        &self.transport
    }

    pub fn replica_url(&self, id: usize) -> String {
        self.cluster.urls.get(id).cloned().unwrap_or_default()
    }

    /// A replica answering 503 "busy" (too many of its requests wait to be ordered) is up and
    /// asks to come back: it is asked again after [`Options::busy_pause`], for up to
    /// [`Options::request_timeout`], before it counts as down.
    pub(crate) async fn call(&self, replica: usize, request: HttpRequest) -> Answer {
        let started = Instant::now();
        loop {
            let reply = match self.transport.send(replica, request.clone()).await {
                Err(e) => return Answer::Down(e.to_string()),
                Ok(reply) if (200..300).contains(&reply.status) => return Answer::Ok(reply),
                Ok(reply) => reply,
            };
            let problem = parse_problem(&reply);
            let busy = reply.status == 503 && problem.kind == "busy";
            if busy && started.elapsed() + self.options.busy_pause < self.options.request_timeout {
                tokio::time::sleep(self.options.busy_pause).await;
                continue;
            }
            return if reply.status >= 500 {
                Answer::Down(format!("HTTP {} ({}): {}", reply.status, problem.kind, problem.detail))
            } else {
                Answer::Problem(problem)
            };
        }
    }

    /// GET a JSON body; any failure becomes a finding about the replica.
    pub(crate) async fn get_json<B: DeserializeOwned>(
        &self,
        replica: usize,
        path: &str,
    ) -> Result<B, (Finding, Option<Problem>)> {
        match self.call(replica, HttpRequest::get(path)).await {
            Answer::Ok(reply) => parse_json(replica, &reply).map_err(|f| (f, None)),
            Answer::Problem(problem) => Err((
                Finding::new(replica, FindingKind::Refused, format!("{path}: {} ({})", problem.detail, problem.kind)),
                Some(problem),
            )),
            Answer::Down(reason) => Err((Finding::new(replica, FindingKind::Unreachable, reason), None)),
        }
    }

    /// The replicas in a random order, so load spreads and no replica is always asked first.
    fn shuffled(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n()).collect();
        order.shuffle(&mut rand::thread_rng());
        order
    }

    /// Submits `request` to replicas, `t + 1` at a time, until `t + 1` have accepted it.
    pub async fn submit(
        &self,
        endpoint: Endpoint,
        request: &PreparedRequest,
        progress: ProgressFn<'_>,
    ) -> Result<Submitted, ClientError> {
        let needed = self.needed();
        let mut order = self.shuffled().into_iter();
        let mut in_flight = FuturesUnordered::new();
        for replica in order.by_ref().take(needed) {
            in_flight.push(self.submit_one(replica, endpoint, request));
        }
        let mut findings = Findings::default();
        let mut problems: Vec<(usize, Problem)> = Vec::new();
        let mut answers = Vec::new();
        while let Some((replica, outcome)) = in_flight.next().await {
            match outcome {
                Ok(status) => {
                    answers.push((replica, status));
                    progress(Progress::Accepted { replica, accepted: answers.len(), needed });
                    if answers.len() >= needed {
                        break;
                    }
                    continue;
                }
                Err((finding, problem)) => {
                    findings.push(finding);
                    if let Some(problem) = problem {
                        problems.push((replica, problem));
                    }
                }
            }
            if let Some(next) = order.next() {
                in_flight.push(self.submit_one(next, endpoint, request));
            }
        }
        if answers.len() >= needed {
            let accepted_by = answers.iter().map(|(r, _)| *r).collect();
            return Ok(Submitted { request: request.clone(), accepted_by, answers, findings });
        }
        // A refusal is believed once t + 1 replicas give the same one.
        let mut by_kind: BTreeMap<&str, Vec<&Problem>> = BTreeMap::new();
        for (_, problem) in &problems {
            by_kind.entry(problem.kind.as_str()).or_default().push(problem);
        }
        if let Some((kind, agreeing)) = by_kind.into_iter().find(|(_, p)| p.len() >= needed) {
            return Err(ClientError::Refused { kind: kind.to_string(), detail: agreeing[0].detail.clone() });
        }
        Err(ClientError::NotEnoughReplicas { accepted: answers.len(), needed, summary: findings.summary() })
    }

    async fn submit_one(
        &self,
        replica: usize,
        endpoint: Endpoint,
        request: &PreparedRequest,
    ) -> (usize, Result<RequestStatus, (Finding, Option<Problem>)>) {
        let path = format!("{}?wait=0", endpoint.path());
        let outcome = match self.call(replica, HttpRequest::post_json(path, request.body.clone())).await {
            Answer::Ok(reply) => match parse_json::<RequestStatus>(replica, &reply) {
                Ok(status) if status.request_id.eq_ignore_ascii_case(&request.id_hex()) => Ok(status),
                Ok(status) => Err((
                    Finding::new(
                        replica,
                        FindingKind::Invalid,
                        format!("acknowledged request {} instead of {}", status.request_id, request.id_hex()),
                    ),
                    None,
                )),
                Err(finding) => Err((finding, None)),
            },
            Answer::Problem(problem) => Err((
                Finding::new(replica, FindingKind::Refused, format!("{} ({})", problem.detail, problem.kind)),
                Some(problem),
            )),
            Answer::Down(reason) => Err((Finding::new(replica, FindingKind::Unreachable, reason), None)),
        };
        (replica, outcome)
    }

    /// Signs, seals (if asked), submits and waits for a certificate, and verifies it: issued by
    /// the root, valid now, for exactly the names asked and the key held.
    pub async fn request_certificate(
        &self,
        account: &AccountSecret,
        request: &IssueRequest,
        progress: ProgressFn<'_>,
    ) -> Result<Issued, ClientError> {
        let mut rng = rand::rngs::OsRng;
        let command = Command::issue(&request.csr_der, &request.profile, request.validity_days, new_nonce(&mut rng));
        let ca_request = CaRequest::Signed(SignedCommand::sign(account, &command));
        let seal_to = request.seal.then_some(&self.cluster.encryption);
        let prepared = prepare(&ca_request, seal_to, &mut rng)?;
        let submitted = self.submit(Endpoint::Certificates, &prepared, progress).await?;
        let expect = Expect::Issue(request.expect.clone());
        let (outcome, findings) = self.await_outcome(&submitted, &expect, progress).await?;
        match outcome {
            Outcome::Issued { certificate, status, source } => Ok(Issued {
                chain_pem: certificate.chain_pem(&self.root),
                certificate,
                request_id: prepared.id_hex(),
                log_index: status.log_index,
                source,
                findings: findings.into_vec(),
            }),
            Outcome::Refused(refusal) => {
                Err(ClientError::RefusedByLog { code: refusal.code, message: refusal.message })
            }
            Outcome::Revoked(_) => {
                Err(ClientError::NoValidAnswer("replicas report a revocation for an issuance".into()))
            }
        }
    }

    /// Revokes the certificate with serial `serial_hex`, authorised by an account or by the
    /// certificate's own key.
    pub async fn revoke(
        &self,
        serial_hex: &str,
        reason: RevocationReason,
        authority: RevokeAuthority<'_>,
        seal: bool,
        progress: ProgressFn<'_>,
    ) -> Result<Revoked, ClientError> {
        let mut rng = rand::rngs::OsRng;
        let serial_hex = normalise_serial(serial_hex);
        let nonce = new_nonce(&mut rng);
        let ca_request = match authority {
            RevokeAuthority::Account(secret) => {
                let command = Command::Revoke { serial_hex: serial_hex.clone(), reason, nonce };
                CaRequest::Signed(SignedCommand::sign(secret, &command))
            }
            RevokeAuthority::CertificateKey { certificate, key } => {
                // Checked here so a mistake is a clear local error, not a refusal after ordering.
                if key.public_key_der()? != certificate.public_key {
                    return Err(crate::verify::VerifyError::KeyMismatch.into());
                }
                if certificate.serial_hex != serial_hex {
                    return Err(crate::verify::VerifyError::SerialMismatch {
                        expected: serial_hex,
                        found: certificate.serial_hex.clone(),
                    }
                    .into());
                }
                let statement = KeyRevocationStatement { serial_hex: serial_hex.clone(), reason, nonce };
                CaRequest::RevokeByKey(KeyRevocation::sign_with(&statement, |message| key.sign(message)))
            }
        };
        let seal_to = seal.then_some(&self.cluster.encryption);
        let prepared = prepare(&ca_request, seal_to, &mut rng)?;
        let submitted = self.submit(Endpoint::Revocations, &prepared, progress).await?;
        let expect = Expect::Revoke { serial_hex: serial_hex.clone() };
        let (outcome, mut findings) = self.await_outcome(&submitted, &expect, progress).await?;
        match outcome {
            Outcome::Revoked(status) => {
                let crl = self.current_crl().await;
                findings.extend(crl.findings);
                let listed_in_crl = crl.crl.map(|crl| crl.lookup(&serial_hex).is_some());
                Ok(Revoked {
                    serial_hex,
                    request_id: prepared.id_hex(),
                    log_index: status.log_index,
                    listed_in_crl,
                    findings: findings.into_vec(),
                })
            }
            Outcome::Refused(refusal) => {
                Err(ClientError::RefusedByLog { code: refusal.code, message: refusal.message })
            }
            Outcome::Issued { .. } => {
                Err(ClientError::NoValidAnswer("replicas report an issuance for a revocation".into()))
            }
        }
    }

    /// Polls every replica for the request's status until the outcome is established: a
    /// certificate that verifies, or `t + 1` replicas agreeing on a refusal or a revocation.
    async fn await_outcome(
        &self,
        submitted: &Submitted,
        expect: &Expect,
        progress: ProgressFn<'_>,
    ) -> Result<(Outcome, Findings), ClientError> {
        let id_hex = submitted.request.id_hex();
        let mut judge = Judge::new(self.needed(), &id_hex, expect, &self.root);
        for (replica, status) in &submitted.answers {
            if let Some(outcome) = judge.consider(*replica, status) {
                return Ok(judge.finish(outcome, submitted.findings.clone()));
            }
        }
        let started = Instant::now();
        let deadline = started + self.options.wait_timeout;
        let path = format!("/v1/requests/{id_hex}");
        let mut unreachable: BTreeMap<usize, Finding> = BTreeMap::new();
        loop {
            tokio::time::sleep(self.options.poll_interval).await;
            let answers = join_all((0..self.n()).map(|r| self.get_json::<RequestStatus>(r, &path))).await;
            // The whole round is judged, even after the outcome is clear, so every replica's
            // answer in it is checked and reported.
            let mut decided = None;
            for (replica, answer) in answers.into_iter().enumerate() {
                match answer {
                    Ok(status) => {
                        unreachable.remove(&replica);
                        let outcome = judge.consider(replica, &status);
                        if decided.is_none() {
                            decided = outcome;
                        }
                    }
                    // The request has not reached this replica yet: pending there.
                    Err((_, Some(problem))) if problem.kind == "unknown-request" => {
                        unreachable.remove(&replica);
                    }
                    Err((finding, _)) => {
                        unreachable.insert(replica, finding);
                    }
                }
            }
            if let Some(outcome) = decided {
                let mut findings = submitted.findings.clone();
                findings.extend(unreachable.into_values());
                return Ok(judge.finish(outcome, findings));
            }
            progress(Progress::Waiting { elapsed: started.elapsed(), states: judge.describe() });
            if Instant::now() >= deadline {
                let mut findings = submitted.findings.clone();
                findings.extend(judge.findings.iter().cloned());
                findings.extend(unreachable.into_values());
                return Err(ClientError::Timeout {
                    seconds: self.options.wait_timeout.as_secs(),
                    summary: format!("{}; {}", judge.describe(), findings.summary()),
                });
            }
        }
    }

    /// Fetches the certificate with serial `serial_hex` from every replica and returns one that
    /// verifies under the root and has that serial.
    pub async fn get_certificate(&self, serial_hex: &str) -> Result<Fetched, ClientError> {
        let serial = normalise_serial(serial_hex);
        let path = format!("/v1/certificates/{serial}");
        let answers = join_all((0..self.n()).map(|r| self.call(r, HttpRequest::get_as(path.clone(), PEM_CHAIN)))).await;
        let mut findings = Findings::default();
        let mut found: Option<(usize, VerifiedCertificate)> = None;
        let mut not_found = 0;
        let expect = Expectation { serial_hex: Some(serial.clone()), ..Default::default() };
        for (replica, answer) in answers.into_iter().enumerate() {
            match answer {
                Answer::Ok(reply) => {
                    let checked = std::str::from_utf8(&reply.body)
                        .map_err(|_| "the chain is not text".to_string())
                        .and_then(|pem| {
                            VerifiedCertificate::verify_chain_pem(&self.root, pem).map_err(|e| e.to_string())
                        })
                        .and_then(|cert| cert.check(&expect).map(|()| cert).map_err(|e| e.to_string()));
                    match checked {
                        Ok(cert) => match &found {
                            None => found = Some((replica, cert)),
                            Some((first, earlier)) if earlier.der != cert.der => findings.add(
                                replica,
                                FindingKind::Inconsistent,
                                format!("serves a different root-signed certificate with serial {serial} than replica {first}"),
                            ),
                            Some(_) => {}
                        },
                        Err(reason) => findings.add(replica, FindingKind::Invalid, format!("certificate {serial}: {reason}")),
                    }
                }
                Answer::Problem(problem) => {
                    if problem.kind == "unknown-serial" {
                        not_found += 1;
                    }
                    findings.add(replica, FindingKind::Refused, format!("{} ({})", problem.detail, problem.kind));
                }
                Answer::Down(reason) => findings.add(replica, FindingKind::Unreachable, reason),
            }
        }
        match found {
            Some((source, certificate)) => {
                // Replicas that denied a certificate which exists were wrong (or behind).
                let findings = findings
                    .into_vec()
                    .into_iter()
                    .map(|f| if f.kind == FindingKind::Refused { Finding { kind: FindingKind::Stale, ..f } } else { f })
                    .collect();
                Ok(Fetched { chain_pem: certificate.chain_pem(&self.root), certificate, source, findings })
            }
            None if not_found >= self.needed() => {
                Err(ClientError::NotFound(format!("no certificate has serial {serial} ({not_found} replicas agree)")))
            }
            None => Err(ClientError::NoValidAnswer(findings.summary())),
        }
    }

    /// Fetches the CRL from every replica and keeps the newest that verifies under the root.
    pub async fn current_crl(&self) -> CrlReport {
        let answers = join_all((0..self.n()).map(|r| self.call(r, HttpRequest::get_as("/v1/crl", PKIX_CRL)))).await;
        let mut findings = Findings::default();
        let mut crls: Vec<(usize, VerifiedCrl)> = Vec::new();
        for (replica, answer) in answers.into_iter().enumerate() {
            match answer {
                Answer::Ok(reply) => match VerifiedCrl::verify(&self.root, &reply.body) {
                    Ok(crl) => crls.push((replica, crl)),
                    Err(e) => findings.add(replica, FindingKind::Invalid, format!("CRL: {e}")),
                },
                Answer::Problem(problem) if problem.kind == "no-crl-yet" => {}
                Answer::Problem(problem) => {
                    findings.add(replica, FindingKind::Refused, format!("CRL: {} ({})", problem.detail, problem.kind))
                }
                Answer::Down(reason) => findings.add(replica, FindingKind::Unreachable, reason),
            }
        }
        let newest = crls.iter().map(|(_, crl)| (crl.number, crl.this_update)).max();
        let mut best: Option<(usize, VerifiedCrl)> = None;
        for (replica, crl) in crls {
            if Some((crl.number, crl.this_update)) != newest {
                let (number, _) = newest.unwrap_or_default();
                findings.add(
                    replica,
                    FindingKind::Stale,
                    format!(
                        "serves CRL number {} while number {} exists",
                        show_number(crl.number),
                        show_number(number)
                    ),
                );
            } else if best.as_ref().is_some_and(|(_, b)| b.der != crl.der) {
                // Two differently signed CRLs with one number: the signers disagree.
                findings.add(
                    replica,
                    FindingKind::Inconsistent,
                    "serves a different root-signed CRL with the same number",
                );
            } else if best.is_none() {
                best = Some((replica, crl));
            }
        }
        let (source, crl) = best.map_or((None, None), |(r, c)| (Some(r), Some(c)));
        CrlReport { crl, source, findings: findings.into_vec() }
    }

    /// Checks a certificate chain: issued by the root, its validity now, and its revocation
    /// status in the newest CRL that verifies.
    pub async fn verify_certificate(&self, chain_pem: &str) -> Result<CertificateStatus, ClientError> {
        let certificate = VerifiedCertificate::verify_chain_pem(&self.root, chain_pem)?;
        let now = unix_now();
        let validity = certificate.validity_at(now);
        let report = self.current_crl().await;
        let (revocation, crl_stale) = match &report.crl {
            None => (Revocation::Unknown, false),
            Some(crl) => {
                let revocation = match crl.lookup(&certificate.serial_hex) {
                    Some(entry) => Revocation::Revoked { entry, crl_number: crl.number },
                    None => Revocation::Good { crl_number: crl.number, crl_this_update: crl.this_update },
                };
                (revocation, crl.is_stale(now))
            }
        };
        Ok(CertificateStatus {
            certificate,
            validity,
            revocation,
            crl_stale,
            crl_source: report.source,
            findings: report.findings,
        })
    }

    /// Every replica's health and state; a replica that does not answer is reported down.
    pub async fn status(&self) -> Vec<ReplicaStatus> {
        join_all((0..self.n()).map(|r| self.replica_status(r))).await
    }

    async fn replica_status(&self, id: usize) -> ReplicaStatus {
        let (health, detail) = tokio::join!(self.health(id), self.get_json::<serde_json::Value>(id, "/v1/replica"));
        let mut findings = Findings::default();
        if let Ok(h) = &health
            && h.replica != id
        {
            findings.add(id, FindingKind::Invalid, format!("answers as replica {}", h.replica));
        }
        let detail = detail.ok();
        let number = |value: Option<&serde_json::Value>| value.and_then(|v| v.as_u64());
        let round = detail.as_ref().and_then(|d| number(d.pointer("/replication/round")));
        let log_size = detail
            .as_ref()
            .and_then(|d| number(d.pointer("/ca/log_size")))
            .or(health.as_ref().ok().map(|h| h.log_size));
        let faults = detail.as_ref().map(|d| {
            let link: u64 = d
                .pointer("/replication/peers")
                .and_then(|p| p.as_array())
                .map(|peers| peers.iter().filter_map(|p| number(p.get("faults"))).sum())
                .unwrap_or(0);
            let shares: u64 = d
                .pointer("/ca/signature_share_faults")
                .and_then(|p| p.as_array())
                .map(|peers| {
                    peers
                        .iter()
                        .filter_map(|p| p.as_object())
                        .flat_map(|o| o.iter().filter(|(k, _)| *k != "peer").filter_map(|(_, v)| v.as_u64()))
                        .sum()
                })
                .unwrap_or(0);
            link + shares
        });
        ReplicaStatus {
            id,
            url: self.replica_url(id),
            round: round.or(health.as_ref().ok().map(|h| h.next_round)),
            log_size,
            peers_connected: health.as_ref().ok().map(|h| h.peers_connected),
            faults,
            health,
            findings: findings.into_vec(),
        }
    }

    /// `/healthz`: 200 when healthy, 503 with the same body when degraded.
    async fn health(&self, id: usize) -> Result<Health, String> {
        match self.transport.send(id, HttpRequest::get("/healthz")).await {
            Err(e) => Err(e.to_string()),
            Ok(reply) if reply.status == 200 || reply.status == 503 => {
                serde_json::from_slice(&reply.body).map_err(|e| format!("malformed health answer: {e}"))
            }
            Ok(reply) => Err(format!("HTTP {}", reply.status)),
        }
    }
}

fn show_number(number: Option<u128>) -> String {
    number.map_or_else(|| "none".to_string(), |n| n.to_string())
}

/// Parses a 2xx JSON body; a body that does not parse is the replica's fault.
pub(crate) fn parse_json<B: DeserializeOwned>(replica: usize, reply: &Reply) -> Result<B, Finding> {
    serde_json::from_slice(&reply.body)
        .map_err(|e| Finding::new(replica, FindingKind::Invalid, format!("malformed answer: {e}")))
}

pub(crate) fn parse_problem(reply: &Reply) -> Problem {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        detail: String,
    }
    match serde_json::from_slice::<Body>(&reply.body) {
        Ok(body) => Problem {
            status: reply.status,
            kind: body.kind.strip_prefix(PROBLEM_PREFIX).unwrap_or(&body.kind).to_string(),
            detail: if body.detail.is_empty() { body.title } else { body.detail },
        },
        Err(_) => Problem {
            status: reply.status,
            kind: format!("http-{}", reply.status),
            // Only a bounded, printable prefix of whatever came back.
            detail: String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        },
    }
}

/// What a waited-for request should come to.
enum Expect {
    Issue(Expectation),
    Revoke { serial_hex: String },
}

enum Outcome {
    Issued { certificate: VerifiedCertificate, status: RequestStatus, source: usize },
    Revoked(RequestStatus),
    Refused(api::Refusal),
}

/// Decides a request's outcome from replicas' status answers, believing signed certificates
/// from one replica and unsigned claims from `t + 1`.
struct Judge<'a> {
    needed: usize,
    id_hex: &'a str,
    expect: &'a Expect,
    root: &'a Root,
    /// Each replica's settled claim (`revoked`, `refused:<code>`), and the status it came with.
    claims: BTreeMap<usize, (String, RequestStatus)>,
    latest: BTreeMap<usize, RequestState>,
    findings: Findings,
}

impl<'a> Judge<'a> {
    fn new(needed: usize, id_hex: &'a str, expect: &'a Expect, root: &'a Root) -> Self {
        Judge {
            needed,
            id_hex,
            expect,
            root,
            claims: BTreeMap::new(),
            latest: BTreeMap::new(),
            findings: Findings::default(),
        }
    }

    fn consider(&mut self, replica: usize, status: &RequestStatus) -> Option<Outcome> {
        if !status.request_id.eq_ignore_ascii_case(self.id_hex) {
            self.findings.add(replica, FindingKind::Invalid, format!("answered about request {}", status.request_id));
            return None;
        }
        self.latest.insert(replica, status.state);
        let claim = match (status.state, self.expect) {
            (RequestState::Pending, _) => return None,
            (RequestState::Issued, Expect::Issue(expectation)) => {
                let chain = status.certificate_chain_pem.as_deref()?;
                return match self.check_issued(chain, status, expectation) {
                    Ok(certificate) => Some(Outcome::Issued { certificate, status: status.clone(), source: replica }),
                    Err(reason) => {
                        self.findings.add(
                            replica,
                            FindingKind::Invalid,
                            format!("returned a certificate that fails: {reason}"),
                        );
                        None
                    }
                };
            }
            (RequestState::Revoked, Expect::Revoke { serial_hex }) => {
                if status.serial.as_deref().map(normalise_serial).as_deref() != Some(serial_hex.as_str()) {
                    self.findings.add(
                        replica,
                        FindingKind::Invalid,
                        format!("reports serial {:?} revoked instead of {serial_hex}", status.serial),
                    );
                    return None;
                }
                "revoked".to_string()
            }
            (RequestState::Refused, _) => {
                let code = status.refusal.as_ref().map_or("unspecified", |r| r.code.as_str());
                format!("refused:{code}")
            }
            (state, _) => {
                self.findings.add(
                    replica,
                    FindingKind::Invalid,
                    format!("reports the request as {state:?}, which it cannot be"),
                );
                return None;
            }
        };
        if let Some((earlier, _)) = self.claims.get(&replica)
            && *earlier != claim
        {
            self.findings.add(
                replica,
                FindingKind::Inconsistent,
                format!("changed its answer from {earlier} to {claim}"),
            );
        }
        self.claims.insert(replica, (claim.clone(), status.clone()));
        let agreeing: Vec<&RequestStatus> = self.claims.values().filter(|(c, _)| *c == claim).map(|(_, s)| s).collect();
        if agreeing.len() < self.needed {
            return None;
        }
        let status = agreeing[0].clone();
        Some(if claim == "revoked" {
            Outcome::Revoked(status)
        } else {
            let refusal =
                status.refusal.clone().unwrap_or(api::Refusal { code: "unspecified".into(), message: String::new() });
            Outcome::Refused(refusal)
        })
    }

    fn check_issued(
        &self,
        chain: &str,
        status: &RequestStatus,
        expectation: &Expectation,
    ) -> Result<VerifiedCertificate, String> {
        let certificate = VerifiedCertificate::verify_chain_pem(self.root, chain).map_err(|e| e.to_string())?;
        certificate.check_time(unix_now()).map_err(|e| e.to_string())?;
        let mut expectation = expectation.clone();
        if expectation.serial_hex.is_none() {
            expectation.serial_hex = status.serial.clone();
        }
        certificate.check(&expectation).map_err(|e| e.to_string())?;
        Ok(certificate)
    }

    /// The outcome with every replica whose settled claim it contradicts named.
    fn finish(mut self, outcome: Outcome, mut findings: Findings) -> (Outcome, Findings) {
        let established = match &outcome {
            Outcome::Issued { .. } => None,
            Outcome::Revoked(_) => Some("revoked".to_string()),
            Outcome::Refused(refusal) => Some(format!("refused:{}", refusal.code)),
        };
        for (replica, (claim, _)) in &self.claims {
            if Some(claim) != established.as_ref() {
                let what = match &outcome {
                    Outcome::Issued { .. } => "a certificate signed by the root was issued".to_string(),
                    _ => format!("t + 1 replicas report {}", established.as_deref().unwrap_or("")),
                };
                self.findings.add(*replica, FindingKind::Inconsistent, format!("claimed {claim}, but {what}"));
            }
        }
        findings.extend(self.findings.into_vec());
        (outcome, findings)
    }

    /// What the replicas said last, e.g. `pending: 0 2; refused:name_not_allowed: 1`.
    fn describe(&self) -> String {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (replica, state) in &self.latest {
            let label = match self.claims.get(replica) {
                Some((claim, _)) => claim.clone(),
                None => format!("{state:?}").to_lowercase(),
            };
            groups.entry(label).or_default().push(*replica);
        }
        if groups.is_empty() {
            return "no replica has answered yet".to_string();
        }
        groups
            .into_iter()
            .map(|(label, replicas)| {
                let list = replicas.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" ");
                format!("{label}: replica {list}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
