/* Status codes shared by every layer.  The public enum bitnet_status (include/bitnet.h) has the
 * same values; src/api checks that at compile time. */
#ifndef BN_COMMON_STATUS_H
#define BN_COMMON_STATUS_H

typedef enum bn_status {
    BN_OK = 0,
    BN_ERR_INVALID_ARG = 1, /* a caller passed a bad argument */
    BN_ERR_IO = 2,          /* open/read/write/rename failed */
    BN_ERR_FORMAT = 3,      /* the input file or text is malformed */
    BN_ERR_NOMEM = 4,       /* an allocation failed or would exceed a limit */
    BN_ERR_UNSUPPORTED = 5, /* well-formed, but a feature we do not implement */
    BN_ERR_RANGE = 6,       /* a size or index out of range (e.g. context overflow) */
    BN_ERR_NOT_FOUND = 7,   /* a key, tensor or token that was asked for is absent */
    BN_ERR_CANCELLED = 8,   /* a callback asked to stop */
    BN_ERR_STATE = 9,       /* the object is not in a state that allows the call */
    BN_ERR_INTERNAL = 10    /* a bug: an invariant did not hold */
} bn_status;

#endif
