//! The round store: every delivered round, in order, with what is needed to serve it to a peer
//! that is behind (its transferable record) and to hand it to the application again after a
//! restart. One append-only file with the write-ahead log's record framing; an index of offsets
//! is rebuilt on open by walking the headers, so a long history is not read into memory.

use super::append::{AppendFile, HEADER, MAX_RECORD_BYTES, SyncError, parse_header, retryable};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RoundStoreError {
    #[error("round store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("round store {path}: fsync failed: {source}")]
    Sync { path: PathBuf, source: std::io::Error },
    #[error("round store {path}: round {round} is damaged")]
    Corrupt { path: PathBuf, round: u64 },
    #[error("round {got} appended where round {expected} was expected")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("a round of {0} bytes exceeds the store's record limit")]
    TooLarge(usize),
}

impl RoundStoreError {
    /// A write that may work later (a full disk...): retry it. Never a failed fsync.
    pub fn retryable(&self) -> bool {
        matches!(self, RoundStoreError::Io { source, .. } if retryable(source))
    }
}

pub struct RoundStore {
    path: PathBuf,
    file: AppendFile,
    /// Byte offset of each stored round's record (round `i` at `offsets[i]`).
    offsets: Vec<u64>,
}

impl RoundStore {
    pub fn open(path: &Path) -> Result<RoundStore, RoundStoreError> {
        let err = |source| RoundStoreError::Io { path: path.to_owned(), source };
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        let mut offsets = Vec::new();
        let mut offset = 0u64;
        let mut header = [0u8; HEADER];
        while offset + HEADER as u64 <= len {
            file.read_exact_at(&mut header, offset).map_err(err)?;
            let (size, _) = parse_header(&header);
            if size > MAX_RECORD_BYTES || offset + (HEADER + size) as u64 > len {
                break;
            }
            offsets.push(offset);
            offset += (HEADER + size) as u64;
        }
        if offset < len {
            // A torn last round from a crash mid-append: it was never synced, and the
            // write-ahead log replays the inputs that deliver it again.
            file.set_len(offset).and_then(|_| file.sync_all()).map_err(err)?;
        }
        Ok(RoundStore { path: path.to_owned(), file: AppendFile::new(Box::new(file), offset), offsets })
    }

    /// The number of stored rounds (rounds `0..len()`).
    pub fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Queues round `round`, which must be the next one; [`RoundStore::write`] writes it. It can
    /// be read back at once.
    pub fn append(&mut self, round: u64, payload: &[u8]) -> Result<(), RoundStoreError> {
        if round != self.len() {
            return Err(RoundStoreError::OutOfOrder { expected: self.len(), got: round });
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(RoundStoreError::TooLarge(payload.len()));
        }
        self.offsets.push(self.file.push(payload));
        Ok(())
    }

    /// Writes the queued rounds. A failure leaves the file ending at its last complete round
    /// and the rounds queued: calling it again retries them.
    pub fn write(&mut self) -> Result<(), RoundStoreError> {
        self.file.write().map_err(|source| RoundStoreError::Io { path: self.path.clone(), source })
    }

    /// Writes what is queued and makes it durable. A failed fsync ([`RoundStoreError::Sync`])
    /// must not be retried (see [`AppendFile::sync`]).
    pub fn sync(&mut self) -> Result<(), RoundStoreError> {
        let path = self.path.clone();
        self.file.sync().map_err(|e| match e {
            SyncError::Write(source) => RoundStoreError::Io { path, source },
            SyncError::Sync(source) => RoundStoreError::Sync { path, source },
        })
    }

    /// Reads a stored round (written or still queued).
    pub fn get(&self, round: u64) -> Result<Option<Vec<u8>>, RoundStoreError> {
        let Some(&offset) = self.offsets.get(round as usize) else {
            return Ok(None);
        };
        let err = |source| RoundStoreError::Io { path: self.path.clone(), source };
        let mut header = [0u8; HEADER];
        self.file.read_at(&mut header, offset).map_err(err)?;
        let (size, crc) = parse_header(&header);
        let mut payload = vec![0u8; size];
        self.file.read_at(&mut payload, offset + HEADER as u64).map_err(err)?;
        if crc32fast::hash(&payload) != crc {
            return Err(RoundStoreError::Corrupt { path: self.path.clone(), round });
        }
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_read_back_by_number_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut store = RoundStore::open(&path).unwrap();
        for r in 0..10u64 {
            store.append(r, format!("round {r}").as_bytes()).unwrap();
        }
        assert_eq!(store.get(3).unwrap().unwrap(), b"round 3");
        store.sync().unwrap();
        drop(store);
        let store = RoundStore::open(&path).unwrap();
        assert_eq!(store.len(), 10);
        assert_eq!(store.get(9).unwrap().unwrap(), b"round 9");
        assert_eq!(store.get(10).unwrap(), None);
    }

    #[test]
    fn a_round_out_of_order_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RoundStore::open(&dir.path().join("rounds.log")).unwrap();
        assert!(matches!(store.append(1, b"x"), Err(RoundStoreError::OutOfOrder { expected: 0, got: 1 })));
    }

    #[test]
    fn a_torn_last_round_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut store = RoundStore::open(&path).unwrap();
        store.append(0, b"zero").unwrap();
        store.append(1, b"one").unwrap();
        store.sync().unwrap();
        drop(store);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1).unwrap();
        let mut store = RoundStore::open(&path).unwrap();
        assert_eq!(store.len(), 1);
        store.append(1, b"one again").unwrap();
        assert_eq!(store.get(1).unwrap().unwrap(), b"one again");
    }

    #[test]
    fn rounds_queued_on_a_full_disk_are_served_and_written_once_there_is_room() {
        use crate::runtime::append::tests::{Faults, FaultyFile};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut store = RoundStore::open(&path).unwrap();
        let faults = Faults::new(0);
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        store.file = AppendFile::new(Box::new(FaultyFile { file, faults: faults.clone() }), 0);
        store.append(0, b"zero").unwrap();
        store.append(1, b"one").unwrap();
        assert!(store.write().unwrap_err().retryable());
        assert_eq!(store.get(1).unwrap().unwrap(), b"one", "served from memory meanwhile");
        faults.set_limit(u64::MAX);
        store.sync().unwrap();
        drop(store);
        let store = RoundStore::open(&path).unwrap();
        assert_eq!((store.len(), store.get(0).unwrap().unwrap()), (2, b"zero".to_vec()));
    }
}
