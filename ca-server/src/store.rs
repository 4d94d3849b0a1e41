//! The replica's SQLite database (schema: `migrations/`). Everything a round changes is written in
//! one transaction together with the next round number ([`Store::commit_round`]), so after a
//! crash at any point the replica resumes at the first round it has not applied and applies every
//! round exactly once.
//!
//! The database is opened in WAL mode, so readers (the HTTP layer's queries) never wait for the
//! writer, with `synchronous = NORMAL`: a committed transaction survives the process being killed
//! (it is in the WAL file, written before the commit returns); a power cut may lose the last
//! commits but never corrupts the database. That is enough because the replication runtime keeps
//! every delivered round durably and re-delivers from [`crate::ca::Ca::next_round`]: a lost round
//! is applied again, to the same bytes. Not syncing on every commit matters because combined
//! signatures are written many times per round. Signature shares are not stored at all: after a
//! restart a replica recomputes its own and asks its peers again.

use std::path::Path;
use std::time::Duration;

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use crate::apply::{Applied, Effect, Known, KnownCertificate, Lookups};
use crate::entry::{EntryKind, TreeHead};
use crate::merkle::Hash;
use crate::signing::ObjectKind;

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the value {0} does not fit the database's 64-bit signed integers")]
    IntegerRange(u64),
    #[error("the database holds an inconsistent value: {0}")]
    Corrupt(String),
}

/// What apply needs to resume: read once at start-up.
#[derive(Debug, Clone)]
pub struct LoadedState {
    pub next_round: u64,
    pub next_crl_number: u64,
    /// Every leaf hash, in log order.
    pub leaf_hashes: Vec<Hash>,
    /// The current policy file and its SHA-256; `None` on a fresh database.
    pub policy: Option<(String, [u8; 32])>,
    /// thisUpdate of the newest CRL, seconds.
    pub last_crl_update: Option<u64>,
}

/// A CRL to store (unsigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRow {
    pub crl_number: u64,
    pub this_update: u64,
    pub next_update: u64,
    pub tbs: Vec<u8>,
}

/// Something to sign jointly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningObject {
    /// SHA-256 of `message`.
    pub hash: Hash,
    pub kind: ObjectKind,
    /// Certificate: its log index; CRL: its number; tree head: its size.
    pub reference: u64,
    pub message: Vec<u8>,
}

/// Everything one round writes.
#[derive(Debug, Clone)]
pub struct RoundWrite<'a> {
    pub round: u64,
    pub applied: &'a [Applied],
    pub tree_head: Option<TreeHead>,
    pub crl: Option<CrlRow>,
    pub next_crl_number: u64,
    pub objects: &'a [SigningObject],
}

/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedRow {
    pub serial: Vec<u8>,
    pub revoked_at: u64,
    pub reason_code: u8,
}

/// A stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    pub serial: Vec<u8>,
    pub log_index: u64,
    pub account: [u8; 32],
    pub profile: String,
    pub tbs: Vec<u8>,
    pub not_before: u64,
    pub not_after: u64,
    pub dns_names: Vec<String>,
    /// `None` until the signature shares were combined.
    pub der: Option<Vec<u8>>,
    pub revoked_at: Option<u64>,
    pub revocation_reason: Option<u8>,
}

/// A stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub log_index: u64,
    pub round: u64,
    pub request_digest: [u8; 32],
    pub kind: EntryKind,
    pub serial: Option<Vec<u8>>,
    pub refusal_code: Option<String>,
    pub refusal_message: Option<String>,
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
}

/// A stored tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHeadRow {
    pub head: TreeHead,
    pub round: u64,
    pub signature: Option<Vec<u8>>,
}

/// A combined signature to record.
#[derive(Debug, Clone)]
pub struct FinishedSignature {
    /// The object signed (its message is not read).
    pub object: SigningObject,
    pub signature: Vec<u8>,
    /// The certificate or CRL DER it completes.
    pub assembled: Option<Vec<u8>>,
}

/// A stored CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCrl {
    pub crl_number: u64,
    pub this_update: u64,
    pub next_update: u64,
    pub der: Option<Vec<u8>>,
}

/// The replica's database.
/// Connections in the pool: one writer (apply) and readers for the HTTP queries.
const MAX_CONNECTIONS: u32 = 4;

/// Rows per multi-row statement: at most 10 bound values a row, well below SQLite's limit of
/// 32,766 variables a statement.
const ROWS_PER_STATEMENT: usize = 500;

/// Runs `head VALUES (..), (..) tail` over `rows`, at most [`ROWS_PER_STATEMENT`] rows a
/// statement, `bind` pushing one row's values. Each statement is a round trip to sqlx's worker
/// thread, so a round's rows of one kind go in one, not one each.
async fn execute_in_chunks<'a, T>(
    connection: &mut SqliteConnection,
    head: &str,
    tail: &str,
    rows: &'a [T],
    mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut statement = QueryBuilder::<Sqlite>::new(head);
        statement.push_values(chunk, &mut bind);
        statement.push(tail);
        statement.build().execute(&mut *connection).await?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// u64 to SQLite's i64.
fn int(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::IntegerRange(value))
}

/// SQLite's i64 to u64: a negative value can only come from a corrupted database.
fn uint(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative integer {value}")))
}

fn array<const N: usize>(bytes: Vec<u8>, what: &str) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(bytes).map_err(|b| StoreError::Corrupt(format!("{what} has {} bytes, not {N}", b.len())))
}

fn get_u64(row: &SqliteRow, column: &str) -> Result<u64, StoreError> {
    uint(row.try_get::<i64, _>(column)?)
}

fn get_opt_u64(row: &SqliteRow, column: &str) -> Result<Option<u64>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?.map(uint).transpose()
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies the migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Apply and share storage write concurrently; SQLite serialises writers, and a
            // writer waits for the other rather than failing.
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Runs `body` in one transaction on a connection of its own, then commits it (or, with
    /// `commit` false, a test hook, rolls it back). A connection whose transaction failed is
    /// closed, never returned to the pool: when a write fails (a full disk at COMMIT), SQLite
    /// may end the transaction itself while sqlx still counts it open, so the connection's next
    /// `BEGIN` would become a SAVEPOINT inside a transaction that never ends; its "commit" would
    /// commit nothing and hold the write lock until the replica restarted, losing the round.
    async fn transaction(
        &self,
        commit: bool,
        body: impl AsyncFnOnce(&mut SqliteConnection) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await?;
        let result = async {
            let mut tx = connection.begin().await?;
            body(&mut tx).await?;
            match commit {
                true => tx.commit().await?,
                false => tx.rollback().await?,
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            // Closing rolls back whatever the connection still has open.
            let _ = connection.detach().close().await;
        }
        result
    }

    /// Closes the connections (waiting for them to finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn load(&self) -> Result<LoadedState, StoreError> {
        let progress =
            sqlx::query("SELECT next_round, next_crl_number FROM progress WHERE id = 1").fetch_one(&self.pool).await?;
        let leaf_hashes = sqlx::query("SELECT leaf_hash FROM entries ORDER BY log_index")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| array::<32>(row.try_get("leaf_hash")?, "leaf hash"))
            .collect::<Result<Vec<_>, _>>()?;
        let policy = sqlx::query("SELECT json, sha256 FROM policies ORDER BY version DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|row| -> Result<_, StoreError> {
                Ok((row.try_get("json")?, array::<32>(row.try_get("sha256")?, "policy hash")?))
            })
            .transpose()?;
        let last_crl_update = sqlx::query("SELECT this_update FROM crls ORDER BY crl_number DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|row| get_u64(&row, "this_update"))
            .transpose()?;
        Ok(LoadedState {
            next_round: get_u64(&progress, "next_round")?,
            next_crl_number: get_u64(&progress, "next_crl_number")?,
            leaf_hashes,
            policy,
            last_crl_update,
        })
    }

    /// Records the dealt policy as version 0 (on a fresh database).
    pub async fn insert_initial_policy(&self, json: &str, sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO policies (version, log_index, json, sha256) VALUES (0, NULL, ?, ?)")
            .bind(json)
            .bind(&sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What a round's requests refer to, as the committed log has it.
    pub async fn known(&self, lookups: &Lookups) -> Result<Known, StoreError> {
        let mut known = Known::default();
        for serial in &lookups.serials {
            let row = sqlx::query("SELECT account, public_key, revoked_at FROM certificates WHERE serial = ?")
                .bind(serial.as_slice())
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                let public_key_der: Vec<u8> = row.try_get("public_key")?;
                let public_key = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&public_key_der)
                    .map_err(|e| StoreError::Corrupt(format!("stored public key: {e}")))?;
                let certificate = KnownCertificate {
                    account: array(row.try_get("account")?, "account")?,
                    public_key,
                    revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                };
                known.certificates.insert(serial.clone(), certificate);
            }
        }
        for key in &lookups.replay_keys {
            let seen = sqlx::query("SELECT 1 FROM entries WHERE replay_key = ?")
                .bind(&key[..])
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            if seen {
                known.seen.insert(*key);
            }
        }
        Ok(known)
    }

    /// Every revoked certificate, by serial.
    pub async fn revoked(&self) -> Result<Vec<RevokedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL \
             ORDER BY serial",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let reason = row.try_get::<i64, _>("revocation_reason")?;
                Ok(RevokedRow {
                    serial: row.try_get("serial")?,
                    revoked_at: get_u64(&row, "revoked_at")?,
                    reason_code: u8::try_from(reason)
                        .map_err(|_| StoreError::Corrupt(format!("revocation reason {reason}")))?,
                })
            })
            .collect()
    }

    /// Writes a round in one transaction. With `abort` set the transaction is rolled back
    /// instead of committed, as if the process died just before the commit (a test hook).
    ///
    /// Rows of one kind go in multi-row statements: each statement is a round trip to sqlx's
    /// worker thread, and a round of a few hundred certificates made three per certificate.
    /// Entries go first (certificates refer to them), then the issued certificates, then
    /// revocations and policy changes in log order (a revocation names a certificate issued
    /// earlier in the log, possibly in this round).
    pub async fn commit_round(&self, write: &RoundWrite<'_>, abort: bool) -> Result<(), StoreError> {
        let mut entries = Vec::with_capacity(write.applied.len());
        let mut certificates = Vec::new();
        for applied in write.applied {
            let entry = &applied.entry;
            let serial = match &applied.effect {
                Effect::Issued(issued) => Some(issued.serial.as_slice()),
                Effect::Revoked(revocation) => Some(revocation.serial.as_slice()),
                _ => None,
            };
            let (code, message) = match &applied.refusal {
                Some((code, message)) => (Some(code.as_str()), Some(message.as_str())),
                None => (None, None),
            };
            let log_index = int(entry.log_index)?;
            entries.push((applied, log_index, int(entry.round)?, serial, code, message));
            if let Effect::Issued(issued) = &applied.effect {
                let names =
                    serde_json::to_string(&issued.dns_names).map_err(|e| StoreError::Corrupt(format!("names: {e}")))?;
                let (not_before, not_after) = (int(issued.not_before)?, int(issued.not_after)?);
                certificates.push((issued, log_index, not_before, not_after, names));
            }
        }
        let objects =
            write.objects.iter().map(|o| Ok((o, int(o.reference)?))).collect::<Result<Vec<_>, StoreError>>()?;

        self.transaction(!abort, async |tx| {
            let (insert_entries, no_tail) = (
                "INSERT INTO entries (log_index, round, request_digest, replay_key, kind, serial, refusal_code, \
             refusal_message, leaf, leaf_hash) ",
                "",
            );
            execute_in_chunks(tx, insert_entries, no_tail, &entries, |mut row, entry| {
                let (applied, log_index, round, serial, code, message) = entry;
                row.push_bind(*log_index)
                    .push_bind(*round)
                    .push_bind(&applied.entry.request_digest[..])
                    .push_bind(applied.replay_key.map(|k| k.to_vec()))
                    .push_bind(applied.entry.body.kind().as_str())
                    .push_bind(*serial)
                    .push_bind(*code)
                    .push_bind(*message)
                    .push_bind(applied.leaf.as_slice())
                    .push_bind(&applied.leaf_hash[..]);
            })
            .await?;
            let insert_certificates = "INSERT INTO certificates (serial, log_index, account, profile, tbs, public_key, \
                                   not_before, not_after, dns_names) ";
            execute_in_chunks(tx, insert_certificates, no_tail, &certificates, |mut row, certificate| {
                let (issued, log_index, not_before, not_after, names) = certificate;
                row.push_bind(issued.serial.as_slice())
                    .push_bind(*log_index)
                    .push_bind(&issued.account[..])
                    .push_bind(issued.profile.as_str())
                    .push_bind(issued.tbs.as_slice())
                    .push_bind(issued.public_key.as_slice())
                    .push_bind(*not_before)
                    .push_bind(*not_after)
                    .push_bind(names.as_str());
            })
            .await?;
            for &(applied, log_index, ..) in &entries {
                match &applied.effect {
                    Effect::None | Effect::Issued(_) => {}
                    Effect::Revoked(revocation) => {
                        let updated = sqlx::query(
                            "UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revoked_by = ? \
                         WHERE serial = ? AND revoked_at IS NULL",
                        )
                        .bind(int(revocation.revoked_at)?)
                        .bind(i64::from(revocation.reason.code()))
                        .bind(log_index)
                        .bind(revocation.serial.as_slice())
                        .execute(&mut *tx)
                        .await?;
                        if updated.rows_affected() != 1 {
                            return Err(StoreError::Corrupt(format!(
                                "revoking {}: not a stored, unrevoked certificate",
                                hex::encode(&revocation.serial)
                            )));
                        }
                    }
                    Effect::PolicyChanged(policy) => {
                        sqlx::query(
                            "INSERT INTO policies (version, log_index, json, sha256) \
                         VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM policies), ?, ?, ?)",
                        )
                        .bind(log_index)
                        .bind(policy.json.as_str())
                        .bind(&policy.sha256[..])
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            if let Some(head) = &write.tree_head {
                sqlx::query("INSERT INTO tree_heads (tree_size, round, timestamp_ms, root) VALUES (?, ?, ?, ?)")
                    .bind(int(head.tree_size)?)
                    .bind(int(write.round)?)
                    .bind(int(head.timestamp_ms)?)
                    .bind(&head.root[..])
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(crl) = &write.crl {
                sqlx::query(
                    "INSERT INTO crls (crl_number, round, this_update, next_update, tbs) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(int(crl.crl_number)?)
                .bind(int(write.round)?)
                .bind(int(crl.this_update)?)
                .bind(int(crl.next_update)?)
                .bind(crl.tbs.as_slice())
                .execute(&mut *tx)
                .await?;
            }
            let insert_objects = "INSERT INTO signing_objects (hash, kind, ref, message) ";
            execute_in_chunks(tx, insert_objects, no_tail, &objects, |mut row, (object, reference)| {
                row.push_bind(&object.hash[..])
                    .push_bind(object.kind.as_str())
                    .push_bind(*reference)
                    .push_bind(object.message.as_slice());
            })
            .await?;
            let next_round = write.round.checked_add(1).ok_or(StoreError::IntegerRange(write.round))?;
            sqlx::query("UPDATE progress SET next_round = ?, next_crl_number = ? WHERE id = 1")
                .bind(int(next_round)?)
                .bind(int(write.next_crl_number)?)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
        .await
    }

    /// Objects not signed yet, oldest first.
    pub async fn unsigned_objects(&self) -> Result<Vec<SigningObject>, StoreError> {
        let rows =
            sqlx::query("SELECT hash, kind, ref, message FROM signing_objects WHERE signature IS NULL ORDER BY rowid")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(SigningObject {
                    hash: array(row.try_get("hash")?, "object hash")?,
                    kind: kind.parse().map_err(|_| StoreError::Corrupt(format!("object kind {kind:?}")))?,
                    reference: get_u64(&row, "ref")?,
                    message: row.try_get("message")?,
                })
            })
            .collect()
    }

    /// Records combined signatures and what each completes (the certificate or CRL DER), in one
    /// transaction. Signatures and certificates go in multi-row updates (see `commit_round`).
    pub async fn finish_signatures(&self, finished: &[FinishedSignature]) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let rows =
            finished.iter().map(|f| Ok((f, int(f.object.reference)?))).collect::<Result<Vec<_>, StoreError>>()?;
        self.transaction(true, async |tx| {
            // A VALUES table's columns are named column1, column2, ... in SQLite.
            let (set_signatures, by_hash) = (
                "UPDATE signing_objects SET signature = v.column2 FROM (",
                ") AS v WHERE signing_objects.hash = v.column1",
            );
            execute_in_chunks(tx, set_signatures, by_hash, &rows, |mut row, (f, _)| {
                row.push_bind(&f.object.hash[..]).push_bind(f.signature.as_slice());
            })
            .await?;
            let certificates: Vec<_> =
                rows.iter().filter(|(f, _)| matches!(f.object.kind, ObjectKind::Certificate)).collect();
            let (set_der, by_log_index) =
                ("UPDATE certificates SET der = v.column2 FROM (", ") AS v WHERE certificates.log_index = v.column1");
            execute_in_chunks(tx, set_der, by_log_index, &certificates, |mut row, (f, reference)| {
                row.push_bind(*reference).push_bind(f.assembled.as_deref());
            })
            .await?;
            for (FinishedSignature { object, signature, assembled }, reference) in &rows {
                let (sql, value) = match object.kind {
                    ObjectKind::Certificate => continue,
                    ObjectKind::Crl => ("UPDATE crls SET der = ? WHERE crl_number = ?", assembled.as_deref()),
                    ObjectKind::TreeHead => {
                        ("UPDATE tree_heads SET signature = ? WHERE tree_size = ?", Some(&signature[..]))
                    }
                };
                sqlx::query(sql).bind(value).bind(*reference).execute(&mut *tx).await?;
            }
            Ok(())
        })
        .await
    }

    /// The combined signature on an object, if it is signed.
    pub async fn signature(&self, hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT signature FROM signing_objects WHERE hash = ?")
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|row| row.try_get::<Option<Vec<u8>>, _>("signature").ok().flatten()))
    }

    pub async fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRow>, StoreError> {
        let row = sqlx::query(&format!("{CERTIFICATE_COLUMNS} WHERE serial = ?"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| certificate_row(&row)).transpose()
    }

    /// Certificates in log order, after log index `after` (exclusive), at most `limit`.
    pub async fn certificates(&self, after: Option<u64>, limit: u32) -> Result<Vec<CertificateRow>, StoreError> {
        let after = match after.map(i64::try_from) {
            Some(Ok(after)) => after,
            // `after` comes from a client: no log index is that large, so nothing follows it.
            Some(Err(_)) => return Ok(Vec::new()),
            None => -1,
        };
        let rows = sqlx::query(&format!("{CERTIFICATE_COLUMNS} WHERE log_index > ? ORDER BY log_index LIMIT ?"))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(certificate_row).collect()
    }

    /// The first entry for a request digest (a request the ordering layer delivered twice has
    /// its first outcome), with the signed certificate of an issuance once there is one. One
    /// query: a waiting submission asks this at each step of its request's way.
    pub async fn entry_for_request(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<(EntryRow, Option<Vec<u8>>)>, StoreError> {
        let row = sqlx::query(
            "SELECT e.log_index, e.round, e.request_digest, e.kind, e.serial, e.refusal_code, e.refusal_message, \
             e.leaf, e.leaf_hash, c.der AS der FROM entries e LEFT JOIN certificates c \
             ON e.kind = 'issued' AND c.serial = e.serial WHERE e.request_digest = ? ORDER BY e.log_index LIMIT 1",
        )
        .bind(&digest[..])
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((entry_row(&row)?, row.try_get("der")?))).transpose()
    }

    /// Entries `start..=end` (inclusive, as RFC 6962's get-entries).
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<EntryRow>, StoreError> {
        // The range comes from a client: no log index is beyond i64::MAX, so a range starting
        // there is empty and one ending there ends at the log's end.
        let Ok(start) = i64::try_from(start) else {
            return Ok(Vec::new());
        };
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!("{ENTRY_COLUMNS} WHERE log_index BETWEEN ? AND ? ORDER BY log_index"))
            .bind(start)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_row).collect()
    }

    /// The log index of the first entry with this leaf hash.
    pub async fn index_of_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT log_index FROM entries WHERE leaf_hash = ? ORDER BY log_index LIMIT 1")
            .bind(&leaf_hash[..])
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| get_u64(&row, "log_index")).transpose()
    }

    /// The newest signed tree head.
    pub async fn latest_signed_tree_head(&self) -> Result<Option<TreeHeadRow>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, round, timestamp_ms, root, signature FROM tree_heads \
             WHERE signature IS NOT NULL ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| tree_head_row(&row)).transpose()
    }

    /// Every tree head, signed or not, oldest first.
    pub async fn tree_heads(&self) -> Result<Vec<TreeHeadRow>, StoreError> {
        let rows =
            sqlx::query("SELECT tree_size, round, timestamp_ms, root, signature FROM tree_heads ORDER BY tree_size")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(tree_head_row).collect()
    }

    /// The newest signed CRL.
    pub async fn latest_signed_crl(&self) -> Result<Option<StoredCrl>, StoreError> {
        let row = sqlx::query(
            "SELECT crl_number, this_update, next_update, der FROM crls WHERE der IS NOT NULL \
             ORDER BY crl_number DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| crl_row(&row)).transpose()
    }

    /// Every CRL, oldest first.
    pub async fn crls(&self) -> Result<Vec<StoredCrl>, StoreError> {
        let rows = sqlx::query("SELECT crl_number, this_update, next_update, der FROM crls ORDER BY crl_number")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crl_row).collect()
    }

    /// How many entries, certificates (and of them signed) and unsigned objects there are.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM entries) AS entries, \
                    (SELECT COUNT(*) FROM certificates) AS certificates, \
                    (SELECT COUNT(*) FROM certificates WHERE der IS NOT NULL) AS signed, \
                    (SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL) AS revoked, \
                    (SELECT COUNT(*) FROM signing_objects WHERE signature IS NULL) AS unsigned",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            entries: get_u64(&row, "entries")?,
            certificates: get_u64(&row, "certificates")?,
            signed_certificates: get_u64(&row, "signed")?,
            revoked_certificates: get_u64(&row, "revoked")?,
            unsigned_objects: get_u64(&row, "unsigned")?,
        })
    }
}

/// Row counts for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub certificates: u64,
    pub signed_certificates: u64,
    pub revoked_certificates: u64,
    pub unsigned_objects: u64,
}

const CERTIFICATE_COLUMNS: &str = "SELECT serial, log_index, account, profile, tbs, not_before, not_after, dns_names, \
                                   der, revoked_at, revocation_reason FROM certificates";

fn certificate_row(row: &SqliteRow) -> Result<CertificateRow, StoreError> {
    let names: String = row.try_get("dns_names")?;
    let reason = row.try_get::<Option<i64>, _>("revocation_reason")?;
    Ok(CertificateRow {
        serial: row.try_get("serial")?,
        log_index: get_u64(row, "log_index")?,
        account: array(row.try_get("account")?, "account")?,
        profile: row.try_get("profile")?,
        tbs: row.try_get("tbs")?,
        not_before: get_u64(row, "not_before")?,
        not_after: get_u64(row, "not_after")?,
        dns_names: serde_json::from_str(&names).map_err(|e| StoreError::Corrupt(format!("names: {e}")))?,
        der: row.try_get("der")?,
        revoked_at: get_opt_u64(row, "revoked_at")?,
        revocation_reason: reason
            .map(|r| u8::try_from(r).map_err(|_| StoreError::Corrupt(format!("revocation reason {r}"))))
            .transpose()?,
    })
}

const ENTRY_COLUMNS: &str = "SELECT log_index, round, request_digest, kind, serial, refusal_code, refusal_message, \
                             leaf, leaf_hash FROM entries";

fn entry_row(row: &SqliteRow) -> Result<EntryRow, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(EntryRow {
        log_index: get_u64(row, "log_index")?,
        round: get_u64(row, "round")?,
        request_digest: array(row.try_get("request_digest")?, "request digest")?,
        kind: kind.parse().map_err(|_| StoreError::Corrupt(format!("entry kind {kind:?}")))?,
        serial: row.try_get("serial")?,
        refusal_code: row.try_get("refusal_code")?,
        refusal_message: row.try_get("refusal_message")?,
        leaf: row.try_get("leaf")?,
        leaf_hash: array(row.try_get("leaf_hash")?, "leaf hash")?,
    })
}

fn tree_head_row(row: &SqliteRow) -> Result<TreeHeadRow, StoreError> {
    Ok(TreeHeadRow {
        head: TreeHead {
            tree_size: get_u64(row, "tree_size")?,
            timestamp_ms: get_u64(row, "timestamp_ms")?,
            root: array(row.try_get("root")?, "root")?,
        },
        round: get_u64(row, "round")?,
        signature: row.try_get("signature")?,
    })
}

fn crl_row(row: &SqliteRow) -> Result<StoredCrl, StoreError> {
    Ok(StoredCrl {
        crl_number: get_u64(row, "crl_number")?,
        this_update: get_u64(row, "this_update")?,
        next_update: get_u64(row, "next_update")?,
        der: row.try_get("der")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_and_ranges_beyond_sqlite_integers_are_empty_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("ca.sqlite")).await.expect("open");
        for after in [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert!(store.certificates(Some(after), 10).await.expect("a page after a huge index").is_empty());
        }
        for (start, end) in [(u64::MAX - 1, u64::MAX), (i64::MAX as u64 + 1, u64::MAX), (0, u64::MAX)] {
            assert!(store.entries(start, end).await.expect("a range at the top of u64").is_empty());
        }
        store.close().await;
    }
}
