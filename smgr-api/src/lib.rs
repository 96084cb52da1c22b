//! # smgr-api: the storage manager interface
//!
//! The bottom layer of the stack: what a *storage manager* is (PostgreSQL's
//! `smgr`), in types every other crate shares.
//!
//! - Identifiers: [`RelFileLocator`], [`ForkNumber`], [`BlockNumber`],
//!   [`BlockSize`], and PostgreSQL's file naming both ways in
//!   [`PathNaming`] (`base/5/16396_fsm.1` ⇄ relation, fork, segment).
//! - The async [`Smgr`] trait that backends implement (`smgr-md` for local
//!   segmented files, `smgr-object` for object stores), with the
//!   conveniences of [`SmgrExt`] on top. Its contract on buffer ownership is
//!   what makes cancelled reads safe: I/O takes [`PageBuf`]s by value.
//! - Page verification shared by every read whatever the backend:
//!   [`PageVerifier`] for the native crc32c format and PostgreSQL's format
//!   and checksum.
//! - One error type, [`Error`], whose messages name the relation path,
//!   block and byte counts involved.
//! - With the `testkit` feature, [`testkit`]: the conformance kit that is
//!   the trait's executable specification, and an in-memory `Smgr`.
//!
//! The buffer pool (`bufmgr`) and streaming reads (`streamread`) depend on
//! this crate only, never on a concrete backend.
//!
//! ```
//! use smgr_api::{BlockSize, ForkNumber, PageFormat, PageVerifier, PageState, PathNaming};
//!
//! let naming = PathNaming::default();
//! let seg = naming.parse("base/5/16396_fsm.1")?;
//! assert_eq!(seg.fork, ForkNumber::Fsm);
//! assert_eq!(naming.segment_path(seg.locator, seg.fork, seg.segno)?, "base/5/16396_fsm.1");
//!
//! let verifier = PageVerifier::new(PageFormat::Native, BlockSize::DEFAULT);
//! let mut page = vec![1u8; 8192];
//! verifier.set_checksum(&mut page, 42);
//! assert_eq!(verifier.verify(&page, 42), Ok(PageState::Valid));
//! assert!(verifier.verify(&page, 43).is_err()); // a page in the wrong place
//! # Ok::<(), smgr_api::Error>(())
//! ```

mod block;
mod buf;
mod error;
mod fork;
mod locator;
mod page;
mod path;
mod smgr;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use block::{block_run_end, BlockNumber, BlockSize, INVALID_BLOCK_NUMBER, MAX_BLOCK_NUMBER};
pub use buf::{PageBuf, PageLender};
pub use error::{Error, Result};
pub use fork::ForkNumber;
pub use locator::{Oid, RelFileLocator, DEFAULT_TABLESPACE_OID, GLOBAL_TABLESPACE_OID};
pub use page::{
    is_all_zero, native_checksum, pg_checksum_page, pg_checksum_page_portable, PageCorruption,
    PageFormat, PageState, PageVerifier, NATIVE_HEADER_BYTES,
};
pub use path::{
    PathNaming, SegmentFile, DEFAULT_SEGMENT_BLOCKS, PG15_TABLESPACE_VERSION_DIRECTORY,
};
pub use smgr::{Smgr, SmgrExt};
