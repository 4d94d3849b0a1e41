//! A small application on the replica runtime, for tests and benchmarks: it orders opaque
//! requests read from standard input and appends every delivered request to a log file, so
//! the logs of the replicas can be compared. One request per input line: `plain TEXT` or
//! `sealed TEXT` (sealed to the cluster's threshold-encryption key as a client would). Each
//! accepted request is acknowledged on standard output as `accepted HEX-DIGEST`.
//!
//! The log has one line per delivered request, `ROUND INDEX plain|sealed DIGEST PAYLOAD-HEX`,
//! and `ROUND end TIME SEED` after each round, synced; on restart, lines after the last `end`
//! are dropped and delivery resumes with the next round.

use anyhow::{Context, Result};
use clap::Parser;
use prometheus_client::registry::Registry;
use replication::atomic::secure::Request;
use replication::runtime::files::ReplicaFiles;
use replication::runtime::{OrderedRound, Runtime, RuntimeConfig};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(about = "Orders requests from standard input with the replica runtime (test application)")]
struct Args {
    /// The replica's replica.toml, as the dealer wrote it.
    #[arg(long)]
    config: PathBuf,
    /// The runtime's data folder (log, snapshots, rounds).
    #[arg(long)]
    data: PathBuf,
    /// The log of delivered requests.
    #[arg(long)]
    out: PathBuf,
    /// Write a snapshot after this many logged inputs.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// Print the replica's status as JSON to standard error every this many milliseconds.
    #[arg(long)]
    status_every_ms: Option<u64>,
}

/// Reads the log, drops a torn last round, and returns the first round not in it.
fn resume_point(path: &Path) -> Result<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(0);
    };
    let mut keep = 0usize;
    let mut next = 0u64;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let mut fields = line.split_whitespace();
        if let (Some(round), Some("end")) = (fields.next(), fields.next())
            && line.ends_with('\n')
        {
            next = round.parse::<u64>().context("malformed log line")? + 1;
            keep = offset;
        }
    }
    if keep < text.len() {
        OpenOptions::new().write(true).open(path)?.set_len(keep as u64)?;
    }
    Ok(next)
}

fn append_round(log: &mut File, round: &OrderedRound) -> Result<()> {
    let mut text = String::new();
    for (i, r) in round.requests.iter().enumerate() {
        let kind = if r.sealed { "sealed" } else { "plain" };
        let payload = r.payload.as_deref().map(hex::encode).unwrap_or_else(|| "-".into());
        text.push_str(&format!("{} {i} {kind} {} {payload}\n", round.round, hex::encode(r.digest)));
    }
    text.push_str(&format!("{} end {} {}\n", round.round, round.time, hex::encode(round.seed)));
    log.write_all(text.as_bytes())?;
    log.sync_data()?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let files = ReplicaFiles::load(&args.config)?;
    let encryption = files.cluster.encryption.clone();
    let mut config = RuntimeConfig::new(&args.config, &args.data);
    config.limits.snapshot_every = args.snapshot_every;
    config.resume_from = resume_point(&args.out)?;
    let mut log = OpenOptions::new().create(true).append(true).open(&args.out).context("opening the output log")?;
    let mut registry = Registry::default();
    let (runtime, outputs) = Runtime::start(config, &mut registry).await?;
    let mut rounds = outputs.rounds;
    let runtime = std::sync::Arc::new(runtime);

    let writer = tokio::task::spawn_blocking(move || -> Result<()> {
        while let Some(round) = rounds.blocking_recv() {
            append_round(&mut log, &round)?;
        }
        Ok(())
    });
    if let Some(ms) = args.status_every_ms {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                if let Ok(json) = serde_json::to_string(&runtime.status()) {
                    eprintln!("status {json}");
                }
            }
        });
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = std::io::stdout();
    let mut rng = rand::rngs::OsRng;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        result = async {
            while let Some(line) = lines.next_line().await? {
                let request = match line.split_once(' ') {
                    Some(("plain", text)) => Request::Plain(text.as_bytes().to_vec()),
                    Some(("sealed", text)) => {
                        let sealed = threshold::seal::seal(&encryption, b"ordering-node", text.as_bytes(), &mut rng)?;
                        Request::Sealed(replication::wire::encode(&sealed)?)
                    }
                    _ => {
                        eprintln!("ignored input line (expected `plain TEXT` or `sealed TEXT`)");
                        continue;
                    }
                };
                loop {
                    match runtime.submit(request.clone()).await {
                        Ok(digest) => {
                            writeln!(stdout, "accepted {}", hex::encode(digest))?;
                            stdout.flush()?;
                            break;
                        }
                        Err(replication::runtime::SubmitError::Busy { .. }) => {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        Err(e) => return Err(anyhow::Error::from(e)),
                    }
                }
            }
            // Input closed: keep ordering (peers may still need us) until interrupted.
            std::future::pending::<()>().await;
            Ok::<(), anyhow::Error>(())
        } => result?,
    }
    if let Ok(runtime) = std::sync::Arc::try_unwrap(runtime) {
        runtime.shutdown().await?;
    }
    writer.abort();
    Ok(())
}
