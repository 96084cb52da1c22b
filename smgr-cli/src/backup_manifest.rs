//! PostgreSQL's backup manifest: the `backup_manifest` file that
//! `pg_basebackup` writes and `pg_verifybackup` checks a backup against.
//!
//! One JSON object, laid out one file per line: a version, (from version
//! 2, PostgreSQL 17) the cluster's system identifier, every file with its
//! size, modification time and checksum, the WAL ranges the backup needs,
//! and last, on a line of its own, the SHA-256 of every byte before that
//! line. File checksums here are CRC-32C, written as PostgreSQL writes
//! them: the four bytes of the CRC in little-endian order, in hex.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The file name PostgreSQL gives it.
pub const BACKUP_MANIFEST: &str = "backup_manifest";

/// A backup manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupManifest {
    /// 1, or 2 (PostgreSQL 17 and later) with `system_identifier`.
    pub version: u32,
    /// The cluster's `system_identifier` (version 2).
    pub system_identifier: Option<u64>,
    /// Every file of the backup, by path relative to the data directory
    /// (tablespaces under `pg_tblspc/OID/`).
    pub files: Vec<BackupFile>,
    /// The WAL the backup needs.
    pub wal_ranges: Vec<WalRange>,
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFile {
    /// Path relative to the data directory.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Last modification, seconds since the Unix epoch.
    pub modified: u64,
    /// CRC-32C of its bytes.
    pub crc32c: u32,
}

/// A range of WAL on one timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalRange {
    /// Timeline.
    pub timeline: u32,
    /// First LSN.
    pub start_lsn: u64,
    /// Last LSN.
    pub end_lsn: u64,
}

impl BackupManifest {
    /// The manifest's bytes, exactly as `pg_verifybackup` reads them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        out.push_str(&format!(
            "{{ \"PostgreSQL-Backup-Manifest-Version\": {},\n",
            self.version
        ));
        if let Some(id) = self.system_identifier {
            out.push_str(&format!("\"System-Identifier\": {id},\n"));
        }
        out.push_str("\"Files\": [");
        for (i, file) in self.files.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!(
                "{{ \"Path\": {}, \"Size\": {}, \"Last-Modified\": \"{}\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\" }}",
                serde_json::Value::from(file.path.as_str()),
                file.size,
                gmt(file.modified),
                hex(&file.crc32c.to_le_bytes()),
            ));
        }
        out.push_str("\n],\n\"WAL-Ranges\": [");
        for (i, range) in self.wal_ranges.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!(
                "{{ \"Timeline\": {}, \"Start-LSN\": \"{}\", \"End-LSN\": \"{}\" }}",
                range.timeline,
                lsn(range.start_lsn),
                lsn(range.end_lsn)
            ));
        }
        out.push_str("\n],\n");
        let digest = Sha256::digest(out.as_bytes());
        out.push_str(&format!("\"Manifest-Checksum\": \"{}\"}}\n", hex(&digest)));
        out.into_bytes()
    }

    /// Parses a manifest and checks its own checksum; the error says what
    /// is wrong.
    pub fn parse(bytes: &[u8]) -> Result<BackupManifest, String> {
        // The checksum covers everything up to the last line.
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or("the last line is not newline-terminated")?;
        let last_line = body
            .iter()
            .rposition(|b| *b == b'\n')
            .ok_or("expected at least 2 lines")?;
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let expected = raw.manifest_checksum.to_ascii_lowercase();
        let actual = hex(&Sha256::digest(&bytes[..=last_line]));
        if expected != actual {
            return Err(format!(
                "manifest checksum mismatch (stored {expected}, computed {actual})"
            ));
        }
        let files = raw
            .files
            .into_iter()
            .map(|f| {
                let crc = match (f.algorithm.as_deref(), f.checksum.as_deref()) {
                    (Some("CRC32C"), Some(hex)) => parse_crc(hex)
                        .ok_or_else(|| format!("{}: checksum {hex:?} is not a CRC-32C", f.path))?,
                    (algorithm, _) => {
                        return Err(format!(
                            "{}: checksum algorithm {algorithm:?}; only CRC32C is read here",
                            f.path
                        ))
                    }
                };
                Ok(BackupFile {
                    path: f.path,
                    size: f.size,
                    modified: 0,
                    crc32c: crc,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let wal_ranges = raw
            .wal_ranges
            .into_iter()
            .map(|r| {
                Ok(WalRange {
                    timeline: r.timeline,
                    start_lsn: parse_lsn(&r.start_lsn).ok_or("bad start LSN")?,
                    end_lsn: parse_lsn(&r.end_lsn).ok_or("bad end LSN")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(BackupManifest {
            version: raw.version,
            system_identifier: raw.system_identifier,
            files,
            wal_ranges,
        })
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "System-Identifier")]
    system_identifier: Option<u64>,
    #[serde(rename = "Files")]
    files: Vec<RawFile>,
    #[serde(rename = "WAL-Ranges", default)]
    wal_ranges: Vec<RawRange>,
    #[serde(rename = "Manifest-Checksum")]
    manifest_checksum: String,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Checksum-Algorithm")]
    algorithm: Option<String>,
    #[serde(rename = "Checksum")]
    checksum: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "Timeline")]
    timeline: u32,
    #[serde(rename = "Start-LSN")]
    start_lsn: String,
    #[serde(rename = "End-LSN")]
    end_lsn: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_crc(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(u32::from_le_bytes(bytes))
}

/// An LSN as PostgreSQL prints it (`0/2000028`).
fn lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some(
        u64::from(u32::from_str_radix(hi, 16).ok()?) << 32
            | u64::from(u32::from_str_radix(lo, 16).ok()?),
    )
}

/// Seconds since the epoch of a file's modification time (0 if unknown).
pub fn modified_secs(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// `2026-12-02 03:34:25 GMT`, as the manifest writes times.
fn gmt(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Days to a civil date (proleptic Gregorian; Howard Hinnant's method).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} GMT",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupManifest {
        BackupManifest {
            version: 2,
            system_identifier: Some(7_714_502_209_110_740_623),
            files: vec![
                BackupFile {
                    path: "PG_VERSION".into(),
                    size: 3,
                    modified: 1_796_172_514,
                    crc32c: crc32c::crc32c(b"18\n"),
                },
                BackupFile {
                    path: "base/5/a \"quoted\" name".into(),
                    size: 0,
                    modified: 0,
                    crc32c: crc32c::crc32c(b""),
                },
            ],
            wal_ranges: vec![WalRange {
                timeline: 1,
                start_lsn: 0x0200_0028,
                end_lsn: 0x0200_0120,
            }],
        }
    }

    #[test]
    fn written_as_postgresql_writes_it() {
        let text = String::from_utf8(sample().to_bytes()).unwrap_or_default();
        // pg_basebackup's bytes for PG_VERSION "18\n" (CRC-32C 0xe27b4e99,
        // little-endian in hex) and its time and LSN formats.
        assert!(text.contains(
            "{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2026-12-02 00:48:34 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"994e7be2\" }"
        ), "{text}");
        assert!(text.contains("\"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000120\""));
        assert!(text.ends_with("\"}\n"));
    }

    #[test]
    fn parses_back_and_catches_any_change() {
        let bytes = sample().to_bytes();
        let parsed = BackupManifest::parse(&bytes).unwrap_or_default();
        assert_eq!(parsed.files.len(), 2);
        assert_eq!(parsed.files[0].crc32c, sample().files[0].crc32c);
        assert_eq!(parsed.files[1].path, "base/5/a \"quoted\" name");
        assert_eq!(parsed.wal_ranges, sample().wal_ranges);
        assert_eq!(parsed.system_identifier, sample().system_identifier);
        let mut changed = bytes.clone();
        let at = changed.iter().position(|b| *b == b'3').unwrap_or(0);
        changed[at] = b'4';
        let err = BackupManifest::parse(&changed).unwrap_err();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}
