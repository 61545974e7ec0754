/* Element-wise and row operations of the transformer graph, with the exact numerics of the
 * reference engine (llama.cpp CPU) so our logits can be compared bit for bit where possible.
 * Shapes are given per call; nothing here knows about models. */
#ifndef BN_KERNELS_OPS_H
#define BN_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y = (x * 1/sqrt(mean(x^2) + eps)) * w, over n elements.  Squares are summed in double, in eight
 * lanes of every eighth element joined in a fixed tree (ops.c); y may alias x. */
void bn_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* bn_rmsnorm of `rows` contiguous rows of n values (y row r from x row r). */
void bn_rmsnorm_rows(float *y, const float *x, const float *w, int64_t n, int64_t rows, float eps);

/* Rotary position embedding of one head vector (head_dim values, the first n_rot rotated).
 * neox: rotate halves (pairs i, i + n_rot/2), as BitNet and HF rotate_half; otherwise rotate
 * adjacent pairs (2i, 2i+1) as llama.cpp's "norm" mode.  Angles theta_i = pos * base^(-2i/n_rot),
 * computed iteratively in float like the reference. */
void bn_rope(float *x, int head_dim, int n_rot, int pos, float base, int neox);

/* Precomputed cos/sin for one position (n_rot/2 pairs each); same values as bn_rope uses. */
void bn_rope_cache(float *cos_out, float *sin_out, int n_rot, int pos, float base);
void bn_rope_apply(float *x, int n_rot, const float *cos_v, const float *sin_v, int neox);

/* exp(x) as the graph ops compute it (ops.c: a fixed polynomial, the same bits on every CPU, within
 * 1 ulp of exp; 0 below -87). */
float bn_exp(float x);
/* In-place softmax of n values after scaling: x = softmax(x * scale), with bn_exp and the exps
 * summed in double in eight lanes joined in a fixed tree (ops.c). */
void bn_softmax(float *x, int64_t n, float scale);

/* Activations */
void bn_relu2_mul(float *g, const float *u, int64_t n); /* g = max(g,0)^2 * u */
void bn_silu_mul(float *g, const float *u, int64_t n);  /* g = g*sigmoid(g) * u */

/* Dot products used by attention: f16 keys/values with float queries/weights, fp32 accumulation. */
float bn_dot_f16_f32(const uint16_t *a, const float *b, int64_t n);
/* y += a * v, v in f16 */
void bn_axpy_f16(float *y, float a, const uint16_t *v, int64_t n);
/* Attention over n cached positions whose f16 rows lie `stride` values apart: out[j] =
 * bn_dot_f16_f32(k + j * stride, q, hd), and o = sum_j p[j] * v_j (as bn_axpy_f16 from o = 0, in j
 * order).  The same bits as those calls, computed several positions or values at a time.  The dots
 * need q's values representable in f16 (the engine rounds Q so, as the reference does): each
 * product of two f16 values is then exact in float, and the SIMD versions add it with a fused
 * multiply-add, which gives the bits of a multiply and an add. */
void bn_attn_dots_f16(const uint16_t *k, size_t stride, const float *q, int64_t hd, int64_t n, float *out);
void bn_attn_values_f16(float *o, const float *p, const uint16_t *v, size_t stride, int64_t hd, int64_t n);
/* The same for G queries sharing the keys and values (query heads of one KV head): query g at
 * q + g * qstride, its scores at out + g * ostride (p + g * pstride), its output at o + g * ostride.
 * Each score and value has the bits of the one-query functions; each key or value row is widened
 * from f16 once for all G queries. */
void bn_attn_dots_f16_gq(const uint16_t *k, size_t stride, const float *q, size_t qstride, int G, int64_t hd, int64_t n,
                         float *out, size_t ostride);
void bn_attn_values_f16_gq(float *o, size_t ostride, const float *p, size_t pstride, int G, const uint16_t *v, size_t stride,
                           int64_t hd, int64_t n);
float bn_dot_f32(const float *a, const float *b, int64_t n);
void bn_axpy_f32(float *y, float a, const float *v, int64_t n);

/* Rounds every value to the nearest fp16 (x stays float). */
void bn_round_f16(float *x, int64_t n);
/* h[i] = bn_fp32_to_fp16(x[i]) (the same bits, with hardware conversion where there is one; a
 * NaN stays a NaN, not always with the same payload). */
void bn_to_f16(uint16_t *h, const float *x, int64_t n);

#endif
