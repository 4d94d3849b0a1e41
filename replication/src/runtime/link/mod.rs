//! Replica-to-replica links: mutually authenticated TLS with pinned peer certificates,
//! length-prefixed frames, reconnection, and per-peer reliable delivery.
//!
//! - [`frame`]: the wire format (sans-IO codec).
//! - [`channel`]: the per-peer reliable channel the node loop owns and snapshots ([`Outbox`],
//!   [`Inbox`]).
//! - [`Links`]: the connection tasks. One TLS 1.3 connection per replica pair, dialled by the
//!   lower id; each side is identified only by the SHA-256 of its certificate, pinned in the
//!   cluster file. After the handshake both sides send `Hello { received_up_to }`; the node
//!   answers [`LinkEvent::Connected`] by resending from its outbox.
//!
//! The node loop's part, per peer:
//! - to send: `let frame = outbox.push(round, payload)`, then `links.send(peer, frame)`;
//! - on `Connected { peer_received_up_to }`: `outbox.ack(peer_received_up_to)`, then
//!   `links.send_frames(peer, outbox.resend_from(peer_received_up_to))`;
//! - on `Data`: `inbox.accept(seq)`; deliver if `New`, drop `Duplicate` and `Gap` (a gap is
//!   normal right after a reconnect: the resend follows), and once what was accepted is durable
//!   `links.send(peer, Frame::Ack { up_to: inbox.received_up_to() })`;
//! - on `Skip`: `inbox.skip_to(up_to)` (then acknowledge as above); on `Ack`: `outbox.ack(up_to)`.

pub(super) mod backoff;
pub mod channel;
mod config;
pub mod frame;
mod links;
mod stats;
mod tls;

pub use channel::{Accept, DEFAULT_OUTBOX_BYTES, Inbox, Outbox, OutboxEntry};
pub use config::{
    Backoff, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, DEFAULT_SEND_QUEUE_BYTES, Fingerprint,
    LinkConfig, LinkConfigError, PeerConfig, fingerprint, parse_fingerprint,
};
pub use frame::{Frame, FrameDecoder, FrameError};
pub use links::{LinkEvent, Links};
pub use stats::{LinkFaultKind, LinkStats, PeerStats};

use crate::PartyId;

/// Why the links cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the links must be started within a Tokio runtime")]
    NoRuntime,
    #[error("binding the peer listener on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("setting up the peer listener: {0}")]
    Listener(std::io::Error),
    #[error("no link certificate")]
    NoCertificate,
    #[error("max_frame {0} is outside 64..=4294967295")]
    MaxFrame(usize),
    #[error("max_send_queue_bytes {0} cannot hold a frame of max_frame bytes")]
    SendQueue(usize),
    #[error("timeouts must be non-zero and the keepalive shorter than the idle timeout")]
    Timeouts,
    #[error("peer {0} is this replica itself")]
    SelfPeer(PartyId),
    #[error("peer {0} is listed twice")]
    DuplicatePeer(PartyId),
    #[error("replicas {a} and {b} have the same certificate fingerprint")]
    DuplicateFingerprint { a: PartyId, b: PartyId },
    #[error("the link private key is unusable: {0}")]
    Key(rustls::Error),
    #[error("the link private key does not match the certificate")]
    KeyMismatch,
    #[error("no TLS server name for peer {0}")]
    PeerName(PartyId),
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
}
