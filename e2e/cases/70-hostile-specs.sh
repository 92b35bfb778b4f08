# Hostile specs, applied with kubectl as a tenant would: each gets the schema's message or a
# condition reason on its own backend, while the operator stays up and a healthy backend of the
# same namespace keeps validating. Runs unchanged against a real cluster.

hostile_ns=$(new_namespace hostile)
start_operator "$hostile_ns"
hostile_pid=$OPERATOR_PID
start_s3server hostile artifacts "HOSTILEK1 hostile-secret-$$"

hostile_rejected() { # name, expected message fragment, manifest
  local name=$1 fragment=$2 manifest=$3 out
  if out=$(printf '%s\n' "$manifest" | k -n "$hostile_ns" apply -f - 2>&1); then
    fail "$name: accepted, expected a rejection containing '$fragment'"
  elif grep -qF -- "$fragment" <<<"$out"; then
    pass "$name: rejected ($fragment)"
  else
    fail "$name: rejected with an unexpected message: $out"
  fi
}
hostile_rejected "a mapping key climbing out of its prefix" "key must not contain '.' or '..' segments" '
apiVersion: castellan.io/v1alpha1
kind: ArtifactMapping
metadata: {name: climb}
spec: {digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", key: "cas/../../etc/passwd", backendRef: {name: good}}'
hostile_rejected "an endpoint carrying credentials" "endpoint must be an http:// or https:// URL without credentials" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: userinfo}
spec: {s3: {bucket: artifacts, endpoint: "http://admin:hunter2@10.0.0.1:9000"}}'
hostile_rejected "a probe timeout of a day" "timeout must be between 100ms and 10m" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: slow}
spec: {s3: {bucket: artifacts}, validation: {timeout: "24h"}}'
hostile_rejected "an interval of a microsecond (a probe and a status write per tick)" "interval must be 0 (off) or between 1s and 8760h" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: every-tick}
spec: {s3: {bucket: artifacts}, validation: {interval: "0.000001s"}}'
hostile_rejected "a duration long enough to overflow" "interval must be a duration such as 30s" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: overflow}
spec: {s3: {bucket: artifacts}, validation: {interval: "99999999999999999999h"}}'

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

hostile_reason() { # backend, reason, message fragment (may be empty)
  local backend=$1 reason=$2 fragment=$3 got="" message=""
  for _ in $(seq 120); do
    got=$(k -n "$hostile_ns" get sbe "$backend" -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}' 2>/dev/null || true)
    [ "$got" = "$reason" ] && break
    sleep 0.5
  done
  message=$(k -n "$hostile_ns" get sbe "$backend" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true)
  if [ "$got" = "$reason" ] && grep -qF -- "$fragment" <<<"$message"; then
    pass "$backend: Ready reason $reason${fragment:+ ($fragment)}"
  else
    fail "$backend: Ready reason '$got' ($message), expected $reason${fragment:+ with '$fragment'}"
  fi
}
hostile_reason metadata EndpointNotAllowed "--allow-endpoint-network"
hostile_reason borrowed-identity InvalidSpec "--allow-ambient-credentials"
hostile_reason binary-secret SecretKeyMissing "not valid UTF-8"
hostile_reason good Validated ""

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
