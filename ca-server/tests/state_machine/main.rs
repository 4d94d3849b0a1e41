//! The CA state machine end to end, without a network: four replicas on temporary SQLite
//! databases apply the same rounds, and the test carries their signature-share messages (and
//! drops, forges or withholds them). Everything the replicas produce is compared byte for byte
//! and checked by independent verifiers: `openssl`, the `rsa` crate, and a small Merkle tree
//! implementation written here from RFC 6962's definitions.

mod audit;
#[path = "../support/disk.rs"]
mod disk;
mod recovery;
mod refusals;
mod replicas;
mod support;
