//! (K) kubectl's typed `create` generators, which send protobuf bodies for built-in kinds.

use super::{kubectl, Logged};
use crate::common::*;
use base64::Engine;

/// The status kubectl logged for its create (POST) of `resource`.
fn created(log: &[Logged], resource: &str) -> u16 {
    log.iter()
        .find(|r| r.verb == "POST" && r.path.ends_with(&format!("/{resource}")))
        .map(|r| r.code)
        .unwrap_or(0)
}

#[tokio::test]
async fn kubectl_create_namespace() {
    let (server, _client) = setup().await;
    let k = kubectl(&server);
    let demo = format!("{}-demo", server.ns());
    server.delete_at_end(format!("/api/v1/namespaces/{demo}"));
    let (ok, _, err) = k.run(&["create", "namespace", &demo, "-v=8"]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl no longer sends protobuf here; this test lost its point:\n{err}"
    );
    assert_eq!(created(&super::logged_requests(&err), "namespaces"), 201);
    let phase = k
        .ok(&["get", "namespace", &demo, "-o", "jsonpath={.status.phase}"])
        .await;
    assert_eq!(phase, "Active");
    // Objects made from protobuf are ordinary: a namespaced create goes into it.
    k.ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        &demo,
        "--from-literal=k=v",
    ])
    .await;
    let (ok, _, err) = k.run(&["create", "namespace", &demo]).await;
    assert!(!ok);
    assert!(err.contains("AlreadyExists"), "{err}");
}

#[tokio::test]
async fn kubectl_create_secret_generic_round_trips_data_byte_exact() {
    let (server, _client) = setup().await;
    let k = kubectl(&server);
    let bin: &[u8] = &[0, 0xff, 0x10, b'\n', 0x80];
    let path = k.dir.join("bin");
    std::fs::write(&path, bin).unwrap();
    let from_file = format!("--from-file=bin={}", path.display());
    let (_, log) = k
        .ok_logged(&[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=a=b",
            &from_file,
        ])
        .await;
    assert_eq!(created(&log, "secrets"), 201);
    let a = k
        .ok(&["get", "secret", "s1", "-o", "jsonpath={.data.a}"])
        .await;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(a.trim()).unwrap(), b"b");
    let b = k
        .ok(&["get", "secret", "s1", "-o", "jsonpath={.data.bin}"])
        .await;
    assert_eq!(b64.decode(b.trim()).unwrap(), bin);
    let ty = k
        .ok(&["get", "secret", "s1", "-o", "jsonpath={.type}"])
        .await;
    assert_eq!(ty, "Opaque");
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "d1",
        "--docker-username=u",
        "--docker-password=p",
        "--docker-server=r.example",
    ])
    .await;
    let ty = k
        .ok(&["get", "secret", "d1", "-o", "jsonpath={.type}"])
        .await;
    assert_eq!(ty, "kubernetes.io/dockerconfigjson");
}

#[tokio::test]
async fn kubectl_create_configmap() {
    let (server, _client) = setup().await;
    let k = kubectl(&server);
    let bin: &[u8] = &[0, 0xff, 0x10];
    let path = k.dir.join("blob");
    std::fs::write(&path, bin).unwrap();
    let from_file = format!("--from-file=blob={}", path.display());
    let (_, log) = k
        .ok_logged(&[
            "create",
            "configmap",
            "c1",
            "--from-literal=a=b",
            &from_file,
        ])
        .await;
    assert_eq!(created(&log, "configmaps"), 201);
    let out = k.ok(&["get", "configmap", "c1", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"], serde_json::json!({"a": "b"}));
    // Non-UTF-8 file contents go to binaryData, base64 in JSON.
    assert_eq!(v["binaryData"], serde_json::json!({"blob": "AP8Q"}));
}

#[tokio::test]
async fn kubectl_create_generators_for_other_builtins() {
    let (server, _client) = setup().await;
    let k = kubectl(&server);
    // Cluster-scoped objects get names of this test's own.
    let ns = server.ns().to_string();
    let (cr1, cr2, crb1) = (
        format!("{ns}-cr1"),
        format!("{ns}-cr2"),
        format!("{ns}-crb1"),
    );
    for name in [&cr1, &cr2] {
        server.delete_at_end(format!(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"
        ));
    }
    server.delete_at_end(format!(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{crb1}"
    ));
    let service_account = format!("--serviceaccount={ns}:sa1");
    let cluster_role = format!("--clusterrole={cr1}");
    let mut creates = Vec::new();
    for args in [
        &["create", "serviceaccount", "sa1"][..],
        &["create", "service", "clusterip", "svc1", "--tcp=5678:8080"],
        &[
            "create",
            "service",
            "nodeport",
            "np1",
            "--tcp=80:8080",
            "--node-port=30080",
        ],
        &[
            "create",
            "service",
            "externalname",
            "en1",
            "--external-name=example.com",
        ],
        &[
            "create",
            "deployment",
            "dep1",
            "--image=nginx",
            "--port=80",
            "--replicas=2",
            "--",
            "sleep",
            "10",
        ],
        &[
            "create",
            "role",
            "r1",
            "--verb=get,list",
            "--resource=configmaps,deployments.apps",
            "--resource-name=x",
        ],
        &[
            "create",
            "rolebinding",
            "rb1",
            "--role=r1",
            "--user=alice",
            &service_account,
        ],
        &[
            "create",
            "clusterrole",
            &cr1,
            "--verb=get",
            "--non-resource-url=/logs/*",
        ],
        &["create", "clusterrole", &cr2, "--aggregation-rule=a=b"],
        &[
            "create",
            "clusterrolebinding",
            &crb1,
            &cluster_role,
            "--group=g",
        ],
        &[
            "create",
            "poddisruptionbudget",
            "p1",
            "--selector=app=x,tier notin (db)",
            "--min-available=50%",
        ],
    ] {
        let (_, log) = k.ok_logged(args).await;
        creates.extend(log.into_iter().filter(|r| r.verb == "POST"));
    }
    let get = |r: String, path: &'static str| {
        let k = &k;
        async move { k.ok(&["get", &r, "-o", &format!("jsonpath={path}")]).await }
    };
    let get = |r: &str, path: &'static str| get(r.to_string(), path);
    assert_eq!(
        get("service/np1", "{.spec.ports[0].nodePort}").await,
        "30080"
    );
    assert_eq!(
        get("service/svc1", "{.spec.ports[0].targetPort}").await,
        "8080"
    );
    assert_eq!(
        get("service/en1", "{.spec.externalName}").await,
        "example.com"
    );
    assert_eq!(get("deployment/dep1", "{.spec.replicas}").await, "2");
    assert_eq!(
        get(
            "deployment/dep1",
            "{.spec.template.spec.containers[0].command}"
        )
        .await,
        r#"["sleep","10"]"#
    );
    assert_eq!(
        get(
            "deployment/dep1",
            "{.spec.template.spec.containers[0].ports[0].containerPort}"
        )
        .await,
        "80"
    );
    assert_eq!(get("role/r1", "{.rules[1].apiGroups[0]}").await, "apps");
    assert_eq!(get("rolebinding/rb1", "{.subjects[1].namespace}").await, ns);
    assert_eq!(
        get(
            &format!("clusterrole/{cr1}"),
            "{.rules[0].nonResourceURLs[0]}"
        )
        .await,
        "/logs/*"
    );
    assert_eq!(
        get(
            &format!("clusterrole/{cr2}"),
            "{.aggregationRule.clusterRoleSelectors[0].matchLabels.a}"
        )
        .await,
        "b"
    );
    assert_eq!(
        get(&format!("clusterrolebinding/{crb1}"), "{.roleRef.name}").await,
        cr1
    );
    assert_eq!(get("pdb/p1", "{.spec.minAvailable}").await, "50%");
    assert_eq!(
        get("pdb/p1", "{.spec.selector.matchExpressions[0].operator}").await,
        "NotIn"
    );
    assert_eq!(
        creates.iter().filter(|r| r.code == 201).count(),
        11,
        "{creates:#?}"
    );
}
