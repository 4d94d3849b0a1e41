//! Types shared by the CA server, the client and the dealer, defined once: the policy file
//! (accounts and profiles), account keys, the signed commands that are ordered, and the REST
//! API's request and response bodies.

pub mod account;
pub mod api;
pub mod command;
pub mod merkle;
pub mod policy;

pub use account::{AccountKey, AccountKeyError, AccountSecret};
pub use command::{
    CaRequest, Command, CommandError, KeyRevocation, KeyRevocationStatement, RevocationReason, SignedCommand,
};
pub use policy::{Account, ExtendedKeyUsage, KeyType, NameRule, Policy, PolicyError, Profile, policy_sha256};
