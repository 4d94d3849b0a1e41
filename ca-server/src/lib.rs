//! The replica daemon (`ca-server run`, and `ca-server local` for a whole cluster on one
//! machine): [`server`] wires the replication runtime, the CA state machine and the HTTPS API
//! ([`http`]) together. The CA state machine applies the ordered log deterministically to its
//! SQLite state, signs jointly with its threshold-RSA share, and keeps the audit log. Every honest
//! replica derives byte-identical results from the same rounds, so nothing here that feeds the
//! log reads a clock, draws randomness or lets hash-map order reach its output.
//!
//! - [`ca`]: the state machine the daemon drives ([`ca::Ca`]): apply rounds, exchange signature
//!   shares, queries for the HTTP API;
//! - [`apply`]: what each ordered request does, as a pure function;
//! - [`signing`]: the share-exchange messages and the bookkeeping of objects being signed;
//! - [`store`]: the SQLite database (schema in `migrations/`);
//! - [`entry`]: the audit log's leaf and tree-head formats;
//! - [`config`]: loading a replica's dealt files;
//! - [`command`](ca_api::command) (in `ca-api`): the signed requests clients submit;
//! - [`profile`]: a policy profile applied to a parsed request;
//! - [`csr`]: parse a PKCS#10 request and verify its self-signature;
//! - [`ecdsa`]: ECDSA verification through OpenSSL;
//! - [`names`]: DNS name validation and normalisation;
//! - [`certificate`]: the issuer (from the root), the to-be-signed end-entity certificate, serial
//!   numbers, and assembly of TBS + signature;
//! - [`crl`]: the to-be-signed CRL and its assembly;
//! - [`merkle`]: the RFC 6962 audit-log tree with inclusion and consistency proofs;
//! - [`waiters`]: wake-ups for HTTP handlers waiting on one request's outcome.

pub mod apply;
pub mod ca;
pub mod certificate;
pub mod config;
pub mod crl;
pub mod csr;
pub mod ecdsa;
pub mod entry;
pub mod http;
pub mod merkle;
pub mod names;
pub mod profile;
pub mod server;
pub mod signing;
pub mod store;
pub mod waiters;

pub use apply::{RequestInput, RoundInput};
pub use ca::{Ca, CaError, Outbox, Outgoing};
pub use config::CaConfig;

#[cfg(test)]
mod test_support;
