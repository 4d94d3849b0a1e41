//! The write-ahead log: every input of the replica's state machine, in the order it was
//! handled, made durable before any message it caused leaves the replica. Replaying the log
//! after the last snapshot rebuilds the exact state, so a restarted replica never contradicts
//! what it sent before a crash.
//!
//! Records are `[length u32 BE][crc32 u32 BE][payload]` in segment files named by the index of
//! their first record. A crash can leave a torn record at the end of the last segment; it is cut
//! off on open (it was never synced, so nothing was sent because of it). A damaged record
//! anywhere else is corruption and refuses to open. A write that fails (a full disk) is cut back
//! to the last complete record at once and its record stays queued until a retry writes it
//! ([`AppendFile`]).

use super::append::{AppendFile, SyncError, decode, retryable};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

pub use super::append::MAX_RECORD_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("write-ahead log {path}: fsync failed: {source}")]
    Sync { path: PathBuf, source: std::io::Error },
    #[error("write-ahead log segment {path} is damaged at byte {offset} (not at its end): refusing to guess")]
    Corrupt { path: PathBuf, offset: u64 },
    #[error("a record of {0} bytes exceeds the write-ahead log's limit")]
    TooLarge(usize),
    #[error("write-ahead log segments do not follow each other: expected index {expected}, found segment {found}")]
    Gap { expected: u64, found: u64 },
}

impl WalError {
    /// A write that may work later (a full disk...): retry it. Never a failed fsync.
    pub fn retryable(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if retryable(source))
    }

    fn sync(path: &Path, error: SyncError) -> WalError {
        match error {
            SyncError::Write(source) => WalError::Io { path: path.to_owned(), source },
            SyncError::Sync(source) => WalError::Sync { path: path.to_owned(), source },
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

pub struct Wal {
    dir: PathBuf,
    segment: AppendFile,
    segment_path: PathBuf,
    next_index: u64,
}

/// Records read back on open: `(index, payload)` for every index at or after the one asked for.
pub type Replayed = Vec<(u64, Vec<u8>)>;

fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(first) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Reads one segment's records; returns them, the byte length of the intact prefix, and whether
/// anything follows it.
fn read_segment(path: &Path) -> Result<(Vec<Vec<u8>>, u64, bool), WalError> {
    Ok(decode(&fs::read(path).map_err(io(path))?))
}

/// Opens a segment for appending after its first `written` bytes (positioned writes: a retried
/// write lands where the failed one began).
fn open_segment(path: &Path, written: u64) -> Result<AppendFile, WalError> {
    let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io(path))?;
    Ok(AppendFile::new(Box::new(file), written))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    let dir_file = File::open(dir).map_err(io(dir))?;
    dir_file.sync_all().map_err(|source| WalError::Sync { path: dir.to_owned(), source })
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns the records from index `from` on.
    pub fn open(dir: &Path, from: u64) -> Result<(Wal, Replayed), WalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let found = segments(dir)?;
        let mut replayed = Vec::new();
        let mut next_index = from;
        let mut last: Option<(PathBuf, u64)> = None;
        for (i, (first, path)) in found.iter().enumerate() {
            let is_last = i + 1 == found.len();
            if let Some((next_first, _)) = found.get(i + 1)
                && *next_first <= from
            {
                continue; // wholly before the snapshot; removed at the next compaction
            }
            // Segments must follow each other, and the first one kept must reach back to `from`.
            if (last.is_some() && *first != next_index) || (last.is_none() && *first > from) {
                return Err(WalError::Gap { expected: next_index, found: *first });
            }
            let (records, good_len, damaged) = read_segment(path)?;
            let count = records.len() as u64;
            if damaged {
                if !is_last {
                    return Err(WalError::Corrupt { path: path.clone(), offset: good_len });
                }
                // A torn tail from a crash mid-append: never synced, so never acted upon.
                let file = OpenOptions::new().write(true).open(path).map_err(io(path))?;
                file.set_len(good_len).and_then(|_| file.sync_all()).map_err(io(path))?;
            }
            for (k, record) in records.into_iter().enumerate() {
                let index = first + k as u64;
                if index >= from {
                    replayed.push((index, record));
                }
            }
            next_index = next_index.max(first + count);
            last = Some((path.clone(), good_len));
        }
        let (segment_path, written) = match last {
            Some(last) => last,
            None => {
                let path = dir.join(segment_name(next_index));
                File::create(&path).map_err(io(&path))?;
                sync_dir(dir)?;
                (path, 0)
            }
        };
        let segment = open_segment(&segment_path, written)?;
        Ok((Wal { dir: dir.to_owned(), segment, segment_path, next_index }, replayed))
    }

    /// Index the next appended record gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Queues a record and returns its index; [`Wal::write`] writes it, [`Wal::sync`] makes it
    /// durable. The index is taken even if writing fails: the record stays queued for the retry.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge(payload.len()));
        }
        self.segment.push(payload);
        let index = self.next_index;
        self.next_index += 1;
        Ok(index)
    }

    /// Writes the queued records (not yet durable). A failure leaves the segment ending at its
    /// last complete record and the records queued: calling it again retries them.
    pub fn write(&mut self) -> Result<(), WalError> {
        self.segment.write().map_err(io(&self.segment_path))
    }

    /// Writes what is queued and makes every record durable (one fsync for the whole group).
    /// A failed fsync ([`WalError::Sync`]) must not be retried (see [`AppendFile::sync`]).
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.segment.sync().map_err(|e| WalError::sync(&self.segment_path, e))
    }

    /// Starts a new segment at the next index (after a snapshot covering everything before it)
    /// and deletes the segments wholly before `keep_from`.
    pub fn rotate(&mut self, keep_from: u64) -> Result<(), WalError> {
        self.sync()?;
        let path = self.dir.join(segment_name(self.next_index));
        if path != self.segment_path {
            // A failure here (no room for the file) leaves the log on its current segment,
            // which holds the records from this index on just as well; the next rotation
            // tries again.
            let segment = open_segment(&path, 0)?;
            sync_dir(&self.dir)?;
            self.segment = segment;
            self.segment_path = path;
        }
        let found = segments(&self.dir)?;
        for (i, (_, old)) in found.iter().enumerate() {
            let next_first = found.get(i + 1).map(|(f, _)| *f);
            if next_first.is_some_and(|f| f <= keep_from) && *old != self.segment_path {
                fs::remove_file(old).map_err(io(old))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Bytes in the current segment (a hint for when to snapshot).
    pub fn segment_bytes(&self) -> u64 {
        self.segment.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::append::tests::{Faults, FaultyFile};
    use std::io::Write;

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("event {i}").into_bytes()).collect()
    }

    #[test]
    fn synced_records_are_replayed_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, replayed) = Wal::open(dir.path(), 0).unwrap();
        assert!(replayed.is_empty());
        for r in records(5) {
            wal.append(&r).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let (wal, replayed) = Wal::open(dir.path(), 2).unwrap();
        assert_eq!(replayed, (2..5).map(|i| (i as u64, records(5)[i].clone())).collect::<Vec<_>>());
        assert_eq!(wal.next_index(), 5);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appending_continues_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        for r in records(3) {
            wal.append(&r).unwrap();
        }
        wal.sync().unwrap();
        let path = wal.segment_path.clone();
        drop(wal);
        // A crash in the middle of the fourth record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 9, 1, 2]).unwrap();
        drop(f);
        let (mut wal, replayed) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(replayed.len(), 3);
        wal.append(b"after").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(replayed.last().unwrap(), &(3, b"after".to_vec()));
    }

    #[test]
    fn damage_before_the_last_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        wal.append(b"one").unwrap();
        wal.append(b"two").unwrap();
        let first = wal.segment_path.clone();
        wal.rotate(0).unwrap();
        wal.append(b"three").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&first, bytes).unwrap();
        assert!(matches!(Wal::open(dir.path(), 0), Err(WalError::Corrupt { .. })));
    }

    #[test]
    fn rotation_keeps_indices_and_drops_segments_before_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        for r in records(4) {
            wal.append(&r).unwrap();
        }
        wal.rotate(4).unwrap();
        wal.append(b"e4").unwrap();
        wal.rotate(5).unwrap();
        wal.append(b"e5").unwrap();
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        let (wal, replayed) = Wal::open(dir.path(), 5).unwrap();
        assert_eq!(replayed, vec![(5, b"e5".to_vec())]);
        assert_eq!(wal.next_index(), 6);
    }

    #[test]
    fn an_oversized_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        assert!(matches!(wal.append(&vec![0; MAX_RECORD_BYTES + 1]), Err(WalError::TooLarge(_))));
    }

    /// A new log in `dir` whose segment is written through a file the returned faults control
    /// (no limit, fsync working, until the test says otherwise).
    fn wal_on_faulty_file(dir: &Path) -> (Wal, std::sync::Arc<Faults>) {
        let (mut wal, _) = Wal::open(dir, 0).unwrap();
        let file = OpenOptions::new().read(true).write(true).open(&wal.segment_path).unwrap();
        let faults = Faults::new(u64::MAX);
        wal.segment = AppendFile::new(Box::new(FaultyFile { file, faults: faults.clone() }), 0);
        (wal, faults)
    }

    #[test]
    fn a_full_disk_loses_no_record_and_duplicates_none_once_space_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, faults) = wal_on_faulty_file(dir.path());
        let all = records(6);
        for r in &all[..2] {
            wal.append(r).unwrap();
            wal.write().unwrap();
        }
        wal.sync().unwrap();
        // The disk fills in the middle of the third record.
        faults.set_limit(wal.segment_bytes() + 5);
        assert_eq!(wal.append(&all[2]).unwrap(), 2);
        let error = wal.write().unwrap_err();
        assert!(error.retryable(), "{error}");
        // A crash now would replay exactly the complete records.
        let (_, replayed) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(replayed.len(), 2);
        assert!(wal.write().is_err(), "still full");
        faults.set_limit(u64::MAX);
        wal.write().unwrap();
        for r in &all[3..] {
            wal.append(r).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let (wal, replayed) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(replayed, all.into_iter().enumerate().map(|(i, r)| (i as u64, r)).collect::<Vec<_>>());
        assert_eq!(wal.next_index(), 6);
    }

    #[test]
    fn a_failed_fsync_is_not_retryable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, faults) = wal_on_faulty_file(dir.path());
        faults.fail_sync.store(true, std::sync::atomic::Ordering::SeqCst);
        wal.append(b"one").unwrap();
        let error = wal.sync().unwrap_err();
        assert!(matches!(error, WalError::Sync { .. }) && !error.retryable(), "{error}");
    }
}
