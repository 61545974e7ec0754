#!/usr/bin/env bash
# Side-by-side speed comparison on one GGUF file, interleaved so both engines see the same machine
# state.  Usage:
#   bench/compare.sh MODEL.gguf [THREADS=2] [N_PROMPT=128] [N_GEN=64] [ROUNDS=3]
# Peers are optional, given as paths to their llama-bench programs:
#   BITNET_CPP_BENCH=/path/to/bitnet.cpp/build/bin/llama-bench
#   LLAMA_CPP_BENCH=/path/to/llama.cpp/build/bin/llama-bench
# Prints each engine's mean pp/tg tokens/s over the rounds and the ratios ours/theirs.
set -euo pipefail
MODEL=${1:?usage: compare.sh MODEL.gguf [THREADS] [N_PROMPT] [N_GEN] [ROUNDS]}
T=${2:-2}
P=${3:-128}
N=${4:-64}
ROUNDS=${5:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BITNET=${BITNET:-$HERE/build/tools/bitnet/bitnet}
[ -x "$BITNET" ] || { echo "build first (make), or set BITNET=path/to/bitnet" >&2; exit 2; }

declare -A sum_pp sum_tg
engines=(bitnet.c)
[ -n "${BITNET_CPP_BENCH:-}" ] && engines+=(bitnet.cpp)
[ -n "${LLAMA_CPP_BENCH:-}" ] && engines+=(llama.cpp)
for e in "${engines[@]}"; do sum_pp[$e]=0; sum_tg[$e]=0; done

# Prints "PP TG" (tokens/s) for one engine.
measure() {
  local json
  case $1 in
    bitnet.c) json=$("$BITNET" bench -m "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 --no-bandwidth -o json 2>/dev/null) ;;
    bitnet.cpp) json=$("$BITNET_CPP_BENCH" -m "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -ngl 0 -o json 2>/dev/null) ;;
    llama.cpp) json=$("$LLAMA_CPP_BENCH" -m "$MODEL" -p "$P" -n "$N" -t "$T" -r 1 -ngl 0 -o json 2>/dev/null) ;;
  esac
  python3 -c '
import json, sys
recs = json.loads(sys.argv[1])
pp = [r["avg_ts"] for r in recs if r["n_prompt"] > 0 and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in recs if r["n_gen"] > 0 and r["n_prompt"] == 0]
print(pp[0] if pp else 0, tg[0] if tg else 0)' "$json"
}

for r in $(seq "$ROUNDS"); do
  for e in "${engines[@]}"; do
    read -r pp tg < <(measure "$e")
    sum_pp[$e]=$(python3 -c "print(${sum_pp[$e]} + $pp)")
    sum_tg[$e]=$(python3 -c "print(${sum_tg[$e]} + $tg)")
    echo "round $r: $e pp$P $pp t/s, tg$N $tg t/s" >&2
  done
done

echo "| engine | pp$P t/s | tg$N t/s | ours/theirs pp | ours/theirs tg |"
echo "|---|---:|---:|---:|---:|"
ours_pp=$(python3 -c "print(${sum_pp[bitnet.c]} / $ROUNDS)")
ours_tg=$(python3 -c "print(${sum_tg[bitnet.c]} / $ROUNDS)")
for e in "${engines[@]}"; do
  python3 -c "
pp, tg = ${sum_pp[$e]} / $ROUNDS, ${sum_tg[$e]} / $ROUNDS
print('| $e | %.2f | %.2f | %.2fx | %.2fx |' % (pp, tg, $ours_pp / pp if pp else 0, $ours_tg / tg if tg else 0))"
done
echo "($T threads, $ROUNDS interleaved rounds, model $(basename "$MODEL"))"
