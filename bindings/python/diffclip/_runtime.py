"""Version, errors and the process-wide runtime settings."""

from ._ffi import check, last_error, lib
from ._handle import enum_value

__all__ = ["version", "last_error", "status_name", "set_num_threads", "get_num_threads",
           "cuda_available", "dtype_name", "dtype_size"]


def version():
    """The loaded library's version, e.g. "0.1.0"."""
    return lib().dc_version().decode("ascii")


def status_name(status):
    """The library's name of a status code ("DC_EFORMAT")."""
    return lib().dc_status_name(int(status)).decode("ascii")


def set_num_threads(n):
    """CPU threads for tensor work (process-wide); n <= 0: the number of online cores."""
    check(lib().dc_set_num_threads(int(n)))


def get_num_threads():
    return lib().dc_get_num_threads()


def cuda_available():
    return bool(lib().dc_cuda_available())


def dtype_name(dtype):
    """"float32" for DType.FLOAT32 (or "FLOAT32", or 0)."""
    name = lib().dc_dtype_name(enum_value("dc_dtype", dtype))
    return name.decode("ascii")


def dtype_size(dtype):
    """Bytes per element."""
    return lib().dc_dtype_size(enum_value("dc_dtype", dtype))

