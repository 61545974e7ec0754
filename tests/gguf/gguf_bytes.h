/* Builds GGUF files byte by byte for tests, so malformed files can be made exactly (the library's
 * writer only makes valid ones). */
#ifndef TEST_GGUF_BYTES_H
#define TEST_GGUF_BYTES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t n, cap;
} gb;

static inline void gb_raw(gb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void gb_u8(gb *b, uint8_t v) { gb_raw(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; gb_raw(b, x, 2); }
static inline void gb_u32(gb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    gb_raw(b, x, 4);
}
static inline void gb_u64(gb *b, uint64_t v) { gb_u32(b, (uint32_t)v); gb_u32(b, (uint32_t)(v >> 32)); }
static inline void gb_f32(gb *b, float f) { uint32_t u; memcpy(&u, &f, 4); gb_u32(b, u); }
static inline void gb_str(gb *b, const char *s) { gb_u64(b, strlen(s)); gb_raw(b, s, strlen(s)); }
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_raw(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* key + type; the caller appends the value */
static inline void gb_key(gb *b, const char *key, uint32_t type) { gb_str(b, key); gb_u32(b, type); }
static inline void gb_kv_u32(gb *b, const char *key, uint32_t v) { gb_key(b, key, 4); gb_u32(b, v); }
static inline void gb_kv_str(gb *b, const char *key, const char *v) { gb_key(b, key, 8); gb_str(b, v); }
/* a tensor info with up to 4 dims */
static inline void gb_tensor(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, off);
}
static inline void gb_pad(gb *b, size_t align)
{
    while (b->n % align) gb_u8(b, 0);
}
static inline void gb_free(gb *b) { free(b->p); memset(b, 0, sizeof *b); }

/* A small valid v3 file: 4 keys (one a string array), two tensors (F32 [4,2] and F16 [8]), data
 * filled with a byte pattern.  Every truncation of it is invalid. */
static inline void gb_small_model(gb *b)
{
    gb_header(b, 3, 2, 4);
    gb_kv_str(b, "general.architecture", "llama");
    gb_kv_u32(b, "llama.block_count", 1);
    gb_key(b, "tokenizer.ggml.tokens", 9);
    gb_u32(b, 8);
    gb_u64(b, 3);
    gb_str(b, "a");
    gb_str(b, "bc");
    gb_str(b, "");
    gb_key(b, "general.alignment", 4);
    gb_u32(b, 16);
    uint64_t ne0[2] = {4, 2}, ne1[1] = {8};
    gb_tensor(b, "w", 2, ne0, 0, 0);
    gb_tensor(b, "v", 1, ne1, 1, 32);
    gb_pad(b, 16);
    for (int i = 0; i < 48; i++) gb_u8(b, (uint8_t)(i * 7 + 1));
}

#endif
