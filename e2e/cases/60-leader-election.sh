# Leader election on a real kube-apiserver: two `castellan run --leader-elect` processes on one
# Lease, each authenticated as its own ServiceAccount (replica-a, replica-b) so that the
# apiserver's audit log says which replica made which request.
#   - replica-a starts first and holds the Lease (holderIdentity); replica-b then campaigns;
#   - a change (a new StorageBackend) is reconciled, and only the holder writes: the audit log
#     shows status patches by replica-a and no write at all by replica-b except on the Lease, and
#     replica-b's log shows no reconcile;
#   - replica-a is killed (SIGKILL: no release of the Lease, the worst case) → replica-b holds the
#     Lease within the lease duration (measured), and reconciles the next change (its own status
#     writes, none before the takeover).
# Runs only on e2e/kube's control plane (`e2e/run --kube` or CASTELLAN_E2E_KUBE_ENV): it needs the
# audit log and binds the two ServiceAccounts cluster-wide (removed at the end).

if [ -z "$kube_env" ] || [ -z "${CASTELLAN_KUBE_AUDIT_LOG:-}" ]; then
  if [ "$real_cluster" = 1 ]; then
    skip "leader election is checked with e2e/kube's audit log, which tells the replicas' writes apart (run with --kube or CASTELLAN_E2E_KUBE_ENV)"
  else
    skip "leader election is checked on a real kube-apiserver only (the operator tests cover it on the emulator): e2e/run --kube"
  fi
  return 0
fi

le_ns=$(new_namespace leader)
le_lease=castellan-e2e-leader
le_duration=10
le_binding="castellan-e2e-$$-leader"
k -n "$le_ns" create serviceaccount replica-a >/dev/null
k -n "$le_ns" create serviceaccount replica-b >/dev/null
# The operator's own rights are case 50's subject; here they only need to be sufficient.
k create clusterrolebinding "$le_binding" --clusterrole=cluster-admin \
  --serviceaccount="$le_ns:replica-a" --serviceaccount="$le_ns:replica-b" >/dev/null
le_kubeconfig() { # serviceaccount → writes $work/leader-SA.kubeconfig
  local token
  token=$(k -n "$le_ns" create token "$1" --duration 1h)
  cat >"$work/leader-$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$CASTELLAN_KUBE_APISERVER_URL", certificate-authority: "$CASTELLAN_KUBE_CA_FILE"}}]
users: [{name: sa, user: {token: "$token"}}]
contexts: [{name: sa, context: {cluster: e2e, user: sa, namespace: "$le_ns"}}]
current-context: sa
EOF
  chmod 600 "$work/leader-$1.kubeconfig"
}
le_kubeconfig replica-a
le_kubeconfig replica-b

start_s3server leader artifacts "K1 secret-one-$$"
le_endpoint=$S3_ENDPOINT
le_backend() { # name
  cat <<YAML
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: $1}
spec:
  s3: {bucket: artifacts, endpoint: "$le_endpoint", forcePathStyle: true, credentialsSecretRef: {name: creds}}
  validation: {interval: 2s, timeout: 2s}
YAML
}
{
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {accessKeyId: K1, secretAccessKey: secret-one-%s}\n---\n' $$
  le_backend first
} | k -n "$le_ns" apply -f - >/dev/null

le_start() { # replica
  KUBECONFIG="$work/leader-$1.kubeconfig" OPERATOR_LOG="$work/operator-leader-$1.log" \
    start_operator "$le_ns" --leader-elect --lease-name "$le_lease" \
    --lease-duration-seconds "$le_duration" --identity "$1"
}
le_holder() { k -n "$le_ns" get lease "$le_lease" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
le_holder_is() { [ "$(le_holder)" = "$1" ]; }

le_start replica-a
le_pid_a=$OPERATOR_PID
if wait_for 60 le_holder_is replica-a && k -n "$le_ns" wait --for=condition=Ready --timeout=30s sbe/first >/dev/null; then
  pass "replica-a holds the Lease $le_ns/$le_lease (holderIdentity) and reconciles (backend first Ready)"
else
  fail "replica-a: Lease holder '$(le_holder)'; $(tail -3 "$work/operator-leader-replica-a.log")"
fi

# The audit log's requests of a replica: "VERB GROUP/RESOURCE[/SUB] NAME EPOCH" lines.
le_requests() { # replica
  python3 - "$CASTELLAN_KUBE_AUDIT_LOG" "system:serviceaccount:$le_ns:$1" <<'PY'
import datetime, json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("user", {}).get("username") != sys.argv[2] or not e.get("objectRef"):
        continue
    o = e["objectRef"]
    res = (o.get("apiGroup") or "core") + "/" + o.get("resource", "") + ("/" + o["subresource"] if o.get("subresource") else "")
    ts = datetime.datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
    print(e["verb"], res, o.get("name") or "*", f"{ts:.3f}", e.get("responseStatus", {}).get("code"))
PY
}
# Writes other than on the Lease (creating events counts: only the leader may do that either).
le_writes() { le_requests "$1" | awk '$1 ~ /^(create|update|patch|delete|deletecollection)$/ && $2 != "coordination.k8s.io/leases"'; }
le_lease_reads() { [ "$(le_requests replica-b | awk '$2 == "coordination.k8s.io/leases"' | wc -l)" -ge "$1" ]; }

le_start replica-b
le_pid_b=$OPERATOR_PID
le_campaigning() { grep -q "campaigning for the leader lease" "$work/operator-leader-replica-b.log"; }
if wait_for 30 le_campaigning && wait_for 30 le_lease_reads 1; then
  pass "replica-b campaigns for the same Lease (its log; its Lease reads in the audit log)"
else
  fail "replica-b is not campaigning: $(tail -3 "$work/operator-leader-replica-b.log")"
fi

# A change while both run: only the holder reconciles it.
le_backend second | k -n "$le_ns" apply -f - >/dev/null
if k -n "$le_ns" wait --for=condition=Ready --timeout=30s sbe/second >/dev/null; then
  pass "a new backend (second) is reconciled to Ready while both replicas run"
else
  fail "backend second not Ready: $(k -n "$le_ns" get sbe 2>&1)"
fi
# replica-a renews the Lease while replica-b runs, and replica-b reads it again after that (when
# the Lease would have expired), sees it renewed and stays a follower: the check below then covers
# a whole lease period with both replicas running.
le_period_covered() {
  local b_first a_renew
  b_first=$(le_requests replica-b | awk '$2 == "coordination.k8s.io/leases" { print $4; exit }')
  [ -n "$b_first" ] || return 1
  a_renew=$(le_requests replica-a | awk -v t="$b_first" '$1 == "patch" && $2 == "coordination.k8s.io/leases" && $4 > t { print $4; exit }')
  [ -n "$a_renew" ] || return 1
  le_requests replica-b | awk -v t="$a_renew" '$1 == "get" && $2 == "coordination.k8s.io/leases" && $4 > t { found = 1 } END { exit !found }'
}
if ! wait_for $((le_duration * 3)) le_period_covered; then
  fail "no Lease renewal by replica-a followed by a read of replica-b within $((le_duration * 3)) s"
fi
le_writes replica-a >"$work/leader-writes-a"
le_writes replica-b >"$work/leader-writes-b"
if [ ! -s "$work/leader-writes-b" ] && grep -q "^patch castellan.io/storagebackends/status second " "$work/leader-writes-a" \
   && ! grep -q "StorageBackend transition" "$work/operator-leader-replica-b.log" && le_holder_is replica-a; then
  pass "exactly one writer over a lease period: $(wc -l <"$work/leader-writes-a") writes by replica-a (status patches of first and second, events), none by replica-b (audit log), replica-b reconciled nothing (its log), Lease still replica-a's"
else
  fail "more than one writer: replica-b wrote $(wc -l <"$work/leader-writes-b"): $(head -3 "$work/leader-writes-b" | tr '\n' ';'); replica-a: $(grep -c storagebackends/status "$work/leader-writes-a") status writes; holder '$(le_holder)'"
fi

# The leader dies without releasing the Lease.
le_killed=$(date +%s.%N)
kill -KILL "$le_pid_a"
wait "$le_pid_a" 2>/dev/null || true
if wait_for $((le_duration * 3)) le_holder_is replica-b; then
  le_takeover=$(awk -v a="$le_killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if awk -v t="$le_takeover" -v d="$le_duration" 'BEGIN { exit !(t <= d + 1) }'; then
    pass "replica-a killed (SIGKILL): replica-b holds the Lease after ${le_takeover} s (lease duration ${le_duration} s)"
  else
    fail "replica-b took over after ${le_takeover} s, more than the lease duration (${le_duration} s)"
  fi
else
  fail "replica-b did not take the Lease within $((le_duration * 3)) s of the kill: holder '$(le_holder)'; $(tail -3 "$work/operator-leader-replica-b.log")"
fi

# The new leader reconciles the next change, and wrote nothing before it led.
le_backend third | k -n "$le_ns" apply -f - >/dev/null
if k -n "$le_ns" wait --for=condition=Ready --timeout=30s sbe/third >/dev/null; then
  le_writes replica-b >"$work/leader-writes-b"
  le_early=$(awk -v t="$le_killed" '$4 < t' "$work/leader-writes-b" | wc -l)
  if grep -q "^patch castellan.io/storagebackends/status third " "$work/leader-writes-b" && [ "$le_early" = 0 ]; then
    pass "replica-b reconciles the next change (backend third Ready, its status patches in the audit log), and wrote nothing before the takeover"
  else
    fail "replica-b's writes: $le_early before the takeover; $(tr '\n' ';' <"$work/leader-writes-b" | head -c 400)"
  fi
else
  fail "backend third not Ready after the takeover: $(k -n "$le_ns" get sbe 2>&1); $(tail -3 "$work/operator-leader-replica-b.log")"
fi

kill -TERM "$le_pid_b" 2>/dev/null || true
k delete clusterrolebinding "$le_binding" --ignore-not-found >/dev/null 2>&1 || true
