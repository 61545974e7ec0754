#!/usr/bin/env bash
# `bitnet run -m hf:OWNER/NAME/FILE` downloads the model on first use (from the download tests'
# local server, via $HF_ENDPOINT), then runs from the cache without the network.
# Usage: test_run_hf.sh BITNET
set -u
BITNET=$1
SRC=${BITNET_SOURCE_DIR:?}
T=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY HF_TOKEN
export BITNET_CACHE=$T/cache BITNET_DL_BACKOFF_MS=20 BITNET_DL_RETRIES=1
mkdir -p "$T/root"
cp "$SRC/tests/data/reference/V1/model.gguf" "$T/root/model.gguf"
python3 "$SRC/tests/download/server.py" "$T/root" "$T/port" "$T/log" 2>"$T/server.err" &
PID=$!
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.025; done
[ -s "$T/port" ] || { echo "FAIL test server did not start"; exit 1; }
export HF_ENDPOINT=http://127.0.0.1:$(cat "$T/port")/plain
fails=0
if "$BITNET" run -m hf:owner/repo/model.gguf -p ab -n 2 --temp 0 >"$T/out1" 2>"$T/err1"; then
  echo "ok   first run downloads and generates"
else
  echo "FAIL first run: $(cat "$T/err1")"; fails=$((fails + 1))
fi
if cmp -s "$T/root/model.gguf" "$BITNET_CACHE/owner--repo/main/model.gguf"; then
  echo "ok   the cached file is the served file"
else
  echo "FAIL cached file missing or different"; fails=$((fails + 1))
fi
kill $PID; wait $PID 2>/dev/null; PID=
if "$BITNET" run -m hf:owner/repo/model.gguf -p ab -n 2 --temp 0 >"$T/out2" 2>"$T/err2" && cmp -s "$T/out1" "$T/out2"; then
  echo "ok   second run uses the cache (server stopped), same text"
else
  echo "FAIL second run: $(cat "$T/err2")"; fails=$((fails + 1))
fi
"$BITNET" run -m hf:owner/repo/missing.gguf -p ab -n 2 >/dev/null 2>"$T/err3"
rc=$?
if [ $rc -ne 0 ] && [ -s "$T/err3" ]; then echo "ok   an unreachable model fails clearly (exit $rc)"; else echo "FAIL missing model: exit $rc"; fails=$((fails + 1)); fi
exit $fails
