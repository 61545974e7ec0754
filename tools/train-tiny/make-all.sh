#!/usr/bin/env bash
# Regenerates everything the tiny model ships with, from scratch (about an hour on 2 cores):
#   tools/train-tiny/work/        tokenizer, token ids, checkpoints, train.log, metrics.jsonl
#   models/bitnet-kjv-tiny.gguf, models/bitnet-kjv-tiny-hf/
#   tests/data/tiny/              reference logits and greedy continuation
#   docs/tiny-model-loss.png
# Needs Debian packages: bible-kjv (the text), python3-torch, python3-numpy, python3-regex,
# python3-matplotlib; libopenblas0 (optional, makes training ~50x faster than reference BLAS).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3
export OMP_WAIT_POLICY=PASSIVE
"$py" "$here/train.py" "$@"
"$py" "$here/export.py"
"$py" "$here/reference.py" testdata -o "$root/tests/data/tiny"
"$py" "$here/reference.py" perplexity -c 256 | tee "$here/work/perplexity.txt"
"$py" "$here/plot.py"
