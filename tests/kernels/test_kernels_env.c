/* BITNET_KERNELS is read once, at the first use: run with it set (see CMakeLists.txt) and check that
 * the choice follows it, falling back to the reference for an implementation this CPU lacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"

static void test_env_choice(void **state)
{
    (void)state;
    const char *env = getenv("BITNET_KERNELS");
    assert_non_null(env);
    bn_kernel_impl want = BN_KERNEL_REF;
    for (int k = 0; k <= BN_KERNEL_WASM; k++)
        if (strcmp(env, bn_kernel_impl_name((bn_kernel_impl)k)) == 0 && bn_kernel_impl_available((bn_kernel_impl)k))
            want = (bn_kernel_impl)k;
    assert_int_equal(bn_kernels_active(), want);
    /* read once: changing the variable later changes nothing */
    setenv("BITNET_KERNELS", want == BN_KERNEL_REF ? "avx2" : "ref", 1);
    assert_int_equal(bn_kernels_active(), want);
    bitnet_system_info info;
    assert_int_equal(bitnet_system_info_get(&info), BITNET_OK);
    assert_string_equal(info.kernels, bn_kernel_impl_name(want));
}

static void test_system_info(void **state)
{
    (void)state;
    bitnet_system_info info;
    assert_int_equal(bitnet_system_info_get(NULL), BITNET_ERR_INVALID_ARG);
    assert_int_equal(bitnet_system_info_get(&info), BITNET_OK);
    const bn_cpu_features *f = bn_cpu_features_get();
    assert_int_equal(strstr(info.cpu_features, "avx2") != NULL, f->avx2 != 0);
    assert_int_equal(strstr(info.cpu_features, "neon") != NULL, f->neon != 0);
    assert_true(info.n_cores_logical >= 1);
    assert_true(info.n_cores_physical >= 1 && info.n_cores_physical <= info.n_cores_logical);
    /* where Linux describes cpu0's caches, the largest level's size is read (at least an L1's) */
    FILE *f0 = fopen("/sys/devices/system/cpu/cpu0/cache/index0/size", "r");
    if (f0) {
        fclose(f0);
        assert_true(info.cache_bytes >= 4096);
    }
    assert_int_equal(info.cache_bytes, bn_cpu_cache_bytes());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_choice),
        cmocka_unit_test(test_system_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
