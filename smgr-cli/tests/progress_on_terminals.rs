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
    assert!(seen.contains(" blocks "), "no progress bar drawn: {seen:?}");
    assert!(seen.contains("Blocks scanned:  64"), "{seen:?}");
}
