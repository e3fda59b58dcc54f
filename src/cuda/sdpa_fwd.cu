/* sdpa_fwd.cu - the flash-attention forward on CUDA: three kernels.
 *
 * Math (attention.h): for batch b, query head h (kv head hk = h / group), row i, key j,
 * pos = i + Sk - Sq (bottom-right alignment):
 *     s_ij = scale <q_i, k_j>;  s = softcap tanh(s / softcap) if softcap > 0;
 *     s += slope[h] (j - pos) if alibi;  key j visible when j <= pos (causal) and
 *     j >= pos - window_left (window_left >= 0);
 *     y_i = sum_j softmax(s_i.)_j v_j,  lse_i = log sum_j exp(s_ij) (f32, natural log);
 *     a row with no visible key gets y = 0 and lse = -inf.
 * Shapes: q [B,Hq,Sq,Dqk], k [B,Hkv,Sk,Dqk], v [B,Hkv,Sk,Dv], y [B,Hq,Sq,Dv] with any
 *         non-negative outer strides (k/v may have stride 0 on the head axis) and inner
 *         stride 1; lse f32 [B,Hq,Sq] any strides; slopes f32 [Hq]. All offsets 64-bit.
 * Grid:   non-causal: x = query tile, y/z = the flattened (b, h) pairs (y capped at 65535, z
 *         the rest): the tiles of one head run together. Causal (when B*Hq < 2^31 and the
 *         tiles fit 65535): x = (b, h), y = query tile, heaviest tiles first over the whole
 *         grid, so the light tiles fill the last wave (H100 D128 causal: +9%).
 *
 * 1. sdpa_fwd_generic_kernel<T> (CUDA cores; every dtype and option, head dims 1..256):
 *    a CTA of 4 warps owns 16 query rows (4 per warp) of one (b, h). Q rows, and tiles of
 *    32 keys of K (rows padded by one element against bank conflicts) and V are staged in
 *    shared memory in the compute type (f32; f64 for f64). Lane j scores key j of the
 *    tile for one row; the warp reduces max and sum with shuffles; an online softmax in
 *    the compute type keeps m, l and the output row (lane owns elements lane + 32 t).
 *    exp/log/tanh are the accurate library functions. The only path for f32 and f64.
 * 2. sdpa_fwd_mma_kernel<T, fwd_cfg<D, BN, NW, MT, MINB, QREG, LAZY, DBUF>, GEN> (tensor cores;
 *    f16/bf16, Dqk == Dv in {64,128,256}): FlashAttention-2. A CTA of NW warps owns a
 *    BM = NW * 16 * MT row Q tile; each warp MT 16-row MMA atoms (MT = 2: every K/V fragment
 *    read from shared memory feeds two MMAs). Q, K (BN keys) and V (BN keys) tiles live in
 *    shared memory with 16-byte chunks XOR-swizzled by row (chunk ^ (row & 7)):
 *    conflict-free ldmatrix and cp.async. Q fragments are read by ldmatrix per key tile
 *    (QREG keeps them in registers; no shipped tile uses it). S = Q K^T by
 *    mma.sync.m16n8k16 (f32 accumulate); the scores are turned into log2 units: GEN = false
 *    (no softcap/ALiBi, scale > 0) folds scale * log2 e into the exponent's FFMA and carries
 *    no code of the general transform; GEN = true applies softcap/ALiBi first. Masks only
 *    on tiles that need them (past Sk, the causal diagonal, the window edge); fully masked
 *    tiles are never visited. Online softmax on the accumulator fragments with exp2 (row
 *    max / sum across the quad by shuffles). LAZY (all shipped tiles): a row keeps a stale
 *    reference max until a tile's max exceeds it by more than 2^8, so O and l are rescaled
 *    only on the few tiles where some row of the warp jumped (warp vote); P <= 256 then,
 *    exact in f16/bf16, and O / l, lse = (m + log2 l) ln 2 stay exact. P is rounded to the
 *    input dtype and packed in registers at once, the A operand of O += P V (V through
 *    ldmatrix.trans). Pipeline, DBUF (all shipped tiles): two K and two V buffers; after
 *    the one barrier per tile, K(n+1) and V(n+1) load into the other buffers during all of
 *    tile n (cp.async 16 B, zero-filled past the end). Without DBUF (as FA2, two barriers
 *    per tile): V(n) loads while S(n) and the softmax run, K(n+1) while P V(n) runs. Views whose
 *    pointers or strides are not 16-byte aligned take the same kernel with plain loads.
 *    Each output is computed by one thread in a fixed order: deterministic, bit-stable.
 *    Tiles (launch_mma_dim): D 64: 128 x 64 keys, 4 warps x 2 atoms; D 128 causal: 128 x 32,
 *    4 warps x 2 atoms; D 128 non-causal: 256 x 32, 8 warps x 2 atoms (one CTA per SM);
 *    D 256: 128 x 64 keys, 8 warps x 1 atom; all DBUF. (bk_bench run 3 measured the 128-row
 *    tile at 267.5 non-causal, below the 256-row tile's 303.2, though a standalone timing
 *    loop had it at 318.8: the bench is what ships.) DBUF costs 16-24 bytes of spills in the D128 /
 *    D256 plain instantiations (32-40 in the general ones); D64 spills none. Measured
 *    (H100, bf16 B4 H16 S4096, own timing loop, uniform [-1, 1] inputs, median of 100,
 *    TFLOP/s, non-causal / causal): D128 256 x 32 x 8 warps 300.4 / - without DBUF, 300.1 with;
 *    128 x 32 x 4 warps 308.3 / 260.2 without, 318.8 / 266.4 with, causal tile-major 291.9;
 *    D64 284.4 / 238.5 without, 293.5 / 273.3 (tile-major) with; D256 BN 32 257.5 / 228.2
 *    without, 257.4 / 234.6 with, BN 64 (DBUF, 24 B spills) 285.5 / 251.5. Earlier
 *    alternatives (median of 25, random normal data):
 *    D128 128 x 64 x 4 warps spills 150+ bytes (263-272); 8 warps x 1 atom 128 x 64 with Q
 *    in registers 276; 64-row tiles 250; an exact (threshold 0) rescale skip lost 0-7%.
 *    H100 (bf16, B4 H16 S4096, CUDA events, median of 25 after warm-up, random normal data):
 *    D128 299.9 TFLOP/s (best 300.8; causal 244), D64 283 (239), D256 244 (218); before
 *    the lazy rescale and the 256-row tile 275 (234), 275 (233), 236 (214).
 *    bk_bench (H100, this build): D128 303.2 (causal 285.4), D64 (H32) 301.0 (266.2), D256
 *    (H8) 250.1 (228.7); before DBUF and the tile-major causal grid 292.9 (244.3), 279.9
 *    (252.3), 240.7 (206.5).
 *    Since the Hopper kernel (3) the mask, the online softmax and the stores are shared
 *    helpers (key_tile_range, score_transform, mask_tile, softmax_step, store_rows); the
 *    refactor changed the sm_90a spills of this kernel from 24/40/16/32 bytes (D128 4 warps
 *    plain/general, 8 warps plain/general) to 0/40/0/32 and D256 general from 160 to 100.
 * 3. sdpa_fwd_wgmma_kernel<T, D, BN, NWG, GEN> (sm_90a only: compute capability 9.0 and a
 *    build with 90a code; f16/bf16, Dqk == Dv in {64, 128, 256}, rows 16-byte aligned; every
 *    option): two warpgroups of 128 threads, each owns 64 query rows (BM = 128). Tiles are
 *    stored as wgmma's canonical 128-byte-swizzle atoms ([D/64][rows][64], chunk ^ (row & 7),
 *    1024-byte aligned): Q once, K and V double-buffered by cp.async from all threads (one
 *    barrier per tile; fence.proxy.async makes the copies visible to the tensor cores).
 *    S = Q K^T: D/16 wgmma m64nBNk16 with both operands K-major in shared memory; the
 *    accumulator layout is the mma.sync one tiled, so GEN / mask / lazy softmax are the same
 *    helpers as kernel 2; P (rounded to T) stays in registers as the A operand of O += P V:
 *    BN/16 wgmma m64nDk16 with V read N-major ("transposed" B) from shared memory. Each
 *    group is waited for before its result is used (no overlap of softmax and MMA yet).
 *    BN = 128 keys (64 at D 256, where O takes 128 registers); 195-255 registers, no
 *    spills; 81 / 161 / 193 KiB of shared memory (D 64 / 128 / 256), one CTA per SM.
 *    Unaligned views and builds without sm_90a code fall back to kernel 2 at launch.
 *    bk_bench (H100, bf16, 2026-11-24), TFLOP/s non-causal / causal, kernel 2 before in ():
 *    B4 H16 S4096 D128 398.8 / 328.1 (298.1 / 287.9), B4 H32 S4096 D64 302.8 / 257.1,
 *    B4 H8 S4096 D256 412.3 / 363.9, B1 H16 S16384 D128 428.0 / 418.2.
 * Paged prefill (PAGED = true, bk_cuda_paged_prefill_tc): kernels 2 and 3 also run
 *    paged_prefill. The grid is (tile ids, q heads); cta_paged finds the CTA's request by a
 *    binary search over q_indptr (request b owns ids [b + q_indptr[b] / BM, b + 1 +
 *    q_indptr[b+1] / BM)) and sets Sq = its rows, Sk = its tokens and the "batch" index to
 *    its first row (batch strides = row strides), so masks and softmax are unchanged; the K/V
 *    tile loaders take rows through paged_rows (page table lookup per 16-byte chunk; rows of
 *    unresolvable pages are zero-filled and never read). 128-row tiles (kernel 2: 4 warps x
 *    2 atoms, 8 x 1 at D 256).
 * Not yet: no split-KV for small batch*heads with long keys; no TMA, no warp
 *    specialisation, no softmax/MMA overlap across warpgroups (FlashAttention-3's ping-pong)
 *    in kernel 3; no 16-byte vector stores of y (scalar stores from the fragments); head
 *    dims other than 64/128/256 (and Dqk != Dv) on tensor cores. */
#include "common.cuh"
#include "cuda/paged_cuda.h"
#include "cuda/sdpa_fwd_cuda.h"
#include "paged_table.cuh"
#include "wgmma.cuh"

#include <type_traits>

#include <math.h>
#include <stdint.h>

struct sdpa_params {
    const void *q, *k, *v;
    void *y;
    float *lse;
    const float *slopes;
    bk_view4 sq, sk, sv, sy;
    long long sl0, sl1, sl2, sslope;
    int B, Hq, group, Sq, Sk, Dqk, Dv, window;
    bool causal, alibi, aligned;
    bool tile_major; /* grid x = (b, h), y = query tile (see make_grid) */
    double scale, softcap;
    float scale_log2; /* scale * log2(e), for the tensor-core kernel's plain path */
    /* paged prefill (PAGED kernels): K/V rows come from the page table; request b owns query
     * rows [q_indptr[b], q_indptr[b+1]) of q / y / lse (see cta_paged) */
    paged_table t;
    const int *q_indptr;
    int total_rows;
};

/* The (b, h) pair of this CTA and its query tile, heaviest (last) causal tiles first;
 * false past the end of the flattened (b, h) range. Head-major grid (x = tile, y/z = (b,
 * h)): the tiles of one head run together (K/V stay in L2). Tile-major grid (x = (b, h),
 * y = tile): the whole grid runs heaviest tiles first, so the short causal tiles fill the
 * tail of the last wave. */
static __device__ __forceinline__ bool cta_bh(const sdpa_params &p, long long &b, long long &h, long long &tile)
{
    long long bh;
    if (p.tile_major) {
        bh = blockIdx.x;
        tile = (long long)gridDim.y - 1 - blockIdx.y;
    } else {
        bh = (long long)blockIdx.z * gridDim.y + blockIdx.y;
        tile = (long long)gridDim.x - 1 - blockIdx.x;
    }
    if (bh >= (long long)p.B * p.Hq)
        return false;
    b = bh / p.Hq;
    h = bh % p.Hq;
    return true;
}

/* Paged prefill: grid x = tile ids (request b owns ids [b + q_indptr[b] / BM, b + 1 +
 * q_indptr[b+1] / BM), as many as its row tiles plus one spare), y = q head. Rebases p onto
 * the CTA's request, which becomes a one-batch problem: Sq = its query rows, Sk = its
 * tokens, and b = its first row (the launcher sets the batch strides of q / y / lse to
 * their row strides, so batch b starts at row b); `first` is its first kv_indices
 * position.
 * False for spare ids. Trusted q_indptr, clamped so that no row outside [0, total_rows)
 * is touched. */
static __device__ __forceinline__ bool cta_paged(sdpa_params &p, int BM, long long &b, long long &h, long long &tile,
                                                 long long &first)
{
    const int id = blockIdx.x;
    int lo = 0, hi = p.B - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (mid + p.q_indptr[mid] / BM <= id)
            lo = mid;
        else
            hi = mid - 1;
    }
    const long long r0 = p.q_indptr[lo];
    const long long rows = min((long long)p.q_indptr[lo + 1], (long long)p.total_rows) - r0;
    tile = id - (lo + p.q_indptr[lo] / BM);
    if (r0 < 0 || tile < 0 || tile * BM >= rows)
        return false;
    h = blockIdx.y;
    p.Sq = (int)rows;
    p.Sk = (int)min(paged_len(p.t, lo, first), 0x7fffffffLL);
    b = r0; /* the "batch" offset: the batch strides of q / y / lse are their row strides */
    return true;
}

/* Where a tile loader finds row r of a tile: `at` returns its address and may clear ok
 * (a page the table cannot resolve: the row is zero-filled, never read); `base` is a
 * valid address for the zero-filled copies. */
template <typename T> struct dense_rows {
    const T *g;
    long long rs;
    __device__ __forceinline__ const T *base() const { return g; }
    __device__ __forceinline__ const T *at(long long r, bool &) const { return g + r * rs; }
};
template <typename T, int D> struct paged_rows {
    const T *pool;
    paged_table t;
    long long first;
    int g;
    __device__ __forceinline__ const T *base() const { return pool; }
    __device__ __forceinline__ const T *at(long long j, bool &ok) const
    {
        const long long row = paged_row(t, first, j, g);
        ok = row >= 0;
        return pool + (ok ? row : 0) * D;
    }
};

/* The K or V rows of kv head hk of batch b (dense: the strided view) or of the request
 * whose pages start at kv_indices position `first` (PAGED). */
template <typename T, int D, bool PAGED> struct kv_rows_of {
    typedef dense_rows<T> type;
    static __device__ __forceinline__ type make(const void *base, const sdpa_params &, long long b, long long hk,
                                                long long, const bk_view4 &s)
    {
        return {(const T *)base + b * s.s0 + hk * s.s1, s.s2};
    }
};
template <typename T, int D> struct kv_rows_of<T, D, true> {
    typedef paged_rows<T, D> type;
    static __device__ __forceinline__ type make(const void *base, const sdpa_params &p, long long, long long hk,
                                                long long first, const bk_view4 &)
    {
        return {(const T *)base, p.t, first, (int)hk};
    }
};

/* The keys query row i sees: [lo, hi] (hi < lo: none). */
static __device__ __forceinline__ void row_keys(const sdpa_params &p, long long i, long long &lo, long long &hi)
{
    const long long pos = i + p.Sk - p.Sq;
    hi = p.Sk - 1;
    lo = 0;
    if (p.causal && pos < hi)
        hi = pos;
    if (p.window >= 0 && pos - p.window > lo)
        lo = pos - p.window;
}


/* ------------------------------------------------ 1. generic CUDA-core kernel -- */

enum { kGenWarps = 4, kGenRowsPerWarp = 4, kGenRows = kGenWarps * kGenRowsPerWarp, kGenKeys = 32 };

template <typename T>
__global__ void __launch_bounds__(kGenWarps * 32) sdpa_fwd_generic_kernel(sdpa_params p)
{
    typedef typename elem<T>::acc acc;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    acc *Qs = (acc *)smem_raw;                 /* [kGenRows][Dqk] */
    acc *Ks = Qs + kGenRows * p.Dqk;           /* [kGenKeys][Dqk + 1] */
    acc *Vs = Ks + kGenKeys * (p.Dqk + 1);     /* [kGenKeys][Dv] */
    long long b, h, tile;
    if (!cta_bh(p, b, h, tile))
        return;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const long long hk = h / p.group;
    const long long i0 = tile * kGenRows;
    const T *qb = (const T *)p.q + b * p.sq.s0 + h * p.sq.s1;
    const T *kb = (const T *)p.k + b * p.sk.s0 + hk * p.sk.s1;
    const T *vb = (const T *)p.v + b * p.sv.s0 + hk * p.sv.s1;
    const int Dqk = p.Dqk, Dv = p.Dv, nt = (Dv + 31) / 32;
    for (int idx = tid; idx < kGenRows * Dqk; idx += blockDim.x) {
        const long long i = i0 + idx / Dqk;
        Qs[idx] = i < p.Sq ? elem<T>::load(qb[i * p.sq.s2 + idx % Dqk]) : (acc)0;
    }
    const long long last = min(i0 + kGenRows, (long long)p.Sq) - 1;
    long long klo, khi, unused;
    row_keys(p, i0, klo, unused);
    row_keys(p, last, unused, khi);
    const acc scale = (acc)p.scale, softcap = (acc)p.softcap;
    const acc slope = p.alibi ? (acc)p.slopes[h * p.sslope] : (acc)0;
    const acc NEG_INF = -(acc)INFINITY;
    acc m[kGenRowsPerWarp], l[kGenRowsPerWarp], o[kGenRowsPerWarp][8];
    long long lo[kGenRowsPerWarp], hi[kGenRowsPerWarp];
#pragma unroll
    for (int rr = 0; rr < kGenRowsPerWarp; rr++) {
        m[rr] = NEG_INF;
        l[rr] = 0;
#pragma unroll
        for (int t = 0; t < 8; t++)
            o[rr][t] = 0;
        row_keys(p, i0 + warp * kGenRowsPerWarp + rr, lo[rr], hi[rr]);
    }
    for (long long kt = klo; kt <= khi; kt += kGenKeys) {
        __syncthreads(); /* everyone is done with the previous tile */
        for (int idx = tid; idx < kGenKeys * Dqk; idx += blockDim.x) {
            const long long j = kt + idx / Dqk;
            Ks[(idx / Dqk) * (Dqk + 1) + idx % Dqk] = j <= khi ? elem<T>::load(kb[j * p.sk.s2 + idx % Dqk]) : (acc)0;
        }
        for (int idx = tid; idx < kGenKeys * Dv; idx += blockDim.x) {
            const long long j = kt + idx / Dv;
            Vs[idx] = j <= khi ? elem<T>::load(vb[j * p.sv.s2 + idx % Dv]) : (acc)0;
        }
        __syncthreads();
        const long long j = kt + lane;
#pragma unroll
        for (int rr = 0; rr < kGenRowsPerWarp; rr++) {
            const int r = warp * kGenRowsPerWarp + rr;
            if (i0 + r >= p.Sq)
                break; /* warp-uniform */
            const bool vis = j >= lo[rr] && j <= hi[rr];
            acc s = NEG_INF;
            if (vis) {
                acc dot = 0;
                const acc *qr = Qs + r * Dqk, *kr = Ks + lane * (Dqk + 1);
                for (int e = 0; e < Dqk; e++)
                    dot += qr[e] * kr[e];
                s = dot * scale;
                if (p.softcap > 0.0)
                    s = softcap * bk_tanh(s / softcap);
                if (p.alibi)
                    s += slope * (acc)(j - (i0 + r + p.Sk - p.Sq));
            }
            acc tmax = s;
#pragma unroll
            for (int sh = 16; sh > 0; sh >>= 1)
                tmax = max(tmax, __shfl_xor_sync(0xffffffffu, tmax, sh));
            const acc mnew = max(m[rr], tmax);
            if (mnew == NEG_INF)
                continue; /* nothing visible yet in this row (warp-uniform) */
            const acc corr = bk_exp(m[rr] - mnew);
            const acc pj = vis ? bk_exp(s - mnew) : (acc)0;
            acc psum = pj;
#pragma unroll
            for (int sh = 16; sh > 0; sh >>= 1)
                psum += __shfl_xor_sync(0xffffffffu, psum, sh);
            l[rr] = l[rr] * corr + psum;
            m[rr] = mnew;
#pragma unroll
            for (int t = 0; t < 8; t++)
                o[rr][t] *= corr;
            for (int jj = 0; jj < kGenKeys; jj++) {
                const acc pb = __shfl_sync(0xffffffffu, pj, jj);
                const acc *vr = Vs + jj * Dv;
#pragma unroll
                for (int t = 0; t < 8; t++)
                    if (t < nt && lane + 32 * t < Dv)
                        o[rr][t] += pb * vr[lane + 32 * t];
            }
        }
    }
    T *yb = (T *)p.y + b * p.sy.s0 + h * p.sy.s1;
#pragma unroll
    for (int rr = 0; rr < kGenRowsPerWarp; rr++) {
        const long long i = i0 + warp * kGenRowsPerWarp + rr;
        if (i >= p.Sq)
            break;
        const acc inv = l[rr] > 0 ? (acc)1 / l[rr] : (acc)0;
#pragma unroll
        for (int t = 0; t < 8; t++)
            if (t < nt && lane + 32 * t < Dv)
                yb[i * p.sy.s2 + lane + 32 * t] = elem<T>::store(o[rr][t] * inv);
        if (p.lse && lane == 0)
            p.lse[b * p.sl0 + h * p.sl1 + i * p.sl2] = l[rr] > 0 ? (float)(m[rr] + bk_log(l[rr])) : -INFINITY;
    }
}

/* ------------------------------------------------ 2. tensor-core kernel -- */


/* Rows [row0, row0 + ROWS) (found by `src_rows`, a dense_rows or paged_rows) into the
 * swizzled tile s, by NT threads; rows at or past `limit` (or unresolved pages) are
 * zero-filled (their source is never read). */
template <typename T, int ROWS, int D, int NT, typename SRC>
static __device__ __forceinline__ void load_tile(T *s, const SRC &src_rows, long long row0, long long limit,
                                                 bool aligned, int tid)
{
    constexpr int C = D / 8;
    static_assert(ROWS * C % NT == 0, "tile must split evenly over the threads");
#pragma unroll
    for (int it = 0; it < ROWS * C / NT; it++) {
        const int idx = tid + it * NT, r = idx / C, c = idx % C;
        T *dst = s + r * D + ((c ^ (r & 7)) << 3);
        bool ok = row0 + r < limit;
        const T *src = (ok ? src_rows.at(row0 + r, ok) : src_rows.base()) + c * 8;
        if (aligned) {
            bk_cp_async16(bk_smem_addr(dst), src, ok ? 16 : 0);
        } else {
            union {
                uint4 u;
                T e[8];
            } tmp;
            tmp.u = make_uint4(0, 0, 0, 0);
            if (ok)
                for (int e = 0; e < 8; e++)
                    tmp.e[e] = src[e];
            *reinterpret_cast<uint4 *>(dst) = tmp.u;
        }
    }
}

/* floor(a / b) for b > 0 */
static __device__ __forceinline__ long long floordiv(long long a, long long b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The tile configuration. D: head dim; BN: keys per tile; NW: warps; MT: 16-row MMA atoms
 * per warp (the CTA owns BM = NW * 16 * MT query rows, warp w rows [w * 16 * MT, (w + 1) *
 * 16 * MT)); MINB: CTAs per SM promised to __launch_bounds__ (caps the registers); QREG: the
 * warp's Q fragments stay in registers for the whole CTA (else re-read from shared memory
 * per key tile); LAZY: rows keep a stale reference max until a tile exceeds it by more
 * than kLazy (log2 units), so the O rescale is skipped on most tiles (see the softmax);
 * DBUF: two K and two V buffers, tile n+1 loads during all of tile n (one barrier per
 * tile instead of two). */
template <int D_, int BN_, int NW_, int MT_, int MINB_, bool QREG_, bool LAZY_, bool DBUF_> struct fwd_cfg {
    static constexpr int D = D_, BN = BN_, NW = NW_, MT = MT_, MINB = MINB_;
    static constexpr bool QREG = QREG_, LAZY = LAZY_, DBUF = DBUF_;
};
/* With a stale max P <= 2^kLazy = 256: representable in f16/bf16 with the same relative
 * rounding; O and l grow by at most that factor (no f32 overflow unless |v| * Sk is within
 * a factor 256 of the f32 range). */
static constexpr float kLazy = 8.f;

/* The key tiles a CTA of query rows [m0, m0 + BM) visits, n_lo..n_hi (of BN keys each), and
 * the ones that need no mask, nf_lo..nf_hi: wholly inside Sk, at or below the causal
 * diagonal of the CTA's first row, and inside the window of its last row. */
struct key_tiles {
    int n_lo, n_hi, nf_lo, nf_hi;
};
template <int BN> static __device__ __forceinline__ key_tiles key_tile_range(const sdpa_params &p, long long m0, int BM)
{
    const long long off = (long long)p.Sk - p.Sq, last = min(m0 + BM, (long long)p.Sq) - 1;
    long long klo, khi, unused;
    row_keys(p, m0, klo, unused);
    row_keys(p, last, unused, khi);
    key_tiles t;
    t.n_lo = (int)(klo / BN);
    t.n_hi = khi >= klo ? (int)(khi / BN) : t.n_lo - 1;
    long long nfh = floordiv(p.Sk, BN) - 1, nfl = t.n_lo;
    if (p.causal)
        nfh = min(nfh, floordiv(m0 + off + 1, BN) - 1);
    if (p.window >= 0)
        nfl = max(nfl, -floordiv(-(last + off - p.window), BN));
    t.nf_lo = (int)min(nfl, (long long)t.n_hi + 1);
    t.nf_hi = (int)max(min(nfh, (long long)t.n_hi), (long long)t.n_lo - 1);
    return t;
}

/* The score fragments of one thread: s[mt][j][e] is query row m0 + rbase + mt * 16 + 8 * (e >> 1),
 * key nBN + 8 * j + 2 * t4 + (e & 1) (the mma.sync / wgmma accumulator layout). */

/* GEN: the general transform of the raw dot products (scale, softcap, ALiBi), to log2 units. */
template <int MT, int NB>
static __device__ __forceinline__ void score_transform(const sdpa_params &p, float (&s)[MT][NB][4], float slope,
                                                       long long m0, int rbase, long long nBN, int t4)
{
    const float scale = (float)p.scale, softcap = (float)p.softcap, LOG2E = 1.4426950408889634f;
    const long long off = (long long)p.Sk - p.Sq;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            /* key - pos of the row's element j = 0, e = 0 */
            const float d0 = (float)(nBN + 2 * t4 - (m0 + rbase + mt * 16 + 8 * hr + off));
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float x = s[mt][j][2 * hr + e] * scale;
                    if (softcap > 0.f)
                        x = softcap * tanhf(x / softcap);
                    if (p.alibi)
                        x += slope * (d0 + (float)(8 * j + e));
                    s[mt][j][2 * hr + e] = x * LOG2E;
                }
        }
}

/* Sets the invisible keys of a tile (causal, window, past Sk) to -inf. */
template <int MT, int NB, int BN>
static __device__ __forceinline__ void mask_tile(const sdpa_params &p, float (&s)[MT][NB][4], long long m0,
                                                 int rbase, long long nBN, int t4)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            long long lo, hi;
            row_keys(p, m0 + rbase + mt * 16 + 8 * hr, lo, hi);
            /* the visible keys relative to this thread's first key, clamped to the tile */
            const int lo_r = (int)max(-1LL, min((long long)BN, lo - nBN - 2 * t4));
            const int hi_r = (int)max(-1LL, min((long long)BN, hi - nBN - 2 * t4));
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (8 * j + e < lo_r || 8 * j + e > hi_r)
                        s[mt][j][2 * hr + e] = -INFINITY;
        }
}

/* One online-softmax step over a tile of scores, 2 * MT rows per thread (the 4 lanes of a
 * quad share a row): row max by shuffles, O and l rescaled, P = 2^(s * mul - m) rounded to T
 * and packed into pk (pk[mt][j][hr]: row half hr, keys 8 j + 2 t4 + {0, 1}: the A fragment
 * of P V). LAZY: a row keeps its reference max m_r until a tile's max exceeds it by more than
 * kLazy (log2 units), so P <= 2^kLazy; the rescale runs only when some row of the warp moved
 * (warp-uniform branch). Exact either way: O / l and lse = m_r + log2 l. */
template <typename T, int MT, int NB, int DB, bool LAZY>
static __device__ __forceinline__ void softmax_step(float (&s)[MT][NB][4], float (&m_r)[MT][2], float (&l_r)[MT][2],
                                                    float (&acc_o)[MT][DB][4], uint32_t (&pk)[MT][NB][2], float mul)
{
    float mx_r[MT][2], corr_r[MT][2];
    bool upd = true;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < NB; j++)
                mx = fmaxf(mx, fmaxf(s[mt][j][2 * hr], s[mt][j][2 * hr + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            mx_r[mt][hr] = mx * mul;
            corr_r[mt][hr] = 1.f;
        }
    if constexpr (LAZY) {
        bool need = false;
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
            need = need || mx_r[mt][0] > m_r[mt][0] + kLazy || mx_r[mt][1] > m_r[mt][1] + kLazy;
        upd = __any_sync(0xffffffffu, need);
    }
    if (upd) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const float mnew = fmaxf(m_r[mt][hr], mx_r[mt][hr]);
                const float muse = mnew == -INFINITY ? 0.f : mnew;
                corr_r[mt][hr] = bk_ex2(m_r[mt][hr] - muse);
                m_r[mt][hr] = mnew;
            }
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < DB; j++) {
                acc_o[mt][j][0] *= corr_r[mt][0];
                acc_o[mt][j][1] *= corr_r[mt][0];
                acc_o[mt][j][2] *= corr_r[mt][1];
                acc_o[mt][j][3] *= corr_r[mt][1];
            }
    }
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const float muse = m_r[mt][hr] == -INFINITY ? 0.f : m_r[mt][hr];
            float rs = 0.f;
#pragma unroll
            for (int j = 0; j < NB; j++) {
                const float p0 = bk_ex2(fmaf(s[mt][j][2 * hr], mul, -muse));
                const float p1 = bk_ex2(fmaf(s[mt][j][2 * hr + 1], mul, -muse));
                rs += p0;
                rs += p1;
                pk[mt][j][hr] = bk_mma16<T>::pack(p0, p1);
            }
            l_r[mt][hr] = l_r[mt][hr] * corr_r[mt][hr] + rs;
        }
}

/* y = O / l and lse = (m + log2 l) ln 2 of the thread's rows m0 + rbase + mt * 16 + 8 hr of (b, h);
 * rows at or past Sq are skipped. */
template <typename T, int MT, int DB>
static __device__ __forceinline__ void store_rows(const sdpa_params &p, const float (&acc_o)[MT][DB][4],
                                                  const float (&m_r)[MT][2], const float (&l_r)[MT][2], long long b,
                                                  long long h, long long m0, int rbase, int t4)
{
    T *yb = (T *)p.y + b * p.sy.s0 + h * p.sy.s1;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float l = l_r[mt][hr];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const long long i = m0 + rbase + mt * 16 + 8 * hr;
            if (i >= p.Sq)
                continue;
            const float inv = l > 0.f ? 1.f / l : 0.f;
            T *yr = yb + i * p.sy.s2 + 2 * t4;
#pragma unroll
            for (int j = 0; j < DB; j++) {
                yr[8 * j] = elem<T>::store(acc_o[mt][j][2 * hr] * inv);
                yr[8 * j + 1] = elem<T>::store(acc_o[mt][j][2 * hr + 1] * inv);
            }
            if (p.lse && t4 == 0)
                p.lse[b * p.sl0 + h * p.sl1 + i * p.sl2] =
                    l > 0.f ? m_r[mt][hr] * 0.6931471805599453f + logf(l) : -INFINITY;
        }
}

/* GEN: the general score transform (softcap / ALiBi / scale <= 0); otherwise the scale folds
 * into the exponent's FFMA. */
template <typename T, typename C, bool GEN, bool PAGED>
__global__ void __launch_bounds__(C::NW * 32, C::MINB) sdpa_fwd_mma_kernel(const sdpa_params p0)
{
    constexpr int D = C::D, BN = C::BN, NW = C::NW, MT = C::MT;
    constexpr int NT = NW * 32, BM = NW * 16 * MT, NB = BN / 8, DB = D / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr int NBUF = C::DBUF ? 2 : 1;
    T *sQ = (T *)smem_raw, *sK = sQ + BM * D, *sV = sK + NBUF * BN * D;
    sdpa_params p = p0;
    long long b = 0, h, tile, first = 0;
    if (PAGED ? !cta_paged(p, BM, b, h, tile, first) : !cta_bh(p, b, h, tile))
        return;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, t4 = lane & 3;
    const long long hk = h / p.group;
    const long long m0 = tile * BM;
    const dense_rows<T> qb = {(const T *)p.q + b * p.sq.s0 + h * p.sq.s1, p.sq.s2};
    typedef typename kv_rows_of<T, D, PAGED>::type kv_rows;
    const kv_rows kb = kv_rows_of<T, D, PAGED>::make(p.k, p, b, hk, first, p.sk);
    const kv_rows vb = kv_rows_of<T, D, PAGED>::make(p.v, p, b, hk, first, p.sv);
    const key_tiles kt = key_tile_range<BN>(p, m0, BM);
    const int n_lo = kt.n_lo, n_hi = kt.n_hi;

    load_tile<T, BM, D, NT>(sQ, qb, m0, p.Sq, p.aligned, tid);
    if (n_hi >= n_lo) {
        load_tile<T, BN, D, NT>(sK, kb, (long long)n_lo * BN, p.Sk, p.aligned, tid);
        if constexpr (C::DBUF)
            load_tile<T, BN, D, NT>(sV, vb, (long long)n_lo * BN, p.Sk, p.aligned, tid);
    }
    bk_cp_async_commit();

    /* ldmatrix lane addressing (the swizzle XOR is lane & 7 for every tile) */
    const int sw = lane & 7;
    const int q_row = warp * 16 * MT + (lane & 7) + 8 * ((lane >> 3) & 1), q_chunk = lane >> 4;
    const int k_row = (lane & 7) + 8 * (lane >> 4), k_chunk = (lane >> 3) & 1;
    const int v_row = (lane & 7) + 8 * ((lane >> 3) & 1), v_chunk = lane >> 4;
    const uint32_t sQa = bk_smem_addr(sQ + q_row * D), sKa = bk_smem_addr(sK + k_row * D), sVa = bk_smem_addr(sV + v_row * D);

    uint32_t qf[C::QREG ? MT : 1][C::QREG ? D / 16 : 1][4];
    if constexpr (C::QREG) {
        bk_cp_async_wait_group<0>();
        __syncthreads();
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                bk_ldsm_x4(qf[mt][kk], sQa + mt * 16 * D * 2 + (((2 * kk + q_chunk) ^ sw) << 4));
    }

    float acc_o[MT][DB][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < DB; j++)
            acc_o[mt][j][0] = acc_o[mt][j][1] = acc_o[mt][j][2] = acc_o[mt][j][3] = 0.f;
    float m_r[MT][2], l_r[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
        m_r[mt][0] = m_r[mt][1] = -INFINITY, l_r[mt][0] = l_r[mt][1] = 0.f;

    /* Scores go to log2 units. Plain path (no softcap/ALiBi, scale > 0): the max is taken on
     * the raw dot products and scale * log2 e folds into the exponent's FFMA. General path:
     * the full transform first, then a factor of 1. */
    const float mul = GEN ? 1.f : p.scale_log2;
    const float slope = GEN && p.alibi ? p.slopes[h * p.sslope] : 0.f;

    for (int n = n_lo; n <= n_hi; n++) {
        /* DBUF: tile n sits in buffer (n - n_lo) & 1; byte offset of that buffer */
        const uint32_t bo = C::DBUF ? (uint32_t)((n - n_lo) & 1) * (BN * D * 2) : 0u;
        if constexpr (C::DBUF) {
            /* K(n), V(n) (and Q) are here; everyone is done with tile n-1, whose buffer
             * now takes tile n+1 (it loads during all of tile n's work): one barrier per tile */
            bk_cp_async_wait_group<0>();
            __syncthreads();
            if (n < n_hi) {
                const int o = (int)(BN * D) - (int)(bo / 2); /* element offset of the other buffer */
                load_tile<T, BN, D, NT>(sK + o, kb, (long long)(n + 1) * BN, p.Sk, p.aligned, tid);
                load_tile<T, BN, D, NT>(sV + o, vb, (long long)(n + 1) * BN, p.Sk, p.aligned, tid);
            }
            bk_cp_async_commit();
        } else {
            bk_cp_async_wait_group<0>(); /* K(n) (and Q) are here; everyone is done with V(n-1) */
            __syncthreads();
            load_tile<T, BN, D, NT>(sV, vb, (long long)n * BN, p.Sk, p.aligned, tid);
            bk_cp_async_commit();
        }

        float s[MT][NB][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NB; j++)
                s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if constexpr (C::QREG) {
                    a[mt][0] = qf[mt][kk][0], a[mt][1] = qf[mt][kk][1];
                    a[mt][2] = qf[mt][kk][2], a[mt][3] = qf[mt][kk][3];
                } else {
                    bk_ldsm_x4(a[mt], sQa + mt * 16 * D * 2 + (((2 * kk + q_chunk) ^ sw) << 4));
                }
            }
#pragma unroll
            for (int jp = 0; jp < NB / 2; jp++) {
                uint32_t bf[4];
                bk_ldsm_x4(bf, sKa + bo + jp * 16 * D * 2 + (((2 * kk + k_chunk) ^ sw) << 4));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    bk_mma16<T>::mma(s[mt][2 * jp], a[mt], bf[0], bf[1]);
                    bk_mma16<T>::mma(s[mt][2 * jp + 1], a[mt], bf[2], bf[3]);
                }
            }
        }
        if constexpr (!C::DBUF) {
            bk_cp_async_wait_group<0>(); /* V(n) is here; everyone is done with K(n) */
            __syncthreads();
            if (n < n_hi)
                load_tile<T, BN, D, NT>(sK, kb, (long long)(n + 1) * BN, p.Sk, p.aligned, tid);
            bk_cp_async_commit();
        }

        const long long nBN = (long long)n * BN;
        const int rbase = warp * 16 * MT + g;
        if constexpr (GEN)
            score_transform<MT, NB>(p, s, slope, m0, rbase, nBN, t4);
        if (n < kt.nf_lo || n > kt.nf_hi)
            mask_tile<MT, NB, BN>(p, s, m0, rbase, nBN, t4);
        uint32_t pk[MT][NB][2];
        softmax_step<T, MT, NB, DB, C::LAZY>(s, m_r, l_r, acc_o, pk, mul);
        /* O += P V */
#pragma unroll
        for (int kb2 = 0; kb2 < BN / 16; kb2++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                a[mt][0] = pk[mt][2 * kb2][0];
                a[mt][1] = pk[mt][2 * kb2][1];
                a[mt][2] = pk[mt][2 * kb2 + 1][0];
                a[mt][3] = pk[mt][2 * kb2 + 1][1];
            }
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t bf[4];
                bk_ldsm_x4_trans(bf, sVa + bo + kb2 * 16 * D * 2 + (((2 * dp + v_chunk) ^ sw) << 4));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    bk_mma16<T>::mma(acc_o[mt][2 * dp], a[mt], bf[0], bf[1]);
                    bk_mma16<T>::mma(acc_o[mt][2 * dp + 1], a[mt], bf[2], bf[3]);
                }
            }
        }
    }
    bk_cp_async_wait_group<0>();
    store_rows<T, MT, DB>(p, acc_o, m_r, l_r, b, h, m0, warp * 16 * MT + g, t4);
}

/* ------------------------------------------- 3. Hopper warpgroup-MMA kernel -- */

/* Rows [row0, row0 + ROWS) of a [*, D] view into the 128-byte-swizzled tile at shared byte
 * address s, laid out as wgmma's canonical atoms: [D / 64 column blocks][ROWS][64], 16-byte
 * chunk c of row r at chunk c ^ (r & 7) of its 128-byte row. cp.async only (rows 16-byte
 * aligned); rows at or past `limit` are zero-filled. */
template <typename T, int ROWS, int D, int NT, typename SRC>
static __device__ __forceinline__ void load_tile_sw128(uint32_t s, const SRC &src_rows, long long row0, long long limit,
                                                       int tid)
{
    constexpr int C = D / 8;
    static_assert(ROWS * C % NT == 0, "tile must split evenly over the threads");
#pragma unroll
    for (int it = 0; it < ROWS * C / NT; it++) {
        const int idx = tid + it * NT, r = idx / C, c = idx % C;
        const uint32_t dst = s + (uint32_t)((c >> 3) * ROWS * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
        bool ok = row0 + r < limit;
        const T *src = (ok ? src_rows.at(row0 + r, ok) : src_rows.base()) + c * 8;
        bk_cp_async16(dst, src, ok ? 16 : 0);
    }
}

/* sdpa_fwd_wgmma_kernel<T, D, BN, NWG, GEN> (sm_90a; f16/bf16, Dqk == Dv in {64, 128, 256},
 * 16-byte aligned rows; every option): NWG consumer warpgroups, warpgroup w owns query rows
 * [m0 + 64 w, m0 + 64 w + 64). Q (BM = 64 NWG rows) stays in shared memory; K and V tiles of
 * BN keys are double-buffered (cp.async by all threads, tile n+1 loads during tile n; one
 * barrier per tile). S = Q K^T: D / 16 wgmma m64nBNk16 from shared memory (both K-major);
 * mask / online softmax exactly as the mma.sync kernel (same helpers; the wgmma
 * accumulator layout is the mma.sync one tiled); P packed to T in registers is the A operand
 * of O += P V: BN / 16 wgmma m64nDk16 with V N-major ("transposed") from shared memory. */
template <typename T, int D, int BN, int NWG, bool GEN, bool PAGED>
__global__ void __launch_bounds__(NWG * 128, 1) sdpa_fwd_wgmma_kernel(const sdpa_params p0)
{
#if BK_HAS_WGMMA
    constexpr int NT = NWG * 128, BM = NWG * 64, NB = BN / 8, DB = D / 8;
    constexpr uint32_t TILE = BN * D * 2; /* bytes of one K or V tile */
    extern __shared__ __align__(1024) unsigned char smem_wg[];
    const uint32_t sQ = (bk_smem_addr(smem_wg) + 1023u) & ~1023u, sK = sQ + BM * D * 2, sV = sK + 2 * TILE;
    sdpa_params p = p0;
    long long b = 0, h, tile, first = 0;
    if (PAGED ? !cta_paged(p, BM, b, h, tile, first) : !cta_bh(p, b, h, tile))
        return;
    const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32, g = lane >> 2, t4 = lane & 3;
    const long long hk = h / p.group;
    const long long m0 = tile * BM;
    const dense_rows<T> qb = {(const T *)p.q + b * p.sq.s0 + h * p.sq.s1, p.sq.s2};
    typedef typename kv_rows_of<T, D, PAGED>::type kv_rows;
    const kv_rows kb = kv_rows_of<T, D, PAGED>::make(p.k, p, b, hk, first, p.sk);
    const kv_rows vb = kv_rows_of<T, D, PAGED>::make(p.v, p, b, hk, first, p.sv);
    const key_tiles kt = key_tile_range<BN>(p, m0, BM);

    load_tile_sw128<T, BM, D, NT>(sQ, qb, m0, p.Sq, tid);
    if (kt.n_hi >= kt.n_lo) {
        load_tile_sw128<T, BN, D, NT>(sK, kb, (long long)kt.n_lo * BN, p.Sk, tid);
        load_tile_sw128<T, BN, D, NT>(sV, vb, (long long)kt.n_lo * BN, p.Sk, tid);
    }
    bk_cp_async_commit();

    float acc_o[1][DB][4];
    float(&of)[DB * 4] = reinterpret_cast<float(&)[DB * 4]>(acc_o);
#pragma unroll
    for (int i = 0; i < DB * 4; i++)
        of[i] = 0.f;
    float m_r[1][2] = {{-INFINITY, -INFINITY}}, l_r[1][2] = {{0.f, 0.f}};
    const float mul = GEN ? 1.f : p.scale_log2;
    const float slope = GEN && p.alibi ? p.slopes[h * p.sslope] : 0.f;
    const int rbase = wg * 64 + warp * 16 + g;
    /* this warpgroup's Q rows: column block kb at sQ + kb * BM * 128 + wg * 64 * 128 */
    const uint32_t qa = sQ + wg * 64 * 128;

    for (int n = kt.n_lo; n <= kt.n_hi; n++) {
        const uint32_t bo = (uint32_t)((n - kt.n_lo) & 1) * TILE;
        /* K(n), V(n) (and Q) are here and visible to the tensor cores; everyone is done with
         * tile n-1, whose buffers take tile n+1 */
        bk_cp_async_wait_group<0>();
        bk_fence_proxy_async();
        __syncthreads();
        if (n < kt.n_hi) {
            load_tile_sw128<T, BN, D, NT>(sK + (TILE - bo), kb, (long long)(n + 1) * BN, p.Sk, tid);
            load_tile_sw128<T, BN, D, NT>(sV + (TILE - bo), vb, (long long)(n + 1) * BN, p.Sk, tid);
        }
        bk_cp_async_commit();

        float s[1][NB][4];
        float(&sf)[NB * 4] = reinterpret_cast<float(&)[NB * 4]>(s);
        bk_wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const uint32_t koff = (uint32_t)(kk & 3) * 32; /* k16 step inside the 64-column block */
            const uint64_t da = bk_wgmma_desc(qa + (kk >> 2) * BM * 128 + koff, 16, 1024);
            const uint64_t db = bk_wgmma_desc(sK + bo + (kk >> 2) * BN * 128 + koff, 16, 1024);
            bk_wgmma<T, BN>::ss(sf, da, db, kk > 0);
        }
        bk_wgmma_commit();
        bk_wgmma_wait<0>();
        bk_wgmma_pin(sf);

        const long long nBN = (long long)n * BN;
        if constexpr (GEN)
            score_transform<1, NB>(p, s, slope, m0, rbase, nBN, t4);
        if (n < kt.nf_lo || n > kt.nf_hi)
            mask_tile<1, NB, BN>(p, s, m0, rbase, nBN, t4);
        uint32_t pk[1][NB][2];
        softmax_step<T, 1, NB, DB, true>(s, m_r, l_r, acc_o, pk, mul);

        /* O += P V */
        bk_wgmma_pin(of);
        bk_wgmma_fence();
#pragma unroll
        for (int kb2 = 0; kb2 < BN / 16; kb2++) {
            const uint32_t a[4] = {pk[0][2 * kb2][0], pk[0][2 * kb2][1], pk[0][2 * kb2 + 1][0], pk[0][2 * kb2 + 1][1]};
            const uint64_t db = bk_wgmma_desc(sV + bo + kb2 * 16 * 128, BN * 128, 1024);
            bk_wgmma<T, D>::rs(of, a, db, 1);
        }
        bk_wgmma_commit();
        bk_wgmma_wait<0>();
        bk_wgmma_pin(of);
    }
    bk_cp_async_wait_group<0>();
    store_rows<T, 1, DB>(p, acc_o, m_r, l_r, b, h, m0, rbase, t4);
#else
    (void)p0;
#endif
}

/* ------------------------------------------------------------ launchers -- */

/* rows: the kernel's query tile (for the grid order). */
static sdpa_params make_params(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, int rows)
{
    sdpa_params p;
    p.q = a->q.data;
    p.k = a->k.data;
    p.v = a->v.data;
    p.y = a->y.data;
    p.lse = a->lse ? (float *)a->lse->data : NULL;
    p.sl0 = a->lse ? a->lse->strides[0] : 0;
    p.sl1 = a->lse ? a->lse->strides[1] : 0;
    p.sl2 = a->lse ? a->lse->strides[2] : 0;
    p.slopes = d->alibi ? (const float *)a->alibi_slopes->data : NULL;
    p.sslope = d->alibi ? a->alibi_slopes->strides[0] : 0;
    p.sq = bk_view4_of(&a->q);
    p.sk = bk_view4_of(&a->k);
    p.sv = bk_view4_of(&a->v);
    p.sy = bk_view4_of(&a->y);
    p.B = d->batch;
    p.Hq = d->q_heads;
    p.group = d->q_heads / d->kv_heads;
    p.Sq = d->q_len;
    p.Sk = d->kv_len;
    p.Dqk = d->head_dim_qk;
    p.Dv = d->head_dim_v;
    p.window = d->window_left;
    p.causal = d->causal;
    p.alibi = d->alibi;
    p.scale = d->scale;
    p.softcap = d->softcap;
    p.scale_log2 = (float)(d->scale * 1.4426950408889634);
    /* cp.async needs 16-byte aligned rows: base pointers and every outer stride */
    bool al = true;
    const bk_tensor *ts[3] = {&a->q, &a->k, &a->v};
    for (int t = 0; t < 3; t++) {
        al = al && ((uintptr_t)ts[t]->data % 16) == 0;
        for (int ax = 0; ax < 3; ax++)
            al = al && (ts[t]->strides[ax] * (long long)bk_dtype_size(d->dtype)) % 16 == 0;
    }
    p.aligned = al;
    /* Causal tiles differ in work: tile-major (heaviest tiles of every head first) when
     * the grid fits its limits (x < 2^31, y <= 65535); non-causal keeps head-major. */
    const long long bh = (long long)d->batch * d->q_heads, tiles = ((long long)d->q_len + rows - 1) / rows;
    p.tile_major = d->causal && bh < 2147483647LL && tiles <= 65535;
    return p;
}

/* Grid: tile-major x = the B * Hq pairs, y = query tiles; else x = query tiles, (y, z) =
 * the B * Hq pairs. */
static dim3 make_grid(const bk_sdpa_fwd_desc *d, int rows, bool tile_major)
{
    const long long bh = (long long)d->batch * d->q_heads;
    if (tile_major)
        return dim3((unsigned)bh, (unsigned)((d->q_len + rows - 1) / rows), 1);
    const unsigned y = (unsigned)(bh < 65535 ? bh : 65535);
    return dim3((unsigned)((d->q_len + rows - 1) / rows), y, (unsigned)((bh + y - 1) / y));
}

/* Opts a kernel into `bytes` of dynamic shared memory (above the 48 KiB default). */
template <typename K> static bk_status set_smem(K kernel, size_t bytes)
{
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_fwd: cannot give the kernel %zu bytes of shared memory: %s",
                       bytes, cudaGetErrorString(e));
    return BK_STATUS_SUCCESS;
}

template <typename T>
static bk_status launch_generic(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, cudaStream_t s)
{
    typedef typename elem<T>::acc acc;
    const size_t smem = ((size_t)kGenRows * d->head_dim_qk + (size_t)kGenKeys * (d->head_dim_qk + 1) +
                         (size_t)kGenKeys * d->head_dim_v) * sizeof(acc);
    if (smem > 48 * 1024)
        BK_TRY(set_smem(sdpa_fwd_generic_kernel<T>, smem));
    const sdpa_params p = make_params(d, a, kGenRows);
    sdpa_fwd_generic_kernel<T><<<make_grid(d, kGenRows, p.tile_major), kGenWarps * 32, smem, s>>>(p);
    return bk_cuda_check_launch("sdpa_fwd");
}

extern "C" bk_status bk_cuda_sdpa_fwd_generic(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream)
{
    if ((long long)d->batch * d->q_heads * d->q_len == 0)
        return BK_STATUS_SUCCESS;
    bk_status st = BK_STATUS_SUCCESS;
    BK_DISPATCH_FLOAT(d->dtype, T, st = launch_generic<T>(d, a, (cudaStream_t)stream));
    return st;
}

template <typename T, typename C, bool GEN>
static bk_status launch_mma_gen(const bk_sdpa_fwd_desc *d, const sdpa_params &p, cudaStream_t s)
{
    const int BM = C::NW * 16 * C::MT;
    const size_t smem = (size_t)(BM + (C::DBUF ? 4 : 2) * C::BN) * C::D * sizeof(T);
    if (smem > 48 * 1024)
        BK_TRY(set_smem(sdpa_fwd_mma_kernel<T, C, GEN, false>, smem));
    sdpa_fwd_mma_kernel<T, C, GEN, false><<<make_grid(d, BM, p.tile_major), C::NW * 32, smem, s>>>(p);
    return bk_cuda_check_launch("sdpa_fwd");
}

/* Two instantiations per tile: the plain one (no softcap/ALiBi, scale > 0: the scale folds
 * into the exponent) carries no code of the general score transform. */
template <typename T, typename C>
static bk_status launch_mma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, cudaStream_t s)
{
    const sdpa_params p = make_params(d, a, C::NW * 16 * C::MT);
    if (p.softcap > 0.0 || p.alibi || !(p.scale_log2 > 0.f))
        return launch_mma_gen<T, C, true>(d, p, s);
    return launch_mma_gen<T, C, false>(d, p, s);
}

/* Tiles per head dim (fwd_cfg<D, BN, NW, MT, MINB, QREG, LAZY, DBUF>). */
typedef fwd_cfg<64, 64, 4, 2, 2, false, true, true> cfg_d64;
typedef fwd_cfg<128, 32, 4, 2, 2, false, true, true> cfg_d128;
typedef fwd_cfg<128, 32, 8, 2, 1, false, true, true> cfg_d128_wide; /* 256 rows: non-causal D 128 */
typedef fwd_cfg<256, 64, 8, 1, 1, false, true, true> cfg_d256;

template <typename T>
static bk_status launch_mma_dim(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, cudaStream_t s)
{
    switch (d->head_dim_qk) {
    case 64: return launch_mma<T, cfg_d64>(d, a, s);
    case 128:
        /* non-causal: one CTA of 8 warps x 32 rows per SM shares each K/V tile among twice
         * the rows (bk_bench H100: 303 TFLOP/s, against 268 for the 128-row tile, which the
         * standalone timing loop had put ahead); causal keeps 128 rows (fewer wasted
         * diagonal tiles, 263-285) */
        if (!d->causal)
            return launch_mma<T, cfg_d128_wide>(d, a, s);
        return launch_mma<T, cfg_d128>(d, a, s);
    default: return launch_mma<T, cfg_d256>(d, a, s);
    }
}

/* The Hopper kernel's tiles: BN keys per tile (64 at D 256, where O takes 128 registers),
 * NWG warpgroups of 64 query rows. Shared memory: Q, two K and two V tiles, 1 KiB for the
 * 1024-byte alignment of the swizzle atoms. */
template <int D> struct wg_cfg {
    static constexpr int BN = D == 256 ? 64 : 128, NWG = 2;
    static constexpr size_t smem(size_t elem) { return (size_t)(NWG * 64 + 4 * BN) * D * elem + 1024; }
};

template <typename T, int D, bool GEN>
static bk_status launch_wgmma_gen(const bk_sdpa_fwd_desc *d, const sdpa_params &p, cudaStream_t s)
{
    typedef wg_cfg<D> C;
    const size_t smem = C::smem(sizeof(T));
    BK_TRY(set_smem(sdpa_fwd_wgmma_kernel<T, D, C::BN, C::NWG, GEN, false>, smem));
    sdpa_fwd_wgmma_kernel<T, D, C::BN, C::NWG, GEN, false>
        <<<make_grid(d, C::NWG * 64, p.tile_major), C::NWG * 128, smem, s>>>(p);
    return bk_cuda_check_launch("sdpa_fwd");
}

/* True when this build carries sm_90a code of the Hopper kernel for the current device
 * (built for 90a and running on a 9.x device); else the mma.sync kernel runs instead. */
template <typename T, int D> static bool wgmma_built()
{
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, sdpa_fwd_wgmma_kernel<T, D, wg_cfg<D>::BN, wg_cfg<D>::NWG, false, false>) !=
        cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return fa.binaryVersion == 90;
}

template <typename T, int D>
static bk_status launch_wgmma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, cudaStream_t s)
{
    const sdpa_params p = make_params(d, a, wg_cfg<D>::NWG * 64);
    if (!p.aligned || !wgmma_built<T, D>())
        return launch_mma_dim<T>(d, a, s);
    if (p.softcap > 0.0 || p.alibi || !(p.scale_log2 > 0.f))
        return launch_wgmma_gen<T, D, true>(d, p, s);
    return launch_wgmma_gen<T, D, false>(d, p, s);
}

template <typename T>
static bk_status launch_wgmma_dim(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, cudaStream_t s)
{
    switch (d->head_dim_qk) {
    case 64: return launch_wgmma<T, 64>(d, a, s);
    case 128: return launch_wgmma<T, 128>(d, a, s);
    default: return launch_wgmma<T, 256>(d, a, s);
    }
}

extern "C" bk_status bk_cuda_sdpa_fwd_wgmma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream)
{
    if ((long long)d->batch * d->q_heads * d->q_len == 0)
        return BK_STATUS_SUCCESS;
    cudaStream_t s = (cudaStream_t)stream;
    if (d->dtype == BK_DTYPE_BF16)
        return launch_wgmma_dim<__nv_bfloat16>(d, a, s);
    return launch_wgmma_dim<__half>(d, a, s);
}

extern "C" bk_status bk_cuda_sdpa_fwd_mma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream)
{
    if ((long long)d->batch * d->q_heads * d->q_len == 0)
        return BK_STATUS_SUCCESS;
    cudaStream_t s = (cudaStream_t)stream;
    if (d->dtype == BK_DTYPE_BF16)
        return launch_mma_dim<__nv_bfloat16>(d, a, s);
    return launch_mma_dim<__half>(d, a, s);
}

/* ----------------------------------------------------- paged prefill (tensor cores) -- */

/* The paged prefill on kernel 2 (sm80) or 3 (hopper, when built and the rows are 16-byte
 * aligned): one CTA per (row tile of a request, q head), tiles found on the device from
 * q_indptr (cta_paged), K/V rows gathered from the pages by the tile loaders
 * (paged_rows). Asynchronous, no host data, graph-capturable. */
template <typename T, int D, bool GEN>
static bk_status launch_paged_gen(const bk_paged_prefill_desc *d, const sdpa_params &p, bool hopper, cudaStream_t s)
{
    const int BM = hopper ? wg_cfg<D>::NWG * 64 : 128;
    const long long ids = (long long)d->batch + d->total_rows / BM + 1;
    if (ids > 0x7fffffffLL || d->q_heads > 65535)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_prefill: %lld tiles x %d heads is too large a grid", ids,
                       (int)d->q_heads);
    const dim3 grid((unsigned)ids, (unsigned)d->q_heads);
    if (hopper) {
        typedef wg_cfg<D> C;
        const size_t smem = C::smem(sizeof(T));
        BK_TRY(set_smem(sdpa_fwd_wgmma_kernel<T, D, C::BN, C::NWG, GEN, true>, smem));
        sdpa_fwd_wgmma_kernel<T, D, C::BN, C::NWG, GEN, true><<<grid, C::NWG * 128, smem, s>>>(p);
    } else {
        /* 128 query rows: 4 warps x 2 atoms (8 warps x 1 at D 256), as the dense kernel */
        typedef typename std::conditional<D == 64, cfg_d64, typename std::conditional<D == 128, cfg_d128, cfg_d256>::type>::type C;
        static_assert(C::NW * 16 * C::MT == 128, "paged tiles are 128 rows");
        const size_t smem = (size_t)(128 + (C::DBUF ? 4 : 2) * C::BN) * C::D * sizeof(T);
        if (smem > 48 * 1024)
            BK_TRY(set_smem(sdpa_fwd_mma_kernel<T, C, GEN, true>, smem));
        sdpa_fwd_mma_kernel<T, C, GEN, true><<<grid, C::NW * 32, smem, s>>>(p);
    }
    return bk_cuda_check_launch("paged_prefill");
}

template <typename T, int D>
static bk_status launch_paged(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a, bool hopper,
                              cudaStream_t s)
{
    const bk_paged_kv_desc *pd = &d->paged_kv;
    sdpa_params p;
    memset(&p, 0, sizeof p);
    p.q = a->q.data;
    p.k = a->kv.k_pages.data;
    p.v = a->kv.v_pages.data;
    p.y = a->o.data;
    p.lse = a->lse ? (float *)a->lse->data : NULL;
    /* rows ragged over the batch: the CTA's "batch" index is its request's first row
     * (cta_paged), so the batch strides are the row strides */
    p.sq = {a->q.strides[0], a->q.strides[1], a->q.strides[0], 1};
    p.sy = {a->o.strides[0], a->o.strides[1], a->o.strides[0], 1};
    p.sl0 = a->lse ? a->lse->strides[0] : 0;
    p.sl1 = a->lse ? a->lse->strides[1] : 0;
    p.sl2 = a->lse ? a->lse->strides[0] : 0;
    p.B = d->batch;
    p.Hq = d->q_heads;
    p.group = d->q_heads / pd->kv_heads;
    p.Dqk = p.Dv = pd->head_dim;
    p.window = -1;
    p.causal = d->causal;
    p.alibi = false;
    p.scale = d->scale;
    p.softcap = 0.0;
    p.scale_log2 = (float)(d->scale * 1.4426950408889634);
    p.t = table_of(pd, &a->kv);
    p.q_indptr = (const int *)a->q_indptr.data;
    p.total_rows = d->total_rows;
    const size_t es = sizeof(T);
    p.aligned = ((uintptr_t)a->q.data % 16) == 0 && (a->q.strides[0] * es) % 16 == 0 && (a->q.strides[1] * es) % 16 == 0 &&
                ((uintptr_t)p.k % 16) == 0 && ((uintptr_t)p.v % 16) == 0;
    p.tile_major = false;
    hopper = hopper && p.aligned && wgmma_built<T, D>();
    if (!(p.scale_log2 > 0.f))
        return launch_paged_gen<T, D, true>(d, p, hopper, s);
    return launch_paged_gen<T, D, false>(d, p, hopper, s);
}

template <typename T>
static bk_status launch_paged_dim(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a, bool hopper,
                                  cudaStream_t s)
{
    switch (d->paged_kv.head_dim) {
    case 64: return launch_paged<T, 64>(d, a, hopper, s);
    case 128: return launch_paged<T, 128>(d, a, hopper, s);
    default: return launch_paged<T, 256>(d, a, hopper, s);
    }
}

extern "C" bk_status bk_cuda_paged_prefill_tc(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a,
                                              bool hopper, void *stream)
{
    if (d->total_rows == 0)
        return BK_STATUS_SUCCESS;
    if (((uintptr_t)a->kv.k_pages.data | (uintptr_t)a->kv.v_pages.data) % 16 != 0)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_prefill: k_pages / v_pages are not 16-byte aligned, expected "
                                              "16-byte aligned pools on CUDA");
    cudaStream_t s = (cudaStream_t)stream;
    if (d->paged_kv.dtype == BK_DTYPE_BF16)
        return launch_paged_dim<__nv_bfloat16>(d, a, hopper, s);
    return launch_paged_dim<__half>(d, a, hopper, s);
}
