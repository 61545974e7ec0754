#!/usr/bin/env bash
# Installs the Debian packages the build and tests need (as root), or prints the exact
# apt-get line and fails (as another user).  `make deps` runs this; `make run`/`make test` call it.
set -eu
pkgs=(
  build-essential cmake pkg-config                 # compiler and build
  libcmocka-dev                                    # unit tests
  libcjson-dev                                     # JSON (tools, Hugging Face formats)
  libmicrohttpd-dev                                # HTTP server
  libcurl4-openssl-dev libssl-dev                  # downloader, SHA-256
  clang lld libclang-rt-14-dev                     # fuzzing (libFuzzer) and clang builds
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # NEON kernels, tested under emulation
  wasi-libc libclang-rt-14-dev-wasm32 nodejs       # WASM SIMD128 kernels (clang + lld), tested under Node
  unicode-data                                     # tokenizer tables are generated from it
  python3 python3-numpy                            # cross-check scripts
)
[ "${1:-}" = "--list" ] && { printf '%s\n' "${pkgs[@]}"; exit 0; }
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps: missing packages. Install them with:"
  echo "  sudo apt-get install -y ${missing[*]}"
  exit 1
fi
