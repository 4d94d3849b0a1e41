//! The connection tasks: one listener accepting the replicas with lower ids, one dialer per
//! replica with a higher id, and per connection a reader and a writer. The node loop sees
//! [`LinkEvent`]s and sends with [`Links::send`].
//!
//! Ordering promise, per peer: events alternate `Connected`, `Disconnected`, `Connected`, ...
//! and `Data`/`Ack`/`Skip`/`Control` events only come between a `Connected` and the next
//! `Disconnected` (they come from that connection). `Fault` events may come at any time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroize;

use super::LinkError;
use super::backoff::BackoffState;
use super::config::{Backoff, Fingerprint, LinkConfig};
use super::frame::{Frame, FrameDecoder, FrameError, LENGTH_PREFIX};
use super::stats::{LinkFaultKind, LinkStats, PeerCounters, bump};
use super::tls;
use crate::PartyId;

/// Bytes read from a socket at a time (the decoder holds at most one frame plus this).
const READ_CHUNK: usize = 64 * 1024;
/// Frames are coalesced into writes of about this size.
const WRITE_BATCH: usize = 64 * 1024;
/// Unauthenticated handshakes in progress at once; more incoming connections are dropped.
const MAX_PENDING_HANDSHAKES: usize = 64;
/// The smallest `max_frame` accepted: a `Hello` must fit.
const MIN_MAX_FRAME: usize = 64;

/// What the links report to the node loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A connection to `peer` is up; it has received our messages up to `peer_received_up_to`.
    /// Answer with [`Links::send_frames`] of `Outbox::resend_from(peer_received_up_to)`.
    Connected {
        peer: PartyId,
        peer_received_up_to: u64,
    },
    /// The connection to `peer` is gone; frames sent to it until the next `Connected` are lost.
    Disconnected {
        peer: PartyId,
    },
    Data {
        from: PartyId,
        seq: u64,
        payload: std::sync::Arc<[u8]>,
    },
    Ack {
        from: PartyId,
        up_to: u64,
    },
    /// `from` will never send `Data` with `seq <= up_to` again (`Inbox::skip_to`).
    Skip {
        from: PartyId,
        up_to: u64,
    },
    Control {
        from: PartyId,
        payload: std::sync::Arc<[u8]>,
    },
    /// `from` broke the link protocol; its connection is dropped.
    Fault {
        from: PartyId,
        kind: LinkFaultKind,
    },
}

/// Limits and timeouts every task reads.
#[derive(Debug, Clone)]
struct Settings {
    max_frame: usize,
    handshake_timeout: Duration,
    reconnect: Backoff,
    keepalive: Duration,
    idle_timeout: Duration,
    max_send_queue_bytes: usize,
}

/// The live connection to a peer, as the senders see it.
#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Frame>,
    /// Wire bytes queued in `tx` and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    /// Tells the connection's task to end (replaced, or its queue overflowed).
    stop: Arc<Notify>,
}

#[derive(Debug)]
struct Peer {
    id: PartyId,
    dial: String,
    /// What our node has accepted from this peer: sent in `Hello` and keepalives.
    received_up_to: AtomicU64,
    current: Mutex<Option<Conn>>,
    /// Serialises this peer's event emission with connection changes (the ordering promise).
    order: tokio::sync::Mutex<()>,
    counters: PeerCounters,
}

impl Peer {
    fn current(&self) -> MutexGuard<'_, Option<Conn>> {
        // The guarded sections never panic; a poisoned lock still holds a consistent value.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_current(&self, conn: u64) -> bool {
        self.current().as_ref().is_some_and(|c| c.id == conn)
    }
}

#[derive(Debug)]
struct Shared {
    me: PartyId,
    peers: BTreeMap<PartyId, Arc<Peer>>,
    events: mpsc::Sender<LinkEvent>,
    settings: Settings,
    refused: tls::RefusedCounters,
    failed_handshakes: AtomicU64,
    next_conn: AtomicU64,
}

/// The running links of one replica. Dropping it stops every task and closes every connection
/// (without `Disconnected` events).
#[derive(Debug)]
pub struct Links {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Links {
    /// Binds `config.listen` and starts accepting and dialling. Must be called within a Tokio
    /// runtime. `events` should be bounded: a slow node loop then slows the readers down.
    pub fn start(config: LinkConfig, events: mpsc::Sender<LinkEvent>) -> Result<Links, LinkError> {
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|source| LinkError::Bind { addr: config.listen, source })?;
        Links::start_with_listener(config, listener, events)
    }

    /// As [`Links::start`] on an already bound listener (`config.listen` is then ignored).
    pub fn start_with_listener(
        mut config: LinkConfig,
        listener: std::net::TcpListener,
        events: mpsc::Sender<LinkEvent>,
    ) -> Result<Links, LinkError> {
        let started = Links::start_inner(&mut config, listener, events);
        // Whatever happened, our copy of the key's DER is wiped (rustls holds the signing key).
        config.private_key.zeroize();
        started
    }

    fn start_inner(
        config: &mut LinkConfig,
        listener: std::net::TcpListener,
        events: mpsc::Sender<LinkEvent>,
    ) -> Result<Links, LinkError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime)?;
        check(config)?;
        let me = config.me;
        let refused = tls::RefusedCounters::default();
        let pins: Vec<(PartyId, Fingerprint)> = config.peers.iter().map(|p| (p.id, p.fingerprint)).collect();
        let chain = std::mem::take(&mut config.certificate_chain);
        let setup = tls::setup(me, &pins, chain, &config.private_key, &refused)?;

        listener.set_nonblocking(true).map_err(LinkError::Listener)?;
        let local_addr = listener.local_addr().map_err(LinkError::Listener)?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener).map_err(LinkError::Listener)?
        };

        let shared = Arc::new(Shared {
            me,
            peers: config
                .peers
                .iter()
                .map(|p| {
                    let peer = Peer {
                        id: p.id,
                        dial: p.dial.clone(),
                        received_up_to: AtomicU64::new(p.received_up_to),
                        current: Mutex::new(None),
                        order: tokio::sync::Mutex::new(()),
                        counters: PeerCounters::default(),
                    };
                    (p.id, Arc::new(peer))
                })
                .collect(),
            events,
            settings: Settings {
                max_frame: config.max_frame,
                handshake_timeout: config.handshake_timeout,
                reconnect: config.reconnect,
                keepalive: config.keepalive,
                idle_timeout: config.idle_timeout,
                max_send_queue_bytes: config.max_send_queue_bytes,
            },
            refused,
            failed_handshakes: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
        });

        let mut tasks = Vec::new();
        let acceptor = TlsAcceptor::from(setup.server);
        tasks.push(runtime.spawn(accept_loop(shared.clone(), listener, acceptor, setup.pinned)));
        for (id, client) in setup.clients {
            let Some(peer) = shared.peers.get(&id).cloned() else { continue };
            let name = tls::server_name(id)?;
            tasks.push(runtime.spawn(dial_loop(shared.clone(), peer, TlsConnector::from(client), name)));
        }
        tracing::info!(me, %local_addr, peers = shared.peers.len(), "replica links started");
        Ok(Links { shared, local_addr, tasks })
    }

    pub fn me(&self) -> PartyId {
        self.shared.me
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `frame` for `peer`'s current connection. Returns `false` if it was discarded: the
    /// peer is unknown or not connected, the frame is a `Hello` or above `max_frame`, or the
    /// connection's queue overflowed (the connection is then dropped; the outbox resends after
    /// the next `Connected`). Sending an `Ack` also records what goes into our next `Hello`.
    pub fn send(&self, peer: PartyId, frame: Frame) -> bool {
        self.send_frames(peer, [frame]) == 1
    }

    /// Queues several frames in order; returns how many were queued (all or a prefix).
    pub fn send_frames(&self, peer: PartyId, frames: impl IntoIterator<Item = Frame>) -> usize {
        let Some(p) = self.shared.peers.get(&peer) else {
            tracing::warn!(peer, "send to an unknown peer");
            return 0;
        };
        let settings = &self.shared.settings;
        let current = p.current();
        let mut queued = 0;
        for frame in frames {
            if let Frame::Ack { up_to } = frame {
                p.received_up_to.fetch_max(up_to, Ordering::Relaxed);
            }
            if matches!(frame, Frame::Hello { .. }) || frame.body_len() > settings.max_frame {
                tracing::warn!(
                    peer,
                    kind = frame.kind_name(),
                    len = frame.body_len(),
                    "frame not sendable (Hello, or above the frame limit): discarded"
                );
                bump(&p.counters.discarded_sends, 1);
                continue;
            }
            let Some(conn) = current.as_ref() else {
                bump(&p.counters.discarded_sends, 1);
                continue;
            };
            let len = frame.wire_len();
            let total = conn.queued.fetch_add(len, Ordering::Relaxed) + len;
            if total > settings.max_send_queue_bytes {
                conn.queued.fetch_sub(len, Ordering::Relaxed);
                bump(&p.counters.send_queue_overflows, 1);
                tracing::warn!(peer, queued = total, "peer is not reading its link: dropping the connection");
                conn.stop.notify_one();
                break;
            }
            if conn.tx.send(frame).is_err() {
                conn.queued.fetch_sub(len, Ordering::Relaxed);
                bump(&p.counters.discarded_sends, 1);
                continue;
            }
            queued += 1;
        }
        queued
    }

    /// Records what our node has accepted from `peer` (our next `Hello` and keepalives carry
    /// it). Call it only with what is durable: the peer may forget what it has acknowledged.
    pub fn set_received_up_to(&self, peer: PartyId, up_to: u64) {
        if let Some(p) = self.shared.peers.get(&peer) {
            p.received_up_to.store(up_to, Ordering::Relaxed);
        }
    }

    pub fn is_connected(&self, peer: PartyId) -> bool {
        self.shared.peers.get(&peer).is_some_and(|p| p.current().is_some())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            peers: self.shared.peers.values().map(|p| p.counters.snapshot(p.id, p.current().is_some())).collect(),
            refused_server_certificates: self.shared.refused.servers.load(Ordering::Relaxed),
            refused_client_certificates: self.shared.refused.clients.load(Ordering::Relaxed),
            failed_handshakes: self.shared.failed_handshakes.load(Ordering::Relaxed),
        }
    }

    /// Stops every task and waits until they are gone (the listening port is then free).
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // A cancelled task's JoinError is the expected outcome.
            let _ = task.await;
        }
        for peer in self.shared.peers.values() {
            peer.current().take();
        }
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Refuses configurations the tasks could not honour.
fn check(config: &LinkConfig) -> Result<(), LinkError> {
    if config.certificate_chain.is_empty() {
        return Err(LinkError::NoCertificate);
    }
    if config.max_frame < MIN_MAX_FRAME || config.max_frame > (u32::MAX as usize) {
        return Err(LinkError::MaxFrame(config.max_frame));
    }
    if config.max_send_queue_bytes < config.max_frame + LENGTH_PREFIX {
        return Err(LinkError::SendQueue(config.max_send_queue_bytes));
    }
    if config.keepalive.is_zero() || config.keepalive >= config.idle_timeout || config.handshake_timeout.is_zero() {
        return Err(LinkError::Timeouts);
    }
    let own = super::config::fingerprint(&config.certificate_chain[0]);
    let mut ids = std::collections::HashSet::new();
    let mut fingerprints = std::collections::HashMap::new();
    for p in &config.peers {
        if p.id == config.me {
            return Err(LinkError::SelfPeer(p.id));
        }
        if !ids.insert(p.id) {
            return Err(LinkError::DuplicatePeer(p.id));
        }
        if p.fingerprint == own {
            return Err(LinkError::DuplicateFingerprint { a: config.me, b: p.id });
        }
        if let Some(&other) = fingerprints.get(&p.fingerprint) {
            return Err(LinkError::DuplicateFingerprint { a: other, b: p.id });
        }
        fingerprints.insert(p.fingerprint, p.id);
    }
    Ok(())
}

/// Accepts connections from the replicas with lower ids.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    pinned: Arc<std::collections::HashMap<Fingerprint, PartyId>>,
) {
    let mut connections = JoinSet::new();
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    while !shared.events.is_closed() {
        while connections.try_join_next().is_some() {}
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // E.g. out of file descriptors: wait instead of spinning.
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many handshakes in progress: connection dropped");
            continue;
        };
        let (shared, acceptor, pinned) = (shared.clone(), acceptor.clone(), pinned.clone());
        connections.spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls = match timeout(shared.settings.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    // A refused certificate was counted and logged by the verifier.
                    bump(&shared.failed_handshakes, 1);
                    tracing::debug!(%remote, error = %e, "incoming TLS handshake failed");
                    return;
                }
                Err(_) => {
                    bump(&shared.failed_handshakes, 1);
                    tracing::debug!(%remote, "incoming TLS handshake timed out");
                    return;
                }
            };
            drop(permit);
            let id = tls::accepted_peer(shared.me, &pinned, tls.get_ref().1.peer_certificates());
            let Some(peer) = id.and_then(|id| shared.peers.get(&id)).cloned() else {
                // The verifier admitted only pinned lower-id certificates; this cannot happen.
                tracing::error!(%remote, "accepted a connection without a pinned certificate");
                return;
            };
            tracing::debug!(peer = peer.id, %remote, "peer connected to us");
            run_connection(&shared, &peer, tls).await;
        });
    }
}

/// Keeps a connection to one replica with a higher id, redialling with backoff.
async fn dial_loop(shared: Arc<Shared>, peer: Arc<Peer>, connector: TlsConnector, name: ServerName<'static>) {
    let mut backoff = BackoffState::new(shared.settings.reconnect);
    while !shared.events.is_closed() {
        if dial_once(&shared, &peer, &connector, &name).await {
            backoff.reset();
        }
        let delay = backoff.next_delay(&mut rand::thread_rng());
        tracing::trace!(peer = peer.id, ?delay, "redialling after a delay");
        tokio::time::sleep(delay).await;
    }
}

/// One connection attempt, run until the connection ends. Returns whether it was established.
async fn dial_once(shared: &Shared, peer: &Peer, connector: &TlsConnector, name: &ServerName<'static>) -> bool {
    let limit = shared.settings.handshake_timeout;
    let tcp = match timeout(limit, TcpStream::connect(peer.dial.as_str())).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            bump(&peer.counters.dial_failures, 1);
            tracing::debug!(peer = peer.id, dial = %peer.dial, error = %e, "dial failed");
            return false;
        }
        Err(_) => {
            bump(&peer.counters.dial_failures, 1);
            tracing::debug!(peer = peer.id, dial = %peer.dial, "dial timed out");
            return false;
        }
    };
    let _ = tcp.set_nodelay(true);
    let tls = match timeout(limit, connector.connect(name.clone(), tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            bump(&shared.failed_handshakes, 1);
            tracing::debug!(peer = peer.id, error = %e, "outgoing TLS handshake failed");
            return false;
        }
        Err(_) => {
            bump(&shared.failed_handshakes, 1);
            tracing::debug!(peer = peer.id, "outgoing TLS handshake timed out");
            return false;
        }
    };
    run_connection(shared, peer, tls).await
}

enum ReadError {
    Io(std::io::Error),
    Frame(FrameError),
    Idle,
}

/// Reads until the decoder yields a frame; `Ok(None)` on a clean close. With `idle`, gives up if
/// no byte at all arrives for that long (a frame may take longer, as long as bytes flow).
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    decoder: &mut FrameDecoder,
    chunk: &mut [u8],
    idle: Option<Duration>,
) -> Result<Option<Frame>, ReadError> {
    loop {
        if let Some(frame) = decoder.next_frame().map_err(ReadError::Frame)? {
            return Ok(Some(frame));
        }
        let n = match idle {
            Some(idle) => timeout(idle, rd.read(chunk)).await.map_err(|_| ReadError::Idle)?,
            None => rd.read(chunk).await,
        }
        .map_err(ReadError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        decoder.push(&chunk[..n]);
    }
}

fn fault_kind(e: &FrameError) -> LinkFaultKind {
    match e {
        FrameError::Oversized { .. } => LinkFaultKind::OversizedFrame,
        _ => LinkFaultKind::UndecodableFrame,
    }
}

/// Counts, logs and reports a fault of an authenticated peer.
async fn fault(shared: &Shared, peer: &Peer, kind: LinkFaultKind, detail: &str) {
    peer.counters.fault(kind);
    tracing::warn!(
        peer = peer.id,
        fault = kind.as_str(),
        detail,
        "peer broke the link protocol; dropping its connection"
    );
    // If the node loop is gone there is no one left to tell.
    let _ = shared.events.send(LinkEvent::Fault { from: peer.id, kind }).await;
}

/// Why a connection ended (for the log).
#[derive(Debug)]
enum End {
    Closed,
    // Read through `Debug` in the "link down" log line.
    #[allow(dead_code)]
    Io(std::io::Error),
    Idle,
    Fault,
    Stopped,
    NodeGone,
}

/// Runs an authenticated connection: `Hello` exchange, installation as the peer's current
/// connection, then reader and writer until either ends. Returns whether `Hello` succeeded.
async fn run_connection<S: AsyncRead + AsyncWrite + Unpin + Send>(shared: &Shared, peer: &Peer, stream: S) -> bool {
    let settings = &shared.settings;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut decoder = FrameDecoder::new(settings.max_frame);
    let mut chunk = vec![0u8; READ_CHUNK];

    let hello = Frame::Hello { received_up_to: peer.received_up_to.load(Ordering::Relaxed) };
    let exchange = async {
        let mut out = Vec::with_capacity(hello.wire_len());
        if hello.encode_into(&mut out).is_err() {
            return Err(ReadError::Frame(FrameError::Empty));
        }
        wr.write_all(&out).await.map_err(ReadError::Io)?;
        wr.flush().await.map_err(ReadError::Io)?;
        read_frame(&mut rd, &mut decoder, &mut chunk, None).await
    };
    let peer_received_up_to = match timeout(settings.handshake_timeout, exchange).await {
        Ok(Ok(Some(Frame::Hello { received_up_to }))) => received_up_to,
        Ok(Ok(Some(other))) => {
            fault(shared, peer, LinkFaultKind::UnexpectedFrame, &format!("{} frame before Hello", other.kind_name()))
                .await;
            return false;
        }
        Ok(Err(ReadError::Frame(e))) => {
            fault(shared, peer, fault_kind(&e), &e.to_string()).await;
            return false;
        }
        Ok(Ok(None)) | Ok(Err(ReadError::Io(_) | ReadError::Idle)) | Err(_) => {
            bump(&shared.failed_handshakes, 1);
            tracing::debug!(peer = peer.id, "connection closed or timed out before Hello");
            return false;
        }
    };
    bump(&peer.counters.frames_in, 1);
    bump(&peer.counters.bytes_in, (LENGTH_PREFIX + 9) as u64);
    bump(&peer.counters.frames_out, 1);
    bump(&peer.counters.bytes_out, hello.wire_len() as u64);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(Notify::new());
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    {
        let _order = peer.order.lock().await;
        let conn = Conn { id: conn_id, tx, queued: queued.clone(), stop: stop.clone() };
        let old = peer.current().replace(conn);
        if let Some(old) = old {
            // A newer connection replaces the older one (e.g. the peer restarted).
            old.stop.notify_one();
            bump(&peer.counters.disconnects, 1);
            tracing::info!(peer = peer.id, "newer connection replaces the older one");
            if shared.events.send(LinkEvent::Disconnected { peer: peer.id }).await.is_err() {
                return true;
            }
        }
        bump(&peer.counters.connects, 1);
        tracing::info!(peer = peer.id, peer_received_up_to, "link up");
        if shared.events.send(LinkEvent::Connected { peer: peer.id, peer_received_up_to }).await.is_err() {
            return true;
        }
    }

    let end = tokio::select! {
        end = read_loop(shared, peer, conn_id, &mut rd, &mut decoder, &mut chunk) => end,
        end = write_loop(shared, peer, &mut wr, &mut rx, &queued) => end,
        _ = stop.notified() => End::Stopped,
    };

    {
        let _order = peer.order.lock().await;
        let mine = {
            let mut current = peer.current();
            if current.as_ref().is_some_and(|c| c.id == conn_id) { current.take() } else { None }
        };
        if mine.is_some() {
            bump(&peer.counters.disconnects, 1);
            tracing::info!(peer = peer.id, reason = ?end, "link down");
            let _ = shared.events.send(LinkEvent::Disconnected { peer: peer.id }).await;
        } else {
            tracing::debug!(peer = peer.id, reason = ?end, "replaced connection closed");
        }
    }
    // Best effort close_notify; a peer that does not read must not hold us up.
    let _ = timeout(Duration::from_secs(1), wr.shutdown()).await;
    true
}

/// Turns frames from the peer into events, while this connection is the current one.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Shared,
    peer: &Peer,
    conn_id: u64,
    rd: &mut R,
    decoder: &mut FrameDecoder,
    chunk: &mut [u8],
) -> End {
    loop {
        let frame = match read_frame(rd, decoder, chunk, Some(shared.settings.idle_timeout)).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return End::Closed,
            Err(ReadError::Io(e)) => return End::Io(e),
            Err(ReadError::Idle) => return End::Idle,
            Err(ReadError::Frame(e)) => {
                fault(shared, peer, fault_kind(&e), &e.to_string()).await;
                return End::Fault;
            }
        };
        bump(&peer.counters.frames_in, 1);
        bump(&peer.counters.bytes_in, frame.wire_len() as u64);
        let from = peer.id;
        let event = match frame {
            Frame::Data { seq, payload } => LinkEvent::Data { from, seq, payload },
            Frame::Ack { up_to } => LinkEvent::Ack { from, up_to },
            Frame::Skip { up_to } => LinkEvent::Skip { from, up_to },
            Frame::Control { payload } => LinkEvent::Control { from, payload },
            Frame::Hello { .. } => {
                fault(shared, peer, LinkFaultKind::UnexpectedFrame, "second Hello").await;
                return End::Fault;
            }
        };
        // Under the order lock, so nothing from a replaced connection follows its Disconnected.
        // Waiting here while the node loop is busy is the backpressure on the peer.
        let _order = peer.order.lock().await;
        if !peer.is_current(conn_id) {
            return End::Stopped;
        }
        if shared.events.send(event).await.is_err() {
            return End::NodeGone;
        }
    }
}

/// Writes what the node queues, coalescing frames; sends a keepalive when idle.
async fn write_loop<W: AsyncWrite + Unpin>(
    shared: &Shared,
    peer: &Peer,
    wr: &mut W,
    rx: &mut mpsc::UnboundedReceiver<Frame>,
    queued: &AtomicUsize,
) -> End {
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    loop {
        let first = tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => {
                    queued.fetch_sub(frame.wire_len(), Ordering::Relaxed);
                    frame
                }
                None => return End::Stopped,
            },
            // Keepalive: an Ack of what we have is always true and lets the peer see we are alive.
            _ = tokio::time::sleep(shared.settings.keepalive) => {
                Frame::Ack { up_to: peer.received_up_to.load(Ordering::Relaxed) }
            }
        };
        buf.clear();
        let mut frames = 0u64;
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            // Frames were checked against `max_frame` (below u32::MAX) when queued.
            if frame.encode_into(&mut buf).is_ok() {
                frames += 1;
            }
            if buf.len() < WRITE_BATCH
                && let Ok(frame) = rx.try_recv()
            {
                queued.fetch_sub(frame.wire_len(), Ordering::Relaxed);
                next = Some(frame);
            }
        }
        if let Err(e) = wr.write_all(&buf).await {
            return End::Io(e);
        }
        if let Err(e) = wr.flush().await {
            return End::Io(e);
        }
        bump(&peer.counters.frames_out, frames);
        bump(&peer.counters.bytes_out, buf.len() as u64);
    }
}
