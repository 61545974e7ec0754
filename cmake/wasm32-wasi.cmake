# CMake toolchain for WebAssembly (wasm32-wasi) with SIMD128, using clang, wasm-ld (lld) and
# wasi-libc.  Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (clang then
# finds wasi-libc under /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi by itself).  With
# wasi-sdk or another libc location, pass -DWASI_SYSROOT=/path/to/wasi-sysroot.
#   cmake -S <dir> -B <build> -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi.cmake
# SIMD128 is a property of the whole module (an engine without it rejects the module; there is no
# run-time detection), so every file is built with -msimd128.  Plain SIMD128 only: relaxed-SIMD
# results may differ between engines, which would break the kernels' bit-exactness.
set(CMAKE_SYSTEM_NAME Generic) # CMake before 3.27 knows no "WASI" platform
set(CMAKE_SYSTEM_PROCESSOR wasm32)


if(NOT DEFINED BITNET_WASM_CC)
  set(BITNET_WASM_CC clang)
endif()
set(CMAKE_C_COMPILER ${BITNET_WASM_CC})
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(WASI_SYSROOT "" CACHE PATH "wasi-libc sysroot (empty: the compiler's default)")
if(WASI_SYSROOT)
  set(CMAKE_SYSROOT ${WASI_SYSROOT})
endif()
set(CMAKE_C_FLAGS_INIT "-msimd128")
# try_compile builds a static library, so checks do not depend on linking a WASI program.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
