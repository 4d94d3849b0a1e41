//! The daemon's wiring (the edge where I/O, tasks and clocks live): `run` starts one replica —
//! the replication runtime, the CA state machine on its SQLite database, the joint-signing
//! message pump, the ordering pace ([`pace`]) and the HTTPS API — and stops them gracefully on SIGTERM or Ctrl-C; `local`
//! ([`local`]) runs a whole cluster on this machine.

#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod child;
pub mod local;
pub mod pace;
pub mod tls;

use crate::apply::{RequestInput, RoundInput};
use crate::ca::{Ca, CaError, Outgoing};
use crate::config::CaConfig;
use crate::http::{AppState, Degraded, router};
use anyhow::{Context, Result};
use prometheus_client::registry::Registry;
use replication::runtime::files::ReplicaFiles;
use replication::runtime::{OrderedRound, Runtime, RuntimeConfig};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Share messages waiting for the links.
const OUTGOING_QUEUE: usize = 4096;

pub struct RunOptions {
    /// The replica's `replica.toml`.
    pub config: PathBuf,
    /// Where the replica keeps its state (default: `data/` beside `replica.toml`).
    pub data: Option<PathBuf>,
}

fn round_input(round: OrderedRound) -> RoundInput {
    RoundInput {
        round: round.round,
        time: round.time,
        seed: round.seed,
        requests: round
            .requests
            .into_iter()
            .map(|r| RequestInput { digest: r.digest, sealed: r.sealed, payload: r.payload })
            .collect(),
    }
}

/// The longest pause between attempts to apply a round while storage fails.
const STORAGE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Applies one round. While the database cannot be written (disk full, file made read-only...)
/// the replica pauses: it says why in `/healthz` and the log, and tries again, with growing
/// pauses, until the round is stored; nothing half-applied stays behind (one transaction per
/// round), so nothing is lost. Any other failure is returned: it would recur on every replay.
async fn apply_until_stored(ca: &Ca, degraded: &Degraded, round: RoundInput) -> Result<(), CaError> {
    let mut pause = Duration::from_millis(100);
    loop {
        let error = match ca.apply_round(round.clone()).await {
            Ok(_) => {
                degraded.clear();
                return Ok(());
            }
            Err(error @ (CaError::Store(_) | CaError::Poisoned)) => error,
            Err(error) => {
                tracing::error!(round = round.round, %error, "applying a round failed; stopping");
                degraded.set(format!("applying round {} failed: {error}", round.round));
                return Err(error);
            }
        };
        if degraded.reason().is_none() {
            tracing::error!(round = round.round, %error, "storage failed; applying is paused until it works again");
        }
        degraded.set(format!("storage failed applying round {}: {error}; retrying", round.round));
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(STORAGE_RETRY_MAX);
        if let Err(error) = ca.recover().await {
            tracing::debug!(%error, "the database cannot be read back yet");
        }
    }
}

/// Pending HTTPS connections the kernel queues.
const HTTPS_BACKLOG: u32 = 1024;

/// A socket bound to `addr` (with `SO_REUSEADDR`, as a listener's), not yet listening.
fn reserve_port(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// The port of a `host:port` listen address.
fn listen_port(address: &str) -> Option<u16> {
    address.rsplit_once(':').and_then(|(_, port)| port.parse().ok())
}

/// Warns about listen ports inside this machine's ephemeral port range: while the replica is
/// stopped, any outgoing connection can take such a port as its local port and hold it (for a
/// minute after it closes, in TIME_WAIT), so the restarted replica fails to bind it.
fn warn_about_ephemeral_ports(files: &ReplicaFiles) {
    let ephemeral = dealer::hosts::ephemeral_ports();
    for (listener, address) in [("https", &files.config.listen.https), ("peer", &files.config.listen.peer)] {
        if let Some(port) = listen_port(address)
            && ephemeral.contains(&port)
        {
            tracing::warn!(
                listener,
                port,
                range = ?ephemeral,
                "listen port inside the kernel's ephemeral port range (net.ipv4.ip_local_port_range): an outgoing \
                 connection can take it while the replica is stopped and make the restart fail to bind; choose a \
                 port outside the range or reserve it (net.ipv4.ip_local_reserved_ports)"
            );
        }
    }
}

/// Ctrl-C or SIGTERM (what `kill`, systemd and container runtimes send).
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// How this replica departs from the protocol: never, outside the test-only Byzantine replica.
#[cfg(feature = "byzantine")]
type Conduct = byzantine::Byzantine;
#[cfg(not(feature = "byzantine"))]
struct Conduct;

pub async fn run(options: RunOptions) -> Result<()> {
    #[cfg(feature = "byzantine")]
    let honest = Conduct::default();
    #[cfg(not(feature = "byzantine"))]
    let honest = Conduct;
    serve(options, honest).await
}

/// Runs a Byzantine replica (test only; see [`byzantine`]).
#[cfg(feature = "byzantine")]
pub async fn run_byzantine(options: RunOptions, conduct: byzantine::Byzantine) -> Result<()> {
    tracing::warn!(?conduct, "running as a BYZANTINE test replica");
    serve(options, conduct).await
}

async fn serve(options: RunOptions, conduct: Conduct) -> Result<()> {
    let _ = &conduct;
    let files = ReplicaFiles::load(&options.config)?;
    let id = files.config.id;
    let data = options.data.unwrap_or_else(|| files.dir.join("data"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data)
        .with_context(|| format!("creating the data folder {}", data.display()))?;

    warn_about_ephemeral_ports(&files);
    // The HTTPS port is taken now and listened on once the replica is ready: a port another
    // socket holds stops the start-up here, with the reason, instead of leaving a replica that
    // says it is ready and that no client can reach.
    let listen: SocketAddr = files.config.listen.https.parse().with_context(|| {
        format!("replica.toml: listen.https {:?} is not a socket address", files.config.listen.https)
    })?;
    let https_socket = reserve_port(listen).with_context(|| format!("binding the HTTPS listener on {listen}"))?;

    let ca_config = CaConfig::load(&options.config, data.join("ca.sqlite"))?;
    // Bounded: share traffic a peer provokes cannot grow memory; what is dropped when full is
    // asked for again by the periodic re-requests.
    let (outgoing_tx, mut outgoing) = mpsc::channel::<Outgoing>(OUTGOING_QUEUE);
    let ca = Ca::open(ca_config, Arc::new(outgoing_tx)).await.context("opening the CA state")?;

    let mut registry = Registry::default();
    let mut runtime_config = RuntimeConfig::new(&options.config, data.join("replication"));
    // Rounds the database has not applied are handed over again.
    runtime_config.resume_from = ca.next_round();
    #[cfg(feature = "byzantine")]
    {
        runtime_config.misbehaviour = conduct.protocol.clone();
    }
    let (runtime, outputs) = Runtime::start(runtime_config, &mut registry).await.context("starting replication")?;
    let runtime = Arc::new(runtime);
    let degraded = Arc::new(Degraded::default());

    let mut rounds = outputs.rounds;
    let apply = {
        let (ca, degraded) = (ca.clone(), degraded.clone());
        tokio::spawn(async move {
            while let Some(round) = rounds.recv().await {
                apply_until_stored(&ca, &degraded, round_input(round)).await?;
            }
            Ok::<(), CaError>(())
        })
    };
    let mut messages = outputs.messages;
    let incoming = {
        let ca = ca.clone();
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                if let Err(e) = ca.handle_message(message.from, &message.payload).await {
                    tracing::warn!(peer = message.from, error = %e, "peer message not handled");
                }
            }
        })
    };
    let pump = {
        let runtime = runtime.clone();
        #[cfg(feature = "byzantine")]
        let bad_rsa_shares = conduct.bad_rsa_shares;
        tokio::spawn(async move {
            while let Some(out) = outgoing.recv().await {
                #[cfg(feature = "byzantine")]
                let out = match bad_rsa_shares {
                    true => Outgoing { to: out.to, payload: byzantine::tamper_shares(out.payload) },
                    false => out,
                };
                runtime.send_app(out.to, out.payload).await;
            }
        })
    };
    // This replica's shares, off the apply path: rounds go on being applied (and ordered) while
    // the shares of earlier ones are computed.
    let signing = {
        let ca = ca.clone();
        tokio::spawn(async move {
            loop {
                ca.signing_work().await;
                if let Err(e) = ca.sign_pending().await {
                    tracing::warn!(error = %e, "computing signature shares failed; the periodic work retries");
                }
            }
        })
    };
    let pace = tokio::spawn(pace::follow(runtime.clone(), ca.watch_pace_backlog()));
    // The links' state as the runtime publishes it (at once when a link comes up or drops): a
    // view a second old had every peer down for the first second, so each replica signed and
    // combined everything itself.
    let links = {
        let ca = ca.clone();
        let mut status = runtime.watch_status();
        let parties = files.cluster.n;
        tokio::spawn(async move {
            loop {
                let mut down = vec![false; parties];
                for peer in &status.borrow_and_update().peers {
                    if let Some(is_down) = down.get_mut(peer.id) {
                        *is_down = !peer.connected;
                    }
                }
                ca.set_links_down(&down).await;
                if status.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let ticker = {
        let ca = ca.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            loop {
                interval.tick().await;
                if let Err(e) = ca.tick().await {
                    tracing::warn!(error = %e, "periodic signing work failed");
                }
            }
        })
    };

    let tls = tls::server_config(
        &files.path(&files.config.secrets.https_certificate),
        &files.path(&files.config.secrets.https_key),
    )?;
    let state = AppState {
        ca: ca.clone(),
        runtime: runtime.clone(),
        cluster: Arc::new(files.cluster.clone()),
        registry: Arc::new(registry),
        degraded: degraded.clone(),
    };
    #[cfg(feature = "byzantine")]
    if conduct.forged_requests {
        tokio::spawn(byzantine::submit_forged_requests(ca.clone(), runtime.clone(), Duration::from_millis(300)));
    }
    let app = router(state);
    #[cfg(feature = "byzantine")]
    let app = match conduct.forged_http {
        true => app.layer(axum::middleware::from_fn(byzantine::forge_responses)),
        false => app,
    };
    let listener = https_socket
        .listen(HTTPS_BACKLOG)
        .and_then(|listener| listener.into_std())
        .with_context(|| format!("listening for HTTPS on {listen}"))?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
        .with_context(|| format!("listening for HTTPS on {listen}"))?
        .handle(handle.clone())
        .serve(app.into_make_service());
    tracing::info!(replica = id, %listen, "replica ready");
    let server = tokio::spawn(server);

    let mut apply = apply;
    let mut apply_ended = false;
    let result = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        applied = &mut apply => {
            apply_ended = true;
            match applied {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("applying the ordered log")),
                Err(e) => Err(anyhow::anyhow!("the apply task failed: {e}")),
            }
        }
    };
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    let _ = server.await;
    // Stop applying first (a round is one transaction: one cut short is delivered again after
    // the restart), then the message tasks, so nothing holds the runtime any more.
    // A finished task's handle must not be awaited again.
    if !apply_ended {
        apply.abort();
        let _ = apply.await;
    }
    for task in [incoming, signing, pump, pace, links, ticker] {
        task.abort();
        let _ = task.await;
    }
    match Arc::try_unwrap(runtime) {
        Ok(runtime) => runtime.shutdown().await.context("stopping replication")?,
        Err(_) => tracing::warn!("replication still in use at shutdown; its log makes stopping it abruptly safe"),
    }
    ca.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_ports_are_read_from_ipv4_ipv6_and_name_addresses() {
        assert_eq!(listen_port("127.0.0.1:8440"), Some(8440));
        assert_eq!(listen_port("[::1]:443"), Some(443));
        assert_eq!(listen_port("ca1.example.com:7000"), Some(7000));
        assert_eq!(listen_port("no port"), None);
    }

    #[tokio::test]
    async fn a_reserved_https_port_is_held_from_the_start_and_serves_once_listened_on() {
        let socket = reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        // Held while the replica starts up: a socket bound without SO_REUSEADDR (as an outgoing
        // connection's local port is) cannot take it...
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        other.set_reuseaddr(false).unwrap();
        assert!(other.bind(addr).is_err());
        // ...and clients are refused at once rather than left waiting for a server.
        assert!(std::net::TcpStream::connect(addr).is_err());
        let listener = socket.listen(HTTPS_BACKLOG).unwrap();
        let client = tokio::net::TcpStream::connect(addr);
        let (accepted, connected) = tokio::join!(listener.accept(), client);
        assert!(accepted.is_ok() && connected.is_ok());
    }

    #[test]
    fn a_port_another_socket_holds_cannot_be_reserved() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        assert!(reserve_port(addr).is_err());
        // The same for the local port of an open outgoing connection.
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let (_accepted, _) = held.accept().unwrap();
        assert!(reserve_port(stream.local_addr().unwrap()).is_err());
    }
}
