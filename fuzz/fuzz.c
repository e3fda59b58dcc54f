/* fuzz.c - the byte reader, guarded tensor buffers and assertions every fuzz target
 * shares (see fuzz.h), LLVMFuzzerTestOneInput, and with FZ_REPLAY_MAIN a main() that
 * replays corpus files and folders (how CTest runs the corpus under any compiler). */
#define _POSIX_C_SOURCE 200809L /* opendir, stat for the replay driver */
#include "fuzz.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FZ_CANARY 64                    /* bytes before and after every buffer */
#define FZ_CANARY_BYTE 0xA5
#define FZ_MAX_TENSOR_BYTES (64u << 10) /* larger views get a small buffer (and must fail) */
#define FZ_MAX_TOTAL_BYTES (512u << 10)
#define FZ_SMALL_ELEMS 16
#define FZ_MAX_WORK 1.0e5               /* fz_cheap */

static void fz_die(const fz *f, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "FUZZ ASSERTION (%s): ", f->op ? f->op : "?");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n  last error: \"%s\"\n", bk_last_error());
    abort();
}

/* ------------------------------------------------------------------ bytes -- */

uint8_t fz_u8(fz *f)
{
    if (f->n == 0)
        return 0;
    f->n--;
    return *f->p++;
}

uint32_t fz_u32(fz *f)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | fz_u8(f);
    return v;
}

bool fz_bool(fz *f)
{
    return fz_u8(f) & 1;
}

int32_t fz_pick(fz *f, const int32_t *values, int n)
{
    return values[fz_u8(f) % n];
}

int32_t fz_extent(fz *f)
{
    static const int32_t mid[] = {16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 257};
    static const int32_t edge[] = {-1, INT32_MIN, 1 << 16, (1 << 16) + 1, 1 << 20, 1 << 30, INT32_MAX - 1, INT32_MAX};
    uint8_t b = fz_u8(f);
    if (b < 200)
        return b % 9;
    if (b < 236)
        return fz_pick(f, mid, (int)(sizeof mid / sizeof mid[0]));
    return fz_pick(f, edge, (int)(sizeof edge / sizeof edge[0]));
}

bk_dtype fz_dtype(fz *f)
{
    uint8_t b = fz_u8(f);
    if (b < 240)
        return (bk_dtype)(b % 4);
    return (bk_dtype)(b % 8); /* i32, i64 and two values that are not bk_dtype */
}

double fz_scalar(fz *f)
{
    uint8_t b = fz_u8(f);
    switch (b % 16) {
    case 0: return 0.0;
    case 1: return -0.5;
    case 2: return 1e300;
    case 3: return INFINITY;
    case 4: return NAN;
    case 5: return -INFINITY;
    default: return 0.125 * (1 + b % 8);
    }
}

bk_target fz_target(fz *f)
{
    uint8_t b = fz_u8(f);
    if (b < 232)
        return bk_target_cpu();
    if (b < 244)
        return bk_target_cuda_cc(0, 8 + b % 2, 0);
    bk_target t = bk_target_cpu();
    t.kind = (bk_target_kind)(b % 4 + 1); /* CUDA without a capability, or not a kind */
    return t;
}

bk_preference fz_preference(fz *f)
{
    return (bk_preference)(fz_u8(f) % 5);
}

void *fz_maybe_null(fz *f, void *p)
{
    return fz_u8(f) == 255 ? NULL : p;
}

/* ---------------------------------------------------------------- buffers -- */

static unsigned char *buf_alloc(fz *f, size_t bytes)
{
    unsigned char *m = malloc(bytes + 2 * FZ_CANARY);
    if (!m) {
        fprintf(stderr, "fuzz: out of memory\n");
        abort();
    }
    memset(m, FZ_CANARY_BYTE, FZ_CANARY);
    memset(m + FZ_CANARY + bytes, FZ_CANARY_BYTE, FZ_CANARY);
    f->total_bytes += bytes;
    return m;
}

static fz_buf *buf_new(fz *f, size_t bytes, fz_role role)
{
    if (f->nbufs == FZ_MAX_BUFS)
        fz_die(f, "%s%s", "more buffers than FZ_MAX_BUFS", "");
    fz_buf *b = &f->bufs[f->nbufs++];
    memset(b, 0, sizeof *b);
    b->mem = buf_alloc(f, bytes);
    b->bytes = bytes;
    b->role = role;
    return b;
}

static const fz_buf *buf_of(const fz *f, const void *data)
{
    for (int i = 0; i < f->nbufs; i++)
        if (f->bufs[i].mem + FZ_CANARY == (const unsigned char *)data)
            return &f->bufs[i];
    return NULL;
}

/* 1 + the largest offset of the view (0 when empty); -1 when it does not fit in int64
 * or a stride is negative. The harness' own arithmetic, not the library's. */
static int64_t view_reach(const bk_tensor *t, int64_t *numel)
{
    int64_t n = 1, span = 1;
    bool over = false;
    for (int32_t i = 0; i < t->rank; i++)
        if (t->shape[i] < 0) {
            *numel = -1;
            return -1;
        }
    for (int32_t i = 0; i < t->rank; i++)
        over = over || __builtin_mul_overflow(n, t->shape[i], &n);
    for (int32_t i = 0; i < t->rank; i++)
        if (t->shape[i] == 0)
            n = 0, over = false;
    *numel = over ? -1 : n;
    if (n == 0 && !over)
        return 0;
    if (over)
        return -1;
    for (int32_t i = 0; i < t->rank; i++) {
        int64_t step;
        if (t->strides[i] < 0 || __builtin_mul_overflow(t->shape[i] - 1, t->strides[i], &step) ||
            __builtin_add_overflow(span, step, &span))
            return -1;
    }
    return span;
}

static void fill_values(fz *f, void *data, bk_dtype dtype, int64_t n)
{
    uint8_t mode = fz_u8(f);
    uint32_t x = mode * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        double v = ((double)(x >> 8) / (double)(1u << 24)) * 2.0 - 1.0;
        if (mode >= 248 && i % 5 == 0) /* specials among the values */
            v = (i / 5) % 3 == 0 ? NAN : (i / 5) % 3 == 1 ? INFINITY : -1e30;
        switch (dtype) {
        case BK_DTYPE_F32: ((float *)data)[i] = (float)v; break;
        case BK_DTYPE_F64: ((double *)data)[i] = v; break;
        case BK_DTYPE_F16: ((uint16_t *)data)[i] = bk_f32_to_f16((float)v); break;
        case BK_DTYPE_BF16: ((uint16_t *)data)[i] = bk_f32_to_bf16((float)v); break;
        case BK_DTYPE_I32: ((int32_t *)data)[i] = (int32_t)(x % 8); break;
        case BK_DTYPE_I64: ((int64_t *)data)[i] = (int64_t)(x % 8); break;
        }
    }
}

/* Strides for the view, as the bytes say. */
static void make_strides(fz *f, bk_tensor *t)
{
    static const int64_t huge[] = {INT64_MAX, INT64_MAX / 2, (int64_t)1 << 62, (int64_t)1 << 40, -1, INT64_MIN};
    uint8_t mode = fz_u8(f);
    int64_t stride = 1;
    int64_t pad = mode >= 128 && mode < 192 ? 1 + mode % 3 : 0;
    for (int32_t i = t->rank - 1; i >= 0; i--) {
        t->strides[i] = stride;
        int64_t ext = t->shape[i] > 0 ? t->shape[i] : 1;
        if (__builtin_mul_overflow(stride, ext, &stride) || __builtin_add_overflow(stride, pad, &stride))
            stride = INT64_MAX;
    }
    if (t->rank == 0 || mode < 192)
        return;
    int32_t axis = (int32_t)(fz_u8(f) % t->rank);
    if (mode < 224) /* random small strides on every axis */
        for (int32_t i = 0; i < t->rank; i++)
            t->strides[i] = fz_u8(f) % 9;
    else if (mode < 240)
        t->strides[axis] = 0;
    else
        t->strides[axis] = huge[fz_u8(f) % (sizeof huge / sizeof huge[0])];
}

bk_tensor fz_tensor(fz *f, bk_dtype dtype, int32_t rank, const int64_t *shape, fz_role role)
{
    static const int64_t odd[] = {-1, INT64_MAX, (int64_t)1 << 62, (int64_t)1 << 33, INT32_MAX};
    bk_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.rank = rank;
    for (int32_t i = 0; i < rank; i++)
        t.shape[i] = shape[i];
    uint8_t mut = fz_u8(f);
    if (mut >= 244 && rank > 0) { /* a wrong extent, rank or dtype */
        int32_t axis = (int32_t)(fz_u8(f) % rank);
        switch (mut % 4) {
        case 0: t.shape[axis] += 1; break;
        case 1: t.shape[axis] = odd[fz_u8(f) % (sizeof odd / sizeof odd[0])]; break;
        case 2: t.rank = (int32_t)(fz_u8(f) % (BK_MAX_RANK + 1)); break;
        default: t.dtype = fz_dtype(f); break;
        }
    }
    make_strides(f, &t);
    int64_t numel;
    int64_t reach = view_reach(&t, &numel);
    size_t es = bk_dtype_size(t.dtype) ? bk_dtype_size(t.dtype) : 1;
    /* the buffer: the whole reach when it is small enough, else a few elements */
    bool fits = reach >= 0 && (uint64_t)reach <= FZ_MAX_TENSOR_BYTES / es &&
                f->total_bytes + (size_t)reach * es <= FZ_MAX_TOTAL_BYTES;
    int64_t elems = fits ? reach : FZ_SMALL_ELEMS;
    fz_buf *b = buf_new(f, (size_t)elems * es, role);
    t.data = b->mem + FZ_CANARY;
    fill_values(f, t.data, t.dtype, elems);
    uint8_t cap = fz_u8(f);
    if (cap < 200)
        t.capacity = elems;
    else if (cap < 220)
        t.capacity = elems > 1 ? elems - 1 : elems;
    else if (cap < 232)
        t.capacity = fits ? 0 : elems; /* unknown only where the buffer holds the view */
    else if (cap < 240)
        t.capacity = -1;
    else if (cap < 248)
        t.capacity = 1;
    else
        t.capacity = elems;
    if (cap == 255)
        t.data = NULL;
    /* views a correct library must refuse */
    bool has = numel != 0;
    if (numel < 0 || t.capacity < 0 || (has && (reach < 0 || t.data == NULL)) ||
        (has && t.capacity > 0 && reach > t.capacity) || (has && (uint64_t)reach > (uint64_t)elems))
        f->short_views++;
    b->view = t;
    return t;
}

void fz_in_place(fz *f, const bk_tensor *in)
{
    for (int i = 0; i < f->nbufs; i++)
        if (f->bufs[i].mem + FZ_CANARY == (const unsigned char *)in->data)
            f->bufs[i].role = FZ_OUT;
}

const bk_tensor *fz_optional(fz *f, bk_tensor *slot, bk_dtype dtype, int32_t rank, const int64_t *shape,
                             fz_role role)
{
    if (fz_u8(f) < 64)
        return NULL;
    *slot = fz_tensor(f, dtype, rank, shape, role);
    return slot;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void set_index(const bk_tensor *t, int64_t k, int64_t v)
{
    if (t->dtype == BK_DTYPE_I64)
        ((int64_t *)t->data)[k] = v;
    else
        ((int32_t *)t->data)[k] = (int32_t)v;
}

static int64_t index_elems(const fz *f, const bk_tensor *t)
{
    const fz_buf *b = buf_of(f, t->data);
    return b ? (int64_t)(b->bytes / (t->dtype == BK_DTYPE_I64 ? 8 : 4)) : 0;
}

int64_t fz_index_at(const fz *f, const bk_tensor *t, int64_t k)
{
    if (!t->data || (t->dtype != BK_DTYPE_I32 && t->dtype != BK_DTYPE_I64) || k < 0 || k >= index_elems(f, t))
        return 0;
    return t->dtype == BK_DTYPE_I64 ? ((const int64_t *)t->data)[k] : ((const int32_t *)t->data)[k];
}

void fz_fill_index(fz *f, const bk_tensor *t, fz_index_kind kind, int64_t limit)
{
    if (!t->data || (t->dtype != BK_DTYPE_I32 && t->dtype != BK_DTYPE_I64))
        return;
    int64_t n = index_elems(f, t);
    if (n == 0)
        return;
    if (limit < 0)
        limit = 0;
    if (limit > INT32_MAX)
        limit = INT32_MAX;
    int64_t vals[64];
    for (int64_t k = 0; k < n; k++) {
        int64_t v = 0;
        uint32_t r = fz_u32(f);
        switch (kind) {
        case FZ_IDX_PTR:
        case FZ_IDX_STRICT: v = (int64_t)(r % ((uint64_t)limit + 1)); break;
        case FZ_IDX_ID: v = limit > 0 ? (int64_t)(r % (uint64_t)limit) : 0; break;
        case FZ_IDX_LEN: v = limit > 0 ? 1 + (int64_t)(r % (uint64_t)limit) : 1; break;
        case FZ_IDX_OFFSET: v = (int64_t)(r % ((uint64_t)limit + 1)); break;
        }
        if (k < 64)
            vals[k] = v;
        set_index(t, k, v);
    }
    if ((kind == FZ_IDX_PTR || kind == FZ_IDX_STRICT) && n <= 64) {
        int64_t extra = kind == FZ_IDX_STRICT ? limit - (n - 1) : limit;
        if (extra < 0)
            extra = 0;
        for (int64_t k = 0; k < n; k++)
            vals[k] = extra ? vals[k] % (extra + 1) : 0;
        vals[0] = 0;
        vals[n - 1] = extra;
        qsort(vals, (size_t)n, sizeof vals[0], cmp_i64);
        for (int64_t k = 0; k < n; k++)
            set_index(t, k, vals[k] + (kind == FZ_IDX_STRICT ? k : 0));
    }
    uint8_t brk = fz_u8(f);
    if (brk < 216)
        return;
    int64_t k = fz_u8(f) % n;
    static const int64_t bad[] = {-1, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX};
    switch (brk % 5) {
    case 0: set_index(t, k, fz_index_at(f, t, k) - 1); break;
    case 1: set_index(t, k, limit); break;
    case 2: set_index(t, k, limit + 1); break;
    case 3: set_index(t, k, bad[fz_u8(f) % 5]); break;
    default:
        if (k + 1 < n) {
            int64_t a = fz_index_at(f, t, k), b = fz_index_at(f, t, k + 1);
            set_index(t, k, b);
            set_index(t, k + 1, a);
        }
    }
}

bk_paged_kv fz_paged_kv(fz *f, const bk_paged_kv_desc *d, int32_t batch, fz_role pool)
{
    bk_paged_kv kv;
    int64_t pool_shape[4] = {d->num_pages, d->kv_heads, d->page_size, d->head_dim};
    int64_t n_idx = fz_bool(f) ? (int64_t)batch + fz_u8(f) % 4 : fz_extent(f);
    int64_t s_idx[1] = {n_idx}, s_ptr[1] = {(int64_t)batch + 1}, s_last[1] = {batch};
    kv.k_pages = fz_tensor(f, d->dtype, 4, pool_shape, pool);
    kv.v_pages = fz_tensor(f, d->dtype, 4, pool_shape, pool);
    kv.kv_indices = fz_tensor(f, BK_DTYPE_I32, 1, s_idx, FZ_IN);
    kv.kv_indptr = fz_tensor(f, BK_DTYPE_I32, 1, s_ptr, FZ_IN);
    kv.last_page_len = fz_tensor(f, BK_DTYPE_I32, 1, s_last, FZ_IN);
    fz_fill_index(f, &kv.kv_indices, FZ_IDX_ID, d->num_pages);
    fz_fill_index(f, &kv.kv_indptr, FZ_IDX_STRICT, n_idx);
    fz_fill_index(f, &kv.last_page_len, FZ_IDX_LEN, d->page_size);
    return kv;
}

bk_workspace fz_workspace(fz *f, size_t need)
{
    bk_workspace ws = {NULL, 0};
    uint8_t mode = fz_u8(f);
    if (need == 0 || need == SIZE_MAX || need > FZ_MAX_TENSOR_BYTES * 8u || mode >= 248) {
        f->ws_short = need > 0;
        return ws; /* {NULL, 0}: run must refuse it when need > 0 */
    }
    size_t bytes = mode >= 232 ? need - 1 : need;
    f->ws_short = bytes < need;
    fz_buf *b = buf_new(f, bytes, FZ_OUT);
    b->role = FZ_OUT;
    b->view.data = NULL; /* scratch: may change anywhere between the canaries */
    ws.data = b->mem + FZ_CANARY;
    ws.bytes = bytes;
    return ws;
}

/* ------------------------------------------------------------- assertions -- */

void fz_new_call(fz *f)
{
    f->short_views = 0;
}

bk_status fz_status(fz *f, const char *op, fz_call call, bk_status s)
{
    static const char *const names[] = {"select", "can_implement", "run"};
    f->op = op;
    unsigned allowed = 1u << BK_STATUS_SUCCESS | 1u << BK_STATUS_INVALID_PROBLEM | 1u << BK_STATUS_UNSUPPORTED;
    if (call != FZ_SELECT)
        allowed |= 1u << BK_STATUS_BUFFER_TOO_SMALL | 1u << BK_STATUS_OUT_OF_RANGE;
    if (call == FZ_RUN)
        allowed |= 1u << BK_STATUS_WORKSPACE_TOO_SMALL;
    if ((unsigned)s > 31 || !(allowed & (1u << s)))
        fz_die(f, "%s returned %s, not a status this call documents", names[call], bk_status_name(s));
    if (s != BK_STATUS_SUCCESS) {
        const char *e = bk_last_error();
        size_t n = strlen(op);
        if (strncmp(e, op, n) != 0 || e[n] != ':' || strlen(e) < n + 4)
            fz_die(f, "%s failed with %s without a sentence naming the op", names[call], bk_status_name(s));
    }
    if (call != FZ_SELECT && s == BK_STATUS_SUCCESS && f->short_views > 0)
        fz_die(f, "%s accepted a view whose capacity, data or reach is wrong (%s)", names[call],
               "a NULL pointer, capacity below the reach, or a reach beyond int64");
    if (call == FZ_RUN && s == BK_STATUS_SUCCESS && f->ws_short)
        fz_die(f, "run succeeded with a workspace below workspace_size%s%s", "", "");
    return s;
}

void fz_select_begin(fz *f, void *plan, size_t bytes)
{
    f->sel.target = fz_target(f);
    f->sel.preference = fz_preference(f);
    f->sel.null_desc = fz_u8(f) == 255;
    f->sel.null_plan = fz_u8(f) == 255;
    memset(plan, 0x5A, bytes);
}

bool fz_null(fz *f)
{
    return fz_u8(f) == 255;
}

bk_status fz_selected(fz *f, const char *op, const void *plan, size_t bytes, bk_status s)
{
    fz_status(f, op, FZ_SELECT, s);
    const unsigned char *p = (const unsigned char *)plan;
    for (size_t k = 0; s != BK_STATUS_SUCCESS && k < bytes; k++)
        if (p[k] != 0x5A)
            fz_die(f, "a failed select wrote the plan (%s)%s", bk_status_name(s), "");
    return s;
}

bool fz_cheap(double work)
{
    return work >= 0.0 && work <= FZ_MAX_WORK;
}

void fz_snapshot(fz *f)
{
    for (int i = 0; i < f->nbufs; i++) {
        fz_buf *b = &f->bufs[i];
        free(b->before);
        b->before = malloc(b->bytes ? b->bytes : 1);
        memcpy(b->before, b->mem + FZ_CANARY, b->bytes);
    }
}

/* Marks the bytes of every element the view addresses. */
static void mark_view(const bk_tensor *t, unsigned char *mark, size_t bytes)
{
    int64_t numel;
    if (view_reach(t, &numel) <= 0)
        return;
    size_t es = bk_dtype_size(t->dtype);
    int64_t idx[BK_MAX_RANK] = {0};
    for (int64_t e = 0; e < numel; e++) {
        int64_t off = 0;
        for (int32_t i = 0; i < t->rank; i++)
            off += idx[i] * t->strides[i];
        if ((size_t)off * es + es <= bytes)
            memset(mark + (size_t)off * es, 1, es);
        for (int32_t i = t->rank - 1; i >= 0; i--) {
            if (++idx[i] < t->shape[i])
                break;
            idx[i] = 0;
        }
    }
}

void fz_after_run(fz *f, bk_status s)
{
    for (int i = 0; i < f->nbufs; i++) {
        fz_buf *b = &f->bufs[i];
        if (!b->before)
            continue;
        const unsigned char *now = b->mem + FZ_CANARY;
        bool scratch = b->role == FZ_OUT && b->view.data == NULL;
        if (scratch || memcmp(now, b->before, b->bytes) == 0)
            continue;
        if (b->role == FZ_IN)
            fz_die(f, "run wrote an input buffer (status %s)%s", bk_status_name(s), "");
        if (s != BK_STATUS_SUCCESS)
            fz_die(f, "run failed with %s but wrote an output buffer%s", bk_status_name(s), "");
        unsigned char *mark = calloc(b->bytes ? b->bytes : 1, 1);
        mark_view(&b->view, mark, b->bytes);
        for (size_t k = 0; k < b->bytes; k++)
            if (!mark[k] && now[k] != b->before[k])
                fz_die(f, "run wrote a byte outside the output's view%s%s", "", "");
        free(mark);
    }
}

static void check_canaries(const fz *f)
{
    for (int i = 0; i < f->nbufs; i++) {
        const fz_buf *b = &f->bufs[i];
        for (size_t k = 0; k < FZ_CANARY; k++)
            if (b->mem[k] != FZ_CANARY_BYTE || b->mem[FZ_CANARY + b->bytes + k] != FZ_CANARY_BYTE)
                fz_die(f, "a canary byte %s a buffer changed%s", k < FZ_CANARY ? "around" : "after", "");
    }
}

/* ---------------------------------------------------------------- driver -- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One CPU thread (when the library has OpenMP): faster and reproducible under libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("OMP_NUM_THREADS", "1", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f;
    memset(&f, 0, sizeof f);
    f.p = data;
    f.n = size;
    fz_body(&f);
    check_canaries(&f);
    for (int i = 0; i < f.nbufs; i++) {
        free(f.bufs[i].mem);
        free(f.bufs[i].before);
    }
    return 0;
}

#ifdef FZ_REPLAY_MAIN
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz replay: cannot open %s\n", path);
        return 1;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        if (got == 0)
            break;
        n += got;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

/* Replays every file named, and every file in every folder named. */
int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz replay: no such file or folder %s\n", argv[i]);
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += replay_file(argv[i]);
            files++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            bad += replay_file(path);
            files++;
        }
        if (dir)
            closedir(dir);
    }
    printf("%s: replayed %d inputs, %d unreadable\n", argv[0], files, bad);
    return bad ? 1 : 0;
}
#endif
