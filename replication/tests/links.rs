//! The replica links over real sockets on 127.0.0.1, with the certificates the dealer's ceremony
//! issues: authentication by pinned fingerprints only, ordered delivery, faults of an
//! authenticated peer, replacement of connections, reconnection with backoff and the `Hello`
//! counters, keepalives and the idle timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dealer::ceremony::{self, CeremonyParams};
use dealer::{hosts, layout};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use replication::runtime::link::{
    Accept, Frame, FrameDecoder, Inbox, LinkConfig, LinkConfigError, LinkEvent, LinkFaultKind, Links, Outbox,
    PeerConfig, fingerprint, parse_fingerprint,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use threshold::cluster::{ClusterFile, ReplicaConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

/// Small keys keep the ceremony fast (about a quarter of a second); the size is not tested here.
const TEST_BITS: u32 = 1024;
/// Generous bound on anything that should happen "soon" on a loaded 2-core machine.
const SOON: Duration = Duration::from_secs(10);

/// One replica's link material, as `LinkConfig::from_cluster` read it from the dealer's files.
struct Replica {
    id: usize,
    peers: Vec<PeerConfig>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

struct Dealt {
    _dir: tempfile::TempDir,
    out: std::path::PathBuf,
    cluster: ClusterFile,
    replicas: Vec<Replica>,
}

fn load_cluster(out: &Path) -> ClusterFile {
    let text = std::fs::read_to_string(out.join(layout::PUBLIC_DIR).join(layout::CLUSTER_JSON)).unwrap();
    threshold::encoding::from_json(&text).unwrap()
}

fn load_replica_config(dir: &Path) -> ReplicaConfig {
    toml::from_str(&std::fs::read_to_string(dir.join(layout::REPLICA_TOML)).unwrap()).unwrap()
}

/// Runs the dealer's ceremony for `n` replicas; different seeds give unrelated clusters.
fn deal(n: usize, t: usize, seed: u64) -> Dealt {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let params = CeremonyParams {
        n,
        t,
        name: "Link Test CA".into(),
        hosts: hosts::local_hosts(n, 20000).unwrap(),
        bits: TEST_BITS,
        out: out.clone(),
        names: Vec::new(),
    };
    ceremony::run(&params, TEST_BITS, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("ceremony");
    let cluster = load_cluster(&out);
    let replicas = (0..n)
        .map(|id| {
            let dir = layout::replica_dir(&out, id);
            let config = LinkConfig::from_cluster(&cluster, &load_replica_config(&dir), &dir).expect("link config");
            Replica { id, peers: config.peers, chain: config.certificate_chain, key: config.private_key }
        })
        .collect();
    Dealt { _dir: dir, out, cluster, replicas }
}

/// Loopback listeners on free ports, bound before any configuration refers to them.
fn listeners(count: usize) -> (Vec<std::net::TcpListener>, Vec<SocketAddr>) {
    let ls: Vec<_> = (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let addrs = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    (ls, addrs)
}

/// `replica`'s configuration with every peer dialled at `addrs[peer]` (a closed port for the
/// replicas a test does not run).
fn config(replica: &Replica, addrs: &[SocketAddr]) -> LinkConfig {
    let peers = replica.peers.iter().map(|p| PeerConfig { dial: addrs[p.id].to_string(), ..p.clone() }).collect();
    let mut config =
        LinkConfig::new(replica.id, addrs[replica.id], peers, replica.chain.clone(), replica.key.clone_key());
    config.handshake_timeout = Duration::from_secs(5);
    config
}

struct Endpoint {
    links: Links,
    events: mpsc::Receiver<LinkEvent>,
}

fn start(config: LinkConfig, listener: std::net::TcpListener) -> Endpoint {
    // Small on purpose: the readers must cope with a node loop that is behind.
    let (tx, events) = mpsc::channel(16);
    Endpoint { links: Links::start_with_listener(config, listener, tx).expect("links start"), events }
}

impl Endpoint {
    async fn next(&mut self) -> LinkEvent {
        timeout(SOON, self.events.recv()).await.expect("no link event in time").expect("links stopped")
    }

    /// The next event that is not an `Ack` (keepalives are Acks).
    async fn next_significant(&mut self) -> LinkEvent {
        loop {
            match self.next().await {
                LinkEvent::Ack { .. } => continue,
                event => return event,
            }
        }
    }

    /// Waits until connected to every peer in `peers`; returns each `peer_received_up_to`.
    async fn connected_to(&mut self, peers: &[usize]) -> Vec<(usize, u64)> {
        let mut seen = Vec::new();
        while seen.len() < peers.len() {
            match self.next_significant().await {
                LinkEvent::Connected { peer, peer_received_up_to } if peers.contains(&peer) => {
                    assert!(!seen.iter().any(|(p, _)| *p == peer), "connected twice to {peer}");
                    seen.push((peer, peer_received_up_to));
                }
                other => panic!("expected Connected, got {other:?}"),
            }
        }
        seen.sort();
        seen
    }

    /// Every non-Ack event within `period`.
    async fn events_for(&mut self, period: Duration) -> Vec<LinkEvent> {
        let deadline = tokio::time::Instant::now() + period;
        let mut events = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            if !matches!(event, LinkEvent::Ack { .. }) {
                events.push(event);
            }
        }
        events
    }

    /// Receives `count` Data events from `from` and checks they carry seqs `first..` in order.
    async fn expect_data(&mut self, from: usize, first: u64, count: u64) -> Vec<Arc<[u8]>> {
        let mut payloads = Vec::new();
        for seq in first..first + count {
            match self.next_significant().await {
                LinkEvent::Data { from: f, seq: s, payload } if f == from && s == seq => payloads.push(payload),
                other => panic!("expected Data {seq} from {from}, got {other:?}"),
            }
        }
        payloads
    }
}

fn payload(from: usize, to: usize, seq: u64, len: usize) -> Arc<[u8]> {
    let mut bytes = format!("{from}->{to}#{seq}:").into_bytes();
    bytes.resize(len.max(bytes.len()), (seq % 251) as u8);
    Arc::from(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dealer_certified_replicas_connect_and_exchange_data_in_order() {
    let dealt = deal(4, 1, 1);
    let (mut ls, addrs) = listeners(4);
    ls.truncate(2); // replicas 2 and 3 do not run: their ports are closed
    let l1 = ls.pop().unwrap();
    let l0 = ls.pop().unwrap();
    let mut e0 = start(config(&dealt.replicas[0], &addrs), l0);
    let mut e1 = start(config(&dealt.replicas[1], &addrs), l1);
    assert_eq!(e0.connected_to(&[1]).await, [(1, 0)]);
    assert_eq!(e1.connected_to(&[0]).await, [(0, 0)]);

    // Both directions at once, sizes from empty to 1 MiB, more frames than the event channel
    // holds (the readers wait for the test to catch up).
    let sizes = |seq: u64| if seq == 50 { 1 << 20 } else { (seq as usize * 37) % 3000 };
    for seq in 1..=200 {
        assert!(e0.links.send(1, Frame::Data { seq, payload: payload(0, 1, seq, sizes(seq)) }));
        assert!(e1.links.send(0, Frame::Data { seq, payload: payload(1, 0, seq, sizes(seq)) }));
    }
    assert!(e0.links.send(1, Frame::Control { payload: Arc::from(&b"status"[..]) }));
    assert!(e0.links.send(1, Frame::Ack { up_to: 200 }));
    assert!(e0.links.send(1, Frame::Skip { up_to: 3 }));
    let (got1, got0) = tokio::join!(e1.expect_data(0, 1, 200), e0.expect_data(1, 1, 200));
    for seq in 1..=200u64 {
        assert_eq!(got1[seq as usize - 1], payload(0, 1, seq, sizes(seq)));
        assert_eq!(got0[seq as usize - 1], payload(1, 0, seq, sizes(seq)));
    }
    assert_eq!(e1.next_significant().await, LinkEvent::Control { from: 0, payload: Arc::from(&b"status"[..]) });
    let mut acked = false;
    loop {
        match e1.next().await {
            LinkEvent::Ack { from: 0, up_to: 200 } => acked = true,
            LinkEvent::Skip { from: 0, up_to: 3 } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(acked);

    let stats = e0.links.stats();
    let to1 = stats.peer(1).unwrap();
    assert!(to1.connected);
    assert_eq!((to1.connects, to1.disconnects), (1, 0));
    assert!(to1.frames_out >= 204 && to1.frames_in >= 201, "{to1:?}");
    assert!(to1.bytes_out > 1 << 20 && to1.bytes_in > 1 << 20, "{to1:?}");
    assert!(to1.faults.iter().all(|(_, n)| *n == 0));
    assert!(!stats.peer(2).unwrap().connected);
    // Frames for a peer that is not connected are discarded (the outbox keeps what matters).
    assert!(!e0.links.send(2, Frame::Data { seq: 1, payload: payload(0, 2, 1, 10) }));
    assert_eq!(e0.links.stats().peer(2).unwrap().discarded_sends, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_form_a_full_mesh_and_each_pair_delivers_in_order() {
    let dealt = deal(4, 1, 2);
    let (ls, addrs) = listeners(4);
    let mut endpoints: Vec<Endpoint> =
        ls.into_iter().enumerate().map(|(i, l)| start(config(&dealt.replicas[i], &addrs), l)).collect();
    for (i, e) in endpoints.iter_mut().enumerate() {
        let others: Vec<usize> = (0..4).filter(|j| *j != i).collect();
        let connected = e.connected_to(&others).await;
        assert!(connected.iter().all(|(_, r)| *r == 0));
    }
    const COUNT: u64 = 50;
    for (i, e) in endpoints.iter().enumerate() {
        for j in (0..4).filter(|j| *j != i) {
            let frames = (1..=COUNT).map(|seq| Frame::Data { seq, payload: payload(i, j, seq, 100) });
            assert_eq!(e.links.send_frames(j, frames), COUNT as usize);
        }
    }
    for (j, e) in endpoints.iter_mut().enumerate() {
        let mut next = [1u64; 4];
        while next.iter().enumerate().any(|(i, n)| i != j && *n <= COUNT) {
            match e.next_significant().await {
                LinkEvent::Data { from, seq, payload: p } => {
                    assert_eq!(seq, next[from], "replica {j} got {from}'s messages out of order");
                    assert_eq!(p, payload(from, j, seq, 100));
                    next[from] += 1;
                }
                other => panic!("replica {j}: unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_the_dealer_did_not_issue_are_refused_and_legitimate_links_keep_working() {
    let dealt = deal(4, 1, 3);
    // Another ceremony: valid certificates and keys, but not this cluster's.
    let foreign = deal(4, 1, 4);
    let (mut ls, addrs) = listeners(4);
    let l3 = ls.pop().unwrap();
    let mut legit: Vec<Endpoint> =
        ls.into_iter().enumerate().map(|(i, l)| start(config(&dealt.replicas[i], &addrs), l)).collect();

    // Plays replica 3 at its address (the legitimate replicas dial it) with a foreign certificate.
    let impostor_3 = Replica {
        id: 3,
        peers: dealt.replicas[3].peers.clone(),
        chain: foreign.replicas[3].chain.clone(),
        key: foreign.replicas[3].key.clone_key(),
    };
    let mut fake_3 = start(config(&impostor_3, &addrs), l3);
    // Plays replica 0 (dials 1, 2 and 3) with a foreign certificate, from its own port.
    let impostor_0 = Replica {
        id: 0,
        peers: dealt.replicas[0].peers.clone(),
        chain: foreign.replicas[0].chain.clone(),
        key: foreign.replicas[0].key.clone_key(),
    };
    let (mut extra, mut fake_addrs) = listeners(1);
    fake_addrs.extend_from_slice(&addrs[1..]);
    let mut fake_0 = start(config(&impostor_0, &fake_addrs), extra.pop().unwrap());

    for (i, e) in legit.iter_mut().enumerate() {
        let others: Vec<usize> = (0..3).filter(|j| *j != i).collect();
        e.connected_to(&others).await;
    }
    // Give every dialer time for several attempts against the impostors.
    let deadline = Instant::now() + Duration::from_millis(1500);
    for e in legit.iter_mut() {
        let events = e.events_for(deadline.saturating_duration_since(Instant::now())).await;
        assert!(events.is_empty(), "legitimate replica saw {events:?}");
    }
    assert!(fake_3.events_for(Duration::from_millis(10)).await.is_empty());
    assert!(fake_0.events_for(Duration::from_millis(10)).await.is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await; // let refusals in flight finish

    for (i, e) in legit.iter().enumerate() {
        let stats = e.links.stats();
        // Each refused the fake replica 3 when dialling it (client side).
        assert!(stats.refused_server_certificates >= 1, "replica {i}: {stats:?}");
        assert!(!stats.peer(3).unwrap().connected);
        assert_eq!(stats.peer(3).unwrap().connects, 0);
        for j in (0..3).filter(|j| *j != i) {
            assert_eq!(stats.peer(j).unwrap().connects, 1, "replica {i}'s link to {j} was disturbed");
        }
    }
    // Replicas 1 and 2 refused the fake replica 0 (server side) and kept the real one.
    assert!(legit[1].links.stats().refused_client_certificates >= 1);
    assert!(legit[2].links.stats().refused_client_certificates >= 1);
    assert_eq!(fake_0.links.stats().peer(1).unwrap().connects, 0);
    fake_0.links.shutdown().await;
    assert!(legit[1].links.is_connected(0) && legit[2].links.is_connected(0));

    // A replica's genuine certificate with the wrong role: replica 2 may not dial replica 1.
    let before = legit[1].links.stats().refused_client_certificates;
    let mut raw = raw_client(&dealt.replicas[2], addrs[1]).await;
    assert!(read_until_closed(&mut raw).await, "a higher id's connection must be refused");
    assert_eq!(legit[1].links.stats().refused_client_certificates, before + 1);

    // The legitimate links still carry data.
    for seq in 1..=3 {
        legit[0].links.send(1, Frame::Data { seq, payload: payload(0, 1, seq, 10) });
        legit[0].links.send(2, Frame::Data { seq, payload: payload(0, 2, seq, 10) });
    }
    legit[1].expect_data(0, 1, 3).await;
    legit[2].expect_data(0, 1, 3).await;
    assert!(legit[1].events_for(Duration::from_millis(100)).await.is_empty());
}

/// Accepts any server certificate (the raw test client is the one misbehaving, not checking).
#[derive(Debug)]
struct AcceptAnyServer;

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// A hand-driven TLS client presenting `as_replica`'s dealer-issued certificate.
async fn raw_client(as_replica: &Replica, addr: SocketAddr) -> TlsStream<TcpStream> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer))
        .with_client_auth_cert(as_replica.chain.clone(), as_replica.key.clone_key())
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("peer.invalid").unwrap();
    timeout(SOON, tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp)).await.unwrap().unwrap()
}

async fn raw_send(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

/// The next frame the server sends that is not a keepalive `Ack`.
async fn raw_frame(stream: &mut TlsStream<TcpStream>, decoder: &mut FrameDecoder) -> Frame {
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(frame) = decoder.next_frame().unwrap() {
            if !matches!(frame, Frame::Ack { .. }) {
                return frame;
            }
        }
        let n = timeout(SOON, stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed while waiting for a frame");
        decoder.push(&chunk[..n]);
    }
}

/// Reads (discarding) until the server closes; `true` if it did within `SOON`.
async fn read_until_closed(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Connects as `as_replica`, reads the server's `Hello`, sends ours.
async fn raw_peer(as_replica: &Replica, addr: SocketAddr, received_up_to: u64) -> (TlsStream<TcpStream>, FrameDecoder) {
    let mut stream = raw_client(as_replica, addr).await;
    let mut decoder = FrameDecoder::new(1 << 20);
    assert!(matches!(raw_frame(&mut stream, &mut decoder).await, Frame::Hello { .. }));
    raw_send(&mut stream, &Frame::Hello { received_up_to }.encode().unwrap()).await;
    (stream, decoder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_or_oversized_frames_after_a_valid_handshake_are_faults_that_drop_the_connection() {
    let dealt = deal(4, 1, 5);
    let (mut ls, addrs) = listeners(4);
    let l1 = ls.swap_remove(1);
    let l0 = ls.swap_remove(0);
    drop(ls);
    let mut e1 = start(config(&dealt.replicas[1], &addrs), l1);
    let r0 = &dealt.replicas[0];

    // An unknown frame kind after Hello.
    let (mut raw, _) = raw_peer(r0, addrs[1], 0).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Connected { peer: 0, peer_received_up_to: 0 });
    raw_send(&mut raw, &[0, 0, 0, 2, 0xEE, 0]).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Fault { from: 0, kind: LinkFaultKind::UndecodableFrame });
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    assert!(read_until_closed(&mut raw).await);

    // A length prefix above the limit: refused from the prefix alone (nothing else is sent).
    let (mut raw, _) = raw_peer(r0, addrs[1], 0).await;
    assert!(matches!(e1.next_significant().await, LinkEvent::Connected { peer: 0, .. }));
    raw_send(&mut raw, &((replication::wire::MAX_MESSAGE_BYTES + 1) as u32).to_be_bytes()).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Fault { from: 0, kind: LinkFaultKind::OversizedFrame });
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    assert!(read_until_closed(&mut raw).await);

    // A Data frame instead of Hello: a fault, and never a Connected.
    let mut raw = raw_client(r0, addrs[1]).await;
    raw_send(&mut raw, &Frame::Data { seq: 1, payload: Arc::from(&b"x"[..]) }.encode().unwrap()).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Fault { from: 0, kind: LinkFaultKind::UnexpectedFrame });
    assert!(read_until_closed(&mut raw).await);

    // A second Hello on an established connection, then random bytes on another.
    let (mut raw, _) = raw_peer(r0, addrs[1], 0).await;
    assert!(matches!(e1.next_significant().await, LinkEvent::Connected { peer: 0, .. }));
    raw_send(&mut raw, &Frame::Hello { received_up_to: 1 }.encode().unwrap()).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Fault { from: 0, kind: LinkFaultKind::UnexpectedFrame });
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    let (mut raw, _) = raw_peer(r0, addrs[1], 0).await;
    assert!(matches!(e1.next_significant().await, LinkEvent::Connected { peer: 0, .. }));
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut junk = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rng, &mut junk);
    junk[..4].copy_from_slice(&60u32.to_be_bytes());
    junk[4] = 0x7F; // an unknown kind, so the outcome is deterministic
    raw_send(&mut raw, &junk).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Fault { from: 0, kind: LinkFaultKind::UndecodableFrame });
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });

    let faults = e1.links.stats().peer(0).unwrap().clone();
    assert_eq!(faults.faults_of(LinkFaultKind::UndecodableFrame), 2);
    assert_eq!(faults.faults_of(LinkFaultKind::OversizedFrame), 1);
    assert_eq!(faults.faults_of(LinkFaultKind::UnexpectedFrame), 2);

    // Nothing broke: the real replica 0 connects and delivers.
    let mut e0 = start(config(r0, &addrs), l0);
    e0.connected_to(&[1]).await;
    e1.connected_to(&[0]).await;
    e0.links.send(1, Frame::Data { seq: 1, payload: payload(0, 1, 1, 5) });
    e1.expect_data(0, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_from_the_same_peer_replaces_the_older_one() {
    let dealt = deal(4, 1, 6);
    let (mut ls, addrs) = listeners(4);
    let mut e1 = start(config(&dealt.replicas[1], &addrs), ls.swap_remove(1));
    drop(ls);
    let r0 = &dealt.replicas[0];

    let (mut first, _) = raw_peer(r0, addrs[1], 0).await;
    assert_eq!(e1.next_significant().await, LinkEvent::Connected { peer: 0, peer_received_up_to: 0 });
    let (mut second, mut decoder) = raw_peer(r0, addrs[1], 7).await;
    // The events stay paired: the old connection's end, then the new one.
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    assert_eq!(e1.next_significant().await, LinkEvent::Connected { peer: 0, peer_received_up_to: 7 });
    assert!(read_until_closed(&mut first).await, "the older connection is closed");

    // Traffic goes over the newer connection, both ways.
    assert!(e1.links.send(0, Frame::Data { seq: 8, payload: payload(1, 0, 8, 3) }));
    assert_eq!(raw_frame(&mut second, &mut decoder).await, Frame::Data { seq: 8, payload: payload(1, 0, 8, 3) });
    raw_send(&mut second, &Frame::Data { seq: 1, payload: payload(0, 1, 1, 3) }.encode().unwrap()).await;
    e1.expect_data(0, 1, 1).await;
    let stats = e1.links.stats();
    assert_eq!((stats.peer(0).unwrap().connects, stats.peer(0).unwrap().disconnects), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_is_disconnected_when_its_send_queue_overflows() {
    let dealt = deal(4, 1, 12);
    let (mut ls, addrs) = listeners(4);
    let mut small = config(&dealt.replicas[1], &addrs);
    small.max_frame = 4096;
    small.max_send_queue_bytes = 64 * 1024;
    let mut e1 = start(small, ls.swap_remove(1));
    drop(ls);

    // Completes the handshake, then never reads: the socket buffers fill, then the queue.
    let (_stuck, _) = raw_peer(&dealt.replicas[0], addrs[1], 0).await;
    assert!(matches!(e1.next_significant().await, LinkEvent::Connected { peer: 0, .. }));
    let mut sent = 0u64;
    let deadline = Instant::now() + SOON;
    while e1.links.send(0, Frame::Data { seq: sent + 1, payload: payload(1, 0, sent + 1, 4000) }) {
        sent += 1;
        assert!(Instant::now() < deadline, "{sent} frames queued without overflow");
        if sent.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    let stats = e1.links.stats();
    assert_eq!(stats.peer(0).unwrap().send_queue_overflows, 1);
    assert!(!stats.peer(0).unwrap().connected);
}

/// What a node loop does with the links for one direction of one pair (DESIGN.md §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_redialled_with_backoff_and_hello_carries_what_each_side_received() {
    let dealt = deal(4, 1, 7);
    let (mut ls, addrs) = listeners(4);
    let l1 = ls.swap_remove(1);
    let l0 = ls.swap_remove(0);
    drop(ls);
    let mut e0 = start(config(&dealt.replicas[0], &addrs), l0);
    let mut e1 = start(config(&dealt.replicas[1], &addrs), l1);
    e0.connected_to(&[1]).await;
    e1.connected_to(&[0]).await;

    // 0 -> 1 through an outbox; 1 accepts through its inbox and acknowledges.
    let mut outbox = Outbox::default();
    let mut inbox = Inbox::default();
    for i in 1..=5 {
        assert!(e0.links.send(1, outbox.push(None, payload(0, 1, i, 10))));
    }
    e1.expect_data(0, 1, 5).await;
    for seq in 1..=5 {
        assert_eq!(inbox.accept(seq), Accept::New);
    }
    e1.links.send(0, Frame::Ack { up_to: inbox.received_up_to() });
    loop {
        match e0.next().await {
            LinkEvent::Ack { from: 1, up_to: 5 } => break,
            LinkEvent::Ack { from: 1, .. } => continue, // a keepalive
            other => panic!("unexpected {other:?}"),
        }
    }
    outbox.ack(5);
    // 1 -> 0: two messages, which 0 acknowledges (that is what 0's next Hello will say).
    e1.links.send_frames(0, (1..=2).map(|seq| Frame::Data { seq, payload: payload(1, 0, seq, 10) }));
    e0.expect_data(1, 1, 2).await;
    e0.links.send(1, Frame::Ack { up_to: 2 });

    // Replica 1 crashes; 0 keeps sending into its outbox (the link discards the frames).
    let addr1 = e1.links.local_addr();
    e1.links.shutdown().await;
    assert_eq!(e0.next_significant().await, LinkEvent::Disconnected { peer: 1 });
    for i in 6..=8 {
        assert!(!e0.links.send(1, outbox.push(None, payload(0, 1, i, 10))));
    }
    let down = Duration::from_millis(1200);
    tokio::time::sleep(down).await;
    let failures = e0.links.stats().peer(1).unwrap().dial_failures;
    // 100 ms doubling with jitter: a handful of attempts in 1.2 s, not a busy loop, not none.
    assert!((2..=8).contains(&failures), "{failures} dial attempts failed while the peer was down");

    // Replica 1 restarts on the same port with its inbox restored.
    let mut restarted = config(&dealt.replicas[1], &addrs);
    restarted.peers.iter_mut().find(|p| p.id == 0).unwrap().received_up_to = inbox.received_up_to();
    let back = Instant::now();
    let mut e1 = start(restarted, std::net::TcpListener::bind(addr1).unwrap());
    assert_eq!(e0.connected_to(&[1]).await, [(1, 5)], "0 learns what 1 kept");
    assert_eq!(e1.connected_to(&[0]).await, [(0, 2)], "1 learns what 0 acknowledged");
    // The next dial comes within the current backoff step (at most 1.6 s after 1.2 s down).
    assert!(back.elapsed() < Duration::from_secs(4), "reconnected only after {:?}", back.elapsed());

    // 0 resends what 1 lacks; 1 gets each message once, in order.
    outbox.ack(5);
    let frames = outbox.resend_from(5);
    assert_eq!(frames.len(), 3);
    assert_eq!(e0.links.send_frames(1, frames), 3);
    let resent = e1.expect_data(0, 6, 3).await;
    for (i, p) in resent.iter().enumerate() {
        let seq = 6 + i as u64;
        assert_eq!(inbox.accept(seq), Accept::New);
        assert_eq!(*p, payload(0, 1, seq, 10));
    }
    let stats = e0.links.stats();
    assert_eq!((stats.peer(1).unwrap().connects, stats.peer(1).unwrap().disconnects), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_after_the_idle_timeout_while_keepalives_hold_quiet_links() {
    let dealt = deal(4, 1, 8);
    let (mut ls, addrs) = listeners(4);
    let l1 = ls.swap_remove(1);
    let l0 = ls.swap_remove(0);
    drop(ls);
    let quick = |replica: &Replica| {
        let mut c = config(replica, &addrs);
        c.keepalive = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(600);
        c
    };
    let mut e1 = start(quick(&dealt.replicas[1]), l1);

    // Completes the handshake, then says nothing (and reads nothing).
    let (_silent, _) = raw_peer(&dealt.replicas[0], addrs[1], 0).await;
    assert!(matches!(e1.next_significant().await, LinkEvent::Connected { peer: 0, .. }));
    let since = Instant::now();
    assert_eq!(e1.next_significant().await, LinkEvent::Disconnected { peer: 0 });
    assert!(since.elapsed() >= Duration::from_millis(500), "dropped after {:?}", since.elapsed());

    // Two real replicas with nothing to say stay connected: keepalives flow.
    let mut e0 = start(quick(&dealt.replicas[0]), l0);
    e0.connected_to(&[1]).await;
    e1.connected_to(&[0]).await;
    let mut keepalives = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1800);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, e1.events.recv()).await {
        match event {
            LinkEvent::Ack { from: 0, up_to: 0 } => keepalives += 1,
            other => panic!("a quiet link saw {other:?}"),
        }
    }
    assert!(keepalives >= 3, "{keepalives} keepalives");
    assert!(e0.links.is_connected(1) && e1.links.is_connected(0));
}

#[test]
fn link_config_from_the_dealer_files_pins_every_peer_and_checks_our_own_certificate() {
    let dealt = deal(4, 1, 10);
    let dir = layout::replica_dir(&dealt.out, 2);
    let replica = load_replica_config(&dir);
    let config = LinkConfig::from_cluster(&dealt.cluster, &replica, &dir).unwrap();
    assert_eq!(config.me, 2);
    assert_eq!(config.listen, replica.listen.peer.parse().unwrap());
    assert_eq!(config.peers.iter().map(|p| p.id).collect::<Vec<_>>(), [0, 1, 3]);
    for p in &config.peers {
        let info = &dealt.cluster.replicas[p.id];
        assert_eq!(Some(p.fingerprint), parse_fingerprint(&info.peer_certificate_sha256));
        assert_eq!(p.dial, format!("127.0.0.1:{}", info.peer_port));
        assert_eq!(p.received_up_to, 0);
    }
    assert_eq!(
        hex::encode(fingerprint(&config.certificate_chain[0])),
        dealt.cluster.replicas[2].peer_certificate_sha256
    );
    assert_eq!(config.max_frame, replication::wire::MAX_MESSAGE_BYTES);
    // The key is not in the Debug output.
    let shown = format!("{config:?}");
    assert!(!shown.contains(&format!("{:?}", config.private_key.secret_der())));

    // A replica.toml pointing at another replica's certificate is refused.
    let mut wrong = replica.clone();
    wrong.secrets.peer_certificate = format!("../replica-1/{}", layout::PEER_CERT);
    assert!(matches!(
        LinkConfig::from_cluster(&dealt.cluster, &wrong, &dir),
        Err(LinkConfigError::CertificateNotPinned { id: 2, .. })
    ));
    let mut missing = replica;
    missing.secrets.peer_key = "secrets/none.pem".into();
    assert!(matches!(LinkConfig::from_cluster(&dealt.cluster, &missing, &dir), Err(LinkConfigError::Io { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configurations_are_refused_before_anything_starts() {
    let dealt = deal(4, 1, 11);
    let (_ls, addrs) = listeners(4);
    let (tx, _rx) = mpsc::channel(1);
    let bad = |edit: &dyn Fn(&mut LinkConfig)| {
        let mut c = config(&dealt.replicas[0], &addrs);
        edit(&mut c);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Links::start_with_listener(c, listener, tx.clone()).err().map(|e| e.to_string())
    };
    assert!(bad(&|c| c.peers[0].id = 0).unwrap().contains("itself"));
    assert!(bad(&|c| c.peers[1].id = c.peers[0].id).unwrap().contains("twice"));
    assert!(bad(&|c| c.peers[1].fingerprint = c.peers[0].fingerprint).unwrap().contains("same certificate"));
    assert!(bad(&|c| c.max_frame = 8).unwrap().contains("max_frame"));
    assert!(bad(&|c| c.max_send_queue_bytes = c.max_frame).unwrap().contains("max_send_queue_bytes"));
    assert!(bad(&|c| c.keepalive = c.idle_timeout).unwrap().contains("keepalive"));
    assert!(bad(&|c| c.private_key = dealt.replicas[1].key.clone_key()).unwrap().contains("does not match"));
    assert!(bad(&|_| {}).is_none());
}
