//! The public API: `StorageBackend` and `ArtifactMapping` custom resources, their conditions
//! and reason constants. Nothing here talks to a cluster or a bucket.

pub mod reasons;
