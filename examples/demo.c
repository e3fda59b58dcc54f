/*
 * demo.c - `make demo`: a decoder-style run through baracuda's C API.
 *
 *   1. prefill: a batch of prompts of different lengths is appended to a paged KV cache
 *      (paged_kv_append) and attended causally (paged_prefill), with GQA;
 *   2. 16 decode steps: one new token per request is appended (paged_kv_append) and
 *      attended (paged_decode);
 *   3. one Mamba-2 SSD layer (ssd_fwd) over the same token count;
 *   4. every paged result is checked against sdpa_fwd on the same data laid out
 *      contiguously, and a short report is printed.
 *
 * It runs on the GPU when one is present and every op has a CUDA kernel for it,
 * otherwise on the CPU, and says which.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 (clang) */
#include "baracuda/baracuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BK_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

enum { BATCH = 4, Q_HEADS = 8, KV_HEADS = 2, HEAD_DIM = 64, PAGE = 16, STEPS = 16, STATE = 64, CHUNK = 64 };
static const int prompt_len[BATCH] = {37, 64, 5, 100};
#define DT BK_DTYPE_BF16

/* ------------------------------------------------------------------ memory -- */
/* Buffers live on the device of the chosen target; the demo keeps host copies. */

static bool on_gpu;

static void die(const char *what, bk_status s)
{
    fprintf(stderr, "demo: %s failed: %s: %s\n", what, bk_status_name(s), bk_last_error());
    exit(1);
}

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
#ifdef BK_WITH_CUDA
    if (on_gpu) {
        if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
            fprintf(stderr, "demo: cudaMalloc of %zu bytes failed\n", bytes);
            exit(1);
        }
        return p;
    }
#endif
    p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "demo: out of memory\n");
        exit(1);
    }
    return p;
}

static void dev_free(void *p)
{
#ifdef BK_WITH_CUDA
    if (on_gpu) {
        cudaFree(p);
        return;
    }
#endif
    free(p);
}

static void to_dev(void *dst, const void *src, size_t bytes)
{
#ifdef BK_WITH_CUDA
    if (on_gpu) {
        cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
        return;
    }
#endif
    memcpy(dst, src, bytes);
}

static void to_host(void *dst, const void *src, size_t bytes)
{
#ifdef BK_WITH_CUDA
    if (on_gpu) {
        cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
        return;
    }
#endif
    memcpy(dst, src, bytes);
}

static void sync_device(void)
{
#ifdef BK_WITH_CUDA
    if (on_gpu)
        cudaDeviceSynchronize();
#endif
}

/* The workspace a plan asks for, on the plan's device (NULL when it needs none). */
static bk_workspace workspace_of(size_t bytes)
{
    bk_workspace ws = {bytes ? dev_alloc(bytes) : NULL, bytes};
    return ws;
}

static void workspace_free(bk_workspace ws)
{
    if (ws.data)
        dev_free(ws.data);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void fill_bf16(uint16_t *p, size_t n, float amp)
{
    for (size_t i = 0; i < n; i++)
        p[i] = bk_f32_to_bf16(amp * frand());
}

static bk_tensor view(void *data, bk_dtype dt, int32_t rank, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t shape[4] = {a, b, c, d};
    return bk_tensor_contiguous(data, dt, rank, shape);
}

/* ------------------------------------------------------------- the cache -- */

typedef struct cache {
    int32_t num_pages, used_pages;
    int32_t pages[BATCH][16]; /* page ids owned by each request, in order */
    int32_t npages[BATCH];
    int32_t len[BATCH];       /* tokens stored */
    uint16_t *k_hist[BATCH];  /* host copies, [token][kv_head][dim], for the check */
    uint16_t *v_hist[BATCH];
    void *k_pages, *v_pages, *indices, *indptr, *last;
} cache;

/* Grows each request by add[b] tokens: takes pages from the pool as needed and
 * uploads the page table of the cache after the append. */
static void cache_grow(cache *c, const int *add, bk_paged_kv *kv)
{
    int32_t indices[BATCH * 16], indptr[BATCH + 1], last[BATCH];
    indptr[0] = 0;
    for (int b = 0; b < BATCH; b++) {
        c->len[b] += add[b];
        while (c->npages[b] * PAGE < c->len[b])
            c->pages[b][c->npages[b]++] = (c->used_pages++ * 7) % c->num_pages; /* scattered page ids */
        for (int p = 0; p < c->npages[b]; p++)
            indices[indptr[b] + p] = c->pages[b][p];
        indptr[b + 1] = indptr[b] + c->npages[b];
        last[b] = c->len[b] - (c->npages[b] - 1) * PAGE;
    }
    to_dev(c->indices, indices, sizeof indices);
    to_dev(c->indptr, indptr, sizeof indptr);
    to_dev(c->last, last, sizeof last);
    kv->k_pages = view(c->k_pages, DT, 4, c->num_pages, KV_HEADS, PAGE, HEAD_DIM);
    kv->v_pages = view(c->v_pages, DT, 4, c->num_pages, KV_HEADS, PAGE, HEAD_DIM);
    kv->kv_indices = view(c->indices, BK_DTYPE_I32, 1, indptr[BATCH], 0, 0, 0);
    kv->kv_indices.capacity = BATCH * 16;
    kv->kv_indptr = view(c->indptr, BK_DTYPE_I32, 1, BATCH + 1, 0, 0, 0);
    kv->last_page_len = view(c->last, BK_DTYPE_I32, 1, BATCH, 0, 0, 0);
}

/* Appends add[b] new tokens per request (random K/V) with paged_kv_append. */
static double append_tokens(bk_target target, cache *c, const int *add, char *sku, size_t sku_size)
{
    int32_t nnz = 0, indptr[BATCH + 1] = {0};
    for (int b = 0; b < BATCH; b++)
        indptr[b + 1] = (nnz += add[b]);
    size_t row = (size_t)KV_HEADS * HEAD_DIM, bytes = (size_t)nnz * row * 2;
    uint16_t *k = malloc(bytes + 2), *v = malloc(bytes + 2);
    fill_bf16(k, (size_t)nnz * row, 1.0f);
    fill_bf16(v, (size_t)nnz * row, 1.0f);
    for (int b = 0; b < BATCH; b++) { /* keep the host history for the check */
        c->k_hist[b] = realloc(c->k_hist[b], (size_t)(c->len[b] + add[b]) * row * 2);
        c->v_hist[b] = realloc(c->v_hist[b], (size_t)(c->len[b] + add[b]) * row * 2);
        memcpy(c->k_hist[b] + (size_t)c->len[b] * row, k + (size_t)indptr[b] * row, (size_t)add[b] * row * 2);
        memcpy(c->v_hist[b] + (size_t)c->len[b] * row, v + (size_t)indptr[b] * row, (size_t)add[b] * row * 2);
    }
    void *dk = dev_alloc(bytes), *dv = dev_alloc(bytes), *dptr = dev_alloc(sizeof indptr);
    to_dev(dk, k, bytes);
    to_dev(dv, v, bytes);
    to_dev(dptr, indptr, sizeof indptr);

    bk_paged_kv_append_args args;
    memset(&args, 0, sizeof args);
    cache_grow(c, add, &args.kv);
    args.k_new = view(dk, DT, 3, nnz, KV_HEADS, HEAD_DIM, 0);
    args.v_new = view(dv, DT, 3, nnz, KV_HEADS, HEAD_DIM, 0);
    args.append_indptr = view(dptr, BK_DTYPE_I32, 1, BATCH + 1, 0, 0, 0);
    bk_paged_kv_append_desc desc = {BATCH, nnz, {c->num_pages, KV_HEADS, PAGE, HEAD_DIM, DT}};
    bk_paged_kv_append_plan plan;
    bk_status s = bk_paged_kv_append_select(&desc, target, BK_PREFER_FASTEST, &plan);
    if (s != BK_STATUS_SUCCESS)
        die("paged_kv_append select", s);
    bk_workspace ws = workspace_of(bk_paged_kv_append_workspace_size(&plan));
    double t0 = now_ms();
    s = bk_paged_kv_append_run(&plan, NULL, ws, &args);
    if (s != BK_STATUS_SUCCESS)
        die("paged_kv_append run", s);
    sync_device();
    double ms = now_ms() - t0;
    workspace_free(ws);
    bk_sku_name(&plan.info.sku, sku, sku_size);
    dev_free(dk);
    dev_free(dv);
    dev_free(dptr);
    free(k);
    free(v);
    return ms;
}

/* ----------------------------------------------------------- the check -- */

/* Attention of request b's rows [q0, q0 + rows) (host bf16 [rows][Q_HEADS][HEAD_DIM])
 * over its whole history, through sdpa_fwd on contiguous tensors; returns the largest
 * |o - sdpa| over the rows. */
static double check_with_sdpa(bk_target target, const cache *c, int b, const uint16_t *q_rows, const uint16_t *o_rows,
                              int rows, char *sku, size_t sku_size)
{
    const int64_t L = c->len[b];
    size_t qn = (size_t)Q_HEADS * rows * HEAD_DIM, kn = (size_t)KV_HEADS * L * HEAD_DIM;
    uint16_t *q = malloc(qn * 2), *k = malloc(kn * 2), *v = malloc(kn * 2), *y = malloc(qn * 2);
    /* [rows][heads][dim] -> [1][heads][rows][dim] */
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < Q_HEADS; h++)
            memcpy(q + ((size_t)h * rows + r) * HEAD_DIM, q_rows + ((size_t)r * Q_HEADS + h) * HEAD_DIM, HEAD_DIM * 2);
    for (int64_t t = 0; t < L; t++)
        for (int h = 0; h < KV_HEADS; h++) {
            memcpy(k + ((size_t)h * L + t) * HEAD_DIM, c->k_hist[b] + ((size_t)t * KV_HEADS + h) * HEAD_DIM, HEAD_DIM * 2);
            memcpy(v + ((size_t)h * L + t) * HEAD_DIM, c->v_hist[b] + ((size_t)t * KV_HEADS + h) * HEAD_DIM, HEAD_DIM * 2);
        }
    void *dq = dev_alloc(qn * 2), *dk = dev_alloc(kn * 2), *dv = dev_alloc(kn * 2), *dy = dev_alloc(qn * 2);
    to_dev(dq, q, qn * 2);
    to_dev(dk, k, kn * 2);
    to_dev(dv, v, kn * 2);
    bk_sdpa_fwd_desc desc = {1, Q_HEADS, KV_HEADS, rows, (int32_t)L, HEAD_DIM, HEAD_DIM, 1.0 / sqrt(HEAD_DIM),
                             true, -1, 0.0, false, DT};
    bk_sdpa_fwd_plan plan;
    bk_status s = bk_sdpa_fwd_select(&desc, target, BK_PREFER_FASTEST, &plan);
    if (s != BK_STATUS_SUCCESS)
        die("sdpa_fwd select", s);
    bk_sdpa_fwd_args args = {view(dq, DT, 4, 1, Q_HEADS, rows, HEAD_DIM), view(dk, DT, 4, 1, KV_HEADS, L, HEAD_DIM),
                             view(dv, DT, 4, 1, KV_HEADS, L, HEAD_DIM), view(dy, DT, 4, 1, Q_HEADS, rows, HEAD_DIM),
                             NULL, NULL};
    bk_workspace ws = workspace_of(bk_sdpa_fwd_workspace_size(&plan));
    s = bk_sdpa_fwd_run(&plan, NULL, ws, &args);
    if (s != BK_STATUS_SUCCESS)
        die("sdpa_fwd run", s);
    workspace_free(ws);
    to_host(y, dy, qn * 2);
    bk_sku_name(&plan.info.sku, sku, sku_size);
    double err = 0.0;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < Q_HEADS; h++)
            for (int d = 0; d < HEAD_DIM; d++) {
                double a = bk_bf16_to_f32(o_rows[((size_t)r * Q_HEADS + h) * HEAD_DIM + d]);
                double e = bk_bf16_to_f32(y[((size_t)h * rows + r) * HEAD_DIM + d]);
                err = fmax(err, isnan(a) ? INFINITY : fabs(a - e));
            }
    dev_free(dq);
    dev_free(dk);
    dev_free(dv);
    dev_free(dy);
    free(q);
    free(k);
    free(v);
    free(y);
    return err;
}

/* ---------------------------------------------------------------- main -- */

static bk_target choose_target(char *why, size_t size)
{
    bk_target gpu;
    if (bk_target_cuda(0, &gpu) != BK_STATUS_SUCCESS) {
        snprintf(why, size, "%s", bk_last_error());
        return bk_target_cpu();
    }
    /* the GPU only when every op of the demo has a kernel there */
    bk_paged_kv_desc pk = {64, KV_HEADS, PAGE, HEAD_DIM, DT};
    bk_paged_kv_append_desc a = {BATCH, BATCH, pk};
    bk_paged_prefill_desc p = {BATCH, BATCH, Q_HEADS, 0.125, true, false, pk};
    bk_paged_decode_desc d = {BATCH, Q_HEADS, 0.125, 0, pk, 1};
    bk_sdpa_fwd_desc f = {1, Q_HEADS, KV_HEADS, 4, 4, HEAD_DIM, HEAD_DIM, 0.125, true, -1, 0.0, false, DT};
    bk_ssd_desc sd = {.batch = BATCH, .seq_len = 128, .heads = Q_HEADS, .head_dim = HEAD_DIM,
                      .state_dim = STATE, .chunk_size = CHUNK, .dtype = DT};
    bk_paged_kv_append_plan pa;
    bk_paged_prefill_plan pp;
    bk_paged_decode_plan pd;
    bk_sdpa_fwd_plan pf;
    bk_ssd_fwd_plan ps;
    if (bk_paged_kv_append_select(&a, gpu, BK_PREFER_FASTEST, &pa) || bk_paged_prefill_select(&p, gpu, BK_PREFER_FASTEST, &pp) ||
        bk_paged_decode_select(&d, gpu, BK_PREFER_FASTEST, &pd) || bk_sdpa_fwd_select(&f, gpu, BK_PREFER_FASTEST, &pf) ||
        bk_ssd_fwd_select(&sd, gpu, BK_PREFER_FASTEST, &ps)) {
        snprintf(why, size, "GPU present but %s", bk_last_error());
        return bk_target_cpu();
    }
    snprintf(why, size, "CUDA device 0, sm_%d%d", gpu.cc_major, gpu.cc_minor);
    return gpu;
}

int main(void)
{
    char why[256], sku_append[96] = "", sku_prefill[96] = "", sku_decode[96] = "", sku_sdpa[96] = "", sku_ssd[96] = "";
    bk_target target = choose_target(why, sizeof why);
    on_gpu = target.kind == BK_TARGET_CUDA;
    printf("baracuda demo: backend %s (%s)\n", on_gpu ? "GPU" : "CPU", why);

    cache c;
    memset(&c, 0, sizeof c);
    c.num_pages = 64;
    size_t pool = (size_t)c.num_pages * KV_HEADS * PAGE * HEAD_DIM * 2;
    c.k_pages = dev_alloc(pool);
    c.v_pages = dev_alloc(pool);
    c.indices = dev_alloc(BATCH * 16 * 4);
    c.indptr = dev_alloc((BATCH + 1) * 4);
    c.last = dev_alloc(BATCH * 4);
    bk_paged_kv_desc pk = {c.num_pages, KV_HEADS, PAGE, HEAD_DIM, DT};
    const double scale = 1.0 / sqrt((double)HEAD_DIM);
    double max_err = 0.0;

    /* 1. prefill */
    double t_append = append_tokens(target, &c, prompt_len, sku_append, sizeof sku_append);
    int32_t rows = 0, q_indptr[BATCH + 1] = {0};
    for (int b = 0; b < BATCH; b++)
        q_indptr[b + 1] = (rows += prompt_len[b]);
    size_t qn = (size_t)rows * Q_HEADS * HEAD_DIM;
    uint16_t *q = malloc(qn * 2), *o = malloc(qn * 2);
    fill_bf16(q, qn, 1.0f);
    void *dq = dev_alloc(qn * 2), *dout = dev_alloc(qn * 2), *dqi = dev_alloc(sizeof q_indptr),
         *dlse = dev_alloc((size_t)rows * Q_HEADS * 4);
    to_dev(dq, q, qn * 2);
    to_dev(dqi, q_indptr, sizeof q_indptr);
    bk_paged_prefill_desc pd = {BATCH, rows, Q_HEADS, scale, true, false, pk};
    bk_paged_prefill_plan pplan;
    bk_status s = bk_paged_prefill_select(&pd, target, BK_PREFER_FASTEST, &pplan);
    if (s)
        die("paged_prefill select", s);
    bk_paged_prefill_args pa;
    memset(&pa, 0, sizeof pa);
    int zero[BATCH] = {0};
    cache_grow(&c, zero, &pa.kv);
    pa.q = view(dq, DT, 3, rows, Q_HEADS, HEAD_DIM, 0);
    pa.q_indptr = view(dqi, BK_DTYPE_I32, 1, BATCH + 1, 0, 0, 0);
    pa.o = view(dout, DT, 3, rows, Q_HEADS, HEAD_DIM, 0);
    bk_tensor lse = view(dlse, BK_DTYPE_F32, 2, rows, Q_HEADS, 0, 0);
    pa.lse = &lse;
    bk_workspace pws = workspace_of(bk_paged_prefill_workspace_size(&pplan));
    double t0 = now_ms();
    s = bk_paged_prefill_run(&pplan, NULL, pws, &pa);
    if (s)
        die("paged_prefill run", s);
    sync_device();
    double t_prefill = now_ms() - t0;
    workspace_free(pws);
    bk_sku_name(&pplan.info.sku, sku_prefill, sizeof sku_prefill);
    to_host(o, dout, qn * 2);
    for (int b = 0; b < BATCH; b++) {
        size_t off = (size_t)q_indptr[b] * Q_HEADS * HEAD_DIM;
        max_err = fmax(max_err, check_with_sdpa(target, &c, b, q + off, o + off, prompt_len[b], sku_sdpa, sizeof sku_sdpa));
    }
    printf("prefill: %d prompts of %d, %d, %d, %d tokens (%d rows), %d q heads / %d kv heads, head dim %d, pages of %d\n",
           BATCH, prompt_len[0], prompt_len[1], prompt_len[2], prompt_len[3], rows, Q_HEADS, KV_HEADS, HEAD_DIM, PAGE);
    dev_free(dq);
    dev_free(dout);
    dev_free(dqi);
    dev_free(dlse);
    free(q);
    free(o);

    /* 2. decode */
    size_t dn = (size_t)BATCH * Q_HEADS * HEAD_DIM;
    uint16_t *dqh = malloc(dn * 2), *doh = malloc(dn * 2);
    void *ddq = dev_alloc(dn * 2), *ddo = dev_alloc(dn * 2);
    bk_paged_decode_desc dd = {BATCH, Q_HEADS, scale, 0, pk, 1};
    bk_paged_decode_plan dplan;
    s = bk_paged_decode_select(&dd, target, BK_PREFER_FASTEST, &dplan);
    if (s)
        die("paged_decode select", s);
    bk_sku_name(&dplan.info.sku, sku_decode, sizeof sku_decode);
    bk_workspace dws = workspace_of(bk_paged_decode_workspace_size(&dplan));
    double t_decode = 0.0, t_dappend = 0.0;
    int one[BATCH] = {1, 1, 1, 1};
    for (int step = 0; step < STEPS; step++) {
        t_dappend += append_tokens(target, &c, one, sku_append, sizeof sku_append);
        fill_bf16(dqh, dn, 1.0f);
        to_dev(ddq, dqh, dn * 2);
        bk_paged_decode_args da;
        memset(&da, 0, sizeof da);
        cache_grow(&c, zero, &da.kv);
        da.q = view(ddq, DT, 3, BATCH, Q_HEADS, HEAD_DIM, 0);
        da.o = view(ddo, DT, 3, BATCH, Q_HEADS, HEAD_DIM, 0);
        t0 = now_ms();
        s = bk_paged_decode_run(&dplan, NULL, dws, &da);
        if (s)
            die("paged_decode run", s);
        sync_device();
        t_decode += now_ms() - t0;
        to_host(doh, ddo, dn * 2);
        for (int b = 0; b < BATCH; b++) {
            size_t off = (size_t)b * Q_HEADS * HEAD_DIM;
            max_err = fmax(max_err, check_with_sdpa(target, &c, b, dqh + off, doh + off, 1, sku_sdpa, sizeof sku_sdpa));
        }
    }
    printf("decode:  %d steps, final lengths %d, %d, %d, %d\n", STEPS, c.len[0], c.len[1], c.len[2], c.len[3]);
    workspace_free(dws);
    dev_free(ddq);
    dev_free(ddo);
    free(dqh);
    free(doh);

    /* 3. one Mamba-2 SSD layer over as many tokens as the longest request holds */
    int32_t L = 0;
    for (int b = 0; b < BATCH; b++)
        L = c.len[b] > L ? c.len[b] : L;
    size_t xn = (size_t)BATCH * L * Q_HEADS * HEAD_DIM, bn = (size_t)BATCH * L * Q_HEADS * STATE,
           tn = (size_t)BATCH * L * Q_HEADS;
    uint16_t *hx = malloc(xn * 2), *hb = malloc(bn * 2), *hc = malloc(bn * 2), *hdt = malloc(tn * 2),
             *ha = malloc(Q_HEADS * 2), *hy = malloc(xn * 2);
    fill_bf16(hx, xn, 1.0f);
    fill_bf16(hb, bn, 0.5f);
    fill_bf16(hc, bn, 0.5f);
    for (size_t i = 0; i < tn; i++)
        hdt[i] = bk_f32_to_bf16(0.05f + 0.04f * frand());
    for (int h = 0; h < Q_HEADS; h++)
        ha[h] = bk_f32_to_bf16(-0.5f - 0.4f * frand());
    void *x = dev_alloc(xn * 2), *bb = dev_alloc(bn * 2), *cc = dev_alloc(bn * 2), *dt = dev_alloc(tn * 2),
         *a = dev_alloc(Q_HEADS * 2), *y = dev_alloc(xn * 2);
    to_dev(x, hx, xn * 2);
    to_dev(bb, hb, bn * 2);
    to_dev(cc, hc, bn * 2);
    to_dev(dt, hdt, tn * 2);
    to_dev(a, ha, Q_HEADS * 2);
    bk_ssd_desc sd = {.batch = BATCH, .seq_len = L, .heads = Q_HEADS, .head_dim = HEAD_DIM,
                      .state_dim = STATE, .chunk_size = CHUNK, .dtype = DT};
    bk_ssd_fwd_plan splan;
    s = bk_ssd_fwd_select(&sd, target, BK_PREFER_FASTEST, &splan);
    if (s)
        die("ssd_fwd select", s);
    bk_ssd_fwd_args sa = {.x = view(x, DT, 4, BATCH, L, Q_HEADS, HEAD_DIM),
                          .dt = view(dt, DT, 3, BATCH, L, Q_HEADS, 0),
                          .a = view(a, DT, 1, Q_HEADS, 0, 0, 0),
                          .b = view(bb, DT, 4, BATCH, L, Q_HEADS, STATE),
                          .c = view(cc, DT, 4, BATCH, L, Q_HEADS, STATE),
                          .y = view(y, DT, 4, BATCH, L, Q_HEADS, HEAD_DIM)};
    bk_workspace ws = workspace_of(bk_ssd_fwd_workspace_size(&splan));
    t0 = now_ms();
    s = bk_ssd_fwd_run(&splan, NULL, ws, &sa);
    if (s)
        die("ssd_fwd run", s);
    sync_device();
    double t_ssd = now_ms() - t0;
    bk_sku_name(&splan.info.sku, sku_ssd, sizeof sku_ssd);
    to_host(hy, y, xn * 2);
    double ymax = 0.0;
    for (size_t i = 0; i < xn; i++)
        ymax = fmax(ymax, fabs(bk_bf16_to_f32(hy[i])));
    printf("ssd:     x [%d, %d, %d, %d], state %d, chunk %d, max |y| %.3f\n", BATCH, L, Q_HEADS, HEAD_DIM, STATE, CHUNK,
           ymax);

    printf("\n%-16s %-44s %12s\n", "step", "kernel (SKU)", "time");
    printf("%-16s %-44s %9.3f ms\n", "append prompts", sku_append, t_append);
    printf("%-16s %-44s %9.3f ms\n", "prefill", sku_prefill, t_prefill);
    printf("%-16s %-44s %9.3f ms\n", "append (decode)", sku_append, t_dappend / STEPS);
    printf("%-16s %-44s %9.3f ms\n", "decode step", sku_decode, t_decode / STEPS);
    printf("%-16s %-44s %9.3f ms\n", "ssd layer", sku_ssd, t_ssd);
    printf("%-16s %-44s\n", "check", sku_sdpa);
    printf("\nmax |paged - sdpa| over %d prefill rows and %d decode rows: %.3g (bf16)\n", rows, STEPS * BATCH, max_err);
    bool ok = max_err <= 1.0 / 64 && isfinite(ymax);
    printf("demo %s\n", ok ? "OK" : "FAILED");

    dev_free(x);
    dev_free(bb);
    dev_free(cc);
    dev_free(dt);
    dev_free(a);
    dev_free(y);
    workspace_free(ws);
    free(hx);
    free(hb);
    free(hc);
    free(hdt);
    free(ha);
    free(hy);
    for (int b = 0; b < BATCH; b++) {
        free(c.k_hist[b]);
        free(c.v_hist[b]);
    }
    dev_free(c.k_pages);
    dev_free(c.v_pages);
    dev_free(c.indices);
    dev_free(c.indptr);
    dev_free(c.last);
    return ok ? 0 : 1;
}
