/* Error reporting: the library never prints.  A failing function records a readable message in a
 * per-thread buffer and returns its status; bitnet_last_error() reads the buffer. */
#ifndef BN_COMMON_ERROR_H
#define BN_COMMON_ERROR_H

#include "common/status.h"

#if defined(__GNUC__) || defined(__clang__)
#define BN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BN_PRINTF(f, a)
#endif

/* Records a message for status st and returns st, so callers can write `return bn_error(...)`. */
bn_status bn_error(bn_status st, const char *fmt, ...) BN_PRINTF(2, 3);

/* Prepends context ("loading model.gguf: ") to the current message; returns st unchanged. */
bn_status bn_error_prefix(bn_status st, const char *fmt, ...) BN_PRINTF(2, 3);

/* The last message recorded on this thread ("" when none). Valid until the next error. */
const char *bn_last_error(void);
bn_status bn_last_status(void);
void bn_error_clear(void);

const char *bn_status_string(bn_status st);

#endif
