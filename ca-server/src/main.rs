//! `ca-server`: run one replica (`run`), or a whole local cluster for trying the CA (`local`).

use anyhow::Result;
use ca_server::server::{self, local::LocalOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "An intrusion-tolerant certification authority: one replica, or a local cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one replica from the folder the dealer wrote for it.
    Run {
        /// The replica's replica.toml (DIR/replica-<i>/replica.toml).
        #[arg(long, env = "ITCA_CONFIG")]
        config: PathBuf,
        /// Where the replica keeps its state (default: data/ beside replica.toml).
        #[arg(long, env = "ITCA_DATA")]
        data: Option<PathBuf>,
    },
    /// Run a whole cluster on 127.0.0.1, dealing its keys first if the folder has none.
    Local {
        #[arg(long, default_value = "./local-ca")]
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        t: usize,
        /// HTTPS ports from here, peer ports after them.
        #[arg(long, default_value_t = 8440)]
        base_port: u16,
        /// Root key size (smaller only for tests).
        #[arg(long, default_value_t = 2048, hide = true)]
        bits: u32,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run { config, data } => server::run(server::RunOptions { config, data }).await,
        Command::Local { dir, n, t, base_port, bits } => {
            server::local::run(LocalOptions { dir, n, t, base_port, bits }).await
        }
    }
}
