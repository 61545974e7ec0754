#!/usr/bin/env bash
# Checks the architecture's one direction of dependency (docs/architecture.md): every
# #include "module/..." in src/<module>/ must name a module that layer may use, only src/api
# includes the public header, only src/hf and src/safetensors use cJSON, and tools/ include
# nothing of src/.  Usage: check-layers.sh [BITNET_BINARY] SOURCE_DIR   (CTest passes both)
set -u
root=${!#}
cd "$root" || exit 2

declare -A allow=(
  [common]="common"
  [gguf]="common gguf"
  [safetensors]="common safetensors"
  [quant]="common gguf quant"
  [kernels]="common gguf quant kernels"
  [model]="common gguf safetensors quant kernels model"
  [tokenizer]="common gguf tokenizer"
  [sampling]="common sampling"
  [chat]="common tokenizer chat"
  [engine]="common gguf quant kernels model tokenizer sampling engine"
  [hf]="common gguf safetensors quant kernels model tokenizer hf"
  [api]="common gguf safetensors quant kernels model tokenizer sampling chat engine hf api"
)

bad=0
for dir in src/*/; do
  mod=$(basename "$dir")
  if [ -z "${allow[$mod]+x}" ]; then
    echo "check-layers: src/$mod is not a known module; add it to scripts/check-layers.sh and docs/architecture.md"
    bad=1
    continue
  fi
  while IFS= read -r hit; do
    file=${hit%%:*}
    inc=$(sed -E 's/.*#[[:space:]]*include[[:space:]]*[<"]([^">]+)[">].*/\1/' <<<"$hit")
    case "$inc" in
      bitnet.h)
        [ "$mod" = api ] || { echo "check-layers: $file includes the public header (only src/api may)"; bad=1; } ;;
      cjson/*)
        case "$mod" in hf|safetensors) ;; *) echo "check-layers: $file uses cJSON (only src/hf and src/safetensors may)"; bad=1 ;; esac ;;
      */*)
        dep=${inc%%/*}
        if [ -d "src/$dep" ] && ! grep -qw -- "$dep" <<<"${allow[$mod]}"; then
          echo "check-layers: $file includes $inc, but $mod may not depend on $dep"
          bad=1
        fi ;;
    esac
  done < <(grep -HnE '^[[:space:]]*#[[:space:]]*include' "$dir"*.[ch] 2>/dev/null)
done

# Tools and examples see only the public API.
while IFS= read -r hit; do
  file=${hit%%:*}
  inc=$(sed -E 's/.*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$hit")
  dep=${inc%%/*}
  if [ "$inc" != "$dep" ] && [ -d "src/$dep" ]; then
    echo "check-layers: $file includes $inc; tools and examples may use only bitnet.h"
    bad=1
  fi
done < <(grep -rHnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' tools examples --include='*.c' --include='*.h' 2>/dev/null)

[ $bad -eq 0 ] && echo "check-layers: ok"
exit $bad
