//! A fault-injecting TCP proxy the test controls, on 127.0.0.1 only: it forwards to one target
//! and can be cut (every connection closed, new ones refused), healed, or made faulty.
//!
//! This kernel has no `netem` qdisc (`tc qdisc add ... netem` answers "Specified qdisc kind is
//! unknown"), so delay and loss are injected here. A byte stream cannot lose bytes, so loss is
//! modelled by what it costs a TCP connection: a chunk held back for a retransmission timeout,
//! and now and then a connection reset that the link layer must recover from (reconnect and
//! resend from its outbox).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How a link behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forwards as fast as it can.
    Up,
    /// Every connection closed, new ones closed at once.
    Cut,
    /// Every chunk delayed by `delay` plus up to `jitter`; with probability `loss` a chunk is held
    /// `stall` more (a lost segment's retransmission), with probability `reset` the connection
    /// is torn down.
    Faulty { delay: Duration, jitter: Duration, loss: f64, stall: Duration, reset: f64 },
}

impl Mode {
    /// The campaign's lossy link: every chunk 20 ms late plus up to 40 ms of jitter, a 5 % chance
    /// of a 300 ms stall (a lost segment's retransmission), a 0.2 % chance of a reset.
    pub const LOSSY: Mode = Mode::Faulty {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(40),
        loss: 0.05,
        stall: Duration::from_millis(300),
        reset: 0.002,
    };
}

struct State {
    mode: Mode,
    /// Bumped on every cut: connections of an older generation close.
    generation: u64,
    rng: ChaCha20Rng,
    /// Connections torn down by an injected reset.
    resets: u64,
}

/// One proxied link. Dropping it does not stop its tasks; they end with the test's runtime.
pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Listens on a fresh 127.0.0.1 port and forwards to `target`.
    pub fn start(rt: &tokio::runtime::Runtime, target: SocketAddr, seed: u64) -> Proxy {
        assert!(target.ip().is_loopback(), "the proxy only ever addresses loopback");
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("proxy listen");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Up,
            generation: 0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            resets: 0,
        }));
        let shared = state.clone();
        rt.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let (mode, born) = {
                    let state = shared.lock().expect("proxy state");
                    (state.mode, state.generation)
                };
                if mode == Mode::Cut {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(target).await else { continue };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let dead = Arc::new(AtomicBool::new(false));
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(pump(in_read, out_write, shared.clone(), born, dead.clone()));
                tokio::spawn(pump(out_read, in_write, shared.clone(), born, dead));
            }
        });
        Proxy { port, state }
    }

    pub fn set(&self, mode: Mode) {
        let mut state = self.state.lock().expect("proxy state");
        if mode == Mode::Cut {
            state.generation += 1;
        }
        state.mode = mode;
    }

    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    pub fn heal(&self) {
        self.set(Mode::Up);
    }

    /// Connections this proxy tore down by an injected reset.
    pub fn resets(&self) -> u64 {
        self.state.lock().expect("proxy state").resets
    }
}

/// Copies one direction until either side closes, the link is cut, or a reset is injected (which
/// closes both directions: the shared `dead` flag).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: Arc<Mutex<State>>,
    born: u64,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // A short read timeout so a cut or a reset is noticed on an idle connection too.
        let read = tokio::time::timeout(Duration::from_millis(100), from.read(&mut buf)).await;
        let (hold, reset) = {
            let mut state = state.lock().expect("proxy state");
            if state.generation != born || dead.load(Ordering::SeqCst) {
                dead.store(true, Ordering::SeqCst);
                return;
            }
            match (state.mode, &read) {
                (Mode::Faulty { delay, jitter, loss, stall, reset }, Ok(Ok(k))) if *k > 0 => {
                    let jitter_ms = state.rng.gen_range(0..=jitter.as_millis() as u64);
                    let mut hold = delay + Duration::from_millis(jitter_ms);
                    if state.rng.gen_bool(loss) {
                        hold += stall;
                    }
                    let reset = state.rng.gen_bool(reset);
                    state.resets += u64::from(reset);
                    (hold, reset)
                }
                _ => (Duration::ZERO, false),
            }
        };
        match read {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(k)) => {
                if reset {
                    dead.store(true, Ordering::SeqCst);
                    return;
                }
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                if to.write_all(&buf[..k]).await.is_err() {
                    dead.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// The key of the link between `i` and `j` in [`proxy_every_link`]'s map.
pub fn link(i: usize, j: usize) -> (usize, usize) {
    (i.min(j), i.max(j))
}

/// Cuts (`up = false`) or heals every link between `id` and the other replicas.
pub fn isolate(proxies: &std::collections::BTreeMap<(usize, usize), Proxy>, id: usize, up: bool) {
    for ((i, j), proxy) in proxies {
        if *i == id || *j == id {
            proxy.set(if up { Mode::Up } else { Mode::Cut });
        }
    }
}

/// Routes every replica-to-replica link through its own proxy: the lower id dials (see
/// `replication::runtime::link`), so the link between `i < j` is what replica `i`'s copy of
/// `cluster.json` names as `j`'s peer port. That entry is pointed at a proxy forwarding to `j`'s
/// real port. Returns the proxies by pair `(i, j)`, `i < j`.
pub fn proxy_every_link(
    replicas: &super::cluster::Replicas,
    seed: u64,
) -> std::collections::BTreeMap<(usize, usize), Proxy> {
    let mut proxies = std::collections::BTreeMap::new();
    for i in 0..replicas.n {
        for j in i + 1..replicas.n {
            let real = replicas.cluster.replicas[j].peer_port;
            let proxy = Proxy::start(
                &replicas.rt,
                SocketAddr::from(([127, 0, 0, 1], real)),
                seed ^ ((i * 16 + j) as u64).wrapping_mul(0x2545_f491),
            );
            let port = proxy.port;
            super::cluster::edit_json(&replicas.replica_dir(i).join("cluster.json"), |cluster| {
                cluster["data"]["replicas"][j]["peer_port"] = serde_json::json!(port);
            });
            proxies.insert((i, j), proxy);
        }
    }
    proxies
}
