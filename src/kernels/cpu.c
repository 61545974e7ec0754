/* CPU feature detection and the choice of kernel implementation, both made once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "kernels/kernels_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BN_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static bn_cpu_features g_feat;
static pthread_once_t g_feat_once = PTHREAD_ONCE_INIT;

#if defined(BN_X86)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void detect(void)
{
    bn_cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(BN_X86)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
        /* The OS must save the wide registers: XCR0 bits 1-2 (SSE, AVX), 5-7 (AVX-512 state). */
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        int os_avx = avx && (xcr0 & 0x6) == 0x6;
        int os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
        f.fma = os_avx && ((c >> 12) & 1);
        f.f16c = os_avx && ((c >> 29) & 1);
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            f.avx2 = os_avx && ((b >> 5) & 1);
            f.avx512f = os_avx512 && ((b >> 16) & 1);
            f.avx512bw = os_avx512 && ((b >> 30) & 1);
            f.avx512vl = os_avx512 && ((b >> 31) & 1);
            f.avx512vnni = os_avx512 && ((c >> 11) & 1);
            f.avx512vbmi = os_avx512 && ((c >> 1) & 1);
        }
    }
#elif defined(__aarch64__)
    f.neon = 1; /* Advanced SIMD is part of AArch64 */
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
    f.dotprod = (hw >> 20) & 1; /* HWCAP_ASIMDDP */
#elif defined(__ARM_FEATURE_DOTPROD)
    f.dotprod = 1;
#endif
#endif
#if defined(__wasm_simd128__)
    f.wasm_simd = 1;
#endif
    g_feat = f;
}

const bn_cpu_features *bn_cpu_features_get(void)
{
    pthread_once(&g_feat_once, detect);
    return &g_feat;
}

const char *bn_kernel_impl_name(bn_kernel_impl k)
{
    switch (k) {
    case BN_KERNEL_REF: return "ref";
    case BN_KERNEL_AVX2: return "avx2";
    case BN_KERNEL_AVX512: return "avx512";
    case BN_KERNEL_NEON: return "neon";
    case BN_KERNEL_WASM: return "wasm";
    }
    return "unknown";
}

const bn_kernel_table *bn_kernel_table_get(bn_kernel_impl k)
{
    switch (k) {
#if defined(BN_HAVE_AVX2)
    case BN_KERNEL_AVX2: return &bn_kernels_avx2;
#endif
#if defined(BN_HAVE_AVX512)
    case BN_KERNEL_AVX512: return &bn_kernels_avx512;
#endif
#if defined(BN_HAVE_NEON)
    case BN_KERNEL_NEON: return &bn_kernels_neon;
#endif
#if defined(__wasm_simd128__) /* WebAssembly: SIMD128 is fixed when the module is built */
    case BN_KERNEL_WASM: return &bn_kernels_wasm;
#endif
    default: return &bn_kernels_ref;
    }
}

int bn_kernel_impl_available(bn_kernel_impl k)
{
    const bn_cpu_features *f = bn_cpu_features_get();
    switch (k) {
    case BN_KERNEL_REF: return 1;
#if defined(BN_HAVE_AVX2)
    case BN_KERNEL_AVX2: return f->avx2 && f->fma && f->f16c;
#endif
#if defined(BN_HAVE_AVX512)
    case BN_KERNEL_AVX512: return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
#endif
#if defined(BN_HAVE_NEON)
    case BN_KERNEL_NEON: return f->neon;
#endif
#if defined(__wasm_simd128__)
    case BN_KERNEL_WASM: return f->wasm_simd;
#endif
    default: (void)f; return 0;
    }
}

static atomic_int g_active = -1;
static pthread_once_t g_active_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    static const bn_kernel_impl best_first[] = {BN_KERNEL_AVX512, BN_KERNEL_AVX2, BN_KERNEL_NEON, BN_KERNEL_WASM};
    bn_kernel_impl pick = BN_KERNEL_REF;
    for (size_t i = 0; i < sizeof best_first / sizeof best_first[0]; i++)
        if (bn_kernel_impl_available(best_first[i])) {
            pick = best_first[i];
            break;
        }
    /* BITNET_KERNELS forces one; a name this CPU or build cannot run (or an unknown name) gives the
     * reference, the one implementation that always works. */
    const char *env = getenv("BITNET_KERNELS");
    if (env && *env) {
        pick = BN_KERNEL_REF;
        for (int k = BN_KERNEL_REF; k <= BN_KERNEL_WASM; k++)
            if (strcmp(env, bn_kernel_impl_name((bn_kernel_impl)k)) == 0 && bn_kernel_impl_available((bn_kernel_impl)k))
                pick = (bn_kernel_impl)k;
    }
    int expected = -1;
    atomic_compare_exchange_strong(&g_active, &expected, (int)pick);
}

bn_kernel_impl bn_kernels_active(void)
{
    int k = atomic_load_explicit(&g_active, memory_order_acquire);
    if (k >= 0) return (bn_kernel_impl)k;
    pthread_once(&g_active_once, choose);
    return (bn_kernel_impl)atomic_load(&g_active);
}

bn_status bn_kernels_force(bn_kernel_impl k)
{
    if ((int)k < 0 || k > BN_KERNEL_WASM) return bn_error(BN_ERR_INVALID_ARG, "kernels: unknown implementation %d", (int)k);
    if (!bn_kernel_impl_available(k))
        return bn_error(BN_ERR_UNSUPPORTED, "kernels: %s is not available on this CPU or build", bn_kernel_impl_name(k));
    pthread_once(&g_active_once, choose); /* so a later first call cannot overwrite the forced choice */
    atomic_store(&g_active, (int)k);
    return BN_OK;
}

/* -1: follow the CPU; 0 or 1: set by bn_kernels_tq1_vbmi_override (tests). */
static atomic_int g_tq1_vbmi = -1;

int bn_kernels_tq1_vbmi(void)
{
    /* only the AVX-512 kernels read the re-encoding; the others read the file's bytes */
    if (bn_kernels_active() != BN_KERNEL_AVX512) return 0;
    int o = atomic_load_explicit(&g_tq1_vbmi, memory_order_relaxed);
    if (o >= 0) return o;
#if defined(BN_HAVE_AVX512)
    const bn_cpu_features *f = bn_cpu_features_get();
    return f->avx512vbmi && bn_kernel_impl_available(BN_KERNEL_AVX512);
#else
    return 0;
#endif
}

void bn_kernels_tq1_vbmi_override(int on)
{
    int v = on < 0 ? -1 : 0;
#if defined(BN_HAVE_AVX512)
    if (on > 0) v = bn_cpu_features_get()->avx512vbmi && bn_kernel_impl_available(BN_KERNEL_AVX512);
#endif
    atomic_store(&g_tq1_vbmi, v);
}
