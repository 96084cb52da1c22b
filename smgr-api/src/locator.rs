//! Relation identifiers.

use std::fmt;

use crate::{Error, ForkNumber, PathNaming};

/// A PostgreSQL object identifier.
pub type Oid = u32;

/// The tablespace of shared catalogs, stored under `global/`
/// (`GLOBALTABLESPACE_OID`).
pub const GLOBAL_TABLESPACE_OID: Oid = 1664;

/// The default tablespace, stored under `base/` (`DEFAULTTABLESPACE_OID`).
pub const DEFAULT_TABLESPACE_OID: Oid = 1663;

/// The physical identity of a relation's storage (PostgreSQL's
/// `RelFileLocator`): tablespace, database and relation file number.
///
/// `Display` prints the path of its main fork as PostgreSQL names it, under
/// the default [`PathNaming`]: `base/5/16396`, `global/1262`,
/// `pg_tblspc/16400/PG_15_202209061/5/16396`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelFileLocator {
    /// Tablespace OID: [`DEFAULT_TABLESPACE_OID`], [`GLOBAL_TABLESPACE_OID`]
    /// or a user tablespace.
    pub spc_oid: Oid,
    /// Database OID; 0 for shared (global) relations.
    pub db_oid: Oid,
    /// Relation file number (`relfilenode`).
    pub rel_number: Oid,
}

impl RelFileLocator {
    /// A locator from its three parts.
    pub const fn new(spc_oid: Oid, db_oid: Oid, rel_number: Oid) -> Self {
        RelFileLocator {
            spc_oid,
            db_oid,
            rel_number,
        }
    }

    /// A relation in the default tablespace of database `db_oid`
    /// (`base/DB/REL`).
    pub const fn in_database(db_oid: Oid, rel_number: Oid) -> Self {
        Self::new(DEFAULT_TABLESPACE_OID, db_oid, rel_number)
    }

    /// A shared relation (`global/REL`).
    pub const fn shared(rel_number: Oid) -> Self {
        Self::new(GLOBAL_TABLESPACE_OID, 0, rel_number)
    }

    /// Checks that the locator names a file PostgreSQL could have written:
    /// non-zero OIDs, database 0 exactly for the global tablespace. Every
    /// backend calls this before turning a locator into a path or key.
    pub fn validate(&self) -> Result<(), Error> {
        let reason = if self.rel_number == 0 {
            Some("relation number 0 is InvalidOid")
        } else if self.spc_oid == 0 {
            Some("tablespace 0 is InvalidOid")
        } else if self.spc_oid == GLOBAL_TABLESPACE_OID && self.db_oid != 0 {
            Some("relations in the global tablespace must have database 0")
        } else if self.spc_oid != GLOBAL_TABLESPACE_OID && self.db_oid == 0 {
            Some("database 0 is only valid in the global tablespace")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidLocator {
                spc_oid: self.spc_oid,
                db_oid: self.db_oid,
                rel_number: self.rel_number,
                reason,
            }),
            None => Ok(()),
        }
    }
}

impl fmt::Display for RelFileLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        PathNaming::default().write_relpath(f, *self, ForkNumber::Main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_postgres() {
        assert_eq!(
            RelFileLocator::in_database(5, 16396).to_string(),
            "base/5/16396"
        );
        assert_eq!(RelFileLocator::shared(1262).to_string(), "global/1262");
        assert_eq!(
            RelFileLocator::new(16400, 5, 16396).to_string(),
            "pg_tblspc/16400/PG_15_202209061/5/16396"
        );
    }

    #[test]
    fn validate_rejects_what_postgres_never_writes() {
        assert!(RelFileLocator::in_database(5, 16396).validate().is_ok());
        assert!(RelFileLocator::shared(1262).validate().is_ok());
        assert!(RelFileLocator::in_database(5, 0).validate().is_err());
        assert!(RelFileLocator::in_database(0, 1).validate().is_err());
        assert!(RelFileLocator::new(GLOBAL_TABLESPACE_OID, 5, 1)
            .validate()
            .is_err());
        assert!(RelFileLocator::new(0, 5, 1).validate().is_err());
        let err = RelFileLocator::in_database(5, 0).validate().unwrap_err();
        assert!(err.to_string().contains("InvalidOid"), "{err}");
    }
}
