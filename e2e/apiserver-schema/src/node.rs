//! The parsed schema tree that every admission step walks.

/// One schema node.
#[derive(Debug, Default)]
pub(crate) struct Node {}
