/* Allocation and overflow-checked size arithmetic.  Every size computed from file contents goes
 * through these so a hostile file cannot wrap an allocation size. */
#ifndef BN_COMMON_MEM_H
#define BN_COMMON_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* true on overflow; *out is then unspecified */
static inline bool bn_mul_overflow(size_t a, size_t b, size_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_mul_overflow(a, b, out);
#else
    if (a != 0 && b > SIZE_MAX / a) return true;
    *out = a * b;
    return false;
#endif
}

static inline bool bn_add_overflow(size_t a, size_t b, size_t *out)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_add_overflow(a, b, out);
#else
    if (b > SIZE_MAX - a) return true;
    *out = a + b;
    return false;
#endif
}

/* malloc/calloc/realloc that record a message (BN_ERR_NOMEM) on failure and return NULL. */
void *bn_malloc(size_t size);
void *bn_calloc(size_t n, size_t size);
void *bn_realloc(void *p, size_t size);
void bn_free(void *p);

/* Memory aligned to `align` (a power of two, >= sizeof(void*)); free with bn_aligned_free. */
void *bn_aligned_alloc(size_t size, size_t align);
void bn_aligned_free(void *p);

/* strdup / strndup that record BN_ERR_NOMEM on failure. */
char *bn_strdup(const char *s);
char *bn_strndup(const char *s, size_t n);

#endif
