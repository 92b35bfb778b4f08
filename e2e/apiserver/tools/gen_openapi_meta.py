#!/usr/bin/env python3
# Usage: python3 e2e/apiserver/tools/gen_openapi_meta.py > e2e/apiserver/src/openapi_meta.json
# (needs k8s-pb 0.8.0 in the cargo registry: any build of castellan-apiserver fetches it).
# Generates src/openapi_meta.json: the apimachinery meta/v1 schemas kubectl explain shows for
# `metadata`, with descriptions taken from the k8s-pb 0.8 doc comments (the same Go doc
# comments the real OpenAPI descriptions are generated from).
import re, json, sys, glob
src = open(glob.glob('/root/.cargo/registry/src/*/k8s-pb-0.8.0/src/apimachinery/pkg/apis/meta/v1/mod.rs')[0]).read()
lines = src.split('\n')

def desc(doc):
    paras, cur = [], []
    for l in doc:
        if l.startswith('+') : continue
        if l == '':
            if cur: paras.append(' '.join(cur)); cur = []
            continue
        cur.append(l)
    if cur: paras.append(' '.join(cur))
    t = '\n\n'.join(paras)
    return re.sub(r'<(https?://[^>]+)>', r'\1', t)

def struct(name):
    i = next(k for k, l in enumerate(lines) if l == f'pub struct {name} {{')
    j = i - 1
    doc = []
    while lines[j].startswith('///') or lines[j].startswith('#['):
        if lines[j].startswith('///'): doc.insert(0, lines[j][3:].strip())
        j -= 1
    fields, fdoc = {}, []
    k = i + 1
    while lines[k] != '}':
        l = lines[k].strip()
        if l.startswith('///'): fdoc.append(l[3:].strip())
        elif l.startswith('pub '):
            fname = l[4:].split(':')[0].replace('r#', '')
            fields[fname] = desc(fdoc); fdoc = []
        k += 1
    return desc(doc), fields

def camel(s):
    p = s.split('_'); return p[0] + ''.join(x[:1].upper() + x[1:] for x in p[1:])

REF = lambda n: {"allOf": [{"$ref": f"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.{n}"}]}
types = {
 'ObjectMeta': {'name': 'string', 'generate_name': 'string', 'namespace': 'string', 'self_link': 'string', 'uid': 'string',
   'resource_version': 'string', 'generation': 'int64', 'creation_timestamp': 'Time', 'deletion_timestamp': 'Time',
   'deletion_grace_period_seconds': 'int64', 'labels': 'map', 'annotations': 'map', 'owner_references': ('list', 'OwnerReference'),
   'finalizers': ('set', 'string'), 'managed_fields': ('list', 'ManagedFieldsEntry')},
 'OwnerReference': {'api_version': 'string', 'kind': 'string', 'name': 'string', 'uid': 'string', 'controller': 'boolean', 'block_owner_deletion': 'boolean'},
 'ManagedFieldsEntry': {'manager': 'string', 'operation': 'string', 'api_version': 'string', 'time': 'Time', 'fields_type': 'string', 'fields_v1': 'FieldsV1', 'subresource': 'string'},
 'ListMeta': {'self_link': 'string', 'resource_version': 'string', 'continue': 'string', 'remaining_item_count': 'int64'},
}
required = {'OwnerReference': ['apiVersion', 'kind', 'name', 'uid']}
out = {}
for sname, ftypes in types.items():
    d, fdocs = struct(sname)
    props = {}
    for f, t in ftypes.items():
        fd = fdocs[f]
        if t == 'string': p = {"type": "string"}
        elif t == 'int64': p = {"type": "integer", "format": "int64"}
        elif t == 'boolean': p = {"type": "boolean"}
        elif t == 'map': p = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
        elif isinstance(t, tuple):
            item = {"type": "string", "default": ""} if t[1] == 'string' else dict(REF(t[1]), default={})
            p = {"type": "array", "items": item}
            p["x-kubernetes-list-type"] = t[0] if t[0] == 'set' else 'atomic'
            if sname == 'ObjectMeta' and f == 'owner_references':
                p.update({"x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]})
            if f == 'finalizers':
                p.update({"x-kubernetes-patch-strategy": "merge"})
        else: p = REF(t)
        p["description"] = fd
        props[camel(f)] = p
    s = {"description": d, "type": "object", "properties": dict(sorted(props.items()))}
    if sname in required: s["required"] = required[sname]
    if sname == 'OwnerReference': s["x-kubernetes-map-type"] = "atomic"
    if sname == 'ManagedFieldsEntry' or sname == 'OwnerReference': pass
    out[f"io.k8s.apimachinery.pkg.apis.meta.v1.{sname}"] = s
for sname, extra in [('Time', {"type": "string", "format": "date-time"}), ('FieldsV1', {"type": "object"})]:
    d, _ = struct(sname)
    out[f"io.k8s.apimachinery.pkg.apis.meta.v1.{sname}"] = dict(description=d, **extra)
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
