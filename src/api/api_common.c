/* Public API: status, errors, version. */
#include "bitnet.h"
#include "common/error.h"

/* The public and internal status enums must agree value for value. */
_Static_assert((int)BITNET_OK == (int)BN_OK, "status mismatch");
_Static_assert((int)BITNET_ERR_INVALID_ARG == (int)BN_ERR_INVALID_ARG, "status mismatch");
_Static_assert((int)BITNET_ERR_IO == (int)BN_ERR_IO, "status mismatch");
_Static_assert((int)BITNET_ERR_FORMAT == (int)BN_ERR_FORMAT, "status mismatch");
_Static_assert((int)BITNET_ERR_NOMEM == (int)BN_ERR_NOMEM, "status mismatch");
_Static_assert((int)BITNET_ERR_UNSUPPORTED == (int)BN_ERR_UNSUPPORTED, "status mismatch");
_Static_assert((int)BITNET_ERR_RANGE == (int)BN_ERR_RANGE, "status mismatch");
_Static_assert((int)BITNET_ERR_NOT_FOUND == (int)BN_ERR_NOT_FOUND, "status mismatch");
_Static_assert((int)BITNET_ERR_CANCELLED == (int)BN_ERR_CANCELLED, "status mismatch");
_Static_assert((int)BITNET_ERR_STATE == (int)BN_ERR_STATE, "status mismatch");
_Static_assert((int)BITNET_ERR_INTERNAL == (int)BN_ERR_INTERNAL, "status mismatch");

#define BN_STR2(x) #x
#define BN_STR(x) BN_STR2(x)

const char *bitnet_last_error(void) { return bn_last_error(); }
const char *bitnet_status_string(bitnet_status status) { return bn_status_string((bn_status)status); }
const char *bitnet_version(void)
{
    return BN_STR(BITNET_VERSION_MAJOR) "." BN_STR(BITNET_VERSION_MINOR) "." BN_STR(BITNET_VERSION_PATCH);
}
