#!/usr/bin/env bash
# The bundled model (models/bitnet-kjv-tiny.gguf) against the independent NumPy forward pass
# (tools/train-tiny/reference.py, whose outputs are in tests/data/tiny/): per-position cosine
# >= 0.999 and argmax agreement >= 99% on fixed texts, the 64-token greedy continuation exactly,
# and our tokenizer giving reference.py's ids.  Usage: test_tiny_model.sh BITNET
set -u
BITNET=$1
SRC=${BITNET_SOURCE_DIR:?}
MODEL=$SRC/models/bitnet-kjv-tiny.gguf
CASE=$SRC/tests/data/tiny/case.json
[ -f "$MODEL" ] && [ -f "$CASE" ] || { echo "bundled model or its reference data missing"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

n_cases=$(python3 -c "import json; print(len(json.load(open('$CASE'))['cases']))")
total=0
agree=0
for i in $(seq 0 $((n_cases - 1))); do
  name=$(python3 -c "import json; print(json.load(open('$CASE'))['cases'][$i]['name'])")
  tokens=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$CASE'))['cases'][$i]['tokens'])))")
  text=$(python3 -c "import json; print(json.load(open('$CASE'))['cases'][$i]['text'], end='')")
  got=$("$BITNET" tokenize -m "$MODEL" --ids-only "$text" 2>/dev/null)
  [ "$got" = "$tokens" ] && ok "$name: tokenizer gives reference.py's ids" || bad "$name: tokenizer: got '$got', want '$tokens'"
  "$BITNET" eval -m "$MODEL" --tokens "$tokens" --logits-out "$TMP/$name.f32" || { bad "$name: eval"; continue; }
  read -r cos ag n < <(python3 - "$TMP/$name.f32" "$SRC/tests/data/tiny/logits_$name.f32" <<'PY'
import sys, struct, math
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
nv = 4096; n = len(b) // (4 * nv)
x = struct.unpack('<%df' % (n * nv), a); y = struct.unpack('<%df' % (n * nv), b)
mc, ag = 1.0, 0
for t in range(n):
    p, q = x[t*nv:(t+1)*nv], y[t*nv:(t+1)*nv]
    c = sum(u*v for u, v in zip(p, q)) / math.sqrt(sum(u*u for u in p) * sum(v*v for v in q))
    mc = min(mc, c); ag += p.index(max(p)) == q.index(max(q))
print("%.7f %d %d" % (mc, ag, n))
PY
)
  echo "# $name: min cosine $cos, argmax $ag/$n"
  python3 -c "import sys; sys.exit(not ($cos >= 0.999))" && ok "$name: cosine >= 0.999 at every position" || bad "$name: min cosine $cos"
  total=$((total + n)); agree=$((agree + ag))
done
echo "# argmax agreement over all positions: $agree/$total"
[ $((agree * 100)) -ge $((total * 99)) ] && ok "argmax agreement >= 99%" || bad "argmax agreement $agree/$total"

prompt=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$CASE'))['greedy']['prompt'])))")
want=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$CASE'))['greedy']['ids'])))")
got=$("$BITNET" eval -m "$MODEL" --tokens "$prompt" --greedy 64)
if [ "$got" = "$want" ]; then ok "64-token greedy continuation equals reference.py's"; else
  python3 -c "
a='$got'.split(); b='$want'.split()
d=[i for i in range(min(len(a),len(b))) if a[i]!=b[i]]
print('# greedy: first difference at step', d[0] if d else None)"
  bad "greedy continuation differs"
fi
# the same continuation as text, through run (golden)
want_text=$(python3 -c "import json; c=json.load(open('$CASE'))['greedy']; print(c['prompt_text'] + c['text'])")
got_text=$("$BITNET" run -m "$MODEL" -p "The LORD is my shepherd" -n 64 --temp 0 2>/dev/null)
[ "$got_text" = "$want_text" ] && ok "greedy text through run" || bad "greedy text through run: $got_text"

[ $fails -eq 0 ] && echo "tiny model: all checks passed"
exit $fails
