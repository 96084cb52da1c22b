//! The manifest `smgr upload` writes last: every object it put, with its
//! size and CRC-32C, so that `verify` of the bucket can tell a missing
//! object from one never uploaded, and see objects added or changed since.
//!
//! Relation segments are checked page by page (checksums, frame checksums
//! for `.zst`); the other objects (`PG_VERSION`, `global/pg_control`) have
//! no checksums of their own, so their bytes are checked against the
//! manifest's CRC-32C. A bucket without a manifest (another tool's copy)
//! is verified as before, with a warning that completeness could not be
//! checked.

use std::collections::BTreeMap;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use smgr_api::{Error, PathNaming};
use smgr_object::seekable::COMPRESSED_SUFFIX;

use crate::inventory::Problem;
use crate::location::{key_under, read_required, store_error};

/// The manifest's key under the prefix.
pub const MANIFEST_NAME: &str = "smgr-manifest.json";

/// What an upload put, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout of this file (1).
    pub format: u32,
    /// Every object, by key relative to the prefix.
    pub objects: Vec<ManifestEntry>,
    /// Every directory of the data directory (relative paths), empty ones
    /// too: object stores keep none.
    #[serde(default)]
    pub directories: Vec<String>,
    /// The user tablespaces' links (`pg_tblspc/OID`), to make again.
    #[serde(default)]
    pub tablespaces: Vec<crate::tree::Tablespace>,
}

/// One object of a [`Manifest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Key relative to the prefix (`base/5/16396.1`, `base/5/1259.zst`).
    pub key: String,
    /// Bytes stored.
    pub size: u64,
    /// CRC-32C (Castagnoli) of the bytes stored.
    pub crc32c: u32,
    /// XXH3-64 of the file's own bytes (before compression), which tells
    /// an upload into this prefix whether the file changed. CRC-32C cannot
    /// alone: a file ending in the CRC-32C of what comes before it (as
    /// `pg_control` does, then zeros) has the same CRC-32C whatever it
    /// holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_xxh3: Option<u64>,
}

/// What checking a bucket against its manifest found.
#[derive(Clone, Debug, Default)]
pub struct BucketCheck {
    /// Objects missing, extra, changed or ambiguous: each keeps the copy
    /// from being called good (exit status 2).
    pub problems: Vec<Problem>,
    /// Things the user should know that are not wrong as such.
    pub warnings: Vec<String>,
}

impl Manifest {
    /// Writes it under `prefix`, sorted by key.
    pub async fn put(mut self, store: &dyn ObjectStore, prefix: &str) -> Result<(), Error> {
        self.format = 1;
        self.objects.sort_by(|a, b| a.key.cmp(&b.key));
        let key = key_under(prefix, MANIFEST_NAME);
        let body = serde_json::to_vec_pretty(&self)
            .map_err(|err| Error::io("write", key.clone(), std::io::Error::other(err)))?;
        store
            .put(&smgr_object::object_path(&key)?, PutPayload::from(body))
            .await
            .map_err(|err| store_error("write", &key, err))?;
        Ok(())
    }
}

/// Checks `objects`, every object under `prefix` by relative key with its
/// size (`Listing::objects`), against the manifest there, if any, and
/// for segments stored both plain and compressed.
pub async fn check_bucket(
    store: &dyn ObjectStore,
    prefix: &str,
    naming: &PathNaming,
    mut objects: BTreeMap<String, u64>,
) -> Result<BucketCheck, Error> {
    let mut check = BucketCheck::default();
    for key in objects.keys() {
        if let Some(plain) = key.strip_suffix(COMPRESSED_SUFFIX) {
            if objects.contains_key(plain) {
                check.problems.push(Problem {
                    file: plain.to_owned(),
                    message: format!("stored twice, as {plain} and as {key}: which one holds the segment is ambiguous; remove one"),
                });
            }
        }
    }
    let Some(size) = objects.remove(MANIFEST_NAME) else {
        check.warnings.push(format!(
            "no {MANIFEST_NAME} under the prefix (not an smgr upload, or one that did not finish): missing objects cannot be told from ones never uploaded"
        ));
        return Ok(check);
    };
    let manifest_key = key_under(prefix, MANIFEST_NAME);
    let bytes = read_required(store, &manifest_key).await?;
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(manifest) => manifest,
        Err(err) => {
            check.problems.push(Problem {
                file: MANIFEST_NAME.to_owned(),
                message: format!(
                    "unreadable manifest ({size} bytes): {err}; completeness not checked"
                ),
            });
            return Ok(check);
        }
    };
    for entry in &manifest.objects {
        let Some(size) = objects.remove(&entry.key) else {
            check.problems.push(Problem {
                file: entry.key.clone(),
                message: format!(
                    "missing: the upload's manifest lists it ({} bytes) but the bucket has no such object",
                    entry.size
                ),
            });
            continue;
        };
        if size != entry.size {
            check.problems.push(Problem {
                file: entry.key.clone(),
                message: format!(
                    "size changed: the manifest says {} bytes, the bucket holds {size}",
                    entry.size
                ),
            });
            continue;
        }
        let path = entry
            .key
            .strip_suffix(COMPRESSED_SUFFIX)
            .unwrap_or(&entry.key);
        if naming.parse(path).is_err() {
            // Not a relation segment: no page checksums to catch damage.
            let bytes = read_required(store, &key_under(prefix, &entry.key)).await?;
            let crc = crc32c::crc32c(&bytes);
            if crc != entry.crc32c {
                check.problems.push(Problem {
                    file: entry.key.clone(),
                    message: format!(
                        "changed: CRC-32C {crc:#010x}, the manifest says {:#010x}",
                        entry.crc32c
                    ),
                });
            }
        }
    }
    for (key, size) in objects {
        check.problems.push(Problem {
            file: key,
            message: format!("not in the upload's manifest ({size} bytes): added after the upload, or by something else"),
        });
    }
    Ok(check)
}
