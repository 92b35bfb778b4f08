#!/usr/bin/env python3
"""Validates the rendered castellan chart and what it depends on. Run by charts/check.

Checks, each failure printed with the object it concerns:
  - Deployment: hardened security context, resources, probes on the health port, the
    `castellan run` flags each scenario implies, POD_NAME from the downward API;
  - RBAC: no wildcards, only the resources and verbs the operator needs (Secrets read-only, the
    spec of the custom resources read-only, status through /status), every rule commented in
    the template source and in the rendered output, bindings pointing at rendered roles and at
    the rendered ServiceAccount, Role vs ClusterRole by watchNamespace, Lease rights only with
    leader election;
  - Service, ServiceMonitor, PodDisruptionBudget selectors; PrometheusRule alerts;
  - every castellan_* metric named by the alerts and the Grafana dashboard exists in
    src/metrics.rs (prefix castellan_, counters exposed with _total, histograms with _bucket);
  - examples/*.yaml validate against the CRDs' OpenAPI schema (and the CEL rules it can read),
    and the Secrets and backends they reference exist in the same file with the right keys;
  - the Argo CD health checks in docs/OPERATOR.md give the documented answers (Lua 5.1 via lupa),
    and their terminal reasons are those of src/api/reasons.rs.
"""

import argparse
import glob
import json
import os
import re
import sys

import yaml

FAILURES = []
CHECKS = [0]


def check(cond, msg):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(msg)
    return cond


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def name_of(d):
    md = d.get("metadata", {})
    ns = md.get("namespace")
    return f"{d.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


# --------------------------------------------------------------------------------------------
# Scenario expectations: what each rendered configuration must contain.
# --------------------------------------------------------------------------------------------
RELEASE_NS = "castellan-system"
SCENARIOS = {
    "default": dict(replicas=1, watch_ns=None, leader=False, service_monitor=False, rule=False),
    "ha-namespaced": dict(replicas=2, watch_ns="team-a", leader=True, service_monitor=True, rule=True),
    "everything": dict(replicas=2, watch_ns="team-a", leader=True, service_monitor=True, rule=True,
                       dashboard=True, bytes_per_second="104857600", lease_name="my-lease",
                       extra_args=["--max-backoff=10m"]),
    "single-elected": dict(replicas=1, watch_ns=None, leader=True, service_monitor=False, rule=False),
}

# (apiGroup, resource) -> verbs the operator may hold. Anything else is a failure.
ALLOWED = {
    ("castellan.io", "storagebackends"): {"get", "list", "watch"},
    ("castellan.io", "artifactmappings"): {"get", "list", "watch"},
    # Status is only ever written by server-side apply (patch); e2e case 50 proves it on
    # kube-apiserver against the audit log.
    ("castellan.io", "storagebackends/status"): {"patch"},
    ("castellan.io", "artifactmappings/status"): {"patch"},
    ("", "secrets"): {"get", "list", "watch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("coordination.k8s.io", "leases"): {"get", "create", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
}
# What the operator needs in the namespaces it watches.
NAMESPACED_NEEDS = {k: v for k, v in ALLOWED.items() if k[0] in ("castellan.io", "", "events.k8s.io")}
CRD_NAMES = {"storagebackends.castellan.io", "artifactmappings.castellan.io"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}


def check_deployment(scn, exp, docs):
    deps = by_kind(docs, "Deployment")
    if not check(len(deps) == 1, f"[{scn}] expected one Deployment, got {len(deps)}"):
        return None
    d = deps[0]
    where = f"[{scn}] {name_of(d)}"
    spec = d["spec"]
    check(spec.get("replicas") == exp["replicas"], f"{where}: replicas {spec.get('replicas')} != {exp['replicas']}")
    strategy = spec.get("strategy", {}).get("type")
    if exp["leader"]:
        check(strategy == "RollingUpdate", f"{where}: with a Lease the strategy should be RollingUpdate, got {strategy}")
    else:
        check(strategy == "Recreate", f"{where}: without a Lease two pods must never overlap (Recreate), got {strategy}")
    pod = spec["template"]["spec"]
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod securityContext.runAsNonRoot must be true")
    check(psc.get("runAsUser", 1) != 0, f"{where}: pod must not run as uid 0")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile must be RuntimeDefault")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        check(not pod.get(key), f"{where}: {key} must not be set")
    containers = pod.get("containers", [])
    check(len(containers) == 1, f"{where}: expected one container")
    for c in containers + pod.get("initContainers", []):
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation must be false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem must be true")
        check(sc.get("privileged") in (None, False), f"{cw}: privileged must not be true")
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cw}: runAsNonRoot must be true")
        check(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, f"{cw}: must not run as uid 0")
        caps = sc.get("capabilities", {})
        check("ALL" in (caps.get("drop") or []), f"{cw}: capabilities.drop must contain ALL")
        check(not caps.get("add"), f"{cw}: no capabilities may be added")
        check(sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
              f"{cw}: seccompProfile must be RuntimeDefault")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                check(r in (res.get(kind) or {}), f"{cw}: resources.{kind}.{r} must be set")
    c = containers[0]
    cw = f"{where} container {c.get('name')}"
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("health") == 8080, f"{cw}: health port must be 8080, got {ports.get('health')}")
    check(ports.get("metrics") == 9090, f"{cw}: metrics port must be 9090, got {ports.get('metrics')}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet", {})
        check(get.get("path") == path, f"{cw}: {probe} must GET {path}, got {get.get('path')}")
        check(get.get("port") in ("health", 8080), f"{cw}: {probe} must use the health port, got {get.get('port')}")
    args = c.get("args", [])
    check(args[:1] == ["run"], f"{cw}: args must start with 'run', got {args[:1]}")

    def flag(name):
        vals = [a.split("=", 1)[1] if "=" in a else True for a in args if a == name or a.startswith(name + "=")]
        return vals[0] if vals else None

    check(flag("--metrics-addr") == "0.0.0.0:9090", f"{cw}: --metrics-addr must be 0.0.0.0:9090, got {flag('--metrics-addr')}")
    check(flag("--health-addr") == "0.0.0.0:8080", f"{cw}: --health-addr must be 0.0.0.0:8080, got {flag('--health-addr')}")
    check(flag("--log-format") in ("json", "text"), f"{cw}: --log-format must be json or text")
    check(flag("--verify-concurrency") == "16", f"{cw}: --verify-concurrency must default to 16")
    check(flag("--verify-bytes-per-second") == exp.get("bytes_per_second"),
          f"{cw}: --verify-bytes-per-second {flag('--verify-bytes-per-second')} != {exp.get('bytes_per_second')}")
    check(flag("--namespace") == exp["watch_ns"], f"{cw}: --namespace {flag('--namespace')} != {exp['watch_ns']}")
    if exp["leader"]:
        check(flag("--leader-elect") is True, f"{cw}: --leader-elect missing")
        check(flag("--lease-name") == exp.get("lease_name", "castellan"), f"{cw}: --lease-name {flag('--lease-name')}")
        check(flag("--lease-namespace") == RELEASE_NS, f"{cw}: --lease-namespace {flag('--lease-namespace')}")
    else:
        for f in ("--leader-elect", "--lease-name", "--lease-namespace"):
            check(flag(f) is None, f"{cw}: {f} must not be set without leader election")
    for extra in exp.get("extra_args", []):
        check(extra in args, f"{cw}: extra arg {extra} missing")
    env = {e["name"]: e for e in c.get("env", [])}
    pod_name = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(pod_name == "metadata.name", f"{cw}: POD_NAME must come from the downward API (metadata.name)")
    for e in c.get("env", []):
        check(not re.search(r"(?i)secret|password|token|access.?key", e["name"]) or "valueFrom" in e,
              f"{cw}: env {e['name']} looks like a credential given as a literal")
    return d


def rule_keys(rule):
    for g in rule.get("apiGroups", []):
        for r in rule.get("resources", []):
            yield (g, r)


def check_rbac(scn, exp, docs, text):
    roles = by_kind(docs, "Role") + by_kind(docs, "ClusterRole")
    sas = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in by_kind(docs, "ServiceAccount")}
    deps = by_kind(docs, "Deployment")
    sa_name = deps[0]["spec"]["template"]["spec"].get("serviceAccountName") if deps else None
    check((RELEASE_NS, sa_name) in sas, f"[{scn}] the Deployment's ServiceAccount {sa_name} is not rendered in {RELEASE_NS}")

    grants = {}  # (scope, group, resource) -> verbs; scope is a namespace or "*cluster*"
    for role in roles:
        where = f"[{scn}] {name_of(role)}"
        check(role.get("rules"), f"{where}: has no rules")
        check("aggregationRule" not in role, f"{where}: must not aggregate other roles")
        for rule in role.get("rules", []):
            check(not rule.get("nonResourceURLs"), f"{where}: nonResourceURLs are not needed")
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                vals = rule.get(field) or []
                check("*" not in vals and not any("*" in v for v in vals),
                      f"{where}: wildcard in {field}: {vals}")
            verbs = set(rule.get("verbs", []))
            for key in rule_keys(rule):
                allowed = ALLOWED.get(key)
                if not check(allowed is not None, f"{where}: grants {key[1]} in group '{key[0]}', which the operator does not need"):
                    continue
                check(verbs <= allowed, f"{where}: {key[1]}: verbs {sorted(verbs - allowed)} are not needed (allowed: {sorted(allowed)})")
                if key == ("", "secrets"):
                    check(not (verbs & WRITE_VERBS), f"{where}: Secrets must be read-only, got {sorted(verbs)}")
                if key[0] == "castellan.io" and "/" not in key[1]:
                    check(not (verbs & WRITE_VERBS), f"{where}: the spec of {key[1]} must never be writable, got {sorted(verbs)}")
                if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                    check(set(rule.get("resourceNames") or []) == CRD_NAMES,
                          f"{where}: CRD access must be limited to {sorted(CRD_NAMES)}")
                if key == ("coordination.k8s.io", "leases") and verbs - {"create"}:
                    check(rule.get("resourceNames") == [exp.get("lease_name", "castellan")],
                          f"{where}: Lease get/patch must be limited to the Lease name")
                if rule.get("resourceNames") and "create" in verbs:
                    check(False, f"{where}: resourceNames cannot restrict create; split the rule")
                scope = role["metadata"].get("namespace") if role["kind"] == "Role" else "*cluster*"
                names = tuple(sorted(rule.get("resourceNames") or []))
                grants.setdefault((scope, key[0], key[1]), set()).update((v, names) for v in verbs)

    # Bindings point at rendered roles and at the operator's ServiceAccount.
    bound = set()
    for b in by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding"):
        where = f"[{scn}] {name_of(b)}"
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace")
        target = [r for r in roles if r["kind"] == ref["kind"] and r["metadata"]["name"] == ref["name"]
                  and (r["kind"] == "ClusterRole" or r["metadata"].get("namespace") == ns)]
        check(target, f"{where}: roleRef {ref['kind']} {ref['name']} is not rendered (in the binding's namespace)")
        check(b["kind"] == "RoleBinding" or ref["kind"] == "ClusterRole", f"{where}: ClusterRoleBinding to a Role")
        for s in b.get("subjects", []):
            check(s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == (RELEASE_NS, sa_name),
                  f"{where}: subject {s} is not the operator's ServiceAccount")
        for r in target:
            bound.add((r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]))
    for r in roles:
        check((r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) in bound,
              f"[{scn}] {name_of(r)} is not bound")

    def has(scope, key, verb, names=()):
        return any(v == verb and (not n or not names or set(names) <= set(n)) for v, n in grants.get((scope, *key), set()))

    # The operator gets what it needs, where it needs it, and not more widely.
    scope = exp["watch_ns"] or "*cluster*"
    for key, verbs in NAMESPACED_NEEDS.items():
        for v in verbs:
            check(has(scope, key, v), f"[{scn}] {key[1]}: '{v}' missing in {'namespace ' + scope if exp['watch_ns'] else 'the ClusterRole'}")
    if exp["watch_ns"]:
        for (sc, g, r) in grants:
            if sc == "*cluster*":
                check((g, r) == ("apiextensions.k8s.io", "customresourcedefinitions"),
                      f"[{scn}] with watchNamespace, {r} must not be granted cluster-wide")
            elif (g, r) != ("coordination.k8s.io", "leases"):
                check(sc == exp["watch_ns"], f"[{scn}] {r} granted in namespace {sc}, outside watchNamespace")
        check(not by_kind(docs, "ClusterRoleBinding") or all(
            b["roleRef"]["name"].endswith("-crds") for b in by_kind(docs, "ClusterRoleBinding")),
            f"[{scn}] with watchNamespace only the CRD ClusterRole may be cluster-wide")
    for v in ("get", "list", "watch"):
        check(has("*cluster*", ("apiextensions.k8s.io", "customresourcedefinitions"), v),
              f"[{scn}] customresourcedefinitions: '{v}' missing (the operator waits for its CRDs)")
    lease_scopes = {sc for (sc, g, r) in grants if (g, r) == ("coordination.k8s.io", "leases")}
    if exp["leader"]:
        check(lease_scopes == {RELEASE_NS}, f"[{scn}] Lease rights must be in {RELEASE_NS} only, got {lease_scopes}")
        for v in ("get", "create", "patch"):
            check(has(RELEASE_NS, ("coordination.k8s.io", "leases"), v), f"[{scn}] leases: '{v}' missing")
    else:
        check(not lease_scopes, f"[{scn}] Lease rights granted without leader election")

    # Rendered output: every rule is preceded by a comment (the comment survives rendering).
    check_rule_comments(f"[{scn}] rendered", text, rendered=True)


def check_rule_comments(where, text, rendered=False):
    """Every `- apiGroups:` line inside rules is preceded by a YAML comment line, skipping lines
    that only hold template actions. In rendered output, only documents of kind Role/ClusterRole
    are considered."""
    docs = re.split(r"(?m)^---\s*$", text) if rendered else [text]
    count = 0
    for doc in docs:
        if rendered and not re.search(r"(?m)^kind: (Cluster)?Role\s*$", doc):
            continue
        lines = doc.splitlines()
        for i, line in enumerate(lines):
            if not re.match(r"^\s*- apiGroups:", line):
                continue
            count += 1
            j = i - 1
            while j >= 0 and re.fullmatch(r"\s*(\{\{-?.*-?\}\}\s*)*", lines[j]):
                j -= 1
            prev = lines[j].strip() if j >= 0 else ""
            check(prev.startswith("#") and len(prev.lstrip("# ")) >= 10,
                  f"{where}: RBAC rule without a comment saying why it is needed: {line.strip()} "
                  f"(line {i + 1}{'' if rendered else ''})")
    return count


# --------------------------------------------------------------------------------------------
def selector_matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_other_objects(scn, exp, docs, dep, metric_names):
    pod_labels = dep["spec"]["template"]["metadata"]["labels"] if dep else {}
    svcs = by_kind(docs, "Service")
    check(len(svcs) == 1, f"[{scn}] expected one metrics Service, got {len(svcs)}")
    for s in svcs:
        check(selector_matches(s["spec"].get("selector"), pod_labels), f"[{scn}] {name_of(s)} does not select the operator pods")
        check([p.get("targetPort") for p in s["spec"]["ports"]] == ["metrics"], f"[{scn}] {name_of(s)} must target the metrics port")
    check(selector_matches(dep["spec"]["selector"]["matchLabels"], pod_labels), f"[{scn}] Deployment selector does not match its pods")

    pdbs = by_kind(docs, "PodDisruptionBudget")
    check(len(pdbs) == (1 if exp["replicas"] > 1 else 0), f"[{scn}] PodDisruptionBudget count {len(pdbs)} (replicas {exp['replicas']})")
    for p in pdbs:
        check(selector_matches(p["spec"]["selector"]["matchLabels"], pod_labels), f"[{scn}] {name_of(p)} does not select the pods")

    sms = by_kind(docs, "ServiceMonitor")
    check(len(sms) == (1 if exp["service_monitor"] else 0), f"[{scn}] ServiceMonitor count {len(sms)}")
    for sm in sms:
        sel = sm["spec"]["selector"]["matchLabels"]
        check(any(selector_matches(sel, s["metadata"]["labels"]) for s in svcs), f"[{scn}] {name_of(sm)} selects no Service")
        check([e.get("port") for e in sm["spec"]["endpoints"]] == ["metrics"], f"[{scn}] {name_of(sm)} must scrape the metrics port")
        check(sm["spec"]["endpoints"][0].get("path") == "/metrics", f"[{scn}] {name_of(sm)} path must be /metrics")

    rules = by_kind(docs, "PrometheusRule")
    check(len(rules) == (1 if exp["rule"] else 0), f"[{scn}] PrometheusRule count {len(rules)}")
    for pr in rules:
        alerts = {r["alert"]: r for g in pr["spec"]["groups"] for r in g["rules"] if "alert" in r}
        want = {
            "CastellanBackendNotReady": ("castellan_backend_ready == 0", "15m"),
            "CastellanMappingsStranded": ('castellan_mappings{state="stranded"} > 0', "10m"),
            "CastellanDigestMismatch": ("increase(castellan_digest_mismatches_total[15m]) > 0", None),
        }
        for name, (expr, for_) in want.items():
            a = alerts.get(name)
            if not check(a is not None, f"[{scn}] alert {name} missing"):
                continue
            check(a["expr"].strip() == expr, f"[{scn}] alert {name}: expr {a['expr']!r} != {expr!r}")
            check(a.get("for") == for_, f"[{scn}] alert {name}: for {a.get('for')} != {for_}")
            check(a.get("labels", {}).get("severity"), f"[{scn}] alert {name}: no severity label")
            check(a.get("annotations", {}).get("summary") and a["annotations"].get("description"),
                  f"[{scn}] alert {name}: summary and description are required")
            for m in re.findall(r"\bcastellan_[a-z0-9_]+", a["expr"]):
                check(m in metric_names, f"[{scn}] alert {name} uses {m}, which src/metrics.rs does not expose")

    cms = by_kind(docs, "ConfigMap")
    check(len(cms) == (1 if exp.get("dashboard") else 0), f"[{scn}] dashboard ConfigMap count {len(cms)}")
    for cm in cms:
        check(cm["metadata"]["labels"].get("grafana_dashboard") == "1", f"[{scn}] {name_of(cm)} lacks the grafana_dashboard label")
        try:
            json.loads(cm["data"]["castellan.json"])
        except Exception as e:  # noqa: BLE001 - report any parse error
            check(False, f"[{scn}] {name_of(cm)}: dashboard JSON does not parse: {e}")

    known = {"Deployment", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
             "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "ConfigMap"}
    for d in docs:
        check(d.get("kind") in known, f"[{scn}] unexpected object {name_of(d)}")
        check(d.get("kind") in ("ClusterRole", "ClusterRoleBinding") or d["metadata"].get("namespace"),
              f"[{scn}] {name_of(d)} has no namespace")
        check(d["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "Helm",
              f"[{scn}] {name_of(d)} lacks the standard labels")


# --------------------------------------------------------------------------------------------
def exposed_metrics(path):
    """Names as Prometheus exposes them, from the registrations in src/metrics.rs."""
    src = open(path).read()
    prefix = re.search(r'Registry::with_prefix\(\s*"([a-z_]+)"', src)
    check(prefix is not None, f"{path}: no Registry::with_prefix")
    prefix = prefix.group(1) if prefix else "castellan"
    types = {}
    for var, decl in re.findall(r"let\s+(\w+)\s*=\s*([^;]+);", src):
        m = re.search(r"\b(Counter|Gauge|Histogram)\b", decl)
        if m:
            types[var] = m.group(1)
    names = set()
    regs = re.findall(r'registry\.register\(\s*"([a-z0-9_]+)",\s*"[^"]*",\s*(\w+)\.clone\(\)', src)
    check(len(regs) >= 5, f"{path}: found only {len(regs)} metric registrations")
    for name, var in regs:
        full = f"{prefix}_{name}"
        t = types.get(var)
        check(t is not None, f"{path}: cannot tell the type of {var} ({full})")
        if t == "Counter":
            names.add(full + "_total")
        elif t == "Histogram":
            names.update({full + "_bucket", full + "_sum", full + "_count"})
        else:
            names.add(full)
    return names


def check_dashboard(chart, metric_names):
    path = os.path.join(chart, "dashboards", "castellan.json")
    try:
        dash = json.load(open(path))
    except Exception as e:  # noqa: BLE001
        check(False, f"{path}: does not parse: {e}")
        return
    exprs = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                exprs.append((p.get("title"), t.get("expr", "")))
    walk(dash.get("panels", []))
    check(len(exprs) >= 8, f"{path}: only {len(exprs)} queries")
    used = set()
    for title, expr in exprs:
        for m in re.findall(r"\bcastellan_[a-z0-9_]+", expr):
            used.add(m)
            check(m in metric_names, f"{path}: panel '{title}' uses {m}, which src/metrics.rs does not expose")
    base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in metric_names}
    unused = sorted(b for b in base if not any(u.startswith(b) for u in used))
    check(not unused, f"{path}: metrics without a panel: {unused}")
    ids = [p["id"] for p in dash["panels"]]
    check(len(ids) == len(set(ids)), f"{path}: duplicate panel ids")


# --------------------------------------------------------------------------------------------
# Examples against the CRD schemas.
# --------------------------------------------------------------------------------------------
def cel_to_python(rule):
    """Translates the small CEL subset the CRDs use into a Python expression, or None."""
    if "oldSelf" in rule:
        return None  # transition rules need an old object
    py = rule
    py = re.sub(r"has\(self\.(\w+)\)", r"('\1' in self)", py)
    py = re.sub(r"\.matches\('((?:[^'\\]|\\.)*)'\)", lambda m: f".__cel_matches__({m.group(1)!r})", py)
    py = py.replace(".size()", ".__cel_size__()").replace(".startsWith(", ".startswith(").replace(".endsWith(", ".endswith(")
    py = re.sub(r"\.contains\(", ".__contains__(", py)
    py = py.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    py = re.sub(r"self\.(\w+)\b(?!\()", r"self['\1']", py)
    if re.search(r"[a-zA-Z_]\w*\(", re.sub(r"__cel_\w+__|startswith|endswith|__contains__", "", py)):
        return None
    return py


class CelStr(str):
    def __cel_matches__(self, pattern):
        return re.search(pattern, self) is not None

    def __cel_size__(self):
        return len(self)


class CelList(list):
    def __cel_size__(self):
        return len(self)


def cel_value(v):
    if isinstance(v, str):
        return CelStr(v)
    if isinstance(v, list):
        return CelList(v)
    return v


def validate(value, schema, path, errors, cel_skipped):
    if value is None:
        if not schema.get("nullable"):
            errors.append(f"{path}: null is not allowed")
        return
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if t and not isinstance(value, types[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        if not (schema.get("x-kubernetes-int-or-string") and isinstance(value, (int, str))):
            errors.append(f"{path}: expected {t}, got {type(value).__name__} {value!r}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties")
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{path}: required field {req} is missing")
        if props is not None:
            for k, v in value.items():
                if k in props:
                    validate(v, props[k], f"{path}.{k}", errors, cel_skipped)
                elif not schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("additionalProperties"):
                    errors.append(f"{path}: unknown field {k!r} (not in the CRD schema; known: {sorted(props)})")
        elif isinstance(schema.get("additionalProperties"), dict):
            for k, v in value.items():
                validate(v, schema["additionalProperties"], f"{path}.{k}", errors, cel_skipped)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{path}[{i}]", errors, cel_skipped)
    for rule in schema.get("x-kubernetes-validations", []):
        py = cel_to_python(rule["rule"])
        if py is None:
            cel_skipped.add(rule["rule"])
            continue
        self_ = {k: cel_value(v) for k, v in value.items()} if isinstance(value, dict) else cel_value(value)
        # Fields the API server would default are visible to CEL: apply schema defaults first.
        if isinstance(value, dict):
            for k, ps in (schema.get("properties") or {}).items():
                if k not in self_ and "default" in ps:
                    self_[k] = cel_value(ps["default"])
        try:
            ok = eval(py, {"__builtins__": {}}, {"self": self_})  # noqa: S307 - our own CRDs' rules
        except KeyError:
            ok = True  # a field the rule reads is absent and has no default: CEL would not reach it
        except Exception as e:  # noqa: BLE001
            cel_skipped.add(f"{rule['rule']} ({e})")
            continue
        if not ok:
            errors.append(f"{path}: {rule.get('message', rule['rule'])}")


def check_examples(crd_dir, examples_dir):
    schemas = {}
    for f in sorted(glob.glob(os.path.join(crd_dir, "*.yaml"))):
        for crd in load_docs(f):
            group = crd["spec"]["group"]
            for v in crd["spec"]["versions"]:
                schemas[(f"{group}/{v['name']}", crd["spec"]["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
    check(len(schemas) >= 2, f"{crd_dir}: expected the two castellan CRDs, found {sorted(schemas)}")
    files = sorted(glob.glob(os.path.join(examples_dir, "*.yaml")))
    check(files, f"{examples_dir}: no examples")
    cel_skipped = set()
    counted = 0
    for f in files:
        docs = load_docs(f)
        secrets = {d["metadata"]["name"]: d for d in by_kind(docs, "Secret")}
        backends = {d["metadata"]["name"] for d in by_kind(docs, "StorageBackend")}
        for d in docs:
            where = f"{f}: {name_of(d)}"
            key = (d.get("apiVersion"), d.get("kind"))
            if d.get("kind") in ("StorageBackend", "ArtifactMapping"):
                schema = schemas.get(key)
                if not check(schema is not None, f"{where}: no CRD serves {key}"):
                    continue
                counted += 1
                errors = []
                body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind", "metadata")}
                validate(body, {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                                          if k not in ("apiVersion", "kind", "metadata")}},
                         "", errors, cel_skipped)
                for e in errors:
                    check(False, f"{where}: {e}")
                check("status" not in d, f"{where}: examples must not carry status (the operator owns it)")
            if d.get("kind") == "StorageBackend":
                s3 = d["spec"]["s3"]
                ref = s3.get("credentialsSecretRef")
                if ref:
                    sec = secrets.get(ref["name"])
                    if check(sec is not None, f"{where}: credentialsSecretRef {ref['name']} is not in the same file"):
                        data = {**(sec.get("stringData") or {}), **(sec.get("data") or {})}
                        for k in (ref.get("accessKeyIdKey", "accessKeyId"), ref.get("secretAccessKeyKey", "secretAccessKey")):
                            check(k in data, f"{where}: Secret {ref['name']} has no key {k}")
                ca = s3.get("caBundleSecretRef")
                if ca:
                    sec = secrets.get(ca["name"])
                    if check(sec is not None, f"{where}: caBundleSecretRef {ca['name']} is not in the same file"):
                        data = {**(sec.get("stringData") or {}), **(sec.get("data") or {})}
                        check(ca.get("key", "ca.crt") in data, f"{where}: Secret {ca['name']} has no key {ca.get('key', 'ca.crt')}")
                for sec_name, sec in secrets.items():
                    check(sec["metadata"].get("namespace") == d["metadata"].get("namespace"),
                          f"{f}: Secret {sec_name} and {name_of(d)} must share a namespace (a backend reads only its own)")
            if d.get("kind") == "ArtifactMapping":
                check(d["spec"]["backendRef"]["name"] in backends, f"{where}: backendRef names no StorageBackend in {f}")
    print(f"  examples: {counted} custom resources in {len(files)} files validated against {len(schemas)} CRD schemas")
    if cel_skipped:
        print(f"  examples: CEL rules not evaluated here (need an old object or unsupported syntax): {len(cel_skipped)}")
        for r in sorted(cel_skipped):
            print(f"    - {r}")



# --------------------------------------------------------------------------------------------
# The Argo CD health checks published in docs/OPERATOR.md, run in Lua 5.1 (what Argo CD embeds).
# --------------------------------------------------------------------------------------------
def cond(type_, status, reason, observed=None):
    c = {"type": type_, "status": status, "reason": reason, "message": f"{reason} message",
         "lastTransitionTime": "2026-11-20T00:00:00Z"}
    if observed is not None:
        c["observedGeneration"] = observed
    return c


def obj(kind, generation=2, observed=2, conditions=None, backend=None):
    o = {"apiVersion": "castellan.io/v1alpha1", "kind": kind,
         "metadata": {"name": "x", "namespace": "team-a", "generation": generation}}
    if conditions is not None or observed is not None:
        o["status"] = {}
        if observed is not None:
            o["status"]["observedGeneration"] = observed
        if conditions is not None:
            o["status"]["conditions"] = conditions
        if backend:
            o["status"]["backend"] = backend
    return o


SBE, AM = "StorageBackend", "ArtifactMapping"
HEALTH_CASES = [
    ("a backend without status is Progressing", obj(SBE, observed=None), "Progressing"),
    ("a backend with status but no conditions is Progressing", obj(SBE, conditions=[]), "Progressing"),
    ("a Ready backend at the current generation is Healthy",
     obj(SBE, conditions=[cond("Ready", "True", "Validated", 2), cond("Stalled", "False", "Validated", 2)]), "Healthy"),
    ("a Ready backend whose status describes an older generation is Progressing",
     obj(SBE, generation=3, observed=2, conditions=[cond("Ready", "True", "Validated", 2)]), "Progressing"),
    ("a backend whose Ready condition describes an older generation is Progressing",
     obj(SBE, generation=3, observed=3, conditions=[cond("Ready", "True", "Validated", 2)]), "Progressing"),
    ("a Stalled backend is Degraded",
     obj(SBE, conditions=[cond("Ready", "False", "InvalidAccessKeyId", 2), cond("Stalled", "True", "InvalidAccessKeyId", 2)]), "Degraded"),
    ("a backend not Ready for a terminal reason is Degraded even without Stalled",
     obj(SBE, conditions=[cond("Ready", "False", "SecretNotFound", 2)]), "Degraded"),
    ("a backend not Ready for a transient reason is Progressing",
     obj(SBE, conditions=[cond("Ready", "False", "Timeout", 2), cond("Stalled", "False", "Timeout", 2)]), "Progressing"),
    ("a backend waiting for successThreshold good probes is Progressing",
     obj(SBE, conditions=[cond("Ready", "False", "Pending", 2)]), "Progressing"),
    ("a backend with Ready Unknown is Progressing",
     obj(SBE, conditions=[cond("Ready", "Unknown", "Pending", 2)]), "Progressing"),
    ("a mapping without status is Progressing", obj(AM, observed=None), "Progressing"),
    ("a mapping served by its declared backend is Healthy",
     obj(AM, generation=1, observed=1, conditions=[cond("Ready", "True", "Declared", 1)], backend="backend-a"), "Healthy"),
    ("a mapping served elsewhere after re-verification is Healthy",
     obj(AM, generation=1, observed=1, conditions=[cond("Ready", "True", "DigestVerified", 1),
                                                   cond("Reassigned", "True", "DigestVerified", 1)], backend="backend-b"), "Healthy"),
    ("a mapping with no verified replica is Degraded",
     obj(AM, generation=1, observed=1, conditions=[cond("Ready", "False", "NoVerifiedReplica", 1)]), "Degraded"),
    ("a stranded mapping that may not be reassigned is Degraded",
     obj(AM, generation=1, observed=1, conditions=[cond("Ready", "False", "ReassignmentDisabled", 1)]), "Degraded"),
    ("a stranded mapping still being verified is Progressing",
     obj(AM, generation=1, observed=1, conditions=[cond("Ready", "False", "BackendInvalid", 1),
                                                   cond("Stranded", "True", "BackendInvalid", 1)]), "Progressing"),
    ("a mapping whose status describes an older generation is Progressing",
     obj(AM, generation=2, observed=1, conditions=[cond("Ready", "True", "Declared", 1)]), "Progressing"),
]


def terminal_backend_reasons(reasons_rs):
    """The reasons whose row in BackendReason::traits() has the class Terminal (the variant
    name is the wire string: strum serializes variants as they are spelt, except where a
    `#[strum(serialize = ...)]` says otherwise, which the table below reads too)."""
    src = open(reasons_rs).read()
    m = re.search(r"impl BackendReason \{(.*?)\n\}", src, re.S)
    table = re.search(r"pub const fn traits\(self\) -> Traits \{(.*?)\n    \}", m.group(1), re.S) if m else None
    check(table is not None, f"{reasons_rs}: no BackendReason::traits() table")
    if table is None:
        return set()
    rows = re.findall(r"(\w+) => \(\s*(\w+),", table.group(1))
    check(len(rows) > 10, f"{reasons_rs}: BackendReason::traits() has only {len(rows)} rows")
    renamed = dict(re.findall(r'#\[strum\(serialize = "(\w+)"\)\]\s*(\w+),', src))
    wire = {variant: name for name, variant in renamed.items()}
    return {wire.get(variant, variant) for variant, cls in rows if cls == "Terminal"}


def check_argocd_health(doc_path, reasons_rs):
    try:
        from lupa import lua51  # noqa: PLC0415 - optional until this check runs
    except ImportError:
        check(False, "lupa (Lua 5.1 for Python) is not installed: charts/check installs it")
        return
    text = open(doc_path).read()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "resource.customizations.health." in b]
    if not check(len(blocks) == 1, f"{doc_path}: expected one yaml block with the Argo CD health checks, found {len(blocks)}"):
        return
    scripts = yaml.safe_load(blocks[0])["data"]
    keys = {SBE: "resource.customizations.health.castellan.io_StorageBackend",
            AM: "resource.customizations.health.castellan.io_ArtifactMapping"}
    for kind, key in keys.items():
        check(key in scripts, f"{doc_path}: no {key}")
    # The backend script's terminal reasons are exactly the terminal reasons of src/api/reasons.rs.
    terminal = terminal_backend_reasons(reasons_rs)
    sbe_script = scripts.get(keys[SBE], "")
    table = re.search(r"local terminal = \{(.*?)\}", sbe_script, re.S)
    listed = set(re.findall(r"(\w+) = true", table.group(1))) if table else set()
    check(listed == terminal, f"{doc_path}: Argo CD terminal reasons {sorted(listed)} != reasons.rs {sorted(terminal)}")

    def to_lua(rt, v):
        if isinstance(v, dict):
            return rt.table_from({k: to_lua(rt, x) for k, x in v.items()})
        if isinstance(v, list):
            return rt.table_from([to_lua(rt, x) for x in v])
        return v

    passed = 0
    for sentence, o, want in HEALTH_CASES:
        script = scripts.get(keys[o["kind"]])
        if script is None:
            continue
        rt = lua51.LuaRuntime(unpack_returned_tuples=True)
        rt.globals().obj = to_lua(rt, o)
        try:
            hs = rt.execute(script)
            got, msg = hs["status"], hs["message"]
        except Exception as e:  # noqa: BLE001 - a Lua error is a failed check
            check(False, f"Argo CD health ({o['kind']}): {sentence}: Lua error {e}")
            continue
        if check(got == want, f"Argo CD health ({o['kind']}): {sentence}: got {got} ({msg}), want {want}"):
            passed += 1
        check(isinstance(msg, str), f"Argo CD health ({o['kind']}): {sentence}: message must be a string")
    print(f"  argocd: {passed}/{len(HEALTH_CASES)} health-check cases from {doc_path} pass in Lua 5.1")


# --------------------------------------------------------------------------------------------
# Mutation tests: the checks above must fail on manifests that break each rule.
# --------------------------------------------------------------------------------------------
MUTATIONS = [
    ("a wildcard verb", lambda t: t.replace('verbs: ["get", "list", "watch"]', 'verbs: ["*"]', 1), "wildcard in verbs"),
    ("a wildcard resource", lambda t: t.replace('resources: ["secrets"]', 'resources: ["*"]', 1), "wildcard in resources"),
    ("writable Secrets", lambda t: t.replace('resources: ["secrets"]\n    verbs: ["get", "list", "watch"]',
                                             'resources: ["secrets"]\n    verbs: ["get", "list", "watch", "update"]'), "Secrets must be read-only"),
    ("a writable spec", lambda t: t.replace('resources: ["storagebackends"]\n    verbs: ["get", "list", "watch"]',
                                            'resources: ["storagebackends"]\n    verbs: ["get", "list", "watch", "patch"]'), "must never be writable"),
    ("an uncommented rule", lambda t: re.sub(r"(?m)^  # Secrets:.*\n(  #.*\n)*", "", t), "without a comment"),
    ("an extra resource", lambda t: t.replace('resources: ["secrets"]', 'resources: ["secrets", "configmaps"]', 1), "configmaps"),
    ("a writable root filesystem", lambda t: t.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"), "readOnlyRootFilesystem"),
    ("privilege escalation", lambda t: t.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"), "allowPrivilegeEscalation"),
    ("kept capabilities", lambda t: t.replace("- ALL", "- NET_RAW"), "capabilities.drop"),
    ("root", lambda t: t.replace("runAsNonRoot: true", "runAsNonRoot: false"), "runAsNonRoot"),
    ("no seccomp profile", lambda t: t.replace("type: RuntimeDefault", "type: Unconfined"), "seccompProfile"),
    ("no memory limit", lambda t: re.sub(r"(?m)^( +limits:\n +cpu: .*\n) +memory: .*\n", r"\1", t), "resources.limits.memory"),
    ("a liveness probe on the wrong path", lambda t: t.replace("path: /healthz", "path: /"), "livenessProbe"),
    ("a missing POD_NAME", lambda t: t.replace("name: POD_NAME", "name: NOT_POD_NAME"), "POD_NAME"),
]


def mutation_test(path, metric_names):
    text = open(path).read()
    exp = SCENARIOS["default"]
    caught = 0
    for what, mutate, expect in MUTATIONS:
        mutated = mutate(text)
        if not check(mutated != text, f"mutation test: '{what}' did not change the default rendering"):
            continue
        before = len(FAILURES)
        docs = [d for d in yaml.safe_load_all(mutated) if d]
        dep = check_deployment("mutant", exp, docs)
        check_rbac("mutant", exp, docs, mutated)
        check_other_objects("mutant", exp, docs, dep, metric_names)
        new = FAILURES[before:]
        del FAILURES[before:]
        if check(any(expect in f for f in new), f"mutation test: the checks accept {what} (expected a failure mentioning '{expect}')"):
            caught += 1
    print(f"  mutation test: {caught}/{len(MUTATIONS)} broken renderings rejected")

# --------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chart", required=True)
    ap.add_argument("--metrics-source", required=True)
    ap.add_argument("--crds", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--operator-doc", required=True, help="docs/OPERATOR.md (Argo CD health checks)")
    ap.add_argument("--reasons-source", required=True, help="src/api/reasons.rs")
    ap.add_argument("--scenario", action="append", default=[], help="name=path of rendered manifests")
    ap.add_argument("--mutation-test", help="the default rendering, broken on purpose to prove the checks fail")
    a = ap.parse_args()

    metric_names = exposed_metrics(a.metrics_source)
    print(f"  metrics exposed by {a.metrics_source}: {len(metric_names)} series names")

    # Template source: every RBAC rule commented.
    n = 0
    for f in sorted(glob.glob(os.path.join(a.chart, "templates", "*"))):
        text = open(f).read()
        if re.search(r"kind: (Cluster)?Role\b", text) or "apiGroups:" in text:
            n += check_rule_comments(f, text)
    check(n >= 7, f"{a.chart}/templates: found only {n} RBAC rules")
    print(f"  template source: {n} RBAC rules, each with a comment")

    for spec in a.scenario:
        scn, path = spec.split("=", 1)
        exp = SCENARIOS[scn]
        text = open(path).read()
        docs = [d for d in yaml.safe_load_all(text) if d]
        before = len(FAILURES)
        dep = check_deployment(scn, exp, docs)
        check_rbac(scn, exp, docs, text)
        check_other_objects(scn, exp, docs, dep, metric_names)
        kinds = sorted({d["kind"] for d in docs})
        print(f"  {scn}: {len(docs)} objects ({', '.join(kinds)}): "
              f"{'ok' if len(FAILURES) == before else str(len(FAILURES) - before) + ' failures'}")

    if a.mutation_test:
        mutation_test(a.mutation_test, metric_names)
    check_dashboard(a.chart, metric_names)
    print("  dashboard: dashboards/castellan.json queries use only exposed metrics")
    check_examples(a.crds, a.examples)
    check_argocd_health(a.operator_doc, a.reasons_source)

    if FAILURES:
        print(f"\n{len(FAILURES)} of {CHECKS[0]} checks failed:", file=sys.stderr)
        for f in FAILURES:
            print(f"  FAIL {f}", file=sys.stderr)
        sys.exit(1)
    print(f"  {CHECKS[0]} checks passed")


if __name__ == "__main__":
    main()
