//! An append-only file of framed records, `[length u32 BE][crc32 u32 BE][payload]`, that a failed
//! write cannot leave undecodable: the write-ahead log's segments and the round store are made of
//! it. It knows how many bytes of the file hold complete records. A write that fails part-way
//! (the disk filled up, a quota, the file system made read-only) is cut back to that length, and
//! the records stay queued in memory, so calling [`AppendFile::write`] again writes the same bytes
//! at the same offset: nothing is lost, duplicated or half-written.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;

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

/// Whether a failed write may work later without anyone restarting the replica: the disk or the
/// quota is full, or the file system or folder was made read-only. The node pauses on these and
/// stops on anything else (an I/O error of the device would recur, or worse).
pub fn retryable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied
    )
}

/// The file operations an [`AppendFile`] uses (a trait so that tests can make writes fail).
pub(super) trait RecordIo: Send {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
}

impl RecordIo for File {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        FileExt::write_at(self, buf, offset)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// Why [`AppendFile::sync`] failed.
#[derive(Debug)]
pub(super) enum SyncError {
    /// Writing the queued records failed; they are still queued.
    Write(io::Error),
    /// The fsync failed: what was written may be lost (see [`AppendFile::sync`]).
    Sync(io::Error),
}

pub(super) struct AppendFile {
    io: Box<dyn RecordIo>,
    /// Bytes at the start of the file that hold complete records (written, maybe not synced).
    written: u64,
    /// Framed records not written yet: they stay here until a write of them succeeds.
    queued: Vec<u8>,
    /// A failed write left bytes past `written` that could not be cut off yet.
    torn: bool,
    /// Something was written since the last sync.
    unsynced: bool,
}

impl AppendFile {
    /// Appends after the first `written` bytes of `io` (which the caller found to hold complete
    /// records; anything after them is overwritten).
    pub fn new(io: Box<dyn RecordIo>, written: u64) -> AppendFile {
        AppendFile { io, written, queued: Vec::new(), torn: false, unsynced: false }
    }

    /// The byte length the file has once everything queued is written.
    pub fn end(&self) -> u64 {
        self.written + self.queued.len() as u64
    }

    /// Queues a record (no I/O); returns its offset in the file. The caller checks its size
    /// against [`MAX_RECORD_BYTES`].
    pub fn push(&mut self, payload: &[u8]) -> u64 {
        let offset = self.end();
        self.queued.extend_from_slice(&record_header(payload));
        self.queued.extend_from_slice(payload);
        offset
    }

    /// Writes what is queued. If that fails, the file is cut back to its complete records (a
    /// reader after a crash finds no torn record) and the records stay queued, so calling it
    /// again retries exactly what failed.
    pub fn write(&mut self) -> io::Result<()> {
        if self.torn {
            self.io.set_len(self.written)?;
            self.torn = false;
        }
        if self.queued.is_empty() {
            return Ok(());
        }
        let mut done = 0;
        while done < self.queued.len() {
            match self.io.write_at(&self.queued[done..], self.written + done as u64) {
                Ok(0) => return self.failed(done, ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.failed(done, e),
            }
        }
        self.written += self.queued.len() as u64;
        self.queued.clear();
        self.unsynced = true;
        Ok(())
    }

    fn failed(&mut self, partial: usize, error: io::Error) -> io::Result<()> {
        // Only a partial write leaves anything to cut; if the cut fails too (a read-only file
        // system refuses it), the next attempt cuts before writing.
        self.torn = partial > 0 && self.io.set_len(self.written).is_err();
        Err(error)
    }

    /// Writes what is queued and makes it durable.
    ///
    /// A failed fsync is reported as [`SyncError::Sync`] and must not be retried: Linux may
    /// have dropped the dirty pages it could not write and mark them clean, so a second fsync
    /// can succeed without the data ever reaching the disk.
    pub fn sync(&mut self) -> Result<(), SyncError> {
        self.write().map_err(SyncError::Write)?;
        if self.unsynced {
            self.io.sync_data().map_err(SyncError::Sync)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset`, from the file or from what is still queued.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset < self.written {
            return self.io.read_exact_at(buf, offset);
        }
        let start = usize::try_from(offset - self.written).map_err(|_| io::Error::from(ErrorKind::UnexpectedEof))?;
        let bytes = start.checked_add(buf.len()).and_then(|end| self.queued.get(start..end));
        buf.copy_from_slice(bytes.ok_or(io::Error::from(ErrorKind::UnexpectedEof))?);
        Ok(())
    }
}

/// Splits `bytes` into records: the complete ones, the length of the prefix they fill, and
/// whether anything follows it (a torn or damaged record).
pub(super) fn decode(bytes: &[u8]) -> (Vec<Vec<u8>>, u64, bool) {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let Some(header) = bytes.get(offset..offset + HEADER).and_then(|h| <&[u8; HEADER]>::try_from(h).ok()) else {
            return (records, offset as u64, true);
        };
        let (len, crc) = parse_header(header);
        let body = offset + HEADER;
        let payload = bytes.get(body..body + len).filter(|p| len <= MAX_RECORD_BYTES && crc32fast::hash(p) == crc);
        let Some(payload) = payload else {
            return (records, offset as u64, true);
        };
        records.push(payload.to_vec());
        offset = body + len;
    }
    (records, offset as u64, false)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// What a [`FaultyFile`] does wrong, changed by the test while the file is in use.
    #[derive(Default)]
    pub struct Faults {
        /// The file may not grow past this many bytes: a write across it writes what fits (a
        /// short write) and the next one fails with ENOSPC, as on a real full disk. Raising it
        /// is freeing space.
        pub limit: AtomicU64,
        /// Cutting the file back fails (EROFS), as on a file system remounted read-only.
        pub refuse_cut: AtomicBool,
        /// fsync fails (EIO).
        pub fail_sync: AtomicBool,
    }

    impl Faults {
        pub fn new(limit: u64) -> Arc<Faults> {
            Arc::new(Faults { limit: AtomicU64::new(limit), ..Faults::default() })
        }

        pub fn set_limit(&self, limit: u64) {
            self.limit.store(limit, Ordering::SeqCst);
        }
    }

    pub struct FaultyFile {
        pub file: File,
        pub faults: Arc<Faults>,
    }

    impl RecordIo for FaultyFile {
        fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
            let room = self.faults.limit.load(Ordering::SeqCst).saturating_sub(offset);
            if room == 0 && !buf.is_empty() {
                return Err(ErrorKind::StorageFull.into());
            }
            let fits = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            FileExt::write_at(&self.file, &buf[..fits], offset)
        }

        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            FileExt::read_exact_at(&self.file, buf, offset)
        }

        fn set_len(&self, len: u64) -> io::Result<()> {
            if self.faults.refuse_cut.load(Ordering::SeqCst) {
                return Err(ErrorKind::ReadOnlyFilesystem.into());
            }
            self.file.set_len(len)
        }

        fn sync_data(&self) -> io::Result<()> {
            if self.faults.fail_sync.load(Ordering::SeqCst) {
                return Err(io::Error::other("EIO"));
            }
            self.file.sync_data()
        }
    }

    fn faulty(limit: u64) -> (tempfile::TempDir, std::path::PathBuf, AppendFile, Arc<Faults>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let faults = Faults::new(limit);
        let append = AppendFile::new(Box::new(FaultyFile { file, faults: faults.clone() }), 0);
        (dir, path, append, faults)
    }

    fn on_disk(path: &std::path::Path) -> (Vec<Vec<u8>>, bool) {
        let (records, _, damaged) = decode(&std::fs::read(path).unwrap());
        (records, damaged)
    }

    fn record(i: usize) -> Vec<u8> {
        format!("record number {i}").into_bytes()
    }

    #[test]
    fn a_write_that_fails_part_way_is_cut_back_to_the_last_complete_record_and_retried_exactly() {
        let (_dir, path, mut file, faults) = faulty(u64::MAX);
        file.push(&record(0));
        file.write().unwrap();
        let first = file.end();
        // The disk fills in the middle of the second of two records.
        faults.set_limit(first + HEADER as u64 + 3);
        file.push(&record(1));
        file.push(&record(2));
        let error = file.write().unwrap_err();
        assert!(retryable(&error), "{error}");
        assert_eq!(on_disk(&path), (vec![record(0)], false), "cut back to the complete record");
        // Still full: the retry fails the same way and leaves the file as it was.
        assert!(file.write().is_err());
        assert_eq!(on_disk(&path), (vec![record(0)], false));
        // What is queued can be read back meanwhile.
        let mut header = [0u8; HEADER];
        file.read_at(&mut header, first).unwrap();
        assert_eq!(parse_header(&header).0, record(1).len());
        // Room again: the same records, once each, after the first.
        faults.set_limit(u64::MAX);
        file.sync().unwrap();
        assert_eq!(on_disk(&path), ((0..3).map(record).collect(), false));
        assert_eq!(file.end(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn a_torn_write_that_cannot_be_cut_back_at_once_is_cut_before_the_next_write() {
        let (_dir, path, mut file, faults) = faulty(10);
        faults.refuse_cut.store(true, Ordering::SeqCst);
        file.push(&record(0));
        assert!(file.write().is_err());
        // The cut was refused: a torn record is on disk (a restart would cut it off)...
        assert_eq!(on_disk(&path), (vec![], true));
        // ...and while cutting is refused, nothing more is written after it.
        faults.set_limit(u64::MAX);
        assert_eq!(file.write().unwrap_err().kind(), ErrorKind::ReadOnlyFilesystem);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 10);
        faults.refuse_cut.store(false, Ordering::SeqCst);
        file.push(&record(1));
        file.write().unwrap();
        assert_eq!(on_disk(&path), (vec![record(0), record(1)], false));
    }

    #[test]
    fn a_failed_fsync_is_reported_apart_from_a_failed_write() {
        let (_dir, _path, mut file, faults) = faulty(0);
        file.push(&record(0));
        assert!(matches!(file.sync(), Err(SyncError::Write(e)) if retryable(&e)));
        faults.set_limit(u64::MAX);
        faults.fail_sync.store(true, Ordering::SeqCst);
        assert!(matches!(file.sync(), Err(SyncError::Sync(_))));
    }

    #[test]
    fn only_full_disks_quotas_and_read_only_storage_are_retryable() {
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded, ErrorKind::ReadOnlyFilesystem] {
            assert!(retryable(&kind.into()));
        }
        assert!(retryable(&io::Error::from_raw_os_error(13))); // EACCES
        assert!(!retryable(&io::Error::from_raw_os_error(5))); // EIO
        assert!(!retryable(&io::Error::other("anything else")));
    }
}
