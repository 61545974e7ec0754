#!/usr/bin/env bash
# Server throughput benchmark (not a test): aggregate generated tokens/s with 1 client and with
# CLIENTS concurrent clients against `bitnet serve --parallel PARALLEL`, and p50/p99
# time-to-first-token.  Continuous batching should make the concurrent figure a multiple of the
# single-client one.  Writes bench/out/server.json.
#
#   bench/server/run.sh [BITNET] [MODEL]     (MODEL: the bundled tiny model, else a synthetic 8x1024)
#   env: PARALLEL (4), CLIENTS (4), REQUESTS (4 per client), MAX_TOKENS (128), THREADS (0: default)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bitnet=${1:-$root/build/tools/bitnet/bitnet}
model=${2:-$root/models/bitnet-kjv-tiny.gguf}
if [ ! -f "$model" ]; then
  # no bundled model yet: a synthetic one big enough (24 MB) that reading the weights matters,
  # which is what batching saves
  model=$root/bench/out/synth-8x1024.gguf
  mkdir -p "$root/bench/out"
  [ -f "$model" ] || "$bitnet" gen-model -o "$model" --shape 8x1024 >/dev/null
fi
parallel=${PARALLEL:-4} clients=${CLIENTS:-4} requests=${REQUESTS:-4} max_tokens=${MAX_TOKENS:-128}
threads=${THREADS:-0}
command -v node >/dev/null || { echo "bench/server: node is needed"; exit 1; }

log=$(mktemp)
"$bitnet" serve -m "$model" --port 0 --parallel "$parallel" --ctx-size $((max_tokens + 64)) -t "$threads" \
  --max-queue 256 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log")
  [ -n "$port" ] && break
  sleep 0.05
done
base=http://127.0.0.1:$port
for _ in $(seq 400); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] && break
  sleep 0.05
done
echo "model $model, --parallel $parallel, $max_tokens tokens per request"
node "$root/bench/server/client.mjs" "$base" 1 1 8 >/dev/null # warm up
one=$(node "$root/bench/server/client.mjs" "$base" 1 "$requests" "$max_tokens")
many=$(node "$root/bench/server/client.mjs" "$base" "$clients" "$requests" "$max_tokens")
echo "1 client:  $one"
echo "$clients clients: $many"
mkdir -p "$root/bench/out"
python3 - "$one" "$many" "$model" "$parallel" > "$root/bench/out/server.json" <<'PY'
import json, sys
one, many = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"model": sys.argv[3], "parallel": int(sys.argv[4]), "single": one, "concurrent": many,
                  "speedup": round(many["tokens_per_second"] / one["tokens_per_second"], 2)}, indent=2))
PY
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("aggregate speed-up: %.2fx (%s -> %s tokens/s); p99 TTFT %s s with %d clients" % (d["speedup"], d["single"]["tokens_per_second"], d["concurrent"]["tokens_per_second"], d["concurrent"]["ttft_p99_seconds"], d["concurrent"]["clients"]))' "$root/bench/out/server.json"
