# Hostile specs, applied with kubectl as a tenant would: each gets the schema's message or a
# condition reason on its own backend, while the operator stays up and a healthy backend of the
# same namespace keeps validating. Runs unchanged against a real cluster.

hostile_ns=$(new_namespace hostile)
start_operator "$hostile_ns"
hostile_pid=$OPERATOR_PID
start_s3server hostile artifacts "HOSTILEK1 hostile-secret-$$"

expect_rejected "$hostile_ns" "a mapping key climbing out of its prefix" "key must not contain '.' or '..' segments" '
apiVersion: castellan.io/v1alpha1
kind: ArtifactMapping
metadata: {name: climb}
spec: {digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", key: "cas/../../etc/passwd", backendRef: {name: good}}'
expect_rejected "$hostile_ns" "an endpoint carrying credentials" "endpoint must be an http:// or https:// URL without credentials" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: userinfo}
spec: {s3: {bucket: artifacts, endpoint: "http://admin:hunter2@10.0.0.1:9000"}}'
expect_rejected "$hostile_ns" "a probe timeout of a day" "timeout must be between 100ms and 10m" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: slow}
spec: {s3: {bucket: artifacts}, validation: {timeout: "24h"}}'
expect_rejected "$hostile_ns" "an interval of a microsecond (a probe and a status write per tick)" "interval must be 0 (off) or between 1s and 8760h" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: every-tick}
spec: {s3: {bucket: artifacts}, validation: {interval: "0.000001s"}}'
expect_rejected "$hostile_ns" "a duration long enough to overflow" "interval must be a duration such as 30s" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: overflow}
spec: {s3: {bucket: artifacts}, validation: {interval: "99999999999999999999h"}}'
expect_rejected "$hostile_ns" "a negative scrub budget" "scrub.bytesPerSecond must be between 1024" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: negative-budget}
spec: {s3: {bucket: artifacts}, scrub: {bytesPerSecond: -1}}'
expect_rejected "$hostile_ns" "a scrub interval of a millisecond (a read per tick)" "scrub.interval must be 0 (off) or between 10s and 87600h" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: scrub-every-tick}
spec: {s3: {bucket: artifacts}, scrub: {interval: "1ms"}}'
expect_rejected "$hostile_ns" "an unknown repair mode" "spec.scrub.repair: Unsupported value" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: scrub-repair-unknown}
spec: {s3: {bucket: artifacts}, scrub: {repair: Sometimes}}'
expect_rejected "$hostile_ns" "a malformed scrub interval" "scrub.interval must be a duration such as 720h" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: scrub-malformed}
spec: {s3: {bucket: artifacts}, scrub: {interval: "monthly"}}'

k -n "$hostile_ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {accessKeyId: HOSTILEK1, secretAccessKey: hostile-secret-$$}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: good}
spec:
  s3: {bucket: artifacts, endpoint: "$S3_ENDPOINT", forcePathStyle: true, credentialsSecretRef: {name: creds}}
  validation: {interval: 2s, timeout: 2s, successThreshold: 1}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: metadata}
spec:
  s3: {bucket: artifacts, endpoint: "http://169.254.169.254", forcePathStyle: true, credentialsSecretRef: {name: creds}}
  validation: {interval: 2s, timeout: 1s}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: borrowed-identity}
spec:
  s3: {bucket: artifacts, endpoint: "$S3_ENDPOINT", forcePathStyle: true}
  validation: {interval: 2s, timeout: 1s}
---
apiVersion: v1
kind: Secret
metadata: {name: binary}
data: {accessKeyId: "//79/A==", secretAccessKey: "AAAA"}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: binary-secret}
spec:
  s3: {bucket: artifacts, endpoint: "$S3_ENDPOINT", forcePathStyle: true, credentialsSecretRef: {name: binary}}
  validation: {interval: 2s, timeout: 1s}
YAML

expect_ready_reason "$hostile_ns" metadata EndpointNotAllowed "--allow-endpoint-network"
expect_ready_reason "$hostile_ns" borrowed-identity InvalidSpec "--allow-ambient-credentials"
expect_ready_reason "$hostile_ns" binary-secret SecretKeyMissing "not valid UTF-8"
expect_ready_reason "$hostile_ns" good Validated

if kill -0 "$hostile_pid" 2>/dev/null; then
  pass "the operator is still running after every hostile spec"
else
  fail "the operator exited: $(tail -5 "$work/operator-$hostile_ns.log")"
fi
if ! grep -q '"level":"ERROR".*panicked' "$work/operator-$hostile_ns.log"; then
  pass "no reconcile panicked"
else
  fail "a reconcile panicked: $(grep panicked "$work/operator-$hostile_ns.log" | head -3)"
fi
