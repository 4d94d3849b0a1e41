//! The replica daemon: it will host the replication runtime, apply the ordered log to its SQLite
//! state, sign jointly with its threshold-RSA share and serve the HTTPS API; none of that is built
//! yet. What is here are the deterministic, I/O-free pieces the CA state machine uses when it
//! applies an ordered request. Every honest replica must derive byte-identical results from the
//! same inputs, so none of them reads a clock, draws randomness or lets hash-map order reach its
//! output.
//!
//! - [`csr`]: parse a PKCS#10 request and verify its self-signature;
//! - [`names`]: DNS name validation and the profile rules that allow names;
//! - [`certificate`]: the issuer (from the root), the to-be-signed end-entity certificate, serial
//!   numbers, and assembly of TBS + signature;
//! - [`crl`]: the to-be-signed CRL and its assembly;
//! - [`merkle`]: the RFC 6962 audit-log tree with inclusion and consistency proofs.

pub mod certificate;
pub mod crl;
pub mod csr;
pub mod merkle;
pub mod names;

#[cfg(test)]
mod test_support;
