#!/bin/bash
# Cross-builds the kernel tests for AArch64 (quant, kernels and the parts of common they need, with
# the NEON kernels) and runs them under qemu-user, once on a CPU without dotprod (cortex-a72) and
# once with it (max).  Exits 77 (CTest: skipped) when the cross compiler or qemu is missing.
#   neon_qemu.sh <source dir> <output dir>
set -eu
SRC=$1
OUT=$2
CC=${BITNET_AARCH64_CC:-aarch64-linux-gnu-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not found (Debian: apt-get install gcc-aarch64-linux-gnu)"
    exit 77
fi
if ! command -v qemu-aarch64 >/dev/null 2>&1; then
    echo "SKIP: qemu-aarch64 not found (Debian: apt-get install qemu-user)"
    exit 77
fi
mkdir -p "$OUT"
"$CC" -std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Werror \
    -ffp-contract=off -static -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DBN_HAVE_NEON \
    -I"$SRC/tests/kernels/cross" -I"$SRC/src" -I"$SRC/include" \
    -o "$OUT/test_kernels_aarch64" \
    "$SRC/src/common/error.c" "$SRC/src/common/mem.c" "$SRC/src/common/threadpool.c" "$SRC/src/gguf/types.c" \
    "$SRC/src/quant/quant.c" "$SRC/src/kernels/kernels.c" "$SRC/src/kernels/kernels_ref.c" "$SRC/src/kernels/cpu.c" \
    "$SRC/src/kernels/kernels_neon.c" "$SRC/tests/kernels/test_kernels.c" -lm -lpthread
for cpu in cortex-a72 max; do
    echo "== qemu-aarch64 -cpu $cpu"
    qemu-aarch64 -cpu "$cpu" "$OUT/test_kernels_aarch64"
done
