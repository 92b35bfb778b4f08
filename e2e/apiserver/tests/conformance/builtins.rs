//! The built-in kinds a Helm chart installs (ServiceAccount, Service, Deployment,
//! PodDisruptionBudget, RBAC): discovery, CRUD with the real strategies (status reset,
//! generation), the real server's 422s, watch, and kubectl apply of a chart-like manifest.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::discovery::{Discovery, Scope};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::time::Duration;

fn deployment(name: &str, selector: &str, label: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": selector}},
            "template": {
                "metadata": {"labels": {"app": label}},
                "spec": {"containers": [{"name": "main", "image": "example/app:1"}]}
            }
        },
        "status": {"replicas": 7}
    }))
    .unwrap()
}

fn causes(s: &kube::core::Status) -> Vec<(String, String)> {
    s.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn chart_kinds_are_discovered_with_scope_and_subresources() {
    let (_server, client) = setup().await;
    let discovery = Discovery::new(client).run_aggregated().await.unwrap();
    let find = |group: &str, kind: &str| {
        discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.kind == kind)
            .unwrap_or_else(|| panic!("{group}/{kind} not discovered"))
    };
    for (group, kind, plural, namespaced) in [
        ("", "ServiceAccount", "serviceaccounts", true),
        ("", "Service", "services", true),
        ("apps", "Deployment", "deployments", true),
        (
            "policy",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        ),
        ("rbac.authorization.k8s.io", "Role", "roles", true),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "rolebindings",
            true,
        ),
    ] {
        let (ar, caps) = find(group, kind);
        assert_eq!(ar.plural, plural);
        assert_eq!(caps.scope == Scope::Namespaced, namespaced, "{kind}");
    }
    let (_, deploy) = find("apps", "Deployment");
    assert!(deploy
        .subresources
        .iter()
        .any(|(ar, _)| ar.plural == "status"));
}

#[tokio::test]
async fn deployment_create_drops_status_and_sets_generation_one() {
    let (server, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client, server.ns());
    let d = api
        .create(&PostParams::default(), &deployment("web", "web", "web"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let raw = serde_json::to_value(&d).unwrap();
    assert_eq!(raw["status"], json!({}), "PrepareForCreate resets status");
}

#[tokio::test]
async fn deployment_generation_bumps_on_spec_and_annotations_not_on_status() {
    let (server, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client, server.ns());
    api.create(&PostParams::default(), &deployment("web", "web", "web"))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(3), "annotations bump it too");
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"l": "v"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(3), "labels do not");
    // Status through the main endpoint is ignored; through /status it is written.
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.and_then(|s| s.replicas), None);
    let d = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 3, "replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(3));
    assert_eq!(d.status.and_then(|s| s.replicas), Some(3));
}

#[tokio::test]
async fn deployment_selector_must_match_template_labels_422() {
    let (server, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client, server.ns());
    let err = api
        .create(&PostParams::default(), &deployment("web", "web", "other"))
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
    );
    let mut no_containers = deployment("web", "web", "web");
    no_containers
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers
        .clear();
    let err = api
        .create(&PostParams::default(), &no_containers)
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        causes(&err),
        [(
            "spec.template.spec.containers".to_string(),
            "Required value".to_string()
        )]
    );
}

#[tokio::test]
async fn service_requires_ports_and_valid_port_numbers_422() {
    let (server, client) = setup().await;
    let api: Api<Service> = Api::namespaced(client, server.ns());
    let svc = |spec: Value| -> Service {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "metrics"}, "spec": spec}))
        .unwrap()
    };
    let err = api
        .create(
            &PostParams::default(),
            &svc(json!({"selector": {"app": "a"}})),
        )
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        err.message,
        "Service \"metrics\" is invalid: spec.ports: Required value"
    );
    let err = api
        .create(
            &PostParams::default(),
            &svc(json!({"ports": [{"name": "a", "port": 80}, {"port": 70000}]})),
        )
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        causes(&err),
        [
            (
                "spec.ports[1].name".to_string(),
                "Required value".to_string()
            ),
            (
                "spec.ports[1].port".to_string(),
                "Invalid value: 70000: must be between 1 and 65535, inclusive".to_string()
            ),
            // targetPort is defaulted to the port before validation.
            (
                "spec.ports[1].targetPort".to_string(),
                "Invalid value: 70000: must be between 1 and 65535, inclusive".to_string()
            ),
        ]
    );
    let created = api
        .create(
            &PostParams::default(),
            &svc(json!({"ports": [{"name": "metrics", "port": 9090}]})),
        )
        .await
        .unwrap();
    let raw = serde_json::to_value(&created).unwrap();
    assert_eq!(raw["status"], json!({"loadBalancer": {}}));
    assert_eq!(
        created.metadata.generation, None,
        "Services have no generation"
    );
}

#[tokio::test]
async fn rbac_rules_need_verbs_and_role_ref_is_immutable() {
    let (server, client) = setup().await;
    let roles: Api<Role> = Api::namespaced(client.clone(), server.ns());
    let role: Role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": []}]
    }))
    .unwrap();
    let err = roles
        .create(&PostParams::default(), &role)
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        err.message,
        "Role.rbac.authorization.k8s.io \"reader\" is invalid: rules[0].verbs: Required value"
    );

    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), server.ns());
    let binding = |role: &str| -> RoleBinding {
        serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "readers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "castellan"}]
        }))
        .unwrap()
    };
    let created = bindings
        .create(&PostParams::default(), &binding("reader"))
        .await
        .unwrap();
    let mut changed = binding("writer");
    changed.metadata.resource_version = created.metadata.resource_version.clone();
    let err = bindings
        .replace("readers", &PostParams::default(), &changed)
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        err.message,
        "RoleBinding.rbac.authorization.k8s.io \"readers\" is invalid: roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"Role\",\"Name\":\"writer\"}: field is immutable"
    );

    // A ClusterRoleBinding may only bind a ClusterRole, and a ServiceAccount subject needs a
    // namespace there.
    let crbs: Api<ClusterRoleBinding> = Api::all(client);
    let name = format!("{}-castellan", server.ns());
    server.delete_at_end(format!(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}"
    ));
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "castellan"}]
    }))
    .unwrap();
    let err = crbs
        .create(&PostParams::default(), &crb)
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(
        causes(&err),
        [
            (
                "roleRef.kind".to_string(),
                "Unsupported value: \"Role\": supported values: \"ClusterRole\"".to_string()
            ),
            (
                "subjects[0].namespace".to_string(),
                "Required value".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn pdb_min_available_and_max_unavailable_are_exclusive() {
    let (server, client) = setup().await;
    let api: Api<PodDisruptionBudget> = Api::namespaced(client, server.ns());
    let pdb = |spec: Value| -> PodDisruptionBudget {
        serde_json::from_value(
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "castellan"}, "spec": spec}),
        )
        .unwrap()
    };
    let err = api
        .create(
            &PostParams::default(),
            &pdb(json!({"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}})),
        )
        .await
        .map_err(api_err)
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .ends_with("minAvailable and maxUnavailable cannot be both set"),
        "{}",
        err.message
    );
    let created = api
        .create(
            &PostParams::default(),
            &pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let status = created.status.unwrap();
    assert_eq!(
        (
            status.current_healthy,
            status.desired_healthy,
            status.disruptions_allowed,
            status.expected_pods
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn service_account_watch_sees_create_and_delete() {
    let (server, client) = setup().await;
    let api: Api<ServiceAccount> = Api::namespaced(client, server.ns());
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = Box::pin(
        api.watch(&WatchParams::default().timeout(10), &rv)
            .await
            .unwrap(),
    );
    let sa: ServiceAccount =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "castellan"}, "automountServiceAccountToken": true}))
        .unwrap();
    api.create(&PostParams::default(), &sa).await.unwrap();
    api.delete("castellan", &Default::default()).await.unwrap();
    use futures::StreamExt;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("watch event")
            .expect("stream open")
            .unwrap();
        // (kube-controller-manager gives every new namespace a `default` ServiceAccount,
        // possibly after the list above; the emulator has no such controller.)
        match ev {
            WatchEvent::Added(o) if o.name_any() == "castellan" => {
                seen.push(format!("ADDED {}", o.name_any()))
            }
            WatchEvent::Deleted(o) if o.name_any() == "castellan" => {
                seen.push(format!("DELETED {}", o.name_any()))
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["ADDED castellan", "DELETED castellan"]);
}

#[tokio::test]
async fn strategic_merge_patch_on_role_merges_like_a_json_merge() {
    let (server, client) = setup().await;
    let roles: Api<Role> = Api::namespaced(client, server.ns());
    let role: Role = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "labels": {"a": "1"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    // PolicyRule lists have no patch strategy: the list is replaced.
    let r = roles
        .patch(
            "reader",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"b": "2"}},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})),
        )
        .await
        .unwrap();
    assert_eq!(r.labels().len(), 2);
    let rules = r.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].verbs, ["list"]);
}

#[tokio::test]
async fn strategic_merge_patch_on_deployment_merges_lists_by_key() {
    let (server, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client, server.ns());
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a.example/x"]},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "main", "image": "app:1",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "name": "http"}]},
                    {"name": "sidecar", "image": "side:1"}
                ]}
            }
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    // What kubectl sends when a manifest changes one container's image and env, drops the
    // sidecar, adds a container, and switches the strategy to Recreate.
    let patch = json!({
        "metadata": {"finalizers": ["b.example/y"]},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "init"}, {"name": "main"}],
                // In $setElementOrder's order, as kubectl writes it (kube-apiserver answers a
                // patch list out of that order with a 500).
                "containers": [
                    {"name": "init", "image": "init:1"},
                    {"name": "main", "image": "app:2",
                     "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                     "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}]},
                    {"$patch": "delete", "name": "sidecar"}
                ]
            }}
        }
    });
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let v = serde_json::to_value(&d).unwrap();
    // Finalizers merge as a set; the patched one comes first (apimachinery's mergeSortedSlice
    // puts a server-only element first only when both are in the live list).
    assert_eq!(
        v["metadata"]["finalizers"],
        json!(["b.example/y", "a.example/x"])
    );
    assert_eq!(v["spec"]["strategy"], json!({"type": "Recreate"}));
    let containers = &v["spec"]["template"]["spec"]["containers"];
    // (With the pod-template defaults every write gets.)
    let defaults = json!({"imagePullPolicy": "IfNotPresent", "resources": {},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
    let with_defaults = |mut c: Value| {
        c.as_object_mut()
            .unwrap()
            .extend(defaults.as_object().unwrap().clone());
        c
    };
    assert_eq!(
        containers,
        &json!([
            with_defaults(json!({"name": "init", "image": "init:1"})),
            with_defaults(json!({"name": "main", "image": "app:2",
             "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}))
        ])
    );
    assert_eq!(d.metadata.generation, Some(2));
}

#[tokio::test]
async fn strategic_merge_patch_on_service_merges_ports_by_port() {
    let (server, client) = setup().await;
    let api: Api<Service> = Api::namespaced(client, server.ns());
    let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "metrics"},
        "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap();
    let s = api
        .patch(
            "metrics",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"port": 81, "name": "bee"}]}})),
        )
        .await
        .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    // Patched elements come in patch order; a server-only element stays before a patched one
    // that followed it in the live list. Each port has its defaults (protocol, targetPort).
    assert_eq!(
        v["spec"]["ports"],
        json!([
            {"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
            {"name": "bee", "port": 81, "protocol": "TCP", "targetPort": 81}
        ])
    );
}

/// kubectl 1.33 (see `kubectl.rs`): success, and stdout and stderr together.
async fn kubectl(k: &crate::kubectl::Kubectl, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = k.run(args).await;
    (ok, format!("{out}{err}"))
}

#[tokio::test]
async fn kubectl_apply_of_chart_kinds_creates_then_reports_unchanged() {
    let (server, _client) = setup().await;
    let k = crate::kubectl::kubectl(&server);
    let ns = server.ns();
    // The cluster-scoped objects get names of this test's own.
    let cluster_name = format!("{ns}-castellan");
    server.delete_at_end(format!(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/{cluster_name}"
    ));
    server.delete_at_end(format!(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{cluster_name}"
    ));
    let manifest = format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: castellan, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {cluster_name}}}
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {cluster_name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {cluster_name}}}
subjects: [{{kind: ServiceAccount, name: castellan, namespace: {ns}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: castellan-metrics, namespace: {ns}}}
spec:
  selector: {{app: castellan}}
  ports: [{{name: metrics, port: 9090, targetPort: metrics}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: castellan, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: castellan}}}}
  template:
    metadata: {{labels: {{app: castellan}}}}
    spec:
      serviceAccountName: castellan
      containers: [{{name: castellan, image: "example/castellan:1", args: [run]}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: castellan, namespace: {ns}}}
spec:
  maxUnavailable: 1
  selector: {{matchLabels: {{app: castellan}}}}
"#
    );
    let path = k.file("chart.yaml", &manifest);
    let (out, log) = k.ok_logged(&["apply", "-f", &path]).await;
    assert_eq!(out.matches(" created").count(), 6, "{out}");
    let creates: Vec<_> = log.iter().filter(|r| r.verb == "POST").collect();
    assert_eq!(creates.len(), 6, "{log:#?}");
    assert!(
        creates
            .iter()
            .all(|r| r.query.contains("fieldValidation=Strict")),
        "default kubectl apply validates strictly: {log:#?}"
    );
    let (ok, out) = kubectl(&k, &["apply", "-f", &path]).await;
    assert!(ok, "{out}");
    // A PodDisruptionBudget's selector has patch strategy `replace` (kube-apiserver's OpenAPI
    // says so; against the emulator kubectl's compiled-in types do), so kubectl re-sends it on
    // every apply and says "configured" (the server finds nothing changed). No warning either.
    assert!(
        out.contains("poddisruptionbudget.policy/castellan configured"),
        "{out}"
    );
    assert_eq!(out.matches(" unchanged").count(), 5, "{out}");
    assert!(!out.to_lowercase().contains("warning"), "{out}");
    let (ok, out) = kubectl(
        &k,
        &[
            "get",
            "deploy",
            "castellan",
            "-o",
            "jsonpath={.metadata.generation}",
        ],
    )
    .await;
    assert!(ok && out == "1", "{out}");
    // An upgrade: kubectl computes a strategic merge patch for the Deployment.
    let changed = manifest
        .replace("args: [run]", "args: [run, --leader-elect]")
        .replace("maxUnavailable: 1", "maxUnavailable: 2");
    let changed_path = k.file("chart-2.yaml", &changed);
    let (ok, out) = kubectl(&k, &["apply", "-f", &changed_path]).await;
    assert!(ok, "{out}");
    assert_eq!(out.matches(" configured").count(), 2, "{out}");
    let (ok, out) = kubectl(
        &k,
        &[
            "get",
            "deploy",
            "castellan",
            "-o",
            "jsonpath={.metadata.generation} {.spec.template.spec.containers[0].args}",
        ],
    )
    .await;
    assert!(ok && out == "2 [\"run\",\"--leader-elect\"]", "{out}");
    let (ok, out) = kubectl(&k, &["delete", "-f", &path]).await;
    assert!(ok, "{out}");
    assert_eq!(out.matches(" deleted").count(), 6, "{out}");
}
