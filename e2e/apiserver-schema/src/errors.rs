//! Field errors with the real apiserver's reasons and message wording.

/// One `details.causes[]` entry of a 422 `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueInvalid`, ...
    pub reason: String,
    /// The error body, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.size`.
    pub field: String,
}

/// The `Status.message` of a 422: `<Kind>.<group> "<name>" is invalid: <field>: <message>`, or a
/// bracketed, comma-separated list when there are several causes.
pub fn invalid_message(qualified_kind: &str, name: &str, causes: &[Cause]) -> String {
    todo!("{qualified_kind} {name} {causes:?}")
}
