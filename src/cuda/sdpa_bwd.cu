/* sdpa_bwd.cu - flash attention backward on CUDA.
 *
 * Math (attention.h): row i of q head h (kv head hk = h / group), key j, pos = i + Sk - Sq:
 * s_ij = scale <q_i, k_j>, then softcap tanh(s / softcap), then + slope_h (j - pos);
 * p_ij = exp(s_ij - lse_i) on the visible keys, D_i = <dy_i, y_i>, dp_ij = <dy_i, v_j>,
 * dz_ij = p_ij (dp_ij - D_i) scale (1 - tanh^2) [tanh factor only with softcap],
 * dq_i = sum_j dz_ij k_j, dk_j = sum_{h in group, i} dz_ij q_i, dv_j = sum_{h, i} p_ij dy_i.
 * p uses the f32 lse as given (~1e-7 relative); for f64 a pass first refines lse in f64.
 * Shapes: q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv], y/dy [B,Hq,Sq,Dv], lse f32
 * [B,Hq,Sq], slopes f32 [Hq]; dq, dk, dv like q, k, v; outer strides arbitrary (k/v may
 * broadcast on the head axis), inner stride 1. Workspace: D_i and lse [B,Hq,Sq] in the
 * compute type; the fused kernels an f32 dq accumulator [B,Hq,Sq,Dqk]; the deterministic
 * fused kernel a ticket per (b, kv head) and a semaphore per (b, q head, row tile).
 * Work: a rows kernel writes D_i, lse (f64: refined), then one of three families:
 *   - fused tensor cores (f16/bf16, Dqk == Dv in {64, 128, 256}, rows 16-byte aligned):
 *     FlashAttention-2's backward in ONE pass: a CTA of 8 warps per (b, kv head, BK keys)
 *     keeps dK, dV in f32 registers and walks the row tiles of every q head of the group
 *     that see its keys (cp.async double buffer), computing S^T, dP^T, P^T, dS^T, dV, dK
 *     and a BQ x D partial dQ = dS K (mma.sync, P/dS rounded to T) that it adds to the f32
 *     accumulator; a small kernel scales that into dq. Tiles (BQ x BK; smem): D 64: 128 x
 *     128 (130 KB), D 128: 64 x 128 (145 KB), D 256: 64 x 64 (201 KB); 255 registers.
 *     Atomic mode (FASTEST): vector red.add from every key tile at once; the sum order
 *     depends on scheduling: NOT deterministic. Deterministic mode (DET): the key tiles
 *     seeing a row tile add one at a time in DECREASING key order, each waiting on the
 *     tile's semaphore for the count of those above it, and take their key tile from a
 *     per-(b, kv head) ticket (highest key first), so a CTA only waits on CTAs that are
 *     running or done (deadlock argument at bwd_fused_tc). Bit-identical reruns.
 *     Fallback when the device lacks the smem, the workspace is misaligned or Sq/Sk >=
 *     2^30: two-pass (D 64/128) or CUDA cores (D 256), both deterministic.
 *   - two-pass tensor cores (deterministic; D 64/128): dk/dv KV-stationary (4 warps, 64
 *     keys) walking the visible rows, then dq Q-stationary (64 rows) walking the visible
 *     keys, recomputing P; each output written once, no atomics.
 *   - generic (every dtype and option, Dqk != Dv; deterministic): CUDA cores, f32 (f64
 *     for f64), the same two passes on 16 x 16 (f64: 8 x 8) tiles in shared memory.
 * Speed (H100): bench/RESULTS.md.
 * On sm_90a the Hopper kernel (sdpa_bwd_sm90.cu, wgmma + TMA) takes the fast plan's
 * D 64/128/256 problems without softcap/ALiBi/window, and in its deterministic mode (the same
 * ticket and semaphores) the deterministic plan's. Batch is launched in chunks of 65535
 * (grid z). */
#include "common.cuh"
#include "cuda/sdpa_bwd_cuda.h"
#include "sdpa_bwd_sm90.h"

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
    float *dqacc;      /* fused kernel: f32 [B, Hq, Sq, Dqk], zeroed before it runs */
    /* fused deterministic mode, zeroed before it runs: a ticket counter per (b, kv head),
     * [B, Hkv], and a semaphore per (b, q head, BQ-row tile), [B, Hq, ceil(Sq / BQ)] */
    int *dq_ticket, *dq_sem;
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

/* D_i = <dy_i, y_i> and lse_i of every row (b, h, i), in the compute type: L lanes per row
 * (L divides 32), V elements a lane load (V > 1: 16-byte loads, so the rows of y and dy
 * 16-byte aligned and Dv a multiple of V). The lanes of a warp run its 32 / L rows together
 * through the shuffles (a lane past the last row adds nothing and stores nothing). */
template <typename T, int L, int V>
__global__ void __launch_bounds__(kThreads) bwd_rows_kernel(bwd_params p)
{
    typedef typename elem<T>::acc A;
    struct alignas(sizeof(T) * V) vec {
        T x[V];
    };
    const long long rows = (long long)p.B * p.Hq * p.Sq, step = ((long long)gridDim.x * blockDim.x) / L;
    const int lane = threadIdx.x & 31, sub = lane % L;
    const T *y = (const T *)p.y, *dy = (const T *)p.dy;
    for (long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / L; r - lane / L < rows; r += step) {
        const bool in = r < rows;
        const long long i = in ? r % p.Sq : 0, h = in ? (r / p.Sq) % p.Hq : 0, b = in ? r / ((long long)p.Sq * p.Hq) : 0;
        const T *yr = y + b * p.sy.s0 + h * p.sy.s1 + i * p.sy.s2;
        const T *dyr = dy + b * p.sdy.s0 + h * p.sdy.s1 + i * p.sdy.s2;
        A acc = 0;
        for (int e = V * sub; in && e < p.Dv; e += V * L) {
            const vec a = *reinterpret_cast<const vec *>(yr + e), g = *reinterpret_cast<const vec *>(dyr + e);
#pragma unroll
            for (int v = 0; v < V; v++)
                acc += elem<T>::load(a.x[v]) * elem<T>::load(g.x[v]);
        }
#pragma unroll
        for (int w = L / 2; w > 0; w >>= 1)
            acc += __shfl_xor_sync(0xffffffffu, acc, w);
        if (in && sub == 0) {
            ((A *)p.drow)[r] = acc;
            ((A *)p.lrow)[r] = (A)p.lse_in[b * p.sl0 + h * p.sl1 + i * p.sl2];
        }
    }
}

/* The rows kernel for y / dy: 16-byte loads with the fewest lanes per row that cover Dv in
 * one load each (8, 16 or 32) when the rows allow them, else one element a lane, 32 lanes. */
template <typename T> static void launch_rows(const bwd_params &p, bool vec_ok, cudaStream_t s)
{
    constexpr int V = 16 / (int)sizeof(T);
    const long long rows = (long long)p.B * p.Hq * p.Sq;
    const int lanes = !(vec_ok && p.Dv % V == 0) ? 0 : p.Dv <= 8 * V ? 8 : p.Dv <= 16 * V ? 16 : 32;
    if (lanes == 8)
        bwd_rows_kernel<T, 8, V><<<bk_grid_for(rows * 8, kThreads), kThreads, 0, s>>>(p);
    else if (lanes == 16)
        bwd_rows_kernel<T, 16, V><<<bk_grid_for(rows * 16, kThreads), kThreads, 0, s>>>(p);
    else if (lanes == 32)
        bwd_rows_kernel<T, 32, V><<<bk_grid_for(rows * 32, kThreads), kThreads, 0, s>>>(p);
    else
        bwd_rows_kernel<T, 32, 1><<<bk_grid_for(rows * 32, kThreads), kThreads, 0, s>>>(p);
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
template <typename T, int D, int ROWS, int NTHR = kThreads>
__device__ __forceinline__ void tile_load(T *dst, const T *src, long long stride, long long r0, long long n)
{
#pragma unroll
    for (int c = threadIdx.x; c < ROWS * D / 8; c += NTHR) {
        const int r = c / (D / 8), ch = c % (D / 8);
        const bool in = r0 + r < n;
        const T *g = src + (in ? (r0 + r) * stride : 0) + ch * 8;
        bk_cp_async16(bk_smem_addr(dst + swz<D>(r, ch * 8)), g, in ? 16 : 0);
    }
}

/* Two products of one warp's 16 rows (rows r0.. of the swizzled [rows][D] tiles a1, a2)
 * against the 8 NT rows of b1, b2: x1 = a1 b1^T, x2 = a2 b2^T in the mma.sync C layout
 * (element c of n-tile n: row r0 + lane / 4 + 8 (c >= 2), column 8 n + 2 (lane % 4) +
 * (c & 1)). KV-stationary: S^T = K Q^T and dP^T = V dO^T; Q-stationary: S = Q K^T and
 * dP = dO V^T. */
template <typename T, int D, int NT>
__device__ __forceinline__ void pair_products(float (&x1)[NT][4], float (&x2)[NT][4], const T *a1, const T *a2,
                                              const T *b1, const T *b2, int r0, int lane)
{
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            x1[n][c] = x2[n][c] = 0.f;
#pragma unroll
    for (int kc = 0; kc < D / 16; kc++) {
        uint32_t fa1[4], fa2[4];
        const int ar = r0 + (lane & 7) + ((lane >> 3) & 1) * 8, ac = kc * 16 + (lane >> 4) * 8;
        bk_ldsm_x4(fa1, bk_smem_addr(a1 + swz<D>(ar, ac)));
        bk_ldsm_x4(fa2, bk_smem_addr(a2 + swz<D>(ar, ac)));
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
            uint32_t fb1[4], fb2[4];
            const int br = n * 8 + (lane & 7) + (lane >> 4) * 8, bc = kc * 16 + ((lane >> 3) & 1) * 8;
            bk_ldsm_x4(fb1, bk_smem_addr(b1 + swz<D>(br, bc)));
            bk_ldsm_x4(fb2, bk_smem_addr(b2 + swz<D>(br, bc)));
            bk_mma16<T>::mma(x1[n], fa1, fb1);
            bk_mma16<T>::mma(x1[n + 1], fa1, fb1 + 2);
            bk_mma16<T>::mma(x2[n], fa2, fb2);
            bk_mma16<T>::mma(x2[n + 1], fa2, fb2 + 2);
        }
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
            pair_products<T, D, NT>(st, dpt, sK, sV, sQ, sO, kr, lane);
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
                bk_pack_a<T>(ap, st[2 * kc], st[2 * kc + 1]);
                bk_pack_a<T>(as, dpt[2 * kc], dpt[2 * kc + 1]);
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
        pair_products<T, D, NT>(s, dp, sQ, sO, sK, sV, qr, lane);
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
            bk_pack_a<T>(as, s[2 * kc], s[2 * kc + 1]);
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

/* ------------------------------------------------------------ fused -- */

/* 4-byte global -> shared copy; src_bytes 0 writes a zero. */
static __device__ __forceinline__ void cp_async4(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

/* a[0] += x, a[1] += y in global memory (a 8-byte aligned): one vector reduction on sm_90. */
static __device__ __forceinline__ void red_add2(float *a, float x, float y)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2 *>(a), make_float2(x, y));
#else
    atomicAdd(a, x);
    atomicAdd(a + 1, y);
#endif
}

/* Tiles of the fused kernel: BK keys per CTA in BK / 16 groups of 16 keys, DS warps per
 * group (DS = 2 at D = 256: both compute the group's scores, each owns D / 2 columns of
 * its dK, dV, so the accumulators stay at 128 registers), BQ query rows per step. The dq
 * step splits the BQ x D product over the warps: WR groups of 16 rows times WC groups of
 * D / WC columns. Shared memory: K, V [BK][D]; Q, dO [2][BQ][D]; dS^T [BK][BQ] (T,
 * swizzled); lse, D_i [2][BQ] (f32). */
template <int D, int BQ, int BK> struct fused_cfg {
    static constexpr int DS = D > 128 ? 2 : 1, KW = BK / 16, NW = KW * DS, THREADS = NW * 32;
    static constexpr int MINB = THREADS >= 256 ? 1 : 2, NT = BQ / 8, DT = D / 8, DO = DT / DS;
    static constexpr int WR = NW < BQ / 16 ? NW : BQ / 16, WC = NW / WR, QT = D / WC / 8;
    static_assert(WR * 16 == BQ && WR * WC == NW && QT % 2 == 0 && DO % 2 == 0, "the warps cover the tiles");
    static constexpr size_t smem(size_t es)
    {
        return (size_t)(2 * BK * D + 4 * BQ * D + BK * BQ) * es + 4 * BQ * sizeof(float);
    }
};
/* The shipped tiles (bk_bench on the H100: bench/RESULTS.md): D 64: 128 x 128, D 128:
 * 64 rows x 128 keys, D 256: 64 x 64 (two warps per key group). */
template <int D> struct fused_tiles {
    static constexpr int BQ = D == 64 ? 128 : 64, BK = D == 256 ? 64 : 128;
};
static size_t fused_smem_bytes(int d)
{
    return d == 64    ? fused_cfg<64, fused_tiles<64>::BQ, fused_tiles<64>::BK>::smem(2)
           : d == 128 ? fused_cfg<128, fused_tiles<128>::BQ, fused_tiles<128>::BK>::smem(2)
                      : fused_cfg<256, fused_tiles<256>::BQ, fused_tiles<256>::BK>::smem(2);
}

/* Step `it` of a CTA's walk (q head hk * group + it / ntile, rows (tlo + it % ntile) * BQ ..)
 * into buffer `buf`: Q and dO rows (zero past Sq), lse and D_i (zero past Sq). */
template <typename T, int D, int BQ, int NTHR>
__device__ __forceinline__ void fused_load_step(const bwd_params &p, T *sQ, T *sO, float *sL, float *sDi, long long b,
                                                int hk, int tlo, int ntile, int it, int buf)
{
    const long long h = (long long)hk * p.group + it / ntile, i0 = (long long)(tlo + it % ntile) * BQ;
    tile_load<T, D, BQ, NTHR>(sQ + buf * BQ * D, (const T *)p.q + b * p.sq.s0 + h * p.sq.s1, p.sq.s2, i0, p.Sq);
    tile_load<T, D, BQ, NTHR>(sO + buf * BQ * D, (const T *)p.dy + b * p.sdy.s0 + h * p.sdy.s1, p.sdy.s2, i0, p.Sq);
    const long long rb = (b * p.Hq + h) * p.Sq + i0;
    for (int r = threadIdx.x; r < 2 * BQ; r += NTHR) {
        const int row = r % BQ;
        const bool in = i0 + row < p.Sq;
        const float *src = (const float *)(r < BQ ? p.lrow : p.drow) + (in ? rb + row : 0);
        cp_async4(bk_smem_addr((r < BQ ? sL : sDi) + buf * BQ + row), src, in ? 4 : 0);
    }
}

/* dq, dk, dv in one pass, KV-stationary (FlashAttention-2's backward). One CTA of
 * DS * BK / 16 warps per (b, kv head, BK keys); warp w owns keys j0 + 16 (w % (BK / 16))
 * .. + 15 and keeps their dK, dV (columns (w / (BK / 16)) * D / DS ..) in registers. The CTA walks every q head of the GQA group and every BQ-row tile that can
 * see its keys; Q, dO, lse, D_i of step it + 1 load (cp.async) while step it computes:
 *   S^T = K Q^T, dP^T = V dO^T                       (mma, per warp 16 x BQ)
 *   P^T = exp(S^T - lse), dS^T = P^T (dP^T - D_i)    (registers; scale applied at the end)
 *   dV += P^T dO, dK += dS^T Q                       (mma, P^T / dS^T rounded to T)
 *   dS^T -> shared; dQ_tile = dS K (all warps), added to the f32 dq accumulator: with
 *   vector atomics, or with DET in a fixed order (below).
 * PLAIN (no softcap, ALiBi or window): p = 2^(s * scale log2e - lse log2e) and the mask is
 * evaluated only on tiles that cross the causal diagonal or the end of the keys; rows past
 * Sq have zero Q and dO and lse = D_i = 0, so their p = 1 contributes exactly 0. Otherwise
 * every element goes through the general visibility and score (as tc_elem).
 * The launcher guarantees Sq, Sk < 2^30 (32-bit positions).
 *
 * DET (deterministic, bit-stable): the key tiles that see row tile t of (b, h) (its
 * contributors: a contiguous range of key tiles, as both ends of a key tile's row range
 * grow with its index) add their partial dQ tiles one after another in DECREASING key-tile
 * order: the tile's semaphore counts the adds done; key tile j waits (thread 0 spins,
 * then a barrier) until it reads jlast(t) - j, the number of contributors above it, adds,
 * then releases (barrier, fence, +1). So every dq element is the same sum in the same
 * order on every run. The adds are the same red.add instructions as the atomic mode
 * (fire-and-forget: no load round trip, no registers), but the semaphore gives one CTA
 * at a time the tile, so their order is fixed. jlast(t), the last key tile whose first
 * row tile (tlo below) is <= t: nkt - 1, or with causal min(nkt - 1, ((t + 1) BQ - 1 +
 * Sk - Sq) / BK) (fused_last_contributor).
 * No deadlock: a CTA takes its key tile not from blockIdx.x but from a ticket, an atomic
 * counter per (b, kv head), so ticket k is held only by a CTA that is running or done
 * (it took the ticket); ticket k has key tile nkt - 1 - k. A CTA waits only on key tiles
 * above its own of the same (b, kv head), i.e. on smaller tickets: by induction on the
 * ticket every CTA finishes (ticket 0, the last key tile, is first in the order of every
 * row tile it sees, so it never waits). This holds whatever order the hardware starts
 * CTAs in and however few fit at once.
 * Why decreasing: with causal masking key tile j walks row tiles t >= its diagonal,
 * so at its step s it adds row tile diag(j) + s, which the key tiles above it added at
 * their steps < s: the pipeline seldom waits. Without causal every key tile walks the
 * same row tiles in the same order and the adds run as a chain, each key tile one add
 * behind the one above. GQA: the q heads of a group are walked one after another, each
 * with its own semaphores. */
template <int BQ, int BK>
__device__ __forceinline__ int fused_last_contributor(const bwd_params &p, int nkt, int t)
{
    if (!p.causal)
        return nkt - 1;
    /* tlo(j) <= t  <=>  max(0, j BK - off) <= (t + 1) BQ - 1  <=>  j BK <= (t + 1) BQ - 1 + off
     * (the right side is >= 0 for every t a contributor walks) */
    const long long last = ((long long)(t + 1) * BQ - 1 + p.off) / BK;
    return (int)min(last, (long long)nkt - 1);
}

template <typename T, int D, int BQ, int BK, bool PLAIN, bool DET>
__global__ void __launch_bounds__(fused_cfg<D, BQ, BK>::THREADS, fused_cfg<D, BQ, BK>::MINB)
    bwd_fused_tc(bwd_params p, int b0)
{
    typedef fused_cfg<D, BQ, BK> C;
    constexpr int NT = C::NT, DO = C::DO, WR = C::WR, QT = C::QT, NTHR = C::THREADS;
    constexpr float kLog2e = 1.4426950408889634f;
    extern __shared__ __align__(128) unsigned char smem_f[];
    T *sK = (T *)smem_f, *sV = sK + BK * D, *sQ = sV + BK * D, *sO = sQ + 2 * BQ * D, *sS = sO + 2 * BQ * D;
    float *sL = (float *)(sS + BK * BQ), *sDi = sL + 2 * BQ;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const long long b = blockIdx.z + (long long)b0;
    const int hk = blockIdx.y;
    int jt = blockIdx.x; /* this CTA's key tile; with DET from a ticket */
    if constexpr (DET) {
        /* the ticket, broadcast through the dS^T tile (first written after the walk's
         * first barrier) */
        int *ticket = reinterpret_cast<int *>(sS);
        if (threadIdx.x == 0)
            *ticket = atomicAdd(p.dq_ticket + b * p.Hkv + hk, 1);
        __syncthreads();
        jt = gridDim.x - 1 - *ticket;
    }
    const int j0 = jt * BK, Sq = p.Sq, Sk = p.Sk, off = (int)p.off;

    /* rows that can see one of the keys [j0, j0 + BK) */
    long long ilo = 0, ihi = (long long)Sq - 1;
    if (p.causal && (long long)j0 - off > ilo)
        ilo = (long long)j0 - off;
    if (!PLAIN && p.window >= 0 && (long long)j0 + BK - 1 - off + p.window < ihi)
        ihi = (long long)j0 + BK - 1 - off + p.window;
    const int tlo = (int)(ilo / BQ), ntile = ihi >= ilo ? (int)(ihi / BQ) - tlo + 1 : 0, niter = ntile * p.group;

    tile_load<T, D, BK, NTHR>(sK, (const T *)p.k + b * p.sk.s0 + (long long)hk * p.sk.s1, p.sk.s2, j0, Sk);
    tile_load<T, D, BK, NTHR>(sV, (const T *)p.v + b * p.sv.s0 + (long long)hk * p.sv.s1, p.sv.s2, j0, Sk);
    if (niter > 0)
        fused_load_step<T, D, BQ, NTHR>(p, sQ, sO, sL, sDi, b, hk, tlo, ntile, 0, 0);
    bk_cp_async_commit();

    float accK[DO][4], accV[DO][4];
#pragma unroll
    for (int n = 0; n < DO; n++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            accK[n][c] = accV[n][c] = 0.f;
    const float scale = (float)p.scale, sl2 = (float)(p.scale * 1.4426950408889634);
    /* this warp's keys and its columns of dK, dV */
    const int kr = (warp % C::KW) * 16, dc = (warp / C::KW) * (D / C::DS), jr0 = j0 + kr + g, jr1 = jr0 + 8;
    /* the dq step: this warp's 16 rows and D / WC columns of the BQ x D tile */
    const int m0 = (warp % WR) * 16, c0 = (warp / WR) * (D / C::WC);

    for (int it = 0; it < niter; it++) {
        const int buf = it & 1;
        if (it + 1 < niter)
            fused_load_step<T, D, BQ, NTHR>(p, sQ, sO, sL, sDi, b, hk, tlo, ntile, it + 1, buf ^ 1);
        bk_cp_async_commit();
        bk_cp_async_wait_group<1>();
        __syncthreads(); /* step it visible; every warp is past the last step's dq reads */
        const int h = hk * p.group + it / ntile, i0 = (tlo + it % ntile) * BQ;
        const T *cQ = sQ + buf * BQ * D, *cO = sO + buf * BQ * D;
        const float *cL = sL + buf * BQ, *cD = sDi + buf * BQ;

        float st[NT][4], dpt[NT][4];
        pair_products<T, D, NT>(st, dpt, sK, sV, cQ, cO, kr, lane);

        /* P^T and dS^T (unscaled): element c of n-tile n is key (c < 2 ? jr0 : jr1),
         * query i0 + 8n + 2t + (c & 1) */
        if constexpr (PLAIN) {
            const bool full = !(p.causal && j0 + BK - 1 > i0 + off) && j0 + BK <= Sk;
#pragma unroll
            for (int n = 0; n < NT; n++) {
                const float2 lv = *reinterpret_cast<const float2 *>(cL + n * 8 + 2 * t);
                const float2 dv = *reinterpret_cast<const float2 *>(cD + n * 8 + 2 * t);
                const float l2[2] = {lv.x * kLog2e, lv.y * kLog2e}, di[2] = {dv.x, dv.y};
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    float pp = bk_ex2(fmaf(st[n][c], sl2, -l2[c & 1]));
                    if (!full) {
                        const int i = i0 + n * 8 + 2 * t + (c & 1), j = c < 2 ? jr0 : jr1;
                        if (j >= Sk || (p.causal && j > i + off))
                            pp = 0.f;
                    }
                    st[n][c] = pp;
                    dpt[n][c] = pp * (dpt[n][c] - di[c & 1]);
                }
            }
        } else {
            const float slope = p.alibi ? p.slopes[h * p.sslope] : 0.f, cap = (float)p.softcap;
#pragma unroll
            for (int n = 0; n < NT; n++)
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    const int qi = n * 8 + 2 * t + (c & 1), i = i0 + qi, j = c < 2 ? jr0 : jr1;
                    const int rel = j - (i + off); /* key position relative to the diagonal */
                    const float lse = cL[qi];
                    float pp = 0.f, dz = 0.f;
                    if (i < Sq && j < Sk && lse != -INFINITY && !(p.causal && rel > 0) &&
                        !(p.window >= 0 && rel < -p.window)) {
                        float s = st[n][c] * scale, f = 1.f;
                        if (cap > 0.f) {
                            const float th = tanhf(s / cap);
                            s = cap * th;
                            f = 1.f - th * th;
                        }
                        if (p.alibi)
                            s += slope * (float)rel;
                        pp = exp2f((s - lse) * kLog2e);
                        dz = pp * (dpt[n][c] - cD[qi]) * f;
                    }
                    st[n][c] = pp;
                    dpt[n][c] = dz;
                }
        }

        /* dV += P^T dO, dK += dS^T Q; dS^T to shared memory for the dq step */
#pragma unroll
        for (int kc = 0; kc < BQ / 16; kc++) {
            uint32_t ap[4], as[4];
            bk_pack_a<T>(ap, st[2 * kc], st[2 * kc + 1]);
            bk_pack_a<T>(as, dpt[2 * kc], dpt[2 * kc + 1]);
            if (dc == 0) { /* one warp of each key group */
                const int sc = kc * 16 + 2 * t;
                *reinterpret_cast<uint32_t *>(sS + swz<BQ>(kr + g, sc)) = as[0];
                *reinterpret_cast<uint32_t *>(sS + swz<BQ>(kr + g + 8, sc)) = as[1];
                *reinterpret_cast<uint32_t *>(sS + swz<BQ>(kr + g, sc + 8)) = as[2];
                *reinterpret_cast<uint32_t *>(sS + swz<BQ>(kr + g + 8, sc + 8)) = as[3];
            }
#pragma unroll
            for (int n = 0; n < DO; n += 2) {
                uint32_t bo[4], bq[4];
                const int br = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, bc = dc + n * 8 + (lane >> 4) * 8;
                bk_ldsm_x4_trans(bo, bk_smem_addr(cO + swz<D>(br, bc)));
                bk_ldsm_x4_trans(bq, bk_smem_addr(cQ + swz<D>(br, bc)));
                bk_mma16<T>::mma(accV[n], ap, bo);
                bk_mma16<T>::mma(accV[n + 1], ap, bo + 2);
                bk_mma16<T>::mma(accK[n], as, bq);
                bk_mma16<T>::mma(accK[n + 1], as, bq + 2);
            }
        }
        __syncthreads(); /* dS^T complete */

        /* dQ rows i0 + m0 .. + 15, columns c0 .. + D / WC: dS (ldmatrix.trans of dS^T) x K */
        float aq[QT][4];
#pragma unroll
        for (int n = 0; n < QT; n++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                aq[n][c] = 0.f;
#pragma unroll
        for (int kc = 0; kc < BK / 16; kc++) {
            uint32_t a[4];
            bk_ldsm_x4_trans(a, bk_smem_addr(sS + swz<BQ>(kc * 16 + (lane & 7) + (lane >> 4) * 8,
                                                          m0 + ((lane >> 3) & 1) * 8)));
#pragma unroll
            for (int n = 0; n < QT; n += 2) {
                uint32_t bk[4];
                const int br = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, bc = c0 + n * 8 + (lane >> 4) * 8;
                bk_ldsm_x4_trans(bk, bk_smem_addr(sK + swz<D>(br, bc)));
                bk_mma16<T>::mma(aq[n], a, bk);
                bk_mma16<T>::mma(aq[n + 1], a, bk + 2);
            }
        }
        const int r0 = i0 + m0 + g;
        float *dqa = p.dqacc + ((b * p.Hq + h) * (long long)Sq) * D;
        if constexpr (DET) {
            /* thread 0 waits until the key tiles above this one have added (the semaphore
             * counts them) */
            if (threadIdx.x == 0)
                bk_sem_wait_acquire(p.dq_sem + (b * p.Hq + h) * (long long)((Sq + BQ - 1) / BQ) + i0 / BQ,
                             fused_last_contributor<BQ, BK>(p, gridDim.x, i0 / BQ) - jt);
            __syncthreads(); /* the adds above are performed */
        }
#pragma unroll
        for (int n = 0; n < QT; n++) {
            const int e = c0 + n * 8 + 2 * t;
            if (r0 < Sq)
                red_add2(dqa + (long long)r0 * D + e, aq[n][0], aq[n][1]);
            if (r0 + 8 < Sq)
                red_add2(dqa + (long long)(r0 + 8) * D + e, aq[n][2], aq[n][3]);
        }
        if constexpr (DET) {
            __syncthreads(); /* every thread's adds precede the release */
            if (threadIdx.x == 0)
                bk_sem_release_add1(p.dq_sem + (b * p.Hq + h) * (long long)((Sq + BQ - 1) / BQ) + i0 / BQ);
        }
    }
    bk_cp_async_wait_all(); /* the K/V copies when no step ran */
    T *dk = (T *)p.dk + b * p.sdk.s0 + (long long)hk * p.sdk.s1, *dv = (T *)p.dv + b * p.sdv.s0 + (long long)hk * p.sdv.s1;
#pragma unroll
    for (int n = 0; n < DO; n++) {
        const int e = dc + n * 8 + 2 * t;
        if (jr0 < Sk) {
            *reinterpret_cast<uint32_t *>(dk + jr0 * p.sdk.s2 + e) =
                bk_mma16<T>::pack(accK[n][0] * scale, accK[n][1] * scale);
            *reinterpret_cast<uint32_t *>(dv + jr0 * p.sdv.s2 + e) = bk_mma16<T>::pack(accV[n][0], accV[n][1]);
        }
        if (jr1 < Sk) {
            *reinterpret_cast<uint32_t *>(dk + jr1 * p.sdk.s2 + e) =
                bk_mma16<T>::pack(accK[n][2] * scale, accK[n][3] * scale);
            *reinterpret_cast<uint32_t *>(dv + jr1 * p.sdv.s2 + e) = bk_mma16<T>::pack(accV[n][2], accV[n][3]);
        }
    }
}

/* dq = scale * the f32 accumulator, in T and dq's strides; 8 elements per thread. Grid y
 * walks the (b, h) pairs, x the Sq * D / 8 chunks of one. */
template <typename T, int D>
__global__ void __launch_bounds__(256) bwd_dq_convert(bwd_params p)
{
    const long long nbh = (long long)p.B * p.Hq, chunks = (long long)p.Sq * (D / 8);
    const float scale = (float)p.scale;
    for (long long bh = blockIdx.y; bh < nbh; bh += gridDim.y) {
        const long long b = bh / p.Hq, h = bh % p.Hq;
        const float *acc = p.dqacc + bh * p.Sq * D;
        T *dq = (T *)p.dq + b * p.sdq.s0 + h * p.sdq.s1;
        for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < chunks;
             c += (long long)gridDim.x * blockDim.x) {
            const long long i = c / (D / 8);
            const int e = (int)(c % (D / 8)) * 8;
            const float4 x = *reinterpret_cast<const float4 *>(acc + c * 8);
            const float4 y = *reinterpret_cast<const float4 *>(acc + c * 8 + 4);
            uint4 o;
            o.x = bk_mma16<T>::pack(x.x * scale, x.y * scale);
            o.y = bk_mma16<T>::pack(x.z * scale, x.w * scale);
            o.z = bk_mma16<T>::pack(y.x * scale, y.y * scale);
            o.w = bk_mma16<T>::pack(y.z * scale, y.w * scale);
            *reinterpret_cast<uint4 *>(dq + i * p.sdq.s2 + e) = o;
        }
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

/* Bytes of the deterministic mode's sync words: an int ticket counter per (b, kv head),
 * then an int semaphore per (b, q head, row tile of the fused kernel at head dim d). */
static long long fused_det_sync_bytes(long long B, long long Hq, long long Hkv, long long Sq, int d)
{
    const int bq = d == 64 ? fused_tiles<64>::BQ : d == 128 ? fused_tiles<128>::BQ : fused_tiles<256>::BQ;
    return 4 * B * (Hkv + Hq * ((Sq + bq - 1) / bq));
}

/* The fused kernel (DET: its deterministic mode): clears the workspace it accumulates
 * in, launches the walk per chunk of 65535 batches, then scales dq out. */
template <typename T, int D, int BQ, int BK, bool DET>
static bk_status launch_fused(const bwd_params &p, cudaStream_t s)
{
    typedef fused_cfg<D, BQ, BK> C;
    const size_t bytes = C::smem(sizeof(T));
    const bool plain = p.softcap <= 0.0 && !p.alibi && p.window < 0;
    BK_TRY(set_smem(bwd_fused_tc<T, D, BQ, BK, true, DET>, bytes));
    BK_TRY(set_smem(bwd_fused_tc<T, D, BQ, BK, false, DET>, bytes));
    if (p.Sq > 0 && cudaMemsetAsync(p.dqacc, 0, (size_t)p.B * p.Hq * p.Sq * D * sizeof(float), s) != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: clearing the dq accumulator failed: %s",
                       cudaGetErrorString(cudaGetLastError()));
    if (DET && cudaMemsetAsync(p.dq_ticket, 0, (size_t)fused_det_sync_bytes(p.B, p.Hq, p.Hkv, p.Sq, D), s) != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: clearing the dq semaphores failed: %s",
                       cudaGetErrorString(cudaGetLastError()));
    for (int b0 = 0; b0 < p.B; b0 += 65535) {
        const unsigned nb = (unsigned)min(65535, p.B - b0);
        const dim3 grid((unsigned)((p.Sk + BK - 1) / BK), (unsigned)p.Hkv, nb);
        if (p.Sk == 0)
            break;
        if (plain)
            bwd_fused_tc<T, D, BQ, BK, true, DET><<<grid, C::THREADS, bytes, s>>>(p, b0);
        else
            bwd_fused_tc<T, D, BQ, BK, false, DET><<<grid, C::THREADS, bytes, s>>>(p, b0);
    }
    if (p.Sq == 0)
        return BK_STATUS_SUCCESS;
    const long long chunks = (long long)p.Sq * (D / 8), nbh = (long long)p.B * p.Hq;
    const dim3 cgrid((unsigned)min((chunks + 255) / 256, 1024LL), (unsigned)min(nbh, 65535LL));
    bwd_dq_convert<T, D><<<cgrid, 256, 0, s>>>(p);
    return BK_STATUS_SUCCESS;
}

/* mma.sync exists for 16-bit types only; the f32/f64 instantiations are never called. */
template <typename T> struct tc_launch {
    static bk_status run(const bwd_params &, cudaStream_t, bool, bool) { return BK_STATUS_UNSUPPORTED; }
};
template <typename T> struct tc_launch16 {
    template <bool DET> static bk_status fused(const bwd_params &p, cudaStream_t s)
    {
        return p.Dqk == 64    ? launch_fused<T, 64, fused_tiles<64>::BQ, fused_tiles<64>::BK, DET>(p, s)
               : p.Dqk == 128 ? launch_fused<T, 128, fused_tiles<128>::BQ, fused_tiles<128>::BK, DET>(p, s)
                              : launch_fused<T, 256, fused_tiles<256>::BQ, fused_tiles<256>::BK, DET>(p, s);
    }
    static bk_status run(const bwd_params &p, cudaStream_t s, bool fused_kernel, bool det)
    {
        if (fused_kernel)
            return det ? fused<true>(p, s) : fused<false>(p, s);
        return p.Dqk == 64 ? launch_tc<T, 64>(p, s) : launch_tc<T, 128>(p, s);
    }
};
template <> struct tc_launch<__half> : tc_launch16<__half> {};
template <> struct tc_launch<__nv_bfloat16> : tc_launch16<__nv_bfloat16> {};

/* The Hopper kernel (sdpa_bwd_sm90.cu), then dq from its f32 accumulator; 16-bit types. */
template <typename T> struct sm90_launch {
    static bk_status run(const bwd_params &, const bk_sdpa_bwd_desc *, const bk_sdpa_bwd_args *, int *, cudaStream_t)
    {
        return BK_STATUS_UNSUPPORTED;
    }
};
template <typename T> struct sm90_launch16 {
    static bk_status run(const bwd_params &p, const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, int *dq_sync,
                         cudaStream_t s)
    {
        BK_TRY(bk_sm90_bwd_launch(d, a, (const float *)p.lrow, (const float *)p.drow, p.dqacc, dq_sync, s));
        const long long chunks = (long long)p.Sq * (p.Dqk / 8), nbh = (long long)p.B * p.Hq;
        const dim3 cgrid((unsigned)min((chunks + 255) / 256, 1024LL), (unsigned)min(nbh, 65535LL));
        if (p.Dqk == 64)
            bwd_dq_convert<T, 64><<<cgrid, 256, 0, s>>>(p);
        else if (p.Dqk == 128)
            bwd_dq_convert<T, 128><<<cgrid, 256, 0, s>>>(p);
        else
            bwd_dq_convert<T, 256><<<cgrid, 256, 0, s>>>(p);
        return BK_STATUS_SUCCESS;
    }
};
template <> struct sm90_launch<__half> : sm90_launch16<__half> {};
template <> struct sm90_launch<__nv_bfloat16> : sm90_launch16<__nv_bfloat16> {};

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

extern "C" size_t bk_cuda_sdpa_bwd_det_sync_bytes(const bk_sdpa_bwd_desc *d)
{
    /* at most one word per row and one per (b, kv head): no overflow below this bound */
    const int64_t rows = bk_mul_sat(bk_mul_sat(d->batch, d->q_heads), d->q_len);
    if (rows > INT64_MAX / 16 || bk_mul_sat(d->batch, d->kv_heads) > INT64_MAX / 16)
        return SIZE_MAX;
    long long n = fused_det_sync_bytes(d->batch, d->q_heads, d->kv_heads, d->q_len, d->head_dim_qk);
    /* the Hopper kernel's deterministic mode shares the layout (tickets, then semaphores per
     * tile of its BM rows) and falls back to the fused one on the same workspace: room for
     * both (the same count: both row tiles are 128 rows at D 64, 64 at D 128 and 256) */
    if (bk_cuda_sdpa_bwd_sm90_rejects(d) == NULL) {
        const long long n90 = 4 * ((long long)d->batch * d->kv_heads + bk_sm90_bwd_det_sems(d));
        n = n90 > n ? n90 : n;
    }
    return (uint64_t)n > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)n;
}

extern "C" const char *bk_cuda_sdpa_bwd_fused_rejects(const bk_sdpa_bwd_desc *d)
{
    if (d->dtype != BK_DTYPE_F16 && d->dtype != BK_DTYPE_BF16)
        return "the fused tensor-core kernel takes f16 and bf16 only";
    if (d->head_dim_qk != d->head_dim_v)
        return "the fused tensor-core kernel needs head_dim_qk == head_dim_v";
    if (d->head_dim_qk != 64 && d->head_dim_qk != 128 && d->head_dim_qk != 256)
        return "the fused tensor-core kernel takes head dims 64, 128 and 256";
    return NULL;
}

extern "C" bk_status bk_cuda_sdpa_bwd(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, bk_cuda_sdpa_bwd_kernel kernel,
                                      void *d_rows, void *lse_rows, void *dq_acc, void *dq_sync, void *stream)
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
    p.dqacc = (float *)dq_acc;
    p.dq_ticket = (int *)dq_sync;
    p.dq_sem = dq_sync ? (int *)dq_sync + (long long)d->batch * d->kv_heads : NULL;
    cudaStream_t s = (cudaStream_t)stream;
    const bool aligned = rows_aligned16(&a->q) && rows_aligned16(&a->k) && rows_aligned16(&a->v) &&
                         rows_aligned16(&a->dy) && rows_aligned16(&a->dq) && rows_aligned16(&a->dk) &&
                         rows_aligned16(&a->dv);
    /* the fused kernel's positions are 32-bit, its accumulator is read by 16 bytes and its
     * tiles need up to 201 KB of shared memory; past 2^30 rows, with a misaligned
     * workspace or on a device with less shared memory (sm_86/89: 99 KB) the two-pass
     * kernel runs (the CUDA-core kernel at D = 256). The deterministic mode's int sync
     * words are carved 256-byte aligned from the workspace like dq_acc. */
    const bool det = kernel == BK_CUDA_SDPA_BWD_FUSED_DET || kernel == BK_CUDA_SDPA_BWD_SM90_DET;
    const bool sm90 = (kernel == BK_CUDA_SDPA_BWD_SM90 || kernel == BK_CUDA_SDPA_BWD_SM90_DET) && aligned &&
                      bk_sm90_bwd_ready(d, dq_acc, det ? dq_sync : NULL);
    /* the Hopper plans fall back to the fused kernel in the same mode (det: still
     * deterministic) */
    const bool fused = (kernel == BK_CUDA_SDPA_BWD_FUSED || kernel == BK_CUDA_SDPA_BWD_SM90 || det) && aligned &&
                       bk_cuda_sdpa_bwd_fused_rejects(d) == NULL &&
                       d->q_len < (1 << 30) && d->kv_len < (1 << 30) &&
                       (long long)d->q_len * (d->q_heads / d->kv_heads) < (1LL << 30) &&
                       ((uintptr_t)dq_acc & 15) == 0 && (!det || ((uintptr_t)dq_sync & 3) == 0) &&
                       bk_cuda_smem_fits(fused_smem_bytes(d->head_dim_qk));
    const bool tc = fused || (kernel != BK_CUDA_SDPA_BWD_GENERIC && aligned && bk_cuda_sdpa_bwd_tc_rejects(d) == NULL);
    const long long rows = (long long)d->batch * d->q_heads * d->q_len;
    bk_status st = BK_STATUS_SUCCESS;
    BK_DISPATCH_FLOAT(d->dtype, T, {
        if (rows > 0)
            launch_rows<T>(p, rows_aligned16(&a->y) && rows_aligned16(&a->dy), s);
        st = sm90 ? sm90_launch<T>::run(p, d, a, det ? (int *)dq_sync : NULL, s) : tc ? tc_launch<T>::run(p, s, fused, det) : launch_generic<T>(p, s);
    });
    BK_TRY(st);
    return bk_cuda_check_launch("sdpa_bwd");
}
