/* sdpa_fwd_tiles.cuh - what the flash-attention forward kernels share (sdpa_fwd.cu: the
 * CUDA-core and mma.sync kernels; sdpa_fwd_sm90.cu: the Hopper kernel): the parameter
 * block, the CTA -> (batch, head, query tile) maps for dense and paged problems, the K/V row
 * sources, the key-tile range of a query tile, the score transform, the masks, the online
 * softmax, the stores, the swizzled tile loader and the host-side parameter setup. The math
 * is in sdpa_fwd.cu's header. */
#ifndef BK_CUDA_SDPA_FWD_TILES_CUH
#define BK_CUDA_SDPA_FWD_TILES_CUH
#include "common.cuh"
#include "cuda/paged_cuda.h"
#include "cuda/sdpa_fwd_cuda.h"
#include "paged_table.cuh"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct sdpa_params {
    const void *q, *k, *v;
    void *y;
    float *lse;
    const float *slopes;
    bk_view4 sq, sk, sv, sy;
    long long sl0, sl1, sl2, sslope;
    int B, Hq, group, Sq, Sk, Dqk, Dv, window;
    bool causal, alibi, aligned;
    bool y16; /* y's rows start on 16 bytes (base and every stride): store_rows' 16-byte path */
    bool tile_major; /* grid x = (b, h), y = query tile (see make_grid) */
    double scale, softcap;
    float scale_log2; /* scale * log2(e), for the tensor-core kernel's plain path */
    /* paged prefill (PAGED kernels): K/V rows come from the page table; request b owns query
     * rows [q_indptr[b], q_indptr[b+1]) of q / y / lse (see cta_paged) */
    paged_table t;
    const int *q_indptr;
    int total_rows;
    /* log2 of the q heads packed into one tile (GQA packing, the Hopper kernel's paged
     * units; 0 elsewhere): tile row r is query row m0 + (r >> qpack) of q head
     * h + (r & (2^qpack - 1)), h the unit's first q head (tile_row_pos) */
    int qpack;
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
static __device__ __forceinline__ bool paged_tile(sdpa_params &p, int BM, int id, int head, long long &b, long long &h,
                                                  long long &tile, long long &first)
{
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
    h = head;
    p.Sq = (int)rows;
    p.Sk = (int)min(paged_len(p.t, lo, first), 0x7fffffffLL);
    b = r0; /* the "batch" offset: the batch strides of q / y / lse are their row strides */
    return true;
}

/* paged_tile for the one-CTA-per-tile grid: x = tile id, y = q head. */
static __device__ __forceinline__ bool cta_paged(sdpa_params &p, int BM, long long &b, long long &h, long long &tile,
                                                 long long &first)
{
    return paged_tile(p, BM, (int)blockIdx.x, (int)blockIdx.y, b, h, tile, first);
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



/* floor(a / b) for b > 0 */
static __device__ __forceinline__ long long floordiv(long long a, long long b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}


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

/* The query row of a thread's tile row r = rbase + 16 mt + 8 hr (its fragment rows) in a
 * tile whose first query row is m0, and its q head counted from the tile's first; PACKED:
 * the kernel may pack heads (p.qpack read), else r is the row and the head the tile's. */
template <bool PACKED>
static __device__ __forceinline__ long long tile_row_pos(const sdpa_params &p, long long m0, int rbase, int mt, int hr)
{
    return PACKED ? m0 + ((rbase + mt * 16 + 8 * hr) >> p.qpack) : m0 + rbase + mt * 16 + 8 * hr;
}
template <bool PACKED> static __device__ __forceinline__ int tile_row_head(const sdpa_params &p, int r)
{
    return PACKED ? r & ((1 << p.qpack) - 1) : 0;
}

/* The score fragments of one thread: s[mt][j][e] is tile row rbase + mt * 16 + 8 * (e >> 1)
 * (query row tile_row_pos of it), key nBN + 8 * j + 2 * t4 + (e & 1) (the mma.sync / wgmma
 * accumulator layout). */

/* GEN: the general transform of the raw dot products (scale, softcap, ALiBi), to log2 units. */
template <int MT, int NB, bool PACKED = false>
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
            const float d0 = (float)(nBN + 2 * t4 - (tile_row_pos<PACKED>(p, m0, rbase, mt, hr) + off));
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
template <int MT, int NB, int BN, bool PACKED = false>
static __device__ __forceinline__ void mask_tile(const sdpa_params &p, float (&s)[MT][NB][4], long long m0,
                                                 int rbase, long long nBN, int t4)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            long long lo, hi;
            row_keys(p, tile_row_pos<PACKED>(p, m0, rbase, mt, hr), lo, hi);
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

/* The online softmax over a tile of scores, in three parts so that a kernel can compute
 * P while its previous P V product is still in flight and rescale O afterwards
 * (softmax_step runs them back to back). 2 * MT rows per thread; the 4 lanes of a quad
 * share a row. LAZY: a row keeps its reference max m_r until a tile's max exceeds it by
 * more than kLazy (log2 units), so P <= 2^kLazy and the O rescale runs only when some row
 * of the warp moved (warp-uniform). Exact either way: O / l and lse = m_r + log2 l. */

/* Part 1: the tile's row maxima (shuffles across the quad); moves m_r and sets the rescale
 * factors corr_r of O and l. Returns whether O must be rescaled (warp-uniform). */
template <int MT, int NB, bool LAZY>
static __device__ __forceinline__ bool softmax_max(const float (&s)[MT][NB][4], float (&m_r)[MT][2],
                                                   float (&corr_r)[MT][2], float mul)
{
    float mx_r[MT][2];
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
    }
    return upd;
}

/* Part 2a: P = 2^(s * mul - m) in place (f32) and l = l * corr + rowsum(P). FMA_EVERY > 0:
 * every FMA_EVERY-th key block's exponentials by bk_ex2_fma, taking load off the MUFU pipe
 * where the softmax, not the tensor cores, sets the pace (head dim 64). */
template <int MT, int NB, int FMA_EVERY = 0>
static __device__ __forceinline__ void softmax_exp_f32(float (&s)[MT][NB][4], const float (&m_r)[MT][2],
                                                       float (&l_r)[MT][2], const float (&corr_r)[MT][2], float mul)
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const float muse = m_r[mt][hr] == -INFINITY ? 0.f : m_r[mt][hr];
            float rs = 0.f;
#pragma unroll
            for (int j = 0; j < NB; j++) {
                const float x0 = fmaf(s[mt][j][2 * hr], mul, -muse), x1 = fmaf(s[mt][j][2 * hr + 1], mul, -muse);
                const bool fma_pipe = FMA_EVERY > 0 && j % (FMA_EVERY > 0 ? FMA_EVERY : 1) == FMA_EVERY - 1;
                const float p0 = fma_pipe ? bk_ex2_fma(x0) : bk_ex2(x0), p1 = fma_pipe ? bk_ex2_fma(x1) : bk_ex2(x1);
                rs += p0;
                rs += p1;
                s[mt][j][2 * hr] = p0;
                s[mt][j][2 * hr + 1] = p1;
            }
            l_r[mt][hr] = l_r[mt][hr] * corr_r[mt][hr] + rs;
        }
}

/* Part 2b: P (from softmax_exp_f32) rounded to T and packed into pk (pk[mt][j][hr]: row
 * half hr, keys 8 j + 2 t4 + {0, 1}: the A fragment of P V). */
template <typename T, int MT, int NB>
static __device__ __forceinline__ void softmax_pack(const float (&p)[MT][NB][4], uint32_t (&pk)[MT][NB][2])
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int hr = 0; hr < 2; hr++)
                pk[mt][j][hr] = bk_mma16<T>::pack(p[mt][j][2 * hr], p[mt][j][2 * hr + 1]);
}

/* Part 3: O *= corr, row by row. */
template <int MT, int DB>
static __device__ __forceinline__ void softmax_rescale_o(float (&acc_o)[MT][DB][4], const float (&corr_r)[MT][2])
{
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

/* One whole online-softmax step (O in registers, no MMA in flight); FMA_EVERY as softmax_exp. */
template <typename T, int MT, int NB, int DB, bool LAZY, int FMA_EVERY = 0>
static __device__ __forceinline__ void softmax_step(float (&s)[MT][NB][4], float (&m_r)[MT][2], float (&l_r)[MT][2],
                                                    float (&acc_o)[MT][DB][4], uint32_t (&pk)[MT][NB][2], float mul)
{
    float corr_r[MT][2];
    if (softmax_max<MT, NB, LAZY>(s, m_r, corr_r, mul))
        softmax_rescale_o<MT, DB>(acc_o, corr_r);
    softmax_exp_f32<MT, NB, FMA_EVERY>(s, m_r, l_r, corr_r, mul);
    softmax_pack<T, MT, NB>(s, pk);
}

/* y = O / l and lse = (m + log2 l) ln 2 of the thread's tile rows rbase + mt * 16 + 8 hr of
 * (b, h): query row tile_row_pos, q head h + (r & (2^qpack - 1)); rows at or past Sq are
 * skipped. */
/* The quad's 4 x 4 transpose: lane t4 of each group of 4 lanes holds w[i] = M[t4][i] and
 * ends with M[i][t4] (two xor-shuffle stages, swapping the words whose position bit differs
 * from the lane's). */
static __device__ __forceinline__ void quad_transpose(uint32_t (&w)[4], int t4)
{
#pragma unroll
    for (int m = 2; m >= 1; m /= 2) {
        const bool hi = (t4 & m) != 0;
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int lo_pos = m == 2 ? i : 2 * i, hi_pos = lo_pos + m; /* positions with bit m clear / set */
            const uint32_t r = __shfl_xor_sync(0xffffffffu, hi ? w[lo_pos] : w[hi_pos], m);
            if (hi)
                w[lo_pos] = r;
            else
                w[hi_pos] = r;
        }
    }
}

template <typename T, int MT, int DB, bool PACKED = false>
static __device__ __forceinline__ void store_rows(const sdpa_params &p, const float (&acc_o)[MT][DB][4],
                                                  const float (&m_r)[MT][2], const float (&l_r)[MT][2], long long b,
                                                  long long h, long long m0, int rbase, int t4)
{
    T *yh = (T *)p.y + b * p.sy.s0 + h * p.sy.s1; /* the tile's first head */
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float l = l_r[mt][hr];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const long long i = tile_row_pos<PACKED>(p, m0, rbase, mt, hr);
            const int dh = tile_row_head<PACKED>(p, rbase + mt * 16 + 8 * hr); /* the row's head: h + dh */
            T *yb = yh + dh * p.sy.s1;
            const bool row_in = i < p.Sq; /* the quad's row; every lane still shuffles */
            const float inv = l > 0.f ? 1.f / l : 0.f;
            if (DB % 4 == 0 && p.y16) {
                /* the quad's words of 4 column blocks transposed: lane t4 stores block
                   4 k + t4 (8 columns, 16 bytes) of its row, 64 contiguous bytes per quad */
                T *yr = yb + i * p.sy.s2 + 8 * t4;
#pragma unroll
                for (int k = 0; k < DB / 4; k++) {
                    uint32_t w[4];
#pragma unroll
                    for (int jj = 0; jj < 4; jj++)
                        w[jj] = bk_mma16<T>::pack(acc_o[mt][4 * k + jj][2 * hr] * inv,
                                                  acc_o[mt][4 * k + jj][2 * hr + 1] * inv);
                    quad_transpose(w, t4);
                    if (row_in)
                        *reinterpret_cast<uint4 *>(yr + 32 * k) = make_uint4(w[0], w[1], w[2], w[3]);
                }
            } else if (row_in) {
                T *yr = yb + i * p.sy.s2 + 2 * t4;
#pragma unroll
                for (int j = 0; j < DB; j++) {
                    yr[8 * j] = elem<T>::store(acc_o[mt][j][2 * hr] * inv);
                    yr[8 * j + 1] = elem<T>::store(acc_o[mt][j][2 * hr + 1] * inv);
                }
            }
            if (row_in && p.lse && t4 == 0)
                p.lse[b * p.sl0 + (h + dh) * p.sl1 + i * p.sl2] =
                    l > 0.f ? m_r[mt][hr] * 0.6931471805599453f + logf(l) : -INFINITY;
        }
}


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
#pragma unroll 2 /* few registers: the Hopper kernel's producer gathers pages with it */
    for (int it = 0; it < ROWS * C / NT; it++) {
        const int idx = tid + it * NT, r = idx / C, c = idx % C;
        const uint32_t dst = s + (uint32_t)((c >> 3) * ROWS * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
        bool ok = row0 + r < limit;
        const T *src = (ok ? src_rows.at(row0 + r, ok) : src_rows.base()) + c * 8;
        bk_cp_async16(dst, src, ok ? 16 : 0);
    }
}


/* True when every row of a view with strides s (elements of es bytes) starts on 16 bytes. */
static inline bool bk_rows16(const void *base, const bk_view4 &s, size_t es)
{
    const long long e = (long long)es;
    return ((uintptr_t)base % 16) == 0 && (s.s0 * e) % 16 == 0 && (s.s1 * e) % 16 == 0 && (s.s2 * e) % 16 == 0;
}

/* rows: the kernel's query tile (for the grid order). */
static inline sdpa_params make_params(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, int rows)
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
    p.y16 = bk_rows16(a->y.data, p.sy, bk_dtype_size(d->dtype));
    /* Causal tiles differ in work: tile-major (heaviest tiles of every head first) when
     * the grid fits its limits (x < 2^31, y <= 65535); non-causal keeps head-major. */
    const long long bh = (long long)d->batch * d->q_heads, tiles = ((long long)d->q_len + rows - 1) / rows;
    p.tile_major = d->causal && bh < 2147483647LL && tiles <= 65535;
    p.qpack = 0;
    return p;
}

/* Grid: tile-major x = the B * Hq pairs, y = query tiles; else x = query tiles, (y, z) =
 * the B * Hq pairs. */
static inline dim3 make_grid(const bk_sdpa_fwd_desc *d, int rows, bool tile_major)
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


/* The paged prefill's parameter block: K/V from the page table, the CTA's request found
 * on the device from q_indptr (paged_tile). */
static inline sdpa_params make_paged_params(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a)
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
     * (paged_tile), so the batch strides are the row strides */
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
    const size_t es = bk_dtype_size(pd->dtype);
    p.aligned = ((uintptr_t)a->q.data % 16) == 0 && (a->q.strides[0] * es) % 16 == 0 && (a->q.strides[1] * es) % 16 == 0 &&
                ((uintptr_t)p.k % 16) == 0 && ((uintptr_t)p.v % 16) == 0;
    p.y16 = bk_rows16(a->o.data, p.sy, es);
    p.tile_major = false;
    p.qpack = 0;
    return p;
}

/* The Hopper kernel (sdpa_fwd_sm90.cu). */
/* True when this build carries the sm_90a kernel and the current device runs it. */
bool bk_sm90_fwd_built(bk_dtype dtype);
/* Launches it on a dense problem (p from make_params) or a paged one (make_paged_params;
 * the kernel packs the q heads of a kv group into one tile where it can, sm90_qpack). */
bk_status bk_sm90_fwd_launch(const sdpa_params &p, bk_dtype dtype, bool paged, cudaStream_t s);
/* Its query rows per CTA (the tile the grid order and the paged ids are counted in). */
static const int kSm90Rows = 128;

#endif
