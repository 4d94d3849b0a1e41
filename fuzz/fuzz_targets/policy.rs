//! The policy (`ca_api::policy`): a policy file as an administrator's `SetPolicy` command
//! carries it, a name rule as written on a command line, and DNS names as the CA normalises
//! them (`ca_server::names`). The first byte picks which.
//!
//! Properties beyond "no panic": a policy that parses passes its own check and its serialised
//! form parses to an equal policy; a rule prints back to itself; normalising a normalised DNS
//! name changes nothing, and a rule's verdict does not depend on the name's letter case.
#![no_main]

use ca_api::policy::{NameRule, Policy};
use ca_server::names::DnsName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(policy) = Policy::parse(text) else {
                return;
            };
            assert_eq!(policy.check(), Ok(()), "a parsed policy fails its own check");
            let written = threshold::encoding::to_json(&policy);
            assert_eq!(Policy::parse(&written).ok().as_ref(), Some(&policy), "parse(write(p)) != p");
        }
        1 => {
            // "rule\nname": the rule, then a name to test against it.
            let (rule, name) = text.split_once('\n').unwrap_or((text, ""));
            let Ok(parsed) = rule.parse::<NameRule>() else {
                return;
            };
            assert_eq!(parsed.to_string().parse::<NameRule>().as_ref(), Ok(&parsed), "rule round trip");
            if let Ok(name) = DnsName::parse(name) {
                let upper = name.as_str().to_ascii_uppercase();
                let again = DnsName::parse(&upper).expect("the upper-case spelling parses");
                assert_eq!(parsed.allows(again.as_str()), parsed.allows(name.as_str()), "case changed the verdict");
            }
        }
        _ => {
            if let Ok(name) = DnsName::parse(text) {
                assert_eq!(DnsName::parse(name.as_str()).as_ref(), Ok(&name), "normalisation is not idempotent");
                assert_eq!(name.as_str(), text.to_ascii_lowercase(), "normalisation did more than fold case");
            }
        }
    }
});
