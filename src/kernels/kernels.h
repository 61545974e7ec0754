/* Matrix products for every weight type the engine uses, with run-time dispatch between the
 * scalar reference and SIMD implementations.  Kernels know nothing of models: they see a weight
 * matrix, prepared activations and an output buffer.
 *
 * Shapes: a weight W has `rows` outputs and `cols` = K inputs (GGUF ne1 x ne0, row-major, rows
 * contiguous).  Activations X are [n_tok x K] float; the result Y is [n_tok x rows] float:
 *     Y[t][r] = sum_k W[r][k] * X[t][k]   (with the quantisation each weight type implies).
 *
 * Use:
 *     bn_act act;  bn_act_init(&act);
 *     bn_act_quantize(&act, bn_weight_act_format(&w), x, n_tok, K, pool);   // once per input
 *     bn_matmul(&w, &act, y, pool);                                           // for each weight reading it
 *     bn_act_free(&act);
 * so Q, K and V (or gate and up) share one quantisation of their input. */
#ifndef BN_KERNELS_KERNELS_H
#define BN_KERNELS_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/threadpool.h"
#include "gguf/types.h"

/* How a weight type wants its activations. */
typedef enum bn_act_format {
    BN_ACT_F32 = 0,   /* float as is (F32 weights) */
    BN_ACT_F16 = 1,   /* rounded to fp16 (F16 weights: as ggml does) */
    BN_ACT_BF16 = 2,  /* rounded to bf16 (BF16 weights) */
    BN_ACT_I8_ROW = 3,/* int8 per token row + scale + row sum (I2_S) */
    BN_ACT_Q8_K = 4,  /* int8 per 256-element block with float scale and block sums (TQ1_0, TQ2_0, Q6_K) */
    BN_ACT_Q8_0 = 5   /* int8 per 32-element block with fp16 scale (Q8_0) */
} bn_act_format;

/* A weight matrix as the kernels see it (usually pointing into the model file's mapping). */
typedef struct bn_weight {
    uint32_t type;        /* bn_type */
    const void *data;
    int64_t rows, cols;   /* outputs, inputs (K) */
    float scale;          /* I2_S: the per-tensor scale (read by bn_weight_init); 1 otherwise */
    void *packed;         /* optional kernel-private repacked layout (owned; bn_weight_free); it may be
                             published by another thread while the weight is in use: read it with
                             bn_weight_packed */
} bn_weight;

/* Validates the shape for the type (e.g. I2_S needs cols % 128 == 0) and fills w. */
bn_status bn_weight_init(bn_weight *w, uint32_t type, const void *data, int64_t rows, int64_t cols);
void bn_weight_free(bn_weight *w);
bn_act_format bn_weight_act_format(const bn_weight *w);
/* Copies an I2_S, TQ1_0 or TQ2_0 weight into the row-interleaved layout (kernels_impl.h) when the active kernel
 * implementation reads it faster (AVX2 and AVX-512: one memory stream for a four-row GEMV), on
 * pool's threads (pool may be NULL); w->data stays valid and other implementations keep using it.
 * *bytes gets the bytes allocated (0 when nothing was done: another type, a kernel without such a
 * layout, or already repacked).  bn_weight_free frees the copy. */
bn_status bn_weight_repack(bn_weight *w, bn_threadpool *pool, size_t *bytes);
/* The repacked copy or NULL.  bn_weight_repack publishes it with release ordering once it is
 * complete, so a reader on another thread sees either NULL or the whole copy; both layouts hold the
 * same values, so a product may even mix them. */
static inline const void *bn_weight_packed(const bn_weight *w) { return __atomic_load_n(&w->packed, __ATOMIC_ACQUIRE); }
/* Whether the active implementation reads I2_S weights repacked by bn_weight_repack. */
bool bn_kernels_repack_i2s(void);
/* Whether the active implementation reads TQ1_0 and TQ2_0 weights repacked by bn_weight_repack
 * (the same four-row interleaving, kernels_impl.h). */
bool bn_kernels_repack_tq(void);
/* The bytes bn_weight_repack would copy for w with the active implementation (0: none). */
size_t bn_weight_repack_size(const bn_weight *w);

/* Prepared activations; buffers grow as needed and are reused across calls. */
typedef struct bn_act {
    bn_act_format format;
    int64_t n_tok, cols;
    void *buf;      /* format-specific storage */
    size_t buf_cap;
    const float *x; /* BN_ACT_F32: the caller's input (must stay valid until the matmul) */
} bn_act;

void bn_act_init(bn_act *a);
void bn_act_free(bn_act *a);
bn_status bn_act_quantize(bn_act *a, bn_act_format fmt, const float *x, int64_t n_tok, int64_t cols,
                          bn_threadpool *pool);

/* Y = W X^T as described above.  Work is split across the pool by output rows. */
bn_status bn_matmul(const bn_weight *w, const bn_act *a, float *y, bn_threadpool *pool);
/* y[i] = W[i] X for n <= BN_MATMUL_MAX weights reading the same prepared activations, as one
 * parallel job (one wake-up of the threads, rows shared evenly across all the products). */
#define BN_MATMUL_MAX 4
bn_status bn_matmul_multi(const bn_weight *const *w, int n, const bn_act *a, float *const *y, bn_threadpool *pool);

/* ---- dispatch ---- */
typedef enum bn_kernel_impl {
    BN_KERNEL_REF = 0,
    BN_KERNEL_AVX2 = 1,
    BN_KERNEL_AVX512 = 2,
    BN_KERNEL_NEON = 3,
    BN_KERNEL_WASM = 4
} bn_kernel_impl;

typedef struct bn_cpu_features {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, neon, dotprod, wasm_simd;
    int avx512vbmi; /* VPERMB/VPERMI2B: the TQ1_0 repacked layout is then re-encoded (kernels_impl.h) */
} bn_cpu_features;

/* CPU features, detected once (thread-safe, lazily). */
const bn_cpu_features *bn_cpu_features_get(void);
/* The implementation in use: the best one the CPU supports, or the one BITNET_KERNELS names
 * (ref|avx2|avx512|neon|wasm), read once.  Forcing one the CPU lacks (or an unknown name) gives ref. */
bn_kernel_impl bn_kernels_active(void);
const char *bn_kernel_impl_name(bn_kernel_impl k);
/* Tests: force an implementation (returns BN_ERR_UNSUPPORTED if this CPU/build lacks it). */
bn_status bn_kernels_force(bn_kernel_impl k);

#endif
