//! A seekable object written by `smgr_object::seekable::compress` is a
//! valid zstd stream: the real `zstd -d` (Debian's `zstd` package) gives
//! back the segment byte for byte, seek table and all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use smgr_object::seekable::compress;

#[test]
fn zstd_decompresses_a_seekable_segment_whole() {
    if std::process::Command::new("zstd")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("SMGR_REQUIRE_ZSTD").map_or(true, |v| v != "1"),
            "the zstd command is required (SMGR_REQUIRE_ZSTD=1) but not installed"
        );
        eprintln!("SKIPPED: the zstd command is not installed (apt-get install zstd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 2 MiB of varied page-like bytes, frames of 16 blocks of 8 KiB, and a
    // last frame of 3 blocks.
    let data: Vec<u8> = (0..(16 * 16 + 3) * 8192)
        .map(|i: usize| ((i / 64) as u8).wrapping_mul(31) ^ (i % 97) as u8)
        .collect();
    for level in [1, 3, 9] {
        let object = compress(&data, 16 * 8192, level).unwrap();
        assert!(object.len() < data.len(), "level {level} did not compress");
        let path = dir.path().join(format!("seg-{level}.zst"));
        std::fs::write(&path, &object).unwrap();
        let out = std::process::Command::new("zstd")
            .args(["-d", "-c", "-q"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zstd -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == data,
            "zstd -d gave {} bytes, not the segment",
            out.stdout.len()
        );
    }
}
