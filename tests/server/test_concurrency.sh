#!/usr/bin/env bash
# Concurrency: 8 streaming clients at once each get exactly what they get alone (same seed);
# a client that hangs up mid-stream frees its slot; a full queue answers 503 with Retry-After;
# the server stays healthy throughout.
source "$(dirname "$0")/lib.sh"

metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 \([0-9.e+]*\)$/\1/p"; }

# ---- 8 concurrent streams = 8 streams alone
start_server --parallel 8 --ctx-size 256
req() { echo "{\"prompt\":\"In the beginning $1\",\"max_tokens\":48,\"seed\":$1,\"temperature\":1,\"stream\":true}"; }
for i in 1 2 3 4 5 6 7 8; do
  curl -s -N -o "$WORK/alone.$i" -d "$(req $i)" "$BASE/v1/completions"
  sse_text "$WORK/alone.$i" > "$WORK/alone.$i.txt" || fail "alone stream $i"
done
# the batched passes must really have had several slots in them: watch the gauge meanwhile
# (it stops when told, after its last write, so the file is never read half written)
echo 0 > "$WORK/peak"
( peak=0
  while [ ! -e "$WORK/stop-watch" ]; do
    a=$(metric bitnet_active_slots); [ "${a:-0}" -gt "$peak" ] && peak=$a
    echo "$peak" > "$WORK/peak.tmp" && mv "$WORK/peak.tmp" "$WORK/peak"
    sleep 0.005
  done ) &
watcher=$!
pids=()
for i in 1 2 3 4 5 6 7 8; do
  curl -s -N -o "$WORK/together.$i" -d "$(req $i)" "$BASE/v1/completions" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
touch "$WORK/stop-watch"; wait $watcher 2>/dev/null
for i in 1 2 3 4 5 6 7 8; do
  sse_text "$WORK/together.$i" > "$WORK/together.$i.txt" || fail "concurrent stream $i"
  check "client $i: concurrent output = alone output" cmp -s "$WORK/alone.$i.txt" "$WORK/together.$i.txt"
  check "client $i: 48 tokens of text" [ -s "$WORK/together.$i.txt" ]
done
check "the streams were generated side by side (peak active slots $(cat "$WORK/peak"))" [ "$(cat "$WORK/peak")" -ge 2 ]
check "all different" [ "$(cat "$WORK"/together.*.txt | md5sum)" != "$(for i in 1 2 3 4 5 6 7 8; do cat "$WORK/together.1.txt"; done | md5sum)" ]
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "healthy after the concurrent streams"
stop_server

# ---- one slot, no queue: a long stream holds the slot
start_server --parallel 1 --max-queue 0 --ctx-size 4096
before=$(metric bitnet_generated_tokens_total)
curl -s -N -o "$WORK/long" --max-time 0.8 -d '{"prompt":"In the beginning","max_tokens":4000,"stream":true}' "$BASE/v1/completions" &
long=$!
for _ in $(seq 200); do [ -s "$WORK/long" ] && break; sleep 0.01; done
check "the long stream started" [ -s "$WORK/long" ]
st=$(curl -s -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' -d '{"prompt":"x","max_tokens":1}' "$BASE/v1/completions")
expect_status 503 "$st" "queue full"
expect_error 503 "" "queue full"
check "503 says when to retry" grep -qi '^Retry-After: [0-9]' "$WORK/headers"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "health while the slot is busy"
# the client hangs up (curl --max-time, well before 4000 tokens even at thousands of tokens/s):
# its generation stops and the slot is free again
wait $long
freed=no
for _ in $(seq 100); do
  if [ "$(metric bitnet_active_slots)" = 0 ]; then freed=yes; break; fi
  sleep 0.02
done
check "the disconnected client's slot was freed" [ $freed = yes ]
after=$(metric bitnet_generated_tokens_total)
check "generation stopped early ($((after - before)) of 4000 tokens)" [ $((after - before)) -lt 4000 ]
st=$(post /v1/completions '{"prompt":"x","max_tokens":3}')
expect_status 200 "$st" "the freed slot takes the next request"

# the same for a non-streamed request
before=$(metric bitnet_generated_tokens_total)
curl -s -o /dev/null --max-time 0.5 -d '{"prompt":"In the beginning","max_tokens":4000}' "$BASE/v1/completions"
freed=no
for _ in $(seq 100); do
  if [ "$(metric bitnet_active_slots)" = 0 ]; then freed=yes; break; fi
  sleep 0.02
done
check "a non-streamed request's slot is freed when its client leaves" [ $freed = yes ]
after=$(metric bitnet_generated_tokens_total)
check "non-streamed generation stopped early ($((after - before)) of 4000 tokens)" [ $((after - before)) -lt 4000 ]
check "499 counted" sh -c "curl -s '$BASE/metrics' | grep -q 'endpoint=\"/v1/completions\",status=\"499\"'"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "healthy at the end"
stop_server
finish
