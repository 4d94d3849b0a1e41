//! Unsequenced messages between replicas' runtimes (not protocol messages): where each one is,
//! requests for missed rounds and the rounds sent in answer; and how a delivered round is kept
//! in the round store.

use crate::atomic::secure::{OrderedRequest, RoundRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Control {
    /// The sender's next round to deliver.
    Status { next_round: u64 },
    /// Asks for the records of rounds `from_round..from_round + max`.
    Fetch { from_round: u64, max: u32 },
    /// One delivered round, transferable: the receiver verifies it with the public keys.
    Round(RoundRecord),
    /// An application message (e.g. the CA's signature shares), best effort.
    App(#[serde(with = "crate::wire::bytes")] Vec<u8>),
}

/// A delivered round as stored: what the application is handed, and the record that proves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRound {
    pub round: u64,
    pub time: u64,
    pub seed: [u8; 32],
    pub requests: Vec<OrderedRequest>,
    pub record: RoundRecord,
}
