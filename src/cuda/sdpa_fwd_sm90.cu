/* sdpa_fwd_sm90.cu - the Hopper flash-attention forward (sm_90a): one warp-specialised
 * kernel for sdpa_fwd (dense views) and paged_prefill (K/V in pages).
 *
 * Math as sdpa_fwd.cu: S = scale Q K^T (+ softcap / ALiBi), masked (causal bottom-right,
 *   window, past Sk), online softmax in log2 units (exp2, the scale folded into log2 e),
 *   O = P V / l, lse = (m + log2 l) ln 2. f16/bf16 in, f32 accumulate, P rounded to T.
 * Shapes: Dqk == Dv = D in {64, 128, 256}; rows 16-byte aligned (else sdpa_fwd.cu's
 *   mma.sync kernel runs). Dense: q [B,Hq,Sq,D], k/v [B,Hkv,Sk,D] (stride 0 on a head or
 *   batch axis allowed), y [B,Hq,Sq,D]. Paged: q/y [rows,Hq,D] by q_indptr, K/V pages.
 * Tiling (sm90_tiles<D, NC, PAGED>): a CTA owns BM = 64 NC query rows of one (batch,
 *   head) (paged GQA: of the 2^qpack q heads of a kv group, sm90_qpack); K and V stream
 *   through a ring of STAGES buffers of BN keys, stored as 128-byte-swizzle atoms
 *   [D/64][rows][64]. One CTA per SM, two for dense D 64 with two consumers (CTAS).
 * Warps: 1 + NC warpgroups (NC consumers: 3 for dense D 64 problems whose tiles see whole
 *   key tiles, sm90_consumers; else 2).
 *   - warpgroup 0, the producer, gives registers up (setmaxnreg) and loads Q once per
 *     unit (dense D 64 / 128: into one of two buffers, so the next unit's Q lands while
 *     this one runs), then K(n), V(n) for every key tile, waiting on each buffer's empty
 *     mbarrier: dense, TMA from one thread (tensor maps encoded on the host in run);
 *     paged, Q by TMA, K / V by a TMA box per page of 64+ rows (one warp, load_pages),
 *     cp.async by the warpgroup for pages of 4..32 rows (load_tile_slots) or by row
 *     (other sizes).
 *   - warpgroups 1..NC, the consumers, take the registers; each owns 64 query rows.
 *     Per key tile n: O += P(n-1) V(n-1) (wgmma, P from registers) and S(n) = Q K(n)^T
 *     (wgmma from shared memory), then the mask and the online softmax of S(n) make P(n);
 *     most D 128 / 256 problems (sm90_tiles::overlap) run the softmax of S(n) while
 *     P(n-1) V(n-1) is in flight. The consumers take turns at issuing (a ring of named
 *     barriers 1..NC), so one's softmax runs under the others' products; each thread
 *     arrives on a buffer's empty barrier once the products that read it are done.
 * Scheduler: persistent, min(work, SMs) CTAs striding over the units (sm90_units): dense
 *   (b, h, query tile), causal ones as pairs of tiles t and last - t of one head; paged
 *   (tile id, q head group), the request found on the device from q_indptr by the
 *   producer, which hands the unit to the consumers in shared memory (sm90_slot), so run
 *   stays asynchronous and graph-capturable. The ring's phases carry across units.
 * Output: y and lse straight from registers (store_rows, as the other kernels).
 * Not yet: the in-warpgroup overlap at D 64; packing the query heads of a GQA group for
 *   dense problems; a second Q buffer at D 256 or for pages; y through shared memory and
 *   a TMA store; Dqk != Dv; a fast path for pages of 1 or 2 rows (a quarter of the dense
 *   speed); pages of 4..32 rows at dense speed (the consumers wait on the cp.async
 *   copies). */
#include "hopper.cuh"
#include "sdpa_fwd_tiles.cuh"

#include <cudaTypedefs.h>
#include <limits.h>


/* The tile sizes, the register split and the shared-memory map of one head dim and count
 * of consumer warpgroups (sm90_consumers). */
template <int D, int NC, bool PAGED = false> struct sm90_tiles {
    static_assert(NC == 2 || (NC == 3 && D == 64), "3 consumers only at D 64");
    /* CTAs per SM: dense D 64 with two consumers (causal below S 4096, windows, softcap,
       ALiBi) runs two, with 64-key tiles and 104-register consumers, so four consumer
       warpgroups share an SM instead of two (faster on short causal rows, though ptxas
       serialises the wgmma at 104 registers; measurements: bench/RESULTS.md) */
    static constexpr int CTAS = D == 64 && NC == 2 && !PAGED ? 2 : 1;
    static constexpr int BM = 64 * NC; /* query rows per CTA */
    /* keys per K / V buffer: 64 at D 256 and with two CTAs per SM, else 128 (64-key tiles
       with one CTA per SM are slower at D 64 / 128; tile trials: bench/RESULTS.md) */
    static constexpr int BN = D == 256 || CTAS == 2 ? 64 : 128;
    static constexpr int STAGES = 2; /* K/V ring depth (3 gains nothing at D 64 NC 3 nor D 128) */
    /* every EX2_FMA_EVERY-th key block's exponentials on the FMA pipe (0: none): at D 64
       the softmax, not the tensor cores, sets the pace (the MUFU pipe does 16 exponentials
       per clock per SM); one in 8 balances the two pipes best (bench/RESULTS.md) */
    static constexpr int EX2_FMA_EVERY = D == 64 ? 8 : 0;
    /* the softmax of S(n) under P(n-1) V(n-1) inside a warpgroup (on top of the ping-pong):
       dense D 128 / 256 and pages at D 128, where it is faster; not at D 64 (no steady
       gain), nor where it adds spills (D 256 with softcap / ALiBi; pages at D 256 or
       with softcap / ALiBi); measurements: bench/RESULTS.md */
    static constexpr bool overlap(bool paged, bool gen)
    {
        return paged ? D == 128 && !gen : D >= 128 && !(gen && D == 256);
    }
    static constexpr int THREADS = 128 * (1 + NC); /* the producer warpgroup + the consumers */
    /* setmaxnreg split of the registers the CTA holds: LAUNCH_REGS per thread at launch
       (__launch_bounds__(THREADS, CTAS)), so producer + consumers <= (1 + NC) x
       LAUNCH_REGS; asking for more blocks the consumers for ever */
    static constexpr int LAUNCH_REGS = 65536 / CTAS / THREADS / 8 * 8;
    static constexpr int PRODUCER_REGS = CTAS == 2 ? 24 : NC == 3 ? 32 : D == 256 ? 40 : 56;
    static constexpr int CONSUMER_REGS = CTAS == 2 ? 104 : NC == 3 ? 160 : D == 256 ? 232 : 224;
    static_assert(PRODUCER_REGS + NC * CONSUMER_REGS <= (1 + NC) * LAUNCH_REGS,
                  "more registers than the CTA holds");
    /* Q buffers: with two, the producer loads the next unit's Q while this one runs (dense:
       faster at D 64 S 512, no change elsewhere; pages: slower, so one; D 256 has no room
       for a second; measurements: bench/RESULTS.md) */
    static constexpr int Q_STAGES = D == 256 || PAGED ? 1 : 2;
    static constexpr uint32_t Q_BYTES = BM * D * 2, KV_BYTES = BN * D * 2;
    static constexpr uint32_t OFF_K = Q_STAGES * Q_BYTES, OFF_V = OFF_K + STAGES * KV_BYTES,
                              OFF_BAR = OFF_V + STAGES * KV_BYTES,
                              OFF_UNIT = OFF_BAR + 8 * (2 * Q_STAGES + 4 * STAGES);
    /* barriers: q_full, q_empty per Q buffer, then k_full, k_empty, v_full, v_empty per
       stage; then per Q buffer the unit the producer hands to the consumers (sm90_slot) */
    static constexpr size_t SMEM = OFF_UNIT + 64 * Q_STAGES + 1024; /* + 1024: alignment */
    static_assert(SMEM <= 227 * 1024, "more shared memory than an H100 block may opt in to");
};

#if BK_HAS_WGMMA
/* The work unit u of the persistent loop: its (b, h), query tile (of BM rows) and (paged)
 * first page position, with p rebased for paged units; false for units that hold no rows. */
static __device__ __forceinline__ bool sm90_unit(sdpa_params &p, bool paged, int BM, long long u, long long units,
                                                 long long &b, long long &h, long long &tile, long long &first)
{
    first = 0;
    if (paged) { /* (tile id, group of 2^qpack q heads); causal: the last tile ids (each
                    request's heaviest tiles) first */
        const long long hg = p.Hq >> p.qpack, id = p.causal ? units / hg - 1 - u / hg : u / hg;
        return paged_tile(p, BM >> p.qpack, (int)id, (int)((u % hg) << p.qpack), b, h, tile, first);
    }
    const long long tiles = (p.Sq + BM - 1) / BM;
    long long bh;
    if (p.causal) { /* see sm90_units: the CTA's k-th unit is half k & 1 of its (k >> 1)-th pair */
        const long long pph = (tiles + 1) / 2, k = u / gridDim.x;
        const long long q = u % gridDim.x + (k >> 1) * gridDim.x, t = q % pph;
        if (q >= (long long)p.B * p.Hq * pph || ((k & 1) && t == tiles - 1 - t))
            return false; /* past the last pair, or the middle tile of an odd count (no partner) */
        tile = (k & 1) ? t : tiles - 1 - t; /* the heavy tile, then its light partner */
        bh = q / pph;
    } else { /* the tiles of one head together (its K/V stay in L2) */
        tile = u % tiles;
        bh = u / tiles;
    }
    b = bh / p.Hq;
    h = bh % p.Hq;
    return true;
}

/* A ring position: buffer and phase parity of the it-th K/V tile since the kernel began. */
template <int STAGES> struct ring_pos {
    int stage;
    uint32_t phase;
    __device__ __forceinline__ ring_pos(int it) : stage(it % STAGES), phase((uint32_t)(it / STAGES) & 1u) {}
};

#endif

/* kLoadDense: ROWS rows from row r0 of slice (c2, c3) of a [.., .., rows, D] tensor map into
 * the swizzled buffer at dst (one box per 64-column block), completing bar, whose byte
 * count this thread announces. */
template <int D, int ROWS>
static __device__ __forceinline__ void tma_rows(uint32_t dst, const CUtensorMap *map, uint32_t bar, int r0, int c2,
                                                int c3)
{
    bk_mbar_arrive_expect_tx(bar, ROWS * D * 2);
#pragma unroll
    for (int c = 0; c < D / 64; c++)
        bk_tma_load_4d(dst + c * ROWS * 128, map, bar, c * 64, r0, c2, c3);
}

/* kLoadPages, the page ids of key tile n: lane i < BN / page_size holds slot i's page id
 * and whether the slot's page lies wholly inside the request's tokens (then, if the id
 * resolves, a TMA box serves it: load_pages tests the id). Read one tile ahead and tested
 * only when used, so the loads' latency hides behind the waits. */
struct page_slot {
    int pid;
    bool inside;
};
template <int BN>
static __device__ __forceinline__ page_slot read_slot(const sdpa_params &p, int n, long long first, int lane)
{
    const int ps = p.t.page_size;
    page_slot sl = {0, false};
    if (lane < BN / ps) {
        const long long js = (long long)n * BN + (long long)lane * ps, pi = first + js / ps;
        if (js + ps <= p.Sk && pi >= 0 && pi < p.t.n_indices) {
            sl.pid = p.t.indices[pi];
            sl.inside = true;
        }
    }
    return sl;
}

/* kLoadPages: key tile n of kv head g into the swizzled buffer at dst, by the producer
 * warp: lane 0 issues a TMA box (page_size rows per 64-column block) for every whole slot;
 * the warp gathers the other rows by cp.async (the request's partial last page, zero past
 * its end; unresolvable pages, zero). All 32 lanes and lane 0's byte count make the
 * buffer's 33 arrivals. */
template <typename T, int D, int BN, typename SRC>
static __device__ __forceinline__ void load_pages(uint32_t dst, const CUtensorMap *map, uint32_t bar, const SRC &rows,
                                                  const sdpa_params &p, int n, int g, page_slot sl, int lane)
{
    const int ps = p.t.page_size, nslot = BN / ps;
    const long long j0 = (long long)n * BN;
    const bool whole = sl.inside && sl.pid >= 0 && sl.pid < p.t.num_pages;
    const unsigned by_tma = __ballot_sync(0xffffffffu, whole), all = nslot >= 32 ? 0xffffffffu : (1u << nslot) - 1;
    if (lane == 0)
        bk_mbar_arrive_expect_tx(bar, (uint32_t)(__popc(by_tma) * ps * D * 2));
    for (int i = 0; i < nslot; i++) {
        const int pg = __shfl_sync(0xffffffffu, sl.pid, i);
        if (lane == 0 && ((by_tma >> i) & 1u))
#pragma unroll
            for (int c = 0; c < D / 64; c++)
                bk_tma_load_4d(dst + c * BN * 128 + i * ps * 128, map, bar, c * 64, 0, g, pg);
    }
    if (by_tma != all) {
        constexpr int C = D / 8;
        for (int idx = lane; idx < BN * C; idx += 32) {
            const int r = idx / C, c = idx % C;
            if ((by_tma >> (r / ps)) & 1u)
                continue;
            bool ok = j0 + r < p.Sk;
            const T *src = (ok ? rows.at(j0 + r, ok) : rows.base()) + c * 8;
            bk_cp_async16(dst + (uint32_t)((c >> 3) * BN * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)), src, ok ? 16 : 0);
        }
        bk_cp_async_commit();
        bk_cp_async_wait_group<0>();
        bk_fence_proxy_async();
    }
    bk_mbar_arrive(bar);
}

/* How the producer fills the buffers. */
enum sm90_load {
    kLoadDense = 0,  /* dense views: TMA boxes of Q, K, V (one thread) */
    kLoadPages = 1,  /* pages of 64+ rows that tile BN: a TMA box per page, a gather for the
                        request's partial last page and unresolvable pages (one warp) */
    kLoadGather = 2, /* other page sizes: cp.async gathers of every row (the warpgroup) */
    kLoadSlots = 3,  /* kLoadSlots + k, k = 0..3: pages of 4 << k rows that tile BN, cp.async
                        by the warpgroup, each warp's lanes holding the tile's page ids */
};

/* kLoadSlots: the page id of slot `lane` of key tile n (lanes < BN / page_size) as the
 * table holds it, -1 when the slot lies past the request's tokens; read a tile ahead and
 * passed through slot_checked only when used (a test right after the load would wait for
 * it there). slot_checked: the id, or -1 where the table cannot resolve it (its rows are
 * zero-filled). */
template <int BN>
static __device__ __forceinline__ int slot_page(const sdpa_params &p, int n, long long first, int lane)
{
    const int ps = p.t.page_size, nslot = BN / ps;
    const long long pi = first + (long long)n * nslot + lane;
    if (lane >= nslot || (long long)n * BN + (long long)lane * ps >= p.Sk || pi < 0 || pi >= p.t.n_indices)
        return -1;
    return p.t.indices[pi];
}
#if BK_HAS_WGMMA /* its one caller, the kernel's body, exists on sm_90a only */
static __device__ __forceinline__ int slot_checked(const sdpa_params &p, int pid)
{
    return pid >= 0 && pid < p.t.num_pages ? pid : -1;
}
#endif

/* kLoadSlots: key tile n (`rows` of its ROWS rows hold tokens) of one kv head into the
 * swizzled buffer at s, by the producer warpgroup's 128 threads with cp.async, pages of PS
 * rows. Warp w copies rows [w RW, (w + 1) RW), RW = ROWS / 4, in passes of RPW = 32 / C whole
 * rows (C = D / 8 16-byte chunks a row; lane = row rl of the pass x chunk c), so a pass lies
 * in one page and a warp touches RW / PS pages (one when PS >= RW). Per page one shuffle of
 * its id (lane i holds slot i's, slot_page) and one 64-bit address, then copies at
 * immediate offsets: the swizzle term of pass j is (c & 7) ^ rl ^ ((j RPW) & 7), so a few
 * destination bases serve every pass. pool_g points at the kv head's rows of page 0,
 * page_stride elements apart; an id < 0 zero-fills its page, as rows >= `rows` are (FULL:
 * all ROWS rows hold tokens). */
template <typename T, int ROWS, int D, int PS, bool FULL>
static __device__ __forceinline__ void load_tile_slots_pass(uint32_t s, const T *pool_g, int page_stride, int pid,
                                                            int rows, int tid)
{
    constexpr int C = D / 8, RPW = 32 / C, RW = ROWS / 4;
    static_assert(32 % C == 0 && PS % RPW == 0 && RW % 8 == 0 && RW % RPW == 0, "tile must split evenly");
    const int w = tid >> 5, lane = tid & 31, rl = lane / C, c = lane % C, r0 = w * RW + rl;
    /* (r0 + rb) & 7 = rl ^ (rb & 7): RW is a multiple of 8, rb of RPW, rl < RPW */
    uint32_t dst_base[8];
#pragma unroll
    for (int k = 0; k < 8; k++)
        dst_base[k] = s + (uint32_t)((c >> 3) * ROWS * 128 + r0 * 128) + ((uint32_t)((c & 7) ^ rl ^ k) << 4);
    const T *lane_src = pool_g + (long long)((PS > RW ? (w * RW) % PS : 0) + rl) * D + c * 8, *src = lane_src;
    int ok = 0;
#pragma unroll
    for (int rb = 0; rb < RW; rb += RPW) { /* the pass's first row, from the warp's */
        if (rb == 0 || (PS <= RW && rb % PS == 0)) { /* a new page */
            const int pg = __shfl_sync(0xffffffffu, pid, PS <= RW ? w * (RW / PS) + rb / PS : (w * RW) / PS);
            ok = pg >= 0 ? 16 : 0;
            src = lane_src + (long long)max(pg, 0) * page_stride;
        }
        const int bytes = FULL ? ok : (r0 + rb < rows ? ok : 0);
        bk_cp_async16(dst_base[rb & 7] + (uint32_t)(rb * 128), src + (PS <= RW ? rb % PS : rb) * D, bytes);
    }
}
template <typename T, int ROWS, int D, int PS>
static __device__ __forceinline__ void load_tile_slots(uint32_t s, const T *pool_g, int page_stride, int pid, int rows,
                                                       int tid)
{
    if (rows >= ROWS)
        load_tile_slots_pass<T, ROWS, D, PS, true>(s, pool_g, page_stride, pid, rows, tid);
    else
        load_tile_slots_pass<T, ROWS, D, PS, false>(s, pool_g, page_stride, pid, rows, tid);
}

#if BK_HAS_WGMMA
/* One work unit as both roles see it: the problem rebased on it (paged), its (b, h), query
 * tile, first page position, first row and key tiles. */
struct sm90_work {
    sdpa_params p;
    long long b, h, tile, first, m0;
    key_tiles kt;
};
/* Advances u (by the grid's stride) to the CTA's next unit that holds rows; false when
 * none is left. Dense: producer and consumers walk the same sequence (arithmetic only);
 * paged: the producer walks it (global loads of q_indptr and the page table) and hands
 * each unit to the consumers through an sm90_slot. */
template <int BM, int BN>
static __device__ __forceinline__ bool sm90_next(const sdpa_params &p0, bool paged, long long &u, long long units,
                                                 sm90_work &w)
{
    for (; u < units; u += gridDim.x) {
        w.p = p0;
        if (sm90_unit(w.p, paged, BM, u, units, w.b, w.h, w.tile, w.first)) {
            const int rows = paged ? BM >> w.p.qpack : BM; /* query rows of a tile */
            w.m0 = w.tile * rows;
            w.kt = key_tile_range<BN>(w.p, w.m0, rows);
            return true;
        }
    }
    return false;
}
/* The unit the producer hands over in shared memory, one slot per Q buffer: written by
 * producer thread 0 before its arrival on the buffer's q_full (release), read by the
 * consumers after their wait on it (acquire), rewritten only after its q_empty (every
 * consumer has read it). valid = 0 ends the consumers' loop. */
struct sm90_slot {
    int b, h, tile, Sq, Sk, valid; /* b: the first q row for paged units (int32 rows) */
};
static __device__ __forceinline__ void sm90_publish(uint32_t slot_addr, const sm90_work *w)
{
    sm90_slot *slot = reinterpret_cast<sm90_slot *>(__cvta_shared_to_generic(slot_addr));
    if (w) {
        slot->b = (int)w->b, slot->h = (int)w->h, slot->tile = (int)w->tile;
        slot->Sq = w->p.Sq, slot->Sk = w->p.Sk;
    }
    slot->valid = w != NULL;
}
/* The consumers' copy of the published unit; false at the end. */
template <int BM, int BN>
static __device__ __forceinline__ bool sm90_take(uint32_t slot_addr, const sdpa_params &p0, sm90_work &w)
{
    const sm90_slot *slot = reinterpret_cast<const sm90_slot *>(__cvta_shared_to_generic(slot_addr));
    if (!slot->valid)
        return false;
    w.p = p0;
    w.b = slot->b, w.h = slot->h, w.tile = slot->tile;
    w.p.Sq = slot->Sq, w.p.Sk = slot->Sk;
    w.m0 = w.tile * (BM >> w.p.qpack);
    w.kt = key_tile_range<BN>(w.p, w.m0, BM >> w.p.qpack);
    return true;
}
#endif

template <typename T, int D, bool GEN, int LOAD, int NC>
__global__ void __launch_bounds__(sm90_tiles<D, NC>::THREADS, sm90_tiles<D, NC, LOAD != kLoadDense>::CTAS)
    sdpa_fwd_sm90_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                         const __grid_constant__ CUtensorMap tm_v, const sdpa_params p0, const long long units)
{
#if BK_HAS_WGMMA
    constexpr bool PAGED = LOAD != kLoadDense;
    typedef sm90_tiles<D, NC, PAGED> C;
    static_assert(!PAGED || C::BM == kSm90Rows, "paged tile ids are counted in kSm90Rows rows");
    constexpr int BM = C::BM, BN = C::BN, NB = BN / 8, DB = D / 8, S = C::STAGES;
    extern __shared__ __align__(1024) unsigned char smem_sm90[];
    const uint32_t sQ = (bk_smem_addr(smem_sm90) + 1023u) & ~1023u, sK = sQ + C::OFF_K, sV = sQ + C::OFF_V;
    constexpr int QS = C::Q_STAGES;
    const uint32_t bar = sQ + C::OFF_BAR;
    /* Q buffer i (of unit k: i = k % QS): its barriers, its unit slot and its rows */
    auto q_full = [=](int i) { return bar + 8 * i; };
    auto q_empty = [=](int i) { return bar + 8 * (QS + i); };
    auto unit_slot = [=](int i) { return sQ + C::OFF_UNIT + 64 * i; };
    auto q_buf = [=](int i) { return sQ + i * C::Q_BYTES; };
    /* the ring's barriers, per stage: K full / empty, V full / empty */
    const uint32_t kv_bar = bar + 16 * QS;
    auto k_full = [=](int st) { return kv_bar + 8 * st; };
    auto k_empty = [=](int st) { return kv_bar + 8 * (S + st); };
    auto v_full = [=](int st) { return kv_bar + 8 * (2 * S + st); };
    auto v_empty = [=](int st) { return kv_bar + 8 * (3 * S + st); };
    const int wg = threadIdx.x / 128;
    if (threadIdx.x == 0) {
        /* arrivals that fill a buffer: the TMA thread; or it and the warp's 32 lanes; or
           the warpgroup's 128 threads' cp.async arrivals */
        const uint32_t fill = LOAD == kLoadDense ? 1u : LOAD == kLoadPages ? 33u : 128u;
        /* q_full: thread 0's arrival with the Q copies' byte count (paged: it also releases
           the published unit) */
        for (int i = 0; i < QS; i++) {
            bk_mbar_init(q_full(i), 1u);
            bk_mbar_init(q_empty(i), 128 * NC);
        }
        for (int s = 0; s < S; s++) {
            bk_mbar_init(k_full(s), fill);
            bk_mbar_init(v_full(s), fill);
            bk_mbar_init(k_empty(s), 128 * NC);
            bk_mbar_init(v_empty(s), 128 * NC);
        }
        bk_mbar_init_fence();
    }
    __syncthreads();

    if (wg == 0) {
        /* ------------------------------------------------------------ producer */
        bk_regs_dec<C::PRODUCER_REGS>();
        const int tid = threadIdx.x;
        if ((LOAD == kLoadDense && tid != 0) || (LOAD == kLoadPages && tid >= 32))
            return;
        int it = 0, n_units = 0;
        sm90_work w;
        for (long long u = blockIdx.x; sm90_next<BM, BN>(p0, PAGED, u, units, w); u += gridDim.x) {
            const sdpa_params &p = w.p;
            const long long b = w.b, h = w.h, first = w.first, m0 = w.m0, hk = h / p.group;
            const key_tiles &kt = w.kt;
            const int qs = n_units % QS;
            bk_mbar_wait(q_empty(qs), ((uint32_t)(n_units / QS) & 1u) ^ 1u);
            n_units++;
            if (PAGED && tid == 0) { /* the unit, then its Q rows b + m0 .. of heads h .. h +
                                        2^qpack - 1 by TMA ([rows, Hq, D] as (D, Hq, rows), a
                                        box of 2^qpack heads x BM >> qpack rows: rows of the
                                        next request are loaded, never stored; past the last
                                        row, zeros); the expect-tx arrival releases the unit */
                sm90_publish(unit_slot(qs), &w);
                bk_mbar_arrive_expect_tx(q_full(qs), C::Q_BYTES);
#pragma unroll
                for (int c = 0; c < D / 64; c++)
                    bk_tma_load_4d(q_buf(qs) + c * BM * 128, &tm_q, q_full(qs), c * 64, p.sq.s1 ? (int)h : 0,
                                   (int)(b + m0), 0);
            }
            if constexpr (!PAGED) {
                /* one thread, TMA: broadcast axes (stride 0) have extent 1 in the maps */
                const int qh = p.sq.s1 ? (int)h : 0, qbt = p.sq.s0 ? (int)b : 0;
                const int kh = p.sk.s1 ? (int)hk : 0, kbt = p.sk.s0 ? (int)b : 0;
                const int vh = p.sv.s1 ? (int)hk : 0, vbt = p.sv.s0 ? (int)b : 0;
                tma_rows<D, BM>(q_buf(qs), &tm_q, q_full(qs), (int)m0, qh, qbt);
                for (int n = kt.n_lo; n <= kt.n_hi; n++, it++) {
                    const ring_pos<S> r(it);
                    bk_mbar_wait(k_empty(r.stage), r.phase ^ 1u);
                    tma_rows<D, BN>(sK + r.stage * C::KV_BYTES, &tm_k, k_full(r.stage), n * BN, kh, kbt);
                    bk_mbar_wait(v_empty(r.stage), r.phase ^ 1u);
                    tma_rows<D, BN>(sV + r.stage * C::KV_BYTES, &tm_v, v_full(r.stage), n * BN, vh, vbt);
                }
            } else if constexpr (LOAD == kLoadPages) {
                typedef typename kv_rows_of<T, D, true>::type kv_rows;
                const kv_rows kb = kv_rows_of<T, D, true>::make(p.k, p, b, hk, first, p.sk);
                const kv_rows vb = kv_rows_of<T, D, true>::make(p.v, p, b, hk, first, p.sv);
                page_slot cur = read_slot<BN>(p, kt.n_lo, first, tid);
                for (int n = kt.n_lo; n <= kt.n_hi; n++, it++) {
                    const ring_pos<S> r(it);
                    const page_slot next = n < kt.n_hi ? read_slot<BN>(p, n + 1, first, tid) : cur;
                    bk_mbar_wait(k_empty(r.stage), r.phase ^ 1u);
                    load_pages<T, D, BN>(sK + r.stage * C::KV_BYTES, &tm_k, k_full(r.stage), kb, p, n, (int)hk, cur,
                                         tid);
                    bk_mbar_wait(v_empty(r.stage), r.phase ^ 1u);
                    load_pages<T, D, BN>(sV + r.stage * C::KV_BYTES, &tm_v, v_full(r.stage), vb, p, n, (int)hk, cur,
                                         tid);
                    cur = next;
                }
            } else {
                /* 128 threads, cp.async: each thread's copies arrive on the buffer's full
                 * barrier when they land (cp.async.mbarrier.arrive, count 128), so the
                 * producer never waits for its own loads and runs ahead by the ring's depth;
                 * the consumers fence the proxies after each wait (cp.async writes are not
                 * the async proxy's). kLoadSlots: the tile's page ids in the warps' lanes;
                 * kLoadGather: a table lookup per row. */
                typedef typename kv_rows_of<T, D, true>::type kv_rows;
                const kv_rows kb = kv_rows_of<T, D, true>::make(p.k, p, b, hk, first, p.sk);
                const kv_rows vb = kv_rows_of<T, D, true>::make(p.v, p, b, hk, first, p.sv);
                constexpr bool SLOTS = LOAD >= kLoadSlots;
                const int ps = p.t.page_size;
                const long long head_off = hk * (long long)ps * D;
                const int page_stride = (int)((long long)p.t.kv_heads * ps * D); /* < 2^31 for kLoadSlots */
                int pid = SLOTS ? slot_checked(p, slot_page<BN>(p, kt.n_lo, first, tid & 31)) : 0;
                auto load_kv = [&](uint32_t dst, const kv_rows &rows, const void *pool, int n) {
                    if constexpr (SLOTS)
                        load_tile_slots<T, BN, D, (4 << (LOAD - kLoadSlots))>(
                            dst, (const T *)pool + head_off, page_stride, pid,
                            (int)min((long long)BN, p.Sk - (long long)n * BN), tid);
                    else
                        load_tile_sw128<T, BN, D, 128>(dst, rows, (long long)n * BN, p.Sk, tid);
                };
                for (int n = kt.n_lo; n <= kt.n_hi; n++, it++) {
                    const ring_pos<S> r(it);
                    const int next = SLOTS && n < kt.n_hi ? slot_page<BN>(p, n + 1, first, tid & 31) : 0;
                    bk_mbar_wait(k_empty(r.stage), r.phase ^ 1u);
                    load_kv(sK + r.stage * C::KV_BYTES, kb, p.k, n);
                    bk_cp_async_mbar_arrive(k_full(r.stage));
                    bk_mbar_wait(v_empty(r.stage), r.phase ^ 1u);
                    load_kv(sV + r.stage * C::KV_BYTES, vb, p.v, n);
                    bk_cp_async_mbar_arrive(v_full(r.stage));
                    pid = SLOTS ? slot_checked(p, next) : 0;
                }
            }
        }
        if constexpr (PAGED) {
            /* the end: once every consumer has read the last unit, an empty slot */
            const int qs = n_units % QS;
            bk_mbar_wait(q_empty(qs), ((uint32_t)(n_units / QS) & 1u) ^ 1u);
            if (tid == 0) {
                sm90_publish(unit_slot(qs), NULL);
                bk_mbar_arrive(q_full(qs));
            }
        }
        return;
    }

    /* -------------------------------------------------------------- consumers */
    bk_regs_inc<C::CONSUMER_REGS>();
    const int cw = wg - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane >> 2, t4 = lane & 3;
    const int rbase = cw * 64 + warp * 16 + g; /* the thread's first row in the tile */
    const float mul = GEN ? 1.f : p0.scale_log2;
    if (cw == NC - 1) /* the first consumer issues first */
        bk_named_arrive(1, 256);
    /* after a wait on a buffer that cp.async filled: its writes made visible to wgmma */
    auto cp_async_seen = [&]() {
        if constexpr (LOAD >= kLoadGather)
            bk_fence_proxy_async();
    };
    int it = 0, n_units = 0;
    sm90_work w;
    for (long long u = blockIdx.x;; u += gridDim.x) {
        const int qs = n_units % QS;
        const uint32_t q_phase = (uint32_t)(n_units / QS) & 1u;
        if constexpr (PAGED) { /* the unit the producer found (its lookups are global loads) */
            bk_mbar_wait(q_full(qs), q_phase);
            n_units++;
            cp_async_seen();
            if (!sm90_take<BM, BN>(unit_slot(qs), p0, w))
                break;
        } else if (!sm90_next<BM, BN>(p0, false, u, units, w)) { /* dense: arithmetic only */
            break;
        }
        const sdpa_params &p = w.p;
        const long long b = w.b, h = w.h, m0 = w.m0;
        const key_tiles &kt = w.kt;
        const float slope = GEN && p.alibi ? p.slopes[h * p.sslope] : 0.f;
        float acc_o[1][DB][4];
        float(&of)[DB * 4] = reinterpret_cast<float(&)[DB * 4]>(acc_o);
#pragma unroll
        for (int i = 0; i < DB * 4; i++)
            of[i] = 0.f;
        float m_r[1][2] = {{-INFINITY, -INFINITY}}, l_r[1][2] = {{0.f, 0.f}};
        uint32_t pk[1][NB][2];
        uint32_t(&pkf)[NB * 2] = reinterpret_cast<uint32_t(&)[NB * 2]>(pk);
        float s[1][NB][4];
        float(&sf)[NB * 4] = reinterpret_cast<float(&)[NB * 4]>(s);
        if constexpr (!PAGED) {
            bk_mbar_wait(q_full(qs), q_phase);
            n_units++;
        }
        const uint32_t qa = q_buf(qs) + cw * 64 * 128; /* this warpgroup's Q rows in each column block */

        /* S(n) = Q K(n)^T into s, from buffer `stage` (issued, not waited for; the caller
         * opens the stage with bk_wgmma_fence) */
        auto issue_s = [&](int stage) {
            const uint32_t kbase = sK + stage * C::KV_BYTES;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const uint32_t koff = (uint32_t)(kk & 3) * 32; /* k16 step inside the 64-column block */
                const uint64_t da = bk_wgmma_desc(qa + (kk >> 2) * BM * 128 + koff, 16, 1024);
                const uint64_t db = bk_wgmma_desc(kbase + (kk >> 2) * BN * 128 + koff, 16, 1024);
                if (kk == 0) /* s only written: the previous scores may still be in use */
                    bk_wgmma<T, BN>::ss_first(sf, da, db);
                else
                    bk_wgmma<T, BN>::ss(sf, da, db, 1);
            }
            bk_wgmma_commit();
        };
        /* O += P V(buffer `stage`) (issued, not waited for; the caller opens the stage) */
        auto issue_pv = [&](int stage) {
            const uint32_t vbase = sV + stage * C::KV_BYTES;
#pragma unroll
            for (int kb2 = 0; kb2 < BN / 16; kb2++) {
                const uint32_t a[4] = {pk[0][2 * kb2][0], pk[0][2 * kb2][1], pk[0][2 * kb2 + 1][0],
                                       pk[0][2 * kb2 + 1][1]};
                const uint64_t db = bk_wgmma_desc(vbase + kb2 * 16 * 128, BN * 128, 1024);
                bk_wgmma<T, D>::rs(of, a, db, 1);
            }
            bk_wgmma_commit();
        };
        /* the score transform and the masks of tile n, in place */
        auto scores = [&](int n) {
            const long long nBN = (long long)n * BN;
            if constexpr (GEN)
                score_transform<1, NB, PAGED>(p, s, slope, m0, rbase, nBN, t4);
            if (n < kt.nf_lo || n > kt.nf_hi)
                mask_tile<1, NB, BN, PAGED>(p, s, m0, rbase, nBN, t4);
        };
        /* ... and the online softmax of tile n: P into pk */
        auto softmax = [&](int n) {
            scores(n);
            softmax_step<T, 1, NB, DB, true, C::EX2_FMA_EVERY>(s, m_r, l_r, acc_o, pk, mul);
        };
        /* Ping-pong: the consumer warpgroups take turns at issuing their products, in a
         * ring of named barriers (1 + cw: consumer cw's turn), so one's softmax runs under
         * the others' wgmmas. */
        auto my_turn = [&]() { bk_named_sync(1 + cw, 256); };
        auto their_turn = [&]() { bk_named_arrive(1 + (cw + 1) % NC, 256); };

        if (kt.n_hi < kt.n_lo) { /* no visible key: y = 0, lse = -inf */
            bk_mbar_arrive(q_empty(qs));
        } else {
            /* Per key tile n: O += P(n-1) V(n-1) and S(n) = Q K(n)^T issued together, both
             * waited for, then the softmax of S(n) (the other warpgroup's products run
             * meanwhile). The first tile has no P V, the last step no S. */
            ring_pos<S> r(it++);
            bk_mbar_wait(k_full(r.stage), r.phase);
            cp_async_seen();
            my_turn();
            bk_wgmma_fence();
            issue_s(r.stage);
            their_turn();
            bk_wgmma_wait<0>();
            bk_wgmma_pin(sf);
            bk_mbar_arrive(k_empty(r.stage));
            if (kt.n_lo == kt.n_hi)
                bk_mbar_arrive(q_empty(qs));
            softmax(kt.n_lo);
            for (int n = kt.n_lo + 1; n <= kt.n_hi; n++) {
                const ring_pos<S> rn(it++);
                bk_mbar_wait(k_full(rn.stage), rn.phase);
                bk_mbar_wait(v_full(r.stage), r.phase);
                cp_async_seen();
                bk_wgmma_pin(of);
                bk_keep_regs(pkf);
                if constexpr (C::overlap(PAGED, GEN)) {
                    /* S(n) first, then O += P(n-1) V(n-1) (two groups); the softmax of S(n) runs
                       in f32, in place, while the P V group is in flight; O is rescaled and P(n)
                       packed once P V has landed (writing P's packed registers during the
                       flight would make ptxas serialise the wgmmas, C7513) */
                    my_turn();
                    bk_wgmma_fence();
                    issue_s(rn.stage);
                    bk_wgmma_fence(); /* a stage of its own: P V's operands are set up after S's issue */
                    issue_pv(r.stage);
                    their_turn();
                    bk_wgmma_wait<1>();
                    bk_wgmma_pin(sf);
                    bk_mbar_arrive(k_empty(rn.stage));
                    if (n == kt.n_hi)
                        bk_mbar_arrive(q_empty(qs));
                    scores(n);
                    float corr[1][2];
                    const bool upd = softmax_max<1, NB, true>(s, m_r, corr, mul);
                    softmax_exp_f32<1, NB, C::EX2_FMA_EVERY>(s, m_r, l_r, corr, mul);
                    bk_wgmma_wait<0>();
                    bk_wgmma_pin(of);
                    bk_keep_regs(pkf);
                    bk_mbar_arrive(v_empty(r.stage));
                    if (upd)
                        softmax_rescale_o<1, DB>(acc_o, corr);
                    softmax_pack<T, 1, NB>(s, pk); /* P(n) for the next step's P V */
                } else {
                    my_turn();
                    bk_wgmma_fence();
                    issue_pv(r.stage);
                    issue_s(rn.stage);
                    their_turn();
                    bk_wgmma_wait<0>();
                    bk_wgmma_pin(sf);
                    bk_wgmma_pin(of);
                    bk_keep_regs(pkf);
                    bk_mbar_arrive(k_empty(rn.stage));
                    bk_mbar_arrive(v_empty(r.stage));
                    if (n == kt.n_hi)
                        bk_mbar_arrive(q_empty(qs));
                    softmax(n);
                }
                r = rn;
            }
            bk_mbar_wait(v_full(r.stage), r.phase);
            cp_async_seen();
            bk_wgmma_pin(of);
            bk_keep_regs(pkf);
            my_turn();
            bk_wgmma_fence();
            issue_pv(r.stage);
            their_turn();
            bk_wgmma_wait<0>();
            bk_wgmma_pin(of);
            bk_keep_regs(pkf);
            bk_mbar_arrive(v_empty(r.stage));
        }
        store_rows<T, 1, DB, PAGED>(p, acc_o, m_r, l_r, b, h, m0, rbase, t4);
    }
    if (cw == 0) /* the turn the last consumer handed over after its last products */
        bk_named_sync(1, 256);
#else
    (void)tm_q, (void)tm_k, (void)tm_v, (void)p0, (void)units;
#endif
}

/* ------------------------------------------------------------- host side -- */

bk_status bk_tma_encode(CUtensorMap *map, const void *base, bk_tma_elem elem, const long long dims[4],
                        const long long strides[3], const int box[4], const char *op)
{
    const int esize = elem == BK_TMA_F32 ? 4 : 2;
    static PFN_cuTensorMapEncodeTiled_v12000 encode = NULL;
    if (!encode) {
        void *fn = NULL;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) !=
                cudaSuccess ||
            q != cudaDriverEntryPointSuccess || !fn) {
            cudaGetLastError();
            return bk_fail(BK_STATUS_DEVICE_ERROR, "%s: the driver has no cuTensorMapEncodeTiled", op);
        }
        encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    }
    cuuint64_t gdim[4], gstride[3];
    for (int i = 0; i < 4; i++)
        gdim[i] = (cuuint64_t)(dims[i] > 0 ? dims[i] : 1);
    for (int i = 0; i < 3; i++) {
        if (strides[i] == 0) /* a broadcast axis: one slice, addressed at 0 */
            gdim[i + 1] = 1;
        /* any valid stride serves an extent-1 axis */
        gstride[i] = (cuuint64_t)(strides[i] != 0 ? strides[i] * esize : 16);
    }
    const cuuint32_t bx[4] = {(cuuint32_t)box[0], (cuuint32_t)box[1], (cuuint32_t)box[2], (cuuint32_t)box[3]},
                     estride[4] = {1, 1, 1, 1};
    const CUtensorMapDataType type = elem == BK_TMA_F32    ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                     : elem == BK_TMA_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                           : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    CUresult r = encode(map, type, 4,
                        const_cast<void *>(base), gdim, gstride, bx, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return bk_fail(BK_STATUS_DEVICE_ERROR, "%s: cuTensorMapEncodeTiled failed (CUresult %d)", op, (int)r);
    return BK_STATUS_SUCCESS;
}

/* The persistent loop's unit count. Dense non-causal units are (b, h, query tile of BM
 * rows), a head's tiles together; paged units (tile id, group of 2^qpack q heads). Dense
 * causal units pair query tile t with tile tiles - 1 - t of the same head: a pair's two tiles see
 * tiles + 1 key tiles together whatever t, so the CTAs, each taking whole pairs (heavy tile
 * first) in a fixed stride, get equal work, and the pairs of one head run side by side (its
 * K/V stay in L2). The count is rounded up to whole strides of the grid, min(pairs, SMs);
 * sm90_unit skips the indices past the last pair. */
static long long sm90_units(const sdpa_params &p, bool paged, int BM, long long ids, int sms)
{
    if (paged)
        return ids * (p.Hq >> p.qpack);
    const long long tiles = (p.Sq + BM - 1) / BM;
    if (!p.causal)
        return (long long)p.B * p.Hq * tiles;
    const long long pairs = (long long)p.B * p.Hq * ((tiles + 1) / 2), grid = pairs < sms ? pairs : sms;
    return 2 * ((pairs + grid - 1) / grid) * grid;
}

/* The consumer warpgroups of a dense problem (gen: softcap / ALiBi): 3 (192-row tiles) at
 * D 64 without a mask, or causal from 4096 query rows on, where they are faster than 2;
 * 2 elsewhere: where the causal diagonal or a window leaves much of a 192-row tile's
 * products masked, and with softcap / ALiBi, whose transform spills at 160 registers a
 * thread. Two at D 64 run two CTAs per SM (sm90_tiles::CTAS), still slower than 3 causal
 * from 4096 rows on (measurements: bench/RESULTS.md). */
static int sm90_consumers(const sdpa_params &p, bool gen)
{
    const bool wide = p.window < 0 && (!p.causal || p.Sq >= 4096);
    return p.Dqk == 64 && !gen && wide ? 3 : 2;
}

/* Launches the persistent kernel on min(work, sms) CTAs; ids: the paged tile ids per head. */
template <typename T, int D, bool GEN, int LOAD, int NC>
static bk_status launch_sm90(const sdpa_params &p, long long ids, int sms, cudaStream_t s)
{
    typedef sm90_tiles<D, NC, LOAD != kLoadDense> C;
    sms *= C::CTAS; /* the CTAs that run at once */
    const bool paged = LOAD != kLoadDense;
    const long long units = sm90_units(p, paged, C::BM, ids, sms), work = paged || !p.causal ? units : units / 2;
    const long long grid = work < sms ? work : sms;
    const char *op = LOAD != kLoadDense ? "paged_prefill" : "sdpa_fwd";
    auto kernel = sdpa_fwd_sm90_kernel<T, D, GEN, LOAD, NC>;
    BK_TRY(set_smem(kernel, C::SMEM));
    CUtensorMap tq, tk, tv;
    memset(&tq, 0, sizeof tq);
    memset(&tk, 0, sizeof tk);
    memset(&tv, 0, sizeof tv);
    const bool bf16 = std::is_same<T, __nv_bfloat16>::value;
    if (LOAD == kLoadDense) { /* [B, H, S, D] views as (D, S, H, B) */
        const long long dq[4] = {D, p.Sq, p.Hq, p.B}, dkv[4] = {D, p.Sk, p.Hq / p.group, p.B};
        const long long sq[3] = {p.sq.s2, p.sq.s1, p.sq.s0}, sk[3] = {p.sk.s2, p.sk.s1, p.sk.s0},
                        sv[3] = {p.sv.s2, p.sv.s1, p.sv.s0};
        const int bq[4] = {64, C::BM, 1, 1}, bkv[4] = {64, C::BN, 1, 1};
        BK_TRY(bk_tma_encode(&tq, p.q, bk_tma_16bit(bf16), dq, sq, bq, op));
        BK_TRY(bk_tma_encode(&tk, p.k, bk_tma_16bit(bf16), dkv, sk, bkv, op));
        BK_TRY(bk_tma_encode(&tv, p.v, bk_tma_16bit(bf16), dkv, sv, bkv, op));
    } else { /* q [rows, Hq, D] as (D, Hq, rows); kLoadPages: pools as (D, slot, head, page) */
        const long long dq[4] = {D, p.Hq, p.total_rows, 1}, sq[3] = {p.sq.s1, p.sq.s0, 0};
        const int bq[4] = {64, 1 << p.qpack, C::BM >> p.qpack, 1};
        BK_TRY(bk_tma_encode(&tq, p.q, bk_tma_16bit(bf16), dq, sq, bq, op));
        if (LOAD == kLoadPages) {
            const paged_table &t = p.t;
            const long long dpool[4] = {D, t.page_size, t.kv_heads, t.num_pages},
                            spool[3] = {D, (long long)t.page_size * D, (long long)t.kv_heads * t.page_size * D};
            const int bpool[4] = {64, t.page_size, 1, 1};
            BK_TRY(bk_tma_encode(&tk, p.k, bk_tma_16bit(bf16), dpool, spool, bpool, op));
            BK_TRY(bk_tma_encode(&tv, p.v, bk_tma_16bit(bf16), dpool, spool, bpool, op));
        }
    }
    kernel<<<(unsigned)grid, C::THREADS, C::SMEM, s>>>(tq, tk, tv, p, units);
    return bk_cuda_check_launch(op);
}

template <typename T, int D, int LOAD>
static bk_status launch_sm90_load(const sdpa_params &p, long long ids, int sms, cudaStream_t s)
{
    const bool gen = p.softcap > 0.0 || p.alibi || !(p.scale_log2 > 0.f);
    if constexpr (D == 64 && LOAD == kLoadDense)
        if (sm90_consumers(p, gen) == 3)
            return launch_sm90<T, D, false, LOAD, 3>(p, ids, sms, s);
    return gen ? launch_sm90<T, D, true, LOAD, 2>(p, ids, sms, s) : launch_sm90<T, D, false, LOAD, 2>(p, ids, sms, s);
}

template <typename T, int D>
static bk_status launch_sm90_gen(const sdpa_params &p, bool paged, long long ids, int sms, cudaStream_t s)
{
    if (!paged)
        return launch_sm90_load<T, D, kLoadDense>(p, ids, sms, s);
    /* pages of 4..32 rows that tile BN: cp.async with the page ids in the warps' lanes;
       of 64+ rows: a TMA box per page (1 KiB-aligned swizzle atoms); else row gathers */
    const int ps = p.t.page_size, bn = sm90_tiles<D, 2>::BN;
    if (bn % ps == 0 && (long long)p.t.kv_heads * ps * D <= INT_MAX) {
        switch (ps) {
        case 4: return launch_sm90_load<T, D, kLoadSlots>(p, ids, sms, s);
        case 8: return launch_sm90_load<T, D, kLoadSlots + 1>(p, ids, sms, s);
        case 16: return launch_sm90_load<T, D, kLoadSlots + 2>(p, ids, sms, s);
        case 32: return launch_sm90_load<T, D, kLoadSlots + 3>(p, ids, sms, s);
        default: break;
        }
    }
    if (ps % 8 == 0 && bn % ps == 0)
        return launch_sm90_load<T, D, kLoadPages>(p, ids, sms, s);
    return launch_sm90_load<T, D, kLoadGather>(p, ids, sms, s);
}

template <typename T>
static bk_status launch_sm90_dim(const sdpa_params &p, bool paged, long long ids, int sms, cudaStream_t s)
{
    switch (p.Dqk) {
    case 64: return launch_sm90_gen<T, 64>(p, paged, ids, sms, s);
    case 128: return launch_sm90_gen<T, 128>(p, paged, ids, sms, s);
    default: return launch_sm90_gen<T, 256>(p, paged, ids, sms, s);
    }
}

bool bk_sm90_fwd_built(bk_dtype dtype)
{
    cudaFuncAttributes fa;
    cudaError_t e = dtype == BK_DTYPE_BF16
                        ? cudaFuncGetAttributes(&fa, sdpa_fwd_sm90_kernel<__nv_bfloat16, 128, false, kLoadDense, 2>)
                        : cudaFuncGetAttributes(&fa, sdpa_fwd_sm90_kernel<__half, 128, false, kLoadDense, 2>);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return fa.binaryVersion == 90;
}

/* GQA packing of a paged problem: log2 of the q heads of one kv group that share a tile
 * (their K/V rows then load once per tile for all of them), 0 for none. Packed: groups of 2
 * to 16 heads (a tile of 128 rows holds 128 >> qpack query rows of each), q heads apart in
 * memory (a stride-0 head axis is not packed), the tile ids within int range, and requests
 * of fewer query rows than a tile on average (total_rows < 128 batch), which an unpacked
 * tile would leave mostly empty. Long prefill is not packed: its K/V tiles come from L2
 * for the group's tiles anyway, and packed 32-row tiles are slower there (measurements:
 * bench/RESULTS.md). */
static int sm90_qpack(const sdpa_params &p)
{
    if ((long long)p.total_rows >= (long long)kSm90Rows * p.B)
        return 0;
    int k = 0;
    while (k < 4 && (2 << k) <= p.group)
        k++;
    const bool pow2 = (1 << k) == p.group;
    if (!pow2 || p.sq.s1 == 0 || p.alibi || (long long)p.B + ((long long)p.total_rows << k) / kSm90Rows + 1 > INT_MAX)
        return 0;
    return k;
}

bk_status bk_sm90_fwd_launch(const sdpa_params &p0, bk_dtype dtype, bool paged, cudaStream_t s)
{
    int sms = 0;
    if (!bk_cuda_sm_count(&sms))
        return bk_fail(BK_STATUS_DEVICE_ERROR, "%s: cannot read the device's multiprocessor count",
                       paged ? "paged_prefill" : "sdpa_fwd");
    sdpa_params p = p0;
    p.qpack = paged ? sm90_qpack(p0) : 0;
    /* paged tile ids: request b owns [b + q_indptr[b] / R, b + 1 + q_indptr[b+1] / R), R =
       the query rows of a tile (paged_tile) */
    const long long ids = paged ? (long long)p.B + p.total_rows / (kSm90Rows >> p.qpack) + 1 : 0;
    if (dtype == BK_DTYPE_BF16)
        return launch_sm90_dim<__nv_bfloat16>(p, paged, ids, sms, s);
    return launch_sm90_dim<__half>(p, paged, ids, sms, s);
}

extern "C" bk_status bk_cuda_sdpa_fwd_wgmma(const bk_sdpa_fwd_desc *d, const bk_sdpa_fwd_args *a, void *stream)
{
    if ((long long)d->batch * d->q_heads * d->q_len == 0)
        return BK_STATUS_SUCCESS;
    const sdpa_params p = make_params(d, a, kSm90Rows);
    if (!p.aligned || !bk_sm90_fwd_built(d->dtype))
        return bk_cuda_sdpa_fwd_mma(d, a, stream);
    return bk_sm90_fwd_launch(p, d->dtype, false, (cudaStream_t)stream);
}
