//! Types shared by the CA server, the client and the dealer, defined once: the policy file
//! (accounts and profiles) and account keys; the REST API's request and response bodies will join
//! them.

pub mod account;
pub mod policy;

pub use account::{AccountKey, AccountKeyError, AccountSecret};
pub use policy::{Account, ExtendedKeyUsage, KeyType, NameRule, Policy, PolicyError, Profile, policy_sha256};
