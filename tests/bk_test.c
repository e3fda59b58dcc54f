/* bk_test.c - the test kit (see bk_test.h). */
#include "bk_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BK_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

static uint64_t g_state;
static int g_passed, g_failed, g_skipped;
static const char *g_program = "test";

void bkt_init(const char *program)
{
    g_program = program;
    const char *env = getenv("BK_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    g_state = seed ? seed : 0x9e3779b97f4a7c15ull;
    printf("%s: seed %llu (rerun with BK_TEST_SEED=%llu)\n", program, (unsigned long long)seed,
           (unsigned long long)seed);
}

int bkt_finish(void)
{
    printf("%s: %d passed, %d failed, %d skipped\n", g_program, g_passed, g_failed, g_skipped);
    return g_failed ? 1 : 0;
}

bool bkt_check(bool cond, const char *what, const char *fmt, ...)
{
    if (cond) {
        g_passed++;
        return true;
    }
    g_failed++;
    printf("FAIL %s: ", what);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return false;
}

void bkt_skip(const char *what, const char *why)
{
    g_skipped++;
    printf("SKIP %s: %s\n", what, why);
}

uint64_t bkt_rand_u64(void)
{
    /* splitmix64 */
    uint64_t z = (g_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double bkt_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(bkt_rand_u64() >> 11) * (1.0 / 9007199254740992.0));
}

int64_t bkt_randint(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(bkt_rand_u64() % (uint64_t)(hi - lo + 1));
}

void *bkt_alloc(bk_dtype dtype, int64_t n)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * bk_dtype_size(dtype);
    void *p = calloc(1, bytes);
    if (!p) {
        printf("FAIL %s: out of host memory (%zu bytes)\n", g_program, bytes);
        exit(1);
    }
    return p;
}

void bkt_free(void *p)
{
    free(p);
}

double bkt_get(const void *p, bk_dtype dtype, int64_t i)
{
    switch (dtype) {
    case BK_DTYPE_F32: return ((const float *)p)[i];
    case BK_DTYPE_F64: return ((const double *)p)[i];
    case BK_DTYPE_F16: return bk_f16_to_f32(((const uint16_t *)p)[i]);
    case BK_DTYPE_BF16: return bk_bf16_to_f32(((const uint16_t *)p)[i]);
    case BK_DTYPE_I32: return ((const int32_t *)p)[i];
    case BK_DTYPE_I64: return (double)((const int64_t *)p)[i];
    }
    return NAN;
}

void bkt_set(void *p, bk_dtype dtype, int64_t i, double v)
{
    switch (dtype) {
    case BK_DTYPE_F32: ((float *)p)[i] = (float)v; break;
    case BK_DTYPE_F64: ((double *)p)[i] = v; break;
    case BK_DTYPE_F16: ((uint16_t *)p)[i] = bk_f32_to_f16((float)v); break;
    case BK_DTYPE_BF16: ((uint16_t *)p)[i] = bk_f32_to_bf16((float)v); break;
    case BK_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case BK_DTYPE_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    }
}

void bkt_fill(void *p, bk_dtype dtype, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        bkt_set(p, dtype, i, bkt_uniform(lo, hi));
}

void bkt_poison(void *p, bk_dtype dtype, int64_t n)
{
    switch (dtype) {
    case BK_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)p)[i] = 0x7e00u;
        return;
    case BK_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)p)[i] = 0x7fc0u;
        return;
    case BK_DTYPE_F32:
    case BK_DTYPE_F64:
        for (int64_t i = 0; i < n; i++)
            bkt_set(p, dtype, i, NAN);
        return;
    case BK_DTYPE_I32:
    case BK_DTYPE_I64:
        memset(p, 0x7f, (size_t)n * bk_dtype_size(dtype));
        return;
    }
}

void *bkt_snapshot(const void *p, size_t bytes)
{
    void *s = malloc(bytes ? bytes : 1);
    if (!s) {
        printf("FAIL %s: out of host memory\n", g_program);
        exit(1);
    }
    if (bytes)
        memcpy(s, p, bytes);
    return s;
}

bool bkt_same_bytes(const void *a, const void *b, size_t bytes)
{
    return bytes == 0 || memcmp(a, b, bytes) == 0;
}

bk_tensor bkt_view(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape)
{
    return bkt_view_padded(data, dtype, rank, shape, 0);
}

bk_tensor bkt_view_padded(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape, int64_t pad)
{
    bk_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.rank = rank;
    int64_t stride = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.strides[i] = stride;
        stride = stride * (shape[i] > 0 ? shape[i] : 1) + pad;
    }
    t.capacity = bkt_view_span(&t);
    if (t.capacity == 0)
        t.capacity = 1;
    return t;
}

int64_t bkt_view_span(const bk_tensor *t)
{
    int64_t span = 1;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->shape[i] == 0)
            return 0;
        span += (t->shape[i] - 1) * t->strides[i];
    }
    return span;
}

double bkt_at(const bk_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int32_t i = 0; i < t->rank; i++)
        off += idx[i] * t->strides[i];
    return bkt_get(t->data, t->dtype, off);
}

void bkt_gather(const bk_tensor *t, double *dst)
{
    int64_t n = 1;
    for (int32_t i = 0; i < t->rank; i++)
        n *= t->shape[i];
    int64_t idx[BK_MAX_RANK] = {0};
    for (int64_t k = 0; k < n; k++) {
        dst[k] = bkt_at(t, idx);
        for (int32_t a = t->rank - 1; a >= 0; a--) {
            if (++idx[a] < t->shape[a])
                break;
            idx[a] = 0;
        }
    }
}

bool bkt_untouched_outside(const bk_tensor *t, const void *before, int64_t n)
{
    char *hit = calloc((size_t)n + 1, 1);
    int64_t numel = 1, idx[BK_MAX_RANK] = {0};
    for (int32_t a = 0; a < t->rank; a++)
        numel *= t->shape[a];
    for (int64_t e = 0; e < numel; e++) {
        int64_t off = 0;
        for (int32_t a = 0; a < t->rank; a++)
            off += idx[a] * t->strides[a];
        if (off < n)
            hit[off] = 1;
        for (int32_t a = t->rank - 1; a >= 0; a--) {
            if (++idx[a] < t->shape[a])
                break;
            idx[a] = 0;
        }
    }
    size_t es = bk_dtype_size(t->dtype);
    bool ok = true;
    for (int64_t e = 0; e < n && ok; e++)
        if (!hit[e] && memcmp((const char *)before + e * es, (const char *)t->data + e * es, es) != 0)
            ok = false;
    free(hit);
    return ok;
}

double bkt_rel_err(const double *out, const double *ref, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(out[i]) && !isnan(ref[i]))
            return INFINITY;
        if (isinf(ref[i]) || isinf(out[i])) { /* -inf lse of an empty row: must match exactly */
            if (out[i] != ref[i])
                return INFINITY;
            continue;
        }
        double d = out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

double bkt_tol(bk_dtype dtype, const double *ref, int64_t n)
{
    double unit;
    switch (dtype) {
    case BK_DTYPE_F64: return 1e-12;
    case BK_DTYPE_F32: return 1e-5;
    case BK_DTYPE_F16: unit = ldexp(1.0, -11); break;
    case BK_DTYPE_BF16: unit = ldexp(1.0, -8); break;
    default: return 0.0;
    }
    double *rounded = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    void *tmp = bkt_alloc(dtype, 1);
    for (int64_t i = 0; i < n; i++) {
        bkt_set(tmp, dtype, 0, ref[i]);
        rounded[i] = isfinite(ref[i]) ? bkt_get(tmp, dtype, 0) : ref[i];
    }
    double floor_err = bkt_rel_err(rounded, ref, n);
    free(rounded);
    bkt_free(tmp);
    double tol = 2.0 * floor_err;
    return tol > 0.5 * unit ? tol : 0.5 * unit;
}

/* v rounded to TF32: f32, then 10 mantissa bits, to nearest with ties away from zero. */
static double tf32_round(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x1000u) & ~0x1fffu; /* on the magnitude bits: ties away from zero */
    memcpy(&f, &u, sizeof f);
    return f;
}

double bkt_tol_tf32(const double *ref, int64_t n)
{
    const double unit = ldexp(1.0, -11);
    double *rounded = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        rounded[i] = isfinite(ref[i]) && fabs(ref[i]) < 3e38 ? tf32_round(ref[i]) : ref[i];
    double tol = 2.0 * bkt_rel_err(rounded, ref, n);
    free(rounded);
    return tol > 0.5 * unit ? tol : 0.5 * unit;
}

bool bkt_check_close(const char *what, const bk_tensor *out, const double *ref, double slack)
{
    int64_t n = 1;
    for (int32_t i = 0; i < out->rank; i++)
        n *= out->shape[i];
    return bkt_check_close_tol(what, out, ref, bkt_tol(out->dtype, ref, n) * slack);
}

bool bkt_check_close_tol(const char *what, const bk_tensor *out, const double *ref, double tol)
{
    int64_t n = 1;
    for (int32_t i = 0; i < out->rank; i++)
        n *= out->shape[i];
    double *got = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    bkt_gather(out, got);
    double err = bkt_rel_err(got, ref, n);
    int64_t nan_at = -1;
    for (int64_t i = 0; i < n && nan_at < 0; i++)
        if (isnan(got[i]) && !isnan(ref[i]))
            nan_at = i;
    bool ok;
    if (nan_at >= 0)
        ok = bkt_check(false, what, "element %lld is NaN (unwritten?), expected %g", (long long)nan_at,
                       ref[nan_at]);
    else {
        /* the worst element, to locate a failure (flat index over the view's shape) */
        int64_t worst = 0;
        for (int64_t i = 1; i < n; i++)
            if (fabs(got[i] - ref[i]) > fabs(got[worst] - ref[worst]))
                worst = i;
        ok = bkt_check(err <= tol, what,
                       "relative error %.3e > tolerance %.3e (%s, %lld elements; worst element %lld: %g, expected %g)",
                       err, tol, bk_dtype_name(out->dtype), (long long)n, (long long)worst, n ? got[worst] : 0.0,
                       n ? ref[worst] : 0.0);
    }
    free(got);
    return ok;
}

bool bkt_expect_status(bk_status got, bk_status want, const char *what)
{
    return bkt_check(got == want, what, "status %s, expected %s (last error: %s)", bk_status_name(got),
                     bk_status_name(want), bk_last_error());
}

bool bkt_expect_overflow(bk_status got, const char *op, const char *what)
{
    const char *e = bk_last_error();
    bool ok = got == BK_STATUS_INVALID_PROBLEM && strncmp(e, op, strlen(op)) == 0 && strstr(e, "int64") != NULL;
    return bkt_check(ok, what, "status %s, last error \"%s\", expected INVALID_PROBLEM naming the int64 overflow",
                     bk_status_name(got), e);
}

bk_tensor bkt_view_huge(void *data, bk_dtype dtype, int32_t rank, const int64_t *shape)
{
    bk_tensor t = bk_tensor_contiguous(data, dtype, rank, shape);
    t.capacity = 0;
    return t;
}

bk_paged_kv bkt_paged_kv_huge(const bk_paged_kv_desc *d, int32_t batch, void *data)
{
    int64_t pool[4] = {d->num_pages, d->kv_heads, d->page_size, d->head_dim};
    int64_t n[1] = {1}, ptr[1] = {(int64_t)batch + 1}, last[1] = {batch};
    bk_paged_kv kv = {bkt_view_huge(data, d->dtype, 4, pool), bkt_view_huge(data, d->dtype, 4, pool),
                      bkt_view_huge(data, BK_DTYPE_I32, 1, n), bkt_view_huge(data, BK_DTYPE_I32, 1, ptr),
                      bkt_view_huge(data, BK_DTYPE_I32, 1, last)};
    return kv;
}

bool bkt_cuda_target(const char *what, bk_target *target)
{
    bk_status s = bk_target_cuda(0, target);
    if (s == BK_STATUS_SUCCESS)
        return true;
    const char *req = getenv("BK_REQUIRE_GPU");
    if (req && *req == '1') {
        bkt_check(false, what, "BK_REQUIRE_GPU=1 but no CUDA device: %s", bk_last_error());
        return false;
    }
    bkt_skip(what, bk_last_error());
    return false;
}

bkt_dev bkt_dev_begin(bk_target target)
{
    bkt_dev dev;
    memset(&dev, 0, sizeof dev);
    dev.target = target;
#ifdef BK_WITH_CUDA
    if (target.kind == BK_TARGET_CUDA) {
        cudaStream_t s = NULL;
        if (cudaSetDevice(target.device) != cudaSuccess || cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
            bkt_check(false, "bkt_dev_begin", "cannot create a stream: %s", cudaGetErrorString(cudaGetLastError()));
        dev.stream = s;
    }
#endif
    return dev;
}

static void *dev_put(bkt_dev *dev, void *host, size_t bytes, bool copy_back)
{
    if (dev->target.kind != BK_TARGET_CUDA || host == NULL)
        return host;
#ifdef BK_WITH_CUDA
    if (dev->count == BKT_DEV_MAX) {
        bkt_check(false, "bkt_dev", "more than %d buffers", BKT_DEV_MAX);
        return host;
    }
    void *d = NULL;
    /* cudaMemcpy from pageable memory may return before the data reaches the device, and
     * the kernels run on a non-blocking stream that does not wait for the legacy stream:
     * wait for the copy here. */
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess || cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaDeviceSynchronize() != cudaSuccess) {
        bkt_check(false, "bkt_dev", "cudaMalloc/cudaMemcpy of %zu bytes: %s", bytes, cudaGetErrorString(cudaGetLastError()));
        return host;
    }
    int i = dev->count++;
    dev->host[i] = host;
    dev->device[i] = d;
    dev->bytes[i] = bytes;
    dev->copy_back[i] = copy_back;
    return d;
#else
    (void)bytes;
    (void)copy_back;
    return host;
#endif
}

void *bkt_dev_in(bkt_dev *dev, void *host, size_t bytes)
{
    return dev_put(dev, host, bytes, false);
}

void *bkt_dev_out(bkt_dev *dev, void *host, size_t bytes)
{
    return dev_put(dev, host, bytes, true);
}

void *bkt_dev_stream(bkt_dev *dev)
{
    return dev->stream;
}

bool bkt_dev_end(bkt_dev *dev)
{
    bool ok = true;
#ifdef BK_WITH_CUDA
    if (dev->target.kind == BK_TARGET_CUDA) {
        cudaError_t e = cudaStreamSynchronize((cudaStream_t)dev->stream);
        if (e != cudaSuccess)
            ok = bkt_check(false, "bkt_dev_end", "kernel failed: %s", cudaGetErrorString(e));
        for (int i = 0; i < dev->count; i++) {
            if (dev->copy_back[i] && cudaMemcpy(dev->host[i], dev->device[i], dev->bytes[i], cudaMemcpyDeviceToHost) != cudaSuccess)
                ok = bkt_check(false, "bkt_dev_end", "copy back: %s", cudaGetErrorString(cudaGetLastError()));
            cudaFree(dev->device[i]);
        }
        if (dev->stream)
            cudaStreamDestroy((cudaStream_t)dev->stream);
        dev->stream = NULL;
    }
#endif
    dev->count = 0;
    return ok;
}

bool bkt_case(const char *what)
{
    static int trace = -1;
    static const char *only;
    static struct timespec t0;
    if (trace < 0) {
        const char *t = getenv("BK_TEST_TRACE");
        trace = t && *t == '1';
        only = getenv("BK_TEST_ONLY");
        timespec_get(&t0, TIME_UTC);
    }
    if (only && *only && !strstr(what, only))
        return false;
    if (trace) {
        struct timespec t;
        timespec_get(&t, TIME_UTC);
        fprintf(stderr, "case %.3f %s\n", (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec), what);
    }
    return true;
}

bool bkt_quick(void)
{
    const char *q = getenv("BK_TEST_QUICK");
    return q && *q == '1';
}
