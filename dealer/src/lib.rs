//! The offline key ceremony: generates the root key as threshold-RSA shares, the agreement
//! protocols' BLS key sets, each replica's Ed25519 and TLS keys, the root certificate and the
//! replicas' certificates under it, the first operator's account key and the policy, and writes
//! one public folder, one folder per replica and the operator's folder.
//! Nothing here runs on a replica; the full root key lives only inside [`ceremony::run`].

pub mod ceremony;
pub mod certs;
pub mod hosts;
pub mod layout;
pub mod policy;
pub mod verify;
