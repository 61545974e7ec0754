# Dependencies of `bitnet download` (download.c): libcurl for HTTP(S), libcrypto for SHA-256.
# Only the tool links them; the library never does.
pkg_check_modules(TOOL_CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(TOOL_CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
target_link_libraries(bitnet PRIVATE PkgConfig::TOOL_CURL PkgConfig::TOOL_CRYPTO)
