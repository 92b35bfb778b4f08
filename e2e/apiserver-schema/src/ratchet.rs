//! Validation ratcheting on update (`CRDValidationRatcheting`, on by default since 1.30 and GA in
//! 1.33): an OpenAPI or list-type error is dropped when the schema node that produced it holds the
//! same value as the correlated node of the old object, so objects stored under an older, looser
//! schema can still be updated elsewhere.
//!
//! Nodes correlate through object fields and map keys, `map` list items by key and `set` list
//! items by value; atomic list items never correlate, so errors inside them always count.

use serde_json::Value;

use crate::errors::Cause;
use crate::listtype::correlate;
use crate::node::Node;
use crate::validate::json_eq;

enum Seg {
    Key(String),
    Index(usize),
}

/// `spec.items[0].name` → segments; `None` for paths this module cannot follow.
fn parse(path: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    if path.is_empty() {
        return Some(out);
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_owned()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Seg::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// Drop the causes whose node is unchanged between `new` and `old`.
pub(crate) fn ratchet(root: &Node, new: &Value, old: &Value, causes: Vec<Cause>) -> Vec<Cause> {
    causes
        .into_iter()
        .filter(|c| !unchanged(root, new, old, c).unwrap_or(false))
        .collect()
}

fn unchanged(root: &Node, new: &Value, old: &Value, cause: &Cause) -> Option<bool> {
    let mut segs = parse(&cause.field)?;
    // `required` is checked by the parent object, duplicates by the list.
    if matches!(
        cause.reason.as_str(),
        "FieldValueRequired" | "FieldValueDuplicate"
    ) {
        segs.pop()?;
    }
    let (mut n, mut o, mut node) = (new, old, Some(root));
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                n = n.get(&k)?;
                o = o.get(&k)?;
                node = node.and_then(|x| x.field(&k));
            }
            Seg::Index(i) => {
                let list = node?;
                let item = n.get(i)?;
                let olds = o.as_array()?;
                o = match list.list_type.as_deref() {
                    Some("map") => correlate(list, olds, item)?,
                    Some("set") => olds.iter().find(|x| json_eq(x, item))?,
                    _ => return Some(false),
                };
                n = item;
                node = list.items.as_deref();
            }
        }
    }
    Some(json_eq(n, o))
}
