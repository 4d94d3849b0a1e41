//! A cluster of real `ca-server run` processes for the fault campaigns: dealing, starting and
//! `kill -9`, a pinned HTTPS view of each replica, a concurrent request load that records what
//! each replica accepted, and the checks every campaign ends with (every accepted request settled
//! at every replica, identical logs, tree heads and certificates).
//!
//! Each test binary uses a different part of this harness, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ca_api::AccountSecret;
use ca_api::api::{CertificateInfo, CertificateList, Entries, Health, RequestState, RequestStatus, SignedTreeHead};
use ca_api::command::{CaRequest, Command as CaCommand, SignedCommand, new_nonce};
use ca_client::keys::{KeyType, PrivateKey};
use ca_client::request::prepare;
use ca_client::transport::{HttpRequest, HttpsTransport, Reply, Transport};
use ca_client::verify::Root;
use dealer::ceremony::{self, CeremonyParams};
use dealer::hosts::HostSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use threshold::cluster::ClusterFile;

/// Small keys: the key size is not what these campaigns are about.
pub const TEST_BITS: u32 = 1024;

/// `ITCA_CAMPAIGN=full` runs the long campaign; anything else the CI slice.
pub fn full_campaign() -> bool {
    std::env::var("ITCA_CAMPAIGN").is_ok_and(|v| v == "full")
}

/// The seed of a run: `ITCA_SEED` to replay one, else fresh. Printed so a failure can be replayed.
pub fn campaign_seed(test: &str) -> u64 {
    let seed = match std::env::var("ITCA_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => seed,
        None => rand::thread_rng().r#gen(),
    };
    eprintln!("{test}: seed {seed} (replay with ITCA_SEED={seed})");
    seed
}

/// The replicas of one dealt cluster, stopped (SIGKILL, reaped) when the test ends however it
/// ends. On a panic the folder (keys, logs, databases) is kept and its path printed.
pub struct Replicas {
    tmp: Option<tempfile::TempDir>,
    pub ca: PathBuf,
    pub n: usize,
    pub t: usize,
    server: PathBuf,
    children: Vec<Option<Child>>,
    /// A command each replica is run under (e.g. `ip netns exec NS`), empty for none.
    wrappers: Vec<Vec<String>>,
    /// The program and arguments a replica runs instead of `ca-server run` (e.g. the Byzantine
    /// test replica), `None` for `ca-server run`.
    programs: Vec<Option<(PathBuf, Vec<String>)>>,
    pub rt: tokio::runtime::Runtime,
    transport: Arc<HttpsTransport>,
    pub operator: Arc<AccountSecret>,
    pub cluster: ClusterFile,
    pub root: Root,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for id in 0..self.n {
            self.kill(id);
        }
        if std::thread::panicking()
            && let Some(tmp) = self.tmp.take()
        {
            eprintln!("kept the failed run's folder: {}", tmp.keep().display());
        }
    }
}

impl Replicas {
    /// Runs a small ceremony for `hosts` (seeded) and prepares, but does not start, the replicas.
    pub fn deal(hosts: Vec<HostSpec>, t: usize, seed: u64) -> Replicas {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let ca = tmp.path().join("ca");
        let n = hosts.len();
        let params = CeremonyParams {
            n,
            t,
            name: "Fault Campaign CA".into(),
            hosts,
            bits: TEST_BITS,
            out: ca.clone(),
            names: dealer::policy::default_profile_names(&[], true).expect("names"),
        };
        ceremony::run(&params, TEST_BITS, &mut ChaCha20Rng::seed_from_u64(seed), &mut |_| {}).expect("ceremony");
        let cluster_path = ca.join("public/cluster.json");
        let (cluster, root) = ca_client::client::load_cluster(&cluster_path).expect("cluster.json");
        let transport = HttpsTransport::new(&cluster, &root, Duration::from_secs(5)).expect("HTTPS client");
        let pem = std::fs::read_to_string(ca.join("operator/account-key.pem")).expect("operator key");
        let operator = AccountSecret::from_pkcs8_pem(&pem).expect("operator key parses");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        Replicas {
            tmp: Some(tmp),
            ca,
            n,
            t,
            server: super::server_binary(),
            children: (0..n).map(|_| None).collect(),
            wrappers: vec![Vec::new(); n],
            programs: vec![None; n],
            rt,
            transport: Arc::new(transport),
            operator: Arc::new(operator),
            cluster,
            root,
        }
    }

    /// Four replicas on 127.0.0.1.
    pub fn local(seed: u64) -> Replicas {
        Replicas::loopback(4, 1, seed)
    }

    /// `n` replicas tolerating `t` on 127.0.0.1.
    pub fn loopback(n: usize, t: usize, seed: u64) -> Replicas {
        let hosts = dealer::hosts::local_hosts(n, super::free_base_port(n)).expect("hosts");
        Replicas::deal(hosts, t, seed)
    }

    /// The test's folder (the ceremony's `ca/` is in it); the run's own files may go there too.
    pub fn folder(&self) -> &Path {
        self.ca.parent().expect("the ceremony folder is inside the test folder")
    }

    pub fn replica_dir(&self, id: usize) -> PathBuf {
        self.ca.join(format!("replica-{id}"))
    }

    pub fn cluster_path(&self) -> PathBuf {
        self.ca.join("public/cluster.json")
    }

    /// Replica `id` is started as `WRAPPER... ca-server run ...`.
    pub fn set_wrapper(&mut self, id: usize, wrapper: Vec<String>) {
        self.wrappers[id] = wrapper;
    }

    /// Replica `id` is started (and restarted) as `PROGRAM ARGS... --config ...` instead of
    /// `ca-server run --config ...`.
    pub fn set_program(&mut self, id: usize, program: PathBuf, args: Vec<String>) {
        self.programs[id] = Some((program, args));
    }

    pub fn is_running(&self, id: usize) -> bool {
        self.children[id].is_some()
    }

    /// Starts replica `id` (its log appended to `replica-<id>/server.log`). The replica gets a
    /// parent-death signal, so it dies with the test thread even if the test process is killed.
    pub fn start(&mut self, id: usize) {
        assert!(self.children[id].is_none(), "replica {id} is already running");
        let dir = self.replica_dir(id);
        let log = File::options().create(true).append(true).open(dir.join("server.log")).expect("log file");
        let (program, args) = self.programs[id].clone().unwrap_or_else(|| (self.server.clone(), vec!["run".into()]));
        let wrapper = &self.wrappers[id];
        let mut command = match wrapper.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut command = Command::new(wrapper);
                command.args(wrapper_args).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command
            .args(&args)
            .arg("--config")
            .arg(dir.join("replica.toml"))
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        ca_server::server::child::die_with_parent(&mut command);
        self.children[id] = Some(command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", program.display())));
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_all(&mut self) {
        for id in 0..self.n {
            self.start(id);
        }
    }

    /// One exchange with replica `id`, pinned to its certificate.
    pub fn send(&self, id: usize, request: HttpRequest) -> Option<Reply> {
        let transport = self.transport.clone();
        self.rt.block_on(async move { transport.send(id, request).await.ok() })
    }

    pub fn get_json<T: serde::de::DeserializeOwned>(&self, id: usize, path: &str) -> Option<T> {
        let reply = self.send(id, HttpRequest::get(path))?;
        if reply.status != 200 {
            return None;
        }
        serde_json::from_slice(&reply.body).ok()
    }

    pub fn health(&self, id: usize) -> Option<Health> {
        self.get_json(id, "/healthz")
    }

    /// `/healthz` with its status code, also when degraded (503, with the reason).
    pub fn health_reply(&self, id: usize) -> Option<(u16, Health)> {
        let reply = self.send(id, HttpRequest::get("/healthz"))?;
        Some((reply.status, serde_json::from_slice(&reply.body).ok()?))
    }

    /// Replica `id`'s log file (`server.log`) as written so far.
    pub fn log(&self, id: usize) -> String {
        std::fs::read_to_string(self.replica_dir(id).join("server.log")).unwrap_or_default()
    }

    pub fn sth(&self, id: usize) -> Option<SignedTreeHead> {
        self.get_json(id, "/v1/audit/sth")
    }

    pub fn request_status(&self, id: usize, request: &str) -> Option<RequestStatus> {
        self.get_json(id, &format!("/v1/requests/{request}"))
    }

    /// [`Replicas::request_status`] for many (replica, request) pairs, 32 at a time: a campaign
    /// checks thousands.
    pub fn request_statuses(&self, queries: &[(usize, String)]) -> Vec<Option<RequestStatus>> {
        use futures_util::StreamExt;
        let transport = self.transport.clone();
        self.rt.block_on(
            futures_util::stream::iter(queries.iter().cloned())
                .map(|(id, request)| {
                    let transport = transport.clone();
                    async move {
                        let reply =
                            transport.send(id, HttpRequest::get(format!("/v1/requests/{request}"))).await.ok()?;
                        if reply.status != 200 {
                            return None;
                        }
                        serde_json::from_slice::<RequestStatus>(&reply.body).ok()
                    }
                })
                .buffered(32)
                .collect::<Vec<_>>(),
        )
    }

    /// Every certificate replica `id` lists, page by page.
    pub fn certificates(&self, id: usize) -> Option<Vec<CertificateInfo>> {
        let mut all = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let from = after.map_or(String::new(), |a| format!("&after={a}"));
            let page: CertificateList = self.get_json(id, &format!("/v1/certificates?limit=1000{from}"))?;
            all.extend(page.certificates);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Some(all),
            }
        }
    }

    /// The log's leaves `0..size` at replica `id` (base64, as served).
    pub fn leaves(&self, id: usize, size: u64) -> Option<Vec<String>> {
        let mut leaves = Vec::with_capacity(size as usize);
        let mut start = 0;
        while start < size {
            let end = (start + 999).min(size - 1);
            let page: Entries = self.get_json(id, &format!("/v1/audit/entries?start={start}&end={end}"))?;
            if page.entries.len() as u64 != end - start + 1 {
                return None;
            }
            leaves.extend(page.entries.into_iter().map(|e| e.leaf));
            start = end + 1;
        }
        Some(leaves)
    }

    pub fn wait_healthy(&self, ids: &[usize], timeout: Duration) {
        let started = Instant::now();
        while !ids.iter().all(|id| self.health(*id).is_some_and(|h| h.status == "ok")) {
            if started.elapsed() > timeout {
                panic!("replicas {ids:?} not all healthy within {timeout:?}\n{}", self.logs(25));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `lines` lines of every replica's log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        (0..self.n)
            .map(|id| {
                let text = self.log(id);
                let all: Vec<&str> = text.lines().collect();
                format!("--- replica {id} ---\n{}", all[all.len().saturating_sub(lines)..].join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until each of `ids` has applied at least `size` entries (a load may keep running, so
    /// their logs need not be equal at any one moment); returns the largest size seen.
    pub fn wait_applied(&self, ids: &[usize], size: u64, timeout: Duration) -> u64 {
        let started = Instant::now();
        loop {
            let sizes: Vec<Option<u64>> = ids.iter().map(|id| self.health(*id).map(|h| h.log_size)).collect();
            if sizes.iter().all(|s| s.is_some_and(|s| s >= size)) {
                return sizes.iter().flatten().copied().max().unwrap_or(0);
            }
            assert!(
                started.elapsed() < timeout,
                "replicas {ids:?} did not all reach {size} entries within {timeout:?}: {sizes:?}\n{}",
                self.logs(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops `load`, then waits until every request it got accepted has settled at every replica
    /// of `ids` and their logs are one; prints the totals after `what`.
    pub fn settle_and_converge(&self, load: Load, ids: &[usize], what: &str) -> Settled {
        let accepted = load.stop(self);
        let (issued, refused) = self.wait_all_settled(&accepted, ids, settle_time(accepted.len(), 120));
        let size = self.wait_converged(ids, accepted.len() as u64, Duration::from_secs(90));
        eprintln!(
            "{what}: {} accepted, {issued} issued and {refused} refused with a reason at replicas {ids:?}; one log of {size} entries",
            accepted.len()
        );
        Settled { accepted, issued, refused, size }
    }

    /// Each replica's applied log size (`None` when it does not answer).
    pub fn log_sizes(&self) -> Vec<Option<u64>> {
        (0..self.n).map(|id| self.health(id).map(|h| h.log_size)).collect()
    }

    /// No divergence: of any two replicas' logs, the shorter is a prefix of the longer.
    /// Replicas that do not answer are skipped. Returns the longest size seen.
    pub fn assert_prefix_consistent(&self, ids: &[usize]) -> u64 {
        let logs: Vec<(usize, Vec<String>)> = ids
            .iter()
            .filter_map(|id| {
                let size = self.health(*id)?.log_size;
                Some((*id, self.leaves(*id, size)?))
            })
            .collect();
        for (a, left) in &logs {
            for (b, right) in &logs {
                let common = left.len().min(right.len());
                if let Some(at) = (0..common).find(|i| left[*i] != right[*i]) {
                    panic!("replicas {a} and {b} diverge at log index {at}");
                }
            }
        }
        logs.iter().map(|(_, l)| l.len() as u64).max().unwrap_or(0)
    }

    /// Waits until replicas `ids` have applied the same log of at least `min_size` entries, signed
    /// the same tree head for it, and hold identical leaves. Returns the size.
    pub fn wait_converged(&self, ids: &[usize], min_size: u64, timeout: Duration) -> u64 {
        let started = Instant::now();
        loop {
            let heads: Vec<Option<SignedTreeHead>> = ids.iter().map(|id| self.sth(*id)).collect();
            let sizes: Vec<Option<u64>> = ids.iter().map(|id| self.health(*id).map(|h| h.log_size)).collect();
            let same_head = heads[0].is_some() && heads.iter().all(|h| h == &heads[0]);
            let size = heads[0].as_ref().map_or(0, |h| h.tree_size);
            if same_head && size >= min_size && sizes.iter().all(|s| *s == Some(size)) {
                let logs: Vec<Option<Vec<String>>> = ids.iter().map(|id| self.leaves(*id, size)).collect();
                if logs[0].is_some() && logs.iter().all(|l| l == &logs[0]) {
                    return size;
                }
                // Same signed head, different leaves: a divergence, not a delay.
                panic!("replicas {ids:?} signed the same tree head of size {size} but serve different leaves");
            }
            if started.elapsed() > timeout {
                let heads: Vec<String> = heads
                    .iter()
                    .map(|h| h.as_ref().map_or("none".into(), |h| format!("{}:{}", h.tree_size, &h.root_hash[..12])))
                    .collect();
                panic!(
                    "replicas {ids:?} did not converge to one log of at least {min_size} entries within {timeout:?}: \
                     tree heads {heads:?}, applied sizes {sizes:?}\n{}",
                    self.logs(30)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every request in `accepted` has settled at every replica in `ids` as the load expected it
    /// to (issued and signed, or refused with a reason), with the same outcome everywhere.
    /// Returns (issued, refused).
    pub fn wait_all_settled(&self, accepted: &[Accepted], ids: &[usize], timeout: Duration) -> (usize, usize) {
        let started = Instant::now();
        let mut open: Vec<(usize, usize)> =
            (0..accepted.len()).flat_map(|i| ids.iter().map(move |id| (i, *id))).collect();
        let mut outcomes: BTreeMap<usize, BTreeMap<usize, String>> = BTreeMap::new();
        while !open.is_empty() {
            let queries: Vec<(usize, String)> = open.iter().map(|(i, id)| (*id, accepted[*i].id.clone())).collect();
            let mut statuses = self.request_statuses(&queries).into_iter();
            open.retain(|(i, id)| {
                let request = &accepted[*i];
                let Some(status) = statuses.next().flatten() else { return true };
                let outcome = match status.state {
                    RequestState::Pending => return true,
                    RequestState::Issued => match (&status.serial, &status.certificate_chain_pem) {
                        (Some(serial), Some(chain)) => format!("issued {serial} {chain}"),
                        // Ordered and applied, the joint signature still under way.
                        _ => return true,
                    },
                    RequestState::Refused => match &status.refusal {
                        Some(refusal) if !refusal.code.is_empty() && !refusal.message.is_empty() => {
                            format!("refused {}", refusal.code)
                        }
                        other => panic!("replica {id} refused {} without a reason: {other:?}", request.id),
                    },
                    other => panic!("replica {id}: request {} ended {other:?}, not issued or refused", request.id),
                };
                let expected = if request.allowed { "issued " } else { "refused name_not_allowed" };
                assert!(
                    outcome.starts_with(expected),
                    "replica {id}: request {} (accepted by replica {}) ended {:?}, expected {expected:?}",
                    request.id,
                    request.replica,
                    outcome.lines().next()
                );
                outcomes.entry(*i).or_default().insert(*id, outcome);
                false
            });
            if open.is_empty() {
                break;
            }
            if started.elapsed() > timeout {
                let sample: Vec<String> = open
                    .iter()
                    .take(10)
                    .map(|(i, id)| {
                        format!("{} (accepted by {}) at replica {id}", accepted[*i].id, accepted[*i].replica)
                    })
                    .collect();
                panic!(
                    "{} of {} (request, replica) pairs never settled within {timeout:?}, e.g. {sample:#?}\n{}",
                    open.len(),
                    accepted.len() * ids.len(),
                    self.logs(30)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let (mut issued, mut refused) = (0, 0);
        for (i, by_replica) in &outcomes {
            let first = by_replica.values().next().expect("an outcome");
            for (id, outcome) in by_replica {
                assert_eq!(outcome, first, "request {} ended differently at replica {id}", accepted[*i].id);
            }
            if first.starts_with("issued") { issued += 1 } else { refused += 1 }
        }
        (issued, refused)
    }
}

/// What [`Replicas::settle_and_converge`] found.
#[derive(Debug)]
pub struct Settled {
    pub accepted: Vec<Accepted>,
    pub issued: usize,
    pub refused: usize,
    /// The size of the one log the replicas converged to.
    pub size: u64,
}

/// A request some replica accepted (answered 200 or 202 with its id).
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Hex request id.
    pub id: String,
    /// The replica that accepted it (the only one it was sent to).
    pub replica: usize,
    /// Whether the policy allows its name (else the log must refuse it with a reason).
    pub allowed: bool,
}

/// A concurrent stream of issuance requests, each sent to one replica chosen at random among
/// `targets`: the strongest case for "accepted means not lost", since the replica that accepted
/// it may be the next one killed. One in five names a host the policy does not allow, sealed so
/// it cannot be refused before ordering: the log must refuse it with a reason.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub accepted: Arc<Mutex<Vec<Accepted>>>,
    pub attempts: Arc<AtomicU64>,
    pub targets: Arc<Mutex<Vec<usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `workers` concurrent submitters, each pausing up to `pause` between requests.
    pub fn start(replicas: &Replicas, workers: usize, pause: Duration, seed: u64) -> Load {
        let every: Vec<usize> = (0..replicas.n).collect();
        Load::start_on(replicas, &every, workers, pause, seed)
    }

    /// Like [`Load::start`], sending only to `targets` from the first request on (e.g. only the
    /// honest replicas: what a Byzantine replica accepts it may drop).
    pub fn start_on(replicas: &Replicas, targets: &[usize], workers: usize, pause: Duration, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicU64::new(0));
        let targets = Arc::new(Mutex::new(targets.to_vec()));
        let tasks = (0..workers)
            .map(|worker| {
                let (stop, accepted, attempts, targets) =
                    (stop.clone(), accepted.clone(), attempts.clone(), targets.clone());
                let transport = replicas.transport.clone();
                let operator = replicas.operator.clone();
                let encryption = replicas.cluster.encryption.clone();
                replicas.rt.spawn(async move {
                    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9));
                    let mut sequence = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        sequence += 1;
                        let allowed = rng.gen_ratio(4, 5);
                        let name = if allowed {
                            format!("w{worker}-{sequence}.load.localhost")
                        } else {
                            format!("w{worker}-{sequence}.forbidden.example")
                        };
                        let key = PrivateKey::generate(KeyType::EcP256, &mut rng).expect("key");
                        let csr = key.csr(&[name]).expect("CSR");
                        let command = CaCommand::issue(&csr, "default", None, new_nonce(&mut rng));
                        let request = CaRequest::Signed(SignedCommand::sign(&operator, &command));
                        let sealed = !allowed || rng.gen_bool(0.5);
                        let prepared = prepare(&request, sealed.then_some(&encryption), &mut rng).expect("prepare");
                        let choice = {
                            let targets = targets.lock().expect("targets");
                            (!targets.is_empty()).then(|| targets[rng.gen_range(0..targets.len())])
                        };
                        if let Some(replica) = choice {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            let post = HttpRequest::post_json("/v1/certificates?wait=0", prepared.body.clone());
                            if let Ok(reply) = transport.send(replica, post).await
                                && (reply.status == 200 || reply.status == 202)
                            {
                                let status: RequestStatus =
                                    serde_json::from_slice(&reply.body).expect("a request status");
                                assert_eq!(status.request_id, prepared.id_hex(), "acknowledged the wrong request");
                                accepted.lock().expect("accepted").push(Accepted {
                                    id: prepared.id_hex(),
                                    replica,
                                    allowed,
                                });
                            }
                        }
                        let pause_ms = rng.gen_range(0..=pause.as_millis() as u64);
                        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                    }
                })
            })
            .collect();
        Load { stop, accepted, attempts, targets, tasks }
    }

    pub fn accepted_count(&self) -> usize {
        self.accepted.lock().expect("accepted").len()
    }

    /// Only these replicas are sent requests from now on.
    pub fn send_to(&self, ids: &[usize]) {
        *self.targets.lock().expect("targets") = ids.to_vec();
    }

    /// Stops the submitters, waits for the ones in flight, and returns what was accepted.
    pub fn stop(self, replicas: &Replicas) -> Vec<Accepted> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            if let Err(e) = replicas.rt.block_on(task) {
                // A submitter's assertion failed: surface it as the test's failure.
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
        self.accepted.lock().expect("accepted").clone()
    }
}

/// How long `accepted` requests may take to settle: `base` seconds, plus what a backlog of them
/// takes at a modest ten a second (a long campaign's load can outpace the cluster for a while).
pub fn settle_time(accepted: usize, base: u64) -> Duration {
    Duration::from_secs(base + accepted as u64 / 10)
}

/// Waits until at least `at_least` requests were accepted; false on the timeout.
pub fn wait_accepted(load: &Load, at_least: usize, timeout: Duration) -> bool {
    let started = Instant::now();
    while load.accepted_count() < at_least {
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Rewrites a file in place with `edit`.
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let text = std::fs::read_to_string(path).expect("read JSON");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("parse JSON");
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).expect("JSON")).expect("write JSON");
}
