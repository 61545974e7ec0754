#include "kernels/ops.h"

#include <math.h>
#include <string.h>

#include "common/fp16.h"
#include "kernels/kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BN_OPS_X86 1
#endif

static void rmsnorm_apply(float *y, const float *x, const float *w, int64_t n, double sum, float eps)
{
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * scale; /* the reference normalises, then multiplies by the weight */
        y[i] = w ? v * w[i] : v;
    }
}

/* The eight lanes joined: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the order two
 * vectors of four (lanes 0..3, 4..7) reach by adding, then adding their halves. */
static double lanes8_sum(const double l[8])
{
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* The sum of squares, in a fixed order that vectorises: lane j (of 8) adds the squares of elements
 * j, j+8, j+16, ... in turn (in double, each square rounded to float first), then the lanes meet in
 * lanes8_sum.  Eight independent chains instead of one serial chain of double additions (each
 * 3-4 cycles) make a norm of a few hundred elements several times faster, which matters where
 * per-token steps run on one thread (small batches). */
static double sum_squares(const float *x, int64_t n)
{
    double l[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) l[j] += (double)(x[i + j] * x[i + j]);
    for (int j = 0; i + j < n; j++) l[j] += (double)(x[i + j] * x[i + j]);
    return lanes8_sum(l);
}

static double sum_squares_simd(const float *x, int64_t n); /* sum_squares' bits, x86 SIMD where there */

void bn_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    rmsnorm_apply(y, x, w, n, sum_squares_simd(x, n), eps);
}

void bn_rmsnorm_rows(float *y, const float *x, const float *w, int64_t n, int64_t rows, float eps)
{
    for (int64_t r = 0; r < rows; r++) bn_rmsnorm(y + r * n, x + r * n, w, n, eps);
}

void bn_rope_cache(float *cos_out, float *sin_out, int n_rot, int pos, float base)
{
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        cos_out[i] = cosf(theta);
        sin_out[i] = sinf(theta);
        theta *= theta_scale;
    }
}

void bn_rope_apply(float *x, int n_rot, const float *c, const float *s, int neox)
{
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        int i0 = neox ? i : 2 * i;
        int i1 = neox ? i + half : 2 * i + 1;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c[i] - x1 * s[i];
        x[i1] = x0 * s[i] + x1 * c[i];
    }
}

void bn_rope(float *x, int head_dim, int n_rot, int pos, float base, int neox)
{
    float c[512], s[512];
    (void)head_dim;
    if (n_rot > 1024) n_rot = 1024;
    bn_rope_cache(c, s, n_rot, pos, base);
    bn_rope_apply(x, n_rot, c, s, neox);
}

/* exp(x), defined here rather than by libm so that every CPU and compiler gives the same bits and
 * a loop of it vectorises: x = n ln2 + r with n = round(x log2 e) (the 1.5 * 2^23 trick rounds to
 * nearest even) and ln2 in two parts, exp(r) by a degree-7 polynomial (Cephes' expf coefficients),
 * then 2^n through the exponent bits.  Within 1 ulp of exp over [-87, 88]; below -87 it gives 0
 * (true values there are under 1.7e-38), NaN stays NaN.  Only float multiplies and adds, in this
 * order (ops.c is compiled without contraction). */
static inline float exp_fixed(float x)
{
    const float xc = !(x >= -87.0f) ? -87.0f : x > 88.0f ? 88.0f : x; /* NaN: -87 here, NaN returned */
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n, n in [-126, 128): a normal float */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    const float e = p * two_n;
    return x < -87.0f ? 0.0f : x != x ? x : e;
}

float bn_exp(float x) { return exp_fixed(x); }

static void exp_rows(float *x, int64_t n, float max); /* x[i] = exp_fixed(x[i] - max) */

/* The max, the exps and their sum in eight double lanes (lane j: elements j, j+8, ...; joined by
 * lanes8_sum), so the loops vectorise and the bits are the same everywhere. */
void bn_softmax(float *x, int64_t n, float scale)
{
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            x[i + j] *= scale;
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
        }
    for (int j = 0; i + j < n; j++) {
        x[i + j] *= scale;
        m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    }
    float max = m[0]; /* a max is exact in any order */
    for (int j = 1; j < 8; j++) max = m[j] > max ? m[j] : max;
    /* the exps first, a loop without a carried dependency (the polynomial is a long chain, so
     * many elements must be in flight), then the sums */
    exp_rows(x, n, max);
    double l[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) l[j] += (double)x[i + j];
    for (int j = 0; i + j < n; j++) l[j] += (double)x[i + j];
    const double sum = lanes8_sum(l);
    const float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++) x[i] *= inv;
}

void bn_relu2_mul(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float r = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = r * r * u[i];
    }
}

void bn_silu_mul(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* The attention dot products run over every cached position of every head, so they get AVX2
 * versions.  Each keeps the scalar code's order exactly (8 lane accumulators, multiply then add,
 * lanes summed in order), so results do not depend on the CPU. */
#ifdef BN_OPS_X86
#define BN_AI_OPS static inline __attribute__((always_inline, target("avx2,f16c")))
#define BN_AI_OPS_512 static inline __attribute__((always_inline, target("avx512f,avx2,f16c")))
#define BN_AI_OPS_FMA static inline __attribute__((always_inline, target("avx2,f16c,fma")))
__attribute__((target("avx2,f16c"))) static float dot_f16_f32_avx2(const uint16_t *a, const float *b, int64_t n)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 av = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(av, _mm256_loadu_ps(b + i)));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += lanes[j];
    for (; i < n; i++) sum += bn_fp16_to_fp32(a[i]) * b[i];
    return sum;
}

__attribute__((target("avx2,f16c"))) static void axpy_f16_avx2(float *y, float a, const uint16_t *v, int64_t n)
{
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, vv)));
    }
    for (; i < n; i++) y[i] += a * bn_fp16_to_fp32(v[i]);
}

/* o = sum_j p[j] v_j, added in j order as repeated axpy_f16_avx2 calls from o = 0 would, but with 32
 * values of o held in registers across all j instead of stored and reloaded for each j. */
__attribute__((target("avx2,f16c"))) static void values_f16_avx2(float *o, const float *p, const uint16_t *v,
                                                                 size_t stride, int64_t hd, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= hd; i += 32) {
        __m256 y[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t j = 0; j < n; j++) {
            const __m256 a = _mm256_set1_ps(p[j]);
            const uint16_t *vj = v + (size_t)j * stride + i;
            for (int c = 0; c < 4; c++)
                y[c] = _mm256_add_ps(y[c], _mm256_mul_ps(a, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vj + 8 * c)))));
        }
        for (int c = 0; c < 4; c++) _mm256_storeu_ps(o + i + 8 * c, y[c]);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 y = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++)
            y = _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(p[j]),
                                               _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + (size_t)j * stride + i)))));
        _mm256_storeu_ps(o + i, y);
    }
    for (; i < hd; i++) {
        float y = 0.0f;
        for (int64_t j = 0; j < n; j++) y += p[j] * bn_fp16_to_fp32(v[(size_t)j * stride + i]);
        o[i] = y;
    }
}

/* Several queries against the same keys or values (the query heads that share a KV head): each
 * key or value vector is widened from f16 once for all of them.  Every (query, key) score and
 * every output value gets the additions of the one-query functions above, in their order. */
/* The lane sums of eight accumulators, each ((0 + l0) + l1) + ... + l7 as the one-query code adds
 * them, computed for all eight at once after a transpose (one add per lane instead of eight
 * scalar adds per accumulator). */
BN_AI_OPS __m256 lane_sums8(const __m256 a[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { /* accumulators 0-3, then 4-7 */
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
    }
    __m256 s = _mm256_setzero_ps();
    for (int l = 0; l < 4; l++) s = _mm256_add_ps(s, _mm256_permute2f128_ps(u[l], u[4 + l], 0x20)); /* lanes 0-3 */
    for (int l = 0; l < 4; l++) s = _mm256_add_ps(s, _mm256_permute2f128_ps(u[l], u[4 + l], 0x31)); /* lanes 4-7 */
    return s;
}

BN_AI_OPS_FMA void dots_f16_gq(const uint16_t *k, size_t stride, const float *q, size_t qstride, int64_t hd, int64_t n,
                           float *out, size_t ostride, const int GN, const int KB)
{
    int64_t j = 0;
    for (; j + KB <= n; j += KB) {
        __m256 acc[8];
        for (int a = 0; a < GN * KB; a++) acc[a] = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= hd; i += 8)
            for (int kb = 0; kb < KB; kb++) {
                const __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + (size_t)(j + kb) * stride + i)));
                for (int g = 0; g < GN; g++) /* exact products (see bn_attn_dots_f16): fused = multiply, add */
                    acc[kb * GN + g] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + (size_t)g * qstride + i), acc[kb * GN + g]);
            }
        if (GN * KB == 8 && i == hd) { /* no tail: the eight sums at once */
            float sums[8];
            _mm256_storeu_ps(sums, lane_sums8(acc));
            for (int kb = 0; kb < KB; kb++)
                for (int g = 0; g < GN; g++) out[(size_t)g * ostride + (size_t)(j + kb)] = sums[kb * GN + g];
            continue;
        }
        for (int kb = 0; kb < KB; kb++)
            for (int g = 0; g < GN; g++) {
                float lanes[8];
                _mm256_storeu_ps(lanes, acc[kb * GN + g]);
                float sum = 0.0f;
                for (int l = 0; l < 8; l++) sum += lanes[l];
                const uint16_t *kk = k + (size_t)(j + kb) * stride;
                for (int64_t ii = i; ii < hd; ii++) sum += bn_fp16_to_fp32(kk[ii]) * q[(size_t)g * qstride + ii];
                out[(size_t)g * ostride + (size_t)(j + kb)] = sum;
            }
    }
    for (; j < n; j++)
        for (int g = 0; g < GN; g++) out[(size_t)g * ostride + (size_t)j] = dot_f16_f32_avx2(k + (size_t)j * stride, q + (size_t)g * qstride, hd);
}

BN_AI_OPS void values_f16_gq(float *o, size_t ostride, const float *p, size_t pstride, const uint16_t *v, size_t stride,
                             int64_t hd, int64_t n, const int GN, const int NB)
{
    int64_t i = 0;
    for (; i + 8 * NB <= hd; i += 8 * NB) {
        __m256 y[8];
        for (int a = 0; a < GN * NB; a++) y[a] = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            const uint16_t *vj = v + (size_t)j * stride + i;
            for (int b = 0; b < NB; b++) {
                const __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vj + 8 * b)));
                for (int g = 0; g < GN; g++)
                    y[g * NB + b] = _mm256_add_ps(y[g * NB + b], _mm256_mul_ps(_mm256_set1_ps(p[(size_t)g * pstride + (size_t)j]), vv));
            }
        }
        for (int g = 0; g < GN; g++)
            for (int b = 0; b < NB; b++) _mm256_storeu_ps(o + (size_t)g * ostride + i + 8 * b, y[g * NB + b]);
    }
    /* the remaining dims (fewer than a block): the one-query function's own order per value */
    for (; i < hd; i++)
        for (int g = 0; g < GN; g++) {
            float y = 0.0f;
            for (int64_t j = 0; j < n; j++) y += p[(size_t)g * pstride + (size_t)j] * bn_fp16_to_fp32(v[(size_t)j * stride + i]);
            o[(size_t)g * ostride + i] = y;
        }
}

static int have_avx2_f16c(void)
{
    const bn_cpu_features *f = bn_cpu_features_get(); /* detected once; cheap to ask */
    return f->avx2 && f->fma && f->f16c && bn_kernels_active() != BN_KERNEL_REF;
}
#endif

#ifdef BN_OPS_X86
/* exp_fixed on eight lanes: the same operations in the same order, so the same bits (compilers
 * do not reliably vectorise the scalar loop: GCC with AVX2 enabled keeps it scalar, with branches). */
__attribute__((target("avx2"))) static void exp_rows_avx2(float *x, int64_t n, float max)
{
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f), magic = _mm256_set1_ps(12582912.0f);
    const __m256 vmax = _mm256_set1_ps(max);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmax);
        const __m256 xc = _mm256_min_ps(_mm256_max_ps(xv, lo), hi); /* NaN: handled below */
        const __m256 nv = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), magic), magic);
        __m256 r = _mm256_sub_ps(xc, _mm256_mul_ps(nv, _mm256_set1_ps(0.693359375f)));
        r = _mm256_sub_ps(r, _mm256_mul_ps(nv, _mm256_set1_ps(-2.12194440e-4f)));
        __m256 p = _mm256_set1_ps(1.9875691500e-4f);
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
        p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
        const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(nv), _mm256_set1_epi32(127)), 23);
        __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
        e = _mm256_andnot_ps(_mm256_cmp_ps(xv, lo, _CMP_LT_OQ), e);            /* below -87: 0 */
        e = _mm256_blendv_ps(e, xv, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q)); /* NaN stays */
        _mm256_storeu_ps(x + i, e);
    }
    for (; i < n; i++) x[i] = exp_fixed(x[i] - max);
}
#endif

#ifdef BN_OPS_X86
/* sum_squares with lanes 0..3 and 4..7 in two vectors of doubles: the same additions in the same
 * order, joined by lanes8_sum. */
__attribute__((target("avx2"))) static double sum_squares_avx2(const float *x, int64_t n)
{
    __m256d v0 = _mm256_setzero_pd(), v1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i), sq = _mm256_mul_ps(xv, xv);
        v0 = _mm256_add_pd(v0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        v1 = _mm256_add_pd(v1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double l[8];
    _mm256_storeu_pd(l, v0);
    _mm256_storeu_pd(l + 4, v1);
    for (int j = 0; i + j < n; j++) l[j] += (double)(x[i + j] * x[i + j]);
    return lanes8_sum(l);
}
#endif

static double sum_squares_simd(const float *x, int64_t n)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) return sum_squares_avx2(x, n);
#endif
    return sum_squares(x, n);
}

static void exp_rows(float *x, int64_t n, float max)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        exp_rows_avx2(x, n, max);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) x[i] = exp_fixed(x[i] - max);
}

float bn_dot_f16_f32(const uint16_t *a, const float *b, int64_t n)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) return dot_f16_f32_avx2(a, b, n);
#endif
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += bn_fp16_to_fp32(a[i + j]) * b[i + j];
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += acc[j];
    for (; i < n; i++) sum += bn_fp16_to_fp32(a[i]) * b[i];
    return sum;
}

#ifdef BN_OPS_X86
/* Values with AVX-512: a head of 64 or 128 values fits in 4 or 8 zmm per query, so for up to two
 * queries the cached values are read in one sequential pass, where the 8-wide blocks above go over
 * them once per block.  The same adds per element (y = y + p * v, positions in order). */
BN_AI_OPS_512 void values_f16_z(float *o, size_t ostride, const float *p, size_t pstride, const uint16_t *v, size_t stride,
                                int64_t n, const int GN, const int NB)
{
    __m512 y[4][8];
    for (int g = 0; g < GN; g++)
        for (int b = 0; b < NB; b++) y[g][b] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *vj = v + (size_t)j * stride;
        __m512 a[4];
        for (int g = 0; g < GN; g++) a[g] = _mm512_set1_ps(p[(size_t)g * pstride + (size_t)j]);
        for (int b = 0; b < NB; b++) {
            const __m512 vv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vj + 16 * b)));
            for (int g = 0; g < GN; g++) y[g][b] = _mm512_add_ps(y[g][b], _mm512_mul_ps(a[g], vv));
        }
    }
    for (int g = 0; g < GN; g++)
        for (int b = 0; b < NB; b++) _mm512_storeu_ps(o + (size_t)g * ostride + 16 * b, y[g][b]);
}

/* Whether values_f16_z takes this product (it needs the AVX-512 kernels in use). */
static int values_z_ok(int64_t hd)
{
    const bn_cpu_features *f = bn_cpu_features_get();
    return (hd == 64 || hd == 128) && f->avx512f && f->f16c && bn_kernels_active() == BN_KERNEL_AVX512;
}

__attribute__((target("avx512f,avx2,f16c"))) static void values_z(float *o, size_t ostride, const float *p, size_t pstride,
                                                                   int G, const uint16_t *v, size_t stride, int64_t hd,
                                                                   int64_t n)
{
    for (int g0 = 0; g0 < G;) {
        const int gn = G - g0 >= 4 ? 4 : G - g0 >= 2 ? 2 : 1;
        float *oo = o + (size_t)g0 * ostride;
        const float *pp = p + (size_t)g0 * pstride;
        if (gn == 4) /* four queries per widened value (the widening shares the adds' ports), 64 values a pass */
            for (int64_t h = 0; h < hd; h += 64) values_f16_z(oo + h, ostride, pp, pstride, v + h, stride, n, 4, 4);
        else if (hd == 128) {
            if (gn == 2) values_f16_z(oo, ostride, pp, pstride, v, stride, n, 2, 8);
            else values_f16_z(oo, ostride, pp, pstride, v, stride, n, 1, 8);
        } else {
            if (gn == 2) values_f16_z(oo, ostride, pp, pstride, v, stride, n, 2, 4);
            else values_f16_z(oo, ostride, pp, pstride, v, stride, n, 1, 4);
        }
        g0 += gn;
    }
}

/* Instantiations for up to four queries: GN queries x KB keys (or NB vectors of values) per step
 * keep eight independent chains of additions in flight. */
__attribute__((target("avx2,f16c,fma"))) static void dots_gq_avx2(const uint16_t *k, size_t stride, const float *q, size_t qstride,
                                                               int G, int64_t hd, int64_t n, float *out, size_t ostride)
{
    for (int g0 = 0; g0 < G;) {
        const int gn = G - g0 >= 4 ? 4 : G - g0 >= 2 ? 2 : 1;
        const float *qq = q + (size_t)g0 * qstride;
        float *oo = out + (size_t)g0 * ostride;
        if (gn == 4) dots_f16_gq(k, stride, qq, qstride, hd, n, oo, ostride, 4, 2);
        else if (gn == 2) dots_f16_gq(k, stride, qq, qstride, hd, n, oo, ostride, 2, 4);
        else dots_f16_gq(k, stride, qq, qstride, hd, n, oo, ostride, 1, 8);
        g0 += gn;
    }
}

__attribute__((target("avx2,f16c"))) static void values_gq_avx2(float *o, size_t ostride, const float *p, size_t pstride, int G,
                                                                 const uint16_t *v, size_t stride, int64_t hd, int64_t n)
{
    /* pairs of queries: four would need 16-value blocks, one pass over the values per block (measured
     * slower than two passes of 32-value blocks for two queries each) */
    for (int g0 = 0; g0 < G;) {
        const int gn = G - g0 >= 2 ? 2 : 1;
        float *oo = o + (size_t)g0 * ostride;
        const float *pp = p + (size_t)g0 * pstride;
        if (gn == 2) values_f16_gq(oo, ostride, pp, pstride, v, stride, hd, n, 2, 4);
        else values_f16_avx2(oo, pp, v, stride, hd, n);
        g0 += gn;
    }
}
#endif

/* One query: the grouped functions with G = 1 where SIMD runs (the same kernels). */
void bn_attn_dots_f16(const uint16_t *k, size_t stride, const float *q, int64_t hd, int64_t n, float *out)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        dots_gq_avx2(k, stride, q, (size_t)hd, 1, hd, n, out, (size_t)n);
        return;
    }
#endif
    for (int64_t j = 0; j < n; j++) out[j] = bn_dot_f16_f32(k + (size_t)j * stride, q, hd);
}

void bn_attn_values_f16(float *o, const float *p, const uint16_t *v, size_t stride, int64_t hd, int64_t n)
{
#ifdef BN_OPS_X86
    if (values_z_ok(hd)) {
        values_z(o, (size_t)hd, p, (size_t)n, 1, v, stride, hd, n);
        return;
    }
    if (have_avx2_f16c()) {
        values_f16_avx2(o, p, v, stride, hd, n);
        return;
    }
#endif
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int64_t j = 0; j < n; j++) bn_axpy_f16(o, p[j], v + (size_t)j * stride, hd);
}

void bn_attn_dots_f16_gq(const uint16_t *k, size_t stride, const float *q, size_t qstride, int G, int64_t hd, int64_t n,
                         float *out, size_t ostride)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        dots_gq_avx2(k, stride, q, qstride, G, hd, n, out, ostride);
        return;
    }
#endif
    for (int g = 0; g < G; g++) bn_attn_dots_f16(k, stride, q + (size_t)g * qstride, hd, n, out + (size_t)g * ostride);
}

void bn_attn_values_f16_gq(float *o, size_t ostride, const float *p, size_t pstride, int G, const uint16_t *v, size_t stride,
                           int64_t hd, int64_t n)
{
#ifdef BN_OPS_X86
    if (values_z_ok(hd)) {
        values_z(o, ostride, p, pstride, G, v, stride, hd, n);
        return;
    }
    if (have_avx2_f16c()) {
        values_gq_avx2(o, ostride, p, pstride, G, v, stride, hd, n);
        return;
    }
#endif
    for (int g = 0; g < G; g++) bn_attn_values_f16(o + (size_t)g * ostride, p + (size_t)g * pstride, v, stride, hd, n);
}

void bn_axpy_f16(float *y, float a, const uint16_t *v, int64_t n)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        axpy_f16_avx2(y, a, v, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] += a * bn_fp16_to_fp32(v[i]);
}

float bn_dot_f32(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += acc[j];
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

void bn_axpy_f32(float *y, float a, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += a * v[i];
}

#ifdef BN_OPS_X86
/* The hardware conversion rounds to nearest even like bn_fp32_to_fp16, so the bits agree (NaNs
 * stay NaN, though their payload may differ). */
__attribute__((target("avx2,f16c"))) static void round_f16_f16c(float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) x[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(x[i]));
}

__attribute__((target("avx2,f16c"))) static void to_f16_f16c(uint16_t *h, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = bn_fp32_to_fp16(x[i]);
}
#endif

void bn_round_f16(float *x, int64_t n)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        round_f16_f16c(x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) x[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(x[i]));
}

void bn_to_f16(uint16_t *h, const float *x, int64_t n)
{
#ifdef BN_OPS_X86
    if (have_avx2_f16c()) {
        to_f16_f16c(h, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) h[i] = bn_fp32_to_fp16(x[i]);
}
