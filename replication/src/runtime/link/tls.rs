//! TLS 1.3 with mutual authentication by pinned certificates. Trust comes from the cluster file
//! alone: a peer's certificate is accepted if and only if its SHA-256 is the fingerprint pinned
//! for that replica (no chain building, no names). Handshake signatures are still verified with
//! the provider's algorithms, so presenting a pinned certificate requires its private key.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::LinkError;
use super::config::{Fingerprint, fingerprint};
use crate::PartyId;

fn refused() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// Client side: the server we dialled must present the certificate pinned for that replica.
#[derive(Debug)]
struct PinnedServer {
    peer: PartyId,
    expected: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
    refused: Arc<AtomicU64>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        if presented == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = self.peer,
                presented = %hex::encode(presented),
                "refused the server: its certificate is not the one the cluster pins for this replica"
            );
            Err(refused())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Server side: the client must present the certificate pinned for a replica with a lower id
/// than ours (only those dial us).
#[derive(Debug)]
struct LowerPeers {
    me: PartyId,
    pinned: Arc<HashMap<Fingerprint, PartyId>>,
    algorithms: WebPkiSupportedAlgorithms,
    refused: Arc<AtomicU64>,
}

impl ClientCertVerifier for LowerPeers {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        match self.pinned.get(&presented) {
            Some(&peer) if peer < self.me => Ok(ClientCertVerified::assertion()),
            Some(&peer) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer,
                    "refused a connection from a replica with a higher id (it should accept, not dial)"
                );
                Err(refused())
            }
            None => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    presented = %hex::encode(presented),
                    "refused a client certificate the dealer did not issue to any replica"
                );
                Err(refused())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Certificates refused: by our dialers (servers) and by our listener (clients).
#[derive(Debug, Default)]
pub(super) struct RefusedCounters {
    pub servers: Arc<AtomicU64>,
    pub clients: Arc<AtomicU64>,
}

/// The TLS configurations of one endpoint.
pub(super) struct TlsSetup {
    pub server: Arc<ServerConfig>,
    /// One per peer we dial (higher ids), each pinning that peer.
    pub clients: HashMap<PartyId, Arc<ClientConfig>>,
    /// Every peer's fingerprint, to attribute an accepted connection.
    pub pinned: Arc<HashMap<Fingerprint, PartyId>>,
}

/// The name sent in the handshake; verification ignores it and SNI is off, so it is never
/// seen on the wire. `.invalid` (RFC 6761) as in the dealer's certificates.
pub(super) fn server_name(peer: PartyId) -> Result<ServerName<'static>, LinkError> {
    ServerName::try_from(format!("replica-{peer}.peer.invalid")).map_err(|_| LinkError::PeerName(peer))
}

pub(super) fn setup(
    me: PartyId,
    peers: &[(PartyId, Fingerprint)],
    certificate_chain: Vec<CertificateDer<'static>>,
    private_key: &PrivateKeyDer<'_>,
    refused: &RefusedCounters,
) -> Result<TlsSetup, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Borrows the key: no unwiped copy of its DER is made here.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(private_key).map_err(LinkError::Key)?;
    let certified = CertifiedKey::new(certificate_chain, signing_key);
    certified.keys_match().map_err(|_| LinkError::KeyMismatch)?;
    let resolver = Arc::new(SingleCertAndKey::from(certified));
    let algorithms = provider.signature_verification_algorithms;
    let pinned: Arc<HashMap<Fingerprint, PartyId>> = Arc::new(peers.iter().map(|&(id, fp)| (fp, id)).collect());

    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(LinkError::Tls)?
        .with_client_cert_verifier(Arc::new(LowerPeers {
            me,
            pinned: pinned.clone(),
            algorithms,
            refused: refused.clients.clone(),
        }))
        .with_cert_resolver(resolver.clone());
    // No session resumption either way: a resumed session skips the certificate verifiers, and
    // every connection must show its pinned certificate.
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.send_tls13_tickets = 0;

    let mut clients = HashMap::new();
    for &(peer, expected) in peers.iter().filter(|(id, _)| *id > me) {
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(LinkError::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer {
                peer,
                expected,
                algorithms,
                refused: refused.servers.clone(),
            }))
            .with_client_cert_resolver(resolver.clone());
        client.enable_sni = false;
        client.resumption = Resumption::disabled();
        clients.insert(peer, Arc::new(client));
    }
    Ok(TlsSetup { server: Arc::new(server), clients, pinned })
}

/// The replica an accepted connection came from, by its (already verified) certificate.
pub(super) fn accepted_peer(
    me: PartyId,
    pinned: &HashMap<Fingerprint, PartyId>,
    certificates: Option<&[CertificateDer<'_>]>,
) -> Option<PartyId> {
    let end_entity = certificates?.first()?;
    pinned.get(&fingerprint(end_entity)).copied().filter(|&peer| peer < me)
}
