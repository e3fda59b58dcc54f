/* dtype.c - element sizes and names, f16/bf16 conversion, loads and stores through f64.
 *
 * The CPU backend computes in f64 whatever the element type: it reads every element
 * with bk_load_f64 / bk_gather_f64 and writes with bk_store_f64 / bk_scatter_f64, so no
 * op carries a per-dtype copy of its loops. */
#include "core/core.h"

#include <math.h>
#include <string.h>

size_t bk_dtype_size(bk_dtype dtype)
{
    switch (dtype) {
    case BK_DTYPE_F32: return 4;
    case BK_DTYPE_F64: return 8;
    case BK_DTYPE_F16: return 2;
    case BK_DTYPE_BF16: return 2;
    case BK_DTYPE_I32: return 4;
    case BK_DTYPE_I64: return 8;
    }
    return 0;
}

const char *bk_dtype_name(bk_dtype dtype)
{
    switch (dtype) {
    case BK_DTYPE_F32: return "f32";
    case BK_DTYPE_F64: return "f64";
    case BK_DTYPE_F16: return "f16";
    case BK_DTYPE_BF16: return "bf16";
    case BK_DTYPE_I32: return "i32";
    case BK_DTYPE_I64: return "i64";
    }
    return "?";
}

static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t bk_f32_to_bf16(float x)
{
    uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet, keep the sign */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float bk_bf16_to_f32(uint16_t h)
{
    return bits_float((uint32_t)h << 16);
}

uint16_t bk_f32_to_f16(float x)
{
    uint32_t u = float_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (a >= 0x477ff000u)                  /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: subnormal or zero in f16 */
        /* value = a_float; f16 subnormal step is 2^-24 */
        float f = bits_float(a);
        float scaled = f * 16777216.0f; /* exact: multiply by 2^24 */
        /* round to nearest even integer */
        float r = nearbyintf(scaled);
        return (uint16_t)(sign | (uint16_t)r);
    }
    /* normal: rebias exponent 127 -> 15 and round the 13 dropped mantissa bits */
    uint32_t mant_round = a + 0x0fffu + ((a >> 13) & 1u);
    uint32_t h = (mant_round >> 13) - ((127u - 15u) << 10);
    return (uint16_t)(sign | (uint16_t)h);
}

float bk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        float f = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24, exact */
        return sign ? -f : f;
    }
    if (exp == 31)
        return bits_float(sign | 0x7f800000u | (mant << 13));
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

double bk_load_f64(const void *base, bk_dtype dtype, int64_t idx)
{
    switch (dtype) {
    case BK_DTYPE_F32: return ((const float *)base)[idx];
    case BK_DTYPE_F64: return ((const double *)base)[idx];
    case BK_DTYPE_F16: return bk_f16_to_f32(((const uint16_t *)base)[idx]);
    case BK_DTYPE_BF16: return bk_bf16_to_f32(((const uint16_t *)base)[idx]);
    case BK_DTYPE_I32: return ((const int32_t *)base)[idx];
    case BK_DTYPE_I64: return (double)((const int64_t *)base)[idx];
    }
    return NAN;
}

void bk_store_f64(void *base, bk_dtype dtype, int64_t idx, double v)
{
    switch (dtype) {
    case BK_DTYPE_F32: ((float *)base)[idx] = (float)v; return;
    case BK_DTYPE_F64: ((double *)base)[idx] = v; return;
    case BK_DTYPE_F16: ((uint16_t *)base)[idx] = bk_f32_to_f16((float)v); return;
    case BK_DTYPE_BF16: ((uint16_t *)base)[idx] = bk_f32_to_bf16((float)v); return;
    case BK_DTYPE_I32: ((int32_t *)base)[idx] = (int32_t)v; return;
    case BK_DTYPE_I64: ((int64_t *)base)[idx] = (int64_t)v; return;
    }
}

void bk_gather_f64(const void *base, bk_dtype dtype, int64_t stride, int64_t n, double *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = bk_load_f64(base, dtype, i * stride);
}

void bk_scatter_f64(void *base, bk_dtype dtype, int64_t stride, int64_t n, const double *src)
{
    for (int64_t i = 0; i < n; i++)
        bk_store_f64(base, dtype, i * stride, src[i]);
}
