//! # smgr-cli: the `smgr` command
//!
//! Operator tooling over the storage stack: `smgr demo` writes and verifies
//! a relation in a temporary directory (the embedded default, no server
//! needed); `smgr verify` reads every block of a PostgreSQL data directory
//! and checks each page, as `pg_checksums --check` does. The library part
//! holds what the commands do, so tests drive it without a process.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> smgr_api::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let text = smgr_cli::demo::run_demo(dir.path(), 100, 32).await?;
//! assert!(text.contains("read and verified 100 blocks"));
//! # Ok(())
//! # }
//! ```

pub mod demo;
pub mod verify;
