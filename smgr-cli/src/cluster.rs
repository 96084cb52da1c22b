//! What a location says about its cluster before anything is checked:
//! `global/pg_control` and `PG_VERSION`, read the same way from a data
//! directory and from a bucket, and what follows from them: the refusals
//! `pg_checksums` makes (a running server, checksums off, other block or
//! segment sizes, a damaged control file) and the tablespace version
//! directory (`PG_15_202209061`), which `pg_checksums` also finds itself.

use object_store::ObjectStoreExt;
use smgr_api::{Error, PathNaming};

use crate::control::ControlFile;
use crate::location::{key_under, Location, LocationOptions};

/// The control file's path in a data directory.
pub const CONTROL_FILE: &str = "global/pg_control";
/// The file naming the server's major version, at the top of a data
/// directory.
pub const VERSION_FILE: &str = "PG_VERSION";

/// What a cluster's own files say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFiles {
    /// `global/pg_control`, if the location has one.
    pub control: Option<ControlFile>,
    /// The major version from `PG_VERSION` (`15`), if it has one.
    pub major_version: Option<String>,
}

impl ClusterFiles {
    /// Reads them at `location`. A control file that is there but cannot
    /// be read or is not one is an error naming it.
    pub async fn read(location: &Location, options: &LocationOptions) -> Result<Self, Error> {
        let source = FileSource::new(location, options)?;
        let control = match source.read(CONTROL_FILE).await? {
            Some(bytes) => Some(ControlFile::parse(&bytes).map_err(|why| {
                Error::io(
                    "read the control file",
                    location.file(CONTROL_FILE),
                    std::io::Error::other(why),
                )
            })?),
            None => None,
        };
        let major_version = source.read(VERSION_FILE).await?.and_then(|bytes| {
            let text = String::from_utf8(bytes).ok()?;
            let major = text.trim();
            (!major.is_empty()).then(|| major.to_owned())
        });
        Ok(ClusterFiles {
            control,
            major_version,
        })
    }

    /// The tablespace version directory these files imply
    /// (`PG_<major>_<catalog version>`, PostgreSQL's
    /// `TABLESPACE_VERSION_DIRECTORY`), if both are known.
    pub fn tablespace_version_dir(&self) -> Option<String> {
        let control = self.control.as_ref()?;
        let major = self.major_version.as_ref()?;
        Some(format!("PG_{major}_{}", control.catalog_version))
    }

    /// `options` settled for `op` ("verify the cluster at") on `location`:
    /// with the cluster's block and segment sizes unless sizes were given
    /// (`LocationOptions::sizes_given`), refused as `pg_checksums` would
    /// (`why_not`, which sees the settled options), and with the
    /// tablespace version directory of the cluster unless one was given.
    pub fn settle(
        &self,
        location: &Location,
        options: &LocationOptions,
        op: &'static str,
        why_not: impl FnOnce(&ControlFile, &LocationOptions) -> Option<String>,
    ) -> Result<LocationOptions, Error> {
        let mut settled = options.clone();
        if let Some(control) = &self.control {
            // Sizes nobody gave are the cluster's; given ones must match.
            if !options.sizes_given {
                if let Ok(block_size) = smgr_api::BlockSize::new(control.block_size) {
                    settled.block_size = block_size;
                }
                if control.segment_blocks > 0 {
                    settled.segment_blocks = control.segment_blocks;
                }
            }
            if let Some(why) = why_not(control, &settled) {
                return Err(Error::io(
                    op,
                    location.to_string(),
                    std::io::Error::other(why),
                ));
            }
        }
        if !options.naming_given {
            if let Some(dir) = self.tablespace_version_dir() {
                // A version this naming cannot express (9.6's dot) keeps
                // the default; its tablespaces then need the option.
                if let Ok(naming) = PathNaming::new(dir) {
                    settled.naming = naming;
                }
            }
        }
        Ok(settled)
    }

    /// Refuses a bucket without a control file unless the sizes were
    /// given (`LocationOptions::sizes_given`): nothing else says how its
    /// cluster was built or that it was shut down. A directory without
    /// one is checked as before (relation files that are not a whole
    /// cluster), as `pg_checksums` cannot be pointed at a bucket anyway.
    pub fn require_control(
        &self,
        location: &Location,
        options: &LocationOptions,
        op: &'static str,
    ) -> Result<(), Error> {
        if self.control.is_some() || options.sizes_given || !matches!(location, Location::Object(_))
        {
            return Ok(());
        }
        Err(Error::io(
            op,
            location.to_string(),
            std::io::Error::other(format!(
                "no {CONTROL_FILE} under it, so nothing says how the cluster was built (block and segment sizes, checksums on or off) or that it was shut down; upload it with smgr upload, or give --block-size and --segment-blocks"
            )),
        ))
    }
}

/// Where a location's own small files are read from: the store is built
/// once for all of them.
enum FileSource {
    Local(std::path::PathBuf),
    Object {
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        prefix: String,
    },
}

impl FileSource {
    fn new(location: &Location, options: &LocationOptions) -> Result<Self, Error> {
        Ok(match location {
            Location::Local(dir) => FileSource::Local(dir.clone()),
            Location::Object(url) => {
                let (store, prefix, _) = smgr_object::store_from_url(url, &options.store)?;
                FileSource::Object { store, prefix }
            }
        })
    }

    /// The bytes of a small file (`global/pg_control`), `None` if there
    /// is none.
    async fn read(&self, relative: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            FileSource::Local(dir) => {
                let path = dir.join(relative);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(Error::io("read", path.display().to_string(), err)),
                }
            }
            FileSource::Object { store, prefix } => {
                let key = key_under(prefix, relative);
                let fail = |err: object_store::Error| {
                    Error::io("read", key.clone(), std::io::Error::other(err))
                };
                match store.get(&smgr_object::object_path(&key)?).await {
                    Ok(result) => Ok(Some(result.bytes().await.map_err(fail)?.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(err) => Err(fail(err)),
                }
            }
        }
    }
}

impl Location {
    /// A file of the location as messages name it.
    pub fn file(&self, relative: &str) -> String {
        match self {
            Location::Local(dir) => dir.join(relative).display().to_string(),
            Location::Object(url) => format!("{}/{relative}", url.trim_end_matches('/')),
        }
    }
}
