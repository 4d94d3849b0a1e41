//! The audit log's Merkle verification, shared with the server's tests: see [`ca_api::merkle`].

pub use ca_api::merkle::*;
