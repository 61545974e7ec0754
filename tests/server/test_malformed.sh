#!/usr/bin/env bash
# Malformed HTTP and JSON (malformed.py): truncated bodies, wrong Content-Length, deep nesting,
# invalid UTF-8, huge numbers, junk bytes, slow clients.  Every one gets an error or a closed
# connection, the server keeps answering /health, and it still stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
start_server --parallel 2 --ctx-size 256 --timeout 3
check "malformed requests" python3 "$SRC/tests/server/malformed.py" "$PORT"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE/health")
expect_status 200 "$st" "health at the end"
stop_server
finish
