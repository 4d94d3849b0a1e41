//! The README's "A first certificate, step by step", run the way a new user pastes it: `ca-server
//! local` in the background, then `ca-client request`, `openssl verify`, `openssl s_server` with
//! `curl`, `ca-client revoke`, `verify`, `status` and `audit`, and finally Ctrl-C (SIGINT) to the
//! `local` process. Each command is checked for its exit status and the lines the README leads the
//! user to expect, and each command line is checked to be in that README section, so the two
//! cannot drift apart.
//!
//! The only substitutions: the cluster is `local-ca/` inside a temporary folder, which is every
//! command's working directory (so `ca-client` finds `local-ca/public/cluster.json` and the
//! operator key by itself, as in the README); free ports instead of 8440.. and 9443; this build's
//! binaries instead of `cargo run --release` (`cargo build -p ca-server` first, or set
//! `ITCA_SERVER_BIN`); and `XDG_STATE_HOME` in the temporary folder, so `ca-client audit` does not
//! write to `~/.local/state`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

const N: usize = 4;
/// The 2048-bit ceremony (two safe primes, found by chance) and the replicas' start, on two cores.
const READY_TIMEOUT: Duration = Duration::from_secs(900);
/// How long `ca-server local` may take to stop its replicas after Ctrl-C (it allows each 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const README: &str = include_str!("../../README.md");

const TWO_COMMANDS: &str = "## The two commands";
const STEP_BY_STEP: &str = "## A first certificate, step by step";

/// The README section under `heading`, up to the next one.
fn readme_section(heading: &str) -> &'static str {
    let start = README.find(heading).unwrap_or_else(|| panic!("the README has no {heading:?}"));
    let rest = &README[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Panics unless `command` is a line of the README section under `heading` (ignoring a trailing
/// `# comment`).
fn assert_in_readme(heading: &str, command: &str) {
    let found =
        readme_section(heading).lines().any(|line| line.split(" #").next().unwrap_or_default().trim() == command);
    assert!(found, "the README's {heading:?} no longer has the line\n  {command}");
}

/// A free port on 127.0.0.1 outside `avoid`.
fn free_port(avoid: Range<u16>) -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).expect("a free port").port();
        if !avoid.contains(&port) {
            return port;
        }
    }
    panic!("no free port outside {avoid:?}");
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a pid this test started (directly or through `ca-server local`).
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let ppid: u32 = fields.nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Whether `pid` is still a live `ca-server run` of a replica under `ca` (a zombie or a reused pid
/// is not).
fn is_replica_of(pid: u32, ca: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    args.iter().any(|a| a == "run") && args.iter().any(|a| a.starts_with(&*ca.to_string_lossy()))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `ca-server local` and its replicas, stopped when the test ends however it ends: Ctrl-C (SIGINT,
/// which it handles by stopping its replicas), SIGKILL if it does not exit in time, then SIGTERM
/// and SIGKILL to any replica left over. (SIGTERM to `ca-server local` would not do: it does not
/// handle it, dies at once, and leaves its replicas running.)
struct Local {
    child: Child,
    ca: PathBuf,
    replicas: Vec<u32>,
    stdout: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Local {
    fn start(work: &Path, base_port: u16) -> Local {
        let ca = work.join("local-ca");
        let stderr = work.join("ca-server-local.err");
        let mut command = Command::new(support::server_binary());
        command
            .arg("local")
            .arg("--dir")
            .arg(&ca)
            .args(["--base-port", &base_port.to_string()])
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"));
        // SAFETY: prctl in the child before exec. Should this test die, `local` gets the Ctrl-C it
        // handles and stops its replicas (SIGKILL would leave them running).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start ca-server local");
        let out = child.stdout.take().expect("its stdout");
        let stdout = Arc::new(Mutex::new(String::new()));
        let (send, lines) = mpsc::channel();
        let buffer = Arc::clone(&stdout);
        // Reads to the end, so `local` never blocks on (or fails writing to) a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut buffer) = buffer.lock() {
                    buffer.push_str(&line);
                    buffer.push('\n');
                }
                let _ = send.send(line);
            }
        });
        Local { child, ca, replicas: Vec::new(), stdout, lines, stderr }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for a line starting with `prefix` on its standard output.
    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("ca-server local did not print {prefix:?} within {timeout:?}\n{}", self.diagnostics())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("ca-server local exited ({status:?}) before printing {prefix:?}\n{}", self.diagnostics())
                }
            }
        }
    }

    /// What to read when a step fails: `local`'s output and the end of every replica's log.
    fn diagnostics(&self) -> String {
        let mut text = format!(
            "--- ca-server local, stdout ---\n{}--- ca-server local, stderr (end) ---\n{}\n",
            self.stdout(),
            tail(&self.stderr, 10)
        );
        for id in 0..N {
            let log = self.ca.join(format!("replica-{id}/server.log"));
            text.push_str(&format!("--- {} (end) ---\n{}\n", log.display(), tail(&log, 15)));
        }
        text
    }

    /// Ctrl-C, then SIGKILL if `local` has not exited within [`STOP_TIMEOUT`].
    fn interrupt(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // Its children now, before it reaps them: the replicas to make sure of afterwards.
        for pid in children_of(self.child.id()) {
            if !self.replicas.contains(&pid) {
                self.replicas.push(pid);
            }
        }
        signal(self.child.id(), libc::SIGINT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// The replicas still running (none once `local` stopped them).
    fn running_replicas(&self) -> Vec<u32> {
        self.replicas.iter().copied().filter(|&pid| is_replica_of(pid, &self.ca)).collect()
    }

    /// SIGTERM to every replica still running, SIGKILL to those that outlive 10 s.
    fn stop_leftover_replicas(&self) {
        let left = self.running_replicas();
        for &pid in &left {
            signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && left.iter().any(|&pid| is_replica_of(pid, &self.ca)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        for pid in left.into_iter().filter(|&pid| is_replica_of(pid, &self.ca)) {
            signal(pid, libc::SIGKILL);
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.interrupt();
        self.stop_leftover_replicas();
    }
}

/// A background process (`openssl s_server ... &`), killed and reaped when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The folder the user works in and the running CA.
struct Session {
    work: PathBuf,
    local: Local,
}

impl Session {
    /// A README command line, split into words, with `ca-client` this build's client. Checks the
    /// line is in the README (`9443` standing for `port`).
    fn command(&self, readme_line: &str, port: u16) -> Command {
        assert_in_readme(STEP_BY_STEP, readme_line);
        let line = readme_line.trim_end_matches('&').replace("9443", &port.to_string());
        let words: Vec<&str> = line.split_whitespace().collect();
        let program = match words[0] {
            "ca-client" => Path::new(env!("CARGO_BIN_EXE_ca-client")),
            other => Path::new(other),
        };
        let mut command = Command::new(program);
        command
            .args(&words[1..])
            .current_dir(&self.work)
            .env("XDG_STATE_HOME", self.work.join("state"))
            // As a new user has them: the defaults, not a cluster or account from the environment.
            .env_remove("ITCA_CLUSTER")
            .env_remove("ITCA_ACCOUNT")
            .stdin(Stdio::null());
        command
    }

    /// Runs a README command line to completion.
    fn run(&self, readme_line: &str, port: u16) -> (Output, String) {
        let output = self.command(readme_line, port).output().unwrap_or_else(|e| panic!("running {readme_line}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (output, stdout)
    }

    /// Panics with the command's output and the replicas' logs unless `ok`.
    #[track_caller]
    fn check(&self, ok: bool, readme_line: &str, output: &Output, what: &str) {
        assert!(ok, "`{readme_line}`: {what}\n{}\n{}", show(output), self.local.diagnostics());
    }

    /// Runs a README command line that must exit 0.
    #[track_caller]
    fn ok(&self, readme_line: &str, port: u16) -> (Output, String) {
        let (output, stdout) = self.run(readme_line, port);
        self.check(output.status.success(), readme_line, &output, "must exit 0");
        (output, stdout)
    }
}

/// The line of `text` that starts with `prefix` (after leading spaces), if any.
fn line_starting<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().map(str::trim_start).find(|l| l.starts_with(prefix))
}

#[test]
fn the_readme_walkthrough_works_as_pasted() {
    let started = Instant::now();
    let temp = tempfile::tempdir().expect("temporary folder");
    let work = temp.path().to_path_buf();
    let base = support::free_base_port(N);
    let https_port = free_port(base..base + 2 * N as u16);

    // Terminal 1: `cargo run --release -p ca-server -- local`, the ceremony on the first start.
    assert_in_readme(TWO_COMMANDS, "cargo run --release -p ca-server -- local");
    assert_in_readme(STEP_BY_STEP, "alias ca-client='cargo run -q --release -p ca-client --'");
    let mut local = Local::start(&work, base);
    local.wait_for_line("The CA is running", READY_TIMEOUT);
    local.wait_for_line("Ctrl-C stops the replicas", Duration::from_secs(10));
    let printed = local.stdout();
    assert!(printed.contains("running the dealer ceremony (n = 4, t = 1, 2048-bit root key)"), "{printed}");
    assert!(printed.contains("The CA is running: 4 replicas, any 1 of which may fail or be compromised."), "{printed}");
    for id in 0..N {
        let url = format!("replica {id}: https://localhost:{}", base + id as u16);
        assert!(printed.contains(&url), "no line for {url}:\n{printed}");
    }
    let root_line = format!("root certificate: {}", work.join("local-ca/public/root.pem").display());
    assert!(printed.contains(&root_line), "{printed}");
    local.replicas = children_of(local.child.id());
    assert_eq!(local.replicas.len(), N, "ca-server local should run {N} replicas:\n{}", local.diagnostics());
    eprintln!("ca-server local ready: {:?}", started.elapsed());
    let session = Session { work: work.clone(), local };

    // Terminal 2, from the same folder.
    let line = "ca-client request --name www.localhost --key-type ec-p256 --key-out www.key --cert-out www.pem";
    let (output, out) = session.ok(line, https_port);
    let issued = line_starting(&out, "issued certificate ").unwrap_or_default();
    session.check(issued.ends_with(" for www.localhost"), line, &output, "must say it issued for www.localhost");
    let serial = issued.trim_start_matches("issued certificate ").split(' ').next().unwrap_or_default().to_string();
    session.check(line_starting(&out, "verified: signed by the root").is_some(), line, &output, "must say verified");
    session.check(line_starting(&out, "key:         www.key").is_some(), line, &output, "must name www.key");
    session.check(line_starting(&out, "certificate: www.pem").is_some(), line, &output, "must name www.pem");
    let mode = std::fs::metadata(work.join("www.key")).expect("www.key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "www.key must be readable by its owner only");

    let line = "openssl verify -x509_strict -CAfile local-ca/public/root.pem www.pem";
    let (output, out) = session.ok(line, https_port);
    session.check(out.trim() == "www.pem: OK", line, &output, "must print `www.pem: OK`");
    eprintln!("issued and verified by OpenSSL: {:?}", started.elapsed());

    // A TLS server with the certificate, a client that trusts only the root.
    let line = "openssl s_server -quiet -accept 9443 -cert www.pem -key www.key -www &";
    let mut s_server = session.command(line, https_port);
    s_server.stdout(Stdio::null()).stderr(File::create(work.join("s_server.log")).expect("s_server log"));
    // SAFETY: prctl in the child before exec; s_server dies with the test.
    unsafe {
        s_server.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut s_server = Background(s_server.spawn().expect("start openssl s_server"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", https_port)).is_err() {
        let exited = s_server.0.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "openssl s_server never listened on {https_port} ({exited:?}):\n{}",
            tail(&work.join("s_server.log"), 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let line =
        "curl --cacert local-ca/public/root.pem --resolve www.localhost:9443:127.0.0.1 https://www.localhost:9443/";
    let (output, out) = session.ok(line, https_port);
    // s_server -www answers with a page that shows its own command line.
    session.check(out.contains("s_server -quiet -accept"), line, &output, "must print s_server's page");
    let (output, code) = {
        let mut curl = session.command(line, https_port);
        let output = curl.args(["--silent", "--output", "/dev/null", "--write-out", "%{http_code}"]).output();
        let output = output.expect("run curl");
        let code = String::from_utf8_lossy(&output.stdout).into_owned();
        (output, code)
    };
    session.check(code == "200", line, &output, "must get HTTP 200");
    // `kill %1`
    signal(s_server.0.id(), libc::SIGTERM);
    let _ = s_server.0.wait();
    drop(s_server);
    eprintln!("served over TLS to curl: {:?}", started.elapsed());

    // Revoke it with its own key; the next jointly signed CRL lists it.
    let line = "ca-client revoke www.pem --key www.key --reason keyCompromise";
    let (output, out) = session.ok(line, https_port);
    let revoked = format!("revoked certificate {serial} (keyCompromise)");
    session.check(line_starting(&out, &revoked).is_some(), line, &output, &format!("must say `{revoked}`"));
    // "the current CRL ... lists it", or "the next CRL will list it" if its signature is not done.
    let crl = line_starting(&out, "the current CRL").or(line_starting(&out, "the next CRL")).unwrap_or_default();
    eprintln!("revoke says: {crl}");

    let line = "ca-client verify www.pem";
    let (output, out) = session.run(line, https_port);
    session.check(output.status.code() == Some(1), line, &output, "must exit 1 (revoked)");
    let revocation = line_starting(&out, "revocation: ").unwrap_or_default();
    session.check(
        revocation.starts_with("revocation: REVOKED at ") && revocation.contains("reason keyCompromise"),
        line,
        &output,
        "must say REVOKED, reason keyCompromise",
    );
    session.check(out.trim_end().ends_with("NOT VALID"), line, &output, "must end with NOT VALID");
    eprintln!("revoked: {:?}", started.elapsed());

    // Every replica's health, then an audit of the log.
    let line = "ca-client status";
    let (output, out) = session.ok(line, https_port);
    for id in 0..N {
        // REPLICA  ADDRESS  HEALTH ...
        let row = [id.to_string(), format!("https://127.0.0.1:{}", base + id as u16), "ok".to_string()];
        let listed = out.lines().any(|l| l.split_whitespace().take(3).eq(row.iter().map(String::as_str)));
        session.check(listed, line, &output, &format!("must list replica {id} at {} as ok", row[1]));
    }
    session.check(
        line_starting(&out, "4 of 4 replicas healthy; 2 needed to answer").is_some(),
        line,
        &output,
        "must say 4 of 4 replicas healthy",
    );

    let line = "ca-client audit";
    let (output, out) = session.ok(line, https_port);
    for id in 0..N {
        let head = line_starting(&out, &format!("replica {id}: ")).unwrap_or_default();
        let verified = head.contains("tree head of size") && head.ends_with("signature verified");
        session.check(verified, line, &output, &format!("replica {id}'s tree head must verify"));
    }
    // The issuance and the revocation.
    session.check(
        line_starting(&out, "log: 2 entries fetched from replica").is_some(),
        line,
        &output,
        "must re-hash the 2 entries",
    );
    session.check(out.trim_end().ends_with("audit: OK"), line, &output, "must end with audit: OK");
    eprintln!("status and audit: {:?}", started.elapsed());

    // Ctrl-C in terminal 1 stops the replicas; their state stays in local-ca.
    let Session { mut local, .. } = session;
    let status = local.interrupt();
    assert!(status.is_some_and(|s| s.success()), "ca-server local must exit 0 on Ctrl-C ({status:?})");
    assert!(local.stdout().contains("Stopping the replicas..."), "{}", local.stdout());
    assert_eq!(local.running_replicas(), Vec::<u32>::new(), "Ctrl-C must stop every replica");
    assert!(work.join("local-ca/replica-0/data").exists(), "the replicas' state stays in local-ca");
    eprintln!("stopped: {:?}", started.elapsed());
}
