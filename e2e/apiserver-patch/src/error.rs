//! Errors returned to the server crate, with the HTTP status code and `metav1.Status` body
//! the real apiserver would answer with.

use serde_json::{json, Value};

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
        match self {
            ApplyError::ManagedFieldsSet | ApplyError::BadRequest(_) => 400,
            ApplyError::Conflicts(_) => 409,
        }
    }

    /// The complete `metav1.Status` body the apiserver answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "code": self.code(),
        });
        match self {
            ApplyError::ManagedFieldsSet | ApplyError::BadRequest(_) => {
                status["reason"] = json!("BadRequest");
            }
            ApplyError::Conflicts(conflicts) => {
                status["reason"] = json!("Conflict");
                status["details"] = json!({
                    "causes": conflicts.iter().map(|c| json!({
                        "reason": "FieldManagerConflict",
                        "message": format!("conflict with {}", c.printed_manager()),
                        "field": c.field,
                    })).collect::<Vec<_>>(),
                });
            }
        }
        status
    }
}

impl Conflict {
    /// The manager as the apiserver prints it (`printManager`): `"name"`, then
    /// ` with subresource "status"` if any, then ` using <apiVersion>` for an Update manager.
    pub fn printed_manager(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// The apiserver's conflict message (`getConflictMessage`).
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.printed_manager(),
            only.field
        );
    }
    let mut managers: Vec<String> = Vec::new();
    for c in conflicts {
        let m = c.printed_manager();
        if !managers.contains(&m) {
            managers.push(m);
        }
    }
    managers.sort();
    let mut lines = Vec::new();
    for m in &managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| &c.printed_manager() == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}
