//! The seam to the sibling crates: CRD schema admission
//! (`castellan-apiserver-schema`) and patch/apply semantics
//! (`castellan-apiserver-patch`). Everything the server needs from them goes
//! through this module, so their API can evolve in one place.

use crate::error::Cause;
use castellan_apiserver_schema as schema;
use serde_json::Value;

pub use schema::FieldValidation;

/// A compiled CRD version schema.
pub type Schema = schema::CompiledSchema;

fn cause(c: schema::Cause) -> Cause {
    Cause {
        reason: c.reason,
        message: c.message,
        field: c.field,
    }
}

pub fn compile_schema(v: &Value, base_path: &str) -> Result<Schema, Vec<Cause>> {
    Schema::compile_at(v, base_path).map_err(|cs| cs.into_iter().map(cause).collect())
}

pub enum AdmitFailure {
    BadRequest(String),
    Invalid(Vec<Cause>),
}

/// Prune, default and validate a custom object. Returns warnings.
pub fn admit(
    s: &Schema,
    obj: &mut Value,
    old: Option<&Value>,
    fv: FieldValidation,
) -> Result<Vec<String>, AdmitFailure> {
    match s.admit(obj, old, fv) {
        Ok(a) => Ok(a.warnings),
        Err(schema::AdmitError::BadRequest(m)) => Err(AdmitFailure::BadRequest(m)),
        Err(schema::AdmitError::Invalid(cs)) => {
            Err(AdmitFailure::Invalid(cs.into_iter().map(cause).collect()))
        }
    }
}

pub fn parse_field_validation(v: Option<&str>) -> Result<FieldValidation, String> {
    match v {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(format!(
            "fieldValidation parameter unsupported: {other}. Valid values are: Ignore, Warn, Strict"
        )),
    }
}

pub fn duplicate_fields(raw: &[u8]) -> Vec<String> {
    schema::duplicate_fields(raw)
}

// ---- patch and apply (castellan-apiserver-patch) ----

pub use castellan_apiserver_patch::{
    ApplyError, CrdSchema, FieldManagerInput, ListSemantics, NoSchema, PatchError, WriteScope,
};

pub fn merge_patch(target: &mut Value, patch: &Value) {
    castellan_apiserver_patch::merge_patch(target, patch)
}

pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    castellan_apiserver_patch::json_patch(target, ops)
}

/// Strategic merge patch of a built-in kind, with its lists' patch strategies.
pub fn strategic_merge_patch(
    b: crate::resources::Builtin,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    castellan_apiserver_patch::strategic_merge_patch_with(target, patch, &|path| {
        crate::builtins::list_strategy(b, path)
    })
}

pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    input: &FieldManagerInput,
) -> Result<Value, ApplyError> {
    castellan_apiserver_patch::apply(live, applied, force, input)
}

pub fn record_update(old: Option<&Value>, new: &mut Value, input: &FieldManagerInput) {
    castellan_apiserver_patch::record_update(old, new, input)
}
