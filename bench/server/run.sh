#!/usr/bin/env bash
# Server throughput benchmark (not a test): aggregate generated tokens/s with 1 client and with
# CLIENTS concurrent clients against `bitnet serve --parallel PARALLEL`, and p50/p99
# time-to-first-token.  The two are measured back to back ROUNDS times (a shared machine's other
# work comes and goes) and the speed-up is given per round, as a median and a range.  Then the
# engine alone (bench_batch: bitnet_eval_multi with 1 and CLIENTS sequences per pass) shows what
# batching can give at most on this model and machine.  Writes bench/out/server.json.
#
#   bench/server/run.sh [BITNET] [MODEL]     (MODEL: the bundled tiny model, else a synthetic 8x1024)
#   env: PARALLEL (4), CLIENTS (4), REQUESTS (8 per client), MAX_TOKENS (128), THREADS (0: default),
#        ROUNDS (3), CLIENT (loadgen: the C load generator built next to BITNET; node: client.mjs)
#
# The load generator runs on the same machine as the server: the C one costs ~1-2 us of CPU per
# token (perf, 4 clients, with the server merging a stream's tokens into one chunk per
# --stream-interval), the Node one ~300-700 us, which on a small machine takes cores from the server.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bitnet=${1:-$root/build/tools/bitnet/bitnet}
model=${2:-$root/models/bitnet-kjv-tiny.gguf}
build=$(cd "$(dirname "$bitnet")/../.." && pwd)
if [ ! -f "$model" ]; then
  # no bundled model: a synthetic one big enough (24 MB) that reading the weights matters,
  # which is what batching saves
  model=$root/bench/out/synth-8x1024.gguf
  mkdir -p "$root/bench/out"
  [ -f "$model" ] || "$bitnet" gen-model -o "$model" --shape 8x1024 >/dev/null
fi
parallel=${PARALLEL:-4} clients=${CLIENTS:-4} requests=${REQUESTS:-8} max_tokens=${MAX_TOKENS:-128}
threads=${THREADS:-0} rounds=${ROUNDS:-3} client=${CLIENT:-loadgen}
case $client in
  loadgen)
    gen=("$build/bench/server/loadgen")
    [ -x "${gen[0]}" ] || { echo "bench/server: ${gen[0]} is not built (or use CLIENT=node)"; exit 1; } ;;
  node)
    command -v node >/dev/null || { echo "bench/server: node is needed"; exit 1; }
    gen=(node "$root/bench/server/client.mjs") ;;
  *) echo "bench/server: CLIENT must be loadgen or node"; exit 1 ;;
esac

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
echo "model $model, --parallel $parallel -t $threads, $max_tokens tokens per request, $requests requests per client, client: $client"
"${gen[@]}" "$base" 1 1 8 >/dev/null # warm up
results=()
for r in $(seq "$rounds"); do
  one=$("${gen[@]}" "$base" 1 "$requests" "$max_tokens")
  many=$("${gen[@]}" "$base" "$clients" "$requests" "$max_tokens")
  results+=("$one" "$many")
  python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print("round %s: 1 client %.0f tokens/s, %d clients %.0f tokens/s: %.2fx (p99 TTFT %.4f s)" % (sys.argv[3], a["tokens_per_second"], b["clients"], b["tokens_per_second"], b["tokens_per_second"]/a["tokens_per_second"], b["ttft_p99_seconds"]))' "$one" "$many" "$r"
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null || true

engine=
if [ -x "$build/bench/server/bench_batch" ]; then
  engine=$("$build/bench/server/bench_batch" "$model" -t "$threads" -b "1,$clients" -n "$max_tokens" -r 5 | grep '^| [0-9]' || true)
fi
mkdir -p "$root/bench/out"
python3 - "$model" "$parallel" "$threads" "$client" "$engine" "${results[@]}" > "$root/bench/out/server.json" <<'PY'
import json, statistics, sys
model, parallel, threads, client, engine = sys.argv[1:6]
runs = [json.loads(x) for x in sys.argv[6:]]
rounds = [{"single": runs[i], "concurrent": runs[i + 1],
           "speedup": round(runs[i + 1]["tokens_per_second"] / runs[i]["tokens_per_second"], 2)}
          for i in range(0, len(runs), 2)]
sp = [r["speedup"] for r in rounds]
out = {"model": model, "parallel": int(parallel), "threads": int(threads), "client": client, "rounds": rounds,
       "speedup_median": statistics.median(sp), "speedup_min": min(sp), "speedup_max": max(sp)}
rows = [[c.strip() for c in line.strip("|").split("|")] for line in engine.splitlines()]
if len(rows) == 2:
    out["engine"] = {"threads": int(rows[0][0]), "split": rows[1][1], "single_tokens_per_second": float(rows[0][3]),
                     "batch": int(rows[1][2]), "batch_tokens_per_second": float(rows[1][3]),
                     "speedup": round(float(rows[1][3]) / float(rows[0][3]), 2)}
print(json.dumps(out, indent=2))
PY
python3 - "$root/bench/out/server.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("aggregate speed-up: median %.2fx, range %.2f-%.2fx over %d rounds" % (d["speedup_median"], d["speedup_min"], d["speedup_max"], len(d["rounds"])))
if "engine" in d:
    e = d["engine"]
    print("engine alone (bench_batch, %d threads, split %s): %.0f tokens/s with 1 sequence, %.0f with %d per pass: %.2fx" % (e["threads"], e["split"], e["single_tokens_per_second"], e["batch_tokens_per_second"], e["batch"], e["speedup"]))
PY
