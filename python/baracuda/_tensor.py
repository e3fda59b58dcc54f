"""Any tensor in, a bk_tensor view out: no copy, strides kept.

Three producers are read:
  - PyTorch tensors, through their attributes (data_ptr, stride, storage size): no
    capsule per call, and safe inside CUDA-graph capture;
  - NumPy arrays (and anything with __array_interface__), whose byte strides become
    element strides;
  - any other DLPack producer (CuPy, JAX, ...), through __dlpack__: the capsule's
    DLManagedTensor is read in place, and the capsule (whose destructor calls the
    producer's deleter) is kept alive by the view until the call is done.
"""
import ctypes as C
import sys

from . import _capi
from .errors import InvalidProblem, Unsupported

# bk_dtype values and the names they are accepted under (torch and numpy spellings).
DTYPES = {"f32": 0, "f64": 1, "f16": 2, "bf16": 3, "i32": 4, "i64": 5}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_ALIASES = {"float32": "f32", "float": "f32", "float64": "f64", "double": "f64", "float16": "f16",
            "half": "f16", "bfloat16": "bf16", "int32": "i32", "int": "i32", "int64": "i64", "long": "i64"}
_SIZES = {0: 4, 1: 8, 2: 2, 3: 2, 4: 4, 5: 8}
# DLPack (code, bits) -> bk_dtype
_DL_DTYPES = {(2, 32): 0, (2, 64): 1, (2, 16): 2, (4, 16): 3, (0, 32): 4, (0, 64): 5}
# numpy typestr kind+size -> bk_dtype
_NP_DTYPES = {"f4": 0, "f8": 1, "f2": 2, "i4": 4, "i8": 5}
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13


def dtype_code(dtype):
    """The bk_dtype value of `dtype`: an int, a name ("bf16", "bfloat16", "float32"), a
    torch dtype (torch.float16) or a numpy dtype. Raises Unsupported for anything else."""
    if isinstance(dtype, int) and dtype in DTYPE_NAMES:
        return dtype
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch."):]
    elif not isinstance(dtype, str) and "numpy" in sys.modules:
        try:
            name = sys.modules["numpy"].dtype(dtype).name
        except TypeError:
            pass
    name = _ALIASES.get(name, name)
    if name not in DTYPES:
        raise Unsupported("dtype %r is not one of baracuda's (f32, f64, f16, bf16, i32, i64)" % (dtype,))
    return DTYPES[name]


def is_torch(obj):
    """True for a torch.Tensor (without importing torch)."""
    mod = type(obj).__module__
    return (mod == "torch" or mod.startswith("torch.")) and hasattr(obj, "data_ptr")


class View:
    """A bk_tensor over a producer's memory. `c` is the bk_tensor; `device` is
    ("cpu", 0) or ("cuda", index); `owner` keeps the producer (and capsule) alive."""

    __slots__ = ("c", "device", "owner", "torch")

    def __init__(self, data, dtype, shape, strides, capacity, device, owner, torch=False):
        if len(shape) > _capi.MAX_RANK:
            raise InvalidProblem("tensor of rank %d, baracuda takes rank <= %d" % (len(shape), _capi.MAX_RANK))
        c = _capi.Tensor()
        c.data, c.dtype, c.rank, c.capacity = data, dtype, len(shape), capacity
        for i, (n, s) in enumerate(zip(shape, strides)):
            c.shape[i], c.strides[i] = n, s
        self.c, self.device, self.owner, self.torch = c, device, owner, torch

    @property
    def nbytes(self):
        """Bytes the view spans from its first element (used for workspaces)."""
        if self.c.capacity:
            return self.c.capacity * _SIZES[self.c.dtype]
        n = 1
        for i in range(self.c.rank):
            n *= self.c.shape[i]
        return n * _SIZES[self.c.dtype]


def _contiguous_strides(shape):
    """Row-major element strides of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return strides[::-1]


def _retype(dtype, natural, what):
    """The bk_dtype of a view: the producer's (`natural`) or a same-width override
    (`dtype`, e.g. "bf16" over a uint16 numpy array)."""
    if dtype is None:
        if natural is None:
            raise Unsupported("%s: element type not supported by baracuda" % what)
        return natural
    code = dtype_code(dtype)
    if natural is not None and _SIZES[natural] != _SIZES[code]:
        raise InvalidProblem("%s: cannot view %s elements as %s" % (what, DTYPE_NAMES[natural], DTYPE_NAMES[code]))
    return code


def _from_torch(t, dtype):
    """View of a torch tensor (any device)."""
    natural = DTYPES.get(_ALIASES.get(str(t.dtype)[6:], ""))
    code = _retype(dtype, natural, "torch tensor of %s" % t.dtype)
    dev = t.device
    device = ("cuda", dev.index or 0) if dev.type == "cuda" else (dev.type, 0)
    try:
        capacity = t.untyped_storage().nbytes() // t.element_size() - t.storage_offset()
    except (RuntimeError, NotImplementedError):
        capacity = 0
    return View(t.data_ptr(), code, tuple(t.shape), tuple(t.stride()), max(capacity, 0), device, t, torch=True)


def _from_array_interface(a, dtype):
    """View of a numpy array (or any __array_interface__ exporter; host memory)."""
    ai = a.__array_interface__
    typestr = ai["typestr"]
    if typestr[0] not in "<|=":
        raise Unsupported("array of byte order %r: baracuda reads native little-endian data" % typestr)
    itemsize = int(typestr[2:])
    code = _retype(dtype, _NP_DTYPES.get(typestr[1:]), "array of type %s" % typestr)
    shape = tuple(ai["shape"])
    if ai.get("strides") is None:
        strides = _contiguous_strides(shape)
    else:
        if any(s % itemsize for s in ai["strides"]):
            raise Unsupported("array strides %s are not whole elements" % (ai["strides"],))
        strides = [s // itemsize for s in ai["strides"]]
    return View(ai["data"][0], code, shape, strides, _owned_capacity(a, ai["data"][0], itemsize), ("cpu", 0), a)


def _owned_capacity(a, ptr, itemsize):
    """Elements addressable from `ptr` in the numpy array that owns `a`'s memory (found
    through the .base chain), so views reaching past it are refused; 0 = unknown."""
    owner = a
    while getattr(owner, "base", None) is not None:
        owner = owner.base
    np = sys.modules.get("numpy")
    if np is None or not isinstance(owner, np.ndarray) or not owner.flags.c_contiguous:
        return 0
    start = owner.__array_interface__["data"][0]
    if not start <= ptr <= start + owner.nbytes:
        return 0
    return (start + owner.nbytes - ptr) // itemsize


def buffer(obj):
    """(address, bytes, owner) of a contiguous buffer of any element type (a torch
    tensor, a numpy array, a cupy array): what a workspace is made of."""
    if isinstance(obj, View):
        return obj.c.data, obj.nbytes, obj
    if is_torch(obj):
        return obj.data_ptr(), obj.numel() * obj.element_size(), obj
    for attr in ("__array_interface__", "__cuda_array_interface__"):
        ai = getattr(obj, attr, None)
        if ai is not None:
            n = int(ai["typestr"][2:])
            for e in ai["shape"]:
                n *= e
            return ai["data"][0], n, obj
    raise InvalidProblem("cannot use a %s as a workspace: expected a torch tensor or an array" % type(obj).__name__)


class _DLDevice(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class _DLDataType(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class _DLTensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("device", _DLDevice), ("ndim", C.c_int32), ("dtype", _DLDataType),
                ("shape", C.POINTER(C.c_int64)), ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]


class _DLManagedTensor(C.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", C.c_void_p), ("deleter", C.c_void_p)]


_capsule_pointer = C.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype, _capsule_pointer.argtypes = C.c_void_p, [C.py_object, C.c_char_p]


def _from_dlpack(obj, dtype, stream):
    """View of any DLPack producer. `stream` is the consumer stream handed to
    __dlpack__ (for CUDA producers; None for host ones)."""
    dev_type, dev_id = obj.__dlpack_device__()
    cuda = dev_type in (_DL_CUDA, _DL_CUDA_MANAGED)
    capsule = obj.__dlpack__(stream=stream) if cuda else obj.__dlpack__()
    managed = _DLManagedTensor.from_address(_capsule_pointer(capsule, b"dltensor"))
    t = managed.dl_tensor
    if t.dtype.lanes != 1:
        raise Unsupported("DLPack tensor with %d lanes" % t.dtype.lanes)
    natural = _DL_DTYPES.get((t.dtype.code, t.dtype.bits))
    code = _retype(dtype, natural, "DLPack tensor of type code %d, %d bits" % (t.dtype.code, t.dtype.bits))
    shape = tuple(t.shape[i] for i in range(t.ndim))
    strides = tuple(t.strides[i] for i in range(t.ndim)) if t.strides else _contiguous_strides(shape)
    device = ("cuda", int(dev_id)) if cuda else ("cpu", 0) if dev_type in (_DL_CPU, _DL_CUDA_HOST) else \
        ("dlpack device %d" % dev_type, int(dev_id))
    return View((t.data or 0) + t.byte_offset, code, shape, strides, 0, device, (obj, capsule))


def view(obj, dtype=None, stream=None):
    """A bk_tensor view of `obj` (torch tensor, numpy array, any DLPack producer, or a
    View, returned as is). `dtype` reinterprets same-width elements (e.g. "bf16" over
    uint16 data). `stream` is passed to a CUDA producer's __dlpack__."""
    if isinstance(obj, View):
        return obj if dtype is None else View(obj.c.data, _retype(dtype, obj.c.dtype, "view"),
                                              tuple(obj.c.shape[:obj.c.rank]), tuple(obj.c.strides[:obj.c.rank]),
                                              obj.c.capacity, obj.device, obj.owner, obj.torch)
    if is_torch(obj):
        return _from_torch(obj, dtype)
    if hasattr(obj, "__array_interface__"):
        return _from_array_interface(obj, dtype)
    if hasattr(obj, "__dlpack__"):
        return _from_dlpack(obj, dtype, stream)
    raise InvalidProblem("cannot read a %s as a tensor: expected a DLPack tensor (torch, numpy, cupy...)"
                         % type(obj).__name__)
