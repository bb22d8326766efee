#!/usr/bin/env bash
# Benchmark: branch creation latency vs an empty HTTP round trip.
#   tests/bench/branch_create.sh [COUNT] [RUNS]
# Starts its own tarnd (build/) on a free port with a fresh data directory
# under $TMPDIR, runs build/tests/bench/branch_create, stops tarnd.
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-1000}"
runs="${2:-5}"
ninja -C build >/dev/null
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/server/tarnd --set "data_dir=$dir/data" \
    --set "http_listen=127.0.0.1:$port" --set log_level=warn \
    2>"$dir/tarnd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v1/status" >/dev/null && break
    sleep 0.05
done
echo "machine: $(nproc) cores, $(uname -r), data on $(df -P "$dir" | awk 'NR==2 {print $1}')"
build/tests/bench/branch_create "http://127.0.0.1:$port" "$count" "$runs" "$dir"
