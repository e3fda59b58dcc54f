/* sdpa_bwd_sm90.cu - the Hopper flash-attention backward (sm_90a, wgmma + TMA).
 *
 * Math (sdpa_bwd.cu): key j of kv head hk, every q head of its GQA group, row i:
 *   P^T = 2^(S^T scale log2e - lse log2e), S^T = K Q^T; dP^T = V dO^T; dS^T = P^T (dP^T -
 *   D_i); dV += P^T dO; dK += dS^T Q; dQ += dS K. D_i, lse: sdpa_bwd.cu's rows pre-pass; the
 *   scale applied once at the end (dK here, dQ in sdpa_bwd.cu's conversion of dq_acc).
 *   f16/bf16 in, f32 accumulate, P and dS rounded to T before their products.
 * Shapes: Dqk == Dv = D in {64, 128, 256}; q [B,Hq,Sq,D], k/v [B,Hkv,Sk,D] (head stride 0
 *   allowed), dy like q; rows 16-byte aligned (TMA); dk/dv in T; dq_acc f32 [B,Hq,Sq,D]
 *   (zeroed by the launcher) += the unscaled dQ, by TMA reduce-adds of f32 tiles staged in
 *   shared memory. Causal is bottom-right (key j visible to row i iff j <= i + Sk - Sq).
 * Tiling (bwd90_tiles<D>): a CTA owns BN keys of one (b, kv head) (128; 64 at D 256), K and
 *   V resident in shared memory, and walks the q heads of the group and per head the BM-row
 *   query tiles that see its keys (BM = 128 at D 64, else 64). Tiles are wgmma's 128-byte-
 *   swizzle atoms [cols/64][rows][64] (TMA SWIZZLE_128B).
 * Warps: 3 warpgroups, registers handed over by setmaxnreg.
 *   - producer warp 0: TMA copies of K, V (once) and of Q, dO per step into a 2-stage ring
 *     (full / empty mbarriers), with the step's lse and D_i.
 *   - the sync warp (producer warp 1; DET and D 256): adds the consumers' staged dQ shares
 *     by TMA (FULL / FREE barriers), in DET behind the semaphores.
 *   - two consumer warpgroups. D 64 / 128: consumer c owns keys 64c .. + 63, their dK and dV
 *     in registers, and computes every product for them. D 256 (dK or dV fills a consumer's
 *     registers): consumer 0 takes P^T and dV, consumer 1 dS^T and dK. After named barrier 1
 *     each computes a half of dQ = dS K (details at the consumer branches).
 *   Finally dK * scale and dV in T (keys < Sk).
 * DET (deterministic): the (b, kv head) and key tile from a launch-wide ticket (highest key
 *   tile first); per row tile the key tiles add in a fixed order behind its semaphore:
 *   decreasing, or without a causal mask when the launcher allows (p.rotate), each key tile
 *   starting its walk at its own row tile and the adds in the order the tiles reach the row
 *   (bwd90_add_position). Waits go only to smaller tickets, or with the rotation to CTAs of
 *   the same (b, kv head), all resident at once: no deadlock.
 * Not yet: softcap, ALiBi, window, Dqk != Dv (sdpa_bwd.cu runs them); a step's softmax under
 *   the next step's products; at D 128 products wider than m64n64 (S^T, dP^T and dQ read
 *   both operands from shared memory at its full bandwidth); for causal DET more than one
 *   staged tile of slack (the k-th key tile of a chain waits for k adds before its first);
 *   a persistent, causal-balanced schedule (what was tried: bench/RESULTS.md). */
#include "hopper.cuh"
#include "sdpa_bwd_sm90.h"

#include <limits.h>
#include <string.h>

/* Tile sizes, the register split and the shared-memory map of one head dim. */
template <int D> struct bwd90_tiles {
    /* D 64 / 128: the consumers own 64 keys each, with their dK and dV (2 x D / 2 f32
     * registers a thread); D 256: both work on one 64-key tile, consumer 0 owning its dV and
     * consumer 1 its dK (D / 2 = 128 registers a thread each) */
    static constexpr bool SPLIT = D == 256;
    static constexpr int BN = SPLIT ? 64 : 128; /* keys per CTA */
    static constexpr int BM = D == 64 ? 128 : 64; /* query rows per step */
    static constexpr int STAGES = 2;            /* Q / dO / lse / D_i ring depth */
    /* D 64: S^T and dP^T in two commit groups; P^T is computed and dV += P^T dO issued
     * while dP^T is in flight (faster at D 64, slower at D 128: bench/RESULTS.md) */
    static constexpr bool EARLY_DV = D == 64;
    /* D 256, atomic mode: the first A_REG_BLOCKS k16 blocks (over D) of the consumer's S^T
     * (K) or dP^T (V) A operand held in registers as wgmma fragments for the whole CTA: a
     * quarter less shared-memory reading in those products (faster; DET, which is tighter on
     * registers, is slower with it and keeps 0). D 128 gains nothing, D 64 has no registers
     * to spare (measurements: bench/RESULTS.md). */
    static constexpr int A_REG_BLOCKS = SPLIT ? 4 : 0;
    static constexpr int THREADS = 384;         /* producer + 2 consumer warpgroups */
    /* 168 registers per thread at launch (__launch_bounds__(384, 1)): 24 + 2 x 240 = 504 */
    static constexpr int PRODUCER_REGS = 24, CONSUMER_REGS = 240;
    static_assert(PRODUCER_REGS + 2 * CONSUMER_REGS <= 504, "more registers than the CTA holds");
    /* each consumer's dQ share: rows 64c (D 64) or columns 64c (D 128) of an m64n64 product,
     * columns 128c of an m64n128 one (D 256) */
    static_assert((BM == 128 && D == 64) || (BM == 64 && D == 128) || (BM == 64 && SPLIT), "the dQ split covers these");
    /* dS^T: double-buffered at D 64 / 128, one buffer at D 256 (see the SPLIT branch); PX:
     * P^T passed from consumer 0 to consumer 1 in f32 at D 256 */
    static constexpr int DS_BUFS = SPLIT ? 1 : 2;
    static constexpr uint32_t KV_BYTES = BN * D * 2, QO_BYTES = BM * D * 2, DS_BYTES = BN * BM * 2,
                              PX_BYTES = SPLIT ? BN * BM * 4 : 0;
    /* D 64 / 128: each consumer's 64 x 64 f32 dQ share staged for the TMA reduce-add,
       [2 column blocks of 32][64 rows][32] with the 128-byte swizzle; tiles [DQ_BUFS][2
       consumers]. DQ_BUFS 2 (atomic mode, D 128): a step stages into the tile that the
       reduce-add of two steps ago read; D 64 has no room for it, DET uses tile 0 */
    static constexpr int DQ_BUFS = D == 128 ? 2 : 1;
    static constexpr uint32_t DQ_SHARE = 64 * 64 * 4, DQ_BYTES = SPLIT ? 0 : 2 * DQ_BUFS * DQ_SHARE;
    static constexpr uint32_t OFF_K = 0, OFF_V = KV_BYTES, OFF_Q = 2 * KV_BYTES, OFF_O = OFF_Q + STAGES * QO_BYTES,
                              OFF_DS = OFF_O + STAGES * QO_BYTES, OFF_DQ = OFF_DS + DS_BUFS * DS_BYTES,
                              OFF_PX = OFF_DQ + DQ_BYTES, OFF_L = OFF_PX + PX_BYTES, OFF_D = OFF_L + STAGES * BM * 4,
                              OFF_BAR = OFF_D + STAGES * BM * 4, OFF_TKT = OFF_BAR + 8 * (1 + 2 * STAGES);
    /* barriers: kv_full, q_full[STAGES], q_empty[STAGES]; then DET's walk values (ints: jt,
     * tlo, ntile, b - b0, kv head, rot; see walk in the kernel) */
    static constexpr int WALK_VALUES = 6;
    static constexpr size_t SMEM = OFF_TKT + 4 * WALK_VALUES + 1024; /* + 1024: alignment */
    static_assert(SMEM <= 227 * 1024, "more shared memory than an H100 block may opt in to");
    static_assert(OFF_DQ % 1024 == 0, "the dQ tiles' swizzle atoms start on 1024-byte boundaries");
};

/* DET: the semaphores per (b, q head) - one per tile of BM rows. The one count that both
 * the kernel's indexing and the workspace sizing (bk_sm90_bwd_det_sems) use. */
template <int D> __host__ __device__ constexpr long long bwd90_det_row_tiles(long long Sq)
{
    return (Sq + bwd90_tiles<D>::BM - 1) / bwd90_tiles<D>::BM;
}

/* What the kernel needs besides the tensor maps. */
struct bwd90_params {
    const float *lrow, *drow; /* [B, Hq, Sq] f32: lse and D_i (rows pre-pass) */
    /* DET only, zeroed by the launcher: [B, Hkv] ints, of which element b0 Hkv is the
     * ticket counter of the launch of batches b0 ..; then a semaphore per (b, q head, BM-row
     * tile) [B, Hq, bwd90_det_row_tiles] */
    int *dq_ticket, *dq_sem;
    void *dk, *dv;
    long long sdk0, sdk1, sdk2, sdv0, sdv1, sdv2;
    int Hq, group, Sq, Sk, off, causal, b0;
    int rotate; /* DET: the rotated walks' window in row tiles (0: none; row_of in the kernel) */
    float scale, scale_log2;
    /* 1 when the axis is addressed (stride != 0), else the tensor map has extent 1 there */
    int q_h, q_b, o_h, o_b, k_h, k_b, v_h, v_b;
};

/* DET: the last key tile (of nkt) that walks row tile t, i.e. whose first row tile is <= t:
 * nkt - 1, or with causal min(nkt - 1, ((t + 1) BM - 1 + off) / BN) (sdpa_bwd.cu's
 * fused_last_contributor with this kernel's tiles). 32-bit: for every t a key tile walks
 * the numerator lies in [0, 2^31) (t BM < Sq + BM, off < Sk, Sq, Sk < 2^30). The key tiles
 * jt < j <= last add before jt does. */
template <int BM, int BN>
static __device__ __forceinline__ int bwd90_last_contributor(int causal, int off, int nkt, int t)
{
    return causal ? min(((t + 1) * BM - 1 + off) / BN, nkt - 1) : nkt - 1;
}
#if BK_HAS_WGMMA
/* DET with the rotation (window W = p.rotate, 2 <= W <= nrt): how many key tiles add to row
 * tile t before key tile jt, which reaches it at step s of its walk. Key tile j starts at row
 * tile o_j = j W / nkt (nondecreasing in j) and reaches t at step d_j = (t - o_j) mod nrt; the
 * tiles add in increasing d_j, ties by decreasing j (a fixed order: the sums are bit-identical
 * from run to run). With o = o_jt (walk value 5) and t = (o + s) mod nrt, those are the j with
 * o_j <= o + s - nrt (their walk wrapped), with o < o_j <= o + s, or with o_j = o and j > jt;
 * n_upto(X) counts the j with o_j <= X, min(nkt, ceil((X + 1) nkt / W)), so the total is
 * n_upto(o + s - nrt) + n_upto(o + s) - 1 - jt. (In a loop: one division in the code, no
 * spill in the producer's 24 registers.) */
static __device__ __forceinline__ int bwd90_add_position(int jt, int o, int nkt, int nrt, int W, int s)
{
    int n = -1 - jt;
#pragma unroll 1
    for (int X = o + s - nrt; X <= o + s; X += nrt)
        n += X < 0 ? 0 : min(nkt, ((X + 1) * nkt + W - 1) / W);
    return n;
}
#endif

/* Named barriers. 1: the consumers' dS^T barrier. kBarP (D 256): consumer 0 arrives once its
 * P^T is in shared memory, consumer 1 syncs. kBarDqTile + c (D 64 / 128, atomic mode):
 * consumer c's warpgroup barrier around its dQ staging. DET and D 256, over the 256 consumer
 * threads and the sync warp (warp 1): the consumers arrive on FULL once both dQ shares are
 * staged, the sync warp syncs on it; the sync warp arrives on FREE once its reduce-adds have
 * read them, the consumers sync on it before they stage the next step's. */
enum { kBarP = 4, kBarDqTile = 5, kBarDqFull = 7, kBarDqFree = 8, kBarDqThreads = 256 + 32 };
/* bk_named_sync / bk_named_arrive with immediate operands (no registers held for them) */
template <int ID, int N> static __device__ __forceinline__ void bwd90_bar_sync()
{
    asm volatile("bar.sync %0, %1;\n" ::"n"(ID), "n"(N) : "memory");
}
template <int ID, int N> static __device__ __forceinline__ void bwd90_bar_arrive()
{
    asm volatile("bar.arrive %0, %1;\n" ::"n"(ID), "n"(N) : "memory");
}

/* dq_acc += dq, consumer cw's share (the accumulator of an m64nN product, R = N / 2: rows
 * r0 + kr (+ 8) from 4 j (+ 2), columns c0 + 8 j + 2 t4 (+ 1) of q head h) through a staging
 * tile at dq_s. bwd90_store_dq: each thread stores its float2s into the swizzled tile
 * (chunk (2 (j % 4) + t4 / 2) ^ g of row kr in 32-column block j / 4). bwd90_reduce_dq:
 * NB 32-column boxes added to dq_acc by TMA (rows past Sq skipped), not committed. D 64 /
 * 128's atomic mode in two halves, so that the waits fall under the next step's products:
 * bwd90_stage_dq stores once the issuer's reduce-adds but the last NP have read their
 * tiles (NP = DQ_BUFS - 1; warpgroup barrier); bwd90_issue_dq fences the stores for the
 * async proxy and, after a second barrier, the issuer adds. (DET and D 256: the sync warp
 * adds, in the kernel.) */
#if BK_HAS_WGMMA
template <int NB = 2>
static __device__ __forceinline__ void bwd90_reduce_dq(const CUtensorMap *map, uint32_t dq_s, int c0, int r0, int h,
                                                       int b)
{
#pragma unroll
    for (int c = 0; c < NB; c++)
        bk_tma_reduce_add_4d(map, dq_s + c * 64 * 128, c0 + 32 * c, r0, h, b);
}
template <int R>
static __device__ __forceinline__ void bwd90_store_dq(const float (&dq)[R], uint32_t dq_s, int kr, int g, int t4)
{
#pragma unroll
    for (int j = 0; j < R / 4; j++) {
        const uint32_t a = dq_s + (uint32_t)((j >> 2) * 64 * 128 + kr * 128 +
                                             (((2 * (j & 3) + (t4 >> 1)) ^ g) << 4) + (t4 & 1) * 8);
        asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a), "f"(dq[4 * j]), "f"(dq[4 * j + 1]) : "memory");
        asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a + 8 * 128), "f"(dq[4 * j + 2]), "f"(dq[4 * j + 3])
                     : "memory");
    }
}
template <int NP>
static __device__ __forceinline__ void bwd90_stage_dq(const float (&dq)[32], uint32_t dq_s, bool issuer, int cw,
                                                      int kr, int g, int t4)
{
    if (issuer)
        bk_bulk_wait_read<NP>(); /* NP = 1: the reduce-add of two steps ago, from this buffer, has read it */
    bk_named_sync(kBarDqTile + cw, 128);
    bwd90_store_dq(dq, dq_s, kr, g, t4);
}
static __device__ __forceinline__ void bwd90_issue_dq(const CUtensorMap *map, uint32_t dq_s, bool issuer, int cw,
                                                      int c0, int r0, int h, int b)
{
    bk_fence_proxy_async();
    bk_named_sync(kBarDqTile + cw, 128);
    if (issuer) {
        bwd90_reduce_dq(map, dq_s, c0, r0, h, b);
        bk_bulk_commit();
    }
}
#endif

/* D 256 (consumer 0): S^T -> P^T = 2^(S^T scale log2e - L) in place. Accumulator element
 * 4 j + e: key row kr + 8 (e >> 1) (keys jg0, jg0 + 8), query column 8 j + 2 t4 + (e & 1)
 * of the step (rows from m0; L of the step's rows in Ls). The D 64 / 128 branch computes
 * the same inline, fused with dS^T (with this function ptxas spills 60 bytes there). */
template <int BM, int BN>
static __device__ __forceinline__ void bwd90_probs(float (&s)[BM / 2], const float *Ls, int j0, int jg0, int m0,
                                                   const bwd90_params &p, int t4)
{
    const int Sk = p.Sk, off = p.off, causal = p.causal, jg1 = jg0 + 8;
    const bool need_mask = j0 + BN > Sk || (causal && j0 + BN - 1 > m0 + off);
    const int lim0 = jg0 >= Sk ? INT_MAX : causal ? jg0 - off - m0 - 2 * t4 : INT_MIN;
    const int lim1 = jg1 >= Sk ? INT_MAX : causal ? jg1 - off - m0 - 2 * t4 : INT_MIN;
#pragma unroll
    for (int j = 0; j < BM / 8; j++) {
        const float2 l2 = *reinterpret_cast<const float2 *>(Ls + 8 * j + 2 * t4);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const float pp = bk_ex2(fmaf(s[4 * j + e], p.scale_log2, -((e & 1) ? l2.y : l2.x)));
            s[4 * j + e] = need_mask && 8 * j + (e & 1) < (e < 2 ? lim0 : lim1) ? 0.f : pp;
        }
    }
}

/* dq (64 queries x N columns, the accumulator zeroed here) = dS K over BN keys, issued and
 * committed (the caller waits): A = dS^T from ds (M-major: the keys the 128-byte rows), B =
 * K from k (N-major), k16 steps down the keys (+ 2048 bytes); LBO = BN * 128 (the next block
 * of 64 queries / columns), SBO = 1024 (8 keys). */
template <typename T, int BN, int R>
static __device__ __forceinline__ void bwd90_dq_product(float (&dq)[R], uint32_t ds, uint32_t k)
{
#pragma unroll
    for (int i = 0; i < R; i++)
        dq[i] = 0.f;
    bk_wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; kk++)
        bk_wgmma<T, 2 * R>::ss_tt(dq, bk_wgmma_desc(ds + kk * 2048, BN * 128, 1024),
                                  bk_wgmma_desc(k + kk * 2048, BN * 128, 1024), 1);
    bk_wgmma_commit();
}

/* ROWS rows from row r0 of slice (c2, c3) of a [.., .., rows, D] tensor map into the
 * swizzled buffer at dst, one box of 64 columns per column block (no byte count: the caller
 * announces the whole stage's). */
template <int D, int ROWS>
static __device__ __forceinline__ void bwd90_tma(uint32_t dst, const CUtensorMap *map, uint32_t bar, int r0, int c2,
                                                 int c3)
{
#pragma unroll
    for (int c = 0; c < D / 64; c++)
        bk_tma_load_4d(dst + c * ROWS * 128, map, bar, c * 64, r0, c2, c3);
}

template <typename T, int D, bool DET>
__global__ void __launch_bounds__(384, 1)
    sdpa_bwd_sm90_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                         const __grid_constant__ CUtensorMap tm_v, const __grid_constant__ CUtensorMap tm_o,
                         const __grid_constant__ CUtensorMap tm_dq, const bwd90_params p)
{
#if BK_HAS_WGMMA
    typedef bwd90_tiles<D> C;
    constexpr int BM = C::BM, BN = C::BN, S = C::STAGES;
    constexpr float kLog2e = 1.4426950408889634f;
    extern __shared__ __align__(1024) unsigned char smem_bwd90[];
    const uint32_t raw = bk_smem_addr(smem_bwd90), base = (raw + 1023u) & ~1023u;
    unsigned char *gbase = smem_bwd90 + (base - raw); /* the same bytes, generic address */
    const uint32_t sK = base + C::OFF_K, sV = base + C::OFF_V, sQ = base + C::OFF_Q, sO = base + C::OFF_O,
                   sDS = base + C::OFF_DS, bar = base + C::OFF_BAR, kv_full = bar;
    float *sL = reinterpret_cast<float *>(gbase + C::OFF_L), *sD = reinterpret_cast<float *>(gbase + C::OFF_D);
    auto q_full = [=](int st) { return bar + 8 + 8 * st; };
    auto q_empty = [=](int st) { return bar + 8 + 8 * (S + st); };

    const int Sq = p.Sq, Sk = p.Sk, off = p.off;
    /* The CTA's (b, kv head) and key tile jt: blockIdx, or with DET from the ticket that
     * thread 0 takes from the launch's counter below: ticket T (the T-th CTA to start) takes
     * (b, kv head) number T / nkt and key tile nkt - 1 - T % nkt (nkt = gridDim.x), so that a
     * CTA waits only for CTAs of its (b, kv head) that started before it or, with the
     * rotation below, that start while it waits (every CTA of a (b, kv head) fits on the
     * GPU at once: the launcher's p.rotate). The query tiles that see one of its keys j0 ..
     * j0 + BN - 1: causal, rows i >= j0 - off (j0 < Sk makes that < Sq, so every CTA has at
     * least one tile): from tlo, ntile per q head. */
    auto first_tile = [&](int jt) { return p.causal && jt * BN - off > 0 ? (jt * BN - off) / BM : 0; };
    /* the atomic mode's, computed once here (blockIdx: the compiler rematerialises them) */
    const int tlo_a = first_tile(blockIdx.x), ntile_a = (Sq - 1) / BM - tlo_a + 1;
    /* DET: thread 0 stores jt, tlo, ntile, b - b0, the kv head and rot in shared memory; every
     * use re-reads them (volatile), so that nothing derived from the ticket lives in a
     * register across setmaxnreg or the walk (the D 64 consumer has no register to spare) */
    auto walk = [&](int i) -> int {
        int v;
        asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(base + C::OFF_TKT + 4 * i) : "memory");
        return v;
    };
    auto w_jt = [&]() { return DET ? walk(0) : (int)blockIdx.x; };
    auto w_tlo = [&]() { return DET ? walk(1) : tlo_a; };
    auto w_ntile = [&]() { return DET ? walk(2) : ntile_a; };
    auto w_b = [&]() { return (DET ? (long long)walk(3) : (long long)blockIdx.z) + p.b0; };
    auto w_hk = [&]() { return DET ? walk(4) : (int)blockIdx.y; };
    /* The row tile of step s (< ntile) of a q head: tlo + s, or with DET's rotation (window
     * W = p.rotate: no causal mask, so tlo = 0 and every key tile walks all nrt = ntile row
     * tiles) tlo + (s + rot) mod ntile, rot = jt W / nkt: the key tiles start their walks
     * spread over the first W row tiles, and each row tile's adds come in the order of the
     * step at which the key tiles reach it (ties: the higher key tile first), so that a chain
     * of adds fills only among the nkt / W tiles that start on the same row
     * (bwd90_add_position) */
    auto row_of = [&](int s, int tlo, int ntile) {
        if (!DET)
            return tlo + s;
        const int r = s + walk(5);
        return tlo + (r >= ntile ? r - ntile : r);
    };

    const int wg = threadIdx.x / 128;
    if (threadIdx.x == 0) {
        bk_mbar_init(kv_full, 1);
        for (int s = 0; s < S; s++) {
            bk_mbar_init(q_full(s), 32);   /* the producer warp's lanes (lane 0 with the bytes) */
            /* every consumer thread; D 256: and the sync warp once it has added the dQ shares
             * staged in the stage */
            bk_mbar_init(q_empty(s), 256 + (C::SPLIT ? 1 : 0));
        }
        bk_mbar_init_fence();
        if constexpr (DET) { /* the ticket: see walk */
            int *w = reinterpret_cast<int *>(gbase + C::OFF_TKT);
            const int nkt = (int)gridDim.x, tk = atomicAdd(p.dq_ticket + (long long)p.b0 * gridDim.y, 1);
            const int grp = tk / nkt;
            w[0] = nkt - 1 - tk % nkt;
            w[1] = first_tile(w[0]);
            w[2] = (Sq - 1) / BM - w[1] + 1;
            w[3] = grp / (int)gridDim.y;
            w[4] = grp % (int)gridDim.y;
            w[5] = (int)((long long)w[0] * p.rotate / nkt);
        }
    }
    __syncthreads();

    if (wg == 0) {
        /* ------------------------------------------------------------ producer: warp 0's
         * lane 0 issues the TMA copies of K, V (once) and of Q, dO per step; its lanes copy
         * the step's lse (times log2e; +inf past Sq and for lse = -inf, so P = 0) and D_i into
         * the stage. Warp 1 is the sync warp. */
        bk_regs_dec<C::PRODUCER_REGS>();
        const int jt = w_jt(), j0 = jt * BN, tlo = w_tlo(), ntile = w_ntile();
        const int hk = w_hk();
        if ((DET || C::SPLIT) && threadIdx.x / 32 == 1) {
            /* the sync warp (DET, and D 256): per step, DET: waits until the key tiles above
             * this one have added to the step's row tile (lane 0 spins with acquire loads);
             * once both consumers have staged their dQ shares (FULL), lane 0 adds them by
             * TMA, lets the consumers stage the next ones (FREE; D 256: releases the stage,
             * whose buffers held them) once read; DET: waits for the writes, then releases
             * (+1) */
            const int lane = threadIdx.x % 32, nsem = (int)bwd90_det_row_tiles<D>(Sq);
            int it = 0; /* the step, as the producer counts them */
            bwd90_bar_arrive<kBarDqFree, kBarDqThreads>(); /* nothing staged yet */
#pragma unroll 1
            for (int hh = 0; hh < p.group; hh++)
#pragma unroll 1
                for (int s = 0; s < ntile; s++, it++) {
                    const int t = row_of(s, tlo, ntile), h = hk * p.group + hh;
                    int *sem = DET ? p.dq_sem + (w_b() * p.Hq + h) * nsem + t : NULL; /* the step's */
                    if (DET) { /* wait for the key tiles that add to row tile t before this one */
                        const int before = p.rotate ? bwd90_add_position(jt, walk(5), (int)gridDim.x, ntile, p.rotate, s)
                                                    : bwd90_last_contributor<BM, BN>(p.causal, off, gridDim.x, t) - jt;
                        if (lane == 0)
                            bk_sem_wait_acquire(sem, before);
                    }
                    __syncwarp();
                    bwd90_bar_sync<kBarDqFull, kBarDqThreads>();
                    if (lane == 0) {
                        const int b = (int)w_b();
                        bk_fence_proxy_async_global(); /* the acquired adds before ours */
                        if constexpr (C::SPLIT) { /* the shares in the stage's dO (0) and Q (1) buffers */
                            const uint32_t st_off = (uint32_t)(it % S) * C::QO_BYTES;
                            bwd90_reduce_dq<4>(&tm_dq, sO + st_off, 0, t * BM, h, (int)b);
                            bwd90_reduce_dq<4>(&tm_dq, sQ + st_off, 128, t * BM, h, (int)b);
                        } else { /* consumer c's: rows 64 c of the step (D 64) or columns 64 c (D 128) */
#pragma unroll
                            for (int c = 0; c < 2; c++)
                                bwd90_reduce_dq(&tm_dq, base + C::OFF_DQ + c * C::DQ_SHARE, BM == 64 ? 64 * c : 0,
                                                t * BM + (BM == 128 ? 64 * c : 0), h, (int)b);
                        }
                        bk_bulk_commit();
                        bk_bulk_wait_read<0>();
                        if constexpr (C::SPLIT)
                            bk_mbar_arrive(q_empty(it % S));
                    }
                    __syncwarp();
                    if (hh < p.group - 1 || s < ntile - 1) /* the consumers stage one more */
                        bwd90_bar_arrive<kBarDqFree, kBarDqThreads>();
                    if (DET && lane == 0) {
                        bk_bulk_wait<0>();
                        bk_fence_proxy_async_global(); /* our adds before the release */
                        bk_sem_release_add1(sem);
                    }
                    __syncwarp();
                }
            if (lane == 0) /* the last adds written before the exit */
                bk_bulk_wait<0>();
            return;
        }
        if (threadIdx.x >= 32)
            return;
        const int lane = threadIdx.x, niter = ntile * p.group;
        if (lane == 0) { /* K and V of the CTA's keys, once; rows past Sk arrive as zeros */
            bk_mbar_arrive_expect_tx(kv_full, 2 * C::KV_BYTES);
            bwd90_tma<D, BN>(sK, &tm_k, kv_full, j0, p.k_h ? hk : 0, p.k_b ? (int)w_b() : 0);
            bwd90_tma<D, BN>(sV, &tm_v, kv_full, j0, p.v_h ? hk : 0, p.v_b ? (int)w_b() : 0);
        }
        for (int it = 0; it < niter; it++) {
            const int st = it % S, h = hk * p.group + it / ntile, m0 = row_of(it % ntile, tlo, ntile) * BM;
            bk_mbar_wait(q_empty(st), ((uint32_t)(it / S) & 1u) ^ 1u);
            const long long rb = (w_b() * p.Hq + h) * (long long)Sq;
#pragma unroll 1
            for (int r = lane; r < BM; r += 32) {
                const int i = m0 + r;
                float l = INFINITY, dd = 0.f;
                if (i < Sq) {
                    const float lse = p.lrow[rb + i];
                    l = lse == -INFINITY ? INFINITY : lse * kLog2e; /* a row that saw no key: P = 0 */
                    dd = p.drow[rb + i];
                }
                sL[st * BM + r] = l;
                sD[st * BM + r] = dd;
            }
            if (lane == 0) { /* after its own stores: the arrival releases them too */
                bk_mbar_arrive_expect_tx(q_full(st), 2 * C::QO_BYTES);
                const int b = (int)w_b();
                bwd90_tma<D, BM>(sQ + st * C::QO_BYTES, &tm_q, q_full(st), m0, p.q_h ? h : 0, p.q_b ? b : 0);
                bwd90_tma<D, BM>(sO + st * C::QO_BYTES, &tm_o, q_full(st), m0, p.o_h ? h : 0, p.o_b ? b : 0);
            } else {
                bk_mbar_arrive(q_full(st));
            }
        }
        return;
    }

    /* -------------------------------------------------------------- consumers */
    bk_regs_inc<C::CONSUMER_REGS>();
    const int cw = wg - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane >> 2, t4 = lane & 3;
    const int kr = 16 * warp + g; /* the thread's first key row of its 64 (and kr + 8) */
    /* the thread's first key is j0 + kfirst (D 64/128: consumer c owns keys 64 c ..) */
    const int kfirst = (C::SPLIT ? 0 : cw * 64) + kr;
    const int jg0_a = (int)blockIdx.x * BN + kfirst; /* the atomic mode's */
    const float scale_log2 = p.scale_log2;

    /* acc (64 x BM, keys x queries) += A (64 keys of K or V) * B^T (the BM rows of Q or dO),
     * k16 steps over D. A: K-major, column block kk / 4 of a_base's BN-row tile, the k16
     * step at +32 bytes inside the 128-byte row; B: K-major, the BM rows of the column
     * block. SBO = 1024 (8 rows of 128 bytes), LBO unused (16). The forward's S = Q K^T,
     * operand for operand. The first NR_A k16 blocks take A from fr (load_afrag) instead. */
    constexpr int NR_A = DET ? 0 : C::A_REG_BLOCKS;
    typedef uint32_t afrag_t[NR_A ? NR_A : 1][4];
    auto issue_kt = [&](float(&acc)[BM / 2], uint32_t a_base, uint32_t b_base, const afrag_t *fr = nullptr) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const uint32_t koff = (uint32_t)(kk & 3) * 32, cb = (uint32_t)(kk >> 2);
            const uint64_t db = bk_wgmma_desc(b_base + cb * BM * 128 + koff, 16, 1024);
            if constexpr (NR_A > 0)
                if (kk < NR_A) {
                    if (kk == 0)
                        bk_wgmma<T, BM>::rsk_first(acc, (*fr)[kk < NR_A ? kk : 0], db);
                    else
                        bk_wgmma<T, BM>::rsk(acc, (*fr)[kk < NR_A ? kk : 0], db, 1);
                    continue;
                }
            const uint64_t da = bk_wgmma_desc(a_base + cb * BN * 128 + koff, 16, 1024);
            if (kk == 0)
                bk_wgmma<T, BM>::ss_first(acc, da, db);
            else
                bk_wgmma<T, BM>::ss(acc, da, db, 1);
        }
    };
    /* The A fragments of k16 blocks kk < NR_A of the thread's key rows kr, kr + 8 of the
     * BN-row tile at tile: {(kr, 16 kk + 2 t4), (kr + 8, same), (kr, + 8), (kr + 8, + 8)},
     * read through the 128-byte swizzle (16-byte chunk (c % 64) / 8 ^ r % 8). */
    auto load_afrag = [&](afrag_t &fr, uint32_t tile) {
#pragma unroll
        for (int kk = 0; kk < NR_A; kk++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int r = kr + 8 * (q & 1), c = 16 * kk + 2 * t4 + 8 * (q >> 1);
                const uint32_t a =
                    tile + (uint32_t)((c >> 6) * BN * 128 + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4) + (c & 7) * 2);
                asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(fr[kk][q]) : "r"(a));
            }
        (void)fr, (void)tile;
    };
    /* An accumulator as RS A fragments (T): k16 block kb (queries 16 kb .. + 15) of the
     * thread's rows kr, kr + 8 is {(kr, 16kb + 2t4), (kr + 8, same), (kr, 16kb + 8 + 2t4),
     * (kr + 8, same)} = n-tiles 2 kb and 2 kb + 1: the mma.sync A layout, which wgmma's A
     * register fragment is per warp (warp w: rows 16 w ..). */
    auto pack_a = [&](uint32_t(&fa)[BM / 16][4], const float(&x)[BM / 2]) {
#pragma unroll
        for (int kb = 0; kb < BM / 16; kb++)
#pragma unroll
            for (int q = 0; q < 4; q++)
                fa[kb][q] = bk_mma16<T>::pack(x[8 * kb + 2 * q], x[8 * kb + 2 * q + 1]);
    };
    /* dS^T to shared memory, [BM / 64][BN keys][64 queries] swizzled: key row r (kr or
     * 64 c + kr, and + 8), n-tile j = queries 8 j .. in column block j / 8, 16-byte chunk
     * (j % 8) ^ (r % 8), bytes 4 t4 of it. r % 8 = g. One 32-bit store per pair; a warp's
     * 32 stores hit 32 distinct banks. */
    auto store_dst = [&](uint32_t ds_b, const uint32_t(&ga)[BM / 16][4]) {
        const int r = kfirst;
#pragma unroll
        for (int j = 0; j < BM / 8; j++) {
            const uint32_t a0 = ds_b + (uint32_t)((j >> 3) * BN * 128 + r * 128 + (((j & 7) ^ g) << 4) + 4 * t4);
            const uint32_t lo = ga[j >> 1][(j & 1) * 2], hi = ga[j >> 1][(j & 1) * 2 + 1];
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a0), "r"(lo) : "memory");
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a0 + 8 * 128), "r"(hi) : "memory");
        }
    };
    /* rows kr (+ 8) of the thread's keys, columns 8 j + 2 t4 (+ 1): acc * mul in T (keys < Sk) */
    auto store_keys = [&](void *base, long long s0, long long s1, long long s2, const float(&acc)[D / 2],
                          float mul) {
        T *out = (T *)base + w_b() * s0 + w_hk() * s1;
        const int jg0 = DET ? w_jt() * BN + kfirst : jg0_a, jg1 = jg0 + 8;
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int e = 8 * j + 2 * t4;
            if (jg0 < Sk)
                *reinterpret_cast<uint32_t *>(out + jg0 * s2 + e) = bk_mma16<T>::pack(acc[4 * j] * mul, acc[4 * j + 1] * mul);
            if (jg1 < Sk)
                *reinterpret_cast<uint32_t *>(out + jg1 * s2 + e) =
                    bk_mma16<T>::pack(acc[4 * j + 2] * mul, acc[4 * j + 3] * mul);
        }
    };

    if constexpr (C::SPLIT) {
        /* D 256: consumer 0 computes S^T -> P^T and owns dV += P^T dO, consumer 1 computes
         * dP^T -> dS^T and owns dK += dS^T Q; consumer c takes dQ's columns 128 c ... P^T
         * crosses over through shared memory in f32 (thread t of one to thread t of the
         * other: the same accumulator positions; [BM / 8][128] float4), dS^T through the
         * swizzled tile that both read for dQ. Per step: barrier kBarP (consumer 0 arrives
         * after its P^T stores, 1 syncs before reading them) and barrier 1 (dS^T stored).
         * One buffer of each suffices: 0 writes P^T(n + 1) after barrier 1 of step n, which
         * 1 reaches after reading P^T(n); 1 writes dS^T(n + 1) after kBarP of step n + 1,
         * which 0 reaches after its dQ(n) is complete. The dQ shares (64 x 128 f32, no room
         * for a tile of their own) are staged in the step's dO (consumer 0) or Q (1) buffer
         * once barrier 1 shows the other consumer done with it; the sync warp adds both by
         * TMA and releases the stage once they are read (q_empty counts it). */
        float acc[D / 2]; /* dV (consumer 0) or dK (consumer 1): 64 keys x D */
#pragma unroll
        for (int i = 0; i < D / 2; i++)
            acc[i] = 0.f;
        float4 *px = reinterpret_cast<float4 *>(gbase + C::OFF_PX) + threadIdx.x % 128;
        /* the consumer's dQ share (64 x 128 f32, four swizzled 32-column boxes: 32 KB) is
         * staged in the stage buffer this consumer read last and the other no longer reads
         * once barrier 1 is passed (consumer 0: dO, read by its dV; consumer 1: Q, by its dK);
         * the sync warp adds both and then releases the stage */
        const uint32_t dq_buf = cw == 0 ? sO : sQ;
        bk_mbar_wait(kv_full, 0);
        afrag_t kv_frag; /* the first NR_A k16 blocks of the consumer's K or V rows */
        load_afrag(kv_frag, cw == 0 ? sK : sV);

        for (int it = 0; it < w_ntile() * p.group; it++) {
            const int st = it % S, m0 = row_of(it % w_ntile(), w_tlo(), w_ntile()) * BM;
            const uint32_t q_s = sQ + st * C::QO_BYTES, o_s = sO + st * C::QO_BYTES;
            bk_mbar_wait(q_full(st), (uint32_t)(it / S) & 1u);

            float sd[BM / 2]; /* S^T (consumer 0) or dP^T (consumer 1) */
            bk_wgmma_fence();
            issue_kt(sd, cw == 0 ? sK : sV, cw == 0 ? q_s : o_s, &kv_frag);
            bk_wgmma_commit();
            bk_wgmma_wait<0>();
            bk_wgmma_pin(sd);
            if (cw == 0) {
                const int j0 = w_jt() * BN;
                bwd90_probs<BM, BN>(sd, sL + st * BM, j0, DET ? j0 + kr : jg0_a, m0, p, t4);
#pragma unroll
                for (int v = 0; v < BM / 8; v++)
                    px[v * 128] = make_float4(sd[4 * v], sd[4 * v + 1], sd[4 * v + 2], sd[4 * v + 3]);
                bwd90_bar_arrive<kBarP, 256>();
            } else {
                bwd90_bar_sync<kBarP, 256>();
                /* dS^T = P^T (dP^T - D_i): P^T's elements 4 v .. 4 v + 3 in px[v * 128] */
                const float *Ds = sD + st * BM;
#pragma unroll
                for (int v = 0; v < BM / 8; v++) {
                    const float4 q = px[v * 128];
                    const float2 d2 = *reinterpret_cast<const float2 *>(Ds + 8 * v + 2 * t4);
                    sd[4 * v] = q.x * (sd[4 * v] - d2.x), sd[4 * v + 1] = q.y * (sd[4 * v + 1] - d2.y);
                    sd[4 * v + 2] = q.z * (sd[4 * v + 2] - d2.x), sd[4 * v + 3] = q.w * (sd[4 * v + 3] - d2.y);
                }
            }
            uint32_t fa[BM / 16][4];
            pack_a(fa, sd);
            if (cw == 1) {
                store_dst(sDS, fa);
                bk_fence_proxy_async();
            }
            /* dV += P^T dO (consumer 0), dK += dS^T Q (consumer 1), 64 keys x D, k16 steps
             * over the BM queries. B (16 queries x D): N-major (imm-trans-b 1), rows 16 kb ..
             * of the tile: + 2048 bytes a step, LBO = BM * 128 (the next column block), SBO =
             * 1024. */
            const uint32_t b_s = cw == 0 ? o_s : q_s;
            bk_wgmma_pin(acc);
            bk_wgmma_fence();
#pragma unroll
            for (int kb = 0; kb < BM / 16; kb++)
                bk_wgmma<T, D>::rs(acc, fa[kb], bk_wgmma_desc(b_s + kb * 2048, BM * 128, 1024), 1);
            bk_wgmma_commit();
            bwd90_bar_sync<1, 256>(); /* dS^T stored and visible to wgmma */

            /* dQ columns 128 c .. (64 queries x 128) = dS K over the BN keys: K from column
             * block 2 c */
            float dq[64];
            bwd90_dq_product<T, BN>(dq, sDS, sK + 2 * cw * BN * 128);
            bk_wgmma_wait<0>();
            bk_wgmma_pin(dq);
            bk_wgmma_pin(acc);
            bk_keep_regs(reinterpret_cast<uint32_t(&)[BM / 4]>(fa));
            /* staged for the sync warp (DET: which adds in the semaphores' order) */
            bwd90_bar_sync<kBarDqFree, kBarDqThreads>();
            bwd90_store_dq(dq, dq_buf + st * C::QO_BYTES, kr, g, t4);
            bk_fence_proxy_async();
            bk_mbar_arrive(q_empty(st)); /* Q, dO, lse, D_i of this stage read */
            bwd90_bar_arrive<kBarDqFull, kBarDqThreads>();
        }
        if (cw == 0)
            store_keys(p.dv, p.sdv0, p.sdv1, p.sdv2, acc, 1.f);
        else
            store_keys(p.dk, p.sdk0, p.sdk1, p.sdk2, acc, p.scale);
    } else {
        /* D 64 / 128: consumer c owns keys 64 c .. 64 c + 63 and both their dK and dV (64 x D
         * f32) in registers. Per step: S^T, dP^T (64 x BM) by wgmma SS (K_c / V_c, Q / dO
         * K-major); P^T, dS^T in registers (masked where the tile crosses the diagonal / Sk);
         * dV += P^T dO, dK += dS^T Q by wgmma RS (B N-major); dS^T to shared memory
         * (double-buffered), named barrier 1, then dQ = dS K over the 128 keys (SS, dS^T
         * M-major): consumer c takes rows 64c (D 64) or columns 64c (D 128). Atomic mode: the
         * share into the consumer's swizzled f32 tile, one thread adds it to dq_acc by TMA
         * under the next step's first products (bwd90_stage_dq, bwd90_issue_dq); DET: the same
         * tile, added by the sync warp. D 64 (EARLY_DV): S^T and dP^T in two commit groups,
         * P^T computed and dV issued while dP^T is in flight. */
        const uint32_t kA = sK + cw * 64 * 128, vA = sV + cw * 64 * 128; /* this consumer's K / V rows */
        /* dQ share: rows 64 mb .. of the step's BM (D 64), columns 64 nb .. of D (D 128) */
        const int mb = BM == 128 ? cw : 0, nb = BM == 64 ? cw : 0;
        /* the atomic mode's dQ staging tile of this consumer, and its thread that issues the
           reduce-adds */
        const uint32_t sDQ = base + C::OFF_DQ + cw * C::DQ_SHARE;
        uint32_t dq_buf = sDQ; /* atomic mode: the buffer staged last (+ 2 DQ_SHARE every other step) */
        const bool issuer = threadIdx.x % 128 == 0;
        float dk[D / 2], dv[D / 2];
#pragma unroll
        for (int i = 0; i < D / 2; i++)
            dk[i] = dv[i] = 0.f;
        bk_mbar_wait(kv_full, 0);

        /* atomic mode: the q head and first row of the dQ share staged at the end of the
           previous step (dq_h < 0: none), added under this step's first products */
        int dq_h = -1, dq_m0 = 0;
        for (int it = 0; it < w_ntile() * p.group; it++) {
            const int st = it % S, h = w_hk() * p.group + it / w_ntile(), m0 = row_of(it % w_ntile(), w_tlo(), w_ntile()) * BM;
            const uint32_t q_s = sQ + st * C::QO_BYTES, o_s = sO + st * C::QO_BYTES,
                           ds_b = sDS + (it & 1) * C::DS_BYTES;
            bk_mbar_wait(q_full(st), (uint32_t)(it / S) & 1u);

            /* S^T = K_c Q^T and dP^T = V_c dO^T (64 keys x BM rows) */
            float s_t[BM / 2], dp_t[BM / 2];
            bk_wgmma_fence();
            issue_kt(s_t, kA, q_s);
            if constexpr (C::EARLY_DV) /* S^T a group of its own */
                bk_wgmma_commit();
            issue_kt(dp_t, vA, o_s);
            bk_wgmma_commit();
            if (!DET && dq_h >= 0)
                bwd90_issue_dq(&tm_dq, dq_buf, issuer, cw, nb * 64, dq_m0 + mb * 64, dq_h, (int)w_b());
            bk_wgmma_wait<C::EARLY_DV ? 1 : 0>();
            bk_wgmma_pin(s_t);
            if constexpr (!C::EARLY_DV)
                bk_wgmma_pin(dp_t);
            /* P^T in place (bwd90_probs's math) and dS^T = P^T (dP^T - D_i): fused, or with
             * EARLY_DV P^T while dP^T is in flight and dS^T after dV's issue */
            const float *Ls = sL + st * BM, *Ds = sD + st * BM;
            const int j0 = w_jt() * BN, jg0 = DET ? j0 + cw * 64 + kr : jg0_a, jg1 = jg0 + 8;
            const bool need_mask = j0 + BN > Sk || (p.causal && j0 + BN - 1 > m0 + off);
            const int lim0 = jg0 >= Sk ? INT_MAX : p.causal ? jg0 - off - m0 - 2 * t4 : INT_MIN;
            const int lim1 = jg1 >= Sk ? INT_MAX : p.causal ? jg1 - off - m0 - 2 * t4 : INT_MIN;
            auto ds_of = [&](int j, int e) {
                const float2 d2 = *reinterpret_cast<const float2 *>(Ds + 8 * j + 2 * t4);
                dp_t[4 * j + e] = s_t[4 * j + e] * (dp_t[4 * j + e] - ((e & 1) ? d2.y : d2.x));
            };
#pragma unroll
            for (int j = 0; j < BM / 8; j++) {
                const float2 l2 = *reinterpret_cast<const float2 *>(Ls + 8 * j + 2 * t4);
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float pp = bk_ex2(fmaf(s_t[4 * j + e], scale_log2, -((e & 1) ? l2.y : l2.x)));
                    if (need_mask && 8 * j + (e & 1) < (e < 2 ? lim0 : lim1))
                        pp = 0.f;
                    s_t[4 * j + e] = pp;
                    if constexpr (!C::EARLY_DV)
                        ds_of(j, e);
                }
            }
            /* dV += P^T dO, dK += dS^T Q (64 keys x D), k16 steps over the BM queries; B as
             * in the D 256 branch above. The forward's O += P V, operand for operand. */
            uint32_t pa[BM / 16][4], ga[BM / 16][4];
            pack_a(pa, s_t);
            auto issue_dv = [&]() {
#pragma unroll
                for (int kb = 0; kb < BM / 16; kb++)
                    bk_wgmma<T, D>::rs(dv, pa[kb], bk_wgmma_desc(o_s + kb * 2048, BM * 128, 1024), 1);
            };
            if constexpr (C::EARLY_DV) {
                bk_wgmma_pin(dv);
                bk_wgmma_fence();
                issue_dv();
                bk_wgmma_commit();
                bk_wgmma_wait<1>(); /* dP^T landed, dV in flight */
                bk_wgmma_pin(dp_t);
#pragma unroll
                for (int j = 0; j < BM / 8; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        ds_of(j, e);
            }
            pack_a(ga, dp_t);
            store_dst(ds_b, ga);
            bk_wgmma_pin(dv);
            bk_wgmma_pin(dk);
            bk_wgmma_fence();
            if constexpr (!C::EARLY_DV)
                issue_dv();
#pragma unroll
            for (int kb = 0; kb < BM / 16; kb++)
                bk_wgmma<T, D>::rs(dk, ga[kb], bk_wgmma_desc(q_s + kb * 2048, BM * 128, 1024), 1);
            bk_wgmma_commit();

            /* dS^T of both consumers stored and visible to wgmma */
            bk_fence_proxy_async();
            bwd90_bar_sync<1, 256>();

            /* dQ share (64 x 64) = dS K over all BN keys: dS^T from query block mb, K from
             * column block nb */
            float dq[32];
            bwd90_dq_product<T, BN>(dq, ds_b + mb * BN * 128, sK + nb * BN * 128);
            bk_wgmma_wait<0>();
            bk_wgmma_pin(dq);
            bk_wgmma_pin(dv);
            bk_wgmma_pin(dk);
            bk_keep_regs(reinterpret_cast<uint32_t(&)[BM / 4]>(pa));
            bk_keep_regs(reinterpret_cast<uint32_t(&)[BM / 4]>(ga));
            bk_mbar_arrive(q_empty(st)); /* Q, dO, lse, D_i of this stage read */
            if constexpr (DET) { /* staged for the sync warp, which adds in the semaphores' order */
                bwd90_bar_sync<kBarDqFree, kBarDqThreads>();
                bwd90_store_dq(dq, sDQ, kr, g, t4);
                bk_fence_proxy_async();
                bwd90_bar_arrive<kBarDqFull, kBarDqThreads>();
            } else {
                dq_buf = sDQ + (C::DQ_BUFS == 2 ? (it & 1) * 2 * C::DQ_SHARE : 0);
                bwd90_stage_dq<C::DQ_BUFS - 1>(dq, dq_buf, issuer, cw, kr, g, t4);
                dq_h = h, dq_m0 = m0;
            }
        }
        if (!DET && dq_h >= 0)
            bwd90_issue_dq(&tm_dq, dq_buf, issuer, cw, nb * 64, dq_m0 + mb * 64, dq_h, (int)w_b());
        if (!DET && issuer) /* the last reduce-adds written (and their tile read) before the exit */
            bk_bulk_wait<0>();
        /* dK (times the scale) and dV of the thread's keys */
        store_keys(p.dk, p.sdk0, p.sdk1, p.sdk2, dk, p.scale);
        store_keys(p.dv, p.sdv0, p.sdv1, p.sdv2, dv, 1.f);
    }
#else
    (void)tm_q, (void)tm_k, (void)tm_v, (void)tm_o, (void)p;
#endif
}

/* ------------------------------------------------------------- host side -- */

template <typename T, int D, bool DET> static bool bwd90_built()
{
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, sdpa_bwd_sm90_kernel<T, D, DET>) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return fa.binaryVersion == 90;
}

extern "C" const char *bk_cuda_sdpa_bwd_sm90_rejects(const bk_sdpa_bwd_desc *d)
{
    if (d->dtype != BK_DTYPE_F16 && d->dtype != BK_DTYPE_BF16)
        return "the Hopper kernel takes f16 and bf16 only";
    if (d->head_dim_qk != d->head_dim_v ||
        (d->head_dim_qk != 64 && d->head_dim_qk != 128 && d->head_dim_qk != 256))
        return "the Hopper kernel takes head_dim_qk == head_dim_v in {64, 128, 256}";
    if (d->softcap > 0.0 || d->alibi || d->window_left >= 0)
        return "the Hopper kernel has no softcap, ALiBi or sliding window";
    return NULL;
}

long long bk_sm90_bwd_det_sems(const bk_sdpa_bwd_desc *d)
{
    const long long tiles = d->head_dim_qk == 64    ? bwd90_det_row_tiles<64>(d->q_len)
                            : d->head_dim_qk == 128 ? bwd90_det_row_tiles<128>(d->q_len)
                                                    : bwd90_det_row_tiles<256>(d->q_len);
    return (long long)d->batch * d->q_heads * tiles;
}

/* f(T, D) for the problem's dtype and head dim (the dispatch of every host function below) */
#define BWD90_DISPATCH(d, EXPR)                                                                                  \
    ((d)->dtype == BK_DTYPE_BF16                                                                                \
         ? ((d)->head_dim_qk == 64    ? EXPR(__nv_bfloat16, 64)                                                 \
            : (d)->head_dim_qk == 128 ? EXPR(__nv_bfloat16, 128)                                                \
                                      : EXPR(__nv_bfloat16, 256))                                               \
         : ((d)->head_dim_qk == 64 ? EXPR(__half, 64) : (d)->head_dim_qk == 128 ? EXPR(__half, 128) : EXPR(__half, 256)))

template <bool DET> static bool bwd90_built_any(const bk_sdpa_bwd_desc *d)
{
#define BWD90_BUILT(T, D) bwd90_built<T, D, DET>()
    return BWD90_DISPATCH(d, BWD90_BUILT);
#undef BWD90_BUILT
}

bool bk_sm90_bwd_ready(const bk_sdpa_bwd_desc *d, const void *dq_acc, const void *dq_sync)
{
    if (bk_cuda_sdpa_bwd_sm90_rejects(d) != NULL || d->q_len <= 0 || d->kv_len <= 0 || d->q_len >= (1 << 30) ||
        d->kv_len >= (1 << 30) || (long long)d->q_len * (d->q_heads / d->kv_heads) >= (1LL << 30) ||
        ((uintptr_t)dq_acc & 15) != 0 || ((uintptr_t)dq_sync & 3) != 0)
        return false;
    if (!(dq_sync ? bwd90_built_any<true>(d) : bwd90_built_any<false>(d)))
        return false;
    return bk_cuda_smem_fits(d->head_dim_qk == 64    ? bwd90_tiles<64>::SMEM
                             : d->head_dim_qk == 128 ? bwd90_tiles<128>::SMEM
                                                     : bwd90_tiles<256>::SMEM);
}

template <typename T, int D, bool DET>
static bk_status bwd90_launch(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, const float *lse_rows,
                              const float *d_rows, float *dq_acc, int *dq_sync, cudaStream_t s)
{
    typedef bwd90_tiles<D> C;
    const char *op = "sdpa_bwd";
    auto kernel = sdpa_bwd_sm90_kernel<T, D, DET>;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)C::SMEM) != cudaSuccess) {
        cudaGetLastError();
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: %zu bytes of shared memory per block are not available",
                       C::SMEM);
    }
    const bool bf16 = std::is_same<T, __nv_bfloat16>::value;
    CUtensorMap tq, tk, tv, to, tdq;
    memset(&tdq, 0, sizeof tdq);
    memset(&tq, 0, sizeof tq);
    memset(&tk, 0, sizeof tk);
    memset(&tv, 0, sizeof tv);
    memset(&to, 0, sizeof to);
    /* [B, H, S, D] views as (D, S, H, B) */
    const long long dq4[4] = {D, d->q_len, d->q_heads, d->batch}, dk4[4] = {D, d->kv_len, d->kv_heads, d->batch};
    const long long sq[3] = {a->q.strides[2], a->q.strides[1], a->q.strides[0]};
    const long long so[3] = {a->dy.strides[2], a->dy.strides[1], a->dy.strides[0]};
    const long long sk[3] = {a->k.strides[2], a->k.strides[1], a->k.strides[0]};
    const long long sv[3] = {a->v.strides[2], a->v.strides[1], a->v.strides[0]};
    const int bq[4] = {64, C::BM, 1, 1}, bkv[4] = {64, C::BN, 1, 1};
    BK_TRY(bk_tma_encode(&tq, a->q.data, bk_tma_16bit(bf16), dq4, sq, bq, op));
    BK_TRY(bk_tma_encode(&to, a->dy.data, bk_tma_16bit(bf16), dq4, so, bq, op));
    BK_TRY(bk_tma_encode(&tk, a->k.data, bk_tma_16bit(bf16), dk4, sk, bkv, op));
    BK_TRY(bk_tma_encode(&tv, a->v.data, bk_tma_16bit(bf16), dk4, sv, bkv, op));
    { /* dq_acc [B, Hq, Sq, D] f32, boxes of 64 rows x 32 columns */
        const long long sdq[3] = {D, (long long)d->q_len * D, (long long)d->q_heads * d->q_len * D};
        const int bdq[4] = {32, 64, 1, 1};
        BK_TRY(bk_tma_encode(&tdq, dq_acc, BK_TMA_F32, dq4, sdq, bdq, op));
    }

    bwd90_params p;
    memset(&p, 0, sizeof p);
    p.lrow = lse_rows;
    p.drow = d_rows;
    p.dq_ticket = dq_sync;
    p.dq_sem = DET ? dq_sync + (long long)d->batch * d->kv_heads : NULL;
    p.dk = a->dk.data;
    p.dv = a->dv.data;
    p.sdk0 = a->dk.strides[0], p.sdk1 = a->dk.strides[1], p.sdk2 = a->dk.strides[2];
    p.sdv0 = a->dv.strides[0], p.sdv1 = a->dv.strides[1], p.sdv2 = a->dv.strides[2];
    p.Hq = d->q_heads;
    p.group = d->q_heads / d->kv_heads;
    p.Sq = d->q_len;
    p.Sk = d->kv_len;
    p.off = d->kv_len - d->q_len;
    p.causal = d->causal;
    /* DET's rotated walks need every CTA of a (b, kv head) on the GPU at once (one CTA per
     * SM): a CTA may wait for one of its group that starts after it. So only without the
     * causal mask and with at most half the device's SMs in key tiles, a margin for other
     * kernels holding SMs meanwhile (attention.h says what can still stall it); nrt nkt <
     * 2^29 keeps bwd90_add_position in 32 bits. The window is every row tile (narrower
     * ones, which keep fewer rows in L2, are no faster: bench/RESULTS.md). */
    const int nrt = (d->q_len + C::BM - 1) / C::BM, nkt = (d->kv_len + C::BN - 1) / C::BN;
    int sms = 0;
    p.rotate = DET && !d->causal && nrt >= 2 && (long long)nrt * nkt < (1 << 29) && bk_cuda_sm_count(&sms) &&
                       nkt <= sms / 2
                   ? nrt : 0;
    p.scale = (float)d->scale;
    p.scale_log2 = (float)(d->scale * 1.4426950408889634);
    p.q_h = sq[1] != 0, p.q_b = sq[2] != 0, p.o_h = so[1] != 0, p.o_b = so[2] != 0;
    p.k_h = sk[1] != 0, p.k_b = sk[2] != 0, p.v_h = sv[1] != 0, p.v_b = sv[2] != 0;

    if (cudaMemsetAsync(dq_acc, 0, (size_t)d->batch * d->q_heads * d->q_len * D * sizeof(float), s) != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: clearing the dq accumulator failed: %s",
                       cudaGetErrorString(cudaGetLastError()));
    if (DET && cudaMemsetAsync(dq_sync, 0,
                               4 * ((size_t)d->batch * d->kv_heads + (size_t)bk_sm90_bwd_det_sems(d)), s) != cudaSuccess)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "sdpa_bwd: clearing the dq semaphores failed: %s",
                       cudaGetErrorString(cudaGetLastError()));
    for (int b0 = 0; b0 < d->batch; b0 += 65535) {
        p.b0 = b0;
        const dim3 grid((unsigned)nkt, (unsigned)d->kv_heads,
                        (unsigned)(d->batch - b0 < 65535 ? d->batch - b0 : 65535));
        kernel<<<grid, C::THREADS, C::SMEM, s>>>(tq, tk, tv, to, tdq, p);
    }
    return bk_cuda_check_launch(op);
}

template <bool DET>
static bk_status bwd90_launch_any(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, const float *lse_rows,
                                  const float *d_rows, float *dq_acc, int *dq_sync, cudaStream_t s)
{
#define BWD90_LAUNCH(T, D) bwd90_launch<T, D, DET>(d, a, lse_rows, d_rows, dq_acc, dq_sync, s)
    return BWD90_DISPATCH(d, BWD90_LAUNCH);
#undef BWD90_LAUNCH
}

bk_status bk_sm90_bwd_launch(const bk_sdpa_bwd_desc *d, const bk_sdpa_bwd_args *a, const float *lse_rows,
                             const float *d_rows, float *dq_acc, int *dq_sync, cudaStream_t s)
{
    return dq_sync ? bwd90_launch_any<true>(d, a, lse_rows, d_rows, dq_acc, dq_sync, s)
                   : bwd90_launch_any<false>(d, a, lse_rows, d_rows, dq_acc, dq_sync, s);
}
