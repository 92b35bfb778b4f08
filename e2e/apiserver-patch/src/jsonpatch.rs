//! RFC 6902 JSON patch (`application/json-patch+json`) with the apiserver's behaviour, which is
//! evanphx/json-patch v4's rather than the RFC's where the two differ:
//!
//! * `test` with value `null` (or no value) passes when the member is missing or null; its parent
//!   must still exist. kube-runtime's `finalizer()` relies on this to add the first finalizer.
//! * Array indices may be negative (`-1` is the last element), as evanphx's
//!   `SupportNegativeIndices` default allows.
//! * Numbers compare by value in `test` (Go decodes them all to float64).
//!
//! The operations run on a copy: a failed operation leaves the caller's object untouched.

use serde_json::Value;

use crate::error::PatchError;

/// Apply RFC 6902 `ops` to a copy of `target`; `target` is never modified.
///
/// Behaves like evanphx/json-patch as used by the apiserver: a `test` whose value is `null`
/// passes on a missing member; a failed `test` (or any other failed operation) is
/// [`PatchError::Unprocessable`] (the server answers 422); a document that is not a list of
/// operations is [`PatchError::Malformed`] (400).
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let ops = decode(ops)?;
    let mut doc = target.clone();
    for op in &ops {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

#[derive(Debug)]
enum Op {
    Add { path: String, value: Value },
    Remove { path: String },
    Replace { path: String, value: Value },
    Move { from: String, path: String },
    Copy { from: String, path: String },
    Test { path: String, value: Value },
}

fn decode(ops: &Value) -> Result<Vec<Op>, PatchError> {
    let Value::Array(items) = ops else {
        return Err(PatchError::Malformed(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        ));
    };
    items.iter().map(decode_op).collect()
}

fn decode_op(item: &Value) -> Result<Op, PatchError> {
    let Value::Object(members) = item else {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            json_kind(item)
        )));
    };
    let string = |name: &str| -> Result<String, PatchError> {
        match members.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(PatchError::Unprocessable(format!(
                "operation missing {name} field"
            ))),
        }
    };
    let op =
        string("op").map_err(|_| PatchError::Unprocessable("Unexpected kind: unknown".into()))?;
    // evanphx treats a missing value as null.
    let value = members.get("value").cloned().unwrap_or(Value::Null);
    Ok(match op.as_str() {
        "add" => Op::Add {
            path: string("path")?,
            value,
        },
        "remove" => Op::Remove {
            path: string("path")?,
        },
        "replace" => Op::Replace {
            path: string("path")?,
            value,
        },
        "move" => Op::Move {
            from: string("from")?,
            path: string("path")?,
        },
        "copy" => Op::Copy {
            from: string("from")?,
            path: string("path")?,
        },
        "test" => Op::Test {
            path: string("path")?,
            value,
        },
        other => {
            return Err(PatchError::Unprocessable(format!(
                "Unexpected kind: {other}"
            )))
        }
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Split a JSON pointer into unescaped reference tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PatchError::Unprocessable(format!(
            "invalid JSON pointer: {pointer:?}"
        )));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn missing(op: &str, path: &str) -> PatchError {
    PatchError::Unprocessable(format!(
        "{op} operation does not apply: doc is missing path: \"{path}\": missing value"
    ))
}

/// Resolve an array index token; `len` is the array length, `allow_end` admits `len` itself.
fn index(token: &str, len: usize, allow_end: bool) -> Option<usize> {
    let i: i64 = token.parse().ok()?;
    let len = len as i64;
    let i = if i < 0 { i + len } else { i };
    let max = if allow_end { len } else { len - 1 };
    (0..=max).contains(&i).then_some(i as usize)
}

/// The container that holds the last token of `toks`.
fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Option<&'a mut Value> {
    let mut node = doc;
    for t in &toks[..toks.len() - 1] {
        node = match node {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return None,
        };
    }
    Some(node)
}

fn get<'a>(doc: &'a Value, toks: &[String]) -> Option<&'a Value> {
    let mut node = doc;
    for t in toks {
        node = match node {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => &a[index(t, a.len(), false)?],
            _ => return None,
        };
    }
    Some(node)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let toks = tokens(path)?;
    let Some(last) = toks.last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, &toks) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if last == "-" {
                a.len()
            } else {
                index(last, a.len(), true).ok_or_else(|| {
                    PatchError::Unprocessable(format!(
                        "Unable to access invalid index: {last}: invalid index referenced"
                    ))
                })?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing("add", path)),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let toks = tokens(path)?;
    let Some(last) = toks.last() else {
        return Ok(std::mem::replace(doc, Value::Null));
    };
    let gone = || {
        PatchError::Unprocessable(format!(
            "error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
        ))
    };
    match parent_mut(doc, &toks) {
        Some(Value::Object(m)) => m.remove(last).ok_or_else(gone),
        Some(Value::Array(a)) => {
            let i = index(last, a.len(), false).ok_or_else(gone)?;
            Ok(a.remove(i))
        }
        _ => Err(missing("remove", path)),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let toks = tokens(path)?;
    let Some(last) = toks.last() else {
        *doc = value;
        return Ok(());
    };
    let gone = || {
        PatchError::Unprocessable(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        ))
    };
    match parent_mut(doc, &toks) {
        Some(Value::Object(m)) => match m.get_mut(last) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(gone()),
        },
        Some(Value::Array(a)) => {
            let i = index(last, a.len(), false).ok_or_else(gone)?;
            a[i] = value;
            Ok(())
        }
        _ => Err(missing("replace", path)),
    }
}

fn test(doc: &Value, path: &str, expected: &Value) -> Result<(), PatchError> {
    let failed = || PatchError::Unprocessable(format!("testing value {path} failed: test failed"));
    let toks = tokens(path)?;
    let actual = match toks.split_last() {
        None => Some(doc),
        Some((last, parents)) => match get(doc, parents) {
            Some(Value::Object(m)) => m.get(last),
            Some(Value::Array(a)) => match index(last, a.len(), false) {
                Some(i) => Some(&a[i]),
                None => return Err(failed()),
            },
            _ => {
                return Err(PatchError::Unprocessable(format!(
                    "test operation does not apply: is missing path: {path}: missing value"
                )))
            }
        },
    };
    match actual {
        // evanphx: a missing (or null) member equals a null value.
        None | Some(Value::Null) if expected.is_null() => Ok(()),
        Some(actual) if json_equal(actual, expected) => Ok(()),
        _ => Err(failed()),
    }
}

/// JSON equality with numbers compared by value, as Go's float64 decoding does.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn apply_op(doc: &mut Value, op: &Op) -> Result<(), PatchError> {
    match op {
        Op::Add { path, value } => add(doc, path, value.clone()),
        Op::Remove { path } => remove(doc, path).map(|_| ()),
        Op::Replace { path, value } => replace(doc, path, value.clone()),
        Op::Move { from, path } => {
            if from == path {
                return get(doc, &tokens(from)?)
                    .map(|_| ())
                    .ok_or_else(|| missing("move", from));
            }
            if path.starts_with(&format!("{from}/")) {
                return Err(PatchError::Unprocessable(format!(
                    "move operation does not apply: from {from} is a prefix of path {path}"
                )));
            }
            let value = remove(doc, from).map_err(|_| missing("move", from))?;
            add(doc, path, value)
        }
        Op::Copy { from, path } => {
            let value = get(doc, &tokens(from)?)
                .cloned()
                .ok_or_else(|| missing("copy", from))?;
            add(doc, path, value)
        }
        Op::Test { path, value } => test(doc, path, value),
    }
}
