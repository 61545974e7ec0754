/* GGUF v2/v3 reader.  See gguf.h for the contract and docs/gguf.md for what is validated.
 *
 * Metadata is parsed in two passes over the mapping: the first validates every byte and counts
 * the array bookkeeping needed (nodes for arrays, offsets for string elements); the second, after
 * one exact allocation, fills it in.  So nothing is allocated from a count before the file has
 * been shown to hold that many elements, and heap use stays linear in the file size. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"
#include "gguf/gguf.h"

#define MAX_ARRAY_DEPTH 8  /* nested arrays deeper than this are refused (no real file nests at all) */
#define MAX_KEY_LEN 65535  /* the GGUF specification's limit */

/* Bookkeeping for one array value, wherever it sits: scalars are read in place; string
 * elements through their offsets; nested arrays through their own nodes. */
typedef struct arr_node {
    const uint8_t *elems;             /* first element in the mapping */
    const uint64_t *str_offs;         /* STRING arrays: offset of each element from elems */
    const struct arr_node *children;  /* ARRAY arrays: one node per element */
} arr_node;

typedef struct gguf_kv {
    bn_gguf_str key;
    bn_gguf_value val;
} gguf_kv;

struct bn_gguf {
    bn_mapfile mf;
    bool owns_map;
    void *owned_buf; /* bn_gguf_own_buffer */
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gguf_kv *kvs;
    uint32_t *kv_order; /* kv indices sorted by key, for lookup */
    int64_t n_tensors;
    bn_gguf_tensor *tensors;
    uint32_t *t_order;  /* tensor indices sorted by name */
    arr_node *nodes;
    uint64_t *offs;
    size_t heap_bytes;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *const vtype_names[BN_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *bn_gguf_vtype_name(bn_gguf_vtype t)
{
    return (unsigned)t < BN_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

/* Bytes of a fixed-size scalar; 0 for strings and arrays. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case BN_GGUF_U8: case BN_GGUF_I8: case BN_GGUF_BOOL: return 1;
    case BN_GGUF_U16: case BN_GGUF_I16: return 2;
    case BN_GGUF_U32: case BN_GGUF_I32: case BN_GGUF_F32: return 4;
    case BN_GGUF_U64: case BN_GGUF_I64: case BN_GGUF_F64: return 8;
    default: return 0;
    }
}

/* The fewest bytes one element of type t can occupy. */
static size_t min_elem_size(uint32_t t)
{
    if (t == BN_GGUF_STRING) return 8;
    if (t == BN_GGUF_ARRAY) return 12;
    return scalar_size(t);
}

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* Decodes a fixed-size scalar at p into v (type already set). */
static void decode_scalar(const uint8_t *p, bn_gguf_value *v)
{
    switch (v->type) {
    case BN_GGUF_U8: case BN_GGUF_BOOL: v->v.u = p[0]; break;
    case BN_GGUF_I8: v->v.i = (int8_t)p[0]; break;
    case BN_GGUF_U16: v->v.u = ld16(p); break;
    case BN_GGUF_I16: v->v.i = (int16_t)ld16(p); break;
    case BN_GGUF_U32: v->v.u = ld32(p); break;
    case BN_GGUF_I32: v->v.i = (int32_t)ld32(p); break;
    case BN_GGUF_U64: v->v.u = ld64(p); break;
    case BN_GGUF_I64: v->v.i = (int64_t)ld64(p); break;
    case BN_GGUF_F32: { float f; uint32_t u = ld32(p); memcpy(&f, &u, 4); v->v.f = f; break; }
    case BN_GGUF_F64: { double d; uint64_t u = ld64(p); memcpy(&d, &u, 8); v->v.f = d; break; }
    default: break;
    }
}

/* Writes s into buf for messages: printable ASCII kept, other bytes as \xNN, long names cut. */
static const char *quote(bn_gguf_str s, char *buf, size_t cap)
{
    size_t o = 0;
    for (uint64_t i = 0; i < s.len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (o + 12 >= cap && i + 1 < s.len) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* a * b for non-negative a, b; true on overflow */
static bool i64_mul_overflow(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a) return true;
    *out = a * b;
    return false;
}

static int str_cmp(bn_gguf_str a, bn_gguf_str b)
{
    size_t n = a.len < b.len ? (size_t)a.len : (size_t)b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Heapsort of indices with a comparison that sees a context (qsort has none in C11); no
 * recursion and O(n log n) whatever the input. */
typedef int (*idx_cmp_fn)(const void *ctx, uint32_t a, uint32_t b);

static void sift_down(uint32_t *ix, size_t root, size_t n, idx_cmp_fn cmp, const void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(ctx, ix[child], ix[child + 1]) < 0) child++;
        if (cmp(ctx, ix[root], ix[child]) >= 0) return;
        uint32_t t = ix[root];
        ix[root] = ix[child];
        ix[child] = t;
        root = child;
    }
}

static void sort_indices(uint32_t *ix, size_t n, idx_cmp_fn cmp, const void *ctx)
{
    for (size_t i = 0; i < n; i++) ix[i] = (uint32_t)i;
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) sift_down(ix, i, n, cmp, ctx);
    for (size_t end = n - 1; end > 0; end--) {
        uint32_t t = ix[0];
        ix[0] = ix[end];
        ix[end] = t;
        sift_down(ix, 0, end, cmp, ctx);
    }
}

static int cmp_kv_key(const void *ctx, uint32_t a, uint32_t b)
{
    const gguf_kv *kv = ctx;
    return str_cmp(kv[a].key, kv[b].key);
}

static int cmp_tensor_name(const void *ctx, uint32_t a, uint32_t b)
{
    const bn_gguf_tensor *t = ctx;
    return str_cmp(t[a].name, t[b].name);
}

static int cmp_tensor_offset(const void *ctx, uint32_t a, uint32_t b)
{
    const bn_gguf_tensor *t = ctx;
    if (t[a].offset != t[b].offset) return t[a].offset < t[b].offset ? -1 : 1;
    return a < b ? -1 : a > b; /* stable, so messages name tensors in file order */
}

/* ---- the parser ---------------------------------------------------------------------------- */

enum section { SEC_HEADER, SEC_KV, SEC_TENSOR };

typedef struct parser {
    const uint8_t *base;
    size_t size;
    size_t pos;
    /* where we are, for messages */
    enum section sec;
    int64_t index;        /* key or tensor index */
    bn_gguf_str name;     /* its key or tensor name, once read */
    int depth;            /* array nesting of the element being read */
    uint64_t elem[MAX_ARRAY_DEPTH];
    /* bookkeeping: counted in the first pass, filled in the second (nodes != NULL) */
    arr_node *nodes;
    size_t n_nodes;
    uint64_t *offs;
    size_t n_offs;
} parser;

/* Records "<where>, at byte N: <what>" as a BN_ERR_FORMAT (or st) error. */
BN_PRINTF(4, 5)
static bn_status fail_st(const parser *p, bn_status st, size_t at, const char *fmt, ...)
{
    char where[256], q[160], what[512];
    size_t o = 0;
    switch (p->sec) {
    case SEC_HEADER: o = (size_t)snprintf(where, sizeof where, "header"); break;
    case SEC_KV:
        o = (size_t)snprintf(where, sizeof where, "metadata key %lld", (long long)p->index);
        if (p->name.ptr) o += (size_t)snprintf(where + o, sizeof where - o, " '%s'", quote(p->name, q, sizeof q));
        break;
    case SEC_TENSOR:
        o = (size_t)snprintf(where, sizeof where, "tensor %lld", (long long)p->index);
        if (p->name.ptr) o += (size_t)snprintf(where + o, sizeof where - o, " '%s'", quote(p->name, q, sizeof q));
        break;
    }
    for (int d = 0; d < p->depth && o < sizeof where; d++)
        o += (size_t)snprintf(where + o, sizeof where - o, " element %llu", (unsigned long long)p->elem[d]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return bn_error(st, "%s, at byte %zu: %s", where, at, what);
}

#define fail(p, at, ...) fail_st(p, BN_ERR_FORMAT, at, __VA_ARGS__)

static size_t remaining(const parser *p) { return p->size - p->pos; }

static bn_status need(parser *p, size_t n, const char *what)
{
    if (n > remaining(p))
        return fail(p, p->pos, "truncated: %s needs %zu bytes, only %zu remain", what, n, remaining(p));
    return BN_OK;
}

static bn_status rd_u32(parser *p, const char *what, uint32_t *out)
{
    bn_status st = need(p, 4, what);
    if (st) return st;
    *out = ld32(p->base + p->pos);
    p->pos += 4;
    return BN_OK;
}

static bn_status rd_u64(parser *p, const char *what, uint64_t *out)
{
    bn_status st = need(p, 8, what);
    if (st) return st;
    *out = ld64(p->base + p->pos);
    p->pos += 8;
    return BN_OK;
}

static bn_status rd_str(parser *p, const char *what, bn_gguf_str *out)
{
    size_t at = p->pos;
    uint64_t len;
    bn_status st = rd_u64(p, what, &len);
    if (st) return st;
    if (len > remaining(p))
        return fail(p, at, "%s length %llu exceeds the %zu bytes left in the file", what, (unsigned long long)len,
                    remaining(p));
    out->ptr = (const char *)p->base + p->pos;
    out->len = len;
    p->pos += (size_t)len;
    return BN_OK;
}

/* Parses the body of an array (element type and count already read at `at`) into node idx. */
static bn_status parse_array_body(parser *p, int depth, size_t idx, uint32_t et, uint64_t n, size_t at)
{
    if (et >= BN_GGUF_VTYPE_COUNT) return fail(p, at, "unknown array element type %u", et);
    size_t min = min_elem_size(et);
    if (n > remaining(p) / min)
        return fail(p, at, "array of %llu %s elements needs at least %llu bytes, only %zu remain",
                    (unsigned long long)n, vtype_names[et],
                    n > UINT64_MAX / min ? UINT64_MAX : (unsigned long long)(n * min), remaining(p));
    if (depth >= MAX_ARRAY_DEPTH) return fail(p, at, "arrays nested deeper than %d levels", MAX_ARRAY_DEPTH);
    size_t start = p->pos;
    arr_node *node = p->nodes ? &p->nodes[idx] : NULL;
    if (node) {
        node->elems = p->base + start;
        node->str_offs = NULL;
        node->children = NULL;
    }
    p->depth = depth + 1;
    bn_status st = BN_OK;
    if (et == BN_GGUF_STRING) {
        size_t first = p->n_offs;
        p->n_offs += (size_t)n;
        if (node) node->str_offs = &p->offs[first];
        for (uint64_t j = 0; j < n && !st; j++) {
            p->elem[depth] = j;
            if (node) p->offs[first + j] = p->pos - start;
            bn_gguf_str s;
            st = rd_str(p, "string", &s);
        }
    } else if (et == BN_GGUF_ARRAY) {
        /* the children's nodes are contiguous; their own descendants are allocated after */
        size_t first = p->n_nodes;
        p->n_nodes += (size_t)n;
        if (node) node->children = &p->nodes[first];
        for (uint64_t j = 0; j < n && !st; j++) {
            p->elem[depth] = j;
            size_t cat = p->pos;
            uint32_t cet;
            uint64_t cn;
            st = rd_u32(p, "array element type", &cet);
            if (!st) st = rd_u64(p, "array length", &cn);
            if (!st) st = parse_array_body(p, depth + 1, first + j, cet, cn, cat);
        }
    } else {
        /* fixed-size scalars: the count check above proved they fit */
        size_t bytes = (size_t)n * min;
        if (et == BN_GGUF_BOOL) {
            for (size_t j = 0; j < bytes; j++) {
                if (p->base[start + j] > 1) {
                    p->elem[depth] = j;
                    return fail(p, start + j, "bool value %u is neither 0 nor 1", p->base[start + j]);
                }
            }
        }
        p->pos += bytes;
    }
    if (!st) p->depth = depth;
    return st;
}

/* Parses one value of type t into *out (NULL in the counting pass). */
static bn_status parse_value(parser *p, uint32_t t, size_t type_at, bn_gguf_value *out)
{
    bn_gguf_value tmp;
    bn_gguf_value *v = out ? out : &tmp;
    memset(v, 0, sizeof *v);
    if (t >= BN_GGUF_VTYPE_COUNT) return fail(p, type_at, "unknown value type %u", t);
    v->type = (bn_gguf_vtype)t;
    bn_status st;
    if (t == BN_GGUF_STRING) return rd_str(p, "string value", &v->v.s);
    if (t == BN_GGUF_ARRAY) {
        size_t at = p->pos;
        uint32_t et;
        uint64_t n;
        if ((st = rd_u32(p, "array element type", &et))) return st;
        if ((st = rd_u64(p, "array length", &n))) return st;
        size_t idx = p->n_nodes++;
        v->v.arr.elem_type = (bn_gguf_vtype)et;
        v->v.arr.n = n;
        v->v.arr.opaque = p->nodes ? &p->nodes[idx] : NULL;
        return parse_array_body(p, 0, idx, et, n, at);
    }
    size_t sz = scalar_size(t);
    if ((st = need(p, sz, "value"))) return st;
    decode_scalar(p->base + p->pos, v);
    if (t == BN_GGUF_BOOL && v->v.u > 1) return fail(p, p->pos, "bool value %u is neither 0 nor 1", (unsigned)v->v.u);
    p->pos += sz;
    return BN_OK;
}

/* One pass over the key/value section, from p->pos.  kvs NULL: validate and count only. */
static bn_status parse_kvs(parser *p, uint64_t n_kv, gguf_kv *kvs)
{
    p->sec = SEC_KV;
    for (uint64_t i = 0; i < n_kv; i++) {
        p->index = (int64_t)i;
        p->name.ptr = NULL;
        p->depth = 0;
        size_t at = p->pos;
        bn_gguf_str key;
        uint32_t t;
        bn_status st = rd_str(p, "key", &key);
        if (st) return st;
        if (key.len == 0) return fail(p, at, "empty key");
        if (key.len > MAX_KEY_LEN) return fail(p, at, "key of %llu bytes (the limit is %d)", (unsigned long long)key.len, MAX_KEY_LEN);
        p->name = key;
        size_t type_at = p->pos;
        if ((st = rd_u32(p, "value type", &t))) return st;
        if ((st = parse_value(p, t, type_at, kvs ? &kvs[i].val : NULL))) return st;
        if (kvs) kvs[i].key = key;
    }
    return BN_OK;
}

static void *heap_alloc(bn_gguf *g, size_t n, size_t size)
{
    size_t bytes;
    if (bn_mul_overflow(n, size, &bytes)) {
        bn_error(BN_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *ptr = bn_calloc(bytes ? bytes : 1, 1);
    if (ptr) g->heap_bytes += bytes;
    return ptr;
}

static bn_status parse_tensor_infos(parser *p, bn_gguf *g, unsigned flags)
{
    p->sec = SEC_TENSOR;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        bn_gguf_tensor *t = &g->tensors[i];
        p->index = i;
        p->name.ptr = NULL;
        bn_status st = rd_str(p, "tensor name", &t->name);
        if (st) return st;
        p->name = t->name;
        size_t at = p->pos;
        if ((st = rd_u32(p, "number of dimensions", &t->n_dims))) return st;
        if (t->n_dims > BN_GGUF_MAX_DIMS)
            return fail(p, at, "%u dimensions (at most %d are allowed)", t->n_dims, BN_GGUF_MAX_DIMS);
        int64_t n_elem = 1;
        for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++) {
            uint64_t ne = 1;
            at = p->pos;
            if (d < t->n_dims && (st = rd_u64(p, "dimension", &ne))) return st;
            if (ne > (uint64_t)INT64_MAX)
                return fail(p, at, "dimension %u is %llu, larger than a signed 64-bit count", d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
            if (i64_mul_overflow(n_elem, t->ne[d], &n_elem))
                return fail(p, at, "the product of the dimensions overflows 64 bits");
        }
        t->n_elem = n_elem;
        at = p->pos;
        if ((st = rd_u32(p, "tensor type", &t->type))) return st;
        const bn_type_traits *tr = bn_type_get(t->type);
        if (!tr) return fail(p, at, "unknown tensor type id %u", t->type);
        size_t nbytes;
        if (bn_type_tensor_nbytes(t->type, t->ne[0], t->n_elem, &nbytes)) {
            t->nbytes = nbytes;
            t->sized = true;
        } else if (tr->block_size == 0) {
            if (!(flags & BN_GGUF_ALLOW_UNSIZED))
                return fail_st(p, BN_ERR_UNSUPPORTED, at,
                               "tensor type %s has no byte size this version knows, so the tensor cannot be read",
                               tr->name);
            t->sized = false; /* nbytes is set to its span once all offsets are known */
        } else if (t->type == BN_TYPE_I2_S ? t->ne[0] % 4 != 0 : t->ne[0] % tr->block_size != 0) {
            return fail(p, at, "row length %lld is not a multiple of the %s block size %lld", (long long)t->ne[0],
                        tr->name, t->type == BN_TYPE_I2_S ? 4LL : (long long)tr->block_size);
        } else {
            return fail(p, at, "byte size of %lld %s elements overflows", (long long)t->n_elem, tr->name);
        }
        at = p->pos;
        if ((st = rd_u64(p, "data offset", &t->offset))) return st;
        if (t->offset % g->alignment)
            return fail(p, at, "data offset %llu is not a multiple of the alignment %u", (unsigned long long)t->offset,
                        g->alignment);
    }
    return BN_OK;
}

/* Tensor data must lie inside the file and not overlap; unsized tensors get their span. */
static bn_status check_tensor_data(parser *p, bn_gguf *g)
{
    size_t n = (size_t)g->n_tensors;
    size_t avail = g->size - g->data_offset;
    uint32_t *by_off = bn_malloc(n ? n * sizeof *by_off : 1);
    if (!by_off) return BN_ERR_NOMEM;
    sort_indices(by_off, n, cmp_tensor_offset, g->tensors);
    bn_status st = BN_OK;
    for (size_t k = 0; k < n && !st; k++) {
        bn_gguf_tensor *t = &g->tensors[by_off[k]];
        p->index = by_off[k];
        p->name = t->name;
        if (t->offset > avail) {
            st = fail(p, g->data_offset, "data offset %llu is past the end of the file (the data section holds %zu bytes)",
                      (unsigned long long)t->offset, avail);
            break;
        }
        if (!t->sized) {
            uint64_t end = k + 1 < n ? g->tensors[by_off[k + 1]].offset : avail;
            if (end > avail) end = avail;
            t->nbytes = (size_t)(end - t->offset);
        } else if (t->nbytes > avail - t->offset) {
            st = fail(p, g->data_offset + (size_t)t->offset,
                      "data of %zu bytes at offset %llu runs past the end of the file (the data section holds %zu bytes)",
                      t->nbytes, (unsigned long long)t->offset, avail);
            break;
        }
        t->data = g->base + g->data_offset + t->offset;
        if (k + 1 < n && t->nbytes > 0) {
            const bn_gguf_tensor *next = &g->tensors[by_off[k + 1]];
            if (t->offset + t->nbytes > next->offset) {
                char q[160];
                st = fail(p, g->data_offset + (size_t)next->offset, "data [%llu, %llu) overlaps tensor %u '%s' at offset %llu",
                          (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes), by_off[k + 1],
                          quote(next->name, q, sizeof q), (unsigned long long)next->offset);
            }
        }
    }
    bn_free(by_off);
    return st;
}

static bn_status parse(bn_gguf *g, unsigned flags)
{
    parser p = {.base = g->base, .size = g->size, .sec = SEC_HEADER};
    bn_status st = need(&p, 4, "magic");
    if (st) return st;
    if (memcmp(g->base, "GGUF", 4) != 0)
        return fail(&p, 0, "bad magic %02x %02x %02x %02x (a GGUF file starts with 'GGUF')", g->base[0], g->base[1],
                    g->base[2], g->base[3]);
    p.pos = 4;
    if ((st = rd_u32(&p, "version", &g->version))) return st;
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1) return fail_st(&p, BN_ERR_UNSUPPORTED, 4, "GGUF version 1 is not supported (only 2 and 3)");
        if ((g->version & 0xffff) == 0)
            return fail_st(&p, BN_ERR_UNSUPPORTED, 4, "big-endian GGUF files are not supported (version field %u)", g->version);
        return fail(&p, 4, "unknown GGUF version %u (only 2 and 3 are known)", g->version);
    }
    uint64_t n_tensors, n_kv;
    if ((st = rd_u64(&p, "tensor count", &n_tensors))) return st;
    if ((st = rd_u64(&p, "metadata key count", &n_kv))) return st;
    /* Each key takes at least 13 bytes, each tensor info at least 24: counts beyond what the file
     * can hold are refused before anything is allocated for them. */
    if (n_kv > remaining(&p) / 13)
        return fail(&p, 16, "metadata key count %llu is more than the %zu remaining bytes can hold",
                    (unsigned long long)n_kv, remaining(&p));
    if (n_tensors > remaining(&p) / 24)
        return fail(&p, 8, "tensor count %llu is more than the %zu remaining bytes can hold",
                    (unsigned long long)n_tensors, remaining(&p));
    if (n_kv > UINT32_MAX || n_tensors > UINT32_MAX)
        return fail_st(&p, BN_ERR_UNSUPPORTED, 8, "more than 2^32-1 keys or tensors");
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;

    /* pass 1: validate the metadata and count the array bookkeeping */
    size_t kv_start = p.pos;
    if ((st = parse_kvs(&p, n_kv, NULL))) return st;
    size_t n_nodes = p.n_nodes, n_offs = p.n_offs;
    if (n_tensors > remaining(&p) / 24) {
        p.sec = SEC_HEADER;
        p.depth = 0;
        return fail(&p, 8, "tensor count %llu is more than the %zu bytes after the metadata can hold",
                    (unsigned long long)n_tensors, remaining(&p));
    }

    /* Per-key, per-tensor and per-nested-array bookkeeping is bounded by a fixed budget as well as
     * by the file size, so no file makes us hold more than its own size (string offsets) plus
     * BN_GGUF_BOOKKEEPING_LIMIT.  Real models need a few hundred KiB. */
    {
        size_t per_kv = sizeof *g->kvs + sizeof *g->kv_order, per_t = sizeof *g->tensors + sizeof *g->t_order;
        double need = (double)n_kv * (double)per_kv + (double)n_tensors * (double)per_t +
                      (double)n_nodes * (double)sizeof *g->nodes;
        if (need > (double)BN_GGUF_BOOKKEEPING_LIMIT)
            return fail_st(&p, BN_ERR_UNSUPPORTED, 8,
                           "%llu keys, %llu tensors and %zu nested arrays need %.0f MiB of bookkeeping, more than "
                           "the %d MiB limit",
                           (unsigned long long)n_kv, (unsigned long long)n_tensors, n_nodes, need / 1048576.0,
                           (int)(BN_GGUF_BOOKKEEPING_LIMIT >> 20));
    }
    g->kvs = heap_alloc(g, (size_t)n_kv, sizeof *g->kvs);
    g->kv_order = heap_alloc(g, (size_t)n_kv, sizeof *g->kv_order);
    g->nodes = heap_alloc(g, n_nodes, sizeof *g->nodes);
    g->offs = heap_alloc(g, n_offs, sizeof *g->offs);
    g->tensors = heap_alloc(g, (size_t)n_tensors, sizeof *g->tensors);
    g->t_order = heap_alloc(g, (size_t)n_tensors, sizeof *g->t_order);
    if (!g->kvs || !g->kv_order || !g->nodes || !g->offs || !g->tensors || !g->t_order) return BN_ERR_NOMEM;

    /* pass 2: the same walk, filling in values and bookkeeping */
    p.pos = kv_start;
    p.nodes = g->nodes;
    p.offs = g->offs;
    p.n_nodes = p.n_offs = 0;
    if ((st = parse_kvs(&p, n_kv, g->kvs))) return st;
    if (p.n_nodes != n_nodes || p.n_offs != n_offs) return bn_error(BN_ERR_INTERNAL, "gguf: passes disagree");

    sort_indices(g->kv_order, (size_t)n_kv, cmp_kv_key, g->kvs);
    p.depth = 0;
    for (size_t k = 1; k < (size_t)n_kv; k++) {
        uint32_t a = g->kv_order[k - 1], b = g->kv_order[k];
        if (str_cmp(g->kvs[a].key, g->kvs[b].key) == 0) {
            p.index = a > b ? a : b;
            p.name = g->kvs[a].key;
            return fail(&p, (size_t)((const uint8_t *)g->kvs[p.index].key.ptr - g->base) - 8,
                        "duplicate key (also key %u)", a < b ? a : b);
        }
    }

    g->alignment = BN_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = bn_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const bn_gguf_value *v = &g->kvs[ai].val;
        p.index = ai;
        p.name = g->kvs[ai].key;
        size_t at = (size_t)((const uint8_t *)p.name.ptr - g->base) + (size_t)p.name.len;
        if (v->type != BN_GGUF_U32) return fail(&p, at, "general.alignment has type %s (must be u32)", vtype_names[v->type]);
        if (v->v.u == 0 || (v->v.u & (v->v.u - 1)))
            return fail(&p, at, "general.alignment is %llu (must be a power of two)", (unsigned long long)v->v.u);
        g->alignment = (uint32_t)v->v.u;
    }

    if ((st = parse_tensor_infos(&p, g, flags))) return st;

    /* data section: the end of the tensor infos rounded up to the alignment */
    size_t pad = (g->alignment - p.pos % g->alignment) % g->alignment;
    if (pad > g->size - p.pos) {
        /* a file without tensors may end unpadded right after its metadata */
        if (n_tensors != 0) {
            p.sec = SEC_HEADER;
            p.depth = 0;
            return fail(&p, p.pos, "truncated: the data section would start at byte %llu, past the end of the file (%zu bytes)",
                        (unsigned long long)p.pos + pad, g->size);
        }
        pad = g->size - p.pos;
    }
    g->data_offset = p.pos + pad;

    sort_indices(g->t_order, (size_t)n_tensors, cmp_tensor_name, g->tensors);
    for (size_t k = 1; k < (size_t)n_tensors; k++) {
        uint32_t a = g->t_order[k - 1], b = g->t_order[k];
        if (str_cmp(g->tensors[a].name, g->tensors[b].name) == 0) {
            p.index = a > b ? a : b;
            p.name = g->tensors[p.index].name;
            return fail(&p, (size_t)((const uint8_t *)p.name.ptr - g->base) - 8, "duplicate tensor name (also tensor %u)",
                        a < b ? a : b);
        }
    }
    return check_tensor_data(&p, g);
}

/* ---- opening ------------------------------------------------------------------------------- */

static bn_status open_common(bn_gguf *g, unsigned flags, bn_gguf **out)
{
    bn_status st = parse(g, flags);
    if (st) {
        bn_gguf_free(g);
        return st;
    }
    *out = g;
    return BN_OK;
}

bn_status bn_gguf_open_memory_ex(const void *data, size_t size, unsigned flags, bn_gguf **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "gguf: out is NULL");
    *out = NULL;
    if (!data && size) return bn_error(BN_ERR_INVALID_ARG, "gguf: data is NULL");
    bn_gguf *g = bn_calloc(1, sizeof *g);
    if (!g) return BN_ERR_NOMEM;
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    g->heap_bytes = sizeof *g;
    return open_common(g, flags, out);
}

bn_status bn_gguf_open_memory(const void *data, size_t size, bn_gguf **out)
{
    return bn_gguf_open_memory_ex(data, size, 0, out);
}

bn_status bn_gguf_open_ex(const char *path, unsigned flags, bn_gguf **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "gguf: out is NULL");
    *out = NULL;
    if (!path) return bn_error(BN_ERR_INVALID_ARG, "gguf: path is NULL");
    bn_gguf *g = bn_calloc(1, sizeof *g);
    if (!g) return BN_ERR_NOMEM;
    bn_status st = bn_mapfile_open(&g->mf, path);
    if (st) {
        bn_free(g);
        return st;
    }
    g->owns_map = true;
    g->base = g->mf.data;
    g->size = g->mf.size;
    g->heap_bytes = sizeof *g;
    st = open_common(g, flags, out);
    if (st) return bn_error_prefix(st, "%s: ", path);
    return BN_OK;
}

bn_status bn_gguf_open(const char *path, bn_gguf **out) { return bn_gguf_open_ex(path, 0, out); }

void bn_gguf_free(bn_gguf *g)
{
    if (!g) return;
    bn_free(g->kvs);
    bn_free(g->kv_order);
    bn_free(g->nodes);
    bn_free(g->offs);
    bn_free(g->tensors);
    bn_free(g->t_order);
    if (g->owns_map) bn_mapfile_close(&g->mf);
    bn_aligned_free(g->owned_buf);
    bn_free(g);
}

void bn_gguf_own_buffer(bn_gguf *g, void *buf)
{
    if (g) g->owned_buf = buf;
}

/* ---- accessors ----------------------------------------------------------------------------- */

uint32_t bn_gguf_version(const bn_gguf *g) { return g->version; }
uint32_t bn_gguf_alignment(const bn_gguf *g) { return g->alignment; }
size_t bn_gguf_file_size(const bn_gguf *g) { return g->size; }
size_t bn_gguf_data_offset(const bn_gguf *g) { return g->data_offset; }
const void *bn_gguf_file_data(const bn_gguf *g) { return g->base; }
bool bn_gguf_is_file_mapping(const bn_gguf *g) { return g->owns_map && g->mf.is_mapped; }
size_t bn_gguf_heap_bytes(const bn_gguf *g) { return g->heap_bytes; }

int64_t bn_gguf_n_kv(const bn_gguf *g) { return g->n_kv; }

bn_gguf_str bn_gguf_kv_key(const bn_gguf *g, int64_t i)
{
    bn_gguf_str none = {"", 0};
    return i >= 0 && i < g->n_kv ? g->kvs[i].key : none;
}

const bn_gguf_value *bn_gguf_kv_value(const bn_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kvs[i].val : NULL;
}

int64_t bn_gguf_find_key(const bn_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    bn_gguf_str k = {key, strlen(key)};
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->kvs[g->kv_order[mid]].key, k);
        if (c == 0) return g->kv_order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

const bn_gguf_value *bn_gguf_get(const bn_gguf *g, const char *key)
{
    int64_t i = bn_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i].val;
}

static bool is_int_type(bn_gguf_vtype t)
{
    return t == BN_GGUF_U8 || t == BN_GGUF_I8 || t == BN_GGUF_U16 || t == BN_GGUF_I16 || t == BN_GGUF_U32 ||
           t == BN_GGUF_I32 || t == BN_GGUF_U64 || t == BN_GGUF_I64;
}

static bool is_signed_type(bn_gguf_vtype t)
{
    return t == BN_GGUF_I8 || t == BN_GGUF_I16 || t == BN_GGUF_I32 || t == BN_GGUF_I64;
}

static bn_status get_typed(const bn_gguf *g, const char *key, const bn_gguf_value **out)
{
    *out = bn_gguf_get(g, key);
    if (!*out) return bn_error(BN_ERR_NOT_FOUND, "metadata key '%s' is missing", key ? key : "(null)");
    return BN_OK;
}

static bn_status wrong_type(const char *key, const bn_gguf_value *v, const char *want)
{
    return bn_error(BN_ERR_FORMAT, "metadata key '%s' has type %s (expected %s)", key, bn_gguf_vtype_name(v->type), want);
}

bn_status bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out)
{
    const bn_gguf_value *v;
    bn_status st = get_typed(g, key, &v);
    if (st) return st;
    if (!is_int_type(v->type)) return wrong_type(key, v, "an integer");
    if (is_signed_type(v->type) ? (v->v.i < 0 || v->v.i > (int64_t)UINT32_MAX) : v->v.u > UINT32_MAX)
        return bn_error(BN_ERR_FORMAT, "metadata key '%s' = %lld does not fit in an unsigned 32-bit value", key,
                        is_signed_type(v->type) ? (long long)v->v.i : (long long)v->v.u);
    *out = is_signed_type(v->type) ? (uint32_t)v->v.i : (uint32_t)v->v.u;
    return BN_OK;
}

bn_status bn_gguf_get_i64(const bn_gguf *g, const char *key, int64_t *out)
{
    const bn_gguf_value *v;
    bn_status st = get_typed(g, key, &v);
    if (st) return st;
    if (!is_int_type(v->type)) return wrong_type(key, v, "an integer");
    if (!is_signed_type(v->type) && v->v.u > (uint64_t)INT64_MAX)
        return bn_error(BN_ERR_FORMAT, "metadata key '%s' = %llu does not fit in a signed 64-bit value", key,
                        (unsigned long long)v->v.u);
    *out = is_signed_type(v->type) ? v->v.i : (int64_t)v->v.u;
    return BN_OK;
}

bn_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out)
{
    const bn_gguf_value *v;
    bn_status st = get_typed(g, key, &v);
    if (st) return st;
    if (v->type == BN_GGUF_F32 || v->type == BN_GGUF_F64) *out = (float)v->v.f;
    else if (is_signed_type(v->type)) *out = (float)v->v.i;
    else if (is_int_type(v->type)) *out = (float)v->v.u;
    else return wrong_type(key, v, "a number");
    return BN_OK;
}

bn_status bn_gguf_get_bool(const bn_gguf *g, const char *key, bool *out)
{
    const bn_gguf_value *v;
    bn_status st = get_typed(g, key, &v);
    if (st) return st;
    if (v->type != BN_GGUF_BOOL) return wrong_type(key, v, "bool");
    *out = v->v.u != 0;
    return BN_OK;
}

bn_status bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out)
{
    const bn_gguf_value *v;
    bn_status st = get_typed(g, key, &v);
    if (st) return st;
    if (v->type != BN_GGUF_STRING) return wrong_type(key, v, "string");
    *out = v->v.s;
    return BN_OK;
}

static bn_status check_elem(const bn_gguf_value *arr, uint64_t j)
{
    if (!arr || arr->type != BN_GGUF_ARRAY || !arr->v.arr.opaque)
        return bn_error(BN_ERR_INVALID_ARG, "gguf: not an array value");
    if (j >= arr->v.arr.n)
        return bn_error(BN_ERR_RANGE, "gguf: array index %llu out of range (%llu elements)", (unsigned long long)j,
                        (unsigned long long)arr->v.arr.n);
    return BN_OK;
}

bn_status bn_gguf_arr_str(const bn_gguf_value *arr, uint64_t j, bn_gguf_str *out)
{
    bn_status st = check_elem(arr, j);
    if (st) return st;
    if (arr->v.arr.elem_type != BN_GGUF_STRING)
        return bn_error(BN_ERR_FORMAT, "gguf: array of %s, not of strings", bn_gguf_vtype_name(arr->v.arr.elem_type));
    const arr_node *node = arr->v.arr.opaque;
    const uint8_t *p = node->elems + node->str_offs[j];
    out->len = ld64(p);
    out->ptr = (const char *)p + 8;
    return BN_OK;
}

bn_status bn_gguf_arr_value(const bn_gguf_value *arr, uint64_t j, bn_gguf_value *out)
{
    bn_status st = check_elem(arr, j);
    if (st) return st;
    const arr_node *node = arr->v.arr.opaque;
    bn_gguf_vtype et = arr->v.arr.elem_type;
    memset(out, 0, sizeof *out);
    out->type = et;
    if (et == BN_GGUF_STRING) return bn_gguf_arr_str(arr, j, &out->v.s);
    if (et == BN_GGUF_ARRAY) {
        const arr_node *child = &node->children[j];
        out->v.arr.elem_type = (bn_gguf_vtype)ld32(child->elems - 12);
        out->v.arr.n = ld64(child->elems - 8);
        out->v.arr.opaque = child;
        return BN_OK;
    }
    decode_scalar(node->elems + j * scalar_size(et), out);
    return BN_OK;
}

const void *bn_gguf_arr_data(const bn_gguf_value *arr)
{
    if (!arr || arr->type != BN_GGUF_ARRAY || !arr->v.arr.opaque || !scalar_size(arr->v.arr.elem_type)) return NULL;
    return ((const arr_node *)arr->v.arr.opaque)->elems;
}

int64_t bn_gguf_n_tensors(const bn_gguf *g) { return g->n_tensors; }

const bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name)
{
    if (!g || !name) return NULL;
    bn_gguf_str k = {name, strlen(name)};
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->tensors[g->t_order[mid]].name, k);
        if (c == 0) return &g->tensors[g->t_order[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
