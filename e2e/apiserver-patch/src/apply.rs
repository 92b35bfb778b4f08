//! Server-side apply and the Update bookkeeping of `metadata.managedFields`, after the
//! apiserver's field manager (structured-merge-diff plus the wrappers in
//! `k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` and
//! `k8s.io/apimachinery/pkg/util/managedfields/internal`).
//!
//! * Apply: the applied configuration's field set becomes the manager's Apply entry; the
//!   configuration is merged onto the live object (maps granular unless atomic, lists atomic
//!   unless `set`/`map`); fields the manager applied last time and omits now are removed unless
//!   another manager owns them; a changed field owned by another manager is a conflict unless
//!   `force`, which transfers it; an unchanged value is shared.
//! * Update: the writer takes every field it added or changed; other managers lose those fields
//!   and every removed field; Update never conflicts.
//! * The identity fields (`apiVersion`, `kind`, `metadata.name`, `namespace`, `uid`,
//!   `resourceVersion`, `generation`, `creationTimestamp`, `selfLink`, `managedFields`) are never
//!   owned (`stripMetaManager`).
//! * Reset fields ([`WriteScope`]) are neither owned nor changed (`GetResetFields`).
//! * Timestamps change only when the write changed the object, so a no-op write returns the
//!   live object unchanged, managedFields included.
//! * kubectl's client-side→server-side migration (`lastappliedmanager.go`) and its annotation
//!   upkeep (`lastappliedupdater.go`) for the manager `kubectl`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{ApplyError, Conflict};
use crate::fieldpath::{go_json, path_string, value_at, FieldSet, PathElement};
use crate::managed::{self, Entry, Operation};
use crate::schema::{ListSemantics, ListType, WithObjectMeta};

/// Which part of the object a write may touch; the rest are the "reset fields" of
/// `GetResetFields`: neither owned by the write nor changed by an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteScope<'a> {
    /// The whole object (built-in kinds, CRDs without a status subresource).
    All,
    /// Everything but these top-level fields (main endpoint of a CRD with a status
    /// subresource: `Except(&["status"])`).
    Except(&'a [&'a str]),
    /// Only these top-level fields (the `/status` endpoint: `Only(&["status"])`).
    Only(&'a [&'a str]),
}

impl WriteScope<'static> {
    /// The main endpoint of a resource with a status subresource: `status` is reset.
    pub const MAIN_WITH_STATUS: WriteScope<'static> = WriteScope::Except(&["status"]);
    /// The `/status` subresource: everything but `status` (spec, metadata, ...) is reset.
    pub const STATUS: WriteScope<'static> = WriteScope::Only(&["status"]);
}

impl WriteScope<'_> {
    /// Whether the top-level field `name` may be written.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            WriteScope::All => true,
            WriteScope::Except(reset) => !reset.contains(&name),
            WriteScope::Only(kept) => kept.contains(&name),
        }
    }

    fn filter(&self, set: &mut FieldSet) {
        set.children.retain(|key, _| match key.strip_prefix("f:") {
            Some(name) => self.allows(name),
            None => true,
        });
    }
}

/// What the server tells the field manager about a write.
pub struct FieldManagerInput<'a> {
    /// The `fieldManager` (or user-agent-derived) manager name.
    pub manager: &'a str,
    /// `Some("status")` for a `/status` write.
    pub subresource: Option<&'a str>,
    /// The apiVersion of the endpoint (`example.com/v1`, `v1`).
    pub api_version: &'a str,
    /// The current time, RFC 3339 in whole seconds (`2026-11-20T23:30:00Z`).
    pub now: &'a str,
    /// List and map semantics of the kind.
    pub schema: &'a dyn ListSemantics,
    /// Which part of the object this write may touch.
    pub scope: WriteScope<'a>,
}

/// The kubectl client-side apply annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Metadata fields never recorded in managedFields (`stripMetaManager`).
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Remove the never-owned paths from a set.
fn strip(set: &mut FieldSet) {
    set.remove_subtree(&["f:apiVersion".into()]);
    set.remove_subtree(&["f:kind".into()]);
    set.remove_member(&["f:metadata".into()]);
    for f in STRIPPED_META {
        set.remove_subtree(&["f:metadata".into(), format!("f:{f}")]);
    }
    set.normalize();
}

/// Value walks that need the schema.
struct Walker<'a> {
    schema: WithObjectMeta<'a>,
}

/// Added, changed and removed paths between two objects (structured-merge-diff `Comparison`).
#[derive(Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn filter(&mut self, scope: &WriteScope) {
        for set in [&mut self.added, &mut self.modified, &mut self.removed] {
            strip(set);
            scope.filter(set);
        }
    }
    fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

impl Walker<'_> {
    fn map_is_atomic(&self, pes: &[PathElement]) -> bool {
        self.schema.map_is_atomic_at(pes)
    }

    /// The path elements of a non-atomic list's items, or `None` when the list is atomic (by
    /// schema, or because items lack their keys or repeat: treated as atomic).
    fn list_elements(&self, pes: &[PathElement], items: &[Value]) -> Option<Vec<PathElement>> {
        let elements: Vec<PathElement> = match self.schema.list_type_at(pes) {
            ListType::Atomic => return None,
            ListType::Set => items
                .iter()
                .map(|item| match item {
                    Value::Object(_) | Value::Array(_) => None,
                    scalar => Some(PathElement::Value(scalar.clone())),
                })
                .collect::<Option<_>>()?,
            ListType::Map { keys } => {
                if keys.is_empty() {
                    return None;
                }
                items
                    .iter()
                    .map(|item| {
                        let obj = item.as_object()?;
                        let mut fields = keys
                            .iter()
                            .map(|k| {
                                Some((k.clone(), obj.get(k).filter(|v| !v.is_null())?.clone()))
                            })
                            .collect::<Option<Vec<_>>>()?;
                        fields.sort_by(|a, b| a.0.cmp(&b.0));
                        Some(PathElement::Key(fields))
                    })
                    .collect::<Option<_>>()?
            }
        };
        let distinct: BTreeSet<String> = elements.iter().map(PathElement::fields_v1_key).collect();
        (distinct.len() == elements.len()).then_some(elements)
    }

    /// The field set of an applied configuration (structured-merge-diff `ToFieldSet`), at the
    /// node `set` for the value `v` at `pes`. `owned_as_item` marks list items and entries of
    /// free-form maps, which are members themselves even when they have children.
    fn to_set(
        &self,
        v: &Value,
        pes: &mut Vec<PathElement>,
        set: &mut FieldSet,
        owned_as_item: bool,
    ) {
        match v {
            Value::Object(m) => {
                if m.is_empty() || self.map_is_atomic(pes) {
                    set.member = true;
                    return;
                }
                if owned_as_item {
                    set.member = true;
                }
                let is_struct = self.schema.map_is_struct_at(pes);
                for (k, cv) in m {
                    pes.push(PathElement::Field(k.clone()));
                    self.to_set(cv, pes, set.child_mut(&format!("f:{k}")), !is_struct);
                    pes.pop();
                }
            }
            Value::Array(items) => match self.list_elements(pes, items) {
                None => set.member = true,
                Some(elements) => {
                    for (item, pe) in items.iter().zip(elements) {
                        let key = pe.fields_v1_key();
                        pes.push(pe);
                        let child = set.child_mut(&key);
                        child.member = true;
                        self.to_set(item, pes, child, true);
                        pes.pop();
                    }
                }
            },
            _ => set.member = true,
        }
    }

    fn root_set(&self, v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        self.to_set(v, &mut Vec::new(), &mut set, false);
        set.member = false;
        set.normalize();
        set
    }

    /// Mark `v` and everything under it in `out` (an added or removed subtree).
    fn mark_all(
        &self,
        v: &Value,
        pes: &mut Vec<PathElement>,
        keys: &mut Vec<String>,
        out: &mut FieldSet,
    ) {
        out.insert(keys);
        match v {
            Value::Object(m) if !self.map_is_atomic(pes) => {
                for (k, cv) in m {
                    pes.push(PathElement::Field(k.clone()));
                    keys.push(format!("f:{k}"));
                    self.mark_all(cv, pes, keys, out);
                    keys.pop();
                    pes.pop();
                }
            }
            Value::Array(items) => {
                if let Some(elements) = self.list_elements(pes, items) {
                    for (item, pe) in items.iter().zip(elements) {
                        keys.push(pe.fields_v1_key());
                        pes.push(pe);
                        self.mark_all(item, pes, keys, out);
                        pes.pop();
                        keys.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// structured-merge-diff `Compare`: leaves (and atomic nodes) whose value changed are
    /// modified; added and removed subtrees are marked node by node.
    fn compare(
        &self,
        old: Option<&Value>,
        new: Option<&Value>,
        pes: &mut Vec<PathElement>,
        keys: &mut Vec<String>,
        out: &mut Comparison,
    ) {
        match (old, new) {
            (None, None) => {}
            (None, Some(n)) => self.mark_all(n, pes, keys, &mut out.added),
            (Some(o), None) => self.mark_all(o, pes, keys, &mut out.removed),
            (Some(Value::Object(om)), Some(Value::Object(nm))) if !self.map_is_atomic(pes) => {
                let names: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
                for k in names {
                    pes.push(PathElement::Field(k.clone()));
                    keys.push(format!("f:{k}"));
                    self.compare(om.get(k), nm.get(k), pes, keys, out);
                    keys.pop();
                    pes.pop();
                }
            }
            (Some(o @ Value::Array(oa)), Some(n @ Value::Array(na))) => {
                match (self.list_elements(pes, oa), self.list_elements(pes, na)) {
                    (Some(oe), Some(ne)) => {
                        let index = |items: &[Value], elements: Vec<PathElement>| {
                            items
                                .iter()
                                .cloned()
                                .zip(elements)
                                .map(|(item, pe)| (pe.fields_v1_key(), (pe, item)))
                                .collect::<BTreeMap<_, _>>()
                        };
                        let old_items = index(oa, oe);
                        let new_items = index(na, ne);
                        let all: BTreeSet<&String> =
                            old_items.keys().chain(new_items.keys()).collect();
                        for key in all {
                            let (pe, _) = old_items
                                .get(key)
                                .or_else(|| new_items.get(key))
                                .expect("key from one of them");
                            pes.push(pe.clone());
                            keys.push(key.clone());
                            self.compare(
                                old_items.get(key).map(|(_, v)| v),
                                new_items.get(key).map(|(_, v)| v),
                                pes,
                                keys,
                                out,
                            );
                            keys.pop();
                            pes.pop();
                        }
                    }
                    _ => {
                        if o != n {
                            out.modified.insert(keys);
                        }
                    }
                }
            }
            (Some(o), Some(n)) => {
                if o != n {
                    out.modified.insert(keys);
                }
            }
        }
    }

    fn compare_objects(&self, old: &Value, new: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare(
            Some(old),
            Some(new),
            &mut Vec::new(),
            &mut Vec::new(),
            &mut out,
        );
        out
    }

    /// Merge the applied configuration `applied` onto `live`; `None` removes the field (an
    /// applied `null`).
    fn merge(
        &self,
        live: Option<&Value>,
        applied: &Value,
        pes: &mut Vec<PathElement>,
    ) -> Option<Value> {
        match applied {
            Value::Null => None,
            Value::Object(am) if !self.map_is_atomic(pes) => {
                let mut out = match live {
                    Some(Value::Object(lm)) => lm.clone(),
                    _ => Map::new(),
                };
                for (k, av) in am {
                    pes.push(PathElement::Field(k.clone()));
                    match self.merge(out.get(k), av, pes) {
                        Some(v) => {
                            out.insert(k.clone(), v);
                        }
                        None => {
                            out.remove(k);
                        }
                    }
                    pes.pop();
                }
                Some(Value::Object(out))
            }
            Value::Array(aa) => {
                let Some(Value::Array(la)) = live else {
                    return Some(
                        self.merge_list(&[], aa, pes)
                            .unwrap_or_else(|| applied.clone()),
                    );
                };
                Some(
                    self.merge_list(la, aa, pes)
                        .unwrap_or_else(|| applied.clone()),
                )
            }
            _ => Some(applied.clone()),
        }
    }

    /// Merge two associative lists: shared items take the applied order, live-only items keep
    /// their place relative to them, applied-only items come where the configuration puts them.
    /// `None` when the list is atomic.
    fn merge_list(
        &self,
        live: &[Value],
        applied: &[Value],
        pes: &mut Vec<PathElement>,
    ) -> Option<Value> {
        let le = self.list_elements(pes, live)?;
        let ae = self.list_elements(pes, applied)?;
        let lk: Vec<String> = le.iter().map(PathElement::fields_v1_key).collect();
        let ak: Vec<String> = ae.iter().map(PathElement::fields_v1_key).collect();
        let live_by_key: BTreeMap<&String, &Value> = lk.iter().zip(live).collect();
        let applied_keys: BTreeSet<&String> = ak.iter().collect();
        let mut shared = ak.iter().filter(|k| live_by_key.contains_key(k));
        let mut next_shared = shared.next();
        let mut done: BTreeSet<&String> = BTreeSet::new();
        let mut out = Vec::with_capacity(live.len() + applied.len());
        let (mut i, mut j) = (0, 0);
        let take_applied = |j: usize, out: &mut Vec<Value>, pes: &mut Vec<PathElement>| {
            pes.push(ae[j].clone());
            if let Some(v) = self.merge(live_by_key.get(&ak[j]).copied(), &applied[j], pes) {
                out.push(v);
            }
            pes.pop();
        };
        while i < live.len() || j < applied.len() {
            if i < live.len() && j < applied.len() {
                if lk[i] == ak[j] {
                    done.insert(&ak[j]);
                    take_applied(j, &mut out, pes);
                    i += 1;
                    j += 1;
                    next_shared = shared.next();
                    continue;
                }
                if applied_keys.contains(&lk[i]) && next_shared.is_some_and(|n| *n != lk[i]) {
                    i += 1;
                    continue;
                }
            }
            if i < live.len() {
                if !applied_keys.contains(&lk[i]) {
                    out.push(live[i].clone());
                    i += 1;
                    continue;
                }
                if done.contains(&lk[i]) {
                    i += 1;
                    continue;
                }
            }
            if j < applied.len() {
                done.insert(&ak[j]);
                take_applied(j, &mut out, pes);
                if next_shared.is_some_and(|n| *n == ak[j]) {
                    next_shared = shared.next();
                }
                j += 1;
            }
        }
        Some(Value::Array(out))
    }

    /// Remove from `v` what the applier owned last time (`last`) and nobody owns now (`owned`).
    /// Returns whether `v` itself must go. `named` is true for declared struct fields, which go
    /// when nothing under them is owned any more (structured-merge-diff's
    /// `EnsureNamedFieldsAreMembers` in `prune`); list items and free-form map entries go when
    /// they were applied last time and are not owned now.
    fn prune(
        &self,
        v: &mut Value,
        pes: &mut Vec<PathElement>,
        last: &FieldSet,
        owned: Option<&FieldSet>,
        named: bool,
    ) -> bool {
        let owned_member = owned.is_some_and(|o| o.member);
        let owned_any = owned.is_some_and(|o| !o.is_empty());
        match v {
            Value::Object(m) if !last.children.is_empty() && !self.map_is_atomic(pes) => {
                let is_struct = self.schema.map_is_struct_at(pes);
                for (key, last_child) in &last.children {
                    let Some(name) = key.strip_prefix("f:") else {
                        continue;
                    };
                    let Some(child) = m.get_mut(name) else {
                        continue;
                    };
                    pes.push(PathElement::Field(name.to_string()));
                    let gone = self.prune(
                        child,
                        pes,
                        last_child,
                        owned.and_then(|o| o.child(key)),
                        is_struct,
                    );
                    pes.pop();
                    if gone {
                        m.remove(name);
                    }
                }
            }
            Value::Array(items) if !last.children.is_empty() => {
                if let Some(elements) = self.list_elements(pes, items) {
                    let mut keep = Vec::with_capacity(items.len());
                    for (mut item, pe) in std::mem::take(items).into_iter().zip(elements) {
                        let key = pe.fields_v1_key();
                        let gone = match last.child(&key) {
                            Some(last_item) => {
                                pes.push(pe);
                                let gone = self.prune(
                                    &mut item,
                                    pes,
                                    last_item,
                                    owned.and_then(|o| o.child(&key)),
                                    false,
                                );
                                pes.pop();
                                gone
                            }
                            None => false,
                        };
                        if !gone {
                            keep.push(item);
                        }
                    }
                    *items = keep;
                }
            }
            _ => {}
        }
        if named {
            !owned_any
        } else {
            last.member && !owned_member
        }
    }
}

/// Server-side apply of `applied` onto `live` (`None` = create).
///
/// Returns the merged object with its updated `metadata.managedFields`, or the error the server
/// must answer with ([`ApplyError::code`], [`ApplyError::status`]). When the apply changes
/// nothing (same manager, same fields, same values), the result equals `live` exactly,
/// managedFields timestamps included, so the server can skip the write.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    input: &FieldManagerInput,
) -> Result<Value, ApplyError> {
    let Value::Object(applied_members) = applied else {
        return Err(ApplyError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApplyError::ManagedFieldsSet);
    }
    let version = applied_members
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if version != input.api_version {
        return Err(ApplyError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {version}, expected: {}",
            input.api_version
        )));
    }
    match apply_once(live, applied, force, input) {
        Err(ApplyError::Conflicts(conflicts)) if input.manager == "kubectl" && !force => {
            let allowed = allowed_by_last_applied(live, input);
            let remaining: Vec<Conflict> = conflicts
                .iter()
                .filter(|c| !allowed.iter().any(|a| a == &c.field))
                .cloned()
                .collect();
            if remaining.is_empty() {
                apply_once(live, applied, true, input)
            } else {
                Err(ApplyError::Conflicts(remaining))
            }
        }
        other => other,
    }
}

fn apply_once(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    input: &FieldManagerInput,
) -> Result<Value, ApplyError> {
    let walker = Walker {
        schema: WithObjectMeta(input.schema),
    };
    let empty = Value::Object(Map::new());
    let live_obj = live.map(managed::without_managed_fields).unwrap_or(empty);
    let mut entries = live.map(managed::decode).unwrap_or_default();

    // The configuration this endpoint may write: reset fields dropped (identity kept on create),
    // and identity metadata that is null (Go clients send `creationTimestamp: null`) ignored.
    let mut config = applied.clone();
    if let Value::Object(m) = &mut config {
        m.retain(|k, _| {
            input.scope.allows(k)
                || (live.is_none() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
        });
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            meta.retain(|k, v| !(v.is_null() && STRIPPED_META.contains(&k.as_str())));
            meta.remove("managedFields");
        }
    }

    let full_set = walker.root_set(&config);
    let mut new_set = full_set.clone();
    strip(&mut new_set);
    input.scope.filter(&mut new_set);

    let me = entries.iter().position(|e| {
        e.is(
            input.manager,
            Operation::Apply,
            input.subresource,
            input.api_version,
        )
    });
    let mut last = me.map(|i| entries[i].set.clone()).unwrap_or_default();
    input.scope.filter(&mut last);

    let mut merged = walker
        .merge(Some(&live_obj), &config, &mut Vec::new())
        .unwrap_or_else(|| Value::Object(Map::new()));

    // Prune what this manager applied before and nobody owns now.
    let mut owned = full_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != me {
            owned.union_with(&e.set);
        }
    }
    owned.union_with(&new_set);
    // Identity metadata is never pruned, even from a body that omits it.
    for f in STRIPPED_META {
        if live_obj.get("metadata").and_then(|m| m.get(*f)).is_some() {
            owned.insert(&["f:metadata".to_string(), format!("f:{f}")]);
        }
    }
    walker.prune(&mut merged, &mut Vec::new(), &last, Some(&owned), false);

    // Who loses what.
    let mut cmp = walker.compare_objects(&live_obj, &merged);
    cmp.filter(&input.scope);
    let changed = cmp.changed();
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == me {
            continue;
        }
        for path in e.set.intersection(&changed).members() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: path_string(&path),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| {
            (&a.manager, a.operation, &a.api_version, &a.subresource).cmp(&(
                &b.manager,
                b.operation,
                &b.api_version,
                &b.subresource,
            ))
        });
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.set = e.set.difference(&changed).difference(&cmp.removed);
        }
    }

    match me {
        Some(i) => {
            let e = &mut entries[i];
            e.set = new_set;
            e.api_version = input.api_version.to_string();
            e.time = Some(input.now.to_string());
        }
        None => entries.push(Entry {
            manager: input.manager.to_string(),
            operation: Operation::Apply,
            api_version: input.api_version.to_string(),
            subresource: input.subresource.map(str::to_string),
            time: Some(input.now.to_string()),
            set: new_set,
        }),
    }
    store_managed(live, &live_obj, &mut merged, entries);

    if input.manager == "kubectl" {
        update_last_applied(live, applied, &mut merged);
    }
    Ok(merged)
}

/// `lastappliedupdater.go`: when `kubectl` applies server-side to an object carrying the
/// client-side annotation, the annotation is rewritten to the applied configuration.
fn update_last_applied(live: Option<&Value>, applied: &Value, merged: &mut Value) {
    let has = live
        .and_then(|l| l.pointer("/metadata/annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(a)) = config.pointer_mut("/metadata/annotations") {
        a.remove(LAST_APPLIED);
    }
    let text = format!("{}\n", go_json(&config));
    if let Some(Value::Object(a)) = merged.pointer_mut("/metadata/annotations") {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// `lastappliedmanager.go`: the conflict paths a `kubectl` server-side apply may force because
/// the client-side annotation set them and live still holds the same value.
fn allowed_by_last_applied(live: Option<&Value>, input: &FieldManagerInput) -> Vec<String> {
    let Some(live) = live else { return Vec::new() };
    let Some(text) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let Ok(last_applied) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let walker = Walker {
        schema: WithObjectMeta(input.schema),
    };
    let set = walker.root_set(&last_applied);
    set.members()
        .into_iter()
        .filter(|path| {
            let before = value_at(&last_applied, path);
            before.is_some() && before == value_at(live, path)
        })
        .map(|path| path_string(&path))
        .collect()
}

/// Record an Update operation (POST, PUT, merge/JSON/strategic patch) by `input.manager` from
/// `old` (`None` = create) to `new`, rewriting `new.metadata.managedFields`.
///
/// The manager takes every field it added or changed (fields set to an equal value keep their
/// owners); other managers lose those fields and every removed field; Update never conflicts.
/// As on the apiserver, managedFields supplied in `new` replace the live ones (`[]` resets them)
/// and absent ones are taken from `old`; on a subresource they are always taken from `old`. An unchanged object keeps `old`'s managedFields exactly.
/// Values are not touched: the server applies its own status/spec copy rules.
pub fn record_update(old: Option<&Value>, new: &mut Value, input: &FieldManagerInput) {
    if !new.get("metadata").is_some_and(Value::is_object) {
        return;
    }
    let walker = Walker {
        schema: WithObjectMeta(input.schema),
    };
    // Subresource writes take managedFields from the live object only (`decodeLiveOrNew` with
    // `ignoreManagedFieldsFromRequestObject`); main-endpoint writes may set them.
    let request_managed = match input.subresource {
        Some(_) => None,
        None => new.pointer("/metadata/managedFields"),
    };
    let mut entries = match request_managed {
        Some(Value::Array(items)) if items.is_empty() => Vec::new(),
        Some(Value::Array(items)) if items.len() == 1 && items[0] == Value::Object(Map::new()) => {
            Vec::new()
        }
        Some(Value::Array(_)) => {
            let decoded = managed::decode(new);
            if decoded.is_empty() {
                old.map(managed::decode).unwrap_or_default()
            } else {
                decoded
            }
        }
        _ => old.map(managed::decode).unwrap_or_default(),
    };
    let old_obj = old
        .map(managed::without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let new_obj = managed::without_managed_fields(new);
    let mut cmp = walker.compare_objects(&old_obj, &new_obj);
    cmp.filter(&input.scope);
    let taken = cmp.changed();
    for e in entries.iter_mut() {
        e.set = e.set.difference(&taken).difference(&cmp.removed);
    }
    if !taken.is_empty() {
        match entries.iter_mut().find(|e| {
            e.is(
                input.manager,
                Operation::Update,
                input.subresource,
                input.api_version,
            )
        }) {
            Some(e) => {
                e.set.union_with(&taken);
                e.time = Some(input.now.to_string());
            }
            None => entries.push(Entry {
                manager: input.manager.to_string(),
                operation: Operation::Update,
                api_version: input.api_version.to_string(),
                subresource: input.subresource.map(str::to_string),
                time: Some(input.now.to_string()),
                set: taken,
            }),
        }
    }
    store_managed(old, &old_obj, new, entries);
}

/// Encode `entries` into `new`, unless the write changed nothing but managedFields timestamps:
/// then `live`'s managedFields are kept verbatim (`IgnoreManagedFieldsTimestampsTransformer`),
/// so the server sees an identical object and skips the write.
fn store_managed(live: Option<&Value>, live_obj: &Value, new: &mut Value, mut entries: Vec<Entry>) {
    managed::cap_update_managers(&mut entries);
    let managed = managed::encode(&mut entries);
    if let Some(live) = live {
        if managed::without_managed_fields(new) == *live_obj {
            let mut before = managed::decode(live);
            let _ = managed::encode(&mut before);
            let timeless = |es: &[Entry]| -> Vec<Entry> {
                let mut out: Vec<Entry> = es
                    .iter()
                    .cloned()
                    .map(|mut e| {
                        e.time = None;
                        e
                    })
                    .collect();
                managed::sort(&mut out);
                out
            };
            if timeless(&before) == timeless(&entries) {
                managed::store(new, live.pointer("/metadata/managedFields").cloned());
                return;
            }
        }
    }
    managed::store(new, managed);
}
