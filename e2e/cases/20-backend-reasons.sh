# Configuration and reachability failures: condition reasons, Stalled, kubectl wait, printer
# columns, Secret rotation in place, events in kubectl describe. Needs no S3 server: every
# endpoint is a closed loopback port. Runs unchanged against a real cluster.

reasons_ns=$(new_namespace reasons)
start_operator "$reasons_ns"

# A closed loopback port: the endpoint is unreachable (transient, never Stalled).
closed_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
k -n "$reasons_ns" apply -f - >/dev/null <<YAML
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: no-secret}
spec:
  s3: {bucket: artifacts, endpoint: "http://127.0.0.1:$closed_port", forcePathStyle: true, credentialsSecretRef: {name: missing-creds}}
  validation: {interval: 2s, timeout: 1s}
---
apiVersion: v1
kind: Secret
metadata: {name: half-creds}
stringData: {accessKeyId: AKIAEXAMPLE}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: missing-key}
spec:
  s3: {bucket: artifacts, endpoint: "http://127.0.0.1:$closed_port", forcePathStyle: true, credentialsSecretRef: {name: half-creds}}
  validation: {interval: 2s, timeout: 1s}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {accessKeyId: AKIAEXAMPLE, secretAccessKey: not-a-real-secret}
---
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: unreachable}
spec:
  s3: {bucket: artifacts, endpoint: "http://127.0.0.1:$closed_port", forcePathStyle: true, credentialsSecretRef: {name: creds}}
  validation: {interval: 2s, timeout: 1s}
YAML

expect_ready_reason "$reasons_ns" no-secret SecretNotFound
expect_ready_reason "$reasons_ns" missing-key SecretKeyMissing
expect_ready_reason "$reasons_ns" unreachable EndpointUnreachable

stalled=$(k -n "$reasons_ns" get sbe no-secret -o jsonpath='{.status.conditions[?(@.type=="Stalled")].status}')
[ "$stalled" = True ] && pass "a missing Secret is terminal: Stalled=True" || fail "no-secret Stalled='$stalled', expected True"
stalled=$(k -n "$reasons_ns" get sbe unreachable -o jsonpath='{.status.conditions[?(@.type=="Stalled")].status}')
[ "$stalled" != True ] && pass "an unreachable endpoint is transient: Stalled is not True" || fail "unreachable is Stalled"

if k -n "$reasons_ns" wait --for=condition=Ready=False --timeout=20s sbe/no-secret >/dev/null; then
  pass "kubectl wait --for=condition=Ready=False (observedGeneration is current)"
else
  fail "kubectl wait on Ready=False"
fi

table=$(k -n "$reasons_ns" get sbe)
if head -1 <<<"$table" | grep -q "BUCKET.*DEFAULT.*TRUST.*READY.*REASON.*SERVING.*STRANDED.*LAST VALIDATED.*AGE" \
   && grep -q "no-secret.*artifacts.*SecretNotFound" <<<"$table"; then
  pass "kubectl get sbe shows the printer columns"
else
  fail "kubectl get sbe columns: $table"
fi

# Rotating the Secret in place re-validates at once: fix the missing key, the reason moves on.
k -n "$reasons_ns" patch secret half-creds --type merge -p '{"stringData":{"secretAccessKey":"now-present"}}' >/dev/null
expect_ready_reason "$reasons_ns" missing-key EndpointUnreachable

describe=$(k -n "$reasons_ns" describe sbe no-secret)
if grep -q "Warning.*SecretNotFound" <<<"$describe"; then
  pass "kubectl describe shows the Warning event"
else
  fail "kubectl describe shows no SecretNotFound event: $describe"
fi
