/* Tests of the GGUF writer: writer -> reader round trips for every value type and every tensor
 * type we can size, copying real files, atomicity and argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "gguf/gguf.h"
#include "gguf_bytes.h"

#define DATA BITNET_TEST_DATA

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/bn_gguf_w_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static const char *tmp(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static bool str_eq(bn_gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

#define OK(x) assert_int_equal((x), BN_OK)

static bn_gguf *reopen(const char *path)
{
    bn_gguf *g = NULL;
    if (bn_gguf_open(path, &g)) fail_msg("%s", bn_last_error());
    return g;
}

/* ---- values -------------------------------------------------------------------------------- */

static void test_scalar_and_array_values(void **state)
{
    (void)state;
    bn_gguf_writer *w;
    OK(bn_gguf_writer_init(&w));
    /* every scalar type, through set_value where no typed setter exists */
    OK(bn_gguf_writer_set_value(w, "u8", &(bn_gguf_value){.type = BN_GGUF_U8, .v.u = 250}));
    OK(bn_gguf_writer_set_value(w, "i8", &(bn_gguf_value){.type = BN_GGUF_I8, .v.i = -100}));
    OK(bn_gguf_writer_set_value(w, "u16", &(bn_gguf_value){.type = BN_GGUF_U16, .v.u = 65000}));
    OK(bn_gguf_writer_set_value(w, "i16", &(bn_gguf_value){.type = BN_GGUF_I16, .v.i = -32000}));
    OK(bn_gguf_writer_set_u32(w, "u32", 4000000000u));
    OK(bn_gguf_writer_set_i32(w, "i32", -2000000000));
    OK(bn_gguf_writer_set_f32(w, "f32", 1.25e-5f));
    OK(bn_gguf_writer_set_bool(w, "bool", true));
    OK(bn_gguf_writer_set_str(w, "string", "h\xc3\xa9llo"));
    OK(bn_gguf_writer_set_u64(w, "u64", 0xfedcba9876543210ull));
    OK(bn_gguf_writer_set_value(w, "i64", &(bn_gguf_value){.type = BN_GGUF_I64, .v.i = INT64_MIN}));
    OK(bn_gguf_writer_set_value(w, "f64", &(bn_gguf_value){.type = BN_GGUF_F64, .v.f = 3.141592653589793}));
    OK(bn_gguf_writer_set_str(w, "empty", ""));
    /* arrays of every scalar type and of strings */
    uint8_t a_u8[3] = {1, 2, 255};
    int16_t a_i16[2] = {-2, 300};
    uint32_t a_u32[4] = {7, 8, 9, 10};
    float a_f32[2] = {0.5f, -1e30f};
    uint8_t a_bool[3] = {1, 0, 1};
    int64_t a_i64[2] = {-1, INT64_MAX};
    double a_f64[1] = {-0.125};
    const char *a_str[3] = {"x", "", "longer string"};
    OK(bn_gguf_writer_set_array(w, "a.u8", BN_GGUF_U8, a_u8, 3));
    OK(bn_gguf_writer_set_array(w, "a.i16", BN_GGUF_I16, a_i16, 2));
    OK(bn_gguf_writer_set_array(w, "a.u32", BN_GGUF_U32, a_u32, 4));
    OK(bn_gguf_writer_set_array(w, "a.f32", BN_GGUF_F32, a_f32, 2));
    OK(bn_gguf_writer_set_array(w, "a.bool", BN_GGUF_BOOL, a_bool, 3));
    OK(bn_gguf_writer_set_array(w, "a.i64", BN_GGUF_I64, a_i64, 2));
    OK(bn_gguf_writer_set_array(w, "a.f64", BN_GGUF_F64, a_f64, 1));
    OK(bn_gguf_writer_set_array(w, "a.str", BN_GGUF_STRING, a_str, 3));
    OK(bn_gguf_writer_set_array(w, "a.empty", BN_GGUF_I8, NULL, 0));
    /* replacing keeps the position */
    OK(bn_gguf_writer_set_u32(w, "u32", 17));
    OK(bn_gguf_writer_write(w, tmp("values.gguf")));
    bn_gguf_writer_free(w);

    bn_gguf *g = reopen(tmp("values.gguf"));
    assert_int_equal(bn_gguf_version(g), 3);
    assert_int_equal(bn_gguf_n_kv(g), 22);
    assert_true(str_eq(bn_gguf_kv_key(g, 4), "u32"));
    const bn_gguf_value *v;
    assert_int_equal((v = bn_gguf_get(g, "u8"))->type, BN_GGUF_U8);
    assert_int_equal(v->v.u, 250);
    assert_int_equal((v = bn_gguf_get(g, "i8"))->type, BN_GGUF_I8);
    assert_int_equal(v->v.i, -100);
    assert_int_equal((v = bn_gguf_get(g, "u16"))->type, BN_GGUF_U16);
    assert_int_equal(v->v.u, 65000);
    assert_int_equal((v = bn_gguf_get(g, "i16"))->type, BN_GGUF_I16);
    assert_int_equal(v->v.i, -32000);
    assert_int_equal((v = bn_gguf_get(g, "u32"))->type, BN_GGUF_U32);
    assert_int_equal(v->v.u, 17);
    assert_int_equal((v = bn_gguf_get(g, "i32"))->type, BN_GGUF_I32);
    assert_int_equal(v->v.i, -2000000000);
    assert_int_equal((v = bn_gguf_get(g, "f32"))->type, BN_GGUF_F32);
    assert_true((float)v->v.f == 1.25e-5f);
    assert_int_equal((v = bn_gguf_get(g, "bool"))->type, BN_GGUF_BOOL);
    assert_int_equal(v->v.u, 1);
    assert_int_equal((v = bn_gguf_get(g, "string"))->type, BN_GGUF_STRING);
    assert_true(str_eq(v->v.s, "h\xc3\xa9llo"));
    assert_int_equal((v = bn_gguf_get(g, "u64"))->type, BN_GGUF_U64);
    assert_true(v->v.u == 0xfedcba9876543210ull);
    assert_int_equal((v = bn_gguf_get(g, "i64"))->type, BN_GGUF_I64);
    assert_true(v->v.i == INT64_MIN);
    assert_int_equal((v = bn_gguf_get(g, "f64"))->type, BN_GGUF_F64);
    assert_true(v->v.f == 3.141592653589793);
    assert_int_equal(bn_gguf_get(g, "empty")->v.s.len, 0);

    bn_gguf_value e;
    v = bn_gguf_get(g, "a.u8");
    assert_int_equal(v->v.arr.elem_type, BN_GGUF_U8);
    assert_memory_equal(bn_gguf_arr_data(v), a_u8, 3);
    v = bn_gguf_get(g, "a.i16");
    OK(bn_gguf_arr_value(v, 0, &e));
    assert_int_equal(e.v.i, -2);
    assert_memory_equal(bn_gguf_arr_data(v), a_i16, sizeof a_i16);
    assert_memory_equal(bn_gguf_arr_data(bn_gguf_get(g, "a.u32")), a_u32, sizeof a_u32);
    assert_memory_equal(bn_gguf_arr_data(bn_gguf_get(g, "a.f32")), a_f32, sizeof a_f32);
    assert_memory_equal(bn_gguf_arr_data(bn_gguf_get(g, "a.bool")), a_bool, sizeof a_bool);
    assert_memory_equal(bn_gguf_arr_data(bn_gguf_get(g, "a.i64")), a_i64, sizeof a_i64);
    OK(bn_gguf_arr_value(bn_gguf_get(g, "a.f64"), 0, &e));
    assert_true(e.v.f == -0.125);
    v = bn_gguf_get(g, "a.str");
    assert_int_equal(v->v.arr.n, 3);
    for (int j = 0; j < 3; j++) {
        bn_gguf_str s;
        OK(bn_gguf_arr_str(v, (uint64_t)j, &s));
        assert_true(str_eq(s, a_str[j]));
    }
    assert_int_equal(bn_gguf_get(g, "a.empty")->v.arr.n, 0);
    bn_gguf_free(g);
}

/* Nested arrays can only be written by copying them from a file that has them. */
static void test_nested_arrays_copy(void **state)
{
    (void)state;
    gb b = {0};
    gb_header(&b, 2, 0, 1);
    gb_key(&b, "nest", 9);
    gb_u32(&b, 9);
    gb_u64(&b, 2);
    gb_u32(&b, 8);
    gb_u64(&b, 2);
    gb_str(&b, "p");
    gb_str(&b, "qr");
    gb_u32(&b, 9);
    gb_u64(&b, 1);
    gb_u32(&b, 6);
    gb_u64(&b, 2);
    gb_f32(&b, 1.5f);
    gb_f32(&b, -2.0f);
    bn_gguf *src;
    OK(bn_gguf_open_memory(b.p, b.n, &src));
    bn_gguf_writer *w;
    OK(bn_gguf_writer_init(&w));
    OK(bn_gguf_writer_copy_kv(w, src));
    OK(bn_gguf_writer_write(w, tmp("nested.gguf")));
    bn_gguf_writer_free(w);
    bn_gguf_free(src);

    bn_gguf *g = reopen(tmp("nested.gguf"));
    assert_int_equal(bn_gguf_version(g), 3);
    const bn_gguf_value *n = bn_gguf_get(g, "nest");
    bn_gguf_value a, a2, e;
    OK(bn_gguf_arr_value(n, 0, &a));
    bn_gguf_str s;
    OK(bn_gguf_arr_str(&a, 1, &s));
    assert_true(str_eq(s, "qr"));
    OK(bn_gguf_arr_value(n, 1, &a));
    OK(bn_gguf_arr_value(&a, 0, &a2));
    assert_int_equal(a2.v.arr.elem_type, BN_GGUF_F32);
    OK(bn_gguf_arr_value(&a2, 1, &e));
    assert_true(e.v.f == -2.0);
    /* the header of a copy is the original's, apart from the version field */
    bn_mapfile mf;
    OK(bn_mapfile_open(&mf, tmp("nested.gguf")));
    assert_true(mf.size >= b.n);
    assert_memory_equal(mf.data + 8, b.p + 8, b.n - 8);
    bn_mapfile_close(&mf);
    bn_gguf_free(g);
    gb_free(&b);
}

/* ---- tensors ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t seed;
    int calls;
} fill_ctx;

static bn_status fill_pattern(void *user, void *dst, size_t nbytes)
{
    fill_ctx *c = user;
    c->calls++;
    for (size_t i = 0; i < nbytes; i++) ((uint8_t *)dst)[i] = (uint8_t)(i * 31 + c->seed);
    return BN_OK;
}

static bn_status fill_fails(void *user, void *dst, size_t nbytes)
{
    (void)user;
    (void)dst;
    (void)nbytes;
    return bn_error(BN_ERR_IO, "source went away");
}

static void test_every_sizeable_tensor_type(void **state)
{
    (void)state;
    for (int align_case = 0; align_case < 2; align_case++) {
        bn_gguf_writer *w;
        OK(bn_gguf_writer_init(&w));
        if (align_case) OK(bn_gguf_writer_set_u32(w, "general.alignment", 64));
        static uint8_t bufs[BN_TYPE_COUNT][8192];
        fill_ctx ctx[BN_TYPE_COUNT];
        int n = 0;
        for (uint32_t t = 0; t < BN_TYPE_COUNT; t++) {
            const bn_type_traits *tr = bn_type_get(t);
            if (!tr || !tr->block_size) continue;
            int64_t ne[3] = {t == BN_TYPE_I2_S ? 128 : tr->block_size * 2, 3, 1};
            size_t nb;
            assert_true(bn_type_tensor_nbytes(t, ne[0], ne[0] * 3, &nb));
            assert_true(nb <= sizeof bufs[t]);
            char name[32];
            snprintf(name, sizeof name, "t.%s", tr->name);
            ctx[t] = (fill_ctx){.seed = (uint8_t)t};
            if (t % 2) {
                OK(bn_gguf_writer_add_tensor_fn(w, name, t, 3, ne, fill_pattern, &ctx[t]));
            } else {
                fill_pattern(&ctx[t], bufs[t], nb);
                OK(bn_gguf_writer_add_tensor(w, name, t, 2, ne, bufs[t]));
            }
            n++;
        }
        assert_true(n >= 30);
        OK(bn_gguf_writer_write(w, tmp("types.gguf")));
        bn_gguf_writer_free(w);

        bn_gguf *g = reopen(tmp("types.gguf"));
        assert_int_equal(bn_gguf_n_tensors(g), n);
        assert_int_equal(bn_gguf_alignment(g), align_case ? 64 : 32);
        for (int64_t i = 0; i < n; i++) {
            const bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
            const bn_type_traits *tr = bn_type_get(t->type);
            char name[32];
            snprintf(name, sizeof name, "t.%s", tr->name);
            assert_true(str_eq(t->name, name));
            assert_int_equal(t->n_dims, t->type % 2 ? 3 : 2);
            assert_int_equal(t->ne[0], t->type == BN_TYPE_I2_S ? 128 : tr->block_size * 2);
            assert_int_equal(t->ne[1], 3);
            assert_int_equal(t->offset % bn_gguf_alignment(g), 0);
            assert_int_equal((bn_gguf_data_offset(g)) % bn_gguf_alignment(g), 0);
            fill_ctx c = {.seed = (uint8_t)t->type};
            uint8_t expect[8192];
            fill_pattern(&c, expect, t->nbytes);
            assert_memory_equal(t->data, expect, t->nbytes);
            if (t->type % 2) assert_int_equal(ctx[t->type].calls, 1);
        }
        bn_gguf_free(g);
    }
}

/* Copying the reference model's metadata and tensors gives back the same file, byte for byte. */
static void test_copy_reference_model(void **state)
{
    (void)state;
    static const char *const files[] = {DATA "/reference/V1/model.gguf", DATA "/reference/V1-TQ1_0/model.gguf",
                                        DATA "/gguf/stories260K.gguf", DATA "/gguf/ggml-vocab-llama-spm.gguf"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        bn_gguf *src = reopen(files[k]);
        bn_gguf_writer *w;
        OK(bn_gguf_writer_init(&w));
        OK(bn_gguf_writer_copy_kv(w, src));
        for (int64_t i = 0; i < bn_gguf_n_tensors(src); i++) {
            const bn_gguf_tensor *t = bn_gguf_tensor_at(src, i);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            OK(bn_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data));
        }
        OK(bn_gguf_writer_write(w, tmp("copy.gguf")));
        bn_gguf_writer_free(w);
        bn_mapfile a, b;
        OK(bn_mapfile_open(&a, files[k]));
        OK(bn_mapfile_open(&b, tmp("copy.gguf")));
        /* vocab-only files from llama.cpp end unpadded; ours pad the header to the alignment */
        size_t n = a.size < b.size ? a.size : b.size;
        if (bn_gguf_n_tensors(src)) assert_int_equal(a.size, b.size);
        else assert_true(b.size - a.size < 32);
        if (memcmp(a.data, b.data, n) != 0) fail_msg("copy of %s differs", files[k]);
        bn_mapfile_close(&a);
        bn_mapfile_close(&b);
        bn_gguf_free(src);
    }
}

/* ---- errors and atomicity ------------------------------------------------------------------ */

static void test_writer_errors(void **state)
{
    (void)state;
    bn_gguf_writer *w;
    OK(bn_gguf_writer_init(&w));
    float data[64] = {0};
    int64_t ne[2] = {8, 8};
    OK(bn_gguf_writer_add_tensor(w, "a", BN_TYPE_F32, 2, ne, data));
    assert_int_equal(bn_gguf_writer_add_tensor(w, "a", BN_TYPE_F32, 2, ne, data), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "duplicate tensor name 'a'"));
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_TL1, 2, ne, data), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", 200, 2, ne, data), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_Q8_0, 2, ne, data), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "cannot be sized"));
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_F32, 0, ne, data), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_F32, 5, ne, data), BN_ERR_INVALID_ARG);
    int64_t neg[2] = {8, -1};
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_F32, 2, neg, data), BN_ERR_INVALID_ARG);
    int64_t huge[2] = {INT64_MAX, 2};
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_F32, 2, huge, data), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_add_tensor(w, "b", BN_TYPE_F32, 2, ne, NULL), BN_ERR_INVALID_ARG);
    char long_name[80];
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    assert_int_equal(bn_gguf_writer_add_tensor(w, long_name, BN_TYPE_F32, 2, ne, data), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_add_tensor(w, "", BN_TYPE_F32, 2, ne, data), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_add_tensor_fn(w, "b", BN_TYPE_F32, 2, ne, NULL, NULL), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_set_u32(w, "", 1), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_set_str(w, "s", NULL), BN_ERR_INVALID_ARG);
    const char *bad[2] = {"ok", NULL};
    assert_int_equal(bn_gguf_writer_set_array(w, "s", BN_GGUF_STRING, bad, 2), BN_ERR_INVALID_ARG);
    uint8_t notbool[2] = {0, 2};
    assert_int_equal(bn_gguf_writer_set_array(w, "s", BN_GGUF_BOOL, notbool, 2), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_gguf_writer_set_array(w, "s", BN_GGUF_ARRAY, notbool, 1), BN_ERR_INVALID_ARG);
    bn_gguf_value arr = {.type = BN_GGUF_ARRAY}; /* not from a reader */
    assert_int_equal(bn_gguf_writer_set_value(w, "s", &arr), BN_ERR_INVALID_ARG);
    /* a failed set leaves no key behind */
    OK(bn_gguf_writer_write(w, tmp("errors.gguf")));
    bn_gguf *g = reopen(tmp("errors.gguf"));
    assert_int_equal(bn_gguf_n_kv(g), 0);
    assert_int_equal(bn_gguf_n_tensors(g), 1);
    bn_gguf_free(g);

    /* alignment must be a u32 power of two */
    OK(bn_gguf_writer_set_u32(w, "general.alignment", 48));
    assert_int_equal(bn_gguf_writer_write(w, tmp("x.gguf")), BN_ERR_INVALID_ARG);
    OK(bn_gguf_writer_set_u64(w, "general.alignment", 64));
    assert_int_equal(bn_gguf_writer_write(w, tmp("x.gguf")), BN_ERR_INVALID_ARG);
    OK(bn_gguf_writer_set_u32(w, "general.alignment", 64));
    assert_int_equal(bn_gguf_writer_write(w, "/nonexistent-dir/x.gguf"), BN_ERR_IO);
    /* a key with a NUL byte cannot be copied into a C string: reported, not cut */
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 3);
    gb_raw(&b, "a\0b", 3);
    gb_u32(&b, 4);
    gb_u32(&b, 1);
    bn_gguf *src;
    OK(bn_gguf_open_memory(b.p, b.n, &src));
    assert_int_equal(bn_gguf_writer_copy_kv(w, src), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(bn_last_error(), "NUL byte"));
    bn_gguf_free(src);
    gb_free(&b);
    bn_gguf_writer_free(w);
    bn_gguf_writer_free(NULL);
}

/* A failure while writing leaves the destination as it was and no temporary file behind. */
static void test_write_is_atomic(void **state)
{
    (void)state;
    bn_gguf_writer *w;
    OK(bn_gguf_writer_init(&w));
    OK(bn_gguf_writer_set_str(w, "general.name", "first"));
    OK(bn_gguf_writer_write(w, tmp("atomic.gguf")));
    int files = count_files();
    int64_t ne[1] = {32};
    fill_ctx c = {0};
    OK(bn_gguf_writer_add_tensor_fn(w, "good", BN_TYPE_F32, 1, ne, fill_pattern, &c));
    OK(bn_gguf_writer_add_tensor_fn(w, "bad", BN_TYPE_F32, 1, ne, fill_fails, NULL));
    OK(bn_gguf_writer_set_str(w, "general.name", "second"));
    assert_int_equal(bn_gguf_writer_write(w, tmp("atomic.gguf")), BN_ERR_IO);
    assert_non_null(strstr(bn_last_error(), "'bad'"));
    assert_non_null(strstr(bn_last_error(), "source went away"));
    assert_int_equal(count_files(), files);
    bn_gguf *g = reopen(tmp("atomic.gguf"));
    bn_gguf_str s;
    OK(bn_gguf_get_str(g, "general.name", &s));
    assert_true(str_eq(s, "first"));
    assert_int_equal(bn_gguf_n_tensors(g), 0);
    bn_gguf_free(g);
    bn_gguf_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_and_array_values),
        cmocka_unit_test(test_nested_arrays_copy),
        cmocka_unit_test(test_every_sizeable_tensor_type),
        cmocka_unit_test(test_copy_reference_model),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_write_is_atomic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
