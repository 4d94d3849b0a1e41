//! Auditing the CA's log: signed tree heads from every replica, checked with the root key;
//! consistency with the last head this auditor saw; every entry fetched and the Merkle root
//! recomputed; replicas' heads compared with each other and with the recomputed tree.
//!
//! A tree head is signed with the threshold root key, so one that verifies was signed by `t + 1`
//! replicas together. The largest verified head is the target: the entries must hash to its root,
//! every smaller verified head must be the root of a prefix of those entries, and the head seen
//! last time must be too. Anything else is a fork or a lie, and names the replica that served it.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ca_api::api::{ConsistencyProof, Entries, SignedTreeHead};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Progress, ProgressFn};
use crate::error::{ClientError, Finding, FindingKind, Findings};
use crate::merkle::{self, Hash};
use crate::transport::Transport;
use crate::verify::Root;

/// Entries per page (the API's maximum).
pub const PAGE: u64 = 1000;
/// The leaf format's version byte and the length of its fixed prefix (version, index, round,
/// timestamp, request digest, kind).
const LEAF_VERSION: u8 = 1;
const LEAF_PREFIX_LEN: usize = 1 + 8 + 8 + 8 + 32 + 1;

/// A tree head whose signature verified under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub tree_size: u64,
    /// Milliseconds since the Unix epoch (the round's agreed time).
    pub timestamp_ms: u64,
    pub root: Hash,
    pub signature: Vec<u8>,
}

/// Why a signed tree head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("the root hash is not 64 hex digits")]
    RootHash,
    #[error("the signature is not base64")]
    SignatureEncoding,
    #[error("the signature does not verify under the root key")]
    Signature,
}

impl TreeHead {
    /// The RFC 6962 3.5 `TreeHeadSignature` bytes (v1, tree_hash, timestamp, size, root).
    pub fn signed_bytes(&self) -> [u8; 50] {
        let mut out = [0u8; 50];
        out[0] = 0; // Version v1.
        out[1] = 1; // SignatureType tree_hash.
        out[2..10].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[10..18].copy_from_slice(&self.tree_size.to_be_bytes());
        out[18..50].copy_from_slice(&self.root);
        out
    }

    /// Checks a replica's signed tree head against the root key.
    pub fn verify(root: &Root, sth: &SignedTreeHead) -> Result<TreeHead, HeadError> {
        let hash = merkle::parse_hash(&sth.root_hash).ok_or(HeadError::RootHash)?;
        let signature = BASE64.decode(sth.signature.as_bytes()).map_err(|_| HeadError::SignatureEncoding)?;
        let head = TreeHead { tree_size: sth.tree_size, timestamp_ms: sth.timestamp, root: hash, signature };
        if !root.verifies(&head.signed_bytes(), &head.signature) {
            return Err(HeadError::Signature);
        }
        Ok(head)
    }

    pub fn to_api(&self) -> SignedTreeHead {
        SignedTreeHead {
            tree_size: self.tree_size,
            timestamp: self.timestamp_ms,
            root_hash: hex::encode(self.root),
            signature: BASE64.encode(&self.signature),
        }
    }
}

/// What the auditor remembers between runs: the last head it verified, for one root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditState {
    pub format: String,
    pub root_certificate_sha256: String,
    pub head: SignedTreeHead,
}

const STATE_FORMAT: &str = "itca.audit-state.v1";

/// The default state file: `$XDG_STATE_HOME/itca/audit-<root>.json` (or `~/.local/state/...`),
/// else beside the cluster file.
pub fn default_state_path(root: &Root, cluster_path: &Path) -> PathBuf {
    let name = format!("audit-{}.json", root.fingerprint());
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/state")));
    match base {
        Some(base) => base.join("itca").join(name),
        None => cluster_path.parent().unwrap_or(Path::new(".")).join(name),
    }
}

/// Reads the last head seen, if the file exists; it is re-verified, so a file for another CA or
/// an edited one is refused.
pub fn load_state(path: &Path, root: &Root) -> Result<Option<TreeHead>, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(ClientError::Io { path: path.to_path_buf(), error }),
    };
    let bad = |reason: String| ClientError::File { path: path.to_path_buf(), reason };
    let state: AuditState = serde_json::from_str(&text).map_err(|e| bad(format!("not an audit state file: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(bad(format!("format {:?}, expected {STATE_FORMAT:?}", state.format)));
    }
    if state.root_certificate_sha256 != root.fingerprint() {
        return Err(bad(format!("kept for root {}, not this cluster's root", state.root_certificate_sha256)));
    }
    TreeHead::verify(root, &state.head).map(Some).map_err(|e| bad(format!("the saved head: {e}")))
}

/// Saves the last head seen (written to a temporary file and renamed, so a crash never leaves a
/// half-written state).
pub fn save_state(path: &Path, root: &Root, head: &TreeHead) -> Result<(), ClientError> {
    let io = |error| ClientError::Io { path: path.to_path_buf(), error };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let state =
        AuditState { format: STATE_FORMAT.into(), root_certificate_sha256: root.fingerprint(), head: head.to_api() };
    let text = serde_json::to_string_pretty(&state)
        .map_err(|e| ClientError::File { path: path.to_path_buf(), reason: e.to_string() })?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text + "\n").map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// How thorough an audit is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditOptions {
    /// Fetch the entries from one replica (the first whose entries hash to the latest root)
    /// instead of from every replica.
    pub quick: bool,
}

/// What one replica's head came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadOutcome {
    Verified(TreeHead),
    /// The replica has no head yet (empty log).
    Empty,
    /// It served a head that does not verify, or garbage.
    Invalid(String),
    Unreachable(String),
}

/// The audit, replica by replica.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub heads: Vec<(usize, HeadOutcome)>,
    /// The head remembered from the previous run.
    pub previous: Option<TreeHead>,
    /// The largest verified head.
    pub latest: Option<TreeHead>,
    /// A replica whose entries recomputed to `latest`'s root, and how many entries.
    pub entries_source: Option<usize>,
    pub entries_checked: u64,
    /// Whether every entry up to `latest` was fetched and hashed to its root.
    pub complete: bool,
    /// What to remember for next time: `latest` once it checked out, else `previous`.
    pub next_state: Option<TreeHead>,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// No replica misbehaved, and the log was checked to its latest head (or is empty).
    pub fn is_consistent(&self) -> bool {
        !self.findings.iter().any(|f| f.kind.is_misbehaviour()) && (self.complete || self.latest.is_none())
    }
}

impl<T: Transport> Client<T> {
    /// Audits the log against `previous`, the last head this auditor verified.
    pub async fn audit(
        &self,
        previous: Option<&TreeHead>,
        options: AuditOptions,
        progress: ProgressFn<'_>,
    ) -> Result<AuditReport, ClientError> {
        let mut findings = Findings::default();
        let answers = join_all((0..self.n()).map(|r| self.get_json::<SignedTreeHead>(r, "/v1/audit/sth"))).await;
        let mut heads = Vec::with_capacity(answers.len());
        for (replica, answer) in answers.into_iter().enumerate() {
            let outcome = match answer {
                Ok(sth) => match TreeHead::verify(self.root(), &sth) {
                    Ok(head) => HeadOutcome::Verified(head),
                    Err(e) => {
                        findings.add(
                            replica,
                            FindingKind::Invalid,
                            format!("tree head of size {}: {e}", sth.tree_size),
                        );
                        HeadOutcome::Invalid(e.to_string())
                    }
                },
                Err((_, Some(problem))) if problem.kind == "no-tree-head-yet" => HeadOutcome::Empty,
                Err((finding, _)) => {
                    let outcome = match finding.kind {
                        FindingKind::Invalid => HeadOutcome::Invalid(finding.detail.clone()),
                        _ => HeadOutcome::Unreachable(finding.detail.clone()),
                    };
                    findings.push(finding);
                    outcome
                }
            };
            heads.push((replica, outcome));
        }
        let verified: Vec<(usize, TreeHead)> = heads
            .iter()
            .filter_map(|(r, h)| match h {
                HeadOutcome::Verified(head) => Some((*r, head.clone())),
                _ => None,
            })
            .collect();
        if verified.is_empty() && !heads.iter().any(|(_, h)| *h == HeadOutcome::Empty) {
            return Err(ClientError::NoValidAnswer(findings.summary()));
        }

        check_equal_sizes(&verified, &mut findings);
        if let Some(previous) = previous {
            for (replica, head) in &verified {
                self.check_against_previous(*replica, head, previous, &mut findings).await;
            }
        }

        let latest = verified.iter().map(|(_, h)| h).max_by_key(|h| h.tree_size).cloned();
        let mut report = AuditReport {
            heads,
            previous: previous.cloned(),
            latest: latest.clone(),
            entries_source: None,
            entries_checked: 0,
            complete: false,
            next_state: previous.cloned(),
            findings: Vec::new(),
        };
        let Some(latest) = latest else {
            // Every replica that answered has an empty log; an earlier head would be a rollback.
            if let Some(previous) = previous.filter(|p| p.tree_size > 0) {
                for (replica, _) in report.heads.iter().filter(|(_, h)| *h == HeadOutcome::Empty) {
                    findings.add(
                        *replica,
                        FindingKind::Inconsistent,
                        format!("has no log, but a head of size {} was seen before", previous.tree_size),
                    );
                }
            }
            report.findings = findings.into_vec();
            return Ok(report);
        };
        for (replica, _) in report.heads.iter().filter(|(_, h)| *h == HeadOutcome::Empty) {
            findings.add(
                *replica,
                FindingKind::Stale,
                format!("has no tree head; {} entries are signed", latest.tree_size),
            );
        }
        for (replica, head) in &verified {
            if head.tree_size < latest.tree_size {
                findings.add(
                    *replica,
                    FindingKind::Stale,
                    format!("its head has {} entries; {} are signed", head.tree_size, latest.tree_size),
                );
            }
        }

        // The entries. By default every replica with a verified head serves its log, which must
        // hash to its own signed root: a replica whose stored log was altered is named here even
        // when others serve the log correctly. Quick mode asks one replica at a time until one
        // serves entries that hash to the latest root.
        let mut reference: Option<(usize, Vec<Hash>)> = None;
        if options.quick {
            let mut candidates: Vec<usize> =
                verified.iter().filter(|(_, h)| h.root == latest.root).map(|(r, _)| *r).collect();
            let others: Vec<usize> = (0..self.n()).filter(|r| !candidates.contains(r)).collect();
            candidates.extend(others);
            for replica in candidates {
                match self.fetch_leaf_hashes(replica, latest.tree_size, progress).await {
                    Ok(hashes) if merkle::root_of(&hashes) == latest.root => {
                        reference = Some((replica, hashes));
                        break;
                    }
                    Ok(_) => findings.add(
                        replica,
                        FindingKind::Inconsistent,
                        format!(
                            "its entries 0..{} do not hash to the signed root {}",
                            latest.tree_size,
                            hex::encode(latest.root)
                        ),
                    ),
                    Err(finding) => findings.push(finding),
                }
            }
        } else {
            let fetched = join_all(verified.iter().map(|(replica, head)| async move {
                (*replica, head, self.fetch_leaf_hashes(*replica, head.tree_size, progress).await)
            }))
            .await;
            for (replica, head, result) in fetched {
                match result {
                    Ok(hashes) if merkle::root_of(&hashes) == head.root => {
                        if reference.is_none() && head.root == latest.root {
                            reference = Some((replica, hashes));
                        }
                    }
                    Ok(_) => findings.add(
                        replica,
                        FindingKind::Inconsistent,
                        format!(
                            "its entries 0..{} do not hash to its signed root {}",
                            head.tree_size,
                            hex::encode(head.root)
                        ),
                    ),
                    Err(finding) => findings.push(finding),
                }
            }
        }
        let Some((source, leaves)) = reference else {
            report.findings = findings.into_vec();
            return Ok(report);
        };
        report.entries_source = Some(source);
        report.entries_checked = leaves.len() as u64;
        report.complete = true;

        // Every verified head must be the root of a prefix of the verified entries.
        for (replica, head) in &verified {
            let Some(prefix) = usize::try_from(head.tree_size).ok().and_then(|n| leaves.get(..n)) else { continue };
            if merkle::root_of(prefix) != head.root {
                findings.add(
                    *replica,
                    FindingKind::Inconsistent,
                    format!(
                        "its signed head of size {} is not a prefix of the log: the log has forked",
                        head.tree_size
                    ),
                );
            }
        }
        // And so must the head seen last time; otherwise the log was rewritten since.
        let mut advances = true;
        if let Some(previous) = previous {
            match usize::try_from(previous.tree_size).ok().and_then(|n| leaves.get(..n)) {
                Some(prefix) if merkle::root_of(prefix) != previous.root => {
                    advances = false;
                    let source = report.entries_source.unwrap_or_default();
                    findings.add(
                        source,
                        FindingKind::Inconsistent,
                        format!("the log no longer extends the head of size {} seen before", previous.tree_size),
                    );
                }
                Some(_) => {}
                // Every replica is behind what was seen before: keep the older, larger head.
                None => advances = false,
            }
        }
        if advances {
            report.next_state = Some(latest);
        }
        report.findings = findings.into_vec();
        Ok(report)
    }

    /// Checks one replica's verified head against the head seen last time: equal sizes need
    /// equal roots; a larger head needs the replica's consistency proof to verify.
    async fn check_against_previous(
        &self,
        replica: usize,
        head: &TreeHead,
        previous: &TreeHead,
        findings: &mut Findings,
    ) {
        use std::cmp::Ordering;
        match head.tree_size.cmp(&previous.tree_size) {
            Ordering::Less => findings.add(
                replica,
                FindingKind::Stale,
                format!("its head has {} entries, fewer than the {} seen before", head.tree_size, previous.tree_size),
            ),
            Ordering::Equal => {
                if head.root != previous.root {
                    findings.add(
                        replica,
                        FindingKind::Inconsistent,
                        format!("its head of size {} has another root than the one seen before", head.tree_size),
                    );
                }
            }
            Ordering::Greater => {
                let path =
                    format!("/v1/audit/proof/consistency?first={}&second={}", previous.tree_size, head.tree_size);
                match self.get_json::<ConsistencyProof>(replica, &path).await {
                    Ok(proof) => {
                        let checked = merkle::parse_hashes(&proof.proof)
                            .ok_or_else(|| "the proof is not a list of hex hashes".to_string())
                            .and_then(|hashes| {
                                if proof.first != previous.tree_size || proof.second != head.tree_size {
                                    return Err(format!("the proof is for sizes {}..{}", proof.first, proof.second));
                                }
                                merkle::verify_consistency(
                                    previous.tree_size,
                                    head.tree_size,
                                    &previous.root,
                                    &head.root,
                                    &hashes,
                                )
                                .map_err(|e| e.to_string())
                            });
                        if let Err(reason) = checked {
                            findings.add(
                                replica,
                                FindingKind::Inconsistent,
                                format!(
                                    "consistency proof from size {} to {}: {reason}",
                                    previous.tree_size, head.tree_size
                                ),
                            );
                        }
                    }
                    Err((finding, _)) => {
                        findings.push(Finding { detail: format!("consistency proof: {}", finding.detail), ..finding })
                    }
                }
            }
        }
    }

    /// Fetches entries `0..size` from one replica, page by page, checking each entry is the one
    /// asked for, and returns their leaf hashes.
    async fn fetch_leaf_hashes(
        &self,
        replica: usize,
        size: u64,
        progress: ProgressFn<'_>,
    ) -> Result<Vec<Hash>, Finding> {
        let invalid = |detail: String| Finding::new(replica, FindingKind::Invalid, detail);
        let mut hashes = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
        let mut start = 0u64;
        while start < size {
            let end = (start + PAGE).min(size) - 1;
            let path = format!("/v1/audit/entries?start={start}&end={end}");
            let page: Entries = self.get_json(replica, &path).await.map_err(|(finding, _)| Finding {
                detail: format!("entries {start}..={end}: {}", finding.detail),
                ..finding
            })?;
            if page.entries.len() as u64 != end - start + 1 {
                return Err(invalid(format!("asked for entries {start}..={end}, got {}", page.entries.len())));
            }
            for (offset, entry) in page.entries.iter().enumerate() {
                let index = start + offset as u64;
                if entry.index != index {
                    return Err(invalid(format!("entry {index} is labelled {}", entry.index)));
                }
                let leaf = BASE64
                    .decode(entry.leaf.as_bytes())
                    .map_err(|_| invalid(format!("entry {index} is not base64")))?;
                check_leaf(&leaf, index).map_err(|reason| invalid(format!("entry {index}: {reason}")))?;
                hashes.push(merkle::leaf_hash(&leaf));
            }
            start = end + 1;
            progress(Progress::Entries { replica, fetched: start, total: size });
        }
        Ok(hashes)
    }
}

/// A leaf must be a version-1 entry recording its own position: a replica cannot hand out an
/// entry from elsewhere in the log (or another log) under this index.
fn check_leaf(leaf: &[u8], index: u64) -> Result<(), String> {
    if leaf.len() < LEAF_PREFIX_LEN {
        return Err(format!("{} bytes, shorter than any entry", leaf.len()));
    }
    if leaf[0] != LEAF_VERSION {
        return Err(format!("leaf version {}", leaf[0]));
    }
    let mut recorded = [0u8; 8];
    recorded.copy_from_slice(&leaf[1..9]);
    let recorded = u64::from_be_bytes(recorded);
    if recorded != index {
        return Err(format!("records log index {recorded}"));
    }
    Ok(())
}

/// Verified heads of one size must have one root: two roots both signed by the root key mean
/// the signers disagree on the log.
fn check_equal_sizes(verified: &[(usize, TreeHead)], findings: &mut Findings) {
    for (i, (a, head_a)) in verified.iter().enumerate() {
        for (b, head_b) in &verified[i + 1..] {
            if head_a.tree_size == head_b.tree_size && head_a.root != head_b.root {
                let detail = |other: usize| {
                    format!(
                        "its signed head of size {} has a different root than replica {other}'s: the log has forked",
                        head_a.tree_size
                    )
                };
                findings.add(*a, FindingKind::Inconsistent, detail(*b));
                findings.add(*b, FindingKind::Inconsistent, detail(*a));
            }
        }
    }
}
