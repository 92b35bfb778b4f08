//! Field paths and field sets in the apiserver's `FieldsV1` format.
//!
//! A [`FieldSet`] is a tree keyed by the `FieldsV1` key of each path element: `f:<name>` for a
//! map member, `k:<json object>` for an item of a `map` list (its key fields, sorted by name),
//! `v:<json>` for an item of a `set` list, `i:<n>` for an index. A node that is itself a member
//! of the set and also has children is serialised with a `.` child, a member without children
//! as `{}`: `{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`.
//!
//! Conflict paths print the way structured-merge-diff prints them: `.spec.x`,
//! `.status.conditions[type="Ready"].status`, `.metadata.finalizers[="a"]`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One step of a path into an object, as structured-merge-diff names it.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    /// A member of a map or struct: `f:name`, printed `.name`.
    Field(String),
    /// An item of a `map` list, by its key fields (sorted by name): `k:{"type":"Ready"}`.
    Key(Vec<(String, Value)>),
    /// An item of a `set` list, by value: `v:"a"`.
    Value(Value),
    /// An item of a list by index: `i:0`. Part of the `FieldsV1` format; this crate's walks never
    /// produce it, because atomic lists are owned whole and not descended.
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut sorted: Vec<_> = fields.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                let body: Vec<String> = sorted
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_json(&Value::String(k.clone())), go_json(v)))
                    .collect();
                format!("k:{{{}}}", body.join(","))
            }
            PathElement::Value(v) => format!("v:{}", go_json(v)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }
}

/// JSON the way Go's `encoding/json` writes it: compact, with `<`, `>`, `&`, U+2028 and U+2029
/// escaped. Object keys come out sorted (serde_json's map is ordered by key here).
pub(crate) fn go_json(v: &Value) -> String {
    let s = serde_json::to_string(v).expect("a Value always serialises");
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    // These characters can only occur inside JSON strings, where the escapes are equivalent.
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A set of field paths, as a tree keyed by `FieldsV1` keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// Whether the path of this node is itself in the set.
    pub member: bool,
    /// Children by `FieldsV1` key.
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    pub fn child(&self, key: &str) -> Option<&FieldSet> {
        self.children.get(key)
    }

    pub fn child_mut(&mut self, key: &str) -> &mut FieldSet {
        self.children.entry(key.to_string()).or_default()
    }

    /// Add `path` as a member.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for key in path {
            node = node.child_mut(key);
        }
        node.member = true;
    }

    /// Remove the whole subtree at `path`.
    pub fn remove_subtree(&mut self, path: &[String]) {
        let Some((last, parents)) = path.split_last() else {
            *self = FieldSet::default();
            return;
        };
        let mut node = self;
        for key in parents {
            match node.children.get_mut(key) {
                Some(child) => node = child,
                None => return,
            }
        }
        node.children.remove(last);
    }

    /// Clear the member flag of `path` (its children stay).
    pub fn remove_member(&mut self, path: &[String]) {
        let mut node = self;
        for key in path {
            match node.children.get_mut(key) {
                Some(child) => node = child,
                None => return,
            }
        }
        node.member = false;
    }

    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (key, child) in &other.children {
            self.child_mut(key).union_with(child);
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            let rest = match other.children.get(key) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(key.clone(), rest);
            }
        }
        out
    }

    /// Members of both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            if let Some(o) = other.children.get(key) {
                let both = child.intersection(o);
                if !both.is_empty() {
                    out.children.insert(key.clone(), both);
                }
            }
        }
        out
    }

    /// Drop empty subtrees.
    pub fn normalize(&mut self) {
        for child in self.children.values_mut() {
            child.normalize();
        }
        self.children.retain(|_, c| !c.is_empty());
    }

    /// Member paths in structured-merge-diff's iteration order: at each level, the members
    /// first (sorted), then the children's subtrees (sorted).
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_members(&mut Vec::new(), &mut out);
        out
    }

    fn collect_members(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (key, child) in &self.children {
            if child.member {
                let mut path = prefix.clone();
                path.push(key.clone());
                out.push(path);
            }
        }
        for (key, child) in &self.children {
            if !child.children.is_empty() {
                prefix.push(key.clone());
                child.collect_members(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        if self.member && !self.children.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        for (key, child) in &self.children {
            if !child.is_empty() {
                out.insert(key.clone(), child.to_fields_v1());
            }
        }
        Value::Object(out)
    }

    /// Parse a `fieldsV1` object (the root is never a member).
    pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
        let mut root = Self::parse_node(v)?;
        root.member = false;
        root.normalize();
        Some(root)
    }

    fn parse_node(v: &Value) -> Option<FieldSet> {
        let Value::Object(m) = v else { return None };
        let mut node = FieldSet {
            member: m.is_empty(),
            children: BTreeMap::new(),
        };
        for (key, child) in m {
            if key == "." {
                node.member = true;
            } else {
                node.children.insert(key.clone(), Self::parse_node(child)?);
            }
        }
        Some(node)
    }
}

/// Print a path of `FieldsV1` keys the way structured-merge-diff prints a `fieldpath.Path`.
pub(crate) fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for key in path {
        if let Some(name) = key.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(json) = key.strip_prefix("k:") {
            let fields: Vec<String> = match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", go_json(v)))
                    .collect(),
                _ => vec![json.to_string()],
            };
            out.push_str(&format!("[{}]", fields.join(",")));
        } else if let Some(json) = key.strip_prefix("v:") {
            out.push_str(&format!("[={json}]"));
        } else if let Some(i) = key.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        } else {
            out.push_str(key);
        }
    }
    out
}

/// Navigate `value` along `FieldsV1` keys (`f:`, `k:`, `v:`, `i:`).
pub(crate) fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = value;
    for key in path {
        node = if let Some(name) = key.strip_prefix("f:") {
            node.as_object()?.get(name)?
        } else if let Some(i) = key.strip_prefix("i:") {
            node.as_array()?.get(i.parse::<usize>().ok()?)?
        } else if let Some(json) = key.strip_prefix("v:") {
            let wanted: Value = serde_json::from_str(json).ok()?;
            node.as_array()?.iter().find(|item| **item == wanted)?
        } else if let Some(json) = key.strip_prefix("k:") {
            let Value::Object(wanted) = serde_json::from_str::<Value>(json).ok()? else {
                return None;
            };
            node.as_array()?.iter().find(|item| {
                wanted
                    .iter()
                    .all(|(k, v)| item.get(k).is_some_and(|iv| iv == v))
            })?
        } else {
            return None;
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_members_with_children_as_dots() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:type": {}}}}});
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(set.members().len(), 4);
    }

    #[test]
    fn paths_print_like_structured_merge_diff() {
        let key = PathElement::Key(vec![("type".into(), json!("Ready"))]).fields_v1_key();
        assert_eq!(key, "k:{\"type\":\"Ready\"}");
        let path = vec![
            "f:status".to_string(),
            "f:conditions".into(),
            key,
            "f:status".into(),
        ];
        assert_eq!(
            path_string(&path),
            ".status.conditions[type=\"Ready\"].status"
        );
        let set_item = PathElement::Value(json!("a<b")).fields_v1_key();
        assert_eq!(set_item, "v:\"a\\u003cb\"");
        assert_eq!(path_string(&["f:spec".into(), "i:2".into()]), ".spec[2]");
    }

    #[test]
    fn multi_field_keys_are_sorted_by_name() {
        let key = PathElement::Key(vec![
            ("protocol".into(), json!("TCP")),
            ("port".into(), json!(80)),
        ]);
        assert_eq!(key.fields_v1_key(), "k:{\"port\":80,\"protocol\":\"TCP\"}");
        assert_eq!(
            path_string(&[key.fields_v1_key()]),
            "[port=80,protocol=\"TCP\"]"
        );
    }

    #[test]
    fn difference_and_intersection_work_on_members_not_prefixes() {
        let a =
            FieldSet::from_fields_v1(&json!({"f:spec": {".": {}, "f:x": {}, "f:y": {}}})).unwrap();
        let b = FieldSet::from_fields_v1(&json!({"f:spec": {"f:x": {}}})).unwrap();
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:spec": {".": {}, "f:y": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:spec": {"f:x": {}}})
        );
    }
}
