//! A fast deterministic stand-in for the threshold schemes, for the simulator's many-seed runs.
//! Not secure (the public side holds every party's secret so it can check shares), but with the
//! real schemes' interface and failure behaviour: a share verifies only if made by its claimed
//! party over the same message; combining needs `required` valid distinct shares and names the
//! invalid ones; ciphertexts are checked for validity; shares of another party fail.

use super::*;
use rand::RngCore;

type Secret = [u8; 32];

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key);
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn party_secret(master: &Secret, party: PartyId) -> Secret {
    mac(master, &[b"party", &(party as u64).to_be_bytes()])
}

struct StandinThreshold {
    n: usize,
    required: usize,
    master: Secret,
}

impl StandinThreshold {
    fn share_bytes(&self, party: PartyId, dst: &[u8], msg: &[u8]) -> Vec<u8> {
        mac(&party_secret(&self.master, party), &[dst, msg]).to_vec()
    }
    fn signature(&self, dst: &[u8], msg: &[u8]) -> Signature {
        Signature(mac(&self.master, &[b"combined", dst, msg]).to_vec())
    }
}

impl ThresholdPublic for StandinThreshold {
    fn required(&self) -> usize {
        self.required
    }
    fn verify_share(&self, dst: &[u8], msg: &[u8], share: &SignatureShare) -> bool {
        share.id < self.n && share.bytes == self.share_bytes(share.id, dst, msg)
    }
    fn verify(&self, dst: &[u8], msg: &[u8], signature: &Signature) -> bool {
        *signature == self.signature(dst, msg)
    }
    fn combine(&self, dst: &[u8], msg: &[u8], shares: &[SignatureShare]) -> Result<Combined<Signature>, CombineError> {
        let shares = distinct_by_party(shares, |s| s.id);
        if shares.len() < self.required {
            return Err(CombineError::NotEnoughShares { needed: self.required, got: shares.len() });
        }
        let (good, bad): (Vec<_>, Vec<_>) = shares.into_iter().partition(|s| self.verify_share(dst, msg, s));
        let faulty: Vec<PartyId> = bad.iter().map(|s| s.id).collect();
        if good.len() < self.required {
            return Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: good.len(),
                faulty,
                unproven: Vec::new(),
            });
        }
        Ok(Combined { value: self.signature(dst, msg), faulty })
    }
}

struct StandinSigner {
    scheme: Arc<StandinThreshold>,
    id: PartyId,
}

impl ThresholdSigner for StandinSigner {
    fn sign(&self, dst: &[u8], msg: &[u8]) -> SignatureShare {
        SignatureShare { id: self.id, bytes: self.scheme.share_bytes(self.id, dst, msg) }
    }
}

/// Ciphertext layout: `label_len (8) | label | nonce (32) | body | tag (32)`, body = plaintext
/// XOR a keystream derived from the master secret and the nonce.
struct StandinEncryption {
    n: usize,
    required: usize,
    master: Secret,
}

struct ParsedCiphertext<'a> {
    label: &'a [u8],
    nonce: &'a [u8],
    body: &'a [u8],
    tag: &'a [u8],
}

fn parse_ciphertext(ct: &[u8]) -> Option<ParsedCiphertext<'_>> {
    let label_len = u64::from_be_bytes(ct.get(..8)?.try_into().ok()?) as usize;
    let rest = ct.get(8..)?;
    let label = rest.get(..label_len)?;
    let rest = rest.get(label_len..)?;
    let nonce = rest.get(..32)?;
    let rest = rest.get(32..)?;
    let body_len = rest.len().checked_sub(32)?;
    Some(ParsedCiphertext { label, nonce, body: &rest[..body_len], tag: &rest[body_len..] })
}

impl StandinEncryption {
    fn keystream(&self, nonce: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut counter = 0u64;
        while out.len() < len {
            out.extend_from_slice(&mac(&self.master, &[b"stream", nonce, &counter.to_be_bytes()]));
            counter += 1;
        }
        out.truncate(len);
        out
    }
    fn tag(&self, label: &[u8], nonce: &[u8], body: &[u8]) -> [u8; 32] {
        mac(&self.master, &[b"tag", label, nonce, body])
    }
    fn share_bytes(&self, party: PartyId, ct: &[u8]) -> Vec<u8> {
        mac(&party_secret(&self.master, party), &[b"decrypt", ct]).to_vec()
    }

    /// Seals `plaintext` under `label` (what a client does).
    fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        let body: Vec<u8> = plaintext.iter().zip(self.keystream(&nonce, plaintext.len())).map(|(p, k)| p ^ k).collect();
        let mut out = (label.len() as u64).to_be_bytes().to_vec();
        out.extend_from_slice(label);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out.extend_from_slice(&self.tag(label, &nonce, &body));
        out
    }
}

impl DecryptionPublic for StandinEncryption {
    fn validate(&self, ciphertext: &[u8]) -> bool {
        parse_ciphertext(ciphertext).is_some_and(|c| c.tag == self.tag(c.label, c.nonce, c.body).as_slice())
    }
    fn verify_share(&self, ciphertext: &[u8], share: &DecryptionShare) -> bool {
        share.id < self.n && share.bytes == self.share_bytes(share.id, ciphertext)
    }
    fn open(&self, ciphertext: &[u8], shares: &[DecryptionShare]) -> Result<Combined<Vec<u8>>, CombineError> {
        let shares = distinct_by_party(shares, |s| s.id);
        if shares.len() < self.required {
            return Err(CombineError::NotEnoughShares { needed: self.required, got: shares.len() });
        }
        let (good, bad): (Vec<_>, Vec<_>) = shares.into_iter().partition(|s| self.verify_share(ciphertext, s));
        let faulty: Vec<PartyId> = bad.iter().map(|s| s.id).collect();
        let parsed = parse_ciphertext(ciphertext).filter(|_| self.validate(ciphertext));
        match parsed {
            Some(c) if good.len() >= self.required => {
                let plaintext = c.body.iter().zip(self.keystream(c.nonce, c.body.len())).map(|(b, k)| b ^ k);
                Ok(Combined { value: plaintext.collect(), faulty })
            }
            _ => Err(CombineError::NotEnoughValidShares {
                needed: self.required,
                valid: good.len(),
                faulty,
                unproven: Vec::new(),
            }),
        }
    }
}

struct StandinDecryptionShare {
    scheme: Arc<StandinEncryption>,
    id: PartyId,
}

impl DecryptionSecret for StandinDecryptionShare {
    fn share(&self, ciphertext: &[u8]) -> Option<DecryptionShare> {
        self.scheme
            .validate(ciphertext)
            .then(|| DecryptionShare { id: self.id, bytes: self.scheme.share_bytes(self.id, ciphertext) })
    }
}

struct StandinIndividual {
    n: usize,
    master: Secret,
}

impl IndividualVerifier for StandinIndividual {
    fn verify(&self, party: PartyId, msg: &[u8], signature: &[u8]) -> bool {
        party < self.n && signature == mac(&party_secret(&self.master, party), &[b"sig", msg])
    }
}

struct StandinIndividualSigner {
    scheme: Arc<StandinIndividual>,
    id: PartyId,
}

impl IndividualSigner for StandinIndividualSigner {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        mac(&party_secret(&self.scheme.master, self.id), &[b"sig", msg]).to_vec()
    }
}

/// A dealt stand-in cluster: public keys, every party's secrets, and a sealing function for
/// simulated clients.
pub struct StandinCluster {
    pub public: PublicKeys,
    pub secrets: Vec<SecretKeys>,
    encryption: Arc<StandinEncryption>,
}

impl StandinCluster {
    pub fn deal(n: usize, t: usize, rng: &mut dyn RngCore) -> Self {
        let mut secret = || {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        };
        let coin = Arc::new(StandinThreshold { n, required: t + 1, master: secret() });
        let encryption = Arc::new(StandinEncryption { n, required: t + 1, master: secret() });
        let replicas = Arc::new(StandinIndividual { n, master: secret() });
        // Everything but the coin is a quorum certificate of the individual signatures, as for
        // real.
        let super::QuorumSchemes { pre_process, vote, echo } =
            super::quorum_public(n, t, &(replicas.clone() as Arc<dyn IndividualVerifier>));
        let public = PublicKeys {
            n,
            t,
            coin: coin.clone(),
            pre_process,
            vote,
            echo,
            encryption: encryption.clone(),
            replicas: replicas.clone(),
        };
        let secrets = (0..n)
            .map(|id| {
                let signing: Arc<dyn IndividualSigner> =
                    Arc::new(StandinIndividualSigner { scheme: replicas.clone(), id });
                let quorum = super::quorum_signer(id, &signing);
                SecretKeys {
                    id,
                    coin: Arc::new(StandinSigner { scheme: coin.clone(), id }),
                    pre_process: quorum.clone(),
                    vote: quorum.clone(),
                    echo: quorum,
                    decryption: Arc::new(StandinDecryptionShare { scheme: encryption.clone(), id }),
                    signing,
                }
            })
            .collect();
        StandinCluster { public, secrets, encryption }
    }

    pub fn network_info(&self, id: PartyId) -> NetworkInfo {
        NetworkInfo { id, public: self.public.clone(), secret: self.secrets[id].clone() }
    }

    /// Seals a request as a client would.
    pub fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
        self.encryption.seal(label, plaintext, rng)
    }
}
