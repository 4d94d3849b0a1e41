//! Per-peer counters, updated by the connection tasks and read by the node's status and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::PartyId;

/// A misbehaviour of an authenticated peer on its link (the connection is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, thiserror::Error)]
pub enum LinkFaultKind {
    /// A length prefix above the frame limit.
    #[error("oversized frame")]
    OversizedFrame,
    /// A frame body that does not decode.
    #[error("undecodable frame")]
    UndecodableFrame,
    /// A well-formed frame out of place: anything but `Hello` first, or a second `Hello`.
    #[error("unexpected frame")]
    UnexpectedFrame,
}

impl LinkFaultKind {
    pub const ALL: [LinkFaultKind; 3] =
        [LinkFaultKind::OversizedFrame, LinkFaultKind::UndecodableFrame, LinkFaultKind::UnexpectedFrame];

    /// A stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkFaultKind::OversizedFrame => "oversized_frame",
            LinkFaultKind::UndecodableFrame => "undecodable_frame",
            LinkFaultKind::UnexpectedFrame => "unexpected_frame",
        }
    }

    fn index(self) -> usize {
        match self {
            LinkFaultKind::OversizedFrame => 0,
            LinkFaultKind::UndecodableFrame => 1,
            LinkFaultKind::UnexpectedFrame => 2,
        }
    }
}

/// A snapshot of one peer's counters (frames and their wire bytes, prefix included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    pub peer: PartyId,
    pub connected: bool,
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Connections established (`Hello` exchanged).
    pub connects: u64,
    pub disconnects: u64,
    /// Dial attempts that did not reach the TLS handshake (refused, unreachable, timed out).
    pub dial_failures: u64,
    /// Frames given to `send` while the peer was not connected.
    pub discarded_sends: u64,
    /// Connections dropped because the peer did not read what was queued for it.
    pub send_queue_overflows: u64,
    /// Faults by kind (every kind listed, zeros included).
    pub faults: Vec<(LinkFaultKind, u64)>,
}

/// A snapshot of all link counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub peers: Vec<PeerStats>,
    /// Dialled servers refused: their certificate is not the one pinned for the replica dialled.
    pub refused_server_certificates: u64,
    /// Incoming clients refused: their certificate is not pinned for a replica with a lower id.
    pub refused_client_certificates: u64,
    /// Handshakes that failed otherwise (timeouts, TLS errors, connection resets).
    pub failed_handshakes: u64,
}

impl LinkStats {
    pub fn peer(&self, peer: PartyId) -> Option<&PeerStats> {
        self.peers.iter().find(|p| p.peer == peer)
    }
}

impl PeerStats {
    pub fn faults_of(&self, kind: LinkFaultKind) -> u64 {
        self.faults.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }
}

#[derive(Debug, Default)]
pub(super) struct PeerCounters {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub dial_failures: AtomicU64,
    pub discarded_sends: AtomicU64,
    pub send_queue_overflows: AtomicU64,
    faults: [AtomicU64; 3],
}

pub(super) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl PeerCounters {
    pub fn fault(&self, kind: LinkFaultKind) {
        bump(&self.faults[kind.index()], 1);
    }

    pub fn snapshot(&self, peer: PartyId, connected: bool) -> PeerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerStats {
            peer,
            connected,
            frames_in: get(&self.frames_in),
            bytes_in: get(&self.bytes_in),
            frames_out: get(&self.frames_out),
            bytes_out: get(&self.bytes_out),
            connects: get(&self.connects),
            disconnects: get(&self.disconnects),
            dial_failures: get(&self.dial_failures),
            discarded_sends: get(&self.discarded_sends),
            send_queue_overflows: get(&self.send_queue_overflows),
            faults: LinkFaultKind::ALL.iter().map(|&k| (k, get(&self.faults[k.index()]))).collect(),
        }
    }
}
