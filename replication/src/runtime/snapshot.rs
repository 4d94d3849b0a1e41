//! The node's snapshot: its whole deterministic state at a write-ahead-log position. Restoring it
//! and replaying the log records after that position rebuilds the state exactly. Written to a
//! temporary file, synced, then renamed over the previous one, so a crash leaves either the old
//! or the new snapshot, never a mix.

use super::link::{Inbox, Outbox};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("snapshot {path} does not decode: {reason}")]
    Decode { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The first write-ahead-log index not reflected in this snapshot.
    pub next_event: u64,
    /// The secure causal atomic broadcast's own snapshot.
    #[serde(with = "crate::wire::bytes")]
    pub protocol: Vec<u8>,
    /// Per peer (indexed by replica id; our own entry stays empty).
    pub outboxes: Vec<Outbox>,
    pub inboxes: Vec<Inbox>,
}

const FILE: &str = "snapshot.cbor";

pub fn load(dir: &Path) -> Result<Option<NodeSnapshot>, SnapshotFileError> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SnapshotFileError::Io { path, source }),
    };
    let mut reader = bytes.as_slice();
    ciborium::from_reader(&mut reader).map(Some).map_err(|e| SnapshotFileError::Decode { path, reason: e.to_string() })
}

pub fn store(dir: &Path, snapshot: &NodeSnapshot) -> Result<(), SnapshotFileError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let io = |source| SnapshotFileError::Io { path: path.clone(), source };
    let mut bytes = Vec::new();
    ciborium::into_writer(snapshot, &mut bytes)
        .map_err(|e| SnapshotFileError::Decode { path: path.clone(), reason: e.to_string() })?;
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}
