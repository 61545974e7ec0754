# `bitnet serve` (cmd_serve.c, server_*.c): libmicrohttpd for HTTP.  Only the tools link it.
# bitnet-server is the same server as a program of its own; its main is kept out of `bitnet`.
pkg_check_modules(TOOL_MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
target_link_libraries(bitnet PRIVATE PkgConfig::TOOL_MHD)
file(GLOB BITNET_SERVER_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/server_*.c)
list(FILTER BITNET_SERVER_SOURCES EXCLUDE REGEX "server_main\\.c$")
add_executable(bitnet-server ${CMAKE_CURRENT_SOURCE_DIR}/server_main.c ${BITNET_SERVER_SOURCES}
  ${CMAKE_CURRENT_SOURCE_DIR}/cmd_serve.c ${CMAKE_CURRENT_SOURCE_DIR}/cli_util.c)
target_link_libraries(bitnet-server PRIVATE bitnet_static PkgConfig::TOOL_CJSON PkgConfig::TOOL_MHD Threads::Threads m)
install(TARGETS bitnet-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
