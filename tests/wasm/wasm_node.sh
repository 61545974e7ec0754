#!/bin/bash
# Builds the kernel test for wasm32-wasi with SIMD128 (a CMake sub-build with
# cmake/wasm32-wasi.cmake) and runs it under Node's WASI: once in full, then the dispatcher's
# choice with BITNET_KERNELS unset, =wasm and =ref.  Exits 77 (CTest: skipped), saying why, when
# clang cannot build for wasm32-wasi (clang, lld, wasi-libc, libclang-rt-14-dev-wasm32) or Node
# is missing.
#   wasm_node.sh <source dir> <output dir>
set -eu
SRC=$1
OUT=$2
CC=${BITNET_WASM_CC:-clang}
NODE=${BITNET_NODE:-node}
skip() {
    echo "SKIP: $* (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 nodejs; or make deps)"
    exit 77
}
command -v "$CC" >/dev/null 2>&1 || skip "$CC not found"
command -v "$NODE" >/dev/null 2>&1 || skip "$NODE not found"
mkdir -p "$OUT"
# Can this clang link a WASI program with SIMD128?  (needs wasm-ld, wasi-libc and the wasm32 builtins)
printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' >"$OUT/probe.c"
if ! "$CC" --target=wasm32-wasi -msimd128 -o "$OUT/probe.wasm" "$OUT/probe.c" >"$OUT/probe.log" 2>&1; then
    cat "$OUT/probe.log"
    skip "$CC cannot build wasm32-wasi programs"
fi
NODE_FLAGS=(--experimental-wasi-unstable-preview1 --no-warnings)
"$NODE" "${NODE_FLAGS[@]}" "$SRC/tests/wasm/run_wasi.mjs" "$OUT/probe.wasm" >/dev/null 2>&1 ||
    skip "$NODE cannot run WASI modules (Node 18 or later is needed)"

cmake -S "$SRC/tests/wasm/target" -B "$OUT/build" -DCMAKE_TOOLCHAIN_FILE="$SRC/cmake/wasm32-wasi.cmake" \
    -DBITNET_WASM_CC="$CC" -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1 || {
    cat "$OUT/configure.log"
    exit 1
}
cmake --build "$OUT/build"
WASM=$OUT/build/test_kernels_wasm.wasm
run() { "$NODE" "${NODE_FLAGS[@]}" "$SRC/tests/wasm/run_wasi.mjs" "$WASM" "$@"; }

unset BITNET_KERNELS
echo "== dispatch: BITNET_KERNELS unset, =wasm, =ref"
run --dispatch-only --expect-active wasm
BITNET_KERNELS=wasm run --dispatch-only --expect-active wasm
BITNET_KERNELS=ref run --dispatch-only --expect-active ref
echo "== every wasm kernel against the reference"
run
