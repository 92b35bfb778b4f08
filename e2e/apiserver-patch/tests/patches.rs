//! JSON merge patch, JSON patch (evanphx behaviour) and strategic merge patch.

use castellan_apiserver_patch::{json_patch, merge_patch, strategic_merge_patch, PatchError};
use serde_json::{json, Value};

fn widget(finalizers: Option<Value>) -> Value {
    let mut w = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"size": 3, "tags": ["a", "b"]},
    });
    if let Some(f) = finalizers {
        w["metadata"]["finalizers"] = f;
    }
    w
}

#[test]
fn merge_patch_null_deletes_a_member_and_merges_nested_objects() {
    let mut w = widget(None);
    merge_patch(&mut w, &json!({"spec": {"size": null, "colour": "red"}}));
    assert_eq!(w["spec"], json!({"tags": ["a", "b"], "colour": "red"}));
}

#[test]
fn merge_patch_replaces_lists_instead_of_merging_them() {
    let mut w = widget(None);
    merge_patch(&mut w, &json!({"spec": {"tags": ["c"]}}));
    assert_eq!(w["spec"]["tags"], json!(["c"]));
}

#[test]
fn merge_patch_with_finalizers_null_removes_the_field() {
    let mut w = widget(Some(json!(["a/b"])));
    merge_patch(&mut w, &json!({"metadata": {"finalizers": null}}));
    assert!(w["metadata"].get("finalizers").is_none());
}

#[test]
fn merge_patch_that_is_not_an_object_replaces_the_target() {
    let mut w = widget(None);
    merge_patch(&mut w, &json!(["x"]));
    assert_eq!(w, json!(["x"]));
}

#[test]
fn merge_patch_creating_a_new_object_drops_its_null_members() {
    let mut w = widget(None);
    merge_patch(
        &mut w,
        &json!({"status": {"phase": "Ready", "message": null}}),
    );
    assert_eq!(w["status"], json!({"phase": "Ready"}));
}

#[test]
fn json_patch_test_null_on_a_missing_member_passes_so_the_finalizer_helper_adds_the_first_finalizer(
) {
    // kube-runtime finalizer(), object without finalizers (contract §1.4, verbatim).
    let ops = json!([
        {"op":"test","path":"/metadata/finalizers","value":null},
        {"op":"add","path":"/metadata/finalizers","value":["castellan.io/cleanup"]}
    ]);
    let out = json_patch(&widget(None), &ops).unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["castellan.io/cleanup"])
    );
}

#[test]
fn json_patch_test_null_fails_when_the_member_has_a_value() {
    let ops = json!([
        {"op":"test","path":"/metadata/finalizers","value":null},
        {"op":"add","path":"/metadata/finalizers","value":["castellan.io/cleanup"]}
    ]);
    let err = json_patch(&widget(Some(json!(["other"]))), &ops).unwrap_err();
    assert_eq!(err.code(), 422);
}

#[test]
fn json_patch_test_on_a_missing_parent_fails_even_with_null() {
    let ops = json!([{"op":"test","path":"/status/conditions","value":null}]);
    assert_eq!(json_patch(&widget(None), &ops).unwrap_err().code(), 422);
}

#[test]
fn json_patch_adds_a_finalizer_after_existing_ones_with_the_dash_index() {
    let ops = json!([
        {"op":"test","path":"/metadata/finalizers","value":["other"]},
        {"op":"add","path":"/metadata/finalizers/-","value":"castellan.io/cleanup"}
    ]);
    let out = json_patch(&widget(Some(json!(["other"]))), &ops).unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["other", "castellan.io/cleanup"])
    );
}

#[test]
fn json_patch_removes_the_finalizer_at_the_tested_index() {
    let ops = json!([
        {"op":"test","path":"/metadata/finalizers/1","value":"castellan.io/cleanup"},
        {"op":"remove","path":"/metadata/finalizers/1"}
    ]);
    let out = json_patch(
        &widget(Some(json!(["other", "castellan.io/cleanup"]))),
        &ops,
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["other"]));
}

#[test]
fn json_patch_failed_test_is_unprocessable_and_leaves_the_input_unchanged() {
    let before = widget(Some(json!(["other", "castellan.io/cleanup"])));
    let input = before.clone();
    let ops = json!([
        {"op":"remove","path":"/spec/size"},
        {"op":"test","path":"/metadata/finalizers/0","value":"castellan.io/cleanup"},
        {"op":"remove","path":"/metadata/finalizers/0"}
    ]);
    let err = json_patch(&input, &ops).unwrap_err();
    assert_eq!(
        err,
        PatchError::Unprocessable(
            "testing value /metadata/finalizers/0 failed: test failed".into()
        )
    );
    assert_eq!(err.code(), 422);
    assert_eq!(input, before);
}

#[test]
fn json_patch_remove_of_a_missing_member_is_unprocessable() {
    let ops = json!([{"op":"remove","path":"/spec/nothing"}]);
    assert_eq!(json_patch(&widget(None), &ops).unwrap_err().code(), 422);
}

#[test]
fn json_patch_replace_of_a_missing_member_is_unprocessable() {
    let ops = json!([{"op":"replace","path":"/spec/nothing","value":1}]);
    assert_eq!(json_patch(&widget(None), &ops).unwrap_err().code(), 422);
}

#[test]
fn json_patch_document_that_is_not_a_list_is_a_bad_request() {
    let err = json_patch(&widget(None), &json!({"op":"add"})).unwrap_err();
    assert_eq!(err.code(), 400);
}

#[test]
fn json_patch_unknown_op_is_rejected() {
    let err = json_patch(&widget(None), &json!([{"op":"frobnicate","path":"/spec"}])).unwrap_err();
    assert!(err.to_string().contains("frobnicate"), "{err}");
}

#[test]
fn json_patch_replace_move_and_copy_follow_rfc_6902() {
    let ops = json!([
        {"op":"replace","path":"/spec/size","value":5},
        {"op":"copy","from":"/spec/size","path":"/spec/min"},
        {"op":"move","from":"/spec/tags/0","path":"/spec/tags/-"},
        {"op":"add","path":"/metadata/annotations","value":{"a~b/c":"x"}},
        {"op":"replace","path":"/metadata/annotations/a~0b~1c","value":"y"}
    ]);
    let out = json_patch(&widget(None), &ops).unwrap();
    assert_eq!(
        out["spec"],
        json!({"size": 5, "min": 5, "tags": ["b", "a"]})
    );
    assert_eq!(out["metadata"]["annotations"], json!({"a~b/c": "y"}));
}

#[test]
fn json_patch_move_into_its_own_child_is_rejected() {
    let ops = json!([{"op":"move","from":"/spec","path":"/spec/inner"}]);
    assert_eq!(json_patch(&widget(None), &ops).unwrap_err().code(), 422);
}

#[test]
fn json_patch_test_compares_numbers_by_value_and_objects_deeply() {
    let ops = json!([
        {"op":"test","path":"/spec/size","value":3.0},
        {"op":"test","path":"/spec","value":{"tags":["a","b"],"size":3}}
    ]);
    assert!(json_patch(&widget(None), &ops).is_ok());
}

#[test]
fn json_patch_accepts_negative_indices_like_evanphx() {
    let ops = json!([{"op":"remove","path":"/spec/tags/-1"}]);
    let out = json_patch(&widget(None), &ops).unwrap();
    assert_eq!(out["spec"]["tags"], json!(["a"]));
}

#[test]
fn json_patch_add_past_the_end_of_a_list_is_rejected() {
    let ops = json!([{"op":"add","path":"/spec/tags/5","value":"z"}]);
    assert_eq!(json_patch(&widget(None), &ops).unwrap_err().code(), 422);
}

fn lease() -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "castellan", "namespace": "ns"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                 "renewTime": "2026-11-20T23:00:00.000000Z", "leaseTransitions": 2},
    })
}

#[test]
fn strategic_merge_patch_on_a_lease_merges_like_a_json_merge_patch() {
    let mut l = lease();
    strategic_merge_patch(
        &mut l,
        &json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
                "spec":{"renewTime":"2026-11-20T23:00:05.000000Z","leaseDurationSeconds":15}}),
    )
    .unwrap();
    assert_eq!(l["spec"]["renewTime"], "2026-11-20T23:00:05.000000Z");
    assert_eq!(l["spec"]["holderIdentity"], "a");
    assert_eq!(l["spec"]["leaseTransitions"], 2);
}

#[test]
fn strategic_merge_patch_null_deletes_members() {
    let mut l = lease();
    strategic_merge_patch(
        &mut l,
        &json!({"spec":{"holderIdentity":null,"renewTime":null}}),
    )
    .unwrap();
    assert_eq!(
        l["spec"],
        json!({"leaseDurationSeconds": 15, "leaseTransitions": 2})
    );
}

#[test]
fn strategic_merge_patch_delete_directive_empties_the_map() {
    let mut cm = json!({"kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"1","b":"2"}},"data":{"k":"v"}});
    strategic_merge_patch(&mut cm, &json!({"metadata":{"labels":{"$patch":"delete"}}})).unwrap();
    assert_eq!(cm["metadata"]["labels"], json!({}));
    assert_eq!(cm["data"], json!({"k":"v"}));
}

#[test]
fn strategic_merge_patch_replace_directive_replaces_the_map() {
    let mut cm = json!({"kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v","old":"x"}});
    strategic_merge_patch(&mut cm, &json!({"data":{"$patch":"replace","k":"w"}})).unwrap();
    assert_eq!(cm["data"], json!({"k":"w"}));
}

#[test]
fn strategic_merge_patch_unknown_directive_is_a_bad_request_and_changes_nothing() {
    let mut cm = json!({"kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}});
    let before = cm.clone();
    let err = strategic_merge_patch(
        &mut cm,
        &json!({"data":{"k":"w"},"metadata":{"$patch":"explode"}}),
    )
    .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(cm, before);
}

#[test]
fn strategic_merge_patch_replaces_lists_and_honours_delete_from_primitive_list() {
    let mut ns = json!({"kind":"Namespace","metadata":{"name":"n","finalizers":["a","b","c"]},"spec":{"finalizers":["kubernetes"]}});
    strategic_merge_patch(
        &mut ns,
        &json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["b"],"$setElementOrder/finalizers":["a","c"]},
                "spec":{"finalizers":[]}}),
    )
    .unwrap();
    assert_eq!(ns["metadata"]["finalizers"], json!(["a", "c"]));
    assert_eq!(ns["spec"]["finalizers"], json!([]));
}

mod keyed_lists {
    use castellan_apiserver_patch::{strategic_merge_patch_with, ListStrategy};
    use serde_json::{json, Value};

    fn strategies(path: &str) -> ListStrategy {
        match path {
            "containers" => ListStrategy::MergeByKey("name"),
            "containers.env" => ListStrategy::MergeByKey("name"),
            "finalizers" => ListStrategy::MergePrimitives,
            _ => ListStrategy::Replace,
        }
    }

    fn smp(live: Value, patch: Value) -> Value {
        let mut v = live;
        strategic_merge_patch_with(&mut v, &patch, &strategies).unwrap();
        v
    }

    #[test]
    fn elements_merge_by_key_and_new_ones_are_appended() {
        let live = json!({"containers": [{"name": "a", "image": "1", "x": 1}, {"name": "b", "image": "1"}]});
        let out = smp(
            live,
            json!({"containers": [{"name": "b", "image": "2"}, {"name": "c", "image": "3"}]}),
        );
        // a is server-only and came before b in the live list; c is new.
        assert_eq!(
            out,
            json!({"containers": [{"name": "a", "image": "1", "x": 1}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]})
        );
    }

    #[test]
    fn delete_and_replace_elements() {
        let live = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let out = smp(
            live.clone(),
            json!({"containers": [{"$patch": "delete", "name": "a"}]}),
        );
        assert_eq!(out, json!({"containers": [{"name": "b"}]}));
        let out = smp(
            live.clone(),
            json!({"containers": [{"$patch": "replace"}, {"name": "z"}]}),
        );
        assert_eq!(out, json!({"containers": [{"name": "z"}]}));
        let mut v = live;
        let err = strategic_merge_patch_with(
            &mut v,
            &json!({"containers": [{"image": "no-key"}]}),
            &strategies,
        )
        .unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn set_element_order_orders_patched_elements() {
        let live = json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]});
        let out = smp(
            live.clone(),
            json!({"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                   "containers": [{"name": "b", "image": "2"}]}),
        );
        assert_eq!(
            out,
            json!({"containers": [{"name": "c"}, {"name": "b", "image": "2"}, {"name": "a"}]})
        );
        // An order alone reorders the live list.
        let out = smp(
            live,
            json!({"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}),
        );
        assert_eq!(
            out,
            json!({"containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}]})
        );
    }

    #[test]
    fn nested_keyed_lists_and_primitive_unions() {
        let live = json!({"finalizers": ["x"], "containers": [{"name": "a", "env": [{"name": "A", "value": "1"}]}]});
        let out = smp(
            live,
            json!({"finalizers": ["y", "x"],
                   "containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}]}),
        );
        assert_eq!(out["finalizers"], json!(["y", "x"]));
        // Without $setElementOrder a new element goes before a server-only one (mergeSortedSlice
        // only puts the server-only element first when both are in the live list); kubectl
        // sends $setElementOrder to pin the order it wants.
        assert_eq!(
            out["containers"][0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );
    }

    #[test]
    fn retain_keys_drops_unlisted_live_fields() {
        let live = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        let out = smp(
            live,
            json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
        );
        assert_eq!(out, json!({"strategy": {"type": "Recreate"}}));
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let out = smp(
            json!({"tolerations": [{"key": "a"}]}),
            json!({"tolerations": [{"key": "b"}]}),
        );
        assert_eq!(out, json!({"tolerations": [{"key": "b"}]}));
    }
}
