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
 *         grid, so the light tiles fill the last wave.
 *
 * 1. sdpa_fwd_generic_kernel<T> (CUDA cores; every dtype and option, head dims 1..256; the
 *    only path for f32 and f64): 4 warps x 4 query rows of one (b, h), 32-key K/V tiles in
 *    shared memory in the compute type, one lane per key, accurate exp/log/tanh.
 * 2. sdpa_fwd_mma_kernel<T, fwd_cfg<D, BN, NW, MT, MINB, QREG, LAZY, DBUF>, GEN> (tensor cores;
 *    f16/bf16, Dqk == Dv in {64,128,256}): FlashAttention-2 on mma.sync. NW warps own BM =
 *    NW * 16 * MT query rows, MT 16-row MMA atoms each; swizzled Q/K/V tiles in shared memory;
 *    masks only on the tiles that need them; LAZY rescale and DBUF (two K/V buffers, one
 *    barrier per tile) on all shipped tiles; deterministic, bit-stable. Tiles
 *    (launch_mma_dim): D 64: 128 x 64 keys; D 128: 128 x 32 causal, 256 x 32 non-causal;
 *    D 256: 128 x 64 keys. Details above the kernel and above launch_mma_dim.
 * 3. The Hopper kernel (sm_90a: compute capability 9.0 and a build with 90a code; f16/bf16,
 *    Dqk == Dv in {64, 128, 256}, rows 16-byte aligned; every option) lives in
 *    sdpa_fwd_sm90.cu: a TMA / cp.async producer warpgroup and two wgmma consumer
 *    warpgroups in ping-pong, persistent. Unaligned views and builds without sm_90a code
 *    run kernel 2 instead. The helpers the kernels share are in sdpa_fwd_tiles.cuh.
 * Paged prefill (PAGED = true, bk_cuda_paged_prefill_tc): kernel 2 (and the Hopper kernel,
 *    sdpa_fwd_sm90.cu) also run paged_prefill; kernel 2 on 128-row tiles, grid (tile ids,
 *    q heads); details above launch_paged_mma.
 * Not yet: no split-KV for small batch*heads with long keys; head dims other than
 *    64/128/256 (and Dqk != Dv) on tensor cores.
 * Measurements of these kernels and of the tiles tried: bench/RESULTS.md. */
#include "sdpa_fwd_tiles.cuh"

#include <type_traits>

/* ------------------------------------------------ 1. generic CUDA-core kernel -- */

enum { kGenWarps = 4, kGenRowsPerWarp = 4, kGenRows = kGenWarps * kGenRowsPerWarp, kGenKeys = 32 };

/* sdpa_fwd_generic_kernel<T> (kernel 1; CUDA cores; every dtype and option, head dims 1..256):
 * a CTA of 4 warps owns 16 query rows (4 per warp) of one (b, h). Q rows, and tiles of 32
 * keys of K (rows padded by one element against bank conflicts) and V are staged in shared
 * memory in the compute type (f32; f64 for f64). Lane j scores key j of the tile for one row;
 * the warp reduces max and sum with shuffles; an online softmax in the compute type keeps m,
 * l and the output row (lane owns elements lane + 32 t). exp/log/tanh are the accurate
 * library functions. The only path for f32 and f64. */
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

/* sdpa_fwd_mma_kernel (kernel 2; tensor cores; f16/bf16, Dqk == Dv in {64,128,256}):
 * FlashAttention-2. A CTA of NW warps owns a BM = NW * 16 * MT row Q tile; each warp MT
 * 16-row MMA atoms (MT = 2: every K/V fragment read from shared memory feeds two MMAs). Q,
 * K (BN keys) and V (BN keys) tiles live in shared memory with 16-byte chunks XOR-swizzled by
 * row (chunk ^ (row & 7)): conflict-free ldmatrix and cp.async. Q fragments are read by
 * ldmatrix per key tile (QREG keeps them in registers; no shipped tile uses it). S = Q K^T
 * by mma.sync.m16n8k16 (f32 accumulate); the scores are turned into log2 units: GEN = false
 * (no softcap/ALiBi, scale > 0) folds scale * log2 e into the exponent's FFMA and carries no
 * code of the general transform; GEN = true applies softcap/ALiBi first. Masks only on tiles
 * that need them (past Sk, the causal diagonal, the window edge); fully masked tiles are
 * never visited. Online softmax on the accumulator fragments with exp2 (row max / sum across
 * the quad by shuffles). LAZY (all shipped tiles): a row keeps a stale reference max until a
 * tile's max exceeds it by more than 2^8, so O and l are rescaled only on the few tiles where
 * some row of the warp jumped (warp vote); P <= 256 then, exact in f16/bf16, and O / l,
 * lse = (m + log2 l) ln 2 stay exact. P is rounded to the input dtype and packed in registers
 * at once, the A operand of O += P V (V through ldmatrix.trans). Pipeline, DBUF (all shipped
 * tiles): two K and two V buffers; after the one barrier per tile, K(n+1) and V(n+1) load
 * into the other buffers during all of tile n (cp.async 16 B, zero-filled past the end).
 * Without DBUF (as FA2, two barriers per tile): V(n) loads while S(n) and the softmax run,
 * K(n+1) while P V(n) runs. Views whose pointers or strides are not 16-byte aligned take the
 * same kernel with plain loads. Each output is computed by one thread in a fixed order:
 * deterministic, bit-stable. Since the Hopper kernel (3) the mask, the online softmax and the
 * stores are shared helpers (key_tile_range, score_transform, mask_tile, softmax_step,
 * store_rows; sdpa_fwd_tiles.cuh).
 *
 * GEN: the general score transform (softcap / ALiBi / scale <= 0); otherwise the scale folds
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

/* ------------------------------------------------------------ launchers -- */

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

/* Tiles per head dim (fwd_cfg<D, BN, NW, MT, MINB, QREG, LAZY, DBUF>), picked by
 * launch_mma_dim: D 64: 128 x 64 keys, 4 warps x 2 atoms; D 128 causal: 128 x 32, 4 warps x 2
 * atoms; D 128 non-causal: 256 x 32, 8 warps x 2 atoms (one CTA per SM); D 256: 128 x 64
 * keys, 8 warps x 1 atom; all DBUF. */
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
         * the rows; causal keeps 128 rows (fewer wasted diagonal tiles). Measurements:
         * bench/RESULTS.md */
        if (!d->causal)
            return launch_mma<T, cfg_d128_wide>(d, a, s);
        return launch_mma<T, cfg_d128>(d, a, s);
    default: return launch_mma<T, cfg_d256>(d, a, s);
    }
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

/* The paged prefill on kernel 2: one CTA per (row tile of a request, q head), tiles found
 * on the device from q_indptr (cta_paged), K/V rows gathered from the pages by the tile
 * loaders (paged_rows). Asynchronous, no host data, graph-capturable. On a 9.0 device with
 * the sm_90a build and 16-byte aligned rows the Hopper kernel (sdpa_fwd_sm90.cu) runs
 * instead. PAGED = true: the grid is (tile ids, q heads); cta_paged finds the CTA's request
 * by a binary search over q_indptr (request b owns ids [b + q_indptr[b] / BM, b + 1 +
 * q_indptr[b+1] / BM)) and sets Sq = its rows, Sk = its tokens and the "batch" index to its
 * first row (batch strides = row strides), so masks and softmax are unchanged; the K/V tile
 * loaders take rows through paged_rows (page table lookup per 16-byte chunk; rows of
 * unresolvable pages are zero-filled and never read). 128-row tiles (kernel 2: 4 warps x 2
 * atoms, 8 x 1 at D 256). */
template <typename T, int D, bool GEN>
static bk_status launch_paged_mma(const bk_paged_prefill_desc *d, const sdpa_params &p, long long ids, cudaStream_t s)
{
    /* 128 query rows: 4 warps x 2 atoms (8 warps x 1 at D 256), as the dense kernel */
    typedef typename std::conditional<D == 64, cfg_d64, typename std::conditional<D == 128, cfg_d128, cfg_d256>::type>::type C;
    static_assert(C::NW * 16 * C::MT == 128, "paged tiles are 128 rows");
    const dim3 grid((unsigned)ids, (unsigned)d->q_heads);
    const size_t smem = (size_t)(128 + (C::DBUF ? 4 : 2) * C::BN) * C::D * sizeof(T);
    if (smem > 48 * 1024)
        BK_TRY(set_smem(sdpa_fwd_mma_kernel<T, C, GEN, true>, smem));
    sdpa_fwd_mma_kernel<T, C, GEN, true><<<grid, C::NW * 32, smem, s>>>(p);
    return bk_cuda_check_launch("paged_prefill");
}

template <typename T, int D>
static bk_status launch_paged(const bk_paged_prefill_desc *d, const sdpa_params &p, long long ids, cudaStream_t s)
{
    if (!(p.scale_log2 > 0.f))
        return launch_paged_mma<T, D, true>(d, p, ids, s);
    return launch_paged_mma<T, D, false>(d, p, ids, s);
}

template <typename T>
static bk_status launch_paged_dim(const bk_paged_prefill_desc *d, const sdpa_params &p, long long ids, cudaStream_t s)
{
    switch (d->paged_kv.head_dim) {
    case 64: return launch_paged<T, 64>(d, p, ids, s);
    case 128: return launch_paged<T, 128>(d, p, ids, s);
    default: return launch_paged<T, 256>(d, p, ids, s);
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
    /* tile ids: request b owns [b + q_indptr[b] / 128, b + 1 + q_indptr[b+1] / 128) (paged_tile) */
    const long long ids = (long long)d->batch + d->total_rows / kSm90Rows + 1;
    if (ids > 0x7fffffffLL || d->q_heads > 65535)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_prefill: %lld tiles x %d heads is too large a grid", ids,
                       (int)d->q_heads);
    const sdpa_params p = make_paged_params(d, a);
    cudaStream_t s = (cudaStream_t)stream;
    if (hopper && p.aligned && bk_sm90_fwd_built(d->paged_kv.dtype))
        return bk_sm90_fwd_launch(p, d->paged_kv.dtype, true, s);
    if (d->paged_kv.dtype == BK_DTYPE_BF16)
        return launch_paged_dim<__nv_bfloat16>(d, p, ids, s);
    return launch_paged_dim<__half>(d, p, ids, s);
}
