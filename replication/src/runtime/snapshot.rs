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
    /// The folder's fsync after the rename failed: which snapshot a crash would leave is unknown.
    #[error("snapshot {path}: fsync of the folder failed: {source}")]
    Sync { path: PathBuf, source: std::io::Error },
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

/// Writes `snapshot` in place of the previous one. An [`SnapshotFileError::Io`] failure (a full
/// disk, and even a failed fsync of the temporary file) leaves the previous snapshot in place and
/// no temporary file behind: the caller may skip this snapshot, as long as it keeps the log
/// records after the previous one. A [`SnapshotFileError::Sync`] failure may leave either.
pub fn store(dir: &Path, snapshot: &NodeSnapshot) -> Result<(), SnapshotFileError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let io = |source| SnapshotFileError::Io { path: path.clone(), source };
    let mut bytes = Vec::new();
    ciborium::into_writer(snapshot, &mut bytes)
        .map_err(|e| SnapshotFileError::Decode { path: path.clone(), reason: e.to_string() })?;
    // A failed fsync of the temporary file is harmless, unlike the log's: the file is removed,
    // never read, so pages the kernel may have dropped do not matter.
    let written = File::create(&tmp).and_then(|mut file| file.write_all(&bytes).and_then(|_| file.sync_all()));
    if let Err(source) = written.and_then(|_| fs::rename(&tmp, &path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io(source));
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| SnapshotFileError::Sync { path: path.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(next_event: u64) -> NodeSnapshot {
        NodeSnapshot { next_event, protocol: vec![1, 2, 3], outboxes: Vec::new(), inboxes: Vec::new() }
    }

    #[test]
    fn a_snapshot_that_cannot_be_written_leaves_the_previous_one_in_place() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), &snapshot(7)).unwrap();
        // A directory where the temporary file goes: creating it fails, as on a full disk.
        fs::create_dir(dir.path().join(format!("{FILE}.tmp"))).unwrap();
        fs::write(dir.path().join(format!("{FILE}.tmp")).join("x"), b"x").unwrap();
        assert!(matches!(store(dir.path(), &snapshot(9)), Err(SnapshotFileError::Io { .. })));
        assert_eq!(load(dir.path()).unwrap().map(|s| s.next_event), Some(7));
    }
}
