/* Tests of the SafeTensors reader: every dtype, metadata, lookups, sharded sets, and bad files
 * (each failing with a message that names the problem). */
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
#include "common/fp16.h"
#include "safetensors/safetensors.h"
#include "st_writer.h"

static char tmpdir[64];
static char pathbuf[512];

static const char *P(const char *name)
{
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", tmpdir, name);
    return pathbuf;
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/bn_st_XXXXXX");
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

static void expect_error(bn_status got, bn_status want, const char *fragment)
{
    assert_int_equal(got, want);
    if (!strstr(bn_last_error(), fragment)) fail_msg("message '%s' lacks '%s'", bn_last_error(), fragment);
}

static void test_every_dtype(void **state)
{
    (void)state;
    float f32[3] = {1.5f, -2.25f, 0.0f};
    uint16_t f16[3] = {bn_fp32_to_fp16(0.5f), bn_fp32_to_fp16(-3.0f), bn_fp32_to_fp16(65504.0f)};
    uint16_t bf16[3] = {bn_fp32_to_bf16(1.0f), bn_fp32_to_bf16(-0.125f), bn_fp32_to_bf16(3.0e38f)};
    uint8_t u8[3] = {0, 7, 255};
    int8_t i8[3] = {-128, 0, 127};
    int64_t i64[2] = {1, 2};
    st_entry e[] = {
        {"f32", "F32", 1, {3}, f32, sizeof f32},     {"f16", "F16", 2, {1, 3}, f16, sizeof f16},
        {"bf16", "BF16", 1, {3}, bf16, sizeof bf16}, {"u8", "U8", 1, {3}, u8, sizeof u8},
        {"i8", "I8", 1, {3}, i8, sizeof i8},         {"i64", "I64", 1, {2}, i64, sizeof i64},
        {"empty", "F32", 2, {0, 4}, NULL, 0},
    };
    assert_true(st_write(P("all.safetensors"), e, 7));
    bn_safetensors *st;
    assert_int_equal(bn_st_open(P("all.safetensors"), &st), BN_OK);
    assert_int_equal(bn_st_n_tensors(st), 7);
    assert_string_equal(bn_st_metadata(st, "format"), "pt");
    assert_null(bn_st_metadata(st, "nothing"));
    float out[3];
    const bn_st_tensor *t = bn_st_find(st, "f32");
    assert_non_null(t);
    assert_int_equal(bn_st_read_f32(t, 0, 3, out), BN_OK);
    assert_true(out[0] == 1.5f && out[1] == -2.25f && out[2] == 0.0f);
    t = bn_st_find(st, "f16");
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(bn_st_read_f32(t, 0, 3, out), BN_OK);
    assert_true(out[0] == 0.5f && out[1] == -3.0f && out[2] == 65504.0f);
    assert_int_equal(bn_st_read_f32(bn_st_find(st, "bf16"), 1, 2, out), BN_OK);
    assert_true(out[0] == -0.125f && out[1] == bn_bf16_to_fp32(bf16[2]));
    assert_int_equal(bn_st_read_f32(bn_st_find(st, "u8"), 0, 3, out), BN_OK);
    assert_true(out[0] == 0 && out[1] == 7 && out[2] == 255);
    assert_int_equal(bn_st_read_f32(bn_st_find(st, "i8"), 0, 3, out), BN_OK);
    assert_true(out[0] == -128 && out[1] == 0 && out[2] == 127);
    t = bn_st_find(st, "i64");
    assert_int_equal(t->nbytes, 16);
    expect_error(bn_st_read_f32(t, 0, 1, out), BN_ERR_UNSUPPORTED, "I64");
    expect_error(bn_st_read_f32(bn_st_find(st, "f32"), 2, 2, out), BN_ERR_RANGE, "outside");
    t = bn_st_find(st, "empty");
    assert_int_equal(t->n_elem, 0);
    assert_null(bn_st_find(st, "F32"));
    /* name order */
    for (int64_t i = 1; i < bn_st_n_tensors(st); i++)
        assert_true(strcmp(bn_st_tensor_at(st, i - 1)->name, bn_st_tensor_at(st, i)->name) < 0);
    bn_st_release(bn_st_find(st, "f32")); /* data stays readable */
    assert_int_equal(bn_st_read_f32(bn_st_find(st, "f32"), 0, 1, out), BN_OK);
    assert_true(out[0] == 1.5f);
    bn_st_free(st);
}

/* A header given as text, with `data` bytes after it. */
static bn_status open_header(const char *hdr, size_t data_bytes)
{
    uint8_t zeros[64] = {0};
    if (!st_write_raw(P("h.safetensors"), hdr, strlen(hdr), strlen(hdr), zeros, data_bytes)) return BN_ERR_IO;
    bn_safetensors *st = NULL;
    bn_status s = bn_st_open(P("h.safetensors"), &st);
    if (!s) assert_non_null(st);
    bn_st_free(st);
    return s;
}

static void test_bad_headers(void **state)
{
    (void)state;
    assert_int_equal(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), BN_OK);
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8), BN_ERR_FORMAT,
                 "not valid JSON");
    expect_error(open_header("[1,2]", 0), BN_ERR_FORMAT, "JSON object");
    expect_error(open_header("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), BN_ERR_UNSUPPORTED,
                 "unknown dtype 'Q4'");
    expect_error(open_header("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), BN_ERR_FORMAT, "no dtype");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), BN_ERR_FORMAT,
                 "shape[0]");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8), BN_ERR_FORMAT,
                 "shape[0]");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), BN_ERR_FORMAT,
                 "span 8 bytes");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), BN_ERR_FORMAT,
                 "end before");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), BN_ERR_FORMAT,
                 "data_offsets");
    /* the data ends early: a truncated file */
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), BN_ERR_FORMAT,
                 "truncated");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
                             8),
                 BN_ERR_FORMAT, "overlap");
    /* an empty tensor between them does not hide the overlap */
    expect_error(open_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[0,10]},"
                             "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]},"
                             "\"b\":{\"dtype\":\"U8\",\"shape\":[6],\"data_offsets\":[6,12]}}",
                             12),
                 BN_ERR_FORMAT, "overlap");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                             16),
                 BN_ERR_FORMAT, "appears twice");
    expect_error(open_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
                 BN_ERR_UNSUPPORTED, "dimensions");
    expect_error(open_header("{\"__metadata__\":[1]}", 0), BN_ERR_FORMAT, "__metadata__");
    expect_error(open_header("{}  x", 0), BN_ERR_FORMAT, "after the header");
    assert_int_equal(open_header("{}      ", 0), BN_OK);
}

static void test_bad_lengths(void **state)
{
    (void)state;
    bn_safetensors *st = (bn_safetensors *)1;
    /* shorter than the length field */
    FILE *f = fopen(P("short.safetensors"), "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    expect_error(bn_st_open(P("short.safetensors"), &st), BN_ERR_FORMAT, "8-byte header length");
    /* declared header length beyond the file */
    const char *h = "{}";
    assert_true(st_write_raw(P("long.safetensors"), h, 2, 1000, NULL, 0));
    expect_error(bn_st_open(P("long.safetensors"), &st), BN_ERR_FORMAT, "runs past the end of the file");
    assert_true(st_write_raw(P("huge.safetensors"), h, 2, UINT64_MAX, NULL, 0));
    expect_error(bn_st_open(P("huge.safetensors"), &st), BN_ERR_FORMAT, "runs past the end");
    expect_error(bn_st_open(P("absent.safetensors"), &st), BN_ERR_IO, "absent.safetensors");
    /* memory */
    uint8_t buf[16] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(bn_st_open_memory(buf, 10, &st), BN_OK);
    assert_int_equal(bn_st_n_tensors(st), 0);
    bn_st_free(st);
    expect_error(bn_st_open_memory(buf, 9, &st), BN_ERR_FORMAT, "runs past");
    assert_null(st);
}

static void test_sharded(void **state)
{
    (void)state;
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    st_entry e1[] = {{"a", "F32", 2, {2, 2}, a, sizeof a}};
    st_entry e2[] = {{"b", "F32", 1, {2}, b, sizeof b}};
    assert_true(st_write(P("model-00001-of-00002.safetensors"), e1, 1));
    assert_true(st_write(P("model-00002-of-00002.safetensors"), e2, 1));
    assert_true(write_text(P("model.safetensors.index.json"),
                           "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                           "\"b\":\"model-00002-of-00002.safetensors\"}}"));
    bn_safetensors *st;
    assert_int_equal(bn_st_open_dir(tmpdir, &st), BN_OK);
    assert_int_equal(bn_st_n_files(st), 2);
    assert_int_equal(bn_st_n_tensors(st), 2);
    float out[2];
    assert_int_equal(bn_st_read_f32(bn_st_find(st, "b"), 0, 2, out), BN_OK);
    assert_true(out[0] == 5 && out[1] == 6);
    assert_int_equal(bn_st_find(st, "b")->file, 1);
    bn_st_free(st);

    /* the map names a tensor its shard lacks */
    assert_true(write_text(P("model.safetensors.index.json"),
                           "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                           "\"b\":\"model-00001-of-00002.safetensors\"}}"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "'b' is listed in weight_map but is not in");
    /* a shard outside the folder */
    assert_true(write_text(P("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"../x.safetensors\"}}"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "does not name a file in the folder");
    /* a missing shard */
    assert_true(write_text(P("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"gone.safetensors\"}}"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_IO, "gone.safetensors");
    assert_true(write_text(P("model.safetensors.index.json"), "{\"weight_map\":{}}"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "empty");
    assert_true(write_text(P("model.safetensors.index.json"), "{\"weight_map\":"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "not valid JSON");
    /* the same tensor in two shards */
    st_entry e3[] = {{"a", "F32", 1, {2}, b, sizeof b}};
    assert_true(st_write(P("model-00002-of-00002.safetensors"), e3, 1));
    assert_true(write_text(P("model.safetensors.index.json"),
                           "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                           "\"x\":\"model-00002-of-00002.safetensors\"}}"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "appears twice");
    unlink(P("model.safetensors.index.json"));
    /* two files and no index */
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_FORMAT, "no model.safetensors.index.json");
    unlink(P("model-00001-of-00002.safetensors"));
    /* exactly one file of any name */
    assert_int_equal(bn_st_open_dir(tmpdir, &st), BN_OK);
    assert_non_null(bn_st_find(st, "a"));
    bn_st_free(st);
    unlink(P("model-00002-of-00002.safetensors"));
    expect_error(bn_st_open_dir(tmpdir, &st), BN_ERR_NOT_FOUND, "no model.safetensors");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
