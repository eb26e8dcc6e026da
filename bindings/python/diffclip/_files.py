"""Arrays and images in files, and conversions between images and tensors."""

from ctypes import byref

from ._arrays import ImageIn, TensorIn, take_image, take_tensor
from ._ffi import check, lib
from ._handle import c_path
from ._types import DType, dc_image, dc_tensor

__all__ = ["read_npy", "write_npy", "read_image", "write_image", "image_to_tensor",
           "tensor_to_image"]


def read_npy(path):
    """A .npy file's array (float16 files become float32)."""
    out = dc_tensor()
    check(lib().dc_npy_read(c_path(path), byref(out)))
    return take_tensor(out)


def write_npy(path, array):
    """Writes any array but bfloat16 as .npy (atomically)."""
    check(lib().dc_npy_write(c_path(path), TensorIn(array, what="array").ref))


def read_image(path):
    """A PNG or JPEG file as a (height, width, 3) uint8 RGB array."""
    out = dc_image()
    check(lib().dc_image_read(c_path(path), byref(out)))
    return take_image(out)


def write_image(path, image):
    """Writes a (height, width, 3) uint8 array as PNG or JPEG, by the extension."""
    check(lib().dc_image_write(c_path(path), ImageIn(image).ref))


def image_to_tensor(image, size):
    """Centre crop, Pillow-exact LANCZOS resize to size x size, [-1, 1]: (1, 3, size, size)
    float32."""
    out = dc_tensor()
    check(lib().dc_image_to_tensor(ImageIn(image).ref, int(size), byref(out)))
    return take_tensor(out)


def tensor_to_image(tensor, index=0):
    """Image `index` of an NCHW float32 tensor in [-1, 1] as torchvision's save_image makes
    it: (height, width, 3) uint8."""
    out = dc_image()
    check(lib().dc_tensor_to_image(TensorIn(tensor, DType.FLOAT32, "tensor").ref, int(index),
                                   byref(out)))
    return take_image(out)
