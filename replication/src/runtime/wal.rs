//! The write-ahead log: every input of the replica's state machine, in the order it was
//! handled, made durable before any message it caused leaves the replica. Replaying the log
//! after the last snapshot rebuilds the exact state, so a restarted replica never contradicts
//! what it sent before a crash.
//!
//! Records are `[length u32 BE][crc32 u32 BE][payload]` in segment files named by the index of
//! their first record. A crash can leave a torn record at the end of the last segment; it is cut
//! off on open (it was never synced, so nothing was sent because of it). A damaged record
//! anywhere else is corruption and refuses to open.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Records above this size are refused on append and treated as damage on read.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

pub(super) const HEADER: usize = 8;

/// The header of a record holding `payload`.
pub(super) fn record_header(payload: &[u8]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_be_bytes());
    header
}

/// `(length, crc)` from a record header.
pub(super) fn parse_header(header: &[u8; HEADER]) -> (usize, u32) {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (len, u32::from_be_bytes([header[4], header[5], header[6], header[7]]))
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("write-ahead log segment {path} is damaged at byte {offset} (not at its end): refusing to guess")]
    Corrupt { path: PathBuf, offset: u64 },
    #[error("a record of {0} bytes exceeds the write-ahead log's limit")]
    TooLarge(usize),
    #[error("write-ahead log segments do not follow each other: expected index {expected}, found segment {found}")]
    Gap { expected: u64, found: u64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

pub struct Wal {
    dir: PathBuf,
    writer: BufWriter<File>,
    segment_path: PathBuf,
    next_index: u64,
    dirty: bool,
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

/// Reads one segment's records; returns them and the byte length of the intact prefix.
fn read_segment(path: &Path) -> Result<(Vec<Vec<u8>>, u64, bool), WalError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io(path))?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let Some(header) = bytes.get(offset..offset + HEADER).and_then(|h| <&[u8; HEADER]>::try_from(h).ok()) else {
            return Ok((records, offset as u64, true));
        };
        let (len, crc) = parse_header(header);
        let body = offset + HEADER;
        let intact = len <= MAX_RECORD_BYTES
            && bytes.get(body..body + len).is_some_and(|payload| crc32fast::hash(payload) == crc);
        if !intact {
            return Ok((records, offset as u64, true));
        }
        records.push(bytes[body..body + len].to_vec());
        offset = body + len;
    }
    Ok((records, offset as u64, false))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns the records from index `from` on.
    pub fn open(dir: &Path, from: u64) -> Result<(Wal, Replayed), WalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let found = segments(dir)?;
        let mut replayed = Vec::new();
        let mut next_index = from;
        let mut last: Option<PathBuf> = None;
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
            last = Some(path.clone());
        }
        let segment_path = match last {
            Some(path) => path,
            None => {
                let path = dir.join(segment_name(next_index));
                File::create(&path).map_err(io(&path))?;
                sync_dir(dir)?;
                path
            }
        };
        let mut file = OpenOptions::new().append(true).open(&segment_path).map_err(io(&segment_path))?;
        file.seek(SeekFrom::End(0)).map_err(io(&segment_path))?;
        let wal = Wal { dir: dir.to_owned(), writer: BufWriter::new(file), segment_path, next_index, dirty: false };
        Ok((wal, replayed))
    }

    /// Index the next appended record gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Appends a record (buffered; durable after [`Wal::sync`]) and returns its index.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge(payload.len()));
        }
        let header = record_header(payload);
        let path = &self.segment_path;
        self.writer.write_all(&header).and_then(|_| self.writer.write_all(payload)).map_err(io(path))?;
        self.dirty = true;
        let index = self.next_index;
        self.next_index += 1;
        Ok(index)
    }

    /// Makes every appended record durable (one fsync for the whole group).
    pub fn sync(&mut self) -> Result<(), WalError> {
        if !self.dirty {
            return Ok(());
        }
        let path = &self.segment_path;
        self.writer.flush().and_then(|_| self.writer.get_ref().sync_data()).map_err(io(path))?;
        self.dirty = false;
        Ok(())
    }

    /// Starts a new segment at the next index (after a snapshot covering everything before it)
    /// and deletes the segments wholly before `keep_from`.
    pub fn rotate(&mut self, keep_from: u64) -> Result<(), WalError> {
        self.sync()?;
        let path = self.dir.join(segment_name(self.next_index));
        if path != self.segment_path {
            let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
            self.writer = BufWriter::new(file);
            self.segment_path = path;
            sync_dir(&self.dir)?;
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
        self.writer.get_ref().metadata().map(|m| m.len()).unwrap_or(0) + self.writer.buffer().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
