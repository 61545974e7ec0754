/* GGUF v3 writer.  Metadata values are kept already encoded (type + payload as they will appear
 * in the file), so a file is a header assembled from those pieces followed by the tensors'
 * data, each padded to the alignment.  The file is written atomically (bn_atomic_file). */
#include <string.h>

#include "common/error.h"
#include "common/file.h"
#include "common/mem.h"
#include "gguf/gguf.h"

#define MAX_KEY_LEN 65535
#define MAX_TENSOR_NAME 63 /* ggml's limit (64 with the terminating NUL) */
#define MAX_VALUE_DEPTH 8

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

typedef struct wkv {
    char *key;
    wbuf val; /* u32 type, then the payload */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[BN_GGUF_MAX_DIMS];
    size_t nbytes;
    const void *data;
    bn_gguf_fill_fn fill;
    void *user;
} wtensor;

struct bn_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

/* ---- encoding ------------------------------------------------------------------------------ */

static void wb_raw(wbuf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = bn_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void wb_u32(wbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wb_raw(b, x, 4);
}

static void wb_u64(wbuf *b, uint64_t v)
{
    wb_u32(b, (uint32_t)v);
    wb_u32(b, (uint32_t)(v >> 32));
}

static void wb_str(wbuf *b, const char *s, uint64_t len)
{
    wb_u64(b, len);
    wb_raw(b, s, (size_t)len);
}

static void wb_free(wbuf *b)
{
    bn_free(b->p);
    memset(b, 0, sizeof *b);
}

static size_t scalar_size(bn_gguf_vtype t)
{
    switch (t) {
    case BN_GGUF_U8: case BN_GGUF_I8: case BN_GGUF_BOOL: return 1;
    case BN_GGUF_U16: case BN_GGUF_I16: return 2;
    case BN_GGUF_U32: case BN_GGUF_I32: case BN_GGUF_F32: return 4;
    case BN_GGUF_U64: case BN_GGUF_I64: case BN_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Little-endian bytes of a scalar value. */
static void wb_scalar(wbuf *b, const bn_gguf_value *v)
{
    uint64_t u = 0;
    switch (v->type) {
    case BN_GGUF_U8: case BN_GGUF_U16: case BN_GGUF_U32: case BN_GGUF_U64: u = v->v.u; break;
    case BN_GGUF_BOOL: u = v->v.u != 0; break;
    case BN_GGUF_I8: case BN_GGUF_I16: case BN_GGUF_I32: case BN_GGUF_I64: u = (uint64_t)v->v.i; break;
    case BN_GGUF_F32: { float f = (float)v->v.f; uint32_t x; memcpy(&x, &f, 4); u = x; break; }
    case BN_GGUF_F64: memcpy(&u, &v->v.f, 8); break;
    default: break;
    }
    size_t n = scalar_size(v->type);
    uint8_t x[8];
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(u >> (8 * i));
    wb_raw(b, x, n);
}

/* Encodes the payload of any value (no type prefix); arrays must come from a reader. */
static bn_status encode_payload(wbuf *b, const bn_gguf_value *v, int depth)
{
    if ((unsigned)v->type >= BN_GGUF_VTYPE_COUNT) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: unknown value type %d", (int)v->type);
    if (v->type == BN_GGUF_STRING) {
        if (!v->v.s.ptr && v->v.s.len) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL string");
        wb_str(b, v->v.s.ptr, v->v.s.len);
        return BN_OK;
    }
    if (v->type != BN_GGUF_ARRAY) {
        wb_scalar(b, v);
        return BN_OK;
    }
    if (depth >= MAX_VALUE_DEPTH) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: arrays nested too deeply");
    if (!v->v.arr.opaque) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: array value not from a reader");
    bn_gguf_vtype et = v->v.arr.elem_type;
    wb_u32(b, (uint32_t)et);
    wb_u64(b, v->v.arr.n);
    const void *packed = bn_gguf_arr_data(v);
    if (packed) {
        size_t bytes;
        if (bn_mul_overflow((size_t)v->v.arr.n, scalar_size(et), &bytes))
            return bn_error(BN_ERR_INVALID_ARG, "gguf writer: array too large");
        wb_raw(b, packed, bytes); /* already little-endian in the source file */
        return BN_OK;
    }
    for (uint64_t j = 0; j < v->v.arr.n; j++) {
        bn_gguf_value e;
        bn_status st = bn_gguf_arr_value(v, j, &e);
        if (!st) st = encode_payload(b, &e, depth + 1);
        if (st) return st;
    }
    return BN_OK;
}

/* ---- keys ---------------------------------------------------------------------------------- */

bn_status bn_gguf_writer_init(bn_gguf_writer **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: out is NULL");
    *out = bn_calloc(1, sizeof **out);
    return *out ? BN_OK : BN_ERR_NOMEM;
}

void bn_gguf_writer_free(bn_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        bn_free(w->kvs[i].key);
        wb_free(&w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) bn_free(w->ts[i].name);
    bn_free(w->kvs);
    bn_free(w->ts);
    bn_free(w);
}

static wkv *find_kv(bn_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) return &w->kvs[i];
    return NULL;
}

/* Stores an encoded value under key (taking ownership of val), replacing any old value in place. */
static bn_status put_kv(bn_gguf_writer *w, const char *key, wbuf *val)
{
    bn_status st = BN_OK;
    size_t klen = key ? strlen(key) : 0;
    if (!w || !key) st = bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL writer or key");
    else if (klen == 0 || klen > MAX_KEY_LEN) st = bn_error(BN_ERR_INVALID_ARG, "gguf writer: key length %zu (must be 1..%d)", klen, MAX_KEY_LEN);
    else if (val->oom) st = bn_error(BN_ERR_NOMEM, "gguf writer: out of memory encoding '%s'", key);
    if (st) {
        wb_free(val);
        return st;
    }
    wkv *kv = find_kv(w, key);
    if (kv) {
        wb_free(&kv->val);
        kv->val = *val;
        return BN_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = bn_realloc(w->kvs, cap * sizeof *p);
        if (!p) {
            wb_free(val);
            return BN_ERR_NOMEM;
        }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = bn_strdup(key);
    if (!k) {
        wb_free(val);
        return BN_ERR_NOMEM;
    }
    w->kvs[w->n_kv].key = k;
    w->kvs[w->n_kv].val = *val;
    w->n_kv++;
    return BN_OK;
}

bn_status bn_gguf_writer_set_value(bn_gguf_writer *w, const char *key, const bn_gguf_value *v)
{
    if (!v) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL value");
    wbuf b = {0};
    wb_u32(&b, (uint32_t)v->type);
    bn_status st = encode_payload(&b, v, 0);
    if (st) {
        wb_free(&b);
        return bn_error_prefix(st, "key '%s': ", key ? key : "(null)");
    }
    return put_kv(w, key, &b);
}

static bn_status set_scalar(bn_gguf_writer *w, const char *key, bn_gguf_value v) { return bn_gguf_writer_set_value(w, key, &v); }

bn_status bn_gguf_writer_set_u32(bn_gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_U32, .v.u = v});
}

bn_status bn_gguf_writer_set_i32(bn_gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_I32, .v.i = v});
}

bn_status bn_gguf_writer_set_u64(bn_gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_U64, .v.u = v});
}

bn_status bn_gguf_writer_set_f32(bn_gguf_writer *w, const char *key, float v)
{
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_F32, .v.f = v});
}

bn_status bn_gguf_writer_set_bool(bn_gguf_writer *w, const char *key, bool v)
{
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_BOOL, .v.u = v});
}

bn_status bn_gguf_writer_set_str(bn_gguf_writer *w, const char *key, const char *v)
{
    if (!v) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL string for '%s'", key ? key : "(null)");
    return set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_STRING, .v.s = {v, strlen(v)}});
}

bn_status bn_gguf_writer_set_array(bn_gguf_writer *w, const char *key, bn_gguf_vtype elem_type, const void *data,
                                   uint64_t n)
{
    if (n && !data) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL array data for '%s'", key ? key : "(null)");
    wbuf b = {0};
    wb_u32(&b, BN_GGUF_ARRAY);
    wb_u32(&b, (uint32_t)elem_type);
    wb_u64(&b, n);
    if (elem_type == BN_GGUF_STRING) {
        const char *const *s = data;
        for (uint64_t j = 0; j < n; j++) {
            if (!s[j]) {
                wb_free(&b);
                return bn_error(BN_ERR_INVALID_ARG, "gguf writer: '%s' element %llu is NULL", key ? key : "(null)",
                                (unsigned long long)j);
            }
            wb_str(&b, s[j], strlen(s[j]));
        }
    } else if (scalar_size(elem_type)) {
        size_t bytes;
        if (n > SIZE_MAX || bn_mul_overflow((size_t)n, scalar_size(elem_type), &bytes)) {
            wb_free(&b);
            return bn_error(BN_ERR_INVALID_ARG, "gguf writer: array '%s' too large", key ? key : "(null)");
        }
        if (elem_type == BN_GGUF_BOOL) {
            for (size_t j = 0; j < bytes; j++) {
                if (((const uint8_t *)data)[j] > 1) {
                    wb_free(&b);
                    return bn_error(BN_ERR_INVALID_ARG, "gguf writer: '%s' element %zu is not a bool (0/1)", key ? key : "(null)", j);
                }
            }
        }
        wb_raw(&b, data, bytes);
    } else {
        wb_free(&b);
        return bn_error(BN_ERR_INVALID_ARG, "gguf writer: arrays of %s cannot be set from raw data ('%s'; use set_value)",
                        bn_gguf_vtype_name(elem_type), key ? key : "(null)");
    }
    return put_kv(w, key, &b);
}

bn_status bn_gguf_writer_copy_kv(bn_gguf_writer *w, const bn_gguf *g)
{
    if (!w || !g) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL argument");
    for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
        bn_gguf_str k = bn_gguf_kv_key(g, i);
        /* keys with NUL bytes cannot be C strings: such a key is reported, not silently cut */
        if (memchr(k.ptr, '\0', (size_t)k.len))
            return bn_error(BN_ERR_UNSUPPORTED, "gguf writer: key %lld contains a NUL byte", (long long)i);
        char *key = bn_strndup(k.ptr, (size_t)k.len);
        if (!key) return BN_ERR_NOMEM;
        bn_status st = bn_gguf_writer_set_value(w, key, bn_gguf_kv_value(g, i));
        bn_free(key);
        if (st) return st;
    }
    return BN_OK;
}

/* ---- tensors ------------------------------------------------------------------------------- */

static bn_status add_tensor(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                            const void *data, bn_gguf_fill_fn fill, void *user)
{
    if (!w || !name || (n_dims && !ne)) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL argument");
    size_t len = strlen(name);
    if (len == 0 || len > MAX_TENSOR_NAME)
        return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor name '%s' has %zu bytes (must be 1..%d)", name, len,
                        MAX_TENSOR_NAME);
    if (n_dims < 1 || n_dims > BN_GGUF_MAX_DIMS)
        return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor '%s' has %u dimensions (must be 1..%d)", name, n_dims,
                        BN_GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fill = fill, .user = user};
    int64_t n_elem = 1;
    for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor '%s' dimension %u is negative", name, d);
        if (t.ne[d] && n_elem > INT64_MAX / t.ne[d])
            return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor '%s' has too many elements", name);
        n_elem *= t.ne[d];
    }
    const bn_type_traits *tr = bn_type_get(type);
    if (!tr) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor '%s' has unknown type id %u", name, type);
    if (!bn_type_tensor_nbytes(type, t.ne[0], n_elem, &t.nbytes))
        return bn_error(tr->block_size ? BN_ERR_INVALID_ARG : BN_ERR_UNSUPPORTED,
                        "gguf writer: tensor '%s' of type %s and row length %lld cannot be sized", name, tr->name,
                        (long long)t.ne[0]);
    if (!fill && !data && t.nbytes) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: tensor '%s' has no data", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name)) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: duplicate tensor name '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = bn_realloc(w->ts, cap * sizeof *p);
        if (!p) return BN_ERR_NOMEM;
        w->ts = p;
        w->cap_t = cap;
    }
    t.name = bn_strdup(name);
    if (!t.name) return BN_ERR_NOMEM;
    w->ts[w->n_t++] = t;
    return BN_OK;
}

bn_status bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data)
{
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

bn_status bn_gguf_writer_add_tensor_fn(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                       const int64_t *ne, bn_gguf_fill_fn fill, void *user)
{
    if (!fill) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL fill function for '%s'", name ? name : "(null)");
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, user);
}

/* ---- writing ------------------------------------------------------------------------------- */

static bn_status writer_alignment(bn_gguf_writer *w, uint32_t *out)
{
    *out = BN_GGUF_DEFAULT_ALIGNMENT;
    wkv *kv = find_kv(w, "general.alignment");
    if (!kv) return BN_OK;
    const uint8_t *p = kv->val.p;
    uint32_t type = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (type != BN_GGUF_U32) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: general.alignment must be a u32");
    uint32_t a = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    if (a == 0 || (a & (a - 1)))
        return bn_error(BN_ERR_INVALID_ARG, "gguf writer: general.alignment is %u (must be a power of two)", a);
    *out = a;
    return BN_OK;
}

static size_t pad_to(size_t n, size_t align) { return (align - n % align) % align; }

static const uint8_t zeros[256];

static bn_status write_zeros(bn_atomic_file *af, size_t n)
{
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        bn_status st = bn_atomic_file_write(af, zeros, k);
        if (st) return st;
        n -= k;
    }
    return BN_OK;
}

/* The header (magic, counts, metadata, tensor infos with their data offsets), padded to the
 * alignment.  *data_size gets the data section's size, *max_fill the largest tensor produced by a
 * fill callback.  The file and memory writers share it. */
static bn_status build_header(const bn_gguf_writer *w, uint32_t align, wbuf *h, size_t *data_size, size_t *max_fill)
{
    *h = (wbuf){0};
    wb_raw(h, "GGUF", 4);
    wb_u32(h, 3);
    wb_u64(h, w->n_t);
    wb_u64(h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        wb_str(h, w->kvs[i].key, strlen(w->kvs[i].key));
        wb_raw(h, w->kvs[i].val.p, w->kvs[i].val.n);
    }
    size_t off = 0;
    *max_fill = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        wb_str(h, t->name, strlen(t->name));
        wb_u32(h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) wb_u64(h, (uint64_t)t->ne[d]);
        wb_u32(h, t->type);
        wb_u64(h, off);
        size_t next;
        if (bn_add_overflow(off, t->nbytes, &next) || bn_add_overflow(next, pad_to(next, align), &off)) {
            wb_free(h);
            return bn_error(BN_ERR_RANGE, "gguf writer: tensor data exceeds the address space");
        }
        if (t->fill && t->nbytes > *max_fill) *max_fill = t->nbytes;
    }
    uint8_t pad[1] = {0};
    while (!h->oom && h->n % align) wb_raw(h, pad, 1);
    if (h->oom) {
        wb_free(h);
        return bn_error(BN_ERR_NOMEM, "gguf writer: out of memory building the header");
    }
    *data_size = off;
    return BN_OK;
}

bn_status bn_gguf_writer_write(bn_gguf_writer *w, const char *path)
{
    if (!w || !path) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL argument");
    uint32_t align;
    bn_status st = writer_alignment(w, &align);
    if (st) return st;
    wbuf h;
    size_t data_size, max_fill;
    if ((st = build_header(w, align, &h, &data_size, &max_fill))) return st;

    uint8_t *scratch = NULL;
    if (max_fill && !(scratch = bn_malloc(max_fill))) {
        wb_free(&h);
        return BN_ERR_NOMEM;
    }
    bn_atomic_file af;
    st = bn_atomic_file_open(&af, path);
    if (!st) st = bn_atomic_file_write(&af, h.p, h.n);
    wb_free(&h);
    for (size_t i = 0; i < w->n_t && !st; i++) {
        const wtensor *t = &w->ts[i];
        const void *src = t->data;
        if (t->fill) {
            memset(scratch, 0, t->nbytes);
            st = t->fill(t->user, scratch, t->nbytes);
            if (st) {
                bn_error_prefix(st, "gguf writer: producing tensor '%s': ", t->name);
                break;
            }
            src = scratch;
        }
        if (t->nbytes) st = bn_atomic_file_write(&af, src, t->nbytes);
        if (!st) st = write_zeros(&af, pad_to(t->nbytes, align));
    }
    bn_free(scratch);
    if (st) {
        if (af.fd >= 0 || af.tmp_path) bn_atomic_file_abort(&af);
        return st;
    }
    return bn_atomic_file_commit(&af);
}

/* ---- writing to memory (loading a converted model without a file) -------------------------- */

bn_status bn_gguf_writer_write_memory(bn_gguf_writer *w, void **buf, size_t *len)
{
    if (!w || !buf || !len) return bn_error(BN_ERR_INVALID_ARG, "gguf writer: NULL argument");
    *buf = NULL;
    *len = 0;
    uint32_t align;
    bn_status st = writer_alignment(w, &align);
    if (st) return st;
    wbuf h;
    size_t off, max_fill, total;
    if ((st = build_header(w, align, &h, &off, &max_fill))) return st;
    if (bn_add_overflow(h.n, off, &total)) {
        wb_free(&h);
        return bn_error(BN_ERR_NOMEM, "gguf writer: the model does not fit in memory");
    }
    /* page-aligned like a file mapping, so tensor data is as aligned as in a mapped file */
    uint8_t *p = bn_aligned_alloc(total ? total : 1, 4096);
    if (!p) {
        wb_free(&h);
        return BN_ERR_NOMEM;
    }
    memcpy(p, h.p, h.n);
    size_t pos = h.n;
    wb_free(&h);
    for (size_t i = 0; i < w->n_t && !st; i++) {
        const wtensor *t = &w->ts[i];
        memset(p + pos, 0, t->nbytes + pad_to(t->nbytes, align));
        if (t->fill) {
            st = t->fill(t->user, p + pos, t->nbytes);
            if (st) bn_error_prefix(st, "gguf writer: producing tensor '%s': ", t->name);
        } else if (t->nbytes) {
            memcpy(p + pos, t->data, t->nbytes);
        }
        pos += t->nbytes + pad_to(t->nbytes, align);
    }
    if (st) {
        bn_aligned_free(p);
        return st;
    }
    *buf = p;
    *len = total;
    return BN_OK;
}
