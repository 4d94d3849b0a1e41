//! `byzantine-replica`: a test-only replica that misbehaves on purpose (feature `byzantine`; see
//! `ca_server::server::byzantine`). The fault campaign runs it in place of `ca-server run` for
//! up to `t` replicas.

#[cfg(not(debug_assertions))]
compile_error!("the Byzantine test replica is never part of a release build");

use anyhow::{Result, anyhow};
use ca_server::server::{self, byzantine::Byzantine};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "A Byzantine test replica (fault campaign only)")]
struct Cli {
    /// The replica's replica.toml.
    #[arg(long)]
    config: PathBuf,
    /// Comma-separated: corrupt, equivocate, withhold, replay, garbage (protocol messages),
    /// bad-rsa-shares, forged-requests, forged-http.
    #[arg(long)]
    misbehave: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let conduct = Byzantine::parse(&cli.misbehave).map_err(|e| anyhow!(e))?;
    server::run_byzantine(server::RunOptions { config: cli.config, data: None }, conduct).await
}
