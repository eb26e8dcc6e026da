"""Exceptions: one class per dc_status, all under DiffclipError."""

from ._types import Status


class DiffclipError(Exception):
    """A libdiffclip call failed. `status` is the dc_status code (None for failures found
    by the binding itself, such as a missing library); the message is dc_last_error()."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def status_name(self):
        """"DC_EFORMAT" for a FormatError; None when there is no status."""
        try:
            return Status(self.status).c_name
        except ValueError:
            return None


class InvalidArgumentError(DiffclipError, ValueError):
    """DC_EINVAL: a NULL, a bad shape or an out-of-range value."""
    status = Status.EINVAL


class FileIOError(DiffclipError, OSError):
    """DC_EIO: a file could not be opened, read or written."""
    status = Status.EIO


class FormatError(DiffclipError, ValueError):
    """DC_EFORMAT: a file is malformed, truncated, hostile or unsupported."""
    status = Status.EFORMAT


class OutOfMemoryError(DiffclipError, MemoryError):
    """DC_ENOMEM: out of memory, or a size over the library's limits."""
    status = Status.ENOMEM


class DeviceError(DiffclipError):
    """DC_EDEVICE: the requested device is unavailable or failed."""
    status = Status.EDEVICE


class CancelledError(DiffclipError):
    """DC_ECANCELLED: a progress callback stopped the run."""
    status = Status.ECANCELLED


class InternalError(DiffclipError):
    """DC_EINTERNAL: a bug in the library or its tensor backend."""
    status = Status.EINTERNAL


class NotFoundError(DiffclipError, LookupError):
    """DC_ENOTFOUND: what was searched for is not there (no face in a photo)."""
    status = Status.ENOTFOUND


class LibraryError(DiffclipError, ImportError):
    """libdiffclip could not be loaded, or lacks a function (it is older than the binding)."""


_BY_STATUS = {cls.status: cls for cls in (InvalidArgumentError, FileIOError, FormatError,
                                          OutOfMemoryError, DeviceError, CancelledError,
                                          InternalError, NotFoundError)}


def error_for_status(status, message):
    """The exception for a failing dc_status (DiffclipError itself for an unknown code)."""
    cls = _BY_STATUS.get(status, DiffclipError)
    return cls(message, status)
