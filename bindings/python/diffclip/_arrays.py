"""Arrays across the boundary: numpy arrays when numpy is importable, else memoryviews.

In: numpy arrays, anything with the buffer protocol (memoryview, array.array, bytearray;
C-contiguous, native byte order) or nested lists of numbers. Out: a copy of the library's
buffer, which is then released; float16 stays float16 with numpy and becomes float32 without
(memoryview cannot hold half floats); bfloat16, which numpy lacks, becomes float32 (exact).
A memoryview cannot have a zero in its shape: an empty result is a flat, empty memoryview.
"""

import array
import ctypes
import struct
from ctypes import byref

from ._errors import InternalError, InvalidArgumentError
from ._ffi import lib
from ._types import DC_MAX_DIMS, DType, dc_image, dc_tensor

try:
    import numpy
except ImportError:
    numpy = None

# dtype: (memoryview/array format, numpy name, bytes per element)
_LAYOUT = {
    DType.FLOAT32: ("f", "float32", 4),
    DType.FLOAT16: ("e", "float16", 2),
    DType.BFLOAT16: ("H", "uint16", 2),
    DType.FLOAT64: ("d", "float64", 8),
    DType.INT64: ("q", "int64", 8),
    DType.INT32: ("i", "int32", 4),
    DType.UINT8: ("B", "uint8", 1),
    DType.BOOL: ("?", "bool", 1),
}
_BY_NUMPY_NAME = {numpy_name: dtype for dtype, (_, numpy_name, _) in _LAYOUT.items()
                  if dtype != DType.BFLOAT16}
_SIGNED = "bhilqn"


def _dtype_of_format(fmt, itemsize, what):
    code = fmt[1:] if fmt[:1] in "@=<" else fmt
    if code in _SIGNED and itemsize in (4, 8):
        return DType.INT32 if itemsize == 4 else DType.INT64
    for dtype, (layout_code, _, size) in _LAYOUT.items():
        if dtype != DType.BFLOAT16 and code == layout_code and size == itemsize:
            return dtype
    raise InvalidArgumentError("%s: unsupported element format %r" % (what, fmt))


def _nested_shape(obj):
    shape = []
    while isinstance(obj, (list, tuple)):
        shape.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    return shape


def _flatten(obj, depth, out):
    if depth == 0:
        out.append(obj)
        return
    for item in obj:
        _flatten(item, depth - 1, out)


def _from_lists(obj, dtype, what):
    """A flat memoryview, the shape and the dtype of nested lists, without numpy."""
    shape = _nested_shape(obj)
    flat = []
    _flatten(obj, len(shape), flat)
    numel = 1
    for n in shape:
        numel *= n
    if len(flat) != numel:
        raise InvalidArgumentError("%s: ragged nested lists" % what)
    if dtype is None:
        dtype = DType.INT64 if all(isinstance(v, int) for v in flat) else DType.FLOAT32
    if dtype in (DType.FLOAT16, DType.BFLOAT16):
        raise InvalidArgumentError("%s: %s input needs numpy" % (what, dtype.name.lower()))
    code = "B" if dtype == DType.BOOL else _LAYOUT[dtype][0]  # array has no bool type
    return memoryview(array.array(code, flat)).cast("B").cast(_LAYOUT[dtype][0]), shape, dtype


class TensorIn:
    """A dc_tensor describing a caller's array. The struct itself keeps the memory it points
    to alive, so that byref(tensor) may outlive this object."""

    def __init__(self, obj, dtype=None, what="array"):
        if numpy is not None and not isinstance(obj, (memoryview, bytes, bytearray,
                                                      array.array)):
            try:
                a = numpy.asarray(obj, dtype=None if dtype is None else _LAYOUT[dtype][1],
                                  order="C")
            except (TypeError, ValueError) as e:
                raise InvalidArgumentError("%s: %s" % (what, e)) from None
            if not a.dtype.isnative:
                a = a.astype(a.dtype.newbyteorder("="))
            dtype = _BY_NUMPY_NAME.get(a.dtype.name)
            if dtype is None:
                raise InvalidArgumentError("%s: unsupported dtype %s" % (what, a.dtype))
            keep, shape, address = a, a.shape, a.ctypes.data
        else:
            if isinstance(obj, (list, tuple)):
                view, shape, dtype = _from_lists(obj, dtype, what)
            else:
                view = memoryview(obj)
                if not view.c_contiguous:
                    raise InvalidArgumentError("%s: the buffer is not C-contiguous" % what)
                shape = view.shape
                dtype = _dtype_of_format(view.format, view.itemsize, what)
            keep = bytearray(view.tobytes()) if view.readonly else view.cast("B")
            address = ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(keep)) \
                if view.nbytes else None
        if len(shape) > DC_MAX_DIMS:
            raise InvalidArgumentError("%s: %d dimensions, at most %d" % (what, len(shape),
                                                                           DC_MAX_DIMS))
        self.tensor = dc_tensor(dtype=dtype, ndim=len(shape), data=address)
        self.tensor.keep = keep
        for i, n in enumerate(shape):
            self.tensor.shape[i] = n

    @property
    def ref(self):
        return byref(self.tensor)


def tensor_ref(obj, dtype=None, what="array"):
    """Optional inputs: NULL for None."""
    return None if obj is None else TensorIn(obj, dtype, what)


def _widen_to_float32(raw, dtype, numel):
    """float16 or bfloat16 bytes as float32, without numpy."""
    if dtype == DType.FLOAT16:
        return array.array("f", struct.unpack("<%de" % numel, raw))
    halves = array.array("H")
    halves.frombytes(raw)
    widened = array.array("I", (h << 16 for h in halves))
    return array.array("f", widened.tobytes())


def copy_tensor(t):
    """A copy of the array a dc_tensor describes (numpy array or memoryview)."""
    dtype = DType(t.dtype)
    shape = tuple(t.shape[i] for i in range(t.ndim))
    numel = lib().dc_tensor_numel(byref(t))
    code, numpy_name, size = _LAYOUT[dtype]
    nbytes = numel * size
    if nbytes and not t.data:
        raise InternalError("the library returned an array without data")
    if numpy is not None:
        a = numpy.empty(shape, dtype=numpy_name)
        if nbytes:
            ctypes.memmove(a.ctypes.data, t.data, nbytes)
        if dtype == DType.BFLOAT16:
            a = (a.astype(numpy.uint32) << 16).view(numpy.float32)
        return a
    raw = ctypes.string_at(t.data, nbytes) if nbytes else b""
    if dtype in (DType.FLOAT16, DType.BFLOAT16):
        buf, code = _widen_to_float32(raw, dtype, numel), "f"
    else:
        buf = bytearray(raw)
    flat = memoryview(buf).cast("B")
    return flat.cast(code, shape) if numel else flat.cast(code)


def take_tensor(t):
    """copy_tensor, then dc_tensor_free (for arrays the library allocated for the caller)."""
    try:
        return copy_tensor(t)
    finally:
        lib().dc_tensor_free(byref(t))


def take_tensors(tensors):
    """take_tensor of each; all are freed even if a copy fails."""
    try:
        return tuple(copy_tensor(t) for t in tensors)
    finally:
        for t in tensors:
            lib().dc_tensor_free(byref(t))


class ImageIn:
    """A dc_image over a caller's (height, width, 3) uint8 array."""

    def __init__(self, obj, what="image"):
        self.array = TensorIn(obj, None, what)
        t = self.array.tensor
        if t.dtype != DType.UINT8 or t.ndim != 3 or t.shape[2] != 3:
            raise InvalidArgumentError("%s: want a (height, width, 3) uint8 array" % what)
        self.image = dc_image(width=t.shape[1], height=t.shape[0], channels=3)
        self.image.data = ctypes.cast(t.data, ctypes.POINTER(ctypes.c_uint8))
        self.image.keep = self.array.tensor

    @property
    def ref(self):
        return byref(self.image)


def take_image(img):
    """A (height, width, channels) uint8 copy of a library image, which is then freed."""
    try:
        t = dc_tensor(dtype=DType.UINT8, ndim=3,
                      data=ctypes.cast(img.data, ctypes.c_void_p).value)
        t.shape[0], t.shape[1], t.shape[2] = img.height, img.width, img.channels
        return copy_tensor(t)
    finally:
        lib().dc_image_free(byref(img))
