/*
 * bk_bench.c - baracuda's benchmark: one row per op and shape on CUDA device 0.
 *
 * First the two ceilings, measured here: device-to-device copy bandwidth (bytes read +
 * written over time) and a bf16 matrix product through cuBLAS (8192^3, random data).
 * Then, per op and shape: median time over many runs (CUDA events around each run,
 * after warm-up), TFLOP/s for the attention math (4*B*H*Sq*Sk*D, halved when causal;
 * backward 2.5x forward) or GB/s for memory-bound ops (each input read once, each output
 * written once), and the percentage of the measured ceiling. Inputs are random (never
 * zeros) and, for memory-bound ops, larger than L2.
 *
 * Usage: bk_bench [filter]   (runs the rows whose name contains `filter`, or one of its
 *                             '|'-separated alternatives)
 * Output: a table on stdout; with BK_BENCH_CSV=path also a CSV file.
 */
#include "baracuda/baracuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fill.cu */
void bench_fill_random(void *p, bk_dtype dtype, size_t n, float lo, float hi, unsigned long long seed);
void bench_fill_i32(int32_t *p, const int32_t *host, size_t n);
int bench_read(const void *p, size_t bytes, unsigned *out, cudaStream_t s);

#define CK(x)                                                                                     \
    do {                                                                                          \
        cudaError_t e_ = (x);                                                                     \
        if (e_ != cudaSuccess) {                                                                  \
            fprintf(stderr, "bk_bench: %s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

static const char *g_filter = "";
static FILE *g_csv;
static double g_copy_gbs, g_read_gbs, g_mma_tflops;
static bk_target g_gpu;
static unsigned long long g_seed = 1234;

static void *dalloc(size_t bytes)
{
    void *p = NULL;
    CK(cudaMalloc(&p, bytes ? bytes : 16));
    return p;
}

static void *drand(bk_dtype dt, size_t n, float lo, float hi)
{
    void *p = dalloc(n * bk_dtype_size(dt));
    bench_fill_random(p, dt, n, lo, hi, g_seed++);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of `reps` timed calls of fn(ctx) after `warm` untimed ones. */
typedef bk_status (*bench_fn)(void *ctx, cudaStream_t s);
static double time_ms(bench_fn fn, void *ctx, int warm, int reps)
{
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    for (int i = 0; i < warm; i++)
        if (fn(ctx, s) != BK_STATUS_SUCCESS) {
            fprintf(stderr, "bk_bench: run failed: %s\n", bk_last_error());
            exit(1);
        }
    CK(cudaStreamSynchronize(s));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a, s));
        fn(ctx, s);
        CK(cudaEventRecord(b, s));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t[i] = ms;
    }
    CK(cudaGetLastError());
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double med = t[reps / 2];
    free(t);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaStreamDestroy(s);
    return med;
}

/* Whether the row `name` contains one of the filter's '|'-separated alternatives. */
static bool wanted(const char *name)
{
    const char *alt = g_filter;
    for (;;) {
        const char *bar = strchr(alt, '|');
        const size_t n = bar ? (size_t)(bar - alt) : strlen(alt);
        for (const char *c = name; n <= strlen(c); c++)
            if (strncmp(c, alt, n) == 0)
                return true;
        if (!bar)
            return false;
        alt = bar + 1;
    }
}

/* One memory-bound row: bytes moved in ms, as GB/s and as % of the ceiling `peak_gbs`. */
static void row_bytes(const char *name, const char *sku, double ms, double bytes, double peak_gbs)
{
    double gbs = bytes / ms * 1e-6;
    printf("%-46s %-40s %9.3f ms %8.1f GB/s    %6.1f%%\n", name, sku, ms, gbs, 100.0 * gbs / peak_gbs);
    if (g_csv)
        fprintf(g_csv, "%s,%s,%.4f,%.2f,GB/s,%.2f\n", name, sku, ms, gbs, 100.0 * gbs / peak_gbs);
    fflush(stdout);
}

/* One result row. flops > 0: compute-bound row (% of the GEMM ceiling); else bytes: a
 * memory-bound row (% of the copy ceiling; read-only rows call row_bytes with the read one). */
static void row(const char *name, const char *sku, double ms, double flops, double bytes)
{
    if (flops <= 0) {
        row_bytes(name, sku, ms, bytes, g_copy_gbs);
        return;
    }
    double tf = flops / ms * 1e-9;
    printf("%-46s %-40s %9.3f ms %8.1f TFLOP/s %6.1f%%\n", name, sku, ms, tf, 100.0 * tf / g_mma_tflops);
    if (g_csv)
        fprintf(g_csv, "%s,%s,%.4f,%.2f,TFLOP/s,%.2f\n", name, sku, ms, tf, 100.0 * tf / g_mma_tflops);
    fflush(stdout);
}

static void unsupported(const char *name, const char *why)
{
    printf("%-46s unsupported: %s\n", name, why);
    if (g_csv)
        fprintf(g_csv, "%s,unsupported,,,,\n", name);
}

static bk_tensor view(void *p, bk_dtype dt, int rank, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t shape[4] = {a, b, c, d};
    return bk_tensor_contiguous(p, dt, rank, shape);
}

/* ---------------------------------------------------------------- ceilings -- */

typedef struct copy_ctx {
    void *src, *dst;
    size_t bytes;
} copy_ctx;
static bk_status run_read(void *c, cudaStream_t s)
{
    copy_ctx *x = c;
    return bench_read(x->src, x->bytes, (unsigned *)x->dst, s) == 0 ? BK_STATUS_SUCCESS : BK_STATUS_DEVICE_ERROR;
}
static bk_status run_copy(void *c, cudaStream_t s)
{
    copy_ctx *x = c;
    return cudaMemcpyAsync(x->dst, x->src, x->bytes, cudaMemcpyDeviceToDevice, s) == cudaSuccess ? BK_STATUS_SUCCESS
                                                                                                 : BK_STATUS_DEVICE_ERROR;
}

typedef struct gemm_ctx {
    cublasHandle_t h;
    void *a, *b, *c;
    int n;
} gemm_ctx;
static bk_status run_gemm(void *c, cudaStream_t s)
{
    gemm_ctx *x = c;
    float one = 1.0f, zero = 0.0f;
    cublasSetStream(x->h, s);
    return cublasGemmEx(x->h, CUBLAS_OP_N, CUBLAS_OP_N, x->n, x->n, x->n, &one, x->a, CUDA_R_16BF, x->n, x->b,
                        CUDA_R_16BF, x->n, &zero, x->c, CUDA_R_16BF, x->n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) ==
                   CUBLAS_STATUS_SUCCESS
               ? BK_STATUS_SUCCESS
               : BK_STATUS_DEVICE_ERROR;
}

static void measure_ceilings(void)
{
    copy_ctx cc = {NULL, NULL, (size_t)2 << 30};
    cc.src = drand(BK_DTYPE_F32, cc.bytes / 4, -1, 1);
    cc.dst = dalloc(cc.bytes);
    double ms = time_ms(run_copy, &cc, 3, 20);
    g_copy_gbs = 2.0 * (double)cc.bytes / ms * 1e-6;
    /* read-only: the same 2 GiB streamed once (decode's roofline: it only reads) */
    ms = time_ms(run_read, &cc, 3, 20);
    g_read_gbs = (double)cc.bytes / ms * 1e-6;
    cudaFree(cc.src);
    cudaFree(cc.dst);

    gemm_ctx g;
    g.n = 8192;
    cublasCreate(&g.h);
    g.a = drand(BK_DTYPE_BF16, (size_t)g.n * g.n, -1, 1);
    g.b = drand(BK_DTYPE_BF16, (size_t)g.n * g.n, -1, 1);
    g.c = dalloc((size_t)g.n * g.n * 2);
    ms = time_ms(run_gemm, &g, 3, 20);
    g_mma_tflops = 2.0 * g.n * (double)g.n * g.n / ms * 1e-9;
    cudaFree(g.a);
    cudaFree(g.b);
    cudaFree(g.c);
    cublasDestroy(g.h);
    printf("ceilings: device-to-device copy %.0f GB/s (read + write), read-only %.0f GB/s, cuBLAS bf16 8192^3 %.0f "
           "TFLOP/s\n\n",
           g_copy_gbs, g_read_gbs, g_mma_tflops);
    printf("%-46s %-40s %12s %16s %7s\n", "op / shape", "kernel (SKU)", "time", "rate", "% peak");
    if (g_csv)
        fprintf(g_csv, "ceiling,copy,,%.1f,GB/s,\nceiling,read,,%.1f,GB/s,\nceiling,bf16 gemm,,%.1f,TFLOP/s,\n",
                g_copy_gbs, g_read_gbs, g_mma_tflops);
}

#include "bench_ops.inc"

int main(int argc, char **argv)
{
    if (argc > 1)
        g_filter = argv[1];
    const char *csv = getenv("BK_BENCH_CSV");
    if (csv && *csv)
        g_csv = fopen(csv, "w");
    if (bk_target_cuda(0, &g_gpu) != BK_STATUS_SUCCESS) {
        fprintf(stderr, "bk_bench: %s\n", bk_last_error());
        return 1;
    }
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("bk_bench on %s (sm_%d%d, %d SMs, %d MB L2)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           prop.l2CacheSize >> 20);
    measure_ceilings();
    bench_all_ops();
    if (g_csv)
        fclose(g_csv);
    return 0;
}
