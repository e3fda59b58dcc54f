"""Exceptions: one class per bk_status, all under baracuda.Error, carrying the library's
sentence (bk_last_error()) as their message."""
import ctypes as C


class Error(Exception):
    """Base of every baracuda failure. `status` is the bk_status value (an int),
    `status_name` its name ("BK_STATUS_UNSUPPORTED"); str(e) is the library's sentence,
    e.g. "sdpa_fwd: k.shape[2] is 100, expected kv_len = 128"."""

    status = -1
    status_name = "BK_STATUS_UNKNOWN"


def _status_error(name, status, builtin, doc):
    """The Error subclass of one bk_status value, also a subclass of the builtin
    exception it resembles (so `except ValueError` catches a bad shape)."""
    return type(name, (Error, builtin), {"status": status, "status_name": "BK_STATUS_" + doc.split(":")[0],
                                         "__doc__": "BK_STATUS_" + doc, "__module__": __name__})


InvalidProblem = _status_error("InvalidProblem", 1, ValueError,
                               "INVALID_PROBLEM: inconsistent extents or shapes, NULL pointer, non-finite scale, "
                               "malformed index data (also: a tensor on the wrong device, a missing field).")
Unsupported = _status_error("Unsupported", 2, NotImplementedError,
                            "UNSUPPORTED: a valid problem this target does not implement.")
BufferTooSmall = _status_error("BufferTooSmall", 3, ValueError,
                               "BUFFER_TOO_SMALL: a tensor's capacity is below what its view reaches.")
WorkspaceTooSmall = _status_error("WorkspaceTooSmall", 4, ValueError,
                                  "WORKSPACE_TOO_SMALL: the workspace is smaller than the plan's workspace_size.")
OutOfRange = _status_error("OutOfRange", 5, IndexError,
                           "OUT_OF_RANGE: a data-dependent index or offset outside its buffer.")
DeviceError = _status_error("DeviceError", 6, RuntimeError, "DEVICE_ERROR: the CUDA runtime reported an error.")
NoDevice = _status_error("NoDevice", 7, RuntimeError,
                         "NO_DEVICE: no usable CUDA device, or the library was built without CUDA.")

BY_STATUS = {cls.status: cls for cls in
             (InvalidProblem, Unsupported, BufferTooSmall, WorkspaceTooSmall, OutOfRange, DeviceError, NoDevice)}


def check(status, lib):
    """Raises the exception of a failed bk_status with bk_last_error() as its message;
    returns None for BK_STATUS_SUCCESS."""
    if status == 0:
        return
    cls = BY_STATUS.get(status, Error)
    raise cls(lib.bk_last_error().decode("utf-8", "replace") or lib.bk_status_name(status).decode())
