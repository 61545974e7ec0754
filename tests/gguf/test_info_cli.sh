#!/usr/bin/env bash
# `bitnet info` end to end: the real files print what they hold; corrupted files give exit
# status 1 and a message on stderr, never a crash (status > 128) or a hang (timeout).
# Usage: test_info_cli.sh BITNET   (CTest sets BITNET_TEST_DATA)
set -u
bitnet=$1
data=${BITNET_TEST_DATA:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run FILE ARGS...: runs bitnet info with a time limit; sets rc, out, err
run() {
  timeout 20 "$bitnet" info "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

expect_in() { # expect_in WHAT TEXT NEEDLE
  case "$2" in *"$3"*) ;; *) fail "$1: output lacks '$3'" ;; esac
}

# ---- good files ------------------------------------------------------------------------------
run "$data/reference/V1/model.gguf"
[ "$rc" = 0 ] || fail "V1: exit $rc: $err"
[ -z "$err" ] || fail "V1: unexpected stderr: $err"
for s in "architecture:   bitnet-b1.58" "file type:      40 (MOSTLY_I2_S)" "embedding_length                         256" \
         "block_count                              2" "tokens          512" "merges          254" "bos id          510" \
         "eos id          511" "chat template   no" "24, 1707264 parameters, 669120 bytes" \
         "I2_S        14 tensors" "2.002 bits/weight" "bits per weight: 3.135"; do
  expect_in V1 "$out" "$s"
done
case "$out" in *"blk.0.attn_q.weight"*) fail "V1: tensor table printed without --tensors" ;; esac

run "$data/reference/V1/model.gguf" --tensors
expect_in "V1 --tensors" "$out" "blk.1.ffn_down.weight"
echo "$out" | grep -Eq '^ +[0-9]+  blk\.0\.attn_q\.weight +I2_S +256 x 256 +16416 ' ||
  fail "V1 --tensors: attn_q row wrong"

run "$data/reference/V1-TQ2_0/model.gguf"
expect_in TQ2_0 "$out" "37 (MOSTLY_TQ2_0)"
expect_in TQ2_0 "$out" "2.062 bits/weight"
run "$data/reference/V1-TQ1_0/model.gguf"
expect_in TQ1_0 "$out" "36 (MOSTLY_TQ1_0)"
expect_in TQ1_0 "$out" "1.688 bits/weight"

run "$data/gguf/ggml-vocab-llama-spm.gguf"
[ "$rc" = 0 ] || fail "spm: exit $rc"
expect_in spm "$out" "tokens          32000"
expect_in spm "$out" "scores          yes"
expect_in spm "$out" "model           llama"
run "$data/gguf/ggml-vocab-gpt-2.gguf"
expect_in gpt2 "$out" "tokens          50257"
expect_in gpt2 "$out" "merges          50000"
expect_in gpt2 "$out" "bos id          50256"
run "$data/gguf/stories260K.gguf" --tensors
expect_in stories "$out" "48, 292800 parameters"
expect_in stories "$out" "head_count_kv                  4"

# --json: one object with the documented fields
run "$data/reference/V1/model.gguf" --json --tensors
[ "$rc" = 0 ] || fail "json: exit $rc"
for s in '"architecture":	"bitnet-b1.58"' '"file_type":	40' '"file_type_name":	"MOSTLY_I2_S"' '"n_tokens":	512' \
         '"n_merges":	254' '"bos_id":	510' '"eot_id":	null' '"chat_template":	false' '"block_count":	2' \
         '"attention.layer_norm_rms_epsilon":	1e-05' '"name":	"blk.0.attn_q.weight"' '"bytes":	16416'; do
  expect_in json "$out" "$s"
done
if command -v python3 >/dev/null 2>&1; then
  echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["hparams"]["embedding_length"] == 256
assert len(d["tensors"]) == 24 and d["tensors"][2]["shape"] == [256, 256]
assert d["tensor_summary"]["n_params"] == 1707264
assert d["metadata"]["tokenizer.ggml.tokens"] == {"array_of": "string", "n": 512}
' || fail "json: python check"
fi

# usage
# no file: the bundled model, found beside the executable's source tree
run; [ "$rc" = 0 ] || fail "no file (bundled model): exit $rc"
expect_in "bundled model" "$out" "bundled model found at"
expect_in "bundled model" "$out" "bitnet-kjv-tiny.gguf"
run --nope x; [ "$rc" = 2 ] || fail "bad option: exit $rc"
run --help; [ "$rc" = 0 ] && expect_in help "$out" "--tensors"
run --system; [ "$rc" = 0 ] || fail "--system: exit $rc"
expect_in system "$out" "kernels"
expect_in system "$out" "physical"
expect_in system "$out" "cache"
run "$data/reference/V1/model.gguf" --json --system
expect_in "json system" "$out" '"n_cores_logical":'
expect_in "json system" "$out" '"cache_bytes":'
expect_in "json system" "$out" '"architecture":	"bitnet-b1.58"'


# TL2 tensors: shown (flagged), not refused.  Built byte by byte: one TL2 tensor, 64 data bytes.
le32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
le64() { le32 $(($1 & 0xffffffff)); le32 $(($1 >> 32)); }
{
  printf 'GGUF'; le32 3; le64 1; le64 0
  le64 1; printf 'w'; le32 2; le64 256; le64 2; le32 39; le64 0
  head -c $((32 - (24 + 41) % 32)) /dev/zero; head -c 64 /dev/zero
} >"$tmp/tl2.gguf"
run "$tmp/tl2.gguf" --tensors
[ "$rc" = 0 ] || fail "tl2: exit $rc: $err"
expect_in tl2 "$out" "TL2"
expect_in tl2 "$out" "size unknown"
expect_in tl2 "$out" "bits per weight: unknown"

# ---- corrupted files -------------------------------------------------------------------------
expect_error() { # expect_error NAME FILE
  run "$2"
  if [ "$rc" != 1 ]; then fail "$1: exit $rc (expected 1)"; return; fi
  case "$err" in "bitnet: info: "*) ;; *) fail "$1: stderr '$err'" ;; esac
  [ -z "$out" ] || fail "$1: printed to stdout"
}

src="$data/reference/V1/model.gguf"
size=$(stat -c %s "$src")
for n in 0 1 3 4 7 8 15 16 23 24 25 40 100 761 762 1000 5000 12000 12895 12896 12897 20000 300000 $((size - 1)); do
  head -c "$n" "$src" >"$tmp/cut.gguf"
  expect_error "cut at $n" "$tmp/cut.gguf"
done

# set_bytes FILE OFFSET HEX...: overwrite bytes in place
set_bytes() {
  local f=$1 off=$2; shift 2
  local s=""
  for h in "$@"; do s="$s\\x$h"; done
  printf "$s" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
corrupt() { # corrupt NAME OFFSET HEX...
  local name=$1; shift
  cp "$src" "$tmp/bad.gguf"
  set_bytes "$tmp/bad.gguf" "$@"
  expect_error "$name" "$tmp/bad.gguf"
  case "$err" in *"at byte"*) ;; *) fail "$name: message lacks a byte offset: $err" ;; esac
  [ -n "${VERBOSE:-}" ] && echo "$name: $err"
}
corrupt "magic" 0 47 47 55 58
corrupt "version 1" 4 01
corrupt "version 9" 4 09
corrupt "tensor count 2^64-1" 8 ff ff ff ff ff ff ff ff
corrupt "key count 2^64-1" 16 ff ff ff ff ff ff ff ff
corrupt "key count +1000" 16 e8 03
corrupt "first key length huge" 24 ff ff ff ff ff ff ff 7f
corrupt "first value type 200" 52 c8
corrupt "token array length huge" 766 ff ff ff ff ff ff ff 0f

# a tensor's type byte and offset: find the first tensor info by its name
off=$(grep -obUa "token_embd.weight" "$src" | head -1 | cut -d: -f1)
corrupt "tensor type 99" $((off + 17 + 4 + 16)) 63
corrupt "tensor offset misaligned" $((off + 17 + 4 + 16 + 4)) 01
corrupt "tensor offset past end" $((off + 17 + 4 + 16 + 4 + 4)) 00 01
corrupt "tensor dims 9" $((off + 17)) 09
corrupt "tensor dim overflow" $((off + 17 + 4)) 00 00 00 00 00 00 00 40

if [ "$fails" != 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all bitnet info checks passed"
