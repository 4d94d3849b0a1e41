//! The CA state machine of one replica: applies ordered rounds to its SQLite database, signs what
//! they produce jointly with its peers, and answers the queries the HTTP API needs.
//!
//! Wiring (what the daemon does with a [`Ca`]):
//! - open it with [`Ca::open`] and start the replication runtime with
//!   `resume_from = ca.next_round()`;
//! - feed every delivered round, in order, to [`Ca::apply_round`] (an error there is fatal:
//!   stop, and a restart resumes at the first round not applied);
//! - feed every application message from a peer to [`Ca::handle_message`];
//! - forward what the [`Outbox`] is given to the runtime's `send_app`;
//! - run [`Ca::sign_pending`] whenever [`Ca::signing_work`] says there is work (applying a
//!   round only registers what it produced; this replica's shares are computed here, off the
//!   apply path, so ordering and applying go on while the shares are computed);
//! - call [`Ca::tick`] every second or so (it re-requests missing shares);
//! - for the HTTP layer, the query methods and [`Ca::watch`] (to wait for a certificate).
//!
//! # Time, CRLs and tree heads
//! Certificates start at the round's agreed time. After every round that appended entries, a tree
//! head is signed. After every round that revoked a certificate a new CRL is signed (CRL number
//! +1, thisUpdate = the round's time, nextUpdate = thisUpdate + 7 days). 7 days is the CA/Browser
//! Forum's longest interval between CRLs for end-entity certificates (Baseline Requirements
//! 4.9.7): a relying party caches a CRL until nextUpdate, so this bounds how long a revocation can
//! go unseen by a party that fetched the previous CRL. So that the CRL never lapses while nothing
//! is revoked, the first round ever applied issues CRL number 1, and any round at least
//! [`CRL_REFRESH`] after the last CRL issues a fresh one; the daemon must therefore see a round at
//! least every few days (any request will do).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ca_api::policy::{Policy, policy_sha256};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use threshold::PartyId;
use threshold::combine::CombineError;
use threshold::rsa::{RsaKeyShare, SignatureShare, ThresholdRsaPublic};
use tokio::sync::{Mutex, Notify, mpsc, watch};

use crate::apply::{self, Applied, ApplyError, Context, Effect, RoundInput};
use crate::certificate::{self, CertificateError, Issuer};
use crate::config::CaConfig;
use crate::crl::{self, CrlContents, CrlError, RevocationReason, RevokedEntry};
use crate::csr::CsrLimits;
use crate::entry::{EntryKind, RefusalCode, TreeHead};
use crate::merkle::{Hash, MerkleTree, TreeError};
use crate::signing::{
    self, CombineJob, HashedShare, HashedSignature, ObjectKind, PartyFaults, Pending, Received, RequestAnswer, Signer,
    SigningMessage,
};
use crate::store::{
    CertificateRow, Counts, CrlRow, EntryRow, FinishedSignature, LoadedState, RoundWrite, SigningObject, Store,
    StoreError, TreeHeadRow,
};
use crate::waiters::{WaitKey, Waiters};

/// A CRL is valid this long after its thisUpdate (see the module documentation).
pub const CRL_VALIDITY: u64 = 7 * 86_400;
/// A round at least this long after the last CRL issues a new one, so the current CRL is
/// refreshed well before its nextUpdate even when nothing is revoked.
pub const CRL_REFRESH: u64 = 3 * 86_400;
/// The most items one query returns.
pub const MAX_PAGE: u64 = 1000;
/// Objects waiting for their signature beyond which applying waits for signing to catch up, so
/// a replica that orders faster than it signs keeps a bounded backlog in memory (the runtime's
/// delivery queue then fills and ordering slows down to the signing pace).
pub const MAX_UNSIGNED: usize = 2048;

/// Where the state machine's messages to its peers go (best effort: a message may be dropped,
/// the periodic requests make up for it). The daemon forwards them to the runtime's `send_app`.
pub trait Outbox: Send + Sync + 'static {
    /// `to = None`: every other replica.
    fn send(&self, to: Option<PartyId>, payload: Vec<u8>);
}

/// A message for the peers, as channel outboxes carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Option<PartyId>,
    pub payload: Vec<u8>,
}

impl Outbox for mpsc::UnboundedSender<Outgoing> {
    fn send(&self, to: Option<PartyId>, payload: Vec<u8>) {
        // A closed channel means the daemon is shutting down: nothing is lost that a restart
        // does not recover.
        let _ = mpsc::UnboundedSender::send(self, Outgoing { to, payload });
    }
}

impl Outbox for mpsc::Sender<Outgoing> {
    fn send(&self, to: Option<PartyId>, payload: Vec<u8>) {
        // Full: dropped, as the network could have; the periodic requests make up for it.
        let _ = self.try_send(Outgoing { to, payload });
    }
}

/// Why the state machine failed. Errors from [`Ca::apply_round`] are fatal for this process.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("round {got} was delivered but round {expected} is the next to apply")]
    RoundGap { expected: u64, got: u64 },
    #[error("an earlier round failed to apply; restart the replica")]
    Poisoned,
    #[error("the commit of round {0} was abandoned (test hook)")]
    Abandoned(u64),
    #[error("apply: {0}")]
    Apply(#[from] ApplyError),
    #[error("building a CRL: {0}")]
    Crl(#[from] CrlError),
    #[error("assembling a certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("tree size {size} is beyond the log's {len} entries")]
    SizeBeyondLog { size: u64, len: u64 },
    #[error("a background computation failed: {0}")]
    Task(String),
}

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPolicy {
    pub policy: Policy,
    /// The file as submitted (or dealt).
    pub json: String,
    /// Lowercase hex SHA-256 of `json`'s bytes.
    pub sha256: String,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub round: u64,
    /// The round had been applied before (delivered again after a restart): nothing was done.
    pub already_applied: bool,
    /// Per request: its log index, kind, serial (issued or revoked) and refusal code.
    pub entries: Vec<EntrySummary>,
    pub tree_size: u64,
    /// The CRL this round issued.
    pub crl_number: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    pub log_index: u64,
    pub kind: EntryKind,
    pub serial: Option<Vec<u8>>,
    pub refusal: Option<RefusalCode>,
}

/// A request's outcome, by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus {
    pub log_index: u64,
    pub round: u64,
    pub kind: EntryKind,
    /// Issued or revoked certificate.
    pub serial: Option<Vec<u8>>,
    pub refusal_code: Option<String>,
    pub refusal_message: Option<String>,
    /// For an issuance, once signed: the certificate, DER.
    pub certificate_der: Option<Vec<u8>>,
}

/// A tree head with its signature (RFC 6962 `TreeHeadSignature`, sha256WithRSAEncryption under
/// the root key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub head: TreeHead,
    pub signature: Vec<u8>,
}

/// An inclusion proof (RFC 6962 2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
}

/// Counters for status pages and Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaMetrics {
    pub next_round: u64,
    pub log_size: u64,
    pub counts: Counts,
    /// Objects waiting for their signature (in memory).
    pub pending_signatures: usize,
    /// Signatures combined or received since start.
    pub signatures_completed: u64,
    /// This replica's own signature shares computed since start.
    pub shares_computed: u64,
    /// Of those, shares it would not have computed if every replica were live and honest.
    pub shares_beyond_rotation: u64,
    /// Combinations of shares this replica ran since start (as an object's combiner, or after
    /// waiting for the combiner in vain).
    pub combinations: u64,
    /// By party id.
    pub faults: Vec<PartyFaults>,
}

/// A signature a peer combined, on an object registered here, not yet checked.
struct PeerSignature {
    from: PartyId,
    hash: Hash,
    message: Arc<Vec<u8>>,
    signature: Vec<u8>,
}

/// Apply's state between rounds (guarded by one lock: rounds are applied one at a time).
struct Machine {
    next_index: u64,
    next_crl_number: u64,
    last_crl_update: Option<u64>,
    policy: Policy,
}

/// The state kept in memory besides the database, derived from it (at start-up, and again after
/// a storage failure left memory ahead of it).
struct InMemory {
    machine: Machine,
    current: CurrentPolicy,
    tree: MerkleTree,
    log_size: u64,
    next_round: u64,
}

impl InMemory {
    fn derive(loaded: LoadedState, policy_json: String, policy_hash: Hash) -> Result<InMemory, CaError> {
        let policy = Policy::parse(&policy_json).map_err(|e| CaError::Config(format!("policy: {e}")))?;
        let log_size = loaded.leaf_hashes.len() as u64;
        Ok(InMemory {
            machine: Machine {
                next_index: log_size,
                next_crl_number: loaded.next_crl_number,
                last_crl_update: loaded.last_crl_update,
                policy: policy.clone(),
            },
            current: CurrentPolicy { policy, json: policy_json, sha256: hex::encode(policy_hash) },
            tree: MerkleTree::from_leaf_hashes(loaded.leaf_hashes),
            log_size,
            next_round: loaded.next_round,
        })
    }
}

/// Registers the database's unsigned objects for signing, as last requested at `at`.
fn register_unsigned(signer: &mut Signer, objects: Vec<SigningObject>, at: Instant) {
    for object in objects {
        let _ = signer.add_object(object.hash, object.kind, object.reference, Arc::new(object.message), at);
    }
}

struct Inner {
    id: PartyId,
    public: Arc<ThresholdRsaPublic>,
    share: Arc<RsaKeyShare>,
    issuer: Issuer,
    root_der: Vec<u8>,
    crl_url: Option<String>,
    resend_after: Duration,
    store: Store,
    outbox: Arc<dyn Outbox>,
    machine: Mutex<Machine>,
    next_round: AtomicU64,
    /// Entries committed: proofs never cover more.
    log_size: AtomicU64,
    tree: RwLock<MerkleTree>,
    policy: RwLock<CurrentPolicy>,
    signer: Mutex<Signer>,
    /// Set when objects were registered: [`Ca::sign_pending`] has work.
    sign_work: Notify,
    /// Set when signatures completed: an apply waiting for room may go on.
    signed: Notify,
    /// Held while computing own shares, so two callers never compute the same ones.
    own_shares: Mutex<()>,
    /// [`Signer::pace_backlog`] as last counted ([`Ca::watch_pace_backlog`]).
    pace_backlog: watch::Sender<usize>,
    /// Signatures combined but not stored yet (the database failed): stored again by `tick`.
    unstored: Mutex<Vec<(Hash, Pending, Vec<u8>)>>,
    waiters: Waiters,
    poisoned: AtomicBool,
    abandon_commit_of: AtomicU64,
}

/// One replica's CA state machine. Cheap to clone (shared).
#[derive(Clone)]
pub struct Ca {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("id", &self.inner.id).finish_non_exhaustive()
    }
}

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

fn lock_read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A panic while holding the lock cannot leave these values half-updated (each is replaced
    // or appended to whole), so a poisoned lock is still usable.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ca {
    /// Opens the replica's database (creating and migrating it if needed) and loads its state.
    /// Checks that the key share, the cluster's public key and the root certificate belong
    /// together, and on a new database that the dealt policy is the one the cluster names.
    pub async fn open(config: CaConfig, outbox: Arc<dyn Outbox>) -> Result<Ca, CaError> {
        let CaConfig {
            id,
            cluster,
            root_der,
            initial_policy_json,
            rsa_share,
            database,
            crl_url,
            resend_after,
            combine_wait,
        } = config;
        cluster.check().map_err(|e| CaError::Config(format!("cluster description: {e}")))?;
        let (n, t) = (cluster.n, cluster.t);
        if id >= n || rsa_share.id() != id || rsa_share.parties() != n {
            return Err(CaError::Config(format!(
                "replica {id}: the RSA key share is party {} of {}, the cluster has {n} replicas",
                rsa_share.id(),
                rsa_share.parties()
            )));
        }
        let issuer = Issuer::from_der(&root_der).map_err(|e| CaError::Config(format!("root certificate: {e}")))?;
        let public = Arc::new(cluster.rsa.clone());
        {
            use rsa::traits::PublicKeyParts;
            let key = issuer.public_key();
            let same = key.n().to_bytes_be() == public.modulus_be_bytes()
                && *key.e() == rsa::BigUint::from(public.public_exponent());
            if !same {
                return Err(CaError::Config("the root certificate's key is not the cluster's threshold key".into()));
            }
        }
        let share = Arc::new(rsa_share);
        let matches = {
            let (share, public) = (share.clone(), public.clone());
            tokio::task::spawn_blocking(move || share.verification_key_matches(&public))
                .await
                .map_err(|e| CaError::Task(e.to_string()))?
        };
        if !matches {
            return Err(CaError::Config(format!("replica {id}: the RSA key share does not match the cluster's key")));
        }

        let store = Store::open(&database).await?;
        let mut loaded = store.load().await?;
        let (policy_json, policy_hash) = match loaded.policy.take() {
            Some(stored) => stored,
            None => {
                let hash = sha256(initial_policy_json.as_bytes());
                if policy_sha256(initial_policy_json.as_bytes()) != cluster.policy_sha256 {
                    return Err(CaError::Config(
                        "the policy file's SHA-256 is not the one the cluster description records".into(),
                    ));
                }
                store.insert_initial_policy(&initial_policy_json, &hash).await?;
                (initial_policy_json, hash)
            }
        };
        let state = InMemory::derive(loaded, policy_json, policy_hash)?;

        // Objects still to sign: due for a request at once (shares are kept in memory only; the
        // peers send theirs again, or the finished signature).
        let mut signer = Signer::new(id, n, t, public.signature_len()).with_combine_wait(combine_wait);
        let now = Instant::now();
        register_unsigned(&mut signer, store.unsigned_objects().await?, now.checked_sub(resend_after).unwrap_or(now));

        let inner = Inner {
            id,
            public,
            share,
            issuer,
            root_der,
            crl_url,
            resend_after,
            store,
            outbox,
            machine: Mutex::new(state.machine),
            next_round: AtomicU64::new(state.next_round),
            log_size: AtomicU64::new(state.log_size),
            tree: RwLock::new(state.tree),
            policy: RwLock::new(state.current),
            signer: Mutex::new(signer),
            sign_work: Notify::new(),
            signed: Notify::new(),
            own_shares: Mutex::new(()),
            pace_backlog: watch::Sender::new(0),
            unstored: Mutex::new(Vec::new()),
            waiters: Waiters::default(),
            poisoned: AtomicBool::new(false),
            abandon_commit_of: AtomicU64::new(u64::MAX),
        };
        Ok(Ca { inner: Arc::new(inner) })
    }

    /// After a failed round (the database could not be written: disk full, file made read-only),
    /// reloads the state kept in memory from the database, so that the round can be applied
    /// again once storage works. Fails, changing nothing, while the database cannot be read.
    pub async fn recover(&self) -> Result<(), CaError> {
        let inner = &self.inner;
        let mut machine = inner.machine.lock().await;
        let mut loaded = inner.store.load().await?;
        let Some((policy_json, policy_hash)) = loaded.policy.take() else {
            return Err(CaError::Config("the database lost its policy".into()));
        };
        let unsigned = inner.store.unsigned_objects().await?;
        let state = InMemory::derive(loaded, policy_json, policy_hash)?;
        *lock_write(&inner.tree) = state.tree;
        *machine = state.machine;
        *lock_write(&inner.policy) = state.current;
        inner.log_size.store(state.log_size, Ordering::SeqCst);
        inner.next_round.store(state.next_round, Ordering::SeqCst);
        register_unsigned(&mut *inner.signer.lock().await, unsigned, Instant::now());
        inner.poisoned.store(false, Ordering::SeqCst);
        drop(machine);
        inner.sign_work.notify_one();
        Ok(())
    }

    /// Closes the database (in-flight work should be finished first).
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    pub fn id(&self) -> PartyId {
        self.inner.id
    }

    /// The first round not applied yet: the runtime's `resume_from`.
    pub fn next_round(&self) -> u64 {
        self.inner.next_round.load(Ordering::SeqCst)
    }

    /// Test hook: the commit of `round` is abandoned as if the process died just before it.
    #[doc(hidden)]
    pub fn abandon_commit_of(&self, round: u64) {
        self.inner.abandon_commit_of.store(round, Ordering::SeqCst);
    }

    /// Applies one delivered round: every request becomes one log entry; certificates, CRLs and
    /// the tree head it produces are then signed jointly. All of the round's effects and the new
    /// round number are committed in one transaction. A round already applied is ignored (the
    /// runtime may deliver it again after a restart); a later round than the next is an error.
    pub async fn apply_round(&self, round: RoundInput) -> Result<RoundReport, CaError> {
        let inner = &self.inner;
        self.wait_for_signing_room(round.round).await;
        let mut machine = inner.machine.lock().await;
        if inner.poisoned.load(Ordering::SeqCst) {
            return Err(CaError::Poisoned);
        }
        let expected = inner.next_round.load(Ordering::SeqCst);
        if round.round < expected {
            let tree_size = inner.log_size.load(Ordering::SeqCst);
            return Ok(RoundReport {
                round: round.round,
                already_applied: true,
                entries: Vec::new(),
                tree_size,
                crl_number: None,
            });
        }
        if round.round > expected {
            return Err(CaError::RoundGap { expected, got: round.round });
        }

        // Reads first; nothing is changed until the commit.
        let decoded = apply::decode_round(&round);
        let mut known = inner.store.known(&apply::lookups(&decoded)).await?;
        let ctx =
            Context { issuer: &inner.issuer, crl_url: inner.crl_url.as_deref(), csr_limits: CsrLimits::default() };
        let mut policy = machine.policy.clone();
        let mut next_index = machine.next_index;
        let applied = apply::apply_round(&ctx, &mut policy, &mut next_index, &mut known, &round, decoded)?;
        let time = round.time / 1000;
        let crl = self.crl_for(&machine, &applied, time).await?;
        let next_crl_number = machine.next_crl_number + u64::from(crl.is_some());

        let mut objects = Vec::new();
        for applied in &applied {
            if let Effect::Issued(issued) = &applied.effect {
                objects.push(SigningObject {
                    hash: sha256(&issued.tbs),
                    kind: ObjectKind::Certificate,
                    reference: applied.entry.log_index,
                    message: issued.tbs.clone(),
                });
            }
        }
        if let Some(crl) = &crl {
            objects.push(SigningObject {
                hash: sha256(&crl.tbs),
                kind: ObjectKind::Crl,
                reference: crl.crl_number,
                message: crl.tbs.clone(),
            });
        }

        // From here on a failure leaves memory ahead of the database: the replica must restart.
        let result = async {
            let tree_head = if applied.is_empty() {
                None
            } else {
                let mut tree = lock_write(&inner.tree);
                for applied in &applied {
                    tree.push_leaf_hash(applied.leaf_hash);
                }
                Some(TreeHead { tree_size: tree.len(), timestamp_ms: round.time, root: tree.root() })
            };
            if let Some(head) = &tree_head {
                let message = head.signed_bytes().to_vec();
                objects.push(SigningObject {
                    hash: sha256(&message),
                    kind: ObjectKind::TreeHead,
                    reference: head.tree_size,
                    message,
                });
            }
            let write = RoundWrite {
                round: round.round,
                applied: &applied,
                tree_head,
                crl: crl.clone(),
                next_crl_number,
                objects: &objects,
            };
            let abandon = inner.abandon_commit_of.load(Ordering::SeqCst) == round.round;
            inner.store.commit_round(&write, abandon).await?;
            if abandon {
                return Err(CaError::Abandoned(round.round));
            }
            Ok(tree_head)
        }
        .await;
        let tree_head = match result {
            Ok(head) => head,
            Err(error) => {
                inner.poisoned.store(true, Ordering::SeqCst);
                return Err(error);
            }
        };

        machine.next_index = next_index;
        machine.next_crl_number = next_crl_number;
        if let Some(crl) = &crl {
            machine.last_crl_update = Some(crl.this_update);
        }
        for applied in &applied {
            if let Effect::PolicyChanged(new) = &applied.effect {
                *lock_write(&inner.policy) = CurrentPolicy {
                    policy: new.policy.clone(),
                    json: new.json.clone(),
                    sha256: hex::encode(new.sha256),
                };
            }
        }
        machine.policy = policy;
        let tree_size = tree_head.map_or(inner.log_size.load(Ordering::SeqCst), |head| head.tree_size);
        inner.log_size.store(tree_size, Ordering::SeqCst);
        inner.next_round.store(round.round + 1, Ordering::SeqCst);
        drop(machine);
        for applied in &applied {
            inner.waiters.wake(WaitKey::Request(applied.entry.request_digest));
        }

        let report = RoundReport {
            round: round.round,
            already_applied: false,
            entries: applied
                .iter()
                .map(|a| EntrySummary {
                    log_index: a.entry.log_index,
                    kind: a.entry.body.kind(),
                    serial: match &a.effect {
                        Effect::Issued(issued) => Some(issued.serial.clone()),
                        Effect::Revoked(revocation) => Some(revocation.serial.clone()),
                        _ => None,
                    },
                    refusal: a.refusal.as_ref().map(|(code, _)| *code),
                })
                .collect(),
            tree_size,
            crl_number: crl.as_ref().map(|c| c.crl_number),
        };
        // Signing is best effort from here: a failure is retried by `tick`, never undoes the
        // committed round.
        if let Err(error) = self.register_objects(objects).await {
            tracing::warn!(round = round.round, %error, "registering the round's objects for signing failed; will retry");
        }
        Ok(report)
    }

    /// The CRL a round issues, if it issues one: after a revocation, on the first round ever,
    /// and when the last CRL is [`CRL_REFRESH`] old.
    async fn crl_for(&self, machine: &Machine, applied: &[Applied], time: u64) -> Result<Option<CrlRow>, CaError> {
        let revocations: Vec<RevokedEntry> = applied
            .iter()
            .filter_map(|a| match &a.effect {
                Effect::Revoked(r) => {
                    Some(RevokedEntry { serial: r.serial.clone(), revoked_at: r.revoked_at, reason: r.reason })
                }
                _ => None,
            })
            .collect();
        let stale = machine.last_crl_update.is_none_or(|last| time >= last.saturating_add(CRL_REFRESH));
        if revocations.is_empty() && !stale {
            return Ok(None);
        }
        let mut revoked = Vec::new();
        for row in self.inner.store.revoked().await? {
            let reason = RevocationReason::from_code(row.reason_code)
                .ok_or_else(|| StoreError::Corrupt(format!("revocation reason {}", row.reason_code)))?;
            revoked.push(RevokedEntry { serial: row.serial, revoked_at: row.revoked_at, reason });
        }
        revoked.extend(revocations);
        let contents = CrlContents {
            crl_number: machine.next_crl_number,
            this_update: time,
            next_update: time + CRL_VALIDITY,
            revoked,
        };
        let tbs = crl::tbs_crl(&self.inner.issuer, &contents)?;
        Ok(Some(CrlRow {
            crl_number: contents.crl_number,
            this_update: contents.this_update,
            next_update: contents.next_update,
            tbs,
        }))
    }

    // ---- joint signing ----

    /// Waits while [`MAX_UNSIGNED`] objects wait for their signature.
    async fn wait_for_signing_room(&self, round: u64) {
        let mut waited = 0u32;
        loop {
            let signed = self.inner.signed.notified();
            tokio::pin!(signed);
            signed.as_mut().enable();
            if self.inner.signer.lock().await.pending().len() < MAX_UNSIGNED {
                return;
            }
            if tokio::time::timeout(Duration::from_secs(1), signed).await.is_err() {
                waited += 1;
                if waited.is_multiple_of(10) {
                    tracing::warn!(round, seconds = waited, "applying waits for signing to catch up");
                }
            }
        }
    }

    /// Registers new objects to sign (with the shares that arrived for them early) and wakes
    /// [`Ca::sign_pending`].
    async fn register_objects(&self, objects: Vec<SigningObject>) -> Result<(), CaError> {
        let now = Instant::now();
        let mut early_signatures = Vec::new();
        {
            let mut signer = self.inner.signer.lock().await;
            for object in objects {
                let message = Arc::new(object.message);
                let _ = signer.add_object(object.hash, object.kind, object.reference, message.clone(), now);
                for (from, signature) in signer.take_early_signatures(&object.hash) {
                    early_signatures.push(PeerSignature {
                        from,
                        hash: object.hash,
                        message: message.clone(),
                        signature,
                    });
                }
            }
        }
        // A combiner ahead of this replica may have sent the signature already.
        self.check_signatures(early_signatures).await?;
        self.publish_pace_backlog().await;
        self.inner.sign_work.notify_one();
        // Early shares may already complete a signature with this replica's own.
        self.run_combines().await
    }

    /// Resolves when objects were registered since the last call: the daemon then runs
    /// [`Ca::sign_pending`].
    pub async fn signing_work(&self) {
        self.inner.sign_work.notified().await;
    }

    /// [`Signer::pace_backlog`] (mostly the objects this replica owes its share on), updated as
    /// objects are registered, shares computed and signatures stored: how far this replica's
    /// signing is behind its ordering.
    pub fn watch_pace_backlog(&self) -> watch::Receiver<usize> {
        self.inner.pace_backlog.subscribe()
    }

    async fn publish_pace_backlog(&self) {
        let backlog = self.inner.signer.lock().await.pace_backlog(Instant::now());
        self.inner.pace_backlog.send_replace(backlog);
    }

    /// Computes and sends this replica's shares for every object it owes one on
    /// ([`Signer::designated`]), oldest first and a few at a time (so the first shares leave
    /// before the last are computed), and combines what can be. Objects a peer's shares
    /// completed meanwhile are skipped.
    pub async fn sign_pending(&self) -> Result<(), CaError> {
        let _computing = self.inner.own_shares.lock().await;
        // 8 per core: fewer, larger share messages and combination batches. At n = 4 with 256
        // clients this gave 195 against 190 certificates/s (four runs each, interleaved); 4 per
        // core was the earlier choice.
        let chunk = 8 * std::thread::available_parallelism().map_or(1, |n| n.get());
        loop {
            let (missing, backlog) = {
                let signer = self.inner.signer.lock().await;
                let now = Instant::now();
                (signer.missing_own(chunk, now), signer.pace_backlog(now))
            };
            self.inner.pace_backlog.send_replace(backlog);
            if missing.is_empty() {
                return Ok(());
            }
            self.compute_own(missing, None).await?;
            self.run_combines().await?;
        }
    }

    /// Computes this replica's shares off the async threads, spread over the cores.
    async fn compute_shares(
        &self,
        jobs: Vec<(Hash, Arc<Vec<u8>>, bool)>,
    ) -> Result<Vec<(Hash, SignatureShare)>, CaError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
        let per_worker = jobs.len().div_ceil(workers);
        let mut handles = Vec::new();
        for chunk in jobs.chunks(per_worker) {
            let chunk = chunk.to_vec();
            let (share, public) = (self.inner.share.clone(), self.inner.public.clone());
            handles.push(tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|(hash, message, with_proof)| {
                        let computed = if with_proof {
                            share.sign_with_proof(&public, &message, &mut OsRng)
                        } else {
                            share.sign(&public, &message)
                        };
                        (hash, computed)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for handle in handles {
            out.extend(handle.await.map_err(|e| CaError::Task(e.to_string()))?);
        }
        Ok(out)
    }

    /// Computes own shares, keeps them, and sends them to `to` (`None`: everyone).
    async fn compute_own(&self, jobs: Vec<(Hash, Arc<Vec<u8>>, bool)>, to: Option<PartyId>) -> Result<(), CaError> {
        let computed = self.compute_shares(jobs).await?;
        if computed.is_empty() {
            return Ok(());
        }
        let mut outgoing = Vec::new();
        {
            let mut signer = self.inner.signer.lock().await;
            for (hash, share) in computed {
                let _ = signer.receive(self.inner.id, hash, share.clone());
                outgoing.push(HashedShare { hash, share });
            }
        }
        for message in signing::chunked(&outgoing, |shares| SigningMessage::Shares { shares }) {
            self.inner.outbox.send(to, message.encode());
        }
        Ok(())
    }

    /// Runs every combination that is ready, until none is.
    async fn run_combines(&self) -> Result<(), CaError> {
        loop {
            let jobs = self.inner.signer.lock().await.take_ready(Instant::now());
            if jobs.is_empty() {
                return Ok(());
            }
            let public = self.inner.public.clone();
            let results = tokio::task::spawn_blocking(move || {
                // All at once: the combinations share one inversion.
                let results = {
                    let inputs: Vec<(&[u8], &[SignatureShare])> =
                        jobs.iter().map(|job| (job.message.as_slice(), job.shares.as_slice())).collect();
                    public.combine_many(&inputs)
                };
                jobs.into_iter().zip(results).collect::<Vec<(CombineJob, _)>>()
            })
            .await
            .map_err(|e| CaError::Task(e.to_string()))?;

            let mut finished: Vec<(Hash, Pending, Vec<u8>)> = Vec::new();
            let mut checks = Vec::new();
            let mut need_proofs = Vec::new();
            let own_with_proof;
            {
                let mut signer = self.inner.signer.lock().await;
                for (job, result) in results {
                    match result {
                        Ok(combined) => {
                            if !combined.faulty.is_empty() {
                                tracing::warn!(faulty = ?combined.faulty, "invalid signature shares attributed");
                            }
                            // The shares the combination used: the first t + 1 it did not find
                            // invalid.
                            let valid: Vec<SignatureShare> = job
                                .shares
                                .iter()
                                .filter(|s| !combined.faulty.contains(&s.id))
                                .take(self.inner.public.threshold() + 1)
                                .cloned()
                                .collect();
                            if let Some(pending) = signer.finished(&job.hash, &combined.faulty, &valid) {
                                // Shares held but not needed are checked too (rate-limited):
                                // otherwise a bad one would go unnoticed.
                                checks.extend(signer.spot_checks_of(&job.hash, &pending, Instant::now()));
                                finished.push((job.hash, pending, combined.value));
                            }
                        }
                        Err(CombineError::NotEnoughShares { .. }) => signer.not_enough(&job.hash, job.version),
                        Err(CombineError::NotEnoughValidShares { faulty, .. }) => {
                            if !faulty.is_empty() {
                                tracing::warn!(?faulty, "invalid signature shares attributed");
                            }
                            let (newly, _forgotten) = signer.failed(&job.hash, job.version, &faulty);
                            if newly {
                                need_proofs.push(job.hash);
                            }
                        }
                    }
                }
                own_with_proof = signer
                    .missing_own(usize::MAX, Instant::now())
                    .into_iter()
                    .filter(|(_, _, proof)| *proof)
                    .collect::<Vec<_>>();
            }
            // Everyone else waits for these instead of combining the shares too.
            let combined: Vec<HashedSignature> = finished
                .iter()
                .map(|(hash, _, signature)| HashedSignature { hash: *hash, signature: signature.clone() })
                .collect();
            for message in signing::chunked(&combined, |signatures| SigningMessage::Signatures { signatures }) {
                self.inner.outbox.send(None, message.encode());
            }
            self.store_signatures(finished).await?;
            self.spot_check(checks).await?;
            if !need_proofs.is_empty() {
                for message in
                    signing::chunked(&need_proofs, |hashes| SigningMessage::Request { hashes, with_proof: true })
                {
                    self.inner.outbox.send(None, message.encode());
                }
            }
            if !own_with_proof.is_empty() {
                self.compute_own(own_with_proof, None).await?;
            }
        }
    }

    /// Stores signatures and what they complete (one transaction), and wakes who waits on them.
    /// If the database fails they are kept, and `tick` stores them once it works again.
    async fn store_signatures(&self, finished: Vec<(Hash, Pending, Vec<u8>)>) -> Result<(), CaError> {
        if finished.is_empty() {
            return Ok(());
        }
        let result = self.try_store_signatures(&finished).await;
        if result.is_err() {
            self.inner.unstored.lock().await.extend(finished);
        }
        result
    }

    async fn try_store_signatures(&self, finished: &[(Hash, Pending, Vec<u8>)]) -> Result<(), CaError> {
        let mut rows = Vec::with_capacity(finished.len());
        for (hash, pending, signature) in finished {
            let assembled = match pending.kind {
                ObjectKind::Certificate => Some(certificate::assemble(&pending.message, signature)?),
                ObjectKind::Crl => Some(crl::assemble_crl(&pending.message, signature)?),
                ObjectKind::TreeHead => None,
            };
            let object =
                SigningObject { hash: *hash, kind: pending.kind, reference: pending.reference, message: Vec::new() };
            rows.push(FinishedSignature { object, signature: signature.clone(), assembled });
        }
        self.inner.store.finish_signatures(&rows).await?;
        for (_, pending, _) in finished {
            if pending.kind == ObjectKind::Certificate {
                self.inner.waiters.wake(WaitKey::Certificate(pending.reference));
            }
        }
        self.inner.signed.notify_waiters();
        // Fewer unsigned objects: the pace may release the ordering.
        self.publish_pace_backlog().await;
        Ok(())
    }

    /// Handles a message from a peer's state machine. Malformed messages and invalid content are
    /// counted against the sender, never an error: only local failures (the database) are.
    pub async fn handle_message(&self, from: PartyId, payload: &[u8]) -> Result<(), CaError> {
        if from == self.inner.id || from >= self.inner.public.parties() {
            return Ok(());
        }
        let message = match SigningMessage::decode(payload) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(peer = from, %error, "undecodable signing message");
                self.inner.signer.lock().await.malformed_message(from);
                return Ok(());
            }
        };
        match message {
            SigningMessage::Shares { shares } => {
                let mut checks = Vec::new();
                {
                    let mut signer = self.inner.signer.lock().await;
                    let now = Instant::now();
                    signer.heard_from(from, now);
                    for HashedShare { hash, share } in shares {
                        if signer.receive(from, hash, share.clone()) == Received::Late
                            && let Some(check) = signer.spot_check(from, &hash, share, now)
                        {
                            checks.push((from, check));
                        }
                    }
                }
                self.spot_check(checks).await?;
                self.run_combines().await
            }
            SigningMessage::Request { hashes, with_proof } => self.answer(from, hashes, with_proof).await,
            SigningMessage::Signatures { signatures } => self.receive_signatures(from, signatures).await,
        }
    }

    /// Runs spot checks of shares a combination did not need (see [`Signer::spot_check`]).
    async fn spot_check(&self, checks: Vec<(PartyId, CombineJob)>) -> Result<(), CaError> {
        if checks.is_empty() {
            return Ok(());
        }
        let public = self.inner.public.clone();
        let failed: Vec<PartyId> = tokio::task::spawn_blocking(move || {
            checks
                .iter()
                .filter(|(_, job)| public.combine(&job.message, &job.shares).is_err())
                .map(|(party, _)| *party)
                .collect()
        })
        .await
        .map_err(|e| CaError::Task(e.to_string()))?;
        if !failed.is_empty() {
            tracing::warn!(peers = ?failed, "a signature share does not combine with this replica's own");
            let mut signer = self.inner.signer.lock().await;
            for party in failed {
                signer.spot_check_failed(party);
            }
        }
        Ok(())
    }

    /// Answers a peer's request with this replica's shares, or with signatures already combined.
    async fn answer(&self, from: PartyId, hashes: Vec<Hash>, with_proof: bool) -> Result<(), CaError> {
        let mut shares = Vec::new();
        let mut compute = Vec::new();
        let mut elsewhere = Vec::new();
        {
            let signer = self.inner.signer.lock().await;
            let now = Instant::now();
            for hash in hashes {
                match signer.answer_request(&hash, with_proof, now) {
                    RequestAnswer::Held(share) => shares.push(HashedShare { hash, share }),
                    RequestAnswer::Compute(message) => compute.push((hash, message, with_proof)),
                    RequestAnswer::Later => {}
                    RequestAnswer::Signed => elsewhere.push(hash),
                }
            }
        }
        for message in signing::chunked(&shares, |shares| SigningMessage::Shares { shares }) {
            self.inner.outbox.send(Some(from), message.encode());
        }
        self.compute_own(compute, Some(from)).await?;
        let mut signatures = Vec::new();
        for hash in elsewhere {
            // Unknown here (this replica is behind): the peer will ask again.
            if let Some(signature) = self.inner.store.signature(&hash).await? {
                signatures.push(HashedSignature { hash, signature });
            }
        }
        for message in signing::chunked(&signatures, |signatures| SigningMessage::Signatures { signatures }) {
            self.inner.outbox.send(Some(from), message.encode());
        }
        self.run_combines().await
    }

    /// Takes signatures a peer combined: each is checked under the root key before it is kept.
    /// One on an object not registered here yet is kept until it is ([`Ca::register_objects`]).
    async fn receive_signatures(&self, from: PartyId, signatures: Vec<HashedSignature>) -> Result<(), CaError> {
        let candidates: Vec<PeerSignature> = {
            let mut signer = self.inner.signer.lock().await;
            let mut candidates = Vec::new();
            for HashedSignature { hash, signature } in signatures {
                match signer.get(&hash) {
                    Some(pending) => {
                        candidates.push(PeerSignature { from, hash, message: pending.message.clone(), signature })
                    }
                    None => signer.keep_early_signature(from, hash, signature),
                }
            }
            candidates
        };
        self.check_signatures(candidates).await
    }

    /// Checks peers' signatures (sender, object, its message, signature) under the root key and
    /// stores those that verify; one that does not counts against its sender. The shares held on
    /// an object signed so are spot-checked as after a combination: no combination here used
    /// them, and a bad one would otherwise go unnoticed.
    async fn check_signatures(&self, candidates: Vec<PeerSignature>) -> Result<(), CaError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let public = self.inner.public.clone();
        let checked = tokio::task::spawn_blocking(move || {
            candidates
                .into_iter()
                .map(|PeerSignature { from, hash, message, signature }| {
                    let valid = public.verify(&message, &signature);
                    (from, hash, valid, signature)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| CaError::Task(e.to_string()))?;
        let (mut finished, mut checks) = (Vec::new(), Vec::new());
        {
            let mut signer = self.inner.signer.lock().await;
            for (from, hash, valid, signature) in checked {
                if !valid {
                    tracing::warn!(peer = from, "a peer sent a signature that does not verify");
                    signer.invalid_signature(from);
                    continue;
                }
                if let Some(pending) = signer.finished(&hash, &[], &[]) {
                    checks.extend(signer.spot_checks_of(&hash, &pending, Instant::now()));
                    finished.push((hash, pending, signature));
                }
            }
        }
        self.store_signatures(finished).await?;
        self.spot_check(checks).await
    }

    /// The runtime's view of the links (`down[p]`: party `p`'s link is down): a designated
    /// party that is down is passed over at once ([`Signer::designated`]).
    pub async fn set_links_down(&self, down: &[bool]) {
        self.inner.signer.lock().await.set_links_down(down);
    }

    /// Periodic work: computes own shares still missing (after a restart), asks the peers again
    /// for shares on objects that have waited [`CaConfig::resend_after`], and combines.
    pub async fn tick(&self) -> Result<(), CaError> {
        let unstored = std::mem::take(&mut *self.inner.unstored.lock().await);
        self.store_signatures(unstored).await?;
        self.sign_pending().await?;
        let now = Instant::now();
        let due = now.checked_sub(self.inner.resend_after).unwrap_or(now);
        let (plain, proven) = self.inner.signer.lock().await.due_requests(due, now);
        for (hashes, with_proof) in [(plain, false), (proven, true)] {
            for message in signing::chunked(&hashes, |hashes| SigningMessage::Request { hashes, with_proof }) {
                self.inner.outbox.send(None, message.encode());
            }
        }
        self.run_combines().await
    }

    // ---- queries ----

    /// What applying `payload` as the next request would do now, without applying it: `Ok` with
    /// the entry kind it would produce, or its refusal. Advisory only (the policy or the log may
    /// change before the request is ordered, and the real time will be the round's): the HTTP
    /// layer uses it to answer a request that is bound to be refused with a clear 4xx at once,
    /// with the same checks and codes apply uses. `time_ms` is the local clock.
    pub async fn precheck(
        &self,
        payload: &[u8],
        time_ms: u64,
    ) -> Result<Result<EntryKind, (RefusalCode, String)>, CaError> {
        let round = RoundInput {
            round: self.next_round(),
            time: time_ms,
            seed: [0; 32],
            requests: vec![crate::apply::RequestInput {
                digest: [0; 32],
                sealed: false,
                payload: Some(payload.to_vec()),
            }],
        };
        let decoded = apply::decode_round(&round);
        let mut known = self.inner.store.known(&apply::lookups(&decoded)).await?;
        let ctx = Context {
            issuer: &self.inner.issuer,
            crl_url: self.inner.crl_url.as_deref(),
            csr_limits: CsrLimits::default(),
        };
        let mut policy = lock_read(&self.inner.policy).policy.clone();
        let mut next_index = self.log_size();
        let applied = apply::apply_round(&ctx, &mut policy, &mut next_index, &mut known, &round, decoded)?;
        Ok(match applied.into_iter().next() {
            Some(Applied { refusal: Some(refusal), .. }) => Err(refusal),
            Some(applied) => Ok(applied.entry.body.kind()),
            None => Err((RefusalCode::Undecodable, "no request".into())),
        })
    }

    /// Wake-ups for a request's outcome: enable a `notified()` future on `watch(key)` before
    /// checking [`Ca::request_status`], then wait on it; give it back with [`Ca::unwatch`] when
    /// not woken. [`WaitKey::Request`] is woken when the request is applied,
    /// [`WaitKey::Certificate`] when the certificate at that log index is signed.
    pub fn watch(&self, key: WaitKey) -> Arc<Notify> {
        self.inner.waiters.watch(key)
    }

    pub fn unwatch(&self, key: WaitKey, notify: &Arc<Notify>) {
        self.inner.waiters.unwatch(key, notify)
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.inner.root_der
    }

    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.inner.root_der)
    }

    pub fn current_policy(&self) -> CurrentPolicy {
        lock_read(&self.inner.policy).clone()
    }

    /// The certificate with this serial (big-endian bytes, no leading zeros), signed or not.
    pub async fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRow>, CaError> {
        Ok(self.inner.store.certificate(serial).await?)
    }

    /// The certificate and the root, PEM (`application/pem-certificate-chain`), once signed.
    pub async fn certificate_chain_pem(&self, serial: &[u8]) -> Result<Option<String>, CaError> {
        let Some(der) = self.inner.store.certificate(serial).await?.and_then(|c| c.der) else {
            return Ok(None);
        };
        Ok(Some(self.chain_pem(&der)))
    }

    /// A signed certificate (DER) and the root, PEM.
    pub fn chain_pem(&self, certificate_der: &[u8]) -> String {
        format!("{}{}", pem("CERTIFICATE", certificate_der), self.root_pem())
    }

    /// Certificates in issuance order after log index `after`, at most `limit` (capped at
    /// [`MAX_PAGE`]).
    pub async fn certificates(&self, after: Option<u64>, limit: u64) -> Result<Vec<CertificateRow>, CaError> {
        let limit = u32::try_from(limit.min(MAX_PAGE)).unwrap_or(1000);
        Ok(self.inner.store.certificates(after, limit).await?)
    }

    /// The outcome of the request with this digest (the runtime's request id), once applied.
    pub async fn request_status(&self, digest: &[u8; 32]) -> Result<Option<RequestStatus>, CaError> {
        let Some((entry, certificate_der)) = self.inner.store.entry_for_request(digest).await? else {
            return Ok(None);
        };
        Ok(Some(RequestStatus {
            log_index: entry.log_index,
            round: entry.round,
            kind: entry.kind,
            serial: entry.serial,
            refusal_code: entry.refusal_code,
            refusal_message: entry.refusal_message,
            certificate_der,
        }))
    }

    /// The newest signed tree head.
    pub async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, CaError> {
        Ok(self.inner.store.latest_signed_tree_head().await?.and_then(|TreeHeadRow { head, signature, .. }| {
            signature.map(|signature| SignedTreeHead { head, signature })
        }))
    }

    /// Every tree head, oldest first (unsigned ones without a signature).
    pub async fn tree_heads(&self) -> Result<Vec<TreeHeadRow>, CaError> {
        Ok(self.inner.store.tree_heads().await?)
    }

    /// Entries `start..=end` (inclusive, as RFC 6962's get-entries), at most [`MAX_PAGE`].
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<EntryRow>, CaError> {
        if end < start {
            return Ok(Vec::new());
        }
        let end = end.min(start.saturating_add(MAX_PAGE - 1));
        Ok(self.inner.store.entries(start, end).await?)
    }

    /// Entries committed so far.
    pub fn log_size(&self) -> u64 {
        self.inner.log_size.load(Ordering::SeqCst)
    }

    fn check_size(&self, size: u64) -> Result<(), CaError> {
        let len = self.log_size();
        if size > len { Err(CaError::SizeBeyondLog { size, len }) } else { Ok(()) }
    }

    /// The inclusion proof of leaf `index` in the tree of `tree_size` leaves.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<InclusionProof, CaError> {
        self.check_size(tree_size)?;
        let tree = lock_read(&self.inner.tree);
        let path = tree.inclusion_proof(index, tree_size)?;
        let leaf_hash = tree.leaf_hash(index).ok_or(TreeError::IndexBeyondSize { index, size: tree_size })?;
        Ok(InclusionProof { leaf_index: index, tree_size, leaf_hash, path })
    }

    /// The inclusion proof of the first leaf with this hash, if the log has one below
    /// `tree_size`.
    pub async fn inclusion_proof_by_hash(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<InclusionProof>, CaError> {
        match self.inner.store.index_of_leaf(leaf_hash).await? {
            Some(index) if index < tree_size => self.inclusion_proof(index, tree_size).map(Some),
            _ => Ok(None),
        }
    }

    /// The consistency proof between the trees of `first` and `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, CaError> {
        self.check_size(second)?;
        Ok(lock_read(&self.inner.tree).consistency_proof(first, second)?)
    }

    /// The newest signed CRL, DER.
    pub async fn current_crl(&self) -> Result<Option<Vec<u8>>, CaError> {
        Ok(self.inner.store.latest_signed_crl().await?.and_then(|crl| crl.der))
    }

    /// Every CRL, oldest first (unsigned ones without DER).
    pub async fn crls(&self) -> Result<Vec<crate::store::StoredCrl>, CaError> {
        Ok(self.inner.store.crls().await?)
    }

    pub async fn metrics(&self) -> Result<CaMetrics, CaError> {
        let counts = self.inner.store.counts().await?;
        let signer = self.inner.signer.lock().await;
        Ok(CaMetrics {
            next_round: self.next_round(),
            log_size: self.log_size(),
            counts,
            pending_signatures: signer.pending().len(),
            signatures_completed: signer.signed_count(),
            shares_computed: signer.own_shares_computed(),
            shares_beyond_rotation: signer.own_shares_beyond_rotation(),
            combinations: signer.combinations(),
            faults: signer.faults().to_vec(),
        })
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM of in-memory bytes")
}
