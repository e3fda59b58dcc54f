/* test_core.c - the core API: status names and last error, dtype sizes and the
 * f16/bf16 converters (bit by bit against independent definitions), tensor views,
 * the shared tensor checks, kernel selection, SKU names, workspace carving, targets. */
#include "bk_test.h"
#include "core/core.h"

#include <math.h>
#include <string.h>

/* Independent f16 decode: sign * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024. */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

/* Independent bf16 decode: the top 16 bits of an f32. */
static double bf16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 0)
        v = ldexp((double)m, -133);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 128.0, e - 127);
    return s ? -v : v;
}

static void test_half_formats(void)
{
    int bad_dec = 0, bad_round = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = f16_value((uint16_t)h);
        double got = bk_f16_to_f32((uint16_t)h);
        if (!(got == want || (isnan(got) && isnan(want))))
            bad_dec++;
        /* every finite f16 value converts back to itself */
        if (!isnan(want) && bk_f32_to_f16((float)want) != h)
            bad_round++;
    }
    bkt_check(bad_dec == 0, "f16 decode", "%d of 65536 patterns decode wrongly", bad_dec);
    bkt_check(bad_round == 0, "f16 encode round trip", "%d values do not round-trip", bad_round);
    bad_dec = bad_round = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = bf16_value((uint16_t)h);
        double got = bk_bf16_to_f32((uint16_t)h);
        if (!(got == want || (isnan(got) && isnan(want))))
            bad_dec++;
        if (!isnan(want) && bk_f32_to_bf16((float)want) != h)
            bad_round++;
    }
    bkt_check(bad_dec == 0, "bf16 decode", "%d patterns decode wrongly", bad_dec);
    bkt_check(bad_round == 0, "bf16 encode round trip", "%d values do not round-trip", bad_round);

    /* rounding: nearest, ties to even, against the neighbours computed here */
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        float x = (float)bkt_uniform(-70000.0, 70000.0) * (float)ldexp(1.0, (int)bkt_randint(-30, 0));
        uint16_t h = bk_f32_to_f16(x);
        double v = f16_value(h);
        /* the neighbours of h toward and away from x */
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        double err = fabs(v - x);
        if ((h & 0x7fff) != 0x7c00 && ((h & 0x7fff) < 0x7bff && fabs(f16_value(up) - x) < err))
            bad++;
        if ((h & 0x7fff) != 0 && (h & 0x7fff) != 0x7c00 && fabs(f16_value(dn) - x) < err)
            bad++;
        if (isinf(v) && fabs(x) < 65520.0)
            bad++;
    }
    bkt_check(bad == 0, "f16 rounds to nearest", "%d random values not rounded to the nearest", bad);
    bkt_check(bk_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00, "f16 tie to even", "1 + 2^-11 -> 0x%04x",
              bk_f32_to_f16(1.0f + 1.0f / 2048.0f));
    bkt_check(bk_f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3c02, "f16 tie to even (odd)", "1 + 3*2^-11 -> 0x%04x",
              bk_f32_to_f16(1.0f + 3.0f / 2048.0f));
    bkt_check(bk_f32_to_f16(65520.0f) == 0x7c00 && bk_f32_to_f16(65519.0f) == 0x7bff, "f16 overflow edge",
              "65520 -> 0x%04x, 65519 -> 0x%04x", bk_f32_to_f16(65520.0f), bk_f32_to_f16(65519.0f));
    bkt_check(bk_f32_to_f16((float)ldexp(1.0, -25)) == 0 && bk_f32_to_f16((float)ldexp(1.5, -25)) == 1,
              "f16 subnormal rounding", "2^-25 -> %u, 1.5*2^-25 -> %u", bk_f32_to_f16((float)ldexp(1.0, -25)),
              bk_f32_to_f16((float)ldexp(1.5, -25)));
    bkt_check(bk_f32_to_bf16(1.0f + 1.0f / 256.0f) == 0x3f80, "bf16 tie to even", "-> 0x%04x",
              bk_f32_to_bf16(1.0f + 1.0f / 256.0f));
    bkt_check(isnan(bk_bf16_to_f32(bk_f32_to_bf16(NAN))) && isnan(bk_f16_to_f32(bk_f32_to_f16(NAN))), "NaN stays NaN",
              "NaN lost");
}

static void test_names(void)
{
    bkt_check(strcmp(bk_status_name(BK_STATUS_OUT_OF_RANGE), "BK_STATUS_OUT_OF_RANGE") == 0, "status name", "%s",
              bk_status_name(BK_STATUS_OUT_OF_RANGE));
    bkt_check(strcmp(bk_status_name((bk_status)99), "BK_STATUS_UNKNOWN") == 0, "unknown status name", "%s",
              bk_status_name((bk_status)99));
    const size_t sizes[] = {4, 8, 2, 2, 4, 8};
    const char *names[] = {"f32", "f64", "f16", "bf16", "i32", "i64"};
    for (int d = 0; d < 6; d++) {
        bkt_check(bk_dtype_size((bk_dtype)d) == sizes[d], "dtype size", "%s", names[d]);
        bkt_check(strcmp(bk_dtype_name((bk_dtype)d), names[d]) == 0, "dtype name", "%s", names[d]);
    }
    bk_sku sku = {BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, BK_DTYPE_BF16, BK_ARCH_SM90, BK_BACKEND_BESPOKE};
    char buf[64];
    size_t n = bk_sku_name(&sku, buf, sizeof buf);
    bkt_check(strcmp(buf, "attention/sdpa_fwd/bf16/sm90/bespoke") == 0 && n == strlen(buf), "sku name", "\"%s\"", buf);
    char tiny[8];
    n = bk_sku_name(&sku, tiny, sizeof tiny);
    bkt_check(n == strlen("attention/sdpa_fwd/bf16/sm90/bespoke") && strlen(tiny) == 7, "sku name truncated",
              "n %zu, \"%s\"", n, tiny);
    for (int op = 0; op < BK_OP_COUNT; op++)
        bkt_check(strcmp(bk_op_name((bk_op)op), "?") != 0, "op names", "op %d has no name", op);
}

static void test_last_error(void)
{
    bk_status s = bk_fail(BK_STATUS_UNSUPPORTED, "op: thing is %d, expected %d", 3, 4);
    bkt_check(s == BK_STATUS_UNSUPPORTED && strcmp(bk_last_error(), "op: thing is 3, expected 4") == 0,
              "last error", "\"%s\"", bk_last_error());
    bk_clear_error();
    bkt_check(bk_last_error()[0] == '\0', "clear error", "\"%s\"", bk_last_error());
}

static void test_tensor_checks(void)
{
    float buf[64];
    int64_t shape[3] = {2, 3, 4};
    bk_tensor t = bk_tensor_contiguous(buf, BK_DTYPE_F32, 3, shape);
    bkt_check(bk_tensor_numel(&t) == 24 && t.capacity == 24 && t.strides[0] == 12 && t.strides[2] == 1,
              "tensor_contiguous", "numel %lld", (long long)bk_tensor_numel(&t));
    bkt_check(bk_tensor_is_contiguous(&t), "is_contiguous", "contiguous view rejected");
    bk_tensor_spec spec = {"x", BK_DTYPE_F32, 3, {2, 3, 4}, "batch,heads,dim", BK_LAYOUT_OUTPUT};
    bkt_expect_status(bk_check_tensor("op", &t, &spec), BK_STATUS_SUCCESS, "check_tensor ok");

    bk_tensor u = t;
    u.shape[1] = 5;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_INVALID_PROBLEM, "check_tensor shape");
    bkt_check(strcmp(bk_last_error(), "op: x.shape[1] is 5, expected heads = 3") == 0, "shape sentence", "\"%s\"",
              bk_last_error());
    u = t;
    u.dtype = BK_DTYPE_F16;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_INVALID_PROBLEM, "check_tensor dtype");
    u = t;
    u.capacity = 23;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_BUFFER_TOO_SMALL, "check_tensor capacity");
    u = t;
    u.capacity = 0; /* unknown: not checked */
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_SUCCESS, "check_tensor unknown capacity");
    u = t;
    u.strides[1] = 0;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_INVALID_PROBLEM, "output broadcast");
    bk_tensor_spec in = spec;
    in.layout = BK_LAYOUT_ANY;
    bkt_expect_status(bk_check_tensor("op", &u, &in), BK_STATUS_UNSUPPORTED, "input broadcast not allowed");
    in.layout = BK_LAYOUT_BROADCAST_AXIS(1);
    bkt_expect_status(bk_check_tensor("op", &u, &in), BK_STATUS_SUCCESS, "input broadcast allowed");
    u = t;
    u.strides[0] = 4; /* overlaps axis 1 (reach 2*4 + 3 = 11) */
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_INVALID_PROBLEM, "output overlap");
    u = t;
    u.strides[0] = 16;
    u.strides[1] = 5;
    u.capacity = 64;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_SUCCESS, "padded output");
    bk_tensor_spec contig = spec;
    contig.layout = BK_LAYOUT_CONTIGUOUS;
    bkt_expect_status(bk_check_tensor("op", &u, &contig), BK_STATUS_UNSUPPORTED, "contiguous required");
    u = t;
    u.strides[2] = 2;
    u.strides[1] = 8;
    u.strides[0] = 24;
    u.capacity = 64;
    bk_tensor_spec unit = spec;
    unit.layout = BK_LAYOUT_INNER_UNIT;
    bkt_expect_status(bk_check_tensor("op", &u, &unit), BK_STATUS_UNSUPPORTED, "inner stride 1 required");
    u = t;
    u.data = NULL;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_INVALID_PROBLEM, "NULL data");
    u.shape[0] = 0;
    spec.shape[0] = 0;
    bkt_expect_status(bk_check_tensor("op", &u, &spec), BK_STATUS_SUCCESS, "NULL data of an empty tensor");
    bkt_expect_status(bk_check_tensor("op", NULL, &spec), BK_STATUS_INVALID_PROBLEM, "NULL tensor");

    bkt_expect_status(bk_check_extent("op", "desc.n", -1, 0), BK_STATUS_INVALID_PROBLEM, "extent");
    bkt_expect_status(bk_check_finite("op", "desc.scale", INFINITY), BK_STATUS_INVALID_PROBLEM, "finite");
    bkt_expect_status(bk_check_dtype_in("op", "desc.dtype", BK_DTYPE_I32, BK_DT_FLOATS), BK_STATUS_UNSUPPORTED,
                      "dtype set");
    bkt_check(strcmp(bk_last_error(), "op: desc.dtype is i32, expected one of {f32, f64, f16, bf16}") == 0,
              "dtype sentence", "\"%s\"", bk_last_error());
}

static const char *rejects_odd(const void *desc)
{
    return (*(const int *)desc % 2) ? "odd sizes are not supported" : NULL;
}

static void test_select(void)
{
    const bk_precision fast = {BK_MATH_F16_BF16_TENSOR, BK_DTYPE_F32, false, false};
    const bk_kernel_entry table[] = {
        {10, BK_TARGET_CUDA, 90, 0, BK_ARCH_SM90, BK_DT_HALVES, BK_BACKEND_BESPOKE, fast, rejects_odd},
        {11, BK_TARGET_CUDA, 80, 0, BK_ARCH_SM80, BK_DT_FLOATS, BK_BACKEND_BESPOKE, BK_PRECISION_CPU_REFERENCE, NULL},
        {1, BK_TARGET_CPU, 0, 0, BK_ARCH_CPU, BK_DT_FLOATS, BK_BACKEND_REFERENCE, BK_PRECISION_CPU_REFERENCE, NULL},
    };
    bk_plan_info info;
    int even = 4, odd = 5;
    bk_target h100 = bk_target_cuda_cc(0, 9, 0), a100 = bk_target_cuda_cc(0, 8, 0), t4 = bk_target_cuda_cc(0, 7, 5);
    bkt_expect_status(bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &even, BK_DTYPE_BF16, h100,
                                       BK_PREFER_FASTEST, &info),
                      BK_STATUS_SUCCESS, "select sm90");
    bkt_check(info.kernel == 10 && info.sku.arch == BK_ARCH_SM90, "select sm90 picks the fastest", "kernel %d", info.kernel);
    bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &odd, BK_DTYPE_BF16, h100, BK_PREFER_FASTEST,
                     &info);
    bkt_check(info.kernel == 11, "select falls back when rejected", "kernel %d", info.kernel);
    bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &even, BK_DTYPE_BF16, h100,
                     BK_PREFER_DETERMINISTIC, &info);
    bkt_check(info.kernel == 11 && info.precision.deterministic, "select deterministic", "kernel %d", info.kernel);
    bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &even, BK_DTYPE_BF16, a100, BK_PREFER_FASTEST,
                     &info);
    bkt_check(info.kernel == 11, "select by compute capability", "kernel %d", info.kernel);
    bkt_expect_status(bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &even, BK_DTYPE_BF16, t4,
                                       BK_PREFER_FASTEST, &info),
                      BK_STATUS_UNSUPPORTED, "select below every capability");
    bkt_check(strstr(bk_last_error(), "sm_75") != NULL, "unsupported sentence names the target", "\"%s\"",
              bk_last_error());
    bk_select_kernel("op", BK_CATEGORY_ATTENTION, BK_OP_SDPA_FWD, table, 3, &even, BK_DTYPE_F32, bk_target_cpu(),
                     BK_PREFER_REFERENCE, &info);
    bkt_check(info.kernel == 1 && info.sku.backend == BK_BACKEND_REFERENCE && info.sku.dtype == BK_DTYPE_F32,
              "select cpu", "kernel %d", info.kernel);
    bkt_expect_status(bk_check_plan("sdpa_bwd", &info, BK_OP_SDPA_BWD), BK_STATUS_INVALID_PROBLEM, "plan of another op");
}

static void test_workspace(void)
{
    bk_carver m = bk_carver_start(NULL);
    bkt_check(bk_carve(&m, 10) == NULL, "carve measure", "non-NULL while measuring");
    bk_carve(&m, 300);
    bk_carve(&m, 1);
    size_t need = m.offset;
    bkt_check(need == 3 * BK_WS_ALIGN + 1, "carve size", "%zu", need);
    char buf[1024];
    bk_carver c = bk_carver_start(buf);
    char *a = bk_carve(&c, 10), *b = bk_carve(&c, 300), *d = bk_carve(&c, 1);
    bkt_check(a == buf && b == buf + BK_WS_ALIGN && d == buf + 3 * BK_WS_ALIGN && c.offset == need, "carve offsets",
              "%td %td %td", a - buf, b - buf, d - buf);
    bk_workspace ws = {buf, 100};
    bkt_expect_status(bk_check_workspace("op", &ws, 101), BK_STATUS_WORKSPACE_TOO_SMALL, "workspace too small");
    bkt_expect_status(bk_check_workspace("op", &ws, 100), BK_STATUS_SUCCESS, "workspace fits");
    ws.data = NULL;
    bkt_expect_status(bk_check_workspace("op", &ws, 1), BK_STATUS_INVALID_PROBLEM, "workspace NULL");
    bkt_expect_status(bk_check_workspace("op", &ws, 0), BK_STATUS_SUCCESS, "no workspace needed");
}

/* The checked arithmetic every count, reach and size goes through (issue 13). */
static void test_checked_arithmetic(void)
{
    const char *what = "checked arithmetic";
    int64_t r = 7;
    bkt_check(!bk_mul_overflows(INT32_MAX, INT32_MAX, &r) && r == (int64_t)INT32_MAX * INT32_MAX, what, "2^31-1 squared");
    bkt_check(bk_mul_overflows((int64_t)1 << 32, (int64_t)1 << 31, &r), what, "2^63 not caught");
    bkt_check(!bk_mul_overflows((int64_t)1 << 31, -((int64_t)1 << 32), &r) && r == INT64_MIN, what, "-2^63 fits");
    bkt_check(bk_mul_overflows(-1, INT64_MIN, &r), what, "-1 * INT64_MIN not caught");
    bkt_check(bk_mul_overflows(INT64_MIN, -1, &r), what, "INT64_MIN * -1 not caught");
    bkt_check(!bk_mul_overflows(0, INT64_MIN, &r) && r == 0, what, "0 * x");
    bkt_check(bk_add_overflows(INT64_MAX, 1, &r) && bk_add_overflows(INT64_MIN, -1, &r), what, "add overflow");
    bkt_check(!bk_add_overflows(INT64_MAX, -1, &r) && r == INT64_MAX - 1, what, "add");
    bkt_check(bk_mul_sat(INT32_MAX, INT32_MAX) == (int64_t)INT32_MAX * INT32_MAX, what, "mul_sat exact");
    bkt_check(bk_mul_sat(bk_mul_sat(INT32_MAX, INT32_MAX), INT32_MAX) == INT64_MAX, what, "mul_sat saturates");
    bkt_check(bk_mul_sat(INT64_MAX, 0) == 0 && bk_mul_sat(INT64_MAX, 1) == INT64_MAX, what, "mul_sat 0 and 1");
    bkt_check(bk_bytes(INT64_MAX, 1) == SIZE_MAX && bk_bytes(-1, 4) == SIZE_MAX, what, "bytes of saturated/negative");
    bkt_check(bk_bytes((int64_t)1 << 62, 8) == SIZE_MAX && bk_bytes(3, 8) == 24, what, "bytes");
    /* the carver saturates and stays saturated */
    bk_carver m = bk_carver_start(NULL);
    bk_carve(&m, 100);
    bk_carve(&m, SIZE_MAX);
    bk_carve(&m, 1);
    bkt_check(m.offset == SIZE_MAX, what, "carver after SIZE_MAX: %zu", m.offset);
    m = bk_carver_start(NULL);
    bk_carve(&m, SIZE_MAX - 10);
    bk_carve(&m, 100);
    bkt_check(m.offset == SIZE_MAX, what, "carver past size_t: %zu", m.offset);
    char buf[8];
    bk_workspace ws = {buf, SIZE_MAX};
    bkt_expect_status(bk_check_workspace("op", &ws, SIZE_MAX), BK_STATUS_INVALID_PROBLEM, "workspace need SIZE_MAX");
    /* views: counts, reaches and capacities */
    int64_t huge[4] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    bk_tensor t = bk_tensor_contiguous(buf, BK_DTYPE_F32, 4, huge);
    bkt_check(bk_tensor_numel(&t) == -1 && t.capacity == 0 && t.strides[0] == INT64_MAX, what,
              "contiguous 2^124: numel %lld capacity %lld stride %lld", (long long)bk_tensor_numel(&t),
              (long long)t.capacity, (long long)t.strides[0]);
    bk_tensor_spec spec = {"x", BK_DTYPE_F32, 4, {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX}, "a,b,c,d", BK_LAYOUT_ANY};
    bkt_expect_overflow(bk_check_tensor("op", &t, &spec), "op", "2^124 elements");
    int64_t s2[2] = {3, 4};
    bk_tensor v = bk_tensor_contiguous(buf, BK_DTYPE_F64, 2, s2);
    bk_tensor_spec s2spec = {"v", BK_DTYPE_F64, 2, {3, 4}, "a,b", BK_LAYOUT_ANY};
    v.strides[0] = INT64_MAX / 2;
    v.capacity = 0;
    bkt_expect_overflow(bk_check_tensor("op", &v, &s2spec), "op", "reach past int64 by a stride");
    v.strides[0] = (int64_t)1 << 61; /* reach fits in elements, not in bytes */
    bkt_check(bk_tensor_span(&v) > 0, what, "span of 2^62");
    bkt_expect_overflow(bk_check_tensor("op", &v, &s2spec), "op", "reach past int64 bytes");
    v = bk_tensor_contiguous(buf, BK_DTYPE_F64, 2, s2);
    v.capacity = -3;
    bkt_expect_status(bk_check_tensor("op", &v, &s2spec), BK_STATUS_INVALID_PROBLEM, "negative capacity");
    /* an empty view whose row offsets would overflow (found by fuzz_attention: kv_len 0
       with k.strides[0] = INT64_MAX made sdpa_bwd's CPU kernel overflow b * stride) */
    int64_t e3[3] = {3, 0, 2};
    bk_tensor ev = bk_tensor_contiguous(NULL, BK_DTYPE_F32, 3, e3);
    bk_tensor_spec espec = {"k", BK_DTYPE_F32, 3, {3, 0, 2}, "a,b,c", BK_LAYOUT_ANY};
    bkt_expect_status(bk_check_tensor("op", &ev, &espec), BK_STATUS_SUCCESS, "empty view");
    ev.strides[0] = INT64_MAX;
    bkt_expect_overflow(bk_check_tensor("op", &ev, &espec), "op", "empty view with row offsets past int64");
    ev.strides[0] = -1;
    bkt_expect_status(bk_check_tensor("op", &ev, &espec), BK_STATUS_INVALID_PROBLEM, "empty view, negative stride");
    int64_t neg[1] = {-5};
    bk_tensor n = bk_tensor_contiguous(buf, BK_DTYPE_I32, 1, neg);
    bk_tensor_spec nspec = {"idx", BK_DTYPE_I32, 1, {-5}, "n", BK_LAYOUT_ANY};
    bkt_expect_status(bk_check_tensor("op", &n, &nspec), BK_STATUS_INVALID_PROBLEM, "negative extent");
    bkt_check(strstr(bk_last_error(), "idx.shape[0] is -5") != NULL, what, "sentence \"%s\"", bk_last_error());
}

static void test_targets(void)
{
    bk_target t;
    bk_status s = bk_target_cuda(0, &t);
    if (!bk_has_cuda())
        bkt_expect_status(s, BK_STATUS_NO_DEVICE, "cuda target without the backend");
    else if (s == BK_STATUS_SUCCESS)
        bkt_check(t.kind == BK_TARGET_CUDA && t.cc_major >= 7, "cuda target", "cc %d.%d", t.cc_major, t.cc_minor);
    else
        bkt_expect_status(s, BK_STATUS_NO_DEVICE, "cuda target without a device");
    bkt_expect_status(bk_target_cuda(-1, &t), BK_STATUS_NO_DEVICE, "cuda target -1");
    bkt_expect_status(bk_target_cuda(0, NULL), BK_STATUS_INVALID_PROBLEM, "cuda target NULL out");
    bkt_check(bk_target_cpu().kind == BK_TARGET_CPU, "cpu target", "kind");
}

int main(void)
{
    bkt_init("test_core");
    test_half_formats();
    test_names();
    test_last_error();
    test_tensor_checks();
    test_select();
    test_workspace();
    test_checked_arithmetic();
    test_targets();
    return bkt_finish();
}
