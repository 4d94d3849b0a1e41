//! The fault campaign's Byzantine replicas against a real cluster: `t` replicas run the
//! test-only `byzantine-replica` binary (a real replica whose outputs are falsified), the others
//! `ca-server run`, and the `ca-client` binary is used as a user uses it. For each kind of
//! misbehaviour: every certificate is issued and verifies under the root alone, the honest
//! replicas hold identical tree heads, the client names the lying replica where it lies to
//! clients, and the honest replicas count the faults against it.
//!
//! Also, with real faults beside the lies: the Byzantine replica itself killed (SIGKILL) while a
//! request is in flight and restarted, still Byzantine; and a Byzantine replica behind
//! fault-injecting proxies on every replica-to-replica link (`support::proxy`, 127.0.0.1 only),
//! with every link delaying, stalling and resetting, or with an honest replica cut off from its
//! peers and reconnected, under a concurrent load sent to the honest replicas: every request the
//! load got accepted settles at every honest replica and their logs converge.
//!
//! CI runs n = 4 with one Byzantine replica per kind, and one or two kinds of the scenarios
//! with faults; `ITCA_CAMPAIGN=full` adds n = 7 with two and more certificates per run, n = 7
//! with one Byzantine replica while an honest one is killed (SIGKILL) and restarted under the
//! requests (the `t = 2` faults split between a liar and a crash), and every kind of every
//! scenario with faults.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

mod support;
use support::cli_cluster::{Cluster, client_command, show};
use support::cluster::{Load, Replicas, campaign_seed, full_campaign, wait_accepted};
use support::proxy::{Mode, isolate, proxy_every_link};

/// One cluster at a time: several at once would measure the machine's two cores, not the
/// protocols.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn byzantine_binary() -> std::path::PathBuf {
    let path = support::server_binary().with_file_name("byzantine-replica");
    assert!(path.exists(), "{} is missing: run `cargo build -p ca-server --features byzantine`", path.display());
    path
}

fn openssl_verifies(root: &Path, cert: &Path) -> bool {
    openssl_verifies_all(root, &[cert.to_path_buf()])
}

/// `openssl verify -x509_strict` of every file in `certs` (each file's first certificate) under
/// the root alone.
fn openssl_verifies_all(root: &Path, certs: &[PathBuf]) -> bool {
    let output = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .args(certs)
        .output()
        .expect("openssl is installed");
    if !output.status.success() {
        eprintln!("openssl verify:\n{}", show(&output));
    }
    output.status.success()
}

/// GETs `path` from replica `id` with curl trusting only the root.
fn get(cluster: &Cluster, id: usize, path: &str) -> String {
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cluster.cluster_file()).expect("cluster.json")).expect("JSON");
    // Versioned file: the description is under `data`.
    let replica = &file["data"]["replicas"][id];
    let url = format!("https://{}:{}{path}", replica["host"].as_str().expect("host"), replica["https_port"]);
    let output = Command::new("curl")
        // The test ceremony's 1024-bit root is below OpenSSL's default security level.
        .args(["-s", "--ciphers", "DEFAULT@SECLEVEL=0", "--max-time", "30", "--cacert"])
        .arg(cluster.root())
        .arg(url)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Faults the honest replicas attribute to `peer`: the runtime's protocol faults and the CA's
/// signature-share faults, from their metrics.
fn faults_against(cluster: &Cluster, honest: &[usize], peer: usize) -> u64 {
    let label = format!("peer=\"{peer}\"");
    let mut total = 0.0;
    for id in honest {
        for line in get(cluster, *id, "/metrics").lines() {
            let counted = (line.starts_with("replication_faults") || line.starts_with("itca_signature_share_faults"))
                && line.contains(&label);
            if counted && let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                total += value;
            }
        }
    }
    total as u64
}

/// Waits until the honest replicas serve the same signed tree head, of at least `min_size`.
/// The heads are read all at once: with `forged-requests` the log grows every 300 ms, and
/// reading them one after another rarely catches n = 7 replicas at the same round.
fn honest_tree_heads_agree(cluster: &Cluster, honest: &[usize], min_size: u64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let heads: Vec<String> = std::thread::scope(|scope| {
            let reads: Vec<_> =
                honest.iter().map(|id| scope.spawn(move || get(cluster, *id, "/v1/audit/sth"))).collect();
            reads.into_iter().map(|read| read.join().expect("a tree head read")).collect()
        });
        let first: serde_json::Value = serde_json::from_str(&heads[0]).unwrap_or_default();
        if heads.iter().all(|h| *h == heads[0]) && first["tree_size"].as_u64().is_some_and(|s| s >= min_size) {
            return first;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the honest replicas never agreed on a tree head: {heads:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Which replica, if any, is killed (SIGKILL) while a request is in flight halfway through the
/// requests, and restarted (as it was: honest, or Byzantine of the same kind) once the next
/// request has completed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crash {
    None,
    /// Honest replica 0; one of the `t` faults, so `t - 1` replicas lie.
    Honest,
    /// The last Byzantine replica: the crash adds no fault to the `t` liars.
    Byzantine,
}

/// The log size replica `id` reports on `/healthz` (0 if it does not answer).
fn log_size(cluster: &Cluster, id: usize) -> u64 {
    serde_json::from_str::<serde_json::Value>(&get(cluster, id, "/healthz")).unwrap_or_default()["log_size"]
        .as_u64()
        .unwrap_or(0)
}

/// Kinds whose faults the honest replicas attribute: their metrics must count them.
const ATTRIBUTED: [&str; 3] = ["corrupt", "garbage", "bad-rsa-shares"];

/// Checks every 200 ms, doing `between(attempt)` before each wait, until the honest replicas
/// count more than `more_than` faults against `peer`; fails the test after `limit`.
fn until_faults_against(
    cluster: &Cluster,
    (honest, peer, more_than): (&[usize], usize, u64),
    kind: &str,
    limit: Duration,
    mut between: impl FnMut(usize),
) -> u64 {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let counted = faults_against(cluster, honest, peer);
        if counted > more_than {
            return counted;
        }
        assert!(
            started.elapsed() < limit,
            "[{kind}] no fault counted against {peer} beyond {more_than} after {attempt} checks"
        );
        between(attempt);
        attempt += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the honest replicas count more than `more_than` faults against `peer`.
fn wait_faults_against(cluster: &Cluster, honest: &[usize], peer: usize, more_than: u64, kind: &str) -> u64 {
    until_faults_against(cluster, (honest, peer, more_than), kind, Duration::from_secs(20), |_| {})
}

/// Issues further certificates until the honest replicas count more than `more_than` faults
/// against `peer`. A liar commits a fault only when it signs: a replica just restarted may stay
/// behind its peers, whose signature then arrives before it computes its (bad) share, so the
/// number of requests it takes to catch it again depends on the machine's load.
fn issue_until_faults_against(cluster: &Cluster, honest: &[usize], peer: usize, more_than: u64, kind: &str) -> u64 {
    until_faults_against(cluster, (honest, peer, more_than), kind, Duration::from_secs(30), |i| {
        let (name, key, cert) = (format!("more{i}.localhost"), format!("more{i}.key"), format!("more{i}.pem"));
        let output = cluster.client(&["request", "--name", &name, "--key-out", &key, "--cert-out", &cert]);
        assert!(output.status.success(), "[{kind}] further request {i} failed:\n{}", show(&output));
    })
}

/// One run: `t` Byzantine replicas (the last ones) doing `kind`, the rest honest, and `crash`.
fn run(n: usize, t: usize, kind: &str, certificates: usize, crash: Crash) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut cluster = Cluster::deal(n, t);
    let liars = if crash == Crash::Honest { t - 1 } else { t };
    let byzantine: Vec<usize> = (n - liars..n).collect();
    let honest: Vec<usize> = (0..n - liars).collect();
    let program = byzantine_binary();
    let misbehave = ["--misbehave", kind];
    let start = |cluster: &mut Cluster, id: usize| {
        if byzantine.contains(&id) {
            cluster.start_program(id, &program, &misbehave);
        } else {
            cluster.start(id);
        }
    };
    for id in 0..n {
        start(&mut cluster, id);
    }
    cluster.wait_healthy_at_least(n - t);
    let victim = match crash {
        Crash::None => None,
        Crash::Honest => Some(0),
        Crash::Byzantine => Some(n - 1),
    };
    let (kill_at, restart_at) = (certificates / 2, certificates / 2 + 2);
    assert!(victim.is_none() || restart_at < certificates, "no request after the restart");
    // Faults counted against the Byzantine victim once restarted and caught up.
    let mut faults_at_restart = None;
    let dir = cluster.dir.path().to_path_buf();
    let mut serials = Vec::new();
    // How long the last request took: the kill lands at a random moment within as long.
    let mut last_took = Duration::from_millis(500);
    for i in 0..certificates {
        if let Some(victim) = victim
            && i == restart_at
        {
            let behind = log_size(&cluster, honest[1]);
            start(&mut cluster, victim);
            // The later requests are made with the restarted replica taking part (lying again).
            let restarted = Instant::now();
            while log_size(&cluster, victim) < behind {
                assert!(restarted.elapsed() < Duration::from_secs(60), "[{kind}] replica {victim} never caught up");
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!("[{kind}] replica {victim} restarted, caught up to {behind} in {:?}", restarted.elapsed());
            if crash == Crash::Byzantine {
                // Once a replica is caught cheating, its RSA shares are left out of combinations
                // and only spot-checked, at most once a second per party: a second's pause lets
                // the next requests' shares be checked whatever the catch-up caused.
                std::thread::sleep(Duration::from_millis(1500));
                faults_at_restart = Some(faults_against(&cluster, &honest, victim));
            }
        }
        let (name, key, cert) = (format!("b{i}.localhost"), format!("b{i}.key"), format!("b{i}.pem"));
        let args = ["request", "--name", &name, "--key-out", &key, "--cert-out", &cert];
        let request_began = Instant::now();
        let output = match victim {
            Some(victim) if i == kill_at => {
                let mut client = cluster
                    .client_command(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run ca-client");
                let delay = last_took.mul_f64(rand::thread_rng().gen_range(0.0..0.9));
                std::thread::sleep(delay);
                let in_flight = client.try_wait().ok().flatten().is_none();
                cluster.stop(victim);
                eprintln!(
                    "[{kind}] replica {victim} killed {delay:?} into request {i} ({})",
                    if in_flight { "in flight" } else { "already answered" }
                );
                client.wait_with_output().expect("ca-client")
            }
            _ => cluster.client(&args),
        };
        last_took = request_began.elapsed();
        assert!(output.status.success(), "[{kind}, n={n}] request {i} failed:\n{}\n{}", show(&output), cluster.logs());
        assert!(openssl_verifies(&cluster.root(), &dir.join(&cert)), "[{kind}] certificate {i} does not verify");
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(dir.join(&cert))
            .output()
            .expect("openssl");
        serials.push(String::from_utf8_lossy(&text.stdout).trim().trim_start_matches("serial=").to_lowercase());
    }
    let head = honest_tree_heads_agree(&cluster, &honest, certificates as u64);
    // Exactly the certificates asked for were issued, wherever the lies went.
    let listed: serde_json::Value =
        serde_json::from_str(&get(&cluster, honest[0], "/v1/certificates?limit=1000")).expect("certificate list");
    assert_eq!(listed["certificates"].as_array().map(Vec::len), Some(certificates), "[{kind}] {listed}");

    match kind {
        "forged-http" => {
            // The client still gets the true certificate, and names the replica that lied.
            let output = cluster.client(&["get", &serials[0], "--out", "fetched.pem"]);
            assert!(output.status.success(), "[{kind}] get failed:\n{}", show(&output));
            assert!(openssl_verifies(&cluster.root(), &dir.join("fetched.pem")));
            // The audit checks every replica's tree head: it names the forger (and fails, as
            // evidence of a compromised replica should), while the honest heads verify.
            let audit = cluster.client(&["audit"]);
            let said = show(&audit);
            for id in &byzantine {
                assert!(
                    said.contains(&format!("replica {id}: INVALID")),
                    "[{kind}] the audit did not name {id}:\n{said}"
                );
            }
            for id in &honest {
                assert!(said.contains(&format!("replica {id}: tree head of size")), "[{kind}] {said}");
            }
        }
        "forged-requests" => {
            // Ordered, refused with a logged reason, never issued.
            let size = head["tree_size"].as_u64().unwrap_or(0);
            assert!(size > certificates as u64, "[{kind}] no forged request reached the log (size {size})");
        }
        kind if ATTRIBUTED.contains(&kind) => {
            for id in &byzantine {
                if kind == "bad-rsa-shares" {
                    // A liar signs only the objects it is one of the t + 1 designated signers
                    // of (a rotation by hash: one in two at n = 4), so a handful of objects can
                    // pass without its share; further certificates give it the chance to lie.
                    issue_until_faults_against(&cluster, &honest, *id, 0, kind);
                } else {
                    wait_faults_against(&cluster, &honest, *id, 0, kind);
                }
            }
            // A restarted liar is caught again: the faults it commits in the requests after it
            // caught up count too.
            if let (Some(victim), Some(before)) = (victim, faults_at_restart) {
                let after = issue_until_faults_against(&cluster, &honest, victim, before, kind);
                eprintln!("[{kind}] faults counted against {victim}: {before} once restarted, {after} at the end");
            }
        }
        // Silence, replays and equivocation need not be attributable; what counts is that they
        // change nothing above.
        _ => {}
    }
    eprintln!("[{kind}, n={n}, t={t}, crash={crash:?}] {certificates} certificates, {:?}", started.elapsed());
}

const KINDS: [&str; 8] =
    ["corrupt", "equivocate", "withhold", "replay", "garbage", "bad-rsa-shares", "forged-requests", "forged-http"];

/// The kinds to run (`ITCA_BYZANTINE=kind,kind` to replay some).
fn kinds() -> Vec<String> {
    match std::env::var("ITCA_BYZANTINE") {
        Ok(list) => list.split(',').map(str::to_owned).collect(),
        Err(_) => KINDS.iter().map(|k| k.to_string()).collect(),
    }
}

/// The kinds to run where CI runs only `ci`: every kind in the full campaign, `ITCA_BYZANTINE`
/// if set.
fn kinds_or_in_ci(ci: &[&str]) -> Vec<String> {
    if full_campaign() || std::env::var("ITCA_BYZANTINE").is_ok() {
        kinds()
    } else {
        ci.iter().map(|k| k.to_string()).collect()
    }
}

/// Each kind with its run's seed: the first is the printed one, so `ITCA_SEED=N
/// ITCA_BYZANTINE=kind` replays one run.
fn kinds_with_seeds(test: &str, kinds: Vec<String>) -> Vec<(String, u64)> {
    let seed = campaign_seed(test);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    kinds.into_iter().enumerate().map(|(i, kind)| (kind, if i == 0 { seed } else { rng.r#gen() })).collect()
}

/// The network fault a Byzantine replica is combined with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NetworkFault {
    /// Every replica-to-replica link delays, stalls and resets ([`Mode::LOSSY`]) from before the
    /// checked requests until every request has settled.
    Lossy,
    /// One honest replica (picked by the seed) is cut off from all its peers for a while, then
    /// reconnected.
    Isolated,
}

/// `count` certificates requested with the `ca-client` command line, as a user does; each must
/// verify under the root alone. Their names are added to `names`.
fn request_with_cli(replicas: &Replicas, names: &mut Vec<String>, count: usize, what: &str) {
    let root = replicas.ca.join("public/root.pem");
    for _ in 0..count {
        let i = names.len();
        let (name, key, cert) = (format!("cli{i}.localhost"), format!("cli{i}.key"), format!("cli{i}.pem"));
        let args = ["request", "--name", &name, "--key-out", &key, "--cert-out", &cert];
        let output =
            client_command(&replicas.cluster_path(), replicas.folder(), &args).output().expect("run ca-client");
        assert!(output.status.success(), "{what}: request {i} failed:\n{}\n{}", show(&output), replicas.logs(30));
        assert!(openssl_verifies(&root, &replicas.folder().join(&cert)), "{what}: certificate {i} does not verify");
        names.push(name);
    }
}

/// Exactly the certificates asked for exist at honest replica `id`: those of the `issued`
/// load requests and the command line's `cli_names`, once each, and every one verifies under the
/// root alone.
fn only_the_asked_for_certificates(replicas: &Replicas, id: usize, issued: usize, cli_names: &[String], what: &str) {
    let listed = replicas.certificates(id).expect("the certificate list");
    let folder = replicas.folder().join(format!("listed-by-{id}"));
    std::fs::create_dir_all(&folder).expect("folder");
    let mut names = BTreeSet::new();
    let mut files = Vec::new();
    for certificate in &listed {
        let [name] = certificate.dns_names.as_slice() else {
            panic!("{what}: certificate {} names {:?}", certificate.serial, certificate.dns_names)
        };
        assert!(
            name.ends_with(".load.localhost") || cli_names.contains(name),
            "{what}: certificate {} for {name}, which nobody asked for",
            certificate.serial
        );
        assert!(names.insert(name.clone()), "{what}: two certificates for {name}");
        let pem = certificate.certificate_pem.as_ref().unwrap_or_else(|| panic!("{what}: {name} is unsigned"));
        let file = folder.join(format!("{}.pem", certificate.serial));
        std::fs::write(&file, pem).expect("write certificate");
        files.push(file);
    }
    assert_eq!(
        listed.len(),
        issued + cli_names.len(),
        "{what}: {} certificates, but {issued} load requests were issued and {} made with the command line",
        listed.len(),
        cli_names.len()
    );
    assert!(cli_names.iter().all(|name| names.contains(name)), "{what}: a command-line certificate is missing");
    assert!(
        openssl_verifies_all(&replicas.ca.join("public/root.pem"), &files),
        "{what}: a certificate does not verify"
    );
}

/// One run: replica `n - 1` is Byzantine doing `kind`, every replica-to-replica link goes
/// through a proxy, and `fault` hits the links while a load is sent to the honest replicas and
/// certificates are requested with the command line. Every request succeeds (once the network
/// heals where the honest replicas still connected are fewer than `n - t`), every request the
/// load got accepted settles at every honest replica, their logs stay prefix-consistent and
/// converge, and exactly the asked-for certificates exist, each verifying under the root.
fn run_with_network_fault(n: usize, t: usize, kind: &str, fault: NetworkFault, seed: u64) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let what = format!("[{kind}, n={n}, t={t}, {fault:?}] seed {seed}");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut replicas = Replicas::loopback(n, t, seed);
    let proxies = proxy_every_link(&replicas, seed);
    let liar = n - 1;
    let honest: Vec<usize> = (0..liar).collect();
    replicas.set_program(liar, byzantine_binary(), vec!["--misbehave".into(), kind.into()]);
    replicas.start_all();
    replicas.wait_healthy(&honest, Duration::from_secs(60));
    // What a Byzantine replica accepts it may drop, so the load goes to the honest ones only.
    let load = Load::start_on(&replicas, &honest, 2, Duration::from_millis(200), seed);
    assert!(
        wait_accepted(&load, 3, Duration::from_secs(30)),
        "{what}: the load never got going\n{}",
        replicas.logs(20)
    );
    replicas.wait_applied(&honest, 1, Duration::from_secs(60));

    let isolated = match fault {
        NetworkFault::Lossy => {
            for proxy in proxies.values() {
                proxy.set(Mode::LOSSY);
            }
            None
        }
        NetworkFault::Isolated => {
            let id = *honest.choose(&mut rng).expect("an honest replica");
            isolate(&proxies, id, false);
            Some(id)
        }
    };
    let fault_began = Instant::now();
    let connected: Vec<usize> = honest.iter().copied().filter(|id| Some(*id) != isolated).collect();
    // With fewer than n - t honest replicas connected, progress may need the Byzantine one's
    // help, which it need not give: requests are then only required to succeed after healing.
    let quorum = connected.len() >= n - t;
    let size_at_fault = connected.iter().filter_map(|id| replicas.health(*id)).map(|h| h.log_size).max().unwrap_or(0);
    let count = if full_campaign() { 4 } else { 2 };
    let mut cli_names = Vec::new();
    if quorum {
        request_with_cli(&replicas, &mut cli_names, count, &what);
    }
    let window = Duration::from_secs(if full_campaign() { 10 } else { 4 });
    std::thread::sleep(window.saturating_sub(fault_began.elapsed()));
    if quorum {
        let grown = replicas.wait_applied(&connected, size_at_fault + 1, Duration::from_secs(60));
        if let Some(isolated) = isolated {
            let isolated_size = replicas.health(isolated).map(|h| h.log_size);
            assert!(
                isolated_size.is_some_and(|s| s < grown),
                "{what}: the isolated replica {isolated} cannot have applied what the others ordered without it: {isolated_size:?} vs {grown}"
            );
        }
        eprintln!("{what}: the connected honest replicas went from {size_at_fault} to {grown} entries under the fault");
    } else {
        let sizes: Vec<Option<u64>> = connected.iter().map(|id| replicas.health(*id).map(|h| h.log_size)).collect();
        eprintln!(
            "{what}: without a quorum of honest replicas, {connected:?} went from {size_at_fault} to {sizes:?} entries under the fault"
        );
    }
    replicas.assert_prefix_consistent(&honest);
    if let Some(isolated) = isolated {
        isolate(&proxies, isolated, true);
        eprintln!("{what}: replica {isolated} reconnected after {:?}", fault_began.elapsed());
    }
    if !quorum {
        request_with_cli(&replicas, &mut cli_names, count, &what);
    }
    // Lossy links stay lossy until everything has settled.
    let settled = replicas.settle_and_converge(load, &honest, &what);
    only_the_asked_for_certificates(&replicas, honest[0], settled.issued, &cli_names, &what);
    eprintln!("{what}: {} command-line certificates; {:?}", cli_names.len(), started.elapsed());
}

#[test]
fn one_byzantine_replica_of_each_kind_in_four_changes_nothing_a_client_sees() {
    let certificates = if full_campaign() { 10 } else { 2 };
    for kind in &kinds() {
        run(4, 1, kind, certificates, Crash::None);
    }
}

#[test]
fn two_byzantine_replicas_of_each_kind_in_seven_change_nothing_a_client_sees() {
    if !full_campaign() {
        eprintln!("n = 7 runs in the full campaign only (ITCA_CAMPAIGN=full)");
        return;
    }
    for kind in &kinds() {
        run(7, 2, kind, 10, Crash::None);
    }
}

#[test]
fn one_byzantine_replica_of_each_kind_and_one_crashing_in_seven_change_nothing_a_client_sees() {
    if !full_campaign() {
        eprintln!("runs in the full campaign only (ITCA_CAMPAIGN=full)");
        return;
    }
    for kind in &kinds() {
        run(7, 2, kind, 10, Crash::Honest);
    }
}

#[test]
fn a_byzantine_replica_killed_mid_request_and_restarted_still_byzantine_changes_nothing_a_client_sees() {
    // Killed during request 5 (CI: 3), restarted after the next one: 3 (CI: 2) requests after.
    let certificates = if full_campaign() { 10 } else { 7 };
    for kind in &kinds_or_in_ci(&["bad-rsa-shares"]) {
        run(4, 1, kind, certificates, Crash::Byzantine);
    }
}

#[test]
fn a_byzantine_replica_over_links_with_delay_loss_and_resets_loses_no_accepted_request() {
    for (kind, seed) in kinds_with_seeds("Byzantine over lossy links", kinds_or_in_ci(&["equivocate"])) {
        run_with_network_fault(4, 1, &kind, NetworkFault::Lossy, seed);
    }
}

#[test]
fn a_byzantine_replica_and_an_isolated_honest_one_in_seven_lose_no_accepted_request_and_the_isolated_one_catches_up() {
    byzantine_with_an_isolated_honest_replica(7, 2);
}

#[test]
fn a_byzantine_replica_and_an_isolated_honest_one_in_four_never_diverge_and_resume_when_reconnected() {
    byzantine_with_an_isolated_honest_replica(4, 1);
}

/// Every kind of Byzantine replica beside an isolated honest one, at `n` replicas (full
/// campaign only).
fn byzantine_with_an_isolated_honest_replica(n: usize, t: usize) {
    if !full_campaign() {
        eprintln!("runs in the full campaign only (ITCA_CAMPAIGN=full)");
        return;
    }
    for (kind, seed) in kinds_with_seeds(&format!("Byzantine + isolation, n = {n}"), kinds()) {
        run_with_network_fault(n, t, &kind, NetworkFault::Isolated, seed);
    }
}
