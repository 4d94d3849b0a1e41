//! The first policy's names as the operator gives them on the command line, and how the summary
//! describes them.

use ca_api::policy::{NameRule, RuleParseError};

/// What the default profile allows under `--local`: the loopback name and every name below it.
pub const LOCAL_ZONE: &str = "localhost";

/// The default profile's names: `localhost` and below with `--local`, then each `--allow RULE`
/// (`=host.example.com` exact, `*.example.com` wildcard, `example.com` the zone and below) in the
/// order given, without repeats.
pub fn default_profile_names(allow: &[String], local: bool) -> Result<Vec<NameRule>, RuleParseError> {
    let mut rules = Vec::new();
    if local {
        rules.push(NameRule::Subdomain(LOCAL_ZONE.to_string()));
    }
    for text in allow {
        let rule: NameRule = text.parse()?;
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok(rules)
}

/// One line on what the default profile lets the operator issue; with no names it says that
/// issuance is refused, so an operator is not surprised by the first refusal.
pub fn describe_names(names: &[NameRule]) -> String {
    if names.is_empty() {
        return "The default profile allows no names yet: issuance is refused until an administrator adds some to \
                the policy (or rerun the ceremony with --allow)."
            .to_string();
    }
    let described: Vec<String> = names
        .iter()
        .map(|rule| match rule {
            NameRule::Exact(name) => name.clone(),
            NameRule::Subdomain(zone) => format!("{zone} and every name below it"),
            NameRule::Wildcard(zone) => format!("*.{zone}"),
        })
        .collect();
    format!("The default profile allows: {}.", described.join("; "))
}
