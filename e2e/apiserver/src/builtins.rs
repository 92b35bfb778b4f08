//! Strategies of the built-in kinds a Helm chart installs: ServiceAccount, Service, Deployment,
//! PodDisruptionBudget and the four RBAC kinds. Shallow and honest: each check here is one a
//! real apiserver makes (`pkg/apis/{core,apps,policy,rbac}/validation`), with the same field path
//! and detail text; what is not checked is listed in the README's differences.
//!
//! Also the strategic-merge-patch strategies of their lists ([`list_strategy`]).
//!
//! No controllers run for these kinds: a Deployment never gets ReplicaSets or Pods, a Service
//! never gets a cluster IP or endpoints, a PodDisruptionBudget's status stays at zero.

use crate::error::Cause;
use crate::resources::Builtin;
use castellan_apiserver_patch::ListStrategy;
use serde_json::{json, Map, Value};

/// Top-level fields of each kind (besides apiVersion, kind, metadata).
pub fn fields(b: Builtin) -> Option<&'static [&'static str]> {
    Some(match b {
        Builtin::ServiceAccount => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        Builtin::Service | Builtin::Deployment | Builtin::PodDisruptionBudget => {
            &["spec", "status"]
        }
        Builtin::ClusterRole => &["rules", "aggregationRule"],
        Builtin::Role => &["rules"],
        Builtin::ClusterRoleBinding | Builtin::RoleBinding => &["subjects", "roleRef"],
        _ => return None,
    })
}

/// `PrepareForCreate`: the status a client sends is dropped; the serialised empty status is
/// what the real server returns (fields without `omitempty` included).
pub fn empty_status(b: Builtin) -> Option<Value> {
    match b {
        Builtin::Deployment => Some(json!({})),
        Builtin::Service => Some(json!({"loadBalancer": {}})),
        Builtin::PodDisruptionBudget => Some(json!({
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        })),
        _ => None,
    }
}

/// Whether an update bumps `metadata.generation` beyond the spec rule: the Deployment strategy
/// also bumps it when annotations change (they are copied to ReplicaSets).
pub fn annotations_bump_generation(b: Builtin) -> bool {
    b == Builtin::Deployment
}

/// Defaults the v1 API applies that validation depends on: RBAC `roleRef.apiGroup` and the
/// `apiGroup` of User/Group subjects; a Service port's `protocol` (TCP) and `targetPort` (the
/// port).
pub fn default(b: Builtin, obj: &mut Value) {
    if b == Builtin::Deployment {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            default_deployment(spec);
        }
        return;
    }
    if b == Builtin::Service {
        let ports = obj
            .get_mut("spec")
            .and_then(|s| s.get_mut("ports"))
            .and_then(Value::as_array_mut);
        for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
            if str_of(p.get("protocol")).is_empty() {
                p.insert("protocol".into(), json!("TCP"));
            }
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if unset {
                let port = p.get("port").cloned().unwrap_or(json!(0));
                p.insert("targetPort".into(), port);
            }
        }
        return;
    }
    if !matches!(b, Builtin::ClusterRoleBinding | Builtin::RoleBinding) {
        return;
    }
    if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut) {
        if str_of(r.get("apiGroup")).is_empty() {
            r.insert("apiGroup".into(), json!(RBAC_GROUP));
        }
    }
    if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let kind = str_of(s.get("kind")).to_string();
            if str_of(s.get("apiGroup")).is_empty() && (kind == "User" || kind == "Group") {
                s.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
        }
    }
}

/// Inserts `value` at `key` unless a non-null value is there.
fn or_insert(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// apps/v1 `SetDefaults_Deployment` and the core/v1 pod-template defaults it implies, for the
/// fields the emulator knows (probes, volumes, env sources are not defaulted).
fn default_deployment(spec: &mut Map<String, Value>) {
    or_insert(spec, "replicas", json!(1));
    let strategy = spec
        .entry("strategy")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(strategy) = strategy {
        or_insert(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == "RollingUpdate" {
            if let Some(ru) = strategy
                .entry("rollingUpdate")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                or_insert(ru, "maxUnavailable", json!("25%"));
                or_insert(ru, "maxSurge", json!("25%"));
            }
        }
    }
    or_insert(spec, "revisionHistoryLimit", json!(10));
    or_insert(spec, "progressDeadlineSeconds", json!(600));
    let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    or_insert(pod, "restartPolicy", json!("Always"));
    or_insert(pod, "terminationGracePeriodSeconds", json!(30));
    or_insert(pod, "dnsPolicy", json!("ClusterFirst"));
    or_insert(pod, "securityContext", json!({}));
    or_insert(pod, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        let containers = pod.get_mut(list).and_then(Value::as_array_mut);
        for c in containers
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            or_insert(c, "resources", json!({}));
            or_insert(c, "terminationMessagePath", json!("/dev/termination-log"));
            or_insert(c, "terminationMessagePolicy", json!("File"));
            let policy = if image_tag(str_of(c.get("image"))) == "latest" {
                "Always"
            } else {
                "IfNotPresent"
            };
            or_insert(c, "imagePullPolicy", json!(policy));
            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
            for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                or_insert(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// The tag of an image reference as `parsers.ParseImageName` finds it: `latest` when there is
/// neither a tag nor a digest, empty with a digest alone.
fn image_tag(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None if digest => "",
        None => "latest",
    }
}

/// Validation of a create (`old == None`) or update.
pub fn validate(b: Builtin, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut c = Vec::new();
    match b {
        Builtin::Deployment => deployment(&obj["spec"], &mut c),
        Builtin::Service => service(&obj["spec"], &mut c),
        Builtin::PodDisruptionBudget => pdb(&obj["spec"], &mut c),
        Builtin::ClusterRole => rules(&obj["rules"], false, &mut c),
        Builtin::Role => rules(&obj["rules"], true, &mut c),
        Builtin::ClusterRoleBinding | Builtin::RoleBinding => {
            binding(b, obj, &mut c);
            if let Some(old) = old {
                if old.get("roleRef") != obj.get("roleRef") {
                    c.push(invalid(
                        "roleRef",
                        &role_ref_json(&obj["roleRef"]),
                        "field is immutable",
                    ));
                }
            }
        }
        _ => {}
    }
    c
}

/// The strategic-merge-patch strategy of the list at `path` (field names joined by `.`) in a
/// built-in kind: the `patchStrategy`/`patchMergeKey` tags of the Kubernetes 1.33 Go types, for
/// the fields these kinds have. Every other list is replaced by the patch.
pub fn list_strategy(b: Builtin, path: &str) -> ListStrategy {
    use ListStrategy::{MergeByKey, MergePrimitives, Replace};
    // ObjectMeta, at the top and in a pod template.
    let meta = |p: &str| match p {
        "metadata.finalizers" => Some(MergePrimitives),
        "metadata.ownerReferences" => Some(MergeByKey("uid")),
        _ => None,
    };
    if let Some(s) = meta(path) {
        return s;
    }
    match b {
        Builtin::Deployment => {
            if path == "status.conditions" {
                return MergeByKey("type");
            }
            let Some(template) = path.strip_prefix("spec.template.") else {
                return Replace;
            };
            if let Some(s) = meta(template) {
                return s;
            }
            let Some(pod) = template.strip_prefix("spec.") else {
                return Replace;
            };
            match pod {
                "volumes"
                | "initContainers"
                | "containers"
                | "ephemeralContainers"
                | "imagePullSecrets"
                | "schedulingGates"
                | "resourceClaims" => MergeByKey("name"),
                "hostAliases" => MergeByKey("ip"),
                "topologySpreadConstraints" => MergeByKey("topologyKey"),
                _ => {
                    let container_field =
                        ["initContainers.", "containers.", "ephemeralContainers."]
                            .iter()
                            .find_map(|c| pod.strip_prefix(c));
                    match container_field {
                        Some("ports") => MergeByKey("containerPort"),
                        Some("env") => MergeByKey("name"),
                        Some("volumeMounts") => MergeByKey("mountPath"),
                        Some("volumeDevices") => MergeByKey("devicePath"),
                        _ => Replace,
                    }
                }
            }
        }
        Builtin::Service => match path {
            "spec.ports" => MergeByKey("port"),
            "status.conditions" => MergeByKey("type"),
            _ => Replace,
        },
        Builtin::ServiceAccount if path == "secrets" => MergeByKey("name"),
        Builtin::PodDisruptionBudget if path == "status.conditions" => MergeByKey("type"),
        _ => Replace,
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn len_of(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    }
}

fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    Cause::new("FieldValueRequired", message, field)
}

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        format!("Invalid value: {value}: {detail}"),
        field,
    )
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause::new(
        "FieldValueNotSupported",
        format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
        field,
    )
}

fn duplicate(field: &str, value: &str) -> Cause {
    Cause::new(
        "FieldValueDuplicate",
        format!("Duplicate value: {value:?}"),
        field,
    )
}

/// A `map[string]string` as kube-apiserver 1.37 prints it in `Invalid value:` (JSON, keys
/// sorted; `null` when absent).
fn string_map_json(m: Option<&Map<String, Value>>) -> String {
    match m {
        None => "null".into(),
        Some(m) => {
            let sorted: std::collections::BTreeMap<&String, &Value> = m.iter().collect();
            serde_json::to_string(&sorted).unwrap()
        }
    }
}

/// `rbac.RoleRef` (an internal type without JSON tags) as it is printed: Go field names.
fn role_ref_json(r: &Value) -> String {
    format!(
        "{{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}",
        json!(str_of(r.get("apiGroup"))),
        json!(str_of(r.get("kind"))),
        json!(str_of(r.get("name")))
    )
}

/// `policy.PodDisruptionBudgetSpec` (internal, no JSON tags, so Go field names) as it is
/// printed: the selector (a `metav1.LabelSelector`, which has tags) in its JSON form.
fn pdb_spec_json(spec: &Value) -> String {
    let field = |k: &str| match spec.get(k) {
        None | Some(Value::Null) => "null".to_string(),
        Some(v) => v.to_string(),
    };
    let selector = match spec.get("selector") {
        None | Some(Value::Null) => "null".to_string(),
        Some(sel) => {
            let mut parts = Vec::new();
            if len_of(&sel["matchLabels"]) > 0 {
                parts.push(format!(
                    "\"matchLabels\":{}",
                    string_map_json(sel["matchLabels"].as_object())
                ));
            }
            if let Some(exprs) = sel["matchExpressions"].as_array().filter(|a| !a.is_empty()) {
                let exprs: Vec<String> = exprs
                    .iter()
                    .map(|e| {
                        let mut s = format!(
                            "{{\"key\":{},\"operator\":{}",
                            json!(str_of(e.get("key"))),
                            json!(str_of(e.get("operator")))
                        );
                        if len_of(&e["values"]) > 0 {
                            s.push_str(&format!(",\"values\":{}", e["values"]));
                        }
                        s.push('}');
                        s
                    })
                    .collect();
                parts.push(format!("\"matchExpressions\":[{}]", exprs.join(",")));
            }
            format!("{{{}}}", parts.join(","))
        }
    };
    format!(
        "{{\"MinAvailable\":{},\"Selector\":{selector},\"MaxUnavailable\":{},\"UnhealthyPodEvictionPolicy\":{}}}",
        field("minAvailable"),
        field("maxUnavailable"),
        field("unhealthyPodEvictionPolicy")
    )
}

/// Whether `labels` satisfy a LabelSelector (matchLabels and matchExpressions).
fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = selector.get("matchLabels").and_then(Value::as_object) {
        if ml.iter().any(|(k, v)| get(k) != v.as_str()) {
            return false;
        }
    }
    if let Some(me) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in me {
            let key = str_of(e.get("key"));
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let ok = match str_of(e.get("operator")) {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

fn deployment(spec: &Value, c: &mut Vec<Cause>) {
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64) {
        if r < 0 {
            c.push(invalid(
                "spec.replicas",
                &r.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    let template = &spec["template"];
    let labels = template["metadata"]["labels"].as_object();
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => {
            c.push(required("spec.selector", ""));
            // A nil selector converts to "select nothing", which no labels match.
            c.push(invalid(
                "spec.template.metadata.labels",
                &string_map_json(labels),
                "`selector` does not match template `labels`",
            ));
        }
        Some(sel) => {
            if len_of(&sel["matchLabels"]) + len_of(&sel["matchExpressions"]) == 0 {
                c.push(invalid(
                    "spec.selector",
                    &format!("{sel}"),
                    "empty selector is invalid for deployment",
                ));
            } else if !selector_matches(sel, labels) {
                c.push(invalid(
                    "spec.template.metadata.labels",
                    &string_map_json(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    let pod = &template["spec"];
    match pod.get("containers").and_then(Value::as_array) {
        None => c.push(required("spec.template.spec.containers", "")),
        Some(cs) if cs.is_empty() => c.push(required("spec.template.spec.containers", "")),
        Some(cs) => containers("spec.template.spec.containers", cs, c),
    }
    if let Some(ics) = pod.get("initContainers").and_then(Value::as_array) {
        containers("spec.template.spec.initContainers", ics, c);
    }
    if let Some(rp) = pod.get("restartPolicy").and_then(Value::as_str) {
        if rp != "Always" {
            c.push(not_supported(
                "spec.template.spec.restartPolicy",
                rp,
                &["Always"],
            ));
        }
    }
}

fn containers(path: &str, cs: &[Value], c: &mut Vec<Cause>) {
    let mut seen = Vec::new();
    for (i, ctr) in cs.iter().enumerate() {
        let name = str_of(ctr.get("name"));
        if name.is_empty() {
            c.push(required(&format!("{path}[{i}].name"), ""));
        } else if seen.contains(&name) {
            c.push(duplicate(&format!("{path}[{i}].name"), name));
        } else {
            seen.push(name);
        }
        if str_of(ctr.get("image")).is_empty() {
            c.push(required(&format!("{path}[{i}].image"), ""));
        }
    }
}

fn service(spec: &Value, c: &mut Vec<Cause>) {
    let ty = str_of(spec.get("type"));
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !ty.is_empty() && !TYPES.contains(&ty) {
        c.push(not_supported("spec.type", ty, TYPES));
    }
    let headless = str_of(spec.get("clusterIP")) == "None";
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        c.push(required("spec.ports", ""));
    }
    let require_name = ports.len() > 1;
    let mut names = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let name = str_of(p.get("name"));
        if require_name && name.is_empty() {
            c.push(required(&format!("spec.ports[{i}].name"), ""));
        } else if !name.is_empty() {
            if names.contains(&name) {
                c.push(duplicate(&format!("spec.ports[{i}].name"), name));
            }
            names.push(name);
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            c.push(invalid(
                &format!("spec.ports[{i}].port"),
                &port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let proto = str_of(p.get("protocol"));
        if !proto.is_empty() && !["SCTP", "TCP", "UDP"].contains(&proto) {
            c.push(not_supported(
                &format!("spec.ports[{i}].protocol"),
                proto,
                &["SCTP", "TCP", "UDP"],
            ));
        }
        let field = format!("spec.ports[{i}].targetPort");
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                if !(1..=65535).contains(&n) {
                    c.push(invalid(
                        &field,
                        &n.to_string(),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
            Some(Value::String(name)) => {
                for why in port_name_errors(name) {
                    c.push(invalid(&field, &format!("{name:?}"), why));
                }
            }
            _ => {}
        }
    }
}

/// `validation.IsValidPortName` (an IANA_SVC_NAME), one message per rule broken.
fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.is_empty() || name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

fn pdb(spec: &Value, c: &mut Vec<Cause>) {
    let set = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    if set("minAvailable") && set("maxUnavailable") {
        c.push(invalid(
            "spec",
            &pdb_spec_json(spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
}

fn rules(rules: &Value, namespaced: bool, c: &mut Vec<Cause>) {
    let Some(rules) = rules.as_array() else {
        return;
    };
    for (i, r) in rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if len_of(&r["nonResourceURLs"]) > 0 {
            if namespaced {
                c.push(invalid(
                    &format!("{path}.nonResourceURLs"),
                    &format!("{}", r["nonResourceURLs"]),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if len_of(&r["apiGroups"]) + len_of(&r["resources"]) + len_of(&r["resourceNames"]) > 0 {
                c.push(invalid(
                    &format!("{path}.nonResourceURLs"),
                    &format!("{}", r["nonResourceURLs"]),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if len_of(&r["apiGroups"]) == 0 {
            c.push(required(
                &format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if len_of(&r["resources"]) == 0 {
            c.push(required(
                &format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    // kube-apiserver 1.37 checks `verbs` declaratively, after the handwritten rule checks.
    for (i, r) in rules.iter().enumerate() {
        if len_of(&r["verbs"]) == 0 {
            c.push(required(&format!("rules[{i}].verbs"), ""));
        }
    }
}

fn binding(b: Builtin, obj: &Value, c: &mut Vec<Cause>) {
    let role_ref = &obj["roleRef"];
    let group = str_of(role_ref.get("apiGroup"));
    if group != RBAC_GROUP {
        c.push(not_supported("roleRef.apiGroup", group, &[RBAC_GROUP]));
    }
    let kind = str_of(role_ref.get("kind"));
    let kinds: &[&str] = if b == Builtin::ClusterRoleBinding {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&kind) {
        c.push(not_supported("roleRef.kind", kind, kinds));
    }
    if str_of(role_ref.get("name")).is_empty() {
        c.push(required("roleRef.name", ""));
    }
    let allow_missing_ns = b == Builtin::RoleBinding;
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, s) in subjects.iter().enumerate() {
        let path = format!("subjects[{i}]");
        if str_of(s.get("name")).is_empty() {
            c.push(required(&format!("{path}.name"), ""));
        }
        let group = str_of(s.get("apiGroup"));
        match str_of(s.get("kind")) {
            "ServiceAccount" => {
                if !group.is_empty() {
                    c.push(not_supported(&format!("{path}.apiGroup"), group, &[""]));
                }
                if !allow_missing_ns && str_of(s.get("namespace")).is_empty() {
                    c.push(required(&format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    c.push(not_supported(
                        &format!("{path}.apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => c.push(not_supported(
                &format!("{path}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(c: &[Cause]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn deployment_selector_and_containers() {
        let ok = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
            "metadata": {"labels": {"app": "a", "x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert!(validate(Builtin::Deployment, &ok, None).is_empty());
        let bad = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}, "template": {
            "metadata": {"labels": {"z": "1", "app": "a"}},
            "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "i"}]}}}});
        assert_eq!(
            fields_of(&validate(Builtin::Deployment, &bad, None)),
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"a\",\"z\":\"1\"}: `selector` does not match template `labels`",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.containers[1].name: Duplicate value: \"c\"",
            ]
        );
        let none = json!({"spec": {}});
        assert_eq!(
            fields_of(&validate(Builtin::Deployment, &none, None)),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`",
                "spec.template.spec.containers: Required value",
            ]
        );
    }

    #[test]
    fn selector_expressions() {
        let l = json!({"a": "1", "b": "2"});
        let l = l.as_object();
        let sel = |e: Value| json!({"matchExpressions": [e]});
        assert!(selector_matches(
            &sel(json!({"key": "a", "operator": "In", "values": ["1"]})),
            l
        ));
        assert!(!selector_matches(
            &sel(json!({"key": "a", "operator": "NotIn", "values": ["1"]})),
            l
        ));
        assert!(selector_matches(
            &sel(json!({"key": "c", "operator": "DoesNotExist"})),
            l
        ));
        assert!(!selector_matches(
            &sel(json!({"key": "c", "operator": "Exists"})),
            l
        ));
    }

    #[test]
    fn rbac_rules_and_bindings() {
        let role =
            json!({"rules": [{"apiGroups": [""], "resources": ["secrets"]}, {"verbs": ["get"]}]});
        assert_eq!(
            fields_of(&validate(Builtin::Role, &role, None)),
            [
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[0].verbs: Required value",
            ]
        );
        let mut crb = json!({"roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "User", "name": "u"}]});
        default(Builtin::ClusterRoleBinding, &mut crb);
        assert_eq!(crb["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(crb["subjects"][1]["apiGroup"], RBAC_GROUP);
        assert_eq!(
            fields_of(&validate(Builtin::ClusterRoleBinding, &crb, None)),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
            ]
        );
        let old = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "other"}});
        let rb = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "r"}});
        assert_eq!(
            fields_of(&validate(Builtin::RoleBinding, &rb, Some(&old))),
            ["roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"Role\",\"Name\":\"r\"}: field is immutable"]
        );
    }

    #[test]
    fn deployment_defaults_are_kube_apiservers() {
        // What kube-apiserver 1.37.2 stored for this create.
        let mut d = json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "initContainers": [{"name": "i", "image": "x:latest"}],
                "containers": [
                    {"name": "main", "image": "app", "ports": [{"containerPort": 80}]},
                    {"name": "s", "image": "s:1@sha256:abc", "imagePullPolicy": "Never"},
                    {"name": "t", "image": "reg:5000/t:2"},
                    {"name": "u", "image": "u@sha256:abc"}]}}}});
        default(Builtin::Deployment, &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            (
                &spec["revisionHistoryLimit"],
                &spec["progressDeadlineSeconds"]
            ),
            (&json!(10), &json!(600))
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["securityContext"], json!({}));
        assert_eq!(pod["initContainers"][0]["imagePullPolicy"], "Always");
        let c = &pod["containers"];
        assert_eq!(
            c[0],
            json!({"name": "main", "image": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {}, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "Always"})
        );
        assert_eq!(c[1]["imagePullPolicy"], "Never");
        assert_eq!(c[2]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[3]["imagePullPolicy"], "IfNotPresent");
        let mut rolling = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}});
        default(Builtin::Deployment, &mut rolling);
        assert_eq!(
            rolling["spec"]["strategy"],
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}})
        );
    }

    #[test]
    fn pdb_spec_is_printed_with_go_field_names() {
        let spec = json!({"minAvailable": 1, "maxUnavailable": "10%"});
        assert_eq!(
            fields_of(&validate(Builtin::PodDisruptionBudget, &json!({"spec": spec}), None)),
            ["spec: Invalid value: {\"MinAvailable\":1,\"Selector\":null,\"MaxUnavailable\":\"10%\",\"UnhealthyPodEvictionPolicy\":null}: minAvailable and maxUnavailable cannot be both set"]
        );
    }

    #[test]
    fn service_ports() {
        // As kube-apiserver 1.37.2 answered this create (defaults first: targetPort = port).
        let mut svc = json!({"spec": {"ports": [
            {"port": 80}, {"name": "b", "port": 0, "protocol": "HTTP"},
            {"name": "c", "port": 81, "targetPort": "Bad_Name"}, {"name": "d", "port": 82, "targetPort": 0}]}});
        default(Builtin::Service, &mut svc);
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(svc["spec"]["ports"][3]["targetPort"], 82);
        assert_eq!(
            fields_of(&validate(Builtin::Service, &svc, None)),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ]
        );
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert!(validate(Builtin::Service, &headless, None).is_empty());
        assert_eq!(
            fields_of(&validate(Builtin::Service, &json!({"spec": {}}), None)),
            ["spec.ports: Required value"]
        );
    }
}
