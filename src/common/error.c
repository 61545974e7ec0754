#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BN_ERROR_MAX 1024

static _Thread_local char tls_msg[BN_ERROR_MAX];
static _Thread_local bn_status tls_status;

bn_status bn_error(bn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    tls_status = st;
    return st;
}

bn_status bn_error_prefix(bn_status st, const char *fmt, ...)
{
    char prefix[BN_ERROR_MAX];
    char old[BN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tls_msg, sizeof old);
    size_t np = strlen(prefix);
    memcpy(tls_msg, prefix, np + 1);
    if (np + 1 < sizeof tls_msg) {
        size_t room = sizeof tls_msg - np - 1;
        size_t no = strnlen(old, room);
        memcpy(tls_msg + np, old, no);
        tls_msg[np + no] = '\0';
    }
    tls_status = st;
    return st;
}

const char *bn_last_error(void) { return tls_msg; }
bn_status bn_last_status(void) { return tls_status; }

void bn_error_clear(void)
{
    tls_msg[0] = '\0';
    tls_status = BN_OK;
}

const char *bn_status_string(bn_status st)
{
    switch (st) {
    case BN_OK: return "ok";
    case BN_ERR_INVALID_ARG: return "invalid argument";
    case BN_ERR_IO: return "input/output error";
    case BN_ERR_FORMAT: return "malformed input";
    case BN_ERR_NOMEM: return "out of memory";
    case BN_ERR_UNSUPPORTED: return "unsupported";
    case BN_ERR_RANGE: return "out of range";
    case BN_ERR_NOT_FOUND: return "not found";
    case BN_ERR_CANCELLED: return "cancelled";
    case BN_ERR_STATE: return "invalid state";
    case BN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
