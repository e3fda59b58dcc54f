/* ssd.cu - Mamba-2 SSD chunk scan, forward and backward, and ssd_step, on CUDA (f32, f16, bf16).
 *
 * Math per batch b and head h (state [D, N]; formulas and options in src/cpu/ssd.c):
 *   a_t = dt'_t A;  h_t = exp(a_t) h_{t-1} + dt'_t x_t B_t^T;  y_t = (h_t C_t + skip x_t) silu(z_t)
 * x, y, z [B, L, H, D]; dt [B, L, H]; B, C [B, L, G, N]; any outer strides, inner stride 1.
 * Chunks of TQ = 64 steps whatever desc.chunk_size says; K = ceil(L/64); cum_t = running
 * sum of a_u inside a chunk. Options (ssd_kopts, every kernel): head h reads B, C of group
 * h / P; chunk_prologue is the one place dt is read (dt' = clamp(softplus(dt + dt_bias)))
 * and numbers the seq_idx resets inside the chunk (seg): steps interact only inside one
 * segment, the carried-in state reaches segment 0, a chunk with a reset has dec = -inf.
 * Forward: 1. chunk_state (b, h, chunk, 64x64 tile of [D, N]): S_c = sum_s exp(cum_last -
 *   cum_s) dt_s x_s B_s^T, dec = cum_last; 2. state_pass (per element): S_in[k+1] =
 *   exp(dec[k]) S_in[k] + S_c[k] from the initial state, the last into final_states;
 *   3. chunk_scan (b, h, chunk, 64 columns of D): y_t = exp(cum_t) S_in C_t + sum_{s<=t}
 *   (C_t.B_s) exp(cum_t-cum_s) dt_s x_s, then skip, gate, one rounding; varlen states last.
 *   Kernels (launch_fwd): f16/bf16 on mma.sync (_tc), the vectorised _v kernels for aligned
 *   views (chunk_state_pass_v fuses 1 and 2), or ssd_fwd_fused_kernel (1, 2 and 3 in one
 *   block per (b, h)) for D <= 64, N <= 128; f32 on CUDA cores, or TF32 on the _tc kernels
 *   (ssd_fwd_fused_tf32_kernel, one block per (b, h), where the 16-bit one would run).
 * Backward: the entering states (chunk_state + state_pass); with z, chunk_scan MODE 1
 *   recomputes the un-gated y and writes dz; chunk_state MODE 1 on (dL/du, C), weights
 *   exp(cum_t) on segment 0, and the reverse state_pass from dfinal_states give dS_k =
 *   dL/d(state leaving chunk k), what passes chunk 0 into dinitial_states; chunk_bwd (b, h,
 *   chunk) writes dx, dB, dC, ddt and the chunk's f64 parts of dA, ddt_bias, dskip, which
 *   head_sums adds (a block per head, a fixed-shape tree); group_sum adds per-head dB, dC
 *   rows when P > 1. Kernels (launch_bwd): f16/bf16 on tensor cores (chunk_state_tc,
 *   chunk_scan_tc, chunk_bwd_tc), the 16-bit fast path (bwd_tstates) running the state
 *   passes as chunk_state_pass_v both ways; f32 on CUDA cores, or TF32 on the _tc kernels.
 *   No atomics in the scans: every output is bit-identical from run to run.
 * Workspace (ssd_layout): states [BH][K][D][N] f32 + dec [BH][K]; the backward adds dstates,
 * the parts [BH][K] (and [BH][K][D]) f64, per-head dB, dC [B][L][H][N] f32 when P > 1.
 * ssd_step: a block of 128 threads per (request, head): ssd_step_vec_kernel for 16-byte
 * rows, else ssd_step_kernel; f32 update, fixed shuffle order; a request outside the pool
 * is counted and skipped.
 * Not yet (speed): wgmma, or two (b, h) per block, in the fused forward (latency-bound on its
 * mma.sync chains with 8 warps per SM); vector loads in the CUDA-core kernels of the exact
 * f32 plan (chunk_state, chunk_scan), 8 warps in chunk_bwd_tc, the backward's fused state
 * passes on long walks from fewer than 128 blocks (a split as chunk_state_v + state_pass_t);
 * fewer instructions per product in the TF32 fused forward (an issue-bound walk: ldmatrix
 * for its row-major tf32 fragments), and tiles loaded while the previous ones are multiplied
 * in chunk_state_tc / chunk_scan_tc (load, then compute).
 */
#include "common.cuh"
#include "cuda/ssd_cuda.h"

#include <type_traits>

namespace {

const int TQ = 64;       /* steps per chunk */
const int kThreads = 256; /* 16 x 16 */

struct ssd_geo {
    long long B, L, H, D, N, K, BH;
    long long P;     /* heads per group */
    bool bias, skip; /* the backward's ddt_bias and dskip parts */
};

ssd_geo geo_of(const bk_ssd_desc *d)
{
    ssd_geo g;
    g.B = d->batch;
    g.L = d->seq_len;
    g.H = d->heads;
    g.D = d->head_dim;
    g.N = d->state_dim;
    g.K = (g.L + TQ - 1) / TQ;
    g.BH = g.B * g.H;
    g.P = d->ngroups > 0 ? d->heads / d->ngroups : 1;
    g.bias = d->has_dt_bias;
    g.skip = d->skip != BK_SSD_SKIP_NONE;
    return g;
}

struct ssd_ws {
    float *states;  /* [BH][K][D][N] */
    float *dstates; /* [BH][K][D][N] (backward) */
    float *dec;     /* [BH][K] */
    double *parts;  /* [BH][K] (backward): dA */
    double *pbias;  /* [BH][K] (backward, dt_bias): ddt_bias */
    double *pskip;  /* [BH][K][D] (backward, skip): dskip per channel */
    float *gdb, *gdc; /* [B][L][H][N] (backward, P > 1): dB, dC of each head */
};

/* The one layout of the workspace: sizes it (base NULL) or carves it. The fused passes keep
 * their 16-bit states in the first half of each (b, h)'s f32 area (tstate_at) and the
 * <dS, S> sums in the second half of dstates' (tdots_at); the size is the f32 path's, which
 * any plan may take (the fast path depends on the views). */
size_t ssd_layout(const ssd_geo &g, bool backward, void *base, ssd_ws *w)
{
    if (g.BH == 0 || g.L == 0)
        return 0;
    bk_carver cv = bk_carver_start(base);
    const int64_t chunks = bk_mul_sat(g.BH, g.K);
    const size_t st = bk_bytes(bk_mul_sat(chunks, g.D * g.N), sizeof(float));
    w->states = (float *)bk_carve(&cv, st);
    w->dstates = backward ? (float *)bk_carve(&cv, st) : NULL;
    w->dec = (float *)bk_carve(&cv, bk_bytes(chunks, sizeof(float)));
    w->parts = backward ? (double *)bk_carve(&cv, bk_bytes(chunks, sizeof(double))) : NULL;
    w->pbias = backward && g.bias ? (double *)bk_carve(&cv, bk_bytes(chunks, sizeof(double))) : NULL;
    w->pskip = backward && g.skip ? (double *)bk_carve(&cv, bk_bytes(bk_mul_sat(chunks, g.D), sizeof(double))) : NULL;
    const int64_t rows = bk_mul_sat(bk_mul_sat(g.BH, g.L), g.N);
    w->gdb = backward && g.P > 1 ? (float *)bk_carve(&cv, bk_bytes(rows, sizeof(float))) : NULL;
    w->gdc = backward && g.P > 1 ? (float *)bk_carve(&cv, bk_bytes(rows, sizeof(float))) : NULL;
    return cv.offset;
}

template <typename T> __device__ __forceinline__ float ld(const T *p)
{
    return elem<T>::load(*p);
}

__device__ __forceinline__ long long off4(const bk_view4 &v, long long b, long long l, long long h, long long i)
{
    return b * v.s0 + l * v.s1 + h * v.s2 + i;
}

/* The options as the kernels see them; kopts_none() is the plain problem. */
struct ssd_kopts {
    const void *bias; /* dt_bias [H] (stride sbias) or NULL */
    long long sbias;
    bool softplus, limit; /* dt' = softplus(dt + bias) (identity above 20), clamped to [lo, hi] */
    float lo, hi;
    long long P;       /* heads per group: head h reads B and C of group h / P */
    int skip_kind;     /* bk_ssd_skip */
    const void *skip;  /* [H] or [H, D] (strides sskip0, 1) */
    long long sskip0;
    const void *z;     /* [B, L, H, D] (strides sz) or NULL */
    bk_view4 sz;
    const int *seq;    /* seq_idx [B, L] (strides sseq) or NULL */
    bk_view4 sseq;
};

__host__ __device__ ssd_kopts kopts_none()
{
    ssd_kopts o = {};
    o.P = 1;
    return o;
}

/* What a chunk_bwd instantiation handles (its template argument OPTS): the plain problem
 * (every option folded away at compile time), B and C shared by groups of heads only (P > 1:
 * per-head dB, dC rows into the workspace), or every option tested at run time. */
enum bwd_opts { kBwdPlain = 0, kBwdGroups = 1, kBwdAll = 2 };

/* The options a chunk_bwd instantiation of kind OPTS sees of `o`. */
template <int OPTS> __device__ __forceinline__ ssd_kopts kopts_for(const ssd_kopts &o)
{
    if (OPTS == kBwdAll)
        return o;
    ssd_kopts k = kopts_none();
    if (OPTS == kBwdGroups)
        k.P = o.P;
    return k;
}

/* The options of d with their tensors (NULL when off), for either direction. */
ssd_kopts kopts_of(const bk_ssd_desc *d, const bk_tensor *bias, const bk_tensor *skip, const bk_tensor *z,
                   const bk_tensor *seq)
{
    ssd_kopts o = kopts_none();
    o.bias = bias ? bias->data : NULL;
    o.sbias = bias ? bias->strides[0] : 0;
    o.softplus = d->dt_softplus;
    o.limit = d->has_dt_limit;
    o.lo = (float)d->dt_min;
    o.hi = (float)d->dt_max;
    o.P = d->ngroups > 0 ? d->heads / d->ngroups : 1;
    o.skip_kind = (int)d->skip;
    o.skip = skip ? skip->data : NULL;
    o.sskip0 = skip ? skip->strides[0] : 0;
    o.z = z ? z->data : NULL;
    o.sz = z ? bk_view4_of(z) : bk_view4{0, 0, 0, 0};
    o.seq = seq ? (const int *)seq->data : NULL;
    o.sseq = seq ? bk_view4_of(seq) : bk_view4{0, 0, 0, 0};
    return o;
}

/* The skip of head h at channel d (0 without). */
template <typename T> __device__ __forceinline__ float skip_of(const ssd_kopts &o, long long h, long long d)
{
    if (o.skip_kind == BK_SSD_SKIP_NONE)
        return 0.f;
    return ld((const T *)o.skip + h * o.sskip0 + (o.skip_kind == BK_SSD_SKIP_PER_CHANNEL ? d : 0));
}

__device__ __forceinline__ float sigmoidf_(float v)
{
    return 1.f / (1.f + expf(-v));
}

__device__ __forceinline__ float siluf_(float v)
{
    return v / (1.f + expf(-v));
}

/* y of head h at (b, l, d) from the scan's sum u: (u + skip x) silu(z) as the options say. */
template <typename T>
__device__ __forceinline__ float finish_y(const ssd_kopts &o, float u, const T *x, const bk_view4 &sx, long long b,
                                          long long l, long long h, long long d)
{
    if (o.skip_kind != BK_SSD_SKIP_NONE)
        u += skip_of<T>(o, h, d) * ld(x + off4(sx, b, l, h, d));
    if (o.z)
        u *= siluf_(ld((const T *)o.z + off4(o.sz, b, l, h, d)));
    return u;
}

/* dz at (b, l, h, d) from v = u + skip x (the un-gated y): dy v sg (1 + z (1 - sg)), sg =
 * sigmoid(z). */
template <typename T>
__device__ __forceinline__ float gate_dz(const ssd_kopts &o, float v, const T *dy, const bk_view4 &sdy, long long b,
                                         long long l, long long h, long long d)
{
    const float zv = ld((const T *)o.z + off4(o.sz, b, l, h, d)), sg = sigmoidf_(zv);
    return ld(dy + off4(sdy, b, l, h, d)) * v * sg * (1.f + zv * (1.f - sg));
}

/* The backward's dL/du at (b, l, h, d) (u: the scan's sum plus the skip term): dy, times
 * silu(z) with the gate. */
template <typename T>
__device__ __forceinline__ float ld_du(const ssd_kopts &o, const T *dy, const bk_view4 &sdy, long long b, long long l,
                                      long long h, long long d)
{
    float g = ld(dy + off4(sdy, b, l, h, d));
    if (o.z)
        g *= siluf_(ld((const T *)o.z + off4(o.sz, b, l, h, d)));
    return g;
}

/* dt' of one step from the raw dt: bias, softplus, clamp; *slope (when given) = d dt' /
 * d raw dt: sigmoid through the softplus, 0 where the clamp bites. */
template <typename T>
__device__ __forceinline__ float dt_eff(const ssd_kopts &o, float v, long long h, float *slope = nullptr)
{
    float g = 1.f;
    if (o.bias)
        v += ld((const T *)o.bias + h * o.sbias);
    if (o.softplus && v <= 20.f) {
        if (slope)
            g = sigmoidf_(v);
        v = log1pf(expf(v));
    }
    if (o.limit) {
        if (slope && (v < o.lo || v > o.hi))
            g = 0.f;
        v = fminf(fmaxf(v, o.lo), o.hi);
    }
    if (slope)
        *slope = g;
    return v;
}

/* dt' of the chunk's steps (0 past its end) and cum[i] = sum_{u <= i} dt'_u A, into shared
 * memory; with seq_idx, seg[i] = the number of seq_idx changes at positions l0 .. l0 + i
 * (each against the position before it; 0 everywhere without seq_idx). In-chunk masks:
 * s and t interact when seg[s] == seg[t]; the state carried in reaches t when seg[t] == 0. */
/* chunk_prologue's global loads, for thread tid < TQ: step tid's raw dt (0 past q) and
 * whether seq_idx changes there; apart so a kernel can issue them a chunk ahead. */
template <typename T> struct prologue_in {
    T dt; /* raw: converted in chunk_prologue_scan, so a load issued ahead is not waited for here */
    int change;
};
template <typename T>
__device__ __forceinline__ prologue_in<T> chunk_prologue_load(const T *dt, const bk_view4 &sdt, long long b,
                                                              long long l0, long long h, int q, const ssd_kopts &o)
{
    const int tid = threadIdx.x;
    prologue_in<T> in = {elem<T>::store(0.f), 0};
    if (tid < TQ && tid < q) {
        in.dt = dt[b * sdt.s0 + (l0 + tid) * sdt.s1 + h * sdt.s2];
        if (o.seq && l0 + tid > 0) {
            const int *row = o.seq + b * o.sseq.s0;
            in.change = row[(l0 + tid) * o.sseq.s1] != row[(l0 + tid - 1) * o.sseq.s1];
        }
    }
    return in;
}

/* The chunk's running sums over a warp whose lane i holds steps 2 i and 2 i + 1 (dt' d0, d1
 * and the seq_idx changes ch0, ch1 there): cum of a = dt' A and the segment numbers, for
 * both steps (two steps per lane, then warp scans of the pair sums). */
struct pair_scan {
    float c0, c1;
    int s0, s1;
};
__device__ __forceinline__ pair_scan warp_pair_scan(float d0, float d1, float A, int ch0, int ch1, int lane)
{
    const float v0 = d0 * A, v1 = v0 + d1 * A;
    float incl = v1;
    const int g0 = ch0, g1 = g0 + ch1;
    int gincl = g1;
    for (int k = 1; k < 32; k *= 2) {
        const float u = __shfl_up_sync(0xffffffffu, incl, k);
        const int gu = __shfl_up_sync(0xffffffffu, gincl, k);
        if (lane >= k) {
            incl += u;
            gincl += gu;
        }
    }
    return pair_scan{incl - v1 + v0, incl, gincl - g1 + g0, gincl};
}

/* chunk_prologue from its loaded inputs (every thread of the block calls it). */
template <typename T>
__device__ void chunk_prologue_scan(const prologue_in<T> &in, long long h, int q, float A, float *s_dt, float *s_cum,
                                    int *s_seg, const ssd_kopts &o)
{
    const int tid = threadIdx.x;
    if (tid < TQ) {
        s_dt[tid] = tid < q ? dt_eff<T>(o, ld(&in.dt), h) : 0.f;
        s_seg[tid] = in.change;
    }
    __syncthreads();
    if (tid < 32) {
        const pair_scan ps = warp_pair_scan(s_dt[2 * tid], s_dt[2 * tid + 1], A, s_seg[2 * tid], s_seg[2 * tid + 1], tid);
        s_cum[2 * tid] = ps.c0;
        s_cum[2 * tid + 1] = ps.c1;
        s_seg[2 * tid] = ps.s0;
        s_seg[2 * tid + 1] = ps.s1;
    }
    __syncthreads();
}

template <typename T>
__device__ void chunk_prologue(const T *dt, const bk_view4 &sdt, long long b, long long l0, long long h, int q, float A,
                               float *s_dt, float *s_cum, int *s_seg, const ssd_kopts &o)
{
    chunk_prologue_scan<T>(chunk_prologue_load<T>(dt, sdt, b, l0, h, q, o), h, q, A, s_dt, s_cum, s_seg, o);
}

/* chunk_prologue by one warp, for kernels that run it a chunk ahead without a block barrier:
 * lane i holds steps 2 i, 2 i + 1. warp_prologue_load issues the global loads (kept raw until
 * warp_prologue_scan, so loads issued ahead are not waited for); warp_prologue_scan writes
 * the chunk's weights w into s_w and its decay into *s_dec, with chunk_prologue's sums in the
 * same order: MODE 0 (a chunk's own state) w_s = exp(cum_last - cum_s) dt_s on the last
 * segment, MODE 1 (the backward's state gradient) w_t = exp(cum_t) on segment 0; dec =
 * cum_last, -inf when the chunk holds a reset. Given s_cum, s_dt and s_seg, it also writes
 * chunk_prologue's cum, dt' and seg there. */
template <typename T> struct warp_prologue_in {
    T dt[2];
    int change[2];
};
template <typename T>
__device__ __forceinline__ warp_prologue_in<T> warp_prologue_load(const T *dt, const bk_view4 &sdt, long long b,
                                                                  long long l0, long long h, int q,
                                                                  const ssd_kopts &o, int lane)
{
    warp_prologue_in<T> in;
#pragma unroll
    for (int e = 0; e < 2; e++) {
        const int i = 2 * lane + e;
        in.dt[e] = elem<T>::store(0.f);
        in.change[e] = 0;
        if (i < q) {
            in.dt[e] = dt[b * sdt.s0 + (l0 + i) * sdt.s1 + h * sdt.s2];
            if (o.seq && l0 + i > 0) {
                const int *row = o.seq + b * o.sseq.s0;
                in.change[e] = row[(l0 + i) * o.sseq.s1] != row[(l0 + i - 1) * o.sseq.s1];
            }
        }
    }
    return in;
}
template <typename T, int MODE>
__device__ __forceinline__ void warp_prologue_scan(const warp_prologue_in<T> &in, long long h, int q, float A,
                                                   float *s_w, float *s_dec, const ssd_kopts &o, int lane,
                                                   float *s_cum = nullptr, float *s_dt = nullptr,
                                                   int *s_seg = nullptr)
{
    const float d0 = 2 * lane < q ? dt_eff<T>(o, ld(&in.dt[0]), h) : 0.f;
    const float d1 = 2 * lane + 1 < q ? dt_eff<T>(o, ld(&in.dt[1]), h) : 0.f;
    const pair_scan ps = warp_pair_scan(d0, d1, A, in.change[0], in.change[1], lane);
    const float c0 = ps.c0, c1 = ps.c1;
    const int s0 = ps.s0, s1 = ps.s1;
    const int last = q - 1; /* the chunk's last step, in lane last / 2 */
    const float cl = __shfl_sync(0xffffffffu, (last & 1) ? c1 : c0, last >> 1);
    const int sl = __shfl_sync(0xffffffffu, (last & 1) ? s1 : s0, last >> 1);
    float w0 = 0.f, w1 = 0.f;
    if (MODE == 0) {
        if (2 * lane < q && s0 == sl)
            w0 = expf(cl - c0) * d0;
        if (2 * lane + 1 < q && s1 == sl)
            w1 = expf(cl - c1) * d1;
    } else {
        if (2 * lane < q && s0 == 0)
            w0 = expf(c0);
        if (2 * lane + 1 < q && s1 == 0)
            w1 = expf(c1);
    }
    *(float2 *)&s_w[2 * lane] = make_float2(w0, w1);
    if (lane == 0)
        *s_dec = sl == 0 ? cl : -INFINITY; /* a reset: nothing carried */
    if (s_cum) { /* chunk_prologue's outputs too (the fused forward's in-chunk weights) */
        *(float2 *)&s_cum[2 * lane] = make_float2(c0, c1);
        *(float2 *)&s_dt[2 * lane] = make_float2(d0, d1);
        *(int2 *)&s_seg[2 * lane] = make_int2(s0, s1);
    }
}

/* Sum over the 16 lanes of a half warp (lanes tx = 0..15 of one row group). */
__device__ __forceinline__ float half_warp_sum(float v)
{
    for (int o = 8; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ------------------------------------------------------- chunk_state -- */

/* out[bh][k][d][n] = sum_s w_s u_s[d] v_s[n] over chunk k, for a 64 x 64 tile of [D, N].
 * MODE 0: u = x, v = B, w_s = exp(cum_last - cum_s) dt_s for the steps of the chunk's last
 * segment (also writes dec = cum_last, -inf when the chunk holds a reset);
 * MODE 1: u = dL/du (dy, gated: ld_du), v = C, w_t = exp(cum_t) for the steps of the
 * chunk's first segment (those the carried-in state reaches). */
template <typename T, int MODE>
__global__ void __launch_bounds__(kThreads)
    chunk_state_kernel(const T *u, bk_view4 su, const T *v, bk_view4 sv, const T *dt, bk_view4 sdt, const T *a,
                       long long sa, float *out, float *dec, long long L, long long H, long long D, long long N,
                       long long K, long long total, ssd_kopts o)
{
    __shared__ float s_dt[TQ], s_cum[TQ], s_w[TQ];
    __shared__ int s_seg[TQ];
    __shared__ float s_u[TQ][TQ + 1], s_v[TQ][TQ + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const long long tn = (N + TQ - 1) / TQ, tiles = ((D + TQ - 1) / TQ) * tn;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long tile = blk % tiles, c = (blk / tiles) % K, bh = blk / tiles / K;
        const long long b = bh / H, h = bh % H, l0 = c * TQ, d0 = (tile / tn) * TQ, n0 = (tile % tn) * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0);
        chunk_prologue(dt, sdt, b, l0, h, q, ld(a + h * sa), s_dt, s_cum, s_seg, o);
        if (tid < TQ)
            s_w[tid] = tid >= q ? 0.f
                       : MODE == 0 ? (s_seg[tid] == s_seg[q - 1] ? expf(s_cum[q - 1] - s_cum[tid]) * s_dt[tid] : 0.f)
                                   : (s_seg[tid] == 0 ? expf(s_cum[tid]) : 0.f);
        if (MODE == 0 && tid == 0 && tile == 0) /* a reset inside the chunk: nothing carried through it */
            dec[bh * K + c] = s_seg[q - 1] == 0 ? s_cum[q - 1] : -INFINITY;
        __syncthreads();
        for (int i = tid; i < TQ * TQ; i += kThreads) {
            const int s = i / TQ, j = i % TQ;
            s_u[s][j] = !(s < q && d0 + j < D) ? 0.f
                        : MODE == 0            ? ld(u + off4(su, b, l0 + s, h, d0 + j))
                                               : ld_du(o, u, su, b, l0 + s, h, d0 + j);
            s_v[s][j] = (s < q && n0 + j < N) ? ld(v + off4(sv, b, l0 + s, hg, n0 + j)) * s_w[s] : 0.f;
        }
        __syncthreads();
        float acc[4][4] = {};
        for (int s = 0; s < q; s++) {
            float uu[4], vv[4];
            for (int i = 0; i < 4; i++) {
                uu[i] = s_u[s][ty + 16 * i];
                vv[i] = s_v[s][tx + 16 * i];
            }
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] += uu[i] * vv[j];
        }
        float *o = out + (bh * K + c) * D * N;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const long long d = d0 + ty + 16 * i, n = n0 + tx + 16 * j;
                if (d < D && n < N)
                    o[d * N + n] = acc[i][j];
            }
        __syncthreads();
    }
}

/* ------------------------------------------------------- state_pass -- */

/* In place over st[bh][k][e] (e < DN): forward, st[k] becomes the state entering chunk k;
 * reverse, st[k] becomes the gradient of the state leaving chunk k. Starts from init[b, h]
 * (0 when NULL; reverse: dfinal_states) and writes what passes the last chunk to fin[b, h]
 * when non-NULL (the final state; reverse: dinitial_states); K = 0 writes init there.
 * Block (bh, slice of kPassThreads * W elements), a thread W consecutive elements of one
 * row (W = 4: float4 pieces, N % 4 == 0 and st 16-byte aligned; else W = 1), with the
 * next kPassAhead chunks' pieces and decays loaded ahead of the sequential steps. */
const int kPassThreads = 256;
const int kPassAhead = 8; /* chunks loaded ahead */
template <int W> __device__ __forceinline__ void pass_load(const float *p, float (&v)[W])
{
    if constexpr (W == 4) {
        const float4 q = *(const float4 *)p;
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
        for (int j = 0; j < W; j++)
            v[j] = p[j];
    }
}
template <int W> __device__ __forceinline__ void pass_store(float *p, const float (&v)[W])
{
    if constexpr (W == 4)
        *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
    else
        for (int j = 0; j < W; j++)
            p[j] = v[j];
}
template <typename T, int W>
__global__ void __launch_bounds__(kPassThreads)
    state_pass_kernel(float *__restrict__ st, const float *__restrict__ dec, long long DN, long long K, int slices,
                      long long total, int reverse, const T *init, bk_view4 si, T *fin, bk_view4 sf, long long H,
                      long long N)
{
    constexpr int A = kPassAhead;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long bh = blk / slices, e = ((blk % slices) * kPassThreads + threadIdx.x) * W;
        if (e >= DN)
            continue;
        const long long b = bh / H, h = bh % H, d = e / N, n = e % N;
        float *col = st + bh * K * DN + e;
        const float *dc = dec + bh * K;
        float acc[W], v[A][W], f[A];
        for (int j = 0; j < W; j++)
            acc[j] = init ? ld(init + b * si.s0 + h * si.s1 + d * si.s2 + n + j) : 0.f;
#pragma unroll
        for (int r = 0; r < A; r++) { /* chunk r (step order) into slot r */
            const long long c = reverse ? K - 1 - r : r;
            if (r < K) {
                pass_load<W>(col + c * DN, v[r]);
                f[r] = dc[c];
            }
        }
        for (long long k0 = 0; k0 < K; k0 += A) {
#pragma unroll
            for (int r = 0; r < A; r++) {
                const long long k = k0 + r, c = reverse ? K - 1 - k : k, kn = k + A;
                if (k < K) {
                    const float fk = expf(f[r]);
                    pass_store<W>(col + c * DN, acc);
                    for (int j = 0; j < W; j++)
                        acc[j] = fk * acc[j] + v[r][j];
                    if (kn < K) {
                        pass_load<W>(col + (reverse ? K - 1 - kn : kn) * DN, v[r]);
                        f[r] = dc[reverse ? K - 1 - kn : kn];
                    }
                }
            }
        }
        if (fin)
            for (int j = 0; j < W; j++)
                fin[b * sf.s0 + h * sf.s1 + d * sf.s2 + n + j] = elem<T>::store(acc[j]);
    }
}

/* ---------------------------------------------------- varlen states -- */

/* varlen[s, h, d, n] = the state after the last position of sequence s (batch 1, positions
 * cu[s] .. cu[s+1] - 1): the state entering that position's chunk (st after state_pass),
 * unless a seq_idx change lies in the chunk at or before the position, then stepped
 * sequentially from the chunk's start (or that change) to the position, at most TQ steps.
 * Zero for an empty sequence and for one whose bounds are out of order or outside
 * [0, L] (cu_seqlens is not read on the host on CUDA). One thread per element. */
template <typename T>
__global__ void varlen_states_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa,
                                     const T *bm, bk_view4 sb, const float *st, const int *cu, T *out, bk_view4 so,
                                     long long nv, long long L, long long H, long long D, long long N, long long K,
                                     ssd_kopts o)
{
    const long long DN = D * N, total = nv * H * DN;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long e = i % DN, sh = i / DN, sq = sh / H, h = sh % H, d = e / N, n = e % N;
        const long long lo = cu[sq], hi = cu[sq + 1];
        float acc = 0.f;
        if (lo >= 0 && hi > lo && hi <= L && st) {
            const long long last = hi - 1, k = last / TQ, cs = k * TQ;
            long long t0 = cs;
            bool carry = true;
            if (o.seq)
                for (long long t = last; t >= cs && t > 0; t--)
                    if (o.seq[t * o.sseq.s1] != o.seq[(t - 1) * o.sseq.s1]) {
                        t0 = t;
                        carry = false;
                        break;
                    }
            if (carry)
                acc = st[(h * K + k) * DN + e];
            const float A = ld(a + h * sa);
            const long long g = h / o.P;
            for (long long t = t0; t <= last; t++) {
                const float dtp = dt_eff<T>(o, ld(dt + t * sdt.s1 + h * sdt.s2), h);
                acc = expf(dtp * A) * acc + dtp * ld(x + off4(sx, 0, t, h, d)) * ld(bm + off4(sb, 0, t, g, n));
            }
        }
        out[sq * so.s0 + h * so.s1 + d * so.s2 + n] = elem<T>::store(acc);
    }
}

/* ------------------------------------------- tensor cores (f16, bf16) -- */

/* D += A B on one m16n8k16 tile, f32 accumulate. A: 4 registers of two 16-bit values
 * (rows g, g+8; columns 2c.., 2c+8..), B: 2 registers (k 2c.., 2c+8..; column g), with
 * g = lane / 4, c = lane % 4; D: rows g (0, 1) and g+8 (2, 3), columns 2c, 2c+1. */

/* The operand side of a tensor-core kernel of element type T: f16/bf16 run 16-bit operands,
 * f32 (only in the TF32 plans) tf32 ones (bk_mma16 in common.cuh). Shared-memory tiles hold
 * T (f32 tiles unrounded: bk_mma16<float>::lds rounds to tf32 as it builds a fragment;
 * RAW loaders take tiles already rounded, as the fused TF32 forward keeps its C and B).
 * TF32 (the f32 plans of BK_PREFER_ALLOW_TF32): T = float in chunk_state_tc, chunk_scan_tc
 * and chunk_bwd_tc; bk_mma16<float> (common.cuh) makes a k16 step two mma.sync m16n8k8
 * .tf32 whose lanes hold the same (row, k) elements as the 16-bit fragments, so the
 * kernels' fragment code is shared; shared tiles hold f32 (pitch kPad floats), rounded to
 * tf32 (cvt.rna) as fragments are built; transposed fragments element by element (no
 * 32-bit ldmatrix.trans); dL/du in one tile (no hi + lo: the other operands are tf32
 * too). Not for TF32: the _v kernels (ldmatrix.trans is 16-bit only, and their 16-bit
 * entering states live inside the f32 state buffer, which f32 states would fill), so the
 * TF32 forward, where ssd_fwd_fused_tf32_kernel does not run, is chunk_state_tc +
 * state_pass + chunk_scan_tc (72 KB of tiles, 3 blocks per SM) and its backward's
 * chunk_bwd_tc holds six tiles, 108 KB (two blocks per SM). */
template <typename T> using frag_t = typename bk_mma16<T>::pair;
template <typename T> constexpr bool kHasTc = sizeof(T) <= 4; /* f16, bf16, f32 (TF32) */
/* Two elements as an operand pair: f32 rounded to tf32 (cvt.rna), or with RAW taken as
 * they are (tiles already rounded in shared memory: tf32_round_piece); lds2 from p[0..1]. */
template <typename T, bool RAW = false> __device__ __forceinline__ frag_t<T> pair2(T lo, T hi)
{
    if constexpr (RAW && sizeof(T) == 4)
        return make_uint2(__float_as_uint(lo), __float_as_uint(hi));
    else
        return bk_mma16<T>::pack(lo, hi);
}
template <typename T, bool RAW = false> __device__ __forceinline__ frag_t<T> lds2(const T *p)
{
    if constexpr (RAW && sizeof(T) == 4) {
        const float2 v = *(const float2 *)p;
        return pair2<T, true>(v.x, v.y);
    } else {
        return bk_mma16<T>::lds(p);
    }
}

const int kTcThreads = 128; /* 4 warps, 16 rows of a 64-row tile each */
const int kPad = TQ + 8;    /* 16-bit row pitch: fragment loads hit 32 distinct banks */

__device__ __forceinline__ void zero16(void *dst)
{
    *(uint4 *)dst = make_uint4(0u, 0u, 0u, 0u);
}

/* Fragments of 64 x 64 tiles of T in shared memory (row pitch kPad) for bk_mma16: A (rows
 * rb..rb+15, k from kb) of a tile stored [m][k] (frag_a) or [k][m] (frag_a_t); B of n-tiles
 * nt and nt + 1 (b[0..1], b[2..3]; k from kb) of a tile stored [n][k] (frag_b) or [k][n]
 * (frag_b_t). 16-bit T: one ldmatrix.x4 each (.trans for the [k][..] tiles; 144-byte rows,
 * conflict-free). f32 tiles: 8-byte pair loads [m][k] (conflict-free at pitch 72 per half
 * warp), element loads [k][m] (2-way). */
template <typename T, bool RAW = false>
__device__ __forceinline__ void frag_a(frag_t<T> *af, const T (*X)[kPad], int rb, int kb)
{
    const int lane = threadIdx.x % 32;
    if constexpr (sizeof(T) == 2) { /* lanes 8 i..8 i + 7: the rows of af[i] */
        bk_ldsm_x4(af, bk_smem_addr(&X[rb + (lane & 15)][kb + (lane >> 4) * 8]));
    } else {
        const int r = rb + lane / 4, k = kb + 2 * (lane % 4);
        af[0] = lds2<T, RAW>(&X[r][k]);
        af[1] = lds2<T, RAW>(&X[r + 8][k]);
        af[2] = lds2<T, RAW>(&X[r][k + 8]);
        af[3] = lds2<T, RAW>(&X[r + 8][k + 8]);
    }
}
template <typename T, bool RAW = false>
__device__ __forceinline__ void frag_a_t(frag_t<T> *af, const T (*X)[kPad], int rb, int kb)
{
    const int lane = threadIdx.x % 32;
    if constexpr (sizeof(T) == 2) {
        bk_ldsm_x4_trans(af, bk_smem_addr(&X[kb + (lane & 7) + ((lane >> 4) & 1) * 8][rb + ((lane >> 3) & 1) * 8]));
    } else { /* no ldmatrix for 32-bit transposes: the pairs element by element */
        const int m = rb + lane / 4, k = kb + 2 * (lane % 4);
        af[0] = pair2<T, RAW>(X[k][m], X[k + 1][m]);
        af[1] = pair2<T, RAW>(X[k][m + 8], X[k + 1][m + 8]);
        af[2] = pair2<T, RAW>(X[k + 8][m], X[k + 9][m]);
        af[3] = pair2<T, RAW>(X[k + 8][m + 8], X[k + 9][m + 8]);
    }
}
template <typename T, bool RAW = false>
__device__ __forceinline__ void frag_b(frag_t<T> *bf, const T (*Y)[kPad], int nt, int kb)
{
    const int lane = threadIdx.x % 32;
    if constexpr (sizeof(T) == 2) { /* lanes 8 i..8 i + 7: the rows of bf[i] */
        bk_ldsm_x4(bf, bk_smem_addr(&Y[nt * 8 + (lane & 7) + ((lane >> 4) & 1) * 8][kb + ((lane >> 3) & 1) * 8]));
    } else {
        const int n = nt * 8 + lane / 4, k = kb + 2 * (lane % 4);
        bf[0] = lds2<T, RAW>(&Y[n][k]);
        bf[1] = lds2<T, RAW>(&Y[n][k + 8]);
        bf[2] = lds2<T, RAW>(&Y[n + 8][k]);
        bf[3] = lds2<T, RAW>(&Y[n + 8][k + 8]);
    }
}
template <typename T, bool RAW = false>
__device__ __forceinline__ void frag_b_t(frag_t<T> *bf, const T (*Y)[kPad], int nt, int kb)
{
    const int lane = threadIdx.x % 32;
    if constexpr (sizeof(T) == 2) {
        bk_ldsm_x4_trans(bf, bk_smem_addr(&Y[kb + (lane & 15)][(nt + (lane >> 4)) * 8]));
    } else {
        const int n = nt * 8 + lane / 4, k = kb + 2 * (lane % 4);
        bf[0] = pair2<T, RAW>(Y[k][n], Y[k + 1][n]);
        bf[1] = pair2<T, RAW>(Y[k + 8][n], Y[k + 9][n]);
        bf[2] = pair2<T, RAW>(Y[k][n + 8], Y[k + 1][n + 8]);
        bf[3] = pair2<T, RAW>(Y[k + 8][n + 8], Y[k + 9][n + 8]);
    }
}

/* One warp: acc[16 rows from rb][64 columns] += X Y over k in [kb0, kb1) (multiples of 16);
 * XT / YT: X stored [k][m], Y stored [k][n] (else [m][k], [n][k]). */
template <typename T, bool XT, bool YT>
__device__ __forceinline__ void warp_mma(float (&acc)[8][4], const T (*X)[kPad], const T (*Y)[kPad], int rb, int kb0,
                                         int kb1)
{
#pragma unroll 1
    for (int kb = kb0; kb < kb1; kb += 16) {
        frag_t<T> af[4];
        if (XT)
            frag_a_t(af, X, rb, kb);
        else
            frag_a(af, X, rb, kb);
#pragma unroll
        for (int nt = 0; nt < 8; nt += 2) {
            frag_t<T> bf[4];
            if (YT)
                frag_b_t(bf, Y, nt, kb);
            else
                frag_b(bf, Y, nt, kb);
            bk_mma16<T>::mma(acc[nt], af, bf);
            bk_mma16<T>::mma(acc[nt + 1], af, bf + 2);
        }
    }
}

/* Elements of T in one 16-byte piece; pieces in a 64-element tile row: 1 << kRowShift. */
template <typename T> constexpr int kPer16 = 16 / (int)sizeof(T);
template <typename T> constexpr int kRowShift = sizeof(T) == 2 ? 3 : 4;
template <typename T> constexpr int kRowPieces = 1 << kRowShift<T>;

/* tile[r][j] = src[r * rs + j] (64 rows from src, 64 columns), zero where r >= q or j >= w.
 * vec: 16-byte cp.async pieces (src and rs * sizeof(T) multiples of 16, w a multiple of 8;
 * the caller waits before its barrier), else element by element. ROLLED: the 16-byte loop
 * not unrolled (fewer registers where the caller holds accumulators). */
template <typename T, bool ROLLED = false>
__device__ __forceinline__ void load_tile(T (*tile)[kPad], const T *src, long long rs, int q, long long w, bool vec)
{
    if (vec) {
#pragma unroll(ROLLED ? 1 : 16)
        for (int it = 0; it < TQ * kRowPieces<T> / kTcThreads; it++) {
            const int i = threadIdx.x + it * kTcThreads, r = i >> kRowShift<T>, j = (i & (kRowPieces<T> - 1)) * kPer16<T>;
            if (r < q && j < w)
                bk_cp_async16(bk_smem_addr(&tile[r][j]), src + r * rs + j, 16);
            else
                zero16(&tile[r][j]);
        }
    } else {
        for (int i = threadIdx.x; i < TQ * TQ; i += kTcThreads) {
            const int r = i / TQ, j = i % TQ;
            tile[r][j] = r < q && j < w ? src[r * rs + j] : elem<T>::store(0.f);
        }
    }
}

/* chunk_state on tensor cores: out[d][n] = sum_s u_s[d] (w_s v_s[n]) for a 64 x 64 tile, the
 * MODEs, weights and dec of chunk_state_kernel (MODE 0: u = x, v = B; MODE 1: u = dL/du,
 * v = C); tiles Us[s][d], Vs[s][n] as stored in memory (vec: 16-byte cp.async pieces, as
 * load_tile; else element by element), then w_s v_s rounded to T in place; transposed
 * fragments (frag_a_t, frag_b_t). */
template <typename T, int MODE>
__global__ void __launch_bounds__(kTcThreads)
    chunk_state_tc_kernel(const T *x, bk_view4 sx, const T *bm, bk_view4 sb, const T *dt, bk_view4 sdt, const T *a,
                          long long sa, float *out, float *dec, long long L, long long H, long long D, long long N,
                          long long K, long long total, ssd_kopts o, bool vec)
{
    __shared__ float s_dt[TQ], s_cum[TQ], s_w[TQ];
    __shared__ int s_seg[TQ];
    __shared__ __align__(16) T Us[TQ][kPad], Vs[TQ][kPad];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const long long tn = (N + TQ - 1) / TQ, tiles = ((D + TQ - 1) / TQ) * tn;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long tile = blk % tiles, c = (blk / tiles) % K, bh = blk / tiles / K;
        const long long b = bh / H, h = bh % H, l0 = c * TQ, d0 = (tile / tn) * TQ, n0 = (tile % tn) * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0);
        if (MODE == 0 || !o.z)
            load_tile(Us, x + b * sx.s0 + l0 * sx.s1 + h * sx.s2 + d0, sx.s1, q, D - d0, vec);
        else /* dL/du = dy silu(z), rounded once */
            for (int i = tid; i < TQ * TQ; i += kTcThreads) {
                const int s = i / TQ, j = i % TQ;
                Us[s][j] = elem<T>::store(s < q && d0 + j < D ? ld_du(o, x, sx, b, l0 + s, h, d0 + j) : 0.f);
            }
        load_tile(Vs, bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2 + n0, sb.s1, q, N - n0, vec);
        chunk_prologue(dt, sdt, b, l0, h, q, ld(a + h * sa), s_dt, s_cum, s_seg, o);
        if (tid < TQ)
            s_w[tid] = tid >= q ? 0.f
                       : MODE == 0 ? (s_seg[tid] == s_seg[q - 1] ? expf(s_cum[q - 1] - s_cum[tid]) * s_dt[tid] : 0.f)
                                   : (s_seg[tid] == 0 ? expf(s_cum[tid]) : 0.f);
        if (MODE == 0 && tid == 0 && tile == 0) /* a reset inside the chunk: nothing carried through it */
            dec[bh * K + c] = s_seg[q - 1] == 0 ? s_cum[q - 1] : -INFINITY;
        bk_cp_async_wait_all();
        __syncthreads();
        for (int i = tid; i < TQ * TQ; i += kTcThreads) { /* w_s v_s, rounded to T */
            const int s = i / TQ, j = i % TQ;
            Vs[s][j] = elem<T>::store(ld(&Vs[s][j]) * s_w[s]);
        }
        __syncthreads();
        float acc[8][4] = {};
        warp_mma<T, true, true>(acc, Us, Vs, warp * 16, 0, TQ);
        float *po = out + (bh * K + c) * D * N;
        const int r0 = warp * 16 + g;
        for (int nt = 0; nt < 8; nt++)
            for (int r = 0; r < 4; r++) {
                const long long d = d0 + r0 + (r >= 2 ? 8 : 0), n = n0 + nt * 8 + 2 * cq + (r & 1);
                if (d < D && n < N)
                    po[d * N + n] = acc[nt][r];
            }
        __syncthreads();
    }
}

/* chunk_scan on tensor cores, block (b, h, chunk, 64 columns of D): CB = C B^T and
 * Y = C S^T over N in steps of 64 (C, B, S rounded to the operand type in shared memory),
 * then M = CB * exp(cum_t - cum_s) dt_s (s <= t) rounded likewise straight from the
 * accumulators, u = exp(cum_t) Y + M x. MODE 0: y = finish_y(u); MODE 1 (backward, gate):
 * y <- dz as chunk_scan_kernel's MODE 1. Tiles as stored in memory (Cs[t][n], Bs[s][n],
 * Ss[d][n], Xs[s][d]; vec: x, B, C by 16-byte cp.async, and S too for f32 T), Xs read by
 * transposed fragments. Dynamic shared memory: scan_tc_smem(sizeof(T)) (four 64 x 64
 * tiles of T: 36 KB for 16-bit T, 72 KB for f32). */
size_t scan_tc_smem(size_t elem_bytes)
{
    return 4 * TQ * kPad * elem_bytes;
}

template <typename T, int MODE>
__global__ void __launch_bounds__(kTcThreads)
    chunk_scan_tc_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                         bk_view4 sb, const T *cm, bk_view4 sc, T *y, bk_view4 sy, const float *states, long long L,
                         long long H, long long D, long long N, long long K, long long total, ssd_kopts o,
                         const T *dy, bk_view4 sdy, bool vec)
{
    __shared__ float s_dt[TQ], s_cum[TQ];
    __shared__ int s_seg[TQ];
    extern __shared__ __align__(16) unsigned char scan_tc_smem_buf[];
    typedef T row_t[kPad];
    row_t *Cs = (row_t *)scan_tc_smem_buf, *Bs = Cs + TQ, *Ss = Bs + TQ, *Xs = Ss + TQ;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const long long tiles = (D + TQ - 1) / TQ;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long tile = blk % tiles, c = (blk / tiles) % K, bh = blk / tiles / K;
        const long long b = bh / H, h = bh % H, l0 = c * TQ, d0 = tile * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0);
        const T *cg = cm + b * sc.s0 + l0 * sc.s1 + hg * sc.s2, *bg = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2;
        const float *S = states + (bh * K + c) * D * N + d0 * N;
        const float A = ld(a + h * sa);
        load_tile(Xs, x + b * sx.s0 + l0 * sx.s1 + h * sx.s2 + d0, sx.s1, q, D - d0, vec);
        float cb[8][4] = {}, yy[8][4] = {};
        for (long long n0 = 0; n0 < N; n0 += TQ) { /* the first C, B, S in flight through the prologue */
            load_tile(Cs, cg + n0, sc.s1, q, N - n0, vec);
            load_tile(Bs, bg + n0, sb.s1, q, N - n0, vec);
            if constexpr (sizeof(T) == 4)
                load_tile(Ss, (const T *)S + n0, N, (int)min((long long)TQ, D - d0), N - n0, vec);
            else
                for (int i = tid; i < TQ * TQ; i += kTcThreads) {
                    const int r = i / TQ, j = i % TQ;
                    Ss[r][j] = elem<T>::store(d0 + r < D && n0 + j < N ? S[r * N + n0 + j] : 0.f);
                }
            if (n0 == 0)
                chunk_prologue(dt, sdt, b, l0, h, q, A, s_dt, s_cum, s_seg, o);
            bk_cp_async_wait_all();
            __syncthreads();
#pragma unroll 1
            for (int kb = 0; kb < TQ; kb += 16) {
                frag_t<T> af[4];
                frag_a(af, Cs, warp * 16, kb);
#pragma unroll
                for (int nt = 0; nt < 8; nt += 2) {
                    frag_t<T> bf[4];
                    frag_b(bf, Bs, nt, kb);
                    bk_mma16<T>::mma(cb[nt], af, bf);
                    bk_mma16<T>::mma(cb[nt + 1], af, bf + 2);
                    frag_b(bf, Ss, nt, kb);
                    bk_mma16<T>::mma(yy[nt], af, bf);
                    bk_mma16<T>::mma(yy[nt + 1], af, bf + 2);
                }
            }
            __syncthreads();
        }
        if (N == 0) { /* Xs was loaded without a wait and a barrier after it */
            chunk_prologue(dt, sdt, b, l0, h, q, A, s_dt, s_cum, s_seg, o);
            bk_cp_async_wait_all();
            __syncthreads();
        }
        const int t0 = warp * 16 + g, t1 = t0 + 8;
        const float e0 = t0 < q && s_seg[t0] == 0 ? expf(s_cum[t0]) : 0.f;
        const float e1 = t1 < q && s_seg[t1] == 0 ? expf(s_cum[t1]) : 0.f;
        for (int nt = 0; nt < 8; nt++) {
            yy[nt][0] *= e0;
            yy[nt][1] *= e0;
            yy[nt][2] *= e1;
            yy[nt][3] *= e1;
        }
        for (int kb = 0; kb < 4; kb++) {
            if (kb * 16 > warp * 16 + 15)
                break; /* s > t for every row of this warp */
            float m[2][4];
            for (int hf = 0; hf < 2; hf++)
                for (int r = 0; r < 4; r++) {
                    const int t = r < 2 ? t0 : t1, s = (2 * kb + hf) * 8 + 2 * cq + (r & 1);
                    m[hf][r] = (s <= t && t < q && s_seg[s] == s_seg[t])
                                   ? cb[2 * kb + hf][r] * expf(s_cum[t] - s_cum[s]) * s_dt[s]
                                   : 0.f;
                }
            frag_t<T> af[4];
            bk_pack_a<T>(af, m[0], m[1]);
#pragma unroll
            for (int nt = 0; nt < 8; nt += 2) {
                frag_t<T> bf[4];
                frag_b_t(bf, Xs, nt, kb * 16);
                bk_mma16<T>::mma(yy[nt], af, bf);
                bk_mma16<T>::mma(yy[nt + 1], af, bf + 2);
            }
        }
        for (int nt = 0; nt < 8; nt++)
            for (int r = 0; r < 4; r++) {
                const int t = r < 2 ? t0 : t1;
                const long long d = d0 + nt * 8 + 2 * cq + (r & 1);
                if (t >= q || d >= D)
                    continue;
                if (MODE == 0) {
                    y[off4(sy, b, l0 + t, h, d)] = elem<T>::store(finish_y(o, yy[nt][r], x, sx, b, l0 + t, h, d));
                } else {
                    const float v = yy[nt][r] + skip_of<T>(o, h, d) * ld(x + off4(sx, b, l0 + t, h, d));
                    y[off4(sy, b, l0 + t, h, d)] = elem<T>::store(gate_dz(o, v, dy, sdy, b, l0 + t, h, d));
                }
            }
        __syncthreads();
    }
}

/* ------------------------- vectorised path (f16, bf16; aligned views) -- */

/* Taken when D and N are multiples of 8 (N > 0) and x, B, C, y start on 16 bytes with outer
 * strides that are multiples of 8 elements: every row piece of 8 elements is then one
 * 16-byte load (cp.async straight into shared memory), and index math is one 64-bit
 * multiply-add per row piece instead of per element. Same products in the same order
 * as the kernels above, but the scan's decay weights come from ex2.approx (launch_fwd), so
 * its results are not bit-identical to chunk_scan_tc's. */

/* The vectorised state kernels' B operand: the 4 rows-of-8 chunks a thread loaded (bv,
 * 16 bytes each: chunk tid + 256 it is row i >> 3, columns (i & 7) * 8..) scaled by their
 * step's weight w_s and rounded to T into Bs[s][n]. */
template <typename T, int NT = kTcThreads>
static __device__ __forceinline__ void store_weighted_rows(T (*Bs)[kPad], const uint4 (&bv)[TQ * 8 / NT],
                                                           const float *s_w, int tid)
{
#pragma unroll
    for (int it = 0; it < TQ * 8 / NT; it++) {
        const int i = tid + it * NT, st = i >> 3, j = (i & 7) * 8;
        const float w = s_w[st];
        T e[8];
        memcpy(e, &bv[it], 16);
        uint4 v;
        v.x = bk_mma16<T>::pack(ld(&e[0]) * w, ld(&e[1]) * w);
        v.y = bk_mma16<T>::pack(ld(&e[2]) * w, ld(&e[3]) * w);
        v.z = bk_mma16<T>::pack(ld(&e[4]) * w, ld(&e[5]) * w);
        v.w = bk_mma16<T>::pack(ld(&e[6]) * w, ld(&e[7]) * w);
        *(uint4 *)&Bs[st][j] = v;
    }
}

/* The 16-bit states entering each chunk live inside the f32 chunk-state buffer (the
 * workspace keeps its documented size): [D, N] is cut into slices of rd whole rows
 * (E = rows * N <= 1024 elements); the 16-bit state of chunk k, slice p sits in the f32
 * area of chunk k/2, slice p, half k%2 (first or second E * 2 bytes). state_pass_t writes
 * it there only after every thread of the slice's block has read f32 chunks 0..k, and the
 * area belongs to chunk k/2 <= k, so no value is overwritten before it is read. Returns
 * the start of row d (N elements) of the state entering chunk k. */
template <typename T>
__device__ __forceinline__ const T *tstate_row(const T *base, long long bh, long long k, int d, int D, int N,
                                               long long K, int rd)
{
    const long long DN = (long long)D * N;
    const int p = d / rd, rows = min(rd, D - p * rd);
    return base + 2 * (bh * K * DN + (k >> 1) * DN + (long long)p * rd * N) + (k & 1) * (long long)rows * N +
           (long long)(d - p * rd) * N;
}

/* chunk_state_tc with 16-byte loads: x by cp.async into Xs[s][d], B into registers, then
 * w_s B rounded to T into Bs[s][n]; the transposed operands come from ldmatrix.trans. */
template <typename T>
__global__ void __launch_bounds__(kTcThreads)
    chunk_state_v_kernel(const T *x, bk_view4 sx, const T *bm, bk_view4 sb, const T *dt, bk_view4 sdt, const T *a,
                         long long sa, float *out, float *dec, long long L, long long H, int D, int N, long long K,
                         long long total, ssd_kopts o)
{
    __shared__ float s_dt[TQ], s_cum[TQ], s_w[TQ];
    __shared__ int s_seg[TQ];
    __shared__ __align__(16) T Xs[TQ][kPad], Bs[TQ][kPad];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const int tn = (N + TQ - 1) / TQ, tiles = ((D + TQ - 1) / TQ) * tn;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const int tile = (int)(blk % tiles);
        const long long rest = blk / tiles, c = rest % K, bh = rest / K, b = bh / H, h = bh % H, l0 = c * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int d0 = (tile / tn) * TQ, n0 = (tile % tn) * TQ, q = (int)min((long long)TQ, L - l0);
        const T *xb = x + b * sx.s0 + l0 * sx.s1 + h * sx.s2 + d0;
        const T *bb = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2 + n0;
        uint4 bv[4];
#pragma unroll
        for (int it = 0; it < 4; it++) {
            const int i = tid + it * kTcThreads, s = i >> 3, j = (i & 7) * 8;
            if (s < q && d0 + j < D)
                bk_cp_async16(bk_smem_addr(&Xs[s][j]), xb + s * sx.s1 + j, 16);
            else
                zero16(&Xs[s][j]);
            bv[it] = (s < q && n0 + j < N) ? *(const uint4 *)(bb + s * sb.s1 + j) : make_uint4(0u, 0u, 0u, 0u);
        }
        chunk_prologue(dt, sdt, b, l0, h, q, ld(a + h * sa), s_dt, s_cum, s_seg, o);
        if (tid < TQ)
            s_w[tid] = tid >= q || s_seg[tid] != s_seg[q - 1] ? 0.f : expf(s_cum[q - 1] - s_cum[tid]) * s_dt[tid];
        if (tid == 0 && tile == 0) /* a reset inside the chunk: nothing carried through it */
            dec[bh * K + c] = s_seg[q - 1] == 0 ? s_cum[q - 1] : -INFINITY;
        __syncthreads();
        store_weighted_rows<T>(Bs, bv, s_w, tid);
        bk_cp_async_wait_all();
        __syncthreads();
        float acc[8][4] = {};
        const int rb = warp * 16;
#pragma unroll
        for (int kb = 0; kb < TQ; kb += 16) {
            uint32_t af[4];
            bk_ldsm_x4_trans(af, bk_smem_addr(&Xs[kb + (lane & 7) + ((lane >> 4) & 1) * 8][rb + ((lane >> 3) & 1) * 8]));
#pragma unroll
            for (int nt = 0; nt < 8; nt += 2) {
                uint32_t bf[4];
                bk_ldsm_x4_trans(bf, bk_smem_addr(&Bs[kb + (lane & 15)][(nt + (lane >> 4)) * 8]));
                bk_mma16<T>::mma(acc[nt], af, bf);
                bk_mma16<T>::mma(acc[nt + 1], af, bf + 2);
            }
        }
        float *o = out + (bh * K + c) * (long long)D * N;
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int d = d0 + rb + g + 8 * hf, n = n0 + nt * 8 + 2 * cq;
                if (d < D && n < N)
                    *(float2 *)(o + (long long)d * N + n) = make_float2(acc[nt][2 * hf], acc[nt][2 * hf + 1]);
            }
        __syncthreads();
    }
}

/* state_pass in place, writing the 16-bit entering states (layout at tstate_row): block
 * (bh, slice of rd rows), 256 threads of 4 consecutive f32 each (one float4 per chunk),
 * kPre chunks of loads in flight; one barrier per chunk (see tstate_row). */
const int kPre = 4;
template <typename T>
__global__ void __launch_bounds__(kPassThreads, 4)
    state_pass_t_kernel(float *st, const float *__restrict__ dec, int D, int N, long long K, int rd, int slices,
                        long long total)
{
    const int tid = threadIdx.x;
    const long long DN = (long long)D * N;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long bh = blk / slices;
        const int p = (int)(blk % slices), rows = min(rd, D - p * rd), E = rows * N, el = tid * 4;
        const bool act = el < E;
        float *base = st + bh * K * DN + (long long)p * rd * N;
        const float *src = base + el;
        T *dst = (T *)base + el;
        const float *dc = dec + bh * K;
        const float4 z4 = make_float4(0.f, 0.f, 0.f, 0.f);
        float4 v[kPre], acc = z4;
        float f[kPre];
#pragma unroll
        for (int j = 0; j < kPre; j++) {
            v[j] = act && j < K ? *(const float4 *)(src + j * DN) : z4;
            f[j] = j < K ? dc[j] : 0.f;
        }
        for (long long k0 = 0; k0 < K; k0 += kPre) {
#pragma unroll
            for (int j = 0; j < kPre; j++) {
                const long long k = k0 + j;
                if (k < K) { /* the same for the whole block */
                    const float fk = expf(f[j]);
                    const float4 nacc = make_float4(fk * acc.x + v[j].x, fk * acc.y + v[j].y, fk * acc.z + v[j].z,
                                                    fk * acc.w + v[j].w);
                    const long long kn = k + kPre;
                    v[j] = act && kn < K ? *(const float4 *)(src + kn * DN) : z4;
                    f[j] = kn < K ? dc[kn] : 0.f;
                    __syncthreads(); /* every thread has read f32 chunks 0..k */
                    if (act) {
                        uint2 o;
                        o.x = bk_mma16<T>::pack(acc.x, acc.y);
                        o.y = bk_mma16<T>::pack(acc.z, acc.w);
                        *(uint2 *)(dst + (k >> 1) * DN * 2 + (k & 1) * (long long)E) = o;
                    }
                    acc = nacc;
                }
            }
        }
    }
}

/* Where the fused passes keep their 16-bit states inside an f32 state buffer buf
 * [BH][K][D][N]: chunk k of (b, h) bh at (T *)buf + (2 bh K + k) D N (the first half of bh's
 * f32 area); the reverse pass's <dS, S> partials (f32, [K][tiles]) in the second half. */
template <typename T>
__device__ __forceinline__ T *tstate_at(const float *buf, long long bh, long long k, long long K, long long DN)
{
    return (T *)buf + (2 * bh * K + k) * DN;
}
__device__ __forceinline__ float *tdots_at(const float *buf, long long bh, long long K, long long DN)
{
    return (float *)buf + bh * K * DN + K * DN / 2;
}

/* chunk_state_v and state_pass in one kernel, either direction: a block per (b, h, 64 x 64
 * tile of [D, N]) walks the K chunks keeping the running state in registers (f32, the mma
 * accumulator layout), from init [B, H, D, N] (0 when NULL). At chunk k it writes that
 * state rounded to T (tstate_at), then adds the chunk's own state, S <- exp(dec_k) S + S_c;
 * after the last chunk the state goes to fin [B, H, D, N] when non-NULL.
 * MODE 0 (forward): chunks 0 .. K-1, u = x, v = B, w_s = exp(cum_last - cum_s) dt_s on the
 *   chunk's last segment: the states entering each chunk (init: initial_states, fin: the
 *   final ones).
 * MODE 1 (backward): chunks K-1 .. 0, u = dL/du (dy, times silu(z) with the gate: z rows
 *   by 16-byte loads, the product rounded once into the x tile), v = C, w_t = exp(cum_t) on
 *   segment 0: dS_k = dL/d(state leaving chunk k) (init: dfinal_states, fin:
 *   dinitial_states); with sdot (the forward pass's 16-bit entering states, same layout)
 *   each block also writes <dS_k, S_k> over its tile (f32 dS, S in T; lanes, then warps in a
 *   fixed order) to dots[k * tiles + tile] (tdots_at).
 * The chunk states never reach memory in f32. 8 warps, each 16 rows x 32 columns of the
 * tile. Per chunk two barriers: A (the chunk's weights and u tile in), then the weighted v
 * rows into Bs, B; the next chunk's u (cp.async into the other buffer) and v (registers)
 * are issued before this chunk's products. The chunks' weights and decays come in batches of
 * kPassBatch: at a batch's first chunk every warp computes one chunk of the next batch
 * (warp_prologue_scan, its inputs loaded a batch ahead), so the scan is on the walk's path
 * once per batch, not at every chunk (one warp scanning each chunk would hold every step's
 * barrier).
 * Not yet: a split for few blocks on long walks (MODE 0 has chunk_state_v + state_pass_t),
 * f32 (TF32); MODE 1's S_k loads a chunk ahead (each step waits for them at its <dS, S>
 * sums).
 * MODE 0: same products and sums in the same order as chunk_state_v + state_pass_t
 * (bit-identical entering states). */
const int kPassVThreads = 256; /* chunk_state_pass_v: 8 warps, 16 rows x 32 columns of the tile each */
const int kPassBatch = kPassVThreads / 32; /* chunks whose weights the warps compute at once, one each */
template <typename T, int MODE>
__global__ void __launch_bounds__(kPassVThreads)
    chunk_state_pass_v_kernel(const T *u, bk_view4 su, const T *v, bk_view4 sv, const T *dt, bk_view4 sdt, const T *a,
                              long long sa, float *tst, const T *init, bk_view4 si, T *fin, bk_view4 sf,
                              const float *sdot, long long L, long long H, int D, int N, long long K, long long total,
                              ssd_kopts o)
{
    /* the weights and decays of two batches of chunks; the u tile by chunk parity
       (cp.async a chunk ahead) */
    __shared__ __align__(16) float s_w[2][kPassBatch][TQ]; /* float2 writes */
    __shared__ float s_dec[2][kPassBatch], s_red[kPassVThreads / 32];
    __shared__ __align__(16) T Xs[2][TQ][kPad], Bs[TQ][kPad];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4, rb = (warp & 3) * 16;
    const int nb = (warp >> 2) * 4; /* the warp's first n-tile of 8 columns: 4 of them */
    const int tn = (N + TQ - 1) / TQ, tiles = ((D + TQ - 1) / TQ) * tn;
    const long long DN = (long long)D * N;
    const bool gate = MODE == 1 && o.z;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const int tile = (int)(blk % tiles);
        const long long bh = blk / tiles, b = bh / H, h = bh % H, hg = h / o.P;
        const int d0 = (tile / tn) * TQ, n0 = (tile % tn) * TQ;
        const float A = ld(a + h * sa);
        auto chunk_at = [&](long long j) { return MODE == 0 ? j : K - 1 - j; }; /* the walk's j-th chunk */
        auto rows_of = [&](long long k) { return (int)min((long long)TQ, L - k * TQ); };
        constexpr int IT = TQ * 8 / kPassVThreads; /* 16-byte pieces of a 64-row tile a thread */
        uint4 bv[IT], zv[IT];
        /* chunk k's u rows into Xs[buf] (cp.async, one group; z rows into zv) and v rows into bv */
        auto load = [&](long long k, int buf) {
            const long long l0 = k * TQ;
            const int q = rows_of(k);
            const T *ub = u + b * su.s0 + l0 * su.s1 + h * su.s2 + d0;
            const T *vb = v + b * sv.s0 + l0 * sv.s1 + hg * sv.s2 + n0;
            const T *zb = gate ? (const T *)o.z + b * o.sz.s0 + l0 * o.sz.s1 + h * o.sz.s2 + d0 : nullptr;
#pragma unroll
            for (int it = 0; it < IT; it++) {
                const int i = tid + it * kPassVThreads, st = i >> 3, j = (i & 7) * 8;
                if (st < q && d0 + j < D) {
                    bk_cp_async16(bk_smem_addr(&Xs[buf][st][j]), ub + st * su.s1 + j, 16);
                    if (gate)
                        zv[it] = *(const uint4 *)(zb + st * o.sz.s1 + j);
                } else {
                    zero16(&Xs[buf][st][j]);
                }
                bv[it] = (st < q && n0 + j < N) ? *(const uint4 *)(vb + st * sv.s1 + j) : make_uint4(0u, 0u, 0u, 0u);
            }
            bk_cp_async_commit();
        };
        /* the weights and decay of the walk's j-th chunk: s_w / s_dec [(j / kPassBatch) & 1]
           [j % kPassBatch]; warp w computes those of chunk j + kPassBatch when the walk is
           at a batch's first chunk j (every warp at once, off the other steps' path), from
           the raw inputs it loaded a batch earlier (pin) */
        warp_prologue_in<T> pin;
        auto prologue_load = [&](long long j) {
            if (j < K)
                pin = warp_prologue_load<T>(dt, sdt, b, chunk_at(j) * TQ, h, rows_of(chunk_at(j)), o, lane);
        };
        auto prologue = [&](long long j) {
            const int pb = (int)((j / kPassBatch) & 1), sl = (int)(j % kPassBatch);
            if (j < K)
                warp_prologue_scan<T, MODE>(pin, h, rows_of(chunk_at(j)), A, s_w[pb][sl], &s_dec[pb][sl], o, lane);
        };
        float state[4][4]; /* the running state (rows rb.., n-tiles nb..): init, else 0 */
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const int d = d0 + rb + g + 8 * (r >> 1), n = n0 + (nb + nt) * 8 + 2 * cq + (r & 1);
                state[nt][r] = init && d < D && n < N ? ld(init + b * si.s0 + h * si.s1 + d * si.s2 + n) : 0.f;
            }
        load(chunk_at(0), 0);
        prologue_load(warp);
        prologue(warp);
        prologue_load(kPassBatch + warp);
        for (long long j = 0; j < K; j++) {
            const long long k = chunk_at(j);
            const int buf = (int)(j & 1);
            bk_cp_async_wait_all();
            if (gate) { /* this thread's dy pieces times silu(z), rounded once */
                const int q = rows_of(k);
#pragma unroll
                for (int it = 0; it < IT; it++) {
                    const int i = tid + it * kPassVThreads, st = i >> 3, c0 = (i & 7) * 8;
                    T e[8], z[8];
                    memcpy(e, &Xs[buf][st][c0], 16);
                    memcpy(z, &zv[it], 16);
#pragma unroll
                    for (int m = 0; m < 8; m++)
                        e[m] = elem<T>::store(ld(&e[m]) * siluf_(ld(&z[m])));
                    if (st < q && d0 + c0 < D)
                        memcpy(&Xs[buf][st][c0], e, 16);
                }
            }
            /* A: chunk k's weights and u tile are in; every warp is done with Bs (chunk k - 1) */
            __syncthreads();
            if (MODE == 1 && sdot && tid == 0 && j > 0) /* the previous chunk's <dS, S> (s_red) */
                tdots_at(tst, bh, K, DN)[chunk_at(j - 1) * tiles + tile] =
                    ((s_red[0] + s_red[1]) + (s_red[2] + s_red[3])) + ((s_red[4] + s_red[5]) + (s_red[6] + s_red[7]));
            const int pb = (int)((j / kPassBatch) & 1), sl = (int)(j % kPassBatch);
            store_weighted_rows<T, kPassVThreads>(Bs, bv, s_w[pb][sl], tid);
            const float dec = s_dec[pb][sl];
            __syncthreads(); /* B: Bs written */
            if (j + 1 < K) /* the next chunk's loads fly under this chunk's products */
                load(chunk_at(j + 1), buf ^ 1);
            uint32_t sp[4][2]; /* sdot: S_k at this thread's accumulator positions */
            const T *srow = sdot ? tstate_at<T>(sdot, bh, k, K, DN) : nullptr;
            if (MODE == 1 && sdot) {
#pragma unroll
                for (int nt = 0; nt < 4; nt++)
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int d = d0 + rb + g + 8 * hf, n = n0 + (nb + nt) * 8 + 2 * cq;
                        sp[nt][hf] = d < D && n < N ? *(const uint32_t *)(srow + (long long)d * N + n) : 0u;
                    }
            }
            float acc[4][4] = {};
#pragma unroll
            for (int kb = 0; kb < TQ; kb += 16) {
                uint32_t af[4];
                bk_ldsm_x4_trans(af, bk_smem_addr(&Xs[buf][kb + (lane & 7) + ((lane >> 4) & 1) * 8]
                                                        [rb + ((lane >> 3) & 1) * 8]));
#pragma unroll
                for (int nt = 0; nt < 4; nt += 2) {
                    uint32_t bf[4];
                    bk_ldsm_x4_trans(bf, bk_smem_addr(&Bs[kb + (lane & 15)][(nb + nt + (lane >> 4)) * 8]));
                    bk_mma16<T>::mma(acc[nt], af, bf);
                    bk_mma16<T>::mma(acc[nt + 1], af, bf + 2);
                }
            }
            if (sl == 0) { /* the next batch's weights (its buffer's last reader was step j - 1) */
                prologue(j + kPassBatch + warp);
                prologue_load(j + 2 * kPassBatch + warp);
            }
            T *out = tstate_at<T>(tst, bh, k, K, DN);
            const float fk = expf(dec);
            float dot = 0.f;
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int d = d0 + rb + g + 8 * hf, n = n0 + (nb + nt) * 8 + 2 * cq;
                    if (d < D && n < N)
                        *(uint32_t *)(out + (long long)d * N + n) =
                            bk_mma16<T>::pack(state[nt][2 * hf], state[nt][2 * hf + 1]);
                    if (MODE == 1 && sdot) {
                        T e[2];
                        memcpy(e, &sp[nt][hf], 4);
                        dot += state[nt][2 * hf] * ld(&e[0]) + state[nt][2 * hf + 1] * ld(&e[1]);
                    }
                    state[nt][2 * hf] = fk * state[nt][2 * hf] + acc[nt][2 * hf];
                    state[nt][2 * hf + 1] = fk * state[nt][2 * hf + 1] + acc[nt][2 * hf + 1];
                }
            if (MODE == 1 && sdot) { /* s_red is read after barrier A of the next chunk */
#pragma unroll
                for (int m = 16; m > 0; m /= 2)
                    dot += __shfl_xor_sync(0xffffffffu, dot, m);
                if (lane == 0)
                    s_red[warp] = dot;
            }
        }
        __syncthreads(); /* the last chunk's s_red; the buffers are refilled by the next block */
        if (MODE == 1 && sdot && tid == 0)
            tdots_at(tst, bh, K, DN)[chunk_at(K - 1) * tiles + tile] = ((s_red[0] + s_red[1]) + (s_red[2] + s_red[3])) + ((s_red[4] + s_red[5]) + (s_red[6] + s_red[7]));
        if (fin) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int d = d0 + rb + g + 8 * (r >> 1), n = n0 + (nb + nt) * 8 + 2 * cq + (r & 1);
                    if (d < D && n < N)
                        fin[b * sf.s0 + h * sf.s1 + d * sf.s2 + n] = elem<T>::store(state[nt][r]);
                }
        }
    }
}

/* chunk_scan_tc with 16-byte cp.async loads of the whole chunk at once: C, B and the
 * 16-bit entering state for all of N (rows padded to NV64 x 64, zero filled) and the x
 * tile, then the products of chunk_scan_tc: warp w owns the rows t = 16 w .. 16 w + 15;
 * C B^T and C S^T over N (fragments by ldmatrix, non-transposed: C, B and S rows are
 * k-contiguous), exp(cum_t) on the C S^T part, then (C B^T o L) x over s <= t (x fragments
 * by ldmatrix.trans) with L_ts = exp(cum_t - cum_s) dt_s (ex2.approx; seq_idx masks only
 * when given). NV64 = ceil(N / 64), a template argument, so the loads and the k loops have
 * fixed trip counts. Dynamic shared memory: scan_v_smem(N). */
size_t scan_v_smem(int N)
{
    const int n64 = (N + 63) / 64 * 64;
    return (size_t)(3 * TQ * (n64 + 8) + TQ * kPad) * 2;
}

/* The 16-bit state rows of chunk k of (b, h) bh from row d (tstate_row's layout) as base
 * + d N when one slice holds every row (rd >= D: the fused pass's tstate_at), else by
 * tstate_row. */
template <typename T> struct tstate_rows_of {
    const T *base, *tst;
    long long bh, k, K;
    int D, N, rd;
    __device__ __forceinline__ const T *row(int d) const
    {
        return rd >= D ? base + (long long)d * N : tstate_row(tst, bh, k, d, D, N, K, rd);
    }
};

template <typename T, int MODE, int NV64>
__global__ void __launch_bounds__(kTcThreads)
    chunk_scan_v_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                        bk_view4 sb, const T *cm, bk_view4 sc, T *y, bk_view4 sy, const T *tst, long long L,
                        long long H, int D, int N, long long K, int rd, long long total, ssd_kopts o, const T *dy,
                        bk_view4 sdy)
{
    constexpr float kLog2e = 1.4426950408889634f;
    constexpr int n64 = 64 * NV64, np = n64 + 8, NV = n64 / 8; /* padded pitch, 16-byte chunks a row */
    extern __shared__ __align__(16) unsigned char scan_smem[];
    __shared__ __align__(16) float s_dt[TQ], s_cum[TQ]; /* float2 reads */
    __shared__ int s_seg[TQ];
    T *Cs = (T *)scan_smem, *Bs = Cs + TQ * np, *Ss = Bs + TQ * np, *Xs = Ss + TQ * np; /* [t][n] [s][n] [d][n] [s][d] */
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const int tiles = (D + TQ - 1) / TQ;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        long long c, bh, b, h, hg; /* hg: the group whose B and C head h reads */
        int tile;
        if (total <= INT_MAX) { /* 32-bit divisions (the usual case) */
            const unsigned u = (unsigned)blk, rest = u / (unsigned)tiles, ubh = rest / (unsigned)K,
                           uh = ubh % (unsigned)H;
            tile = (int)(u % (unsigned)tiles), c = rest % (unsigned)K, bh = ubh, b = ubh / (unsigned)H, h = uh,
            hg = uh / (unsigned)o.P;
        } else {
            const long long rest = blk / tiles;
            tile = (int)(blk % tiles), c = rest % K, bh = rest / K, b = bh / H, h = bh % H, hg = h / o.P;
        }
        const long long l0 = c * TQ;
        const int d0 = tile * TQ, q = (int)min((long long)TQ, L - l0);
        const T *cb0 = cm + b * sc.s0 + l0 * sc.s1 + hg * sc.s2;
        const T *bb0 = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2;
        const T *xb = x + b * sx.s0 + l0 * sx.s1 + h * sx.s2 + d0;
        const tstate_rows_of<T> srows = {tstate_at<T>((const float *)tst, bh, c, K, (long long)D * N), tst, bh, c, K,
                                         D, N, rd};
        /* every 16-byte chunk by cp.async, zero-filled (0 source bytes) outside the problem */
#pragma unroll 4
        for (int i = tid; i < TQ * NV; i += kTcThreads) {
            const int r = i / NV, j = (i % NV) * 8, d = d0 + r;
            const bool okt = r < q && j < N, okd = d < D && j < N;
            bk_cp_async16(bk_smem_addr(Cs + r * np + j), okt ? cb0 + r * sc.s1 + j : cm, okt ? 16 : 0);
            bk_cp_async16(bk_smem_addr(Bs + r * np + j), okt ? bb0 + r * sb.s1 + j : bm, okt ? 16 : 0);
            bk_cp_async16(bk_smem_addr(Ss + r * np + j), okd ? srows.row(d) + j : tst, okd ? 16 : 0);
        }
#pragma unroll
        for (int i = tid; i < TQ * 8; i += kTcThreads) {
            const int s = i >> 3, j = (i & 7) * 8;
            const bool ok = s < q && d0 + j < D;
            bk_cp_async16(bk_smem_addr(Xs + s * kPad + j), ok ? xb + s * sx.s1 + j : x, ok ? 16 : 0);
        }
        chunk_prologue(dt, sdt, b, l0, h, q, ld(a + h * sa), s_dt, s_cum, s_seg, o);
        bk_cp_async_wait_all();
        __syncthreads();
        const int r0 = warp * 16;
        /* ldmatrix row addresses: A (C rows r0 + (lane & 15), k + 8 (lane >> 4)); B / S
           (rows 8 nt + (lane & 7) + 8 ((lane >> 4) & 1), k + 8 ((lane >> 3) & 1)) */
        const uint32_t a_addr = bk_smem_addr(Cs + (r0 + (lane & 15)) * np + (lane >> 4) * 8);
        const int brow = (lane & 7) + ((lane >> 4) & 1) * 8, bcol = ((lane >> 3) & 1) * 8;
        const uint32_t b_addr = bk_smem_addr(Bs + brow * np + bcol), s_addr = bk_smem_addr(Ss + brow * np + bcol);
        float cb[8][4] = {}, yy[8][4] = {};
#pragma unroll
        for (int kb = 0; kb < n64; kb += 16) {
            uint32_t af[4];
            bk_ldsm_x4(af, a_addr + kb * 2);
#pragma unroll
            for (int nt = 0; nt < 8; nt += 2) {
                uint32_t bf[4], sf[4];
                bk_ldsm_x4(bf, b_addr + (nt * 8 * np + kb) * 2);
                bk_ldsm_x4(sf, s_addr + (nt * 8 * np + kb) * 2);
                bk_mma16<T>::mma(cb[nt], af, bf);
                bk_mma16<T>::mma(cb[nt + 1], af, bf + 2);
                bk_mma16<T>::mma(yy[nt], af, sf);
                bk_mma16<T>::mma(yy[nt + 1], af, sf + 2);
            }
        }
        const int t0 = r0 + g, t1 = t0 + 8;
        const float ct0 = s_cum[t0], ct1 = s_cum[t1];
        const int gt0 = s_seg[t0], gt1 = s_seg[t1];
        const float e0 = t0 < q && gt0 == 0 ? bk_ex2(ct0 * kLog2e) : 0.f;
        const float e1 = t1 < q && gt1 == 0 ? bk_ex2(ct1 * kLog2e) : 0.f;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            yy[nt][0] *= e0;
            yy[nt][1] *= e0;
            yy[nt][2] *= e1;
            yy[nt][3] *= e1;
        }
        const bool seq = o.seq != nullptr;
#pragma unroll
        for (int kb = 0; kb < 4; kb++) {
            if (kb > warp)
                break; /* s > t for every row of this warp (warp-uniform) */
            uint32_t af[4];
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                /* L_ts for the pair s = s0, s0 + 1 and rows t0, t1 (rows t >= q are not stored) */
                const int s0 = (2 * kb + hf) * 8 + 2 * cq;
                const float2 cs = *(const float2 *)&s_cum[s0], ds = *(const float2 *)&s_dt[s0];
                float m[4];
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int t = r < 2 ? t0 : t1, s = s0 + (r & 1);
                    const float ct = r < 2 ? ct0 : ct1, csv = (r & 1) ? cs.y : cs.x, dsv = (r & 1) ? ds.y : ds.x;
                    const bool vis = s <= t && (!seq || s_seg[s] == (r < 2 ? gt0 : gt1));
                    m[r] = vis ? cb[2 * kb + hf][r] * bk_ex2((ct - csv) * kLog2e) * dsv : 0.f;
                }
                af[2 * hf] = bk_mma16<T>::pack(m[0], m[1]);
                af[2 * hf + 1] = bk_mma16<T>::pack(m[2], m[3]);
            }
#pragma unroll
            for (int nt = 0; nt < 8; nt += 2) {
                uint32_t bf[4];
                bk_ldsm_x4_trans(bf, bk_smem_addr(Xs + (kb * 16 + (lane & 15)) * kPad + (nt + (lane >> 4)) * 8));
                bk_mma16<T>::mma(yy[nt], af, bf);
                bk_mma16<T>::mma(yy[nt + 1], af, bf + 2);
            }
        }
        T *yb = y + b * sy.s0 + l0 * sy.s1 + h * sy.s2;
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int t = hf ? t1 : t0, d = d0 + nt * 8 + 2 * cq;
                if (t >= q || d >= D)
                    continue;
                float v[2];
#pragma unroll
                for (int e = 0; e < 2; e++)
                    v[e] = MODE == 0 ? finish_y(o, yy[nt][2 * hf + e], x, sx, b, l0 + t, h, d + e)
                                     : gate_dz(o, yy[nt][2 * hf + e] + skip_of<T>(o, h, d + e) *
                                                                           ld(x + off4(sx, b, l0 + t, h, d + e)),
                                               dy, sdy, b, l0 + t, h, d + e);
                *(uint32_t *)(yb + t * sy.s1 + d) = bk_mma16<T>::pack(v[0], v[1]);
            }
        __syncthreads();
    }
}

/* ------------------------------------------------------ fused forward -- */

/* The whole 16-bit forward of one (b, h) in one block: a walk over the K chunks with the
 * running state S [D, N] in registers (f32), so no state reaches memory. Per chunk k (rows
 * t, s of the chunk):
 *   Ms_k = (C B^T o L) rounded to T, L_ts = exp(cum_t - cum_s) dt'_s for s <= t in one segment;
 *   Ss_k = S rounded to T (the state entering the chunk);
 *   y    = exp(cum_t) [seg_t = 0] C Ss_k^T + Ms_k x, then skip, gate, one rounding;
 *   S   <- exp(dec) S + (w o x)^T B, w_s = exp(cum_last - cum_s) dt'_s on the last segment.
 * The products and roundings of chunk_state_pass_v + chunk_scan_v, but the state update
 * weights x (rounded to T after the weight) where chunk_state_pass_v weights B.
 * Pipeline, one barrier a chunk: iteration k computes y and the state update of chunk k,
 * then Ss_{k+1} and Ms_{k+1} (double-buffered), while chunk k + 2's C, B, x (, z) tiles load
 * by cp.async (three buffers) and the prologue warp computes chunk k + 2's weights (three
 * buffers; its dt loads a chunk earlier). The barrier opening iteration k + 1 publishes
 * them. 8 warps; warp w runs on scheduler j = w % 4 and owns chunk rows t and state rows d
 * 16 qa .. 16 qa + 15, Ms columns s and y columns d 32 hf .. 32 hf + 31, state columns n
 * from hf n64 / 2 (n64 / 2 of them), hf = w / 4, qa = j for hf 0 and 3 - j for hf 1 (the
 * rows near the diagonal cost more: each scheduler gets a heavy and a light warp; warp 7,
 * the lightest, is the prologue warp). Ms tiles wholly above the diagonal are neither
 * computed nor read. D <= 64, N <= n64 = 64 NV (NV 1 or 2), D and N multiples of 8, 16-byte
 * aligned rows; dynamic shared memory: fwd_fused_smem. */
const int kFusedThreads = 256, kFusedPrologueWarp = 7;

size_t fwd_fused_smem(int NV, bool gate)
{
    const int np = 64 * NV + 8; /* C, B and S pitch */
    return (size_t)(3 * (2 * TQ * np + (gate ? 2 : 1) * TQ * kPad) + 2 * TQ * np + 2 * TQ * kPad) * 2;
}

/* acc += A B^T on a warp's 16 x 32 tile (the first `pairs` pairs of n-tiles of 8: 1 or 2)
 * over k < KN, A and B 16-bit and k-contiguous in shared memory (B's pitch NP elements),
 * by ldmatrix: a_addr is lane's A row address (rows + (lane & 15), k + 8 (lane >> 4)),
 * b_addr its B row address (rows + (lane & 7) + 8 ((lane >> 4) & 1), k + 8 ((lane >> 3) & 1)). */
template <typename T, int KN, int NP>
__device__ __forceinline__ void warp_abt_16x32(float (&acc)[4][4], uint32_t a_addr, uint32_t b_addr, int pairs)
{
#pragma unroll
    for (int kb = 0; kb < KN; kb += 16) {
        uint32_t af[4];
        bk_ldsm_x4(af, a_addr + kb * 2);
#pragma unroll
        for (int nt = 0; nt < 4; nt += 2) {
            if (nt / 2 >= pairs)
                break;
            uint32_t bf[4];
            bk_ldsm_x4(bf, b_addr + (nt * 8 * NP + kb) * 2);
            bk_mma16<T>::mma(acc[nt], af, bf);
            bk_mma16<T>::mma(acc[nt + 1], af, bf + 2);
        }
    }
}

/* A 16-bit operand pair (two elements of one row) scaled by (w.x, w.y), rounded to T. */
template <typename T> __device__ __forceinline__ uint32_t scale_pair(uint32_t v, float2 w)
{
    T e[2];
    memcpy(e, &v, 4);
    return bk_mma16<T>::pack(ld(&e[0]) * w.x, ld(&e[1]) * w.y);
}

template <typename T, int NV>
__global__ void __launch_bounds__(kFusedThreads, 1)
    ssd_fwd_fused_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                         bk_view4 sb, const T *cm, bk_view4 sc, T *y, bk_view4 sy, const T *init, bk_view4 si,
                         T *fin, bk_view4 sf, long long L, long long H, int D, int N, long long K, long long BH,
                         ssd_kopts o)
{
    constexpr float kLog2e = 1.4426950408889634f;
    constexpr int n64 = 64 * NV, np = n64 + 8, NVC = n64 / 8; /* pitch, 16-byte pieces of a C / B row */
    constexpr int SNT = 4 * NV;                                 /* the warp's state n-tiles of 8 columns */
    extern __shared__ __align__(16) unsigned char fused_smem[];
    /* float2 / int2 accesses: 8-byte aligned rows */
    __shared__ __align__(16) float s_cum[3][TQ], s_dt[3][TQ], s_w[3][TQ];
    __shared__ __align__(16) int s_seg[3][TQ];
    __shared__ float s_dec[3];
    const bool gate = o.z != nullptr, seq = o.seq != nullptr, skip = o.skip_kind != BK_SSD_SKIP_NONE;
    const int buf_elems = 2 * TQ * np + (gate ? 2 : 1) * TQ * kPad; /* C, B, x (, z) of one chunk */
    T *const Ss0 = (T *)fused_smem + 3 * buf_elems, *const Ms0 = Ss0 + 2 * TQ * np; /* [2][TQ][np], [2][TQ][kPad] */
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const int hf = warp >> 2, qa = hf == 0 ? (warp & 3) : 3 - (warp & 3), r0 = 16 * qa, t0 = r0 + g, t1 = t0 + 8;
    const int c0 = 32 * hf, n0w = hf * (n64 / 2); /* first Ms / y column, first state column */
    /* ldmatrix lane offsets: A rows (lane & 15), k + 8 (lane >> 4); B rows brow, k + bcol */
    const int brow = (lane & 7) + ((lane >> 4) & 1) * 8, bcol = ((lane >> 3) & 1) * 8;
    for (long long bh = blockIdx.x; bh < BH; bh += gridDim.x) {
        const long long b = bh / H, h = bh % H, hg = h / o.P;
        const float A = ld(a + h * sa);
        auto rows_of = [&](long long k) { return (int)min((long long)TQ, L - k * TQ); };
        auto tiles_of = [&](long long k) { return (T *)fused_smem + (int)(k % 3) * buf_elems; }; /* C; B, x, z */
        /* chunk k's C, B, x (, z) rows into its buffer (cp.async, one group; zeros outside) */
        auto load = [&](long long k) {
            const long long l0 = k * TQ;
            const int q = rows_of(k);
            T *Cb = tiles_of(k), *Bb = Cb + TQ * np, *Xb = Bb + TQ * np, *Zb = Xb + TQ * kPad;
            const T *cg = cm + b * sc.s0 + l0 * sc.s1 + hg * sc.s2, *bg = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2;
#pragma unroll
            for (int it = 0; it < TQ * NVC / kFusedThreads; it++) {
                const int i = tid + it * kFusedThreads, r = i / NVC, j = (i % NVC) * 8;
                const bool ok = r < q && j < N;
                bk_cp_async16(bk_smem_addr(Cb + r * np + j), ok ? cg + r * sc.s1 + j : cm, ok ? 16 : 0);
                bk_cp_async16(bk_smem_addr(Bb + r * np + j), ok ? bg + r * sb.s1 + j : bm, ok ? 16 : 0);
            }
            const T *xg = x + b * sx.s0 + l0 * sx.s1 + h * sx.s2;
            const T *zg = gate ? (const T *)o.z + b * o.sz.s0 + l0 * o.sz.s1 + h * o.sz.s2 : nullptr;
#pragma unroll
            for (int it = 0; it < TQ * 8 / kFusedThreads; it++) {
                const int i = tid + it * kFusedThreads, r = i >> 3, j = (i & 7) * 8;
                const bool ok = r < q && j < D;
                bk_cp_async16(bk_smem_addr(Xb + r * kPad + j), ok ? xg + r * sx.s1 + j : x, ok ? 16 : 0);
                if (gate)
                    bk_cp_async16(bk_smem_addr(Zb + r * kPad + j), ok ? zg + r * o.sz.s1 + j : (const T *)o.z,
                                  ok ? 16 : 0);
            }
            bk_cp_async_commit();
        };
        /* the prologue warp: the raw inputs of the next chunk whose weights it computes */
        warp_prologue_in<T> pin;
        auto prologue_load = [&](long long k) { pin = warp_prologue_load<T>(dt, sdt, b, k * TQ, h, rows_of(k), o, lane); };
        auto prologue = [&](long long k) {
            const int pb = (int)(k % 3);
            warp_prologue_scan<T, 0>(pin, h, rows_of(k), A, s_w[pb], &s_dec[pb], o, lane, s_cum[pb], s_dt[pb],
                                     s_seg[pb]);
        };
        /* Ms_k: rows r0.., columns c0..: C B^T, masked and weighted (pairs of n-tiles below the
           diagonal only: s <= t needs c0 + 8 nt <= r0 + 15) */
        auto scores = [&](long long k) {
            if (c0 > r0 + 15)
                return;
            const int pb = (int)(k % 3);
            const T *Cb = tiles_of(k), *Bb = Cb + TQ * np;
            T *Ms = Ms0 + (int)(k & 1) * TQ * kPad;
            float mc[4][4] = {};
            warp_abt_16x32<T, n64, np>(mc, bk_smem_addr(Cb + (r0 + (lane & 15)) * np + (lane >> 4) * 8),
                                       bk_smem_addr(Bb + (c0 + brow) * np + bcol), c0 + 16 > r0 + 15 ? 1 : 2);
            const float ct0 = s_cum[pb][t0], ct1 = s_cum[pb][t1];
            const int gt0 = s_seg[pb][t0], gt1 = s_seg[pb][t1];
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                const int s0 = c0 + nt * 8 + 2 * cq;
                const float2 cs = *(const float2 *)&s_cum[pb][s0], ds = *(const float2 *)&s_dt[pb][s0];
                float m[4];
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int t = r < 2 ? t0 : t1, s = s0 + (r & 1);
                    const float ct = r < 2 ? ct0 : ct1, csv = (r & 1) ? cs.y : cs.x, dsv = (r & 1) ? ds.y : ds.x;
                    const bool vis = s <= t && (!seq || s_seg[pb][s] == (r < 2 ? gt0 : gt1));
                    m[r] = vis ? mc[nt][r] * bk_ex2((ct - csv) * kLog2e) * dsv : 0.f;
                }
                *(uint32_t *)(Ms + t0 * kPad + s0) = bk_mma16<T>::pack(m[0], m[1]);
                *(uint32_t *)(Ms + t1 * kPad + s0) = bk_mma16<T>::pack(m[2], m[3]);
            }
        };
        float st[SNT][4]; /* the running state: rows r0 + g (+ 8), columns n0w + 8 nt + 2 cq (+ 1) */
        /* Ss_k: this warp's part of the state, rounded to T */
        auto publish_state = [&](long long k) {
            T *Ss = Ss0 + (int)(k & 1) * TQ * np;
#pragma unroll
            for (int nt = 0; nt < SNT; nt++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++)
                    *(uint32_t *)(Ss + (r0 + g + 8 * hh) * np + n0w + nt * 8 + 2 * cq) =
                        bk_mma16<T>::pack(st[nt][2 * hh], st[nt][2 * hh + 1]);
        };
#pragma unroll
        for (int nt = 0; nt < SNT; nt++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const int d = r0 + g + 8 * (r >> 1), n = n0w + nt * 8 + 2 * cq + (r & 1);
                st[nt][r] = init && d < D && n < N ? ld(init + b * si.s0 + h * si.s1 + d * si.s2 + n) : 0.f;
            }
        float skv[4][2]; /* the skip of the thread's y columns */
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int d = c0 + nt * 8 + 2 * cq + e;
                skv[nt][e] = skip && d < D ? skip_of<T>(o, h, d) : 0.f;
            }
        /* chunks 0 and 1 loading, their weights, Ms_0 and Ss_0 */
        load(0);
        if (K > 1)
            load(1);
        if (warp == kFusedPrologueWarp) {
            prologue_load(0);
            prologue(0);
            if (K > 1) {
                prologue_load(1);
                prologue(1);
                if (K > 2)
                    prologue_load(2);
            }
        }
        if (K > 1)
            bk_cp_async_wait_group<1>();
        else
            bk_cp_async_wait_all();
        __syncthreads();
        scores(0);
        publish_state(0);
        for (long long k = 0; k < K; k++) {
            const int pb = (int)(k % 3), q = rows_of(k);
            const T *Cb = tiles_of(k), *Bb = Cb + TQ * np, *Xb = Bb + TQ * np, *Zb = Xb + TQ * kPad;
            const T *Ss = Ss0 + (int)(k & 1) * TQ * np, *Ms = Ms0 + (int)(k & 1) * TQ * kPad;
            bk_cp_async_wait_all(); /* chunk k + 1's tiles (the only group in flight) */
            /* publishes Ss_k, Ms_k, chunk k + 1's tiles and weights; the buffers of chunk
               k - 1 are free */
            __syncthreads();
            if (k + 2 < K)
                load(k + 2);
            /* y rows r0.., columns c0..: exp(cum_t) C Ss_k^T, then + Ms_k x over s <= t */
            float yy[4][4] = {};
            warp_abt_16x32<T, n64, np>(yy, bk_smem_addr(Cb + (r0 + (lane & 15)) * np + (lane >> 4) * 8),
                                       bk_smem_addr(Ss + (c0 + brow) * np + bcol), 2);
            const float e0 = t0 < q && s_seg[pb][t0] == 0 ? bk_ex2(s_cum[pb][t0] * kLog2e) : 0.f;
            const float e1 = t1 < q && s_seg[pb][t1] == 0 ? bk_ex2(s_cum[pb][t1] * kLog2e) : 0.f;
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                yy[nt][0] *= e0;
                yy[nt][1] *= e0;
                yy[nt][2] *= e1;
                yy[nt][3] *= e1;
            }
#pragma unroll
            for (int kb = 0; kb < 4; kb++) {
                if (kb > qa)
                    break; /* s > t for every row of this warp (warp-uniform) */
                uint32_t af[4];
                bk_ldsm_x4(af, bk_smem_addr(Ms + (r0 + (lane & 15)) * kPad + kb * 16 + (lane >> 4) * 8));
#pragma unroll
                for (int nt = 0; nt < 4; nt += 2) {
                    uint32_t bf[4];
                    bk_ldsm_x4_trans(bf, bk_smem_addr(Xb + (kb * 16 + (lane & 15)) * kPad + c0 + (nt + (lane >> 4)) * 8));
                    bk_mma16<T>::mma(yy[nt], af, bf);
                    bk_mma16<T>::mma(yy[nt + 1], af, bf + 2);
                }
            }
            T *yb = y + b * sy.s0 + k * TQ * sy.s1 + h * sy.s2;
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int t = hh ? t1 : t0, d = c0 + nt * 8 + 2 * cq;
                    if (t >= q || d >= D)
                        continue;
                    float v0 = yy[nt][2 * hh], v1 = yy[nt][2 * hh + 1];
                    if (skip) {
                        T e[2];
                        memcpy(e, Xb + t * kPad + d, 4);
                        v0 += skv[nt][0] * ld(&e[0]);
                        v1 += skv[nt][1] * ld(&e[1]);
                    }
                    if (gate) {
                        T e[2];
                        memcpy(e, Zb + t * kPad + d, 4);
                        v0 *= siluf_(ld(&e[0]));
                        v1 *= siluf_(ld(&e[1]));
                    }
                    *(uint32_t *)(yb + t * sy.s1 + d) = bk_mma16<T>::pack(v0, v1);
                }
            /* S <- exp(dec) S + (w o x)^T B: A = x^T rows r0.. (ldmatrix.trans) times w_s */
            const float fk = expf(s_dec[pb]);
#pragma unroll
            for (int nt = 0; nt < SNT; nt++)
#pragma unroll
                for (int r = 0; r < 4; r++)
                    st[nt][r] *= fk;
#pragma unroll
            for (int kb = 0; kb < TQ; kb += 16) {
                uint32_t af[4];
                bk_ldsm_x4_trans(af, bk_smem_addr(Xb + (kb + (lane & 7) + ((lane >> 4) & 1) * 8) * kPad + r0 +
                                                  ((lane >> 3) & 1) * 8));
                const float2 wl = *(const float2 *)&s_w[pb][kb + 2 * cq], wh = *(const float2 *)&s_w[pb][kb + 8 + 2 * cq];
                af[0] = scale_pair<T>(af[0], wl);
                af[1] = scale_pair<T>(af[1], wl);
                af[2] = scale_pair<T>(af[2], wh);
                af[3] = scale_pair<T>(af[3], wh);
#pragma unroll
                for (int nt = 0; nt < SNT; nt += 2) {
                    uint32_t bf[4];
                    bk_ldsm_x4_trans(bf, bk_smem_addr(Bb + (kb + (lane & 15)) * np + n0w + (nt + (lane >> 4)) * 8));
                    bk_mma16<T>::mma(st[nt], af, bf);
                    bk_mma16<T>::mma(st[nt + 1], af, bf + 2);
                }
            }
            if (k + 1 < K) { /* the next chunk's operands, published by the next barrier */
                publish_state(k + 1);
                scores(k + 1);
                if (warp == kFusedPrologueWarp && k + 2 < K) {
                    prologue(k + 2);
                    if (k + 3 < K)
                        prologue_load(k + 3);
                }
            }
        }
        __syncthreads(); /* the last chunks' readers are done before the next (b, h) loads */
        if (fin) {
#pragma unroll
            for (int nt = 0; nt < SNT; nt++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int d = r0 + g + 8 * (r >> 1), n = n0w + nt * 8 + 2 * cq + (r & 1);
                    if (d < D && n < N)
                        fin[b * sf.s0 + h * sf.s1 + d * sf.s2 + n] = elem<T>::store(st[nt][r]);
                }
        }
    }
}

/* ------------------------------------------------ fused forward, TF32 -- */

/* ssd_fwd_fused_tf32_kernel: the TF32 plan's forward (f32 data) as ssd_fwd_fused_kernel
 * walks it: one block per (b, h), the state in f32 registers, no workspace. f32 tiles
 * leave no room for a shared copy of the state, so each warp keeps its part of the state
 * and y comes out transposed. Warp w = (rq = w % 4, nh = w / 4) holds state rows d = 16 rq..
 * and the nh-th half of the 64 NV state columns. Per chunk:
 *   1. its half of y^T = S C^T (the state accumulators are the A operand, rounded in place
 *      by tf32_half_ulp) for every t; the other half's t columns go to its partner w ^ 4
 *      through shared memory (xch);
 *   2. M = (C B^T) o exp(cum_t - cum_s) dt_s (s <= t, same segment) for t rows 16 rq.., the
 *      16 x 16 blocks of s with parity nh, into shared memory;
 *   3. S <- exp(dec) S + (w o x)^T B on its columns;
 *   (block barrier) 4. its t half of y^T: its part plus the partner's, times exp(cum_t) on
 *      segment 0, plus x^T M^T over s <= t, skip, gate (z loaded at the chunk's start), y
 *      stored.
 * Loads: every thread's cp.async pieces of the next chunk's C, B, x while this one runs
 * (two chunk buffers), C and B then rounded to tf32 in place by the thread that loaded
 * them (fragments read them as they are; x stays exact for the skip); warp 4 (no M
 * blocks) computes the next chunk's weights (warp_prologue_scan) and exp(cum_t). Two
 * block barriers per chunk. D <= 64, N <= 64 NV (NV 1 or 2), D and N multiples of 8,
 * vec_view rows; dynamic shared memory fwd_fused_tf32_smem: two chunks of C, B (NV tiles
 * of 64 columns each) and x, M, xch. */
const int kXchPitch = 40; /* xch rows of 32 columns: 8-byte stores and loads conflict-free */

size_t fwd_fused_tf32_smem(int NV)
{
    return (size_t)(2 * (2 * NV + 1) + 1) * TQ * kPad * sizeof(float) +
           (size_t)(kFusedThreads / 32) * 16 * kXchPitch * sizeof(float);
}

/* frag_a_t of f32 X[s][m] with each element times its step's weight w[s] (the state
 * update's (w o x)^T), rounded to tf32 after the product. */
__device__ __forceinline__ void frag_a_t_w(frag_t<float> *af, const float (*X)[kPad], int rb, int kb, const float *w)
{
    const int lane = threadIdx.x % 32, m = rb + lane / 4, k = kb + 2 * (lane % 4);
    const float2 wl = *(const float2 *)&w[k], wh = *(const float2 *)&w[k + 8];
    af[0] = bk_mma16<float>::pack(X[k][m] * wl.x, X[k + 1][m] * wl.y);
    af[1] = bk_mma16<float>::pack(X[k][m + 8] * wl.x, X[k + 1][m + 8] * wl.y);
    af[2] = bk_mma16<float>::pack(X[k + 8][m] * wh.x, X[k + 9][m] * wh.y);
    af[3] = bk_mma16<float>::pack(X[k + 8][m + 8] * wh.x, X[k + 9][m + 8] * wh.y);
}

/* f32 accumulators as a tf32 A operand without a rounded copy: the tensor cores ignore
 * the low 13 bits of a tf32 operand, so adding half of that ulp to the bits (dir 1)
 * before the products gives cvt.rna's rounding (to nearest, ties away), and subtracting
 * it (dir -1) after them restores the exact f32 values. */
__device__ __forceinline__ void tf32_half_ulp(float (&c)[4], int dir)
{
#pragma unroll
    for (int r = 0; r < 4; r++)
        c[r] = __uint_as_float(__float_as_uint(c[r]) + (uint32_t)dir * 0x1000u);
}
/* x rounded to tf32 (cvt.rna), as an f32; four of them in place (16-byte aligned p). */
__device__ __forceinline__ float tf32_rounded(float x)
{
    return __uint_as_float(bk_tf32(x));
}
__device__ __forceinline__ void tf32_round_piece(float *p)
{
    float4 v = *(float4 *)p;
    v = make_float4(tf32_rounded(v.x), tf32_rounded(v.y), tf32_rounded(v.z), tf32_rounded(v.w));
    *(float4 *)p = v;
}
/* bk_pack_a's layout from the registers as they are (no rounding). */
__device__ __forceinline__ void pack_a_raw(frag_t<float> (&a)[4], const float (&c0)[4], const float (&c1)[4])
{
    a[0] = pair2<float, true>(c0[0], c0[1]);
    a[1] = pair2<float, true>(c0[2], c0[3]);
    a[2] = pair2<float, true>(c1[0], c1[1]);
    a[3] = pair2<float, true>(c1[2], c1[3]);
}

template <int NV>
__global__ void __launch_bounds__(kFusedThreads, 1)
    ssd_fwd_fused_tf32_kernel(const float *x, bk_view4 sx, const float *dt, bk_view4 sdt, const float *a, long long sa,
                              const float *bm, bk_view4 sb, const float *cm, bk_view4 sc, float *y, bk_view4 sy,
                              const float *init, bk_view4 si, float *fin, bk_view4 sf, long long L, long long H, int D,
                              int N, long long K, long long BH, ssd_kopts o)
{
    typedef float row_t[kPad];
    constexpr int SNH = 4 * NV;                   /* a warp's state n-tiles of 8 columns */
    constexpr int kChunkRows = (2 * NV + 1) * TQ; /* tile rows of one chunk: C, B, x */
    constexpr int kPrologueWarp = 4;              /* rq 0, nh 1: no M block */
    extern __shared__ __align__(16) unsigned char fused_tf32_smem[];
    /* float2 / int2 accesses: 8-byte aligned rows */
    __shared__ __align__(16) float s_cum[2][TQ], s_dt[2][TQ], s_w[2][TQ], s_e[2][TQ];
    __shared__ __align__(16) int s_seg[2][TQ];
    __shared__ float s_dec[2];
    const bool gate = o.z != nullptr, seq = o.seq != nullptr, skip = o.skip_kind != BK_SSD_SKIP_NONE;
    row_t *const tiles = (row_t *)fused_tf32_smem, *const Ms = tiles + 2 * kChunkRows;
    float(*const xch)[16][kXchPitch] = (float(*)[16][kXchPitch])(Ms + TQ); /* [warp][d][t] */
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, cq = lane % 4;
    const int rq = warp & 3, nh = warp >> 2, rb = 16 * rq, n0 = nh * 32 * NV;
    for (long long bh = blockIdx.x; bh < BH; bh += gridDim.x) {
        const long long b = bh / H, h = bh % H, hg = h / o.P;
        const float A = ld(a + h * sa);
        auto rows_of = [&](long long k) { return (int)min((long long)TQ, L - k * TQ); };
        /* chunk k's tiles: C (NV tiles of 64 n), then B (likewise), then x */
        auto c_of = [&](long long k) { return tiles + (int)(k & 1) * kChunkRows; };
        /* chunk k's C, B and x rows (cp.async, one group; zeros outside) */
        auto load = [&](long long k) {
            const long long l0 = k * TQ;
            const int q = rows_of(k);
            row_t *Cb = c_of(k), *Bb = Cb + NV * TQ, *Xb = Cb + 2 * NV * TQ;
            const float *cg = cm + b * sc.s0 + l0 * sc.s1 + hg * sc.s2, *bg = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2;
            const float *xg = x + b * sx.s0 + l0 * sx.s1 + h * sx.s2;
#pragma unroll
            for (int it = 0; it < TQ * 16 * NV / kFusedThreads; it++) {
                const int i = tid + it * kFusedThreads, r = i / (16 * NV), j = (i % (16 * NV)) * 4;
                const bool ok = r < q && j < N;
                const int tr = (j >> 6) * TQ + r; /* the row in the tile of j's 64 columns */
                bk_cp_async16(bk_smem_addr(&Cb[tr][j & 63]), ok ? cg + r * sc.s1 + j : cm, ok ? 16 : 0);
                bk_cp_async16(bk_smem_addr(&Bb[tr][j & 63]), ok ? bg + r * sb.s1 + j : bm, ok ? 16 : 0);
            }
#pragma unroll
            for (int it = 0; it < TQ * 16 / kFusedThreads; it++) {
                const int i = tid + it * kFusedThreads, r = i >> 4, j = (i & 15) * 4;
                const bool ok = r < q && j < D;
                bk_cp_async16(bk_smem_addr(&Xb[r][j]), ok ? xg + r * sx.s1 + j : x, ok ? 16 : 0);
            }
            bk_cp_async_commit();
        };
        /* this thread's pieces of chunk k's C and B (landed) rounded to tf32 in place */
        auto round_cb = [&](long long k) {
            row_t *Cb = c_of(k);
#pragma unroll
            for (int it = 0; it < TQ * 16 * NV / kFusedThreads; it++) {
                const int i = tid + it * kFusedThreads, r = i / (16 * NV), j = (i % (16 * NV)) * 4;
                const int tr = (j >> 6) * TQ + r;
                tf32_round_piece(&Cb[tr][j & 63]);
                tf32_round_piece(&Cb[NV * TQ + tr][j & 63]);
            }
        };
        /* the prologue warp: the raw inputs of the next chunk whose weights it computes */
        warp_prologue_in<float> pin;
        auto prologue_load = [&](long long k) {
            pin = warp_prologue_load<float>(dt, sdt, b, k * TQ, h, rows_of(k), o, lane);
        };
        auto prologue = [&](long long k) {
            const int pb = (int)(k & 1), q = rows_of(k);
            warp_prologue_scan<float, 0>(pin, h, q, A, s_w[pb], &s_dec[pb], o, lane, s_cum[pb], s_dt[pb], s_seg[pb]);
            const float2 c = *(const float2 *)&s_cum[pb][2 * lane]; /* this lane's own stores */
            const int2 sg = *(const int2 *)&s_seg[pb][2 * lane];
            *(float2 *)&s_e[pb][2 * lane] = make_float2(2 * lane < q && sg.x == 0 ? expf(c.x) : 0.f,
                                                        2 * lane + 1 < q && sg.y == 0 ? expf(c.y) : 0.f);
        };
        float st[SNH][4]; /* rows rb + g (+ 8), columns n0 + 8 nt + 2 cq (+ 1) */
#pragma unroll
        for (int nt = 0; nt < SNH; nt++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const int d = rb + g + 8 * (r >> 1), n = n0 + nt * 8 + 2 * cq + (r & 1);
                st[nt][r] = init && d < D && n < N ? ld(init + b * si.s0 + h * si.s1 + d * si.s2 + n) : 0.f;
            }
        float skv[2]; /* the skip of rows rb + g, rb + g + 8 */
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int d = rb + g + 8 * hh;
            skv[hh] = skip && d < D ? skip_of<float>(o, h, d) : 0.f;
        }
        if (K > 0)
            load(0);
        if (warp == kPrologueWarp && K > 0) {
            prologue_load(0);
            prologue(0);
            if (K > 1)
                prologue_load(1);
        }
        for (long long k = 0; k < K; k++) {
            const int pb = (int)(k & 1), q = rows_of(k);
            const long long l0 = k * TQ;
            const row_t *Cb = c_of(k), *Bb = Cb + NV * TQ, *Xb = Cb + 2 * NV * TQ;
            bk_cp_async_wait_all(); /* chunk k's tiles */
            round_cb(k);
            /* publishes chunk k's tiles and weights; chunk k - 1's buffers, M, xch are free */
            __syncthreads();
            if (k + 1 < K)
                load(k + 1);
            /* z of this warp's outputs (t = 32 nh + 8 i + 2 cq (+ 1), d = rb + g (+ 8)) */
            float zr[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int t = 32 * nh + 8 * i + 2 * cq + (r & 1), d = rb + g + 8 * (r >> 1);
                    zr[i][r] = gate && t < q && d < D ? ((const float *)o.z)[off4(o.sz, b, l0 + t, h, d)] : 0.f;
                }
            /* 1. this warp's columns' part of y^T = S C^T, every t */
            float yp[8][4] = {};
#pragma unroll
            for (int j = 0; j < SNH; j += 2) {
                const int n = n0 + 8 * j;
                frag_t<float> af[4];
                tf32_half_ulp(st[j], 1);
                tf32_half_ulp(st[j + 1], 1);
                pack_a_raw(af, st[j], st[j + 1]);
#pragma unroll
                for (int nt = 0; nt < 8; nt += 2) {
                    frag_t<float> bf[4];
                    frag_b<float, true>(bf, Cb + (n >> 6) * TQ, nt, n & 63);
                    bk_mma16<float>::mma(yp[nt], af, bf);
                    bk_mma16<float>::mma(yp[nt + 1], af, bf + 2);
                }
                tf32_half_ulp(st[j], -1);
                tf32_half_ulp(st[j + 1], -1);
            }
#pragma unroll
            for (int i = 0; i < 4; i++) /* the partner's t half: t tiles 4 (1 - nh) + i */
#pragma unroll
                for (int hh = 0; hh < 2; hh++)
                    *(float2 *)&xch[warp][g + 8 * hh][8 * i + 2 * cq] =
                        nh ? make_float2(yp[i][2 * hh], yp[i][2 * hh + 1])
                           : make_float2(yp[4 + i][2 * hh], yp[4 + i][2 * hh + 1]);
            /* 2. M rows rb.., s blocks j = nh, nh + 2 (<= rq): C B^T, masked and weighted */
            if (nh <= rq) {
                float mc[2][2][4] = {};
#pragma unroll 2
                for (int kb = 0; kb < 64 * NV; kb += 16) {
                    frag_t<float> af[4];
                    frag_a<float, true>(af, Cb + (kb >> 6) * TQ, rb, kb & 63);
#pragma unroll
                    for (int bi = 0; bi < 2; bi++) {
                        const int j = nh + 2 * bi;
                        if (j > rq)
                            break;
                        frag_t<float> bf[4];
                        frag_b<float, true>(bf, Bb + (kb >> 6) * TQ, 2 * j, kb & 63);
                        bk_mma16<float>::mma(mc[bi][0], af, bf);
                        bk_mma16<float>::mma(mc[bi][1], af, bf + 2);
                    }
                }
                const int t0 = rb + g, t1 = t0 + 8;
                const float ct0 = s_cum[pb][t0], ct1 = s_cum[pb][t1];
                const int gt0 = s_seg[pb][t0], gt1 = s_seg[pb][t1];
#pragma unroll
                for (int bi = 0; bi < 2; bi++) {
                    const int j = nh + 2 * bi;
                    if (j > rq)
                        break;
#pragma unroll
                    for (int hf = 0; hf < 2; hf++) {
                        const int s0 = 16 * j + 8 * hf + 2 * cq;
                        const float2 cs = *(const float2 *)&s_cum[pb][s0], ds = *(const float2 *)&s_dt[pb][s0];
                        const int2 gs = *(const int2 *)&s_seg[pb][s0];
                        float m[4];
#pragma unroll
                        for (int r = 0; r < 4; r++) {
                            const int t = r < 2 ? t0 : t1, s = s0 + (r & 1);
                            const float ct = r < 2 ? ct0 : ct1, csv = (r & 1) ? cs.y : cs.x;
                            const float dsv = (r & 1) ? ds.y : ds.x;
                            const bool vis = s <= t && (!seq || ((r & 1) ? gs.y : gs.x) == (r < 2 ? gt0 : gt1));
                            m[r] = vis ? mc[bi][hf][r] * expf(ct - csv) * dsv : 0.f;
                        }
                        *(float2 *)&Ms[t0][s0] = make_float2(tf32_rounded(m[0]), tf32_rounded(m[1]));
                        *(float2 *)&Ms[t1][s0] = make_float2(tf32_rounded(m[2]), tf32_rounded(m[3]));
                    }
                }
            }
            /* 3. S <- exp(dec) S + (w o x)^T B over the chunk's steps, this warp's columns */
            const float fk = expf(s_dec[pb]);
#pragma unroll
            for (int nt = 0; nt < SNH; nt++)
#pragma unroll
                for (int r = 0; r < 4; r++)
                    st[nt][r] *= fk;
#pragma unroll
            for (int kb = 0; kb < TQ; kb += 16) {
                frag_t<float> af[4];
                frag_a_t_w(af, Xb, rb, kb, s_w[pb]);
#pragma unroll
                for (int nt = 0; nt < SNH; nt += 2) {
                    const int n = n0 + 8 * nt;
                    frag_t<float> bf[4];
                    frag_b_t<float, true>(bf, Bb + (n >> 6) * TQ, (n & 63) / 8, kb);
                    bk_mma16<float>::mma(st[nt], af, bf);
                    bk_mma16<float>::mma(st[nt + 1], af, bf + 2);
                }
            }
            __syncthreads(); /* M and xch of chunk k */
            /* 4. y^T for t = 32 nh..: own part + the partner's, times exp(cum_t), + x^T M^T */
            float yt[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const float2 pv = *(const float2 *)&xch[warp ^ 4][g + 8 * hh][8 * i + 2 * cq];
                    const float2 e = *(const float2 *)&s_e[pb][32 * nh + 8 * i + 2 * cq];
                    yt[i][2 * hh] = ((nh ? yp[4 + i][2 * hh] : yp[i][2 * hh]) + pv.x) * e.x;
                    yt[i][2 * hh + 1] = ((nh ? yp[4 + i][2 * hh + 1] : yp[i][2 * hh + 1]) + pv.y) * e.y;
                }
#pragma unroll
            for (int j = 0; j < 4; j++) { /* s blocks of 16 up to this half's last t */
                if (16 * j > 32 * nh + 31)
                    break;
                frag_t<float> af[4];
                frag_a_t(af, Xb, rb, 16 * j);
#pragma unroll
                for (int i = 0; i < 4; i += 2) {
                    if (4 * nh + i + 1 < 2 * j)
                        continue; /* t tiles 4 nh + i, + 1 lie before the s block */
                    frag_t<float> bf[4];
                    frag_b<float, true>(bf, Ms, 4 * nh + i, 16 * j);
                    bk_mma16<float>::mma(yt[i], af, bf);
                    bk_mma16<float>::mma(yt[i + 1], af, bf + 2);
                }
            }
            float *yb = y + b * sy.s0 + l0 * sy.s1 + h * sy.s2;
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int t = 32 * nh + 8 * i + 2 * cq + (r & 1), d = rb + g + 8 * (r >> 1);
                    if (t >= q || d >= D)
                        continue;
                    float v = yt[i][r];
                    if (skip)
                        v += skv[r >> 1] * Xb[t][d];
                    if (gate)
                        v *= siluf_(zr[i][r]);
                    yb[t * sy.s1 + d] = v;
                }
            if (warp == kPrologueWarp && k + 1 < K) {
                prologue(k + 1);
                if (k + 2 < K)
                    prologue_load(k + 2);
            }
        }
        if (fin) {
#pragma unroll
            for (int nt = 0; nt < SNH; nt++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int d = rb + g + 8 * (r >> 1), n = n0 + nt * 8 + 2 * cq + (r & 1);
                    if (d < D && n < N)
                        fin[b * sf.s0 + h * sf.s1 + d * sf.s2 + n] = st[nt][r];
                }
        }
        __syncthreads(); /* the last chunk's readers are done before the next (b, h) loads */
    }
}

/* ------------------------------------------------------- chunk_scan -- */

/* MODE 0 (forward): y = finish_y(u). MODE 1 (backward with the gate): the same u, then
 * y <- dz = gate_dz(u + skip x) from dy (the recomputed un-gated output never stored). */
template <typename T, int MODE>
__global__ void __launch_bounds__(kThreads)
    chunk_scan_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                      bk_view4 sb, const T *cm, bk_view4 sc, T *y, bk_view4 sy, const float *states, long long L,
                      long long H, long long D, long long N, long long K, long long total, ssd_kopts o,
                      const T *dy, bk_view4 sdy)
{
    __shared__ float s_dt[TQ], s_cum[TQ];
    __shared__ int s_seg[TQ];
    __shared__ float buf[2 * TQ * (TQ + 1)];
    float(*Cs)[33] = (float(*)[33])buf;               /* [t][n]  phase 1 */
    float(*Bs)[33] = (float(*)[33])(buf + TQ * 33);    /* [s][n] */
    float(*Ss)[33] = (float(*)[33])(buf + 2 * TQ * 33); /* [d][n] */
    float(*Ms)[TQ + 1] = (float(*)[TQ + 1])buf;       /* [t][s]  phase 2 */
    float(*Xs)[TQ + 1] = (float(*)[TQ + 1])(buf + TQ * (TQ + 1)); /* [s][d] */
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const long long tiles = (D + TQ - 1) / TQ;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long tile = blk % tiles, c = (blk / tiles) % K, bh = blk / tiles / K;
        const long long b = bh / H, h = bh % H, l0 = c * TQ, d0 = tile * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0);
        chunk_prologue(dt, sdt, b, l0, h, q, ld(a + h * sa), s_dt, s_cum, s_seg, o);
        const float *S = states + (bh * K + c) * D * N;
        float accM[4][4] = {}, accY[4][4] = {};
        for (long long n0 = 0; n0 < N; n0 += 32) {
            for (int i = tid; i < TQ * 32; i += kThreads) {
                const int r = i / 32, j = i % 32;
                const bool nin = n0 + j < N;
                Cs[r][j] = (r < q && nin) ? ld(cm + off4(sc, b, l0 + r, hg, n0 + j)) : 0.f;
                Bs[r][j] = (r < q && nin) ? ld(bm + off4(sb, b, l0 + r, hg, n0 + j)) : 0.f;
                Ss[r][j] = (d0 + r < D && nin) ? S[(d0 + r) * N + n0 + j] : 0.f;
            }
            __syncthreads();
            for (int j = 0; j < 32; j++) {
                float cv[4], bv[4], sv[4];
                for (int i = 0; i < 4; i++) {
                    cv[i] = Cs[ty + 16 * i][j];
                    bv[i] = Bs[tx + 16 * i][j];
                    sv[i] = Ss[tx + 16 * i][j];
                }
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++) {
                        accM[i][k] += cv[i] * bv[k];
                        accY[i][k] += cv[i] * sv[k];
                    }
            }
            __syncthreads();
        }
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) {
                const int t = ty + 16 * i, s = tx + 16 * k;
                Ms[t][s] = (s <= t && t < q && s_seg[s] == s_seg[t])
                               ? accM[i][k] * expf(s_cum[t] - s_cum[s]) * s_dt[s]
                               : 0.f;
            }
        for (int i = tid; i < TQ * TQ; i += kThreads) {
            const int s = i / TQ, j = i % TQ;
            Xs[s][j] = (s < q && d0 + j < D) ? ld(x + off4(sx, b, l0 + s, h, d0 + j)) : 0.f;
        }
        __syncthreads();
        for (int i = 0; i < 4; i++) {
            const int t = ty + 16 * i;
            const float et = s_seg[t] == 0 ? expf(s_cum[t]) : 0.f;
            for (int k = 0; k < 4; k++)
                accY[i][k] *= et;
        }
        for (int s = 0; s < q; s++) {
            float mv[4], xv[4];
            for (int i = 0; i < 4; i++) {
                mv[i] = Ms[ty + 16 * i][s];
                xv[i] = Xs[s][tx + 16 * i];
            }
            for (int i = 0; i < 4; i++)
                for (int k = 0; k < 4; k++)
                    accY[i][k] += mv[i] * xv[k];
        }
#pragma unroll /* accY stays in registers */
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const int t = ty + 16 * i;
                const long long d = d0 + tx + 16 * k;
                if (t >= q || d >= D)
                    continue;
                if (MODE == 0) {
                    y[off4(sy, b, l0 + t, h, d)] = elem<T>::store(finish_y(o, accY[i][k], x, sx, b, l0 + t, h, d));
                } else {
                    const float v = accY[i][k] + skip_of<T>(o, h, d) * ld(x + off4(sx, b, l0 + t, h, d));
                    y[off4(sy, b, l0 + t, h, d)] = elem<T>::store(gate_dz(o, v, dy, sdy, b, l0 + t, h, d));
                }
            }
        __syncthreads();
    }
}

/* -------------------------------------------------------- chunk_bwd -- */

/* Dynamic shared memory of chunk_bwd_kernel, in floats: Wg, Wx [64][65] and a scratch
 * area reused by the three phases. */
const int kW = TQ * (TQ + 1);
const int kScratch = 2 * TQ * 33 + 2 * 32 * (TQ + 1) + 2 * kW;
const size_t kBwdSmem = (size_t)(2 * kW + kScratch) * sizeof(float);

/* Row (b, l) of head h's dB or dC, element n: into out (group h / P = h when P is 1) or,
 * with groups of heads, into the f32 per-head rows acc [B][L][H][N] that group_sum_kernel
 * adds up. */
template <typename T>
__device__ __forceinline__ void store_bc(T *out, const bk_view4 &so, float *acc, long long b, long long l, long long h,
                                         long long n, long long L, long long H, long long N, float v)
{
    if (acc)
        acc[((b * L + l) * H + h) * N + n] = v;
    else
        out[off4(so, b, l, h, n)] = elem<T>::store(v);
}

/* The chunk's P terms (P[t][s], s <= t, f32 [64][65]) into dcum[u] = sum_s P[u][s] -
 * sum_t P[t][u] (f64, fixed order); zeroes ddt0 and rr. Threads < TQ; the caller syncs. */
__device__ __forceinline__ void chunk_bwd_dcum(const float (*P)[TQ + 1], double *s_dcum, float *s_ddt0, float *s_rr)
{
    const int tid = threadIdx.x;
    if (tid < TQ) {
        double row = 0.0, col = 0.0;
        for (int s = 0; s < TQ; s++)
            row += P[tid][s];
        for (int t = 0; t < TQ; t++)
            col += P[t][tid];
        s_dcum[tid] = row - col;
        s_ddt0[tid] = 0.f;
        s_rr[tid] = 0.f;
    }
}

/* The shared memory of one chunk_bwd block (either kernel): the prologue's arrays, the
 * direct part of ddt (ddt0), the R sums (rr), da, the <dS, S> reduction (red, one per
 * thread) and dL/dcum (f64: sums of terms of both signs). */
struct bwd_smem {
    float *dt, *cum, *ddt0, *rr, *da, *red;
    int *seg;
    double *dcum;
};

/* Sum over the lanes of a warp: an xor butterfly, so every lane ends with the same value,
 * added in the same order on every run. */
template <typename V> __device__ __forceinline__ V warp_sum(V v)
{
    for (int m = 16; m > 0; m /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

/* The end of chunk_bwd (either kernel; every thread calls it, dss its part of <dS, S>, or
 * with dss_whole thread 0 holds all of it): the R terms and exp(cum_l) <dS, S> into dcum,
 * da_u = sum_{t >= u} dcum_t (reverse running sum), ddt (through dt_eff's slope: softplus,
 * clamp) and the chunk's parts of dA (*part) and ddt_bias (*pbias when non-NULL). Warp 0
 * does the chunk's sums, two steps a lane: R and the f64 sums by warp_sum, da by a
 * suffix scan of the lanes' pair sums (one thread walking the 64 steps would hold the
 * block's other warps at the next barrier). */
template <typename T, int OPTS>
__device__ void chunk_bwd_finish(const bwd_smem &sm, float dss, bool dss_whole, int q, float A, const T *dt,
                                 const bk_view4 &sdt, T *ddt, const bk_view4 &sddt, long long b, long long l0,
                                 long long h, double *part, double *pbias, const ssd_kopts &o)
{
    static_assert(TQ == 64, "chunk_bwd_finish: two steps a lane of one warp");
    const int tid = threadIdx.x, lane = tid % 32, last = q - 1;
    auto same_seg = [&](int s, int t) { return !o.seq || sm.seg[s] == sm.seg[t]; };
    if (!dss_whole) { /* <dS, S>: the lanes, then the warps in order */
        const float v = warp_sum(dss);
        if (lane == 0)
            sm.red[tid / 32] = v;
    }
    __syncthreads();
    if (tid < 32) {
        float ds = __shfl_sync(0xffffffffu, dss, 0);
        if (!dss_whole) {
            ds = 0.f;
            for (int w = 0; w < (int)blockDim.x / 32; w++)
                ds += sm.red[w];
        }
        const int s0 = 2 * lane, s1 = s0 + 1;
        /* R_s = w_s rr_s, carried out of the chunk from step s (its last segment only) */
        auto rterm = [&](int s) {
            return s < q && same_seg(s, last) ? (double)(expf(sm.cum[last] - sm.cum[s]) * sm.dt[s]) * sm.rr[s] : 0.0;
        };
        const double r0 = rterm(s0), r1 = rterm(s1), R = warp_sum(r0 + r1);
        const double carry = !o.seq || sm.seg[last] == 0 ? (double)expf(sm.cum[last]) * ds : 0.0;
        double c0 = s0 < q ? sm.dcum[s0] - r0 : 0.0, c1 = s1 < q ? sm.dcum[s1] - r1 : 0.0;
        if (s0 == last)
            c0 += R + carry;
        if (s1 == last)
            c1 += R + carry;
        double incl = c0 + c1; /* f64: dA sums many terms of both signs */
        for (int k = 1; k < 32; k *= 2) {
            const double v = __shfl_down_sync(0xffffffffu, incl, k);
            if (lane + k < 32)
                incl += v;
        }
        double after = __shfl_down_sync(0xffffffffu, incl, 1); /* the lanes above this one */
        if (lane == 31)
            after = 0.0;
        const double da1 = c1 + after, da0 = c0 + da1;
        sm.da[s0] = (float)da0;
        sm.da[s1] = (float)da1;
        const double sum =
            warp_sum((s0 < q ? (double)sm.dt[s0] * da0 : 0.0) + (s1 < q ? (double)sm.dt[s1] * da1 : 0.0));
        if (lane == 0)
            *part = sum;
    }
    __syncthreads();
    if (tid < q) {
        T *p = ddt + b * sddt.s0 + (l0 + tid) * sddt.s1 + h * sddt.s2;
        float slope = 1.f;
        if (OPTS == kBwdAll)
            dt_eff<T>(o, ld(dt + b * sdt.s0 + (l0 + tid) * sdt.s1 + h * sdt.s2), h, &slope);
        const float v = (sm.ddt0[tid] + A * sm.da[tid]) * slope;
        sm.ddt0[tid] = v;
        *p = elem<T>::store(v);
    }
    __syncthreads();
    if (pbias && tid < 32) {
        const int s0 = 2 * lane, s1 = s0 + 1;
        const double sb = warp_sum((s0 < q ? (double)sm.ddt0[s0] : 0.0) + (s1 < q ? (double)sm.ddt0[s1] : 0.0));
        if (lane == 0)
            *pbias = sb;
    }
    __syncthreads();
}

/* One block per (b, h, chunk): dx, ddt, dB, dC of the chunk (dy gated by ld_du, B and C
 * of group h / P, seq_idx masks as the forward's) and its parts of dA, ddt_bias (pbias)
 * and dskip (pskip, per channel) in the workspace. gdb, gdc: the per-head dB, dC rows
 * (P > 1) or NULL. OPTS (bwd_opts): kBwdPlain folds every option away at compile time
 * (kopts_none, no partial sums), so its code is the option-free kernel's; kBwdGroups adds
 * only the head groups. */
template <typename T, int OPTS>
__global__ void __launch_bounds__(kThreads)
    chunk_bwd_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                     bk_view4 sb, const T *cm, bk_view4 sc, const T *dy, bk_view4 sdy, T *dx, bk_view4 sdx, T *ddt,
                     bk_view4 sddt, T *db, bk_view4 sdb, T *dc, bk_view4 sdc, const float *states,
                     const float *dstates, double *parts, double *pbias_in, double *pskip_in, float *gdb_in,
                     float *gdc_in, long long L, long long H, long long D, long long N, long long K, long long total,
                     ssd_kopts opts)
{
    const ssd_kopts o = kopts_for<OPTS>(opts);
    double *const pbias = OPTS == kBwdAll ? pbias_in : NULL, *const pskip = OPTS == kBwdAll ? pskip_in : NULL;
    float *const gdb = OPTS != kBwdPlain ? gdb_in : NULL, *const gdc = OPTS != kBwdPlain ? gdc_in : NULL;
    extern __shared__ float smem[];
    __shared__ float s_dt[TQ], s_cum[TQ], s_ddt0[TQ], s_rr[TQ], s_da[TQ], s_red[kThreads];
    __shared__ int s_seg[TQ];
    __shared__ double s_dcum[TQ]; /* dL/dcum: sums of terms of both signs, kept in f64 */
    const bwd_smem sm = {s_dt, s_cum, s_ddt0, s_rr, s_da, s_red, s_seg, s_dcum};
    /* steps s and t in one seq_idx segment (always without seq_idx); segment 0: the chunk's first */
    auto same_seg = [&](int s, int t) { return !o.seq || s_seg[s] == s_seg[t]; };
    auto first_seg = [&](int s) { return !o.seq || s_seg[s] == 0; };
    float(*Wg)[TQ + 1] = (float(*)[TQ + 1])smem;
    float(*Wx)[TQ + 1] = (float(*)[TQ + 1])(smem + kW);
    float *scr = smem + 2 * kW;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long c = blk % K, bh = blk / K, b = bh / H, h = bh % H, l0 = c * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0), last = q - 1;
        const float A = ld(a + h * sa);
        chunk_prologue(dt, sdt, b, l0, h, q, A, s_dt, s_cum, s_seg, o);
        const float *S = states + (bh * K + c) * D * N, *dS = dstates + (bh * K + c) * D * N;

        /* phase 1: G = C B^T, DX = dy x^T (t, s); Wg = w G, Wx = w DX; P -> dcum */
        {
            float(*P1)[33] = (float(*)[33])scr, (*P2)[33] = (float(*)[33])(scr + TQ * 33);
            float accG[4][4] = {}, accD[4][4] = {};
            for (int pass = 0; pass < 2; pass++) {
                const long long W = pass == 0 ? N : D;
                const T *p2 = pass == 0 ? bm : x;
                const bk_view4 v2 = pass == 0 ? sb : sx;
                const long long h2 = pass == 0 ? hg : h;
                for (long long w0 = 0; w0 < W; w0 += 32) {
                    for (int i = tid; i < TQ * 32; i += kThreads) {
                        const int r = i / 32, j = i % 32;
                        const bool in = r < q && w0 + j < W;
                        P1[r][j] = !in        ? 0.f
                                   : pass == 0 ? ld(cm + off4(sc, b, l0 + r, hg, w0 + j))
                                               : ld_du(o, dy, sdy, b, l0 + r, h, w0 + j);
                        P2[r][j] = in ? ld(p2 + off4(v2, b, l0 + r, h2, w0 + j)) : 0.f;
                    }
                    __syncthreads();
                    for (int j = 0; j < 32; j++) {
                        float u[4], v[4];
                        for (int i = 0; i < 4; i++) {
                            u[i] = P1[ty + 16 * i][j];
                            v[i] = P2[tx + 16 * i][j];
                        }
                        for (int i = 0; i < 4; i++)
                            for (int k = 0; k < 4; k++) {
                                if (pass == 0)
                                    accG[i][k] += u[i] * v[k];
                                else
                                    accD[i][k] += u[i] * v[k];
                            }
                    }
                    __syncthreads();
                }
            }
            float(*P)[TQ + 1] = (float(*)[TQ + 1])scr;
            for (int i = 0; i < 4; i++)
                for (int k = 0; k < 4; k++) {
                    const int t = ty + 16 * i, s = tx + 16 * k;
                    const float w = (s <= t && t < q && same_seg(s, t)) ? expf(s_cum[t] - s_cum[s]) : 0.f;
                    Wg[t][s] = w * accG[i][k];
                    Wx[t][s] = w * accD[i][k];
                    P[t][s] = w * accG[i][k] * accD[i][k] * s_dt[s];
                }
            __syncthreads();
            chunk_bwd_dcum(P, s_dcum, s_ddt0, s_rr);
            __syncthreads();
        }

        /* phase 2, per 64 columns of D: g_s = sum_t Wg[t][s] dy_t + w_ls dS B_s; dx = dt g +
         * skip dy; ddt0_s = x_s . g_s; dskip's part: sum_s dy_s x_s per channel */
        for (long long d0 = 0; d0 < D; d0 += TQ) {
            float(*Dy)[TQ + 1] = (float(*)[TQ + 1])scr;
            float(*Bc)[33] = (float(*)[33])(scr + kW), (*dSc)[33] = (float(*)[33])(scr + kW + TQ * 33);
            float accU[4][4] = {};
            for (long long n0 = 0; n0 < N; n0 += 32) {
                for (int i = tid; i < TQ * 32; i += kThreads) {
                    const int r = i / 32, j = i % 32;
                    const bool nin = n0 + j < N;
                    Bc[r][j] = (r < q && nin) ? ld(bm + off4(sb, b, l0 + r, hg, n0 + j)) : 0.f;
                    dSc[r][j] = (d0 + r < D && nin) ? dS[(d0 + r) * N + n0 + j] : 0.f;
                }
                __syncthreads();
                for (int j = 0; j < 32; j++) {
                    float u[4], v[4];
                    for (int i = 0; i < 4; i++) {
                        u[i] = Bc[ty + 16 * i][j];
                        v[i] = dSc[tx + 16 * i][j];
                    }
                    for (int i = 0; i < 4; i++)
                        for (int k = 0; k < 4; k++)
                            accU[i][k] += u[i] * v[k];
                }
                __syncthreads();
            }
            for (int i = tid; i < TQ * TQ; i += kThreads) {
                const int r = i / TQ, j = i % TQ;
                Dy[r][j] = (r < q && d0 + j < D) ? ld_du(o, dy, sdy, b, l0 + r, h, d0 + j) : 0.f;
            }
            __syncthreads();
            if (pskip && tid < TQ && d0 + tid < D) {
                float sk = 0.f;
                for (int t = 0; t < q; t++)
                    sk += Dy[t][tid] * ld(x + off4(sx, b, l0 + t, h, d0 + tid));
                pskip[(bh * K + c) * D + d0 + tid] = sk;
            }
            float g[4][4];
            for (int i = 0; i < 4; i++) {
                const int s = ty + 16 * i;
                const float wl = s < q && same_seg(s, last) ? expf(s_cum[last] - s_cum[s]) : 0.f;
                for (int k = 0; k < 4; k++)
                    g[i][k] = wl * accU[i][k];
            }
            for (int t = 0; t < q; t++) {
                float u[4], v[4];
                for (int i = 0; i < 4; i++) {
                    u[i] = Wg[t][ty + 16 * i];
                    v[i] = Dy[t][tx + 16 * i];
                }
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++)
                        g[i][k] += u[i] * v[k];
            }
#pragma unroll /* g stays in registers */
            for (int i = 0; i < 4; i++) {
                const int s = ty + 16 * i;
                float part = 0.f;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const long long d = d0 + tx + 16 * k;
                    if (s < q && d < D) {
                        part += ld(x + off4(sx, b, l0 + s, h, d)) * g[i][k];
                        dx[off4(sdx, b, l0 + s, h, d)] =
                            elem<T>::store(s_dt[s] * g[i][k] + skip_of<T>(o, h, d) * Dy[s][tx + 16 * k]);
                    }
                }
                part = half_warp_sum(part);
                if (tx == 0)
                    s_ddt0[s] += part;
            }
            __syncthreads();
        }

        /* phase 3, per 64 columns of N: Y2 = x dS, Y3 = dy S (rows s / t); dB, dC; dcum terms */
        float dss = 0.f;
        for (long long n0 = 0; n0 < N; n0 += TQ) {
            float(*Xc)[33] = (float(*)[33])scr, (*Dyc)[33] = (float(*)[33])(scr + TQ * 33);
            float(*dSc)[TQ + 1] = (float(*)[TQ + 1])(scr + 2 * TQ * 33);
            float(*Sc)[TQ + 1] = (float(*)[TQ + 1])(scr + 2 * TQ * 33 + 32 * (TQ + 1));
            float(*Ct)[TQ + 1] = (float(*)[TQ + 1])(scr + 2 * TQ * 33 + 64 * (TQ + 1));
            float(*Bt)[TQ + 1] = (float(*)[TQ + 1])(scr + 2 * TQ * 33 + 64 * (TQ + 1) + kW);
            float Y2[4][4] = {}, Y3[4][4] = {};
            for (long long d0 = 0; d0 < D; d0 += 32) {
                for (int i = tid; i < TQ * 32; i += kThreads) {
                    const int r = i / 32, j = i % 32;
                    const bool in = r < q && d0 + j < D;
                    Xc[r][j] = in ? ld(x + off4(sx, b, l0 + r, h, d0 + j)) : 0.f;
                    Dyc[r][j] = in ? ld_du(o, dy, sdy, b, l0 + r, h, d0 + j) : 0.f;
                }
                for (int i = tid; i < 32 * TQ; i += kThreads) {
                    const int r = i / TQ, j = i % TQ;
                    const bool in = d0 + r < D && n0 + j < N;
                    const float ds = in ? dS[(d0 + r) * N + n0 + j] : 0.f, sv = in ? S[(d0 + r) * N + n0 + j] : 0.f;
                    dSc[r][j] = ds;
                    Sc[r][j] = sv;
                    dss += ds * sv;
                }
                __syncthreads();
                for (int j = 0; j < 32; j++) {
                    float xv[4], yv[4], dv[4], sv[4];
                    for (int i = 0; i < 4; i++) {
                        xv[i] = Xc[ty + 16 * i][j];
                        yv[i] = Dyc[ty + 16 * i][j];
                        dv[i] = dSc[j][tx + 16 * i];
                        sv[i] = Sc[j][tx + 16 * i];
                    }
                    for (int i = 0; i < 4; i++)
                        for (int k = 0; k < 4; k++) {
                            Y2[i][k] += xv[i] * dv[k];
                            Y3[i][k] += yv[i] * sv[k];
                        }
                }
                __syncthreads();
            }
            for (int i = tid; i < TQ * TQ; i += kThreads) {
                const int r = i / TQ, j = i % TQ;
                const bool in = r < q && n0 + j < N;
                Ct[r][j] = in ? ld(cm + off4(sc, b, l0 + r, hg, n0 + j)) : 0.f;
                Bt[r][j] = in ? ld(bm + off4(sb, b, l0 + r, hg, n0 + j)) : 0.f;
            }
            __syncthreads();
            float gb[4][4] = {}, gc[4][4] = {};
            for (int t = 0; t < q; t++) {
                float w1[4], w2[4], cv[4], bv[4];
                const float dtt = s_dt[t];
                for (int i = 0; i < 4; i++) {
                    w1[i] = Wx[t][ty + 16 * i];        /* Wx[t][s], s = row */
                    w2[i] = Wx[ty + 16 * i][t] * dtt; /* Wx[r][s = t] dt_s */
                    cv[i] = Ct[t][tx + 16 * i];
                    bv[i] = Bt[t][tx + 16 * i];
                }
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++) {
                        gb[i][k] += w1[i] * cv[k];
                        gc[i][k] += w2[i] * bv[k];
                    }
            }
#pragma unroll /* Y2, Y3, gb, gc stay in registers */
            for (int i = 0; i < 4; i++) {
                const int r = ty + 16 * i;
                const bool rin = r < q;
                const float dtr = rin ? s_dt[r] : 0.f,
                            wl = rin && same_seg(r, last) ? expf(s_cum[last] - s_cum[r]) : 0.f,
                            er = rin && first_seg(r) ? expf(s_cum[r]) : 0.f;
                float inter = 0.f, rr = 0.f;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const int j = tx + 16 * k;
                    const long long n = n0 + j;
                    if (rin && n < N) {
                        const float y3 = er * Y3[i][k];
                        inter += Ct[r][j] * y3;
                        rr += Bt[r][j] * Y2[i][k];
                        store_bc(db, sdb, gdb, b, l0 + r, h, n, L, H, N, dtr * (gb[i][k] + wl * Y2[i][k]));
                        store_bc(dc, sdc, gdc, b, l0 + r, h, n, L, H, N, y3 + gc[i][k]);
                    }
                }
                inter = half_warp_sum(inter);
                rr = half_warp_sum(rr);
                if (tx == 0) {
                    s_dcum[r] += inter;
                    s_rr[r] += rr;
                }
            }
            __syncthreads();
        }

        chunk_bwd_finish<T, OPTS>(sm, dss, false, q, A, dt, sdt, ddt, sddt, b, l0, h, &parts[bh * K + c],
                                  pbias ? &pbias[bh * K + c] : NULL, o);
    }
}

/* rows hf (0: g, 1: g + 8) of acc times f (one factor per row). */
__device__ __forceinline__ void scale_rows(float (&acc)[8][4], float f0, float f1)
{
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
        acc[nt][0] *= f0;
        acc[nt][1] *= f0;
        acc[nt][2] *= f1;
        acc[nt][3] *= f1;
    }
}

/* sum over the 64 columns of row hf of acc times the tile row r (f32; the 4 lanes of a
 * row group summed by xor shuffles in a fixed order, every lane gets the sum). */
template <typename T>
__device__ __forceinline__ float row_dot(const float (&acc)[8][4], int hf, const T (*X)[kPad], int r)
{
    const int cq = threadIdx.x % 4;
    float v = 0.f;
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
        v += ld(&X[r][nt * 8 + 2 * cq]) * acc[nt][2 * hf] + ld(&X[r][nt * 8 + 2 * cq + 1]) * acc[nt][2 * hf + 1];
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* Dynamic shared memory of chunk_bwd_tc_kernel: eight 64 x 64 tiles of 16-bit T (Wg, Wx, x,
 * dU hi, dU lo, C, B, F), 72 KB; with 2 KB static, three blocks fit an SM's 228 KB.
 * Registers bounded for 3 blocks per SM on the plain problem (168, no spills), 2 with
 * options (~230; at 168 ptxas spills). f32 (TF32): six tiles (no dU lo; C in Wg's tile
 * outside phase 2, S in F's), 108 KB, two blocks per SM, registers unbounded
 * (bwd_tc_min_blocks; with eight tiles, one block of 4 warps per SM). */
size_t bwd_tc_smem_size(size_t elem_bytes)
{
    return (size_t)(elem_bytes == 2 ? 8 : 6) * TQ * kPad * elem_bytes;
}
#ifndef BK_GROUPS_MINB
#define BK_GROUPS_MINB 3
#endif
template <typename T, int OPTS>
constexpr int bwd_tc_min_blocks = sizeof(T) == 4 ? 2 : OPTS == kBwdAll ? 2 : OPTS == kBwdGroups ? BK_GROUPS_MINB : 3;

/* dL/du as hi + lo (two roundings, about 16 bits) for 16-bit operands; TF32 takes dL/du in
 * f32 in the hi tile (lo zero, its products skipped), rounded once as the other operands. */
template <typename T> constexpr bool kDuLo = sizeof(T) == 2;

/* hi[r][j] + lo[r][j] = dL/du of row r (dy, times silu(z) with the gate; f32 split into two
 * roundings to T, about 16 bits), zero where r >= q or j >= w; dy, z: row 0 of the tile
 * (strides rdy, rz). vec (as load_tile): dy and z go by cp.async into hi and lo, and
 * du_split turns them into dL/du after the wait (each thread its own pieces); else element
 * by element, complete on return. TF32 (no lo tile, lo unused): dL/du in hi alone, dy by
 * load_tile (vec: cp.async, no du_split), with the gate element by element. */
template <typename T> __device__ __forceinline__ void du_pair(float v, T &h, T &l)
{
    h = elem<T>::store(v);
    l = elem<T>::store(kDuLo<T> ? v - elem<T>::load(h) : 0.f);
}
template <typename T>
__device__ __forceinline__ void load_du(T (*hi)[kPad], T (*lo)[kPad], const T *dy, long long rdy, const T *z,
                                        long long rz, int q, long long w, bool vec)
{
    if constexpr (!kDuLo<T>) { /* TF32: dL/du in the hi tile alone (no lo tile) */
        if (!z) {
            load_tile(hi, dy, rdy, q, w, vec);
            return;
        }
        vec = false;
    }
    if (vec) {
#pragma unroll
        for (int it = 0; it < TQ * kRowPieces<T> / kTcThreads; it++) {
            const int i = threadIdx.x + it * kTcThreads, r = i >> kRowShift<T>, j = (i & (kRowPieces<T> - 1)) * kPer16<T>;
            if (r < q && j < w) {
                bk_cp_async16(bk_smem_addr(&hi[r][j]), dy + r * rdy + j, 16);
                if (z)
                    bk_cp_async16(bk_smem_addr(&lo[r][j]), z + r * rz + j, 16);
            } else {
                zero16(&hi[r][j]);
                zero16(&lo[r][j]);
            }
        }
    } else {
        for (int i = threadIdx.x; i < TQ * TQ; i += kTcThreads) {
            const int r = i / TQ, j = i % TQ;
            float v = 0.f;
            if (r < q && j < w) {
                v = ld(dy + r * rdy + j);
                if (z)
                    v *= siluf_(ld(z + r * rz + j));
            }
            if constexpr (kDuLo<T>)
                du_pair(v, hi[r][j], lo[r][j]);
            else
                hi[r][j] = elem<T>::store(v);
        }
    }
}
/* load_du's vec path after cp.async.wait_all, by the threads that issued it (gate: z given) */
template <typename T> __device__ __forceinline__ void du_split(T (*hi)[kPad], T (*lo)[kPad], bool gate)
{
#pragma unroll
    for (int it = 0; it < TQ * kRowPieces<T> / kTcThreads; it++) {
        const int i = threadIdx.x + it * kTcThreads, r = i >> kRowShift<T>, j = (i & (kRowPieces<T> - 1)) * kPer16<T>;
        T ed[kPer16<T>], ez[kPer16<T>], eh[kPer16<T>], el[kPer16<T>];
        memcpy(ed, &hi[r][j], 16);
        if (gate)
            memcpy(ez, &lo[r][j], 16);
#pragma unroll
        for (int e = 0; e < kPer16<T>; e++)
            du_pair(gate ? ld(&ed[e]) * siluf_(ld(&ez[e])) : ld(&ed[e]), eh[e], el[e]);
        memcpy(&hi[r][j], eh, 16);
        memcpy(&lo[r][j], el, 16);
    }
}

/* tile[r][j] = f32 src[r * N + j] rounded to T, zero where r >= rows or j >= w; v4: float4
 * loads (src 16-byte aligned, N and w multiples of 4). With dot (S's tile), *dss += src .
 * dot over the tile (fixed order per thread). */
template <typename T>
__device__ __forceinline__ void load_ftile(T (*tile)[kPad], const float *src, long long N, int rows, long long w,
                                           bool v4, const float *dot = nullptr, float *dss = nullptr)
{
    if (v4) {
#pragma unroll 1
        for (int i = threadIdx.x; i < TQ * 16; i += kTcThreads) {
            const int r = i >> 4, j = (i & 15) * 4;
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
            if (r < rows && j < w) {
                v = *(const float4 *)(src + r * N + j);
                if (dot) {
                    const float4 d = *(const float4 *)(dot + r * N + j);
                    *dss += v.x * d.x + v.y * d.y + v.z * d.z + v.w * d.w;
                }
            }
            if constexpr (sizeof(T) == 4) {
                *(float4 *)&tile[r][j] = v;
            } else {
                uint2 p;
                p.x = bk_mma16<T>::pack(v.x, v.y);
                p.y = bk_mma16<T>::pack(v.z, v.w);
                *(uint2 *)&tile[r][j] = p;
            }
        }
    } else {
        for (int i = threadIdx.x; i < TQ * TQ; i += kTcThreads) {
            const int r = i / TQ, j = i % TQ;
            float v = 0.f;
            if (r < rows && j < w) {
                v = src[r * N + j];
                if (dot)
                    *dss += v * dot[r * N + j];
            }
            tile[r][j] = elem<T>::store(v);
        }
    }
}

/* Two adjacent outputs (columns j, j + 1 of row p; j + 1 < w unless odd w) of T rows or the
 * f32 per-head rows acc (store_bc's). pair: one store of both (vectorised views; f32: one
 * 8-byte store, cached: group_sum_kernel reads the rows back while some are still in L2). */
template <typename T>
__device__ __forceinline__ void store2(T *p, float *acc, bool pair, long long j, long long w, float v0, float v1)
{
    if (acc && pair) {
        *(float2 *)(acc + j) = make_float2(v0, v1);
    } else if (acc) {
        acc[j] = v0;
        if (j + 1 < w)
            acc[j + 1] = v1;
    } else if (pair) {
        bk_mma16<T>::st2(p + j, v0, v1);
    } else {
        p[j] = elem<T>::store(v0);
        if (j + 1 < w)
            p[j + 1] = elem<T>::store(v1);
    }
}

/* Row r (< q) of a 64-column product tile: the thread's half hf of Y (its 8 n8 blocks,
 * columns n0 + 8 nt + 2 cq (+1) < N) times `mul`, into the T row out (b, l0 + r, h) and,
 * with groups, the f32 per-head row of acc [B][L][H][N] (dB / dC of chunk_bwd_tc). */
template <typename T>
__device__ __forceinline__ void store_row(const float (&Y)[8][4], int hf, T *out, float *acc, bool vec, long long n0,
                                         long long N, int cq, float mul)
{
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
        const int j = nt * 8 + 2 * cq;
        if (n0 + j < N)
            store2<T>(out, acc, vec, j, N - n0, mul * Y[nt][2 * hf], mul * Y[nt][2 * hf + 1]);
    }
}

/* T16's dS loads of phase 2 by a rolled loop (f16) or unrolled (bf16); phase 3's state
 * loads rolled: what kept chunk_bwd_tc<T16> plain and grouped at the f32-state kernels'
 * spills or fewer (ptxas of CUDA 13.0, sm_90a); a register-allocation choice, not math. */
template <typename T> constexpr bool kRollDs = sizeof(T) == 2 && !std::is_same<T, __nv_bfloat16>::value;

/* chunk_bwd on tensor cores (f16, bf16; f32 in TF32): the blocks, outputs, options and f32 sums of
 * chunk_bwd_kernel, its chunk products on mma.sync (16-bit operands, f32 accumulate; 4
 * warps, warp w rows 16w..16w+15 of every 64 x 64 product). Operands rounded to T: the
 * inputs (exact), the f32 states S and dS, Wg = w (C B^T), Wx = w (dU x^T) and dt_s B_s
 * (dC's Wx dt B term); dL/du is hi + lo (two products). The P terms of dcum come from the
 * f32 accumulators (row sums per warp, column sums over the warps in a fixed order).
 * Tiles are loaded once per chunk where the widths allow (x, dU for D <= 64; C, B reused
 * across phases: tags), by 16-byte cp.async when vec (host: vec_view of every 16-bit view,
 * D and N multiples of 8); the f32 states by float4 when v4. Causal blocks are skipped.
 * T16 (16-bit T only): S and dS are the 16-bit states of chunk_state_pass_v MODE 0 and 1
 * inside the f32 buffers (tstate_at), tiles by cp.async; <dS, S> is the sum of the reverse
 * pass's per-tile sums (tdots_at; f32 dS, S in T). */
template <typename T, int OPTS, bool T16>
__global__ void __launch_bounds__(kTcThreads, bwd_tc_min_blocks<T, OPTS>)
    chunk_bwd_tc_kernel(const T *x, bk_view4 sx, const T *dt, bk_view4 sdt, const T *a, long long sa, const T *bm,
                        bk_view4 sb, const T *cm, bk_view4 sc, const T *dy, bk_view4 sdy, T *dx, bk_view4 sdx, T *ddt,
                        bk_view4 sddt, T *db, bk_view4 sdb, T *dc, bk_view4 sdc, const float *states,
                        const float *dstates, double *parts, double *pbias_in, double *pskip_in,
                        float *gdb_in, float *gdc_in, long long L, long long H, long long D, long long N, long long K,
                        long long total, ssd_kopts opts, bool vec, bool v4)
{
    const ssd_kopts o = kopts_for<OPTS>(opts);
    double *const pbias = OPTS == kBwdAll ? pbias_in : NULL, *const pskip = OPTS == kBwdAll ? pskip_in : NULL;
    float *const gdb = OPTS != kBwdPlain ? gdb_in : NULL, *const gdc = OPTS != kBwdPlain ? gdc_in : NULL;
    extern __shared__ __align__(16) unsigned char bwd_tc_smem[];
    __shared__ float s_dt[TQ], s_cum[TQ], s_ddt0[TQ], s_rr[TQ], s_da[TQ], s_red[kTcThreads / 32];
    __shared__ int s_seg[TQ];
    __shared__ double s_dcum[TQ];
    const bwd_smem sm = {s_dt, s_cum, s_ddt0, s_rr, s_da, s_red, s_seg, s_dcum};
    auto same_seg = [&](int s, int t) { return !o.seq || s_seg[s] == s_seg[t]; };
    auto first_seg = [&](int s) { return !o.seq || s_seg[s] == 0; };
    typedef T row_t[kPad];
    /* 16-bit T: eight tiles, Wg's holding S in phase 3. TF32 (bwd_tc_smem_size): six, no
       dU lo; C in Wg's tile (phase 1: each warp writes its Wg rows after its C B^T product
       read them; phase 3: C loaded again), S in F's after x dS (phase 3) */
    constexpr bool six = !kDuLo<T>;
    row_t *Wg = (row_t *)bwd_tc_smem, *Wx = Wg + TQ;             /* [t][s] */
    row_t *Xs = Wx + TQ, *Uh = Xs + TQ, *Ul = six ? nullptr : Uh + TQ; /* x [s][d], dL/du hi, lo [t][d] */
    row_t *Tc = six ? Wg : Ul + TQ, *Tb = six ? Uh + TQ : Tc + TQ, *Tf = Tb + TQ; /* C [t][n], B [s][n], F (dS, dt B) */
    row_t *Ts = six ? Tf : Wg;                                  /* S [d][n] (phase 3) */
    auto du_at = [&](int r, int j) { return ld(&Uh[r][j]) + (six ? 0.f : ld(&Ul[r][j])); }; /* dL/du */
    float *s_rowp = (float *)Tf, (*s_colp)[TQ] = (float(*)[TQ])(s_rowp + TQ); /* phase 1, in Tf */
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, cq = lane % 4, rb = warp * 16;
    const int r0 = rb + lane / 4, r1 = r0 + 8;
    for (long long blk = blockIdx.x; blk < total; blk += gridDim.x) {
        const long long c = blk % K, bh = blk / K, b = bh / H, h = bh % H, l0 = c * TQ;
        const long long hg = h / o.P; /* the group whose B and C head h reads */
        const int q = (int)min((long long)TQ, L - l0), last = q - 1;
        const float A = ld(a + h * sa);
        const T *xb = x + b * sx.s0 + l0 * sx.s1 + h * sx.s2, *dyb = dy + b * sdy.s0 + l0 * sdy.s1 + h * sdy.s2;
        const T *zb = o.z ? (const T *)o.z + b * o.sz.s0 + l0 * o.sz.s1 + h * o.sz.s2 : nullptr;
        const T *cb = cm + b * sc.s0 + l0 * sc.s1 + hg * sc.s2, *bb = bm + b * sb.s0 + l0 * sb.s1 + hg * sb.s2;
        const float *S = states + (bh * K + c) * D * N, *dS = dstates + (bh * K + c) * D * N;
        auto load_ds = [&](long long d0, long long n0, int rows, bool rolled) { /* dS's tile into Tf */
            const T *src = tstate_at<T>(dstates, bh, c, K, D * N) + d0 * N + n0;
            if (T16 && rolled)
                load_tile<T, true>(Tf, src, N, rows, N - n0, true);
            else if (T16)
                load_tile<T, false>(Tf, src, N, rows, N - n0, true);
            else
                load_ftile(Tf, dS + d0 * N + n0, N, rows, N - n0, v4);
        };
        long long tag_x = -1, tag_c = -1, tag_b = -1; /* the column tile x / dU, C, B hold */
        bool du_split_due = false;                    /* vec: dy, z in Uh, Ul until ready() */
        auto need_x = [&](long long d0) {              /* x and dU of columns d0.. (no barrier) */
            if (tag_x != d0) {
                load_tile(Xs, xb + d0, sx.s1, q, D - d0, vec);
                load_du(Uh, Ul, dyb + d0, sdy.s1, zb ? zb + d0 : nullptr, o.sz.s1, q, D - d0, vec);
                tag_x = d0;
                du_split_due = vec; /* TF32: never read */
            }
        };
        auto need_c = [&](long long n0) {
            if (tag_c != n0) {
                load_tile(Tc, cb + n0, sc.s1, q, N - n0, vec);
                tag_c = n0;
            }
        };
        auto need_b = [&](long long n0) {
            if (tag_b != n0) {
                load_tile(Tb, bb + n0, sb.s1, q, N - n0, vec);
                tag_b = n0;
            }
        };
        auto ready = [&]() { /* the tiles loaded above, visible to the block */
            if (vec) {
                bk_cp_async_wait_all();
                if constexpr (!six)
                    if (du_split_due)
                        du_split(Uh, Ul, zb != nullptr);
                du_split_due = false;
            }
            __syncthreads();
        };
        need_x(0);
        need_c(0);
        need_b(0);
        chunk_prologue(dt, sdt, b, l0, h, q, A, s_dt, s_cum, s_seg, o);
        ready();

        /* phase 1: X = dU x^T, G = C B^T (t, s); Wg, Wx; P's row and column sums -> dcum */
        {
            float G[8][4] = {}, X[8][4] = {};
            for (long long d0 = 0; d0 < D; d0 += TQ) {
                if (d0 > 0) {
                    __syncthreads();
                    need_x(d0);
                    ready();
                }
                warp_mma<T, false, false>(X, Uh, Xs, rb, 0, TQ);
                if (kDuLo<T>)
                    warp_mma<T, false, false>(X, Ul, Xs, rb, 0, TQ);
            }
            for (long long n0 = 0; n0 < N; n0 += TQ) {
                if (n0 > 0) {
                    __syncthreads();
                    need_c(n0);
                    need_b(n0);
                    ready();
                }
                warp_mma<T, false, false>(G, Tc, Tb, rb, 0, TQ);
            }
            float rowp[2] = {0.f, 0.f};
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                float colp[2] = {0.f, 0.f};
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {
                    const int t = hf ? r1 : r0, s = nt * 8 + 2 * cq;
                    float wg[2], wx[2];
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int se = s + e;
                        const float w = (se <= t && t < q && same_seg(se, t)) ? expf(s_cum[t] - s_cum[se]) : 0.f;
                        wg[e] = w * G[nt][2 * hf + e];
                        wx[e] = w * X[nt][2 * hf + e];
                        const float p = wg[e] * X[nt][2 * hf + e] * s_dt[se];
                        rowp[hf] += p;
                        colp[e] += p;
                    }
                    bk_mma16<T>::st2(&Wg[t][s], wg[0], wg[1]);
                    bk_mma16<T>::st2(&Wx[t][s], wx[0], wx[1]);
                }
#pragma unroll
                for (int e = 0; e < 2; e++) { /* over the warp's 8 row groups */
                    float v = colp[e];
                    v += __shfl_xor_sync(0xffffffffu, v, 4);
                    v += __shfl_xor_sync(0xffffffffu, v, 8);
                    v += __shfl_xor_sync(0xffffffffu, v, 16);
                    if (lane < 4)
                        s_colp[warp][nt * 8 + 2 * cq + e] = v;
                }
            }
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                float v = rowp[hf];
                v += __shfl_xor_sync(0xffffffffu, v, 1);
                v += __shfl_xor_sync(0xffffffffu, v, 2);
                if (cq == 0)
                    s_rowp[hf ? r1 : r0] = v;
            }
            __syncthreads();
            if (tid < TQ) {
                double col = 0.0;
                for (int w = 0; w < kTcThreads / 32; w++)
                    col += s_colp[w][tid];
                s_dcum[tid] = (double)s_rowp[tid] - col;
                s_ddt0[tid] = 0.f;
                s_rr[tid] = 0.f;
            }
            /* the barrier before the first use of s_ddt0 / s_rr is phase 2's first */
            if (six)
                tag_c = -1; /* Wg written over C */
        }
        const float wl0 = r0 < q && same_seg(r0, last) ? expf(s_cum[last] - s_cum[r0]) : 0.f;
        const float wl1 = r1 < q && same_seg(r1, last) ? expf(s_cum[last] - s_cum[r1]) : 0.f;

        /* phase 2, per 64 columns of D: g = wl (B dS^T) + Wg^T dU (rows s); dx = dt g +
         * skip dU; ddt0_s += x_s . g_s; dskip's part. N tiles from the last (B cached). */
        const long long nlast = (N - 1) / TQ * TQ;
        for (long long d0 = 0; d0 < D; d0 += TQ) {
            float gacc[8][4] = {};
            for (long long n0 = nlast; n0 >= 0; n0 -= TQ) {
                __syncthreads(); /* Tb, Tf, x / dU free */
                need_b(n0);
                if (n0 == 0)
                    need_x(d0);
                load_ds(d0, n0, (int)min((long long)TQ, D - d0), kRollDs<T>);
                ready();
                warp_mma<T, false, false>(gacc, Tb, Tf, rb, 0, TQ);
            }
            scale_rows(gacc, wl0, wl1);
            warp_mma<T, true, true>(gacc, Wg, Uh, rb, rb, TQ); /* t >= s >= rb */
            if (kDuLo<T>)
                warp_mma<T, true, true>(gacc, Wg, Ul, rb, rb, TQ);
            const float sk = o.skip_kind != BK_SSD_SKIP_NONE ? skip_of<T>(o, h, 0) : 0.f;
            const bool chan = o.skip_kind == BK_SSD_SKIP_PER_CHANNEL;
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int s = hf ? r1 : r0;
                const float part = row_dot(gacc, hf, Xs, s);
                if (cq == 0)
                    s_ddt0[s] += part;
                if (s >= q)
                    continue;
                T *out = dx + b * sdx.s0 + (l0 + s) * sdx.s1 + h * sdx.s2 + d0;
#pragma unroll
                for (int nt = 0; nt < 8; nt++) {
                    const int j = nt * 8 + 2 * cq;
                    if (d0 + j >= D)
                        continue;
                    float v[2];
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        v[e] = s_dt[s] * gacc[nt][2 * hf + e];
                        if (o.skip_kind != BK_SSD_SKIP_NONE)
                            v[e] += (chan ? skip_of<T>(o, h, d0 + j + e) : sk) * du_at(s, j + e);
                    }
                    store2<T>(out, nullptr, vec, j, D - d0, v[0], v[1]);
                }
            }
            if (pskip && tid < TQ && d0 + tid < D) {
                float skp = 0.f;
                for (int t = 0; t < q; t++)
                    skp += du_at(t, tid) * ld(&Xs[t][tid]);
                pskip[(bh * K + c) * D + d0 + tid] = skp;
            }
        }

        /* phase 3, per 64 columns of N: Y2 = x dS (rows s), Y3 = dU S (rows t) over D; rr;
         * dB = dt_s (wl Y2 + Wx^T C); dcum += C_t . er Y3; dC = er Y3 + Wx (dt B); <dS, S> */
        float dss = 0.f; /* T16: set before chunk_bwd_finish */
        auto load_s = [&](long long d0, long long n0, int rows, bool dot) { /* S's tile into Ts */
            if (T16)
                load_tile<T, true>(Ts, tstate_at<T>(states, bh, c, K, D * N) + d0 * N + n0, N, rows, N - n0, true);
            else
                load_ftile(Ts, S + d0 * N + n0, N, rows, N - n0, v4, dot ? dS + d0 * N + n0 : nullptr, &dss);
        };
        const float er0 = r0 < q && first_seg(r0) ? expf(s_cum[r0]) : 0.f;
        const float er1 = r1 < q && first_seg(r1) ? expf(s_cum[r1]) : 0.f;
        for (long long n0 = 0; n0 < N; n0 += TQ) {
            float Y2[8][4] = {};
            for (long long d0 = 0; d0 < D; d0 += TQ) { /* dS into Tf; 16-bit: S into Ts (<dS, S>) */
                __syncthreads(); /* every tile but Wx free (Wg dead after phase 2) */
                need_c(n0);
                need_b(n0);
                need_x(d0);
                const int rows = (int)min((long long)TQ, D - d0);
                load_ds(d0, n0, rows, true);
                if (!six)
                    load_s(d0, n0, rows, true);
                ready();
                warp_mma<T, false, true>(Y2, Xs, Tf, rb, 0, TQ);
            }
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const float rr = row_dot(Y2, hf, Tb, hf ? r1 : r0);
                if (cq == 0)
                    s_rr[hf ? r1 : r0] += rr;
            }
            scale_rows(Y2, wl0, wl1);
            warp_mma<T, true, true>(Y2, Wx, Tc, rb, rb, TQ); /* t >= s >= rb */
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int s = hf ? r1 : r0;
                if (s >= q)
                    continue;
                store_row<T>(Y2, hf, db + b * sdb.s0 + (l0 + s) * sdb.s1 + h * sdb.s2 + n0,
                             gdb ? gdb + ((b * L + l0 + s) * H + h) * N + n0 : nullptr, vec, n0, N, cq, s_dt[s]);
            }
            float Y3[8][4] = {};
            for (long long d0 = 0; d0 < D; d0 += TQ) { /* 16-bit, one D tile: dU and S still loaded */
                if (six || D > TQ) { /* TF32: S into F's tile (x dS done), <dS, S> with it */
                    __syncthreads();
                    need_x(d0);
                    load_s(d0, n0, (int)min((long long)TQ, D - d0), six);
                    ready();
                }
                warp_mma<T, false, true>(Y3, Uh, Ts, rb, 0, TQ);
                if (kDuLo<T>)
                    warp_mma<T, false, true>(Y3, Ul, Ts, rb, 0, TQ);
            }
            scale_rows(Y3, er0, er1);
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const float inter = row_dot(Y3, hf, Tc, hf ? r1 : r0);
                if (cq == 0)
                    s_dcum[hf ? r1 : r0] += inter;
            }
            __syncthreads(); /* Tf (dS; TF32: S) free: dt_s B_s into it */
            for (int i = tid; i < TQ * TQ / 2; i += kTcThreads) {
                const int r = i / (TQ / 2), j = (i % (TQ / 2)) * 2;
                bk_mma16<T>::st2(&Tf[r][j], s_dt[r] * ld(&Tb[r][j]), s_dt[r] * ld(&Tb[r][j + 1]));
            }
            __syncthreads();
            warp_mma<T, false, true>(Y3, Wx, Tf, rb, 0, rb + 16); /* s <= t < rb + 16 */
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int t = hf ? r1 : r0;
                if (t >= q)
                    continue;
                store_row<T>(Y3, hf, dc + b * sdc.s0 + (l0 + t) * sdc.s1 + h * sdc.s2 + n0,
                             gdc ? gdc + ((b * L + l0 + t) * H + h) * N + n0 : nullptr, vec, n0, N, cq, 1.f);
            }
        }
        if (T16 && tid == 0) { /* <dS, S>: the reverse pass's sums over the state tiles, in order */
            const long long tiles = ((D + TQ - 1) / TQ) * ((N + TQ - 1) / TQ);
            const float *dp = tdots_at(dstates, bh, K, D * N) + c * tiles;
            for (long long i = 0; i < tiles; i++)
                dss += dp[i];
        }
        chunk_bwd_finish<T, OPTS>(sm, dss, T16, q, A, dt, sdt, ddt, sddt, b, l0, h, &parts[bh * K + c],
                                  pbias ? &pbias[bh * K + c] : NULL, o);
    }
}

/* out[h * so + w] = the sum over b, chunks and j < inner of parts[((b H + h) K + k) W inner
 * + w inner + j], in f64; a block of kSumThreads per (h, w < W): thread t adds the terms
 * t, t + kSumThreads, ... of that (b, k, j) order, then a tree over the threads in a fixed
 * shape (the same order on every run). dA and ddt_bias: W = inner = 1; dskip per channel
 * W = D, per head inner = D. */
const int kSumThreads = 128;
template <typename T>
__global__ void __launch_bounds__(kSumThreads) head_sums_kernel(const double *parts, T *out, long long so, long long B,
                                                                long long H, long long K, long long W, long long inner)
{
    __shared__ double red[kSumThreads];
    const long long per_b = K * inner, n = B * per_b;
    for (long long u = blockIdx.x; u < H * W; u += gridDim.x) {
        const long long h = u / W, w = u % W;
        double s = 0.0;
        for (long long i = threadIdx.x; i < n; i += kSumThreads) {
            const long long b = i / per_b, k = (i % per_b) / inner, j = i % inner;
            s += parts[(((b * H + h) * K + k) * W + w) * inner + j];
        }
        red[threadIdx.x] = s;
        __syncthreads();
        for (int half = kSumThreads / 2; half > 0; half /= 2) {
            if (threadIdx.x < half)
                red[threadIdx.x] += red[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            out[h * so + w] = elem<T>::store((float)red[0]);
        __syncthreads(); /* red is reused */
    }
}

/* out[b, l, g, n] = the sum of acc[b][l][h][n] over the P heads h of group g, in order
 * (the group sums of dB and dC: blockIdx.y 0 sums acc0 into out0, 1 acc1 into out1). A
 * thread per W = 4 (vec: N % 4 == 0, 16-byte rows) or 1 consecutive n of a row (b, l, g):
 * the row's index math once per W outputs, the P loads of a piece independent. */
template <typename T, int W>
__global__ void __launch_bounds__(kThreads)
    group_sum_kernel(const float *acc0, T *out0, bk_view4 so0, const float *acc1, T *out1, bk_view4 so1, long long L,
                     long long G, long long N, int P, long long pieces)
{
    const float *acc = blockIdx.y ? acc1 : acc0;
    T *out = blockIdx.y ? out1 : out0;
    const bk_view4 so = blockIdx.y ? so1 : so0;
    const long long NW = N / W; /* pieces of a row */
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < pieces;
         i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / NW, n = (i - r * NW) * W, bl = r / G, g = r - bl * G;
        const float *p = acc + (r * P) * N + n; /* (bl H + g P) N + n, H = G P */
        float s[W] = {};
#pragma unroll 8
        for (int j = 0; j < P; j++) {
            if constexpr (W == 4) {
                const float4 v = __ldcs((const float4 *)(p + j * N));
                s[0] += v.x, s[1] += v.y, s[2] += v.z, s[3] += v.w;
            } else {
                s[0] += __ldcs(p + j * N);
            }
        }
        T *o = out + off4(so, bl / L, bl % L, g, n);
        if constexpr (W == 4 && kHasTc<T>) { /* two pair stores */
            bk_mma16<T>::st2(o, s[0], s[1]);
            bk_mma16<T>::st2(o + 2, s[2], s[3]);
        } else {
#pragma unroll
            for (int e = 0; e < W; e++)
                o[e] = elem<T>::store(s[e]);
        }
    }
}

unsigned blocks_for(long long total)
{
    return (unsigned)(total < 2147483647LL ? total : 2147483647LL);
}

/* A view the vectorised path can read or write in 16-byte pieces along its last dim. */
bool vec_view(const bk_tensor &t)
{
    return ((uintptr_t)t.data % 16) == 0 && t.strides[0] % 8 == 0 && t.strides[1] % 8 == 0 && t.strides[2] % 8 == 0;
}

/* Whether the _tc kernels load their tiles by 16-byte cp.async (load_tile's vec): D and N
 * multiples of 8, u and v (x and B, or dy and C; chunk_scan_tc adds C) vec_view, the f32
 * states 16-byte aligned. */
bool tc_vec(const ssd_geo &g, const bk_tensor &u, const bk_tensor &v, const float *states)
{
    return g.D % 8 == 0 && g.N % 8 == 0 && vec_view(u) && vec_view(v) && (uintptr_t)states % 16 == 0;
}

/* state_pass over K chunks of st (forward: from the initial states init, the final ones
 * into fin; reverse: the backward's dstates from dfinal_states, dinitial_states into fin). */
template <typename T>
void launch_pass(const ssd_geo &g, float *st, const float *dec, long long K, int reverse, const bk_tensor *init,
                 const bk_tensor *fin, cudaStream_t s)
{
    const long long DN = g.D * g.N;
    if (g.BH * DN == 0)
        return;
    const bool w4 = g.N % 4 == 0 && (uintptr_t)st % 16 == 0;
    const int w = w4 ? 4 : 1, slices = (int)((DN + (long long)kPassThreads * w - 1) / ((long long)kPassThreads * w));
    const long long total = g.BH * slices;
    auto kernel = w4 ? state_pass_kernel<T, 4> : state_pass_kernel<T, 1>;
    kernel<<<blocks_for(total), kPassThreads, 0, s>>>(
        st, dec, DN, K, slices, total, reverse, init ? (const T *)init->data : NULL,
        init ? bk_view4_of(init) : bk_view4{0, 0, 0, 0}, fin ? (T *)fin->data : NULL,
        fin ? bk_view4_of(fin) : bk_view4{0, 0, 0, 0}, g.H, g.N);
}

/* varlen_states_kernel after the forward (st: the entering states, NULL when L is 0). */
template <typename T>
void launch_varlen(const ssd_geo &g, const bk_ssd_desc *d, const bk_ssd_fwd_args *a, const float *st, cudaStream_t s,
                   const ssd_kopts &o)
{
    const long long nv = d->n_varlen_seqs, total = nv * g.H * g.D * g.N;
    if (!a->varlen_states || total == 0)
        return;
    varlen_states_kernel<T><<<bk_grid_for(total, kThreads), kThreads, 0, s>>>(
        (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt), (const T *)a->a.data,
        a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b), st, (const int *)a->cu_seqlens->data,
        (T *)a->varlen_states->data, bk_view4_of(a->varlen_states), nv, g.L, g.H, g.D, g.N, g.K, o);
}

/* chunk_state + state_pass: states[bh][k] = the state entering chunk k; dec filled.
 * tc: the tensor-core chunk_state (f16/bf16; f32 in the TF32 plans). */
template <typename T>
void launch_states(const ssd_geo &g, const bk_tensor &x, const bk_tensor &dt, const bk_tensor &a, const bk_tensor &b,
                   const ssd_ws &w, cudaStream_t s, bool tc, const ssd_kopts &o, const bk_tensor *init,
                   const bk_tensor *fin)
{
    const long long tiles = ((g.D + TQ - 1) / TQ) * ((g.N + TQ - 1) / TQ), total = g.BH * g.K * tiles;
    if (total == 0)
        return;
    bool done = false;
    if constexpr (kHasTc<T>) {
        if (tc) {
            chunk_state_tc_kernel<T, 0><<<blocks_for(total), kTcThreads, 0, s>>>(
                (const T *)x.data, bk_view4_of(&x), (const T *)b.data, bk_view4_of(&b), (const T *)dt.data,
                bk_view4_of(&dt), (const T *)a.data, a.strides[0], w.states, w.dec, g.L, g.H, g.D, g.N, g.K, total, o,
                tc_vec(g, x, b, w.states));
            done = true;
        }
    }
    if (!done)
        chunk_state_kernel<T, 0><<<blocks_for(total), kThreads, 0, s>>>(
            (const T *)x.data, bk_view4_of(&x), (const T *)b.data, bk_view4_of(&b), (const T *)dt.data,
            bk_view4_of(&dt), (const T *)a.data, a.strides[0], w.states, w.dec, g.L, g.H, g.D, g.N, g.K, total, o);
    launch_pass<T>(g, w.states, w.dec, g.K, 0, init, fin, s);
}

/* Rows of [D, N] per slice of the 16-bit entering states (tstate_row). */
int tstate_rows(const ssd_geo &g)
{
    return (int)(1024 / g.N > 1 ? 1024 / g.N : 1);
}

/* Blocks (b, h, state tile) from which the fused chunk_state_pass_v runs instead of
 * chunk_state_v + state_pass_t (fewer leave SMs idle through its sequential chunk walk). */
const long long kFusedStateBlocks = 128;

/* chunk_state_pass_v MODE over every (b, h, state tile): u, v = x, B (MODE 0) or dy, C
 * (MODE 1); the 16-bit states into tst (tstate_at), the rest as the kernel says. */
template <typename T, int MODE>
void launch_state_pass_v(const ssd_geo &g, const bk_tensor &u, const bk_tensor &dt, const bk_tensor &a,
                         const bk_tensor &v, float *tst, const bk_tensor *init, const bk_tensor *fin,
                         const float *sdot, cudaStream_t s, const ssd_kopts &o)
{
    const int D = (int)g.D, N = (int)g.N;
    const long long total = g.BH * ((D + TQ - 1) / TQ) * ((N + TQ - 1) / TQ);
    chunk_state_pass_v_kernel<T, MODE><<<blocks_for(total), kPassVThreads, 0, s>>>(
        (const T *)u.data, bk_view4_of(&u), (const T *)v.data, bk_view4_of(&v), (const T *)dt.data, bk_view4_of(&dt),
        (const T *)a.data, a.strides[0], tst, init ? (const T *)init->data : NULL,
        init ? bk_view4_of(init) : bk_view4{0, 0, 0, 0}, fin ? (T *)fin->data : NULL,
        fin ? bk_view4_of(fin) : bk_view4{0, 0, 0, 0}, sdot, g.L, g.H, D, N, g.K, total, o);
}

/* chunk_scan_v over every (b, h, chunk, 64 columns of D) from the 16-bit entering states
 * tst (slices of rd rows): MODE 0 y into out; MODE 1 (the backward's gate) dz into out from
 * dy. */
template <typename T, int MODE>
void launch_scan_v(const ssd_geo &g, const bk_tensor &x, const bk_tensor &dt, const bk_tensor &a, const bk_tensor &b,
                   const bk_tensor &c, const bk_tensor &out, const T *tst, int rd, const bk_tensor *dy, cudaStream_t s,
                   const ssd_kopts &o)
{
    const int D = (int)g.D, N = (int)g.N;
    const long long total = g.BH * g.K * ((D + TQ - 1) / TQ);
    const size_t smem = scan_v_smem(N);
    auto kernel = chunk_scan_v_kernel<T, MODE, 4>; /* N up to BK_SSD_MAX_DIM = 256 */
    switch ((N + 63) / 64) {
    case 1: kernel = chunk_scan_v_kernel<T, MODE, 1>; break;
    case 2: kernel = chunk_scan_v_kernel<T, MODE, 2>; break;
    case 3: kernel = chunk_scan_v_kernel<T, MODE, 3>; break;
    default: break;
    }
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    kernel<<<blocks_for(total), kTcThreads, smem, s>>>(
        (const T *)x.data, bk_view4_of(&x), (const T *)dt.data, bk_view4_of(&dt), (const T *)a.data, a.strides[0],
        (const T *)b.data, bk_view4_of(&b), (const T *)c.data, bk_view4_of(&c), (T *)out.data, bk_view4_of(&out), tst,
        g.L, g.H, D, N, g.K, rd, total, o, dy ? (const T *)dy->data : NULL,
        dy ? bk_view4_of(dy) : bk_view4{0, 0, 0, 0});
}

/* Whether the 16-bit forward runs the fused chunk_state_pass_v (else chunk_state_v +
 * state_pass_t, which take no initial or final states). */
bool fwd_fused_states(const ssd_geo &g)
{
    return g.BH * ((g.D + TQ - 1) / TQ) * ((g.N + TQ - 1) / TQ) >= kFusedStateBlocks;
}

/* The forward, f16/bf16 and every view vec_view: chunk_state_pass_v (or chunk_state_v +
 * state_pass_t), chunk_scan_v; initial and final states on the fused pass only. */
template <typename T>
void launch_fwd_v(const ssd_geo &g, const bk_ssd_fwd_args *a, const ssd_ws &w, cudaStream_t s, const ssd_kopts &o)
{
    const int D = (int)g.D, N = (int)g.N, tiles = ((D + TQ - 1) / TQ) * ((N + TQ - 1) / TQ);
    int rd = tstate_rows(g);
    if (fwd_fused_states(g)) { /* enough blocks: the states stay in registers */
        rd = D;
        launch_state_pass_v<T, 0>(g, a->x, a->dt, a->a, a->b, w.states, a->initial_states, a->final_states, NULL, s,
                                  o);
    } else {
        const int slices = (D + rd - 1) / rd;
        const long long st_total = g.BH * g.K * tiles;
        chunk_state_v_kernel<T><<<blocks_for(st_total), kTcThreads, 0, s>>>(
            (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->b.data, bk_view4_of(&a->b),
            (const T *)a->dt.data, bk_view4_of(&a->dt), (const T *)a->a.data, a->a.strides[0], w.states, w.dec, g.L,
            g.H, D, N, g.K, st_total, o);
        const long long pass_total = g.BH * slices;
        state_pass_t_kernel<T><<<blocks_for(pass_total), kPassThreads, 0, s>>>(w.states, w.dec, D, N, g.K, rd,
                                                                                slices, pass_total);
    }
    launch_scan_v<T, 0>(g, a->x, a->dt, a->a, a->b, a->c, a->y, (const T *)w.states, rd, NULL, s, o);
}

/* (b, h) pairs from which the 16-bit forward runs ssd_fwd_fused_kernel, a block each (fewer
 * leave most SMs idle through its sequential chunk walk: the chunk-parallel kernels then). */
const long long kFusedFwdBlocks = 64;

/* The fused forward's kernel and dynamic shared memory: ssd_fwd_fused_kernel for f16/bf16,
 * ssd_fwd_fused_tf32_kernel for f32 (the TF32 plan); NV 64-column blocks of N. */
template <typename T> auto fwd_fused_kernel_for(int NV)
{
    if constexpr (sizeof(T) == 2)
        return NV == 2 ? ssd_fwd_fused_kernel<T, 2> : ssd_fwd_fused_kernel<T, 1>;
    else
        return NV == 2 ? ssd_fwd_fused_tf32_kernel<2> : ssd_fwd_fused_tf32_kernel<1>;
}
template <typename T> size_t fwd_fused_smem_of(int NV, bool gate)
{
    return sizeof(T) == 2 ? fwd_fused_smem(NV, gate) : fwd_fused_tf32_smem(NV);
}

/* Whether the forward runs the fused kernel (fwd_fused_kernel_for): f16/bf16, or f32 in
 * the TF32 plan (tc); D <= 64 and N <= 128, both multiples of 8, x, B, C, y (and z)
 * vec_view, no varlen states, kFusedFwdBlocks (b, h), and a device that gives one block
 * its shared memory (16-bit: 117 to 208 KB by N and the gate; f32: 146 or 218 KB by N). */
template <typename T> bool fwd_fused(const ssd_geo &g, const bk_ssd_fwd_args *a, bool tc)
{
    return (sizeof(T) == 2 || (sizeof(T) == 4 && tc)) && g.D > 0 && g.D <= 64 && g.D % 8 == 0 && g.N > 0 &&
           g.N <= 128 && g.N % 8 == 0 && g.BH >= kFusedFwdBlocks && vec_view(a->x) && vec_view(a->b) &&
           vec_view(a->c) && vec_view(a->y) && (!a->z || vec_view(*a->z)) && !a->varlen_states &&
           bk_cuda_smem_fits(fwd_fused_smem_of<T>(g.N > 64 ? 2 : 1, a->z != NULL));
}

template <typename T> void launch_fwd_fused(const ssd_geo &g, const bk_ssd_fwd_args *a, cudaStream_t s, const ssd_kopts &o)
{
    const int NV = g.N > 64 ? 2 : 1;
    const size_t smem = fwd_fused_smem_of<T>(NV, o.z != nullptr);
    auto kernel = fwd_fused_kernel_for<T>(NV);
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    const bk_tensor *init = a->initial_states, *fin = a->final_states;
    kernel<<<blocks_for(g.BH), kFusedThreads, smem, s>>>(
        (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt), (const T *)a->a.data,
        a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b), (const T *)a->c.data, bk_view4_of(&a->c),
        (T *)a->y.data, bk_view4_of(&a->y), init ? (const T *)init->data : NULL,
        init ? bk_view4_of(init) : bk_view4{0, 0, 0, 0}, fin ? (T *)fin->data : NULL,
        fin ? bk_view4_of(fin) : bk_view4{0, 0, 0, 0}, g.L, g.H, (int)g.D, (int)g.N, g.K, g.BH, o);
}

/* The forward: f16/bf16 on tensor cores (tc always true), f32 on tensor cores in TF32 when
 * tc (the TF32 plan), else on CUDA cores (and f64, never dispatched). f16/bf16 run the
 * products by mma.sync m16n8k16 (_tc kernels: 16-bit operands, f32 accumulate), f32 in the
 * TF32 plans too (the same _tc kernels instantiated for float); for 16-byte-aligned 16-bit
 * views with D, N multiples of 8 and no varlen states, the vectorised _v kernels
 * (launch_fwd_v; cp.async, ldmatrix; the scan's decay weights by ex2.approx, so not
 * bit-identical to chunk_scan_tc), chunk_state_pass_v fusing passes 1 and 2 from 128
 * (b, h, tile) blocks (initial and final states only there); with D <= 64, N <= 128 and
 * 64+ (b, h), ssd_fwd_fused_kernel instead (fwd_fused): passes 1, 2 and 3 in one block per
 * (b, h), the state in registers (no workspace read or written); the TF32 plan likewise
 * (ssd_fwd_fused_tf32_kernel). */
template <typename T>
void launch_fwd(const ssd_geo &g, const bk_ssd_fwd_args *a, const ssd_ws &w, cudaStream_t s, const ssd_kopts &o,
                bool tc)
{
    if constexpr (sizeof(T) <= 4) {
        if (fwd_fused<T>(g, a, tc)) {
            launch_fwd_fused<T>(g, a, s, o);
            return;
        }
    }
    if constexpr (sizeof(T) == 2) {
        if (g.D % 8 == 0 && g.N % 8 == 0 && g.N > 0 && vec_view(a->x) && vec_view(a->b) && vec_view(a->c) &&
            vec_view(a->y) && !a->varlen_states &&
            (fwd_fused_states(g) || (!a->initial_states && !a->final_states)) && bk_cuda_smem_fits(scan_v_smem((int)g.N))) {
            launch_fwd_v<T>(g, a, w, s, o);
            return;
        }
    }
    const long long total = g.BH * g.K * ((g.D + TQ - 1) / TQ);
    launch_states<T>(g, a->x, a->dt, a->a, a->b, w, s, tc, o, a->initial_states, a->final_states);
    bool done = false;
    if constexpr (kHasTc<T>) {
        if (tc) {
            const size_t smem = scan_tc_smem(sizeof(T));
            cudaFuncSetAttribute(chunk_scan_tc_kernel<T, 0>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            chunk_scan_tc_kernel<T, 0><<<blocks_for(total), kTcThreads, smem, s>>>(
                (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
                (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b),
                (const T *)a->c.data, bk_view4_of(&a->c), (T *)a->y.data, bk_view4_of(&a->y), w.states, g.L, g.H, g.D,
                g.N, g.K, total, o, NULL, bk_view4{0, 0, 0, 0}, tc_vec(g, a->x, a->b, w.states) && vec_view(a->c));
            done = true;
        }
    }
    if (!done) {
        chunk_scan_kernel<T, 0><<<blocks_for(total), kThreads, 0, s>>>(
            (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
            (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b), (const T *)a->c.data,
            bk_view4_of(&a->c), (T *)a->y.data, bk_view4_of(&a->y), w.states, g.L, g.H, g.D, g.N, g.K, total, o,
            NULL, bk_view4{0, 0, 0, 0});
    }
}

/* Chunks up to which the backward takes the fused state pass whatever its number of blocks
 * (a short walk costs little); longer walks need kFusedStateBlocks blocks. */
const long long kFusedShortWalk = 8;

/* Whether the backward runs the fused 16-bit state passes (chunk_state_pass_v MODE 0 from
 * the initial states, chunk_scan_v MODE 1 for dz, chunk_state_pass_v MODE 1 from
 * dfinal_states): f16/bf16, D and N multiples of 8 (N > 0), x, B, C, dy (and z, dz)
 * vec_view, enough blocks or a short walk (128 (b, h, tile) blocks or at most 8 chunks), and
 * a device that gives a block scan_v_smem(N); every option. chunk_state_pass_v MODE 0 (from
 * the initial states) writes the entering states in T, chunk_scan_v MODE 1 dz from them,
 * chunk_state_pass_v MODE 1 walks the chunks backwards from dfinal_states with dS in
 * registers (f32), writes each dS_k in T, dinitial_states, and <dS_k, S_k> per state tile
 * (f32 dS, S in T); chunk_bwd_tc<.., T16> loads both by cp.async. No f32 state reaches
 * memory. Precision: the products round S and dS to T as the f32-state path does; the f32
 * sum <dS, S> (dA's exp(cum_last) term) now takes S rounded to T (relative error up to u
 * of T per term, as S's products already have). Else chunk_state + state_pass both ways
 * (f32 states; chunk_state_tc on tensor cores, also the TF32 plan). */
template <typename T> bool bwd_tstates(const ssd_geo &g, const bk_ssd_bwd_args *a)
{
    if (sizeof(T) != 2 || g.D <= 0 || g.N <= 0 || g.D % 8 != 0 || g.N % 8 != 0)
        return false;
    if (!vec_view(a->x) || !vec_view(a->b) || !vec_view(a->c) || !vec_view(a->dy) || (a->z && !vec_view(*a->z)) ||
        (a->dz && !vec_view(*a->dz)))
        return false;
    const long long tiles = ((g.D + TQ - 1) / TQ) * ((g.N + TQ - 1) / TQ);
    return (g.BH * tiles >= kFusedStateBlocks || g.K <= kFusedShortWalk) && bk_cuda_smem_fits(scan_v_smem((int)g.N));
}

/* The backward's per-head sums (dA, ddt_bias, dskip) from the parts in w (K = 0: zeros). */
template <typename T>
void launch_head_sums(const ssd_geo &g, const bk_ssd_desc *d, const bk_ssd_bwd_args *a, const ssd_ws &w,
                      cudaStream_t s)
{
    const long long K = g.L > 0 ? g.K : 0;
    if (g.H == 0)
        return;
    const unsigned grid = bk_grid_for(g.H, 1);
    head_sums_kernel<T><<<grid, kSumThreads, 0, s>>>(w.parts, (T *)a->da.data, a->da.strides[0], g.B, g.H, K, 1, 1);
    if (a->ddt_bias)
        head_sums_kernel<T><<<grid, kSumThreads, 0, s>>>(w.pbias, (T *)a->ddt_bias->data, a->ddt_bias->strides[0], g.B,
                                                         g.H, K, 1, 1);
    if (a->dskip) {
        const bool channel = d->skip == BK_SSD_SKIP_PER_CHANNEL;
        const long long W = channel ? g.D : 1;
        if (g.H * W > 0)
            head_sums_kernel<T><<<bk_grid_for(g.H * W, 1), kSumThreads, 0, s>>>(
                w.pskip, (T *)a->dskip->data, a->dskip->strides[0], g.B, g.H, K, W, channel ? 1 : g.D);
    }
}

/* The backward: the entering states (chunk_state + state_pass from the initial states),
 * dz (chunk_scan MODE 1, with the gate), the state gradients (chunk_state MODE 1 + the
 * reverse state_pass from dfinal_states, leaving dinitial_states), chunk_bwd, the sums.
 * f32 on CUDA cores (on tensor cores in the TF32 plan, tf32); f16/bf16 (D, N > 0) on tensor
 * cores: chunk_state_tc (both MODEs), chunk_scan_tc MODE 1, chunk_bwd_tc (its 64x64
 * products on mma.sync; operands rounded to T: the f32 states and state gradients, the
 * masked weights; dL/du as hi + lo; each operand tile loaded once per chunk where D, N <=
 * 64, 16-byte cp.async when aligned). 16-bit fast path: bwd_tstates. */
template <typename T>
void launch_bwd(const ssd_geo &g, const bk_ssd_desc *d, const bk_ssd_bwd_args *a, const ssd_ws &w, cudaStream_t s,
                bool tf32)
{
    const ssd_kopts o = kopts_of(d, a->dt_bias, a->skip, a->z, a->seq_idx);
    const long long total = g.BH * g.K;
    if (g.L == 0 || total == 0) { /* nothing to scan: dinitial_states = dfinal_states (or 0) */
        if (a->dinitial_states)
            launch_pass<T>(g, NULL, NULL, 0, 1, a->dfinal_states, a->dinitial_states, s);
        launch_head_sums<T>(g, d, a, w, s);
        return;
    }
    /* f16/bf16, and f32 in the TF32 plan: the products on tensor cores */
    const bool tc = (sizeof(T) == 2 || (sizeof(T) == 4 && tf32)) && g.D > 0 && g.N > 0;
    /* the fused 16-bit state passes (bwd_tstates), else f32 states both ways */
    bool t16 = false;
    if constexpr (sizeof(T) == 2) {
        t16 = bwd_tstates<T>(g, a);
        if (t16)
            launch_state_pass_v<T, 0>(g, a->x, a->dt, a->a, a->b, w.states, a->initial_states, NULL, NULL, s, o);
    }
    if (!t16)
        launch_states<T>(g, a->x, a->dt, a->a, a->b, w, s, tc, o, a->initial_states, NULL);
    const long long dtiles = (g.D + TQ - 1) / TQ, tiles = dtiles * ((g.N + TQ - 1) / TQ);
    if (a->dz && g.D > 0) {
        bool done = false;
        if constexpr (sizeof(T) == 2) {
            if (t16) {
                launch_scan_v<T, 1>(g, a->x, a->dt, a->a, a->b, a->c, *a->dz, (const T *)w.states, (int)g.D, &a->dy,
                                    s, o);
                done = true;
            }
        }
        if constexpr (kHasTc<T>) {
            if (tc && !done) {
                const size_t smem = scan_tc_smem(sizeof(T));
                cudaFuncSetAttribute(chunk_scan_tc_kernel<T, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)smem);
                chunk_scan_tc_kernel<T, 1><<<blocks_for(total * dtiles), kTcThreads, smem, s>>>(
                    (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
                    (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b),
                    (const T *)a->c.data, bk_view4_of(&a->c), (T *)a->dz->data, bk_view4_of(a->dz), w.states, g.L,
                    g.H, g.D, g.N, g.K, total * dtiles, o, (const T *)a->dy.data, bk_view4_of(&a->dy),
                    tc_vec(g, a->x, a->b, w.states) && vec_view(a->c));
                done = true;
            }
        }
        if (!done)
            chunk_scan_kernel<T, 1><<<blocks_for(total * dtiles), kThreads, 0, s>>>(
                (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
                (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b),
                (const T *)a->c.data, bk_view4_of(&a->c), (T *)a->dz->data, bk_view4_of(a->dz), w.states, g.L, g.H,
                g.D, g.N, g.K, total * dtiles, o, (const T *)a->dy.data, bk_view4_of(&a->dy));
    }
    if constexpr (sizeof(T) == 2) { /* dS in T, dinitial_states, the <dS, S> sums */
        if (t16)
            launch_state_pass_v<T, 1>(g, a->dy, a->dt, a->a, a->c, w.dstates, a->dfinal_states,
                                      a->dinitial_states, w.states, s, o);
    }
    if (tiles > 0 && !t16) {
        bool done = false;
        if constexpr (kHasTc<T>) {
            if (tc) {
                chunk_state_tc_kernel<T, 1><<<blocks_for(total * tiles), kTcThreads, 0, s>>>(
                    (const T *)a->dy.data, bk_view4_of(&a->dy), (const T *)a->c.data, bk_view4_of(&a->c),
                    (const T *)a->dt.data, bk_view4_of(&a->dt), (const T *)a->a.data, a->a.strides[0], w.dstates,
                    NULL, g.L, g.H, g.D, g.N, g.K, total * tiles, o, tc_vec(g, a->dy, a->c, w.dstates));
                done = true;
            }
        }
        if (!done)
            chunk_state_kernel<T, 1><<<blocks_for(total * tiles), kThreads, 0, s>>>(
                (const T *)a->dy.data, bk_view4_of(&a->dy), (const T *)a->c.data, bk_view4_of(&a->c),
                (const T *)a->dt.data, bk_view4_of(&a->dt), (const T *)a->a.data, a->a.strides[0], w.dstates, NULL,
                g.L, g.H, g.D, g.N, g.K, total * tiles, o);
        launch_pass<T>(g, w.dstates, w.dec, g.K, 1, a->dfinal_states, a->dinitial_states, s);
    }
    /* the plain problem and the grouped one have their own instantiations (runtime option
       tests are slower, and 2 blocks per SM instead of 3 on tensor cores: bench/RESULTS.md) */
    const bool all = o.bias || o.softplus || o.limit || o.skip_kind != BK_SSD_SKIP_NONE || o.z || o.seq || w.pbias ||
                     w.pskip;
    const int opts = all ? kBwdAll : o.P > 1 || w.gdb || w.gdc ? kBwdGroups : kBwdPlain;
    bool launched = false;
    if constexpr (kHasTc<T>) {
        if (tc) {
            auto kernel = opts == kBwdAll      ? chunk_bwd_tc_kernel<T, kBwdAll, false>
                          : opts == kBwdGroups ? chunk_bwd_tc_kernel<T, kBwdGroups, false>
                                               : chunk_bwd_tc_kernel<T, kBwdPlain, false>;
            if constexpr (sizeof(T) == 2) { /* the 16-bit states of the fused pass */
                if (t16)
                    kernel = opts == kBwdAll      ? chunk_bwd_tc_kernel<T, kBwdAll, true>
                             : opts == kBwdGroups ? chunk_bwd_tc_kernel<T, kBwdGroups, true>
                                                  : chunk_bwd_tc_kernel<T, kBwdPlain, true>;
            }
            /* 16-byte tile loads and pair stores for vectorised views; float4 state loads */
            const bool vec = g.D % 8 == 0 && g.N % 8 == 0 && vec_view(a->x) && vec_view(a->dy) && vec_view(a->b) &&
                             vec_view(a->c) && vec_view(a->dx) && vec_view(a->db) && vec_view(a->dc) &&
                             (!a->z || vec_view(*a->z));
            const bool v4 = g.N % 4 == 0 && (uintptr_t)w.states % 16 == 0 && (uintptr_t)w.dstates % 16 == 0;
            const size_t smem = bwd_tc_smem_size(sizeof(T));
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            kernel<<<blocks_for(total), kTcThreads, smem, s>>>(
                (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
                (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b),
                (const T *)a->c.data, bk_view4_of(&a->c), (const T *)a->dy.data, bk_view4_of(&a->dy),
                (T *)a->dx.data, bk_view4_of(&a->dx), (T *)a->ddt.data, bk_view4_of(&a->ddt), (T *)a->db.data,
                bk_view4_of(&a->db), (T *)a->dc.data, bk_view4_of(&a->dc), w.states, w.dstates, w.parts, w.pbias,
                w.pskip, w.gdb, w.gdc, g.L, g.H, g.D, g.N, g.K, total, o, vec, v4);
            launched = true;
        }
    }
    if (!launched) {
        auto kernel = opts == kBwdAll      ? chunk_bwd_kernel<T, kBwdAll>
                      : opts == kBwdGroups ? chunk_bwd_kernel<T, kBwdGroups>
                                           : chunk_bwd_kernel<T, kBwdPlain>;
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kBwdSmem);
        kernel<<<blocks_for(total), kThreads, kBwdSmem, s>>>(
            (const T *)a->x.data, bk_view4_of(&a->x), (const T *)a->dt.data, bk_view4_of(&a->dt),
            (const T *)a->a.data, a->a.strides[0], (const T *)a->b.data, bk_view4_of(&a->b), (const T *)a->c.data,
            bk_view4_of(&a->c), (const T *)a->dy.data, bk_view4_of(&a->dy), (T *)a->dx.data, bk_view4_of(&a->dx),
            (T *)a->ddt.data, bk_view4_of(&a->ddt), (T *)a->db.data, bk_view4_of(&a->db), (T *)a->dc.data,
            bk_view4_of(&a->dc), w.states, w.dstates, w.parts, w.pbias, w.pskip, w.gdb, w.gdc, g.L, g.H, g.D, g.N,
            g.K, total, o);
    }
    launch_head_sums<T>(g, d, a, w, s);
    const long long rows = g.B * g.L * (g.H / g.P); /* (b, l, group) rows of dB and dC */
    if (g.P > 1 && rows * g.N > 0) {
        const bool v4 = g.N % 4 == 0 && vec_view(a->db) && vec_view(a->dc);
        const long long pieces = rows * (v4 ? g.N / 4 : g.N);
        const dim3 grid(bk_grid_for(pieces, kThreads), 2);
        auto kernel = v4 ? group_sum_kernel<T, 4> : group_sum_kernel<T, 1>;
        kernel<<<grid, kThreads, 0, s>>>(w.gdb, (T *)a->db.data, bk_view4_of(&a->db), w.gdc, (T *)a->dc.data,
                                         bk_view4_of(&a->dc), g.L, g.H / g.P, g.N, (int)g.P, pieces);
    }
}

/* ---------------------------------------------------------------- step -- */

/* Everything ssd_step_kernel reads, by value (NULL pointers for absent options). */
struct step_params {
    const void *x, *dt, *a, *b, *c, *skip, *z, *bias;
    void *state, *y;
    const int *idx;
    unsigned long long *dropped;
    bk_view4 sx, sdt, sb, sc, sz, sy, sst, sskip;
    long long sa, sbias;
    long long R, pool, H, D, N, P;
    int skip_kind;
    bool softplus, limit;
    float lo, hi;
};

const int kStepThreads = 128;
const int kStepBlocks = 6; /* ssd_step_vec_kernel's resident blocks per SM (80 registers a thread) */

/* Request r's pool slot; false (counted once, by thread 0 of head 0) when it is outside the pool. */
__device__ __forceinline__ bool step_slot(const step_params &p, long long r, long long h, long long slot)
{
    if (slot < 0 || slot >= p.pool) {
        if (p.dropped && h == 0 && threadIdx.x == 0)
            atomicAdd(p.dropped, 1ULL);
        return false;
    }
    return true;
}

/* dt' = clamp(softplus(dt + bias)) and decay = exp(dt' A) from the loaded dt, bias (0 when
 * absent) and A. */
__device__ __forceinline__ void step_dt(const step_params &p, float dtv, float bias, float a, float &v, float &decay)
{
    v = dtv;
    if (p.bias)
        v += bias;
    if (p.softplus && v <= 20.f)
        v = log1pf(expf(v));
    if (p.limit)
        v = fminf(fmaxf(v, p.lo), p.hi);
    decay = expf(v * a);
}

/* The step's scalars of request r, head h: its pool slot, dt' and exp(dt' A); false when
 * the slot is outside the pool (step_slot). */
template <typename T>
__device__ __forceinline__ bool step_head(const step_params &p, long long r, long long h, long long &slot, float &v,
                                          float &decay)
{
    slot = p.idx ? (long long)p.idx[r] : r;
    if (!step_slot(p, r, h, slot))
        return false;
    step_dt(p, ld((const T *)p.dt + r * p.sdt.s0 + h * p.sdt.s1), p.bias ? ld((const T *)p.bias + h * p.sbias) : 0.f,
            ld((const T *)p.a + h * p.sa), v, decay);
    return true;
}

/* y_d = C . state_d (acc) + skip x_d (sk: the skip of row d, 0 without), gated by
 * silu(zv) when there is z: one store into y's row yr. */
template <typename T>
__device__ __forceinline__ void step_out(const step_params &p, T *yr, long long d, float xd, float acc, float sk,
                                         float zv)
{
    if (p.skip_kind != BK_SSD_SKIP_NONE)
        acc += sk * xd;
    if (p.z)
        acc *= zv / (1.f + expf(-zv));
    yr[d] = elem<T>::store(acc);
}

/* y_d, from the skip and z loaded here. */
template <typename T>
__device__ __forceinline__ void step_y(const step_params &p, long long r, long long h, long long d, float xd, float acc)
{
    float sk = 0.f;
    if (p.skip_kind == BK_SSD_SKIP_PER_HEAD)
        sk = ld((const T *)p.skip + h * p.sskip.s0);
    else if (p.skip_kind == BK_SSD_SKIP_PER_CHANNEL)
        sk = ld((const T *)p.skip + h * p.sskip.s0 + d);
    step_out<T>(p, (T *)p.y + r * p.sy.s0 + h * p.sy.s1, d, xd, acc, sk,
                p.z ? ld((const T *)p.z + r * p.sz.s0 + h * p.sz.s1 + d) : 0.f);
}

/* Any layout: a block per (request, head), warp w rows d = w, w + 4, ..., lane l columns
 * n = l, l + 32, ... (scalar loads). */
template <typename T> __global__ void __launch_bounds__(kStepThreads) ssd_step_kernel(step_params p)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = kStepThreads / 32;
    for (long long blk = blockIdx.x; blk < p.R * p.H; blk += gridDim.x) {
        const long long r = blk / p.H, h = blk % p.H, g = h / p.P;
        long long slot;
        float v, decay;
        if (!step_head<T>(p, r, h, slot, v, decay))
            continue;
        const T *x = (const T *)p.x + r * p.sx.s0 + h * p.sx.s1;
        const T *bv = (const T *)p.b + r * p.sb.s0 + g * p.sb.s1, *cv = (const T *)p.c + r * p.sc.s0 + g * p.sc.s1;
        for (long long d = warp; d < p.D; d += nwarps) {
            const float xd = ld(x + d);
            T *row = (T *)p.state + slot * p.sst.s0 + h * p.sst.s1 + d * p.sst.s2;
            float acc = 0.f;
            for (long long n = lane; n < p.N; n += 32) {
                const float st = decay * ld(row + n) + v * xd * ld(bv + n);
                row[n] = elem<T>::store(st);
                acc += st * ld(cv + n);
            }
            for (int o = 16; o > 0; o /= 2)
                acc += __shfl_xor_sync(0xffffffffu, acc, o);
            if (lane == 0)
                step_y<T>(p, r, h, d, xd, acc);
        }
    }
}

/* 16-byte rows (N / V = CPR = 2^CL chunks of V elements, at most 32; the state, B and C
 * 16-byte aligned; DENSE: rows adjacent, s2 = N): one block per (request, head) (R H
 * blocks), thread t owns chunk c = t % CPR of rows t / CPR + k RPP (RPP = 128 / CPR rows
 * a pass, k < RB = 8; bf16 N 128 D 64: one pass, 16 KB of state a block). Memory bound
 * (each state element read and written once), so the kernel is about bytes in flight:
 * the slot is the one load the state loads wait for; dt, bias, A, B, C, x and the
 * epilogue's skip and z are loaded beside it, the RB 16-byte state loads go out as soon as
 * the slot is checked (row k at a constant offset from row 0 when DENSE; evict-first loads
 * and stores: the state is read once and written once, L2 keeps the shared B, C), and dt'
 * and exp(dt' A) are computed while they are in flight. __launch_bounds__ keeps 6 blocks
 * (96 KB of state loads) per SM: 80 registers, a few bytes of spill for 16-bit T.
 * Each row's C products are summed over its CPR lanes by xor shuffles in a fixed order
 * (every lane ends with the same sum); lane k % CPR writes row k's y, so the epilogues
 * (skip, silu(z)) run on several lanes at once. */
template <typename T, int CL, bool DENSE>
__global__ void __launch_bounds__(kStepThreads, kStepBlocks) ssd_step_vec_kernel(step_params p)
{
    constexpr int V = 16 / (int)sizeof(T), RB = 8, CPR = 1 << CL, RPP = kStepThreads / CPR;
    constexpr int YR = RB > CPR ? RB / CPR : 1; /* rows whose y a lane writes per pass */
    const int c = threadIdx.x & (CPR - 1), r0 = threadIdx.x >> CL;
    /* row stride: int (step_vec_chunks_log checks D s2 fits); N = CPR V when DENSE, so that
       row k's address is the first row's plus a constant */
    const int D = (int)p.D, s2 = DENSE ? CPR * V : (int)p.sst.s2;
    const unsigned hb = blockIdx.x % (unsigned)p.H; /* R H blocks (launch_step checks they fit) */
    const long long r = blockIdx.x / (unsigned)p.H, h = hb, g = hb / (unsigned)p.P;
    const long long slot = p.idx ? (long long)__ldg(p.idx + r) : r;
    /* independent of the slot: in flight beside it */
    const float dtv = ld((const T *)p.dt + r * p.sdt.s0 + h * p.sdt.s1);
    const float bias = p.bias ? ld((const T *)p.bias + h * p.sbias) : 0.f;
    const float a = ld((const T *)p.a + h * p.sa);
    const uint4 braw = __ldg((const uint4 *)((const T *)p.b + r * p.sb.s0 + g * p.sb.s1 + c * V));
    const uint4 craw = __ldg((const uint4 *)((const T *)p.c + r * p.sc.s0 + g * p.sc.s1 + c * V));
    const T *bq = (const T *)&braw, *cq = (const T *)&craw;
    const T *x = (const T *)p.x + r * p.sx.s0 + h * p.sx.s1;
    const T *z = p.z ? (const T *)p.z + r * p.sz.s0 + h * p.sz.s1 : NULL;
    const T *sk = p.skip_kind != BK_SSD_SKIP_NONE ? (const T *)p.skip + h * p.sskip.s0 : NULL;
    const float skh = p.skip_kind == BK_SSD_SKIP_PER_HEAD ? ld(sk) : 0.f;
    T *yr = (T *)p.y + r * p.sy.s0 + h * p.sy.s1;
    if (!step_slot(p, r, h, slot))
        return;
    T *base = (T *)p.state + slot * p.sst.s0 + h * p.sst.s1 + c * V;
    float v = 0.f, decay = 0.f;
    for (int d0 = 0; d0 < D; d0 += RB * RPP) { /* the same trips for every lane */
        T *row = base + (long long)(d0 + r0) * s2; /* row k at row + k RPP s2 */
        uint4 raw[RB];
#pragma unroll
        for (int k = 0; k < RB; k++)
            if (d0 + r0 + k * RPP < D)
                raw[k] = __ldcs((const uint4 *)(row + k * RPP * s2));
        float xs[RB], zs[YR], ss[YR];
#pragma unroll
        for (int k = 0; k < RB; k++) {
            const int d = d0 + r0 + k * RPP;
            xs[k] = d < D ? ld(x + d) : 0.f;
        }
#pragma unroll
        for (int j = 0; j < YR; j++) { /* row k = c + j CPR's skip and z, for its y */
            const int d = d0 + r0 + (c + j * CPR) * RPP;
            const bool ok = c + j * CPR < RB && d < D;
            zs[j] = ok && z ? ld(z + d) : 0.f;
            ss[j] = ok && p.skip_kind == BK_SSD_SKIP_PER_CHANNEL ? ld(sk + d) : skh;
        }
        if (d0 == 0) /* while the state loads are in flight */
            step_dt(p, dtv, bias, a, v, decay);
        float ya[YR], yx[YR];
#pragma unroll
        for (int j = 0; j < YR; j++)
            ya[j] = yx[j] = 0.f;
#pragma unroll
        for (int k = 0; k < RB; k++) {
            const float xd = xs[k];
            T *e = (T *)&raw[k];
            float acc = 0.f;
#pragma unroll
            for (int i = 0; i < V; i++) {
                const float st = decay * elem<T>::load(e[i]) + v * xd * elem<T>::load(bq[i]);
                e[i] = elem<T>::store(st);
                acc += st * elem<T>::load(cq[i]);
            }
            if (d0 + r0 + k * RPP < D)
                __stcs((uint4 *)(row + k * RPP * s2), raw[k]);
#pragma unroll
            for (int o = CPR / 2; o > 0; o /= 2) /* every lane, valid row or not */
                acc += __shfl_xor_sync(0xffffffffu, acc, o);
            if ((k & (CPR - 1)) == c) /* this lane's y row */
                ya[k / CPR] = acc, yx[k / CPR] = xd;
        }
#pragma unroll
        for (int j = 0; j < YR; j++) {
            const int d = d0 + r0 + (c + j * CPR) * RPP;
            if (c + j * CPR < RB && d < D)
                step_out<T>(p, yr, d, yx[j], ya[j], ss[j], zs[j]);
        }
    }
}

/* log2 of the 16-byte chunks per state row when ssd_step_vec_kernel serves the layout, else -1. */
template <typename T> static int step_vec_chunks_log(const step_params &p)
{
    const long long V = 16 / (long long)sizeof(T);
    auto aligned = [&](const void *ptr, long long s0, long long s1, long long s2) {
        return ((uintptr_t)ptr & 15u) == 0 && s0 % V == 0 && s1 % V == 0 && s2 % V == 0;
    };
    if (p.N <= 0 || p.N % V != 0 || !aligned(p.state, p.sst.s0, p.sst.s1, p.sst.s2) || !aligned(p.b, p.sb.s0, p.sb.s1, 0) ||
        !aligned(p.c, p.sc.s0, p.sc.s1, 0))
        return -1;
    const long long cpr = p.N / V;
    if (cpr > 32 || (cpr & (cpr - 1)) != 0 || p.sst.s2 < 0 || p.D * p.sst.s2 > 0x7fffffffLL)
        return -1; /* the kernel's row offsets d s2 are int */
    int lg = 0;
    while ((1LL << lg) < cpr)
        lg++;
    return lg;
}

template <typename T, bool DENSE> static void launch_step_vec(const step_params &p, int lg, unsigned nb, cudaStream_t s)
{
    switch (lg) {
    case 0: ssd_step_vec_kernel<T, 0, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    case 1: ssd_step_vec_kernel<T, 1, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    case 2: ssd_step_vec_kernel<T, 2, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    case 3: ssd_step_vec_kernel<T, 3, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    case 4: ssd_step_vec_kernel<T, 4, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    default: ssd_step_vec_kernel<T, 5, DENSE><<<nb, kStepThreads, 0, s>>>(p); break;
    }
}

template <typename T> static void launch_step(const step_params &p, long long total, cudaStream_t s)
{
    const int lg = step_vec_chunks_log<T>(p);
    const unsigned nb = blocks_for(total);
    if (lg < 0 || nb < total) /* the vector kernel takes one block per (request, head) */
        ssd_step_kernel<T><<<nb, kStepThreads, 0, s>>>(p);
    else if (p.sst.s2 == p.N)
        launch_step_vec<T, true>(p, lg, nb, s);
    else
        launch_step_vec<T, false>(p, lg, nb, s);
}

} // namespace

extern "C" bk_status bk_cuda_ssd_step(const bk_ssd_step_desc *d, const bk_ssd_step_args *a, void *stream)
{
    const long long G = d->ngroups > 0 ? d->ngroups : d->heads;
    step_params p;
    p.x = a->x.data, p.dt = a->dt.data, p.a = a->a.data, p.b = a->b.data, p.c = a->c.data;
    p.skip = a->skip ? a->skip->data : NULL;
    p.z = a->z ? a->z->data : NULL;
    p.bias = a->dt_bias ? a->dt_bias->data : NULL;
    p.state = a->state.data, p.y = a->y.data;
    p.idx = a->state_indices ? (const int *)a->state_indices->data : NULL;
    p.dropped = a->dropped_requests ? (unsigned long long *)a->dropped_requests->data : NULL;
    p.sx = bk_view4_of(&a->x), p.sdt = bk_view4_of(&a->dt), p.sb = bk_view4_of(&a->b), p.sc = bk_view4_of(&a->c);
    p.sz = a->z ? bk_view4_of(a->z) : bk_view4{0, 0, 0, 0};
    p.sy = bk_view4_of(&a->y), p.sst = bk_view4_of(&a->state);
    p.sskip = a->skip ? bk_view4_of(a->skip) : bk_view4{0, 0, 0, 0};
    p.sa = a->a.strides[0];
    p.sbias = a->dt_bias ? a->dt_bias->strides[0] : 0;
    p.R = d->batch, p.pool = d->pool, p.H = d->heads, p.D = d->head_dim, p.N = d->state_dim;
    p.P = G > 0 ? d->heads / G : 1;
    p.skip_kind = (int)d->skip;
    p.softplus = d->dt_softplus, p.limit = d->has_dt_limit;
    p.lo = (float)d->dt_min, p.hi = (float)d->dt_max;
    const long long total = p.R * p.H;
    if (total == 0)
        return BK_STATUS_SUCCESS;
    BK_DISPATCH_FLOAT(d->dtype, T, launch_step<T>(p, total, (cudaStream_t)stream));
    return bk_cuda_check_launch("ssd_step");
}

extern "C" size_t bk_cuda_ssd_fwd_workspace(const bk_ssd_desc *d)
{
    ssd_ws w;
    return ssd_layout(geo_of(d), false, NULL, &w);
}

extern "C" size_t bk_cuda_ssd_bwd_workspace(const bk_ssd_desc *d)
{
    ssd_ws w;
    return ssd_layout(geo_of(d), true, NULL, &w);
}

extern "C" bk_status bk_cuda_ssd_fwd(const bk_ssd_desc *d, const bk_ssd_fwd_args *a, void *workspace, void *stream,
                                     bool tf32)
{
    const ssd_geo g = geo_of(d);
    if (g.L == 0 && (a->final_states || a->varlen_states)) {
        /* y is empty; the final states are the initial ones, the varlen states zero */
        BK_DISPATCH_FLOAT(d->dtype, T, {
            launch_pass<T>(g, NULL, NULL, 0, 0, a->initial_states, a->final_states, (cudaStream_t)stream);
            launch_varlen<T>(g, d, a, NULL, (cudaStream_t)stream, kopts_of(d, a->dt_bias, a->skip, a->z, a->seq_idx));
        });
        return bk_cuda_check_launch("ssd_fwd");
    }
    if (g.BH == 0 || g.L == 0 || g.D == 0)
        return BK_STATUS_SUCCESS; /* y (and any final state) is empty */
    ssd_ws w;
    ssd_layout(g, false, workspace, &w);
    const ssd_kopts o = kopts_of(d, a->dt_bias, a->skip, a->z, a->seq_idx);
    BK_DISPATCH_FLOAT(d->dtype, T, {
        launch_fwd<T>(g, a, w, (cudaStream_t)stream, o, sizeof(T) == 2 || tf32);
        launch_varlen<T>(g, d, a, w.states, (cudaStream_t)stream, o);
    });
    return bk_cuda_check_launch("ssd_fwd");
}

extern "C" bk_status bk_cuda_ssd_bwd(const bk_ssd_desc *d, const bk_ssd_bwd_args *a, void *workspace, void *stream,
                                     bool tf32)
{
    const ssd_geo g = geo_of(d);
    if (g.H == 0)
        return BK_STATUS_SUCCESS;
    ssd_ws w = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    ssd_layout(g, true, workspace, &w);
    BK_DISPATCH_FLOAT(d->dtype, T, launch_bwd<T>(g, d, a, w, (cudaStream_t)stream, tf32));
    return bk_cuda_check_launch("ssd_bwd");
}
