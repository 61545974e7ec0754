/* libFuzzer target for the GGUF reader: any input must give an error or a file whose every
 * value and tensor can be read back within the buffer, with bounded heap use.  A violated
 * invariant aborts, which libFuzzer reports as a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi;

static void check(int ok)
{
    if (!ok) abort();
}

static void walk(const bn_gguf_value *v, int depth)
{
    check(depth <= 16);
    if (v->type == BN_GGUF_STRING) {
        check(v->v.s.len == 0 || ((const uint8_t *)v->v.s.ptr >= lo && (const uint8_t *)v->v.s.ptr + v->v.s.len <= hi));
        return;
    }
    if (v->type != BN_GGUF_ARRAY) return;
    const uint8_t *packed = bn_gguf_arr_data(v);
    if (packed) check(packed >= lo && packed <= hi);
    /* every element of small arrays, the ends of large ones */
    for (uint64_t j = 0; j < v->v.arr.n; j++) {
        if (j == 64 && v->v.arr.n > 128) j = v->v.arr.n - 64;
        bn_gguf_value e;
        check(bn_gguf_arr_value(v, j, &e) == BN_OK);
        check(e.type == v->v.arr.elem_type);
        walk(&e, depth + 1);
    }
    bn_gguf_value e;
    check(bn_gguf_arr_value(v, v->v.arr.n, &e) != BN_OK);
}

static void exercise(const bn_gguf *g, size_t size)
{
    check(bn_gguf_file_size(g) == size);
    check(bn_gguf_heap_bytes(g) <= 5 * size + 1024);
    check(bn_gguf_data_offset(g) <= size);
    for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
        walk(bn_gguf_kv_value(g, i), 0);
        bn_gguf_str k = bn_gguf_kv_key(g, i);
        check(k.len > 0 && (const uint8_t *)k.ptr >= lo && (const uint8_t *)k.ptr + k.len <= hi);
    }
    uint32_t u;
    int64_t i64;
    float f;
    bool b;
    bn_gguf_str s;
    static const char *const keys[] = {"general.architecture", "general.alignment", "tokenizer.ggml.bos_token_id",
                                       "llama.block_count", "general.file_type"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        (void)bn_gguf_get_u32(g, keys[k], &u);
        (void)bn_gguf_get_i64(g, keys[k], &i64);
        (void)bn_gguf_get_f32(g, keys[k], &f);
        (void)bn_gguf_get_bool(g, keys[k], &b);
        (void)bn_gguf_get_str(g, keys[k], &s);
    }
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
        const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        check(d >= lo && d <= hi && t->nbytes <= (size_t)(hi - d));
        check(t->n_dims <= BN_GGUF_MAX_DIMS && t->n_elem >= 0);
        check(bn_type_name(t->type) != NULL);
        if (t->sized) {
            size_t nb;
            check(bn_type_tensor_nbytes(t->type, t->ne[0], t->n_elem, &nb) && nb == t->nbytes);
        }
        /* lookup by name finds a tensor of that name (names with NUL bytes cannot be asked for) */
        if (t->name.len < 128 && !memchr(t->name.ptr, 0, (size_t)t->name.len)) {
            char name[128];
            memcpy(name, t->name.ptr, (size_t)t->name.len);
            name[t->name.len] = '\0';
            const bn_gguf_tensor *f2 = bn_gguf_find_tensor(g, name);
            check(f2 && f2->name.len == t->name.len);
        }
    }
    /* the writer accepts everything the reader returns */
    bn_gguf_writer *w;
    if (bn_gguf_writer_init(&w) == BN_OK) {
        (void)bn_gguf_writer_copy_kv(w, g);
        bn_gguf_writer_free(w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lo = data;
    hi = data + size;
    for (unsigned flags = 0; flags <= BN_GGUF_ALLOW_UNSIZED; flags += BN_GGUF_ALLOW_UNSIZED) {
        bn_gguf *g = NULL;
        bn_status st = bn_gguf_open_memory_ex(data, size, flags, &g);
        if (st != BN_OK) {
            check(g == NULL);
            continue;
        }
        exercise(g, size);
        bn_gguf_free(g);
    }
    return 0;
}
