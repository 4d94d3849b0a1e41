//! `dealer`: the offline key ceremony's command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dealer::ceremony::{self, CeremonyParams, CeremonyReport, Progress};
use dealer::hosts;
use dealer::layout;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;

#[derive(Parser)]
#[command(name = "dealer", version, about = "Offline key ceremony for the intrusion-tolerant CA")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate every key, share and certificate of a new cluster into a new folder.
    Ceremony {
        /// Number of replicas.
        #[arg(long)]
        n: usize,
        /// Number of replicas that may be compromised (n must exceed 3t).
        #[arg(long)]
        t: usize,
        /// The CA's name: the root certificate's common name.
        #[arg(long)]
        name: String,
        /// Each replica's host:https_port:peer_port, comma-separated, in replica order.
        #[arg(long, conflicts_with = "local", required_unless_present = "local")]
        hosts: Option<String>,
        /// All replicas on 127.0.0.1: HTTPS ports from --base-port, peer ports after them.
        #[arg(long)]
        local: bool,
        /// First port for --local.
        #[arg(long, default_value_t = 8440, requires = "local")]
        base_port: u16,
        /// Root key size in bits: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// Output folder; must not exist.
        #[arg(long)]
        out: PathBuf,
        /// A name the default profile allows (repeatable): `=host.example.com` that name only,
        /// `example.com` the zone and every name below it, `*.example.com` the wildcard name.
        /// --local always allows `localhost` and the names below it.
        #[arg(long = "allow", value_name = "RULE")]
        allow: Vec<String>,
    },
    /// Check a ceremony's output: every share, every certificate, and a test signature.
    Verify {
        /// The folder a ceremony wrote.
        dir: PathBuf,
    },
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(5);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message("generating the root key's safe primes");
    bar
}

fn ceremony(params: CeremonyParams) -> Result<()> {
    let bar = progress_bar();
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let report = ceremony::run(&params, ceremony::MIN_PRODUCTION_BITS, &mut rng, &mut |step| match step {
        Progress::Prime { found, of } => {
            bar.inc(1);
            bar.set_message(format!("safe prime {found} of {of} found"));
        }
        Progress::RootKeyShared => bar.set_message("root key shared; dealing agreement keys"),
        Progress::AgreementKeysDealt => {
            bar.inc(1);
            bar.set_message("issuing certificates");
        }
        Progress::CertificatesIssued => {
            bar.inc(1);
            bar.set_message("writing");
        }
        Progress::Written => bar.inc(1),
    });
    bar.finish_and_clear();
    print_summary(&params, &report?);
    Ok(())
}

fn print_summary(params: &CeremonyParams, report: &CeremonyReport) {
    let out = report.out.display();
    println!(
        "Ceremony complete: \"{}\", n = {}, t = {}, {}-bit root key.",
        params.name, params.n, params.t, params.bits
    );
    println!("Root certificate SHA-256: {}", report.root_fingerprint);
    println!();
    println!("Public (hand to every client and auditor):");
    println!(
        "  {out}/{}/{}      the root certificate: all a client needs to trust",
        layout::PUBLIC_DIR,
        layout::ROOT_PEM
    );
    println!("  {out}/{}/{}  replicas, addresses and verification keys", layout::PUBLIC_DIR, layout::CLUSTER_JSON);
    println!(
        "  {out}/{}/{}   accounts and profiles (its SHA-256 is in cluster.json)",
        layout::PUBLIC_DIR,
        layout::POLICY_JSON
    );
    println!();
    println!("Operator (the first administrator account; keep it off the replicas):");
    println!(
        "  {}  account key {}; ca-client signs with it by default",
        report.operator_key.display(),
        report.operator_public_key
    );
    println!("  {}", dealer::policy::describe_names(&report.names));
    println!();
    println!("Secret (carry each folder to its own machine only, then delete it here):");
    for (id, host) in report.replicas.iter().enumerate() {
        println!(
            "  {}  -> {} (HTTPS port {}, peer port {})",
            layout::replica_dir(&report.out, id).display(),
            host.host,
            host.https_port,
            host.peer_port
        );
    }
    println!();
    println!(
        "The full root key existed only in this process's memory and is erased; any {} replicas sign together, {} cannot.",
        params.t + 1,
        params.t
    );
    println!("Check the output with: dealer verify {out}");
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ceremony { n, t, name, hosts, local, base_port, bits, out, allow } => {
            let hosts = match (hosts, local) {
                (Some(list), false) => hosts::parse_hosts(&list, n)?,
                _ => hosts::local_hosts(n, base_port)?,
            };
            let names = dealer::policy::default_profile_names(&allow, local).context("--allow")?;
            ceremony(CeremonyParams { n, t, name, hosts, bits, out, names })
        }
        Command::Verify { dir } => {
            let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
            let report =
                dealer::verify::verify(&dir, &mut rng).with_context(|| format!("{} does not verify", dir.display()))?;
            println!(
                "{}: \"{}\", n = {}, t = {}: every share matches its verification key, every certificate chains to the root, and a test signature from {} shares verifies (root SHA-256 {}).",
                dir.display(),
                report.name,
                report.n,
                report.t,
                report.t + 1,
                report.root_fingerprint
            );
            let operator = match &report.operator_account {
                Some(account) => format!("; the operator key is administrator account {account:?}"),
                None => format!("; no operator key at {} to check", layout::OPERATOR_KEY),
            };
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            println!(
                "The policy ({}, {}) is consistent, matches cluster.json and every replica's copy{operator}.",
                count(report.accounts, "account"),
                count(report.profiles, "profile")
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
