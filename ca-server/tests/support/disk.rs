//! A small tmpfs that a storage-fault test mounts under one replica, fills to the last byte and
//! empties again. Shared by the `ca-server` and `ca-client` test suites (the latter includes this
//! file by path). Mounting needs root (or CAP_SYS_ADMIN); where it is not allowed the test is
//! skipped with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs the test mounts (and lazily unmounts when dropped).
pub struct SmallDisk(pub PathBuf);

impl SmallDisk {
    /// `None` (with the reason printed) where this process may not mount file systems.
    pub fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).expect("mount point");
        let output = match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "itca-test"])
            .arg(path)
            .output()
        {
            Ok(output) => output,
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                return None;
            }
        };
        if !output.status.success() {
            eprintln!("skipped: cannot mount a tmpfs here: {}", String::from_utf8_lossy(&output.stderr));
            return None;
        }
        Some(SmallDisk(path.to_path_buf()))
    }

    /// Fills the disk to the last byte with one file.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0]);
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
