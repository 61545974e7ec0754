/* Engine against bitnet.cpp: the synthetic BitNet models in tests/data/reference were evaluated
 * by bitnet.cpp (see tests/data/reference/README.md).  Our logits must match positions 0 and 1
 * to 1e-3 (exact math), every position with cosine >= 0.999, and >= 90% of argmaxes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "bitnet.h"
#include "common/error.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/model.h"

/* Asserts success, printing the library's message when it fails. */
#define assert_ok(expr) \
    do { \
        bn_status st_ = (expr); \
        if (st_ != BN_OK) print_error("%s: %s\n", #expr, bn_last_error()); \
        assert_int_equal(st_, BN_OK); \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* Reads the integer array that follows "key": in a JSON text (enough for case.json). */
static int json_int_array(const char *json, const char *key, int32_t *out, int cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p = strchr(p, '[');
    if (!p) return -1;
    int n = 0;
    p++;
    while (*p && *p != ']' && n < cap) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        out[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

typedef struct {
    double max_abs01, min_cos;
    int argmax_agree, n;
} agreement;

static void compare(const float *ours, const float *ref, int n_tok, int n_vocab, agreement *a)
{
    a->max_abs01 = 0;
    a->min_cos = 1;
    a->argmax_agree = 0;
    a->n = n_tok;
    for (int t = 0; t < n_tok; t++) {
        const float *x = ours + (size_t)t * n_vocab, *y = ref + (size_t)t * n_vocab;
        double dot = 0, nx = 0, ny = 0;
        int ax = 0, ay = 0;
        for (int v = 0; v < n_vocab; v++) {
            dot += (double)x[v] * y[v];
            nx += (double)x[v] * x[v];
            ny += (double)y[v] * y[v];
            if (x[v] > x[ax]) ax = v;
            if (y[v] > y[ay]) ay = v;
            if (t < 2 && fabs((double)x[v] - y[v]) > a->max_abs01) a->max_abs01 = fabs((double)x[v] - y[v]);
        }
        double cos = dot / sqrt(nx * ny);
        if (cos < a->min_cos) a->min_cos = cos;
        a->argmax_agree += ax == ay;
    }
}

static void run_reference_at(const char *root, const char *dir, int n_threads, agreement *a)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/case.json", root, dir);
    char *json = slurp(path, NULL);
    assert_non_null(json);
    int32_t tokens[4096];
    int n = json_int_array(json, "tokens", tokens, 4096);
    assert_true(n > 2);
    free(json);

    snprintf(path, sizeof path, "%s/%s/model.gguf", root, dir);
    bn_gguf *g;
    assert_ok(bn_gguf_open(path, &g));
    bn_model *m;
    assert_ok(bn_model_init_gguf(g, &m));
    bn_ctx_params cp = {.n_ctx = n, .n_threads = n_threads};
    bn_ctx *c;
    assert_ok(bn_ctx_init(m, &cp, &c));
    assert_ok(bn_ctx_eval(c, tokens, n, true));
    const int nv = m->hp.n_vocab;
    float *ours = malloc((size_t)n * nv * sizeof(float));
    for (int t = 0; t < n; t++) memcpy(ours + (size_t)t * nv, bn_ctx_logits(c, t), (size_t)nv * sizeof(float));
    /* weights repacked at load, as bitnet_model_load does (with the file's pages released):
     * the same logits, bit for bit */
    bn_ctx_free(c);
    assert_ok(bn_model_repack(m, bn_gguf_is_file_mapping(g), false));
    if (m->hp.n_layer > 0 && m->layers[0].wq.type == BN_TYPE_I2_S && bn_kernels_repack_i2s())
        assert_true(m->repacked_bytes > 0);
    assert_ok(bn_ctx_init(m, &cp, &c));
    assert_ok(bn_ctx_eval(c, tokens, n, true));
    for (int t = 0; t < n; t++) assert_memory_equal(ours + (size_t)t * nv, bn_ctx_logits(c, t), (size_t)nv * sizeof(float));

    snprintf(path, sizeof path, "%s/%s/logits_ref.f32", root, dir);
    size_t len;
    float *ref = (float *)slurp(path, &len);
    assert_non_null(ref);
    assert_int_equal(len, (size_t)n * nv * sizeof(float));
    compare(ours, ref, n, nv, a);
    printf("# %s (%d threads): positions 0-1 max|d| %.2e, min cosine %.7f, argmax %d/%d\n", dir, n_threads,
           a->max_abs01, a->min_cos, a->argmax_agree, a->n);
    free(ref);
    free(ours);
    bn_ctx_free(c);
    bn_model_free(m);
}

static void run_reference(const char *dir, int n_threads, agreement *a)
{
    char root[512];
    snprintf(root, sizeof root, "%s/reference", BITNET_TEST_DATA);
    run_reference_at(root, dir, n_threads, a);
}

/* The reference I2_S model, loaded (and checked) for a test. */
static bn_model *load_v1(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reference/V1/model.gguf", BITNET_TEST_DATA);
    bn_gguf *g;
    bn_model *m = NULL;
    assert_ok(bn_gguf_open(path, &g));
    assert_ok(bn_model_init_gguf(g, &m));
    return m;
}

static void check(const agreement *a)
{
    assert_true(a->max_abs01 <= 1e-3);
    assert_true(a->min_cos >= 0.999);
    assert_true(a->argmax_agree * 10 >= a->n * 9);
}

static void test_reference_i2s(void **state)
{
    (void)state;
    agreement a1, a2;
    run_reference("V1", 1, &a1);
    check(&a1);
    run_reference("V1", 2, &a2);
    /* threads split rows, never a sum: results are identical */
    assert_true(a1.max_abs01 == a2.max_abs01 && a1.min_cos == a2.min_cos);
}

static void test_reference_tq2(void **state)
{
    (void)state;
    agreement a;
    run_reference("V1-TQ2_0", 1, &a);
    check(&a);
}

static void test_reference_tq1(void **state)
{
    (void)state;
    agreement a;
    run_reference("V1-TQ1_0", 2, &a);
    check(&a);
}

/* bitnet.cpp's greedy continuation: 8 prompt tokens in one batch, then one token per step. */
static void test_reference_greedy(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/reference/V1/case.json", BITNET_TEST_DATA);
    char *json = slurp(path, NULL);
    int32_t prompt[16], expect[64];
    int np = json_int_array(json, "greedy_prompt", prompt, 16);
    int ne = json_int_array(json, "greedy_ids", expect, 64);
    free(json);
    assert_int_equal(np, 8);
    assert_int_equal(ne, 32);
    bn_model *m = load_v1();
    bn_ctx *c;
    bn_ctx_params cp = {.n_ctx = 64, .n_threads = 2, .match_reference = true};
    assert_ok(bn_ctx_init(m, &cp, &c));
    assert_ok(bn_ctx_eval(c, prompt, np, false));
    int agree = 0, first_diff = -1;
    for (int i = 0; i < ne; i++) {
        const float *l = bn_ctx_logits(c, -1);
        int32_t best = 0;
        for (int v = 1; v < m->hp.n_vocab; v++)
            if (l[v] > l[best]) best = v;
        if (best == expect[i]) agree++;
        else if (first_diff < 0) first_diff = i;
        assert_ok(bn_ctx_eval(c, &expect[i], 1, false)); /* teacher forcing */
    }
    printf("# greedy: %d/%d ids agree (first difference at %d)\n", agree, ne, first_diff);
    assert_true(agree * 10 >= ne * 9);
    bn_ctx_free(c);
    bn_model_free(m);
}

/* Every reference case we can find, including ones added later to ../shared/data/reference
 * (the same bar applies to models this test has never seen). */
static void check_all_in(const char *root, int *n_checked)
{
    DIR *d = opendir(root);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/case.json", root, e->d_name);
        if (access(path, R_OK) != 0) continue;
        snprintf(path, sizeof path, "%s/%s/logits_ref.f32", root, e->d_name);
        if (access(path, R_OK) != 0) continue;
        agreement a;
        run_reference_at(root, e->d_name, 2, &a);
        check(&a);
        (*n_checked)++;
    }
    closedir(d);
}

static void test_reference_all(void **state)
{
    (void)state;
    char root[1024];
    int n = 0;
    snprintf(root, sizeof root, "%s/reference", BITNET_TEST_DATA);
    check_all_in(root, &n);
    assert_true(n >= 3);
    snprintf(root, sizeof root, "%s/../shared/data/reference", BITNET_SOURCE_DIR);
    check_all_in(root, &n);
}

static void test_context_overflow_and_bad_tokens(void **state)
{
    (void)state;
    bn_model *m = load_v1();
    bn_ctx *c;
    bn_ctx_params cp = {.n_ctx = 4, .n_threads = 1};
    assert_ok(bn_ctx_init(m, &cp, &c));
    int32_t toks[5] = {1, 2, 3, 4, 5};
    assert_int_equal(bn_ctx_eval(c, toks, 5, false), BN_ERR_RANGE);
    assert_non_null(strstr(bn_last_error(), "context"));
    assert_int_equal(bn_ctx_pos(c), 0);
    assert_ok(bn_ctx_eval(c, toks, 3, false));
    assert_int_equal(bn_ctx_eval(c, toks, 2, false), BN_ERR_RANGE);
    assert_int_equal(bn_ctx_pos(c), 3);
    int32_t bad = 512;
    assert_int_equal(bn_ctx_eval(c, &bad, 1, false), BN_ERR_RANGE);
    assert_ok(bn_ctx_truncate(c, 1));
    assert_int_equal(bn_ctx_pos(c), 1);
    assert_int_equal(bn_ctx_truncate(c, 2), BN_ERR_RANGE);
    bn_ctx_params bad_p = {.n_ctx = -1};
    bn_ctx *c2;
    assert_int_equal(bn_ctx_init(m, &bad_p, &c2), BN_ERR_INVALID_ARG);
    bn_ctx_free(c);
    bn_model_free(m);
}

/* Incremental decoding equals batch decoding up to the reference's own precision switch. */
static void test_batch_vs_incremental(void **state)
{
    (void)state;
    bn_model *m = load_v1();
    bn_ctx *c1, *c2;
    bn_ctx_params cp = {.n_ctx = 32, .n_threads = 2, .kv_f32 = true};
    assert_ok(bn_ctx_init(m, &cp, &c1));
    assert_ok(bn_ctx_init(m, &cp, &c2));
    int32_t toks[12] = {510, 5, 77, 300, 12, 9, 400, 401, 3, 250, 251, 100};
    assert_ok(bn_ctx_eval(c1, toks, 12, true));
    for (int i = 0; i < 12; i++) {
        assert_ok(bn_ctx_eval(c2, &toks[i], 1, false));
        const float *a = bn_ctx_logits(c1, i), *b = bn_ctx_logits(c2, -1);
        double dot = 0, na = 0, nb = 0;
        for (int v = 0; v < m->hp.n_vocab; v++) {
            dot += (double)a[v] * b[v];
            na += (double)a[v] * a[v];
            nb += (double)b[v] * b[v];
        }
        assert_true(dot / sqrt(na * nb) > 0.999);
    }
    bn_ctx_free(c1);
    bn_ctx_free(c2);
    bn_model_free(m);
}

/* By default, logits do not depend on how tokens are split into passes: a whole batch, a batch
 * then single steps, and single steps all give the same bits (so a cached prefix is reusable). */
static void test_split_independent(void **state)
{
    (void)state;
    bn_model *m = load_v1();
    const int32_t toks[12] = {510, 5, 77, 300, 12, 9, 400, 401, 3, 250, 251, 100};
    const int splits[3][12] = {{12}, {11, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    float last[3][512];
    for (int s = 0; s < 3; s++) {
        bn_ctx_params cp = {.n_ctx = 16, .n_threads = 2};
        bn_ctx *c;
        assert_ok(bn_ctx_init(m, &cp, &c));
        for (int i = 0, done = 0; done < 12; done += splits[s][i], i++)
            assert_ok(bn_ctx_eval(c, toks + done, splits[s][i], false));
        memcpy(last[s], bn_ctx_logits(c, -1), sizeof last[s]);
        bn_ctx_free(c);
    }
    assert_memory_equal(last[0], last[1], sizeof last[0]);
    assert_memory_equal(last[0], last[2], sizeof last[0]);
    bn_model_free(m);
}

/* Lazy repacking, a slice before each evaluation after a context's first: every evaluation,
 * before, during and after the switch to the repacked weights, gives the same logits. */
static void test_lazy_repack(void **state)
{
    (void)state;
    const int32_t toks[6] = {510, 5, 77, 300, 12, 9};
    bn_ctx_params cp = {.n_ctx = 8, .n_threads = 2};
    float want[512], got[512];
    bn_model *m = load_v1();
    bn_ctx *c;
    assert_ok(bn_ctx_init(m, &cp, &c));
    assert_ok(bn_ctx_eval(c, toks, 6, false));
    memcpy(want, bn_ctx_logits(c, -1), sizeof want);
    bn_ctx_free(c);
    bn_model_free(m);

    m = load_v1();
    assert_ok(bn_model_repack(m, bn_gguf_is_file_mapping(m->gguf), true));
    assert_null(bn_weight_packed(&m->layers[0].wq)); /* nothing copied yet */
    assert_ok(bn_ctx_init(m, &cp, &c));
    for (int t = 0; t < 6; t++) { /* token by token: the first pass repacks nothing, later ones do */
        assert_ok(bn_ctx_eval(c, toks + t, 1, false));
        if (t == 0) assert_null(bn_weight_packed(&m->layers[0].wq));
    }
    memcpy(got, bn_ctx_logits(c, -1), sizeof got);
    bn_ctx_free(c);
    assert_memory_equal(want, got, sizeof want);
    if (bn_kernels_repack_i2s()) /* the tiny model fits one 64 MiB slice */
        for (int l = 0; l < m->hp.n_layer; l++) assert_non_null(bn_weight_packed(&m->layers[l].w_down));
    assert_ok(bn_model_repack_step(m, NULL, 1)); /* all done: a no-op */
    bn_model_free(m);
}

/* Continuous batching gives each sequence the logits it would get alone, bit for bit, however the
 * work is shared (one pass, or a group of sequences per thread) and wherever a sequence sits. */
static void test_eval_multi(void **state)
{
    (void)state;
    bn_model *m = load_v1();
    enum { NS = 5 };
    const bn_batch_split modes[3] = {BN_BATCH_SPLIT_ROWS, BN_BATCH_SPLIT_SEQUENCES, BN_BATCH_SPLIT_AUTO};
    const int32_t prompts[NS][10] = {{510, 1, 2, 3}, {510, 100, 200}, {510, 7}, {510, 9, 9}, {510, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
    const int plen[NS] = {4, 3, 2, 3, 10};
    for (int mode = 0; mode < 3; mode++) {
        bn_ctx *multi[NS], *alone[NS];
        /* n_batch 2: a group's passes are split too.  Sequence 3 has a shorter context than
         * sequence 4's position: its group (3 and 4 on the second thread) must not run on its
         * scratch buffers. */
        bn_ctx_params cp = {.n_ctx = 32, .n_threads = 2, .n_batch = 2, .batch_split = modes[mode]};
        for (int i = 0; i < NS; i++) {
            bn_ctx_params p = cp;
            if (i == 3) p.n_ctx = 8;
            assert_ok(bn_ctx_init(m, &p, &multi[i]));
            assert_ok(bn_ctx_init(m, &p, &alone[i]));
            assert_ok(bn_ctx_eval(multi[i], prompts[i], plen[i], false));
            assert_ok(bn_ctx_eval(alone[i], prompts[i], plen[i], false));
        }
        int32_t next[NS] = {40, 41, 42, 43, 44};
        for (int step = 0; step < 3; step++) {
            const int n = step == 1 ? 2 : NS; /* a batch of two: one sequence per thread */
            assert_ok(bn_ctx_eval_multi(multi, next, n));
            for (int i = 0; i < n; i++) {
                assert_ok(bn_ctx_eval(alone[i], &next[i], 1, false));
                assert_int_equal(bn_ctx_pos(multi[i]), bn_ctx_pos(alone[i]));
                const float *a = bn_ctx_logits(multi[i], -1), *b = bn_ctx_logits(alone[i], -1);
                assert_memory_equal(a, b, (size_t)m->hp.n_vocab * sizeof(float));
            }
        }
        bn_ctx *dup[2] = {multi[0], multi[0]};
        assert_int_equal(bn_ctx_eval_multi(dup, next, 2), BN_ERR_INVALID_ARG);
        /* a full context fails the whole batch, evaluating none */
        assert_ok(bn_ctx_truncate(multi[3], 0));
        int32_t fill[8] = {0};
        assert_ok(bn_ctx_eval(multi[3], fill, 8, false));
        const int pos0 = bn_ctx_pos(multi[0]);
        assert_int_equal(bn_ctx_eval_multi(multi, next, NS), BN_ERR_RANGE);
        assert_int_equal(bn_ctx_pos(multi[0]), pos0);
        for (int i = 0; i < NS; i++) {
            bn_ctx_free(multi[i]);
            bn_ctx_free(alone[i]);
        }
    }
    bn_ctx_params bad = {.n_ctx = 8, .batch_split = (bn_batch_split)7};
    bn_ctx *c = NULL;
    assert_int_equal(bn_ctx_init(m, &bad, &c), BN_ERR_INVALID_ARG);
    assert_null(c);
    bn_model_free(m);
}

/* A batch mixing prompt pieces and single tokens (the server's turn with a new request) gives every
 * sequence the logits it gets alone, bit for bit, with the pieces split across passes (n_batch 2:
 * a piece straddles passes, and one pass ends no sequence). */
static void test_eval_batch_mixed(void **state)
{
    (void)state;
    bn_model *m = load_v1();
    enum { NS = 3 };
    bn_ctx *multi[NS], *alone[NS];
    bn_ctx_params cp = {.n_ctx = 32, .n_threads = 2, .n_batch = 2};
    for (int i = 0; i < NS; i++) {
        assert_ok(bn_ctx_init(m, &cp, &multi[i]));
        assert_ok(bn_ctx_init(m, &cp, &alone[i]));
    }
    const int32_t first[1] = {510};
    assert_ok(bn_ctx_eval(multi[1], first, 1, false)); /* sequence 1 is generating */
    assert_ok(bn_ctx_eval(alone[1], first, 1, false));
    /* sequence 0: a 3-token prompt; 1: its next token; 2: a 4-token prompt */
    const int32_t toks[8] = {510, 11, 12, 40, 510, 21, 22, 23};
    const int counts[NS] = {3, 1, 4};
    assert_ok(bn_ctx_eval_batch(multi, toks, counts, NS, NULL, NULL));
    assert_ok(bn_ctx_eval(alone[0], toks, 3, false));
    assert_ok(bn_ctx_eval(alone[1], toks + 3, 1, false));
    assert_ok(bn_ctx_eval(alone[2], toks + 4, 4, false));
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < NS; i++) {
            assert_int_equal(bn_ctx_pos(multi[i]), bn_ctx_pos(alone[i]));
            assert_non_null(bn_ctx_logits(multi[i], -1));
            assert_memory_equal(bn_ctx_logits(multi[i], -1), bn_ctx_logits(alone[i], -1), (size_t)m->hp.n_vocab * sizeof(float));
        }
        const int32_t next[NS] = {50, 51, 52}; /* then a decode batch */
        assert_ok(bn_ctx_eval_batch(multi, next, NULL, NS, NULL, NULL));
        for (int i = 0; i < NS; i++) assert_ok(bn_ctx_eval(alone[i], &next[i], 1, false));
    }
    /* match_reference: a context's only token in the batch gets single-token numerics (the f16
     * rounding of its attention weights), beside another's prompt piece as alone */
    {
        bn_ctx_params rp = {.n_ctx = 32, .n_threads = 2, .match_reference = true};
        bn_ctx *rm[2], *ra[2];
        for (int i = 0; i < 2; i++) {
            assert_ok(bn_ctx_init(m, &rp, &rm[i]));
            assert_ok(bn_ctx_init(m, &rp, &ra[i]));
        }
        assert_ok(bn_ctx_eval(rm[1], toks, 3, false));
        assert_ok(bn_ctx_eval(ra[1], toks, 3, false));
        const int rc[2] = {4, 1};
        const int32_t rt[5] = {510, 21, 22, 23, 60};
        assert_ok(bn_ctx_eval_batch(rm, rt, rc, 2, NULL, NULL));
        assert_ok(bn_ctx_eval(ra[0], rt, 4, false));
        assert_ok(bn_ctx_eval(ra[1], rt + 4, 1, false));
        for (int i = 0; i < 2; i++) {
            assert_memory_equal(bn_ctx_logits(rm[i], -1), bn_ctx_logits(ra[i], -1), (size_t)m->hp.n_vocab * sizeof(float));
            bn_ctx_free(rm[i]);
            bn_ctx_free(ra[i]);
        }
    }
    /* bad counts and a context without room fail, evaluating nothing */
    const int zero[NS] = {1, 0, 1}, many[NS] = {1, 1, 40};
    const int pos0 = bn_ctx_pos(multi[0]);
    int32_t big[42] = {0};
    assert_int_equal(bn_ctx_eval_batch(multi, big, zero, NS, NULL, NULL), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_ctx_eval_batch(multi, big, many, NS, NULL, NULL), BN_ERR_RANGE);
    assert_int_equal(bn_ctx_pos(multi[0]), pos0);
    for (int i = 0; i < NS; i++) {
        bn_ctx_free(multi[i]);
        bn_ctx_free(alone[i]);
    }
    bn_model_free(m);
}

/* bitnet_eval_multi_sample samples on the engine's threads what the caller would sample after
 * bitnet_eval_multi: the same tokens from samplers with the same seeds, for every batch split. */
static void test_eval_multi_sample(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/reference/V1/model.gguf", BITNET_TEST_DATA);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load(path, NULL, &m), BITNET_OK);
    enum { NS = 3 };
    const bitnet_batch_split modes[2] = {BITNET_BATCH_SPLIT_ROWS, BITNET_BATCH_SPLIT_SEQUENCES};
    for (int mode = 0; mode < 2; mode++) {
        bitnet_context *a[NS], *b[NS];
        bitnet_sampler *sa[NS], *sb[NS];
        bitnet_context_params cp;
        bitnet_context_params_default(&cp);
        cp.n_ctx = 32;
        cp.n_threads = 2;
        cp.batch_split = modes[mode];
        bitnet_sampler_params sp;
        bitnet_sampler_params_default(&sp);
        sp.temperature = 1.5f; /* a spread distribution: different seeds pick different tokens */
        sp.top_k = 0;
        sp.top_p = 1.0f;
        sp.min_p = 0.0f;
        for (int i = 0; i < NS; i++) {
            sp.seed = 100u + (uint64_t)i;
            assert_int_equal(bitnet_context_init(m, &cp, &a[i]), BITNET_OK);
            assert_int_equal(bitnet_context_init(m, &cp, &b[i]), BITNET_OK);
            assert_int_equal(bitnet_sampler_init(&sp, &sa[i]), BITNET_OK);
            assert_int_equal(bitnet_sampler_init(&sp, &sb[i]), BITNET_OK);
        }
        bitnet_token ta[NS] = {3, 4, 5}, tb[NS] = {3, 4, 5}, next[NS];
        for (int step = 0; step < 6; step++) {
            assert_int_equal(bitnet_eval_multi_sample(a, ta, NS, sa, next), BITNET_OK);
            assert_int_equal(bitnet_eval_multi(b, tb, NS), BITNET_OK);
            for (int i = 0; i < NS; i++) {
                const bitnet_token want = bitnet_sampler_sample(sb[i], bitnet_get_logits(b[i], -1), 512);
                assert_true(want >= 0);
                assert_int_equal(next[i], want);
                /* the logits stay readable, the same as bitnet_eval_multi's */
                assert_memory_equal(bitnet_get_logits(a[i], -1), bitnet_get_logits(b[i], -1), 512 * sizeof(float));
                ta[i] = tb[i] = next[i];
            }
        }
        /* a prompt in a batch: its first token is what sampling after evaluating it alone gives */
        {
            const bitnet_token prompt[4] = {7, 8, 9, 10};
            const int counts[2] = {4, 1};
            bitnet_token both[5] = {7, 8, 9, 10, ta[1]}, got[2];
            bitnet_context *pair[2] = {a[0], a[1]};
            bitnet_sampler *ps[2] = {sa[0], sa[1]};
            assert_int_equal(bitnet_context_truncate(a[0], 0), BITNET_OK);
            assert_int_equal(bitnet_context_truncate(b[0], 0), BITNET_OK);
            assert_int_equal(bitnet_eval_batch(pair, both, counts, 2, ps, got), BITNET_OK);
            assert_int_equal(bitnet_eval(b[0], prompt, 4, false), BITNET_OK);
            assert_int_equal(bitnet_eval(b[1], &tb[1], 1, false), BITNET_OK);
            assert_int_equal(got[0], bitnet_sampler_sample(sb[0], bitnet_get_logits(b[0], -1), 512));
            assert_int_equal(got[1], bitnet_sampler_sample(sb[1], bitnet_get_logits(b[1], -1), 512));
            ta[0] = tb[0] = got[0];
            ta[1] = tb[1] = got[1];
            assert_int_equal(bitnet_eval_batch(pair, both, counts, 2, ps, NULL), BITNET_ERR_INVALID_ARG);
        }
        /* a NULL sampler gives -1 for its sequence only; a sampler twice is refused */
        bitnet_sampler *some[NS] = {sa[0], NULL, sa[2]}, *twice[NS] = {sa[0], sa[1], sa[0]};
        assert_int_equal(bitnet_eval_multi_sample(a, ta, NS, some, next), BITNET_OK);
        assert_true(next[0] >= 0 && next[2] >= 0);
        assert_int_equal(next[1], -1);
        const int pos = bitnet_context_pos(a[0]);
        assert_int_equal(bitnet_eval_multi_sample(a, ta, NS, twice, next), BITNET_ERR_INVALID_ARG);
        assert_int_equal(bitnet_context_pos(a[0]), pos);
        assert_int_equal(bitnet_eval_multi_sample(a, ta, NS, NULL, next), BITNET_ERR_INVALID_ARG);
        for (int i = 0; i < NS; i++) {
            bitnet_context_free(a[i]);
            bitnet_context_free(b[i]);
            bitnet_sampler_free(sa[i]);
            bitnet_sampler_free(sb[i]);
        }
    }
    bitnet_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_i2s),
        cmocka_unit_test(test_reference_tq2),
        cmocka_unit_test(test_reference_tq1),
        cmocka_unit_test(test_reference_greedy),
        cmocka_unit_test(test_reference_all),
        cmocka_unit_test(test_context_overflow_and_bad_tokens),
        cmocka_unit_test(test_batch_vs_incremental),
        cmocka_unit_test(test_eval_multi),
        cmocka_unit_test(test_eval_multi_sample),
        cmocka_unit_test(test_eval_batch_mixed),
        cmocka_unit_test(test_split_independent),
        cmocka_unit_test(test_lazy_repack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
