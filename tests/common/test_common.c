/* Tests of src/common: errors, checked arithmetic, fp16/bf16, atomic files, thread pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "common/fp16.h"
#include "common/mem.h"
#include "common/threadpool.h"

static void test_error_message(void **state)
{
    (void)state;
    bn_error_clear();
    assert_string_equal(bn_last_error(), "");
    assert_int_equal(bn_error(BN_ERR_FORMAT, "bad %s at %d", "magic", 4), BN_ERR_FORMAT);
    assert_string_equal(bn_last_error(), "bad magic at 4");
    assert_int_equal(bn_last_status(), BN_ERR_FORMAT);
    bn_error_prefix(BN_ERR_FORMAT, "x.gguf: ");
    assert_string_equal(bn_last_error(), "x.gguf: bad magic at 4");
    assert_string_equal(bn_status_string(BN_ERR_NOMEM), "out of memory");
}

static void test_overflow(void **state)
{
    (void)state;
    size_t r;
    assert_false(bn_mul_overflow(1000, 1000, &r));
    assert_int_equal(r, 1000000);
    assert_true(bn_mul_overflow(SIZE_MAX / 2 + 1, 2, &r));
    assert_true(bn_add_overflow(SIZE_MAX, 1, &r));
    assert_null(bn_calloc(SIZE_MAX / 2, 4));
    assert_int_equal(bn_last_status(), BN_ERR_NOMEM);
}

static void test_fp16_all_values(void **state)
{
    (void)state;
    /* every half converts to float and back to itself (NaNs stay NaNs) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bn_fp16_to_fp32((uint16_t)h);
        uint16_t back = bn_fp32_to_fp16(f);
        if (isnan(f)) assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else assert_int_equal(back, h);
    }
    assert_int_equal(bn_fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(bn_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(bn_fp32_to_fp16(65520.0f), 0x7c00);     /* rounds up to inf */
    assert_int_equal(bn_fp32_to_fp16(65519.0f), 0x7bff);
    assert_int_equal(bn_fp32_to_fp16(5.9604645e-08f), 0x0001); /* smallest subnormal */
    assert_int_equal(bn_fp32_to_fp16(2.98e-08f), 0x0000);     /* below half of it */
    /* ties to even: 1 + 2^-11 is halfway between 1 and 1+2^-10 */
    assert_int_equal(bn_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);
    assert_int_equal(bn_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);
    assert_int_equal(bn_fp32_to_bf16(1.0f), 0x3f80);
    assert_true(bn_bf16_to_fp32(bn_fp32_to_bf16(3.140625f)) == 3.140625f);
}

static void test_fp16_rounding_matches_exhaustive_search(void **state)
{
    (void)state;
    /* for random floats in the half range, the chosen half is the nearest one */
    srand(7);
    for (int i = 0; i < 200000; i++) {
        float f = ((float)rand() / (float)RAND_MAX - 0.5f) * (i % 3 == 0 ? 1e-4f : 1000.0f);
        uint16_t h = bn_fp32_to_fp16(f);
        float d = fabsf(bn_fp16_to_fp32(h) - f);
        float dn = fabsf(bn_fp16_to_fp32((uint16_t)(h + 1)) - f);
        float dp = h & 0x7fff ? fabsf(bn_fp16_to_fp32((uint16_t)(h - 1)) - f) : INFINITY;
        assert_true(d <= dn && d <= dp);
    }
}

static void test_atomic_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/bn_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    bn_atomic_file af;
    assert_int_equal(bn_atomic_file_open(&af, path), BN_OK);
    assert_int_equal(bn_atomic_file_write(&af, "hello", 5), BN_OK);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* not visible before commit */
    assert_int_equal(bn_atomic_file_commit(&af), BN_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5);
    mode_t um = umask(022);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0666 & ~um); /* not mkstemp's 0600 */
    /* abort leaves the old file untouched and no temp file behind */
    assert_int_equal(bn_atomic_file_open(&af, path), BN_OK);
    assert_int_equal(bn_atomic_file_write(&af, "xx", 2), BN_OK);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s", af.tmp_path);
    bn_atomic_file_abort(&af);
    assert_int_not_equal(stat(tmp, &st), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5);
    bn_mapfile mf;
    assert_int_equal(bn_mapfile_open(&mf, path), BN_OK);
    assert_int_equal(mf.size, 5);
    assert_memory_equal(mf.data, "hello", 5);
    bn_mapfile_close(&mf);
    unlink(path);
    assert_int_equal(bn_mapfile_open(&mf, path), BN_ERR_IO);
    assert_non_null(strstr(bn_last_error(), "out.bin"));
    assert_int_equal(bn_atomic_file_open(&af, "/nonexistent-dir/x"), BN_ERR_IO);
    rmdir(dir);
}

typedef struct {
    atomic_long sum;
    atomic_int calls;
} pool_state;

static void pool_task(void *arg, int ith, int nth)
{
    pool_state *ps = arg;
    long lo, hi;
    bn_split_range(1000, ith, nth, 8, &lo, &hi);
    long s = 0;
    for (long i = lo; i < hi; i++) s += i;
    atomic_fetch_add(&ps->sum, s);
    atomic_fetch_add(&ps->calls, 1);
}

static void test_threadpool(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        bn_threadpool *tp;
        assert_int_equal(bn_threadpool_init(&tp, n), BN_OK);
        assert_int_equal(bn_threadpool_size(tp), n);
        for (int rep = 0; rep < 500; rep++) {
            pool_state ps;
            atomic_init(&ps.sum, 0);
            atomic_init(&ps.calls, 0);
            bn_threadpool_run(tp, pool_task, &ps);
            assert_int_equal(atomic_load(&ps.sum), 999 * 1000 / 2);
            assert_int_equal(atomic_load(&ps.calls), n);
        }
        bn_threadpool_free(tp);
    }
    bn_threadpool *tp;
    assert_int_equal(bn_threadpool_init(&tp, 0), BN_ERR_INVALID_ARG);
    assert_true(bn_cpu_count_physical() >= 1);
}

/* Chunked jobs: every chunk runs exactly once, also with more threads than cores (workers that
 * wake late), chunked and plain jobs interleaved on one pool, and on its stack-held state. */
static void test_threadpool_chunks(void **state)
{
    (void)state;
    const int sizes[3] = {1, 2, 7};
    for (int si = 0; si < 3; si++) {
        bn_threadpool *tp;
        assert_int_equal(bn_threadpool_init(&tp, sizes[si]), BN_OK);
        for (int rep = 0; rep < 2000; rep++) {
            pool_state ps;
            atomic_init(&ps.sum, 0);
            atomic_init(&ps.calls, 0);
            int chunks = 1 + rep % 13;
            if (rep % 3 == 2) {
                bn_threadpool_run(tp, pool_task, &ps);
                assert_int_equal(atomic_load(&ps.calls), sizes[si]);
            } else {
                bn_threadpool_run_chunks(tp, pool_task, &ps, chunks);
                assert_int_equal(atomic_load(&ps.calls), chunks);
            }
            assert_int_equal(atomic_load(&ps.sum), 999 * 1000 / 2);
        }
        bn_threadpool_run_chunks(tp, pool_task, NULL, 0); /* no chunks: nothing runs */
        bn_threadpool_free(tp);
    }
    pool_state ps;
    atomic_init(&ps.sum, 0);
    atomic_init(&ps.calls, 0);
    bn_threadpool_run_chunks(NULL, pool_task, &ps, 5); /* no pool: the caller runs them all */
    assert_int_equal(atomic_load(&ps.calls), 5);
    assert_int_equal(atomic_load(&ps.sum), 999 * 1000 / 2);
}

/* A chunk that takes a while (the caller then sleeps on the done signal) when ith is 1, else none. */
static void slow_chunk(void *arg, int ith, int nth)
{
    pool_state *ps = arg;
    if (ith == 1 || nth == 1) {
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&ps->sum, ith);
    atomic_fetch_add(&ps->calls, 1);
}

/* The sleeping paths: jobs far apart (the workers have stopped spinning and sleep, and must be
 * woken), and jobs whose chunks outlast the caller's spinning (the caller sleeps and must be
 * woken by the last worker out); no job may be lost or hang. */
static void test_threadpool_sleep_wake(void **state)
{
    (void)state;
    for (int n = 2; n <= 3; n++) {
        bn_threadpool *tp;
        assert_int_equal(bn_threadpool_init(&tp, n), BN_OK);
        for (int rep = 0; rep < 12; rep++) {
            struct timespec gap = {0, 4 * 1000 * 1000}; /* far beyond the spin and yield phases */
            nanosleep(&gap, NULL);
            pool_state ps;
            atomic_init(&ps.sum, 0);
            atomic_init(&ps.calls, 0);
            if (rep % 2) {
                bn_threadpool_run(tp, pool_task, &ps);
                assert_int_equal(atomic_load(&ps.sum), 999 * 1000 / 2);
                assert_int_equal(atomic_load(&ps.calls), n);
            } else {
                bn_threadpool_run_chunks(tp, slow_chunk, &ps, 2);
                assert_int_equal(atomic_load(&ps.calls), 2);
                assert_int_equal(atomic_load(&ps.sum), 1);
            }
            pool_state ps2;
            atomic_init(&ps2.sum, 0);
            atomic_init(&ps2.calls, 0);
            bn_threadpool_run(tp, slow_chunk, &ps2); /* worker 1 sleeps 3 ms: the caller waits asleep */
            assert_int_equal(atomic_load(&ps2.calls), n);
        }
        bn_threadpool_free(tp);
    }
}

static void test_split_range(void **state)
{
    (void)state;
    for (long n = 0; n < 300; n += 7)
        for (int nth = 1; nth <= 5; nth++) {
            long covered = 0, prev_hi = 0;
            for (int i = 0; i < nth; i++) {
                long lo, hi;
                bn_split_range(n, i, nth, 4, &lo, &hi);
                assert_int_equal(lo, prev_hi);
                assert_true(lo % 4 == 0 || lo == n);
                covered += hi - lo;
                prev_hi = hi;
            }
            assert_int_equal(covered, n);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_message), cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_fp16_all_values), cmocka_unit_test(test_fp16_rounding_matches_exhaustive_search),
        cmocka_unit_test(test_atomic_file), cmocka_unit_test(test_threadpool), cmocka_unit_test(test_threadpool_chunks), cmocka_unit_test(test_threadpool_sleep_wake),
        cmocka_unit_test(test_split_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
