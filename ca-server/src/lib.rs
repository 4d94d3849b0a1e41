//! The replica daemon (not yet built): hosts the replication runtime, applies the ordered log to
//! its SQLite state, signs jointly with its threshold-RSA share and serves the HTTPS REST API.
