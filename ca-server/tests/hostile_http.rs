//! Hostile clients against a real cluster: a bounded, seeded, randomised campaign of malformed and
//! oversized requests against every endpoint of the router (`ca-server/src/http/mod.rs`), sent
//! as raw bytes over TLS so nothing is normalised on the way (paths, methods, headers, framing).
//!
//! Every answer must be a client error (4xx), a problem document wherever the request reached
//! the API, and never a 5xx, a reset or silence. Afterwards every replica is healthy, the
//! certificates issued before the campaign are served byte-identical, nothing the campaign sent
//! was issued, and a good request still succeeds.
//!
//! `HOSTILE_SEED=N` replays a campaign (the seed is printed); `HOSTILE_REQUESTS=N` sets its
//! length (default 400).

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Cluster, chain_from, cluster, curl, issue, issue_request, json, make_csr, wait_healthy};

/// The router's routes and the methods each one serves.
const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/ca", &["GET"]),
    ("/v1/certificates", &["GET", "POST"]),
    ("/v1/certificates/{serial}", &["GET"]),
    ("/v1/revocations", &["POST"]),
    ("/v1/policy", &["POST"]),
    ("/v1/requests/{id}", &["GET"]),
    ("/v1/crl", &["GET"]),
    ("/v1/audit/sth", &["GET"]),
    ("/v1/audit/entries", &["GET"]),
    ("/v1/audit/proof/inclusion", &["GET"]),
    ("/v1/audit/proof/consistency", &["GET"]),
    ("/v1/replica", &["GET"]),
    ("/v1/openapi.json", &["GET"]),
    ("/healthz", &["GET"]),
    ("/metrics", &["GET"]),
];

const SUBMIT_PATHS: [&str; 3] = ["/v1/certificates", "/v1/revocations", "/v1/policy"];
const LIMIT: usize = ca_server::http::MAX_BODY_BYTES;

/// What a hostile request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A 4xx problem document: the request reached the API.
    Problem,
    /// A 4xx of any form: the request is broken HTTP, refused before the API sees it.
    ClientError,
    /// Well-formed but extreme (numbers at the top of their range): an answer or a problem
    /// document, never a server error.
    NoServerError,
    /// Valid HTTP at or past the server's limits (header count and size): an answer or a
    /// refusal by the HTTP layer, never a server error or silence.
    WithinLimits,
}

struct Case {
    what: String,
    bytes: Vec<u8>,
    expect: Expect,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn tls_config(cluster: &Cluster) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(cluster.root()).expect("root.pem");
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("root PEM")).expect("root certificate");
    }
    // No ALPN: HTTP/1.1, where every byte of the request is ours to choose.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// An HTTP/1.1 request with Host, Connection: close and (for a body) Content-Length.
fn http(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let chunked = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    let has_length = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    if !body.is_empty() && !chunked && !has_length {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    http("POST", path, &[("content-type", "application/json")], body)
}

/// `body` in HTTP/1.1 chunks of `size` bytes.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Decodes a chunked body; `None` while incomplete, `Err` if malformed.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[..end]).map_err(|_| "chunk size is not text")?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The answer in `data`, once complete (`eof`: the server has closed).
fn parse_answer(data: &[u8], eof: bool) -> Result<Option<Answer>, String> {
    let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if eof { Err(format!("closed before a full header ({} bytes)", data.len())) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| "header is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &data[head_end + 4..];
    let body = if headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest)? {
            Some(body) => body,
            None if eof => return Err("closed inside a chunked body".into()),
            None => return Ok(None),
        }
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.parse().map_err(|_| format!("bad content-length {length:?}"))?;
        if rest.len() < length {
            return if eof { Err("closed inside the body".into()) } else { Ok(None) };
        }
        rest[..length].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Answer { status, headers, body }))
}

/// Sends `request` on a fresh TLS connection to `port` and reads the answer, writing and reading
/// at once (a server may answer an oversized body before it has all of it, then close).
fn exchange(config: &Arc<rustls::ClientConfig>, port: u16, request: &[u8]) -> Result<Answer, String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut sent, mut received, mut eof) = (0, Vec::new(), false);
    let mut write_failed = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut progress = false;
        if sent < request.len()
            && !write_failed
            && let Ok(n) = conn.writer().write(&request[sent..])
        {
            sent += n;
            progress |= n > 0;
        }
        while conn.wants_write() && !write_failed {
            match conn.write_tls(&mut sock) {
                Ok(0) => break,
                Ok(_) => progress = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The server stopped reading (it has answered): keep reading the answer.
                Err(_) => write_failed = true,
            }
        }
        match conn.read_tls(&mut sock) {
            Ok(0) => eof = true,
            Ok(_) => {
                progress = true;
                conn.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                return match parse_answer(&received, true) {
                    Ok(Some(answer)) => Ok(answer),
                    Ok(None) => Err(format!("{e} after {sent} bytes sent, {} received", received.len())),
                    Err(why) => Err(format!("{e} after {sent} bytes sent, {} received: {why}", received.len())),
                };
            }
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Closed without close_notify: what arrived is all there is.
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if let Some(answer) = parse_answer(&received, eof)? {
            return Ok(answer);
        }
        if Instant::now() > deadline {
            return Err(format!("no answer within 30 s ({sent} of {} bytes sent)", request.len()));
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Random printable junk, some of it JSON-ish.
fn junk(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"{}[]\":,.0123456789abcdefxyz-+eE \\/\n\ttruefalsenull";
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect()
}

fn random_bytes(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.r#gen()).collect()
}

/// Everything the campaign draws from: valid requests it may wrap in invalid envelopes.
struct Material {
    /// Makes a valid, never-submitted issuance request (fresh nonce each time).
    fresh_issue: Box<dyn Fn() -> Vec<u8>>,
    serial: String,
}

/// Malformed values for a `u64` query parameter.
const BAD_NUMBERS: &[&str] = &[
    "-1",
    "abc",
    "1.5",
    "",
    "18446744073709551616",
    "99999999999999999999999999",
    "0x10",
    "%FF",
    "1%00",
    "+-1",
    "NaN",
    "%20",
];

/// Values that are numbers, but huge: the API must still answer with a 4xx (or an empty page),
/// never a 5xx.
const HUGE_NUMBERS: &[&str] = &["18446744073709551615", "9223372036854775808", "9223372036854775807"];

const BAD_SERIALS: &[&str] = &[
    "0",
    "abc",
    "zz",
    "00",
    "0000",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%FF%FE",
    "%00",
    "%C3%A9",
    "-1",
    "0x01",
    "01%2002",
    "%0d%0aSet-Cookie:%20x",
];

fn bad_serial(rng: &mut ChaCha20Rng) -> String {
    match rng.gen_range(0..3) {
        0 => BAD_SERIALS[rng.gen_range(0..BAD_SERIALS.len())].to_string(),
        // Longer than a serial can be (20 octets).
        1 => "ab".repeat(rng.gen_range(21..400)),
        // Odd length.
        _ => "a".repeat(2 * rng.gen_range(0..30) + 1),
    }
}

fn bad_id(rng: &mut ChaCha20Rng) -> String {
    match rng.gen_range(0..4) {
        0 => "ab".repeat(rng.gen_range(0..32)),
        1 => "ab".repeat(33),
        2 => format!("{}zz", "ab".repeat(31)),
        _ => BAD_SERIALS[rng.gen_range(0..BAD_SERIALS.len())].to_string(),
    }
}

/// One case of the campaign.
fn case(rng: &mut ChaCha20Rng, m: &Material) -> Case {
    let submit = SUBMIT_PATHS[rng.gen_range(0..SUBMIT_PATHS.len())];
    let b64 = |b: &[u8]| BASE64.encode(b);
    let problem = |what: String, bytes: Vec<u8>| Case { what, bytes, expect: Expect::Problem };
    match rng.gen_range(0..22) {
        0 => {
            let len = rng.gen_range(0..300);
            let body = junk(rng, len);
            problem(format!("POST {submit}: junk JSON"), post_json(submit, &body))
        }
        1 => {
            let bodies = [
                r#"{"encoding": 5, "request": "AA=="}"#.to_string(),
                r#"{"encoding": "plain", "request": 123}"#.to_string(),
                r#"{"encoding": "plain", "request": ["AA"]}"#.to_string(),
                r#"{"encoding": "compressed", "request": "AA=="}"#.to_string(),
                r#"{"encoding": "plain"}"#.to_string(),
                r#"{"request": "AA=="}"#.to_string(),
                r#"{"encoding": "plain", "request": "AA==", "extra": 1}"#.to_string(),
                "null".to_string(),
                "[]".to_string(),
                "\"plain\"".to_string(),
                format!(r#"{{"encoding": "plain", "request": null, "request": "{}"}}"#, b64(b"x")),
                format!("{{\"encoding\": \"plain\", \"request\": \"{}\"}}", "\u{0}"),
            ];
            let body = &bodies[rng.gen_range(0..bodies.len())];
            problem(format!("POST {submit}: wrong types {body}"), post_json(submit, body.as_bytes()))
        }
        2 => {
            // A real request, its JSON cut short.
            let good = serde_json::json!({"encoding": "plain", "request": b64(&(m.fresh_issue)())}).to_string();
            let cut = rng.gen_range(0..good.len());
            problem(format!("POST {submit}: body truncated at {cut}"), post_json(submit, &good.as_bytes()[..cut]))
        }
        3 => {
            // A real request, its base64 truncated or spoiled.
            let mut text = b64(&(m.fresh_issue)());
            match rng.gen_range(0..3) {
                0 => text.truncate(rng.gen_range(1..text.len()) | 1),
                1 => text.insert(rng.gen_range(0..text.len()), '!'),
                _ => text.push_str("=="),
            }
            let body = serde_json::json!({"encoding": "plain", "request": text}).to_string();
            problem(format!("POST {submit}: spoiled base64"), post_json(submit, body.as_bytes()))
        }
        4 => {
            let len = rng.gen_range(0..2000);
            let inner = random_bytes(rng, len);
            let encoding = if rng.gen_bool(0.5) { "plain" } else { "sealed" };
            let body = serde_json::json!({"encoding": encoding, "request": b64(&inner)}).to_string();
            problem(format!("POST {submit}: {encoding} request of random bytes"), post_json(submit, body.as_bytes()))
        }
        5 => {
            // A real request with one byte flipped: no longer what the account signed.
            let mut request = (m.fresh_issue)();
            let at = rng.gen_range(0..request.len());
            // Bits 0-4 only: flipping bit 5 would turn a hex digit's case, which spells the same bytes.
            request[at] ^= 1 << rng.gen_range(0..5);
            let body = serde_json::json!({"encoding": "plain", "request": b64(&request)}).to_string();
            problem(
                format!("POST /v1/certificates: request byte {at} flipped"),
                post_json("/v1/certificates", body.as_bytes()),
            )
        }
        6 => {
            // A valid issuance at an endpoint that takes something else.
            let path = ["/v1/revocations", "/v1/policy"][rng.gen_range(0..2)];
            let body = serde_json::json!({"encoding": "plain", "request": b64(&(m.fresh_issue)())}).to_string();
            problem(format!("POST {path}: valid issuance at the wrong endpoint"), post_json(path, body.as_bytes()))
        }
        7 => {
            // Over the body limit: declared length, or chunked without one.
            let size = LIMIT + rng.gen_range(1..LIMIT);
            let body = vec![b' '; size];
            if rng.gen_bool(0.5) {
                problem(format!("POST {submit}: {size}-byte body"), post_json(submit, &body))
            } else {
                let mut bytes = http(
                    "POST",
                    submit,
                    &[("content-type", "application/json"), ("transfer-encoding", "chunked")],
                    &[],
                );
                bytes.extend_from_slice(&chunked(&body, 16 * 1024));
                problem(format!("POST {submit}: {size}-byte chunked body"), bytes)
            }
        }
        8 => {
            // A valid request under a content type that is not JSON.
            let types = [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
                "",
                "application/jsonx",
            ];
            let content_type = types[rng.gen_range(0..types.len())];
            let body = serde_json::json!({"encoding": "plain", "request": b64(&(m.fresh_issue)())}).to_string();
            let mut headers = vec![];
            if !content_type.is_empty() {
                headers.push(("content-type", content_type));
            }
            problem(
                format!("POST /v1/certificates: valid request as {content_type:?}"),
                http("POST", "/v1/certificates", &headers, body.as_bytes()),
            )
        }
        9 => {
            // A valid request with a malformed wait parameter.
            let bad = BAD_NUMBERS[rng.gen_range(0..BAD_NUMBERS.len())];
            let body = serde_json::json!({"encoding": "plain", "request": b64(&(m.fresh_issue)())}).to_string();
            let target = format!("/v1/certificates?wait={bad}");
            problem(format!("POST {target}: valid request"), post_json(&target, body.as_bytes()))
        }
        10 if rng.gen_bool(0.4) => {
            let huge = HUGE_NUMBERS[rng.gen_range(0..HUGE_NUMBERS.len())];
            let target = if rng.gen_bool(0.5) {
                format!("/v1/certificates?after={huge}&limit={huge}")
            } else {
                format!("/v1/audit/entries?start={huge}&end={huge}")
            };
            Case { what: format!("GET {target}"), bytes: http("GET", &target, &[], &[]), expect: Expect::NoServerError }
        }
        10 => {
            let bad = BAD_NUMBERS[rng.gen_range(0..BAD_NUMBERS.len())];
            let target = if rng.gen_bool(0.5) {
                format!("/v1/certificates?after={bad}")
            } else {
                format!("/v1/certificates?limit={bad}")
            };
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        11 => {
            let serial = bad_serial(rng);
            let target = format!("/v1/certificates/{serial}");
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        12 => {
            let id = bad_id(rng);
            let target = format!("/v1/requests/{id}");
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        13 => {
            let bad = BAD_NUMBERS[rng.gen_range(0..BAD_NUMBERS.len())];
            let queries = [
                format!("start={bad}&end=1"),
                format!("start=0&end={bad}"),
                "start=5&end=1".to_string(),
                "start=0&end=1000".to_string(),
                "start=0".to_string(),
                "end=3".to_string(),
                String::new(),
                format!("start=0&end={}", u64::MAX),
            ];
            let target = format!("/v1/audit/entries?{}", queries[rng.gen_range(0..queries.len())]);
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        14 => {
            let bad = BAD_NUMBERS[rng.gen_range(0..BAD_NUMBERS.len())];
            let hash = "ab".repeat(32);
            let queries = [
                format!("index={bad}&tree_size=1"),
                format!("index=0&tree_size={bad}"),
                "index=0".to_string(),
                format!("index=0&hash={hash}&tree_size=1"),
                "tree_size=1".to_string(),
                "index=5&tree_size=2".to_string(),
                format!("index=0&tree_size={}", u64::MAX),
                "hash=zz&tree_size=1".to_string(),
                format!("hash={hash}&tree_size=1000000"),
                format!("hash={}&tree_size=1", "ab".repeat(33)),
                format!("hash={hash}&tree_size=1"),
            ];
            let target = format!("/v1/audit/proof/inclusion?{}", queries[rng.gen_range(0..queries.len())]);
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        15 => {
            let bad = BAD_NUMBERS[rng.gen_range(0..BAD_NUMBERS.len())];
            let queries = [
                format!("first={bad}&second=1"),
                format!("first=1&second={bad}"),
                "first=3&second=1".to_string(),
                format!("first=1&second={}", u64::MAX),
                "first=1".to_string(),
                String::new(),
            ];
            let target = format!("/v1/audit/proof/consistency?{}", queries[rng.gen_range(0..queries.len())]);
            problem(format!("GET {target}"), http("GET", &target, &[], &[]))
        }
        16 => {
            // A method the route does not serve.
            let (route, methods) = ROUTES[rng.gen_range(0..ROUTES.len())];
            let path = route.replace("{serial}", &m.serial).replace("{id}", &"ab".repeat(32));
            let others: Vec<&str> = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"]
                .into_iter()
                .filter(|method| !methods.contains(method))
                .collect();
            let method = others[rng.gen_range(0..others.len())];
            problem(format!("{method} {path}"), http(method, &path, &[("content-type", "application/json")], b"{}"))
        }
        17 => {
            // Paths the router does not have, some of them trying to climb out of it.
            let paths = [
                "/v1/../etc/passwd".to_string(),
                "/v1/%2e%2e/%2e%2e/etc/passwd".to_string(),
                "/../../../../etc/passwd".to_string(),
                "/v1/certificates/ab/..".to_string(),
                "/v1/certificates/ab/cd".to_string(),
                "/V1/CA".to_string(),
                "/v1/ca/".to_string(),
                "/v2/ca".to_string(),
                "/v1/audit".to_string(),
                "/v1/requests/".to_string(),
                "/%00".to_string(),
                "/v1/ca%00.json".to_string(),
                format!("/{}", "a/".repeat(rng.gen_range(100..2000))),
                "/v1/openapi.json/..;/healthz".to_string(),
            ];
            let path = &paths[rng.gen_range(0..paths.len())];
            problem(format!("GET {path}"), http("GET", path, &[], &[]))
        }
        18 => {
            // Broken HTTP: never reaches the API.
            let junk_len = rng.gen_range(1..4000);
            let junk = random_bytes(rng, junk_len);
            // A request line, then binary junk where the headers should be.
            let mut junk_headers = format!("GET /{} HTTP/1.1\r\n", "x".repeat(rng.gen_range(1..64))).into_bytes();
            junk_headers.extend(random_bytes(rng, 64));
            junk_headers.extend_from_slice(b"\r\n\r\n");
            let forms: [Vec<u8>; 8] = [
                junk,
                b"GET\r\n\r\n".to_vec(),
                b"GET / HTTP/9.9\r\nhost: localhost\r\n\r\n".to_vec(),
                b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nno colon here\r\n\r\n".to_vec(),
                b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nbad name\x01: x\r\n\r\n".to_vec(),
                b"POST /v1/certificates HTTP/1.1\r\nhost: localhost\r\ncontent-length: abc\r\n\r\n{}".to_vec(),
                b"POST /v1/certificates HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}x"
                    .to_vec(),
                junk_headers,
            ];
            let pick = rng.gen_range(0..forms.len());
            Case { what: format!("broken HTTP form {pick}"), bytes: forms[pick].clone(), expect: Expect::ClientError }
        }
        19 => {
            // Too many or too large headers.
            let mut headers = String::new();
            let what = if rng.gen_bool(0.5) {
                let count = rng.gen_range(120..400);
                for i in 0..count {
                    headers.push_str(&format!("x-h{i}: v\r\n"));
                }
                format!("GET /v1/ca with {count} headers")
            } else {
                let size = rng.gen_range(500_000..700_000);
                headers.push_str(&format!("x-big: {}\r\n", "v".repeat(size)));
                format!("GET /v1/ca with a {size}-byte header")
            };
            let bytes = format!("GET /v1/ca HTTP/1.1\r\nhost: localhost\r\n{headers}\r\n").into_bytes();
            Case { what, bytes, expect: Expect::WithinLimits }
        }
        20 => {
            // A chunked body whose framing is wrong.
            let mut bytes =
                http("POST", submit, &[("content-type", "application/json"), ("transfer-encoding", "chunked")], &[]);
            let framings: [&[u8]; 4] = [
                b"zz\r\n{}\r\n0\r\n\r\n",
                b"5\r\n{}\r\n0\r\n\r\n",
                b"ffffffffffffffffff\r\n{}\r\n",
                b"2\r\n{}XX0\r\n\r\n",
            ];
            let pick = rng.gen_range(0..framings.len());
            bytes.extend_from_slice(framings[pick]);
            Case { what: format!("POST {submit}: bad chunked framing {pick}"), bytes, expect: Expect::ClientError }
        }
        _ => {
            // A body shorter than its declared length is cut; the declared part is malformed.
            let body = serde_json::json!({"encoding": "plain", "request": b64(&(m.fresh_issue)())}).to_string();
            let declared = rng.gen_range(1..body.len()).to_string();
            let bytes = http(
                "POST",
                submit,
                &[("content-type", "application/json"), ("content-length", &declared)],
                body.as_bytes(),
            );
            problem(format!("POST {submit}: content-length {declared} of {}", body.len()), bytes)
        }
    }
}

/// Checks an answer against what the case expects; `None` if it passes.
fn judge(case: &Case, answer: &Result<Answer, String>) -> Option<String> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return Some(format!("{}: no answer: {e}", case.what)),
    };
    let body = String::from_utf8_lossy(&answer.body);
    let allowed = match case.expect {
        Expect::NoServerError | Expect::WithinLimits => answer.status < 500,
        Expect::Problem | Expect::ClientError => (400..500).contains(&answer.status),
    };
    if !allowed {
        return Some(format!("{}: status {} ({body})", case.what, answer.status));
    }
    let is_error = (400..500).contains(&answer.status);
    if case.expect == Expect::Problem || (case.expect == Expect::NoServerError && is_error) {
        let content_type = answer.headers.get("content-type").map(String::as_str).unwrap_or("");
        if content_type != "application/problem+json" {
            return Some(format!(
                "{}: {} as {content_type:?}, not a problem document ({body})",
                case.what, answer.status
            ));
        }
        let problem: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(e) => return Some(format!("{}: problem is not JSON ({e}): {body}", case.what)),
        };
        let typed = problem["type"].as_str().is_some_and(|t| t.starts_with("urn:itca:problem:"));
        if !typed || problem["status"] != answer.status {
            return Some(format!("{}: malformed problem {problem}", case.what));
        }
    }
    None
}

#[test]
fn hostile_requests_to_every_endpoint_get_client_errors_and_lose_nothing() {
    let started = Instant::now();
    let cluster = cluster();
    let dir = cluster.work_dir("hostile");

    // Good certificates first, as every replica serves them.
    let mut good = Vec::new();
    for (i, key_type) in ["p256", "ed25519"].into_iter().enumerate() {
        let sub = dir.join(format!("good-{key_type}"));
        std::fs::create_dir_all(&sub).expect("dir");
        let answer = issue(cluster, &sub, key_type, &format!("good-{key_type}.localhost"), i);
        let serial = answer["serial"].as_str().expect("serial").to_string();
        let mut copies: Vec<String> = (0..4).map(|id| chain_from(cluster, id, &serial)).collect();
        assert!(copies.iter().all(|c| c == &copies[0]), "replicas disagree on {serial}");
        good.push((serial, copies.swap_remove(0)));
    }

    let csr = make_csr(&dir, "p256", "never.localhost");
    let operator_request = {
        let csr = csr.clone();
        move || {
            let c = support::cluster();
            issue_request(c, &csr)
        }
    };
    let material = Material { fresh_issue: Box::new(operator_request), serial: good[0].0.clone() };

    let seed = std::env::var("HOSTILE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    let count: usize = std::env::var("HOSTILE_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    println!("hostile campaign: HOSTILE_SEED={seed} HOSTILE_REQUESTS={count}");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let config = tls_config(cluster);
    let mut failures = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let campaign = Instant::now();
    for i in 0..count {
        let case = case(&mut rng, &material);
        let replica = i % 4;
        let answer = exchange(&config, cluster.ports[replica], &case.bytes);
        if let Ok(answer) = &answer {
            *statuses.entry(answer.status).or_default() += 1;
        }
        if let Some(failure) = judge(&case, &answer) {
            failures.push(format!("#{i} (replica {replica}) {failure}"));
        }
    }
    println!("{count} hostile requests in {:.1} s; statuses {statuses:?}", campaign.elapsed().as_secs_f64());
    for failure in &failures {
        println!("FAILED {failure}");
    }

    // Every replica healthy, the good certificates byte-identical everywhere, nothing the
    // campaign sent issued, and a new good request still served.
    for id in 0..4 {
        wait_healthy(cluster, id);
        let (status, body) = curl(cluster, &[&cluster.url(id, "/healthz")]);
        assert_eq!((status, json(&body)["status"].as_str()), (200, Some("ok")), "replica {id}");
        for (serial, chain) in &good {
            assert_eq!(&chain_from(cluster, id, serial), chain, "replica {id} changed certificate {serial}");
        }
    }
    let sub = dir.join("after");
    std::fs::create_dir_all(&sub).expect("dir");
    let after = issue(cluster, &sub, "p256", "after.localhost", 3);
    let after_serial = after["serial"].as_str().expect("serial").to_string();
    for id in 0..4 {
        chain_from(cluster, id, &after_serial);
        let (status, body) = curl(cluster, &[&cluster.url(id, "/v1/certificates?limit=1000")]);
        assert_eq!(status, 200);
        let mut serials: Vec<String> = json(&body)["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .map(|c| c["serial"].as_str().expect("serial").to_string())
            .collect();
        serials.sort();
        let mut expected: Vec<String> = good.iter().map(|(s, _)| s.clone()).chain([after_serial.clone()]).collect();
        expected.sort();
        assert_eq!(serials, expected, "replica {id} holds certificates the campaign should not have caused");
    }
    assert!(
        failures.is_empty(),
        "{} of {count} hostile requests were mishandled (HOSTILE_SEED={seed})",
        failures.len()
    );
    println!("hostile HTTP test took {:.1} s", started.elapsed().as_secs_f64());
}
