//! The intrusion-tolerant CA's client: request, fetch, verify and revoke certificates, show the
//! replicas' state and audit the log, trusting nothing but the root certificate and needing only
//! `t + 1` honest replicas to answer (DESIGN.md §7).
//!
//! - [`client`]: [`Client`], the operations, and the rules for believing replicas;
//! - [`audit`]: signed tree heads, the auditor's state file, and the audit itself;
//! - [`bench`]: the load generator behind `ca-client bench` and the issuance benchmark;
//! - [`verify`]: checking certificates and CRLs against the root;
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle roots and proof verification;
//! - [`keys`]: certificate keys, CSRs and signatures for revocation by key;
//! - [`request`]: plain and sealed submissions;
//! - [`transport`]: HTTPS to each replica, pinned to its certificate;
//! - [`error`]: errors and per-replica findings.
//!
//! The `ca-client` binary is a thin command line over this library.

pub mod audit;
pub mod bench;
pub mod client;
pub mod error;
pub mod keys;
pub mod merkle;
pub mod request;
pub mod transport;
pub mod verify;

pub use audit::{AuditReport, HeadOutcome, TreeHead};
pub use client::{Client, Options, Progress};
pub use error::{ClientError, Finding, FindingKind};
pub use keys::{KeyType, PrivateKey};
pub use verify::{Expectation, Root, VerifiedCertificate, VerifiedCrl};

#[cfg(test)]
mod lying_replicas;
