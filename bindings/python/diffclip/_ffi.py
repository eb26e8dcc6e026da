"""Finding and loading libdiffclip, and the ctypes prototype of every DC_API function.

The library is looked for, in order, at $DIFFCLIP_LIBRARY (the file, or a directory holding
it), in the install prefix (the nearest directory above this package with
lib/libdiffclip.so.MAJOR, which is also how a source tree finds its own build, then
sys.prefix/lib) and through the system's loader. The library's dc_version_number() must be
of this binding's major version and at least the version of the header the binding was
written for (DC_VERSION_NUMBER): an older library is refused with LibraryError.
"""

import ctypes
import os
import sys
import threading
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int64, c_size_t,
                    c_uint, c_void_p)

from ._errors import LibraryError, error_for_status
from ._types import (DC_VERSION_MAJOR, DC_VERSION_NUMBER, DC_VERSION_STRING, dc_clip_options,
                     dc_dataset_preset, dc_diffusion_options, dc_edit_options, dc_edit_preset,
                     dc_face, dc_face_aligner_options, dc_face_box, dc_face_descriptor_options,
                     dc_finetune_options, dc_idnet_options, dc_image, dc_image_metrics,
                     dc_model_config, dc_model_info, dc_model_options, dc_named_tensor, dc_tensor)

SONAME = "libdiffclip.so.%d" % DC_VERSION_MAJOR

_handle = c_void_p                 # a pointer to an opaque dc_ handle
_out_handle = POINTER(c_void_p)    # where a constructor stores it
_tensor = POINTER(dc_tensor)
_image = POINTER(dc_image)
_diffusion = POINTER(dc_diffusion_options)
_edit = POINTER(dc_edit_options)
_finetune = POINTER(dc_finetune_options)
_doubles = POINTER(c_double)

# name: (return type, argument types), in the header's order. Enums are c_int, dc_status too.
FUNCTIONS = {
    "dc_last_error": (c_char_p, ()),
    "dc_status_name": (c_char_p, (c_int,)),
    "dc_version": (c_char_p, ()),
    "dc_version_number": (c_uint, ()),
    # runtime
    "dc_set_num_threads": (c_int, (c_int,)),
    "dc_get_num_threads": (c_int, ()),
    "dc_cuda_available": (c_int, ()),
    "dc_device_check": (c_int, (c_char_p,)),
    "dc_backend_info": (c_char_p, ()),
    "dc_cuda_memory_peak": (c_int, (c_char_p, POINTER(c_int64), POINTER(c_int64))),
    "dc_cuda_memory_reset_peak": (c_int, (c_char_p,)),
    # arrays and images
    "dc_dtype_name": (c_char_p, (c_int,)),
    "dc_dtype_size": (c_size_t, (c_int,)),
    "dc_tensor_numel": (c_int64, (_tensor,)),
    "dc_tensor_free": (None, (_tensor,)),
    "dc_npy_read": (c_int, (c_char_p, _tensor)),
    "dc_npy_write": (c_int, (c_char_p, _tensor)),
    "dc_image_read": (c_int, (c_char_p, _image)),
    "dc_image_write": (c_int, (c_char_p, _image)),
    "dc_image_free": (None, (_image,)),
    "dc_image_to_tensor": (c_int, (_image, c_int, _tensor)),
    "dc_tensor_to_image": (c_int, (_tensor, c_int64, _image)),
    # checkpoints
    "dc_checkpoint_open": (c_int, (_out_handle, c_char_p)),
    "dc_checkpoint_free": (None, (_handle,)),
    "dc_checkpoint_container": (c_int, (_handle,)),
    "dc_checkpoint_count": (c_size_t, (_handle,)),
    "dc_checkpoint_name": (c_char_p, (_handle, c_size_t)),
    "dc_checkpoint_tensor": (c_int, (_handle, c_size_t, _tensor)),
    "dc_checkpoint_find": (c_int, (_handle, c_char_p, POINTER(c_size_t))),
    "dc_checkpoint_write": (c_int, (c_char_p, c_int, POINTER(dc_named_tensor), c_size_t)),
    # diffusion models
    "dc_model_options_init": (c_int, (POINTER(dc_model_options), c_uint)),
    "dc_model_load": (c_int, (_out_handle, c_char_p, POINTER(dc_model_options))),
    "dc_model_free": (None, (_handle,)),
    "dc_model_get_info": (c_int, (_handle, POINTER(dc_model_info))),
    "dc_model_get_config": (c_int, (_handle, POINTER(dc_model_config))),
    "dc_model_describe": (c_int, (_handle, POINTER(c_char), c_size_t)),
    "dc_model_eps": (c_int, (_handle, _tensor, _tensor, _tensor)),
    # diffusion
    "dc_diffusion_options_init": (c_int, (_diffusion, c_uint)),
    "dc_invert": (c_int, (_handle, _tensor, _diffusion, _tensor)),
    "dc_generate": (c_int, (_handle, _tensor, _diffusion, _tensor)),
    "dc_add_noise": (c_int, (_tensor, _tensor, _diffusion, _tensor)),
    "dc_compare_images": (c_int, (_tensor, _tensor, POINTER(dc_image_metrics))),
    # latent cache
    "dc_latent_cache_open": (c_int, (_out_handle, c_char_p, _handle, _diffusion, c_int)),
    "dc_latent_cache_free": (None, (_handle,)),
    "dc_latent_cache_count": (c_size_t, (_handle,)),
    "dc_latent_cache_add": (c_int, (_handle, _tensor, POINTER(c_size_t))),
    "dc_latent_cache_get": (c_int, (_handle, c_size_t, _tensor, _tensor, _tensor)),
    # sampler
    "dc_sampler_new": (c_int, (_out_handle, POINTER(c_void_p), c_size_t)),
    "dc_sampler_free": (None, (_handle,)),
    "dc_sampler_count": (c_size_t, (_handle,)),
    "dc_sampler_set_weights": (c_int, (_handle, _doubles)),
    "dc_sampler_set_piecewise": (c_int, (_handle, POINTER(c_int), _doubles, c_size_t)),
    "dc_sampler_set_ramp": (c_int, (_handle, c_int, _doubles, c_int, _doubles)),
    "dc_sampler_weights_at": (c_int, (_handle, c_int, _doubles)),
    "dc_sampler_generate": (c_int, (_handle, _tensor, _diffusion, _tensor)),
    "dc_edit_options_init": (c_int, (_edit, c_uint)),
    "dc_sampler_edit": (c_int, (_handle, _tensor, _edit, _tensor)),
    "dc_sampler_transition": (c_int, (_handle, _tensor, c_int, _edit, _tensor)),
    "dc_sampler_translate": (c_int, (_handle, _tensor, _edit, _tensor, _tensor)),
    # tokenizer
    "dc_tokenizer_new": (c_int, (_out_handle, c_char_p)),
    "dc_tokenizer_free": (None, (_handle,)),
    "dc_tokenize": (c_int, (_handle, POINTER(c_char_p), c_size_t, c_int, c_int, _tensor)),
    # CLIP and identity network
    "dc_clip_options_init": (c_int, (POINTER(dc_clip_options), c_uint)),
    "dc_clip_load": (c_int, (_out_handle, c_char_p, POINTER(dc_clip_options))),
    "dc_clip_free": (None, (_handle,)),
    "dc_clip_input_size": (c_int, (_handle,)),
    "dc_clip_embed_dim": (c_int, (_handle,)),
    "dc_clip_preprocess": (c_int, (_handle, _tensor, _tensor)),
    "dc_clip_preprocess_image": (c_int, (_handle, _image, _tensor)),
    "dc_clip_encode_image": (c_int, (_handle, _tensor, _tensor)),
    "dc_clip_encode_text": (c_int, (_handle, _tensor, _tensor)),
    "dc_clip_loss": (c_int, (_handle, _handle, c_char_p, c_char_p, _tensor, _tensor,
                             POINTER(c_double), _tensor)),
    "dc_idnet_options_init": (c_int, (POINTER(dc_idnet_options), c_uint)),
    "dc_idnet_load": (c_int, (_out_handle, c_char_p, POINTER(dc_idnet_options))),
    "dc_idnet_free": (None, (_handle,)),
    "dc_idnet_features": (c_int, (_handle, _tensor, _tensor)),
    "dc_idnet_id_loss": (c_int, (_handle, _tensor, _tensor, POINTER(c_double), _tensor,
                                 _tensor)),
    # fine-tuning
    "dc_finetune_options_init": (c_int, (_finetune, c_uint)),
    "dc_dataset_preset_at": (POINTER(dc_dataset_preset), (c_size_t,)),
    "dc_dataset_preset_find": (POINTER(dc_dataset_preset), (c_char_p,)),
    "dc_edit_preset_at": (POINTER(dc_edit_preset), (c_size_t,)),
    "dc_edit_preset_find": (POINTER(dc_edit_preset), (c_char_p,)),
    "dc_finetune_options_apply_preset": (c_int, (_finetune, c_char_p)),
    "dc_finetuner_new": (c_int, (_out_handle, _handle, _handle, _handle, _handle, _handle,
                                 _finetune)),
    "dc_finetuner_free": (None, (_handle,)),
    "dc_finetuner_train": (c_int, (_handle, c_size_t, c_char_p)),
    "dc_finetuner_save": (c_int, (_handle, c_char_p)),
    "dc_model_save_delta": (c_int, (_handle, _handle, c_char_p)),
    "dc_model_load_finetuned": (c_int, (_out_handle, _handle, c_char_p,
                                        POINTER(dc_model_options))),
    # face descriptor
    "dc_face_descriptor_options_init": (c_int, (POINTER(dc_face_descriptor_options), c_uint)),
    "dc_face_descriptor_load": (c_int, (_out_handle, c_char_p, c_char_p,
                                        POINTER(dc_face_descriptor_options))),
    "dc_face_descriptor_free": (None, (_handle,)),
    "dc_face_crop": (c_int, (_image, POINTER(dc_face_box), c_int, _image)),
    "dc_face_descriptor_compute": (c_int, (_handle, _image, POINTER(dc_face_box),
                                           POINTER(c_float))),
    "dc_face_distance": (c_int, (POINTER(c_float), POINTER(c_float), POINTER(c_double))),
    # face alignment
    "dc_face_aligner_options_init": (c_int, (POINTER(dc_face_aligner_options), c_uint)),
    "dc_face_aligner_new": (c_int, (_out_handle, POINTER(dc_face_aligner_options))),
    "dc_face_aligner_free": (None, (_handle,)),
    "dc_face_detect": (c_int, (_handle, _image, POINTER(POINTER(dc_face)), POINTER(c_size_t))),
    "dc_faces_free": (None, (POINTER(dc_face),)),
    "dc_face_align": (c_int, (_handle, _image, c_int, _image, POINTER(dc_face))),
    "dc_face_align_landmarks": (c_int, (_image, POINTER(c_int64), c_int, c_int, _image)),
}


def _candidates():
    """Where to look for the library, in order; an explicit setting is the only candidate."""
    explicit = os.environ.get("DIFFCLIP_LIBRARY")
    if explicit:
        return [os.path.join(explicit, SONAME) if os.path.isdir(explicit) else explicit]
    found = []
    directory = os.path.dirname(os.path.abspath(__file__))
    while True:
        candidate = os.path.join(directory, "lib", SONAME)
        if os.path.isfile(candidate):
            found.append(candidate)
            break
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    found.append(os.path.join(sys.prefix, "lib", SONAME))
    found.append(SONAME)  # the system's search path
    return found


def _missing(name, path):
    def call(*args):
        raise LibraryError("%s (%s) has no %s: it is older than this binding" % (path, SONAME,
                                                                                  name))
    call.__name__ = name
    return call


class Library:
    """The loaded library: one attribute per FUNCTIONS entry."""

    def __init__(self, path):
        self.path = path
        self.cdll = ctypes.CDLL(path)
        self.missing = []
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                function = getattr(self.cdll, name)
            except AttributeError:
                self.missing.append(name)
                function = _missing(name, path)
            else:
                function.restype = restype
                function.argtypes = argtypes
            setattr(self, name, function)

    def has(self, name):
        return name not in self.missing


_library = None
_lock = threading.Lock()


def lib():
    """The library, loaded on first use."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _load()
    return _library


def _load():
    tried = []
    candidates = _candidates()
    for path in candidates:
        try:
            library = Library(path)
        except OSError as e:
            tried.append(str(e))
            continue
        _check_version(library)
        return library
    raise LibraryError("cannot load libdiffclip (set DIFFCLIP_LIBRARY to its path): " +
                       "; ".join(tried))


def _check_version(library):
    """The library must be at least the header this binding was written for."""
    number = library.dc_version_number() if library.has("dc_version_number") else 0
    if number // 10000 != DC_VERSION_NUMBER // 10000 or number < DC_VERSION_NUMBER:
        found = library.dc_version().decode("ascii") if library.has("dc_version") else "?"
        raise LibraryError("%s is libdiffclip %s; this binding was written for %s and needs "
                           "that version or a newer one of the same major version"
                           % (library.path, found, DC_VERSION_STRING))


def last_error():
    return lib().dc_last_error().decode("utf-8", "replace")


def check(status):
    """Raises the DiffclipError subclass of a failing status with dc_last_error()."""
    if status != 0:
        raise error_for_status(status, last_error())
