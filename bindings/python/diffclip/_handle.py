"""What every handle class shares: opening, the header's thread rule, closing; options
structs filled by their _init function; progress callbacks.

The header allows one thread at a time per handle. ctypes releases the GIL during calls, so
each handle has a lock: other threads wait their turn, and a call from inside one of the
handle's own progress callbacks is refused. A handle that another
depends on (a Model under a LatentCache) is freed only once its dependents are closed.
"""

import contextlib
import os
import ctypes
import threading
from ctypes import byref

from ._errors import InvalidArgumentError
from ._ffi import check, lib
from ._types import C_ENUMS, dc_progress, dc_progress_fn


class Handle:
    """Base class over one opaque dc_ handle. A subclass names its free function in _free and
    calls _open(constructor name, arguments...) from __init__."""

    _free = None

    def __init__(self):
        self._ptr = None
        self._closed = False
        self._owner_thread = None
        # Re-entrant only for the bookkeeping of close() (a dependent collected by the GC
        # while this thread uses the handle); _use() refuses re-entry itself.
        self._lock = threading.RLock()
        self._dependents = 0
        self._depends_on = ()

    def _open(self, constructor, *args, depends_on=()):
        """Calls constructor(&ptr, *args). The handles in depends_on (which the caller holds
        in _use() for the call) are kept until this one is freed."""
        ptr = ctypes.c_void_p()
        check(getattr(lib(), constructor)(byref(ptr), *args))
        self._ptr = ptr
        self._depends_on = tuple(depends_on)
        for other in self._depends_on:
            other._dependents += 1

    @contextlib.contextmanager
    def _use(self, by_dependent=False):
        """The raw pointer, held exclusively by this thread for the duration. A dependent
        (by_dependent) may still use a handle that was closed while it was open."""
        me = threading.get_ident()
        if self._owner_thread == me:
            raise InvalidArgumentError("%s is already in use by this thread (called from its "
                                       "own progress callback?)" % type(self).__name__)
        with self._lock:
            if (self._closed and not by_dependent) or not self._ptr:
                raise InvalidArgumentError("%s is closed" % type(self).__name__)
            self._owner_thread = me
            try:
                yield self._ptr
            finally:
                self._owner_thread = None

    @property
    def closed(self):
        return self._closed

    def close(self):
        """Frees the handle (later, if handles opened over it are still open). Idempotent."""
        if self._owner_thread == threading.get_ident():
            raise InvalidArgumentError("%s cannot be closed while it is in use"
                                       % type(self).__name__)
        with self._lock:
            self._closed = True
            self._free_if_unused()

    def _free_if_unused(self):
        if not (self._closed and self._dependents == 0 and self._ptr):
            return
        getattr(lib(), self._free)(self._ptr)
        self._ptr = None
        for other in self._depends_on:
            with other._lock:
                other._dependents -= 1
                other._free_if_unused()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ptr", None):
            try:
                self.close()
            except Exception:
                pass

    def __repr__(self):
        return "<diffclip.%s%s>" % (type(self).__name__, " (closed)" if self._closed else "")


def make_options(struct, init, version, **fields):
    """An options struct set by the library's _init function, then the fields given (None
    keeps the default; strings are UTF-8 encoded; enums pass as ints)."""
    options = struct()
    check(getattr(lib(), init)(byref(options), version))
    return set_options(options, **fields)


def set_options(options, **fields):
    """Sets the fields given of an options struct as make_options does; returns it."""
    names = dict(type(options)._fields_)
    for name, value in fields.items():
        if value is None:
            continue
        if name not in names or name == "version":
            raise TypeError("%s has no option %r" % (type(options).__name__, name))
        if isinstance(value, str):
            value = value.encode("utf-8")
        setattr(options, name, value)
    return options


@contextlib.contextmanager
def using_dependencies(handles):
    """Holds each distinct handle of `handles` (None entries skipped) in _use(by_dependent)
    for the duration: the handles a C handle was opened over, which its calls use too."""
    with contextlib.ExitStack() as stack:
        seen = set()
        for handle in handles:
            if handle is not None and id(handle) not in seen:
                seen.add(id(handle))
                stack.enter_context(handle._use(by_dependent=True))
        yield


class Record:
    """A plain, read-only copy of a C struct's fields (arrays as lists, strings as str)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @classmethod
    def of(cls, struct):
        fields = {}
        for name, _ in struct._fields_:
            value = getattr(struct, name)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, ctypes.Array):
                value = list(value)
            fields[name] = value
        return cls(**fields)

    def __setattr__(self, name, value):
        raise AttributeError("%s is read-only" % type(self).__name__)

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % item for item in self.__dict__.items()))


class Progress(Record):
    """What a progress callback receives: the fields of dc_progress (stage, step, steps,
    image, images, epoch, epochs, losses, grad_norm, learning_rate, timings; for stage
    "finetune-epoch" the epoch's mean losses, test_direction and test_grid)."""


class ProgressHook:
    """A Python callable as a dc_progress_fn. An exception it raises cancels the run (the
    callback returns non-zero) and is re-raised by reraise() once the C call has returned."""

    def __init__(self, callback):
        self.callback = callback
        self.error = None
        self.function = dc_progress_fn(self._call)

    def _call(self, user, progress):
        try:
            self.callback(Progress.of(progress.contents))
            return 0
        except BaseException as e:  # KeyboardInterrupt too: it must not be lost in C
            self.error = e
            return 1

    def reraise(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def attach_progress(options, callback):
    """Installs `callback` (may be None) in an options struct's progress field; the hook
    returned (None for no callback) must live as long as the library may call it."""
    if callback is None:
        return None
    hook = ProgressHook(callback)
    options.progress = hook.function
    return hook


def finish(hook, status):
    """check(status), except that the callback's own exception, if any, is raised in place
    of the DC_ECANCELLED it caused."""
    if hook is not None:
        hook.reraise()
    check(status)


def call_with_progress(options, callback, function, *args):
    """function(*args), which reads `options`, with `callback` as its progress callback."""
    hook = attach_progress(options, callback)
    finish(hook, function(*args))


def enum_value(c_enum, value):
    """An enum member from its Python member, its int, or its name (any case, with or
    without the C prefix)."""
    cls, prefix = C_ENUMS[c_enum]
    if isinstance(value, str):
        key = value.upper()
        key = key[len(prefix):] if key.startswith(prefix) else key
        try:
            return cls[key]
        except KeyError:
            raise InvalidArgumentError("unknown %s %r" % (c_enum, value)) from None
    return cls(value)


def c_path(path):
    """A str, bytes or os.PathLike path as the bytes the C functions take."""
    return os.fsencode(path)


def c_text(text, what):
    """A str as NUL-terminated UTF-8 (a NUL inside is refused: C would cut the text)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if b"\0" in data:
        raise InvalidArgumentError("%s contains a NUL character" % what)
    return data
