//! Server-side apply and Update bookkeeping of managedFields.

use castellan_apiserver_patch::{
    apply, record_update, ApplyError, CrdSchema, FieldManagerInput, ListSemantics, NoSchema,
    WriteScope,
};
use serde_json::{json, Value};

const T0: &str = "2026-11-20T23:30:00Z";
const T1: &str = "2026-11-20T23:31:00Z";
const T2: &str = "2026-11-20T23:32:00Z";

fn input<'a>(
    manager: &'a str,
    now: &'a str,
    schema: &'a dyn ListSemantics,
) -> FieldManagerInput<'a> {
    FieldManagerInput {
        manager,
        subresource: None,
        api_version: "example.com/v1",
        now,
        schema,
        scope: WriteScope::All,
    }
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "ns"}, "spec": spec})
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields(obj: &Value, manager: &str, operation: &str) -> Value {
    entry(obj, manager, operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

/// The CRD schema of a Widget with a status subresource and map-list conditions.
fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "colour": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "items": {"type": "integer"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
            }},
            "status": {"type": "object", "properties": {
                "observedGeneration": {"type": "integer"},
                "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["type"],
                               "items": {"type": "object", "properties": {
                                   "type": {"type": "string"}, "status": {"type": "string"},
                                   "reason": {"type": "string"}}}},
            }},
        },
    })
}

#[test]
fn apply_to_a_missing_object_creates_it_with_one_apply_entry() {
    let out = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"size": 3}));
    assert_eq!(out["metadata"]["name"], "w1");
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "a", "operation": "Apply", "apiVersion": "example.com/v1", "time": T0,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}},
        }])
    );
}

#[test]
fn apply_records_labels_and_map_list_items_in_the_real_fields_v1_format() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let mut w = widget(json!({"size": 3, "tags": ["x", "y"]}));
    w["metadata"]["labels"] = json!({"app": "w"});
    w["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let out = apply(None, &w, false, &input("a", T0, &s)).unwrap();
    // Shapes as a real apiserver writes them for an Apply entry: no `.` on named structs and
    // list fields, `.` on every list item, `v:` for set items, `k:` for map-list items.
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:size": {}, "f:tags": {"v:\"x\"": {}, "v:\"y\"": {}}},
            "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}},
        })
    );
}

#[test]
fn apply_by_another_manager_changing_an_applied_field_conflicts_with_the_exact_message() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let err = apply(
        Some(&live),
        &widget(json!({"size": 4})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.size"
    );
    assert_eq!(
        err.status(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Apply failed with 1 conflict: conflict with \"a\": .spec.size",
               "reason":"Conflict",
               "details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"a\"","field":".spec.size"}]},
               "code":409})
    );
}

#[test]
fn apply_conflicting_with_an_update_manager_names_its_api_version() {
    let mut live = widget(json!({"replicas": 1}));
    record_update(
        None,
        &mut live,
        &input("kubectl-client-side-apply", T0, &NoSchema),
    );
    let err = apply(
        Some(&live),
        &widget(json!({"replicas": 2})),
        false,
        &input("mine", T1, &NoSchema),
    )
    .unwrap_err();
    // The contract's captured body, with this kind's apiVersion.
    assert_eq!(
        err.status(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using example.com/v1: .spec.replicas",
               "reason":"Conflict",
               "details":{"causes":[{"reason":"FieldManagerConflict",
                   "message":"conflict with \"kubectl-client-side-apply\" using example.com/v1",
                   "field":".spec.replicas"}]},
               "code":409})
    );
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut status_input = input("s", T0, &NoSchema);
    status_input.subresource = Some("status");
    let mut live2 = live.clone();
    live2["status"] = json!({"phase": "Up"});
    record_update(Some(&live), &mut live2, &status_input);
    let mut w = widget(json!({"size": 4, "colour": "blue"}));
    w["status"] = json!({"phase": "Down"});
    let err = apply(Some(&live2), &w, false, &input("b", T1, &NoSchema)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.colour\n- .spec.size\n\
         conflicts with \"s\" with subresource \"status\" using example.com/v1:\n- .status.phase"
    );
}

#[test]
fn force_transfers_ownership_of_the_conflicting_field() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"size": 4})),
        true,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"size": 4, "colour": "red"}));
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:colour": {}}})
    );
    assert_eq!(
        fields(&out, "b", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
}

#[test]
fn applying_the_same_value_shares_ownership_without_conflict() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"size": 3})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
    assert_eq!(
        fields(&out, "b", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
    // Shared ownership: now a change by either one conflicts with the other.
    let err = apply(
        Some(&out),
        &widget(json!({"size": 5})),
        false,
        &input("a", T2, &NoSchema),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"b\": .spec.size"
    );
}

#[test]
fn omitting_a_previously_applied_field_removes_it_when_nobody_else_owns_it() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"size": 3})),
        false,
        &input("a", T1, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"size": 3}));
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
}

#[test]
fn omitting_every_field_of_a_struct_removes_the_struct() {
    let mut w = widget(json!({"size": 3}));
    w["metadata"]["labels"] = json!({"app": "w"});
    let live = apply(None, &w, false, &input("a", T0, &NoSchema)).unwrap();
    let bare = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "ns"}});
    let out = apply(Some(&live), &bare, false, &input("a", T1, &NoSchema)).unwrap();
    assert!(out.get("spec").is_none(), "{out}");
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    assert_eq!(out["metadata"]["name"], "w1");
    assert!(
        out["metadata"].get("managedFields").is_none(),
        "empty entries are dropped: {out}"
    );
}

#[test]
fn omitting_a_previously_applied_field_keeps_it_when_another_manager_owns_it() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &widget(json!({"colour": "red"})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"size": 3})),
        false,
        &input("a", T2, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"size": 3, "colour": "red"}));
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
    assert_eq!(
        fields(&out, "b", "Apply"),
        json!({"f:spec": {"f:colour": {}}})
    );
}

#[test]
fn omitting_a_field_changed_by_an_update_since_keeps_it() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut updated = live.clone();
    updated["spec"]["colour"] = json!("blue");
    record_update(Some(&live), &mut updated, &input("editor", T1, &NoSchema));
    let out = apply(
        Some(&updated),
        &widget(json!({"size": 3})),
        false,
        &input("a", T2, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], json!({"size": 3, "colour": "blue"}));
}

#[test]
fn conditions_in_a_map_list_merge_per_item_across_two_managers() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let status = |conds: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "ns"},
               "status": {"conditions": conds}})
    };
    let live = apply(
        None,
        &status(json!([{"type": "Ready", "status": "True"}])),
        false,
        &input("ctrl", T0, &s),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &status(json!([{"type": "Synced", "status": "False"}])),
        false,
        &input("syncer", T1, &s),
    )
    .unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}])
    );
    assert_eq!(
        fields(&out, "syncer", "Apply"),
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Synced\"}": {".": {}, "f:status": {}, "f:type": {}}}}})
    );
    // ctrl changes its own item: no conflict; the other item stays.
    let out = apply(
        Some(&out),
        &status(json!([{"type": "Ready", "status": "False"}])),
        false,
        &input("ctrl", T2, &s),
    )
    .unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "False"}, {"type": "Synced", "status": "False"}])
    );
    // ctrl touching syncer's item conflicts on the changed field only.
    let err = apply(
        Some(&out),
        &status(
            json!([{"type": "Ready", "status": "False"}, {"type": "Synced", "status": "True"}]),
        ),
        false,
        &input("ctrl", T2, &s),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"syncer\": .status.conditions[type=\"Synced\"].status"
    );
    // ctrl dropping its item removes it, leaving syncer's.
    let out = apply(
        Some(&out),
        &status(json!([])),
        false,
        &input("ctrl", T2, &s),
    )
    .unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Synced", "status": "False"}])
    );
}

#[test]
fn atomic_lists_and_maps_are_owned_and_replaced_whole() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let live = apply(
        None,
        &widget(json!({"ports": [1, 2], "selector": {"a": "1"}})),
        false,
        &input("a", T0, &s),
    )
    .unwrap();
    assert_eq!(
        fields(&live, "a", "Apply"),
        json!({"f:spec": {"f:ports": {}, "f:selector": {}}})
    );
    let err = apply(
        Some(&live),
        &widget(json!({"selector": {"b": "2"}})),
        false,
        &input("b", T1, &s),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.selector"
    );
    let out = apply(
        Some(&live),
        &widget(json!({"ports": [3]})),
        true,
        &input("b", T1, &s),
    )
    .unwrap();
    assert_eq!(out["spec"]["ports"], json!([3]));
}

#[test]
fn set_lists_union_across_managers_in_structured_merge_diff_order() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let live = apply(
        None,
        &widget(json!({"tags": ["a", "b"]})),
        false,
        &input("x", T0, &s),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"tags": ["c", "a"]})),
        false,
        &input("y", T1, &s),
    )
    .unwrap();
    // Applied items come in the applied order, live-only items keep their place after them.
    assert_eq!(out["spec"]["tags"], json!(["c", "a", "b"]));
    let out = apply(
        Some(&out),
        &widget(json!({"tags": ["b"]})),
        false,
        &input("x", T2, &s),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["tags"],
        json!(["c", "a", "b"]),
        "a is still owned by y"
    );
    let out = apply(
        Some(&out),
        &widget(json!({"tags": []})),
        false,
        &input("x", T2, &s),
    )
    .unwrap();
    assert_eq!(out["spec"]["tags"], json!(["c", "a"]), "b was only x's");
}

#[test]
fn finalizers_are_a_set_under_metadata_whatever_the_schema() {
    let mut w = widget(json!({}));
    w["metadata"]["finalizers"] = json!(["castellan.io/cleanup"]);
    let out = apply(None, &w, false, &input("a", T0, &NoSchema)).unwrap();
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:metadata": {"f:finalizers": {"v:\"castellan.io/cleanup\"": {}}}, "f:spec": {}})
    );
}

#[test]
fn updates_never_conflict_and_take_ownership_of_what_they_change() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut new = live.clone();
    new["spec"]["size"] = json!(9);
    new["spec"]["colour"] = json!("red");
    new["metadata"]["labels"] = json!({"team": "x"});
    record_update(Some(&live), &mut new, &input("editor", T1, &NoSchema));
    assert_eq!(
        fields(&new, "a", "Apply"),
        json!({"f:spec": {"f:colour": {}}}),
        "equal values keep their owner"
    );
    assert_eq!(
        fields(&new, "editor", "Update"),
        json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}, "f:spec": {"f:size": {}}})
    );
    assert_eq!(entry(&new, "editor", "Update").unwrap()["time"], T1);
    // Apply entries sort before Update entries.
    let order: Vec<_> = entries(&new).iter().map(|e| e["manager"].clone()).collect();
    assert_eq!(order, vec![json!("a"), json!("editor")]);
}

#[test]
fn update_on_create_owns_everything_with_dots_on_added_maps() {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "1"}},
                        "data": {"k": "v"}});
    let mut i = input("castellan", T0, &NoSchema);
    i.api_version = "v1";
    record_update(None, &mut cm, &i);
    assert_eq!(
        cm["metadata"]["managedFields"],
        json!([{"manager": "castellan", "operation": "Update", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}])
    );
}

#[test]
fn an_update_that_only_removes_fields_creates_no_entry_and_strips_owners() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut new = live.clone();
    new["spec"].as_object_mut().unwrap().remove("colour");
    record_update(Some(&live), &mut new, &input("editor", T1, &NoSchema));
    assert!(entry(&new, "editor", "Update").is_none());
    assert_eq!(
        fields(&new, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
}

#[test]
fn an_unchanged_update_keeps_managed_fields_verbatim() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut new = live.clone();
    record_update(Some(&live), &mut new, &input("editor", T1, &NoSchema));
    assert_eq!(new, live);
}

#[test]
fn an_update_carrying_an_empty_managed_fields_list_resets_them() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([]);
    new["spec"]["size"] = json!(4);
    record_update(Some(&live), &mut new, &input("editor", T1, &NoSchema));
    let managers: Vec<_> = entries(&new).iter().map(|e| e["manager"].clone()).collect();
    assert_eq!(managers, vec![json!("editor")]);
}

#[test]
fn a_no_op_apply_returns_the_live_object_byte_for_byte() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &widget(json!({"size": 3})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    let again = apply(
        Some(&live),
        &widget(json!({"size": 3})),
        false,
        &input("a", T2, &NoSchema),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(&live).unwrap()
    );
}

#[test]
fn an_apply_that_changes_only_ownership_is_a_write_with_a_fresh_timestamp() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut edited = live.clone();
    edited["spec"]["colour"] = json!("red");
    record_update(Some(&live), &mut edited, &input("editor", T0, &NoSchema));
    let live = apply(
        Some(&edited),
        &widget(json!({"size": 3})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    // b now also applies the colour the editor set: same values, so only ownership changes.
    let out = apply(
        Some(&live),
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("b", T2, &NoSchema),
    )
    .unwrap();
    assert_eq!(out["spec"], live["spec"]);
    assert_ne!(out, live, "managedFields changed, so this is a real write");
    assert_eq!(entry(&out, "b", "Apply").unwrap()["time"], T2);
    assert_eq!(
        fields(&out, "editor", "Update"),
        json!({"f:spec": {"f:colour": {}}}),
        "shared"
    );
    // Repeating it is a no-op again.
    let again = apply(
        Some(&out),
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("b", "2026-11-20T23:33:00Z", &NoSchema),
    )
    .unwrap();
    assert_eq!(again, out);
}

#[test]
fn a_changing_apply_refreshes_only_the_appliers_timestamp() {
    let live = apply(
        None,
        &widget(json!({"size": 3, "colour": "red"})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &widget(json!({"colour": "red"})),
        false,
        &input("b", T1, &NoSchema),
    )
    .unwrap();
    let out = apply(
        Some(&live),
        &widget(json!({"size": 4, "colour": "red"})),
        false,
        &input("a", T2, &NoSchema),
    )
    .unwrap();
    assert_eq!(entry(&out, "a", "Apply").unwrap()["time"], T2);
    assert_eq!(entry(&out, "b", "Apply").unwrap()["time"], T1);
}

#[test]
fn an_apply_on_status_records_the_subresource_and_leaves_spec_alone() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &s),
    )
    .unwrap();
    let mut i = input("ctrl", T1, &s);
    i.subresource = Some("status");
    i.scope = WriteScope::STATUS;
    let mut body = widget(json!({"size": 100}));
    body["metadata"]["labels"] = json!({"sneaky": "yes"});
    body["status"] = json!({"observedGeneration": 1});
    let out = apply(Some(&live), &body, false, &i).unwrap();
    assert_eq!(out["spec"], json!({"size": 3}));
    assert!(out["metadata"].get("labels").is_none());
    assert_eq!(out["status"], json!({"observedGeneration": 1}));
    let e = entry(&out, "ctrl", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:observedGeneration": {}}})
    );
    // The main-endpoint manager is untouched, and a main-endpoint apply by ctrl is a separate entry.
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
}

#[test]
fn a_main_endpoint_apply_with_a_status_subresource_ignores_status() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let mut i = input("a", T0, &s);
    i.scope = WriteScope::MAIN_WITH_STATUS;
    let mut body = widget(json!({"size": 3}));
    body["status"] = json!({"observedGeneration": 7});
    let created = apply(None, &body, false, &i).unwrap();
    assert!(created.get("status").is_none());
    assert_eq!(
        fields(&created, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
    let mut live = created.clone();
    live["status"] = json!({"observedGeneration": 1});
    let out = apply(Some(&live), &body, false, &i).unwrap();
    assert_eq!(
        out, live,
        "status change through the main endpoint is a no-op"
    );
}

#[test]
fn an_applied_configuration_with_managed_fields_is_a_bad_request() {
    let mut body = widget(json!({"size": 3}));
    body["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &body, false, &input("a", T0, &NoSchema)).unwrap_err();
    assert_eq!(err, ApplyError::ManagedFieldsSet);
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.status()["message"],
        "metadata.managedFields must be nil"
    );
    assert_eq!(err.status()["reason"], "BadRequest");
}

#[test]
fn an_applied_configuration_for_another_version_is_a_bad_request() {
    let mut body = widget(json!({"size": 3}));
    body["apiVersion"] = json!("example.com/v2");
    let err = apply(None, &body, false, &input("a", T0, &NoSchema)).unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "Incorrect version specified in apply patch. Specified patch version: example.com/v2, expected: example.com/v1"
    );
}

#[test]
fn null_creation_timestamp_from_go_clients_does_not_erase_the_live_one() {
    let mut live = widget(json!({"size": 3}));
    live["metadata"]["creationTimestamp"] = json!(T0);
    let mut body = widget(json!({"size": 3}));
    body["metadata"]["creationTimestamp"] = Value::Null;
    let out = apply(Some(&live), &body, false, &input("a", T1, &NoSchema)).unwrap();
    assert_eq!(out["metadata"]["creationTimestamp"], T0);
}

fn csa_deployment(replicas: u64) -> Value {
    let mut d = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w1", "namespace": "ns"}, "spec": {"replicas": replicas, "image": "x"}});
    let last = serde_json::to_string(&d).unwrap() + "\n";
    d["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    d
}

#[test]
fn kubectl_server_side_apply_after_client_side_apply_takes_over_unchanged_fields() {
    let mut live = csa_deployment(1);
    record_update(
        None,
        &mut live,
        &input("kubectl-client-side-apply", T0, &NoSchema),
    );
    let body = widget(json!({"replicas": 2, "image": "x"}));
    // Any other manager gets the 409 ...
    let err = apply(
        Some(&live),
        &body,
        false,
        &input("kubectl-other", T1, &NoSchema),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using example.com/v1: .spec.replicas"
    );
    // ... but kubectl's own server-side apply is forced through (lastappliedmanager.go).
    let out = apply(Some(&live), &body, false, &input("kubectl", T1, &NoSchema)).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(
        fields(&out, "kubectl", "Apply"),
        json!({"f:spec": {"f:image": {}, "f:replicas": {}}})
    );
    assert!(
        fields(&out, "kubectl-client-side-apply", "Update")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // The annotation is rewritten to the server-side applied configuration (lastappliedupdater.go).
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        format!("{}\n", serde_json::to_string(&body).unwrap())
    );
}

#[test]
fn kubectl_migration_does_not_force_fields_that_drifted_from_the_annotation() {
    let mut live = csa_deployment(1);
    record_update(
        None,
        &mut live,
        &input("kubectl-client-side-apply", T0, &NoSchema),
    );
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(
        Some(&live),
        &mut scaled,
        &input("autoscaler", T1, &NoSchema),
    );
    let err = apply(
        Some(&scaled),
        &widget(json!({"replicas": 2, "image": "x"})),
        false,
        &input("kubectl", T2, &NoSchema),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"autoscaler\" using example.com/v1: .spec.replicas"
    );
}

#[test]
fn crd_schema_reads_list_and_map_types() {
    use castellan_apiserver_patch::{ListType, PathElement};
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let f = |n: &str| PathElement::Field(n.into());
    assert_eq!(s.list_type_at(&[f("spec"), f("tags")]), ListType::Set);
    assert_eq!(s.list_type_at(&[f("spec"), f("ports")]), ListType::Atomic);
    assert_eq!(
        s.list_type_at(&[f("status"), f("conditions")]),
        ListType::Map {
            keys: vec!["type".into()]
        }
    );
    assert!(s.map_is_atomic_at(&[f("spec"), f("selector")]));
    assert!(!s.map_is_atomic_at(&[f("spec")]));
    assert!(!s.map_is_struct_at(&[f("spec"), f("selector")]));
}

#[test]
fn a_status_update_owns_only_status_and_a_main_apply_never_conflicts_on_it() {
    let schema = widget_schema();
    let s = CrdSchema { schema: &schema };
    let mut main = input("a", T0, &s);
    main.scope = WriteScope::MAIN_WITH_STATUS;
    let live = apply(None, &widget(json!({"size": 3})), false, &main).unwrap();
    let mut new = live.clone();
    new["status"] = json!({"observedGeneration": 1});
    new["spec"]["size"] = json!(99);
    let mut st = input("ctrl", T1, &s);
    st.subresource = Some("status");
    st.scope = WriteScope::STATUS;
    record_update(Some(&live), &mut new, &st);
    let e = entry(&new, "ctrl", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:observedGeneration": {}}})
    );
    assert_eq!(
        fields(&new, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}}),
        "spec is not the status writer's"
    );
    // A main-endpoint apply that carries a different status neither conflicts nor changes it.
    new["spec"]["size"] = json!(3);
    let mut body = widget(json!({"size": 3}));
    body["status"] = json!({"observedGeneration": 5});
    let out = apply(
        Some(&new),
        &body,
        false,
        &input_with_scope("b", T2, &s, WriteScope::MAIN_WITH_STATUS),
    )
    .unwrap();
    assert_eq!(out["status"], json!({"observedGeneration": 1}));
}

fn input_with_scope<'a>(
    manager: &'a str,
    now: &'a str,
    schema: &'a dyn ListSemantics,
    scope: WriteScope<'a>,
) -> FieldManagerInput<'a> {
    FieldManagerInput {
        scope,
        ..input(manager, now, schema)
    }
}

#[test]
fn an_applied_configuration_with_null_managed_fields_is_accepted() {
    let mut body = widget(json!({"size": 3}));
    body["metadata"]["managedFields"] = Value::Null;
    let out = apply(None, &body, false, &input("a", T0, &NoSchema)).unwrap();
    assert_eq!(
        fields(&out, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
}

#[test]
fn an_apply_body_without_metadata_never_prunes_identity_fields() {
    let mut w = widget(json!({"size": 3}));
    w["metadata"]["labels"] = json!({"app": "w"});
    let mut live = apply(None, &w, false, &input("a", T0, &NoSchema)).unwrap();
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["resourceVersion"] = json!("12");
    let bare = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 3}});
    let out = apply(Some(&live), &bare, false, &input("a", T1, &NoSchema)).unwrap();
    assert_eq!(out["metadata"]["name"], "w1");
    assert_eq!(out["metadata"]["uid"], "u-1");
    assert_eq!(out["metadata"]["resourceVersion"], "12");
    assert!(
        out["metadata"].get("labels").is_none(),
        "the label a stopped applying goes"
    );
}

#[test]
fn a_subresource_update_ignores_managed_fields_in_the_request() {
    let live = apply(
        None,
        &widget(json!({"size": 3})),
        false,
        &input("a", T0, &NoSchema),
    )
    .unwrap();
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([]);
    new["status"] = json!({"phase": "Up"});
    let mut st = input("ctrl", T1, &NoSchema);
    st.subresource = Some("status");
    record_update(Some(&live), &mut new, &st);
    assert_eq!(
        fields(&new, "a", "Apply"),
        json!({"f:spec": {"f:size": {}}})
    );
    assert_eq!(
        fields(&new, "ctrl", "Update"),
        json!({"f:status": {".": {}, "f:phase": {}}})
    );
}

#[test]
fn more_than_ten_update_managers_are_folded_into_ancient_changes() {
    let mut obj = widget(json!({}));
    record_update(
        None,
        &mut obj,
        &input("creator", "2026-11-20T23:00:00Z", &NoSchema),
    );
    for i in 0..11 {
        let mut new = obj.clone();
        new["spec"][format!("f{i:02}")] = json!(i);
        let now = format!("2026-11-20T23:{:02}:00Z", i + 1);
        record_update(
            Some(&obj),
            &mut new,
            &input(&format!("m{i:02}"), &now, &NoSchema),
        );
        obj = new;
    }
    let es = entries(&obj);
    let names: Vec<&str> = es.iter().map(|e| e["manager"].as_str().unwrap()).collect();
    assert_eq!(es.len(), 10, "{names:?}");
    let ancient = entry(&obj, "ancient-changes", "Update").unwrap();
    // creator (which owns `spec` itself), m00 and m01 are the oldest three: folded into one
    // entry carrying the newest of their times.
    assert_eq!(ancient["time"], "2026-11-20T23:02:00Z");
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:spec": {".": {}, "f:f00": {}, "f:f01": {}}})
    );
    assert!(entry(&obj, "creator", "Update").is_none());
    assert!(entry(&obj, "m01", "Update").is_none());
    assert!(entry(&obj, "m02", "Update").is_some());
}
