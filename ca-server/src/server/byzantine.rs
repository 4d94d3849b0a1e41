//! Test-only Byzantine replica (feature `byzantine`, run as the `byzantine-replica` binary, never
//! part of a release build of `ca-server`): a real replica whose outputs are falsified at the
//! edges, so the fault campaign can check that `t` such replicas change nothing a client sees.
//!
//! - protocol messages: the runtime's [`Misbehaviour`] (invalid BLS, coin and decryption shares,
//!   equivocation, withheld, replayed and garbage messages);
//! - `bad-rsa-shares`: every RSA signature share it sends is altered;
//! - `forged-requests`: it keeps submitting commands under an administrator's account key that
//!   the administrator never signed;
//! - `forged-http`: its API serves certificates with a broken signature, forged tree heads and
//!   CRLs with a broken signature.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use ca_api::AccountSecret;
use ca_api::command::{CaRequest, Command, SignedCommand, new_nonce};
use rand::rngs::OsRng;
use replication::atomic::secure::Request as OrderedRequest;
use replication::runtime::Runtime;
use replication::runtime::byzantine::Misbehaviour;

use crate::ca::Ca;
use crate::signing::SigningMessage;

/// What a Byzantine replica does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Byzantine {
    pub protocol: Misbehaviour,
    pub bad_rsa_shares: bool,
    pub forged_requests: bool,
    pub forged_http: bool,
}

impl Byzantine {
    /// A comma-separated list of [`Misbehaviour::NAMES`] and `bad-rsa-shares`,
    /// `forged-requests`, `forged-http`.
    pub fn parse(list: &str) -> Result<Byzantine, String> {
        let mut out = Byzantine::default();
        let mut protocol = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "bad-rsa-shares" => out.bad_rsa_shares = true,
                "forged-requests" => out.forged_requests = true,
                "forged-http" => out.forged_http = true,
                other => protocol.push(other),
            }
        }
        out.protocol = Misbehaviour::parse(&protocol.join(","))?;
        Ok(out)
    }
}

/// Alters every share in a signing message (other messages pass unchanged).
pub(super) fn tamper_shares(payload: Vec<u8>) -> Vec<u8> {
    match SigningMessage::decode(&payload) {
        Ok(SigningMessage::Shares { mut shares }) => {
            for share in &mut shares {
                if let Some(last) = share.share.value.last_mut() {
                    *last ^= 0x01;
                }
            }
            SigningMessage::Shares { shares }.encode()
        }
        _ => payload,
    }
}

/// Submits, every `every`, a command claiming an administrator's account with a signature of
/// another key.
pub(super) async fn submit_forged_requests(ca: Ca, runtime: Arc<Runtime>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let policy = ca.current_policy().policy;
        let Some(admin) = policy.accounts.iter().find(|a| a.admin) else {
            continue;
        };
        let impostor = AccountSecret::generate(&mut OsRng);
        let command = Command::issue(b"forged", "default", None, new_nonce(&mut OsRng));
        let mut signed = SignedCommand::sign(&impostor, &command);
        signed.account = admin.public_key;
        let _ = runtime.submit(OrderedRequest::Plain(CaRequest::Signed(signed).to_bytes())).await;
    }
}

/// Falsifies what the API serves: certificates and CRLs get a broken signature, tree heads a
/// forged root hash.
pub(super) async fn forge_responses(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let forge = path.starts_with("/v1/certificates/") || path == "/v1/crl" || path == "/v1/audit/sth";
    if !forge || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 16 * 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let forged = match path.as_str() {
        "/v1/audit/sth" => forge_json_field(&bytes, "root_hash"),
        "/v1/crl" => Some(flip_last_byte(&bytes)),
        _ if is_pem(&bytes) => Some(forge_pem(&bytes)),
        _ => forge_json_field(&bytes, "certificate_pem"),
    }
    .unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(forged))
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN")
}

fn flip_last_byte(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(last) = out.last_mut() {
        *last ^= 0x01;
    }
    out
}

/// The first certificate of a PEM chain with one bit of its signature flipped.
fn forge_pem(bytes: &[u8]) -> Vec<u8> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let Some(end) = bytes.windows(END.len()).position(|w| w == END).map(|i| i + END.len()) else {
        return bytes.to_vec();
    };
    let Ok((label, der)) = der::pem::decode_vec(&bytes[..end]) else {
        return bytes.to_vec();
    };
    let Ok(first) = der::pem::encode_string(label, der::pem::LineEnding::LF, &flip_last_byte(&der)) else {
        return bytes.to_vec();
    };
    let rest = bytes[end..].strip_prefix(b"\n").unwrap_or(&bytes[end..]);
    [first.as_bytes(), rest].concat()
}

/// The JSON with `field` (a hex hash or a PEM string) altered.
fn forge_json_field(bytes: &[u8], field: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let slot = value.get_mut(field)?;
    let text = slot.as_str()?.to_owned();
    let forged = if is_pem(text.as_bytes()) {
        String::from_utf8(forge_pem(text.as_bytes())).ok()?
    } else {
        // A hex or base64 hash: another valid-looking one.
        let mut chars: Vec<char> = text.chars().collect();
        let first = chars.first_mut()?;
        *first = if *first == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect()
    };
    *slot = serde_json::Value::String(forged);
    serde_json::to_vec(&value).ok()
}
