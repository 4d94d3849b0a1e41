//! The library's errors, and findings: what the client noticed about individual replicas while
//! an operation still succeeded (or before it failed).

use std::fmt;
use std::path::PathBuf;

use crate::keys::KeyError;
use crate::verify::VerifyError;

/// Why an operation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The I/O error is in the message (not a separate source), so it is shown once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path} has SHA-256 {found}, but the cluster file names the root {expected}")]
    RootMismatch { path: PathBuf, expected: String, found: String },
    #[error("{0}")]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("setting up HTTPS: {0}")]
    Setup(#[from] crate::transport::SetupError),
    #[error("sealing the request: {0}")]
    Seal(String),
    /// At least `t + 1` replicas refused at once with the same problem, so an honest one did.
    #[error("the CA refused the request ({kind}): {detail}")]
    Refused { kind: String, detail: String },
    /// At least `t + 1` replicas report the ordered log refused it, so an honest one did.
    #[error("the CA refused the request ({code}): {message}")]
    RefusedByLog { code: String, message: String },
    #[error("only {accepted} replicas accepted the request; {needed} are needed ({summary})")]
    NotEnoughReplicas { accepted: usize, needed: usize, summary: String },
    #[error("no outcome after {seconds} s ({summary})")]
    Timeout { seconds: u64, summary: String },
    #[error("no replica gave an answer that verifies ({0})")]
    NoValidAnswer(String),
    #[error("{0}")]
    NotFound(String),
}

/// What kind of thing a replica did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// No usable answer: refused connection, timeout, TLS failure, server error.
    Unreachable,
    /// Answered with a refusal where the outcome went the other way, or with an error.
    Refused,
    /// Behind the others: an older tree head or CRL. Replicas lag briefly in normal operation.
    Stale,
    /// An answer that does not verify: a bad signature, a certificate other than the one asked
    /// for, malformed data, an answer about another request.
    Invalid,
    /// Contradicts verified data: a fork, a failing proof, entries that do not hash to a signed
    /// root, a claim the signed outcome disproves.
    Inconsistent,
}

impl FindingKind {
    /// Whether this is evidence of a faulty (or lying) replica rather than of one that is down
    /// or slow.
    pub fn is_misbehaviour(self) -> bool {
        matches!(self, FindingKind::Invalid | FindingKind::Inconsistent)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Unreachable => "unreachable",
            FindingKind::Refused => "refused",
            FindingKind::Stale => "stale",
            FindingKind::Invalid => "invalid answer",
            FindingKind::Inconsistent => "inconsistent",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation about one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub replica: usize,
    pub kind: FindingKind,
    pub detail: String,
}

impl Finding {
    pub fn new(replica: usize, kind: FindingKind, detail: impl Into<String>) -> Finding {
        Finding { replica, kind, detail: detail.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replica {}: {}: {}", self.replica, self.kind, self.detail)
    }
}

/// Findings in a list that keeps one copy of each (polling sees the same fault many times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(Vec<Finding>);

impl Findings {
    pub fn push(&mut self, finding: Finding) {
        if !self.0.contains(&finding) {
            self.0.push(finding);
        }
    }

    pub fn add(&mut self, replica: usize, kind: FindingKind, detail: impl Into<String>) {
        self.push(Finding::new(replica, kind, detail));
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Finding>) {
        for finding in other {
            self.push(finding);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by replica, then kind.
    pub fn into_vec(mut self) -> Vec<Finding> {
        self.0.sort_by_key(|a| (a.replica, a.kind));
        self.0
    }

    /// One line naming each replica and what happened, for error messages.
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "no replica answered".to_string();
        }
        self.0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ")
    }
}
