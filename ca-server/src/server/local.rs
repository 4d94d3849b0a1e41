//! `ca-server local`: a whole cluster on this machine for trying the CA out. Runs the dealer
//! ceremony into the folder if it holds none, starts one `ca-server run` process per replica on
//! 127.0.0.1, waits until every replica answers `/healthz` over HTTPS (trusting only the root),
//! prints where everything is, and stops the replicas on Ctrl-C or SIGTERM.

use anyhow::{Context, Result, bail};
use dealer::ceremony::{self, CeremonyParams, MIN_PRODUCTION_BITS, Progress};
use dealer::hosts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threshold::cluster::ClusterFile;
use threshold::encoding::from_json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub struct LocalOptions {
    pub dir: PathBuf,
    pub n: usize,
    pub t: usize,
    pub base_port: u16,
    pub bits: u32,
}

fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("public").join("cluster.json")
}

/// Runs the ceremony unless the folder already holds a cluster; returns the cluster.
fn ensure_ceremony(options: &LocalOptions) -> Result<ClusterFile> {
    let path = cluster_file(&options.dir);
    if !path.exists() {
        println!(
            "No cluster in {}: running the dealer ceremony (n = {}, t = {}, {}-bit root key)...",
            options.dir.display(),
            options.n,
            options.t,
            options.bits
        );
        let params = CeremonyParams {
            n: options.n,
            t: options.t,
            name: "Local Intrusion-Tolerant CA".into(),
            hosts: hosts::local_hosts(options.n, options.base_port)?,
            bits: options.bits,
            out: options.dir.clone(),
            names: dealer::policy::default_profile_names(&[], true)?,
        };
        let mut primes = 0;
        ceremony::run(&params, MIN_PRODUCTION_BITS.min(options.bits), &mut rand::rngs::OsRng, &mut |p| {
            if let Progress::Prime { found, of } = p {
                primes = found;
                eprint!("\r  safe primes: {primes}/{of}");
            }
        })
        .context("dealer ceremony")?;
        eprintln!();
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let cluster: ClusterFile = from_json(&text).with_context(|| format!("reading {}", path.display()))?;
    if (cluster.n, cluster.t) != (options.n, options.t) {
        bail!(
            "{} holds a cluster with n = {}, t = {}, not n = {}, t = {}; pass those or use another --dir",
            options.dir.display(),
            cluster.n,
            cluster.t,
            options.n,
            options.t
        );
    }
    Ok(cluster)
}

fn start_replica(dir: &Path, id: usize) -> Result<Child> {
    let replica = dir.join(format!("replica-{id}"));
    let log_path = replica.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the ca-server executable")?;
    let mut command = Command::new(exe);
    super::child::die_with_parent(command.as_std_mut());
    command
        .arg("run")
        .arg("--config")
        .arg(replica.join("replica.toml"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting replica {id}"))
}

/// `GET path` over HTTPS trusting only `root`; returns the status code.
pub async fn https_status(addr: &str, root: &Path, path: &str) -> Result<u16> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let name = ServerName::try_from(host.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut head = vec![0u8; 64];
    let read = tls.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..read]);
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("not an HTTP response")?;
    Ok(status)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub async fn run(options: LocalOptions) -> Result<()> {
    let cluster = ensure_ceremony(&options)?;
    let dir = &options.dir;
    let root = dir.join("public").join("root.pem");
    let mut children = Vec::new();
    for id in 0..cluster.n {
        children.push(start_replica(dir, id)?);
    }
    let started = Instant::now();
    for (id, replica) in cluster.replicas.iter().enumerate() {
        let addr = format!("{}:{}", replica.host, replica.https_port);
        loop {
            if let Ok(Some(status)) = children[id].try_wait() {
                let log = dir.join(format!("replica-{id}/server.log"));
                bail!("replica {id} exited ({status}); the end of {}:\n{}", log.display(), tail(&log, 15));
            }
            if matches!(https_status(&addr, &root, "/healthz").await, Ok(200)) {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("replica {id} did not become ready at https://{addr} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let cluster_path = cluster_file(dir);
    println!("\nThe CA is running: {} replicas, any {} of which may fail or be compromised.", cluster.n, cluster.t);
    for replica in &cluster.replicas {
        println!(
            "  replica {}: https://localhost:{}   (log: {}/replica-{}/server.log)",
            replica.id,
            replica.https_port,
            dir.display(),
            replica.id
        );
    }
    println!("  root certificate: {}", root.display());
    println!("  cluster file:     {}", cluster_path.display());
    println!("\nGet a first certificate:");
    println!(
        "  cargo run --release -p ca-client -- --cluster {} request --name www.localhost --key-out www.key --cert-out www.pem",
        cluster_path.display()
    );
    println!("\nCtrl-C stops the replicas (their state stays in {}).", dir.display());

    tokio::select! {
        _ = super::shutdown_signal() => println!("\nStopping the replicas..."),
        (status, id) = async {
            let mut interval = tokio::time::interval(Duration::from_millis(500));
            loop {
                interval.tick().await;
                for (id, child) in children.iter_mut().enumerate() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return (status, id);
                    }
                }
            }
        } => eprintln!("replica {id} exited ({status}); stopping the others"),
    }
    for child in &mut children {
        terminate(child);
    }
    for child in &mut children {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        let _ = child.start_kill();
    }
    Ok(())
}

/// SIGTERM: the replica shuts down gracefully (it would also survive SIGKILL).
fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}
