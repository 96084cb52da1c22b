//! # integration: end-to-end tests
//!
//! Tests of the whole stack live under `tests/`, one scenario per file.
//! This library holds what they share: locating the real PostgreSQL 15
//! cluster that `scripts/pg-cluster.sh` builds.
