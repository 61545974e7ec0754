#!/usr/bin/env bash
# bitnet tokenize / detokenize end to end.  Usage: test_cli_tokenize.sh BITNET_BINARY
set -u
bin=$1
data=${BITNET_TEST_DATA:?}/tokenizer
gguf=${BITNET_TEST_DATA}/gguf
fail=0
check() { # name expected actual
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=1; else echo "ok $1"; fi
}

check "ids with BOS" "128000 9906 1917" "$("$bin" tokenize -m "$data/tokenizer.json" --ids-only "Hello world")"
check "no BOS" "9906 1917" "$("$bin" tokenize -m "$data/tokenizer.model" --no-bos --ids-only Hello world)"
check "special parsed" "9906 128009" "$("$bin" tokenize -m "$data/tokenizer.json" --no-bos --parse-special --ids-only 'Hello<|eot_id|>')"
check "stdin" "9906 1917" "$(printf 'Hello world' | "$bin" tokenize -m "$data/tokenizer.json" --no-bos --ids-only)"
printf 'Hello world' > "${TMPDIR:-/tmp}/bn-cli-tok-$$.txt"
check "-f FILE" "9906 1917" "$("$bin" tokenize -m "$data/tokenizer.json" --no-bos --ids-only -f "${TMPDIR:-/tmp}/bn-cli-tok-$$.txt")"
rm -f "${TMPDIR:-/tmp}/bn-cli-tok-$$.txt"
check "--show" "$(printf '128000\t<|begin_of_text|>\n9906\tHello\n198\t\\n')" \
  "$("$bin" tokenize -m "$data/tokenizer.json" --show --ids-only $'Hello\n')"
check "SPM GGUF" "1 15043 3186" "$("$bin" tokenize -m "$gguf/ggml-vocab-llama-spm.gguf" --ids-only 'Hello world')"
check "count on stderr" "2 tokens" "$("$bin" tokenize -m "$data/tokenizer.json" --no-bos 'Hello world' 2>&1 >/dev/null)"
check "detokenize" "Hello world" "$("$bin" detokenize -m "$data/tokenizer.json" 128000 9906 1917)"
check "detokenize --special" "<|begin_of_text|>Hello world" "$("$bin" detokenize -m "$data/tokenizer.json" --special 128000 9906,1917)"
check "detokenize stdin" "Hello world" "$(echo '15043 3186' | "$bin" detokenize -m "$gguf/ggml-vocab-llama-spm.gguf")"

"$bin" tokenize -m "$data/tokenizer.json" --bogus x >/dev/null 2>&1; check "bad option exit" 2 $?
"$bin" tokenize -m "$data/tokenizer.json" --pretok nope x >/dev/null 2>&1; check "bad pretok exit" 2 $?
"$bin" tokenize -m "$data/missing.json" x >/dev/null 2>&1; check "missing file exit" 1 $?
"$bin" detokenize -m "$data/tokenizer.json" 12x >/dev/null 2>&1; check "bad id exit" 2 $?
"$bin" detokenize -m "$data/tokenizer.json" 999999 >/dev/null 2>&1; check "id out of range exit" 1 $?
"$bin" tokenize --help | grep -q -- --parse-special; check "help" 0 $?
exit $fail
