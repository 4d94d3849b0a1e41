//! Certificate revocation lists (RFC 5280 5): the to-be-signed `TBSCertList` and the final CRL
//! from it plus the jointly computed sha256WithRSAEncryption signature.
//!
//! The output depends only on the set of revoked entries, not on the order the caller lists them
//! in: entries are sorted by serial number, so every replica signs the same bytes.

use der::asn1::{BitString, Uint};
use der::{Decode, Encode};
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::CrlNumber;
use x509_cert::ext::pkix::crl::CrlReason;

use crate::certificate::{
    CertificateError, Issuer, authority_key_identifier, extension, serial_number, sha256_with_rsa, x509_time,
};

/// RFC 5280 5.3.1 reason codes a full CRL of this CA can carry: the type clients name reasons
/// with. `removeFromCRL` exists only in delta CRLs, and `certificateHold` is left out because a
/// revocation here is final.
pub use ca_api::command::RevocationReason;

fn crl_reason(reason: RevocationReason) -> CrlReason {
    match reason {
        RevocationReason::Unspecified => CrlReason::Unspecified,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Big-endian magnitude, as in [`crate::certificate::EndEntity::serial`].
    pub serial: Vec<u8>,
    /// Seconds since the epoch.
    pub revoked_at: u64,
    pub reason: RevocationReason,
}

/// The contents of one CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlContents {
    /// Increases with every CRL issued (RFC 5280 5.2.3).
    pub crl_number: u64,
    /// Seconds since the epoch: the round's agreed time.
    pub this_update: u64,
    pub next_update: u64,
    pub revoked: Vec<RevokedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
    #[error("nextUpdate {next_update} is before thisUpdate {this_update}")]
    UpdatesInverted { this_update: u64, next_update: u64 },
    #[error("serial {0} is listed twice")]
    DuplicateSerial(String),
    #[error("the TBS bytes are not a canonical TBSCertList signed with sha256WithRSAEncryption")]
    BadTbs,
}

/// The DER of the TBSCertList: the bytes the replicas sign.
pub fn tbs_crl(issuer: &Issuer, crl: &CrlContents) -> Result<Vec<u8>, CrlError> {
    if crl.next_update < crl.this_update {
        return Err(CrlError::UpdatesInverted { this_update: crl.this_update, next_update: crl.next_update });
    }
    let mut revoked = Vec::with_capacity(crl.revoked.len());
    for entry in &crl.revoked {
        // RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent.
        let extensions = match entry.reason {
            RevocationReason::Unspecified => None,
            reason => Some(vec![extension(&crl_reason(reason), false)?]),
        };
        revoked.push(RevokedCert {
            serial_number: serial_number(&entry.serial)?,
            revocation_date: x509_time(entry.revoked_at)?,
            crl_entry_extensions: extensions,
        });
    }
    // Numeric order of the serials (normalised: no leading zeros, so shorter is smaller).
    revoked.sort_by(|a, b| {
        let (a, b) = (a.serial_number.as_bytes(), b.serial_number.as_bytes());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    });
    if let Some(pair) = revoked.windows(2).find(|pair| pair[0].serial_number == pair[1].serial_number) {
        return Err(CrlError::DuplicateSerial(pair[0].serial_number.to_string()));
    }
    let crl_extensions = vec![
        authority_key_identifier(issuer)?,
        extension(&CrlNumber(Uint::new(&crl.crl_number.to_be_bytes())?), false)?,
    ];
    let tbs = TbsCertList {
        version: Version::V2,
        signature: sha256_with_rsa(),
        issuer: issuer.name().clone(),
        this_update: x509_time(crl.this_update)?,
        next_update: Some(x509_time(crl.next_update)?),
        // RFC 5280 5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: if revoked.is_empty() { None } else { Some(revoked) },
        crl_extensions: Some(crl_extensions),
    };
    Ok(tbs.to_der()?)
}

/// The CRL DER from its TBS bytes and the sha256WithRSAEncryption signature over them.
pub fn assemble_crl(tbs_der: &[u8], signature: &[u8]) -> Result<Vec<u8>, CrlError> {
    let tbs = TbsCertList::from_der(tbs_der).map_err(|_| CrlError::BadTbs)?;
    if tbs.signature != sha256_with_rsa() || tbs.to_der()? != tbs_der {
        return Err(CrlError::BadTbs);
    }
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(signature)?,
    };
    Ok(crl.to_der()?)
}

#[cfg(test)]
mod tests {
    use const_oid::db::rfc5280;
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;

    use super::*;
    use crate::test_support::*;

    fn issuer() -> Issuer {
        Issuer::from_der(&root().der).unwrap()
    }

    fn contents() -> CrlContents {
        CrlContents {
            crl_number: 7,
            this_update: 1_735_689_600,
            next_update: 1_735_776_000,
            revoked: vec![
                RevokedEntry {
                    serial: vec![0x02, 0x00],
                    revoked_at: 1_735_600_000,
                    reason: RevocationReason::Superseded,
                },
                RevokedEntry { serial: vec![0x05], revoked_at: 1_735_500_000, reason: RevocationReason::Unspecified },
                RevokedEntry {
                    serial: vec![0x01, 0xff],
                    revoked_at: 1_735_400_000,
                    reason: RevocationReason::KeyCompromise,
                },
            ],
        }
    }

    fn reason_of(entry: &RevokedCert) -> Option<CrlReason> {
        let extensions = entry.crl_entry_extensions.as_ref()?;
        assert_eq!(extensions.len(), 1);
        assert_eq!(extensions[0].extn_id, rfc5280::ID_CE_CRL_REASONS);
        Some(CrlReason::from_der(extensions[0].extn_value.as_bytes()).unwrap())
    }

    #[test]
    fn tbs_lists_entries_by_serial_with_reasons_number_and_aki() {
        let issuer = issuer();
        let tbs = TbsCertList::from_der(&tbs_crl(&issuer, &contents()).unwrap()).unwrap();
        assert_eq!(tbs.version, Version::V2);
        assert_eq!(&tbs.issuer, issuer.name());
        assert_eq!(tbs.this_update.to_unix_duration().as_secs(), 1_735_689_600);
        assert_eq!(tbs.next_update.unwrap().to_unix_duration().as_secs(), 1_735_776_000);
        let revoked = tbs.revoked_certificates.unwrap();
        let serials: Vec<&[u8]> = revoked.iter().map(|r| r.serial_number.as_bytes()).collect();
        assert_eq!(serials, [&[0x05][..], &[0x01, 0xff], &[0x02, 0x00]]);
        // Unspecified is left out (RFC 5280 5.3.1).
        let reasons: Vec<_> = revoked.iter().map(reason_of).collect();
        assert_eq!(reasons, [None, Some(CrlReason::KeyCompromise), Some(CrlReason::Superseded)]);
        assert_eq!(revoked[1].revocation_date.to_unix_duration().as_secs(), 1_735_400_000);

        let extensions = tbs.crl_extensions.unwrap();
        assert_eq!(extensions[0].extn_id, rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER);
        let aki = AuthorityKeyIdentifier::from_der(extensions[0].extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), issuer.key_id());
        assert_eq!(extensions[1].extn_id, rfc5280::ID_CE_CRL_NUMBER);
        assert_eq!(CrlNumber::from_der(extensions[1].extn_value.as_bytes()).unwrap().0.as_bytes(), [7]);
    }

    #[test]
    fn the_order_of_the_entries_given_does_not_change_the_bytes() {
        let issuer = issuer();
        let mut reversed = contents();
        reversed.revoked.reverse();
        assert_eq!(tbs_crl(&issuer, &contents()).unwrap(), tbs_crl(&issuer, &reversed).unwrap());
    }

    #[test]
    fn an_empty_crl_has_no_revoked_list() {
        let empty = CrlContents { revoked: vec![], crl_number: 0, ..contents() };
        let tbs = TbsCertList::from_der(&tbs_crl(&issuer(), &empty).unwrap()).unwrap();
        assert_eq!(tbs.revoked_certificates, None);
    }

    #[test]
    fn duplicates_and_inverted_updates_are_refused() {
        let mut twice = contents();
        twice.revoked.push(RevokedEntry { serial: vec![0, 0x05], revoked_at: 1, reason: RevocationReason::Superseded });
        assert_eq!(tbs_crl(&issuer(), &twice), Err(CrlError::DuplicateSerial("05".into())));
        let inverted = CrlContents { next_update: 1, ..contents() };
        assert_eq!(
            tbs_crl(&issuer(), &inverted),
            Err(CrlError::UpdatesInverted { this_update: 1_735_689_600, next_update: 1 })
        );
        let zero = CrlContents {
            revoked: vec![RevokedEntry { serial: vec![0], revoked_at: 1, reason: RevocationReason::Superseded }],
            ..contents()
        };
        assert_eq!(tbs_crl(&issuer(), &zero), Err(CrlError::Certificate(CertificateError::ZeroSerial)));
    }

    #[test]
    fn assembled_crl_carries_the_tbs_and_a_signature_the_root_key_verifies() {
        let issuer = issuer();
        let tbs = tbs_crl(&issuer, &contents()).unwrap();
        let signature = root().sign(&tbs);
        let crl = CertificateList::from_der(&assemble_crl(&tbs, &signature).unwrap()).unwrap();
        assert_eq!(crl.tbs_cert_list.to_der().unwrap(), tbs);
        assert_eq!(issuer.verify(&tbs, crl.signature.raw_bytes()), Ok(()));
        assert_eq!(assemble_crl(b"junk", &signature), Err(CrlError::BadTbs));
    }

    #[test]
    fn reason_codes_match_the_crl_encoding() {
        for reason in RevocationReason::ALL {
            assert_eq!(crl_reason(reason) as u8, reason.code());
        }
    }
}
