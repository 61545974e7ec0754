#!/usr/bin/env bash
# Runs every built libFuzzer target (BUILD/fuzz/fuzz_*) for FUZZ_SECONDS each (default 60).
# Each keeps its corpus in fuzz/corpus-<name>/ (ignored by git), seeded from the real files its
# fuzz/<name>.seeds lists (glob patterns relative to the repository), and uses fuzz/<name>.dict (libFuzzer dictionary)
# if there is one.  Findings go to BUILD/fuzz/artifacts/; any finding makes the script fail.
# Usage: fuzz/run.sh [BUILD]
set -u
shopt -s globstar nullglob
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
secs=${FUZZ_SECONDS:-60}
mkdir -p "$build/fuzz/artifacts"
status=0
found=0
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  found=1
  corpus="$root/fuzz/corpus-${name#fuzz_}"
  mkdir -p "$corpus"
  if [ -f "$root/fuzz/$name.seeds" ]; then
    while read -r pattern; do
      case "$pattern" in ''|'#'*) continue ;; esac
      for f in "$root"/$pattern; do
        rel=${f#"$root"/}
        cp -n "$f" "$corpus/seed-${rel//\//_}" 2>/dev/null || true
      done
    done <"$root/fuzz/$name.seeds"
  fi
  dict=()
  [ -f "$root/fuzz/$name.dict" ] && dict=(-dict="$root/fuzz/$name.dict")
  echo "== $name for ${secs}s (corpus $(ls "$corpus" | wc -l) files)"
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -max_len=262144 -print_final_stats=1 -artifact_prefix="$build/fuzz/artifacts/$name-" \
    >"$build/fuzz/$name.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz/$name.log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$build/fuzz/$name.log" | grep -o '[0-9]*$')
  if [ "$rc" != 0 ]; then
    echo "   FINDING (exit $rc): see $build/fuzz/$name.log and $build/fuzz/artifacts/"
    tail -30 "$build/fuzz/$name.log"
    status=1
  else
    echo "   ok: ${execs:-?} executions, ${rate:-?}/s"
  fi
done
[ "$found" = 1 ] || { echo "no fuzz targets built in $build/fuzz"; exit 1; }
exit $status
