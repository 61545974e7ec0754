#!/usr/bin/env bash
# Converts a synthetic BitNet b1.58 2B-4T-sized bf16 checkpoint (about 4.8 GB, generated once into
# $BENCH_DIR, default /tmp/bitnet-2b4t-bf16; never committed) to GGUF and reports wall time and
# peak resident memory, for each thread count in BENCH_THREADS (default "1 2"), the counts of one
# type back to back so they see the same machine; the outputs must be byte-identical.  Goal
# (issue 7): under 60 s on a 2-core machine, one tensor's float copy in memory at a time.
# Usage: bench/convert/run.sh [BUILD]   (BUILD defaults to build; needs bitnet and bench_convert)
#   BENCH_TYPES="i2_s tq2_0"  BENCH_THREADS="1 2"  BENCH_DIR  BENCH_OUT
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
dir=${BENCH_DIR:-/tmp/bitnet-2b4t-bf16}
out=${BENCH_OUT:-/tmp/bitnet-2b4t-i2s.gguf}
gen="$build/bench/convert/bench_convert"
bitnet="$build/tools/bitnet/bitnet"
[ -x "$gen" ] && [ -x "$bitnet" ] || { echo "build first: cmake --build $build"; exit 1; }
if [ ! -s "$dir/model.safetensors" ]; then
  echo "generating $dir ..."
  "$gen" --generate "$dir"
fi
# once to bring the checkpoint into the page cache, then the measured runs
"$bitnet" convert -i "$dir" -o "$out" -q
for type in ${BENCH_TYPES:-i2_s tq2_0}; do
  first=
  for t in ${BENCH_THREADS:-1 2}; do
    printf 'convert --type %s --threads %s: ' "$type" "$t"
    "$gen" --measure "$bitnet" convert -i "$dir" -o "$out.t$t" --type "$type" --threads "$t" -q
    if [ -z "$first" ]; then first="$out.t$t"
    else cmp -s "$first" "$out.t$t" || { echo "outputs differ: $first $out.t$t"; exit 1; }; rm -f "$out.t$t"; fi
  done
  mv "$first" "$out"
done
ls -l "$out"
