//! # bufmgr: the shared buffer pool
//!
//! A fixed pool of page frames shared by many tasks, as PostgreSQL's shared
//! buffers: a page table, pins, clock-sweep eviction, I/O-in-progress
//! states and two-step vectored reads, over any [`smgr_api::Smgr`]. It never
//! names a concrete backend.
//!
//! Not yet implemented: this crate is a placeholder so that the workspace
//! has its final shape. See the project's issue list.
