#!/usr/bin/env bash
# bitnet convert / perplexity / run on a synthetic Hugging Face folder.
# Usage: test_convert_cli.sh BITNET TEST_HF_MODEL
set -u
bitnet=$1
maker=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$maker" --make-model "$tmp/m" || fail "making the folder"
"$maker" --make-model "$tmp/p" packed || fail "making the packed folder"

# quiet conversion prints nothing; the file is a GGUF with I2_S weights
out=$("$bitnet" convert -i "$tmp/m" -o "$tmp/a.gguf" --quiet 2>&1) || fail "convert: $out"
[ -z "$out" ] || fail "--quiet printed: $out"
"$bitnet" info "$tmp/a.gguf" | grep -q "I2_S" || fail "no I2_S tensors in a.gguf"
"$bitnet" info "$tmp/a.gguf" | grep -q "bitnet-b1.58" || fail "architecture missing"
# the packed folder converts to the same ternary weights: same file size, same tensor table
"$bitnet" convert --input "$tmp/p" --output "$tmp/pa.gguf" -q || fail "convert packed"
[ "$(stat -c %s "$tmp/a.gguf")" = "$(stat -c %s "$tmp/pa.gguf")" ] || fail "packed and float sizes differ"
# without a terminal there is no bar, only the summary
out=$("$bitnet" convert -i "$tmp/m" -o "$tmp/b.gguf" --type tq2_0 --embed-type q8_0 2>&1) || fail "convert tq2_0: $out"
grep -q "wrote .*b.gguf .*TQ2_0 weights" <<<"$out" || fail "summary: $out"
"$bitnet" info "$tmp/b.gguf" | grep -q "TQ2_0" || fail "no TQ2_0 tensors"
"$bitnet" info "$tmp/b.gguf" | grep -q "Q8_0" || fail "no Q8_0 embeddings"
# Q6_K embeddings (the encoder in src/quant)
"$bitnet" convert -i "$tmp/m" -o "$tmp/q6.gguf" --embed-type q6_k -q || fail "convert --embed-type q6_k"
"$bitnet" info "$tmp/q6.gguf" | grep -q "Q6_K" || fail "no Q6_K embeddings"
# GGUF -> GGUF
"$bitnet" convert -i "$tmp/a.gguf" -o "$tmp/c.gguf" --type tq1_0 -q || fail "requantise"
"$bitnet" info "$tmp/c.gguf" | grep -q "TQ1_0" || fail "no TQ1_0 tensors"

# --threads: the same bytes for every count (HF folder and GGUF input)
for t in 1 2 3; do
  "$bitnet" convert -i "$tmp/m" -o "$tmp/t$t.gguf" --type tq1_0 --embed-type q6_k --threads "$t" -q || fail "convert --threads $t"
  "$bitnet" convert -i "$tmp/p" -o "$tmp/pt$t.gguf" -t "$t" -q || fail "convert packed -t $t"
  "$bitnet" convert -i "$tmp/a.gguf" -o "$tmp/gt$t.gguf" --type tq2_0 --embed-type q8_0 -t "$t" -q || fail "requantise -t $t"
done
for t in 2 3; do
  cmp -s "$tmp/t1.gguf" "$tmp/t$t.gguf" || fail "--threads $t changed the output"
  cmp -s "$tmp/pt1.gguf" "$tmp/pt$t.gguf" || fail "packed: -t $t changed the output"
  cmp -s "$tmp/gt1.gguf" "$tmp/gt$t.gguf" || fail "GGUF input: -t $t changed the output"
done
cmp -s "$tmp/pa.gguf" "$tmp/pt2.gguf" || fail "the default thread count changed the output"
for bad in 0 -1 abc 1025 ""; do
  out=$("$bitnet" convert -i "$tmp/m" -o "$tmp/x.gguf" --threads "$bad" -q 2>&1); [ $? = 2 ] || fail "--threads '$bad' should exit 2"
  grep -q -- "--threads expects an integer in 1..1024, got '$bad'" <<<"$out" || fail "--threads '$bad': $out"
done
"$bitnet" convert --help | grep -q -- "-t, --threads N" || fail "--help lacks --threads"

# usage errors exit 2, failures 1 with a message
"$bitnet" convert -i "$tmp/m" -q >/dev/null 2>&1; [ $? = 2 ] || fail "missing --output should exit 2"
"$bitnet" convert -i "$tmp/m" -o "$tmp/x.gguf" --type q4_0 >/dev/null 2>&1; [ $? = 2 ] || fail "bad --type should exit 2"
out=$("$bitnet" convert -i "$tmp/nothing" -o "$tmp/x.gguf" -q 2>&1); [ $? = 1 ] || fail "missing input should exit 1"
grep -q "nothing" <<<"$out" || fail "message does not name the input: $out"
rm "$tmp/m/tokenizer.json" 2>/dev/null; cp -r "$tmp/p" "$tmp/nt"; rm "$tmp/nt/tokenizer.json"
out=$("$bitnet" convert -i "$tmp/nt" -o "$tmp/x.gguf" -q 2>&1); [ $? = 1 ] || fail "missing tokenizer should fail"
grep -q "tokenizer.json is missing" <<<"$out" || fail "message: $out"
[ ! -e "$tmp/x.gguf" ] || fail "a failed conversion left a file"

# perplexity: the same numbers from the folder (converted in memory) and from its I2_S file
text="$tmp/text.txt"
for i in $(seq 1 40); do printf 'the heathen in the hills then the thin tin %d; ' "$i"; done >"$text"
a=$("$bitnet" perplexity -m "$tmp/p" -f "$text" -c 64 -t 1 2>/dev/null) || fail "perplexity on the folder"
b=$("$bitnet" perplexity -m "$tmp/pa.gguf" -f "$text" -c 64 -t 1 --batch 16 2>/dev/null) || fail "perplexity on the file"
grep -Eq '^Final estimate: PPL = [0-9]+\.[0-9]+ \+/- [0-9]+\.[0-9]+$' <<<"$a" || fail "perplexity output: $a"
grep -Eq '^\[1\][0-9.]+,\[2\][0-9.]+,' <<<"$a" || fail "running values: $a"
[ "$a" = "$b" ] || fail "folder and file disagree: $a vs $b"
"$bitnet" perplexity -m "$tmp/pa.gguf" -f "$text" -c 100000 >/dev/null 2>&1; [ $? = 1 ] || fail "too short a text should fail"
"$bitnet" perplexity -m "$tmp/pa.gguf" >/dev/null 2>&1; [ $? = 2 ] || fail "missing -f should exit 2"
# run -m DIR generates what run -m FILE does
r1=$("$bitnet" run -m "$tmp/p" -p "the" -n 8 --temp 0 -t 1 2>/dev/null) || fail "run -m DIR"
r2=$("$bitnet" run -m "$tmp/pa.gguf" -p "the" -n 8 --temp 0 -t 1 2>/dev/null) || fail "run -m FILE"
[ -n "$r1" ] && [ "$r1" = "$r2" ] || fail "run output differs: '$r1' vs '$r2'"
echo ok
