//! The progress hook of a transfer: the CLI draws bars with it, the demo and tests pass nothing.
//! Must not: draw anything itself.

use std::sync::Arc;

/// What a transfer is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Reading the local file through the hash to learn its digest.
    Hashing,
    /// Uploading to a backend.
    Uploading { backend: String },
    /// Downloading (and verifying) from a backend; `attempt` counts from 1.
    Downloading { backend: String, attempt: usize },
}

/// Receives progress of a transfer. Calls come from the transfer's tasks (possibly several
/// threads), in order: `begin`, any number of `advance`, `end`; then the next phase.
pub trait Progress: Send + Sync {
    /// A phase starts; `total` bytes are expected when known.
    fn begin(&self, phase: &Phase, total: Option<u64>);
    /// `bytes` more were processed in the current phase.
    fn advance(&self, bytes: u64);
    /// The current phase ended, successfully or not.
    fn end(&self);
}

/// The optional reporter of a transfer (the common case is none), cheap to clone into tasks.
#[derive(Clone, Default)]
pub(crate) struct Reporter(pub Option<Arc<dyn Progress>>);

impl Reporter {
    pub fn begin(&self, phase: Phase, total: Option<u64>) {
        if let Some(p) = &self.0 {
            p.begin(&phase, total);
        }
    }
    pub fn advance(&self, bytes: u64) {
        if let Some(p) = &self.0 {
            p.advance(bytes);
        }
    }
    pub fn end(&self) {
        if let Some(p) = &self.0 {
            p.end();
        }
    }
}
