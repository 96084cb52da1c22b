//! What a data directory's `global/pg_control` says, read as
//! `pg_checksums` reads it before checking anything: the block and segment
//! sizes the cluster was built with, whether data checksums are on, and
//! whether its server is shut down.
//!
//! The fields are found by their place after `floatFormat`, the constant
//! 1234567.0 that PostgreSQL stores to detect the float format: the fields
//! read here follow it in the same order in every release since data
//! checksums exist; what lies between them and the CRC changed twice (a
//! nonce in PostgreSQL 11, a bool before it in 18), so the CRC-32C over
//! everything before it must match at one of those three places. A
//! reading that is off by a field is never believed.

/// `floatFormat`'s value, `FLOATFORMAT_VALUE` in `pg_control.h`.
const FLOAT_FORMAT: f64 = 1234567.0;
/// Bytes from `floatFormat` to `crc`: eight `uint32`s, `float8ByVal`
/// (padded to 4), `data_checksum_version`, the 32-byte nonce (PostgreSQL
/// 11 to 17).
const FLOAT_FORMAT_TO_CRC: usize = 8 + 8 * 4 + 4 + 4 + 32;
/// Where else the CRC may be: before PostgreSQL 11 there was no nonce;
/// PostgreSQL 18 put `default_char_signedness` (a bool) before it. The
/// fields read here sit before both changes; the CRC says which layout a
/// file has.
const OTHER_CRC_PLACES: [usize; 2] = [FLOAT_FORMAT_TO_CRC - 32, FLOAT_FORMAT_TO_CRC + 4];

/// The server state recorded in `pg_control` (`DBState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbState(pub u32);

impl DbState {
    /// Cleanly shut down, as a primary or in recovery: nothing is writing.
    pub fn is_shut_down(self) -> bool {
        matches!(self.0, 1 | 2)
    }

    /// The state in `pg_controldata`'s words.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "starting up",
            1 => "shut down",
            2 => "shut down in recovery",
            3 => "shutting down",
            4 => "in crash recovery",
            5 => "in archive recovery",
            6 => "in production",
            _ => "unknown",
        }
    }
}

/// The fields of `pg_control` that decide how to verify a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlFile {
    /// `pg_control_version` (1300 for PostgreSQL 15).
    pub version: u32,
    /// `catalog_version_no` (202209061 for PostgreSQL 15): with the major
    /// version it names tablespace directories (`PG_15_202209061`).
    pub catalog_version: u32,
    /// The server's state when it last wrote the file.
    pub state: DbState,
    /// `BLCKSZ`.
    pub block_size: u32,
    /// `RELSEG_SIZE`, in blocks.
    pub segment_blocks: u32,
    /// 0 when data checksums are off.
    pub data_checksum_version: u32,
    /// The cluster's `system_identifier`.
    pub system_identifier: u64,
    /// Where the last checkpoint record is (`checkPoint`).
    pub checkpoint: u64,
    /// Where replay would start from it (`checkPointCopy.redo`).
    pub redo: u64,
    /// Its timeline (`checkPointCopy.ThisTimeLineID`).
    pub timeline: u32,
}

impl ControlFile {
    /// Parses the bytes of a `pg_control` file.
    pub fn parse(bytes: &[u8]) -> Result<ControlFile, String> {
        let u32_at = |at: usize| -> Option<u32> {
            let field = bytes.get(at..at + 4)?;
            Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
        };
        let anchor = FLOAT_FORMAT.to_le_bytes();
        let at = (0..bytes.len().saturating_sub(FLOAT_FORMAT_TO_CRC + 4))
            .step_by(8)
            .find(|&at| bytes[at..at + 8] == anchor)
            .ok_or("not a PostgreSQL control file (no float format check value)")?;
        let crc_matches = |to_crc: usize| {
            let crc_at = at + to_crc;
            u32_at(crc_at).is_some_and(|stored| stored == crc32c::crc32c(&bytes[..crc_at]))
        };
        if !crc_matches(FLOAT_FORMAT_TO_CRC) && !OTHER_CRC_PLACES.into_iter().any(crc_matches) {
            let crc_at = at + FLOAT_FORMAT_TO_CRC;
            let stored = u32_at(crc_at).ok_or("control file cut short")?;
            let computed = crc32c::crc32c(&bytes[..crc_at]);
            return Err(format!(
                "control file CRC is incorrect (stored {stored:#010x}, calculated {computed:#010x}; pg_control_version {})",
                u32_at(8).unwrap_or(0)
            ));
        }
        let field = |at: usize| u32_at(at).ok_or("control file cut short");
        // The head of ControlFileData, laid out alike since PostgreSQL 9:
        // system_identifier, versions, state, time, checkPoint, then the
        // checkpoint's redo pointer and timeline.
        let u64_at = |at: usize| -> Result<u64, &str> {
            Ok(u64::from(field(at)?) | u64::from(field(at + 4)?) << 32)
        };
        Ok(ControlFile {
            system_identifier: u64_at(0)?,
            checkpoint: u64_at(32)?,
            redo: u64_at(40)?,
            timeline: field(48)?,
            version: field(8)?,
            catalog_version: field(12)?,
            state: DbState(field(16)?),
            block_size: field(at + 8)?,
            segment_blocks: field(at + 12)?,
            data_checksum_version: field(at + 44)?,
        })
    }

    /// Writes the fields this module reads into a control file of 8 KiB
    /// with a CRC that matches, laid out as PostgreSQL 15's: for tests
    /// and tools that build data directories.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; 8192];
        let at = 208; // where PostgreSQL 15 has floatFormat
        bytes[0..8].copy_from_slice(&self.system_identifier.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.checkpoint.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.redo.to_le_bytes());
        bytes[48..52].copy_from_slice(&self.timeline.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.version.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.catalog_version.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.state.0.to_le_bytes());
        bytes[at..at + 8].copy_from_slice(&FLOAT_FORMAT.to_le_bytes());
        bytes[at + 8..at + 12].copy_from_slice(&self.block_size.to_le_bytes());
        bytes[at + 12..at + 16].copy_from_slice(&self.segment_blocks.to_le_bytes());
        bytes[at + 44..at + 48].copy_from_slice(&self.data_checksum_version.to_le_bytes());
        let crc_at = at + FLOAT_FORMAT_TO_CRC;
        let crc = crc32c::crc32c(&bytes[..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Why a copy of this cluster's files could hold torn pages: its
    /// server was not shut down when the file was last written.
    pub fn not_shut_down(&self) -> Option<String> {
        (!self.state.is_shut_down()).then(|| {
            format!(
                "the cluster must be shut down (pg_control says: {}); stop its server, or use a copy of a stopped one",
                self.state.name()
            )
        })
    }

    /// Why this cluster cannot be verified with these settings, as
    /// `pg_checksums` refuses it: a running server, checksums off when
    /// they are to be checked, other block or segment sizes.
    pub fn refusal(&self, checksums: bool, block_size: u32, segment_blocks: u32) -> Option<String> {
        if let Some(why) = self.not_shut_down() {
            return Some(why);
        }
        if checksums && self.data_checksum_version == 0 {
            return Some(
                "data checksums are not enabled in the cluster (pg_control); --no-checksums checks page headers only"
                    .to_owned(),
            );
        }
        if self.block_size != block_size {
            return Some(format!(
                "the cluster's block size is {} (pg_control) but --block-size is {block_size}",
                self.block_size
            ));
        }
        if self.segment_blocks != segment_blocks {
            return Some(format!(
                "the cluster's segments hold {} blocks (pg_control) but --segment-blocks is {segment_blocks}",
                self.segment_blocks
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg15() -> ControlFile {
        ControlFile {
            version: 1300,
            catalog_version: 202209061,
            state: DbState(1),
            block_size: 8192,
            segment_blocks: 131072,
            system_identifier: 7_000_000_000_000_000_001,
            checkpoint: 0x0200_0060,
            redo: 0x0200_0028,
            timeline: 1,
            data_checksum_version: 1,
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let control = pg15();
        assert_eq!(ControlFile::parse(&control.to_bytes()), Ok(control));
        assert_eq!(control.refusal(true, 8192, 131072), None);
    }

    #[test]
    fn the_layouts_before_and_after_are_read_too() {
        // PostgreSQL 18 (a bool before the nonce: the CRC 4 bytes later)
        // and 10 (no nonce): the same fields, found by their CRC.
        for (version, to_crc) in [
            (1800u32, FLOAT_FORMAT_TO_CRC + 4),
            (1002, FLOAT_FORMAT_TO_CRC - 32),
        ] {
            let control = ControlFile { version, ..pg15() };
            let mut bytes = control.to_bytes();
            bytes[208 + FLOAT_FORMAT_TO_CRC..208 + FLOAT_FORMAT_TO_CRC + 4].fill(0);
            let crc = crc32c::crc32c(&bytes[..208 + to_crc]);
            bytes[208 + to_crc..208 + to_crc + 4].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(ControlFile::parse(&bytes), Ok(control), "version {version}");
        }
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused() {
        let mut bytes = pg15().to_bytes();
        bytes[20] ^= 1;
        let err = ControlFile::parse(&bytes).unwrap_err();
        assert!(err.contains("CRC is incorrect"), "{err}");
        let err = ControlFile::parse(&[1u8; 8192]).unwrap_err();
        assert!(err.contains("not a PostgreSQL control file"), "{err}");
        let err = ControlFile::parse(&pg15().to_bytes()[..250]).unwrap_err();
        assert!(err.contains("not a PostgreSQL control file"), "{err}");
        assert!(ControlFile::parse(&[]).is_err());
    }

    #[test]
    fn refusals_say_why() {
        let running = ControlFile {
            state: DbState(6),
            ..pg15()
        };
        let why = running.refusal(true, 8192, 131072).unwrap();
        assert!(
            why.contains("must be shut down") && why.contains("in production"),
            "{why}"
        );
        let off = ControlFile {
            data_checksum_version: 0,
            ..pg15()
        };
        assert!(off
            .refusal(true, 8192, 131072)
            .unwrap()
            .contains("not enabled"));
        assert_eq!(off.refusal(false, 8192, 131072), None);
        assert!(pg15()
            .refusal(true, 16384, 131072)
            .unwrap()
            .contains("block size is 8192"));
        assert!(pg15()
            .refusal(true, 8192, 4)
            .unwrap()
            .contains("131072 blocks"));
    }
}
