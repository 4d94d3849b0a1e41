//! The CA's policy: who may do what. Accounts are identified by their Ed25519 key and may issue
//! under named profiles; a profile restricts names, key types, validity and extended key usages,
//! like a Vault PKI role.
//!
//! Every replica loads the same policy file, and `cluster.json` records the SHA-256 of its bytes,
//! so a replica or client can tell it holds the policy the ceremony dealt. The file is a versioned
//! JSON object (`threshold::encoding`) and unknown fields are refused: a misspelt restriction must
//! not be silently ignored.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use threshold::encoding::{FormatError, Versioned};

use crate::account::AccountKey;

/// The longest validity a profile may allow: the CA/Browser Forum baseline's 398 days.
pub const MAX_VALIDITY_DAYS: u32 = 398;
/// RFC 1035 2.3.4: at most 253 characters in the dotted form, 63 per label.
pub const MAX_NAME_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;
/// Account and profile names appear in logs and command lines, so they are short and plain.
pub const MAX_IDENTIFIER_LEN: usize = 64;

/// The accounts and the profiles they issue under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub accounts: Vec<Account>,
    pub profiles: Vec<Profile>,
}

impl Versioned for Policy {
    const FORMAT: &'static str = "itca.policy";
    const VERSION: u32 = 1;
}

/// Someone who signs requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub public_key: AccountKey,
    /// May change the policy.
    pub admin: bool,
    /// May issue under these profiles.
    pub profiles: Vec<String>,
    /// May revoke any certificate, not only those its holder can prove it owns.
    pub may_revoke_any: bool,
    /// Seconds since the Unix epoch; compared with the round's agreed time, never a local clock,
    /// so every replica reaches the same verdict. `None` (or absent): never expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// What may be issued under one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// The DNS names certificates may carry; empty allows none.
    pub names: Vec<NameRule>,
    pub key_types: Vec<KeyType>,
    pub max_validity_days: u32,
    /// Used when a request names no validity.
    pub default_validity_days: u32,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
}

/// A rule allowing DNS names. Written `{"exact": "host.example.com"}`, `{"subdomain":
/// "example.com"}` or `{"wildcard": "example.com"}`; on a command line `=host.example.com`,
/// `example.com` and `*.example.com` (see [`NameRule::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameRule {
    /// This name only.
    Exact(String),
    /// The zone and every name below it (not wildcard names: those need a wildcard rule).
    Subdomain(String),
    /// The wildcard name `*.<zone>`.
    Wildcard(String),
}

/// A subject key type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// An extended key usage a certificate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExtendedKeyUsage {
    #[serde(rename = "server-auth")]
    ServerAuth,
    #[serde(rename = "client-auth")]
    ClientAuth,
}

/// Why a string is not a DNS name a rule may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is {0} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error("the name ends with a dot; give it without the trailing dot")]
    TrailingDot,
    #[error("the name has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("label {0:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong(String),
    #[error("the name contains {0:?}; only lowercase letters, digits, '-' and '.' are allowed")]
    InvalidCharacter(char),
    #[error("label {0:?} starts or ends with '-'")]
    HyphenAtEdge(String),
    #[error("the last label is all digits, which is an IP address, not a DNS name")]
    NumericTopLabel,
}

/// Why a `--allow` rule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name rule {rule:?}: {reason}")]
pub struct RuleParseError {
    pub rule: String,
    pub reason: NameError,
}

/// Why a policy is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{what} name {name:?} must be 1 to {MAX_IDENTIFIER_LEN} characters of letters, digits, '-', '_' and '.'")]
    Identifier { what: &'static str, name: String },
    #[error("two accounts are named {0:?}")]
    DuplicateAccount(String),
    #[error("accounts {first:?} and {second:?} have the same public key; a signature must identify one account")]
    DuplicateAccountKey { first: String, second: String },
    #[error("two profiles are named {0:?}")]
    DuplicateProfile(String),
    #[error("account {account:?} may issue under profile {profile:?}, which does not exist")]
    UnknownProfile { account: String, profile: String },
    #[error("no account is an administrator, so the policy could never be changed again")]
    NoAdmin,
    #[error("profile {profile:?}: validity must be at least one day")]
    ZeroValidity { profile: String },
    #[error("profile {profile:?}: the default validity ({default} days) exceeds the maximum ({max} days)")]
    DefaultExceedsMax { profile: String, default: u32, max: u32 },
    #[error("profile {profile:?}: the maximum validity of {max} days exceeds the {MAX_VALIDITY_DAYS}-day bound")]
    ValidityTooLong { profile: String, max: u32 },
    #[error("profile {profile:?}: {rule}: {reason}")]
    Name { profile: String, rule: NameRule, reason: NameError },
    #[error("profile {profile:?} lists no extended key usage; a certificate without one could be used for anything")]
    NoExtendedKeyUsage { profile: String },
}

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Invalid(#[from] PolicyError),
}

/// SHA-256 of a policy file's bytes, lowercase hex: what `cluster.json` records. It is taken over
/// the bytes as stored, never a re-serialisation, so any edit changes it.
pub fn policy_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks that `name` is a DNS name as policies hold it: lowercase ASCII letters, digits and
/// hyphens in labels of 1 to 63 characters, no trailing dot, not an IP address. Internationalised
/// names appear as their A-labels (`xn--...`).
pub fn check_dns_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))) {
        return Err(NameError::InvalidCharacter(c));
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingDot);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong(label.to_string()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::HyphenAtEdge(label.to_string()));
        }
    }
    if name.rsplit('.').next().is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit())) {
        return Err(NameError::NumericTopLabel);
    }
    Ok(())
}

fn valid_identifier(name: &str) -> bool {
    (1..=MAX_IDENTIFIER_LEN).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl NameRule {
    /// The name the rule is about (the exact name, or the zone).
    pub fn name(&self) -> &str {
        match self {
            NameRule::Exact(name) | NameRule::Subdomain(name) | NameRule::Wildcard(name) => name,
        }
    }

    /// Checks the rule's name (see [`check_dns_name`]).
    pub fn check(&self) -> Result<(), NameError> {
        check_dns_name(self.name())
    }

    /// Whether the rule allows `name`, which must already be lowercase without a trailing dot
    /// (the server normalises a request's names first). Wildcard names are allowed only by a
    /// wildcard rule for exactly their base, so a subdomain rule never grants a wildcard.
    pub fn allows(&self, name: &str) -> bool {
        let is_within = |zone: &str| match name.strip_suffix(zone) {
            Some("") => true,
            Some(prefix) => prefix.ends_with('.'),
            None => false,
        };
        match self {
            NameRule::Exact(exact) => name == exact,
            NameRule::Subdomain(zone) => !name.starts_with("*.") && is_within(zone),
            NameRule::Wildcard(zone) => name.strip_prefix("*.") == Some(zone.as_str()),
        }
    }
}

impl FromStr for NameRule {
    type Err = RuleParseError;

    /// The command-line spelling: `=host.example.com` (exact), `*.example.com` (wildcard for
    /// example.com), `example.com` (example.com and every name below it). ASCII case is folded,
    /// as DNS does; the rule is then checked like one in a policy file.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.to_ascii_lowercase();
        let rule = if let Some(name) = lower.strip_prefix('=') {
            NameRule::Exact(name.to_string())
        } else if let Some(zone) = lower.strip_prefix("*.") {
            NameRule::Wildcard(zone.to_string())
        } else {
            NameRule::Subdomain(lower)
        };
        rule.check().map_err(|reason| RuleParseError { rule: text.to_string(), reason })?;
        Ok(rule)
    }
}

impl fmt::Display for NameRule {
    /// The command-line spelling, which [`NameRule::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::Exact(name) => write!(f, "={name}"),
            NameRule::Subdomain(zone) => f.write_str(zone),
            NameRule::Wildcard(zone) => write!(f, "*.{zone}"),
        }
    }
}

/// Why a key type or extended key usage could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not one of {expected}")]
pub struct UnknownValue {
    pub found: String,
    pub expected: &'static str,
}

impl KeyType {
    pub const ALL: [KeyType; 6] =
        [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096, KeyType::EcP256, KeyType::EcP384, KeyType::Ed25519];

    /// The spelling used in policy files and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = UnknownValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyType::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| UnknownValue {
            found: text.to_string(),
            expected: "rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384, ed25519",
        })
    }
}

impl ExtendedKeyUsage {
    pub const ALL: [ExtendedKeyUsage; 2] = [ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth];

    pub fn as_str(self) -> &'static str {
        match self {
            ExtendedKeyUsage::ServerAuth => "server-auth",
            ExtendedKeyUsage::ClientAuth => "client-auth",
        }
    }
}

impl fmt::Display for ExtendedKeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExtendedKeyUsage {
    type Err = UnknownValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ExtendedKeyUsage::ALL
            .into_iter()
            .find(|u| u.as_str() == text)
            .ok_or_else(|| UnknownValue { found: text.to_string(), expected: "server-auth, client-auth" })
    }
}

impl Account {
    /// Whether the account may still act at `time` (the round's agreed time, seconds since the
    /// Unix epoch): it expires at `expires_at` exactly.
    pub fn is_active_at(&self, time: u64) -> bool {
        self.expires_at.is_none_or(|expiry| time < expiry)
    }
}

impl Policy {
    /// The name of the first account and of the first profile a ceremony writes.
    pub const OPERATOR: &'static str = "operator";
    pub const DEFAULT_PROFILE: &'static str = "default";

    /// The ceremony's policy: one administrator account `operator` that may revoke anything and
    /// never expires, and one profile `default` allowing `names` with every key type, 90 days at
    /// most (30 by default), for TLS servers and clients.
    pub fn default_for(operator: AccountKey, names: Vec<NameRule>) -> Policy {
        Policy {
            accounts: vec![Account {
                name: Self::OPERATOR.to_string(),
                public_key: operator,
                admin: true,
                profiles: vec![Self::DEFAULT_PROFILE.to_string()],
                may_revoke_any: true,
                expires_at: None,
            }],
            profiles: vec![Profile {
                name: Self::DEFAULT_PROFILE.to_string(),
                names,
                key_types: KeyType::ALL.to_vec(),
                max_validity_days: 90,
                default_validity_days: 30,
                extended_key_usage: ExtendedKeyUsage::ALL.to_vec(),
            }],
        }
    }

    /// Reads a policy file and checks it.
    pub fn parse(text: &str) -> Result<Policy, LoadError> {
        let policy: Policy = threshold::encoding::from_json(text)?;
        policy.check()?;
        Ok(policy)
    }

    /// The account a key belongs to ([`Policy::check`] guarantees there is at most one).
    pub fn account_for(&self, key: &AccountKey) -> Option<&Account> {
        self.accounts.iter().find(|a| a.public_key == *key)
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Checks what every replica relies on when it applies the policy: names are unique (a key
    /// identifies one account), every profile an account refers to exists, validity periods are
    /// sane, and rules hold valid DNS names.
    pub fn check(&self) -> Result<(), PolicyError> {
        let mut profile_names = HashSet::new();
        for profile in &self.profiles {
            if !valid_identifier(&profile.name) {
                return Err(PolicyError::Identifier { what: "profile", name: profile.name.clone() });
            }
            if !profile_names.insert(profile.name.as_str()) {
                return Err(PolicyError::DuplicateProfile(profile.name.clone()));
            }
            profile.check()?;
        }
        let mut account_names = HashSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            if !valid_identifier(&account.name) {
                return Err(PolicyError::Identifier { what: "account", name: account.name.clone() });
            }
            if !account_names.insert(account.name.as_str()) {
                return Err(PolicyError::DuplicateAccount(account.name.clone()));
            }
            if let Some(first) = self.accounts[..i].iter().find(|a| a.public_key == account.public_key) {
                return Err(PolicyError::DuplicateAccountKey {
                    first: first.name.clone(),
                    second: account.name.clone(),
                });
            }
            if let Some(missing) = account.profiles.iter().find(|p| !profile_names.contains(p.as_str())) {
                return Err(PolicyError::UnknownProfile { account: account.name.clone(), profile: missing.clone() });
            }
        }
        if !self.accounts.iter().any(|a| a.admin) {
            return Err(PolicyError::NoAdmin);
        }
        Ok(())
    }
}

impl Profile {
    fn check(&self) -> Result<(), PolicyError> {
        let profile = || self.name.clone();
        let (default, max) = (self.default_validity_days, self.max_validity_days);
        if default == 0 || max == 0 {
            return Err(PolicyError::ZeroValidity { profile: profile() });
        }
        if max > MAX_VALIDITY_DAYS {
            return Err(PolicyError::ValidityTooLong { profile: profile(), max });
        }
        if default > max {
            return Err(PolicyError::DefaultExceedsMax { profile: profile(), default, max });
        }
        if let Some((rule, reason)) = self.names.iter().find_map(|r| r.check().err().map(|e| (r, e))) {
            return Err(PolicyError::Name { profile: profile(), rule: rule.clone(), reason });
        }
        if self.extended_key_usage.is_empty() {
            return Err(PolicyError::NoExtendedKeyUsage { profile: profile() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use threshold::encoding::{from_json, to_json};

    use super::*;
    use crate::account::AccountSecret;

    fn key(seed: u64) -> AccountKey {
        AccountSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed)).public()
    }

    fn sample() -> Policy {
        Policy::default_for(key(1), vec![NameRule::Subdomain("localhost".into())])
    }

    #[test]
    fn default_policy_checks_and_round_trips_through_its_versioned_file() {
        let policy = sample();
        policy.check().unwrap();
        let text = to_json(&policy);
        assert!(text.contains("\"format\": \"itca.policy\""), "{}", *text);
        assert_eq!(from_json::<Policy>(&text).unwrap(), policy);
        assert_eq!(Policy::parse(&text).unwrap(), policy);
        let operator = policy.account_for(&key(1)).unwrap();
        assert!(operator.admin && operator.may_revoke_any && operator.expires_at.is_none());
        assert_eq!(operator.profiles, ["default"]);
        let profile = policy.profile("default").unwrap();
        assert_eq!((profile.max_validity_days, profile.default_validity_days), (90, 30));
        assert_eq!(profile.key_types.len(), 6);
        assert!(policy.account_for(&key(2)).is_none());
    }

    #[test]
    fn file_uses_the_documented_spellings() {
        let mut policy = sample();
        policy.profiles[0].names = vec![
            NameRule::Exact("host.example.com".into()),
            NameRule::Subdomain("example.com".into()),
            NameRule::Wildcard("example.org".into()),
        ];
        let value: serde_json::Value = serde_json::from_str(&to_json(&policy)).unwrap();
        let profile = &value["data"]["profiles"][0];
        assert_eq!(
            profile["names"],
            serde_json::json!([{"exact": "host.example.com"}, {"subdomain": "example.com"}, {"wildcard": "example.org"}])
        );
        assert_eq!(
            profile["key_types"],
            serde_json::json!(["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ed25519"])
        );
        assert_eq!(profile["extended_key_usage"], serde_json::json!(["server-auth", "client-auth"]));
        let account = &value["data"]["accounts"][0];
        assert_eq!(account["public_key"], serde_json::json!(key(1).to_string()));
        assert_eq!(account["expires_at"], serde_json::Value::Null);
    }

    #[test]
    fn unknown_fields_are_refused_and_expiry_may_be_omitted() {
        let text = to_json(&sample());
        let misspelt = text.replace("\"may_revoke_any\"", "\"may_revoke_all\"");
        assert!(matches!(Policy::parse(&misspelt), Err(LoadError::Format(_))));
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["data"]["accounts"][0].as_object_mut().unwrap().remove("expires_at").unwrap();
        let without_expiry = value.to_string();
        assert_eq!(Policy::parse(&without_expiry).unwrap(), sample());
    }

    #[test]
    fn check_refuses_duplicate_or_dangling_names() {
        let mut twice = sample();
        twice.accounts.push(Account { public_key: key(2), ..twice.accounts[0].clone() });
        assert_eq!(twice.check(), Err(PolicyError::DuplicateAccount("operator".into())));

        let mut same_key = sample();
        same_key.accounts.push(Account { name: "second".into(), ..same_key.accounts[0].clone() });
        assert_eq!(
            same_key.check(),
            Err(PolicyError::DuplicateAccountKey { first: "operator".into(), second: "second".into() })
        );

        let mut profiles = sample();
        profiles.profiles.push(profiles.profiles[0].clone());
        assert_eq!(profiles.check(), Err(PolicyError::DuplicateProfile("default".into())));

        let mut dangling = sample();
        dangling.accounts[0].profiles.push("web".into());
        assert_eq!(
            dangling.check(),
            Err(PolicyError::UnknownProfile { account: "operator".into(), profile: "web".into() })
        );

        let mut bad_name = sample();
        bad_name.accounts[0].name = "op erator\n".into();
        assert!(matches!(bad_name.check(), Err(PolicyError::Identifier { what: "account", .. })));

        let mut no_admin = sample();
        no_admin.accounts[0].admin = false;
        assert_eq!(no_admin.check(), Err(PolicyError::NoAdmin));
    }

    #[test]
    fn check_refuses_insane_validity_and_missing_key_usage() {
        let with = |f: fn(&mut Profile)| {
            let mut policy = sample();
            f(&mut policy.profiles[0]);
            policy.check().unwrap_err()
        };
        assert_eq!(
            with(|p| p.default_validity_days = 91),
            PolicyError::DefaultExceedsMax { profile: "default".into(), default: 91, max: 90 }
        );
        assert_eq!(
            with(|p| p.max_validity_days = 399),
            PolicyError::ValidityTooLong { profile: "default".into(), max: 399 }
        );
        assert_eq!(with(|p| p.default_validity_days = 0), PolicyError::ZeroValidity { profile: "default".into() });
        assert_eq!(
            with(|p| p.extended_key_usage.clear()),
            PolicyError::NoExtendedKeyUsage { profile: "default".into() }
        );
        let mut at_bound = sample();
        at_bound.profiles[0].max_validity_days = MAX_VALIDITY_DAYS;
        at_bound.check().unwrap();
    }

    #[test]
    fn check_refuses_rules_that_are_not_lowercase_dns_names() {
        for (name, reason) in [
            ("Example.com", NameError::InvalidCharacter('E')),
            ("example.com.", NameError::TrailingDot),
            ("a..example.com", NameError::EmptyLabel),
            ("-a.example.com", NameError::HyphenAtEdge("-a".into())),
            ("*.example.com", NameError::InvalidCharacter('*')),
            ("exa mple.com", NameError::InvalidCharacter(' ')),
            ("10.0.0.1", NameError::NumericTopLabel),
            ("", NameError::Empty),
        ] {
            let mut policy = sample();
            policy.profiles[0].names.push(NameRule::Exact(name.into()));
            assert_eq!(
                policy.check(),
                Err(PolicyError::Name { profile: "default".into(), rule: NameRule::Exact(name.into()), reason }),
                "{name:?}"
            );
        }
        let long_label = "a".repeat(64) + ".com";
        assert_eq!(check_dns_name(&long_label), Err(NameError::LabelTooLong("a".repeat(64))));
        let long_name = vec!["a".repeat(63); 4].join(".") + ".com";
        assert_eq!(check_dns_name(&long_name), Err(NameError::TooLong(long_name.len())));
        check_dns_name("xn--bcher-kva.example").unwrap();
        check_dns_name("localhost").unwrap();
    }

    #[test]
    fn command_line_rule_spelling_round_trips() {
        assert_eq!("=Host.Example.com".parse(), Ok(NameRule::Exact("host.example.com".into())));
        assert_eq!("*.example.com".parse(), Ok(NameRule::Wildcard("example.com".into())));
        assert_eq!("example.com".parse(), Ok(NameRule::Subdomain("example.com".into())));
        for rule in ["=a.example.com", "*.example.com", "example.com"] {
            assert_eq!(rule.parse::<NameRule>().unwrap().to_string(), rule);
        }
        for bad in ["", "=", "*.", "**.example.com", "a.*.example.com", "example.com.", "=10.0.0.1"] {
            let err = bad.parse::<NameRule>().unwrap_err();
            assert_eq!(err.rule, bad);
            assert!(err.to_string().starts_with(&format!("name rule {bad:?}: ")), "{err}");
        }
    }

    #[test]
    fn rules_allow_what_they_name_and_nothing_else() {
        let exact = NameRule::Exact("host.example.com".into());
        assert!(exact.allows("host.example.com"));
        assert!(!exact.allows("a.host.example.com") && !exact.allows("example.com"));

        let zone = NameRule::Subdomain("example.com".into());
        assert!(zone.allows("example.com") && zone.allows("a.b.example.com"));
        assert!(!zone.allows("badexample.com") && !zone.allows("example.com.evil"));
        assert!(!zone.allows("*.example.com"), "a subdomain rule grants no wildcard");

        let wildcard = NameRule::Wildcard("example.com".into());
        assert!(wildcard.allows("*.example.com"));
        assert!(!wildcard.allows("*.a.example.com") && !wildcard.allows("a.example.com"));
    }

    #[test]
    fn key_types_and_usages_parse_their_own_display() {
        for key_type in KeyType::ALL {
            assert_eq!(key_type.to_string().parse(), Ok(key_type));
            assert_eq!(serde_json::to_string(&key_type).unwrap(), format!("\"{key_type}\""));
        }
        for usage in ExtendedKeyUsage::ALL {
            assert_eq!(usage.to_string().parse(), Ok(usage));
            assert_eq!(serde_json::to_string(&usage).unwrap(), format!("\"{usage}\""));
        }
        assert!("rsa-1024".parse::<KeyType>().unwrap_err().to_string().contains("ec-p256"));
    }

    #[test]
    fn accounts_expire_at_their_expiry_time() {
        let mut account = sample().accounts.remove(0);
        assert!(account.is_active_at(u64::MAX));
        account.expires_at = Some(1_000);
        assert!(account.is_active_at(999));
        assert!(!account.is_active_at(1_000));
    }

    #[test]
    fn policy_hash_is_lowercase_hex_sha256_of_the_bytes() {
        assert_eq!(policy_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let text = to_json(&sample());
        assert_ne!(policy_sha256(text.as_bytes()), policy_sha256(text.replace("30", "31").as_bytes()));
    }
}
