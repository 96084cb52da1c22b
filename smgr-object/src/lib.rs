//! # smgr-object: relations in an object store
//!
//! The object-storage backend of [`smgr_api::Smgr`]: the relative paths of
//! [`smgr_api::PathNaming`] become object keys under a prefix, one object per
//! segment, so a PostgreSQL data directory copied into a bucket is readable
//! as is; a run of blocks becomes one ranged GET.
//!
//! Not yet implemented: this crate is a placeholder so that the workspace
//! has its final shape. See the project's issue list.
