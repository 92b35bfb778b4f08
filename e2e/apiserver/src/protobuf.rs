//! Protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`).
//!
//! kubectl's typed clients (`kubectl create namespace|secret|configmap|deployment|…`) send
//! built-in objects as protobuf: the `k8s\0` magic, then a `runtime.Unknown` envelope
//! (typeMeta, raw, contentEncoding, contentType) whose `raw` is the typed message. The
//! messages are decoded with `k8s-pb` (prost) and converted to the JSON that the same object
//! would have had as a JSON body (Go's `encoding/json` of the typed struct: `omitempty`
//! fields left out when zero, non-pointer structs always present, bytes base64); the request
//! then proceeds exactly as a JSON one.
//!
//! The conversion covers every field of the kinds served except deep parts of the pod
//! template nobody's generator sets (volumes, probes, lifecycle, security contexts,
//! affinity, …). Each message's handled fields are taken out of the decoded struct and the
//! rest must be empty; a body that sets anything unconverted is refused with 415 instead of
//! being stored without it. Custom resources have no protobuf form (415, as a real server).

use crate::error::{ApiError, ApiResult};
use crate::resources::{Builtin, ResourceInfo};
use base64::Engine;
use k8s_pb::api::{apps, core::v1 as core, policy, rbac};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// Why a body could not be converted: the message and field left unconverted.
type R<T> = Result<T, String>;

/// Decode a protobuf request body addressed to `info` into its JSON form.
pub fn decode(info: &ResourceInfo, body: &[u8]) -> ApiResult<Value> {
    let Some(b) = info.builtin() else {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    };
    let unrecognized = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {e}",
            info.kind
        ))
    };
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err(unrecognized(&format!(
            "provided data does not appear to be a protobuf message, expected prefix {:?}",
            MAGIC
        )));
    };
    let env = Unknown::decode(rest).map_err(|e| unrecognized(&e))?;
    if !env.content_encoding.as_deref().unwrap_or("").is_empty() {
        return Err(unrecognized(&format!(
            "unsupported content encoding {:?}",
            env.content_encoding.unwrap_or_default()
        )));
    }
    let tm = env.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    if kind.is_empty() {
        return Err(unrecognized(
            &"Object 'Kind' is missing in protobuf envelope",
        ));
    }
    let raw = env.raw.unwrap_or_default();
    let converted = match b {
        Builtin::Namespace => decode_as(&raw, namespace),
        Builtin::Secret => decode_as(&raw, secret),
        Builtin::ConfigMap => decode_as(&raw, config_map),
        Builtin::ServiceAccount => decode_as(&raw, service_account),
        Builtin::Service => decode_as(&raw, service),
        Builtin::Deployment => decode_as(&raw, deployment),
        Builtin::PodDisruptionBudget => decode_as(&raw, pdb),
        Builtin::Role => decode_as(&raw, role),
        Builtin::ClusterRole => decode_as(&raw, cluster_role),
        Builtin::RoleBinding => decode_as(&raw, role_binding),
        Builtin::ClusterRoleBinding => decode_as(&raw, cluster_role_binding),
        Builtin::CoreEvent | Builtin::EventsV1Event | Builtin::Lease | Builtin::Crd => {
            Ok(Err(format!("{} is not decoded from protobuf", info.kind)))
        }
    }
    .map_err(|e| unrecognized(&e))?;
    let mut obj = converted.map_err(|what| {
        ApiError::unsupported_media_type(format!(
            "castellan-apiserver does not decode this protobuf {} ({what}); send it as application/json",
            info.kind
        ))
    })?;
    let o = obj.as_object_mut().expect("conversions build objects");
    // typeMeta first, as a JSON encoder of the typed struct writes them.
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind));
    out.insert("apiVersion".into(), json!(api_version));
    out.append(o);
    Ok(Value::Object(out))
}

fn decode_as<M: Message + Default>(
    raw: &[u8],
    f: fn(M) -> R<Value>,
) -> Result<R<Value>, prost::DecodeError> {
    Ok(f(M::decode(raw)?))
}

/// The fields of `m` not taken out by a conversion must all be unset or zero. (gogo-protobuf
/// encodes every non-pointer field, so zero values are always present; a zero in an
/// unconverted *pointer* field, e.g. `*bool` false, is indistinguishable here and dropped —
/// the pointer fields of the messages kubectl generates are all converted above.)
fn rest<M: Message>(m: &M, what: &str) -> R<()> {
    let buf = m.encode_to_vec();
    let mut b = &buf[..];
    while !b.is_empty() {
        let key = prost::encoding::decode_varint(&mut b).map_err(|e| e.to_string())?;
        let (field, wire) = (key >> 3, key & 7);
        let nonzero = match wire {
            0 => prost::encoding::decode_varint(&mut b).map_err(|e| e.to_string())? != 0,
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let (v, r) = b.split_at(n.min(b.len()));
                b = r;
                v.iter().any(|x| *x != 0)
            }
            2 => {
                let n = prost::encoding::decode_varint(&mut b).map_err(|e| e.to_string())? as usize;
                let (v, r) = b.split_at(n.min(b.len()));
                b = r;
                !v.is_empty()
            }
            _ => true,
        };
        if nonzero {
            return Err(format!("{what} field {field} is set"));
        }
    }
    Ok(())
}

/// A JSON object built with Go `encoding/json` conventions.
#[derive(Default)]
struct J(Map<String, Value>);

impl J {
    fn put(mut self, k: &str, v: Value) -> Self {
        self.0.insert(k.into(), v);
        self
    }
    /// `string` with `omitempty`.
    fn s(self, k: &str, v: Option<String>) -> Self {
        match v {
            Some(v) if !v.is_empty() => self.put(k, json!(v)),
            _ => self,
        }
    }
    /// `string` without `omitempty`, or `*string`: present whenever encoded.
    fn s_keep(self, k: &str, v: Option<String>) -> Self {
        match v {
            Some(v) => self.put(k, json!(v)),
            None => self,
        }
    }
    /// `bool` with `omitempty`.
    fn b(self, k: &str, v: Option<bool>) -> Self {
        match v {
            Some(true) => self.put(k, json!(true)),
            _ => self,
        }
    }
    /// `*bool`.
    fn b_ptr(self, k: &str, v: Option<bool>) -> Self {
        match v {
            Some(v) => self.put(k, json!(v)),
            None => self,
        }
    }
    /// Integer with `omitempty`.
    fn i(self, k: &str, v: Option<impl Into<i64>>) -> Self {
        match v.map(Into::into) {
            Some(v) if v != 0 => self.put(k, json!(v)),
            _ => self,
        }
    }
    /// `*int` or an integer without `omitempty`.
    fn i_keep(self, k: &str, v: Option<impl Into<i64>>) -> Self {
        match v.map(Into::into) {
            Some(v) => self.put(k, json!(v)),
            None => self,
        }
    }
    /// `[]string` with `omitempty`.
    fn strs(self, k: &str, v: Vec<String>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(k, json!(v))
        }
    }
    /// `map[string]string` with `omitempty`.
    fn smap(self, k: &str, v: BTreeMap<String, String>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(k, json!(v))
        }
    }
    /// A converted struct (pointer or not: protobuf encodes it exactly when JSON would).
    fn o<T>(self, k: &str, v: Option<T>, f: impl FnOnce(T) -> R<Value>) -> R<Self> {
        Ok(match v {
            Some(v) => self.put(k, f(v)?),
            None => self,
        })
    }
    /// A slice of structs with `omitempty`.
    fn list<T>(self, k: &str, v: Vec<T>, f: impl Fn(T) -> R<Value>) -> R<Self> {
        if v.is_empty() {
            return Ok(self);
        }
        let items = v.into_iter().map(f).collect::<R<Vec<_>>>()?;
        Ok(self.put(k, Value::Array(items)))
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn bytes_map(m: BTreeMap<String, Vec<u8>>) -> Option<Value> {
    (!m.is_empty()).then(|| Value::Object(m.into_iter().map(|(k, v)| (k, b64(&v))).collect()))
}

/// `metav1.Time`: RFC 3339 seconds; the zero time is `null` (left out here).
fn time(t: meta::Time) -> Option<Value> {
    let (s, n) = (t.seconds.unwrap_or(0), t.nanos.unwrap_or(0));
    if s == 0 && n == 0 {
        return None;
    }
    chrono::DateTime::from_timestamp(s, 0)
        .map(|d| json!(d.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn opt_time(j: J, k: &str, t: Option<meta::Time>) -> J {
    match t.and_then(time) {
        Some(v) => j.put(k, v),
        None => j,
    }
}

fn quantity(q: Quantity) -> R<Value> {
    Ok(json!(q.string.unwrap_or_default()))
}

fn quantities(j: J, k: &str, m: BTreeMap<String, Quantity>) -> J {
    if m.is_empty() {
        return j;
    }
    let v: Map<String, Value> = m
        .into_iter()
        .map(|(k, q)| (k, json!(q.string.unwrap_or_default())))
        .collect();
    j.put(k, Value::Object(v))
}

fn int_or_string(v: IntOrString) -> R<Value> {
    Ok(match v.r#type.unwrap_or(0) {
        1 => json!(v.str_val.unwrap_or_default()),
        _ => json!(v.int_val.unwrap_or(0)),
    })
}

fn object_meta(mut m: meta::ObjectMeta) -> R<Value> {
    let mut j = J::default()
        .s("name", m.name.take())
        .s("generateName", m.generate_name.take())
        .s("namespace", m.namespace.take())
        .s("selfLink", m.self_link.take())
        .s("uid", m.uid.take())
        .s("resourceVersion", m.resource_version.take())
        .i("generation", m.generation.take());
    j = opt_time(j, "creationTimestamp", m.creation_timestamp.take());
    j = opt_time(j, "deletionTimestamp", m.deletion_timestamp.take());
    j = j
        .i_keep(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds.take(),
        )
        .smap("labels", std::mem::take(&mut m.labels))
        .smap("annotations", std::mem::take(&mut m.annotations))
        .list(
            "ownerReferences",
            std::mem::take(&mut m.owner_references),
            |r| {
                Ok(J::default()
                    .s_keep("apiVersion", r.api_version)
                    .s_keep("kind", r.kind)
                    .s_keep("name", r.name)
                    .s_keep("uid", r.uid)
                    .b_ptr("controller", r.controller)
                    .b_ptr("blockOwnerDeletion", r.block_owner_deletion)
                    .done())
            },
        )?
        .strs("finalizers", std::mem::take(&mut m.finalizers))
        .list(
            "managedFields",
            std::mem::take(&mut m.managed_fields),
            |f| {
                let mut e = J::default()
                    .s("manager", f.manager)
                    .s("operation", f.operation)
                    .s("apiVersion", f.api_version);
                e = opt_time(e, "time", f.time);
                e = e.s("fieldsType", f.fields_type);
                if let Some(raw) = f.fields_v1.and_then(|r| r.raw) {
                    let v: Value = serde_json::from_slice(&raw)
                        .map_err(|e| format!("managedFields fieldsV1: {e}"))?;
                    e = e.put("fieldsV1", v);
                }
                Ok(e.s("subresource", f.subresource).done())
            },
        )?;
    rest(&m, "ObjectMeta")?;
    Ok(j.done())
}

fn label_selector(s: meta::LabelSelector) -> R<Value> {
    Ok(J::default()
        .smap("matchLabels", s.match_labels)
        .list("matchExpressions", s.match_expressions, |r| {
            Ok(J::default()
                .s_keep("key", r.key)
                .s_keep("operator", r.operator)
                .strs("values", r.values)
                .done())
        })?
        .done())
}

fn condition(c: meta::Condition) -> R<Value> {
    let j = J::default()
        .s_keep("type", c.r#type)
        .s_keep("status", c.status)
        .i("observedGeneration", c.observed_generation);
    let j = match c.last_transition_time.and_then(time) {
        Some(t) => j.put("lastTransitionTime", t),
        None => j.put("lastTransitionTime", Value::Null),
    };
    Ok(j.s_keep("reason", c.reason)
        .s_keep("message", c.message)
        .done())
}

// ---- core/v1 ----

fn namespace(mut n: core::Namespace) -> R<Value> {
    let j = J::default()
        .o("metadata", n.metadata.take(), object_meta)?
        .o("spec", n.spec.take(), |s| {
            Ok(J::default().strs("finalizers", s.finalizers).done())
        })?
        .o("status", n.status.take(), |s| {
            Ok(J::default()
                .s("phase", s.phase)
                .list("conditions", s.conditions, |c| {
                    let j = J::default()
                        .s_keep("type", c.r#type)
                        .s_keep("status", c.status);
                    let j = opt_time(j, "lastTransitionTime", c.last_transition_time);
                    Ok(j.s("reason", c.reason).s("message", c.message).done())
                })?
                .done())
        })?;
    rest(&n, "Namespace")?;
    Ok(j.done())
}

fn secret(mut s: core::Secret) -> R<Value> {
    let mut j = J::default()
        .o("metadata", s.metadata.take(), object_meta)?
        .b_ptr("immutable", s.immutable.take());
    if let Some(d) = bytes_map(std::mem::take(&mut s.data)) {
        j = j.put("data", d);
    }
    let j = j
        .smap("stringData", std::mem::take(&mut s.string_data))
        .s("type", s.r#type.take());
    rest(&s, "Secret")?;
    Ok(j.done())
}

fn config_map(mut c: core::ConfigMap) -> R<Value> {
    let mut j = J::default()
        .o("metadata", c.metadata.take(), object_meta)?
        .b_ptr("immutable", c.immutable.take())
        .smap("data", std::mem::take(&mut c.data));
    if let Some(d) = bytes_map(std::mem::take(&mut c.binary_data)) {
        j = j.put("binaryData", d);
    }
    rest(&c, "ConfigMap")?;
    Ok(j.done())
}

fn local_ref(r: core::LocalObjectReference) -> R<Value> {
    Ok(J::default().s("name", r.name).done())
}

fn service_account(mut a: core::ServiceAccount) -> R<Value> {
    let j = J::default()
        .o("metadata", a.metadata.take(), object_meta)?
        .list("secrets", std::mem::take(&mut a.secrets), |r| {
            Ok(J::default()
                .s("kind", r.kind)
                .s("namespace", r.namespace)
                .s("name", r.name)
                .s("uid", r.uid)
                .s("apiVersion", r.api_version)
                .s("resourceVersion", r.resource_version)
                .s("fieldPath", r.field_path)
                .done())
        })?
        .list(
            "imagePullSecrets",
            std::mem::take(&mut a.image_pull_secrets),
            local_ref,
        )?
        .b_ptr(
            "automountServiceAccountToken",
            a.automount_service_account_token.take(),
        );
    rest(&a, "ServiceAccount")?;
    Ok(j.done())
}

fn service(mut s: core::Service) -> R<Value> {
    let j = J::default()
        .o("metadata", s.metadata.take(), object_meta)?
        .o("spec", s.spec.take(), service_spec)?
        .o("status", s.status.take(), |mut st| {
            let j = J::default()
                .o("loadBalancer", st.load_balancer.take(), |mut lb| {
                    let ingress = std::mem::take(&mut lb.ingress);
                    if !ingress.is_empty() {
                        return Err("ServiceStatus loadBalancer.ingress is set".into());
                    }
                    Ok(json!({}))
                })?
                .list("conditions", std::mem::take(&mut st.conditions), condition)?;
            rest(&st, "ServiceStatus")?;
            Ok(j.done())
        })?;
    rest(&s, "Service")?;
    Ok(j.done())
}

fn service_spec(mut s: core::ServiceSpec) -> R<Value> {
    let j = J::default()
        .list("ports", std::mem::take(&mut s.ports), |p| {
            Ok(J::default()
                .s("name", p.name)
                .s("protocol", p.protocol)
                .s_keep("appProtocol", p.app_protocol)
                .i_keep("port", p.port)
                .o("targetPort", p.target_port, |t| {
                    // `targetPort` is `omitempty`: the zero IntOrString is left out.
                    if t.r#type.unwrap_or(0) == 0 && t.int_val.unwrap_or(0) == 0 {
                        Ok(Value::Null)
                    } else {
                        int_or_string(t)
                    }
                })?
                .i("nodePort", p.node_port)
                .done())
        })?
        .smap("selector", std::mem::take(&mut s.selector))
        .s("clusterIP", s.cluster_ip.take())
        .strs("clusterIPs", std::mem::take(&mut s.cluster_ips))
        .s("type", s.r#type.take())
        .strs("externalIPs", std::mem::take(&mut s.external_ips))
        .s("sessionAffinity", s.session_affinity.take())
        .s("loadBalancerIP", s.load_balancer_ip.take())
        .strs(
            "loadBalancerSourceRanges",
            std::mem::take(&mut s.load_balancer_source_ranges),
        )
        .s("externalName", s.external_name.take())
        .s("externalTrafficPolicy", s.external_traffic_policy.take())
        .i("healthCheckNodePort", s.health_check_node_port.take())
        .b(
            "publishNotReadyAddresses",
            s.publish_not_ready_addresses.take(),
        )
        .o(
            "sessionAffinityConfig",
            s.session_affinity_config.take(),
            |c| {
                J::default()
                    .o("clientIP", c.client_ip, |ip| {
                        Ok(J::default()
                            .i_keep("timeoutSeconds", ip.timeout_seconds)
                            .done())
                    })
                    .map(J::done)
            },
        )?
        .strs("ipFamilies", std::mem::take(&mut s.ip_families))
        .s_keep("ipFamilyPolicy", s.ip_family_policy.take())
        .b_ptr(
            "allocateLoadBalancerNodePorts",
            s.allocate_load_balancer_node_ports.take(),
        )
        .s_keep("loadBalancerClass", s.load_balancer_class.take())
        .s_keep("internalTrafficPolicy", s.internal_traffic_policy.take())
        .s_keep("trafficDistribution", s.traffic_distribution.take());
    rest(&s, "ServiceSpec")?;
    let mut v = j.done();
    // A zero `targetPort` came back as null above: drop it (omitempty).
    if let Some(ports) = v.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("targetPort") == Some(&Value::Null) {
                p.as_object_mut().unwrap().remove("targetPort");
            }
        }
    }
    Ok(v)
}

fn pod_template(mut t: core::PodTemplateSpec) -> R<Value> {
    let j = J::default()
        .o("metadata", t.metadata.take(), object_meta)?
        .o("spec", t.spec.take(), pod_spec)?;
    rest(&t, "PodTemplateSpec")?;
    Ok(j.done())
}

fn pod_spec(mut s: core::PodSpec) -> R<Value> {
    let take = std::mem::take::<Vec<core::Container>>;
    let j = J::default()
        .list("initContainers", take(&mut s.init_containers), container)?
        .list("containers", take(&mut s.containers), container)?
        .s("restartPolicy", s.restart_policy.take())
        .i_keep(
            "terminationGracePeriodSeconds",
            s.termination_grace_period_seconds.take(),
        )
        .i_keep("activeDeadlineSeconds", s.active_deadline_seconds.take())
        .s("dnsPolicy", s.dns_policy.take())
        .smap("nodeSelector", std::mem::take(&mut s.node_selector))
        .s("serviceAccountName", s.service_account_name.take())
        .s("serviceAccount", s.service_account.take())
        .b_ptr(
            "automountServiceAccountToken",
            s.automount_service_account_token.take(),
        )
        .s("nodeName", s.node_name.take())
        .b("hostNetwork", s.host_network.take())
        .b("hostPID", s.host_pid.take())
        .b("hostIPC", s.host_ipc.take())
        .b_ptr("shareProcessNamespace", s.share_process_namespace.take())
        .list(
            "imagePullSecrets",
            std::mem::take(&mut s.image_pull_secrets),
            local_ref,
        )?
        .s("hostname", s.hostname.take())
        .s("subdomain", s.subdomain.take())
        .s("schedulerName", s.scheduler_name.take())
        .s("priorityClassName", s.priority_class_name.take())
        .i_keep("priority", s.priority.take())
        .s_keep("runtimeClassName", s.runtime_class_name.take())
        .b_ptr("enableServiceLinks", s.enable_service_links.take())
        .s_keep("preemptionPolicy", s.preemption_policy.take())
        .b_ptr("setHostnameAsFQDN", s.set_hostname_as_fqdn.take())
        .b_ptr("hostUsers", s.host_users.take());
    rest(&s, "PodSpec")?;
    Ok(j.done())
}

fn resources(mut r: core::ResourceRequirements) -> R<Value> {
    let mut j = quantities(J::default(), "limits", std::mem::take(&mut r.limits));
    j = quantities(j, "requests", std::mem::take(&mut r.requests));
    let j = j.list("claims", std::mem::take(&mut r.claims), |c| {
        Ok(J::default()
            .s_keep("name", c.name)
            .s("request", c.request)
            .done())
    })?;
    rest(&r, "ResourceRequirements")?;
    Ok(j.done())
}

fn key_ref(r: Option<core::LocalObjectReference>, key: Option<String>, opt: Option<bool>) -> Value {
    J::default()
        .s("name", r.and_then(|r| r.name))
        .s_keep("key", key)
        .b_ptr("optional", opt)
        .done()
}

fn container(mut c: core::Container) -> R<Value> {
    let j = J::default()
        .s_keep("name", c.name.take())
        .s("image", c.image.take())
        .strs("command", std::mem::take(&mut c.command))
        .strs("args", std::mem::take(&mut c.args))
        .s("workingDir", c.working_dir.take())
        .list("ports", std::mem::take(&mut c.ports), |p| {
            Ok(J::default()
                .s("name", p.name)
                .i("hostPort", p.host_port)
                .i_keep("containerPort", p.container_port)
                .s("protocol", p.protocol)
                .s("hostIP", p.host_ip)
                .done())
        })?
        .list("env", std::mem::take(&mut c.env), |e| {
            J::default()
                .s_keep("name", e.name)
                .s("value", e.value)
                .o("valueFrom", e.value_from, |mut f| {
                    let j = J::default()
                        .o("fieldRef", f.field_ref.take(), |r| {
                            Ok(J::default()
                                .s("apiVersion", r.api_version)
                                .s_keep("fieldPath", r.field_path)
                                .done())
                        })?
                        .o("resourceFieldRef", f.resource_field_ref.take(), |r| {
                            J::default()
                                .s("containerName", r.container_name)
                                .s_keep("resource", r.resource)
                                .o("divisor", r.divisor, quantity)
                                .map(J::done)
                        })?
                        .o("configMapKeyRef", f.config_map_key_ref.take(), |r| {
                            Ok(key_ref(r.local_object_reference, r.key, r.optional))
                        })?
                        .o("secretKeyRef", f.secret_key_ref.take(), |r| {
                            Ok(key_ref(r.local_object_reference, r.key, r.optional))
                        })?;
                    rest(&f, "EnvVarSource")?;
                    Ok(j.done())
                })
                .map(J::done)
        })?
        .o("resources", c.resources.take(), resources)?
        .s_keep("restartPolicy", c.restart_policy.take())
        .list("volumeMounts", std::mem::take(&mut c.volume_mounts), |m| {
            Ok(J::default()
                .s_keep("name", m.name)
                .b("readOnly", m.read_only)
                .s_keep("recursiveReadOnly", m.recursive_read_only)
                .s_keep("mountPath", m.mount_path)
                .s("subPath", m.sub_path)
                .s_keep("mountPropagation", m.mount_propagation)
                .s("subPathExpr", m.sub_path_expr)
                .done())
        })?
        .s("terminationMessagePath", c.termination_message_path.take())
        .s(
            "terminationMessagePolicy",
            c.termination_message_policy.take(),
        )
        .s("imagePullPolicy", c.image_pull_policy.take())
        .b("stdin", c.stdin.take())
        .b("stdinOnce", c.stdin_once.take())
        .b("tty", c.tty.take());
    rest(&c, "Container")?;
    Ok(j.done())
}

// ---- apps/v1 ----

fn deployment(mut d: apps::v1::Deployment) -> R<Value> {
    let j = J::default()
        .o("metadata", d.metadata.take(), object_meta)?
        .o("spec", d.spec.take(), |mut s| {
            let j = J::default()
                .i_keep("replicas", s.replicas.take())
                .o("selector", s.selector.take(), label_selector)?
                .o("template", s.template.take(), pod_template)?
                .o("strategy", s.strategy.take(), |st| {
                    J::default()
                        .s("type", st.r#type)
                        .o("rollingUpdate", st.rolling_update, |ru| {
                            J::default()
                                .o("maxUnavailable", ru.max_unavailable, int_or_string)?
                                .o("maxSurge", ru.max_surge, int_or_string)
                                .map(J::done)
                        })
                        .map(J::done)
                })?
                .i("minReadySeconds", s.min_ready_seconds.take())
                .i_keep("revisionHistoryLimit", s.revision_history_limit.take())
                .b("paused", s.paused.take())
                .i_keep(
                    "progressDeadlineSeconds",
                    s.progress_deadline_seconds.take(),
                );
            rest(&s, "DeploymentSpec")?;
            Ok(j.done())
        })?
        .o("status", d.status.take(), |s| {
            J::default()
                .i("observedGeneration", s.observed_generation)
                .i("replicas", s.replicas)
                .i("updatedReplicas", s.updated_replicas)
                .i("readyReplicas", s.ready_replicas)
                .i("availableReplicas", s.available_replicas)
                .i("unavailableReplicas", s.unavailable_replicas)
                .i_keep("terminatingReplicas", s.terminating_replicas)
                .list("conditions", s.conditions, |c| {
                    let j = J::default()
                        .s_keep("type", c.r#type)
                        .s_keep("status", c.status);
                    let j = opt_time(j, "lastUpdateTime", c.last_update_time);
                    let j = opt_time(j, "lastTransitionTime", c.last_transition_time);
                    Ok(j.s("reason", c.reason).s("message", c.message).done())
                })?
                .i_keep("collisionCount", s.collision_count)
                .pipe_ok()
        })?;
    rest(&d, "Deployment")?;
    Ok(j.done())
}

impl J {
    fn pipe_ok(self) -> R<Value> {
        Ok(self.done())
    }
}

// ---- policy/v1 ----

fn pdb(mut p: policy::v1::PodDisruptionBudget) -> R<Value> {
    let j = J::default()
        .o("metadata", p.metadata.take(), object_meta)?
        .o("spec", p.spec.take(), |s| {
            J::default()
                .o("minAvailable", s.min_available, int_or_string)?
                .o("selector", s.selector, label_selector)?
                .o("maxUnavailable", s.max_unavailable, int_or_string)?
                .s_keep(
                    "unhealthyPodEvictionPolicy",
                    s.unhealthy_pod_eviction_policy,
                )
                .pipe_ok()
        })?
        .o("status", p.status.take(), |s| {
            let mut j = J::default().i("observedGeneration", s.observed_generation);
            if !s.disrupted_pods.is_empty() {
                let m: Map<String, Value> = s
                    .disrupted_pods
                    .into_iter()
                    .map(|(k, t)| (k, time(t).unwrap_or(Value::Null)))
                    .collect();
                j = j.put("disruptedPods", Value::Object(m));
            }
            j.i_keep("disruptionsAllowed", s.disruptions_allowed)
                .i_keep("currentHealthy", s.current_healthy)
                .i_keep("desiredHealthy", s.desired_healthy)
                .i_keep("expectedPods", s.expected_pods)
                .list("conditions", s.conditions, condition)?
                .pipe_ok()
        })?;
    rest(&p, "PodDisruptionBudget")?;
    Ok(j.done())
}

// ---- rbac.authorization.k8s.io/v1 ----

fn policy_rule(r: rbac::v1::PolicyRule) -> R<Value> {
    // `verbs` has no omitempty: a nil slice is `null`.
    let verbs = if r.verbs.is_empty() {
        Value::Null
    } else {
        json!(r.verbs)
    };
    Ok(J::default()
        .put("verbs", verbs)
        .strs("apiGroups", r.api_groups)
        .strs("resources", r.resources)
        .strs("resourceNames", r.resource_names)
        .strs("nonResourceURLs", r.non_resource_ur_ls)
        .done())
}

fn rules(j: J, rules: Vec<rbac::v1::PolicyRule>) -> R<J> {
    // `rules` has no omitempty either.
    if rules.is_empty() {
        return Ok(j.put("rules", Value::Null));
    }
    j.list("rules", rules, policy_rule)
}

fn subject(s: rbac::v1::Subject) -> R<Value> {
    Ok(J::default()
        .s_keep("kind", s.kind)
        .s("apiGroup", s.api_group)
        .s_keep("name", s.name)
        .s("namespace", s.namespace)
        .done())
}

fn role_ref(r: rbac::v1::RoleRef) -> R<Value> {
    Ok(J::default()
        .s_keep("apiGroup", r.api_group)
        .s_keep("kind", r.kind)
        .s_keep("name", r.name)
        .done())
}

fn role(mut r: rbac::v1::Role) -> R<Value> {
    let j = J::default().o("metadata", r.metadata.take(), object_meta)?;
    let j = rules(j, std::mem::take(&mut r.rules))?;
    rest(&r, "Role")?;
    Ok(j.done())
}

fn cluster_role(mut r: rbac::v1::ClusterRole) -> R<Value> {
    let j = J::default().o("metadata", r.metadata.take(), object_meta)?;
    let j = rules(j, std::mem::take(&mut r.rules))?.o(
        "aggregationRule",
        r.aggregation_rule.take(),
        |a| {
            J::default()
                .list(
                    "clusterRoleSelectors",
                    a.cluster_role_selectors,
                    label_selector,
                )
                .map(J::done)
        },
    )?;
    rest(&r, "ClusterRole")?;
    Ok(j.done())
}

fn binding(
    metadata: Option<meta::ObjectMeta>,
    subjects: Vec<rbac::v1::Subject>,
    rr: Option<rbac::v1::RoleRef>,
) -> R<Value> {
    let rr = rr.unwrap_or_default();
    Ok(J::default()
        .o("metadata", metadata, object_meta)?
        .list("subjects", subjects, subject)?
        .put("roleRef", role_ref(rr)?)
        .done())
}

fn role_binding(r: rbac::v1::RoleBinding) -> R<Value> {
    binding(r.metadata, r.subjects, r.role_ref)
}

fn cluster_role_binding(r: rbac::v1::ClusterRoleBinding) -> R<Value> {
    binding(r.metadata, r.subjects, r.role_ref)
}

/// Encode `msg` as a Kubernetes protobuf body (magic + `runtime.Unknown`), as client-go does.
pub fn encode<M: Message>(api_version: &str, kind: &str, msg: &M) -> Vec<u8> {
    let env = Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(env.encode_to_vec());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(b: Builtin) -> ResourceInfo {
        crate::resources::builtins()
            .into_iter()
            .find(|r| r.builtin() == Some(b))
            .unwrap()
    }

    #[test]
    fn kubectl_create_namespace_body() {
        // What kubectl 1.33 sends for `kubectl create namespace demo` (captured with -v=8).
        let body = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1c\x0a\x14\x0a\x04demo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";
        let v = decode(&info(Builtin::Namespace), body).unwrap();
        assert_eq!(
            v,
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "demo"}, "spec": {}, "status": {}})
        );
    }

    #[test]
    fn secret_bytes_are_base64() {
        let s = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            }),
            data: [("a".to_string(), vec![0u8, 255, b'x'])].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let v = decode(&info(Builtin::Secret), &encode("v1", "Secret", &s)).unwrap();
        assert_eq!(v["data"]["a"], json!("AP94"));
        assert_eq!(v["type"], json!("Opaque"));
    }

    #[test]
    fn unconverted_fields_are_refused() {
        let d = apps::v1::Deployment {
            spec: Some(apps::v1::DeploymentSpec {
                template: Some(core::PodTemplateSpec {
                    spec: Some(core::PodSpec {
                        affinity: Some(core::Affinity {
                            node_affinity: Some(Default::default()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = decode(
            &info(Builtin::Deployment),
            &encode("apps/v1", "Deployment", &d),
        )
        .unwrap_err();
        assert_eq!(e.code, 415);
        assert!(e.message.contains("PodSpec field"), "{}", e.message);
    }
}
