//! Protobuf request bodies over raw HTTP, built with `k8s-pb` the way client-go frames them.

use crate::common::*;
use castellan_apiserver::protobuf::{encode, MEDIA_TYPE};
use castellan_apiserver::ApiServer;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request with a binary body; returns status and body text.
async fn send(
    server: &ApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, rest.to_string())
}

const PB: (&str, &str) = ("Content-Type", MEDIA_TYPE);
const ACCEPT_BOTH: (&str, &str) = (
    "Accept",
    "application/vnd.kubernetes.protobuf,application/json",
);

fn secret(name: &str, data: &[u8]) -> core::Secret {
    core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some(name.into()),
            labels: [("app".to_string(), "x".to_string())].into(),
            ..Default::default()
        }),
        data: [("k".to_string(), data.to_vec())].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn protobuf_create_and_update_of_builtin_are_stored_as_json() {
    let (server, client) = setup().await;
    let data = [0u8, 1, 2, 0xfe, 0xff];
    let body = encode("v1", "Secret", &secret("s1", &data));
    let (code, out) = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[PB, ACCEPT_BOTH],
        &body,
    )
    .await;
    assert_eq!(code, 201, "{out}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["data"], json!({"k": "AAEC/v8="}));
    assert_eq!(created["metadata"]["labels"], json!({"app": "x"}));
    // kube-rs (JSON) sees the same object.
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::default_namespaced(client.clone());
    let s = api.get("s1").await.unwrap();
    assert_eq!(s.data.unwrap()["k"].0, data);
    // PUT as protobuf: an update like any other (resourceVersion precondition included).
    let mut upd = secret("s1", b"new");
    upd.metadata.as_mut().unwrap().resource_version = Some("1".into());
    let body = encode("v1", "Secret", &upd);
    let (code, out) = send(
        &server,
        "PUT",
        "/api/v1/namespaces/default/secrets/s1",
        &[PB, ACCEPT_BOTH],
        &body,
    )
    .await;
    assert_eq!(code, 409, "{out}");
    upd.metadata.as_mut().unwrap().resource_version = s.metadata.resource_version.clone();
    let body = encode("v1", "Secret", &upd);
    let (code, out) = send(
        &server,
        "PUT",
        "/api/v1/namespaces/default/secrets/s1",
        &[PB, ACCEPT_BOTH],
        &body,
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(api.get("s1").await.unwrap().data.unwrap()["k"].0, b"new");
}

#[tokio::test]
async fn protobuf_body_with_wrong_kind_or_no_envelope_is_400() {
    let (server, _client) = setup().await;
    let body = encode("v1", "ConfigMap", &secret("s1", b"x"));
    let (code, out) = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[PB],
        &body,
    )
    .await;
    assert_eq!(code, 400, "{out}");
    let (code, out) = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[PB],
        b"{\"kind\":\"Secret\"}",
    )
    .await;
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("protobuf"), "{out}");
}

#[tokio::test]
async fn protobuf_only_accept_is_406_before_writing() {
    let (server, client) = setup().await;
    let body = encode("v1", "Secret", &secret("s1", b"x"));
    let (code, out) = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/secrets",
        &[PB, ("Accept", MEDIA_TYPE)],
        &body,
    )
    .await;
    assert_eq!(code, 406, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["reason"],
        "NotAcceptable"
    );
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::default_namespaced(client);
    assert!(api.get_opt("s1").await.unwrap().is_none());
}

#[tokio::test]
async fn protobuf_body_for_custom_resource_is_415() {
    let (server, client) = setup().await;
    install(&client, widget_crd()).await;
    // Any bytes: custom resources have no protobuf serializer at all.
    let body = encode("example.com/v1", "Widget", &secret("w1", b"x"));
    let (code, out) = send(
        &server,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &[PB],
        &body,
    )
    .await;
    assert_eq!(code, 415, "{out}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{out}"
    );
}
