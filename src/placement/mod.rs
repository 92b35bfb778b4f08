//! Placement: where a mapping is served from, where a new blob is written, and in which order a
//! client reads. "Who decides where a stranded mapping goes?" is answered in [`serve`].
//!
//! - [`view`]: a backend as placement sees it, its replication group and a mapping's key on it;
//! - [`serve`]: the operator's rules for serving a mapping (declared, sticky, verified
//!   candidates in order);
//! - [`write`]: the backend a write goes to;
//! - [`read`]: the order in which a client tries backends.
//!
//! Must not: do I/O, read the clock or log. The controllers and the client library gather the
//! facts and act on the answers; every rule here is a table test.

pub mod read;
pub mod serve;
pub mod view;
pub mod write;

#[cfg(test)]
pub(crate) mod test_objects;

pub use read::{read_order, ReadStep};
pub use serve::{candidate_order, decide, Candidate, ObjectFact, Plan, Replica, StrandedBy};
pub use view::{key_on, location_of, BackendView};
pub use write::{not_writable_because, write_backend};
