#!/usr/bin/env bash
# bitnet perplexity on the tiny KJV model's held-out text (tests/data/hf/kjv-heldout.txt) agrees
# with the reference within 1%: tools/train-tiny/reference.py perplexity -c 256 (NumPy, value in
# tests/data/hf/reference-perplexity.txt), which equals the PyTorch training model's held-out
# perplexity, 114.80 (docs/tiny-model.md), from the Hugging Face folder in both forms
# (bf16 master weights and packed, converted in memory: the same numbers).  That the folder and
# its I2_S file give identical logits is tested in test_hf_model.  Skipped (77) without the model.
# Usage: test_tiny_perplexity.sh BITNET
set -u
bitnet=$1
src=${BITNET_SOURCE_DIR:?}
data=${BITNET_TEST_DATA:?}/hf
model=$src/models/bitnet-kjv-tiny-hf
[ -f "$model/config.json" ] || { echo "skipped: $model is absent"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ref=$(grep -oE '^perplexity [0-9.]+' "$data/reference-perplexity.txt" | awk '{print $2}')
[ -n "$ref" ] || fail "no reference value in $data/reference-perplexity.txt"

# the packed form: the same folder with model-packed.safetensors as its weights
mkdir "$tmp/packed"
for f in config.json tokenizer.json tokenizer_config.json generation_config.json; do
  [ -e "$model/$f" ] && ln -s "$model/$f" "$tmp/packed/$f"
done
ln -s "$model/model-packed.safetensors" "$tmp/packed/model.safetensors"

ppl() { "$bitnet" perplexity -m "$1" -f "$data/kjv-heldout.txt" -c 256 2>/dev/null | grep -oE 'PPL = [0-9.]+' | awk '{print $3}'; }
a=$(ppl "$model") || fail "perplexity on the folder"
b=$(ppl "$tmp/packed") || fail "perplexity on the packed folder"
echo "reference $ref, folder $a, packed $b"
[ "$a" = "$b" ] || fail "bf16 ($a) and packed ($b) forms differ"
awk -v a="$a" -v r="$ref" 'BEGIN { d = (a - r) / r; if (d < 0) d = -d; exit !(d < 0.01) }' ||
  fail "perplexity $a is not within 1% of the reference $ref"
echo ok
