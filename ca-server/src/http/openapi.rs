//! `GET /v1/openapi.json`: the API described as OpenAPI 3.1, so clients can be generated and
//! requests checked against it.

use axum::Json;
use serde_json::{Value, json};

fn problem_responses() -> Value {
    json!({
        "400": { "$ref": "#/components/responses/Problem" },
        "403": { "$ref": "#/components/responses/Problem" },
        "404": { "$ref": "#/components/responses/Problem" },
        "409": { "$ref": "#/components/responses/Problem" },
        "413": { "$ref": "#/components/responses/Problem" },
        "503": { "$ref": "#/components/responses/Problem" }
    })
}

fn ok(schema: &str) -> Value {
    json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn submit(summary: &str) -> Value {
    let mut responses = problem_responses();
    responses["200"] = json!({ "description": "Settled within `wait`", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestStatus" } } } });
    responses["202"] = json!({ "description": "Accepted for ordering; follow the Location", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RequestStatus" } } } });
    responses["415"] = json!({ "$ref": "#/components/responses/Problem" });
    json!({
        "post": {
            "summary": summary,
            "parameters": [{ "name": "wait", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 60 }, "description": "Seconds to wait for the outcome" }],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Submission" } } } },
            "responses": responses
        }
    })
}

fn get(summary: &str, schema: &str, parameters: Value) -> Value {
    let mut responses = problem_responses();
    responses["200"] = ok(schema);
    json!({ "get": { "summary": summary, "parameters": parameters, "responses": responses } })
}

fn param(name: &str, place: &str, required: bool) -> Value {
    json!({ "name": name, "in": place, "required": required, "schema": { "type": if name == "serial" || name == "id" || name == "hash" { "string" } else { "integer" } } })
}

pub async fn document() -> Json<Value> {
    let string = json!({ "type": "string" });
    let integer = json!({ "type": "integer", "minimum": 0 });
    Json(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "itca replica API",
            "version": "1",
            "description": "One replica of an intrusion-tolerant CA. Trust nothing but the root certificate: certificates, CRLs and tree heads are signed jointly under the root key; ask t+1 replicas."
        },
        "paths": {
            "/v1/ca": get("The CA: root certificate, n, t, replicas, policy hash", "CaInfo", json!([])),
            "/v1/certificates": {
                "post": submit("Request a certificate (a signed issue command, plain or sealed)")["post"].clone(),
                "get": get("List certificates in log order", "CertificateList", json!([param("after", "query", false), param("limit", "query", false)]))["get"].clone()
            },
            "/v1/certificates/{serial}": get("A certificate (JSON, or the PEM chain with Accept: application/pem-certificate-chain)", "CertificateInfo", json!([param("serial", "path", true)])),
            "/v1/revocations": submit("Revoke a certificate (by account or by the certificate's own key)"),
            "/v1/policy": submit("Replace the policy (an administrator's signed command)"),
            "/v1/requests/{id}": get("What became of a request (404 unknown-request: it has not reached this replica)", "RequestStatus", json!([param("id", "path", true)])),
            "/v1/crl": { "get": { "summary": "The current CRL (DER)", "responses": { "200": { "description": "OK", "content": { "application/pkix-crl": {} } }, "404": { "$ref": "#/components/responses/Problem" } } } },
            "/v1/audit/sth": get("The latest signed tree head", "SignedTreeHead", json!([])),
            "/v1/audit/entries": get("Log entries start..=end (at most 1000)", "Entries", json!([param("start", "query", true), param("end", "query", true)])),
            "/v1/audit/proof/inclusion": get("Inclusion proof by index or leaf hash", "InclusionProof", json!([param("index", "query", false), param("hash", "query", false), param("tree_size", "query", true)])),
            "/v1/audit/proof/consistency": get("Consistency proof between two tree sizes", "ConsistencyProof", json!([param("first", "query", true), param("second", "query", true)])),
            "/v1/replica": { "get": { "summary": "This replica's protocol status", "responses": { "200": { "description": "OK", "content": { "application/json": {} } } } } },
            "/healthz": get("Health", "Health", json!([])),
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "OK", "content": { "application/openmetrics-text": {} } } } } }
        },
        "components": {
            "responses": {
                "Problem": { "description": "RFC 9457 problem; `type` is urn:itca:problem:<kind>", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
            },
            "schemas": {
                "Problem": { "type": "object", "required": ["type", "title", "status", "detail"], "properties": { "type": string, "title": string, "status": integer, "detail": string } },
                "Submission": { "type": "object", "required": ["encoding", "request"], "additionalProperties": false, "properties": { "encoding": { "enum": ["plain", "sealed"] }, "request": { "type": "string", "contentEncoding": "base64" } } },
                "RequestStatus": { "type": "object", "required": ["request_id", "state"], "properties": { "request_id": string, "state": { "enum": ["pending", "issued", "revoked", "policy_changed", "refused"] }, "log_index": integer, "round": integer, "serial": string, "refusal": { "type": "object", "properties": { "code": string, "message": string } }, "certificate_chain_pem": string } },
                "CertificateInfo": { "type": "object", "properties": { "serial": string, "log_index": integer, "profile": string, "dns_names": { "type": "array", "items": string }, "not_before": integer, "not_after": integer, "revoked_at": integer, "revocation_reason": string, "certificate_pem": string } },
                "CertificateList": { "type": "object", "properties": { "certificates": { "type": "array", "items": { "$ref": "#/components/schemas/CertificateInfo" } }, "next_after": integer } },
                "CaInfo": { "type": "object", "properties": { "name": string, "n": integer, "t": integer, "root_certificate_pem": string, "root_certificate_sha256": string, "policy_sha256": string, "replica": integer, "replicas": { "type": "array", "items": { "type": "object", "properties": { "id": integer, "url": string } } } } },
                "SignedTreeHead": { "type": "object", "properties": { "tree_size": integer, "timestamp": integer, "root_hash": string, "signature": string } },
                "Entries": { "type": "object", "properties": { "entries": { "type": "array", "items": { "type": "object", "properties": { "index": integer, "leaf": string } } } } },
                "InclusionProof": { "type": "object", "properties": { "leaf_index": integer, "tree_size": integer, "leaf_hash": string, "audit_path": { "type": "array", "items": string } } },
                "ConsistencyProof": { "type": "object", "properties": { "first": integer, "second": integer, "proof": { "type": "array", "items": string } } },
                "Health": { "type": "object", "properties": { "status": string, "reason": string, "replica": integer, "next_round": integer, "log_size": integer, "peers_connected": integer } }
            }
        }
    }))
}
