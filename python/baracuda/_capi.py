"""The C API seen from Python: the ctypes mirror of every public struct of
include/baracuda/*.h (the one place they are declared), the op table, and the loading of
libbaracuda.so with the prototypes of every function the package calls.

A struct here lists its fields in the header's order with the header's types (C enums
are `int`, `bool` is `c_bool`); python/tests/test_layout.py compiles the headers and
checks every size and offset against this file.
"""
import ctypes as C
import glob
import os

MAX_RANK = 6  # BK_MAX_RANK

_i32, _i64, _f64, _bool, _enum = C.c_int32, C.c_int64, C.c_double, C.c_bool, C.c_int


def _struct(name, fields):
    """A ctypes.Structure subclass `name` with `fields` [(name, ctype), ...]."""
    return type(name, (C.Structure,), {"_fields_": fields})


def _ints(*names, t=_i32):
    """[(name, t), ...] for a run of same-typed fields."""
    return [(n, t) for n in names]


# ------------------------------------------------------------------- baracuda.h --
Tensor = _struct("bk_tensor", [("data", C.c_void_p), ("dtype", _enum), ("rank", _i32),
                               ("shape", _i64 * MAX_RANK), ("strides", _i64 * MAX_RANK),
                               ("capacity", _i64)])
TensorPtr = C.POINTER(Tensor)
Target = _struct("bk_target", [("kind", _enum)] + _ints("device", "cc_major", "cc_minor"))
Sku = _struct("bk_sku", _ints("category", "op", "dtype", "arch", "backend", t=_enum))
Precision = _struct("bk_precision", [("math", _enum), ("accumulator", _enum),
                                     ("deterministic", _bool), ("bit_stable", _bool)])
Workspace = _struct("bk_workspace", [("data", C.c_void_p), ("bytes", C.c_size_t)])
PlanInfo = _struct("bk_plan_info", [("target", Target), ("preference", _enum), ("sku", Sku),
                                    ("precision", Precision), ("kernel", _i32)])


def _tensors(*names):
    """Required tensor fields (bk_tensor)."""
    return [(n, Tensor) for n in names]


def _optional(*names):
    """Optional tensor fields (const bk_tensor *, NULL = absent)."""
    return [(n, TensorPtr) for n in names]


# ------------------------------------------------------------------ attention.h --
SdpaDesc = _struct("bk_sdpa_fwd_desc",
                   _ints("batch", "q_heads", "kv_heads", "q_len", "kv_len", "head_dim_qk", "head_dim_v")
                   + [("scale", _f64), ("causal", _bool), ("window_left", _i32), ("softcap", _f64),
                      ("alibi", _bool), ("dtype", _enum)])
SdpaFwdArgs = _struct("bk_sdpa_fwd_args", _tensors("q", "k", "v", "y") + _optional("lse", "alibi_slopes"))
SdpaBwdArgs = _struct("bk_sdpa_bwd_args", _tensors("q", "k", "v", "y", "dy", "lse")
                      + _optional("alibi_slopes") + _tensors("dq", "dk", "dv"))

# ---------------------------------------------------------------------- paged.h --
PagedKvDesc = _struct("bk_paged_kv_desc", _ints("num_pages", "kv_heads", "page_size", "head_dim")
                      + [("dtype", _enum)])
PagedKv = _struct("bk_paged_kv", _tensors("k_pages", "v_pages", "kv_indices", "kv_indptr", "last_page_len"))
PagedDecodeDesc = _struct("bk_paged_decode_desc", _ints("batch", "q_heads") + [("scale", _f64)]
                          + _ints("kv_splits") + [("paged_kv", PagedKvDesc)] + _ints("q_rows_per_request"))
PagedDecodeArgs = _struct("bk_paged_decode_args", _tensors("q") + [("kv", PagedKv)] + _tensors("o")
                          + _optional("lse"))
PagedPrefillDesc = _struct("bk_paged_prefill_desc", _ints("batch", "total_rows", "q_heads")
                           + [("scale", _f64), ("causal", _bool), ("enable_kv_split", _bool),
                              ("paged_kv", PagedKvDesc)])
PagedPrefillArgs = _struct("bk_paged_prefill_args", _tensors("q", "q_indptr") + [("kv", PagedKv)]
                           + _tensors("o") + _optional("lse"))
MergeDesc = _struct("bk_attention_merge_desc", _ints("rows", "parts", "heads", "head_dim")
                    + [("dtype", _enum)])
MergeArgs = _struct("bk_attention_merge_args", _tensors("o_parts", "lse_parts", "o") + _optional("lse"))

# -------------------------------------------------------------------- kvcache.h --
KvAppendDesc = _struct("bk_kv_append_desc", _ints("batch", "heads", "new_len", "max_cache_len",
                                                  "head_dim_k", "head_dim_v") + [("dtype", _enum)])
KvAppendArgs = _struct("bk_kv_append_args", _tensors("k_new", "v_new", "cache_offsets", "k_cache", "v_cache")
                       + _optional("dropped_rows"))
PagedKvAppendDesc = _struct("bk_paged_kv_append_desc", _ints("batch", "nnz") + [("paged_kv", PagedKvDesc)])
PagedKvAppendArgs = _struct("bk_paged_kv_append_args", _tensors("k_new", "v_new", "append_indptr")
                            + [("kv", PagedKv)] + _optional("dropped_rows"))

# ---------------------------------------------------------------------- alibi.h --
AlibiDesc = _struct("bk_alibi_fwd_desc", _ints("batch", "heads", "query_len", "key_len") + [("dtype", _enum)])
AlibiFwdArgs = _struct("bk_alibi_fwd_args", _tensors("scores", "slopes", "y"))
AlibiBwdArgs = _struct("bk_alibi_bwd_args", _tensors("dy") + _optional("dscores", "dslopes"))

# ------------------------------------------------------------------------ ssd.h --
# the dt options shared by the scan and the step descriptors
_SSD_OPTIONS = (_ints("ngroups") + [("skip", _enum)]
                + _ints("has_z", "has_dt_bias", "dt_softplus", "has_dt_limit", t=_bool)
                + [("dt_min", _f64), ("dt_max", _f64)])
SsdDesc = _struct("bk_ssd_desc", _ints("batch", "seq_len", "heads", "head_dim", "state_dim", "chunk_size")
                  + [("dtype", _enum)] + _SSD_OPTIONS
                  + _ints("has_initial_states", "has_final_states", "has_seq_idx", t=_bool)
                  + _ints("n_varlen_seqs"))
SsdFwdArgs = _struct("bk_ssd_fwd_args", _tensors("x", "dt", "a", "b", "c", "y")
                     + _optional("skip", "z", "dt_bias", "initial_states", "seq_idx", "cu_seqlens",
                                 "final_states", "varlen_states"))
SsdBwdArgs = _struct("bk_ssd_bwd_args", _tensors("x", "dt", "a", "b", "c", "dy", "dx", "ddt", "da", "db", "dc")
                     + _optional("skip", "z", "dt_bias", "initial_states", "seq_idx", "dfinal_states",
                                 "dskip", "dz", "ddt_bias", "dinitial_states"))
SsdStepDesc = _struct("bk_ssd_step_desc", _ints("batch", "pool", "heads", "head_dim", "state_dim")
                      + [("dtype", _enum)] + _SSD_OPTIONS + _ints("has_state_indices", t=_bool))
SsdStepArgs = _struct("bk_ssd_step_args", _tensors("state", "x", "dt", "a", "b", "c", "y")
                      + _optional("skip", "z", "dt_bias", "state_indices", "dropped_requests"))

# every SSD option off (mamba_ssm's defaults): per-head B/C, no skip, gate, bias, clamp
_SSD_OPTION_DEFAULTS = {"ngroups": 0, "skip": 0, "has_z": False, "has_dt_bias": False, "dt_softplus": False,
                        "has_dt_limit": False, "dt_min": 0.0, "dt_max": 0.0}
_SSD_SCAN_DEFAULTS = dict(_SSD_OPTION_DEFAULTS, has_initial_states=False, has_final_states=False,
                          has_seq_idx=False, n_varlen_seqs=0)

# -------------------------------------------------------------------- op table --
# op name -> (descriptor struct, args struct, descriptor defaults). The plan struct of
# every op is {desc, info}; the functions are bk_<op>_select / _can_implement /
# _workspace_size / _run.
OPS = {
    "sdpa_fwd": (SdpaDesc, SdpaFwdArgs, {"causal": False, "window_left": -1, "softcap": 0.0, "alibi": False}),
    "sdpa_bwd": (SdpaDesc, SdpaBwdArgs, {"causal": False, "window_left": -1, "softcap": 0.0, "alibi": False}),
    "kv_append": (KvAppendDesc, KvAppendArgs, {}),
    "paged_kv_append": (PagedKvAppendDesc, PagedKvAppendArgs, {}),
    "paged_decode": (PagedDecodeDesc, PagedDecodeArgs, {"kv_splits": 0, "q_rows_per_request": 0}),
    "paged_prefill": (PagedPrefillDesc, PagedPrefillArgs, {"causal": False, "enable_kv_split": False}),
    "attention_merge": (MergeDesc, MergeArgs, {}),
    "alibi_fwd": (AlibiDesc, AlibiFwdArgs, {}),
    "alibi_bwd": (AlibiDesc, AlibiBwdArgs, {}),
    "ssd_fwd": (SsdDesc, SsdFwdArgs, _SSD_SCAN_DEFAULTS),
    "ssd_bwd": (SsdDesc, SsdBwdArgs, _SSD_SCAN_DEFAULTS),
    "ssd_step": (SsdStepDesc, SsdStepArgs, dict(_SSD_OPTION_DEFAULTS, has_state_indices=False)),
}
PLANS = {name: _struct("bk_%s_plan" % name, [("desc", d), ("info", PlanInfo)]) for name, (d, _, _) in OPS.items()}


# ------------------------------------------------------------------- the library --
def library_path():
    """Path of the libbaracuda.so the package loads: $BARACUDA_LIBRARY when set, else
    the copy installed beside this module (baracuda/lib/libbaracuda.so.<major>)."""
    env = os.environ.get("BARACUDA_LIBRARY")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
    found = sorted(glob.glob(os.path.join(here, "libbaracuda.so*")), key=len)
    if not found:
        raise ImportError("baracuda: no libbaracuda.so in %s; install the package with `pip install .` "
                          "from the repository, or point BARACUDA_LIBRARY at a built libbaracuda.so" % here)
    return found[0]


def _load():
    """Loads the library and declares the prototypes of the functions the package calls."""
    lib = C.CDLL(library_path())
    P = C.POINTER
    protos = {
        "bk_status_name": (C.c_char_p, [_enum]),
        "bk_last_error": (C.c_char_p, []),
        "bk_dtype_name": (C.c_char_p, [_enum]),
        "bk_target_cpu": (Target, []),
        "bk_target_cuda": (_enum, [_i32, P(Target)]),
        "bk_target_cuda_cc": (Target, [_i32, _i32, _i32]),
        "bk_has_cuda": (_bool, []),
        "bk_sku_name": (C.c_size_t, [P(Sku), C.c_char_p, C.c_size_t]),
        "bk_alibi_slopes": (_enum, [_i32, _f64, P(_f64)]),
    }
    for name, (desc_t, args_t, _) in OPS.items():
        plan_p = P(PLANS[name])
        protos["bk_%s_select" % name] = (_enum, [P(desc_t), Target, _enum, plan_p])
        protos["bk_%s_can_implement" % name] = (_enum, [plan_p, P(args_t)])
        protos["bk_%s_workspace_size" % name] = (C.c_size_t, [plan_p])
        protos["bk_%s_run" % name] = (_enum, [plan_p, C.c_void_p, Workspace, P(args_t)])
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


lib = _load()
