"""The face descriptor (dlib's ResNet as face-api's faceRecognitionNet): 128 floats per face;
descriptors less than FACE_SAME_PERSON_DISTANCE apart are taken to be the same person."""

import ctypes
from ctypes import byref

from ._arrays import ImageIn, TensorIn, copy_tensor, take_image
from ._errors import InvalidArgumentError
from ._ffi import check, lib
from ._handle import Handle, c_path, make_options
from ._types import (DC_FACE_DESCRIPTOR_OPTIONS_VERSION, DC_FACE_DESCRIPTOR_SIZE,
                     DC_FACE_INPUT_SIZE, DC_FACE_SAME_PERSON_DISTANCE, DType, dc_face_box,
                     dc_face_descriptor_options, dc_image, dc_tensor)

__all__ = ["FaceDescriptor", "face_crop", "face_distance", "FACE_DESCRIPTOR_SIZE",
           "FACE_INPUT_SIZE", "FACE_SAME_PERSON_DISTANCE"]

FACE_DESCRIPTOR_SIZE = DC_FACE_DESCRIPTOR_SIZE
FACE_INPUT_SIZE = DC_FACE_INPUT_SIZE
FACE_SAME_PERSON_DISTANCE = DC_FACE_SAME_PERSON_DISTANCE

_Descriptor = ctypes.c_float * DC_FACE_DESCRIPTOR_SIZE


def _box(box):
    """A (x, y, size) square as a dc_face_box pointer; None: the centred largest square."""
    if box is None:
        return None
    x, y, size = box
    return byref(dc_face_box(int(x), int(y), int(size)))


def _as_array(descriptor):
    """A filled ctypes float array as a numpy array or memoryview."""
    t = dc_tensor(dtype=DType.FLOAT32, ndim=1, data=ctypes.addressof(descriptor))
    t.shape[0] = DC_FACE_DESCRIPTOR_SIZE
    return copy_tensor(t)


def _descriptor_in(values, what):
    t = TensorIn(values, DType.FLOAT32, what)
    count = lib().dc_tensor_numel(t.ref)
    if t.tensor.dtype != DType.FLOAT32 or count != DC_FACE_DESCRIPTOR_SIZE:
        raise InvalidArgumentError("%s: want %d float32 values" % (what, DC_FACE_DESCRIPTOR_SIZE))
    return t


class FaceDescriptor(Handle):
    """face-api's face recognition network from its tfjs weights manifest (the weights file
    named by the manifest, beside it, unless weights_path is given). device: "cpu",
    "cuda", "cuda:N" or "auto" (default)."""

    _free = "dc_face_descriptor_free"

    def __init__(self, manifest_path, weights_path=None, device=None):
        super().__init__()
        options = make_options(dc_face_descriptor_options, "dc_face_descriptor_options_init",
                               DC_FACE_DESCRIPTOR_OPTIONS_VERSION, device=device)
        self._open("dc_face_descriptor_load", c_path(manifest_path),
                   None if weights_path is None else c_path(weights_path), byref(options))

    def compute(self, image, box=None):
        """The 128-float descriptor of the face in `box` (x, y, size) of a (height, width, 3)
        uint8 image (None: the centred largest square), cropped and resized to 150x150."""
        image = ImageIn(image)
        descriptor = _Descriptor()
        with self._use() as p:
            check(lib().dc_face_descriptor_compute(p, image.ref, _box(box), descriptor))
        return _as_array(descriptor)


def face_crop(image, box=None, size=FACE_INPUT_SIZE):
    """The square `box` (x, y, size) of an image (None: the centred largest square), resized
    to size x size with the Lanczos filter of image_to_tensor."""
    out = dc_image()
    check(lib().dc_face_crop(ImageIn(image).ref, _box(box), int(size), byref(out)))
    return take_image(out)


def face_distance(a, b):
    """Euclidean distance between two descriptors."""
    a, b = _descriptor_in(a, "a"), _descriptor_in(b, "b")
    distance = ctypes.c_double()
    as_floats = ctypes.POINTER(ctypes.c_float)
    check(lib().dc_face_distance(ctypes.cast(a.tensor.data, as_floats),
                                 ctypes.cast(b.tensor.data, as_floats), byref(distance)))
    return distance.value
