//! # smgr-cli: the `smgr` command
//!
//! Operator tooling built only on the library crates' public APIs; every
//! page it reads goes through the buffer pool ([`bufmgr`]) by read streams
//! ([`streamread`]):
//!
//! - `smgr demo` writes a relation in a temporary directory, scans it with
//!   a stream and one block at a time, and verifies it (no server needed);
//! - `smgr verify LOCATION` checks every page of a PostgreSQL data
//!   directory, local or in an object store, as `pg_checksums --check`
//!   does ([`verify`]);
//! - `smgr scan LOCATION RELATION` reads one fork and prints the stream's
//!   counters ([`scan`]);
//! - `smgr upload PGDATA URL` copies the relation files into an object
//!   store ([`upload`]);
//! - `smgr bench` prints the side-by-side ratios of `BENCHMARKS.md`
//!   ([`mod@bench`]).
//!
//! The library part holds what the commands do, so tests drive it without
//! a process:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> bufmgr::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let text = smgr_cli::demo::run_demo(dir.path(), 256, 64).await?;
//! assert!(text.contains("verified 256 pages: 0 bad"));
//! assert!(text.contains("after flipping one byte of block 255 on disk: 1 bad"));
//! # Ok(())
//! # }
//! ```

pub mod backup_manifest;
pub mod bench;
mod bench_pool;
pub mod cluster;
pub mod control;
pub mod demo;
pub mod inventory;
pub mod location;
pub mod manifest;
pub mod restore;
pub mod scan;
pub mod tree;
pub mod upload;
pub mod verify;
