//! A policy profile applied to a parsed request: which names, key type and validity it allows.
//!
//! This is the one place where the policy's types (`ca_api::policy`: what an administrator
//! writes) meet the parsed request's (`csr::KeyType`: what a key actually is; `names::DnsName`: a
//! normalised name). Everything is a pure function of the profile and the request, so every
//! replica reaches the same verdict.

use std::net::IpAddr;

use ca_api::policy::{ExtendedKeyUsage, KeyType, Profile};
use const_oid::db::rfc4519;
use der::{Tag, Tagged};
use x509_cert::name::Name;

use crate::csr::{self, Csr};
use crate::names::{DnsName, NameError};

/// Seconds in a day: validity is counted in whole days.
pub const DAY: u64 = 86_400;

/// Why a profile does not allow a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the key type {key} is not allowed by profile {profile:?} (allowed: {allowed})")]
    KeyTypeNotAllowed { key: csr::KeyType, profile: String, allowed: String },
    #[error("the request names no DNS name (neither in a subjectAltName nor as the subject's common name)")]
    NoNames,
    #[error("{name:?} is not a valid DNS name: {reason}")]
    InvalidName { name: String, reason: NameError },
    #[error("the name {name} is not allowed by profile {profile:?}")]
    NameNotAllowed { name: String, profile: String },
    #[error("IP address {0} is not allowed: profiles allow DNS names only")]
    IpAddressNotAllowed(IpAddr),
    #[error("a validity of {requested} days exceeds profile {profile:?}'s maximum of {max} days")]
    ValidityTooLong { requested: u32, max: u32, profile: String },
    #[error("a validity of 0 days is not a validity")]
    ZeroValidity,
}

/// What a profile allowed: the names to certify (normalised, in request order, without
/// repeats), the validity in days, and the extended key usages to grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub dns_names: Vec<DnsName>,
    pub validity_days: u32,
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
}

/// The policy's key type for a parsed key; `None` for a size no profile can name (e.g. RSA-2560),
/// which therefore no profile allows.
pub fn policy_key_type(key: csr::KeyType) -> Option<KeyType> {
    match key {
        csr::KeyType::Rsa { bits: 2048 } => Some(KeyType::Rsa2048),
        csr::KeyType::Rsa { bits: 3072 } => Some(KeyType::Rsa3072),
        csr::KeyType::Rsa { bits: 4096 } => Some(KeyType::Rsa4096),
        csr::KeyType::Rsa { .. } => None,
        csr::KeyType::EcP256 => Some(KeyType::EcP256),
        csr::KeyType::EcP384 => Some(KeyType::EcP384),
        csr::KeyType::Ed25519 => Some(KeyType::Ed25519),
    }
}

/// Checks `csr` against `profile`. `validity_days` is the client's wish; `None` takes the
/// profile's default.
pub fn check(profile: &Profile, csr: &Csr, validity_days: Option<u32>) -> Result<Allowed, ProfileError> {
    let key_allowed = policy_key_type(csr.key_type).is_some_and(|key| profile.key_types.contains(&key));
    if !key_allowed {
        let allowed: Vec<&str> = profile.key_types.iter().map(|k| k.as_str()).collect();
        return Err(ProfileError::KeyTypeNotAllowed {
            key: csr.key_type,
            profile: profile.name.clone(),
            allowed: allowed.join(", "),
        });
    }
    if let Some(ip) = csr.ip_addresses.first() {
        return Err(ProfileError::IpAddressNotAllowed(*ip));
    }
    let dns_names = requested_names(csr)?;
    for name in &dns_names {
        if !profile.names.iter().any(|rule| rule.allows(name.as_str())) {
            return Err(ProfileError::NameNotAllowed { name: name.to_string(), profile: profile.name.clone() });
        }
    }
    let validity_days = validity_days.unwrap_or(profile.default_validity_days);
    if validity_days == 0 {
        return Err(ProfileError::ZeroValidity);
    }
    if validity_days > profile.max_validity_days {
        return Err(ProfileError::ValidityTooLong {
            requested: validity_days,
            max: profile.max_validity_days,
            profile: profile.name.clone(),
        });
    }
    Ok(Allowed { dns_names, validity_days, extended_key_usages: profile.extended_key_usage.clone() })
}

/// The subjectAltName DNS names or, when the request has no subjectAltName at all, its subject's
/// common names (what `openssl req -subj /CN=host` without `-addext` produces). Normalised, in
/// order, each once.
fn requested_names(csr: &Csr) -> Result<Vec<DnsName>, ProfileError> {
    let raw: Vec<String> = if csr.dns_names.is_empty() { common_names(&csr.subject) } else { csr.dns_names.clone() };
    let mut names: Vec<DnsName> = Vec::with_capacity(raw.len());
    for name in raw {
        let parsed = DnsName::parse(&name).map_err(|reason| ProfileError::InvalidName { name, reason })?;
        if !names.contains(&parsed) {
            names.push(parsed);
        }
    }
    if names.is_empty() {
        return Err(ProfileError::NoNames);
    }
    Ok(names)
}

/// The subject's CN values given as one of the string types a CN uses.
fn common_names(subject: &Name) -> Vec<String> {
    let mut names = Vec::new();
    for rdn in &subject.0 {
        for atv in rdn.0.iter() {
            let text_tag = matches!(atv.value.tag(), Tag::Utf8String | Tag::PrintableString | Tag::Ia5String);
            if atv.oid == rfc4519::CN
                && text_tag
                && let Ok(text) = std::str::from_utf8(atv.value.value())
            {
                names.push(text.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use ca_api::policy::NameRule;
    use x509_cert::name::RdnSequence;

    use super::*;
    use crate::test_support::*;

    fn profile(names: Vec<NameRule>) -> Profile {
        Profile {
            name: "web".into(),
            names,
            key_types: vec![KeyType::EcP256, KeyType::Rsa2048],
            max_validity_days: 90,
            default_validity_days: 30,
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
        }
    }

    fn csr(dns: &[&str]) -> Csr {
        Csr {
            subject: cn("ignored.example"),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: vec![],
            public_key: p256_spki(&p256_key(1)),
            key_type: csr::KeyType::EcP256,
        }
    }

    fn rules() -> Vec<NameRule> {
        vec![
            NameRule::Exact("www.example.com".into()),
            NameRule::Subdomain("example.org".into()),
            NameRule::Wildcard("example.net".into()),
        ]
    }

    #[test]
    fn names_are_checked_against_the_policy_rules_after_normalising() {
        let p = profile(rules());
        // name, allowed
        let table = [
            ("www.example.com", true),
            ("WWW.EXAMPLE.COM", true),
            ("example.com", false),
            ("example.org", true),
            ("a.b.example.org", true),
            ("*.example.org", false),
            ("badexample.org", false),
            ("*.example.net", true),
            ("a.example.net", false),
            ("*.a.example.net", false),
        ];
        for (name, allowed) in table {
            let verdict = check(&p, &csr(&[name]), None);
            assert_eq!(verdict.is_ok(), allowed, "{name}: {verdict:?}");
            if !allowed {
                assert!(matches!(verdict, Err(ProfileError::NameNotAllowed { .. })), "{name}");
            }
        }
    }

    #[test]
    fn one_disallowed_name_refuses_the_whole_request_and_repeats_collapse() {
        let p = profile(rules());
        assert_eq!(
            check(&p, &csr(&["www.example.com", "evil.example"]), None),
            Err(ProfileError::NameNotAllowed { name: "evil.example".into(), profile: "web".into() })
        );
        let allowed = check(&p, &csr(&["a.example.org", "A.example.org", "www.example.com"]), None).unwrap();
        let names: Vec<&str> = allowed.dns_names.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["a.example.org", "www.example.com"]);
    }

    #[test]
    fn the_common_name_is_used_only_without_a_subject_alt_name() {
        let p = profile(rules());
        let mut request = csr(&[]);
        request.subject = cn("www.example.com");
        assert_eq!(check(&p, &request, None).unwrap().dns_names, [DnsName::parse("www.example.com").unwrap()]);
        request.subject = RdnSequence(vec![]);
        assert_eq!(check(&p, &request, None), Err(ProfileError::NoNames));
        request.subject = cn("not a name");
        assert!(matches!(check(&p, &request, None), Err(ProfileError::InvalidName { .. })));
    }

    #[test]
    fn key_types_ip_addresses_and_validity_are_enforced() {
        let p = profile(rules());
        let mut request = csr(&["www.example.com"]);
        request.key_type = csr::KeyType::Ed25519;
        assert!(matches!(check(&p, &request, None), Err(ProfileError::KeyTypeNotAllowed { .. })));
        request.key_type = csr::KeyType::Rsa { bits: 2560 };
        assert!(matches!(check(&p, &request, None), Err(ProfileError::KeyTypeNotAllowed { .. })));
        request.key_type = csr::KeyType::Rsa { bits: 2048 };
        assert!(check(&p, &request, None).is_ok());

        let mut with_ip = csr(&["www.example.com"]);
        with_ip.ip_addresses = vec![IpAddr::from([192, 0, 2, 1])];
        assert_eq!(check(&p, &with_ip, None), Err(ProfileError::IpAddressNotAllowed(IpAddr::from([192, 0, 2, 1]))));

        let request = csr(&["www.example.com"]);
        assert_eq!(check(&p, &request, None).unwrap().validity_days, 30);
        assert_eq!(check(&p, &request, Some(90)).unwrap().validity_days, 90);
        assert_eq!(
            check(&p, &request, Some(91)),
            Err(ProfileError::ValidityTooLong { requested: 91, max: 90, profile: "web".into() })
        );
        assert_eq!(check(&p, &request, Some(0)), Err(ProfileError::ZeroValidity));
        assert_eq!(check(&p, &request, None).unwrap().extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    }

    #[test]
    fn every_policy_key_type_maps_from_exactly_one_parsed_key() {
        let parsed = [
            csr::KeyType::Rsa { bits: 2048 },
            csr::KeyType::Rsa { bits: 3072 },
            csr::KeyType::Rsa { bits: 4096 },
            csr::KeyType::EcP256,
            csr::KeyType::EcP384,
            csr::KeyType::Ed25519,
        ];
        let mapped: Vec<KeyType> = parsed.into_iter().filter_map(policy_key_type).collect();
        assert_eq!(mapped, KeyType::ALL);
        assert_eq!(policy_key_type(csr::KeyType::Rsa { bits: 1024 }), None);
    }
}
