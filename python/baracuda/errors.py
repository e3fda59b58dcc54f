"""Exceptions: one class per bk_status, all under baracuda.Error, carrying the library's
sentence (bk_last_error()) as their message."""
import ctypes as C


class Error(Exception):
    """Base of every baracuda failure. `status` is the bk_status value (an int),
    `status_name` its name ("BK_STATUS_UNSUPPORTED"); str(e) is the library's sentence,
    e.g. "sdpa_fwd: k.shape[2] is 100, expected kv_len = 128"."""

    status = -1
    status_name = "BK_STATUS_UNKNOWN"


class InvalidProblem(Error, ValueError):
    """BK_STATUS_INVALID_PROBLEM: inconsistent extents or shapes, NULL pointer, non-finite
    scale, malformed index data (also: a tensor on the wrong device, a missing field)."""

    status, status_name = 1, "BK_STATUS_INVALID_PROBLEM"


class Unsupported(Error, NotImplementedError):
    """BK_STATUS_UNSUPPORTED: a valid problem this target does not implement."""

    status, status_name = 2, "BK_STATUS_UNSUPPORTED"


class BufferTooSmall(Error, ValueError):
    """BK_STATUS_BUFFER_TOO_SMALL: a tensor's capacity is below what its view reaches."""

    status, status_name = 3, "BK_STATUS_BUFFER_TOO_SMALL"


class WorkspaceTooSmall(Error, ValueError):
    """BK_STATUS_WORKSPACE_TOO_SMALL: the workspace is smaller than the plan's workspace_size."""

    status, status_name = 4, "BK_STATUS_WORKSPACE_TOO_SMALL"


class OutOfRange(Error, IndexError):
    """BK_STATUS_OUT_OF_RANGE: a data-dependent index or offset outside its buffer."""

    status, status_name = 5, "BK_STATUS_OUT_OF_RANGE"


class DeviceError(Error, RuntimeError):
    """BK_STATUS_DEVICE_ERROR: the CUDA runtime reported an error."""

    status, status_name = 6, "BK_STATUS_DEVICE_ERROR"


class NoDevice(Error, RuntimeError):
    """BK_STATUS_NO_DEVICE: no usable CUDA device, or the library was built without CUDA."""

    status, status_name = 7, "BK_STATUS_NO_DEVICE"


BY_STATUS = {cls.status: cls for cls in
             (InvalidProblem, Unsupported, BufferTooSmall, WorkspaceTooSmall, OutOfRange, DeviceError, NoDevice)}


def check(status, lib):
    """Raises the exception of a failed bk_status with bk_last_error() as its message;
    returns None for BK_STATUS_SUCCESS."""
    if status == 0:
        return
    cls = BY_STATUS.get(status, Error)
    raise cls(lib.bk_last_error().decode("utf-8", "replace") or lib.bk_status_name(status).decode())
