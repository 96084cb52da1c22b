//! Store settings come as `object_store` reads them: what the environment
//! sets is honoured, not replaced by defaults of ours (once the command
//! forced path-style requests and plain HTTP whatever AWS_* said);
//! credentials inside a URL are refused without being repeated; plain
//! http:// to a host that is not this machine gets a warning.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{run, smgr, with_s3};

#[test]
fn the_environment_is_honoured_not_overridden() {
    if integration::s3_server().is_none() {
        return;
    }
    let url = integration::s3_url("environment");
    // The bucket has nothing under this prefix: reaching the server is
    // "nothing of a cluster in it", not reaching it is a request error.
    let verify = |extra: &[(&str, &str)]| {
        let mut command = smgr();
        command.args(["verify", &url, "--store-option", "connect_timeout=2s"]);
        assert!(with_s3(&mut command));
        for (name, value) in extra {
            command.env(name, value);
        }
        run(&mut command)
    };
    let reached = verify(&[]);
    assert_eq!(reached.code, 2, "{reached:?}");
    assert!(
        reached.stderr.contains("nothing in it under base/"),
        "{reached:?}"
    );
    // Plain HTTP refused, as the environment asks, though --endpoint is
    // an http:// URL.
    let refused = verify(&[("AWS_ALLOW_HTTP", "false")]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        !refused.stderr.contains("nothing in it under base/"),
        "{refused:?}"
    );
}

#[test]
fn credentials_in_a_url_are_refused_and_not_repeated() {
    let run = run(smgr().args(["verify", "s3://AKIDEXAMPLE:s3cr3t-in-url@bucket/prefix"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("credentials in a URL are refused"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("s3cr3t-in-url") && !run.stdout.contains("s3cr3t-in-url"));
}

#[test]
fn plain_http_off_this_machine_is_warned_about() {
    let run = run(smgr().args([
        "verify",
        "s3://bucket/prefix",
        "--endpoint",
        "http://storage.example.invalid:8333",
        "--store-option",
        "aws_access_key_id=AKIDEXAMPLE",
        "--store-option",
        "aws_secret_access_key=secret",
    ]));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("plain http:// to a host that is not this machine"),
        "{run:?}"
    );
    let local = run_local();
    assert!(!local.stderr.contains("plain http://"), "{local:?}");
}

/// The same against loopback (nothing listens on port 9): no warning.
fn run_local() -> common::Run {
    run(smgr().args([
        "verify",
        "s3://bucket/prefix",
        "--endpoint",
        "http://127.0.0.1:9",
        "--store-option",
        "aws_access_key_id=AKIDEXAMPLE",
        "--store-option",
        "aws_secret_access_key=secret",
    ]))
}
