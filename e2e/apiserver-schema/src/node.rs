//! The parsed schema tree that every admission step walks.
//!
//! A [`Node`] is built from a schema that [`crate::structural`] has already accepted, so parsing
//! is lenient: anything malformed has been reported before we get here.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::cel::NodeRules;
use crate::errors::Cause;

/// One schema node, with the keywords the apiserver acts on.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`), if set.
    pub ty: Option<String>,
    pub nullable: bool,
    pub format: Option<String>,
    pub properties: BTreeMap<String, Node>,
    /// `additionalProperties` given as a schema.
    pub additional: Option<Box<Node>>,
    pub items: Option<Box<Node>>,
    pub required: Vec<String>,
    pub enum_values: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub pattern: Option<(String, Regex)>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub max_items: Option<u64>,
    pub min_items: Option<u64>,
    pub max_properties: Option<u64>,
    pub min_properties: Option<u64>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    pub int_or_string: bool,
    pub preserve_unknown: bool,
    pub embedded: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    /// Compiled `x-kubernetes-validations` of this node.
    pub rules: Option<NodeRules>,
}

impl Node {
    /// Parse a schema node (and its children), compiling CEL rules; `path` is the node's field
    /// path in the CRD and `correlatable` whether `oldSelf` can be bound here. Rule errors are
    /// appended to `errs`.
    pub fn parse(schema: &Value, path: &str, correlatable: bool, errs: &mut Vec<Cause>) -> Node {
        Node::parse_in(schema, schema, path, correlatable, errs)
    }

    fn parse_in(
        root: &Value,
        schema: &Value,
        path: &str,
        correlatable: bool,
        errs: &mut Vec<Cause>,
    ) -> Node {
        let Some(m) = schema.as_object() else {
            return Node::default();
        };
        let rules = crate::cel::compile_node(schema, path, correlatable, root, errs);
        let list_is_map = m.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
        let mut parse = |v: &Value, p: String, c: bool| Node::parse_in(root, v, &p, c, errs);
        let str_of = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let bool_of = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        let u64_of = |k: &str| m.get(k).and_then(Value::as_u64);
        let f64_of = |k: &str| m.get(k).and_then(Value::as_f64);
        let mut list_of = |k: &str| -> Vec<Node> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .enumerate()
                        .map(|(i, b)| parse(b, format!("{path}.{k}[{i}]"), correlatable))
                        .collect()
                })
                .unwrap_or_default()
        };
        let all_of = list_of("allOf");
        let any_of = list_of("anyOf");
        let one_of = list_of("oneOf");
        let mut parse = |v: &Value, p: String, c: bool| Node::parse_in(root, v, &p, c, errs);
        Node {
            ty: str_of("type").filter(|t| !t.is_empty()),
            nullable: bool_of("nullable"),
            format: str_of("format"),
            properties: m
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                parse(v, format!("{path}.properties[{k}]"), correlatable),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            additional: m
                .get("additionalProperties")
                .filter(|a| a.is_object())
                .map(|a| {
                    Box::new(parse(
                        a,
                        format!("{path}.additionalProperties"),
                        correlatable,
                    ))
                }),
            items: m.get("items").filter(|a| a.is_object()).map(|a| {
                Box::new(parse(
                    a,
                    format!("{path}.items"),
                    correlatable && list_is_map,
                ))
            }),
            required: m
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            enum_values: m.get("enum").and_then(Value::as_array).cloned(),
            default: m.get("default").cloned(),
            pattern: str_of("pattern").and_then(|p| Regex::new(&p).ok().map(|r| (p, r))),
            maximum: f64_of("maximum"),
            exclusive_maximum: bool_of("exclusiveMaximum"),
            minimum: f64_of("minimum"),
            exclusive_minimum: bool_of("exclusiveMinimum"),
            multiple_of: f64_of("multipleOf"),
            max_length: u64_of("maxLength"),
            min_length: u64_of("minLength"),
            max_items: u64_of("maxItems"),
            min_items: u64_of("minItems"),
            max_properties: u64_of("maxProperties"),
            min_properties: u64_of("minProperties"),
            all_of,
            any_of,
            one_of,
            not: m
                .get("not")
                .map(|n| Box::new(parse(n, format!("{path}.not"), correlatable))),
            int_or_string: bool_of("x-kubernetes-int-or-string"),
            preserve_unknown: bool_of("x-kubernetes-preserve-unknown-fields"),
            embedded: bool_of("x-kubernetes-embedded-resource"),
            list_type: str_of("x-kubernetes-list-type"),
            list_map_keys: m
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            map_type: str_of("x-kubernetes-map-type"),
            rules,
        }
    }

    /// The child schema of an object field: a `properties` entry or `additionalProperties`.
    pub fn field(&self, name: &str) -> Option<&Node> {
        self.properties.get(name).or(self.additional.as_deref())
    }

    /// The `type` the real server reports as the value of CEL errors (empty when unset).
    pub fn type_name(&self) -> &str {
        self.ty.as_deref().unwrap_or("")
    }
}
