//! The REST API (JSON over HTTPS; the bodies are `ca_api::api`): submit and follow requests,
//! fetch certificates and the CRL, audit the log, and the replica's status, health and metrics.
//! Every failure is a problem document ([`problem`]); bodies are size-limited.

mod handlers;
mod openapi;
pub mod problem;
pub mod process;

use crate::ca::Ca;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use replication::runtime::Runtime;
use std::sync::Arc;
use threshold::cluster::ClusterFile;

/// Largest request body accepted (a CSR with many names, sealed, base64 in JSON fits easily).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub ca: Ca,
    pub runtime: Arc<Runtime>,
    pub cluster: Arc<ClusterFile>,
    pub registry: Arc<Registry>,
    /// Set while applying the ordered log fails (e.g. storage): `/healthz` answers 503.
    pub degraded: Arc<Degraded>,
}

/// Why this replica is not applying the ordered log now, if it is not.
#[derive(Debug, Default)]
pub struct Degraded(std::sync::Mutex<Option<String>>);

impl Degraded {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Replaced whole on every change: a poisoned lock still holds a consistent value.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set(&self, reason: String) {
        *self.slot() = Some(reason);
    }

    pub fn clear(&self) {
        *self.slot() = None;
    }

    pub fn reason(&self) -> Option<String> {
        self.slot().clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/ca", get(handlers::ca_info))
        .route("/v1/certificates", post(handlers::submit_certificate).get(handlers::list_certificates))
        .route("/v1/certificates/{serial}", get(handlers::get_certificate))
        .route("/v1/revocations", post(handlers::submit_revocation))
        .route("/v1/policy", post(handlers::submit_policy))
        .route("/v1/requests/{id}", get(handlers::request_status))
        .route("/v1/crl", get(handlers::crl))
        .route("/v1/audit/sth", get(handlers::sth))
        .route("/v1/audit/entries", get(handlers::entries))
        .route("/v1/audit/proof/inclusion", get(handlers::inclusion_proof))
        .route("/v1/audit/proof/consistency", get(handlers::consistency_proof))
        .route("/v1/replica", get(handlers::replica_status))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        // After every route: it applies to the routes registered before it.
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
