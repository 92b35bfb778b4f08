# CRDs are Established, and the schema rejects bad specs with a message naming the field.
# Runs unchanged against a real cluster.

if k wait --for=condition=Established --timeout=30s crd/storagebackends.castellan.io crd/artifactmappings.castellan.io >/dev/null; then
  pass "kubectl apply -f crds/ and the CRDs are Established"
else
  fail "CRDs are not Established"
fi

schema_ns=$(new_namespace schema)
expect_rejected "$schema_ns" "a digest of the wrong length" "digest must be 'sha256:' followed by 64 lowercase hex digits" '
apiVersion: castellan.io/v1alpha1
kind: ArtifactMapping
metadata: {name: bad-digest}
spec: {digest: "sha256:abc", backendRef: {name: a}}'
expect_rejected "$schema_ns" "a bucket name with uppercase letters" "bucket may contain only lowercase letters" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: bad-bucket}
spec: {s3: {bucket: My_Bucket}}'
expect_rejected "$schema_ns" "default and fallback both true" "default and fallback cannot both be true" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: both}
spec: {s3: {bucket: artifacts}, default: true, fallback: true}'
expect_rejected "$schema_ns" "a keyPrefix with a '..' segment" "keyPrefix must not contain '..' segments" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: dotdot}
spec: {s3: {bucket: artifacts, keyPrefix: "cas/../etc"}}'
expect_rejected "$schema_ns" "a successThreshold of zero" "successThreshold must be between 1 and 100" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: zero}
spec: {s3: {bucket: artifacts}, validation: {successThreshold: 0}}'
expect_rejected "$schema_ns" "a misspelt field (kubectl validates strictly)" "unknown field" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: typo}
spec: {s3: {bucket: artifacts, forcePathStlye: true}}'
expect_rejected "$schema_ns" "an interval of a hundred years" "interval must be 0 (off) or between 1s and 8760h" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: forever}
spec: {s3: {bucket: artifacts}, validation: {interval: "876000h"}}'
expect_rejected "$schema_ns" "a zero probe timeout" "timeout must be between 100ms and 10m" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: no-timeout}
spec: {s3: {bucket: artifacts}, validation: {timeout: "0s"}}'
expect_rejected "$schema_ns" "a Secret name that is not a Kubernetes name" "name must be a Secret name" '
apiVersion: castellan.io/v1alpha1
kind: StorageBackend
metadata: {name: bad-secret}
spec: {s3: {bucket: artifacts, credentialsSecretRef: {name: "../kube-system/admin"}}}'
expect_rejected "$schema_ns" "a negative size" "size must be between 0 and 5497558138880 (5 TiB)" '
apiVersion: castellan.io/v1alpha1
kind: ArtifactMapping
metadata: {name: negative}
spec: {digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", size: -1, backendRef: {name: a}}'
