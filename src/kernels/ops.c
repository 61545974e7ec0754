#include "kernels/ops.h"

#include <math.h>

#include "common/fp16.h"

void bn_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * scale; /* the reference normalises, then multiplies by the weight */
        y[i] = w ? v * w[i] : v;
    }
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

void bn_softmax(float *x, int64_t n, float scale)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max) max = x[i];
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - max);
        x[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
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

float bn_dot_f16_f32(const uint16_t *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += bn_fp16_to_fp32(a[i + j]) * b[i + j];
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += acc[j];
    for (; i < n; i++) sum += bn_fp16_to_fp32(a[i]) * b[i];
    return sum;
}

void bn_axpy_f16(float *y, float a, const uint16_t *v, int64_t n)
{
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

void bn_round_f16(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(x[i]));
}
