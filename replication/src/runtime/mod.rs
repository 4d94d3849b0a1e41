//! The networked runtime (DESIGN.md §5): the only part of `replication` that does I/O. It runs
//! one replica's secure causal atomic broadcast over mutually authenticated TLS links, logs every
//! input before the messages it causes leave (write-ahead), restores its state after a crash,
//! fetches and verifies rounds it missed, and hands ordered requests to the application.
//!
//! [`Runtime::start`] is what an application (the CA server, or the test node in
//! `src/bin/ordering-node.rs`) embeds: requests go in with [`Runtime::submit`], ordered rounds
//! come out of the returned channel, status and Prometheus metrics are published.

mod append;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod control;
pub mod files;
pub mod link;
pub mod metrics;
mod node;
mod pause;
pub mod rounds;
pub mod snapshot;
pub mod status;
pub mod wal;

pub use node::NodeLimits;
pub use status::{PeerStatus, Status};

use crate::InstanceId;
use crate::atomic::broadcast::AbcConfig;
use crate::atomic::secure::{OrderedRequest, Request};
use files::{FilesError, ReplicaFiles};
use link::{LinkConfig, LinkConfigError, LinkError};
use node::{Node, NodeInput, NodeParts};
use prometheus_client::registry::Registry;
use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use zeroize::Zeroizing;

/// The instance id of the CA's ordering service (every signed protocol statement names it).
const ORDERING_INSTANCE: u64 = 1;

/// How often the node loop reads the clock, sends status and considers fetching rounds.
const TICK: Duration = Duration::from_millis(100);

/// Longest wait for the node to say whether it knows a request (it answers between two groups
/// of inputs; a wait this long means it is stuck on its disk).
pub const KNOWS_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The replica's `replica.toml` as the dealer wrote it.
    pub replica_toml: PathBuf,
    /// Where the log, snapshots and delivered rounds live (created 0700 if missing).
    pub data_dir: PathBuf,
    pub abc: AbcConfig,
    pub limits: NodeLimits,
    /// The first round the application has not applied: rounds before it are not handed out
    /// again after a restart, rounds from it on are (from the round store, then live).
    pub resume_from: u64,
    /// Test only: what this replica does to the protocol messages it sends.
    #[cfg(feature = "byzantine")]
    pub misbehaviour: byzantine::Misbehaviour,
}

impl RuntimeConfig {
    pub fn new(replica_toml: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            replica_toml: replica_toml.into(),
            data_dir: data_dir.into(),
            abc: AbcConfig::default(),
            limits: NodeLimits::default(),
            resume_from: 0,
            #[cfg(feature = "byzantine")]
            misbehaviour: byzantine::Misbehaviour::default(),
        }
    }
}

/// One delivered round, as the application sees it: the same at every honest replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedRound {
    pub round: u64,
    /// Agreed time (ms since the Unix epoch), monotonic over rounds.
    pub time: u64,
    /// Agreed random seed (from the threshold coin): unpredictable before the round's order was fixed.
    pub seed: [u8; 32],
    pub requests: Vec<OrderedRequest>,
}

/// A best-effort message from a peer's application (see [`Runtime::send_app`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMessage {
    pub from: crate::PartyId,
    pub payload: Vec<u8>,
}

/// What a started runtime hands the application.
pub struct Outputs {
    /// Delivered rounds, in order; the application must keep draining it.
    pub rounds: mpsc::Receiver<OrderedRound>,
    /// Messages from the peers' applications.
    pub messages: mpsc::Receiver<AppMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("{queued} of this replica's requests are waiting to be ordered; try again shortly")]
    Busy { queued: usize },
    #[error("the request is {len} bytes; at most {max} are ordered")]
    TooLarge { len: usize, max: usize },
    #[error("the replica is shutting down")]
    Stopped,
    #[error("the replica cannot accept requests now: {reason}")]
    Paused { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error(transparent)]
    Rounds(#[from] rounds::RoundStoreError),
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotFileError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    LinkConfig(#[from] LinkConfigError),
    #[error("data folder {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("the snapshot does not restore: {0}")]
    Restore(String),
    #[error("write-ahead log record {0} does not decode")]
    LogRecord(u64),
    #[error("stored round {0} does not decode")]
    StoredRound(u64),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("the application stopped taking delivered rounds")]
    ApplicationGone,
    #[error("the node loop stopped unexpectedly")]
    NodeStopped,
    #[error("asked to stop while paused on a storage fault")]
    StoppedWhilePaused,
}

impl RuntimeError {
    /// A storage write that may work later (a full disk...): the node pauses and retries it.
    /// Never a failed fsync (see `AppendFile::sync`).
    fn retryable(&self) -> bool {
        match self {
            RuntimeError::Wal(e) => e.retryable(),
            RuntimeError::Rounds(e) => e.retryable(),
            _ => false,
        }
    }
}

/// A running replica runtime.
pub struct Runtime {
    inputs: mpsc::Sender<NodeInput>,
    status: watch::Receiver<Status>,
    /// Ends a pause on a storage fault (the node takes no input meanwhile, not even `Shutdown`).
    stop: Arc<AtomicBool>,
    node: Option<std::thread::JoinHandle<Result<(), RuntimeError>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn data_dir(path: &Path) -> Result<(), RuntimeError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| RuntimeError::DataDir { path: path.into(), source })
}

/// The seed of the node's deterministic randomness: created once, kept 0600, so a replayed
/// input gets the same randomness it got the first time.
fn rng_seed(dir: &Path) -> Result<[u8; 32], RuntimeError> {
    let path = dir.join("rng-seed");
    let err = |source| RuntimeError::DataDir { path: path.clone(), source };
    match std::fs::read(&path).map(Zeroizing::new) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| err(std::io::Error::other("rng-seed must hold exactly 32 bytes"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(err)?;
            file.write_all(&seed).and_then(|_| file.sync_all()).map_err(err)?;
            Ok(seed)
        }
        Err(e) => Err(err(e)),
    }
}

impl Runtime {
    /// Loads the replica's files, recovers its state from the data folder, connects to the
    /// peers and starts ordering. Returns the runtime and its outputs (delivered rounds, which
    /// the application must keep draining, and peer messages). Metrics are registered in
    /// `registry`.
    pub async fn start(config: RuntimeConfig, registry: &mut Registry) -> Result<(Runtime, Outputs), RuntimeError> {
        let files = ReplicaFiles::load(&config.replica_toml)?;
        let info = Arc::new(files.network_info()?);
        let link_config = LinkConfig::from_cluster(&files.cluster, &files.config, &files.dir)?;
        data_dir(&config.data_dir)?;
        let seed = rng_seed(&config.data_dir)?;
        let metrics = Arc::new(metrics::Metrics::new(registry));
        let (deliver_tx, deliver_rx) = mpsc::channel(1024);
        let (app_tx, app_rx) = mpsc::channel(4096);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let stop = Arc::new(AtomicBool::new(false));
        let parts = NodeParts {
            info,
            instance: InstanceId::root(ORDERING_INSTANCE),
            abc: config.abc,
            dir: config.data_dir.clone(),
            rng_seed: seed,
            limits: config.limits.clone(),
            deliver_to: deliver_tx,
            app_to: app_tx,
            resume_from: config.resume_from,
            #[cfg(feature = "byzantine")]
            misbehaviour: config.misbehaviour.clone(),
            metrics,
            status: status_tx,
            stop: stop.clone(),
        };
        // Replaying the log is CPU work: off the async threads.
        let mut node = tokio::task::spawn_blocking(move || Node::recover(parts))
            .await
            .map_err(|_| RuntimeError::NodeStopped)??;
        let (input_tx, input_rx) = mpsc::channel(8192);
        let (link_tx, mut link_rx) = mpsc::channel(1024);
        node.connect(link_config, link_tx)?;
        let forward = {
            let inputs = input_tx.clone();
            tokio::spawn(async move {
                while let Some(event) = link_rx.recv().await {
                    if inputs.send(NodeInput::Link(event)).await.is_err() {
                        return;
                    }
                }
            })
        };
        let ticker = {
            let inputs = input_tx.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(TICK);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    // A full queue already wakes the node; a dropped tick costs nothing.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = inputs.try_send(NodeInput::Tick) {
                        return;
                    }
                }
            })
        };
        let node = std::thread::Builder::new()
            .name(format!("replica-{}-node", files.config.id))
            .spawn(move || {
                let result = node.run(input_rx);
                if let Err(e) = &result {
                    tracing::error!(error = %e, "node loop stopped");
                }
                result
            })
            .map_err(|source| RuntimeError::DataDir { path: config.data_dir.clone(), source })?;
        let runtime =
            Runtime { inputs: input_tx, status: status_rx, stop, node: Some(node), tasks: vec![forward, ticker] };
        Ok((runtime, Outputs { rounds: deliver_rx, messages: app_rx }))
    }

    /// Submits a request for ordering. `Ok` means it is durably accepted by this replica (it
    /// will be disseminated and ordered even if this replica crashes now and restarts); the
    /// value is the request's digest, which its [`OrderedRequest`] carries when delivered.
    /// While the node is paused on a storage fault, submissions are refused at once rather than
    /// left waiting for the disk.
    pub async fn submit(&self, request: Request) -> Result<[u8; 32], SubmitError> {
        let paused = {
            let status = self.status.borrow();
            status.paused.then(|| status.storage.clone().unwrap_or_default())
        };
        if let Some(reason) = paused {
            return Err(SubmitError::Paused { reason });
        }
        let (reply, answer) = oneshot::channel();
        self.inputs.send(NodeInput::Submit { request, reply }).await.map_err(|_| SubmitError::Stopped)?;
        answer.await.map_err(|_| SubmitError::Stopped)?
    }

    /// Whether the request with this digest reached this replica: accepted here, disseminated
    /// to it, or delivered in the rounds it remembers. `None` when the node cannot say now
    /// (paused on a storage fault, stopped, or not answering within [`KNOWS_WAIT`]).
    pub async fn knows(&self, digest: [u8; 32]) -> Option<bool> {
        if self.status.borrow().paused {
            return None;
        }
        let ask = async {
            let (reply, answer) = oneshot::channel();
            self.inputs.send(NodeInput::Knows { digest, reply }).await.ok()?;
            answer.await.ok()
        };
        tokio::time::timeout(KNOWS_WAIT, ask).await.ok().flatten()
    }

    /// Sends a message to one peer's application, or to all (`None`). Best effort: it is lost
    /// if the link is down or the receiver is busy, so the application must ask again for what
    /// it still needs.
    pub async fn send_app(&self, to: Option<crate::PartyId>, payload: Vec<u8>) {
        let _ = self.inputs.send(NodeInput::App { to, payload }).await;
    }

    /// Tells the ordering whether the application is behind: while held, this replica starts a
    /// round only when `t+1` others have (it joins those), so requests pile up into larger
    /// rounds instead of many small ones each paying an agreement's fixed cost. The state is
    /// logged when it changes; call it again after a restart, which keeps the last one logged.
    pub async fn hold(&self, held: bool) {
        let _ = self.inputs.send(NodeInput::Hold(held)).await;
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status update.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Stops the node loop after its current group (which is made durable first) and closes
    /// the links.
    pub async fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.inputs.send(NodeInput::Shutdown).await;
        let result = match self.node.take() {
            Some(node) => tokio::task::spawn_blocking(move || node.join())
                .await
                .map_err(|_| RuntimeError::NodeStopped)?
                .map_err(|_| RuntimeError::NodeStopped)?,
            None => Ok(()),
        };
        for task in &self.tasks {
            task.abort();
        }
        result
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}
