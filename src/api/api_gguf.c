/* Public API: GGUF inspection (bitnet.h), a thin layer over src/gguf.  Files are opened with
 * BN_GGUF_ALLOW_UNSIZED so `bitnet info` can show TL1/TL2 files that no model loader accepts. */
#include <string.h>

#include "bitnet.h"
#include "common/error.h"
#include "common/mem.h"
#include "gguf/gguf.h"

_Static_assert((int)BITNET_GGUF_UINT8 == (int)BN_GGUF_U8 && (int)BITNET_GGUF_FLOAT64 == (int)BN_GGUF_F64 &&
                   (int)BITNET_GGUF_ARRAY == (int)BN_GGUF_ARRAY && (int)BITNET_GGUF_STRING == (int)BN_GGUF_STRING,
               "GGUF value type numbering mismatch");

struct bitnet_gguf {
    bn_gguf *g;
    char *keybuf;     /* every key, NUL-terminated, one after another */
    size_t *key_off;  /* start of key i in keybuf */
};

bitnet_status bitnet_gguf_open(const char *path, bitnet_gguf **out)
{
    if (!out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_gguf_open: out is NULL");
    *out = NULL;
    bitnet_gguf *h = bn_calloc(1, sizeof *h);
    if (!h) return BITNET_ERR_NOMEM;
    bn_status st = bn_gguf_open_ex(path, BN_GGUF_ALLOW_UNSIZED, &h->g);
    if (st) {
        bn_free(h);
        return (bitnet_status)st;
    }
    /* keys as C strings: their total length is bounded by the file size */
    int64_t n = bn_gguf_n_kv(h->g);
    size_t total = 1;
    for (int64_t i = 0; i < n; i++) total += (size_t)bn_gguf_kv_key(h->g, i).len + 1;
    h->keybuf = bn_malloc(total);
    h->key_off = bn_malloc(((size_t)n + 1) * sizeof *h->key_off);
    if (!h->keybuf || !h->key_off) {
        bitnet_gguf_free(h);
        return BITNET_ERR_NOMEM;
    }
    size_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        bn_gguf_str k = bn_gguf_kv_key(h->g, i);
        h->key_off[i] = o;
        memcpy(h->keybuf + o, k.ptr, (size_t)k.len);
        o += (size_t)k.len;
        h->keybuf[o++] = '\0';
    }
    *out = h;
    return BITNET_OK;
}

void bitnet_gguf_free(bitnet_gguf *h)
{
    if (!h) return;
    bn_gguf_free(h->g);
    bn_free(h->keybuf);
    bn_free(h->key_off);
    bn_free(h);
}

uint32_t bitnet_gguf_version(const bitnet_gguf *h) { return h ? bn_gguf_version(h->g) : 0; }
uint32_t bitnet_gguf_alignment(const bitnet_gguf *h) { return h ? bn_gguf_alignment(h->g) : 0; }
uint64_t bitnet_gguf_file_size(const bitnet_gguf *h) { return h ? bn_gguf_file_size(h->g) : 0; }
int64_t bitnet_gguf_kv_count(const bitnet_gguf *h) { return h ? bn_gguf_n_kv(h->g) : 0; }

const char *bitnet_gguf_kv_key(const bitnet_gguf *h, int64_t i)
{
    if (!h || i < 0 || i >= bn_gguf_n_kv(h->g)) return NULL;
    return h->keybuf + h->key_off[i];
}

int64_t bitnet_gguf_kv_find(const bitnet_gguf *h, const char *key) { return h ? bn_gguf_find_key(h->g, key) : -1; }

static void to_public(const bn_gguf_value *v, bitnet_gguf_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = (bitnet_gguf_type)v->type;
    switch (v->type) {
    case BN_GGUF_U8: case BN_GGUF_U16: case BN_GGUF_U32: case BN_GGUF_U64: case BN_GGUF_BOOL: out->u = v->v.u; break;
    case BN_GGUF_I8: case BN_GGUF_I16: case BN_GGUF_I32: case BN_GGUF_I64: out->i = v->v.i; break;
    case BN_GGUF_F32: case BN_GGUF_F64: out->f = v->v.f; break;
    case BN_GGUF_STRING:
        out->str = v->v.s.ptr;
        out->str_len = v->v.s.len;
        break;
    case BN_GGUF_ARRAY:
        out->elem_type = (bitnet_gguf_type)v->v.arr.elem_type;
        out->n_elem = v->v.arr.n;
        out->internal_ = v->v.arr.opaque;
        break;
    default: break;
    }
}

bitnet_status bitnet_gguf_kv_value(const bitnet_gguf *h, int64_t i, bitnet_gguf_value *out)
{
    if (!h || !out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_gguf_kv_value: NULL argument");
    const bn_gguf_value *v = bn_gguf_kv_value(h->g, i);
    if (!v)
        return (bitnet_status)bn_error(BN_ERR_RANGE, "bitnet_gguf_kv_value: index %lld out of range (%lld keys)",
                                       (long long)i, (long long)bn_gguf_n_kv(h->g));
    to_public(v, out);
    return BITNET_OK;
}

bitnet_status bitnet_gguf_array_get(const bitnet_gguf_value *array, uint64_t j, bitnet_gguf_value *out)
{
    if (!array || !out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_gguf_array_get: NULL argument");
    if (array->type != BITNET_GGUF_ARRAY || !array->internal_)
        return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_gguf_array_get: not an array value");
    bn_gguf_value arr = {.type = BN_GGUF_ARRAY};
    arr.v.arr.elem_type = (bn_gguf_vtype)array->elem_type;
    arr.v.arr.n = array->n_elem;
    arr.v.arr.opaque = array->internal_;
    bn_gguf_value e;
    bn_status st = bn_gguf_arr_value(&arr, j, &e);
    if (st) return (bitnet_status)st;
    to_public(&e, out);
    return BITNET_OK;
}

int64_t bitnet_gguf_tensor_count(const bitnet_gguf *h) { return h ? bn_gguf_n_tensors(h->g) : 0; }

bitnet_status bitnet_gguf_tensor_info_get(const bitnet_gguf *h, int64_t i, bitnet_gguf_tensor_info *out)
{
    if (!h || !out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_gguf_tensor_info_get: NULL argument");
    const bn_gguf_tensor *t = bn_gguf_tensor_at(h->g, i);
    if (!t)
        return (bitnet_status)bn_error(BN_ERR_RANGE, "bitnet_gguf_tensor_info_get: index %lld out of range (%lld tensors)",
                                       (long long)i, (long long)bn_gguf_n_tensors(h->g));
    memset(out, 0, sizeof *out);
    out->name = t->name.ptr;
    out->name_len = t->name.len;
    out->type = t->type;
    out->type_name = bn_type_name(t->type);
    out->n_dims = t->n_dims;
    for (int d = 0; d < 4; d++) out->ne[d] = t->ne[d];
    out->offset = t->offset;
    out->nbytes = t->nbytes;
    out->sized = t->sized;
    return BITNET_OK;
}

const char *bitnet_type_name(uint32_t type) { return bn_type_name(type); }

const char *bitnet_gguf_type_name(bitnet_gguf_type type) { return bn_gguf_vtype_name((bn_gguf_vtype)type); }

const char *bitnet_file_type_name(uint32_t ft)
{
    /* llama.cpp's llama_ftype numbering; 38-40 as Microsoft's bitnet.cpp fork assigns them (mainline
     * llama.cpp later reused 38 and up for other formats). */
    static const char *const names[] = {
        [0] = "ALL_F32",        [1] = "MOSTLY_F16",     [2] = "MOSTLY_Q4_0",    [3] = "MOSTLY_Q4_1",
        [7] = "MOSTLY_Q8_0",    [8] = "MOSTLY_Q5_0",    [9] = "MOSTLY_Q5_1",    [10] = "MOSTLY_Q2_K",
        [11] = "MOSTLY_Q3_K_S", [12] = "MOSTLY_Q3_K_M", [13] = "MOSTLY_Q3_K_L", [14] = "MOSTLY_Q4_K_S",
        [15] = "MOSTLY_Q4_K_M", [16] = "MOSTLY_Q5_K_S", [17] = "MOSTLY_Q5_K_M", [18] = "MOSTLY_Q6_K",
        [19] = "MOSTLY_IQ2_XXS", [20] = "MOSTLY_IQ2_XS", [21] = "MOSTLY_Q2_K_S", [22] = "MOSTLY_IQ3_XS",
        [23] = "MOSTLY_IQ3_XXS", [24] = "MOSTLY_IQ1_S", [25] = "MOSTLY_IQ4_NL", [26] = "MOSTLY_IQ3_S",
        [27] = "MOSTLY_IQ3_M",  [28] = "MOSTLY_IQ2_S",  [29] = "MOSTLY_IQ2_M",  [30] = "MOSTLY_IQ4_XS",
        [31] = "MOSTLY_IQ1_M",  [32] = "MOSTLY_BF16",   [36] = "MOSTLY_TQ1_0",  [37] = "MOSTLY_TQ2_0",
        [38] = "MOSTLY_TL1",    [39] = "MOSTLY_TL2",    [40] = "MOSTLY_I2_S",
    };
    return ft < sizeof names / sizeof names[0] ? names[ft] : NULL;
}
