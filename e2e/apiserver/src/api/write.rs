//! POST, PUT and PATCH (merge, JSON, strategic, apply), with the CR strategy
//! rules: status subresource resets, generation, server-owned metadata,
//! admission, finalizer rules, no-op detection and `dryRun=All`.

use super::{check_namespace, present, to_storage, Target};
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::ext::{self, FieldManagerInput, FieldValidation, WriteScope};
use crate::http::{Reply, Request};
use crate::meta::{self, metadata_mut};
use crate::resources::{Builtin, StoreKey};
use crate::state::{Inner, Shared};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Options shared by create, update and patch.
pub struct WriteOpts {
    pub dry_run: bool,
    pub manager: String,
    pub fv: FieldValidation,
    pub force: bool,
}

fn options_invalid(kind: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(
        &Subject {
            group: "meta.k8s.io".into(),
            resource: String::new(),
            kind: kind.into(),
            name: String::new(),
        },
        causes,
    )
}

pub fn write_opts(req: &Request, kind: &str) -> ApiResult<WriteOpts> {
    let q = &req.query;
    let dry_run = match q.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(options_invalid(
                kind,
                vec![Cause::new(
                    "FieldValueNotSupported",
                    format!("Unsupported value: \"{other}\": supported values: \"All\""),
                    "dryRun",
                )],
            ))
        }
    };
    let fm = q.get("fieldManager").unwrap_or("");
    if fm.len() > 128 {
        return Err(options_invalid(
            kind,
            vec![Cause::new(
                "FieldValueTooLong",
                "Too long: may not be more than 128 bytes",
                "fieldManager",
            )],
        ));
    }
    if fm.chars().any(|c| c.is_control()) {
        return Err(options_invalid(
            kind,
            vec![Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {fm:?}: may not contain non-printable characters"),
                "fieldManager",
            )],
        ));
    }
    let manager = if fm.is_empty() {
        // managerOrUserAgent: the User-Agent up to the first '/'.
        req.header("user-agent")
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    } else {
        fm.to_string()
    };
    let fv =
        ext::parse_field_validation(q.get("fieldValidation")).map_err(ApiError::bad_request)?;
    Ok(WriteOpts {
        dry_run,
        manager,
        fv,
        force: q.flag("force"),
    })
}

/// Decode a create/update body: protobuf (built-ins only) or JSON. Protobuf has no strict
/// decoding (unknown fields are dropped by the decoder), so it yields no warnings.
fn decode_body(req: &Request, t: &Target, fv: FieldValidation) -> ApiResult<(Value, Vec<String>)> {
    if req.content_type() == crate::protobuf::MEDIA_TYPE {
        return Ok((crate::protobuf::decode(&t.info, &req.body)?, Vec::new()));
    }
    decode_json(req, &t.info.kind, fv)
}

/// Decode a JSON body, handling duplicate fields per `fieldValidation`.
fn decode_json(
    req: &Request,
    info_kind: &str,
    fv: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {info_kind}): couldn't get version/kind; json parse error: {e}"
        ))
    })?;
    let mut warnings = Vec::new();
    if fv != FieldValidation::Ignore {
        let dups = ext::duplicate_fields(&req.body);
        if !dups.is_empty() {
            let texts: Vec<String> = dups
                .iter()
                .map(|d| format!("duplicate field \"{d}\""))
                .collect();
            if fv == FieldValidation::Strict {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    texts.join(", ")
                )));
            }
            warnings.extend(texts);
        }
    }
    Ok((v, warnings))
}

const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn builtin_fields(b: Builtin) -> &'static [&'static str] {
    match b {
        Builtin::ConfigMap => &["data", "binaryData", "immutable"],
        Builtin::Secret => &["data", "stringData", "type", "immutable"],
        Builtin::Namespace | Builtin::Crd => &["spec", "status"],
        Builtin::Lease => &["spec"],
        Builtin::CoreEvent => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        Builtin::EventsV1Event => &[
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
        ],
        other => crate::builtins::fields(other).unwrap_or(&[]),
    }
}

/// Unknown top-level fields of built-ins and unknown `metadata` fields of
/// every kind: pruned, with a warning (Warn) or a 400 (Strict).
fn prune_unknown(t: &Target, obj: &mut Value, fv: FieldValidation) -> ApiResult<Vec<String>> {
    let mut unknown = Vec::new();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let extra: Vec<String> = md
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in extra {
            md.remove(&k);
            unknown.push(format!("metadata.{k}"));
        }
    }
    if let (Some(b), Some(o)) = (t.info.builtin(), obj.as_object_mut()) {
        let allowed = builtin_fields(b);
        let extra: Vec<String> = o
            .keys()
            .filter(|k| {
                !allowed.contains(&k.as_str())
                    && !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
            })
            .cloned()
            .collect();
        for k in extra {
            o.remove(&k);
            unknown.push(k);
        }
    }
    let texts: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match fv {
        FieldValidation::Strict if !texts.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            texts.join(", ")
        ))),
        FieldValidation::Ignore => Ok(vec![]),
        _ => Ok(texts),
    }
}

/// Check (and fill, for built-ins) `apiVersion` and `kind`.
fn check_type_meta(t: &Target, obj: &mut Value) -> ApiResult<()> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let want_av = t.info.api_version();
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(av) if av != want_av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )))
        }
        Some(_) => {}
        None if t.info.is_custom() => {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                Value::Object(o.clone())
            )))
        }
        None => {}
    }
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if k != t.info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                t.info.kind
            )))
        }
        Some(_) => {}
        None if t.info.is_custom() => {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                Value::Object(o.clone())
            )))
        }
        None => {}
    }
    o.insert("apiVersion".into(), json!(want_av));
    o.insert("kind".into(), json!(t.info.kind));
    Ok(())
}

fn check_name_ns(t: &Target, obj: &mut Value, named: bool) -> ApiResult<()> {
    let md = metadata_mut(obj);
    if let Some(url_ns) = &t.namespace {
        match md.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                md.insert("namespace".into(), json!(url_ns));
            }
        }
    } else if !t.info.namespaced {
        md.remove("namespace");
    }
    if named {
        let body_name = md.get("name").and_then(Value::as_str).unwrap_or("");
        if body_name != t.name() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                t.name()
            )));
        }
    }
    Ok(())
}

fn fm_scope(t: &Target) -> WriteScope<'static> {
    if t.is_status() {
        WriteScope::STATUS
    } else if t.info.has_status {
        WriteScope::MAIN_WITH_STATUS
    } else {
        WriteScope::All
    }
}

/// Run `f` with the field-manager input for this target.
fn with_fm<R>(t: &Target, manager: &str, f: impl FnOnce(&FieldManagerInput) -> R) -> R {
    let now = meta::now_seconds();
    let av = t.info.api_version();
    let no_schema = ext::NoSchema;
    let crd_schema;
    let schema: &dyn ext::ListSemantics = match t.info.custom() {
        Some(c) if c.raw_schema.is_object() => {
            crd_schema = ext::CrdSchema {
                schema: &c.raw_schema,
            };
            &crd_schema
        }
        _ => &no_schema,
    };
    let input = FieldManagerInput {
        manager,
        subresource: t.subresource.as_deref(),
        api_version: &av,
        now: &now,
        schema,
        scope: fm_scope(t),
    };
    f(&input)
}

fn finalizer_warnings(t: &Target, obj: &Value) -> Vec<String> {
    if !t.info.is_custom() {
        return vec![];
    }
    meta::finalizers(obj)
        .iter()
        .filter(|f| !f.contains('/'))
        .map(|f| format!("metadata.finalizers: {f:?}: prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers"))
        .collect()
}

/// Type-specific admission. Returns warnings.
fn admit(
    inner: &Inner,
    t: &Target,
    obj: &mut Value,
    old: Option<&Value>,
    fv: FieldValidation,
) -> ApiResult<Vec<String>> {
    let subject = t.info.subject(meta::name_of(obj));
    if let Some(c) = t.info.custom() {
        if let Some(s) = &c.schema {
            return ext::admit(s, obj, old, fv).map_err(|e| match e {
                ext::AdmitFailure::BadRequest(m) => ApiError::bad_request(m),
                ext::AdmitFailure::Invalid(causes) => ApiError::invalid(&subject, causes),
            });
        }
        return Ok(vec![]);
    }
    let _ = inner;
    match t.info.builtin() {
        Some(Builtin::Crd) => {
            crate::crd::prepare(obj, old).map_err(|c| ApiError::invalid(&subject, c))?;
        }
        Some(Builtin::EventsV1Event) => {
            crate::events::validate_v1(obj, old).map_err(|c| ApiError::invalid(&subject, c))?;
        }
        Some(Builtin::Namespace) => {
            // As kube-apiserver's namespace strategy: the name label is always set (and reset
            // if a client changes or removes it), on create and on update.
            let name = meta::name_of(obj).to_owned();
            if !name.is_empty() {
                let labels = metadata_mut(obj)
                    .entry("labels")
                    .or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels["kubernetes.io/metadata.name"] = Value::String(name);
            }
            let o = obj.as_object_mut().unwrap();
            match old {
                None => {
                    o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
                    o.insert("status".into(), json!({"phase": "Active"}));
                }
                Some(old) => {
                    o.insert("spec".into(), old["spec"].clone());
                    o.insert("status".into(), old["status"].clone());
                }
            }
        }
        Some(Builtin::Secret) => {
            use base64::Engine;
            let o = obj.as_object_mut().unwrap();
            if let Some(Value::Object(sd)) = o.remove("stringData") {
                let data = o.entry("data").or_insert_with(|| json!({}));
                if !data.is_object() {
                    *data = json!({});
                }
                for (k, v) in sd {
                    let s = v.as_str().unwrap_or_default();
                    data[&k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
                }
            }
            if o.get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                o.insert("type".into(), json!("Opaque"));
            }
            if let Some(old) = old {
                if old.get("type") != o.get("type") {
                    return Err(ApiError::invalid(
                        &subject,
                        vec![Cause::new(
                            "FieldValueInvalid",
                            format!("Invalid value: {}: field is immutable", o["type"]),
                            "type",
                        )],
                    ));
                }
            }
        }
        Some(b) if crate::builtins::fields(b).is_some() => {
            if old.is_none() {
                if let Some(status) = crate::builtins::empty_status(b) {
                    obj.as_object_mut().unwrap().insert("status".into(), status);
                }
            }
            crate::builtins::default(b, obj);
            let causes = crate::builtins::validate(b, obj, old);
            if !causes.is_empty() {
                return Err(ApiError::invalid(&subject, causes));
            }
        }
        _ => {}
    }
    Ok(vec![])
}

fn validate_metadata(t: &Target, obj: &Value) -> Vec<Cause> {
    let name = meta::name_of(obj);
    let mut causes = if t.info.builtin() == Some(Builtin::Namespace) {
        meta::dns1123_label_errors("metadata.name", name)
    } else if t
        .info
        .builtin()
        .is_some_and(|b| matches!(b, Builtin::CoreEvent | Builtin::EventsV1Event))
    {
        // Event names are only checked to be path-segment safe.
        if name.is_empty() || name.contains('/') || name.contains('%') {
            vec![Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: may not contain '/'"),
                "metadata.name",
            )]
        } else {
            vec![]
        }
    } else {
        meta::dns1123_subdomain_errors("metadata.name", name)
    };
    causes.extend(meta::validate_common_metadata(obj));
    causes
}

/// Commit a served-form object (create or update), returning the served
/// stored object.
fn commit(inner: &mut Inner, t: &Target, obj: Value) -> Value {
    let key = t.info.store_key();
    let stored = inner.store.put(&key, to_storage(&t.info, obj));
    after_commit(inner, &key);
    present(&t.info, &stored)
}

pub fn after_commit(inner: &mut Inner, key: &StoreKey) {
    if key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions" {
        let crds: Vec<Value> = inner.store.iter(key).map(|(_, v)| v.clone()).collect();
        inner.registry.rebuild(crds.iter());
    }
}

pub fn create(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let opts = write_opts(req, "CreateOptions")?;
    let (mut obj, mut warnings) = decode_body(req, t, opts.fv)?;
    check_type_meta(t, &mut obj)?;
    check_name_ns(t, &mut obj, false)?;
    warnings.extend(prune_unknown(t, &mut obj, opts.fv)?);
    let mut inner = shared.inner.lock().unwrap();
    let (out, w) = create_locked(&mut inner, t, obj, &opts, false)?;
    warnings.extend(w);
    Ok(Reply::json(201, &out).with_warnings(&warnings))
}

/// The create path shared by POST and apply-to-missing.
pub fn create_locked(
    inner: &mut Inner,
    t: &Target,
    mut obj: Value,
    opts: &WriteOpts,
    managed_done: bool,
) -> ApiResult<(Value, Vec<String>)> {
    if t.info.namespaced {
        check_namespace(inner, meta::namespace_of(&obj), true)?;
    }
    if let Some(c) = t.info.custom() {
        let crd_key = StoreKey::new("apiextensions.k8s.io", "customresourcedefinitions");
        if inner
            .store
            .get(&crd_key, "", &c.crd_name)
            .is_some_and(meta::is_deleting)
        {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            ));
        }
    }
    {
        let md = metadata_mut(&mut obj);
        let name = md
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            match md.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let n = format!("{prefix}{}", meta::random_suffix());
                    md.insert("name".into(), json!(n));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &t.info.subject(""),
                        vec![Cause::new(
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                            "metadata.name",
                        )],
                    ))
                }
            }
        }
        if md
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::new(
                500,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        md.insert("uid".into(), json!(meta::new_uid()));
        md.insert("creationTimestamp".into(), json!(meta::now_seconds()));
        md.remove("deletionTimestamp");
        md.remove("deletionGracePeriodSeconds");
        md.remove("selfLink");
        if t.info.tracks_generation() {
            md.insert("generation".into(), json!(1));
        } else {
            md.remove("generation");
        }
    }
    if t.info.has_status && t.info.is_custom() {
        obj.as_object_mut().unwrap().remove("status");
    }
    if !managed_done {
        with_fm(t, &opts.manager, |input| {
            ext::record_update(None, &mut obj, input)
        });
    }
    let mut warnings = admit(inner, t, &mut obj, None, opts.fv)?;
    let causes = validate_metadata(t, &obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &t.info.subject(meta::name_of(&obj)),
            causes,
        ));
    }
    warnings.extend(finalizer_warnings(t, &obj));
    let name = meta::name_of(&obj).to_string();
    if inner
        .store
        .get(&t.info.store_key(), meta::namespace_of(&obj), &name)
        .is_some()
    {
        return Err(ApiError::already_exists(&t.info.subject(&name)));
    }
    meta::omit_empty(&mut obj);
    if opts.dry_run {
        return Ok((obj, warnings));
    }
    Ok((commit(inner, t, obj), warnings))
}

pub fn update(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let opts = write_opts(req, "UpdateOptions")?;
    let (mut obj, mut warnings) = decode_body(req, t, opts.fv)?;
    check_type_meta(t, &mut obj)?;
    check_name_ns(t, &mut obj, true)?;
    warnings.extend(prune_unknown(t, &mut obj, opts.fv)?);
    let mut inner = shared.inner.lock().unwrap();
    let live = inner
        .store
        .get(&t.info.store_key(), t.ns(), t.name())
        .map(|v| present(&t.info, v))
        .ok_or_else(|| ApiError::not_found(&t.info.subject(t.name())))?;
    let live_rv = meta::meta_str(&live, "resourceVersion")
        .unwrap_or("")
        .to_string();
    // A uid in the body is a storage precondition, checked before anything else (etcd3's
    // GuaranteedUpdate): 409, whatever the resourceVersion. (A patch that changes it is a 422.)
    if let Some(uid) = meta::meta_str(&obj, "uid").filter(|s| !s.is_empty()) {
        let have = meta::meta_str(&live, "uid").unwrap_or("");
        if uid != have {
            return Err(ApiError::conflict_msg(
                &t.info.subject(t.name()),
                &format!(
                    "StorageError: invalid object, Code: 4, Key: {}, ResourceVersion: 0, \
                     AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in \
                     object meta: {have}",
                    storage_key(t)
                ),
            ));
        }
    }
    match meta::meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty()) {
        None if !t.info.allow_unconditional_update() => {
            return Err(ApiError::invalid(
                &t.info.subject(t.name()),
                vec![Cause::new(
                    "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update",
                    "metadata.resourceVersion",
                )],
            ))
        }
        Some(rv) if rv != live_rv => return Err(ApiError::conflict(&t.info.subject(t.name()))),
        _ => {}
    }
    restore_server_fields(t, &live, &mut obj)?;
    with_fm(t, &opts.manager, |input| {
        ext::record_update(Some(&live), &mut obj, input)
    });
    let (out, w) = finish_update(&mut inner, t, &live, obj, &opts)?;
    warnings.extend(w);
    Ok(Reply::json(200, &out).with_warnings(&warnings))
}

/// The etcd key kube-apiserver stores the target under (as its storage errors print it):
/// `/registry/<plural>/…` for built-ins, `/registry/<group>/<plural>/…` for custom resources
/// and CRDs.
fn storage_key(t: &Target) -> String {
    let mut key = String::from("/registry/");
    if t.info.is_custom() || t.info.group == "apiextensions.k8s.io" {
        key.push_str(&t.info.group);
        key.push('/');
    }
    key.push_str(&t.info.plural);
    if !t.ns().is_empty() {
        key.push('/');
        key.push_str(t.ns());
    }
    key.push('/');
    key.push_str(t.name());
    key
}

/// Server-owned metadata comes from the live object (`BeforeUpdate`); a different uid, or a
/// deletionTimestamp on an object that has none, is rejected (`ValidateObjectMetaUpdate`; for
/// custom resources it runs twice, once more in the CR strategy, so each cause comes twice).
pub fn restore_server_fields(t: &Target, live: &Value, new: &mut Value) -> ApiResult<()> {
    let subject = t.info.subject(t.name());
    {
        let lmd = meta::metadata(live).cloned().unwrap_or_default();
        let md = metadata_mut(new);
        let mut causes = Vec::new();
        if let Some(uid) = md.get("uid").and_then(Value::as_str) {
            if !uid.is_empty() && Some(uid) != lmd.get("uid").and_then(Value::as_str) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {uid:?}: field is immutable"),
                    "metadata.uid",
                ));
            }
        }
        if !lmd.contains_key("deletionTimestamp") {
            if let Some(ts) = md.get("deletionTimestamp").filter(|v| !v.is_null()) {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {ts}: field is immutable"),
                    "metadata.deletionTimestamp",
                ));
            }
        }
        if !causes.is_empty() {
            if t.info.is_custom() {
                causes = causes.iter().chain(causes.iter()).cloned().collect();
            }
            return Err(ApiError::invalid(&subject, causes));
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match lmd.get(k) {
                Some(v) => {
                    md.insert(k.into(), v.clone());
                }
                None => {
                    md.remove(k);
                }
            }
        }
        md.remove("selfLink");
    }
    Ok(())
}

/// `obj` without `metadata.resourceVersion` and managedFields timestamps,
/// for no-op detection.
fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        if let Some(Value::Array(mf)) = md.get_mut("managedFields") {
            for e in mf {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    v
}

/// Everything but metadata (and status when it is a subresource): what
/// bumps `metadata.generation`.
fn generation_relevant(obj: &Value, has_status: bool) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    m.remove("apiVersion");
    m.remove("kind");
    if has_status {
        m.remove("status");
    }
    m
}

/// The update path shared by PUT and PATCH: `live` and `new` are in served form.
pub fn finish_update(
    inner: &mut Inner,
    t: &Target,
    live: &Value,
    mut new: Value,
    opts: &WriteOpts,
) -> ApiResult<(Value, Vec<String>)> {
    let subject = t.info.subject(t.name());
    if t.is_status() {
        // status_strategy: the old object with only the new status (and managedFields).
        let mut base = live.clone();
        let status = new.get("status").cloned();
        match status {
            Some(s) => {
                base["status"] = s;
            }
            None => {
                base.as_object_mut().unwrap().remove("status");
            }
        }
        let mf = meta::metadata(&new)
            .and_then(|m| m.get("managedFields"))
            .cloned();
        match mf {
            Some(mf) => {
                metadata_mut(&mut base).insert("managedFields".into(), mf);
            }
            None => {
                metadata_mut(&mut base).remove("managedFields");
            }
        }
        new = base;
    } else if t.info.has_status {
        match live.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().unwrap().remove("status");
            }
        }
    }
    restore_server_fields(t, live, &mut new)?;
    let mut warnings = admit(inner, t, &mut new, Some(live), opts.fv)?;
    let causes = validate_metadata(t, &new);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&subject, causes));
    }
    if meta::is_deleting(live) {
        let old_f = meta::finalizers(live);
        let added: Vec<String> = meta::finalizers(&new)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !added.is_empty() {
            let list = added
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::invalid(
                &subject,
                vec![Cause::new(
                    "FieldValueForbidden",
                    format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"),
                    "metadata.finalizers",
                )],
            ));
        }
    }
    if !t.is_status() {
        warnings.extend(finalizer_warnings(t, &new));
    }
    let annotations_changed = || {
        t.info
            .builtin()
            .is_some_and(crate::builtins::annotations_bump_generation)
            && live["metadata"].get("annotations") != new["metadata"].get("annotations")
    };
    if t.info.tracks_generation()
        && (generation_relevant(live, t.info.has_status)
            != generation_relevant(&new, t.info.has_status)
            || annotations_changed())
    {
        let g = live["metadata"]["generation"].as_i64().unwrap_or(0);
        metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    meta::omit_empty(&mut new);
    if comparable(live) == comparable(&new) {
        // No-op: nothing is written, no new resourceVersion, no event.
        return Ok((live.clone(), warnings));
    }
    if opts.dry_run {
        return Ok((new, warnings));
    }
    if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !has_spec_finalizers(t, &new)
    {
        let key = t.info.store_key();
        if let Some(last) = inner.store.delete(&key, t.ns(), t.name()) {
            after_commit(inner, &key);
            let mut out = new;
            metadata_mut(&mut out).insert(
                "resourceVersion".into(),
                last["metadata"]["resourceVersion"].clone(),
            );
            return Ok((out, warnings));
        }
    }
    Ok((commit(inner, t, new), warnings))
}

/// Namespaces also wait for `spec.finalizers`.
pub fn has_spec_finalizers(t: &Target, obj: &Value) -> bool {
    t.info.builtin() == Some(Builtin::Namespace)
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
}

#[derive(PartialEq)]
enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

fn unsupported_patch(t: &Target) -> ApiError {
    let mut types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    if t.info.supports_smp() {
        types.push("application/strategic-merge-patch+json");
    }
    ApiError::unsupported_media_type(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        types.join(", ")
    ))
}

pub fn patch(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let kind = match req.content_type().as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" if t.info.supports_smp() => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
        _ => return Err(unsupported_patch(t)),
    };
    let opts = write_opts(req, "PatchOptions")?;
    let popts_err = |field: &str, reason: &str, msg: &str| {
        options_invalid("PatchOptions", vec![Cause::new(reason, msg, field)])
    };
    if kind == PatchKind::Apply {
        if req.query.get("fieldManager").unwrap_or("").is_empty() {
            return Err(popts_err(
                "fieldManager",
                "FieldValueRequired",
                "Required value: is required for apply patch",
            ));
        }
    } else if req.query.has("force") {
        return Err(popts_err(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    let mut warnings = Vec::new();
    let patch_doc: Value = if kind == PatchKind::Apply {
        serde_yaml::from_slice::<Value>(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        let (v, w) = decode_json(req, &t.info.kind, opts.fv)?;
        warnings.extend(w);
        v
    };
    let subject = t.info.subject(t.name());
    let mut inner = shared.inner.lock().unwrap();
    let live = inner
        .store
        .get(&t.info.store_key(), t.ns(), t.name())
        .map(|v| present(&t.info, v));

    if kind == PatchKind::Apply {
        let mut applied = patch_doc;
        check_type_meta(t, &mut applied)?;
        {
            let md = metadata_mut(&mut applied);
            if let Some(n) = md.get("name").and_then(Value::as_str) {
                if n != t.name() {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({})",
                        t.name()
                    )));
                }
            }
        }
        check_name_ns(t, &mut applied, false)?;
        if meta::metadata(&applied).is_some_and(|m| m.contains_key("managedFields")) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        warnings.extend(prune_unknown(t, &mut applied, opts.fv)?);
        let Some(live) = live else {
            if t.is_status() {
                return Err(ApiError::not_found(&subject));
            }
            metadata_mut(&mut applied).insert("name".into(), json!(t.name()));
            let created = with_fm(t, &opts.manager, |input| {
                ext::apply(None, &applied, opts.force, input)
            })
            .map_err(apply_error)?;
            let (out, w) = create_locked(&mut inner, t, created, &opts, true)?;
            warnings.extend(w);
            return Ok(Reply::json(201, &out).with_warnings(&warnings));
        };
        if let Some(rv) = meta::meta_str(&applied, "resourceVersion").filter(|s| !s.is_empty()) {
            if Some(rv) != meta::meta_str(&live, "resourceVersion") {
                return Err(ApiError::conflict(&subject));
            }
        }
        let new = with_fm(t, &opts.manager, |input| {
            ext::apply(Some(&live), &applied, opts.force, input)
        })
        .map_err(apply_error)?;
        let (out, w) = finish_update(&mut inner, t, &live, new, &opts)?;
        warnings.extend(w);
        return Ok(Reply::json(200, &out).with_warnings(&warnings));
    }

    let live = live.ok_or_else(|| ApiError::not_found(&subject))?;
    let live_rv = meta::meta_str(&live, "resourceVersion")
        .unwrap_or("")
        .to_string();
    let mut new = live.clone();
    match kind {
        PatchKind::Merge => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            ext::merge_patch(&mut new, &patch_doc)
        }
        PatchKind::Strategic => {
            let b = t
                .info
                .builtin()
                .expect("SMP is only accepted for built-ins");
            ext::strategic_merge_patch(b, &mut new, &patch_doc).map_err(patch_error)?
        }
        PatchKind::Json => new = ext::json_patch(&live, &patch_doc).map_err(patch_error)?,
        PatchKind::Apply => unreachable!(),
    }
    // metadata.resourceVersion in the patch is a precondition.
    match meta::meta_str(&new, "resourceVersion") {
        Some(rv) if !rv.is_empty() && rv != live_rv => return Err(ApiError::conflict(&subject)),
        _ => {}
    }
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the patched object is not a JSON object",
        ));
    }
    check_type_meta(t, &mut new)?;
    check_name_ns(t, &mut new, true)?;
    warnings.extend(prune_unknown(t, &mut new, opts.fv)?);
    restore_server_fields(t, &live, &mut new)?;
    with_fm(t, &opts.manager, |input| {
        ext::record_update(Some(&live), &mut new, input)
    });
    let (out, w) = finish_update(&mut inner, t, &live, new, &opts)?;
    warnings.extend(w);
    Ok(Reply::json(200, &out).with_warnings(&warnings))
}

fn patch_error(e: ext::PatchError) -> ApiError {
    match e.code() {
        400 => ApiError::bad_request(e.to_string()),
        code => ApiError::new(code, "Invalid", e.to_string()),
    }
}

fn apply_error(e: ext::ApplyError) -> ApiError {
    let status = e.status();
    let code = e.code();
    ApiError {
        code,
        reason: status["reason"].as_str().unwrap_or("").to_string(),
        message: status["message"]
            .as_str()
            .unwrap_or(&e.to_string())
            .to_string(),
        details: status.get("details").cloned(),
        headers: vec![],
    }
}
