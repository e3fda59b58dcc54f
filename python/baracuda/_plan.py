"""One generic plan/run wrapper for every op of the C API.

`Op(name)` wraps bk_<name>_select / _can_implement / _workspace_size / _run through the
op table of _capi: descriptors and args are filled from keyword arguments by walking the
ctypes structs (nested structs such as paged_kv are flattened: their fields are given
by name at the top level), so no op has marshalling code of its own.
"""
import ctypes as C
import collections
import sys

from . import _capi, _tensor
from .errors import InvalidProblem, check

lib = _capi.lib
_PREFERENCES = {"fastest": 0, "deterministic": 1, "reference": 2, "allow_tf32": 3}
_MATH = {0: "f64", 1: "f32", 2: "tf32", 3: "f16_bf16_tensor"}

Precision = collections.namedtuple("Precision", "math accumulator deterministic bit_stable")
Precision.__doc__ = """A plan's numerical guarantee: math precision ("f64", "f32", "tf32",
"f16_bf16_tensor"), accumulator dtype name, deterministic (bit-identical reruns) and
bit_stable (the same across processes on the same hardware)."""

_cuda_targets = {}


def target(device="cpu"):
    """The bk_target of `device`: "cpu", "cuda", "cuda:N", an int N (CUDA device N), a
    torch.device, or a bk_target (returned as is). CUDA targets read the device's compute
    capability once per process (NoDevice when there is no such device or the library
    was built without CUDA)."""
    if isinstance(device, _capi.Target):
        return device
    if isinstance(device, int):
        kind, index = "cuda", device
    else:
        kind, _, index = str(device).partition(":")
        index = int(index) if index else 0
    if kind == "cpu":
        return lib.bk_target_cpu()
    if kind != "cuda":
        raise InvalidProblem("device %r: expected 'cpu', 'cuda' or 'cuda:N'" % (device,))
    if index not in _cuda_targets:
        t = _capi.Target()
        check(lib.bk_target_cuda(index, C.byref(t)), lib)
        _cuda_targets[index] = t
    return _cuda_targets[index]


def target_cuda_cc(cc_major, cc_minor, device=0):
    """A CUDA target for a given compute capability without touching any device
    (bk_target_cuda_cc): for planning ahead and tools."""
    return lib.bk_target_cuda_cc(device, cc_major, cc_minor)


def _is_tensor_field(ctype):
    return ctype is _capi.Tensor or ctype is _capi.TensorPtr


def _fill(struct_t, values, convert, used):
    """A `struct_t` whose fields come from `values` (flat by field name) through
    `convert(name, ctype, value)`; nested structs are filled from the same dict. Fields
    that are absent stay zero / NULL. Names taken are added to `used`."""
    out = struct_t()
    for name, ctype in struct_t._fields_:
        if issubclass(ctype, C.Structure) and ctype is not _capi.Tensor:
            setattr(out, name, _fill(ctype, values, convert, used))
        elif name in values:
            used.add(name)
            converted = convert(name, ctype, values[name])
            if converted is not None:
                setattr(out, name, converted)
    return out


def _to_dict(struct):
    """A descriptor struct as a flat {field: value} dict (dtype as its name)."""
    out = {}
    for name, ctype in type(struct)._fields_:
        value = getattr(struct, name)
        if isinstance(value, C.Structure):
            out.update(_to_dict(value))
        else:
            out[name] = _tensor.DTYPE_NAMES.get(value, value) if name == "dtype" else value
    return out


class Op:
    """One op of the C API: `plan(...)` runs select. See `Op.plan`."""

    def __init__(self, name):
        self.name = name
        self.desc_t, self.args_t, self.defaults = _capi.OPS[name]
        self.plan_t = _capi.PLANS[name]
        self._select = getattr(lib, "bk_%s_select" % name)
        self._can_implement = getattr(lib, "bk_%s_can_implement" % name)
        self._workspace_size = getattr(lib, "bk_%s_workspace_size" % name)
        self._run = getattr(lib, "bk_%s_run" % name)
        self.desc_fields = [n for n, _ in _flat_fields(self.desc_t)]
        self.arg_fields = [n for n, _ in _flat_fields(self.args_t)]
        self._cache = {}
        self.__doc__ = "baracuda.%s: plan(%s, device='cpu', preference='fastest') -> Plan; " \
                       "Plan.run(%s, workspace=None, stream=None)" % (
                           name, ", ".join(self.desc_fields), ", ".join(self.arg_fields))

    def __repr__(self):
        return "<baracuda op %s>" % self.name

    def plan(self, device="cpu", preference="fastest", **desc):
        """Validates the descriptor and selects a kernel (bk_<op>_select): the keyword
        arguments are the descriptor's fields (nested ones such as paged_kv's by their own
        names; `dtype` as a name, torch or numpy dtype), `device` the target ("cpu",
        "cuda:N", or a target from target_cuda_cc), `preference` one of "fastest",
        "deterministic", "reference", "allow_tf32" (BK_PREFER_ALLOW_TF32: as "fastest", and
        f32 may run on tensor cores in TF32 where an op has such a kernel, today ssd_fwd and
        ssd_bwd on CUDA; the plan's precision.math then says "tf32"). Returns a Plan (cached: the same problem gives the
        same Plan object). Raises InvalidProblem / Unsupported / NoDevice."""
        full = dict(self.defaults)
        full.update(desc)
        where = (device.kind, device.device, device.cc_major, device.cc_minor) if isinstance(device, _capi.Target) \
            else str(device)
        key = (tuple(sorted(full.items(), key=lambda kv: kv[0])), where, preference)
        try:
            cached = self._cache.get(key)
        except TypeError:  # an unhashable field value: no caching
            key, cached = None, None
        if cached is not None:
            return cached
        used = set()
        c_desc = _fill(self.desc_t, full, self._convert_field, used)
        missing = [f for f in self.desc_fields if f not in used]
        unknown = [f for f in full if f not in used]
        if missing or unknown:
            raise InvalidProblem("%s: descriptor fields %s%s; expected %s" % (
                self.name, "missing " + ", ".join(missing) if missing else "",
                (" " if missing else "") + ("unknown " + ", ".join(unknown) if unknown else ""),
                ", ".join(self.desc_fields)))
        if preference not in _PREFERENCES:
            raise InvalidProblem("%s: preference %r, expected one of %s" % (self.name, preference,
                                                                              ", ".join(_PREFERENCES)))
        c_plan = self.plan_t()
        check(self._select(C.byref(c_desc), target(device), _PREFERENCES[preference], C.byref(c_plan)), lib)
        plan = Plan(self, c_plan)
        if key is not None:
            self._cache[key] = plan
        return plan

    def _convert_field(self, name, ctype, value):
        """A descriptor value as its C field wants it (InvalidProblem when it is not one)."""
        if name == "dtype":
            return _tensor.dtype_code(value)
        try:
            if ctype is C.c_double:
                return float(value)
            if ctype is C.c_bool:
                return bool(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidProblem("%s: desc.%s is %r, expected %s" % (
                self.name, name, value, "a number" if ctype is C.c_double else "an integer")) from None
        if not -2 ** 31 <= number < 2 ** 31:
            raise InvalidProblem("%s: desc.%s is %d, outside int32" % (self.name, name, number))
        return number


class Plan:
    """A selected kernel for one problem (a plain value, like the C plan it wraps).
    Read `op`, `sku`, `precision`, `workspace_size`, `desc` (dict) and `device`; call
    `run(...)` with the tensors, or `can_implement(...)` to check them only."""

    def __init__(self, op, c_plan):
        self.op, self.c = op, c_plan
        buf = C.create_string_buffer(128)
        lib.bk_sku_name(C.byref(c_plan.info.sku), buf, len(buf))
        self.sku = buf.value.decode()
        p = c_plan.info.precision
        self.precision = Precision(_MATH.get(p.math, str(p.math)), _tensor.DTYPE_NAMES.get(p.accumulator),
                                   bool(p.deterministic), bool(p.bit_stable))
        self.workspace_size = int(op._workspace_size(C.byref(c_plan)))
        t = c_plan.info.target
        self.device = "cpu" if t.kind == 0 else "cuda:%d" % t.device
        self.desc = _to_dict(c_plan.desc)

    def __repr__(self):
        return "<baracuda plan %s, workspace %d bytes, %s>" % (self.sku, self.workspace_size, self.precision)

    def _args(self, tensors, stream):
        """The C args struct over views of `tensors`, and the views (kept alive)."""
        name = self.op.name
        unknown = [k for k in tensors if k not in self.op.arg_fields]
        if unknown:
            raise InvalidProblem("%s: unknown tensor argument %s; expected %s" % (
                name, ", ".join(unknown), ", ".join(self.op.arg_fields)))
        views = {}
        expected = ("cpu", 0) if self.c.info.target.kind == 0 else ("cuda", self.c.info.target.device)

        def convert(field, ctype, value):
            if value is None:
                return None
            v = _tensor.view(value, stream=stream)
            if v.device != expected and not (expected[0] == "cpu" and v.device[0] == "cpu"):
                raise InvalidProblem("%s: %s is on %s:%d, the plan runs on %s" % (
                    name, field, v.device[0], v.device[1], self.device))
            views[field] = v
            return v.c if ctype is _capi.Tensor else C.pointer(v.c)

        c_args = _fill(self.op.args_t, tensors, convert, set())
        absent = [f for f, t in _flat_fields(self.op.args_t) if t is _capi.Tensor and f not in views]
        if absent:
            raise InvalidProblem("%s: missing tensor %s" % (name, ", ".join(absent)))
        return c_args, views

    def can_implement(self, **tensors):
        """Checks the tensors against the plan (bk_<op>_can_implement) without running;
        raises the library's error, returns None when they fit."""
        c_args, views = self._args(tensors, None)
        check(self.op._can_implement(C.byref(self.c), C.byref(c_args)), lib)

    def run(self, workspace=None, stream=None, **tensors):
        """Runs the plan on the tensors (keyword arguments named as the C args fields; an
        optional tensor left out or None is absent). Any DLPack tensor (torch, numpy,
        cupy) is read in place with its strides. On CUDA the work is queued on `stream`
        (an int handle, a torch/cupy stream object) or, when None, on torch's current
        stream if the tensors are torch's, cupy's current stream for cupy arrays, else
        the default stream. `workspace` is any tensor of at least workspace_size bytes
        on the plan's device; when None, one is allocated (torch when the tensors are
        torch's, else host memory / cupy). Raises the library's error, with nothing
        written, when the tensors do not fit the plan."""
        handle = _stream_handle(self, stream, tensors)
        c_args, views = self._args(tensors, handle if handle else None)
        ws, keep = self._workspace(workspace, views)
        check(self.op._run(C.byref(self.c), C.c_void_p(handle), ws, C.byref(c_args)), lib)
        del keep

    def _workspace(self, workspace, views):
        """The bk_workspace for a run, and the object that owns its memory."""
        need = self.workspace_size
        if workspace is not None:
            data, nbytes, owner = _tensor.buffer(workspace)
            return _capi.Workspace(data, nbytes), owner
        if need == 0:
            return _capi.Workspace(None, 0), None
        first = next(iter(views.values()))
        if first.torch:
            buf = sys.modules["torch"].empty(need, dtype=sys.modules["torch"].uint8, device=first.owner.device)
            return _capi.Workspace(buf.data_ptr(), need), buf
        if self.c.info.target.kind == 0:
            buf = C.create_string_buffer(need)
            return _capi.Workspace(C.addressof(buf), need), buf
        if "cupy" in sys.modules:
            buf = sys.modules["cupy"].empty(need, dtype="uint8")
            return _capi.Workspace(buf.data.ptr, need), buf
        raise InvalidProblem("%s: needs a %d-byte device workspace; pass workspace= (a device buffer)"
                             % (self.op.name, need))


def _flat_fields(struct_t):
    """[(name, ctype)] of `struct_t` with nested structs flattened."""
    out = []
    for name, ctype in struct_t._fields_:
        if issubclass(ctype, C.Structure) and ctype is not _capi.Tensor:
            out += _flat_fields(ctype)
        else:
            out.append((name, ctype))
    return out


def _stream_handle(plan, stream, tensors):
    """The cudaStream_t (an int, 0 = default) a run goes on; 0 for CPU plans."""
    if plan.c.info.target.kind == 0:
        return 0
    if stream is not None:
        for attr in ("cuda_stream", "ptr"):
            if hasattr(stream, attr):
                return int(getattr(stream, attr))
        return int(stream)
    for t in tensors.values():
        if t is None:
            continue
        if _tensor.is_torch(t):
            return sys.modules["torch"].cuda.current_stream(t.device).cuda_stream
        if type(t).__module__.startswith("cupy"):
            return sys.modules["cupy"].cuda.get_current_stream().ptr
    return 0
