#!/usr/bin/env bash
# The official `openai` npm package (pinned in openai/package-lock.json) against the server.
# npm installs it once into the build folder; without node, npm or the registry the test is
# skipped (exit 77) with a message, not failed.
source "$(dirname "$0")/lib.sh"
here=$SRC/tests/server/openai
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node and npm are needed for the OpenAI SDK test"
  exit 77
fi
dir=${BITNET_BINARY_DIR:-$WORK}/tests/server/openai-node
mkdir -p "$dir"
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules/openai" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  if ! (cd "$dir" && timeout 180 npm ci --no-audit --no-fund --loglevel=error >"$dir/npm.log" 2>&1); then
    echo "SKIP: npm could not install the openai package (offline?):"
    tail -5 "$dir/npm.log"
    rm -f "$dir/package-lock.json"
    exit 77
  fi
fi
cp "$here/sdk_test.mjs" "$dir/"
start_server --parallel 2 --ctx-size 256 --api-key sdk-test-key
check "OpenAI SDK" node "$dir/sdk_test.mjs" "$BASE" sdk-test-key
stop_server
finish
