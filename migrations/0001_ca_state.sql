-- The CA state machine of one replica (ca-server). Integers are SQLite's 64-bit signed
-- integers: log indexes, rounds, times and CRL numbers stay far below 2^63. Hashes, serials and
-- DER are BLOBs; serials are big-endian without leading zero octets.

-- Where apply stands. One row. `next_round` is what the replication runtime resumes from; it is
-- updated in the same transaction as the round's entries, so a round is applied exactly once.
CREATE TABLE progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_round INTEGER NOT NULL,
    next_crl_number INTEGER NOT NULL
);
INSERT INTO progress (id, next_round, next_crl_number) VALUES (1, 0, 1);

-- The audit log: one row per ordered request, in order. `leaf` is the entry's canonical bytes
-- (ca-server's entry.rs); the Merkle leaf hash is SHA-256(0x00 || leaf).
CREATE TABLE entries (
    log_index INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    request_digest BLOB NOT NULL,
    -- Set for authorised commands: the same command is never carried twice.
    replay_key BLOB UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('issued', 'revoked', 'policy_changed', 'refused')),
    serial BLOB,
    refusal_code TEXT,
    refusal_message TEXT,
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE INDEX entries_by_request ON entries (request_digest, log_index);
CREATE INDEX entries_by_leaf_hash ON entries (leaf_hash);

-- Issued certificates. `der` is NULL until the replicas' signature shares are combined.
CREATE TABLE certificates (
    serial BLOB PRIMARY KEY,
    log_index INTEGER NOT NULL UNIQUE REFERENCES entries (log_index),
    account BLOB NOT NULL,
    profile TEXT NOT NULL,
    tbs BLOB NOT NULL,
    public_key BLOB NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    -- JSON array of the DNS names, in certificate order.
    dns_names TEXT NOT NULL,
    der BLOB,
    revoked_at INTEGER,
    revocation_reason INTEGER,
    revoked_by INTEGER REFERENCES entries (log_index)
);
CREATE INDEX certificates_revoked ON certificates (serial) WHERE revoked_at IS NOT NULL;

-- Every policy the CA has had; the highest version is current. Version 0 is the dealt policy
-- (no entry); later ones come from policy-change entries.
CREATE TABLE policies (
    version INTEGER PRIMARY KEY,
    log_index INTEGER REFERENCES entries (log_index),
    json TEXT NOT NULL,
    sha256 BLOB NOT NULL
);

-- Tree heads, one after each round that appended entries; `signature` (over RFC 6962's
-- TreeHeadSignature) is NULL until combined.
CREATE TABLE tree_heads (
    tree_size INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    root BLOB NOT NULL,
    signature BLOB
);

-- CRLs, numbered from 1; `der` is NULL until combined.
CREATE TABLE crls (
    crl_number INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    tbs BLOB NOT NULL,
    der BLOB
);

-- Everything signed jointly, by SHA-256 of the signed bytes: certificates (ref = log index),
-- CRLs (ref = CRL number) and tree heads (ref = tree size).
CREATE TABLE signing_objects (
    hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('certificate', 'crl', 'tree_head')),
    ref INTEGER NOT NULL,
    message BLOB NOT NULL,
    signature BLOB
);
CREATE INDEX signing_objects_unsigned ON signing_objects (hash) WHERE signature IS NULL;

-- Signature shares (this replica's and its peers') on objects not yet signed: JSON of
-- threshold::rsa::SignatureShare. Deleted once the object is signed.
CREATE TABLE signature_shares (
    hash BLOB NOT NULL,
    party INTEGER NOT NULL,
    share TEXT NOT NULL,
    PRIMARY KEY (hash, party)
);
