//! `ca-client`: the command line over the `ca_client` library. Every answer from a replica is
//! checked against the root certificate; replicas whose answers do not check out are named on
//! standard error, and the command still succeeds when `t + 1` others answer correctly.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ca_api::{AccountSecret, RevocationReason};
use ca_client::audit::{self, AuditOptions, HeadOutcome};
use ca_client::bench::{self, BenchConfig};
use ca_client::client::{IssueRequest, Progress, Revocation, RevokeAuthority};
use ca_client::keys::{self, KeyType, PrivateKey};
use ca_client::verify::{Expectation, Validity, VerifiedCertificate};
use ca_client::{Client, Finding, Options};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use zeroize::Zeroizing;

/// Writes a line to standard output, ignoring a closed pipe (`ca-client ... | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    version,
    about = "Client of the intrusion-tolerant CA: trusts only the root certificate and needs t+1 honest replicas"
)]
struct Cli {
    /// The cluster description the dealer wrote (its root.pem must be beside it).
    #[arg(long, global = true, env = "ITCA_CLUSTER", default_value = "local-ca/public/cluster.json")]
    cluster: PathBuf,
    /// The account key that signs requests (default: the operator key the dealer wrote,
    /// ../../operator/account-key.pem from the cluster file).
    #[arg(long, global = true, env = "ITCA_ACCOUNT")]
    account: Option<PathBuf>,
    /// Seconds to wait for a request's outcome.
    #[arg(long, global = true, default_value_t = 120)]
    wait: u64,
    /// Seconds for one exchange with one replica.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a key and ask for a certificate; verify it before writing it.
    Request {
        /// A DNS name for the certificate (repeat for more; the first is the subject's CN).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// The key to generate: ec-p256, ec-p384, rsa-2048 or ed25519.
        #[arg(long, default_value = "ec-p256", value_parser = parse_key_type)]
        key_type: KeyType,
        /// The policy profile to issue under.
        #[arg(long, default_value = "default")]
        profile: String,
        /// Days of validity (default: the profile's).
        #[arg(long)]
        validity_days: Option<u32>,
        /// Submit the request in the clear instead of sealed to the cluster's encryption key.
        #[arg(long)]
        plain: bool,
        /// Use this PEM CSR instead of generating a key (its names are used unless --name is given).
        #[arg(long, conflicts_with_all = ["key_type", "key_out"])]
        csr: Option<PathBuf>,
        /// Where to write the new private key (PKCS#8 PEM, mode 0600).
        #[arg(long, required_unless_present = "csr")]
        key_out: Option<PathBuf>,
        /// Where to write the certificate chain (the certificate, then the root).
        #[arg(long)]
        cert_out: PathBuf,
    },
    /// Fetch a certificate by serial number and verify it.
    Get {
        serial: String,
        /// Write the chain here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a certificate: issued by the root, valid now, not revoked by the current CRL.
    Verify { certificate: PathBuf },
    /// Revoke a certificate, with its own key (CERT.pem --key KEY.pem) or the account (--serial).
    Revoke {
        /// The certificate to revoke (with --key).
        #[arg(required_unless_present = "serial", requires = "key")]
        certificate: Option<PathBuf>,
        /// The certificate's private key, which signs the revocation.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Revoke by serial number, signed by the account key.
        #[arg(long, conflicts_with_all = ["certificate", "key"])]
        serial: Option<String>,
        /// RFC 5280 reason: unspecified, keyCompromise, superseded, cessationOfOperation, ...
        #[arg(long, default_value = "unspecified", value_parser = parse_reason)]
        reason: RevocationReason,
        /// Submit the revocation in the clear instead of sealed.
        #[arg(long)]
        plain: bool,
    },
    /// Every replica's health, round, log size, peers and faults.
    Status,
    /// Verify the log: signed tree heads, consistency with the last head seen, every entry.
    Audit {
        /// Where the last verified head is kept (default: ~/.local/state/itca/audit-<root>.json).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Fetch the entries from one replica instead of from every replica.
        #[arg(long)]
        quick: bool,
    },
    /// Load generator: C closed-loop clients issue R certificates (CSRs made before timing);
    /// reports throughput, latency percentiles, refusals and failures, and each replica's CPU,
    /// memory and traffic to its peers (from its /metrics).
    Bench {
        /// Concurrent closed-loop clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Certificates to ask for in all.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// The certificate keys to generate: ec-p256, ec-p384, rsa-2048 or ed25519.
        #[arg(long, default_value = "ec-p256", value_parser = parse_key_type)]
        key_type: KeyType,
        /// The policy profile to issue under.
        #[arg(long, default_value = "default")]
        profile: String,
        /// Names are bench-<run>-<i>.DOMAIN; the profile must allow them.
        #[arg(long, default_value = "localhost")]
        domain: String,
        /// Seal the requests to the cluster's encryption key.
        #[arg(long)]
        sealed: bool,
        /// Milliseconds each client pauses before each request (not timed); with --clients 1,
        /// a low-load run.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Seconds a replica holds a submission open for its outcome (at most 60).
        #[arg(long, default_value_t = 30)]
        server_wait: u64,
        /// Print the report as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
}

fn parse_key_type(text: &str) -> Result<KeyType, String> {
    text.parse().map_err(|e: keys::KeyError| e.to_string())
}

fn parse_reason(text: &str) -> Result<RevocationReason, String> {
    text.parse().map_err(|_| {
        let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.as_str()).collect();
        format!("not a revocation reason; use one of {}", names.join(", "))
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    // The load generator holds submissions open for the replicas' wait, so each exchange may
    // take that long.
    let exchange = match &cli.command {
        Command::Bench { server_wait, .. } => cli.timeout.max(server_wait + 15),
        _ => cli.timeout,
    };
    let options = Options {
        request_timeout: Duration::from_secs(exchange.max(1)),
        wait_timeout: Duration::from_secs(cli.wait.max(1)),
        ..Options::default()
    };
    // The library's error names the file.
    let client = Client::open(&cli.cluster, options).context("loading the cluster")?;
    match cli.command {
        Command::Request { names, key_type, profile, validity_days, plain, csr, key_out, cert_out } => {
            let account = load_account(cli.account.as_deref(), &cli.cluster)?;
            let args = RequestArgs { names, key_type, profile, validity_days, seal: !plain, csr, key_out, cert_out };
            request(&client, &account, args).await
        }
        Command::Get { serial, out } => get(&client, &serial, out.as_deref()).await,
        Command::Verify { certificate } => verify(&client, &certificate).await,
        Command::Revoke { certificate, key, serial, reason, plain } => {
            let account = || load_account(cli.account.as_deref(), &cli.cluster);
            revoke(&client, &account, certificate.as_deref(), key.as_deref(), serial.as_deref(), reason, !plain).await
        }
        Command::Status => status(&client).await,
        Command::Audit { state, quick } => {
            let state = state.unwrap_or_else(|| audit::default_state_path(client.root(), &cli.cluster));
            run_audit(&client, &state, AuditOptions { quick }).await
        }
        Command::Bench { clients, requests, key_type, profile, domain, sealed, pause_ms, server_wait, json } => {
            let account = load_account(cli.account.as_deref(), &cli.cluster)?;
            let config = BenchConfig {
                clients,
                requests,
                key_type,
                profile,
                domain,
                seal: sealed,
                server_wait: Duration::from_secs(server_wait.clamp(1, 60)),
                think_time: Duration::from_millis(pause_ms),
                give_up_after: Duration::from_secs(cli.wait.max(1)),
                progress: true,
                ..BenchConfig::default()
            };
            let report = bench::run(&client, &account, &config).await.context("running the benchmark")?;
            if json {
                say!("{}", serde_json::to_string_pretty(&report).context("encoding the report")?);
            } else {
                let _ = write!(std::io::stdout(), "{}", report.to_text());
            }
            Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// The operator key the dealer wrote: `DIR/operator/account-key.pem` for `DIR/public/cluster.json`.
fn default_account_path(cluster: &Path) -> Option<PathBuf> {
    let dir = cluster.parent()?.parent()?;
    Some(dir.join("operator").join("account-key.pem"))
}

fn load_account(given: Option<&Path>, cluster: &Path) -> Result<AccountSecret> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => match default_account_path(cluster).filter(|p| p.exists()) {
            Some(path) => path,
            None => bail!(
                "no account key: pass --account KEY.pem (the dealer's operator key {} was not found)",
                default_account_path(cluster).map(|p| p.display().to_string()).unwrap_or_default()
            ),
        },
    };
    let pem = Zeroizing::new(
        std::fs::read_to_string(&path).with_context(|| format!("reading the account key {}", path.display()))?,
    );
    AccountSecret::from_pkcs8_pem(&pem).with_context(|| format!("reading the account key {}", path.display()))
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The spinner's message for a progress report.
fn progress_message(progress: &Progress) -> String {
    match progress {
        Progress::Accepted { replica, accepted, needed } => {
            format!("accepted by replica {replica} ({accepted} of the {needed} needed)")
        }
        Progress::Waiting { states, .. } => format!("waiting for the outcome: {states}"),
        Progress::Entries { replica, fetched, total } => {
            format!("fetched {fetched} of {total} entries from replica {replica}")
        }
    }
}

/// Prints what was noticed about replicas: misbehaviour first and loudly.
fn report_findings(findings: &[Finding]) {
    for finding in findings.iter().filter(|f| f.kind.is_misbehaviour()) {
        eprintln!("WARNING: {finding}");
    }
    for finding in findings.iter().filter(|f| !f.kind.is_misbehaviour()) {
        eprintln!("note: {finding}");
    }
}

struct RequestArgs {
    names: Vec<String>,
    key_type: KeyType,
    profile: String,
    validity_days: Option<u32>,
    seal: bool,
    csr: Option<PathBuf>,
    key_out: Option<PathBuf>,
    cert_out: PathBuf,
}

async fn request(client: &Client, account: &AccountSecret, args: RequestArgs) -> Result<ExitCode> {
    // Refuse to overwrite before anything is generated or submitted.
    for path in args.key_out.iter().chain(std::iter::once(&args.cert_out)) {
        if path.exists() {
            bail!("{} already exists; choose another file (nothing was requested)", path.display());
        }
    }
    let (csr_der, names, public_key, key) = match &args.csr {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let csr = keys::read_csr_pem(&text).with_context(|| format!("reading {}", path.display()))?;
            let names = if args.names.is_empty() { csr.dns_names.clone() } else { args.names.clone() };
            (csr.der, names, csr.public_key, None)
        }
        None => {
            if args.names.is_empty() {
                bail!("give at least one --name");
            }
            let key = PrivateKey::generate(args.key_type, &mut rand::rngs::OsRng).context("generating the key")?;
            let csr = key.csr(&args.names).context("building the certificate request")?;
            let public_key = key.public_key_der()?;
            (csr, args.names.clone(), public_key, Some(key))
        }
    };
    if names.is_empty() {
        bail!("the CSR names no DNS name; give --name");
    }
    // The key is on disk before the request leaves, so a certificate issued while this process
    // dies is never orphaned; it is removed again if no certificate comes.
    let key_file = match (&key, &args.key_out) {
        (Some(key), Some(path)) => {
            let pem = key.to_pkcs8_pem().context("encoding the key")?;
            write_new(path, pem.as_bytes(), 0o600).with_context(|| format!("writing the key to {}", path.display()))?;
            Some(path.clone())
        }
        _ => None,
    };
    let issue = IssueRequest {
        csr_der,
        profile: args.profile.clone(),
        validity_days: args.validity_days,
        expect: Expectation { dns_names: Some(names.clone()), public_key: Some(public_key), serial_hex: None },
        seal: args.seal,
    };
    let bar = spinner(&format!(
        "submitting a {} request for {}",
        if args.seal { "sealed" } else { "plain" },
        names.join(", ")
    ));
    let progress = |p: Progress| bar.set_message(progress_message(&p));
    let outcome = client.request_certificate(account, &issue, &progress).await;
    bar.finish_and_clear();
    let issued = match outcome {
        Ok(issued) => issued,
        Err(error) => {
            if let Some(path) = &key_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(error).context("requesting the certificate");
        }
    };
    report_findings(&issued.findings);
    write_new(&args.cert_out, issued.chain_pem.as_bytes(), 0o644)
        .with_context(|| format!("writing the certificate to {}", args.cert_out.display()))?;
    let cert = &issued.certificate;
    say!("issued certificate {} for {}", cert.serial_hex, cert.dns_names.join(", "));
    say!("  valid {} until {}", utc(cert.not_before), utc(cert.not_after));
    say!("  verified: signed by the root, names and public key as requested (from replica {})", issued.source);
    if let Some(index) = issued.log_index {
        say!("  audit log entry {index}, request {}", issued.request_id);
    }
    if let Some(path) = &key_file {
        say!("  key:         {}", path.display());
    }
    say!("  certificate: {}", args.cert_out.display());
    Ok(ExitCode::SUCCESS)
}

async fn get(client: &Client, serial: &str, out: Option<&Path>) -> Result<ExitCode> {
    let fetched = client.get_certificate(serial).await.with_context(|| format!("fetching certificate {serial}"))?;
    report_findings(&fetched.findings);
    let cert = &fetched.certificate;
    match out {
        Some(path) => {
            std::fs::write(path, &fetched.chain_pem).with_context(|| format!("writing {}", path.display()))?;
            say!("certificate {} for {} written to {}", cert.serial_hex, cert.dns_names.join(", "), path.display());
        }
        None => {
            eprintln!("certificate {} for {} (verified under the root)", cert.serial_hex, cert.dns_names.join(", "));
            let _ = write!(std::io::stdout(), "{}", fetched.chain_pem);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(client: &Client, path: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let status = client.verify_certificate(&text).await.with_context(|| format!("verifying {}", path.display()))?;
    report_findings(&status.findings);
    let cert = &status.certificate;
    say!("certificate {}: {}", cert.serial_hex, cert.subject);
    say!("  names:      {}", cert.dns_names.iter().chain(&cert.ip_addresses).cloned().collect::<Vec<_>>().join(", "));
    say!("  issuer:     the root (signature verified), {}", client.root().subject());
    let validity = match status.validity {
        Validity::Valid => "valid now",
        Validity::NotYetValid => "NOT YET VALID",
        Validity::Expired => "EXPIRED",
    };
    say!("  validity:   {} until {}: {validity}", utc(cert.not_before), utc(cert.not_after));
    let source = status.crl_source.map(|r| format!(" from replica {r}")).unwrap_or_default();
    let number = |n: Option<u128>| n.map(|n| format!(" #{n}")).unwrap_or_default();
    match status.revocation {
        Revocation::Good { crl_number, crl_this_update } => {
            say!("  revocation: not revoked (CRL{}{source}, issued {})", number(crl_number), utc(crl_this_update))
        }
        Revocation::Revoked { entry, crl_number } => {
            let reason =
                entry.reason.and_then(RevocationReason::from_code).map(|r| format!(", reason {r}")).unwrap_or_default();
            say!("  revocation: REVOKED at {}{reason} (CRL{}{source})", utc(entry.revoked_at), number(crl_number))
        }
        Revocation::Unknown => say!("  revocation: UNKNOWN (no replica served a CRL that verifies)"),
    }
    if status.crl_stale {
        say!("  warning: the newest CRL is past its nextUpdate");
    }
    if status.is_good() {
        say!("OK");
        Ok(ExitCode::SUCCESS)
    } else {
        say!("NOT VALID");
        Ok(ExitCode::FAILURE)
    }
}

async fn revoke(
    client: &Client,
    account: &dyn Fn() -> Result<AccountSecret>,
    certificate: Option<&Path>,
    key: Option<&Path>,
    serial: Option<&str>,
    reason: RevocationReason,
    seal: bool,
) -> Result<ExitCode> {
    let bar;
    let outcome = match (certificate, key, serial) {
        (Some(cert_path), Some(key_path), None) => {
            let text =
                std::fs::read_to_string(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
            // Only a certificate of this CA can be revoked by it; saying so now beats a refusal later.
            let cert = VerifiedCertificate::verify_chain_pem(client.root(), &text)
                .with_context(|| format!("{} is not a certificate issued by this CA", cert_path.display()))?;
            let pem = Zeroizing::new(
                std::fs::read_to_string(key_path).with_context(|| format!("reading {}", key_path.display()))?,
            );
            let private = PrivateKey::from_pem(&pem).with_context(|| format!("reading {}", key_path.display()))?;
            bar = spinner(&format!("revoking {} with its own key", cert.serial_hex));
            let progress = |p: Progress| bar.set_message(progress_message(&p));
            let authority = RevokeAuthority::CertificateKey { certificate: &cert, key: &private };
            client.revoke(&cert.serial_hex, reason, authority, seal, &progress).await
        }
        (None, None, Some(serial)) => {
            let account = account()?;
            bar = spinner(&format!("revoking {serial} with the account key"));
            let progress = |p: Progress| bar.set_message(progress_message(&p));
            client.revoke(serial, reason, RevokeAuthority::Account(&account), seal, &progress).await
        }
        _ => bail!("give either CERT.pem --key KEY.pem, or --serial SERIAL"),
    };
    bar.finish_and_clear();
    let revoked = outcome.context("revoking the certificate")?;
    report_findings(&revoked.findings);
    say!("revoked certificate {} ({reason})", revoked.serial_hex);
    if let Some(index) = revoked.log_index {
        say!("  audit log entry {index}, request {}", revoked.request_id);
    }
    match revoked.listed_in_crl {
        Some(true) => say!("  the current CRL (verified under the root) lists it"),
        Some(false) => say!("  the next CRL will list it (the current one predates the revocation)"),
        None => say!("  no CRL could be fetched yet"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(client: &Client) -> Result<ExitCode> {
    let replicas = client.status().await;
    let rows: Vec<[String; 7]> = replicas
        .iter()
        .map(|r| {
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            let health = match &r.health {
                Ok(h) if h.status == "ok" => "ok".to_string(),
                Ok(h) => format!("{} {}", h.status, h.reason.clone().unwrap_or_default()).trim().to_string(),
                Err(reason) => format!("down ({reason})"),
            };
            let peers =
                r.peers_connected.map_or_else(|| "-".to_string(), |p| format!("{p}/{}", client.n().saturating_sub(1)));
            [r.id.to_string(), r.url.clone(), health, opt(r.round), opt(r.log_size), peers, opt(r.faults)]
        })
        .collect();
    let header = ["REPLICA", "ADDRESS", "HEALTH", "ROUND", "LOG", "PEERS", "FAULTS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        say!("{}", cells.join("  ").trim_end());
    }
    let findings: Vec<Finding> = replicas.iter().flat_map(|r| r.findings.clone()).collect();
    report_findings(&findings);
    let up = replicas.iter().filter(|r| r.health.as_ref().is_ok_and(|h| h.status == "ok")).count();
    say!("{up} of {} replicas healthy; {} needed to answer", client.n(), client.needed());
    Ok(if up >= client.needed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_audit(client: &Client, state_path: &Path, options: AuditOptions) -> Result<ExitCode> {
    let previous = audit::load_state(state_path, client.root()).context("reading the audit state")?;
    let bar = spinner("fetching signed tree heads");
    let progress = |p: Progress| bar.set_message(progress_message(&p));
    let outcome = client.audit(previous.as_ref(), options, &progress).await;
    bar.finish_and_clear();
    let report = outcome.context("auditing the log")?;
    for (replica, head) in &report.heads {
        let line = match head {
            HeadOutcome::Verified(h) => format!(
                "tree head of size {} at {}, root {}, signature verified",
                h.tree_size,
                utc(h.timestamp_ms / 1000),
                hex::encode(h.root)
            ),
            HeadOutcome::Empty => "no tree head yet (empty log)".to_string(),
            HeadOutcome::Invalid(reason) => format!("INVALID tree head: {reason}"),
            HeadOutcome::Unreachable(reason) => format!("down ({reason})"),
        };
        say!("replica {replica}: {line}");
        // What did not add up for this replica, right under it.
        for finding in report.findings.iter().filter(|f| f.replica == *replica) {
            let kind = if finding.kind.is_misbehaviour() {
                finding.kind.as_str().to_uppercase()
            } else {
                finding.kind.as_str().to_string()
            };
            say!("  {kind}: {}", finding.detail);
        }
    }
    match &report.previous {
        Some(previous) => say!("last head seen: size {} (from {})", previous.tree_size, state_path.display()),
        None => say!("last head seen: none (first audit with {})", state_path.display()),
    }
    match (&report.latest, report.entries_source) {
        (Some(latest), Some(source)) => say!(
            "log: {} entries fetched from replica {source} hash to the signed root {}",
            report.entries_checked,
            hex::encode(latest.root)
        ),
        (Some(latest), None) => {
            say!("log: no replica served entries that hash to the signed root of size {}", latest.tree_size)
        }
        (None, _) => say!("log: empty"),
    }
    if let Some(next) = &report.next_state
        && report.next_state != report.previous
    {
        audit::save_state(state_path, client.root(), next).context("saving the audit state")?;
        say!("remembered head of size {} in {}", next.tree_size, state_path.display());
    }
    if report.is_consistent() {
        say!("audit: OK");
        Ok(ExitCode::SUCCESS)
    } else {
        say!("audit: FAILED (see the findings above)");
        Ok(ExitCode::FAILURE)
    }
}

/// Creates `path` with `mode`, refusing to replace an existing file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm of H. Hinnant).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_735_689_599), "2024-12-31 23:59:59 UTC");
    }

    #[test]
    fn the_default_account_is_the_dealers_operator_key() {
        assert_eq!(
            default_account_path(Path::new("/ca/public/cluster.json")),
            Some(PathBuf::from("/ca/operator/account-key.pem"))
        );
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["ca-client", "revoke", "c.pem", "--key", "k.pem", "--reason", "keyCompromise"])
            .unwrap();
        assert!(matches!(cli.command, Command::Revoke { reason: RevocationReason::KeyCompromise, .. }));
        assert!(Cli::try_parse_from(["ca-client", "revoke", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["ca-client", "request", "--name", "a", "--cert-out", "c"]).is_err());
    }

    #[test]
    fn bench_takes_clients_requests_and_a_key_type() {
        let cli =
            Cli::try_parse_from(["ca-client", "bench", "--clients", "4", "--requests", "20", "--key-type", "ed25519"])
                .unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench { clients: 4, requests: 20, key_type: KeyType::Ed25519, json: false, .. }
        ));
        assert!(Cli::try_parse_from(["ca-client", "bench", "--key-type", "dsa"]).is_err());
    }
}
