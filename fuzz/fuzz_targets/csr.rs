//! Certificate signing requests, from the bytes a client submits to the TBSCertificate the
//! replicas would sign: `csr::parse`, the profile check and `certificate::tbs_certificate`.
//!
//! The first input byte picks the mode: even, the rest is the request as submitted (DER or
//! PEM); odd, the rest's request info is re-signed with a fixed key first, so mutations behind
//! the self-signature (names, extensions, subject) get past its check.
//!
//! Properties beyond "no panic": an accepted request parses the same as DER and as PEM, stays
//! within the name limit, and when its profile allows it, always yields a TBSCertificate (a
//! request the checks passed must never fail later) that carries exactly the allowed names and
//! the request's key.
#![no_main]

use std::sync::OnceLock;

use ca_api::policy::{ExtendedKeyUsage, KeyType, NameRule, Profile};
use ca_server::certificate::{self, EndEntity, Issuer};
use ca_server::csr::{self, CsrLimits};
use ca_server::names::DnsName;
use ca_server::profile;
use der::Decode;
use libfuzzer_sys::fuzz_target;
use x509_cert::TbsCertificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::RdnSequence;

/// 2025-06-15, well inside the fixture root's validity.
const NOT_BEFORE: u64 = 1_750_000_000;

fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| Issuer::from_der(include_bytes!("../fixtures/root.der")).expect("the fixture root is a CA"))
}

fn profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| Profile {
        name: "fuzz".into(),
        names: ["localhost", "example.com", "*.example.com", "=host.test", "xn--bcher-kva.example"]
            .iter()
            .map(|rule| rule.parse::<NameRule>().expect("valid rule"))
            .collect(),
        key_types: KeyType::ALL.to_vec(),
        max_validity_days: 90,
        default_validity_days: 30,
        extended_key_usage: ExtendedKeyUsage::ALL.to_vec(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = CsrLimits::default();
    // The DER whose acceptance is checked against its PEM form below.
    let (der, result) = if mode % 2 == 0 {
        let result = csr::parse(rest, &limits);
        let der = if rest.trim_ascii_start().starts_with(b"-----BEGIN") {
            der::pem::decode_vec(rest.trim_ascii()).ok().map(|(_, der)| der)
        } else {
            Some(rest.to_vec())
        };
        (der, result)
    } else {
        let der = itca_fuzz::resign(itca_fuzz::request_info(rest).unwrap_or(rest));
        let result = csr::parse_der(&der, &limits);
        (Some(der), result)
    };
    let Ok(csr) = result else {
        return;
    };
    assert!(csr.dns_names.len() + csr.ip_addresses.len() <= limits.max_names, "more names than the limit");

    // DER and PEM are one request.
    let der = der.expect("an accepted PEM request decodes as PEM");
    assert_eq!(csr::parse_der(&der, &limits).as_ref(), Ok(&csr), "parse_der disagrees with parse");
    let pem = itca_fuzz::pem("CERTIFICATE REQUEST", &der);
    assert_eq!(csr::parse(pem.as_bytes(), &limits).as_ref(), Ok(&csr), "the PEM form parses differently");

    let validity = match mode >> 1 {
        0 => None,
        v => Some(u32::from(v)),
    };
    let Ok(allowed) = profile::check(profile(), &csr, validity) else {
        return;
    };
    for name in &allowed.dns_names {
        assert_eq!(DnsName::parse(name.as_str()).as_ref(), Ok(name), "normalising a normalised name changed it");
    }
    // What apply.rs builds for an allowed request.
    let end_entity = EndEntity {
        serial: certificate::serial_from([7; 32], 1),
        not_before: NOT_BEFORE,
        not_after: NOT_BEFORE + u64::from(allowed.validity_days) * profile::DAY - 1,
        subject: RdnSequence(Vec::new()),
        dns_names: allowed.dns_names.clone(),
        ip_addresses: Vec::new(),
        public_key: csr.public_key.clone(),
        extended_key_usages: allowed.extended_key_usages.clone(),
        crl_url: Some("https://ca.example.com/v1/crl".into()),
    };
    let tbs = certificate::tbs_certificate(issuer(), &end_entity)
        .unwrap_or_else(|e| panic!("an allowed request has no TBSCertificate: {e}"));
    let tbs = TbsCertificate::from_der(&tbs).expect("the TBSCertificate decodes");
    assert_eq!(tbs.subject_public_key_info, csr.public_key, "the certificate certifies another key");
    let san = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .expect("a subjectAltName");
    let names: Vec<String> = SubjectAltName::from_der(san.extn_value.as_bytes())
        .expect("the SAN decodes")
        .0
        .into_iter()
        .map(|n| match n {
            GeneralName::DnsName(name) => name.to_string(),
            other => panic!("unexpected SAN entry {other:?}"),
        })
        .collect();
    let allowed: Vec<String> = allowed.dns_names.iter().map(|n| n.to_string()).collect();
    assert_eq!(names, allowed, "the certificate names differ from the allowed names");
});
