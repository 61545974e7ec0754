#!/usr/bin/env bash
# End-to-end tests of `bitnet run`, `eval`, `gen-model`, `bench` and `chat` (usage: test_cli.sh BITNET).
set -u
BITNET=$1
DATA=${BITNET_TEST_DATA:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

# 1. stories260K (llama arch, F32, SentencePiece): llama2.c's published greedy text, byte for byte
"$BITNET" run -m "$DATA/gguf/stories260K.gguf" -p "" -n 200 --temp 0 >"$TMP/s.txt" 2>"$TMP/s.err"
check "stories260K greedy = llama2.c" "python3 -c \"import sys; a=open('$TMP/s.txt').read(); b=open('$DATA/gguf/stories260K_expected_greedy_200steps.txt').read(); sys.exit(a != b + '\\n')\""
check "run prints a summary on stderr" "grep -q 'prompt 1 tok .* gen 200 tok' '$TMP/s.err'"
for t in 1 2; do "$BITNET" run -m "$DATA/gguf/stories260K.gguf" -p "" -n 200 --temp 0 -t $t >"$TMP/s$t.txt" 2>/dev/null; done
check "same text with 1 and 2 threads" "cmp -s '$TMP/s1.txt' '$TMP/s2.txt'"

# 2. sampling: the same seed gives the same text, another seed another text
for s in 1 1 2; do "$BITNET" run -m "$DATA/gguf/stories260K.gguf" -p "Once" -n 40 --seed $s --temp 1 2>/dev/null >>"$TMP/seed$s.txt"; done
check "seed reproducible" "[ \"\$(head -c 100 '$TMP/seed1.txt')\" = \"\$(tail -c +\$(( \$(wc -c <'$TMP/seed1.txt') / 2 + 1 )) '$TMP/seed1.txt' | head -c 100)\" ]"
check "another seed differs" "! cmp -s '$TMP/seed2.txt' <(head -c \$(wc -c <'$TMP/seed2.txt') '$TMP/seed1.txt')"
"$BITNET" run -m "$DATA/gguf/stories260K.gguf" -p "Once upon a time" -n 100 --temp 0 --stop "Lily" >"$TMP/stop.txt" 2>/dev/null
check "stop string ends generation and is not printed" "[ \"\$(cat '$TMP/stop.txt')\" = 'Once upon a time, there was a little girl named ' ]"

# 3. eval: bitnet.cpp's greedy continuation of the reference I2_S model (8-token batch, then steps)
prompt=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$DATA/reference/V1/case.json'))['greedy_prompt'])))")
expect=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$DATA/reference/V1/case.json'))['greedy_ids'])))")
got=$("$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "$prompt" --greedy 32 --match-reference 2>&1)
check "eval --greedy reproduces bitnet.cpp's 32 ids" "[ \"$got\" = \"$expect\" ]"
tokens=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$DATA/reference/V1/case.json'))['tokens'])))")
"$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "$tokens" --logits-out "$TMP/l.f32"
check "eval --logits-out writes [48][512] floats" "[ \$(stat -c %s '$TMP/l.f32') -eq $((48 * 512 * 4)) ]"
check "eval logits agree with bitnet.cpp (cosine)" "python3 - '$TMP/l.f32' '$DATA/reference/V1/logits_ref.f32' <<'PY'
import sys, struct, math
a = struct.unpack('<%df' % (48*512), open(sys.argv[1],'rb').read())
b = struct.unpack('<%df' % (48*512), open(sys.argv[2],'rb').read())
for t in range(48):
    x, y = a[t*512:(t+1)*512], b[t*512:(t+1)*512]
    c = sum(p*q for p, q in zip(x, y)) / math.sqrt(sum(p*p for p in x) * sum(q*q for q in y))
    if c < 0.999: sys.exit(1)
PY"

"$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "$tokens" --logits-out "$TMP/q8.f32" --head q8_0
check "--head q8_0 stays close to the F16 head (cosine >= 0.9999, argmax 100%)" "python3 - '$TMP/q8.f32' '$DATA/reference/V1/logits_ref.f32' <<'PY'
import sys, struct, math
a = struct.unpack('<%df' % (48*512), open(sys.argv[1],'rb').read())
b = struct.unpack('<%df' % (48*512), open(sys.argv[2],'rb').read())
for t in range(48):
    x, y = a[t*512:(t+1)*512], b[t*512:(t+1)*512]
    c = sum(p*q for p, q in zip(x, y)) / math.sqrt(sum(p*p for p in x) * sum(q*q for q in y))
    if c < 0.9999 or x.index(max(x)) != y.index(max(y)): sys.exit(1)
PY"
expect_q8=$("$BITNET" bench -m "$DATA/reference/V1/model.gguf" -p 0 -n 1 -r 1 --no-bandwidth --head q8_0 -o json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['bytes_per_token'])")
expect_f16=$("$BITNET" bench -m "$DATA/reference/V1/model.gguf" -p 0 -n 1 -r 1 --no-bandwidth -o json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['bytes_per_token'])")
check "--head q8_0 reads fewer bytes per token" "[ $expect_q8 -lt $expect_f16 ]"
"$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "$tokens" --logits-out "$TMP/q6.f32" --head q6_k
check "--head q6_k stays close to the F16 head (cosine >= 0.999, argmax >= 90%)" "python3 - '$TMP/q6.f32' '$DATA/reference/V1/logits_ref.f32' <<'PY'
import sys, struct, math
a = struct.unpack('<%df' % (48*512), open(sys.argv[1],'rb').read())
b = struct.unpack('<%df' % (48*512), open(sys.argv[2],'rb').read())
agree = 0
for t in range(48):
    x, y = a[t*512:(t+1)*512], b[t*512:(t+1)*512]
    c = sum(p*q for p, q in zip(x, y)) / math.sqrt(sum(p*p for p in x) * sum(q*q for q in y))
    if c < 0.999: sys.exit(1)
    agree += x.index(max(x)) == y.index(max(y))
if agree < 44: sys.exit(1)
PY"
expect_q6=$("$BITNET" bench -m "$DATA/reference/V1/model.gguf" -p 0 -n 1 -r 1 --no-bandwidth --head q6_k -o json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['bytes_per_token'])")
check "--head q6_k reads fewer bytes per token than q8_0" "[ $expect_q6 -lt $expect_q8 ]"
check "--head rejects other types" "! \"$BITNET\" eval -m \"$DATA/reference/V1/model.gguf\" --tokens 1 --head q4_0 2>/dev/null"

# 4. gen-model: a synthetic model in the official format loads, runs and describes itself
for ty in i2_s tq1_0 tq2_0; do
  "$BITNET" gen-model --shape 2x256 --type $ty --seed 5 -o "$TMP/g_$ty.gguf" 2>/dev/null
  check "gen-model $ty loads and runs" "'$BITNET' run -m '$TMP/g_$ty.gguf' -p 'abc' -n 4 --temp 0 >/dev/null 2>&1"
done
"$BITNET" gen-model --shape 1x2048 --heads 1 --vocab 300 -o "$TMP/hd2048.gguf" >/dev/null 2>&1
check "a head dimension over 1024 is refused with a message" "! '$BITNET' run -m '$TMP/hd2048.gguf' -p a -n 1 >/dev/null 2>'$TMP/hd.err' && grep -q 'head dimension 2048' '$TMP/hd.err'"
check "gen-model writes the official key set" "'$BITNET' info '$TMP/g_i2_s.gguf' --json | python3 -c \"import json,sys; j=json.load(sys.stdin); s=json.dumps(j); sys.exit(not ('bitnet-b1.58' in s and 'I2_S' in s))\""
check "gen-model is deterministic" "'$BITNET' gen-model --shape tiny --seed 5 -o '$TMP/d1.gguf' 2>/dev/null && '$BITNET' gen-model --shape tiny --seed 5 -o '$TMP/d2.gguf' 2>/dev/null && cmp -s '$TMP/d1.gguf' '$TMP/d2.gguf'"
check "gen-model tq types hold the same weights" "'$BITNET' eval -m '$TMP/g_tq1_0.gguf' --tokens '510 1 2 3' --logits-out '$TMP/a.f32' && '$BITNET' eval -m '$TMP/g_tq2_0.gguf' --tokens '510 1 2 3' --logits-out '$TMP/b.f32' && cmp -s '$TMP/a.f32' '$TMP/b.f32'"

# 5. bench: llama-bench field names in JSON
"$BITNET" bench -m "$DATA/reference/V1/model.gguf" -p 16 -n 8 -t 1 -r 2 --no-bandwidth -o json >"$TMP/b.json" 2>/dev/null
"$BITNET" bench -m "$DATA/reference/V1/model.gguf" -p 8 -n 4 -d 0,16 -t 1 -r 1 --no-bandwidth -o json >"$TMP/bd.json" 2>/dev/null
check "bench -d: one record per depth, n_depth as llama-bench names it" "python3 -c \"import json; r=json.load(open('$TMP/bd.json')); assert [(x['n_prompt'],x['n_gen'],x['n_depth']) for x in r]==[(8,0,0),(0,4,0),(8,0,16),(0,4,16)] and all(x['avg_ts']>0 for x in r)\""
check "bench -d: the table says the depth" "'$BITNET' bench -m '$DATA/reference/V1/model.gguf' -p 0 -n 2 -d 8 -r 1 --no-bandwidth | grep -q 'tg2 @ d8'"
check "bench -d: a bad depth is refused" "! '$BITNET' bench -m '$DATA/reference/V1/model.gguf' -d x >/dev/null 2>&1"
check "bench JSON has llama-bench fields" "python3 -c \"import json; r=json.load(open('$TMP/b.json')); assert len(r)==2 and all(k in r[0] for k in ('n_prompt','n_gen','n_threads','avg_ts','stddev_ts')) and r[0]['avg_ts']>0\""

# 5b. repacked I2_S weights: said by info --system, run and bench where the kernels use them;
#     the same greedy text either way (--no-repack), and never with the scalar kernels
kern=$("$BITNET" info --system --json | python3 -c "import json,sys; print(json.load(sys.stdin)['system']['kernels'])")
"$BITNET" run -m "$DATA/reference/V1/model.gguf" -p "" -n 24 --temp 0 >"$TMP/rp.txt" 2>"$TMP/rp.err"
"$BITNET" run -m "$DATA/reference/V1/model.gguf" -p "" -n 24 --temp 0 --no-repack >"$TMP/nrp.txt" 2>"$TMP/nrp.err"
check "same text with and without repacking" "cmp -s '$TMP/rp.txt' '$TMP/nrp.txt'"
check "--no-repack: nothing repacked" "! grep -q 'repacked' '$TMP/nrp.err'"
if [ "$kern" = avx2 ] || [ "$kern" = avx512 ]; then
    check "info --system: I2_S repacked ($kern)" "\"$BITNET\" info --system | grep -q 'I2_S layout .*repacked'"
    check "run says how much was repacked" "grep -q 'ternary weights repacked over the first tokens' '$TMP/rp.err'"
    check "bench repacks at load" "\"$BITNET\" bench -m '$DATA/reference/V1/model.gguf' -p 0 -n 2 -r 1 --no-bandwidth | grep -q 'ternary weights repacked at load'"
fi
if [ "$kern" = avx2 ] || [ "$kern" = avx512 ]; then
    check "info --system: TQ repacked ($kern)" "\"$BITNET\" info --system | grep -q 'TQ layout .*repacked' && \"$BITNET\" info --system --json | grep -Eq '\"tq_repack\":[[:space:]]*true'"
    check "info --system with the AVX2 kernels: TQ repacked" "BITNET_KERNELS=avx2 \"$BITNET\" info --system --json | grep -Eq '\"tq_repack\":[[:space:]]*true'"
fi
check "info --system with the scalar kernels: file layout" "BITNET_KERNELS=ref \"$BITNET\" info --system | grep -q 'I2_S layout .*as stored in the file' && BITNET_KERNELS=ref \"$BITNET\" info --system --json | grep -Eq '\"i2s_repack\":[[:space:]]*false'"
check "info --system with the scalar kernels: TQ file layout" "BITNET_KERNELS=ref \"$BITNET\" info --system | grep -q 'TQ layout .*as stored in the file' && BITNET_KERNELS=ref \"$BITNET\" info --system --json | grep -Eq '\"tq_repack\":[[:space:]]*false'"

# 6. chat: two turns through stdin, the second reusing the first's cache
printf 'Hello\nAgain\n' | "$BITNET" chat -m "$DATA/reference/V1/model.gguf" -n 8 --temp 0 >"$TMP/chat.txt" 2>"$TMP/chat.err"
check "chat answers two turns" "[ \$(grep -c '^> ' '$TMP/chat.txt') -ge 2 ] && grep -q 'chat format: bitnet' '$TMP/chat.err'"

# 7. bad input: clear errors, exit 2 for usage, 1 for failures, never a crash
expect_exit() { # name code cmd...
  local name=$1 code=$2; shift 2
  "$@" >/dev/null 2>"$TMP/err"; local rc=$?
  if [ $rc -eq "$code" ] && [ -s "$TMP/err" ]; then ok "$name"; else bad "$name (exit $rc, stderr: $(head -c 200 "$TMP/err"))"; fi
}
expect_exit "negative top-p" 1 "$BITNET" run -m "$DATA/reference/V1/model.gguf" -p x --top-p -0.5
expect_exit "zero context" 2 "$BITNET" run -m "$DATA/reference/V1/model.gguf" -p x -c 0
expect_exit "unknown option" 2 "$BITNET" run -m "$DATA/reference/V1/model.gguf" -p x --bogus
expect_exit "missing model file" 1 "$BITNET" run -m "$TMP/none.gguf" -p x
expect_exit "prompt longer than the context" 1 "$BITNET" run -m "$DATA/reference/V1/model.gguf" -p "$(printf 'abc %.0s' $(seq 100))" -c 8
expect_exit "token id outside the vocabulary" 1 "$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "1 99999" --greedy 1
expect_exit "bad token list" 2 "$BITNET" eval -m "$DATA/reference/V1/model.gguf" --tokens "1 x" --greedy 1
expect_exit "bad shape" 2 "$BITNET" gen-model --shape 3x100 -o "$TMP/x.gguf"
python3 -c "
d = open('$DATA/reference/V1/model.gguf','rb').read()
i = d.index(b'bitnet-b1.58', 0, 200)  # general.architecture's value comes first
open('$TMP/unknown.gguf','wb').write(d[:i] + b'bitnet-x9.99' + d[i+12:])"
expect_exit "unknown architecture" 1 "$BITNET" run -m "$TMP/unknown.gguf" -p x
grep -q "unknown architecture 'bitnet-x9.99'" "$TMP/err" && ok "unknown architecture message" || bad "unknown architecture message: $(cat "$TMP/err")"
[ ! -e "$TMP/x.gguf" ] && ok "no file left by a failed gen-model" || bad "file left by a failed gen-model"

[ $fails -eq 0 ] && echo "all CLI checks passed" || echo "$fails CLI check(s) failed"
exit $fails
