//! # streamread: streaming reads
//!
//! PostgreSQL's read stream over the buffer pool: a source of block
//! numbers in, pinned buffers out, with look-ahead that combines
//! consecutive misses into vectored reads and keeps several in flight.
//!
//! Not yet implemented: this crate is a placeholder so that the workspace
//! has its final shape. See the project's issue list.
