/* sdpa_bwd.cu - flash attention backward on CUDA.
 *
 * Math (attention.h): for row i of query head h (kv head hk = h / group), key j,
 * pos = i + Sk - Sq:  s_ij = scale <q_i, k_j>, then softcap tanh(s / softcap), then
 * + slope_h (j - pos); p_ij = exp(s_ij - lse_i) on the visible keys (0 elsewhere and for
 * rows with lse = -inf), D_i = <dy_i, y_i>, dp_ij = <dy_i, v_j>,
 * dz_ij = p_ij (dp_ij - D_i) * scale * (1 - tanh^2) [tanh factor only with softcap],
 * dq_i = sum_j dz_ij k_j, dk_j = sum_{h in group, i} dz_ij q_i, dv_j = sum_{h, i} p_ij dy_i.
 * p uses the f32 lse as given (plain exp(s - lse)): its rounding costs about 1e-7
 * relative, below the f32/f16/bf16 tolerances. For f64 a pass over the keys first
 * refines lse in f64 (lse += log sum_j exp(s_ij - lse)), which is the CPU kernel's
 * renormalisation of p, so f64 results are f64-accurate.
 *
 * Shapes: q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv], y/dy [B,Hq,Sq,Dv],
 * lse f32 [B,Hq,Sq], slopes f32 [Hq]; dq, dk, dv like q, k, v; outer strides arbitrary
 * (k/v may broadcast with stride 0 on the head axis), inner stride 1. Workspace: two
 * contiguous row arrays [B,Hq,Sq] in the compute type (f64 for f64, else f32): D_i and lse.
 *
 * Work (every kernel writes each output element from one thread, in a fixed order, no
 * atomics: deterministic and bit-stable):
 *   1. rows kernel: one warp per (b, h, i) writes D_i and lse_i (as the compute type).
 *   1b. f64 only: the Q-stationary kernel in row-sum mode refines lse.
 *   2. dk/dv, "KV-stationary": one CTA per (b, kv head, tile of keys) walks every query
 *      head of its GQA group and every query row that can see the tile, recomputes p and
 *      dz, and accumulates dk/dv of its keys, then stores them once.
 *   3. dq, "Q-stationary": one CTA per (b, q head, tile of rows) walks the visible keys
 *      and stores dq once.
 * Two kernels families implement 2 and 3:
 *   - generic (every dtype and option, Dqk != Dv, D <= 256): CUDA cores, compute type
 *     f32 (f64 for f64), tiles of 16 x 16 (8 x 8 for f64) in shared memory, one thread
 *     per (row, key) score, one thread per accumulated output element.
 *   - tensor cores (f16/bf16, Dqk == Dv in {64, 128}, rows 16-byte aligned): mma.sync
 *     m16n8k16 with f32 accumulation, FlashAttention-2's backward structure with dq in
 *     its own pass instead of atomics; P and dS are rounded to the element type before
 *     the dv/dk/dq products (as FlashAttention does). Every option (mask, window,
 *     softcap, ALiBi, GQA) is applied per element in registers.
 * Not yet: no sm_90 (wgmma/TMA) kernels; dq recomputes P (two passes over the scores).
 * Batch is launched in chunks of 65535 (grid z). */
#include "common.cuh"
#include "cuda/sdpa_bwd_cuda.h"

#include <math.h>

namespace {

struct bwd_params {
    const void *q, *k, *v, *y, *dy;
    const float *lse_in, *slopes;
    void *dq, *dk, *dv;
    bk_view4 sq, sk, sv, sy, sdy, sdq, sdk, sdv;
    long long sl0, sl1, sl2, sslope;
    int B, Hq, Hkv, Sq, Sk, Dqk, Dv, group;
    long long off; /* Sk - Sq */
    double scale, softcap;
    int causal, window, alibi;
    void *drow, *lrow; /* [B, Hq, Sq] compute type */
};

static const int kThreads = 128;

__device__ __forceinline__ bool visible(const bwd_params &p, long long i, long long j)
{
    const long long pos = i + p.off;
    if (j < 0 || j >= p.Sk)
        return false;
    if (p.causal && j > pos)
        return false;
    if (p.window >= 0 && j < pos - p.window)
        return false;
    return true;
}


/* The score of a raw dot product and the factor d s / d dot (scale, times 1 - tanh^2). */
template <typename A>
__device__ __forceinline__ void score(const bwd_params &p, A dot, A slope, long long i, long long j, A &s, A &dfac)
{
    A raw = dot * (A)p.scale, f = (A)p.scale;
    if (p.softcap > 0.0) {
        const A cap = (A)p.softcap, t = bk_tanh(raw / cap);
        raw = cap * t;
        f *= (A)1 - t * t;
    }
    if (p.alibi)
        raw += slope * (A)(j - (i + p.off));
    s = raw;
    dfac = f;
}

/* ------------------------------------------------------------- rows -- */

/* One warp per row (b, h, i): D_i = <dy_i, y_i> and lse_i, in the compute type. */
template <typename T>
__global__ void __launch_bounds__(kThreads) bwd_rows_kernel(bwd_params p)
{
    typedef typename elem<T>::acc A;
    const long long rows = (long long)p.B * p.Hq * p.Sq;
    const int lane = threadIdx.x & 31;
    const T *y = (const T *)p.y, *dy = (const T *)p.dy;
    for (long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5; r < rows;
         r += ((long long)gridDim.x * blockDim.x) >> 5) {
        const long long i = r % p.Sq, h = (r / p.Sq) % p.Hq, b = r / ((long long)p.Sq * p.Hq);
        const T *yr = y + b * p.sy.s0 + h * p.sy.s1 + i * p.sy.s2;
        const T *dyr = dy + b * p.sdy.s0 + h * p.sdy.s1 + i * p.sdy.s2;
        A acc = 0;
        for (int e = lane; e < p.Dv; e += 32)
            acc += elem<T>::load(yr[e]) * elem<T>::load(dyr[e]);
        for (int w = 16; w > 0; w >>= 1)
            acc += __shfl_xor_sync(0xffffffffu, acc, w);
        if (lane == 0) {
            ((A *)p.drow)[r] = acc;
            ((A *)p.lrow)[r] = (A)p.lse_in[b * p.sl0 + h * p.sl1 + i * p.sl2];
        }
    }
}

/* -------------------------------------------------------- generic -- */

/* Shared-memory tiles of the generic kernels, in the compute type A. Rows padded by one
 * element against bank conflicts. */
template <typename A> struct gen_smem {
    A *q, *dy, *k, *v, *acc, *acc2, *pp, *ds, *l, *d, *rsum;
};

template <typename A>
__host__ __device__ inline size_t gen_smem_elems(int bq, int bk, int dqk, int dv, bool kv)
{
    const size_t ldq = (size_t)dqk + 1, ldv = (size_t)dv + 1;
    size_t n = (size_t)bq * (ldq + ldv) + (size_t)bk * (ldq + ldv) + 2 * (size_t)bq * bk + 3 * (size_t)bq;
    n += kv ? (size_t)bk * (ldq + ldv) : (size_t)bq * ldq;
    return n;
}

template <typename A> __device__ gen_smem<A> gen_carve(A *base, int bq, int bk, int dqk, int dv, bool kv)
{
    const int ldq = dqk + 1, ldv = dv + 1;
    gen_smem<A> s;
    s.q = base;
    s.dy = s.q + bq * ldq;
    s.k = s.dy + bq * ldv;
    s.v = s.k + bk * ldq;
    s.acc = s.v + bk * ldv;
    s.acc2 = s.acc + (kv ? bk * ldq : bq * ldq);
    s.pp = s.acc2 + (kv ? bk * ldv : 0);
    s.ds = s.pp + bq * bk;
    s.l = s.ds + bq * bk;
    s.d = s.l + bq;
    s.rsum = s.d + bq;
    return s;
}

/* Loads `rows` rows of `dim` elements starting at row r0 (of n) into dst[rows][dim + 1];
 * rows past n are zero. */
template <typename T, typename A>
__device__ void load_rows(A *dst, const T *src, long long stride, long long r0, long long n, int rows, int dim)
{
    const int ld = dim + 1;
    for (int idx = threadIdx.x; idx < rows * dim; idx += blockDim.x) {
        const int r = idx / dim, e = idx % dim;
        dst[r * ld + e] = r0 + r < n ? elem<T>::load(src[(r0 + r) * stride + e]) : (A)0;
    }
}

/* The query-side tile of rows [i0, i0 + bq) of head (b, h): q, dy, lse and D. */
template <typename T, typename A>
__device__ void load_q_side(const bwd_params &p, const gen_smem<A> &s, long long b, long long h, long long i0, int bq)
{
    load_rows<T, A>(s.q, (const T *)p.q + b * p.sq.s0 + h * p.sq.s1, p.sq.s2, i0, p.Sq, bq, p.Dqk);
    load_rows<T, A>(s.dy, (const T *)p.dy + b * p.sdy.s0 + h * p.sdy.s1, p.sdy.s2, i0, p.Sq, bq, p.Dv);
    const long long base = (b * p.Hq + h) * p.Sq;
    for (int r = threadIdx.x; r < bq; r += blockDim.x) {
        const bool in = i0 + r < p.Sq;
        s.l[r] = in ? ((const A *)p.lrow)[base + i0 + r] : (A)-INFINITY;
        s.d[r] = in ? ((const A *)p.drow)[base + i0 + r] : (A)0;
    }
}

/* p and dz of the bq x bk tile (rows i0.., keys j0..) into s.pp, s.ds. */
template <typename A, bool kRowSum>
__device__ void score_tile(const bwd_params &p, const gen_smem<A> &s, A slope, long long i0, long long j0, int bq,
                           int bk)
{
    const int ldq = p.Dqk + 1, ldv = p.Dv + 1;
    for (int pr = threadIdx.x; pr < bq * bk; pr += blockDim.x) {
        const int qi = pr / bk, kj = pr % bk;
        const long long i = i0 + qi, j = j0 + kj;
        A pp = 0, ds = 0;
        const A lse = s.l[qi];
        if (i < p.Sq && lse != (A)-INFINITY && visible(p, i, j)) {
            A dot = 0;
            for (int e = 0; e < p.Dqk; e++)
                dot += s.q[qi * ldq + e] * s.k[kj * ldq + e];
            A sc, dfac;
            score<A>(p, dot, slope, i, j, sc, dfac);
            pp = bk_exp(sc - lse);
            if (!kRowSum) {
                A dp = 0;
                for (int e = 0; e < p.Dv; e++)
                    dp += s.dy[qi * ldv + e] * s.v[kj * ldv + e];
                ds = pp * (dp - s.d[qi]) * dfac;
            }
        }
        s.pp[pr] = pp;
        s.ds[pr] = ds;
    }
}

/* dk/dv of keys [j0, j0 + BK) of (b, hk): every q head of the group, every row that can
 * see one of the keys. */
template <typename T, int BQ, int BK>
__global__ void __launch_bounds__(kThreads) bwd_dkdv_generic(bwd_params p, int b0)
{
    typedef typename elem<T>::acc A;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const gen_smem<A> s = gen_carve<A>((A *)smem_raw, BQ, BK, p.Dqk, p.Dv, true);
    const long long b = blockIdx.z + (long long)b0, hk = blockIdx.y, j0 = (long long)blockIdx.x * BK;
    const int ldq = p.Dqk + 1, ldv = p.Dv + 1;
    load_rows<T, A>(s.k, (const T *)p.k + b * p.sk.s0 + hk * p.sk.s1, p.sk.s2, j0, p.Sk, BK, p.Dqk);
    load_rows<T, A>(s.v, (const T *)p.v + b * p.sv.s0 + hk * p.sv.s1, p.sv.s2, j0, p.Sk, BK, p.Dv);
    for (int idx = threadIdx.x; idx < BK * ldq; idx += blockDim.x)
        s.acc[idx] = 0;
    for (int idx = threadIdx.x; idx < BK * ldv; idx += blockDim.x)
        s.acc2[idx] = 0;
    long long ilo = 0, ihi = (long long)p.Sq - 1;
    if (p.causal && j0 - p.off > ilo)
        ilo = j0 - p.off;
    if (p.window >= 0 && j0 + BK - 1 - p.off + p.window < ihi)
        ihi = j0 + BK - 1 - p.off + p.window;
    for (long long h = hk * p.group; h < (hk + 1) * p.group; h++) {
        const A slope = p.alibi ? (A)p.slopes[h * p.sslope] : (A)0;
        for (long long i0 = ilo; i0 <= ihi; i0 += BQ) {
            __syncthreads();
            load_q_side<T, A>(p, s, b, h, i0, BQ);
            __syncthreads();
            score_tile<A, false>(p, s, slope, i0, j0, BQ, BK);
            __syncthreads();
            for (int idx = threadIdx.x; idx < BK * p.Dv; idx += blockDim.x) {
                const int kj = idx / p.Dv, e = idx % p.Dv;
                A acc = s.acc2[kj * ldv + e];
                for (int qi = 0; qi < BQ; qi++)
                    acc += s.pp[qi * BK + kj] * s.dy[qi * ldv + e];
                s.acc2[kj * ldv + e] = acc;
            }
            for (int idx = threadIdx.x; idx < BK * p.Dqk; idx += blockDim.x) {
                const int kj = idx / p.Dqk, e = idx % p.Dqk;
                A acc = s.acc[kj * ldq + e];
                for (int qi = 0; qi < BQ; qi++)
                    acc += s.ds[qi * BK + kj] * s.q[qi * ldq + e];
                s.acc[kj * ldq + e] = acc;
            }
        }
    }
    __syncthreads();
    T *dk = (T *)p.dk + b * p.sdk.s0 + hk * p.sdk.s1, *dv = (T *)p.dv + b * p.sdv.s0 + hk * p.sdv.s1;
    for (int idx = threadIdx.x; idx < BK * p.Dqk; idx += blockDim.x) {
        const int kj = idx / p.Dqk, e = idx % p.Dqk;
        if (j0 + kj < p.Sk)
            dk[(j0 + kj) * p.sdk.s2 + e] = elem<T>::store(s.acc[kj * ldq + e]);
    }
    for (int idx = threadIdx.x; idx < BK * p.Dv; idx += blockDim.x) {
        const int kj = idx / p.Dv, e = idx % p.Dv;
        if (j0 + kj < p.Sk)
            dv[(j0 + kj) * p.sdv.s2 + e] = elem<T>::store(s.acc2[kj * ldv + e]);
    }
}

/* dq of rows [i0, i0 + BQ) of (b, h), or with kRowSum the f64 lse refinement
 * lse_i += log sum_j exp(s_ij - lse_i) of those rows. */
template <typename T, int BQ, int BK, bool kRowSum>
__global__ void __launch_bounds__(kThreads) bwd_dq_generic(bwd_params p, int b0)
{
    typedef typename elem<T>::acc A;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const gen_smem<A> s = gen_carve<A>((A *)smem_raw, BQ, BK, p.Dqk, p.Dv, false);
    const long long b = blockIdx.z + (long long)b0, h = blockIdx.y, i0 = (long long)blockIdx.x * BQ;
    const long long hk = h / p.group;
    const int ldq = p.Dqk + 1;
    const A slope = p.alibi ? (A)p.slopes[h * p.sslope] : (A)0;
    load_q_side<T, A>(p, s, b, h, i0, BQ);
    for (int idx = threadIdx.x; idx < BQ * ldq; idx += blockDim.x)
        s.acc[idx] = 0;
    for (int r = threadIdx.x; r < BQ; r += blockDim.x)
        s.rsum[r] = 0;
    const long long i1 = min(i0 + BQ - 1, (long long)p.Sq - 1);
    long long jlo = 0, jhi = (long long)p.Sk - 1;
    if (p.causal && i1 + p.off < jhi)
        jhi = i1 + p.off;
    if (p.window >= 0 && i0 + p.off - p.window > jlo)
        jlo = i0 + p.off - p.window;
    const T *kb = (const T *)p.k + b * p.sk.s0 + hk * p.sk.s1, *vb = (const T *)p.v + b * p.sv.s0 + hk * p.sv.s1;
    for (long long j0 = jlo; j0 <= jhi; j0 += BK) {
        __syncthreads();
        load_rows<T, A>(s.k, kb, p.sk.s2, j0, p.Sk, BK, p.Dqk);
        if (!kRowSum)
            load_rows<T, A>(s.v, vb, p.sv.s2, j0, p.Sk, BK, p.Dv);
        __syncthreads();
        score_tile<A, kRowSum>(p, s, slope, i0, j0, BQ, BK);
        __syncthreads();
        if (kRowSum) {
            for (int qi = threadIdx.x; qi < BQ; qi += blockDim.x) {
                A acc = s.rsum[qi];
                for (int kj = 0; kj < BK; kj++)
                    acc += s.pp[qi * BK + kj];
                s.rsum[qi] = acc;
            }
        } else {
            for (int idx = threadIdx.x; idx < BQ * p.Dqk; idx += blockDim.x) {
                const int qi = idx / p.Dqk, e = idx % p.Dqk;
                A acc = s.acc[qi * ldq + e];
                for (int kj = 0; kj < BK; kj++)
                    acc += s.ds[qi * BK + kj] * s.k[kj * ldq + e];
                s.acc[qi * ldq + e] = acc;
            }
        }
    }
    __syncthreads();
    if (kRowSum) {
        A *lrow = (A *)p.lrow + (b * p.Hq + h) * p.Sq;
        for (int qi = threadIdx.x; qi < BQ; qi += blockDim.x)
            if (i0 + qi < p.Sq && s.l[qi] != (A)-INFINITY)
                lrow[i0 + qi] = s.rsum[qi] > (A)0 ? s.l[qi] + bk_log(s.rsum[qi]) : (A)-INFINITY;
        return;
    }
    T *dq = (T *)p.dq + b * p.sdq.s0 + h * p.sdq.s1;
    for (int idx = threadIdx.x; idx < BQ * p.Dqk; idx += blockDim.x) {
        const int qi = idx / p.Dqk, e = idx % p.Dqk;
        if (i0 + qi < p.Sq)
            dq[(i0 + qi) * p.sdq.s2 + e] = elem<T>::store(s.acc[qi * ldq + e]);
    }
}

/* --------------------------------------------------- tensor cores -- */


/* Swizzled [rows][D] tile of 16-bit elements: 16-byte chunk c of row r lives at chunk
 * c ^ (r % 8), so the 8 rows of one ldmatrix hit 8 different bank groups. */
template <int D> __device__ __forceinline__ int swz(int r, int c) { return r * D + (((c >> 3) ^ (r & 7)) << 3) + (c & 7); }

/* Copies rows [r0, r0 + ROWS) (of n) of a [.., D] view into a swizzled tile; rows past n
 * are zero. */
template <typename T, int D, int ROWS>
__device__ __forceinline__ void tile_load(T *dst, const T *src, long long stride, long long r0, long long n)
{
    for (int c = threadIdx.x; c < ROWS * D / 8; c += kThreads) {
        const int r = c / (D / 8), ch = c % (D / 8);
        const bool in = r0 + r < n;
        const T *g = src + (in ? (r0 + r) * stride : 0) + ch * 8;
        bk_cp_async16(bk_smem_addr(dst + swz<D>(r, ch * 8)), g, in ? 16 : 0);
    }
}

/* p and dz (= ds * dfac) of one score element; 0 off the mask. */
__device__ __forceinline__ void tc_elem(const bwd_params &p, float dot, float dp, float slope, long long i,
                                        long long j, float lse, float di, float &pp, float &dz)
{
    pp = 0.f;
    dz = 0.f;
    if (i < p.Sq && lse != -INFINITY && visible(p, i, j)) {
        float s, dfac;
        score<float>(p, dot, slope, i, j, s, dfac);
        pp = exp2f((s - lse) * 1.4426950408889634f);
        dz = pp * (dp - di) * dfac;
    }
}

/* dk/dv, KV-stationary. 4 warps; warp w owns keys j0 + 16w .. + 15 (BK = 64 per CTA) and
 * walks query tiles of BQ rows: S^T = K Q^T and dP^T = V dO^T (mma), P^T and dS^T in
 * registers (rounded to T), dV += P^T dO, dK += dS^T Q. */
template <typename T, int D, int BQ>
__global__ void __launch_bounds__(kThreads) bwd_dkdv_tc(bwd_params p, int b0)
{
    constexpr int BK = 64, NT = BQ / 8, DT = D / 8;
    extern __shared__ __align__(128) unsigned char smem_tc[];
    T *sK = (T *)smem_tc, *sV = sK + BK * D, *sQ = sV + BK * D, *sO = sQ + BQ * D;
    float *sL = (float *)(sO + BQ * D), *sDi = sL + BQ;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const long long b = blockIdx.z + (long long)b0, hk = blockIdx.y, j0 = (long long)blockIdx.x * BK;
    tile_load<T, D, BK>(sK, (const T *)p.k + b * p.sk.s0 + hk * p.sk.s1, p.sk.s2, j0, p.Sk);
    tile_load<T, D, BK>(sV, (const T *)p.v + b * p.sv.s0 + hk * p.sv.s1, p.sv.s2, j0, p.Sk);
    float accK[DT][4], accV[DT][4];
#pragma unroll
    for (int n = 0; n < DT; n++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            accK[n][c] = accV[n][c] = 0.f;
    long long ilo = 0, ihi = (long long)p.Sq - 1;
    if (p.causal && j0 - p.off > ilo)
        ilo = j0 - p.off;
    if (p.window >= 0 && j0 + BK - 1 - p.off + p.window < ihi)
        ihi = j0 + BK - 1 - p.off + p.window;
    ilo = ilo / BQ * BQ; /* aligned tiles */
    const int kr = warp * 16; /* this warp's first key row in the tile */
    const long long jr0 = j0 + kr + g, jr1 = jr0 + 8;
    for (long long h = hk * p.group; h < (hk + 1) * p.group; h++) {
        const float slope = p.alibi ? p.slopes[h * p.sslope] : 0.f;
        const T *qb = (const T *)p.q + b * p.sq.s0 + h * p.sq.s1, *ob = (const T *)p.dy + b * p.sdy.s0 + h * p.sdy.s1;
        const long long rbase = (b * p.Hq + h) * p.Sq;
        for (long long i0 = ilo; i0 <= ihi; i0 += BQ) {
            __syncthreads();
            tile_load<T, D, BQ>(sQ, qb, p.sq.s2, i0, p.Sq);
            tile_load<T, D, BQ>(sO, ob, p.sdy.s2, i0, p.Sq);
            for (int r = threadIdx.x; r < BQ; r += kThreads) {
                const bool in = i0 + r < p.Sq;
                sL[r] = in ? ((const float *)p.lrow)[rbase + i0 + r] : -INFINITY;
                sDi[r] = in ? ((const float *)p.drow)[rbase + i0 + r] : 0.f;
            }
            bk_cp_async_wait_all();
            __syncthreads();
            float st[NT][4], dpt[NT][4];
#pragma unroll
            for (int n = 0; n < NT; n++)
#pragma unroll
                for (int c = 0; c < 4; c++)
                    st[n][c] = dpt[n][c] = 0.f;
#pragma unroll
            for (int kc = 0; kc < D / 16; kc++) {
                uint32_t ak[4], av[4];
                const int ar = kr + (lane & 7) + ((lane >> 3) & 1) * 8, ac = kc * 16 + (lane >> 4) * 8;
                bk_ldsm_x4(ak, bk_smem_addr(sK + swz<D>(ar, ac)));
                bk_ldsm_x4(av, bk_smem_addr(sV + swz<D>(ar, ac)));
#pragma unroll
                for (int n = 0; n < NT; n += 2) {
                    uint32_t bq[4], bo[4];
                    const int br = n * 8 + (lane & 7) + (lane >> 4) * 8, bc = kc * 16 + ((lane >> 3) & 1) * 8;
                    bk_ldsm_x4(bq, bk_smem_addr(sQ + swz<D>(br, bc)));
                    bk_ldsm_x4(bo, bk_smem_addr(sO + swz<D>(br, bc)));
                    bk_mma16<T>::mma(st[n], ak, bq);
                    bk_mma16<T>::mma(st[n + 1], ak, bq + 2);
                    bk_mma16<T>::mma(dpt[n], av, bo);
                    bk_mma16<T>::mma(dpt[n + 1], av, bo + 2);
                }
            }
            /* P^T and dS^T: element c of n-tile n is key (c < 2 ? jr0 : jr1), query
             * i0 + 8n + 2t + (c & 1) */
#pragma unroll
            for (int n = 0; n < NT; n++)
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    const int qi = n * 8 + 2 * t + (c & 1);
                    float pp, dz;
                    tc_elem(p, st[n][c], dpt[n][c], slope, i0 + qi, c < 2 ? jr0 : jr1, sL[qi], sDi[qi], pp, dz);
                    st[n][c] = pp;
                    dpt[n][c] = dz;
                }
#pragma unroll
            for (int kc = 0; kc < BQ / 16; kc++) {
                uint32_t ap[4], as[4];
                ap[0] = bk_mma16<T>::pack(st[2 * kc][0], st[2 * kc][1]);
                ap[1] = bk_mma16<T>::pack(st[2 * kc][2], st[2 * kc][3]);
                ap[2] = bk_mma16<T>::pack(st[2 * kc + 1][0], st[2 * kc + 1][1]);
                ap[3] = bk_mma16<T>::pack(st[2 * kc + 1][2], st[2 * kc + 1][3]);
                as[0] = bk_mma16<T>::pack(dpt[2 * kc][0], dpt[2 * kc][1]);
                as[1] = bk_mma16<T>::pack(dpt[2 * kc][2], dpt[2 * kc][3]);
                as[2] = bk_mma16<T>::pack(dpt[2 * kc + 1][0], dpt[2 * kc + 1][1]);
                as[3] = bk_mma16<T>::pack(dpt[2 * kc + 1][2], dpt[2 * kc + 1][3]);
#pragma unroll
                for (int n = 0; n < DT; n += 2) {
                    uint32_t bo[4], bq[4];
                    const int br = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, bc = n * 8 + (lane >> 4) * 8;
                    bk_ldsm_x4_trans(bo, bk_smem_addr(sO + swz<D>(br, bc)));
                    bk_ldsm_x4_trans(bq, bk_smem_addr(sQ + swz<D>(br, bc)));
                    bk_mma16<T>::mma(accV[n], ap, bo);
                    bk_mma16<T>::mma(accV[n + 1], ap, bo + 2);
                    bk_mma16<T>::mma(accK[n], as, bq);
                    bk_mma16<T>::mma(accK[n + 1], as, bq + 2);
                }
            }
        }
    }
    bk_cp_async_wait_all(); /* the K/V copies when no query tile was visited */
    T *dk = (T *)p.dk + b * p.sdk.s0 + hk * p.sdk.s1, *dv = (T *)p.dv + b * p.sdv.s0 + hk * p.sdv.s1;
#pragma unroll
    for (int n = 0; n < DT; n++) {
        const int e = n * 8 + 2 * t;
        if (jr0 < p.Sk) {
            *reinterpret_cast<uint32_t *>(dk + jr0 * p.sdk.s2 + e) = bk_mma16<T>::pack(accK[n][0], accK[n][1]);
            *reinterpret_cast<uint32_t *>(dv + jr0 * p.sdv.s2 + e) = bk_mma16<T>::pack(accV[n][0], accV[n][1]);
        }
        if (jr1 < p.Sk) {
            *reinterpret_cast<uint32_t *>(dk + jr1 * p.sdk.s2 + e) = bk_mma16<T>::pack(accK[n][2], accK[n][3]);
            *reinterpret_cast<uint32_t *>(dv + jr1 * p.sdv.s2 + e) = bk_mma16<T>::pack(accV[n][2], accV[n][3]);
        }
    }
}

/* dq, Q-stationary. 4 warps; warp w owns rows i0 + 16w .. + 15 (BQ = 64 per CTA) and
 * walks key tiles of BK keys: S = Q K^T, dP = dO V^T, dS in registers (rounded to T),
 * dQ += dS K. */
template <typename T, int D, int BK>
__global__ void __launch_bounds__(kThreads) bwd_dq_tc(bwd_params p, int b0)
{
    constexpr int BQ = 64, NT = BK / 8, DT = D / 8;
    extern __shared__ __align__(128) unsigned char smem_tc[];
    T *sQ = (T *)smem_tc, *sO = sQ + BQ * D, *sK = sO + BQ * D, *sV = sK + BK * D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const long long b = blockIdx.z + (long long)b0, h = blockIdx.y, i0 = (long long)blockIdx.x * BQ;
    const long long hk = h / p.group;
    tile_load<T, D, BQ>(sQ, (const T *)p.q + b * p.sq.s0 + h * p.sq.s1, p.sq.s2, i0, p.Sq);
    tile_load<T, D, BQ>(sO, (const T *)p.dy + b * p.sdy.s0 + h * p.sdy.s1, p.sdy.s2, i0, p.Sq);
    const float slope = p.alibi ? p.slopes[h * p.sslope] : 0.f;
    const int qr = warp * 16;
    const long long ir0 = i0 + qr + g, ir1 = ir0 + 8, rbase = (b * p.Hq + h) * p.Sq;
    const float l0 = ir0 < p.Sq ? ((const float *)p.lrow)[rbase + ir0] : -INFINITY;
    const float l1 = ir1 < p.Sq ? ((const float *)p.lrow)[rbase + ir1] : -INFINITY;
    const float d0 = ir0 < p.Sq ? ((const float *)p.drow)[rbase + ir0] : 0.f;
    const float d1 = ir1 < p.Sq ? ((const float *)p.drow)[rbase + ir1] : 0.f;
    float accQ[DT][4];
#pragma unroll
    for (int n = 0; n < DT; n++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            accQ[n][c] = 0.f;
    const long long i1 = min(i0 + BQ - 1, (long long)p.Sq - 1);
    long long jlo = 0, jhi = (long long)p.Sk - 1;
    if (p.causal && i1 + p.off < jhi)
        jhi = i1 + p.off;
    if (p.window >= 0 && i0 + p.off - p.window > jlo)
        jlo = i0 + p.off - p.window;
    jlo = jlo / BK * BK;
    const T *kb = (const T *)p.k + b * p.sk.s0 + hk * p.sk.s1, *vb = (const T *)p.v + b * p.sv.s0 + hk * p.sv.s1;
    for (long long j0 = jlo; j0 <= jhi; j0 += BK) {
        __syncthreads();
        tile_load<T, D, BK>(sK, kb, p.sk.s2, j0, p.Sk);
        tile_load<T, D, BK>(sV, vb, p.sv.s2, j0, p.Sk);
        bk_cp_async_wait_all();
        __syncthreads();
        float s[NT][4], dp[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                s[n][c] = dp[n][c] = 0.f;
#pragma unroll
        for (int kc = 0; kc < D / 16; kc++) {
            uint32_t aq[4], ao[4];
            const int ar = qr + (lane & 7) + ((lane >> 3) & 1) * 8, ac = kc * 16 + (lane >> 4) * 8;
            bk_ldsm_x4(aq, bk_smem_addr(sQ + swz<D>(ar, ac)));
            bk_ldsm_x4(ao, bk_smem_addr(sO + swz<D>(ar, ac)));
#pragma unroll
            for (int n = 0; n < NT; n += 2) {
                uint32_t bk[4], bv[4];
                const int br = n * 8 + (lane & 7) + (lane >> 4) * 8, bc = kc * 16 + ((lane >> 3) & 1) * 8;
                bk_ldsm_x4(bk, bk_smem_addr(sK + swz<D>(br, bc)));
                bk_ldsm_x4(bv, bk_smem_addr(sV + swz<D>(br, bc)));
                bk_mma16<T>::mma(s[n], aq, bk);
                bk_mma16<T>::mma(s[n + 1], aq, bk + 2);
                bk_mma16<T>::mma(dp[n], ao, bv);
                bk_mma16<T>::mma(dp[n + 1], ao, bv + 2);
            }
        }
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const long long j = j0 + n * 8 + 2 * t + (c & 1);
                float pp, dz;
                tc_elem(p, s[n][c], dp[n][c], slope, c < 2 ? ir0 : ir1, j, c < 2 ? l0 : l1, c < 2 ? d0 : d1, pp, dz);
                s[n][c] = dz;
            }
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t as[4];
            as[0] = bk_mma16<T>::pack(s[2 * kc][0], s[2 * kc][1]);
            as[1] = bk_mma16<T>::pack(s[2 * kc][2], s[2 * kc][3]);
            as[2] = bk_mma16<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]);
            as[3] = bk_mma16<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
            for (int n = 0; n < DT; n += 2) {
                uint32_t bk[4];
                const int br = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, bc = n * 8 + (lane >> 4) * 8;
                bk_ldsm_x4_trans(bk, bk_smem_addr(sK + swz<D>(br, bc)));
                bk_mma16<T>::mma(accQ[n], as, bk);
                bk_mma16<T>::mma(accQ[n + 1], as, bk + 2);
            }
        }
    }
    bk_cp_async_wait_all(); /* the Q/dO copies when no key tile was visited */
    T *dq = (T *)p.dq + b * p.sdq.s0 + h * p.sdq.s1;
#pragma unroll
    for (int n = 0; n < DT; n++) {
        const int e = n * 8 + 2 * t;
        if (ir0 < p.Sq)
            *reinterpret_cast<uint32_t *>(dq + ir0 * p.sdq.s2 + e) = bk_mma16<T>::pack(accQ[n][0], accQ[n][1]);
        if (ir1 < p.Sq)
            *reinterpret_cast<uint32_t *>(dq + ir1 * p.sdq.s2 + e) = bk_mma16<T>::pack(accQ[n][2], accQ[n][3]);
    }
}

/* ---------------------------------------------------------- launch -- */

template <typename K>
static bk_status set_smem(K kernel, size_t bytes)
{
    if (bytes > 48 * 1024 &&
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes) != cudaSuccess) {
        cudaGetLastError();
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: %zu bytes of shared memory per block are not available",
                       bytes);
    }
    return BK_STATUS_SUCCESS;
}

/* The launches of one (b0 .. b0 + nb) chunk of batches go through these. */
template <typename T>
static bk_status launch_generic(const bwd_params &p, cudaStream_t s)
{
    typedef typename elem<T>::acc A;
    constexpr int BT = sizeof(A) == 8 ? 8 : 16;
    const size_t kv_bytes = gen_smem_elems<A>(BT, BT, p.Dqk, p.Dv, true) * sizeof(A);
    const size_t q_bytes = gen_smem_elems<A>(BT, BT, p.Dqk, p.Dv, false) * sizeof(A);
    BK_TRY(set_smem(bwd_dkdv_generic<T, BT, BT>, kv_bytes));
    BK_TRY(set_smem(bwd_dq_generic<T, BT, BT, true>, q_bytes));
    BK_TRY(set_smem(bwd_dq_generic<T, BT, BT, false>, q_bytes));
    for (int b0 = 0; b0 < p.B; b0 += 65535) {
        const unsigned nb = (unsigned)min(65535, p.B - b0);
        if (sizeof(A) == 8 && p.Sq > 0)
            bwd_dq_generic<T, BT, BT, true>
                <<<dim3((unsigned)((p.Sq + BT - 1) / BT), (unsigned)p.Hq, nb), kThreads, q_bytes, s>>>(p, b0);
    }
    for (int b0 = 0; b0 < p.B; b0 += 65535) {
        const unsigned nb = (unsigned)min(65535, p.B - b0);
        if (p.Sk > 0)
            bwd_dkdv_generic<T, BT, BT>
                <<<dim3((unsigned)((p.Sk + BT - 1) / BT), (unsigned)p.Hkv, nb), kThreads, kv_bytes, s>>>(p, b0);
        if (p.Sq > 0)
            bwd_dq_generic<T, BT, BT, false>
                <<<dim3((unsigned)((p.Sq + BT - 1) / BT), (unsigned)p.Hq, nb), kThreads, q_bytes, s>>>(p, b0);
    }
    return BK_STATUS_SUCCESS;
}

template <typename T, int D>
static bk_status launch_tc(const bwd_params &p, cudaStream_t s)
{
    constexpr int BQ = D == 64 ? 64 : 32, BKQ = 64;
    const size_t kv_bytes = (size_t)(2 * 64 + 2 * BQ) * D * sizeof(T) + 2 * BQ * sizeof(float);
    const size_t q_bytes = (size_t)(2 * 64 + 2 * BKQ) * D * sizeof(T);
    BK_TRY(set_smem(bwd_dkdv_tc<T, D, BQ>, kv_bytes));
    BK_TRY(set_smem(bwd_dq_tc<T, D, BKQ>, q_bytes));
    for (int b0 = 0; b0 < p.B; b0 += 65535) {
        const unsigned nb = (unsigned)min(65535, p.B - b0);
        if (p.Sk > 0)
            bwd_dkdv_tc<T, D, BQ><<<dim3((unsigned)((p.Sk + 63) / 64), (unsigned)p.Hkv, nb), kThreads, kv_bytes, s>>>(
                p, b0);
        if (p.Sq > 0)
            bwd_dq_tc<T, D, BKQ><<<dim3((unsigned)((p.Sq + 63) / 64), (unsigned)p.Hq, nb), kThreads, q_bytes, s>>>(
                p, b0);
    }
    return BK_STATUS_SUCCESS;
}

/* mma.sync exists for 16-bit types only; the f32/f64 instantiations are never called. */
template <typename T> struct tc_launch {
    static bk_status run(const bwd_params &, cudaStream_t) { return BK_STATUS_UNSUPPORTED; }
};
template <> struct tc_launch<__half> {
    static bk_status run(const bwd_params &p, cudaStream_t s)
    {
        return p.Dqk == 64 ? launch_tc<__half, 64>(p, s) : launch_tc<__half, 128>(p, s);
    }
};
template <> struct tc_launch<__nv_bfloat16> {
    static bk_status run(const bwd_params &p, cudaStream_t s)
    {
        return p.Dqk == 64 ? launch_tc<__nv_bfloat16, 64>(p, s) : launch_tc<__nv_bfloat16, 128>(p, s);
    }
};

/* Rows of the view start on 16-byte boundaries: base aligned, row/head/batch strides
 * multiples of 8 elements. */
static bool rows_aligned16(const bk_tensor *t)
{
    if (((uintptr_t)t->data & 15) != 0)
        return false;
    for (int a = 0; a < t->rank - 1; a++)
        if (t->strides[a] % 8 != 0)
            return false;
    return true;
}

} // namespace

extern "C" size_t bk_cuda_sdpa_bwd_row_bytes(const bk_sdpa_bwd_desc *d)
{
    return d->dtype == BK_DTYPE_F64 ? sizeof(double) : sizeof(float);
}

extern "C" const char *bk_cuda_sdpa_bwd_tc_rejects(const bk_sdpa_bwd_desc *d)
{
    if (d->dtype != BK_DTYPE_F16 && d->dtype != BK_DTYPE_BF16)
        return "the tensor-core kernel takes f16 and bf16 only";
    if (d->head_dim_qk != d->head_dim_v)
        return "the tensor-core kernel needs head_dim_qk == head_dim_v";
    if (d->head_dim_qk != 64 && d->head_dim_qk != 128)
        return "the tensor-core kernel takes head dims 64 and 128";
    return NULL;
}

extern "C" bk_status bk_cuda_sdpa_bwd(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, bool tensor_cores,
                                      void *d_rows, void *lse_rows, void *stream)
{
    if (d->batch == 0 || (d->q_len == 0 && d->kv_len == 0))
        return BK_STATUS_SUCCESS;
    if (d->q_heads > 65535)
        return bk_fail(BK_STATUS_UNSUPPORTED, "sdpa_bwd: desc.q_heads is %d, expected <= 65535 on CUDA",
                       (int)d->q_heads);
    bwd_params p;
    p.q = a->q.data;
    p.k = a->k.data;
    p.v = a->v.data;
    p.y = a->y.data;
    p.dy = a->dy.data;
    p.lse_in = (const float *)a->lse.data;
    p.slopes = a->alibi_slopes ? (const float *)a->alibi_slopes->data : NULL;
    p.dq = a->dq.data;
    p.dk = a->dk.data;
    p.dv = a->dv.data;
    p.sq = bk_view4_of(&a->q);
    p.sk = bk_view4_of(&a->k);
    p.sv = bk_view4_of(&a->v);
    p.sy = bk_view4_of(&a->y);
    p.sdy = bk_view4_of(&a->dy);
    p.sdq = bk_view4_of(&a->dq);
    p.sdk = bk_view4_of(&a->dk);
    p.sdv = bk_view4_of(&a->dv);
    p.sl0 = a->lse.strides[0];
    p.sl1 = a->lse.strides[1];
    p.sl2 = a->lse.strides[2];
    p.sslope = a->alibi_slopes ? a->alibi_slopes->strides[0] : 0;
    p.B = d->batch;
    p.Hq = d->q_heads;
    p.Hkv = d->kv_heads;
    p.Sq = d->q_len;
    p.Sk = d->kv_len;
    p.Dqk = d->head_dim_qk;
    p.Dv = d->head_dim_v;
    p.group = d->q_heads / d->kv_heads;
    p.off = (long long)d->kv_len - d->q_len;
    p.scale = d->scale;
    p.softcap = d->softcap;
    p.causal = d->causal;
    p.window = d->window_left;
    p.alibi = d->alibi;
    p.drow = d_rows;
    p.lrow = lse_rows;
    cudaStream_t s = (cudaStream_t)stream;
    const bool tc = tensor_cores && bk_cuda_sdpa_bwd_tc_rejects(d) == NULL && rows_aligned16(&a->q) &&
                    rows_aligned16(&a->k) && rows_aligned16(&a->v) && rows_aligned16(&a->dy) &&
                    rows_aligned16(&a->dq) && rows_aligned16(&a->dk) && rows_aligned16(&a->dv);
    const long long rows = (long long)d->batch * d->q_heads * d->q_len;
    bk_status st = BK_STATUS_SUCCESS;
    BK_DISPATCH_FLOAT(d->dtype, T, {
        if (rows > 0)
            bwd_rows_kernel<T><<<bk_grid_for(rows * 32, kThreads), kThreads, 0, s>>>(p);
        st = tc ? tc_launch<T>::run(p, s) : launch_generic<T>(p, s);
    });
    BK_TRY(st);
    return bk_cuda_check_launch("sdpa_bwd");
}
