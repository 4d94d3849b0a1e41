//! The per-peer reliable channel, sans-IO: what the node loop keeps for each peer (and snapshots)
//! so that messages survive reconnects and restarts of either side.
//!
//! Sender side, [`Outbox`]: every sequenced message gets the next `seq` and stays queued until the
//! peer acknowledges it; after a reconnect the peer's `Hello` says what it already has and
//! [`Outbox::resend_from`] yields the rest. Entries of rounds the peer will fetch as proofs are
//! reclaimed, and a byte cap bounds what a long-absent peer can cost. Whatever the outbox drops
//! on purpose, the resend announces with [`Frame::Skip`], so the receiver never waits for a hole.
//!
//! Receiver side, [`Inbox`]: the highest contiguous `seq` accepted; anything at or below it is a
//! duplicate, anything past the next one is a gap (dropped; the sender resends in order).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::frame::Frame;

/// Default cap on the payload bytes queued for one peer.
pub const DEFAULT_OUTBOX_BYTES: usize = 64 * 1024 * 1024;

/// One queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    /// The protocol round the message belongs to, if any (for [`Outbox::reclaim_below`]).
    pub round: Option<u64>,
    #[serde(with = "arc_bytes")]
    pub payload: Arc<[u8]>,
}

/// Messages to one peer that it has not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// The `seq` of the next message; sequence numbers start at 1 (0 means "nothing").
    next_seq: u64,
    queue: VecDeque<OutboxEntry>,
    queued_bytes: usize,
    max_bytes: usize,
    /// Entries dropped by the byte cap (a warning sign: the peer was away too long).
    dropped_by_cap: u64,
}

impl Default for Outbox {
    /// An empty outbox with the default byte cap.
    fn default() -> Self {
        Outbox::new(DEFAULT_OUTBOX_BYTES)
    }
}

impl Outbox {
    /// An empty outbox holding at most `max_bytes` of payload (the newest entry is always kept,
    /// even if it alone exceeds the cap).
    pub fn new(max_bytes: usize) -> Self {
        Outbox { next_seq: 1, queue: VecDeque::new(), queued_bytes: 0, max_bytes, dropped_by_cap: 0 }
    }

    /// The `seq` the next [`Outbox::push`] will use.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Unacknowledged entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.queue.iter()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Payload bytes queued.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Entries dropped so far because the queue exceeded its byte cap (the node logs and
    /// exports it: it means a peer was away long enough to need catching up by proofs).
    pub fn dropped_by_cap(&self) -> u64 {
        self.dropped_by_cap
    }

    /// Queues a message and returns the `Data` frame to send now (if the peer is connected).
    pub fn push(&mut self, round: Option<u64>, payload: Arc<[u8]>) -> Frame {
        let seq = self.next_seq;
        // Saturating: only a peer's absurd acknowledgement (see `ack`) can get near the end.
        self.next_seq = self.next_seq.saturating_add(1);
        self.queued_bytes += payload.len();
        self.queue.push_back(OutboxEntry { seq, round, payload: payload.clone() });
        while self.queued_bytes > self.max_bytes && self.queue.len() > 1 {
            if let Some(old) = self.queue.pop_front() {
                self.queued_bytes -= old.payload.len();
                self.dropped_by_cap += 1;
            }
        }
        Frame::Data { seq, payload }
    }

    /// The peer has every message up to `up_to` (an `Ack`, or the `Hello` of a new
    /// connection): forget them. Returns how many were dropped.
    ///
    /// If the peer acknowledges sequence numbers we have not issued, we restarted from older
    /// state than what we had sent: numbering continues after them, or our new messages would
    /// be taken for duplicates. (A lying peer only delays its own messages.)
    pub fn ack(&mut self, up_to: u64) -> usize {
        if up_to >= self.next_seq {
            self.next_seq = up_to.saturating_add(1);
        }
        let mut dropped = 0;
        while self.queue.front().is_some_and(|e| e.seq <= up_to) {
            if let Some(e) = self.queue.pop_front() {
                self.queued_bytes -= e.payload.len();
                dropped += 1;
            }
        }
        dropped
    }

    /// The frames to send to a peer that has everything up to `after` (after a reconnect: its
    /// `Hello`; otherwise what was already sent): the queued entries past it in order, each hole
    /// left by dropped entries announced by a `Skip` first. Costs O(log n + frames returned).
    pub fn resend_from(&self, after: u64) -> Vec<Frame> {
        let first = self.queue.partition_point(|e| e.seq <= after);
        let mut frames = Vec::with_capacity(self.queue.len() - first);
        let mut expected = after.saturating_add(1);
        for e in self.queue.range(first..) {
            if e.seq > expected {
                frames.push(Frame::Skip { up_to: e.seq - 1 });
            }
            frames.push(Frame::Data { seq: e.seq, payload: e.payload.clone() });
            expected = e.seq.saturating_add(1);
        }
        if self.next_seq > expected {
            frames.push(Frame::Skip { up_to: self.next_seq - 1 });
        }
        frames
    }

    /// Drops the entries tagged with a round below `round` (delivered rounds: a peer that still
    /// needs them fetches their proofs instead). Returns how many were dropped.
    pub fn reclaim_below(&mut self, round: u64) -> usize {
        let before = self.queue.len();
        let mut freed = 0;
        self.queue.retain(|e| {
            let keep = e.round.is_none_or(|r| r >= round);
            if !keep {
                freed += e.payload.len();
            }
            keep
        });
        self.queued_bytes -= freed;
        before - self.queue.len()
    }
}

/// What to do with a received `Data` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The next message in order: deliver it (and acknowledge).
    New,
    /// Already accepted: drop it.
    Duplicate,
    /// A message past the next one: drop it, the sender resends in order after the hole.
    Gap,
}

/// What has been received from one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    received_up_to: u64,
}

impl Inbox {
    pub fn new() -> Self {
        Inbox::default()
    }

    /// The highest contiguous `seq` accepted (0: none yet). Goes in `Hello` and `Ack`.
    pub fn received_up_to(&self) -> u64 {
        self.received_up_to
    }

    /// Classifies `seq`, advancing on [`Accept::New`].
    pub fn accept(&mut self, seq: u64) -> Accept {
        if seq <= self.received_up_to {
            Accept::Duplicate
        } else if seq == self.received_up_to + 1 {
            self.received_up_to = seq;
            Accept::New
        } else {
            Accept::Gap
        }
    }

    /// The sender will never send anything up to `up_to` (a `Skip` frame): move past it.
    /// Returns whether anything changed.
    pub fn skip_to(&mut self, up_to: u64) -> bool {
        if up_to > self.received_up_to {
            self.received_up_to = up_to;
            true
        } else {
            false
        }
    }
}

/// Serde for `Arc<[u8]>` as a byte string (serde's `rc` feature is not enabled).
mod arc_bytes {
    use std::sync::Arc;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        crate::wire::bytes::deserialize(d).map(Arc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(tag: u8, len: usize) -> Arc<[u8]> {
        Arc::from(vec![tag; len])
    }

    fn seqs(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Data { seq, .. } => format!("d{seq}"),
                Frame::Skip { up_to } => format!("s{up_to}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn push_numbers_from_one_and_ack_drops_acknowledged_entries() {
        let mut out = Outbox::new(1000);
        for i in 0..5 {
            let frame = out.push(None, bytes(i, 10));
            assert_eq!(frame, Frame::Data { seq: u64::from(i) + 1, payload: bytes(i, 10) });
        }
        assert_eq!((out.len(), out.queued_bytes(), out.next_seq()), (5, 50, 6));
        assert_eq!(out.ack(3), 3);
        assert_eq!(out.entries().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(out.queued_bytes(), 20);
        assert_eq!(out.ack(2), 0, "an older ack changes nothing");
        assert_eq!(out.ack(5), 2);
        assert!(out.is_empty());
        assert_eq!(out.queued_bytes(), 0);
        assert_eq!(out.push(None, bytes(9, 1)), Frame::Data { seq: 6, payload: bytes(9, 1) });
    }

    #[test]
    fn resend_after_reconnect_yields_what_the_peer_lacks_in_order() {
        let mut out = Outbox::new(1000);
        for i in 0..6 {
            out.push(None, bytes(i, 4));
        }
        out.ack(2);
        // The peer had received up to 4 before the connection dropped, the acks were lost.
        assert_eq!(seqs(&out.resend_from(4)), ["d5", "d6"]);
        assert_eq!(out.len(), 4, "resending forgets nothing");
        // A resend is repeatable (another reconnect before any ack).
        assert_eq!(seqs(&out.resend_from(4)), ["d5", "d6"]);
        assert_eq!(seqs(&out.resend_from(6)), Vec::<String>::new());
        // The peer's Hello is an acknowledgement too.
        assert_eq!(out.ack(4), 2);
        assert_eq!(seqs(&out.resend_from(4)), ["d5", "d6"]);
    }

    #[test]
    fn resend_announces_acknowledged_prefix_the_peer_lost_with_a_skip() {
        let mut out = Outbox::new(1000);
        for i in 0..4 {
            out.push(None, bytes(i, 4));
        }
        out.ack(2);
        // The peer restarted from an older snapshot and asks from 0; 1 and 2 are gone.
        assert_eq!(seqs(&out.resend_from(0)), ["s2", "d3", "d4"]);
    }

    #[test]
    fn reclaim_drops_entries_of_older_rounds_and_resend_skips_the_holes() {
        let mut out = Outbox::new(1000);
        out.push(Some(1), bytes(1, 10)); // seq 1
        out.push(None, bytes(2, 10)); // seq 2: untagged, never reclaimed
        out.push(Some(2), bytes(3, 10)); // seq 3
        out.push(Some(5), bytes(4, 10)); // seq 4
        out.push(Some(3), bytes(5, 10)); // seq 5
        assert_eq!(out.reclaim_below(3), 2);
        assert_eq!(out.entries().map(|e| e.seq).collect::<Vec<_>>(), [2, 4, 5]);
        assert_eq!(out.queued_bytes(), 30);
        assert_eq!(seqs(&out.resend_from(0)), ["s1", "d2", "s3", "d4", "d5"]);
        assert_eq!(out.reclaim_below(10), 2);
        // Everything tagged is gone; the trailing hole is announced too.
        assert_eq!(seqs(&out.resend_from(2)), ["s5"]);
    }

    #[test]
    fn default_outbox_uses_the_default_cap() {
        let out = Outbox::default();
        assert_eq!((out.next_seq(), out.max_bytes(), out.len()), (1, DEFAULT_OUTBOX_BYTES, 0));
    }

    #[test]
    fn byte_cap_drops_the_oldest_entries_and_counts_them() {
        let mut out = Outbox::new(100);
        out.push(None, bytes(1, 40));
        out.push(None, bytes(2, 40));
        assert_eq!(out.dropped_by_cap(), 0);
        out.push(None, bytes(3, 40));
        assert_eq!(out.dropped_by_cap(), 1);
        assert_eq!(out.entries().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(out.queued_bytes(), 80);
        // A single message larger than the cap is still kept (it is the newest).
        out.push(None, bytes(4, 500));
        assert_eq!(out.entries().map(|e| e.seq).collect::<Vec<_>>(), [4]);
        assert_eq!(out.dropped_by_cap(), 3);
        assert_eq!(seqs(&out.resend_from(0)), ["s3", "d4"]);
    }

    #[test]
    fn an_ack_beyond_our_sequence_numbers_moves_them_forward() {
        let mut out = Outbox::new(1000);
        out.push(None, bytes(1, 1));
        assert_eq!(out.ack(7), 1);
        assert_eq!(seqs(&out.resend_from(7)), Vec::<String>::new());
        assert_eq!(out.next_seq(), 8);
        assert_eq!(out.push(None, bytes(2, 1)), Frame::Data { seq: 8, payload: bytes(2, 1) });
        // An absurd claim saturates instead of overflowing.
        out.ack(u64::MAX);
        assert_eq!(out.next_seq(), u64::MAX);
        out.push(None, bytes(3, 1));
        assert_eq!(out.next_seq(), u64::MAX);
    }

    #[test]
    fn inbox_accepts_in_order_and_drops_duplicates_and_gaps() {
        let mut inbox = Inbox::new();
        assert_eq!(inbox.accept(1), Accept::New);
        assert_eq!(inbox.accept(1), Accept::Duplicate);
        assert_eq!(inbox.accept(3), Accept::Gap);
        assert_eq!(inbox.received_up_to(), 1);
        assert_eq!(inbox.accept(2), Accept::New);
        assert_eq!(inbox.accept(3), Accept::New);
        assert_eq!(inbox.accept(0), Accept::Duplicate);
        assert!(inbox.skip_to(7));
        assert!(!inbox.skip_to(5));
        assert_eq!(inbox.accept(7), Accept::Duplicate);
        assert_eq!(inbox.accept(8), Accept::New);
        assert_eq!(inbox.accept(u64::MAX), Accept::Gap);
    }

    #[test]
    fn outbox_and_inbox_recover_every_message_exactly_once_across_lossy_reconnects() {
        let mut out = Outbox::new(1 << 20);
        let mut inbox = Inbox::new();
        let mut delivered = Vec::new();
        let mut wire: Vec<Frame> = Vec::new();
        for i in 0..30u8 {
            wire.push(out.push(None, bytes(i, 1)));
            if i % 7 == 6 {
                // The connection drops: part of what was in flight is lost, the rest arrives.
                wire.truncate(wire.len() / 2);
                for f in wire.drain(..) {
                    if let Frame::Data { seq, payload } = f
                        && inbox.accept(seq) == Accept::New
                    {
                        delivered.push(payload[0]);
                    }
                }
                out.ack(inbox.received_up_to());
                wire = out.resend_from(inbox.received_up_to());
            }
        }
        for f in wire.drain(..).chain(out.resend_from(inbox.received_up_to())) {
            match f {
                Frame::Data { seq, payload } if inbox.accept(seq) == Accept::New => delivered.push(payload[0]),
                Frame::Skip { up_to } => {
                    inbox.skip_to(up_to);
                }
                _ => {}
            }
        }
        assert_eq!(delivered, (0..30).collect::<Vec<u8>>());
    }

    #[test]
    fn outbox_and_inbox_survive_a_snapshot_round_trip() {
        let mut out = Outbox::new(1000);
        out.push(Some(4), bytes(1, 3));
        out.push(None, bytes(2, 5));
        out.ack(1);
        let mut inbox = Inbox::new();
        inbox.accept(1);
        let encoded = crate::wire::encode(&(&out, &inbox)).unwrap();
        let (out2, inbox2): (Outbox, Inbox) = crate::wire::decode(0, &encoded).unwrap();
        assert_eq!(out2, out);
        assert_eq!(inbox2, inbox);
    }
}
