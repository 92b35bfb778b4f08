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

mod dupes;
mod errors;
mod node;

use serde_json::Value;

pub use dupes::duplicate_fields;
pub use errors::{invalid_message, Cause};

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
        todo!("{value:?}")
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
    pub fn compile_at(open_api_v3_schema: &Value, base_path: &str) -> Result<CompiledSchema, Vec<Cause>> {
        todo!("{open_api_v3_schema} {base_path}")
    }

    /// Admit an object on create (`old = None`) or update (`old = Some`).
    ///
    /// On a `/status` write, pass the object the server will store (the old object with the new
    /// `status`); the real server validates the whole object there too.
    pub fn admit(
        &self,
        obj: &mut Value,
        old: Option<&Value>,
        mode: FieldValidation,
    ) -> Result<Admitted, AdmitError> {
        todo!("{obj} {old:?} {mode:?}")
    }

    /// Apply defaults only (the real server also defaults when reading from storage).
    pub fn default_object(&self, obj: &mut Value) {
        todo!("{obj}")
    }

    /// The list semantics at `path` (a path to the list itself).
    pub fn list_type_at(&self, path: &[PathElement]) -> ListType {
        todo!("{path:?}")
    }

    /// Whether the object at `path` is `x-kubernetes-map-type: atomic`.
    pub fn map_is_atomic_at(&self, path: &[PathElement]) -> bool {
        todo!("{path:?}")
    }
}
