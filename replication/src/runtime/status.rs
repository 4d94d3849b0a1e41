//! A replica's protocol status, as the runtime publishes it (for `GET /v1/replica` and logs).

use crate::PartyId;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub id: PartyId,
    /// The next round to be delivered.
    pub round: u64,
    /// Rounds delivered and stored.
    pub delivered_rounds: u64,
    /// Requests waiting to be ordered.
    pub pending_requests: usize,
    /// This replica's own accepted requests not yet delivered.
    pub own_queued: usize,
    /// Inputs logged so far.
    pub log_index: u64,
    /// The node is paused because its storage cannot be written (a full disk...): it takes no
    /// input and refuses submissions until a retry works.
    pub paused: bool,
    /// Why storage is failing, while it is (the node paused, or snapshots skipped).
    pub storage: Option<String>,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    pub id: PartyId,
    pub connected: bool,
    /// The round the peer last said it is on.
    pub round: u64,
    /// Messages kept for it until it acknowledges them.
    pub queued_messages: usize,
    /// Faults attributed to it since this replica started.
    pub faults: u64,
    /// Messages for it dropped because its queue hit the byte cap (it fetches those rounds'
    /// records instead).
    pub dropped_messages: u64,
}
