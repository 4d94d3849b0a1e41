//! Four real replica processes (`ordering-node`) on 127.0.0.1, ordering opaque requests over
//! the runtime: identical logs; `kill -9` under load and restart with catch-up; a link cut by a
//! proxy the test controls and healed; a replica whose certificate the dealer did not issue is
//! refused; a peer sending garbage frames is logged and ignored.

use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ordering-node");
/// Small keys: the size is not what these tests are about.
const TEST_BITS: u32 = 1024;

/// A base port with `2n` free ports after it (HTTPS ports are not used here, peer ports are).
fn free_base(n: usize) -> u16 {
    // Outside the ephemeral port range, so no outgoing connection takes a stopped replica's port.
    hosts::free_local_base(n, rand::random()).expect("free ports outside the ephemeral range")
}

fn ceremony(out: &Path, n: usize, t: usize, base: u16, seed: u64) {
    let params = CeremonyParams {
        n,
        t,
        name: "Runtime Test CA".into(),
        hosts: hosts::local_hosts(n, base).expect("ports"),
        bits: TEST_BITS,
        out: out.to_path_buf(),
        names: Vec::new(),
    };
    ceremony::run(&params, TEST_BITS, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("ceremony");
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    accepted: Arc<AtomicUsize>,
}

struct Cluster {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ca: PathBuf,
    n: usize,
    base: u16,
    nodes: Vec<Option<Node>>,
}

impl Cluster {
    fn new(n: usize, t: usize) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let base = free_base(n);
        let ca = dir.join("ca");
        ceremony(&ca, n, t, base, 7);
        Cluster { _tmp: tmp, dir, ca, n, base, nodes: (0..n).map(|_| None).collect() }
    }

    fn config(&self, id: usize) -> PathBuf {
        self.ca.join(format!("replica-{id}/replica.toml"))
    }

    fn log_path(&self, id: usize) -> PathBuf {
        self.dir.join(format!("log-{id}.txt"))
    }

    fn peer_port(&self, id: usize) -> u16 {
        self.base + (self.n + id) as u16
    }

    fn start(&mut self, id: usize) {
        self.start_with(id, &self.config(id));
    }

    fn start_with(&mut self, id: usize, config: &Path) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.err")))
            .expect("stderr file");
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(self.dir.join(format!("data-{id}")))
            .arg("--out")
            .arg(self.log_path(id))
            .arg("--snapshot-every")
            .arg("300")
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start ordering-node");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("accepted ") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        self.nodes[id] = Some(Node { child, stdin, accepted });
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut node) = self.nodes[id].take() {
            let _ = node.child.kill(); // SIGKILL
            let _ = node.child.wait();
        }
    }

    fn submit(&mut self, id: usize, line: &str) {
        let node = self.nodes[id].as_mut().expect("running node");
        writeln!(node.stdin, "{line}").expect("write request");
        node.stdin.flush().expect("flush");
    }

    fn accepted(&self, id: usize) -> usize {
        self.nodes[id].as_ref().map(|n| n.accepted.load(Ordering::SeqCst)).unwrap_or(0)
    }

    /// The complete rounds of a replica's log.
    fn log(&self, id: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let last_end = lines.iter().rposition(|l| l.split_whitespace().nth(1) == Some("end"));
        match last_end {
            Some(i) => lines[..=i].to_vec(),
            None => Vec::new(),
        }
    }

    /// Payloads (decoded) delivered at a replica.
    fn payloads(&self, id: usize) -> BTreeSet<String> {
        self.log(id)
            .iter()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (fields.len() == 5).then(|| String::from_utf8(hex::decode(fields[4]).ok()?).ok()).flatten()
            })
            .collect()
    }

    fn stderr(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.err"))).unwrap_or_default()
    }

    /// Waits until every listed replica delivered every expected payload and their logs agree.
    fn wait_converged(&self, ids: &[usize], expected: &BTreeSet<String>, timeout: Duration) {
        let start = Instant::now();
        loop {
            let all = ids.iter().all(|id| self.payloads(*id).is_superset(expected));
            let logs: Vec<Vec<String>> = ids.iter().map(|id| self.log(*id)).collect();
            if all && logs.windows(2).all(|w| w[0] == w[1]) {
                return;
            }
            if start.elapsed() > timeout {
                for id in ids {
                    let missing = expected.difference(&self.payloads(*id)).count();
                    eprintln!("replica {id}: {} log lines, {missing} expected payloads missing", self.log(*id).len());
                    eprintln!("--- stderr of replica {id} (tail) ---\n{}", tail(&self.stderr(*id), 30));
                }
                panic!("replicas {ids:?} did not converge within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.n {
            self.kill(id);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn assert_identical(cluster: &Cluster, ids: &[usize]) {
    let first = cluster.log(ids[0]);
    assert!(!first.is_empty());
    for id in &ids[1..] {
        assert_eq!(cluster.log(*id), first, "replica {id}'s log differs from replica {}'s", ids[0]);
    }
}

#[test]
fn four_replicas_deliver_plain_and_sealed_requests_in_the_same_order() {
    let mut cluster = Cluster::new(4, 1);
    for id in 0..4 {
        cluster.start(id);
    }
    let mut expected = BTreeSet::new();
    for i in 0..60 {
        let text = format!("request-{i}");
        let kind = if i % 3 == 0 { "sealed" } else { "plain" };
        cluster.submit(i % 4, &format!("{kind} {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[0, 1, 2, 3], &expected, Duration::from_secs(60));
    assert_identical(&cluster, &[0, 1, 2, 3]);
    let sealed = cluster.log(0).iter().filter(|l| l.split_whitespace().nth(2) == Some("sealed")).count();
    assert_eq!(sealed, 20, "every sealed request is delivered opened");
}

#[test]
fn a_replica_killed_under_load_restarts_catches_up_and_agrees() {
    let mut cluster = Cluster::new(4, 1);
    for id in 0..4 {
        cluster.start(id);
    }
    let mut expected = BTreeSet::new();
    let mut next = 0;
    let mut submit_some = |cluster: &mut Cluster, count: usize, to: &[usize]| {
        for _ in 0..count {
            let text = format!("load-{next}");
            cluster.submit(to[next % to.len()], &format!("plain {text}"));
            expected.insert(text);
            next += 1;
        }
    };
    submit_some(&mut cluster, 150, &[0, 1, 2, 3]);
    // Only what replica 3 accepted (made durable) must survive its crash: wait for that, but
    // kill it while the others are still busy ordering.
    let start = Instant::now();
    while cluster.accepted(3) < 150 / 4 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster.kill(3);
    // The others keep ordering without it.
    submit_some(&mut cluster, 300, &[0, 1, 2]);
    std::thread::sleep(Duration::from_millis(500));
    cluster.start(3);
    submit_some(&mut cluster, 150, &[0, 1, 2, 3]);
    let expected_now = expected.clone();
    cluster.wait_converged(&[0, 1, 2, 3], &expected_now, Duration::from_secs(90));
    assert_identical(&cluster, &[0, 1, 2, 3]);
    // The second start (the last recovery line) replayed logged inputs.
    let stderr = cluster.stderr(3);
    let replayed = stderr
        .lines()
        .rfind(|l| l.contains("recovered replica state"))
        .and_then(|l| l.split("replayed=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(replayed.is_some_and(|n| n > 0), "the restarted replica recovered from its log: {replayed:?}");
}

/// A TCP proxy the test controls: forwards `listen` to `target` while `up`, and drops every
/// connection when taken down.
struct Proxy {
    up: Arc<AtomicBool>,
    generation: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(listen: u16, target: SocketAddr) -> Proxy {
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind(("127.0.0.1", listen)).expect("proxy listen");
        let (up2, generation2) = (up.clone(), generation.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let Ok(outbound) = TcpStream::connect(target) else {
                    continue;
                };
                let born = generation2.load(Ordering::SeqCst);
                for (from, to) in
                    [(inbound.try_clone(), outbound.try_clone()), (outbound.try_clone(), inbound.try_clone())]
                {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
                    let (up3, generation3) = (up2.clone(), generation2.clone());
                    std::thread::spawn(move || {
                        from.set_read_timeout(Some(Duration::from_millis(50))).ok();
                        let mut buf = [0u8; 16384];
                        loop {
                            if !up3.load(Ordering::SeqCst) || generation3.load(Ordering::SeqCst) != born {
                                let _ = from.shutdown(std::net::Shutdown::Both);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) => {
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                Ok(k) => {
                                    if to.write_all(&buf[..k]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        Proxy { up, generation }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_cut_link_heals_and_the_isolated_replica_catches_up() {
    let mut cluster = Cluster::new(4, 1);
    // Replica 3 listens elsewhere; its advertised peer port is the proxy's. Replica 3 dials
    // no one (it has the highest id), so every link to it crosses the proxy.
    let advertised = cluster.peer_port(3);
    let real = free_base(1);
    let config = cluster.config(3);
    let text = std::fs::read_to_string(&config).expect("replica.toml");
    let moved = text.replace(&format!("127.0.0.1:{advertised}"), &format!("127.0.0.1:{real}"));
    assert_ne!(moved, text, "replica.toml names the peer port");
    std::fs::write(&config, moved).expect("rewrite replica.toml");
    let proxy = Proxy::start(advertised, SocketAddr::from(([127, 0, 0, 1], real)));
    for id in 0..4 {
        cluster.start(id);
    }
    let mut expected = BTreeSet::new();
    for i in 0..40 {
        let text = format!("before-{i}");
        cluster.submit(i % 4, &format!("plain {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[0, 1, 2, 3], &expected, Duration::from_secs(60));

    proxy.cut();
    for i in 0..80 {
        let text = format!("during-{i}");
        cluster.submit(i % 3, &format!("plain {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[0, 1, 2], &expected, Duration::from_secs(60));
    assert!(!cluster.payloads(3).contains("during-0"), "the isolated replica cannot have ordered anything");

    proxy.heal();
    cluster.wait_converged(&[0, 1, 2, 3], &expected, Duration::from_secs(60));
    assert_identical(&cluster, &[0, 1, 2, 3]);
}

#[test]
fn a_replica_with_a_certificate_the_dealer_did_not_issue_is_refused() {
    let mut cluster = Cluster::new(4, 1);
    // A second ceremony with the same addresses: its replica 3 holds a certificate (and keys)
    // this cluster's dealer never issued.
    let foreign = cluster.dir.join("foreign");
    ceremony(&foreign, 4, 1, cluster.base, 99);
    for id in 0..3 {
        cluster.start(id);
    }
    cluster.start_with(3, &foreign.join("replica-3/replica.toml"));
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let text = format!("honest-{i}");
        cluster.submit(i % 3, &format!("plain {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[0, 1, 2], &expected, Duration::from_secs(60));
    assert!(cluster.payloads(3).is_empty(), "the impostor took part in nothing");
    // The honest replicas dial replica 3's address and refuse the certificate found there.
    let pinned_refusal = "its certificate is not the one the cluster pins for this replica";
    let refused = (0..3).filter(|id| cluster.stderr(*id).contains(pinned_refusal)).count();
    assert_eq!(refused, 3, "every honest replica refuses the impostor's certificate");
}

#[test]
fn garbage_frames_from_an_authenticated_peer_are_logged_and_the_others_progress() {
    let mut cluster = Cluster::new(4, 1);
    // Replica 0 is down; the test holds its certificate and sends replica 3 garbage with it.
    for id in 1..4 {
        cluster.start(id);
    }
    let ca = cluster.ca.clone();
    let port = cluster.peer_port(3);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sent = Arc::new(Mutex::new(0usize));
    let sent2 = sent.clone();
    let attacker = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if garbage_session(&ca, port).is_ok() {
                *sent2.lock().unwrap() += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let text = format!("amid-garbage-{i}");
        cluster.submit(1 + i % 3, &format!("plain {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[1, 2, 3], &expected, Duration::from_secs(60));
    // The cluster may converge before the first garbage session lands: wait for one, then make
    // sure the replicas still order what comes after it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while *sent.lock().unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "the garbage reached replica 3 over an authenticated link");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 30..40 {
        let text = format!("after-garbage-{i}");
        cluster.submit(1 + i % 3, &format!("plain {text}"));
        expected.insert(text);
    }
    cluster.wait_converged(&[1, 2, 3], &expected, Duration::from_secs(60));
    stop.store(true, Ordering::SeqCst);
    attacker.join().expect("attacker thread");
    assert!(cluster.stderr(3).contains("fault"), "replica 3 logs the garbage as a fault of the sender");
}

/// Connects to `port` as replica 0 (its dealer-issued certificate) and sends a frame whose
/// length prefix claims far more than the limit, then random bytes.
fn garbage_session(ca: &Path, port: u16) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let dir = ca.join("replica-0/secrets");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("peer-cert.pem"))
        .map_err(std::io::Error::other)?
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(dir.join("peer-key.pem")).map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer))
        .with_client_auth_cert(chain, key)
        .map_err(std::io::Error::other)?;
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?.to_owned();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let mut sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut garbage = vec![0xff, 0xff, 0xff, 0xf0];
    garbage.extend((0..512).map(|i| (i * 37 % 251) as u8));
    tls.write_all(&garbage)?;
    tls.flush()?;
    let mut buf = [0u8; 64];
    let _ = std::io::Read::read(&mut tls, &mut buf);
    Ok(())
}

/// The attacker does not care who it talks to.
#[derive(Debug)]
struct AcceptAnyServer;

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}
