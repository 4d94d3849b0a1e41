//! The REST API's request and response bodies (JSON), shared by `ca-server` and `ca-client`.
//! Byte strings are base64 (standard alphabet, padded), hashes and serial numbers lowercase
//! hex, times milliseconds or seconds since the Unix epoch as each field says. Errors are RFC 9457
//! problem details with a stable `type` (`urn:itca:problem:<kind>`).

use serde::{Deserialize, Serialize};

/// `POST /v1/certificates` and `POST /v1/revocations`: one request to order, exactly as it will
/// be ordered. A client submits the same body to several replicas; each orders the same bytes,
/// so the copies are one request (its id is the same everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "lowercase", deny_unknown_fields)]
pub enum Submission {
    /// `request` is base64 of a [`crate::CaRequest`]'s bytes ([`crate::CaRequest::to_bytes`]).
    Plain { request: String },
    /// `request` is base64 of a request sealed to the cluster's threshold-encryption key; no
    /// replica can read it before its position in the order is fixed.
    Sealed { request: String },
}

impl Submission {
    /// The request id: SHA-256 of the encoding tag (0 plain, 1 sealed) and the request bytes,
    /// the digest the ordering layer uses.
    pub fn request_id(tag: u8, request: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update([tag]);
        hasher.update(request);
        hasher.finalize().into()
    }
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Reached this replica (from a client or a peer), not yet ordered (or not yet applied here).
    Pending,
    Issued,
    Revoked,
    PolicyChanged,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Stable, e.g. `name_not_allowed`.
    pub code: String,
    pub message: String,
}

/// `GET /v1/requests/{id}`, and the answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStatus {
    /// Hex of the request id.
    pub request_id: String,
    pub state: RequestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u64>,
    /// Hex serial of the certificate issued or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// For an issuance: the certificate and the root, PEM, once the replicas have signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain_pem: Option<String>,
}

/// `GET /v1/certificates/{serial}` (JSON) and the items of `GET /v1/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub serial: String,
    pub log_index: u64,
    pub profile: String,
    pub dns_names: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_before: u64,
    pub not_after: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// RFC 5280 reason name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// PEM, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
}

/// `GET /v1/certificates?after=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    pub certificates: Vec<CertificateInfo>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// `GET /v1/ca`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaInfo {
    pub name: String,
    pub n: usize,
    pub t: usize,
    pub root_certificate_pem: String,
    pub root_certificate_sha256: String,
    pub policy_sha256: String,
    pub replicas: Vec<ReplicaInfo>,
    /// The replica answering.
    pub replica: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub id: usize,
    pub url: String,
}

/// `GET /v1/audit/sth`: the latest signed tree head (RFC 6962 `TreeHeadSignature`, signed with
/// sha256WithRSAEncryption under the root key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// Milliseconds since the Unix epoch (the round's agreed time).
    pub timestamp: u64,
    /// Hex.
    pub root_hash: String,
    /// Base64.
    pub signature: String,
}

/// `GET /v1/audit/entries?start=&end=` (inclusive, at most 1000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entries {
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    /// Base64 of the leaf bytes (leaf hash = SHA-256(0x00 || leaf)).
    pub leaf: String,
}

/// `GET /v1/audit/proof/inclusion?index=&tree_size=` (or `hash=` instead of `index=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Hex.
    pub leaf_hash: String,
    /// Hex, from the leaf up.
    pub audit_path: Vec<String>,
}

/// `GET /v1/audit/proof/consistency?first=&second=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// Hex.
    pub proof: Vec<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` with a reason (e.g. storage failing).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub replica: usize,
    /// The next round this replica will apply.
    pub next_round: u64,
    pub log_size: u64,
    /// Peers whose link is up.
    pub peers_connected: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_names_its_encoding() {
        let plain = Submission::Plain { request: "AAEC".into() };
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, r#"{"encoding":"plain","request":"AAEC"}"#);
        assert_eq!(serde_json::from_str::<Submission>(&json).unwrap(), plain);
        assert!(serde_json::from_str::<Submission>(r#"{"encoding":"plain","request":"","x":1}"#).is_err());
    }

    #[test]
    fn the_request_id_depends_on_the_encoding() {
        assert_ne!(Submission::request_id(0, b"r"), Submission::request_id(1, b"r"));
    }
}
