/* Weight formats: decoding, encoding and activation quantisation.  Pure functions over buffers;
 * no threads, no models.  See ../shared/spec/bitnet-format.md sections 3 and 5.
 *
 * Ternary formats: I2_S (bitnet.cpp x86 layout, per-tensor float32 scale), TQ1_0, TQ2_0 (ggml,
 * 256-element blocks with an fp16 scale).  Float formats: F32, F16, BF16, Q8_0, Q6_K. */
#ifndef BN_QUANT_QUANT_H
#define BN_QUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/types.h"

/* I2_S packs every 128 consecutive elements (of the flattened tensor) into 32 bytes. */
#define BN_I2S_BLOCK 128

/* Dequantize n elements (a whole number of blocks; for I2_S a whole tensor of n elements,
 * whose scale sits after the packed bytes) to float. */
bn_status bn_dequantize(uint32_t type, const void *src, int64_t n, float *dst);
/* Dequantize row r of a [rows x ne0] tensor (I2_S uses the tensor's scale, passed in). */
bn_status bn_dequantize_row(uint32_t type, const void *tensor_data, int64_t ne0, int64_t r, float i2s_scale,
                            float *dst);

/* Reads the per-tensor scale of an I2_S tensor of n elements (the float at byte n/4). */
float bn_i2s_scale(const void *data, int64_t n);

/* Quantize a float tensor [rows x ne0] into `type` (dst has bn_type_tensor_nbytes bytes).
 * Ternary types: the input is expected to be already ternary up to a scale (as bitnet.cpp's I2_S
 * quantizer assumes); I2_S follows bitnet.cpp exactly (scale = max|w| over the whole tensor,
 * code 1 when |w| < 1e-6, else sign).  Q6_K: per 16 elements a least-squares scale for codes in
 * [-32, 31] (searched around signed absmax / -32), stored as int8 against the block's fp16
 * d = max scale / 128; non-finite input, or a block too large for an fp16 d, gives BN_ERR_RANGE. */
bn_status bn_quantize(uint32_t type, const float *src, int64_t rows, int64_t ne0, void *dst);
/* The same, but quick enough for load time: Q6_K takes the least-squares sub-block scale at the
 * absmax grid without bn_quantize's search over 21 candidate grids (other types are identical). */
bn_status bn_quantize_fast(uint32_t type, const float *src, int64_t rows, int64_t ne0, void *dst);

/* Absmean ternarisation (BitNet b1.58): scale = max(mean|W|, 1e-5); t = clamp(round(W/scale), -1, 1).
 * Writes codes in {-1,0,1} (rows*ne0 of them) and returns the scale.  As BitNet's preprocessing does
 * it in fp32, W/scale is computed as W * (1/scale) and rounded half to even. */
float bn_ternarize_absmean(const float *w, int64_t n, int8_t *t);

/* bn_ternarize_absmean in pieces, for converters that split a tensor across threads.  sum|W| is
 * taken over BN_ABSMEAN_CHUNK-element chunks from the tensor's start, each summed in double in
 * a fixed order (bn_abs_sum: eight interleaved partial sums, added in order), and the chunk sums
 * are added in order; summing the chunks anywhere and adding them in that order gives the same
 * scale (bn_absmean_scale(sum, n)) for any split.
 * bn_ternarize_scaled writes the codes of any run of elements for a given scale. */
#define BN_ABSMEAN_CHUNK 65536
double bn_abs_sum(const float *w, int64_t n);
float bn_absmean_scale(double abs_sum, int64_t n);
void bn_ternarize_scaled(const float *w, int64_t n, float scale, int8_t *t);

/* Ternary values and scales of a ternary tensor: t[i] in {-1,0,+1}; for I2_S one scale
 * (scales[0]); for TQ1_0/TQ2_0 one scale per 256-element block. */
bn_status bn_ternary_decode(uint32_t type, const void *src, int64_t n, int8_t *t, float *scales);
/* Packs ternary values with scales (as above) into a ternary type. */
bn_status bn_ternary_encode(uint32_t type, const int8_t *t, const float *scales, int64_t n, void *dst);
/* The same for elements [first, first + count) of an n-element tensor, whole blocks only (128 for
 * I2_S, 256 for TQ), so pieces of one tensor can be processed on several threads.  t, scales, src
 * and dst are the whole tensor's (indexed from its start).  Encoding writes only the piece's bytes,
 * plus I2_S's scale and trailing padding when the piece ends the tensor; decoding I2_S sets
 * scales[0] only when the piece starts it. */
bn_status bn_ternary_decode_range(uint32_t type, const void *src, int64_t n, int64_t first, int64_t count, int8_t *t,
                                  float *scales);
bn_status bn_ternary_encode_range(uint32_t type, const int8_t *t, const float *scales, int64_t n, int64_t first,
                                  int64_t count, void *dst);

/* Per-row int8 activation quantisation (the I2_S matmul input), exactly as bitnet.cpp:
 *   amax = max(1e-5, max|x|) in double; s = (float)(127/amax);
 *   q = clamp(round_half_even((float)(x*s)), -128, 127);  sum = sum(q).
 * Returns s (the divisor that undoes the scaling). */
float bn_quantize_act_i8(const float *x, int64_t n, int8_t *q, int32_t *sum);

/* Q8_K activations (TQ1_0, TQ2_0, Q6_K inputs), bit for bit as ggml's quantize_row_q8_K_ref, per
 * 256-element block b: the element of largest magnitude `max` (signed) gives iscale = -127/max,
 * q = min(127, round_half_even(iscale*x)), d[b] = 1/iscale (d = 0 and q = 0 for an all-zero block).
 * bsum[b] = sum of the block's q; bsums16[16b + j] = sum of q over its j-th 16 elements (either may
 * be NULL).  n % 256 == 0. */
void bn_quantize_act_q8_K(const float *x, int64_t n, int8_t *q, float *d, int32_t *bsum, int16_t *bsums16);

/* Q8_0 activations (Q8_0 weights' input) as ggml's x86 quantize_row_q8_0 computes them, per 32-element
 * block b: d[b] = fp16(amax/127) (stored here already widened to float), q = round_half_even(x*127/amax).
 * n % 32 == 0. */
void bn_quantize_act_q8_0(const float *x, int64_t n, int8_t *q, float *d);

/* Single codes, for kernels' tests and repacking: I2_S code (0..3) of element i of a tensor; TQ2_0
 * code (0..3) and TQ1_0 trit (0..2) of element e (0..255) of one block. */
int bn_i2s_code(const uint8_t *data, int64_t i);
int bn_tq2_code(const uint8_t *block, int e);
int bn_tq1_trit(const uint8_t *block, int e);

#endif
