//! resourceVersion, concurrency, generation, status subresource, identity.

use crate::common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn create_returns_201_uid_seconds_timestamp_generation_1_and_rv() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = raw(
        &server,
        "POST",
        &server.widgets_path(),
        &[JSON],
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":1}}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = r.json();
    assert!(!o["metadata"]["uid"].as_str().unwrap().is_empty());
    let ts = o["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && !ts.contains('.'), "{ts}");
    assert_eq!(o["metadata"]["generation"], 1);
    assert!(!o["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(o["metadata"]["namespace"], server.ns());
    // Empty metadata collections are omitted.
    assert!(o["metadata"].get("finalizers").is_none());
    assert!(o["metadata"].get("labels").is_none());
}

#[tokio::test]
async fn every_write_gets_a_new_rv_and_list_rv_is_latest() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    assert_ne!(rv(&a), rv(&b));
    let list = api.list(&Default::default()).await.unwrap();
    let list_rv = list.metadata.resource_version.unwrap();
    // A list's resourceVersion is the store's latest: not older than any write made before it.
    // (On a shared real server other writes may have come since, so it may be newer.)
    let number = |rv: &str| rv.parse::<u64>().unwrap();
    assert!(
        number(&list_rv) >= number(&rv(&b)),
        "{list_rv} < {}",
        rv(&b)
    );
    if let Some(hooks) = server.hooks() {
        // The emulator alone: nothing else writes.
        assert_eq!(list_rv, rv(&b));
        assert_eq!(hooks.current_resource_version().to_string(), rv(&b));
    }
}

#[tokio::test]
async fn replace_with_stale_rv_is_409_conflict() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let mut b = a.clone();
    b.data["spec"]["size"] = json!(2);
    api.replace("w1", &PostParams::default(), &b).await.unwrap();
    let mut stale = a.clone();
    stale.data["spec"]["size"] = json!(3);
    let e = api_err(
        api.replace("w1", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on widgets.example.com \"w1\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn replace_cr_without_rv_is_422() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let e = api_err(
        api.replace("w1", &PostParams::default(), &widget("w1", 2))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("must be specified for an update"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn replace_missing_cr_is_404() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("nope", 1);
    w.metadata.resource_version = Some("5".into());
    let e = api_err(
        api.replace("nope", &PostParams::default(), &w)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn merge_patch_with_stale_rv_is_409() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec":{"size":2}})),
    )
    .await
    .unwrap();
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"resourceVersion": rv(&a)},"spec":{"size":3}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 409);
}

#[tokio::test]
async fn create_with_resource_version_is_rejected() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.metadata.resource_version = Some("7".into());
    // A 500 without a reason, as kube-apiserver 1.37.2 answers (etcd3 store's Create).
    let e = api_err(api.create(&PostParams::default(), &w).await.unwrap_err());
    assert_eq!(e.code, 500, "{e:?}");
    assert_eq!(e.reason, "");
    assert_eq!(
        e.message,
        "resourceVersion should not be set on objects to be created"
    );
    assert!(api.get_opt("w1").await.unwrap().is_none());
}

#[tokio::test]
async fn no_op_writes_keep_rv_and_send_no_event() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let before = rv(&a);
    // PUT of the same object.
    let b = api.replace("w1", &PostParams::default(), &a).await.unwrap();
    assert_eq!(rv(&a), rv(&b));
    // Merge patch with the same value.
    let c = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec":{"size":1}})),
        )
        .await
        .unwrap();
    assert_eq!(rv(&a), rv(&c));
    // SSA twice with the same content.
    let pp = PatchParams::apply("mgr").force();
    let body = json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":4}});
    let d = api
        .patch("w1", &pp, &Patch::Apply(body.clone()))
        .await
        .unwrap();
    let e = api.patch("w1", &pp, &Patch::Apply(body)).await.unwrap();
    assert_eq!(rv(&d), rv(&e));
    // Status via /status with the same value twice.
    let st = json!({"status":{"phase":"Ready"}});
    let f = api
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(st.clone()))
        .await
        .unwrap();
    let g = api
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(st))
        .await
        .unwrap();
    assert_eq!(rv(&f), rv(&g));
    // Exactly two real writes happened since `before` (SSA change, status change).
    if let Some(hooks) = server.hooks() {
        assert_eq!(
            hooks.current_resource_version(),
            before.parse::<u64>().unwrap() + 2
        );
    }
    // And a watch from `before` sees exactly two events.
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=true&resourceVersion={before}&timeoutSeconds=1",
            server.widgets_path()
        ),
        &[],
        "",
    )
    .await;
    assert_eq!(r.lines().len(), 2, "{}", r.body);
}

#[tokio::test]
async fn spec_change_bumps_generation() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec":{"size":2}})),
        )
        .await
        .unwrap();
    assert_eq!(o.metadata.generation, Some(2));
}

#[tokio::test]
async fn metadata_changes_do_not_bump_generation() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"labels":{"a":"b"},"annotations":{"x":"y"},"finalizers":["example.com/f"]}})),
        )
        .await
        .unwrap();
    assert_eq!(o.metadata.generation, Some(1));
    assert_eq!(
        o.metadata.finalizers,
        Some(vec!["example.com/f".to_string()])
    );
}

#[tokio::test]
async fn status_via_status_subresource_keeps_generation() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status":{"phase":"Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(o.metadata.generation, Some(1));
    assert_eq!(o.data["status"]["phase"], "Ready");
    // PUT /status as well.
    let mut put = o.clone();
    put.data["status"]["phase"] = json!("Done");
    let o = api
        .replace_status("w1", &PostParams::default(), &put)
        .await
        .unwrap();
    assert_eq!(o.data["status"]["phase"], "Done");
    assert_eq!(o.metadata.generation, Some(1));
    assert_ne!(rv(&a), rv(&o));
}

#[tokio::test]
async fn status_via_main_endpoint_is_ignored() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status":{"phase":"Ready"}})),
        )
        .await
        .unwrap();
    assert!(o.data.get("status").is_none(), "{:?}", o.data);
    assert_eq!(rv(&a), rv(&o));
    let mut put = a.clone();
    put.data["status"] = json!({"phase":"Ready"});
    let o = api
        .replace("w1", &PostParams::default(), &put)
        .await
        .unwrap();
    assert!(o.data.get("status").is_none());
    let o = api
        .patch(
            "w1",
            &PatchParams::apply("m"),
            &Patch::Apply(json!({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":1},"status":{"phase":"X"}})),
        )
        .await
        .unwrap();
    assert!(o.data.get("status").is_none());
    assert!(api.get("w1").await.unwrap().data.get("status").is_none());
    // Only the apply's managedFields entry is a real change.
    let r = raw(
        &server,
        "GET",
        &format!(
            "{}?watch=true&resourceVersion={}&timeoutSeconds=1",
            server.widgets_path(),
            rv(&a)
        ),
        &[],
        "",
    )
    .await;
    assert!(r.lines().len() <= 1, "{}", r.body);
}

#[tokio::test]
async fn spec_labels_finalizers_sent_to_status_are_ignored() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    api.create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    let o = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata":{"labels":{"a":"b"},"finalizers":["example.com/x"]},"spec":{"size":9},"status":{"phase":"P"}})),
        )
        .await
        .unwrap();
    assert_eq!(o.data["spec"]["size"], 1);
    assert!(o.metadata.labels.is_none());
    assert!(o.metadata.finalizers.is_none());
    assert_eq!(o.data["status"]["phase"], "P");
}

#[tokio::test]
async fn create_with_status_drops_it() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let mut w = widget("w1", 1);
    w.data["status"] = json!({"phase":"Ready"});
    let o = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(o.data.get("status").is_none());
}

#[tokio::test]
async fn without_status_subresource_status_is_stored_and_bumps_generation() {
    let (server, client) = setup().await;
    install(&server, gadget_crd()).await;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &gadget_ar());
    // Cluster-scoped: a name of this test's own.
    let name = format!("{}-g1", server.ns());
    server.delete_at_end(format!("/apis/example.com/v1/gadgets/{name}"));
    let g: DynamicObject = serde_json::from_value(json!({"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":name},"spec":{"a":1},"status":{"s":1}})).unwrap();
    let o = api.create(&PostParams::default(), &g).await.unwrap();
    assert_eq!(o.data["status"]["s"], 1);
    let o = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status":{"s":2}})),
        )
        .await
        .unwrap();
    assert_eq!(o.data["status"]["s"], 2);
    assert_eq!(o.metadata.generation, Some(2));
}

#[tokio::test]
async fn create_in_missing_namespace_is_404() {
    let (server, client) = setup().await;
    install(&server, widget_crd()).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "nope", &widget_ar());
    let mut w = widget("w1", 1);
    w.metadata.namespace = Some("nope".into());
    let e = api_err(api.create(&PostParams::default(), &w).await.unwrap_err());
    assert_eq!(e.code, 404);
    assert_eq!(e.message, "namespaces \"nope\" not found");
}

#[tokio::test]
async fn name_namespace_rules() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    // Not a DNS-1123 subdomain → 422.
    let e = api_err(
        api.create(&PostParams::default(), &widget("Bad_Name", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    // Body namespace differs from the URL → 400.
    let r = raw(
        &server,
        "POST",
        &server.widgets_path(),
        &[JSON],
        r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"kube-system"},"spec":{"size":1}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // generateName.
    let mut w = widget("", 1);
    w.metadata.name = None;
    w.metadata.generate_name = Some("gen-".into());
    let o = api.create(&PostParams::default(), &w).await.unwrap();
    let n = o.metadata.name.unwrap();
    assert!(n.starts_with("gen-") && n.len() == 9, "{n}");
    // Same name in another namespace is independent; cluster-scoped path for a namespaced kind is 404.
    let r = raw(&server, "GET", "/apis/example.com/v1/widgets/w1", &[], "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn tolerates_leading_ampersand_and_bare_question_mark() {
    let (server, _) = setup().await;
    let _ = widgets(&server).await;
    let r = raw(
        &server,
        "GET",
        &format!("{}?&limit=5&", server.widgets_path()),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw(
        &server,
        "GET",
        &format!("/api/v1/namespaces/{}?", server.ns()),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn uid_and_creation_timestamp_are_immutable() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let a = api
        .create(&PostParams::default(), &widget("w1", 1))
        .await
        .unwrap();
    // A replace naming another uid fails its storage precondition: 409, not 422.
    let mut b = a.clone();
    b.metadata.uid = Some("other".into());
    let e = api_err(
        api.replace("w1", &PostParams::default(), &b)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        format!(
            "Operation cannot be fulfilled on widgets.example.com \"w1\": StorageError: invalid \
             object, Code: 4, Key: /registry/example.com/widgets/{}/w1, ResourceVersion: 0, \
             AdditionalErrorMsg: Precondition failed: UID in precondition: other, UID in object \
             meta: {}",
            server.ns(),
            a.metadata.uid.as_deref().unwrap()
        )
    );
    // A patch that changes it is invalid (twice: a custom resource's metadata is validated
    // by the update and again by its strategy).
    let e = api_err(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"uid": "other"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "Widget.example.com \"w1\" is invalid: metadata.uid: Invalid value: \"other\": field is immutable"
    );
    assert_eq!(e.details.unwrap().causes.len(), 2);
    let mut c = a.clone();
    c.metadata.creation_timestamp = None;
    c.data["spec"]["size"] = json!(2);
    let o = api.replace("w1", &PostParams::default(), &c).await.unwrap();
    assert_eq!(o.metadata.creation_timestamp, a.metadata.creation_timestamp);
}

#[tokio::test]
async fn builtins_configmap_secret_lease_namespace() {
    let (server, client) = setup().await;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
    let nss: Api<Namespace> = Api::all(client.clone());
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = nss.get(n).await.unwrap();
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    }
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata":{"name":"c"},"data":{"a":"1"}})).unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(cm.metadata.generation.is_none());
    // Built-ins accept PUT without resourceVersion.
    let mut cm2 = cm.clone();
    cm2.metadata.resource_version = None;
    cm2.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("c", &PostParams::default(), &cm2)
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let s: Secret =
        serde_json::from_value(json!({"metadata":{"name":"s"},"stringData":{"k":"v"}})).unwrap();
    let s = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(s.data.unwrap()["k"].0, b"v".to_vec());
    // Lease with strategic merge patch.
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let l: Lease = serde_json::from_value(
        json!({"metadata":{"name":"l"},"spec":{"holderIdentity":"a","leaseDurationSeconds":10}}),
    )
    .unwrap();
    leases.create(&PostParams::default(), &l).await.unwrap();
    let l = leases
        .patch(
            "l",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec":{"holderIdentity":"b"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        l.spec.clone().unwrap().holder_identity.as_deref(),
        Some("b")
    );
    let mut again = l.clone();
    again.metadata.resource_version = None;
    let e = api_err(
        leases
            .create(&PostParams::default(), &again)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "AlreadyExists");
    // Namespace create and a typed list without apiVersion/kind on items.
    let name = format!("{}-a", server.ns());
    server.delete_at_end(format!("/api/v1/namespaces/{name}"));
    let ns: Namespace = serde_json::from_value(json!({"metadata":{"name":name}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let r = raw(&server, "GET", "/api/v1/namespaces", &[], "").await;
    let list = r.json();
    assert_eq!(list["kind"], "NamespaceList");
    assert!(list["items"][0].get("kind").is_none());
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let (server, _) = setup().await;
    let api = widgets(&server).await;
    let before = server.hooks().map(|h| h.current_resource_version());
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let o = api.create(&pp, &widget("w1", 1)).await.unwrap();
    assert_eq!(o.metadata.name.as_deref(), Some("w1"));
    assert!(api.get_opt("w1").await.unwrap().is_none());
    if let Some(hooks) = server.hooks() {
        assert_eq!(Some(hooks.current_resource_version()), before);
    }
    let r = raw(&server, "POST", &format!("{}?dryRun=Some", server.widgets_path()), &[JSON], r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":1}}"#).await;
    assert_eq!(r.status, 422);
}

/// kube-apiserver's namespace strategy sets `kubernetes.io/metadata.name` to the name on create
/// and puts it back on update, whatever the client sent (NetworkPolicies select namespaces by it).
#[tokio::test]
async fn namespaces_carry_their_name_label_whatever_the_client_sends() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::ResourceExt;
    let (server, client) = setup().await;
    let namespaces: Api<Namespace> = Api::all(client);
    let name = format!("{}-a", server.ns());
    server.delete_at_end(format!("/api/v1/namespaces/{name}"));
    let label = |ns: &Namespace| {
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/metadata.name").cloned())
    };
    let created = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": "other"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(label(&created).as_deref(), Some(name.as_str()));
    let patched = namespaces
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"kubernetes.io/metadata.name": null, "tier": "gold"}}})),
        )
        .await
        .unwrap();
    assert_eq!(label(&patched).as_deref(), Some(name.as_str()));
    assert_eq!(
        patched.labels().get("tier").map(String::as_str),
        Some("gold")
    );
    assert_eq!(
        label(&namespaces.get("default").await.unwrap()).as_deref(),
        Some("default")
    );
}
