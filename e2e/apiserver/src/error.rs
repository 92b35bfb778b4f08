//! `metav1.Status` errors, shaped exactly like the ones a real apiserver sends.

use serde_json::{json, Value};

/// One `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
}

/// An error answered as a `Status` body with `code`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    /// Extra response headers (e.g. `Location`).
    pub headers: Vec<(String, String)>,
}

/// Which object an error is about: used for messages and `details`.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub group: String,
    /// Plural resource name (`widgets`).
    pub resource: String,
    /// Kind (`Widget`).
    pub kind: String,
    pub name: String,
}

impl Subject {
    /// `widgets.example.com` or `configmaps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
    /// `Widget.example.com` or `ConfigMap`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
    fn resource_details(&self) -> Value {
        let mut d = json!({"name": self.name, "kind": self.resource});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        if self.name.is_empty() {
            d.as_object_mut().unwrap().remove("name");
        }
        d
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn not_found(s: &Subject) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", s.qualified_resource(), s.name),
        )
        .with_details(s.resource_details())
    }
    /// 404 for a path that names no known resource.
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }
    pub fn already_exists(s: &Subject) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", s.qualified_resource(), s.name),
        )
        .with_details(s.resource_details())
    }
    /// The optimistic-concurrency 409 (`OptimisticLockErrorMsg`).
    pub fn conflict(s: &Subject) -> Self {
        Self::conflict_msg(
            s,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    pub fn conflict_msg(s: &Subject, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                s.qualified_resource(),
                s.name,
                why
            ),
        )
        .with_details(s.resource_details())
    }
    /// The 409 of a failed delete precondition (`registry.Store`'s precondition check), which
    /// names the kind, not the resource: `Operation cannot be fulfilled on Widget.example.com
    /// "w1": the UID in the precondition (…) does not match the UID in record (…). …`.
    pub fn precondition_conflict(s: &Subject, why: &str) -> Self {
        let mut details = json!({"name": s.name, "kind": s.kind});
        if !s.group.is_empty() {
            details["group"] = json!(s.group);
        }
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                s.qualified_kind(),
                s.name,
                why
            ),
        )
        .with_details(details)
    }
    /// 422 `Invalid` with one cause per error (`errors.NewInvalid`).
    pub fn invalid(s: &Subject, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        // Go's aggregate error text: repeated messages once, brackets only for several.
        let mut unique: Vec<String> = Vec::new();
        for m in summary {
            if !unique.contains(&m) {
                unique.push(m);
            }
        }
        let summary = if unique.len() == 1 {
            unique.remove(0)
        } else {
            format!("[{}]", unique.join(", "))
        };
        let mut details = json!({"name": s.name, "kind": s.kind});
        if !s.group.is_empty() {
            details["group"] = json!(s.group);
        }
        details["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                s.qualified_kind(),
                s.name,
                summary
            ),
        )
        .with_details(details)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }
    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
        .with_details(json!({"retryAfterSeconds": 1}))
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;
