//! GET and LIST: full objects, `PartialObjectMetadata(List)`, `Table`,
//! label/field selectors, and `limit`/`continue` paging over one snapshot.

use super::{partial, present, Target};
use crate::error::{ApiError, ApiResult, Cause, Subject};
use crate::http::negotiate::{negotiate, Repr};
use crate::http::{Reply, Request};
use crate::resources::{Builtin, ResourceInfo};
use crate::selectors::{dotted_value, FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::store::ObjKey;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn get(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let repr = negotiate(req.header("accept")).ok_or_else(not_acceptable)?;
    let inner = shared.inner.lock().unwrap();
    let stored = inner
        .store
        .get(&t.info.store_key(), t.ns(), t.name())
        .ok_or_else(|| ApiError::not_found(&t.info.subject(t.name())))?;
    let obj = present(&t.info, stored);
    let rv = inner.store.rv();
    drop(inner);
    match repr {
        Repr::Full => Ok(Reply::json(200, &obj)),
        Repr::PartialMeta => Ok(Reply::json(200, &partial(&obj))),
        Repr::Table => Ok(Reply::json(
            200,
            &crate::table::table(&t.info, &[obj], &json!({"resourceVersion": rv.to_string()})),
        )),
        Repr::PartialMetaList => Err(not_acceptable()),
    }
}

pub fn not_acceptable() -> ApiError {
    ApiError::not_acceptable("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf")
}

/// Whether `field` is a supported field selector for the resource.
pub fn field_supported(info: &ResourceInfo, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    if let Some(c) = info.custom() {
        return c.selectable_fields.iter().any(|f| f == field);
    }
    match info.builtin() {
        Some(Builtin::CoreEvent | Builtin::EventsV1Event) => matches!(
            field,
            "involvedObject.kind"
                | "involvedObject.namespace"
                | "involvedObject.name"
                | "involvedObject.uid"
                | "involvedObject.apiVersion"
                | "involvedObject.resourceVersion"
                | "involvedObject.fieldPath"
                | "reason"
                | "reportingComponent"
                | "source"
                | "type"
        ),
        Some(Builtin::Secret) => field == "type",
        Some(Builtin::Namespace) => field == "status.phase",
        _ => false,
    }
}

/// The value a field selector compares against, read from the stored object.
pub fn field_value(obj: &Value, field: &str) -> String {
    match field {
        "source" => dotted_value(obj, "source.component"),
        f => dotted_value(obj, f),
    }
}

pub fn selectors(req: &Request, info: &ResourceInfo) -> ApiResult<(LabelSelector, FieldSelector)> {
    let ls = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fs = FieldSelector::parse(req.query.get("fieldSelector").unwrap_or(""), &|f| {
        field_supported(info, f)
    })
    .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

/// Whether a stored object is selected by the namespace and selectors.
pub fn selected(obj: &Value, ns: Option<&str>, ls: &LabelSelector, fs: &FieldSelector) -> bool {
    if let Some(ns) = ns {
        if crate::meta::namespace_of(obj) != ns {
            return false;
        }
    }
    ls.matches_object(obj) && (fs.is_empty() || fs.matches(obj, &field_value))
}

fn list_options_invalid(field: &str, reason: &str, msg: &str) -> ApiError {
    ApiError::invalid(
        &Subject {
            group: "meta.k8s.io".into(),
            resource: "listoptions".into(),
            kind: "ListOptions".into(),
            name: String::new(),
        },
        vec![Cause::new(reason, msg, field)],
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

/// Tokens are unpadded URL-safe base64 of JSON, as kube-apiserver's; one that does not decode is
/// a 400 (a decodable one too old for the history is a 410, [`expired_token`]).
fn encode_continue(tok: &ContinueToken) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(tok).unwrap())
}

fn decode_continue(tok: &str) -> ApiResult<ContinueToken> {
    use base64::Engine;
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => {
                invalid(format!("illegal base64 data at input byte {at}"))
            }
            _ => invalid(format!("illegal base64 data at input byte {}", tok.len())),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

fn expired_token() -> ApiError {
    ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
}

pub fn list(shared: &Arc<Shared>, req: &Request, t: &Target) -> ApiResult<Reply> {
    let repr = negotiate(req.header("accept")).ok_or_else(not_acceptable)?;
    if repr == Repr::PartialMeta {
        return Err(not_acceptable());
    }
    let (ls, fs) = selectors(req, &t.info)?;
    let q = &req.query;
    if q.has("sendInitialEvents") {
        return Err(list_options_invalid(
            "sendInitialEvents",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    let rv_param = q.get("resourceVersion").filter(|s| !s.is_empty());
    let rv_match = q.get("resourceVersionMatch").filter(|s| !s.is_empty());
    if rv_match.is_some() && rv_param.is_none() {
        return Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if let Some(m) = rv_match {
        if m != "Exact" && m != "NotOlderThan" {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "FieldValueNotSupported",
                &format!(
                    "Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
                ),
            ));
        }
    }
    let limit: usize = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        None => 0,
    };
    let cont = q.get("continue").filter(|s| !s.is_empty());
    if cont.is_some() && rv_param.is_some_and(|r| r != "0") {
        return Err(list_options_invalid(
            "resourceVersion",
            "FieldValueForbidden",
            "Forbidden: specifying resource version is not allowed when using continue",
        ));
    }

    let ns_filter = t.namespace.as_deref();
    let key = t.info.store_key();
    let inner = shared.inner.lock().unwrap();
    let current = inner.store.rv();
    // Which snapshot, and where to start.
    let (snap_rv, start): (u64, Option<ObjKey>) = if let Some(tok) = cont {
        let tok = decode_continue(tok)?;
        if tok.rv < inner.store.floor() || tok.rv > current {
            return Err(expired_token());
        }
        (tok.rv, Some((tok.ns, tok.name)))
    } else if rv_match == Some("Exact") {
        let want: u64 = rv_param
            .unwrap()
            .parse()
            .map_err(|_| ApiError::bad_request("invalid resource version"))?;
        if want < inner.store.floor() {
            return Err(ApiError::gone(format!(
                "too old resource version: {want} ({})",
                inner.store.floor()
            )));
        }
        (want.min(current), None)
    } else {
        (current, None)
    };

    // Full lists and PartialObjectMetadataLists are encoded straight from the stored objects,
    // without copying them (a copy is made only for an object that needs defaults or another
    // apiVersion); Tables need the presented objects.
    let mut encoder = match repr {
        Repr::Table => None,
        Repr::PartialMetaList => Some(ListEncoder::new(&t.info, true)),
        _ => Some(ListEncoder::new(&t.info, false)),
    };
    let mut items: Vec<Value> = Vec::new();
    let mut count = 0usize;
    let mut next: Option<ObjKey> = None;
    let mut last: Option<ObjKey> = None;
    let mut remaining: Option<usize> = None;
    {
        let mut consider = |k: &ObjKey, obj: &Value| -> bool {
            if let Some(s) = &start {
                if k <= s {
                    return true;
                }
            }
            if !selected(obj, ns_filter, &ls, &fs) {
                return true;
            }
            if limit > 0 && count >= limit {
                if next.is_none() {
                    next = Some(last.clone().unwrap_or_default());
                }
                return false;
            }
            match &mut encoder {
                Some(e) => e.push(obj),
                None => items.push(present(&t.info, obj)),
            }
            count += 1;
            if limit > 0 {
                last = Some(k.clone());
            }
            true
        };
        if snap_rv == current {
            let iter: Box<dyn Iterator<Item = (&ObjKey, &Value)>> = match &start {
                Some(s) => Box::new(inner.store.iter_after(&key, s)),
                None => Box::new(inner.store.iter(&key)),
            };
            for (k, obj) in iter {
                if !consider(k, obj) {
                    break;
                }
            }
        } else {
            let snap = inner
                .store
                .snapshot_at(&key, snap_rv)
                .ok_or_else(expired_token)?;
            for (k, obj) in snap.iter() {
                if !consider(k, obj) {
                    break;
                }
            }
        }
    }
    // remainingItemCount: only without selectors and across all namespaces
    // (it is optional; counting a namespace's share would cost a scan).
    if let Some(last) = &next {
        if ls.is_empty() && fs.is_empty() && ns_filter.is_none() && snap_rv == current {
            remaining = Some(inner.store.iter_after(&key, last).count());
        }
    }
    drop(inner);

    let mut list_meta = json!({"resourceVersion": snap_rv.to_string()});
    if let Some((ns, name)) = next {
        let tok = encode_continue(&ContinueToken {
            rv: snap_rv,
            ns,
            name,
        });
        list_meta["continue"] = json!(tok);
        if let Some(r) = remaining {
            list_meta["remainingItemCount"] = json!(r);
        }
    }
    if let Some(e) = encoder {
        // A custom resource's full list (unstructured) carries an empty `continue` on its last
        // page; typed lists, PartialObjectMetadataLists and Tables omit it.
        if t.info.is_custom()
            && repr != Repr::PartialMetaList
            && list_meta.get("continue").is_none()
        {
            list_meta["continue"] = json!("");
        }
        return Ok(e.finish(&list_meta));
    }
    Ok(Reply::json(
        200,
        &crate::table::table(&t.info, &items, &list_meta),
    ))
}

/// Encodes a list body item by item from borrowed stored objects:
/// `{"apiVersion":…,"items":[…],"kind":"…List","metadata":…}` (the key order serde_json gives
/// the equivalent `Value`).
struct ListEncoder<'a> {
    info: &'a ResourceInfo,
    api_version: String,
    partial: bool,
    buf: Vec<u8>,
    first: bool,
}

impl<'a> ListEncoder<'a> {
    fn new(info: &'a ResourceInfo, partial: bool) -> Self {
        let list_av = if partial {
            "meta.k8s.io/v1".to_string()
        } else {
            info.api_version()
        };
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"{\"apiVersion\":");
        let _ = serde_json::to_writer(&mut buf, &list_av);
        buf.extend_from_slice(b",\"items\":[");
        ListEncoder {
            info,
            api_version: info.api_version(),
            partial,
            buf,
            first: true,
        }
    }

    /// Whether the stored object is already what a read serves.
    fn served_as_stored(&self, stored: &Value) -> bool {
        if self.info.builtin() == Some(Builtin::EventsV1Event) {
            return false;
        }
        if stored.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str())
            || stored.get("kind").and_then(Value::as_str) != Some(self.info.kind.as_str())
        {
            return false;
        }
        match self.info.custom().and_then(|c| c.schema.as_ref()) {
            Some(schema) => !schema.needs_defaults(stored),
            None => true,
        }
    }

    fn push(&mut self, stored: &Value) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        if self.partial {
            // Metadata is never defaulted by a CRD schema, so the stored one is served.
            self.buf.extend_from_slice(
                b"{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"PartialObjectMetadata\",\"metadata\":",
            );
            match stored.get("metadata") {
                Some(m) => {
                    let _ = serde_json::to_writer(&mut self.buf, m);
                }
                None => self.buf.extend_from_slice(b"{}"),
            }
            self.buf.push(b'}');
            return;
        }
        let owned;
        let obj = if self.served_as_stored(stored) {
            stored
        } else {
            owned = present(self.info, stored);
            &owned
        };
        let _ = if self.info.is_custom() {
            serde_json::to_writer(&mut self.buf, obj)
        } else {
            // Typed lists do not repeat apiVersion/kind on items.
            serde_json::to_writer(&mut self.buf, &WithoutTypeMeta(obj))
        };
    }

    fn finish(mut self, list_meta: &Value) -> Reply {
        let kind = if self.partial {
            "PartialObjectMetadataList".to_string()
        } else {
            format!("{}List", self.info.kind)
        };
        self.buf.extend_from_slice(b"],\"kind\":");
        let _ = serde_json::to_writer(&mut self.buf, &kind);
        self.buf.extend_from_slice(b",\"metadata\":");
        let _ = serde_json::to_writer(&mut self.buf, list_meta);
        self.buf.push(b'}');
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: crate::http::full(self.buf),
        }
    }
}

/// An object without its top-level `apiVersion` and `kind`.
struct WithoutTypeMeta<'a>(&'a Value);

impl serde::Serialize for WithoutTypeMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0.as_object() {
            Some(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "apiVersion" && k != "kind" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            None => self.0.serialize(s),
        }
    }
}
