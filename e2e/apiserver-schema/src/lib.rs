//! CRD `openAPIV3Schema` handling for Castellan's API-server emulator.
//!
//! [`CompiledSchema::compile`] checks a CRD version's schema the way the real apiserver checks a
//! CRD (structural rules, forbidden keywords, CEL rules that must compile), and
//! [`CompiledSchema::admit`] runs a custom-resource write through the same steps, in the same
//! order, as `apiextensions-apiserver`: prune unknown fields, drop nulls of non-nullable fields,
//! default, OpenAPI validation, list-type uniqueness, then CEL `x-kubernetes-validations`.
//!
//! Error causes carry the real server's `reason`, `field` and `message` wording so that the
//! server crate can build a `Status` indistinguishable from the real one.

mod cel;
mod default;
mod dupes;
mod errors;
mod formats;
mod listtype;
mod node;
mod prune;
mod ratchet;
mod structural;
mod validate;

use serde_json::Value;

pub use dupes::duplicate_fields;
pub use errors::{bad_request_message, invalid_message, Cause};

/// How the request asked unknown and duplicate fields to be handled (`?fieldValidation=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Reject unknown or duplicate fields with 400 BadRequest.
    Strict,
    /// Drop them and report a warning (the server default when the query parameter is absent).
    #[default]
    Warn,
    /// Drop them silently.
    Ignore,
}

impl FieldValidation {
    /// Parse the `fieldValidation` query value. `None` (absent) and the empty string mean `Warn`,
    /// as on the real server; any other unknown value is a 400 with the real server's message.
    pub fn from_query(value: Option<&str>) -> Result<FieldValidation, String> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(format!(
                "fieldValidation: Unsupported value: {}: supported values: \"Ignore\", \"Warn\", \"Strict\"",
                errors::go_quote(other)
            )),
        }
    }
}

/// A successful admission.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// Warnings to send as `Warning: 299 - "<text>"` headers, e.g. `unknown field "spec.x"`.
    pub warnings: Vec<String>,
}

/// A failed admission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmitError {
    /// 400 BadRequest (Strict field validation): the message is the whole `Status.message`.
    BadRequest(String),
    /// 422 Invalid: one cause per field error; build the message with [`invalid_message`].
    Invalid(Vec<Cause>),
}

/// One step of a path into an object, for [`CompiledSchema::list_type_at`] and
/// [`CompiledSchema::map_is_atomic_at`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathElement {
    /// An object field (a `properties` entry or an `additionalProperties` key).
    Field(String),
    /// A list element (every element shares the `items` schema, so the index does not matter).
    Index(usize),
}

/// How server-side apply merges a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (the default for CRD lists, and the answer for unknown paths).
    Atomic,
    /// Merged as a set of scalars.
    Set,
    /// Merged by the values of `keys`.
    Map {
        /// `x-kubernetes-list-map-keys`.
        keys: Vec<String>,
    },
}

/// A CRD version's openAPIV3Schema, checked and ready to admit objects.
pub struct CompiledSchema {
    root: node::Node,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

/// The field path the real server reports schema errors under, for a `v1` CRD whose schema is
/// given per version, e.g. `spec.versions[0].schema.openAPIV3Schema`.
pub fn version_schema_path(version_index: usize) -> String {
    format!("spec.versions[{version_index}].schema.openAPIV3Schema")
}

impl CompiledSchema {
    /// Validate the schema as the apiserver validates a CRD, reporting errors under
    /// `spec.validation.openAPIV3Schema` (use [`CompiledSchema::compile_at`] for the exact
    /// per-version path of a `v1` CRD).
    pub fn compile(open_api_v3_schema: &Value) -> Result<CompiledSchema, Vec<Cause>> {
        Self::compile_at(open_api_v3_schema, "spec.validation.openAPIV3Schema")
    }

    /// Like [`CompiledSchema::compile`], with the field path of the schema in the CRD object.
    pub fn compile_at(
        open_api_v3_schema: &Value,
        base_path: &str,
    ) -> Result<CompiledSchema, Vec<Cause>> {
        let mut errs = structural::check(open_api_v3_schema, base_path);
        if !errs.is_empty() {
            return Err(errs);
        }
        let root = node::Node::parse(open_api_v3_schema, base_path, true, &mut errs);
        check_defaults(&root, open_api_v3_schema, base_path, &mut errs);
        if errs.is_empty() {
            Ok(CompiledSchema { root })
        } else {
            Err(errs)
        }
    }

    /// Admit an object on create (`old = None`) or update (`old = Some`), in the real server's
    /// order: prune unknown fields (reported per `mode`), drop nulls of non-nullable fields,
    /// default, OpenAPI validation, list-type invariants, ratcheting (update only: errors of
    /// unchanged nodes are dropped), then CEL rules unless a blocking error exists. `obj` is left
    /// pruned and defaulted, ready to store.
    ///
    /// On a `/status` write, pass the object the server will store (the old object with the new
    /// `status`); the real server validates the whole object there too.
    pub fn admit(
        &self,
        obj: &mut Value,
        old: Option<&Value>,
        mode: FieldValidation,
    ) -> Result<Admitted, AdmitError> {
        self.admit_with_duplicates(obj, old, mode, &[])
    }

    /// [`CompiledSchema::admit`], also reporting the duplicate fields the server found in the raw
    /// body with [`duplicate_fields`]: Strict rejects them (with the unknown fields) in one 400,
    /// Warn turns them into `duplicate field "<path>"` warnings.
    pub fn admit_with_duplicates(
        &self,
        obj: &mut Value,
        old: Option<&Value>,
        mode: FieldValidation,
        duplicates: &[String],
    ) -> Result<Admitted, AdmitError> {
        // 1. Prune unknown fields; report them per fieldValidation.
        let mut pruned = Vec::new();
        prune::prune_unknown(&self.root, obj, &mut pruned);
        let mut problems: Vec<String> = duplicates
            .iter()
            .map(|d| format!("duplicate field {}", errors::go_quote(d)))
            .collect();
        problems.extend(
            pruned
                .iter()
                .map(|p| format!("unknown field {}", errors::go_quote(p))),
        );
        let mut warnings = Vec::new();
        match mode {
            FieldValidation::Strict if !problems.is_empty() => {
                return Err(AdmitError::BadRequest(format!(
                    "strict decoding error: {}",
                    problems.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = problems,
            _ => {}
        }
        // 2. Nulls of non-nullable fields without defaults; 3. defaults.
        prune::prune_nulls(&self.root, obj);
        default::apply(&self.root, obj);
        // 4. OpenAPI validation (embedded resources included); 5. list-type invariants.
        let mut causes = validate::validate_object(&self.root, obj);
        causes.extend(listtype::validate_lists(&self.root, obj));
        // Ratcheting: on update, errors of unchanged nodes do not count.
        let mut old = old.cloned();
        if let Some(o) = old.as_mut() {
            default::apply(&self.root, o);
            causes = ratchet::ratchet(&self.root, obj, o, causes);
        }
        // 6. CEL, unless a blocking error already exists (hasBlockingErr in strategy.go).
        if causes.iter().any(Cause::is_blocking) {
            // `field.Invalid(nil, nil, …)`: a nil path prints as `<nil>`.
            causes.push(Cause::invalid(
                "<nil>",
                &Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            causes.extend(cel::evaluate(&self.root, obj, old.as_ref()));
        }
        if causes.is_empty() {
            Ok(Admitted { warnings })
        } else {
            Err(AdmitError::Invalid(causes))
        }
    }

    /// Apply defaults only (the real server also defaults when reading from storage).
    pub fn default_object(&self, obj: &mut Value) {
        default::apply(&self.root, obj);
    }

    /// Whether [`CompiledSchema::default_object`] would change `obj`.
    pub fn needs_defaults(&self, obj: &Value) -> bool {
        default::needed(&self.root, obj)
    }

    /// The list semantics at `path` (a path to the list itself); `Atomic` for unknown paths.
    pub fn list_type_at(&self, path: &[PathElement]) -> ListType {
        listtype::list_type(listtype::node_at(&self.root, path))
    }

    /// Whether the object at `path` is `x-kubernetes-map-type: atomic`.
    pub fn map_is_atomic_at(&self, path: &[PathElement]) -> bool {
        listtype::map_is_atomic(listtype::node_at(&self.root, path))
    }
}

/// Defaults must validate against their own schema (the real server rejects the CRD otherwise),
/// and must not contain fields the schema would prune.
fn check_defaults(node: &node::Node, schema: &Value, path: &str, errs: &mut Vec<Cause>) {
    if let Some(d) = &node.default {
        let mut pruned_copy = d.clone();
        let mut pruned = Vec::new();
        prune::prune_unknown_at(node, &mut pruned_copy, &mut pruned);
        if !pruned.is_empty() {
            errs.push(Cause::invalid(
                &format!("{path}.default"),
                d,
                &format!("must not have unknown fields: {}", pruned.join(", ")),
            ));
        } else {
            let mut defaulted = d.clone();
            default::apply(node, &mut defaulted);
            let name = path
                .rsplit_once("properties[")
                .map(|(_, n)| n.trim_end_matches(']'))
                .unwrap_or("");
            for c in validate::validate_value(node, &defaulted, name) {
                errs.push(Cause {
                    field: format!("{path}.default"),
                    ..c
                });
            }
        }
    }
    for (k, child) in &node.properties {
        if let Some(s) = schema.get("properties").and_then(|p| p.get(k)) {
            check_defaults(child, s, &format!("{path}.properties[{k}]"), errs);
        }
    }
    if let (Some(child), Some(s)) = (
        node.additional.as_deref(),
        schema.get("additionalProperties"),
    ) {
        check_defaults(child, s, &format!("{path}.additionalProperties"), errs);
    }
    if let (Some(child), Some(s)) = (node.items.as_deref(), schema.get("items")) {
        check_defaults(child, s, &format!("{path}.items"), errs);
    }
}
