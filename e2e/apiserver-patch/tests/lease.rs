//! A Lease driven the way kube-lease-manager 0.13 drives it: POST to create, server-side apply
//! without force to take an orphaned lease (a 409 means someone else got it), strategic merge
//! patches to count transitions, renew and release.

use castellan_apiserver_patch::{
    apply, record_update, strategic_merge_patch, FieldManagerInput, NoSchema, WriteScope,
};
use serde_json::{json, Value};

fn input<'a>(manager: &'a str, now: &'a str) -> FieldManagerInput<'a> {
    FieldManagerInput {
        manager,
        subresource: None,
        api_version: "coordination.k8s.io/v1",
        now,
        schema: &NoSchema,
        scope: WriteScope::All,
    }
}

/// What the server does for a strategic merge patch: patch, then record the Update.
fn smp(live: &Value, patch: Value, manager: &str, now: &str) -> Value {
    let mut new = live.clone();
    strategic_merge_patch(&mut new, &patch).unwrap();
    record_update(Some(live), &mut new, &input(manager, now));
    new
}

fn take(identity: &str, now: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "spec": {"acquireTime": now, "renewTime": now, "holderIdentity": identity, "leaseDurationSeconds": 15}})
}

fn fields(obj: &Value, manager: &str, operation: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|es| {
            es.iter()
                .find(|e| e["manager"] == manager && e["operation"] == operation)
        })
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_lease_is_taken_by_apply_renewed_by_smp_and_protected_by_conflicts() {
    // POST of an empty Lease (kube sends `spec: {}`).
    let mut lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "castellan-leader", "namespace": "ns"}, "spec": {}});
    record_update(None, &mut lease, &input("creator", "2026-11-20T23:30:00Z"));

    // Both candidates saw the lease orphaned; a applies first and gets it.
    let t1 = "2026-11-20T23:30:01.000000Z";
    let mut a_apply = take("a", t1);
    a_apply["metadata"] = json!({"name": "castellan-leader"});
    let lease = apply(
        Some(&lease),
        &a_apply,
        false,
        &input("lease-a", "2026-11-20T23:30:01Z"),
    )
    .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "a");
    let lease = smp(
        &lease,
        json!({"spec": {"leaseTransitions": 1}}),
        "lease-a",
        "2026-11-20T23:30:01Z",
    );

    // b's soft apply with its stale view conflicts on the fields a holds; the shared duration
    // (same value) is not a conflict.
    let t2 = "2026-11-20T23:30:02.000000Z";
    let mut b_apply = take("b", t2);
    b_apply["metadata"] = json!({"name": "castellan-leader"});
    let err = apply(
        Some(&lease),
        &b_apply,
        false,
        &input("lease-b", "2026-11-20T23:30:02Z"),
    )
    .unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(err.status()["reason"], "Conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"lease-a\":\n- .spec.acquireTime\n- .spec.holderIdentity\n- .spec.renewTime"
    );

    // a renews with SMP: its Update entry takes renewTime from its Apply entry.
    let lease = smp(
        &lease,
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "spec": {"renewTime": "2026-11-20T23:30:05.000000Z", "leaseDurationSeconds": 15}}),
        "lease-a",
        "2026-11-20T23:30:05Z",
    );
    assert_eq!(lease["spec"]["renewTime"], "2026-11-20T23:30:05.000000Z");
    assert_eq!(
        fields(&lease, "lease-a", "Update"),
        json!({"f:spec": {"f:leaseTransitions": {}, "f:renewTime": {}}})
    );
    assert_eq!(
        fields(&lease, "lease-a", "Apply"),
        json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );

    // a releases with SMP nulls: the fields go, and so does their ownership.
    let lease = smp(
        &lease,
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "spec": {"acquireTime": null, "renewTime": null, "holderIdentity": null, "leaseDurationSeconds": null}}),
        "lease-a",
        "2026-11-20T23:30:06Z",
    );
    assert_eq!(lease["spec"], json!({"leaseTransitions": 1}));
    assert_eq!(
        fields(&lease, "lease-a", "Apply"),
        Value::Null,
        "an emptied entry is dropped"
    );

    // Now b's soft apply succeeds and b owns the lock fields.
    let t3 = "2026-11-20T23:30:07.000000Z";
    let mut b_apply = take("b", t3);
    b_apply["metadata"] = json!({"name": "castellan-leader"});
    let lease = apply(
        Some(&lease),
        &b_apply,
        false,
        &input("lease-b", "2026-11-20T23:30:07Z"),
    )
    .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert_eq!(
        fields(&lease, "lease-b", "Apply"),
        json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {}, "f:renewTime": {}}})
    );
}
