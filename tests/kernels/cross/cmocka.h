/* The few cmocka macros the kernel tests use, for cross-compiled runs (qemu) where the target has
 * no cmocka library.  A failed check prints where and exits with status 1. */
#ifndef BN_CROSS_CMOCKA_H
#define BN_CROSS_CMOCKA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_CHECK_FAIL(what)                                                                  \
    do {                                                                                     \
        fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, what);                     \
        exit(1);                                                                             \
    } while (0)
#define assert_true(c) do { if (!(c)) BN_CHECK_FAIL("assert_true(" #c ")"); } while (0)
#define assert_false(c) do { if (c) BN_CHECK_FAIL("assert_false(" #c ")"); } while (0)
#define assert_int_equal(a, b)                                                               \
    do {                                                                                     \
        long long bn_a_ = (long long)(a), bn_b_ = (long long)(b);                            \
        if (bn_a_ != bn_b_) {                                                                \
            fprintf(stderr, "%s:%d: %lld != %lld\n", __FILE__, __LINE__, bn_a_, bn_b_);      \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)
#define assert_memory_equal(a, b, n) do { if (memcmp((a), (b), (n))) BN_CHECK_FAIL("assert_memory_equal"); } while (0)
#define assert_non_null(p) do { if ((p) == NULL) BN_CHECK_FAIL("assert_non_null(" #p ")"); } while (0)
#define assert_null(p) do { if ((p) != NULL) BN_CHECK_FAIL("assert_null(" #p ")"); } while (0)
#define assert_string_equal(a, b) do { if (strcmp((a), (b))) BN_CHECK_FAIL("assert_string_equal"); } while (0)
#define fail() BN_CHECK_FAIL("fail()")

struct CMUnitTest {
    const char *name;
    void (*fn)(void **state);
};
#define cmocka_unit_test(f) {#f, f}

static inline int bn_cross_run(const struct CMUnitTest *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", t[i].name);
        fflush(stdout);
        t[i].fn(NULL);
        printf("[       OK ] %s\n", t[i].name);
    }
    printf("[  PASSED  ] %zu test(s).\n", n);
    return 0;
}
#define cmocka_run_group_tests(tests, setup, teardown) bn_cross_run(tests, sizeof(tests) / sizeof((tests)[0]))

#endif
