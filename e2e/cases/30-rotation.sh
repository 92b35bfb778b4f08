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
#
# Until `castellan put`/`castellan get` exist in the build, the objects are written through the S3
# server's data directory and downloads are checked with `castellan verify` through each
# mapping's status.backend (reported as a skip).

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

# Artifacts: random bytes of a few sizes.
use_cli=0
"$bin/castellan" put --help >/dev/null 2>&1 && "$bin/castellan" get --help >/dev/null 2>&1 && use_cli=1
rot_files=()
rot_digests=()
for i in 1 2 3 4; do
  f="$work/artifact-$i"
  head -c $((i * 37000 + i)) /dev/urandom >"$f"
  rot_files+=("$f")
  rot_digests+=("$(sha256sum "$f" | cut -d' ' -f1)")
done
put_ok=1
if [ "$use_cli" = 1 ]; then
  for f in "${rot_files[@]}"; do
    "$bin/castellan" put "$f" -n "$rot_ns" >"$work/put.out" 2>&1 || { put_ok=0; cat "$work/put.out"; }
  done
  [ "$put_ok" = 1 ] && pass "castellan put uploaded ${#rot_files[@]} files" || fail "castellan put failed"
else
  # castellan put is not available in this build: write the objects through the S3 server's
  # data directory under the key layout and create the mappings with kubectl.
  for idx in "${!rot_files[@]}"; do
    hex=${rot_digests[$idx]}
    mkdir -p "$rot_data/artifacts/cas/sha256/${hex:0:2}/${hex:2:2}"
    cp "${rot_files[$idx]}" "$rot_data/artifacts/cas/sha256/${hex:0:2}/${hex:2:2}/$hex"
    printf 'apiVersion: castellan.io/v1alpha1\nkind: ArtifactMapping\nmetadata: {name: sha256-%s}\nspec: {digest: "sha256:%s", size: %s, backendRef: {name: backend-a}}\n---\n' \
      "$hex" "$hex" "$(stat -c %s "${rot_files[$idx]}")"
  done | k -n "$rot_ns" apply -f - >/dev/null || put_ok=0
  [ "$put_ok" = 1 ] && skip "castellan put is not in this build: objects written to the data dir, mappings applied with kubectl" \
    || fail "creating the mappings with kubectl failed"
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

download_all() { # label: every artifact downloads with identical bytes
  local idx ok=1 out digest
  for idx in "${!rot_files[@]}"; do
    digest="sha256:${rot_digests[$idx]}"
    out="$work/download-$idx"
    rm -f "$out"
    if [ "$use_cli" = 1 ]; then
      "$bin/castellan" get "$digest" -n "$rot_ns" -o "$out" >"$work/get.out" 2>&1 && cmp -s "$out" "${rot_files[$idx]}" \
        || { ok=0; echo "  get $digest: $(tail -3 "$work/get.out")"; }
    else
      # Without castellan get: what a client does — read status.backend, take that backend's
      # keys from its Secret and verify the object there.
      local be secret id key
      be=$(k -n "$rot_ns" get am -o jsonpath="{.items[?(@.spec.digest==\"$digest\")].status.backend}")
      secret=$(k -n "$rot_ns" get sbe "$be" -o jsonpath='{.spec.s3.credentialsSecretRef.name}')
      id=$(k -n "$rot_ns" get secret "$secret" -o jsonpath='{.data.accessKeyId}' | base64 -d)
      key=$(k -n "$rot_ns" get secret "$secret" -o jsonpath='{.data.secretAccessKey}' | base64 -d)
      AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$key "$bin/castellan" verify --endpoint "$rot_endpoint" --path-style \
        --bucket artifacts --key-prefix cas --digest "$digest" >"$work/get.out" 2>&1 \
        || { ok=0; echo "  verify $digest on $be: $(tail -3 "$work/get.out")"; }
    fi
  done
  if [ "$ok" = 1 ]; then pass "$1"; else fail "$1"; fi
}
if [ "$use_cli" = 1 ]; then
  download_all "castellan get returns identical bytes for every artifact (cmp) with K1 revoked"
else
  download_all "castellan verify through each mapping's status.backend (castellan get is not in this build)"
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
