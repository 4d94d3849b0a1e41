//! The endpoints. Each one checks its input, asks the CA state or the runtime, and answers with
//! a `ca_api::api` body or a problem document.

use super::AppState;
use super::problem::Problem;
use crate::ca::{self, CaError};
use crate::entry::{EntryKind, RefusalCode};
use crate::waiters::WaitKey;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::api::{self, RequestState, Submission};
use ca_api::command::{CaRequest, Command, parse_command, parse_serial_hex};
use der::pem::LineEnding;
use replication::atomic::secure::Request;
use replication::runtime::SubmitError;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest a client may ask a submission to wait for its outcome.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most entries or certificates in one page.
const MAX_PAGE: u64 = 1000;

type Answer = Result<Response, Problem>;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn internal(error: CaError) -> Problem {
    match error {
        CaError::SizeBeyondLog { .. } | CaError::Tree(_) => {
            Problem::bad_request("bad-proof-request", "No such proof", error.to_string())
        }
        other => {
            tracing::error!(error = %other, "request failed");
            Problem::internal("the replica could not answer; its log has the details")
        }
    }
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!("request bodies are limited to {} bytes", super::MAX_BODY_BYTES),
            )
        } else {
            Problem::bad_request("malformed-body", "Malformed body", e.body_text())
        }
    })
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|e| Problem::bad_request("malformed-query", "Malformed query", e.body_text()))
}

/// A path parameter; one that does not decode (e.g. percent-encoded bytes that are not UTF-8) is
/// as malformed as one that does not parse.
fn path(path: Result<Path<String>, PathRejection>, kind: &'static str, title: &'static str) -> Result<String, Problem> {
    path.map(|Path(text)| text).map_err(|e| Problem::bad_request(kind, title, e.body_text()))
}

/// Submissions are JSON: a body sent as anything else (a form, text, no type at all) is refused
/// before it is parsed, so a request is never ordered because a server guessed its type.
fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    if essence.as_deref() == Some("application/json") {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "submissions are JSON: send content-type: application/json",
        ))
    }
}

fn hex32(text: &str, what: &str) -> Result<[u8; 32], Problem> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Problem::bad_request("malformed-id", "Malformed id", format!("{what} must be 64 hex digits")))
}

fn serial(text: &str) -> Result<Vec<u8>, Problem> {
    parse_serial_hex(text).map_err(|e| Problem::bad_request("malformed-serial", "Malformed serial", e.to_string()))
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, LineEnding::LF, der).unwrap_or_default()
}

/// The problem for a request the log would refuse, with a status that says whose move it is.
fn refusal(code: RefusalCode, message: String) -> Problem {
    use RefusalCode::*;
    let (status, kind, title) = match code {
        Undecodable => (StatusCode::BAD_REQUEST, "undecodable", "Not a CA request"),
        Replayed => (StatusCode::CONFLICT, "replayed", "Request already carried by the log"),
        UnknownAccount => (StatusCode::FORBIDDEN, "unknown-account", "Unknown account"),
        BadSignature => (StatusCode::FORBIDDEN, "bad-signature", "Bad signature"),
        AccountExpired => (StatusCode::FORBIDDEN, "account-expired", "Account expired"),
        ProfileNotAllowed => (StatusCode::FORBIDDEN, "profile-not-allowed", "Profile not allowed"),
        NameNotAllowed => (StatusCode::FORBIDDEN, "name-not-allowed", "Name not allowed"),
        KeyTypeNotAllowed => (StatusCode::FORBIDDEN, "key-type-not-allowed", "Key type not allowed"),
        ValidityTooLong => (StatusCode::BAD_REQUEST, "validity-too-long", "Validity too long"),
        InvalidValidity => (StatusCode::BAD_REQUEST, "invalid-validity", "Invalid validity"),
        CsrInvalid => (StatusCode::BAD_REQUEST, "csr-invalid", "Invalid certificate signing request"),
        UnknownSerial => (StatusCode::NOT_FOUND, "unknown-serial", "Unknown serial"),
        AlreadyRevoked => (StatusCode::CONFLICT, "already-revoked", "Already revoked"),
        NotAuthorized => (StatusCode::FORBIDDEN, "not-authorized", "Not authorized"),
        InvalidPolicy => (StatusCode::BAD_REQUEST, "invalid-policy", "Invalid policy"),
    };
    Problem::new(status, kind, title, message)
}

/// The API's view of a request's fate.
fn api_status(state: &AppState, id: &[u8; 32], status: Option<ca::RequestStatus>) -> api::RequestStatus {
    let Some(status) = status else {
        return api::RequestStatus {
            request_id: hex::encode(id),
            state: RequestState::Pending,
            log_index: None,
            round: None,
            serial: None,
            refusal: None,
            certificate_chain_pem: None,
        };
    };
    let chain = match (status.kind, &status.certificate_der) {
        (EntryKind::Issued, Some(der)) => Some(state.ca.chain_pem(der)),
        _ => None,
    };
    api::RequestStatus {
        request_id: hex::encode(id),
        state: match status.kind {
            EntryKind::Issued => RequestState::Issued,
            EntryKind::Revoked => RequestState::Revoked,
            EntryKind::PolicyChanged => RequestState::PolicyChanged,
            EntryKind::Refused => RequestState::Refused,
        },
        log_index: Some(status.log_index),
        round: Some(status.round),
        serial: status.serial.as_deref().map(hex::encode),
        refusal: status
            .refusal_code
            .map(|code| api::Refusal { code, message: status.refusal_message.unwrap_or_default() }),
        certificate_chain_pem: chain,
    }
}

/// Settled: refused, revoked, policy changed, or issued and signed.
fn settled(status: &Option<ca::RequestStatus>) -> bool {
    status.as_ref().is_some_and(|s| s.kind != EntryKind::Issued || s.certificate_der.is_some())
}

#[derive(Deserialize)]
pub struct WaitQuery {
    /// Seconds to wait for the outcome before answering 202.
    wait: Option<u64>,
}

/// Which commands an endpoint takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Issue,
    Revoke,
    Policy,
}

fn check_endpoint(request: &CaRequest, endpoint: Endpoint) -> Result<(), Problem> {
    let fits = match request {
        CaRequest::RevokeByKey(_) => endpoint == Endpoint::Revoke,
        CaRequest::Signed(signed) => match parse_command(&signed.command) {
            Ok(Command::Issue { .. }) => endpoint == Endpoint::Issue,
            Ok(Command::Revoke { .. }) => endpoint == Endpoint::Revoke,
            Ok(Command::SetPolicy { .. }) => endpoint == Endpoint::Policy,
            // The precheck names what is wrong with it.
            Err(_) => true,
        },
    };
    if fits {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "wrong-endpoint",
            "Wrong endpoint",
            "issuance goes to /v1/certificates, revocations to /v1/revocations, policy changes to /v1/policy",
        ))
    }
}

async fn submit(
    state: AppState,
    wait: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Answer {
    let wait = query(wait)?.wait;
    require_json(&headers)?;
    let body = body(bytes)?;
    let submission: Submission = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "malformed-body",
            "Malformed body",
            format!(r#"expected {{"encoding": "plain" or "sealed", "request": base64}}: {e}"#),
        )
    })?;
    let (sealed, encoded) = match submission {
        Submission::Plain { request } => (false, request),
        Submission::Sealed { request } => (true, request),
    };
    let bytes = BASE64
        .decode(encoded.as_bytes())
        .map_err(|e| Problem::bad_request("malformed-body", "Malformed body", format!("request is not base64: {e}")))?;
    let id = Submission::request_id(u8::from(sealed), &bytes);
    // Submitted before (to this replica or another): its fate, not a second copy.
    let known = state.ca.request_status(&id).await.map_err(internal)?;
    if known.is_some() {
        let status = api_status(&state, &id, known);
        return Ok((StatusCode::OK, Json(status)).into_response());
    }
    let request = if sealed {
        let valid = replication::crypto::threshold_backend::decode_sealed(&bytes).is_some_and(|r| r.validate().is_ok());
        if !valid {
            return Err(Problem::bad_request(
                "invalid-sealed-request",
                "Invalid sealed request",
                "the sealed request does not decode or its proof does not verify under the cluster's encryption key",
            ));
        }
        Request::Sealed(bytes)
    } else {
        let request = CaRequest::from_bytes(&bytes)
            .map_err(|e| Problem::bad_request("malformed-request", "Malformed CA request", e.to_string()))?;
        check_endpoint(&request, endpoint)?;
        // Bound to be refused now: say so at once (the log would record the same reason).
        if let Err((code, message)) = state.ca.precheck(&bytes, now_ms()).await.map_err(internal)? {
            return Err(refusal(code, message));
        }
        Request::Plain(bytes)
    };
    match state.runtime.submit(request).await {
        Ok(_) => {}
        Err(e @ SubmitError::Busy { .. }) => {
            return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Replica busy", e.to_string()));
        }
        Err(e @ SubmitError::TooLarge { .. }) => {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request-too-large",
                "Request too large",
                e.to_string(),
            ));
        }
        Err(e @ (SubmitError::Stopped | SubmitError::Paused { .. })) => {
            return Err(Problem::unavailable(e.to_string()));
        }
    }
    let wait = Duration::from_secs(wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut status = None;
    loop {
        // What to wait for next: the request's application, then its certificate's signature.
        let key = match &status {
            Some(ca::RequestStatus { kind: EntryKind::Issued, log_index, .. }) => WaitKey::Certificate(*log_index),
            _ => WaitKey::Request(id),
        };
        let notify = state.ca.watch(key);
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        status = state.ca.request_status(&id).await.map_err(internal)?;
        if settled(&status) {
            let body = api_status(&state, &id, status);
            return Ok((StatusCode::OK, Json(body)).into_response());
        }
        let moved_on = matches!((&status, key), (Some(s), WaitKey::Request(_)) if s.kind == EntryKind::Issued);
        if moved_on {
            state.ca.unwatch(key, &notify);
            continue;
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            state.ca.unwatch(key, &notify);
            let body = api_status(&state, &id, status);
            let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
            let location = HeaderValue::from_str(&format!("/v1/requests/{}", hex::encode(id)));
            if let Ok(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return Ok(response);
        }
    }
}

pub async fn submit_certificate(
    State(state): State<AppState>,
    wait: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    submit(state, wait, headers, bytes, Endpoint::Issue).await
}

pub async fn submit_revocation(
    State(state): State<AppState>,
    wait: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    submit(state, wait, headers, bytes, Endpoint::Revoke).await
}

pub async fn submit_policy(
    State(state): State<AppState>,
    wait: Result<Query<WaitQuery>, QueryRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    submit(state, wait, headers, bytes, Endpoint::Policy).await
}

pub async fn request_status(State(state): State<AppState>, id: Result<Path<String>, PathRejection>) -> Answer {
    let id = hex32(&path(id, "malformed-id", "Malformed id")?, "the request id")?;
    let status = state.ca.request_status(&id).await.map_err(internal)?;
    // Not in the log: pending if the request reached this replica (or it cannot tell now).
    if status.is_none() && state.runtime.knows(id).await == Some(false) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-request",
            "Unknown request",
            format!(
                "request {} has not reached this replica: it was never submitted, or it was submitted to another \
                 replica and is still on its way here",
                hex::encode(id)
            ),
        ));
    }
    Ok(Json(api_status(&state, &id, status)).into_response())
}

fn certificate_info(row: crate::store::CertificateRow) -> api::CertificateInfo {
    api::CertificateInfo {
        serial: hex::encode(&row.serial),
        log_index: row.log_index,
        profile: row.profile,
        dns_names: row.dns_names,
        not_before: row.not_before,
        not_after: row.not_after,
        revoked_at: row.revoked_at,
        revocation_reason: row
            .revocation_reason
            .and_then(ca_api::RevocationReason::from_code)
            .map(|r| r.as_str().to_string()),
        certificate_pem: row.der.as_deref().map(|der| pem("CERTIFICATE", der)),
    }
}

pub async fn get_certificate(
    State(state): State<AppState>,
    text: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let text = path(text, "malformed-serial", "Malformed serial")?;
    let serial = serial(&text)?;
    let row = state
        .ca
        .certificate(&serial)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("unknown-serial", format!("no certificate has serial {text}")))?;
    let wants_pem = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/pem-certificate-chain"));
    if wants_pem {
        let chain = state.ca.certificate_chain_pem(&serial).await.map_err(internal)?.ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "not-yet-signed",
                "Not signed yet",
                "the replicas are still combining this certificate's signature; ask again shortly",
            )
        })?;
        let mut response = chain.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pem-certificate-chain"));
        return Ok(response);
    }
    Ok(Json(certificate_info(row)).into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<u64>,
    limit: Option<u64>,
}

pub async fn list_certificates(
    State(state): State<AppState>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let page = query(page)?;
    let limit = page.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = state.ca.certificates(page.after, limit).await.map_err(internal)?;
    let next_after = (rows.len() as u64 == limit).then(|| rows.last().map(|r| r.log_index)).flatten();
    let certificates = rows.into_iter().map(certificate_info).collect();
    Ok(Json(api::CertificateList { certificates, next_after }).into_response())
}

pub async fn crl(State(state): State<AppState>) -> Answer {
    let der = state.ca.current_crl().await.map_err(internal)?.ok_or_else(|| {
        Problem::not_found("no-crl-yet", "no CRL has been signed yet: the first one follows the first ordered round")
    })?;
    let mut response = der.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-crl"));
    Ok(response)
}

pub async fn sth(State(state): State<AppState>) -> Answer {
    let head = state
        .ca
        .latest_tree_head()
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("no-tree-head-yet", "no signed tree head yet: the log is empty"))?;
    Ok(Json(api::SignedTreeHead {
        tree_size: head.head.tree_size,
        timestamp: head.head.timestamp_ms,
        root_hash: hex::encode(head.head.root),
        signature: BASE64.encode(&head.signature),
    })
    .into_response())
}

#[derive(Deserialize)]
pub struct RangeQuery {
    start: u64,
    end: u64,
}

pub async fn entries(State(state): State<AppState>, range: Result<Query<RangeQuery>, QueryRejection>) -> Answer {
    let range = query(range)?;
    if range.end < range.start || range.end - range.start >= MAX_PAGE {
        return Err(Problem::bad_request(
            "bad-range",
            "Bad range",
            format!("need start <= end and at most {MAX_PAGE} entries (end is inclusive)"),
        ));
    }
    let rows = state.ca.entries(range.start, range.end).await.map_err(internal)?;
    let entries = rows.into_iter().map(|e| api::Entry { index: e.log_index, leaf: BASE64.encode(&e.leaf) }).collect();
    Ok(Json(api::Entries { entries }).into_response())
}

#[derive(Deserialize)]
pub struct InclusionQuery {
    index: Option<u64>,
    hash: Option<String>,
    tree_size: u64,
}

pub async fn inclusion_proof(
    State(state): State<AppState>,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let proof = match (q.index, q.hash) {
        (Some(index), None) => state.ca.inclusion_proof(index, q.tree_size).map_err(internal)?,
        (None, Some(hash)) => {
            let hash = hex32(&hash, "hash")?;
            state
                .ca
                .inclusion_proof_by_hash(&hash, q.tree_size)
                .await
                .map_err(internal)?
                .ok_or_else(|| Problem::not_found("unknown-leaf", "no leaf with that hash within the tree size"))?
        }
        _ => return Err(Problem::bad_request("malformed-query", "Malformed query", "give either index or hash")),
    };
    Ok(Json(api::InclusionProof {
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        leaf_hash: hex::encode(proof.leaf_hash),
        audit_path: proof.path.iter().map(hex::encode).collect(),
    })
    .into_response())
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    first: u64,
    second: u64,
}

pub async fn consistency_proof(
    State(state): State<AppState>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let proof = state.ca.consistency_proof(q.first, q.second).map_err(internal)?;
    Ok(Json(api::ConsistencyProof { first: q.first, second: q.second, proof: proof.iter().map(hex::encode).collect() })
        .into_response())
}

pub async fn ca_info(State(state): State<AppState>) -> Answer {
    let cluster = &state.cluster;
    Ok(Json(api::CaInfo {
        name: cluster.name.clone(),
        n: cluster.n,
        t: cluster.t,
        root_certificate_pem: state.ca.root_pem(),
        root_certificate_sha256: cluster.root_certificate_sha256.clone(),
        policy_sha256: state.ca.current_policy().sha256,
        replicas: cluster
            .replicas
            .iter()
            .map(|r| api::ReplicaInfo { id: r.id, url: format!("https://{}:{}", r.host, r.https_port) })
            .collect(),
        replica: state.ca.id(),
    })
    .into_response())
}

pub async fn replica_status(State(state): State<AppState>) -> Answer {
    let metrics = state.ca.metrics().await.map_err(internal)?;
    let faults: Vec<serde_json::Value> = metrics
        .faults
        .iter()
        .enumerate()
        .map(|(peer, f)| {
            serde_json::json!({
                "peer": peer,
                "invalid_shares": f.invalid_shares,
                "equivocations": f.equivocations,
                "impersonations": f.impersonations,
                "malformed_messages": f.malformed_messages,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "replica": state.ca.id(),
        "replication": state.runtime.status(),
        "ca": {
            "next_round": metrics.next_round,
            "log_size": metrics.log_size,
            "certificates": metrics.counts.certificates,
            "signed_certificates": metrics.counts.signed_certificates,
            "revoked_certificates": metrics.counts.revoked_certificates,
            "pending_signatures": metrics.pending_signatures,
            "signatures_completed": metrics.signatures_completed,
            "shares_computed": metrics.shares_computed,
            "shares_beyond_rotation": metrics.shares_beyond_rotation,
            "combinations": metrics.combinations,
            "signature_share_faults": faults,
        },
    }))
    .into_response())
}

pub async fn health(State(state): State<AppState>) -> Answer {
    let status = state.runtime.status();
    // Applying (the database) and ordering (the replication log) can each be held up by storage.
    let reasons: Vec<String> = state.degraded.reason().into_iter().chain(status.storage.clone()).collect();
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    let degraded = reason.is_some();
    let body = ca_api::api::Health {
        status: if degraded { "degraded" } else { "ok" }.into(),
        reason,
        replica: state.ca.id(),
        next_round: state.ca.next_round(),
        log_size: state.ca.log_size(),
        peers_connected: status.peers.iter().filter(|p| p.connected).count(),
    };
    let code = if degraded { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    Ok((code, Json(body)).into_response())
}

pub async fn metrics(State(state): State<AppState>) -> Answer {
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, &state.registry)
        .map_err(|e| Problem::internal(e.to_string()))?;
    let m = state.ca.metrics().await.map_err(internal)?;
    let gauge = |text: &mut String, name: &str, help: &str, value: u64| {
        text.push_str(&format!("# HELP itca_{name} {help}\n# TYPE itca_{name} gauge\nitca_{name} {value}\n"));
    };
    gauge(&mut text, "next_round", "The next round this replica applies", m.next_round);
    gauge(&mut text, "log_size", "Entries in the audit log", m.log_size);
    gauge(&mut text, "certificates", "Certificates issued", m.counts.certificates);
    gauge(&mut text, "revoked_certificates", "Certificates revoked", m.counts.revoked_certificates);
    gauge(&mut text, "pending_signatures", "Objects waiting for their joint signature", m.pending_signatures as u64);
    text.push_str(&format!(
        "# HELP itca_signature_shares_computed This replica's RSA signature shares computed since start\n\
         # TYPE itca_signature_shares_computed counter\nitca_signature_shares_computed_total {}\n\
         # HELP itca_signature_shares_beyond_rotation Of those, shares on objects other replicas were to sign (they were silent, caught cheating, or asked)\n\
         # TYPE itca_signature_shares_beyond_rotation counter\nitca_signature_shares_beyond_rotation_total {}\n\
         # HELP itca_signature_combinations Combinations of signature shares this replica ran since start\n\
         # TYPE itca_signature_combinations counter\nitca_signature_combinations_total {}\n",
        m.shares_computed, m.shares_beyond_rotation, m.combinations
    ));
    text.push_str("# HELP itca_signature_share_faults Invalid, equivocating or malformed signature shares per peer\n");
    text.push_str("# TYPE itca_signature_share_faults gauge\n");
    for (peer, f) in m.faults.iter().enumerate() {
        let total = f.invalid_shares + f.equivocations + f.impersonations + f.malformed_messages;
        text.push_str(&format!("itca_signature_share_faults{{peer=\"{peer}\"}} {total}\n"));
    }
    if let Some(process) = super::process::ProcessStats::read() {
        process.encode(&mut text);
    }
    text.push_str("# EOF\n");
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method; the Allow header lists the ones it takes",
    )
}

pub async fn not_found() -> Problem {
    Problem::not_found("no-such-endpoint", "no such endpoint; the API is described at /v1/openapi.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).expect("header value"));
        headers
    }

    #[test]
    fn only_json_submissions_are_read() {
        for ok in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
            assert_eq!(require_json(&with_type(ok)), Ok(()), "{ok}");
        }
        for refused in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json", ""] {
            let problem = require_json(&with_type(refused)).expect_err(refused);
            assert_eq!((problem.status, problem.kind), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"));
        }
        assert!(require_json(&HeaderMap::new()).is_err(), "no content type at all");
    }
}
