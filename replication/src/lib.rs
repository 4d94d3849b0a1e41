//! Asynchronous Byzantine broadcast and agreement for the replicated CA (DESIGN.md §4), as pure
//! state machines: reliable broadcast, verifiable consistent broadcast, binary agreement (ABBA),
//! multi-valued validated agreement, atomic broadcast with request dissemination and verifiable
//! round proofs, and secure causal atomic broadcast of sealed requests. The cryptography sits
//! behind small traits ([`crypto`]) implemented over the `threshold` crate
//! ([`crypto::threshold_backend`]). Nothing here does I/O, reads a clock or spawns a task: every
//! protocol takes inputs and messages and returns a [`Step`] of messages to send, outputs and
//! observed faults. With the `sim` feature the crate also carries the deterministic adversarial
//! simulator ([`sim`]) and a fast stand-in for the threshold schemes (test support).

pub mod agreement;
pub mod atomic;
pub mod broadcast;
pub mod crypto;
pub mod fault;
pub mod id;
pub mod protocol;
pub mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
pub mod step;
pub mod wire;

pub use fault::{Fault, FaultKind};
pub use id::InstanceId;
pub use protocol::Protocol;
pub use step::{Step, Target, TargetedMessage};

/// A replica's number within the cluster, `0..n` (the same numbering as `threshold`).
pub type PartyId = usize;
