//! `metadata.managedFields` decoding, encoding and ordering.

/// The operation of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (POST, PUT, merge/JSON/strategic patch).
    Update,
}
