//! A cluster of real replica processes on loopback from a 1024-bit dealer ceremony, and the
//! `ca-client` binary run against it as a user runs it (the end-to-end and Byzantine tests).
// Each test crate uses a part of this.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The replicas, stopped (SIGKILL, then reaped) when the test ends however it ends.
pub struct Cluster {
    pub n: usize,
    pub t: usize,
    pub dir: tempfile::TempDir,
    server: PathBuf,
    children: Vec<Option<Child>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The exit status and both outputs, for assertion messages.
pub fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `ca-client --cluster CLUSTER_FILE --wait 90 ARGS`, run in `dir`, its audit state kept there.
pub fn client_command(cluster_file: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ca-client"));
    command
        .arg("--cluster")
        .arg(cluster_file)
        .args(["--wait", "90"])
        .args(args)
        .current_dir(dir)
        // The audit state goes to the test folder, never to the user's home.
        .env("XDG_STATE_HOME", dir.join("state"));
    command
}

impl Cluster {
    /// Runs the dealer ceremony for `n` replicas tolerating `t` (nothing started yet).
    pub fn deal(n: usize, t: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temporary folder");
        let params = dealer::ceremony::CeremonyParams {
            n,
            t,
            name: "End-to-end Test CA".into(),
            hosts: dealer::hosts::local_hosts(n, super::free_base_port(n)).expect("hosts"),
            bits: 1024,
            out: dir.path().join("ca"),
            names: dealer::policy::default_profile_names(&[], true).expect("names"),
        };
        dealer::ceremony::run(&params, 1024, &mut rand::rngs::OsRng, &mut |_| {}).expect("ceremony");
        Cluster { n, t, dir, server: super::server_binary(), children: (0..n).map(|_| None).collect() }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    pub fn cluster_file(&self) -> PathBuf {
        self.ca().join("public/cluster.json")
    }

    pub fn root(&self) -> PathBuf {
        self.ca().join("public/root.pem")
    }

    pub fn replica_dir(&self, id: usize) -> PathBuf {
        self.ca().join(format!("replica-{id}"))
    }

    /// Starts replica `id` with `ca-server run`.
    pub fn start(&mut self, id: usize) {
        let server = self.server.clone();
        self.start_program(id, &server, &["run"]);
    }

    /// Starts replica `id` as `program ARGS --config .../replica.toml`, its output in
    /// `server.log` beside its configuration.
    pub fn start_program(&mut self, id: usize, program: &Path, args: &[&str]) {
        let replica = self.replica_dir(id);
        let log = File::options().create(true).append(true).open(replica.join("server.log")).expect("log file");
        let child = Command::new(program)
            .args(args)
            .arg("--config")
            .arg(replica.join("replica.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        self.children[id] = Some(child);
    }

    pub fn stop(&mut self, id: usize) {
        if let Some(mut child) = self.children[id].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `ca-client --cluster ... ARGS` in the test folder.
    pub fn client(&self, args: &[&str]) -> Output {
        self.client_command(args).output().expect("run ca-client")
    }

    /// The command [`Cluster::client`] runs, to spawn it instead (e.g. to kill a replica while a
    /// request is in flight).
    pub fn client_command(&self, args: &[&str]) -> Command {
        client_command(&self.cluster_file(), self.dir.path(), args)
    }

    /// Like [`Cluster::client`], and the command must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.client(args);
        assert!(output.status.success(), "ca-client {args:?} failed:\n{}\n{}", show(&output), self.logs());
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until `status` shows `healthy` of the replicas healthy.
    pub fn wait_healthy(&self, healthy: usize) {
        self.wait_until_healthy(|count| count == healthy, &format!("{healthy} of {} replicas healthy", self.n));
    }

    /// Waits until `status` shows at least `healthy` of the replicas healthy.
    pub fn wait_healthy_at_least(&self, healthy: usize) {
        self.wait_until_healthy(|count| count >= healthy, &format!("at least {healthy} replicas healthy"));
    }

    fn wait_until_healthy(&self, enough: impl Fn(usize) -> bool, want: &str) {
        let suffix = format!(" of {} replicas healthy", self.n);
        let started = Instant::now();
        loop {
            let output = self.client(&["status"]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let count = stdout
                .lines()
                .find_map(|line| line.split_once(&suffix).and_then(|(count, _)| count.trim().parse::<usize>().ok()));
            if count.is_some_and(&enough) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "never {want}:\n{}\n{}", show(&output), self.logs());
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last lines of every replica's log.
    pub fn logs(&self) -> String {
        (0..self.n)
            .map(|id| {
                let text = std::fs::read_to_string(self.replica_dir(id).join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                format!("--- replica {id} ---\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
