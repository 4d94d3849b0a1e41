//! Errors as RFC 9457 problem details (`application/problem+json`), each with a stable `type`
//! a client can match on, a short title and a detail that says what to change.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The prefix of every problem type; the suffix is the stable kind.
pub const TYPE_PREFIX: &str = "urn:itca:problem:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable, e.g. `name-not-allowed`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, kind, title, detail: detail.into() }
    }

    pub fn bad_request(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, title, detail)
    }

    pub fn not_found(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, "Not found", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Replica unavailable", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.kind)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body =
            Body { kind: self.type_uri(), title: self.title, status: self.status.as_u16(), detail: &self.detail };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, json).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_is_problem_json_with_a_stable_type() {
        let response = Problem::bad_request("malformed-body", "Malformed body", "expected JSON").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["type"], "urn:itca:problem:malformed-body");
        assert_eq!(value["status"], 400);
        assert_eq!(value["detail"], "expected JSON");
    }
}
