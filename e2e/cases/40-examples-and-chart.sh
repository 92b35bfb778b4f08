# The examples and the rendered Helm chart, applied with kubectl as a user would.
#
# - every examples/*.yaml is applied (client-side apply, default strict validation) into its own
#   throw-away namespace and every object is created;
# - the chart rendered by `charts/check --render-to` is applied: CRDs, then default.yaml into
#   castellan-system, then ha-namespaced.yaml (Role/RoleBinding in team-a, PodDisruptionBudget,
#   ServiceMonitor, PrometheusRule) — the monitoring.coreos.com kinds need CRDs, and the emulator
#   gets the stand-ins of e2e/fixtures/monitoring-standin-crds.yaml (they accept any spec);
# - re-applying the same manifests changes nothing, a server-side apply upgrades them (as GitOps
#   tools do), and kubectl delete -f removes them;
# - a Deployment whose selector does not match its template and a Role rule without verbs are
#   rejected with the real apiserver's messages.
#
# Against a real cluster, the examples still run (throw-away namespaces); the chart part is
# skipped, because it would install cluster-scoped RBAC and an operator Deployment into the
# cluster: use `helm install` there. On e2e/kube's throw-away control plane ($kube_env) the chart
# part runs (the Deployment's pods stay Pending: there is no node), and what it installed is
# deleted at the end so that the next run against the same control plane starts clean.

expected_objects() { grep -c '^kind:' "$1"; }
for example in examples/*.yaml; do
  name=$(basename "$example" .yaml)
  ex_ns=$(new_namespace "example-$name")
  if out=$(k -n "$ex_ns" apply -f "$example" -o name 2>&1) \
     && [ "$(grep -c . <<<"$out")" = "$(expected_objects "$example")" ]; then
    pass "kubectl apply -f $example: $(grep -c . <<<"$out") objects created"
  else
    fail "kubectl apply -f $example: $out"
  fi
done

chart_dir="$work/chart"
if [ "$real_cluster" = 1 ] && [ -z "$kube_env" ]; then
  skip "the Helm chart is not applied to a real cluster (cluster-scoped RBAC, a real Deployment): use helm install"
else
  if bash charts/check --render-to "$chart_dir" >"$work/chart-check.log" 2>&1; then
    pass "charts/check --render-to: lint, template and validations passed"
  else
    fail "charts/check failed: $( { grep -E '^ *FAIL' "$work/chart-check.log" || tail -3 "$work/chart-check.log"; } | sort -u | head -5 | tr '\n' ' ')"
  fi
  # charts/check renders only when every check passed; a failed check of something else (docs,
  # alerts) must not hide whether the chart applies, so render the same way here then.
  if [ ! -f "$chart_dir/default.yaml" ]; then
    chart_helm=$(command -v helm || echo "$root/.tools/node_modules/.bin/helm")
    chart_var() { sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" charts/check; }
    mkdir -p "$chart_dir"
    if [ -x "$chart_helm" ] \
       && for f in charts/castellan/crds/*.yaml; do printf -- '---\n'; cat "$f"; done >"$chart_dir/crds.yaml" \
       && "$chart_helm" template "$(chart_var RELEASE)" charts/castellan --namespace "$(chart_var NAMESPACE)" >"$chart_dir/default.yaml" \
       && "$chart_helm" template "$(chart_var RELEASE)" charts/castellan --namespace "$(chart_var NAMESPACE)" \
            --set "$(chart_var HA_SET)" >"$chart_dir/ha-namespaced.yaml"; then
      echo "  (charts/check rendered nothing; rendered with helm template as it does, to apply the chart anyway)"
    else
      rm -f "$chart_dir/default.yaml"
      fail "the chart could not be rendered (no helm?): the chart is not applied"
    fi
  fi
fi
if [ -f "$chart_dir/default.yaml" ]; then
  k apply -f "$chart_dir/crds.yaml" >/dev/null
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: castellan-system}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n' | k apply -f - >/dev/null
  if out=$(k apply -f "$chart_dir/default.yaml" 2>&1) \
     && [ "$(grep -c created <<<"$out")" = "$(expected_objects "$chart_dir/default.yaml")" ]; then
    pass "kubectl apply -f default.yaml: $(grep -c created <<<"$out") objects created ($(sed 's/ created//' <<<"$out" | tr '\n' ' '))"
  else
    fail "kubectl apply -f default.yaml: $out"
  fi
  dep=$(k -n castellan-system get deploy castellan -o jsonpath='{.metadata.generation}/{.spec.template.spec.serviceAccountName}/{.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}')
  if [ "$dep" = 1/castellan/true ]; then
    pass "the Deployment is stored as rendered (generation 1, serviceAccountName, read-only root filesystem)"
  else
    fail "Deployment castellan: '$dep'"
  fi
  if out=$(k apply -f "$chart_dir/default.yaml" 2>&1) && ! grep -qv unchanged <<<"$out"; then
    pass "re-applying default.yaml changes nothing"
  else
    fail "re-apply of default.yaml: $out"
  fi
  # GitOps tools (Flux, Argo CD with ServerSideApply) upgrade with server-side apply.
  sed 's/^  replicas: 1$/  replicas: 3/' "$chart_dir/default.yaml" >"$work/default-3.yaml"
  if out=$(k apply --server-side --force-conflicts -f "$work/default-3.yaml" 2>&1) \
     && [ "$(k -n castellan-system get deploy castellan -o jsonpath='{.spec.replicas}/{.metadata.generation}')" = 3/2 ]; then
    pass "kubectl apply --server-side upgrades the release (replicas 3, generation 2)"
  else
    fail "kubectl apply --server-side of a changed default.yaml: $out"
  fi
  # ha-namespaced.yaml is installed fresh, then default.yaml is applied over it: kubectl's
  # client-side apply sends a strategic merge patch (containers merged by name, $retainKeys
  # dropping rollingUpdate when the strategy becomes Recreate).
  if k delete -f "$chart_dir/default.yaml" --wait=true >/dev/null 2>&1 \
     && ! k -n castellan-system get deploy castellan >/dev/null 2>&1; then
    pass "kubectl delete -f default.yaml removes what it created"
  else
    fail "kubectl delete -f default.yaml"
  fi
  k apply -f e2e/fixtures/monitoring-standin-crds.yaml >/dev/null
  k wait --for=condition=Established --timeout=30s crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null
  ha_status=0
  out=$(k apply -f "$chart_dir/ha-namespaced.yaml" 2>&1) || ha_status=$?
  ha_objects=$( { k -n castellan-system get deploy,pdb,servicemonitor,prometheusrule,role,rolebinding -o name | sed 's|^|castellan-system:|'
                 k -n team-a get role,rolebinding -o name | sed 's|^|team-a:|'; } 2>&1 | sort | tr '\n' ' ')
  if [ "$ha_status" = 0 ] && [ "$(grep -c created <<<"$out")" -ge 6 ] \
     && [ "$ha_objects" = "castellan-system:deployment.apps/castellan castellan-system:poddisruptionbudget.policy/castellan castellan-system:prometheusrule.monitoring.coreos.com/castellan castellan-system:role.rbac.authorization.k8s.io/castellan-leader-election castellan-system:rolebinding.rbac.authorization.k8s.io/castellan-leader-election castellan-system:servicemonitor.monitoring.coreos.com/castellan team-a:role.rbac.authorization.k8s.io/castellan team-a:rolebinding.rbac.authorization.k8s.io/castellan " ]; then
    pass "kubectl apply -f ha-namespaced.yaml (PDB, Role/RoleBinding in team-a; ServiceMonitor/PrometheusRule on stand-in CRDs)"
  else
    fail "kubectl apply -f ha-namespaced.yaml (exit $ha_status): $(tr '\n' ' ' <<<"$out"); objects: $ha_objects"
  fi
  if out=$(k apply -f "$chart_dir/default.yaml" 2>&1) \
     && grep -q "deployment.apps/castellan configured" <<<"$out" \
     && [ "$(k -n castellan-system get deploy castellan -o jsonpath='{.spec.replicas} {.spec.strategy} {.spec.template.spec.containers[0].args}')" \
          = '1 {"type":"Recreate"} ["run","--verify-concurrency=16","--metrics-addr=0.0.0.0:9090","--health-addr=0.0.0.0:8080","--log-format=json"]' ]; then
    pass "kubectl apply -f default.yaml over ha-namespaced.yaml: strategic merge patch (Recreate without rollingUpdate, 1 replica, the default args)"
  else
    fail "default.yaml over ha-namespaced.yaml: $out; $(k -n castellan-system get deploy castellan -o jsonpath='{.spec.replicas} {.spec.strategy} {.spec.template.spec.containers[0].args}')"
  fi
  if [ -n "$kube_env" ]; then
    k delete -f "$chart_dir/ha-namespaced.yaml" -f "$chart_dir/default.yaml" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    # Waited for (~5 s), so that a next run against the same control plane can create them again.
    k delete namespace castellan-system team-a --timeout=60s >/dev/null 2>&1 || true
  fi
fi

bad_ns=$(new_namespace rejections)
expect_rejected "$bad_ns" "a Deployment whose selector does not match its template" \
  'spec.template.metadata.labels: Invalid value' '
apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatched}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec: {containers: [{name: c, image: busybox}]}'
expect_rejected "$bad_ns" "a Role rule without verbs" \
  'rules[0].verbs: Required value' '
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: no-verbs}
rules: [{apiGroups: [""], resources: [secrets]}]'
