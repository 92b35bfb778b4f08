//! Errors returned to the server crate, with the HTTP status code and `metav1.Status` body
//! the real apiserver would answer with.

use serde_json::Value;

use crate::managed::Operation;

/// A patch that cannot be decoded or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed: the server answers 400 BadRequest.
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but cannot be applied to this object (a failed JSON patch
    /// `test`, a missing path): the server answers 422.
    #[error("{0}")]
    Unprocessable(String),
}

impl PatchError {
    /// The HTTP status code the apiserver answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::Malformed(_) => 400,
            PatchError::Unprocessable(_) => 422,
        }
    }
}

/// One field another manager owns and the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The other manager's operation (an Update manager is printed with its apiVersion).
    pub operation: Operation,
    /// The other manager's apiVersion.
    pub api_version: String,
    /// The other manager's subresource, if any.
    pub subresource: Option<String>,
    /// The field, in the apiserver's path syntax: `.spec.x`, `.status.conditions[type="Ready"].status`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The applied configuration carries `metadata.managedFields`: 400.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsSet,
    /// The applied configuration is not an object: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Other managers own fields the apply would change: 409.
    #[error("{}", crate::error::conflict_message(.0))]
    Conflicts(Vec<Conflict>),
}

impl ApplyError {
    /// The HTTP status code the apiserver answers with.
    pub fn code(&self) -> u16 {
        todo!()
    }

    /// The complete `metav1.Status` body the apiserver answers with.
    pub fn status(&self) -> Value {
        todo!()
    }
}

pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    let _ = conflicts;
    todo!()
}
