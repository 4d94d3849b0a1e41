//! The round store: every delivered round, in order, with what is needed to serve it to a peer
//! that is behind (its transferable record) and to hand it to the application again after a
//! restart. One append-only file with the write-ahead log's record framing; an index of offsets
//! is rebuilt on open by walking the headers, so a long history is not read into memory.

use super::wal::{HEADER, MAX_RECORD_BYTES, parse_header, record_header};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RoundStoreError {
    #[error("round store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("round store {path}: round {round} is damaged")]
    Corrupt { path: PathBuf, round: u64 },
    #[error("round {got} appended where round {expected} was expected")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("a round of {0} bytes exceeds the store's record limit")]
    TooLarge(usize),
}

pub struct RoundStore {
    path: PathBuf,
    reader: File,
    writer: BufWriter<File>,
    /// Byte offset of each stored round's record (round `i` at `offsets[i]`).
    offsets: Vec<u64>,
    end: u64,
    dirty: bool,
}

impl RoundStore {
    pub fn open(path: &Path) -> Result<RoundStore, RoundStoreError> {
        let err = |source| RoundStoreError::Io { path: path.to_owned(), source };
        let file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(err)?;
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
        let reader = file.try_clone().map_err(err)?;
        Ok(RoundStore {
            path: path.to_owned(),
            reader,
            writer: BufWriter::new(file),
            offsets,
            end: offset,
            dirty: false,
        })
    }

    /// The number of stored rounds (rounds `0..len()`).
    pub fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Appends round `round`, which must be the next one.
    pub fn append(&mut self, round: u64, payload: &[u8]) -> Result<(), RoundStoreError> {
        if round != self.len() {
            return Err(RoundStoreError::OutOfOrder { expected: self.len(), got: round });
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(RoundStoreError::TooLarge(payload.len()));
        }
        let err = |source| RoundStoreError::Io { path: self.path.clone(), source };
        self.writer.write_all(&record_header(payload)).and_then(|_| self.writer.write_all(payload)).map_err(err)?;
        self.offsets.push(self.end);
        self.end += (HEADER + payload.len()) as u64;
        self.dirty = true;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), RoundStoreError> {
        if !self.dirty {
            return Ok(());
        }
        let err = |source| RoundStoreError::Io { path: self.path.clone(), source };
        self.writer.flush().and_then(|_| self.writer.get_ref().sync_data()).map_err(err)?;
        self.dirty = false;
        Ok(())
    }

    /// Reads a stored round (after it was appended; unsynced data is flushed first).
    pub fn get(&mut self, round: u64) -> Result<Option<Vec<u8>>, RoundStoreError> {
        let Some(&offset) = self.offsets.get(round as usize) else {
            return Ok(None);
        };
        let err = |source| RoundStoreError::Io { path: self.path.clone(), source };
        self.writer.flush().map_err(err)?;
        let mut header = [0u8; HEADER];
        self.reader.read_exact_at(&mut header, offset).map_err(err)?;
        let (size, crc) = parse_header(&header);
        let mut payload = vec![0u8; size];
        self.reader.read_exact_at(&mut payload, offset + HEADER as u64).map_err(err)?;
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
        let mut store = RoundStore::open(&path).unwrap();
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
}
