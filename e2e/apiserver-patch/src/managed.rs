//! `metadata.managedFields`: decoding entries from an object, encoding them back in the
//! apiserver's order (Apply entries before Update entries, then by time, manager, apiVersion,
//! subresource), dropping empty entries and omitting an empty list.

use serde_json::{Map, Value};

use crate::fieldpath::FieldSet;

/// The operation of a managedFields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (POST, PUT, merge/JSON/strategic patch).
    Update,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One decoded managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: Option<String>,
    pub time: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    /// Whether this entry belongs to the given manager identity (structured-merge-diff's
    /// manager identifier: the apiVersion counts only for Update entries).
    pub fn is(
        &self,
        manager: &str,
        operation: Operation,
        subresource: Option<&str>,
        api_version: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }
}

/// The managedFields entries of `obj` (unreadable entries are skipped).
pub(crate) fn decode(obj: &Value) -> Vec<Entry> {
    let Some(Value::Array(items)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = Vec::new();
    for item in items {
        let Some(entry) = decode_entry(item) else {
            continue;
        };
        let subresource = entry.subresource.clone();
        match out.iter_mut().find(|e| {
            e.is(
                &entry.manager,
                entry.operation,
                subresource.as_deref(),
                &entry.api_version,
            )
        }) {
            Some(existing) => existing.set.union_with(&entry.set),
            None => out.push(entry),
        }
    }
    out
}

fn decode_entry(item: &Value) -> Option<Entry> {
    let m = item.as_object()?;
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let operation = match text("operation")?.as_str() {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return None,
    };
    if text("fieldsType").is_some_and(|t| t != "FieldsV1") {
        return None;
    }
    let set = match m.get("fieldsV1") {
        Some(v) => FieldSet::from_fields_v1(v)?,
        None => FieldSet::default(),
    };
    Some(Entry {
        manager: text("manager").unwrap_or_default(),
        operation,
        api_version: text("apiVersion").unwrap_or_default(),
        subresource: text("subresource").filter(|s| !s.is_empty()),
        time: text("time"),
        set,
    })
}

/// Sort like the apiserver's `sortEncodedManagedFields`.
pub(crate) fn sort(entries: &mut [Entry]) {
    entries.sort_by(|p, q| {
        p.operation
            .as_str()
            .cmp(q.operation.as_str())
            .then_with(|| {
                p.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.time.as_deref().unwrap_or(""))
            })
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
}

/// Drop empty entries, sort, and encode; `None` when nothing is left.
pub(crate) fn encode(entries: &mut Vec<Entry>) -> Option<Value> {
    for e in entries.iter_mut() {
        e.set.normalize();
    }
    entries.retain(|e| !e.set.is_empty());
    if entries.is_empty() {
        return None;
    }
    sort(entries);
    Some(Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), Value::String(e.manager.clone()));
                m.insert(
                    "operation".into(),
                    Value::String(e.operation.as_str().into()),
                );
                m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
                if let Some(t) = &e.time {
                    m.insert("time".into(), Value::String(t.clone()));
                }
                m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if let Some(s) = &e.subresource {
                    m.insert("subresource".into(), Value::String(s.clone()));
                }
                Value::Object(m)
            })
            .collect(),
    ))
}

/// Write `managed` into `obj.metadata.managedFields`, or remove the field when `None`.
pub(crate) fn store(obj: &mut Value, managed: Option<Value>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    match managed {
        Some(v) => {
            meta.insert("managedFields".into(), v);
        }
        None => {
            meta.remove("managedFields");
        }
    }
}

/// `obj` without `metadata.managedFields`.
pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    store(&mut out, None);
    out
}

/// The most Update entries kept before the oldest are merged (`DefaultMaxUpdateManagers`).
pub(crate) const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager name of merged old Update entries.
pub(crate) const ANCIENT_CHANGES: &str = "ancient-changes";

/// `capmanagers.go`: while there are more than [`MAX_UPDATE_MANAGERS`] Update entries, merge
/// the oldest ones into one `ancient-changes` Update entry per apiVersion (the first, oldest
/// entry of a version becomes the bucket when the second one arrives; the bucket takes the time
/// of the newest entry merged into it).
pub(crate) fn cap_update_managers(entries: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&i, &j| {
        let (p, q) = (&entries[i], &entries[j]);
        p.time
            .as_deref()
            .unwrap_or("")
            .cmp(q.time.as_deref().unwrap_or(""))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    let mut length = updaters.len();
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut removed = vec![false; entries.len()];
    for &i in &updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        let Some(&(_, first)) = first_of_version.iter().find(|(v, _)| *v == version) else {
            first_of_version.push((version, i));
            continue;
        };
        let bucket = match (0..entries.len()).find(|&b| {
            !removed[b] && entries[b].is(ANCIENT_CHANGES, Operation::Update, None, &version)
        }) {
            Some(b) => b,
            None => {
                // The first entry of this version becomes the bucket.
                let e = &mut entries[first];
                e.manager = ANCIENT_CHANGES.to_string();
                e.subresource = None;
                first
            }
        };
        let set = entries[i].set.clone();
        let time = entries[i].time.clone();
        entries[bucket].set.union_with(&set);
        entries[bucket].time = time;
        removed[i] = true;
        length -= 1;
    }
    let mut k = 0;
    entries.retain(|_| {
        k += 1;
        !removed[k - 1]
    });
}
