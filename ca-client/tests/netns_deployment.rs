//! A real multi-host deployment on one machine: four network namespaces, each with its own
//! address on a bridge the test creates (10.231.X.0/24, X chosen free), a ceremony whose hosts
//! are those addresses (parsed exactly as `dealer ceremony --hosts` parses them), one
//! `ip netns exec NS ca-server run` per namespace, and the `ca-client` command line in the root
//! namespace talking to the replicas' addresses. Then one namespace's link is cut (`ip link set
//! down`) and restored: issuance works throughout with three of four, and the cut replica
//! converges with the others.
//!
//! Needs root (CAP_NET_ADMIN); without it the test says why and passes as skipped. Everything
//! the test creates carries its process id and is deleted when it ends, however it ends.
//! `ITCA_CAMPAIGN=full` repeats the cut and restore several times.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use support::cluster::{Load, Replicas, campaign_seed, full_campaign, settle_time, wait_accepted};

const N: usize = 4;
const HTTPS_PORT: u16 = 8443;
const PEER_PORT: u16 = 7443;

fn ip(args: &[&str]) -> Result<Output, String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The test's own network: a bridge in the root namespace (the client's side, `.254`) and one
/// namespace per replica joined to it by a veth pair (replica `i` at `.{i + 1}`). Dropping it
/// deletes every link and namespace it created.
struct Network {
    subnet: u8,
    bridge: Option<String>,
    namespaces: Vec<String>,
    /// The root-namespace end of each replica's veth pair (deleting it deletes the pair).
    veths: Vec<String>,
}

impl Drop for Network {
    fn drop(&mut self) {
        for veth in &self.veths {
            let _ = ip(&["link", "del", veth]);
        }
        for namespace in &self.namespaces {
            let _ = ip(&["netns", "del", namespace]);
        }
        if let Some(bridge) = &self.bridge {
            let _ = ip(&["link", "del", bridge]);
        }
    }
}

impl Network {
    fn create() -> Result<Network, String> {
        let pid = std::process::id();
        // A /24 under 10.231/16 that no route on this machine uses yet.
        let subnet = (0..100u32)
            .map(|k| (100 + (pid + k) % 150) as u8)
            .find(|x| ip(&["-4", "route", "show", &format!("10.231.{x}.0/24")]).is_ok_and(|o| o.stdout.is_empty()))
            .ok_or("no free 10.231.X.0/24")?;
        let mut net = Network { subnet, bridge: None, namespaces: Vec::new(), veths: Vec::new() };
        let bridge = format!("itb{pid}");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        net.bridge = Some(bridge.clone());
        ip(&["addr", "add", &format!("10.231.{subnet}.254/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..N {
            let namespace = format!("itca-{pid}-{i}");
            ip(&["netns", "add", &namespace])?;
            net.namespaces.push(namespace.clone());
            let (outside, inside) = (format!("itv{pid}r{i}"), format!("itn{pid}r{i}"));
            ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside])?;
            net.veths.push(outside.clone());
            ip(&["link", "set", &inside, "netns", &namespace])?;
            ip(&["link", "set", &outside, "master", &bridge])?;
            ip(&["link", "set", &outside, "up"])?;
            let exec = |args: &[&str]| {
                let mut full = vec!["netns", "exec", &namespace, "ip"];
                full.extend(args);
                ip(&full)
            };
            exec(&["link", "set", "lo", "up"])?;
            exec(&["addr", "add", &net.address_cidr(i), "dev", &inside])?;
            exec(&["link", "set", &inside, "up"])?;
        }
        Ok(net)
    }

    fn address(&self, i: usize) -> String {
        format!("10.231.{}.{}", self.subnet, i + 1)
    }

    fn address_cidr(&self, i: usize) -> String {
        format!("{}/24", self.address(i))
    }

    /// `--hosts` for the ceremony: each replica at its namespace's address.
    fn hosts(&self) -> String {
        (0..N).map(|i| format!("{}:{HTTPS_PORT}:{PEER_PORT}", self.address(i))).collect::<Vec<_>>().join(",")
    }

    /// Takes replica `i`'s link down at the bridge: no packet reaches it or leaves it, from the
    /// client or from a peer (the TCP connections are not closed, they go silent).
    fn cut(&self, i: usize) {
        ip(&["link", "set", &self.veths[i], "down"]).expect("cut the link");
    }

    fn restore(&self, i: usize) {
        ip(&["link", "set", &self.veths[i], "up"]).expect("restore the link");
    }
}

/// `ca-client --cluster ... request` in the root namespace; the certificate is verified by the
/// client (chain to the root, names, key) before it is written.
fn issue(replicas: &Replicas, dir: &Path, name: &str) -> Duration {
    let started = Instant::now();
    let cert = dir.join(format!("{name}.pem"));
    let output = Command::new(env!("CARGO_BIN_EXE_ca-client"))
        .arg("--cluster")
        .arg(replicas.cluster_path())
        .args(["--wait", "90", "--timeout", "5", "request", "--name", name, "--key-out"])
        .arg(dir.join(format!("{name}.key")))
        .arg("--cert-out")
        .arg(&cert)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run ca-client");
    assert!(
        output.status.success() && cert.exists(),
        "ca-client request --name {name} failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        replicas.logs(20)
    );
    started.elapsed()
}

#[test]
fn four_replicas_in_their_own_network_namespaces_keep_issuing_through_a_cut_link_and_the_cut_one_converges() {
    let started = Instant::now();
    // Root only: if the namespace cannot be made, say why and skip.
    let probe = format!("itca-probe-{}", std::process::id());
    if let Err(why) = ip(&["netns", "add", &probe]) {
        eprintln!("SKIPPED: network namespaces cannot be created here ({why}); run as root to deploy on them");
        return;
    }
    let _ = ip(&["netns", "del", &probe]);
    let seed = campaign_seed("netns deployment");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Declared before the replicas so that it is dropped after them: processes first, then links.
    let net = Network::create().expect("the test's network");
    let hosts = dealer::hosts::parse_hosts(&net.hosts(), N).expect("--hosts");
    let mut replicas = Replicas::deal(hosts, 1, seed);
    for (i, namespace) in net.namespaces.iter().enumerate() {
        let wrapper = ["ip", "netns", "exec", namespace.as_str()].map(String::from).to_vec();
        replicas.set_wrapper(i, wrapper);
    }
    // Every replica listens on its own namespace's address, nowhere else.
    for i in 0..N {
        let toml = std::fs::read_to_string(replicas.replica_dir(i).join("replica.toml")).expect("replica.toml");
        assert!(toml.contains(&format!("{}:{HTTPS_PORT}", net.address(i))), "{toml}");
    }
    replicas.start_all();
    replicas.wait_healthy(&[0, 1, 2, 3], Duration::from_secs(60));
    let work = replicas.ca.parent().expect("work folder").join("client");
    std::fs::create_dir_all(&work).expect("client folder");
    eprintln!("seed {seed}: four namespaces on 10.231.{}.0/24 up after {:?}", net.subnet, started.elapsed());
    issue(&replicas, &work, "first.localhost");

    // A background load of single-replica submissions: what any replica accepted, including the
    // cut one just before its cut, must settle everywhere.
    let load = Load::start(&replicas, 2, Duration::from_millis(300), seed);
    assert!(wait_accepted(&load, 2, Duration::from_secs(30)), "the load never got going\n{}", replicas.logs(20));
    let cuts = if full_campaign() { 5 } else { 1 };
    for cut in 0..cuts {
        let victim = rng.gen_range(0..N);
        net.cut(victim);
        // The client in the root namespace cannot reach it either; three of four issue.
        let took = issue(&replicas, &work, &format!("cut{cut}-a.localhost"));
        assert!(replicas.health(victim).is_none(), "replica {victim} answers through a cut link");
        issue(&replicas, &work, &format!("cut{cut}-b.localhost"));
        eprintln!("seed {seed}: replica {victim}'s link cut: two certificates issued (the first in {took:?})");
        net.restore(victim);
        replicas.wait_healthy(&[victim], Duration::from_secs(60));
        issue(&replicas, &work, &format!("back{cut}.localhost"));
    }
    let accepted = load.stop(&replicas);
    let ids = [0, 1, 2, 3];
    let (issued, refused) = replicas.wait_all_settled(&accepted, &ids, settle_time(accepted.len(), 120));
    let size = replicas.wait_converged(&ids, accepted.len() as u64, Duration::from_secs(120));
    eprintln!(
        "seed {seed}: {cuts} cut(s) and restore(s); {} accepted by single replicas, {issued} issued and {refused} refused everywhere; one log of {size} entries; {:?}",
        accepted.len(),
        started.elapsed()
    );
}
