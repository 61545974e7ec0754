#!/usr/bin/env bash
# `cmake --install` into a temporary prefix gives a usable library: a program finds it through
# pkg-config and through the CMake package, and the installed bitnet finds the bundled model.
# Usage: test_install.sh BITNET   (BITNET_BINARY_DIR / BITNET_SOURCE_DIR from CTest)
set -eu
B=${BITNET_BINARY_DIR:?}
S=${BITNET_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cmake --install "$B" --prefix "$T/prefix" >/dev/null
export PKG_CONFIG_PATH=$T/prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc -std=c11 "$S/examples/simple.c" $(pkg-config --cflags --libs bitnet) -Wl,-rpath,"$T/prefix/lib" -o "$T/simple"
out=$("$T/simple" "$S/tests/data/gguf/stories260K.gguf" "Once upon a time")
case "$out" in "Once upon a time, there was a little girl"*) echo "ok   pkg-config build runs" ;; *) echo "FAIL pkg-config: $out"; exit 1 ;; esac
mkdir -p "$T/proj"
cat >"$T/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(use_bitnet C)
find_package(bitnet REQUIRED)
add_executable(simple "$S/examples/simple.c")
target_link_libraries(simple PRIVATE bitnet::bitnet_shared)
CM
cmake -S "$T/proj" -B "$T/proj/build" -DCMAKE_PREFIX_PATH="$T/prefix" >/dev/null
cmake --build "$T/proj/build" >/dev/null
if LD_LIBRARY_PATH=$T/prefix/lib "$T/proj/build/simple" "$S/tests/data/gguf/stories260K.gguf" "Once" >/dev/null; then
  echo "ok   CMake package build runs"
else
  echo "FAIL CMake package build"; exit 1
fi
if "$T/prefix/bin/bitnet" info | grep -q "bundled model found at $T/prefix/share/bitnet/models/bitnet-kjv-tiny.gguf"; then
  echo "ok   installed bitnet finds the installed bundled model"
else
  echo "FAIL installed bitnet does not find the installed model"; exit 1
fi
