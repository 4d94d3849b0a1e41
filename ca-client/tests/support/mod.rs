//! What the end-to-end tests share: where the server binary is, and free loopback ports; a
//! cluster driven through the `ca-client` binary ([`cli_cluster`]); the fault campaigns' cluster
//! harness ([`cluster`]), fault-injecting proxy ([`proxy`]) and small disk ([`disk`]).

pub mod cli_cluster;
pub mod cluster;
// The tmpfs helper of the `ca-server` storage test, shared rather than copied.
#[allow(dead_code)]
#[path = "../../../ca-server/tests/support/disk.rs"]
pub mod disk;
pub mod proxy;

use std::path::{Path, PathBuf};

/// The `ca-server` binary of the same build (or `ITCA_SERVER_BIN`).
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ITCA_SERVER_BIN") {
        return PathBuf::from(path);
    }
    // This test runs from target/<profile>/deps/; the server binary sits in target/<profile>/.
    let exe = std::env::current_exe().expect("the test's own path");
    let path = exe.parent().and_then(Path::parent).expect("target folder").join("ca-server");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p ca-server` first (or set ITCA_SERVER_BIN)",
        path.display()
    );
    path
}

/// A base port with `2 * n` free ports after it on 127.0.0.1 (HTTPS ports, then peer ports),
/// outside the kernel's ephemeral port range: a port inside it can be taken by any outgoing
/// connection while its replica is stopped, and the restarted replica then cannot bind it.
pub fn free_base_port(n: usize) -> u16 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let seed = u64::from(std::process::id()) ^ now;
    dealer::hosts::free_local_base(n, seed)
        .unwrap_or_else(|| panic!("no run of {} free ports on 127.0.0.1 outside the ephemeral range", 2 * n))
}
