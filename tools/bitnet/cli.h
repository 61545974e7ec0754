/* The bitnet command-line program: one file per subcommand (cmd_<name>.c), each exporting
 * int cmd_<name>(int argc, char **argv) with argv[0] = the subcommand name.  Exit codes:
 * 0 success, 1 failure (message on stderr), 2 bad usage. */
#ifndef BITNET_CLI_H
#define BITNET_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Shared helpers (cli_util.c). */
/* Prints "bitnet: <what>: <bitnet_last_error()>" to stderr and returns 1. */
int cli_fail(const char *what);
/* Parses an int/float option value; prints an error naming the option and returns false if bad. */
bool cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *opt, const char *s, double *out);
/* Parses a --kv value ("f16" or "f32"); prints an error and returns false if bad. */
bool cli_parse_kv(const char *s, bitnet_kv_type *kv_type);
/* Parses a --head value ("q8_0", or "keep" for the stored type) into a ggml type id. */
bool cli_parse_head(const char *s, uint32_t *type);
/* Reads a whole file (or stdin for "-") into a NUL-terminated malloc'd buffer. */
char *cli_read_file(const char *path, size_t *len);
/* Writes a file atomically (temp file beside it, fsync, rename); prints the error and returns false. */
bool cli_write_file_atomic(const char *path, const void *data, size_t len);
/* Seconds on a monotonic clock. */
double cli_now(void);
/* The model a -m argument names: NULL = the bundled model; "hf:OWNER/NAME/FILE" = downloaded to
 * the cache on first use.  Prints why and returns NULL on failure.  Static storage. */
const char *cli_model_path(const char *ref);
/* The bundled model (models/bitnet-kjv-tiny.gguf) next to the install prefix or the source tree;
 * NULL if not found.  Static storage. */
const char *cli_default_model(void);

#endif
