//! Label selectors (full grammar: `=`, `==`, `!=`, `in`, `notin`, exists,
//! `!key`, `>`/`<`) and field selectors (`=`, `==`, `!=` on supported fields).

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
}

fn valid_key(k: &str) -> bool {
    crate::meta::is_qualified_name(k)
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch)
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unexpected ')'".into());
                }
                cur.push(ch)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    if depth != 0 {
        return Err("unclosed '('".into());
    }
    out.push(cur);
    Ok(out)
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '('"))?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &vals {
        if !crate::meta::is_label_value(v) {
            return Err(format!("invalid label value: {v:?}"));
        }
    }
    Ok(vals)
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for part in split_top(s)? {
            let p = part.trim();
            if p.is_empty() {
                return Err("found ',', expected: identifier".into());
            }
            if let Some(k) = p.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(format!("invalid label key {k:?}"));
                }
                reqs.push((k.to_string(), Op::NotExists));
                continue;
            }
            let (key, op) = if let Some(i) = p.find("!=") {
                (&p[..i], Op::NotEq(p[i + 2..].trim().to_string()))
            } else if let Some(i) = p.find("==") {
                (&p[..i], Op::Eq(p[i + 2..].trim().to_string()))
            } else if let Some(i) = p.find('=') {
                (&p[..i], Op::Eq(p[i + 1..].trim().to_string()))
            } else if let Some(i) = p.find('>') {
                let n = p[i + 1..]
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid integer in {p:?}"))?;
                (&p[..i], Op::Gt(n))
            } else if let Some(i) = p.find('<') {
                let n = p[i + 1..]
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid integer in {p:?}"))?;
                (&p[..i], Op::Lt(n))
            } else if let Some(i) = p.find(" notin") {
                (&p[..i], Op::NotIn(parse_set(&p[i + 6..])?))
            } else if let Some(i) = p.find(" in") {
                (&p[..i], Op::In(parse_set(&p[i + 3..])?))
            } else {
                (p, Op::Exists)
            };
            let key = key.trim();
            if !valid_key(key) {
                return Err(format!("invalid label key {key:?}"));
            }
            if let Op::Eq(v) | Op::NotEq(v) = &op {
                if !crate::meta::is_label_value(v) {
                    return Err(format!("invalid label value: {v:?}"));
                }
            }
            reqs.push((key.to_string(), op));
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = labels.get(k).and_then(Value::as_str);
            match op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => !v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&crate::meta::labels(obj))
    }
}

/// A parsed field selector; `field` paths are dotted JSON paths in the
/// stored object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldSelector {
    /// Parse, checking each field against `supported`.
    pub fn parse(s: &str, supported: &dyn Fn(&str) -> bool) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let (field, eq, val) = if let Some(i) = p.find("!=") {
                (&p[..i], false, &p[i + 2..])
            } else if let Some(i) = p.find("==") {
                (&p[..i], true, &p[i + 2..])
            } else if let Some(i) = p.find('=') {
                (&p[..i], true, &p[i + 1..])
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{p}'"));
            };
            let field = field.trim();
            if !supported(field) {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), eq, unescape(val.trim())));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The value of `metadata.name=` if the selector pins one name.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| *eq && f == "metadata.name")
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value, value_of: &dyn Fn(&Value, &str) -> String) -> bool {
        self.reqs.iter().all(|(field, eq, want)| {
            let got = value_of(obj, field);
            (got == *want) == *eq
        })
    }
}

/// The string value at a dotted path, as the apiserver's field sets expose
/// it (missing → empty string; numbers printed).
pub fn dotted_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn label_grammar() {
        let s = LabelSelector::parse("app=web,tier!=db,env in (prod, qa),!legacy,team").unwrap();
        assert!(s.matches(&l(json!({"app":"web","env":"qa","team":"x"}))));
        assert!(!s.matches(&l(json!({"app":"web","env":"dev","team":"x"}))));
        assert!(!s.matches(&l(json!({"app":"web","env":"qa","team":"x","legacy":"1"}))));
        let s = LabelSelector::parse("a notin (x),b!=y").unwrap();
        assert!(s.matches(&l(json!({}))));
        let s = LabelSelector::parse("a==1,n>3").unwrap();
        assert!(s.matches(&l(json!({"a":"1","n":"4"}))));
        assert!(LabelSelector::parse("a in (x").is_err());
        assert!(LabelSelector::parse("a b c=d").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let ok = |f: &str| f.starts_with("metadata.");
        let s = FieldSelector::parse("metadata.name==a,metadata.namespace!=b", &ok).unwrap();
        let obj = json!({"metadata":{"name":"a","namespace":"c"}});
        assert!(s.matches(&obj, &dotted_value));
        assert_eq!(s.pinned_name(), Some("a"));
        assert_eq!(
            FieldSelector::parse("spec.x=1", &ok).unwrap_err(),
            "field label not supported: spec.x"
        );
    }
}
