"""The face descriptor (dlib's ResNet as face-api's faceRecognitionNet): 128 floats per face;
descriptors less than FACE_SAME_PERSON_DISTANCE apart are taken to be the same person. Face
alignment (FaceAligner): dlib's detector and 68 landmarks, then the published FFHQ-style
align_face."""

import ctypes
from collections import namedtuple
from ctypes import byref

from ._arrays import ImageIn, TensorIn, copy_tensor, take_image
from ._errors import InvalidArgumentError
from ._ffi import check, lib
from ._handle import Handle, c_path, c_text
from ._types import (DC_FACE_ALIGNER_OPTIONS_VERSION, DC_FACE_DEFAULT_PREDICTOR,
                     DC_FACE_DESCRIPTOR_SIZE, DC_FACE_INPUT_SIZE, DC_FACE_LANDMARK_COUNT,
                     DC_FACE_LANDMARK_VALUES, DC_FACE_SAME_PERSON_DISTANCE, DType, dc_face,
                     dc_face_aligner_options, dc_face_box, dc_image, dc_tensor)

__all__ = ["FaceDescriptor", "face_crop", "face_distance", "FACE_DESCRIPTOR_SIZE",
           "FACE_INPUT_SIZE", "FACE_SAME_PERSON_DISTANCE", "FaceAligner", "Face",
           "face_align_landmarks", "FACE_LANDMARK_COUNT", "FACE_DEFAULT_PREDICTOR"]

FACE_LANDMARK_COUNT = DC_FACE_LANDMARK_COUNT
FACE_DEFAULT_PREDICTOR = DC_FACE_DEFAULT_PREDICTOR

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
        self._open("dc_face_descriptor_load", c_path(manifest_path),
                   None if weights_path is None else c_path(weights_path),
                   None if device is None else c_text(device, "device"))

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


# A detected face: the detector's rectangle (right, bottom inclusive) and the (68, 2) int64
# (x, y) landmarks (numpy array, or memoryview without numpy).
Face = namedtuple("Face", "left top right bottom landmarks")


def _face_of(f):
    t = dc_tensor(dtype=DType.INT64, ndim=2, data=ctypes.addressof(f.points))
    t.shape[0], t.shape[1] = DC_FACE_LANDMARK_COUNT, 2
    return Face(f.left, f.top, f.right, f.bottom, copy_tensor(t))


def _landmarks_in(landmarks):
    t = TensorIn(landmarks, DType.INT64, "landmarks")
    if t.tensor.dtype != DType.INT64 or lib().dc_tensor_numel(t.ref) != DC_FACE_LANDMARK_VALUES:
        raise InvalidArgumentError("landmarks: want %d (x, y) integer pairs"
                                   % DC_FACE_LANDMARK_COUNT)
    return t


class FaceAligner(Handle):
    """dlib's frontal face detector and 68-landmark shape predictor, loaded once.
    predictor_path None: Debian's libdlib-data file. upsample, adjust_threshold and
    max_detect_pixels as dc_face_aligner_options (None: the library's defaults)."""

    _free = "dc_face_aligner_free"

    def __init__(self, predictor_path=None, upsample=None, adjust_threshold=None,
                 max_detect_pixels=None):
        super().__init__()
        o = dc_face_aligner_options()
        lib().dc_face_aligner_options_init(byref(o), DC_FACE_ALIGNER_OPTIONS_VERSION)
        if predictor_path is not None:
            self._path = c_path(predictor_path)
            o.predictor_path = self._path
        if upsample is not None:
            o.upsample = int(upsample)
        if adjust_threshold is not None:
            o.adjust_threshold = float(adjust_threshold)
        if max_detect_pixels is not None:
            o.max_detect_pixels = int(max_detect_pixels)
        self._open("dc_face_aligner_new", byref(o))

    def detect(self, image):
        """Every face in a (height, width, 3) uint8 image, in the detector's order (the
        published code aligns the last): a list of Face."""
        image = ImageIn(image)
        faces = ctypes.POINTER(dc_face)()
        count = ctypes.c_size_t()
        with self._use() as p:
            check(lib().dc_face_detect(p, image.ref, byref(faces), byref(count)))
        try:
            return [_face_of(faces[i]) for i in range(count.value)]
        finally:
            lib().dc_faces_free(faces)

    def align(self, image, size=256, with_face=False):
        """The aligned face of the last detection, a (size, size, 3) uint8 image; with_face:
        (image, Face). Raises NotFoundError when there is no face."""
        image = ImageIn(image)
        out = dc_image()
        face = dc_face()
        with self._use() as p:
            check(lib().dc_face_align(p, image.ref, int(size), byref(out), byref(face)))
        aligned = take_image(out)
        return (aligned, _face_of(face)) if with_face else aligned


def face_align_landmarks(image, landmarks, size=256, transform_size=0):
    """The published align_face of a (height, width, 3) uint8 image with given (68, 2) (x, y)
    landmarks: the quad transform to transform_size (0: size), then resized to size."""
    image = ImageIn(image)
    lm = _landmarks_in(landmarks)
    out = dc_image()
    check(lib().dc_face_align_landmarks(image.ref, ctypes.cast(lm.tensor.data,
                                                               ctypes.POINTER(ctypes.c_int64)),
                                        int(size), int(transform_size), byref(out)))
    return take_image(out)
