//! The S3 secret key never appears in what `smgr` prints: not in error
//! messages, not in logs at the most verbose level, whether the server is
//! unreachable or refuses the key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{run, smgr};

const SECRET: &str = "s3cr3t-Value-that-must-never-leak-7f2a";

fn assert_no_secret(args: &[&str], endpoint: &str) -> common::Run {
    let run = run(smgr()
        .args(args)
        .args(["--endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLELEAKTEST")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("RUST_LOG", "trace"));
    assert_eq!(run.code, 2, "{run:?}");
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(SECRET), "the secret is in {name}: {run:?}");
        assert!(
            !text.contains(&SECRET[..12]),
            "part of the secret is in {name}"
        );
    }
    run
}

#[test]
fn an_unreachable_server_error_and_trace_logs_do_not_show_the_secret() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let run = assert_no_secret(&["verify", "s3://bucket/cluster"], "http://127.0.0.1:9");
    assert!(run.stderr.contains("smgr: "), "{run:?}");
}

#[test]
fn a_refused_key_error_and_trace_logs_do_not_show_the_secret() {
    let Some(store) = integration::s3_server() else {
        return;
    };
    let endpoint = store.endpoint.unwrap();
    let url = integration::s3_url("secret");
    let run = assert_no_secret(&["verify", &url], &endpoint);
    // Trace logs may follow it (runtime shutdown); the error is one line.
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("smgr: "))
        .collect();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("403"), "{run:?}");
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("<Error>")),
        "the server's answer broke the line: {run:?}"
    );
}
