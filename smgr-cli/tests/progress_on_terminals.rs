//! `smgr verify` draws an `indicatif` progress bar when stderr is a
//! terminal (here a pseudo-terminal from `script`) and writes nothing to
//! stderr otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

mod common;

use common::{smgr_run, write_fork};

#[test]
fn a_bar_on_a_terminal_and_silence_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    write_fork(dir.path(), "base/5/100", 64, 16);
    let data = dir.path().to_str().unwrap();

    let piped = smgr_run(&["verify", data, "--segment-blocks", "16"]);
    assert_eq!(piped.code, 0, "{piped:?}");
    assert_eq!(piped.stderr, "", "{piped:?}");

    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        // Debian's bsdutils (essential) has it: CI must not skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "`script` (util-linux) is not installed"
        );
        eprintln!("SKIPPED: `script` (util-linux) is not installed: no pseudo-terminal");
        return;
    }
    let typescript = dir.path().join("typescript");
    let command = format!(
        "'{}' verify '{data}' --segment-blocks 16",
        env!("CARGO_BIN_EXE_smgr")
    );
    let status = std::process::Command::new("script")
        .arg("-qec")
        .arg(&command)
        .arg(&typescript)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    // The bar's "{pos}/{len} blocks" (the report has no such words).
    assert!(draws_a_count(&seen), "no progress bar drawn: {seen:?}");
    assert!(!draws_a_count(
        "Blocks scanned:  64\n64 reads of 1.0 blocks on average"
    ));
    assert!(seen.contains("Blocks scanned:  64"), "{seen:?}");
}

/// Whether `text` holds "N/M blocks", as the progress bar draws it.
fn draws_a_count(text: &str) -> bool {
    text.match_indices(" blocks").any(|(at, _)| {
        let before = &text[..at];
        let len = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        len > 0 && {
            let rest = &before[..before.len() - len];
            rest.ends_with('/') && rest[..rest.len() - 1].ends_with(|c: char| c.is_ascii_digit())
        }
    })
}
