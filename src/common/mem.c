#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void *bn_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) bn_error(BN_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *bn_calloc(size_t n, size_t size)
{
    size_t total;
    if (bn_mul_overflow(n, size, &total)) {
        bn_error(BN_ERR_NOMEM, "allocation size overflows (%zu x %zu)", n, size);
        return NULL;
    }
    void *p = calloc(total ? n : 1, total ? size : 1);
    if (!p) bn_error(BN_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *bn_realloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (!p) bn_error(BN_ERR_NOMEM, "out of memory reallocating to %zu bytes", size);
    return p;
}

void bn_free(void *p) { free(p); }

void *bn_aligned_alloc(size_t size, size_t align)
{
    void *p = NULL;
    size_t rounded;
    if (bn_add_overflow(size, align - 1, &rounded)) {
        bn_error(BN_ERR_NOMEM, "allocation size overflows (%zu)", size);
        return NULL;
    }
    rounded &= ~(align - 1);
    if (posix_memalign(&p, align, rounded ? rounded : align) != 0) {
        bn_error(BN_ERR_NOMEM, "out of memory allocating %zu aligned bytes", size);
        return NULL;
    }
    return p;
}

void bn_aligned_free(void *p) { free(p); }

char *bn_strndup(const char *s, size_t n)
{
    char *d = bn_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *bn_strdup(const char *s) { return bn_strndup(s, strlen(s)); }
