# Helpers for the server tests (sourced).  Usage: source lib.sh "$@" with $1 = the bitnet program.
# Each test starts its own server on a free loopback port (--port 0; the port is read from the
# server's first line), talks to it with curl, and stops it with SIGTERM, expecting exit status 0.
set -u
BITNET=$1
SRC=${BITNET_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DATA=${BITNET_TEST_DATA:-$SRC/tests/data}
# The bundled tiny model when it is there, else the synthetic reference model (vocab 512).
if [ -f "$SRC/models/bitnet-kjv-tiny.gguf" ]; then
  MODEL=$SRC/models/bitnet-kjv-tiny.gguf
else
  MODEL=$DATA/reference/V1/model.gguf
fi
WORK=$(mktemp -d)
SRV_PID=
FAILS=0
CHECKS=0

cleanup() {
  if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
# check DESCRIPTION COMMAND...: the command must succeed
check() {
  local what=$1
  shift
  if "$@"; then ok; else fail "$what"; fi
}
finish() {
  echo "$CHECKS checks passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
  exit $?
}

# start_server [options...]: runs `bitnet serve -m MODEL --port 0 options`; sets PORT, BASE, SRV_PID, SRV_LOG.
# SERVER_CMD (an array) may name another program with the same options (bitnet-server).
start_server() {
  SRV_LOG=$WORK/server.$RANDOM.log
  if [ -n "${SERVER_CMD+x}" ]; then
    "${SERVER_CMD[@]}" -m "$MODEL" --port 0 "$@" 2>"$SRV_LOG" &
  else
    "$BITNET" serve -m "$MODEL" --port 0 "$@" 2>"$SRV_LOG" &
  fi
  SRV_PID=$!
  PORT=
  for _ in $(seq 200); do
    PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$SRV_LOG")
    [ -n "$PORT" ] && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$PORT" ]; then
    echo "server did not start:"; cat "$SRV_LOG"; exit 1
  fi
  BASE=http://127.0.0.1:$PORT
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health")" = 200 ] && return 0
    sleep 0.05
  done
  echo "server never became ready:"; cat "$SRV_LOG"; exit 1
}

# stop_server: SIGTERM, and the server must exit 0 within 10 s.
stop_server() {
  kill -TERM "$SRV_PID"
  local rc=0
  for _ in $(seq 200); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
  wait "$SRV_PID" || rc=$?
  SRV_PID=
  [ "$rc" = 0 ] || { fail "server exited with status $rc"; cat "$SRV_LOG"; }
}

# post PATH JSON [curl options...]: the body goes to $WORK/body, the status is printed.
post() {
  local path=$1 json=$2
  shift 2
  curl -s -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$json" "$@" "$BASE$path"
}

# js CODE [FILE]: evaluates Python over the JSON in FILE (default $WORK/body) as d and prints the
# value of the last statement ("a = ...; expr" is allowed).
js() {
  python3 -c 'import json,sys
d = json.load(open(sys.argv[2], "rb"))
code = sys.argv[1].rsplit("; ", 1)
if len(code) == 2:
    exec(code[0])
r = eval(code[-1])
print(json.dumps(r) if isinstance(r, (dict, list)) or r is None else r)' "$1" "${2:-$WORK/body}"
}

# sse_text FILE: the text of a stream (completions or chat), checking its framing.
sse_text() {
  python3 "$SRC/tests/server/sse.py" "$@"
}

# expect_status WANT GOT WHAT
expect_status() {
  if [ "$1" = "$2" ]; then ok; else fail "$3: status $2, wanted $1 ($(head -c 300 "$WORK/body"))"; fi
}

# expect_error STATUS PARAM WHAT: the body is OpenAI's error shape naming PARAM ("" for null).
expect_error() {
  local got
  got=$(js '"%s|%s" % (d["error"]["param"] or "", all(k in d["error"] for k in ("message","type","param","code")) and isinstance(d["error"]["message"], str))' 2>/dev/null)
  if [ "$got" = "$2|True" ]; then ok; else fail "$3: error body $(head -c 300 "$WORK/body"), wanted param '$2'"; fi
}
