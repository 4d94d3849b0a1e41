//! The audit log's entries and tree heads, byte for byte. These encodings are defined here once;
//! every replica derives the same bytes, and a client that holds only the root certificate can
//! check them.
//!
//! # Leaf (an entry's canonical bytes; the Merkle leaf is `SHA-256(0x00 || leaf)`)
//!
//! Big-endian integers; `opaque<..N>` is a length prefix of the smallest width that holds N,
//! then the bytes (the TLS presentation language of RFC 8446 3):
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     uint64 log_index;           // position in the log, from 0
//!     uint64 round;               // the ordering round that delivered the request
//!     uint64 timestamp;           // the round's agreed time, ms since the Unix epoch
//!     opaque request_digest[32];  // SHA-256 of the ordered request (the client's request id)
//!     uint8  kind;                // 0 issued, 1 revoked, 2 policy changed, 3 refused
//!     select (kind) {
//!         issued:  opaque account[32]; opaque profile<1..255>; opaque serial<1..20>;
//!                  opaque tbs_certificate<1..2^24-1>;   // the DER the replicas sign
//!         revoked: opaque serial<1..20>; uint8 reason;  // RFC 5280 CRLReason code
//!                  uint8 authority;                     // 0 an account, 1 the certificate's key
//!                  opaque account[32];                  // only when authority = 0
//!         policy changed: opaque account[32]; opaque policy_sha256[32];  // of the policy file
//!         refused: opaque code<1..255>;                 // a stable RefusalCode, ASCII
//!     };
//! } LogEntryV1;
//! ```
//!
//! A refusal's human-readable message is kept beside the entry but not in the leaf: codes are a
//! stable interface, wording is not, and replicas running different builds must still agree on
//! every leaf.
//!
//! # Signed tree head
//!
//! The RFC 6962 3.5 `TreeHeadSignature` (version v1 = 0, signature_type tree_hash = 1,
//! timestamp = the round's agreed time in ms, tree_size, sha256_root_hash): 50 bytes, signed
//! with the threshold root key as sha256WithRSAEncryption (PKCS#1 v1.5), so anyone verifies it
//! with the root certificate's public key.

use std::fmt;
use std::str::FromStr;

use ca_api::command::RevocationReason;

use crate::certificate::MAX_SERIAL_LEN;
use crate::merkle::{self, Hash};

/// The leaf format's version byte.
pub const LEAF_VERSION: u8 = 1;
const MAX_TBS_LEN: usize = (1 << 24) - 1;

/// Why bytes are not a leaf of this log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("leaf version {0} is not supported")]
    Version(u8),
    #[error("the leaf ends early")]
    Truncated,
    #[error("the leaf has {0} bytes after its end")]
    TrailingBytes(usize),
    #[error("unknown entry kind {0}")]
    Kind(u8),
    #[error("field {0} is out of range")]
    Field(&'static str),
}

/// Stable codes of refused requests: part of the leaf and of the API, never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalCode {
    /// Not a CA request (bad JSON, unknown fields, too large, or a sealed request that did not
    /// open).
    Undecodable,
    /// A command this log has already carried (same signer, same signed bytes).
    Replayed,
    UnknownAccount,
    /// The account's (or, for a revocation by key, the certificate key's) signature is wrong.
    BadSignature,
    AccountExpired,
    ProfileNotAllowed,
    NameNotAllowed,
    KeyTypeNotAllowed,
    ValidityTooLong,
    /// A validity of zero days.
    InvalidValidity,
    CsrInvalid,
    UnknownSerial,
    AlreadyRevoked,
    NotAuthorized,
    InvalidPolicy,
}

impl RefusalCode {
    pub const ALL: [RefusalCode; 15] = [
        Self::Undecodable,
        Self::Replayed,
        Self::UnknownAccount,
        Self::BadSignature,
        Self::AccountExpired,
        Self::ProfileNotAllowed,
        Self::NameNotAllowed,
        Self::KeyTypeNotAllowed,
        Self::ValidityTooLong,
        Self::InvalidValidity,
        Self::CsrInvalid,
        Self::UnknownSerial,
        Self::AlreadyRevoked,
        Self::NotAuthorized,
        Self::InvalidPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::Replayed => "replayed",
            Self::UnknownAccount => "unknown_account",
            Self::BadSignature => "bad_signature",
            Self::AccountExpired => "account_expired",
            Self::ProfileNotAllowed => "profile_not_allowed",
            Self::NameNotAllowed => "name_not_allowed",
            Self::KeyTypeNotAllowed => "key_type_not_allowed",
            Self::ValidityTooLong => "validity_too_long",
            Self::InvalidValidity => "invalid_validity",
            Self::CsrInvalid => "csr_invalid",
            Self::UnknownSerial => "unknown_serial",
            Self::AlreadyRevoked => "already_revoked",
            Self::NotAuthorized => "not_authorized",
            Self::InvalidPolicy => "invalid_policy",
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefusalCode {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|code| code.as_str() == text).ok_or(EntryError::Field("refusal code"))
    }
}

/// Who authorised a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationAuthority {
    /// An account (its public key).
    Account([u8; 32]),
    /// The certificate's own key.
    CertificateKey,
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    Issued { account: [u8; 32], profile: String, serial: Vec<u8>, tbs_certificate: Vec<u8> },
    Revoked { serial: Vec<u8>, reason: RevocationReason, authority: RevocationAuthority },
    PolicyChanged { account: [u8; 32], policy_sha256: [u8; 32] },
    Refused { code: RefusalCode },
}

/// The kind of an entry, as stored and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    Issued,
    Revoked,
    PolicyChanged,
    Refused,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Issued => "issued",
            EntryKind::Revoked => "revoked",
            EntryKind::PolicyChanged => "policy_changed",
            EntryKind::Refused => "refused",
        }
    }

    fn tag(self) -> u8 {
        match self {
            EntryKind::Issued => 0,
            EntryKind::Revoked => 1,
            EntryKind::PolicyChanged => 2,
            EntryKind::Refused => 3,
        }
    }
}

impl FromStr for EntryKind {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [EntryKind::Issued, EntryKind::Revoked, EntryKind::PolicyChanged, EntryKind::Refused]
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(EntryError::Field("kind"))
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub log_index: u64,
    pub round: u64,
    /// The round's agreed time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    pub request_digest: [u8; 32],
    pub body: EntryBody,
}

impl EntryBody {
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryBody::Issued { .. } => EntryKind::Issued,
            EntryBody::Revoked { .. } => EntryKind::Revoked,
            EntryBody::PolicyChanged { .. } => EntryKind::PolicyChanged,
            EntryBody::Refused { .. } => EntryKind::Refused,
        }
    }
}

impl LogEntry {
    /// The leaf bytes (see the module documentation).
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let mut out = Vec::with_capacity(96);
        out.push(LEAF_VERSION);
        out.extend_from_slice(&self.log_index.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.request_digest);
        out.push(self.body.kind().tag());
        match &self.body {
            EntryBody::Issued { account, profile, serial, tbs_certificate } => {
                out.extend_from_slice(account);
                put_u8_len(&mut out, profile.as_bytes(), "profile")?;
                put_serial(&mut out, serial)?;
                if tbs_certificate.is_empty() || tbs_certificate.len() > MAX_TBS_LEN {
                    return Err(EntryError::Field("tbs_certificate"));
                }
                out.extend_from_slice(&(tbs_certificate.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(tbs_certificate);
            }
            EntryBody::Revoked { serial, reason, authority } => {
                put_serial(&mut out, serial)?;
                out.push(reason.code());
                match authority {
                    RevocationAuthority::Account(account) => {
                        out.push(0);
                        out.extend_from_slice(account);
                    }
                    RevocationAuthority::CertificateKey => out.push(1),
                }
            }
            EntryBody::PolicyChanged { account, policy_sha256 } => {
                out.extend_from_slice(account);
                out.extend_from_slice(policy_sha256);
            }
            EntryBody::Refused { code } => put_u8_len(&mut out, code.as_str().as_bytes(), "code")?,
        }
        Ok(out)
    }

    /// Reads leaf bytes, refusing anything [`LogEntry::encode`] would not produce.
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, EntryError> {
        let mut reader = Reader(bytes);
        let version = reader.u8()?;
        if version != LEAF_VERSION {
            return Err(EntryError::Version(version));
        }
        let log_index = reader.u64()?;
        let round = reader.u64()?;
        let timestamp_ms = reader.u64()?;
        let request_digest = reader.array()?;
        let body = match reader.u8()? {
            0 => {
                let account = reader.array()?;
                let profile =
                    String::from_utf8(reader.u8_len("profile")?.to_vec()).map_err(|_| EntryError::Field("profile"))?;
                let serial = reader.serial()?;
                let len = reader.take(3)?;
                let len = (usize::from(len[0]) << 16) | (usize::from(len[1]) << 8) | usize::from(len[2]);
                if len == 0 {
                    return Err(EntryError::Field("tbs_certificate"));
                }
                let tbs_certificate = reader.take(len)?.to_vec();
                EntryBody::Issued { account, profile, serial, tbs_certificate }
            }
            1 => {
                let serial = reader.serial()?;
                let reason = RevocationReason::from_code(reader.u8()?).ok_or(EntryError::Field("reason"))?;
                let authority = match reader.u8()? {
                    0 => RevocationAuthority::Account(reader.array()?),
                    1 => RevocationAuthority::CertificateKey,
                    _ => return Err(EntryError::Field("authority")),
                };
                EntryBody::Revoked { serial, reason, authority }
            }
            2 => EntryBody::PolicyChanged { account: reader.array()?, policy_sha256: reader.array()? },
            3 => {
                let code = std::str::from_utf8(reader.u8_len("code")?).map_err(|_| EntryError::Field("code"))?;
                EntryBody::Refused { code: code.parse()? }
            }
            other => return Err(EntryError::Kind(other)),
        };
        if !reader.0.is_empty() {
            return Err(EntryError::TrailingBytes(reader.0.len()));
        }
        Ok(LogEntry { log_index, round, timestamp_ms, request_digest, body })
    }
}

/// The Merkle leaf hash of leaf bytes.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    merkle::leaf_hash(leaf)
}

fn put_u8_len(out: &mut Vec<u8>, bytes: &[u8], field: &'static str) -> Result<(), EntryError> {
    let len = u8::try_from(bytes.len()).map_err(|_| EntryError::Field(field))?;
    if len == 0 {
        return Err(EntryError::Field(field));
    }
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_serial(out: &mut Vec<u8>, serial: &[u8]) -> Result<(), EntryError> {
    if serial.len() > MAX_SERIAL_LEN {
        return Err(EntryError::Field("serial"));
    }
    put_u8_len(out, serial, "serial")
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], EntryError> {
        if self.0.len() < len {
            return Err(EntryError::Truncated);
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, EntryError> {
        let bytes: [u8; 8] = self.array()?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8_len(&mut self, field: &'static str) -> Result<&'a [u8], EntryError> {
        let len = usize::from(self.u8()?);
        if len == 0 {
            return Err(EntryError::Field(field));
        }
        self.take(len)
    }

    fn serial(&mut self) -> Result<Vec<u8>, EntryError> {
        let serial = self.u8_len("serial")?;
        if serial.len() > MAX_SERIAL_LEN {
            return Err(EntryError::Field("serial"));
        }
        Ok(serial.to_vec())
    }
}

/// A tree head: what a signed tree head signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub tree_size: u64,
    /// The round's agreed time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    pub root: Hash,
}

/// RFC 6962 3.5: `Version` v1.
const CT_VERSION_V1: u8 = 0;
/// RFC 6962 3.5: `SignatureType` tree_hash.
const SIGNATURE_TYPE_TREE_HASH: u8 = 1;

impl TreeHead {
    /// The RFC 6962 `TreeHeadSignature` bytes the root key signs.
    pub fn signed_bytes(&self) -> [u8; 50] {
        let mut out = [0u8; 50];
        out[0] = CT_VERSION_V1;
        out[1] = SIGNATURE_TYPE_TREE_HASH;
        out[2..10].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[10..18].copy_from_slice(&self.tree_size.to_be_bytes());
        out[18..50].copy_from_slice(&self.root);
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entries() -> Vec<LogEntry> {
        let base =
            |body| LogEntry { log_index: 7, round: 3, timestamp_ms: 1_735_689_600_123, request_digest: [9; 32], body };
        vec![
            base(EntryBody::Issued {
                account: [1; 32],
                profile: "default".into(),
                serial: vec![1, 2, 3],
                tbs_certificate: vec![0x30; 300],
            }),
            base(EntryBody::Revoked {
                serial: vec![1; 20],
                reason: RevocationReason::KeyCompromise,
                authority: RevocationAuthority::Account([2; 32]),
            }),
            base(EntryBody::Revoked {
                serial: vec![5],
                reason: RevocationReason::Unspecified,
                authority: RevocationAuthority::CertificateKey,
            }),
            base(EntryBody::PolicyChanged { account: [3; 32], policy_sha256: [4; 32] }),
            base(EntryBody::Refused { code: RefusalCode::NameNotAllowed }),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_its_leaf_bytes() {
        for entry in entries() {
            let leaf = entry.encode().unwrap();
            assert_eq!(LogEntry::decode(&leaf), Ok(entry));
        }
    }

    #[test]
    fn the_leaf_layout_is_the_documented_one() {
        let refused = entries().pop().unwrap().encode().unwrap();
        let mut expected = vec![1];
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&1_735_689_600_123u64.to_be_bytes());
        expected.extend_from_slice(&[9; 32]);
        expected.push(3);
        expected.push(16);
        expected.extend_from_slice(b"name_not_allowed");
        assert_eq!(refused, expected);

        let issued = entries()[0].encode().unwrap();
        let body = &issued[58..];
        assert_eq!(&body[..32], &[1; 32]);
        assert_eq!(body[32], 7);
        assert_eq!(&body[33..40], b"default");
        assert_eq!(&body[40..44], &[3, 1, 2, 3]);
        assert_eq!(&body[44..47], &[0, 1, 44]);
        assert_eq!(body.len(), 47 + 300);
    }

    #[test]
    fn truncated_extended_or_out_of_range_leaves_are_refused() {
        for entry in entries() {
            let leaf = entry.encode().unwrap();
            for len in 0..leaf.len() {
                assert!(LogEntry::decode(&leaf[..len]).is_err(), "{len}");
            }
            let mut longer = leaf.clone();
            longer.push(0);
            assert_eq!(LogEntry::decode(&longer), Err(EntryError::TrailingBytes(1)));
        }
        let mut wrong_version = entries()[0].encode().unwrap();
        wrong_version[0] = 2;
        assert_eq!(LogEntry::decode(&wrong_version), Err(EntryError::Version(2)));
        let too_long_serial = LogEntry {
            body: EntryBody::Revoked {
                serial: vec![1; 21],
                reason: RevocationReason::Unspecified,
                authority: RevocationAuthority::CertificateKey,
            },
            ..entries()[0].clone()
        };
        assert_eq!(too_long_serial.encode(), Err(EntryError::Field("serial")));
    }

    #[test]
    fn refusal_codes_are_distinct_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for code in RefusalCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse(), Ok(code));
        }
    }

    #[test]
    fn tree_head_bytes_follow_rfc6962() {
        let head = TreeHead { tree_size: 0x0102, timestamp_ms: 0x0a0b, root: [0xee; 32] };
        let bytes = head.signed_bytes();
        assert_eq!(bytes[..2], [0, 1]);
        assert_eq!(bytes[2..10], 0x0a0bu64.to_be_bytes());
        assert_eq!(bytes[10..18], 0x0102u64.to_be_bytes());
        assert_eq!(bytes[18..], [0xee; 32]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_decoded_leaves_re_encode(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(entry) = LogEntry::decode(&bytes) {
                prop_assert_eq!(entry.encode().unwrap(), bytes);
            }
        }
    }
}
