#!/usr/bin/env bash
# End-to-end tests of `bitnet download` against server.py (a local HTTP server on 127.0.0.1 that
# this script starts on a free port).  Usage: download_test.sh BITNET CASE [RESOLVE_HELPER]
set -u
BITNET=$1
CASE=$2
RESOLVE=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

T=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$CASE]: $*"
  [ -s "$T/log" ] && { echo "--- server log"; cat "$T/log"; }
  for f in "$T"/*.err; do [ -s "$f" ] && { echo "--- $f"; cat "$f"; }; done
  exit 1
}

# A clean, fast environment: no proxies or tokens from outside, short retry delays.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY HF_TOKEN HF_ENDPOINT
export BITNET_CACHE=$T/cache BITNET_DL_BACKOFF_MS=20 BITNET_DL_RETRIES=3

mkdir -p "$T/root"
"$PY" -c 'import os,sys; open(sys.argv[1],"wb").write(os.urandom(262144))' "$T/root/model.gguf"
CONTENT=$T/root/model.gguf
SIZE=262144
SHA=$(sha256sum "$CONTENT" | cut -d' ' -f1)

"$PY" "$HERE/server.py" "$T/root" "$T/port" "$T/log" 2>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.025; done
[ -s "$T/port" ] || fail "the test server did not start"
PORT=$(cat "$T/port")
BASE=http://127.0.0.1:$PORT
: >"$T/log"

DIR=$BITNET_CACHE/owner--repo/main
DEST=$DIR/model.gguf

# dl SCENARIO [OPTIONS...]: downloads owner/repo's model.gguf; stdout to $T/out, stderr to $T/dl.err.
dl() {
  local sc=$1
  shift
  "$BITNET" download --no-progress --id owner/repo --file model.gguf --base-url "$BASE/$sc" "$@" >"$T/out" 2>"$T/dl.err"
}
# Field N (1-based: 1 time 2 status 3 host 4 path 5 range 6 if-none-match 7 if-range 8 auth 9 proxied)
# of log line L (negative: from the end).
field() {
  local l=$1 n=$2 total
  total=$(wc -l <"$T/log")
  [ "$l" -lt 0 ] && l=$((total + 1 + l))
  sed -n "${l}p" "$T/log" | cut -f"$n"
}
nlog() { wc -l <"$T/log" | tr -d ' '; }
expect_rc() { # expect_rc WANT GOT WHAT
  [ "$2" -eq "$1" ] || fail "$3: exit $2, expected $1: $(cat "$T/dl.err" 2>/dev/null)"
}
same_content() { cmp -s "$1" "$CONTENT" || fail "$1 differs from the served file"; }
no_litter() {
  for s in part lock part.meta meta.tmp part.meta.tmp; do
    [ -e "$DEST.$s" ] && fail "$DEST.$s left behind"
  done
  return 0
}
wait_part() { # wait_part MIN_BYTES: until the .part holds at least that much
  for _ in $(seq 400); do
    [ -f "$DEST.part" ] && [ "$(stat -c %s "$DEST.part")" -ge "$1" ] && return 0
    sleep 0.01
  done
  fail "no .part of $1 bytes appeared"
}

case_full() {
  dl plain; expect_rc 0 $? "download"
  [ "$(cat "$T/out")" = "$DEST" ] || fail "printed '$(cat "$T/out")', expected $DEST"
  same_content "$DEST"
  no_litter
  grep -q "^sha256 $SHA\$" "$DEST.meta" || fail "metadata lacks the SHA-256"
  grep -q "^etag \"$SHA\"\$" "$DEST.meta" || fail "metadata lacks the ETag"
  [ "$(nlog)" = 1 ] && [ "$(field 1 2)" = 200 ] && [ "$(field 1 5)" = - ] || fail "expected one plain GET"
  [ "$(field 1 4)" = /plain/owner/repo/resolve/main/model.gguf ] || fail "URL path $(field 1 4)"
  # --out, and a file in a sub-folder of the repository
  "$BITNET" download --no-progress --id owner/repo --file sub/model.gguf --base-url "$BASE/plain" \
    --out "$T/out dir" >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "--out"
  [ "$(cat "$T/out")" = "$T/out dir/sub/model.gguf" ] || fail "--out printed $(cat "$T/out")"
  same_content "$T/out dir/sub/model.gguf"
  # verbose names the checksum it verified
  rm -f "$DEST" "$DEST.meta"
  dl plain --verbose; expect_rc 0 $? "--verbose"
  grep -q "SHA-256 $SHA (verified)" "$T/dl.err" || fail "--verbose does not report the verified SHA-256"
}

case_resume_cut() {
  dl cut; expect_rc 0 $? "download with a dropped connection"
  same_content "$DEST"
  no_litter
  [ "$(nlog)" = 2 ] || fail "expected 2 requests, saw $(nlog)"
  [ "$(field 2 2)" = 206 ] && [ "$(field 2 5)" = "bytes=$((SIZE / 2))-" ] || fail "second request was not a resume at $((SIZE / 2))"
  [ "$(field 2 7)" = "\"$SHA\"" ] || fail "resume did not send If-Range with the ETag"
  grep -q "retrying" "$T/dl.err" || fail "no retry message"
}

case_resume_kill() {
  "$BITNET" download --no-progress --id owner/repo --file model.gguf --base-url "$BASE/slow" >/dev/null 2>"$T/a.err" &
  local pid=$!
  wait_part 32768
  kill -9 $pid
  wait $pid 2>/dev/null
  [ -e "$DEST" ] && fail "a final file appeared after kill -9"
  local have
  have=$(stat -c %s "$DEST.part")
  [ "$have" -gt 0 ] && [ "$have" -lt $SIZE ] || fail ".part holds $have bytes"
  cmp -s -n "$have" "$DEST.part" "$CONTENT" || fail ".part is not a prefix of the file"
  dl plain; expect_rc 0 $? "resume after kill -9"
  same_content "$DEST"
  no_litter
  [ "$(field -1 2)" = 206 ] && [ "$(field -1 5)" = "bytes=$have-" ] || fail "did not resume at $have: $(tail -1 "$T/log")"
}

case_interrupt() {
  "$BITNET" download --no-progress --id owner/repo --file model.gguf --base-url "$BASE/slow" >/dev/null 2>"$T/a.err" &
  local pid=$!
  wait_part 32768
  kill -INT $pid
  wait $pid
  local rc=$?
  [ $rc -eq 130 ] || fail "SIGINT gave exit $rc, expected 130"
  grep -q "interrupted" "$T/a.err" || fail "no message on interruption"
  [ -e "$DEST" ] && fail "a final file appeared after SIGINT"
  [ -e "$DEST.lock" ] && fail "the lock file was left behind"
  local have
  have=$(stat -c %s "$DEST.part")
  [ "$have" -gt 0 ] || fail "the .part is empty"
  dl plain; expect_rc 0 $? "resume after SIGINT"
  same_content "$DEST"
  [ "$(field -1 5)" = "bytes=$have-" ] || fail "did not resume at $have"
}

case_range_mismatch() {
  mkdir -p "$DIR"
  head -c 1000 "$CONTENT" >"$DEST.part"
  dl badrange; expect_rc 0 $? "download with a bad Content-Range"
  same_content "$DEST"
  no_litter
  [ "$(nlog)" = 2 ] || fail "expected 2 requests, saw $(nlog)"
  [ "$(field 1 2)" = 206 ] && [ "$(field 1 5)" = "bytes=1000-" ] || fail "first request was not a resume at 1000"
  [ "$(field 2 2)" = 200 ] && [ "$(field 2 5)" = - ] || fail "second request did not start from zero"
  grep -q "Content-Range" "$T/dl.err" || fail "the mismatch was not reported"
  # a server that ignores Range: the .part (here garbage) is replaced by the full body
  rm -f "$DEST" "$DEST.meta"
  head -c 5000 /dev/zero >"$DEST.part"
  : >"$T/log"
  dl norange; expect_rc 0 $? "download from a server without ranges"
  same_content "$DEST"
  [ "$(nlog)" = 1 ] && [ "$(field 1 5)" = "bytes=5000-" ] || fail "expected one range request"
}

case_etag() {
  dl plain; expect_rc 0 $? "first download"
  local ino
  ino=$(stat -c %i "$DEST")
  dl plain; expect_rc 0 $? "revalidation"
  [ "$(nlog)" = 2 ] && [ "$(field 2 2)" = 304 ] || fail "second run was not answered 304"
  [ "$(field 2 6)" = "\"$SHA\"" ] || fail "second run sent If-None-Match $(field 2 6)"
  [ "$(stat -c %i "$DEST")" = "$ino" ] || fail "the file was replaced after a 304"
  [ "$(cat "$T/out")" = "$DEST" ] || fail "revalidation did not print the path"
  no_litter
  # a new version on the server is downloaded and replaces the old one
  "$PY" -c 'import os,sys; open(sys.argv[1],"wb").write(os.urandom(70000))' "$CONTENT"
  dl plain; expect_rc 0 $? "download of a changed file"
  [ "$(field -1 2)" = 200 ] || fail "changed file not downloaded"
  same_content "$DEST"
  grep -q "^sha256 $(sha256sum "$CONTENT" | cut -d' ' -f1)\$" "$DEST.meta" || fail "metadata not updated"
  # Hugging Face style: the first response (a redirect) carries X-Linked-Etag; an unchanged value
  # ends the revalidation there, without following the redirect.
  rm -f "$DEST" "$DEST.meta"
  dl linked; expect_rc 0 $? "download through a redirect"
  : >"$T/log"
  dl linked; expect_rc 0 $? "revalidation through a redirect"
  [ "$(nlog)" = 1 ] && [ "$(field 1 2)" = 302 ] || fail "revalidation followed the redirect"
  # a cached file whose metadata is missing is not trusted
  rm -f "$DEST.meta"
  : >"$T/log"
  dl plain; expect_rc 0 $? "download without metadata"
  [ "$(field 1 2)" = 200 ] && [ "$(field 1 6)" = - ] || fail "a file without metadata was revalidated"
}

case_rate_limit() {
  dl r429; expect_rc 0 $? "download after a 429"
  same_content "$DEST"
  [ "$(nlog)" = 2 ] && [ "$(field 1 2)" = 429 ] || fail "expected a 429 then a success"
  local gap
  gap=$(awk -v a="$(field 1 1)" -v b="$(field 2 1)" 'BEGIN { print (b - a >= 0.95) ? "ok" : b - a }')
  [ "$gap" = ok ] || fail "retried after ${gap}s despite Retry-After: 1"
  grep -q "rate limited" "$T/dl.err" || fail "429 not reported"
  rm -f "$DEST" "$DEST.meta"
  : >"$T/log"
  BITNET_DL_RETRIES=2 dl a429; expect_rc 12 $? "always 429"
  [ "$(nlog)" = 3 ] || fail "expected 3 requests (2 retries), saw $(nlog)"
  [ -e "$DEST" ] || [ -e "$DEST.part" ] && fail "files left after a failure"
  return 0
}

case_retry() {
  BITNET_DL_BACKOFF_MS=200 dl r503; expect_rc 0 $? "download after 503 and 500"
  same_content "$DEST"
  [ "$(nlog)" = 3 ] || fail "expected 3 requests, saw $(nlog)"
  local g
  g=$(awk -v a="$(field 1 1)" -v b="$(field 2 1)" -v c="$(field 3 1)" \
    'BEGIN { print (b - a >= 0.19 && c - b >= 0.39) ? "ok" : (b - a) " " (c - b) }')
  [ "$g" = ok ] || fail "backoff delays $g, expected >= 0.2 then >= 0.4"
  : >"$T/log"
  BITNET_DL_RETRIES=2 dl a500; expect_rc 14 $? "always 500"
  [ "$(nlog)" = 3 ] || fail "expected 3 requests, saw $(nlog)"
  local closed
  closed=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  "$BITNET" download --no-progress --id owner/repo --base-url "http://127.0.0.1:$closed" >/dev/null 2>"$T/dl.err"
  expect_rc 14 $? "connection refused"
  dl loop; expect_rc 14 $? "redirect loop"
  grep -q "redirects" "$T/dl.err" || fail "redirect loop not reported"
  dl missing; expect_rc 1 $? "404"
  grep -q "not found" "$T/dl.err" || fail "404 not reported"
  no_litter
}

case_auth() {
  dl auth; expect_rc 11 $? "401 without a token"
  grep -q "HF_TOKEN" "$T/dl.err" || fail "no hint about HF_TOKEN"
  grep -q "Invalid credentials" "$T/dl.err" || fail "the server's X-Error-Message is not shown"
  HF_TOKEN=bad dl auth; expect_rc 11 $? "401 with a bad token"
  [ "$(field -1 8)" = "Bearer bad" ] || fail "the token was not sent"
  HF_TOKEN=good dl auth; expect_rc 0 $? "good token"
  same_content "$DEST"
  rm -f "$DEST" "$DEST.meta"
  HF_TOKEN=good dl forbid; expect_rc 11 $? "403"
  no_litter
  [ -e "$DEST" ] && fail "a file appeared after 403"
  HF_TOKEN=$'bad\r\nX-Injected: 1' dl plain; expect_rc 2 $? "token with a line break"
  return 0
}

case_sha() {
  dl badsha; expect_rc 13 $? "ETag SHA-256 mismatch"
  [ -e "$DEST" ] && fail "a final file exists after a SHA-256 mismatch"
  no_litter
  grep -q "SHA-256 mismatch" "$T/dl.err" || fail "mismatch not reported"
  dl plain --sha256 "$(printf '0%.0s' $(seq 64))"; expect_rc 13 $? "--sha256 mismatch"
  [ -e "$DEST" ] && fail "a final file exists after a --sha256 mismatch"
  dl linkedbad; expect_rc 13 $? "X-Linked-Etag mismatch"
  [ -e "$DEST" ] && fail "a final file exists after an X-Linked-Etag mismatch"
  dl plain --sha256 "${SHA^^}"; expect_rc 0 $? "--sha256 match (upper case)"
  same_content "$DEST"
  rm -f "$DEST" "$DEST.meta"
  dl linked; expect_rc 0 $? "X-Linked-Etag match"
  rm -f "$DEST" "$DEST.meta"
  dl nosha --verbose; expect_rc 0 $? "no checksum available"
  grep -q "no checksum" "$T/dl.err" || fail "an unverified file is not reported as such"
  dl plain --sha256 abc; expect_rc 2 $? "malformed --sha256"
  # a cached file whose recorded SHA-256 differs from --sha256 is downloaded again, and fails
  dl plain; expect_rc 0 $? "download"
  : >"$T/log"
  dl plain --sha256 "$(printf 'a%.0s' $(seq 64))"; expect_rc 13 $? "cached file, other --sha256"
  [ "$(field 1 2)" = 200 ] || fail "--sha256 differing from the cached file's did not download again"
  [ -e "$DEST" ] || fail "the old verified file was removed"
  same_content "$DEST"
}

case_redirect() {
  HF_TOKEN=secret dl redir; expect_rc 0 $? "redirect to another host"
  same_content "$DEST"
  [ "$(nlog)" = 2 ] || fail "expected 2 requests, saw $(nlog)"
  [ "$(field 1 3)" = "127.0.0.1:$PORT" ] && [ "$(field 1 8)" = "Bearer secret" ] || fail "first host did not get the token"
  [ "$(field 2 3)" = "localhost:$PORT" ] || fail "second request went to $(field 2 3)"
  [ "$(field 2 8)" = - ] || fail "the token was sent to another host: $(field 2 8)"
  rm -f "$DEST" "$DEST.meta"
  : >"$T/log"
  HF_TOKEN=secret dl redirsame; expect_rc 0 $? "redirect on the same host"
  [ "$(field 2 8)" = "Bearer secret" ] || fail "the token was not kept on the same host"
}

case_disk_full() {
  # RLIMIT_FSIZE of 100 KiB: the write past it fails with EFBIG
  (ulimit -f 100 && dl plain)
  local rc=$?
  [ $rc -eq 10 ] || fail "file size limit gave exit $rc, expected 10: $(cat "$T/dl.err")"
  grep -q "no space" "$T/dl.err" || fail "not reported as no space"
  [ -e "$DEST" ] && fail "a final file exists after a failed write"
  local have
  have=$(stat -c %s "$DEST.part" 2>/dev/null || echo 0)
  [ "$have" -gt 0 ] && [ "$have" -lt $SIZE ] || fail ".part holds $have bytes"
  cmp -s -n "$have" "$DEST.part" "$CONTENT" || fail "the .part is not a prefix of the file"
  dl plain; expect_rc 0 $? "resume after the disk was freed"
  same_content "$DEST"
  [ "$(field -1 5)" = "bytes=$have-" ] || fail "did not resume at $have"
}

case_lock() {
  "$BITNET" download --no-progress --id owner/repo --file model.gguf --base-url "$BASE/slow" >"$T/a.out" 2>"$T/a.err" &
  local a=$!
  wait_part 8192
  "$BITNET" download --no-progress --id owner/repo --file model.gguf --base-url "$BASE/slow" >"$T/b.out" 2>"$T/b.err" &
  local b=$!
  wait $a; local ra=$?
  wait $b; local rb=$?
  [ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "exits $ra and $rb"
  grep -q "waiting for another download" "$T/b.err" || fail "the second download did not wait for the lock"
  same_content "$DEST"
  no_litter
  [ "$(grep -c $'\t200\t' "$T/log")" = 1 ] || fail "the file was downloaded more than once"
  [ "$(field -1 2)" = 304 ] || fail "the second download did not revalidate"
  [ "$(cat "$T/a.out")" = "$DEST" ] && [ "$(cat "$T/b.out")" = "$DEST" ] || fail "paths not printed"
}

case_names() {
  local bad
  for bad in ../x.gguf /etc/passwd a/../../x ./x x/.. 'a//b' 'a/' x.part x.lock $'a\nb' 'a\b' ''; do
    dl plain --file "$bad"; expect_rc 2 $? "--file '$bad'"
  done
  for bad in ../../etc a/b/c a--b/c /abs 'a b/c' .hidden/x ''; do
    "$BITNET" download --no-progress --id "$bad" --base-url "$BASE/plain" >/dev/null 2>"$T/dl.err"
    expect_rc 2 $? "--id '$bad'"
  done
  for bad in .. . '' $'a\tb'; do
    dl plain --rev "$bad"; expect_rc 2 $? "--rev '$bad'"
  done
  dl plain --base-url ftp://example.com; expect_rc 2 $? "ftp base URL"
  [ "$(nlog)" = 0 ] || fail "a rejected name reached the server"
  [ -e "$T/etc" ] || [ -e "$T/x" ] || [ -e "$BITNET_CACHE/x.gguf" ] && fail "a file was written outside"
  # a revision with '/' stays one folder
  dl plain --rev refs/pr/1; expect_rc 0 $? "--rev refs/pr/1"
  [ -f "$BITNET_CACHE/owner--repo/refs%2Fpr%2F1/model.gguf" ] || fail "refs/pr/1 not stored as one folder"
  [ "$(field -1 4)" = /plain/owner/repo/resolve/refs%2Fpr%2F1/model.gguf ] || fail "revision not encoded in the URL"
  # a symbolic link planted inside the cache is not followed out of it
  mkdir -p "$T/elsewhere" "$BITNET_CACHE/owner--repo"
  ln -s "$T/elsewhere" "$BITNET_CACHE/owner--repo/v1"
  dl plain --rev v1; expect_rc 1 $? "symbolic link in the cache"
  [ -z "$(ls -A "$T/elsewhere")" ] || fail "a file was written through the symbolic link"
}

case_proxy() {
  HTTP_PROXY=http://127.0.0.1:$PORT "$BITNET" download --no-progress --id owner/repo --file model.gguf \
    --base-url http://proxied.invalid/plain >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "download through HTTP_PROXY"
  same_content "$DEST"
  [ "$(field 1 9)" = 1 ] && [ "$(field 1 3)" = proxied.invalid ] || fail "request did not go through the proxy"
}

case_progress() {
  dl plain; expect_rc 0 $? "download"
  grep -q $'\r' "$T/dl.err" && fail "progress drawn although stderr is not a terminal"
  command -v script >/dev/null || { echo "skip: no script(1) for a terminal"; return 0; }
  rm -f "$DEST" "$DEST.meta"
  script -qec "'$BITNET' download --id owner/repo --file model.gguf --base-url '$BASE/plain'" /dev/null >"$T/tty.out" 2>&1
  grep -q "100.0%" "$T/tty.out" || fail "no progress bar on a terminal: $(cat "$T/tty.out")"
  rm -f "$DEST" "$DEST.meta"
  script -qec "'$BITNET' download --no-progress --id owner/repo --file model.gguf --base-url '$BASE/plain'" /dev/null >"$T/tty.out" 2>&1
  grep -q "%" "$T/tty.out" && fail "progress drawn with --no-progress"
  return 0
}

case_cli() {
  "$BITNET" download --help >"$T/help" || fail "--help failed"
  local opt
  for opt in $(grep -oE -- '--[a-z0-9-]+' "$T/help" | sort -u); do
    (cd "$T" && "$BITNET" download --id owner/repo --base-url "$BASE/missing" "$opt" x >/dev/null 2>"$T/dl.err")
    grep -qF "unknown option '$opt'" "$T/dl.err" && fail "--help lists $opt, which is not accepted"
  done
  grep -q "10 no space" "$T/help" && grep -q "130 interrupted" "$T/help" || fail "--help lacks the exit codes"
  "$BITNET" download --bogus >/dev/null 2>&1; expect_rc 2 $? "unknown option"
  "$BITNET" download --id >/dev/null 2>&1; expect_rc 2 $? "option without a value"
  rm -rf "$BITNET_CACHE"
  # cache folder: $BITNET_CACHE, else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet; --opt=VALUE form
  env -u BITNET_CACHE XDG_CACHE_HOME="$T/xdg" "$BITNET" download --no-progress --id=owner/repo \
    --file=model.gguf --base-url="$BASE/plain" >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "XDG_CACHE_HOME"
  [ "$(cat "$T/out")" = "$T/xdg/bitnet/owner--repo/main/model.gguf" ] || fail "XDG path $(cat "$T/out")"
  # HF_ENDPOINT is the default server; the default file name
  cp "$CONTENT" "$T/root/ggml-model-i2_s.gguf"
  env -u BITNET_CACHE -u XDG_CACHE_HOME HOME="$T/home" HF_ENDPOINT="$BASE/plain" "$BITNET" download \
    --no-progress --id owner/repo >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "HOME and HF_ENDPOINT"
  [ "$(cat "$T/out")" = "$T/home/.cache/bitnet/owner--repo/main/ggml-model-i2_s.gguf" ] || fail "HOME path $(cat "$T/out")"
  [ "$(field -1 4)" = /plain/owner/repo/resolve/main/ggml-model-i2_s.gguf ] || fail "default --file not used"
}

case_model_ref() {
  [ -n "$RESOLVE" ] || fail "no resolve helper given"
  HF_ENDPOINT=$BASE/plain "$RESOLVE" hf:owner/repo/model.gguf >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "hf: reference"
  [ "$(cat "$T/out")" = "$DEST" ] || fail "resolved to $(cat "$T/out")"
  same_content "$DEST"
  # second use: the cached file, without the server
  HF_ENDPOINT=$BASE/plain "$RESOLVE" hf:owner/repo/model.gguf >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "cached hf: reference"
  [ "$(nlog)" = 1 ] || fail "the cached file was fetched again"
  HF_ENDPOINT=$BASE/plain "$RESOLVE" hf:owner/repo@v2/model.gguf >"$T/out" 2>"$T/dl.err"
  expect_rc 0 $? "hf: reference with a revision"
  [ "$(cat "$T/out")" = "$BITNET_CACHE/owner--repo/v2/model.gguf" ] || fail "revision path $(cat "$T/out")"
  "$RESOLVE" hf:owner/../x >/dev/null 2>"$T/dl.err"; expect_rc 2 $? "hostile hf: reference"
  "$RESOLVE" models/x.gguf >"$T/out" 2>"$T/dl.err"; expect_rc 0 $? "plain path"
  [ "$(cat "$T/out")" = models/x.gguf ] || fail "a plain path was changed"
}

declare -F "case_$CASE" >/dev/null || fail "unknown case"
"case_$CASE"
echo "ok [$CASE]"
