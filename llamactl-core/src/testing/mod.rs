//! Test support for embedders and for other implementations of llamactl-core's traits
//! (feature `testing`).
//!
//! - [`conformance`]: the rules every [`Database`](crate::Database) and
//!   [`ApiKeyStore`](crate::ApiKeyStore) must keep, as a suite any implementation can run.
//!
//! For a store to test against, [`MemoryDatabase`](crate::MemoryDatabase) needs no feature.

pub mod conformance;
