//! What the end-to-end tests share: where the server binary is, and free loopback ports; a
//! cluster driven through the `ca-client` binary ([`cli_cluster`]); the fault campaigns' cluster
//! harness ([`cluster`]) and fault-injecting proxy ([`proxy`]).

pub mod cli_cluster;
pub mod cluster;
pub mod proxy;

use std::net::TcpListener;
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

/// A base port with `2 * n` free ports after it on 127.0.0.1 (HTTPS ports, then peer ports).
pub fn free_base_port(n: usize) -> u16 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let seed = u64::from(std::process::id()) ^ now;
    for attempt in 0..200u64 {
        let base = 20_000 + ((seed.wrapping_mul(7919) + attempt * 997) % 40_000) as u16;
        let listeners: Vec<_> = (0..2 * n as u16).map(|i| TcpListener::bind(("127.0.0.1", base + i))).collect();
        if listeners.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no run of {} free ports on 127.0.0.1", 2 * n);
}
