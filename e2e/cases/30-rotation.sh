# The credential-rotation story, played with kubectl and the castellan CLI:
#   backend-a (default, key K1) holds artifacts → backend-b on the same bucket with new keys (K2)
#   becomes the default → K1 is revoked on the S3 server → backend-a goes Ready=False with the
#   auth reason, every mapping is re-verified and served by backend-b, downloads return identical
#   bytes → K1 is restored → backend-a is Ready again and the mappings return home.
#
# The S3 server is a local castellan-s3server process whose keys this script revokes (keys file +
# SIGHUP), and the operator runs locally too, so the case also runs against a real cluster: only
# the Kubernetes objects live there. (The cluster's own operator, if one is installed, must not
# watch the throw-away namespace: it could not reach this machine's loopback S3 server.)

rot_ns=$(new_namespace rotation)
start_s3server rotation artifacts "K1 secret-one-$$
K2 secret-two-$$"
rot_s3_pid=$S3_PID rot_keys=$S3_KEYS rot_data=$S3_DATA rot_endpoint=$S3_ENDPOINT
start_operator "$rot_ns"

backend() { # name, secret, default
  cat <<YAML
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: $1}
spec:
  s3: {bucket: artifacts, endpoint: "$rot_endpoint", forcePathStyle: true, keyPrefix: cas, credentialsSecretRef: {name: $2}}
  default: $3
  validation: {interval: 2s, timeout: 2s, successThreshold: 2}
YAML
}
{
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: creds-a}\nstringData: {accessKeyId: K1, secretAccessKey: secret-one-%s}\n---\n' $$
  backend backend-a creds-a true
} | k -n "$rot_ns" apply -f - >/dev/null

if k -n "$rot_ns" wait --for=condition=Ready --timeout=30s sbe/backend-a >/dev/null; then
  pass "backend-a (key K1) is Ready (kubectl wait --for=condition=Ready)"
else
  fail "backend-a is not Ready: $(k -n "$rot_ns" get sbe backend-a -o jsonpath='{.status.conditions}')"
fi

# Artifacts: random bytes of a few sizes, uploaded with castellan put (which prints the digest).
rot_files=()
rot_digests=()
for i in 1 2 3 4; do
  f="$work/artifact-$i"
  head -c $((i * 37000 + i)) /dev/urandom >"$f"
  rot_files+=("$f")
  rot_digests+=("$(sha256sum "$f" | cut -d' ' -f1)")
done
put_ok=1
for idx in "${!rot_files[@]}"; do
  printed=$("$bin/castellan" put "${rot_files[$idx]}" -n "$rot_ns" 2>"$work/put.err") \
    && [ "$printed" = "sha256:${rot_digests[$idx]}" ] \
    || { put_ok=0; echo "  put ${rot_files[$idx]}: printed '$printed'; $(tail -3 "$work/put.err")"; }
done
if [ "$put_ok" = 1 ]; then
  pass "castellan put uploaded ${#rot_files[@]} files and printed their digests"
else
  fail "castellan put"
fi

served_by() { # backend: every mapping of the namespace has status.backend == backend
  local got
  got=$(k -n "$rot_ns" get am -o jsonpath='{range .items[*]}{.status.backend}{"\n"}{end}')
  [ "$(grep -c . <<<"$got")" = "${#rot_files[@]}" ] && ! grep -qv "^$1\$" <<<"$got"
}
if wait_for 30 served_by backend-a && table=$(k -n "$rot_ns" get am) \
   && [ "$(grep -c "backend-a" <<<"$table")" = "${#rot_files[@]}" ]; then
  pass "kubectl get am: ${#rot_files[@]} mappings served by backend-a"
else
  fail "mappings not served by backend-a: $(k -n "$rot_ns" get am 2>&1)"
fi

# backend-b: new keys on the same bucket, made the default (backend-a stops being it first, so
# there is never a DefaultConflict).
k -n "$rot_ns" patch sbe backend-a --type merge -p '{"spec":{"default":false}}' >/dev/null
{
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: creds-b}\nstringData: {accessKeyId: K2, secretAccessKey: secret-two-%s}\n---\n' $$
  backend backend-b creds-b true
} | k -n "$rot_ns" apply -f - >/dev/null
if k -n "$rot_ns" wait --for=condition=Ready --timeout=30s sbe/backend-b >/dev/null \
   && [ "$(k -n "$rot_ns" get sbe backend-b -o jsonpath='{.spec.default}')" = true ]; then
  pass "backend-b (key K2, same bucket) is Ready and the default"
else
  fail "backend-b is not Ready: $(k -n "$rot_ns" get sbe 2>&1)"
fi

# Revoke K1 on the S3 server.
rot_started=$SECONDS
s3_set_keys "$rot_keys" "$rot_s3_pid" "K2 secret-two-$$"
if k -n "$rot_ns" wait --for=jsonpath='{.status.backend}'=backend-b am --all --timeout=60s >/dev/null; then
  pass "K1 revoked: every mapping is served by backend-b after $((SECONDS - rot_started)) s (kubectl wait --for=jsonpath)"
else
  fail "mappings not reassigned to backend-b: $(k -n "$rot_ns" get am 2>&1)"
fi

reason=$(k -n "$rot_ns" get sbe backend-a -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}')
sbe_table=$(k -n "$rot_ns" get sbe)
if [ "$reason" = False/InvalidAccessKeyId ] && grep -q "backend-a.*False.*InvalidAccessKeyId" <<<"$sbe_table"; then
  pass "kubectl get sbe: backend-a Ready=False, reason InvalidAccessKeyId"
else
  fail "backend-a Ready '$reason', expected False/InvalidAccessKeyId: $sbe_table"
fi

first=$(k -n "$rot_ns" get am -o jsonpath="{.items[?(@.spec.digest==\"sha256:${rot_digests[0]}\")].metadata.name}")
describe=$(k -n "$rot_ns" describe am "$first")
reassigned=$(k -n "$rot_ns" get am "$first" -o jsonpath='{.status.conditions[?(@.type=="Reassigned")].status}/{.status.conditions[?(@.type=="Reassigned")].reason}')
if [ "$reassigned" = True/DigestVerified ] && grep -q "Normal.*DigestVerified.*now served by backend-b" <<<"$describe"; then
  pass "kubectl describe am: Reassigned=True (DigestVerified) and the Normal event"
else
  fail "describe am $first: Reassigned '$reassigned'; $describe"
fi

downloads_identical() { # every artifact downloads with castellan get, byte-identical
  local idx ok=1 out
  for idx in "${!rot_files[@]}"; do
    out="$work/download-$idx"
    rm -f "$out"
    "$bin/castellan" get "sha256:${rot_digests[$idx]}" -n "$rot_ns" -o "$out" >"$work/get.out" 2>&1 \
      && cmp -s "$out" "${rot_files[$idx]}" \
      || { ok=0; echo "  get sha256:${rot_digests[$idx]}: $(tail -3 "$work/get.out")"; }
  done
  [ "$ok" = 1 ]
}
if downloads_identical; then
  pass "castellan get returns identical bytes for every artifact (cmp) with K1 revoked"
else
  fail "castellan get with K1 revoked"
fi

# Restore K1: backend-a passes successThreshold probes again and the mappings return home.
rot_started=$SECONDS
s3_set_keys "$rot_keys" "$rot_s3_pid" "K1 secret-one-$$
K2 secret-two-$$"
if k -n "$rot_ns" wait --for=condition=Ready --timeout=30s sbe/backend-a >/dev/null \
   && k -n "$rot_ns" wait --for=jsonpath='{.status.backend}'=backend-a am --all --timeout=30s >/dev/null; then
  pass "K1 restored: backend-a Ready again and every mapping returned home after $((SECONDS - rot_started)) s"
else
  fail "mappings did not return home: $(k -n "$rot_ns" get sbe,am 2>&1)"
fi
history=$(k -n "$rot_ns" get am "$first" -o jsonpath='{range .status.history[*]}{.from}>{.to}:{.reason} {end}')
if grep -q "backend-a>backend-b:DigestVerified backend-b>backend-a:" <<<"$history"; then
  pass "status.history records the move and the return ($history)"
else
  fail "status.history: '$history'"
fi
