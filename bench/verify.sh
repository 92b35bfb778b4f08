#!/usr/bin/env bash
# Runs benches/verify.rs against a single-node Garage on loopback and prints its figures.
# Installs Garage 2.5.0 with cargo when it is missing (~8 min on 2 cores).
#
#   bench/verify.sh            # from the repository root
#
# Environment: CARGO_TARGET_DIR (default /var/tmp/castellan-target), GARAGE (path to a garage
# binary), CASTELLAN_BENCH_ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/castellan-target}"
# Measurements must not depend on the machine's CA-bundle variables.
unset AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE

GARAGE="${GARAGE:-$(command -v garage || true)}"
if [ -z "$GARAGE" ] && [ -x /var/tmp/garage-install/bin/garage ]; then
  GARAGE=/var/tmp/garage-install/bin/garage
fi
if [ -z "$GARAGE" ]; then
  echo "garage not found: installing garage 2.5.0 (cargo install, several minutes)" >&2
  CARGO_TARGET_DIR=/var/tmp/garage-target cargo install garage@2.5.0 --locked \
    --no-default-features --features bundled-libs,sqlite --root /var/tmp/garage-install
  GARAGE=/var/tmp/garage-install/bin/garage
fi

work="$(mktemp -d /var/tmp/castellan-bench.XXXXXX)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3_PORT="$(port)"; RPC_PORT="$(port)"
cat > "$work/garage.toml" <<TOML
metadata_dir = "$work/meta"
data_dir = "$work/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$S3_PORT"
TOML

export GARAGE_DEFAULT_ACCESS_KEY="GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GARAGE_DEFAULT_SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GARAGE_DEFAULT_BUCKET=bench
"$GARAGE" -c "$work/garage.toml" server --single-node --default-bucket > "$work/garage.log" 2>&1 &
garage_pid=$!
cleanup() { kill "$garage_pid" 2>/dev/null || true; wait "$garage_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  if curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; then break; fi
  sleep 0.1
done

export CASTELLAN_BENCH_ENDPOINT="http://127.0.0.1:$S3_PORT"
export CASTELLAN_BENCH_BUCKET=bench
export CASTELLAN_BENCH_ACCESS_KEY="$GARAGE_DEFAULT_ACCESS_KEY"
export CASTELLAN_BENCH_SECRET_KEY="$GARAGE_DEFAULT_SECRET_KEY"
export CASTELLAN_BENCH_REGION=us-east-1
echo "garage $("$GARAGE" --version 2>/dev/null | head -1) on $CASTELLAN_BENCH_ENDPOINT; $(nproc) cores"
cargo bench --bench verify
