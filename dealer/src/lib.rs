//! The offline key ceremony: generates the root key as threshold-RSA shares, the agreement
//! protocols' BLS key sets, each replica's Ed25519 and TLS keys, the root certificate and the
//! replicas' certificates under it, and writes one public folder plus one folder per replica.
//! Nothing here runs on a replica; the full root key lives only inside [`ceremony::run`].

pub mod ceremony;
pub mod certs;
pub mod hosts;
pub mod layout;
pub mod verify;
