/* paged.cu - paged_decode, paged_prefill and attention_merge on CUDA (math: paged.h).
 * Online softmax in f32 with scores in base 2 (scaled by scale * log2 e).
 *
 * Split-KV (paged_decode): split s covers [s c, (s+1) c), c = ceil(kv_len / S), kv_len read
 *   on the device; with S > 1 partial o / lse go to the workspace and the merge kernel
 *   combines them (on sm_90 a programmatic dependent launch: its blocks wait for the
 *   decode's writes in griddepcontrol.wait, scheduled once every decode block has started).
 *   S = bk_cuda_paged_decode_splits, a pure function of the descriptor and the kernel (graph
 *   replays rely on it; the heuristic is described above it). Deterministic for a given S.
 * Trusted index data: a bad page id or kv_indices position hides its keys (never read);
 *   a request of no page has kv_len 0; last_page_len is clamped to [1, page_size].
 *
 * attention_merge (merge_kernel): 8 threads per output element, each folding every 8th
 *   part online, combined in a fixed order; it also merges the decode's split partials.
 *
 * paged_decode: two kernels, one grid (splits S, kv_heads x pair chunks, batch); a CTA
 *   takes a chunk of a kv head's R x group (query row, q head) pairs, so each K/V row is
 *   read once per chunk. Each warp loads its own keys through a cp.async ring (no block
 *   barrier in the key loop); R > 1 masks per pair (template CAUSAL). What the two share
 *   is described at the top of the decode section.
 *   - decode_tc_kernel (f16/bf16, R x group > 4): tensor cores (mma.sync m16n8k16, f32
 *     accumulate), 16 pairs a CTA, warp w taking keys [16 w, 16 w + 16) of a 64-key tile.
 *   - decode_kernel (f32, and f16/bf16 with R x group <= 4): f32 on CUDA cores, G <= 4
 *     pairs a CTA; 4 pairs or fewer stay on it (bench/RESULTS.md).
 *
 * paged_prefill, reference path (BK_PREFER_REFERENCE; the fast one is sdpa_fwd.cu's
 *   tensor-core kernels over pages, bk_cuda_paged_prefill_tc): prefill_kernel, f32 on CUDA
 *   cores, CTA = 16 query rows of one request and q head, K/V gathered in 32-key tiles.
 *
 * Not yet: the tensor-core kernel's wasted rows at R x group 5..15 (the m16 tile holds 16
 *   pairs); B1 kv32768 short of the read ceiling (one wave of 264 CTAs stops short of DRAM
 *   bandwidth whatever the kernel, bench/RESULTS.md); the H100's 132 x 2 slots
 *   hard-coded in the heuristic, and not tuned for the tensor-core kernel's 16-pair chunks;
 *   prefill enable_kv_split.
 */
#include "common.cuh"
#include "core/paged.h"
#include "cuda/paged_cuda.h"
#include "paged_table.cuh"
#include "sdpa_fwd_tiles.cuh" /* softmax_step: the tensor-core decode's online softmax */

#include <stdint.h>
#include <type_traits>

#define BK_LOG2E 1.4426950408889634f
#define BK_LN2 0.6931471805599453f

/* ---------------------------------------------------------------- merge -- */

struct merge_params {
    const void *op;
    long long op_r, op_p, op_h; /* o_parts strides (d stride 1) */
    const float *lp;
    long long lp_r, lp_p, lp_h;
    void *o;
    long long o_r, o_s, o_h;
    float *lse; /* NULL to skip */
    long long l_r, l_s, l_h;
    int rows, parts, heads, dim;
    int sub; /* output head h is (h / sub, h % sub) over strides (o_s, o_h): the decode's
                (query row, q head) pairs; heads for attention_merge (o_s unused) */
};


/* merge_kernel, for attention_merge and the decode's split partials: 8 threads per output
 * element. A block: 32 consecutive output elements (row, head, d) x 8 slices of the parts;
 * thread (slice s, element e) folds parts s, s + 8, ... online (running max, rescaled sum
 * and weighted sum; parts of lse -inf skipped; a warp's loads are 32 consecutive d of one
 * part), then slice 0 combines the 8 partials in slice order: the same order on every run
 * (all parts -inf: o = 0, lse = -inf). */
static const int kMergeElems = 32, kMergeSlices = 8;

template <typename TP, typename TO>
__global__ void __launch_bounds__(kMergeElems * kMergeSlices) merge_kernel(merge_params p)
{
    typedef typename elem<TO>::acc A;
    __shared__ float s_m[kMergeSlices][kMergeElems];
    __shared__ A s_sum[kMergeSlices][kMergeElems], s_acc[kMergeSlices][kMergeElems];
    bk_grid_dep_wait(); /* the decode's partials written (launched after it by launch_merge) */
    const int sl = threadIdx.x / kMergeElems, e = threadIdx.x % kMergeElems;
    const long long total = (long long)p.rows * p.heads * p.dim;
    for (long long n0 = blockIdx.x * (long long)kMergeElems; n0 < total; n0 += (long long)gridDim.x * kMergeElems) {
        const long long n = n0 + e, d = n % p.dim, rh = n / p.dim, h = rh % p.heads, r = rh / p.heads;
        float m = -INFINITY;
        A sum = 0, acc = 0;
        if (n < total) {
            const float *lp = p.lp + r * p.lp_r + h * p.lp_h;
            const TP *op = (const TP *)p.op + r * p.op_r + h * p.op_h + d;
            for (int q = sl; q < p.parts; q += kMergeSlices) {
                const float l = lp[q * p.lp_p];
                if (l == -INFINITY)
                    continue;
                const A v = (A)elem<TP>::load(op[q * p.op_p]);
                if (l > m) { /* exp(-inf) = 0 on the first part */
                    const A c = bk_exp((A)m - (A)l);
                    sum *= c, acc *= c, m = l;
                }
                const A w = bk_exp((A)l - (A)m);
                sum += w;
                acc += w * v;
            }
        }
        s_m[sl][e] = m, s_sum[sl][e] = sum, s_acc[sl][e] = acc;
        __syncthreads();
        if (sl == 0 && n < total) {
            float mx = -INFINITY;
            for (int i = 0; i < kMergeSlices; i++)
                mx = fmaxf(mx, s_m[i][e]);
            A tot = 0, out = 0;
            float lse = -INFINITY;
            if (mx != -INFINITY) {
                for (int i = 0; i < kMergeSlices; i++) {
                    if (s_m[i][e] == -INFINITY)
                        continue;
                    const A c = bk_exp((A)s_m[i][e] - (A)mx);
                    tot += c * s_sum[i][e];
                    out += c * s_acc[i][e];
                }
                out = out / tot;
                lse = (float)((A)mx + bk_log(tot));
            }
            const long long hs = h / p.sub, hh = h % p.sub;
            ((TO *)p.o)[r * p.o_r + hs * p.o_s + hh * p.o_h + d] = elem<TO>::store(out);
            if (p.lse && d == 0)
                p.lse[r * p.l_r + hs * p.l_s + hh * p.l_h] = lse;
        }
        __syncthreads();
    }
}

/* The merge on s; `after_decode` (sm_90 and later only): a programmatic dependent of the
   decode kernel just launched, so that its blocks are scheduled while the decode's last
   blocks run. */
template <typename TP, typename TO> static void launch_merge(const merge_params &p, bool after_decode, cudaStream_t s)
{
    long long total = (long long)p.rows * p.heads * p.dim;
    const dim3 grid(bk_grid_for(total, kMergeElems)), block(kMergeElems * kMergeSlices);
    if (total > 0 && after_decode)
        bk_launch_dependent(merge_kernel<TP, TO>, grid, block, 0, s, p);
    else if (total > 0)
        merge_kernel<TP, TO><<<grid, block, 0, s>>>(p);
}

extern "C" bk_status bk_cuda_attention_merge(const bk_attention_merge_desc *d, const bk_attention_merge_args *a,
                                             void *stream)
{
    merge_params p;
    p.op = a->o_parts.data;
    p.op_r = a->o_parts.strides[0];
    p.op_p = a->o_parts.strides[1];
    p.op_h = a->o_parts.strides[2];
    p.lp = (const float *)a->lse_parts.data;
    p.lp_r = a->lse_parts.strides[0];
    p.lp_p = a->lse_parts.strides[1];
    p.lp_h = a->lse_parts.strides[2];
    p.o = a->o.data;
    p.o_r = a->o.strides[0];
    p.o_h = a->o.strides[1];
    p.lse = a->lse ? (float *)a->lse->data : NULL;
    p.l_r = a->lse ? a->lse->strides[0] : 0;
    p.l_h = a->lse ? a->lse->strides[1] : 0;
    p.rows = d->rows;
    p.parts = d->parts;
    p.heads = d->heads;
    p.dim = d->head_dim;
    p.sub = d->heads;
    p.o_s = p.l_s = 0;
    cudaStream_t s = (cudaStream_t)stream;
    BK_DISPATCH_FLOAT(d->dtype, T, launch_merge<T, T>(p, false, s));
    return bk_cuda_check_launch("attention_merge");
}

/* --------------------------------------------------------------- shared -- */

/* 16-byte vectors to floats. */
template <typename T, int N> static __device__ __forceinline__ void to_float(const uint4 *v, float *f)
{
    const T *e = reinterpret_cast<const T *>(v);
#pragma unroll
    for (int i = 0; i < N; i++)
        f[i] = elem<T>::load(e[i]);
}

/* --------------------------------------------------------------- decode -- */

/* paged_decode, both kernels: one grid (splits S, kv_heads x pair chunks, batch). The R x
 * group (query row, q head) pairs of a kv head are the queries (pair pp = r * group + i:
 * row r, q head kvh * group + i); a CTA takes a chunk of them, so each K/V row is read once
 * per chunk. Both share the loader ideas, the key ranges, the split-KV contract (file
 * header) and the end (decode_issue, decode_keys_of, decode_finish):
 * - Keys: warp w copies and computes its own rows of each tile through a cp.async ring
 *   (16-byte copies, 128-byte L2 prefetch hint, page ids looked up a tile ahead), so the
 *   key loop has no block barrier (wait_group + __syncwarp before a stage is read,
 *   __syncwarp after). Keys past the range or with a bad page are zero-filled, never read,
 *   masked by the warp's ballot bits.
 * - Rows (R > 1, template CAUSAL): row r sees keys [0, kv_len - R + 1 + r); the CTA loads
 *   keys up to its last row's bound, and only tiles past its first row's bound (the last
 *   R - 1 keys: 1 or 2 tiles) mask per pair. R = 1 compiles to the one-row kernel, no
 *   per-key work added.
 */

struct decode_params {
    const void *q;
    long long q_b, q_r, q_h; /* strides of request, query row, q head */
    const void *k, *v;
    paged_table t;
    int q_heads, group, rows, pairs, gchunks, splits; /* rows = R; pairs = R * group per kv head */
    float scale_log2;
    void *o;
    long long o_b, o_r, o_h;
    float *lse;
    long long l_b, l_r, l_h;
    float *part_o, *part_lse;
};

template <typename T, int D> struct decode_cfg {
    static const int VEC = 16 / (int)sizeof(T);      /* elements per 16-byte vector */
    static const int LPR0 = D / VEC;
    static const int LPR = LPR0 > 32 ? 32 : LPR0;   /* lanes per K/V row (compute) */
    static const int EPL = D / LPR;                  /* elements per lane */
    static const int NV = EPL / VEC;                 /* vectors per lane */
    static const int RPW = 32 / LPR;                 /* rows per warp step */
    static const int WARPS = 4;
    static const int NRG = WARPS * RPW;              /* row-groups per CTA */
    static const int U = 4;                          /* rows per row-group per tile */
    static const int TK = NRG * U;                   /* keys per shared-memory tile */
    static const int WKEYS = RPW * U;                /* keys of a tile one warp loads and computes */
    static const int UPR = D / VEC;                  /* 16-byte units per row */
    static const int LLR = 32 / WKEYS;               /* loader lanes per row (LPR / 4) */
    static const int STAGES = 3;                     /* tiles in flight per warp (cp.async) */
    static const int STAGE_ELEMS = 2 * TK * D;       /* K tile then V tile */
    static const size_t PIPE_BYTES = (size_t)STAGES * STAGE_ELEMS * sizeof(T);
    static const size_t RED_BYTES = (size_t)NRG * 4 * D * sizeof(float); /* red_o at G = 4 */
    static const size_t SMEM = PIPE_BYTES > RED_BYTES ? PIPE_BYTES : RED_BYTES;
};

/* Where a loader lane's K/V row of a tile lives: page id (-1: none) and row in the page.
 * The page id is loaded one tile ahead of its use, so no cp.async waits on it. */
struct decode_rowref {
    int page, in;
};

static __device__ __forceinline__ decode_rowref decode_lookup(const paged_table &t, long long first, long long j,
                                                              long long hi)
{
    decode_rowref r = {-1, 0};
    if (j < hi) {
        long long pg;
        paged_split(t, j, pg, r.in);
        const long long pi = first + pg;
        if (pi >= 0 && pi < t.n_indices)
            r.page = t.indices[pi];
    }
    return r;
}

/* 16-byte cp.async, zero-filled when src_bytes = 0, with a 128-byte L2 prefetch hint: a
 * K/V row is D * sizeof(T) = 128 to 1024 bytes, a multiple of 128, so from a 128-byte
 * aligned pool the hint fetches no byte outside the row. It gains copy bandwidth over the
 * plain copy (bench/RESULTS.md). */
static __device__ __forceinline__ void decode_cp16(uint32_t dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

/* A loader lane's share of one K row and one V row (located by r, kv head kvh): its
 * 16-byte units sub + LLR i (i < D / VEC / LLR) into ks / vs, unit c at unit c ^ sw of the
 * shared row (sw = 0: plain rows; the tensor-core kernel's rows are XOR-swizzled),
 * zero-filled when the page is bad or r is past the range (never read from global).
 * Returns the warp's ok bits (ballot: bit lane is lane's row ok). */
template <typename T, int D, int LLR>
static __device__ __forceinline__ unsigned decode_issue(const decode_params &p, int kvh, const decode_rowref &r, T *ks,
                                                        T *vs, int sub, int sw)
{
    const int VEC = 16 / (int)sizeof(T), UPL = D / VEC / LLR;
    const bool ok = r.page >= 0 && r.page < p.t.num_pages;
    const long long e = ok ? (((long long)r.page * p.t.kv_heads + kvh) * p.t.page_size + r.in) * D : 0;
    const T *kg = (const T *)p.k + e, *vg = (const T *)p.v + e;
#pragma unroll
    for (int i = 0; i < UPL; i++) {
        const int c = sub + LLR * i, cs = (c ^ sw) * VEC;
        decode_cp16(bk_smem_addr(ks + cs), kg + c * VEC, ok ? 16 : 0);
        decode_cp16(bk_smem_addr(vs + cs), vg + c * VEC, ok ? 16 : 0);
    }
    return __ballot_sync(0xffffffffu, ok);
}

/* A warp's cp.async ring of STAGES tiles (per warp: the key loop needs no block barrier).
 * `lookup(t)` finds this lane's K/V row of tile t, `issue(row, stage)` copies it into the
 * stage and returns the warp's ok bits. Page ids are looked up a tile ahead of their
 * copies, so no cp.async waits on an index load. Use: start; per tile t: wait (then read
 * stage rd), next. */
template <int STAGES> struct decode_ring {
    unsigned okr[STAGES]; /* ok bits of tiles t, t + 1, ... (registers, rotated) */
    decode_rowref ref;    /* this lane's row of the next tile to issue */
    int rd, wr;           /* stage of tile t, stage tile t + STAGES - 1 goes to */

    /* Tiles 0 .. STAGES - 2 in flight. */
    template <typename L, typename I>
    __device__ __forceinline__ void start(const L &lookup, const I &issue, long long n_tiles)
    {
        ref = lookup(0);
#pragma unroll
        for (int st = 0; st < STAGES - 1; st++) {
            const decode_rowref nref = lookup(st + 1);
            okr[st] = st < n_tiles ? issue(ref, st) : 0u;
            bk_cp_async_commit();
            ref = nref;
        }
        okr[STAGES - 1] = 0u;
        rd = 0;
        wr = STAGES - 1;
    }
    /* Tile t + STAGES - 1 in flight, then tile t landed and visible to every lane of the
       warp (in stage rd); returns its ok bits. */
    template <typename L, typename I>
    __device__ __forceinline__ unsigned wait(long long t, const L &lookup, const I &issue, long long n_tiles)
    {
        const long long tn = t + STAGES - 1;
        const decode_rowref nref = lookup(tn + 1); /* a tile ahead: its page id lands meanwhile */
        okr[STAGES - 1] = tn < n_tiles ? issue(ref, wr) : 0u;
        bk_cp_async_commit();
        ref = nref;
        /* this lane's copies of tile t are done; the warp barrier (a memory barrier among
           its lanes) makes the other lanes' copies visible to it */
        bk_cp_async_wait_group<STAGES - 1>();
        __syncwarp();
        return okr[0];
    }
    /* Tile t read: every lane is done with stage rd before any lane refills it. */
    __device__ __forceinline__ void next()
    {
        __syncwarp();
#pragma unroll
        for (int i = 0; i < STAGES - 1; i++)
            okr[i] = okr[i + 1];
        rd = rd + 1 == STAGES ? 0 : rd + 1;
        wr = wr + 1 == STAGES ? 0 : wr + 1;
    }
};

/* The keys a decode CTA reads, for request b, split `split` and the pairs [pp0, pp0 + ng):
 * row r sees keys [0, lim0 + r) (lim0 = kv_len - R + 1), so the CTA's last row bounds the
 * keys it loads, [lo, hi), and keys from its first row's bound on are masked per pair
 * (R = 1: none). Tiles of tk keys: n_tiles of them, mask_t the first that holds a key some
 * pair does not see (n_tiles when none). */
struct decode_keys {
    long long first; /* the request's first kv_indices position */
    long long lim0, lo, hi, n_tiles, mask_t;
};

static __device__ __forceinline__ decode_keys decode_keys_of(const decode_params &p, int b, int split, int pp0, int ng,
                                                             int tk)
{
    decode_keys k;
    const long long kv_len = paged_len(p.t, b, k.first);
    const long long chunk = (kv_len + p.splits - 1) / p.splits;
    k.lim0 = kv_len - (p.rows - 1);
    k.lo = (long long)split * chunk;
    k.hi = min(min(kv_len, k.lo + chunk), k.lim0 + (pp0 + ng - 1) / p.group);
    k.n_tiles = k.hi > k.lo ? (k.hi - k.lo + tk - 1) / tk : 0;
    const long long mask_lo = k.lim0 + pp0 / p.group;
    k.mask_t = mask_lo < k.hi ? max(mask_lo - k.lo, 0LL) / tk : k.n_tiles;
    return k;
}

/* The end of a decode CTA: `parts` partial softmax states per pair (row-groups or warps)
 * merged in part order, pair g's state of part q being m (log2 units) red_m[q * pg + g], l
 * red_l[q * pg + g] and o row red_o[(q * pg + g) * os ..]; o / lse of the CTA's ng pairs from
 * pp0 go to the output (one split) or to the split's partials (f32 o, lse). */
template <typename T, int D>
static __device__ __forceinline__ void decode_finish(const decode_params &p, const float *red_m, const float *red_l,
                                                     const float *red_o, int parts, int pg, int os, int b, int kvh,
                                                     int pp0, int ng, int split)
{
    for (int i = threadIdx.x; i < ng * D; i += blockDim.x) {
        const int g = i / D, d = i % D, pp = pp0 + g, row = pp / p.group;
        float M = -INFINITY;
        for (int r = 0; r < parts; r++)
            M = fmaxf(M, red_m[r * pg + g]);
        float L = 0.f, O = 0.f, lse = -INFINITY;
        if (M != -INFINITY) {
            for (int r = 0; r < parts; r++) {
                float w = exp2f(red_m[r * pg + g] - M);
                L += red_l[r * pg + g] * w;
                O += red_o[(r * pg + g) * os + d] * w;
            }
            O /= L;
            lse = (M + log2f(L)) * BK_LN2;
        }
        const long long h = (long long)kvh * p.group + pp % p.group;
        if (p.splits == 1) {
            ((T *)p.o)[b * p.o_b + row * p.o_r + h * p.o_h + d] = elem<T>::store(O);
            if (p.lse && d == 0)
                p.lse[b * p.l_b + row * p.l_r + h * p.l_h] = lse;
        } else {
            const long long part = (((long long)b * p.rows + row) * p.q_heads + h) * p.splits + split;
            p.part_o[part * D + d] = O;
            if (d == 0)
                p.part_lse[part] = lse;
        }
    }
}

/* The G partial dot products of a lane, summed over the LPR lanes of its row: a
 * reduce-scatter (each step halves the values a lane keeps: G - 1 shuffles instead of
 * G log2(G)), a butterfly over the rest, then one shuffle per head to give every lane
 * every head's sum. Each head's sum comes from one lane: bit-identical in all lanes. */
template <int G, int LPR> static __device__ __forceinline__ void decode_row_sum(float (&x)[G], int lane)
{
    float v[G];
#pragma unroll
    for (int g = 0; g < G; g++)
        v[g] = x[g];
#pragma unroll
    for (int n = G, off = LPR / 2; n > 1; n /= 2, off /= 2) {
        const bool up = (lane & off) != 0;
#pragma unroll
        for (int i = 0; i < n / 2; i++) {
            const float keep = up ? v[i + n / 2] : v[i];
            const float send = up ? v[i] : v[i + n / 2];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, off);
        }
    }
#pragma unroll
    for (int off = LPR / G / 2; off > 0; off /= 2)
        v[0] += __shfl_xor_sync(0xffffffffu, v[0], off);
    if (G == 1) {
        x[0] = v[0];
    } else {
        /* head g now sits in the lanes whose bits (LPR / G) .. (LPR / 2) spell g */
        const int base = lane & ~(LPR - 1);
#pragma unroll
        for (int g = 0; g < G; g++)
            x[g] = __shfl_sync(0xffffffffu, v[0], base + g * (LPR / G));
    }
}

/* decode_kernel (f32, and f16/bf16 with R x group <= 4): f32 on CUDA cores, a CTA of 4 warps
 * takes G <= 4 pairs (template G; more pairs -> more chunks). LPR lanes cover a K/V row
 * (D 128 bf16: 16); a tile is TK = 32 keys, each warp's 8 rows through a 3-stage ring. A
 * row's G dot products: reduce-scatter over its LPR lanes (9 shuffles at G 4); each
 * row-group keeps an online softmax per pair (ex2.approx, each probability once); the
 * row-groups merge through shared memory. R > 1: per-pair bounds in shared memory (128
 * registers kept). D 128 bf16 G 4: 128 registers, no spill, 48 KB dynamic smem -> 4
 * CTAs/SM. 4 pairs or fewer stay on this kernel (src/ops/paged_decode.c's tc_rejects says
 * why). */
template <typename T, int D, int G, bool CAUSAL>
__global__ void __launch_bounds__(128) decode_kernel(decode_params p)
{
    typedef decode_cfg<T, D> C;
    __shared__ __align__(16) float q_s[G][D];
    __shared__ float red_m[C::NRG][G], red_l[C::NRG][G];
    __shared__ long long mask_lo_s; /* CAUSAL: the key the CTA's first row sees no more */
    __shared__ int drow_s[G];       /* CAUSAL: pair g's row minus the CTA's first row (< R) */
    extern __shared__ __align__(16) unsigned char dyn_smem[];
    T *pipe = reinterpret_cast<T *>(dyn_smem);                       /* [STAGES][2][TK][D] */
    float(*red_o)[G][D] = reinterpret_cast<float(*)[G][D]>(dyn_smem); /* [NRG][G][D], after the loop */

    /* the CTA's pairs: pair pp = r * group + i of kv head kvh is query row r, q head
       kvh * group + i, for pp in [pp0, pp0 + ng) */
    bk_grid_dep_launch(); /* the merge (splits > 1) may be scheduled once every block runs */
    const int split = blockIdx.x, kvh = blockIdx.y / p.gchunks, gc = blockIdx.y % p.gchunks, b = blockIdx.z;
    const int pp0 = gc * G, ng = min(G, p.pairs - pp0);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int li = lane % C::LPR, rg = warp * C::RPW + lane / C::LPR;

    const decode_keys ks_ = decode_keys_of(p, b, split, pp0, ng, C::TK);
    const long long first = ks_.first, lo = ks_.lo, hi = ks_.hi, n_tiles = ks_.n_tiles, mask_t = ks_.mask_t;
    const long long mask_lo = ks_.lim0 + pp0 / p.group; /* the key the CTA's first row sees no more */

    /* Loader lane: row ld_k of this warp's WKEYS rows of a tile (tile row ld_jj, the row
       row-group warp * RPW + ld_k % RPW computes at step ld_k / RPW), 16-byte units
       ld_sub + LLR * i of its K and V rows. Each warp copies exactly the rows its own
       lanes compute, so the pipeline is per warp: no block barrier in the key loop. */
    const int ld_k = lane / C::LLR, ld_sub = lane % C::LLR;
    const int ld_jj = (ld_k / C::RPW) * C::NRG + warp * C::RPW + ld_k % C::RPW;
    /* the warp's rows of a tile (this lane's row located by r) into stage `st`, zero-filled
       when the key is past hi or its page is bad (never read from global); returns the
       warp's ok bits (bit LLR * k: row k is a key), kept in registers, not shared memory */
    auto issue = [&](const decode_rowref &r, int st) -> unsigned {
        T *ks = pipe + (size_t)st * C::STAGE_ELEMS + ld_jj * D;
        return decode_issue<T, D, C::LLR>(p, kvh, r, ks, ks + C::TK * D, ld_sub, 0);
    };
    auto lookup = [&](long long tile) { return decode_lookup(p.t, first, lo + tile * C::TK + ld_jj, hi); };

    decode_ring<C::STAGES> ring;
    ring.start(lookup, issue, n_tiles);

    for (int i = tid; i < G * D; i += blockDim.x) {
        const int g = i / D, d = i % D, pp = pp0 + g, row = pp / p.group;
        const long long h = (long long)kvh * p.group + pp % p.group;
        float x = 0.f;
        if (g < ng)
            x = elem<T>::load(((const T *)p.q)[b * p.q_b + row * p.q_r + h * p.q_h + d]) * p.scale_log2;
        q_s[g][d] = x;
    }
    /* pair g sees keys below mask_lo + drow_s[g] (shared memory: read in masked tiles only) */
    if (CAUSAL && tid < G)
        drow_s[tid] = (pp0 + tid) / p.group - pp0 / p.group;
    if (CAUSAL && tid == 0)
        mask_lo_s = mask_lo;
    __syncthreads();
    float qr[G][C::EPL];
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int e = 0; e < C::EPL; e += 4) {
            float4 x = *reinterpret_cast<const float4 *>(&q_s[g][li * C::EPL + e]);
            qr[g][e] = x.x;
            qr[g][e + 1] = x.y;
            qr[g][e + 2] = x.z;
            qr[g][e + 3] = x.w;
        }

    float m[G], l[G], acc[G][C::EPL];
#pragma unroll
    for (int g = 0; g < G; g++) {
        m[g] = -INFINITY;
        l[g] = 0.f;
#pragma unroll
        for (int e = 0; e < C::EPL; e++)
            acc[g][e] = 0.f;
    }
    for (long long t = 0; t < n_tiles; t++) {
        const unsigned okb = ring.wait(t, lookup, issue, n_tiles);
        const int rd = ring.rd;
        const T *ks = pipe + (size_t)rd * C::STAGE_ELEMS, *vs = ks + C::TK * D;
        float s[C::U][G];
#pragma unroll
        for (int u = 0; u < C::U; u++) {
            const int jj = u * C::NRG + rg;
            const bool ok = (okb >> ((u * C::RPW + lane / C::LPR) * C::LLR)) & 1u;
            uint4 kv[C::NV];
#pragma unroll
            for (int w = 0; w < C::NV; w++)
                kv[w] = reinterpret_cast<const uint4 *>(ks + jj * D + li * C::EPL)[w];
            float kf[C::EPL];
            to_float<T, C::EPL>(kv, kf);
            float x[G];
#pragma unroll
            for (int g = 0; g < G; g++) {
                x[g] = 0.f;
#pragma unroll
                for (int e = 0; e < C::EPL; e++)
                    x[g] = fmaf(qr[g][e], kf[e], x[g]);
            }
            decode_row_sum<G, C::LPR>(x, lane);
#pragma unroll
            for (int g = 0; g < G; g++)
                s[u][g] = ok ? x[g] : -INFINITY;
        }
        if (CAUSAL && t >= mask_t) { /* CTA-uniform: a tile with keys some pairs do not see (R > 1) */
            const int rel = (int)(lo + t * C::TK - mask_lo_s) + rg; /* key - mask_lo, in (-TK, TK + R) */
#pragma unroll
            for (int u = 0; u < C::U; u++)
#pragma unroll
                for (int g = 0; g < G; g++)
                    if (rel + u * C::NRG >= drow_s[g])
                        s[u][g] = -INFINITY;
        }
        /* online softmax per head; s becomes the probabilities (0 for masked keys) */
#pragma unroll
        for (int g = 0; g < G; g++) {
            float mx = m[g];
#pragma unroll
            for (int u = 0; u < C::U; u++)
                mx = fmaxf(mx, s[u][g]);
            if (mx == -INFINITY) {
#pragma unroll
                for (int u = 0; u < C::U; u++)
                    s[u][g] = 0.f;
                continue;
            }
            const float alpha = bk_ex2(m[g] - mx);
            float ps = 0.f;
#pragma unroll
            for (int u = 0; u < C::U; u++) {
                s[u][g] = bk_ex2(s[u][g] - mx);
                ps += s[u][g];
            }
            l[g] = l[g] * alpha + ps;
            m[g] = mx;
#pragma unroll
            for (int e = 0; e < C::EPL; e++)
                acc[g][e] *= alpha;
        }
#pragma unroll
        for (int u = 0; u < C::U; u++) {
            const int jj = u * C::NRG + rg;
            uint4 vv[C::NV];
#pragma unroll
            for (int w = 0; w < C::NV; w++)
                vv[w] = reinterpret_cast<const uint4 *>(vs + jj * D + li * C::EPL)[w];
            float vf[C::EPL];
            to_float<T, C::EPL>(vv, vf);
#pragma unroll
            for (int g = 0; g < G; g++)
#pragma unroll
                for (int e = 0; e < C::EPL; e++)
                    acc[g][e] = fmaf(s[u][g], vf[e], acc[g][e]);
        }
        ring.next();
    }
    bk_cp_async_wait_group<0>(); /* nothing is pending (only empty groups), but red_o reuses the buffers */
    __syncthreads();

    /* merge the row-groups */
#pragma unroll
    for (int g = 0; g < G; g++) {
        if (li == 0) {
            red_m[rg][g] = m[g];
            red_l[rg][g] = l[g];
        }
#pragma unroll
        for (int e = 0; e < C::EPL; e++)
            red_o[rg][g][li * C::EPL + e] = acc[g][e];
    }
    __syncthreads();
    decode_finish<T, D>(p, &red_m[0][0], &red_l[0][0], &red_o[0][0][0], C::NRG, G, D, b, kvh, pp0, ng, split);
}

/* Opts `kernel` into `bytes` of dynamic shared memory (a host-only call) and launches it
 * on `grid` x 128 threads. */
template <typename K>
static bk_status decode_launch(K kernel, dim3 grid, size_t bytes, const decode_params &p, cudaStream_t s)
{
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes) != cudaSuccess) {
        cudaGetLastError();
        return bk_fail(BK_STATUS_DEVICE_ERROR, "paged_decode: %zu bytes of shared memory per block are not available",
                       bytes);
    }
    kernel<<<grid, 128, bytes, s>>>(p);
    return BK_STATUS_SUCCESS;
}

template <typename T, int D, int G> static bk_status launch_decode_g(const decode_params &p, dim3 grid, cudaStream_t s)
{
    const size_t bytes = decode_cfg<T, D>::SMEM;
    return p.rows > 1 ? decode_launch(decode_kernel<T, D, G, true>, grid, bytes, p, s)
                      : decode_launch(decode_kernel<T, D, G, false>, grid, bytes, p, s);
}

/* ---------------------------------------------------- decode, tensor cores -- */

/* (row, q head) pairs per CTA of the tensor-core decode: the m16 of its MMAs. */
static const int kDecodeTcPairs = 16;

/* The tensor-core decode's tiles (f16/bf16; the math and the roles: above decode_tc_kernel). */
template <typename T, int D> struct decode_tc_cfg {
    static const int WARPS = 4;
    static const int PAIRS = kDecodeTcPairs;
    static const int KW = 16;               /* keys a warp takes per tile: one k16 step of P V */
    static const int CK = WARPS * KW;       /* keys per CTA tile; warp w takes keys [w KW, (w+1) KW) */
    static const int NB = KW / 8;           /* n8 blocks of a warp's scores */
    static const int DB = D / 8;            /* n8 blocks of O */
    static const int LLR = 32 / KW;         /* loader lanes per K/V row */
    static const int STAGES = D == 64 ? 4 : 3; /* tiles in flight per warp (cp.async ring) */
    static const int WARP_ELEMS = 2 * KW * D;  /* a warp's share of a stage: K rows, then V rows */
    static const int STAGE_ELEMS = WARPS * WARP_ELEMS;
    static const int OS = D + 8;            /* red_o row stride (floats): conflict-free float2 stores */
    static const int KK_UNROLL = D == 256 ? 2 : D / 16; /* D 256: O takes 128 registers, keep S = Q K^T's
                                                        loads from hoisting past the 255 cap */
    static const size_t PIPE_BYTES = (size_t)STAGES * STAGE_ELEMS * sizeof(T);
    static const size_t RED_BYTES = (size_t)WARPS * PAIRS * OS * sizeof(float);
    static const size_t SMEM = PIPE_BYTES > RED_BYTES ? PIPE_BYTES : RED_BYTES;
};

/* decode_tc_kernel (f16/bf16, picked when R x group > 4): tensor cores, mma.sync m16n8k16
 * with f32 accumulate, the sdpa_fwd.cu mma kernel's math on one
 * 16-row tile. A = the CTA's 16 pairs of ONE kv head (pair chunks of 16; rows past the
 * pairs zero), in shared memory. A CTA tile is CK = 64 keys, warp w takes keys [16 w,
 * 16 w + 16) of each through its own ring (D 64: 4 stages, else 3; K and V rows with
 * 16-byte units XOR-swizzled by row for conflict-free ldmatrix; loader lanes: 2 per row).
 * Per warp and tile: S = Q K^T (16 x 16, ldmatrix Q and K, D / 16 k steps), S * scale
 * log2 e in f32, missing / causally hidden keys -inf, the online softmax of
 * sdpa_fwd_tiles.cuh (softmax_step, lazy rescale, ex2.approx) with P rounded to T and
 * packed as the A operand of O += P V (V by ldmatrix.trans; O 16 x D in f32 registers).
 * The 4 warps' states (m, l, O) merge through shared memory in warp order. Shared memory:
 * ring 64 / 96 / 192 KB (D 64 / 128 / 256) -> 3 / 2 / 1 CTAs per SM, Q 2-8 KB. ptxas
 * (sm_80 and sm_90a, CUDA 13.0), R = 1 / R > 1: D 64 112 / 124 registers, D 128 166 / 167,
 * D 256 254 / 254 (S = Q K^T unrolled by 2 steps there to stay under the cap), no spill. */
template <typename T, int D, bool CAUSAL>
__global__ void __launch_bounds__(128) decode_tc_kernel(decode_params p)
{
    typedef decode_tc_cfg<T, D> C;
    const int NB = C::NB, DB = C::DB;
    /* the CTA's pairs as the A operand's 16 rows (rows past the pairs zero), 16-byte
       units XOR-swizzled by row (unit c of row r at c ^ (r & 7)) as the K/V tiles */
    __shared__ __align__(16) T q_s[C::PAIRS * D];
    __shared__ float red_m[C::WARPS][C::PAIRS], red_l[C::WARPS][C::PAIRS];
    extern __shared__ __align__(16) unsigned char dyn_smem[];
    T *pipe = reinterpret_cast<T *>(dyn_smem);          /* [STAGES][WARPS][K, V][KW][D], swizzled rows */
    float *red_o = reinterpret_cast<float *>(dyn_smem); /* [WARPS][PAIRS][OS], after the loop */

    /* pair pp = r * group + i of kv head kvh is query row r, q head kvh * group + i; the
       CTA's are [pp0, pp0 + ng) */
    bk_grid_dep_launch(); /* the merge (splits > 1) may be scheduled once every block runs */
    const int split = blockIdx.x, kvh = blockIdx.y / p.gchunks, gc = blockIdx.y % p.gchunks, b = blockIdx.z;
    const int pp0 = gc * C::PAIRS, ng = min(C::PAIRS, p.pairs - pp0);
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, t4 = lane & 3;
    const decode_keys kr = decode_keys_of(p, b, split, pp0, ng, C::CK);

    /* Loader lane: row ld_row of the warp's KW rows of a tile (key lo + t CK + warp KW +
       ld_row), 16-byte units ld_sub + LLR i of its K and V rows. Each warp copies and
       computes its own keys: the pipeline is per warp, no block barrier in the key loop. */
    const int ld_row = lane / C::LLR, ld_sub = lane % C::LLR;
    T *const wpipe = pipe + warp * C::WARP_ELEMS;
    auto issue = [&](const decode_rowref &r, int st) -> unsigned {
        T *ks = wpipe + (size_t)st * C::STAGE_ELEMS + ld_row * D;
        return decode_issue<T, D, C::LLR>(p, kvh, r, ks, ks + C::KW * D, ld_sub, ld_row & 7);
    };
    auto lookup = [&](long long tile) {
        return decode_lookup(p.t, kr.first, kr.lo + tile * C::CK + warp * C::KW + ld_row, kr.hi);
    };

    decode_ring<C::STAGES> ring; /* ok bits: bit LLR k is the warp's key k of a tile */
    ring.start(lookup, issue, kr.n_tiles);

    for (int i = tid; i < C::PAIRS * D; i += blockDim.x) {
        const int r = i / D, d = i % D, pp = pp0 + r, row = pp / p.group;
        const long long h = (long long)kvh * p.group + pp % p.group;
        T x = elem<T>::store(0.f);
        if (r < ng)
            x = ((const T *)p.q)[b * p.q_b + row * p.q_r + h * p.q_h + d];
        q_s[r * D + (((d / 8) ^ (r & 7)) << 3) + d % 8] = x;
    }
    __syncthreads();

    /* CAUSAL: this thread's rows g and g + 8 (pairs pp0 + g, pp0 + g + 8) see keys below
       bound[0] and bound[1] (rows past the pairs: a bound that masks nothing they need) */
    long long bound[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++)
        bound[hr] = kr.lim0 + (pp0 + g + 8 * hr) / p.group;

    /* ldmatrix lane addressing (the swizzle XOR is lane & 7 for every operand): A = Q rows
       (lane & 7) + 8 ((lane >> 3) & 1), units 2 kk + (lane >> 4); B = K rows (lane & 7) +
       8 (lane >> 4), units 2 kk + ((lane >> 3) & 1); B = V (transposed) rows (lane & 7) +
       8 ((lane >> 3) & 1), units 2 dp + (lane >> 4) */
    const int sw = lane & 7;
    const int q_row = (lane & 7) + 8 * ((lane >> 3) & 1), q_unit = lane >> 4;
    const int k_row = (lane & 7) + 8 * (lane >> 4), k_unit = (lane >> 3) & 1;
    const int v_row = q_row, v_unit = q_unit;
    const uint32_t q_a = bk_smem_addr(q_s + q_row * D);

    float acc_o[1][DB][4], m_r[1][2], l_r[1][2];
#pragma unroll
    for (int j = 0; j < DB; j++)
        acc_o[0][j][0] = acc_o[0][j][1] = acc_o[0][j][2] = acc_o[0][j][3] = 0.f;
    m_r[0][0] = m_r[0][1] = -INFINITY;
    l_r[0][0] = l_r[0][1] = 0.f;

    for (long long t = 0; t < kr.n_tiles; t++) {
        const unsigned okb = ring.wait(t, lookup, issue, kr.n_tiles);
        const int rd = ring.rd;
        const uint32_t k_a = bk_smem_addr(wpipe + (size_t)rd * C::STAGE_ELEMS + k_row * D);
        const uint32_t v_a = bk_smem_addr(wpipe + (size_t)rd * C::STAGE_ELEMS + C::KW * D + v_row * D);

        /* S = Q K^T: 16 pairs x KW keys, f32 (s[0][j][e]: row g + 8 (e >> 1), key 8 j + 2 t4 + (e & 1)) */
        float s[1][NB][4];
#pragma unroll
        for (int j = 0; j < NB; j++)
            s[0][j][0] = s[0][j][1] = s[0][j][2] = s[0][j][3] = 0.f;
#pragma unroll C::KK_UNROLL
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[4];
            bk_ldsm_x4(a, q_a + (((2 * kk + q_unit) ^ sw) << 4));
#pragma unroll
            for (int jp = 0; jp < NB / 2; jp++) {
                uint32_t bf[4];
                bk_ldsm_x4(bf, k_a + jp * 16 * D * 2 + (((2 * kk + k_unit) ^ sw) << 4));
                bk_mma16<T>::mma(s[0][2 * jp], a, bf[0], bf[1]);
                bk_mma16<T>::mma(s[0][2 * jp + 1], a, bf[2], bf[3]);
            }
        }
        /* to log2 units; keys that are not there (past the range, bad page: zero-filled) -inf */
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const bool ok = (okb >> ((8 * j + 2 * t4 + (e & 1)) * C::LLR)) & 1u;
                s[0][j][e] = ok ? s[0][j][e] * p.scale_log2 : -INFINITY;
            }
        if (CAUSAL && t >= kr.mask_t) { /* CTA-uniform: a tile with keys some pairs do not see (R > 1) */
            const long long k0 = kr.lo + t * C::CK + warp * C::KW + 2 * t4;
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (k0 + 8 * j + (e & 1) >= bound[e >> 1])
                        s[0][j][e] = -INFINITY;
        }
        /* online softmax (lazy rescale); P rounded to T, packed as the A operand of P V */
        uint32_t pk[1][NB][2];
        softmax_step<T, 1, NB, DB, true>(s, m_r, l_r, acc_o, pk, 1.f);
        /* O += P V */
#pragma unroll
        for (int kb = 0; kb < C::KW / 16; kb++) {
            const uint32_t a[4] = {pk[0][2 * kb][0], pk[0][2 * kb][1], pk[0][2 * kb + 1][0], pk[0][2 * kb + 1][1]};
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t bf[4];
                bk_ldsm_x4_trans(bf, v_a + kb * 16 * D * 2 + (((2 * dp + v_unit) ^ sw) << 4));
                bk_mma16<T>::mma(acc_o[0][2 * dp], a, bf[0], bf[1]);
                bk_mma16<T>::mma(acc_o[0][2 * dp + 1], a, bf[2], bf[3]);
            }
        }
        ring.next();
    }
    bk_cp_async_wait_group<0>(); /* nothing is pending (only empty groups), but red_o reuses the buffers */
    __syncthreads();

    /* each warp's state per pair: m (quad-uniform), l (summed over the quad), O rows */
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        float l = l_r[0][hr];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int r = g + 8 * hr;
        if (t4 == 0) {
            red_m[warp][r] = m_r[0][hr];
            red_l[warp][r] = l;
        }
        float *o_row = red_o + (warp * C::PAIRS + r) * C::OS + 2 * t4;
#pragma unroll
        for (int j = 0; j < DB; j++)
            *reinterpret_cast<float2 *>(o_row + 8 * j) = make_float2(acc_o[0][j][2 * hr], acc_o[0][j][2 * hr + 1]);
    }
    __syncthreads();
    decode_finish<T, D>(p, &red_m[0][0], &red_l[0][0], red_o, C::WARPS, C::PAIRS, C::OS, b, kvh, pp0, ng, split);
}

template <typename T, int D> static bk_status launch_decode_tc(const decode_params &p, dim3 grid, cudaStream_t s)
{
    const size_t bytes = decode_tc_cfg<T, D>::SMEM;
    return p.rows > 1 ? decode_launch(decode_tc_kernel<T, D, true>, grid, bytes, p, s)
                      : decode_launch(decode_tc_kernel<T, D, false>, grid, bytes, p, s);
}

/* The kernel for one element type and head dim: tensor cores (tc, f16/bf16 only, 16 pairs
 * a CTA) or CUDA cores (G pairs a CTA). */
template <typename T, int D>
static bk_status launch_decode(const decode_params &p, dim3 grid, int G, bool tc, cudaStream_t s)
{
    if constexpr (!std::is_same<T, float>::value) {
        if (tc)
            return launch_decode_tc<T, D>(p, grid, s);
    }
    if (G == 1)
        return launch_decode_g<T, D, 1>(p, grid, s);
    if (G == 2)
        return launch_decode_g<T, D, 2>(p, grid, s);
    return launch_decode_g<T, D, 4>(p, grid, s);
}

/* The head dim as a template argument. */
template <typename T> static bk_status launch_decode_dim(const decode_params &p, dim3 grid, int G, bool tc, int D,
                                                         cudaStream_t s)
{
    if (D == 64)
        return launch_decode<T, 64>(p, grid, G, tc, s);
    if (D == 128)
        return launch_decode<T, 128>(p, grid, G, tc, s);
    return launch_decode<T, 256>(p, grid, G, tc, s);
}

static const int kDecodeMaxG = 4;

/* The CTA's pair count G (the kernel's template argument: 4, or 2 / 1 when the kv head has
   fewer pairs) and the pair chunks per kv head, for R * group (row, q head) pairs. */
static int decode_g(int pairs)
{
    return pairs >= kDecodeMaxG ? kDecodeMaxG : pairs >= 2 ? 2 : 1;
}

/* The CTAs the split heuristic aims for: 2 per SM of an H100 SXM (132 SMs; 4 fit, but
   fewer, longer parts amortise each CTA's prologue and the merge reads fewer partials;
   split sweeps: bench/RESULTS.md). Only the heuristic uses it; other parts get other wave
   shapes, never other results for a given split count. */
static const long long kDecodeSlots = 132 * 2;

/* The split count S: kv_splits, else the splits that make kDecodeSlots = 132 x 2 CTAs (132
 * for the tensor-core kernel at D 256: one CTA per SM), <= 64 and <= pool / 256. A pure
 * function of the descriptor and the kernel: graph replays rely on it. */
extern "C" int32_t bk_cuda_paged_decode_splits(const bk_paged_decode_desc *d, bool tensor_cores)
{
    if (d->kv_splits > 0)
        return d->kv_splits;
    const long long pairs = (long long)bk_paged_decode_rows(d) * (d->q_heads / d->paged_kv.kv_heads);
    const long long per_cta = tensor_cores ? kDecodeTcPairs : kDecodeMaxG;
    /* the tensor-core kernel's 192 KB ring at head_dim 256 fits one CTA per SM */
    const long long slots = tensor_cores && d->paged_kv.head_dim == 256 ? kDecodeSlots / 2 : kDecodeSlots;
    const long long heads = (long long)d->batch * d->paged_kv.kv_heads; /* < 2^62; x chunks could pass 2^63 */
    const long long ctas = heads >= slots ? heads : heads * ((pairs + per_cta - 1) / per_cta);
    /* as many splits as make `slots` CTAs (none when batch x kv heads x chunks reaches it):
       H100 B1 (8 CTAs a split): 33 splits, B16: 2, B64 kv2048 (512 CTAs): 1 */
    const long long want = ctas >= slots ? 1 : slots / ctas;
    const long long by_len = (long long)d->paged_kv.num_pages * d->paged_kv.page_size / 256; /* >= 256 keys a part */
    long long s = want < by_len ? want : by_len;
    if (s > 64)
        s = 64;
    return (int32_t)(s < 1 ? 1 : s);
}

extern "C" bk_status bk_cuda_paged_decode(const bk_paged_decode_desc *d, const bk_paged_decode_args *a,
                                          bool tensor_cores, int32_t splits, float *part_o, float *part_lse,
                                          bool sm90, void *stream)
{
    const bk_paged_kv_desc *pd = &d->paged_kv;
    if (((uintptr_t)a->kv.k_pages.data | (uintptr_t)a->kv.v_pages.data) % 16 != 0)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_decode: k_pages / v_pages are not 16-byte aligned, expected "
                                              "16-byte aligned pools on CUDA");
    if (tensor_cores && pd->dtype != BK_DTYPE_F16 && pd->dtype != BK_DTYPE_BF16)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_decode: the tensor-core kernel takes f16 or bf16, got %s",
                       bk_dtype_name(pd->dtype));
    decode_params p;
    int64_t sq[3], so[3], sl[3] = {0, 0, 0};
    bk_paged_decode_strides(d, &a->q, false, sq);
    bk_paged_decode_strides(d, &a->o, false, so);
    if (a->lse)
        bk_paged_decode_strides(d, a->lse, true, sl);
    p.q = a->q.data;
    p.q_b = sq[0];
    p.q_r = sq[1];
    p.q_h = sq[2];
    p.k = a->kv.k_pages.data;
    p.v = a->kv.v_pages.data;
    p.t = table_of(pd, &a->kv);
    p.q_heads = d->q_heads;
    p.group = d->q_heads / pd->kv_heads;
    p.rows = bk_paged_decode_rows(d);
    p.pairs = p.rows * p.group;
    const int G = tensor_cores ? kDecodeTcPairs : decode_g(p.pairs); /* pairs a CTA */
    p.gchunks = (p.pairs + G - 1) / G;
    p.splits = splits;
    p.scale_log2 = (float)(d->scale * 1.4426950408889634);
    p.o = a->o.data;
    p.o_b = so[0];
    p.o_r = so[1];
    p.o_h = so[2];
    p.lse = a->lse ? (float *)a->lse->data : NULL;
    p.l_b = sl[0];
    p.l_r = sl[1];
    p.l_h = sl[2];
    p.part_o = part_o;
    p.part_lse = part_lse;
    const long long gy = (long long)pd->kv_heads * p.gchunks;
    if (d->batch > 65535 || gy > 65535)
        return bk_fail(BK_STATUS_UNSUPPORTED,
                       "paged_decode: batch is %d and kv_heads x pair chunks is %lld, expected both <= 65535 on CUDA",
                       (int)d->batch, gy);
    dim3 grid((unsigned)splits, (unsigned)gy, (unsigned)d->batch);
    cudaStream_t s = (cudaStream_t)stream;
    bk_status st;
    switch (pd->dtype) {
    case BK_DTYPE_F32: st = launch_decode_dim<float>(p, grid, G, tensor_cores, pd->head_dim, s); break;
    case BK_DTYPE_F16: st = launch_decode_dim<__half>(p, grid, G, tensor_cores, pd->head_dim, s); break;
    default: st = launch_decode_dim<__nv_bfloat16>(p, grid, G, tensor_cores, pd->head_dim, s); break;
    }
    BK_TRY(st);
    BK_TRY(bk_cuda_check_launch("paged_decode"));
    if (splits > 1) {
        /* partials [batch, R * q_heads, S, (head_dim)]: merge row b, head (r, h) as r * q_heads + h */
        merge_params m;
        const long long D = pd->head_dim, S = splits, RH = (long long)p.rows * d->q_heads;
        m.op = part_o;
        m.op_r = RH * S * D;
        m.op_p = D;
        m.op_h = S * D;
        m.lp = part_lse;
        m.lp_r = RH * S;
        m.lp_p = 1;
        m.lp_h = S;
        m.o = a->o.data;
        m.o_r = p.o_b;
        m.o_s = p.o_r;
        m.o_h = p.o_h;
        m.lse = p.lse;
        m.l_r = p.l_b;
        m.l_s = p.l_r;
        m.l_h = p.l_h;
        m.rows = d->batch;
        m.parts = splits;
        m.heads = (int)RH;
        m.sub = d->q_heads;
        m.dim = pd->head_dim;
        BK_DISPATCH_FLOAT(pd->dtype, T, launch_merge<float, T>(m, sm90, s));
        BK_TRY(bk_cuda_check_launch("paged_decode"));
    }
    return BK_STATUS_SUCCESS;
}

/* -------------------------------------------------------------- prefill -- */

struct prefill_params {
    const void *q;
    long long q_r, q_h;
    const int *q_indptr;
    const void *k, *v;
    paged_table t;
    int batch, total_rows, q_heads, group;
    bool causal;
    float scale_log2;
    void *o;
    long long o_r, o_h;
    float *lse;
    long long l_r, l_h;
};

static const int kPfRows = 16;  /* query rows per CTA (4 warps x 4 rows) */
static const int kPfRowsPerWarp = 4;
static const int kPfKeys = 32;  /* keys per shared-memory tile */

/* prefill_kernel, the reference paged prefill (BK_PREFER_REFERENCE; the fast one is
 * sdpa_fwd.cu's tensor-core kernels over pages, bk_cuda_paged_prefill_tc): f32 CUDA cores,
 * CTA = 16 query rows (4 a warp) of one request and q head. Request b owns tile ids
 * [b + q_indptr[b] / 16, b + 1 + q_indptr[b+1] / 16): a grid of batch + rows / 16 + 1 CTAs,
 * each finding its request by binary search over q_indptr. K/V tiles of 32 keys are
 * gathered into shared memory; bottom-right causal mask per row. */
template <typename T, int D>
__global__ void __launch_bounds__(128) prefill_kernel(prefill_params p)
{
    const int EPL = D / 32;
    __shared__ __align__(16) T k_s[kPfKeys][D];
    __shared__ __align__(16) T v_s[kPfKeys][D];
    __shared__ bool ok_s[kPfKeys];

    const int tile = blockIdx.x, h = blockIdx.y, g = h / p.group;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    /* request: the last b with b + q_indptr[b] / 16 <= tile */
    int lo = 0, hi = p.batch - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (mid + p.q_indptr[mid] / kPfRows <= tile)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int b = lo;
    const long long r0 = p.q_indptr[b], qo_len = (long long)p.q_indptr[b + 1] - r0;
    const long long i0 = (long long)(tile - (b + p.q_indptr[b] / kPfRows)) * kPfRows; /* first row in request */
    if (i0 < 0 || i0 >= qo_len)
        return;
    long long first;
    const long long kv_len = paged_len(p.t, b, first);

    float qr[kPfRowsPerWarp][EPL], acc[kPfRowsPerWarp][EPL], m[kPfRowsPerWarp], l[kPfRowsPerWarp];
    long long key_hi[kPfRowsPerWarp], row[kPfRowsPerWarp];
    long long cta_hi = 0;
#pragma unroll
    for (int rr = 0; rr < kPfRowsPerWarp; rr++) {
        const long long i = i0 + warp * kPfRowsPerWarp + rr;
        const long long r = r0 + i;
        const bool live = i < qo_len && r >= 0 && r < p.total_rows;
        row[rr] = live ? r : -1;
        long long kh = kv_len;
        if (p.causal)
            kh = min(kv_len, i + kv_len - qo_len + 1);
        key_hi[rr] = live ? max(kh, 0LL) : 0;
        m[rr] = -INFINITY;
        l[rr] = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            acc[rr][e] = 0.f;
            qr[rr][e] = live ? elem<T>::load(((const T *)p.q)[r * p.q_r + (long long)h * p.q_h + lane * EPL + e]) *
                                   p.scale_log2
                             : 0.f;
        }
    }
    /* keys any row of the CTA sees: the last live row sees the most */
    {
        const long long i = min(i0 + kPfRows, qo_len) - 1;
        cta_hi = p.causal ? min(kv_len, i + kv_len - qo_len + 1) : kv_len;
    }
    const int UPR = D * (int)sizeof(T) / 16; /* 16-byte units per row */
    for (long long kt = 0; kt < cta_hi; kt += kPfKeys) {
        __syncthreads();
        for (int u = tid; u < kPfKeys * UPR; u += blockDim.x) {
            const int jj = u / UPR, c = u % UPR;
            const long long j = kt + jj;
            const long long off = j < cta_hi ? paged_row(p.t, first, j, g) : -1;
            uint4 kx = make_uint4(0, 0, 0, 0), vx = make_uint4(0, 0, 0, 0);
            if (off >= 0) {
                kx = __ldg(reinterpret_cast<const uint4 *>((const T *)p.k + off * D) + c);
                vx = __ldg(reinterpret_cast<const uint4 *>((const T *)p.v + off * D) + c);
            }
            reinterpret_cast<uint4 *>(&k_s[jj][0])[c] = kx;
            reinterpret_cast<uint4 *>(&v_s[jj][0])[c] = vx;
            if (c == 0)
                ok_s[jj] = off >= 0;
        }
        __syncthreads();
        const int nk = (int)min((long long)kPfKeys, cta_hi - kt);
        for (int jj = 0; jj < nk; jj++) {
            if (!ok_s[jj])
                continue;
            float kf[EPL], vf[EPL];
#pragma unroll
            for (int e = 0; e < EPL; e++) {
                kf[e] = elem<T>::load(k_s[jj][lane * EPL + e]);
                vf[e] = elem<T>::load(v_s[jj][lane * EPL + e]);
            }
#pragma unroll
            for (int rr = 0; rr < kPfRowsPerWarp; rr++) {
                if (kt + jj >= key_hi[rr]) /* warp-uniform */
                    continue;
                float x = 0.f;
#pragma unroll
                for (int e = 0; e < EPL; e++)
                    x = fmaf(qr[rr][e], kf[e], x);
#pragma unroll
                for (int off = 16; off > 0; off /= 2)
                    x += __shfl_xor_sync(0xffffffffu, x, off);
                if (x > m[rr]) {
                    const float alpha = exp2f(m[rr] - x);
                    l[rr] *= alpha;
#pragma unroll
                    for (int e = 0; e < EPL; e++)
                        acc[rr][e] *= alpha;
                    m[rr] = x;
                }
                const float pr = exp2f(x - m[rr]);
                l[rr] += pr;
#pragma unroll
                for (int e = 0; e < EPL; e++)
                    acc[rr][e] = fmaf(pr, vf[e], acc[rr][e]);
            }
        }
    }
#pragma unroll
    for (int rr = 0; rr < kPfRowsPerWarp; rr++) {
        if (row[rr] < 0)
            continue;
        const bool any = l[rr] > 0.f;
        const float inv = any ? 1.f / l[rr] : 0.f;
        T *o = (T *)p.o + row[rr] * p.o_r + (long long)h * p.o_h + lane * EPL;
#pragma unroll
        for (int e = 0; e < EPL; e++)
            o[e] = elem<T>::store(acc[rr][e] * inv);
        if (p.lse && lane == 0)
            p.lse[row[rr] * p.l_r + (long long)h * p.l_h] = any ? (m[rr] + log2f(l[rr])) * BK_LN2 : -INFINITY;
    }
}

template <typename T> static void launch_prefill(const prefill_params &p, int D, dim3 grid, cudaStream_t s)
{
    if (D == 64)
        prefill_kernel<T, 64><<<grid, 128, 0, s>>>(p);
    else if (D == 128)
        prefill_kernel<T, 128><<<grid, 128, 0, s>>>(p);
    else
        prefill_kernel<T, 256><<<grid, 128, 0, s>>>(p);
}

extern "C" bk_status bk_cuda_paged_prefill(const bk_paged_prefill_desc *d, const bk_paged_prefill_args *a,
                                           void *stream)
{
    const bk_paged_kv_desc *pd = &d->paged_kv;
    if (d->total_rows == 0)
        return BK_STATUS_SUCCESS;
    if (((uintptr_t)a->kv.k_pages.data | (uintptr_t)a->kv.v_pages.data) % 16 != 0)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_prefill: k_pages / v_pages are not 16-byte aligned, expected "
                                              "16-byte aligned pools on CUDA");
    prefill_params p;
    p.q = a->q.data;
    p.q_r = a->q.strides[0];
    p.q_h = a->q.strides[1];
    p.q_indptr = (const int *)a->q_indptr.data;
    p.k = a->kv.k_pages.data;
    p.v = a->kv.v_pages.data;
    p.t = table_of(pd, &a->kv);
    p.batch = d->batch;
    p.total_rows = d->total_rows;
    p.q_heads = d->q_heads;
    p.group = d->q_heads / pd->kv_heads;
    p.causal = d->causal;
    p.scale_log2 = (float)(d->scale * 1.4426950408889634);
    p.o = a->o.data;
    p.o_r = a->o.strides[0];
    p.o_h = a->o.strides[1];
    p.lse = a->lse ? (float *)a->lse->data : NULL;
    p.l_r = a->lse ? a->lse->strides[0] : 0;
    p.l_h = a->lse ? a->lse->strides[1] : 0;
    const long long tiles = (long long)d->batch + d->total_rows / kPfRows + 1;
    if (tiles > 0x7fffffffLL || d->q_heads > 65535)
        return bk_fail(BK_STATUS_UNSUPPORTED, "paged_prefill: %lld tiles x %d heads is too large a grid", tiles,
                       (int)d->q_heads);
    dim3 grid((unsigned)tiles, (unsigned)d->q_heads);
    cudaStream_t s = (cudaStream_t)stream;
    if (pd->dtype == BK_DTYPE_F16)
        launch_prefill<__half>(p, pd->head_dim, grid, s);
    else
        launch_prefill<__nv_bfloat16>(p, pd->head_dim, grid, s);
    return bk_cuda_check_launch("paged_prefill");
}
