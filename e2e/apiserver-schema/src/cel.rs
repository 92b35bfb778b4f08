//! CEL `x-kubernetes-validations`: compiled when the CRD is checked, evaluated after OpenAPI
//! validation, as `apiextensions-apiserver/pkg/apiserver/schema/cel` does.
//!
//! Evaluation uses kube-cel 0.8 (the evaluator kube 5 re-exports). We walk the schema ourselves,
//! so that `oldSelf` is correlated the way the real server correlates it (object fields, map
//! keys, and `x-kubernetes-list-type: map` items by key; never atomic or set list items), and hand
//! kube-cel one node at a time: a copy of the node's schema whose descendants carry no rules, so
//! kube-cel converts `self` exactly as the schema types it (field-name escaping, `date-time`,
//! `duration`, embedded resources) and evaluates only this node's rules.
//!
//! kube-cel parses but cannot evaluate some CEL macros (`sortBy`, `cel.bind`, two-variable
//! comprehensions, `transformList`/`transformMap`); a rule using them is rejected when the CRD is
//! compiled, so the emulator never accepts a CRD whose rules it would silently fail on.

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr};
use kube_cel::cel::Program;
use serde_json::{Map, Value};

use crate::errors::{go_quote, Cause};
use crate::listtype::correlate;
use crate::node::Node;

thread_local! {
    static VALIDATOR: kube_cel::Validator = kube_cel::Validator::new();
}

/// The `x-kubernetes-validations` of one node, compiled.
pub(crate) struct NodeRules {
    rules: Vec<RuleSpec>,
    compiled: kube_cel::CompiledSchema,
}

impl std::fmt::Debug for NodeRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRules")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct RuleSpec {
    rule: String,
    message: Option<String>,
    reason: Option<String>,
    field_path: Option<String>,
}

const REASONS: [&str; 4] = [
    "FieldValueInvalid",
    "FieldValueForbidden",
    "FieldValueRequired",
    "FieldValueDuplicate",
];

/// The Go rendering of the rule the real server puts in compile errors.
fn rule_struct(r: &Map<String, Value>) -> String {
    let s = |k: &str| go_quote(r.get(k).and_then(Value::as_str).unwrap_or(""));
    let reason = if r.get("reason").is_some() {
        "(*apiextensions.FieldValueErrorReason)(0xc000000000)"
    } else {
        "(*apiextensions.FieldValueErrorReason)(nil)"
    };
    let old = if r.get("optionalOldSelf").is_some() {
        "(*bool)(0xc000000000)"
    } else {
        "(*bool)(nil)"
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{old}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        s("fieldPath"),
    )
}

/// Names kube-cel 0.8 parses but cannot evaluate, found in `expr`.
fn unsupported(expr: &IdedExpr, found: &mut Vec<String>) {
    match &expr.expr {
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            if matches!(
                name,
                "sortBy" | "transformList" | "transformMap" | "transformMapEntry"
            ) {
                found.push(name.to_owned());
            }
            if let Some(target) = &call.target {
                if name == "bind" && matches!(&target.expr, Expr::Ident(t) if t == "cel") {
                    found.push("cel.bind".to_owned());
                }
                if matches!(name, "all" | "exists" | "existsOne" | "exists_one")
                    && call.args.len() == 3
                {
                    found.push(format!("two-variable {name}"));
                }
                unsupported(target, found);
            }
            for a in &call.args {
                unsupported(a, found);
            }
        }
        Expr::Comprehension(c) => {
            if c.iter_var2.is_some() {
                found.push("two-variable comprehension".to_owned());
            }
            for e in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                unsupported(e, found);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|e| unsupported(e, found)),
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    unsupported(&me.key, found);
                    unsupported(&me.value, found);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    unsupported(&f.value, found);
                }
            }
        }
        Expr::Select(s) => unsupported(&s.operand, found),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
    }
}

/// The JSON field name a CEL identifier stands for (`__dash__` → `-`, `__namespace__` →
/// `namespace`, ...), as the apiserver's escaping defines it.
fn unescape(name: &str) -> String {
    if let Some(inner) = name.strip_prefix("__").and_then(|n| n.strip_suffix("__")) {
        if !inner.contains("__") && !inner.is_empty() && !["dash", "dot", "slash"].contains(&inner)
        {
            return inner.to_owned();
        }
    }
    name.replace("__underscores__", "\u{0}")
        .replace("__dot__", ".")
        .replace("__dash__", "-")
        .replace("__slash__", "/")
        .replace("\u{0}", "__")
}

/// Type-checks field selections against the schema, as the real CEL compiler does with the
/// schema-derived types: selecting a field an object schema does not declare is a compile error.
/// Only certain cases are reported; anything this walk cannot type stays unchecked.
struct FieldCheck<'a> {
    root: &'a Value,
    undefined: Vec<String>,
}

impl<'a> FieldCheck<'a> {
    fn walk(&mut self, expr: &IdedExpr, env: &[(String, Option<&'a Value>)]) -> Option<&'a Value> {
        match &expr.expr {
            Expr::Ident(name) => env
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, s)| *s),
            Expr::Select(sel) => {
                let operand = self.walk(&sel.operand, env)?;
                self.field(operand, &unescape(&sel.field))
            }
            Expr::Comprehension(c) => {
                let range = self.walk(&c.iter_range, env);
                let item = range.and_then(|r| match r.get("type").and_then(Value::as_str) {
                    Some("array") => r.get("items"),
                    _ => None,
                });
                let mut inner = env.to_vec();
                inner.push((c.iter_var.clone(), item));
                if let Some(v2) = &c.iter_var2 {
                    inner.push((v2.clone(), None));
                }
                inner.push((c.accu_var.clone(), None));
                self.walk(&c.accu_init, env);
                for e in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(e, &inner);
                }
                None
            }
            Expr::Call(call) => {
                if let Some(t) = &call.target {
                    self.walk(t, env);
                }
                for a in &call.args {
                    self.walk(a, env);
                }
                None
            }
            Expr::List(l) => {
                for e in &l.elements {
                    self.walk(e, env);
                }
                None
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key, env);
                        self.walk(&me.value, env);
                    }
                }
                None
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value, env);
                    }
                }
                None
            }
            Expr::Unspecified | Expr::Literal(_) => None,
        }
    }

    fn field(&mut self, schema: &'a Value, name: &str) -> Option<&'a Value> {
        let resource_root = std::ptr::eq(schema, self.root)
            || schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
        if resource_root && name == "metadata" {
            // CEL sees only `name` and `generateName` of a resource's metadata.
            static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
            return Some(META.get_or_init(|| {
                serde_json::json!({"type": "object", "properties": {
                    "name": {"type": "string"},
                    "generateName": {"type": "string"}
                }})
            }));
        }
        if let Some(p) = schema.get("properties").and_then(|p| p.get(name)) {
            return Some(p);
        }
        if resource_root && matches!(name, "apiVersion" | "kind") {
            return None;
        }
        if let Some(ap) = schema.get("additionalProperties") {
            return ap.is_object().then_some(ap);
        }
        let preserve = schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true);
        if schema.get("properties").is_some() && !preserve {
            self.undefined.push(name.to_owned());
        }
        None
    }
}

/// A copy of `schema` without `x-kubernetes-validations` below its root.
fn strip_nested_rules(schema: &Value, at_root: bool) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| at_root || k.as_str() != "x-kubernetes-validations")
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "properties" => Value::Object(
                            v.as_object()
                                .map(|p| {
                                    p.iter()
                                        .map(|(pk, pv)| (pk.clone(), strip_nested_rules(pv, false)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        "items" | "additionalProperties" | "not" => strip_nested_rules(v, false),
                        "allOf" | "anyOf" | "oneOf" => Value::Array(
                            v.as_array()
                                .map(|a| a.iter().map(|b| strip_nested_rules(b, false)).collect())
                                .unwrap_or_default(),
                        ),
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Compile the rules of the node `schema` found at `path` (its field path in the CRD).
/// `correlatable` is false below atomic or set list items, where `oldSelf` cannot be bound.
pub(crate) fn compile_node(
    schema: &Value,
    path: &str,
    correlatable: bool,
    root: &Value,
    errs: &mut Vec<Cause>,
) -> Option<NodeRules> {
    let list = schema.get("x-kubernetes-validations")?;
    let base = format!("{path}.x-kubernetes-validations");
    let Some(list) = list.as_array() else {
        errs.push(Cause::type_invalid(
            &base,
            &Value::String("object".into()),
            "must be an array",
        ));
        return None;
    };
    let before = errs.len();
    let mut rules = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let at = format!("{base}[{i}]");
        let Some(obj) = r.as_object() else {
            errs.push(Cause::required(&format!("{at}.rule"), ""));
            continue;
        };
        let rule = obj
            .get("rule")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if rule.trim().is_empty() {
            errs.push(Cause::required(&format!("{at}.rule"), ""));
            continue;
        }
        match Program::compile(&rule) {
            Err(e) => errs.push(Cause::invalid_raw(
                &format!("{at}.rule"),
                &rule_struct(obj),
                &format!("compilation failed: ERROR: <input>: {e}"),
            )),
            Ok(program) => {
                let mut found = Vec::new();
                unsupported(program.expression(), &mut found);
                if !found.is_empty() {
                    found.dedup();
                    errs.push(Cause::invalid_raw(
                        &format!("{at}.rule"),
                        &rule_struct(obj),
                        &format!(
                            "compilation failed: {} not supported by the emulator's CEL evaluator (kube-cel 0.8)",
                            found.join(", ")
                        ),
                    ));
                }
                let mut check = FieldCheck {
                    root,
                    undefined: Vec::new(),
                };
                let env = [
                    ("self".to_owned(), Some(schema)),
                    ("oldSelf".to_owned(), Some(schema)),
                ];
                check.walk(program.expression(), &env);
                if let Some(name) = check.undefined.first() {
                    errs.push(Cause::invalid_raw(
                        &format!("{at}.rule"),
                        &rule_struct(obj),
                        &format!("compilation failed: ERROR: <input>: undefined field '{name}'"),
                    ));
                }
                let transition = program.references().has_variable("oldSelf");
                if transition && !correlatable {
                    errs.push(Cause::invalid(
                        &format!("{at}.rule"),
                        &Value::String(rule.clone()),
                        &format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {path}"),
                    ));
                }
            }
        }
        if let Some(me) = obj.get("messageExpression").and_then(Value::as_str) {
            if let Err(e) = Program::compile(me) {
                errs.push(Cause::invalid_raw(
                    &format!("{at}.messageExpression"),
                    &rule_struct(obj),
                    &format!("messageExpression compilation failed: ERROR: <input>: {e}"),
                ));
            }
        }
        let reason = obj.get("reason").and_then(Value::as_str).map(str::to_owned);
        if let Some(reason) = &reason {
            if !REASONS.contains(&reason.as_str()) {
                let supported: Vec<String> = REASONS.iter().map(|s| s.to_string()).collect();
                errs.push(Cause::not_supported(
                    &format!("{at}.reason"),
                    &Value::String(reason.clone()),
                    &supported,
                ));
            }
        }
        let field_path = obj
            .get("fieldPath")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(fp) = &field_path {
            if parse_field_path(fp).is_none() {
                errs.push(Cause::invalid(
                    &format!("{at}.fieldPath"),
                    &Value::String(fp.clone()),
                    "fieldPath must be a valid JSONPath of a field",
                ));
            }
        }
        let message = obj
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        rules.push(RuleSpec {
            rule,
            message,
            reason,
            field_path,
        });
    }
    if errs.len() > before {
        return None;
    }
    let compiled = kube_cel::compile_schema(&strip_nested_rules(schema, true));
    for e in compiled.compilation_errors() {
        errs.push(Cause::invalid(
            &base,
            &Value::String(String::new()),
            &e.to_string(),
        ));
    }
    Some(NodeRules { rules, compiled })
}

/// `.a.b`, `a.b`, `.a['b-c']`, `.list[0]` → path segments (`.b`, `[0]`) appended to a field path.
fn parse_field_path(fp: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = fp.strip_prefix('.').unwrap_or(fp);
    let mut first = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            out.push('.');
            out.push_str(&r[..end]);
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            r[..end].parse::<usize>().ok()?;
            out.push_str(&rest[..end + 2]);
            rest = &r[end + 1..];
        } else {
            if !first {
                rest = rest.strip_prefix('.')?;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            out.push('.');
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
        first = false;
    }
    Some(out)
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.trim_start_matches('.').to_owned()
    } else {
        format!("{path}{segment}")
    }
}

/// Evaluate every rule in the tree against `v` (and `old` on update).
pub(crate) fn evaluate(root: &Node, v: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    VALIDATOR.with(|validator| walk(validator, root, v, old, "", &mut out));
    out
}

fn walk(
    validator: &kube_cel::Validator,
    node: &Node,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    out: &mut Vec<Cause>,
) {
    if v.is_null() {
        return;
    }
    // Ratcheting: an unchanged node (and so its whole subtree) is not re-validated on update.
    if old.is_some_and(|o| crate::validate::json_eq(o, v)) {
        return;
    }
    if let Some(rules) = &node.rules {
        eval_node(validator, node, rules, v, old, path, out);
    }
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let Some(child) = node.field(k) else { continue };
                let old_child = old.and_then(|o| o.get(k.as_str()));
                walk(
                    validator,
                    child,
                    &map[k.as_str()],
                    old_child,
                    &join(path, &format!(".{k}")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                // `oldSelf` binds in map-list items (by key); set items correlate by value,
                // which only matters for ratcheting (transition rules are not allowed there).
                let old_item = match (node.list_type.as_deref(), old_items) {
                    (Some("map"), Some(olds)) => correlate(node, olds, item),
                    (Some("set"), Some(olds)) => {
                        olds.iter().find(|o| crate::validate::json_eq(o, item))
                    }
                    _ => None,
                };
                walk(
                    validator,
                    item_node,
                    item,
                    old_item,
                    &format!("{path}[{i}]"),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn eval_node(
    validator: &kube_cel::Validator,
    node: &Node,
    rules: &NodeRules,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let Err(errors) = validator.validate_compiled(&rules.compiled, v, old) else {
        return;
    };
    let ty = Value::String(node.type_name().to_owned());
    for e in errors.iter() {
        let spec = rules.rules.iter().find(|r| r.rule == e.rule);
        let field = match spec
            .and_then(|s| s.field_path.as_deref())
            .and_then(parse_field_path)
        {
            Some(seg) => join(path, &seg),
            // The root is validated with a nil field path, printed as `<nil>`.
            None if path.is_empty() => "<nil>".to_owned(),
            None => path.to_owned(),
        };
        let cause = match e.kind {
            kube_cel::ErrorKind::ValidationFailure => {
                match spec
                    .and_then(|s| s.reason.as_deref())
                    .unwrap_or("FieldValueInvalid")
                {
                    "FieldValueForbidden" => Cause::forbidden(&field, &e.message),
                    "FieldValueRequired" => Cause::required(&field, &e.message),
                    "FieldValueDuplicate" => Cause::duplicate(&field, &ty),
                    _ => Cause::invalid(&field, &ty, &e.message),
                }
            }
            _ => {
                // `<error> evaluating rule: <message, or the rule>` (ruleErrorString).
                let err = e
                    .message
                    .strip_prefix("rule evaluation error: ")
                    .unwrap_or(&e.message);
                let err = match err.strip_prefix("No such key") {
                    Some(rest) => format!("no such key{rest}"),
                    None => err.to_owned(),
                };
                let what = spec
                    .and_then(|s| s.message.as_deref())
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or(&e.rule)
                    .trim();
                Cause::invalid(&field, &ty, &format!("{err} evaluating rule: {what}"))
            }
        };
        out.push(cause);
    }
}
