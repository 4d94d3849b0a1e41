//! Prometheus metrics of one replica's runtime: messages and bytes per peer, faults per peer and
//! kind, rounds and requests delivered, the delivery latency of this replica's own requests,
//! and the status gauges.

use super::status::Status;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabel {
    peer: String,
    kind: String,
}

pub struct Metrics {
    messages_sent: Family<PeerLabel, Counter>,
    bytes_sent: Family<PeerLabel, Counter>,
    messages_received: Family<PeerLabel, Counter>,
    bytes_received: Family<PeerLabel, Counter>,
    faults: Family<FaultLabel, Counter>,
    peer_connected: Family<PeerLabel, Gauge>,
    rounds: Counter,
    requests: Counter,
    latency: Histogram,
    round: Gauge,
    pending: Gauge,
    own_queued: Gauge,
    storage_paused: Gauge,
}

fn peer(id: usize) -> PeerLabel {
    PeerLabel { peer: id.to_string() }
}

impl Metrics {
    /// Creates the metrics and registers them under the `replication` prefix.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            messages_sent: Family::default(),
            bytes_sent: Family::default(),
            messages_received: Family::default(),
            bytes_received: Family::default(),
            faults: Family::default(),
            peer_connected: Family::default(),
            rounds: Counter::default(),
            requests: Counter::default(),
            // 1 ms .. ~33 s.
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            round: Gauge::default(),
            pending: Gauge::default(),
            own_queued: Gauge::default(),
            storage_paused: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("replication");
        r.register("messages_sent", "Protocol and control frames sent, per peer", m.messages_sent.clone());
        r.register("bytes_sent", "Payload bytes sent, per peer", m.bytes_sent.clone());
        r.register("messages_received", "Protocol frames received, per peer", m.messages_received.clone());
        r.register("bytes_received", "Payload bytes received, per peer", m.bytes_received.clone());
        r.register("faults", "Faults attributed to a peer, per kind", m.faults.clone());
        r.register("peer_connected", "1 while the link to the peer is up", m.peer_connected.clone());
        r.register("rounds_delivered", "Rounds of atomic broadcast delivered", m.rounds.clone());
        r.register("requests_delivered", "Requests delivered in order", m.requests.clone());
        r.register(
            "request_latency_seconds",
            "From acceptance of this replica's own request to its delivery",
            m.latency.clone(),
        );
        r.register("round", "The next round to be delivered", m.round.clone());
        r.register("pending_requests", "Requests waiting to be ordered", m.pending.clone());
        r.register("own_queued", "This replica's accepted requests not yet delivered", m.own_queued.clone());
        r.register(
            "storage_paused",
            "1 while ordering is paused because the log or round store cannot be written (a full disk...)",
            m.storage_paused.clone(),
        );
        m
    }

    pub fn sent(&self, to: usize, bytes: usize) {
        self.messages_sent.get_or_create(&peer(to)).inc();
        self.bytes_sent.get_or_create(&peer(to)).inc_by(bytes as u64);
    }

    pub fn received(&self, from: usize, bytes: usize) {
        self.messages_received.get_or_create(&peer(from)).inc();
        self.bytes_received.get_or_create(&peer(from)).inc_by(bytes as u64);
    }

    pub fn fault(&self, party: usize, kind: &str) {
        self.faults.get_or_create(&FaultLabel { peer: party.to_string(), kind: kind.to_string() }).inc();
    }

    pub fn round(&self, requests: usize) {
        self.rounds.inc();
        self.requests.inc_by(requests as u64);
    }

    pub fn latency(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn status(&self, status: &Status) {
        self.round.set(status.round as i64);
        self.pending.set(status.pending_requests as i64);
        self.own_queued.set(status.own_queued as i64);
        self.storage_paused.set(i64::from(status.paused));
        for p in &status.peers {
            self.peer_connected.get_or_create(&peer(p.id)).set(i64::from(p.connected));
        }
    }
}
