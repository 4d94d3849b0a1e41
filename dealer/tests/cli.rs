//! The `dealer` binary as an operator runs it: one full-size 2048-bit ceremony, its summary, its
//! verification, and one-line errors for bad input.

use std::path::Path;
use std::process::{Command, Output};

fn dealer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealer")).args(args).output().expect("run dealer")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure");
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

#[test]
fn full_size_local_ceremony_prints_a_summary_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let out_str = out.to_str().unwrap();
    #[rustfmt::skip]
    let result = dealer(&[
        "ceremony", "--n", "4", "--t", "1", "--name", "Example Root CA", "--local", "--out", out_str,
        "--allow", "=WWW.example.com", "--allow", "*.example.org",
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    let summary = String::from_utf8_lossy(&result.stdout);
    assert!(summary.contains("n = 4, t = 1, 2048-bit root key"), "{summary}");
    assert!(summary.contains("public/root.pem"), "{summary}");
    assert!(summary.contains("public/policy.json"), "{summary}");
    assert!(summary.contains(&format!("{out_str}/operator/account-key.pem")), "{summary}");
    assert!(
        summary.contains("allows: localhost and every name below it; www.example.com; *.example.org."),
        "{summary}"
    );
    assert!(summary.contains("replica-3"), "{summary}");
    let policy = std::fs::read_to_string(out.join("public/policy.json")).unwrap();
    for rule in [r#""subdomain": "localhost""#, r#""exact": "www.example.com""#, r#""wildcard": "example.org""#] {
        assert!(policy.contains(rule), "{rule} not in {policy}");
    }
    let verify = dealer(&["verify", out_str]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let verified = String::from_utf8_lossy(&verify.stdout);
    assert!(verified.contains("a test signature from 2 shares verifies"), "{verified}");
    assert!(verified.contains("the operator key is administrator account \"operator\""), "{verified}");

    // The same folder again: refused, untouched.
    let again = dealer(&["ceremony", "--n", "4", "--t", "1", "--name", "X", "--local", "--out", out_str]);
    assert_one_line_error(&again, "already exists");
    assert!(Path::new(out_str).join("replica-0/replica.toml").exists());
}

#[test]
fn bad_arguments_get_one_line_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let out_str = out.to_str().unwrap();
    assert_one_line_error(
        &dealer(&["ceremony", "--n", "4", "--t", "2", "--name", "X", "--local", "--out", out_str]),
        "n > 3t",
    );
    assert_one_line_error(
        &dealer(&["ceremony", "--n", "4", "--t", "1", "--name", "X", "--hosts", "a:1:2", "--out", out_str]),
        "--hosts names 1 replicas but --n is 4",
    );
    assert_one_line_error(
        &dealer(&["ceremony", "--n", "1", "--t", "0", "--name", "X", "--hosts", "a:99999:2", "--out", out_str]),
        "is not a port number",
    );
    assert_one_line_error(
        &dealer(&["ceremony", "--n", "4", "--t", "1", "--name", "X", "--local", "--bits", "1000", "--out", out_str]),
        "2048, 3072 or 4096",
    );
    assert_one_line_error(
        &dealer(&["ceremony", "--n", "4", "--t", "1", "--name", "X", "--local", "--allow", "a..b", "--out", out_str]),
        "--allow: name rule \"a..b\": the name has an empty label",
    );
    assert!(!out.exists());
    assert_one_line_error(&dealer(&["verify", out_str]), "cluster.json");
}

#[test]
fn hosts_ceremony_without_allow_says_in_one_line_that_no_names_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let out_str = out.to_str().unwrap();
    #[rustfmt::skip]
    let result = dealer(&[
        "ceremony", "--n", "1", "--t", "0", "--name", "Example Root CA", "--hosts", "ca.example.net:8443:7000",
        "--out", out_str,
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    let summary = String::from_utf8_lossy(&result.stdout);
    let lines: Vec<&str> = summary.lines().filter(|l| l.contains("allows no names")).collect();
    assert_eq!(lines.len(), 1, "{summary}");
    assert!(lines[0].contains("issuance is refused"), "{summary}");
    let policy = std::fs::read_to_string(out.join("public/policy.json")).unwrap();
    assert!(policy.contains(r#""names": []"#), "{policy}");
    assert!(dealer(&["verify", out_str]).status.success());
}
