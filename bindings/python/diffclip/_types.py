"""The C declarations of include/diffclip.h as ctypes: macros, enums, structs, callbacks.

Structs are named as in C so that tests/test_header.py can compare every field with the
header; enums are IntEnums whose members drop the C prefix listed in C_ENUMS.
"""

import enum
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int, c_int64,
                    c_size_t, c_uint, c_uint8, c_uint64, c_void_p)

# ---- macros ----
DC_VERSION_MAJOR = 0
DC_VERSION_MINOR = 2
DC_VERSION_PATCH = 0
DC_VERSION_STRING = "0.2.0"
DC_VERSION_NUMBER = 200
DC_MAX_DIMS = 8
DC_MAX_LEVELS = 12
DC_MODEL_OPTIONS_VERSION = 2
DC_MODEL_CONFIG_VERSION = 1
DC_PROGRESS_VERSION = 2
DC_DIFFUSION_OPTIONS_VERSION = 1
DC_CLIP_OPTIONS_VERSION = 1
DC_IDNET_OPTIONS_VERSION = 1
DC_EDIT_OPTIONS_VERSION = 1
DC_FINETUNE_OPTIONS_VERSION = 3
DC_FACE_DESCRIPTOR_OPTIONS_VERSION = 1
DC_FACE_DESCRIPTOR_SIZE = 128
DC_FACE_INPUT_SIZE = 150
DC_FACE_SAME_PERSON_DISTANCE = 0.6
DC_FACE_LANDMARK_COUNT = 68
DC_FACE_LANDMARK_VALUES = 136
DC_FACE_DEFAULT_PREDICTOR = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"
DC_FACE_MAX_ALIGN_SIZE = 4096
DC_FACE_ALIGNER_OPTIONS_VERSION = 1


# ---- enums ----
class _CEnum(enum.IntEnum):
    @property
    def c_name(self):
        """The C enumerator's name, e.g. "DC_FLOAT32"."""
        return _ENUM_PREFIX[type(self)] + self.name


class Status(_CEnum):
    OK = 0
    EINVAL = -1
    EIO = -2
    EFORMAT = -3
    ENOMEM = -4
    EDEVICE = -5
    ECANCELLED = -6
    EINTERNAL = -7
    ENOTFOUND = -8


class DType(_CEnum):
    FLOAT32 = 0
    FLOAT16 = 1
    BFLOAT16 = 2
    FLOAT64 = 3
    INT64 = 4
    INT32 = 5
    UINT8 = 6
    BOOL = 7


class Container(_CEnum):
    TORCH_ZIP = 0
    TORCH_LEGACY = 1
    TORCHSCRIPT = 2
    SAFETENSORS = 3
    NPY = 4


class CheckpointFormat(_CEnum):
    AUTO = 0
    TORCH_ZIP = 1
    SAFETENSORS = 2


class ModelFamily(_CEnum):
    DDPM = 0
    ADM = 1


class SizeSource(_CEnum):
    UNKNOWN = 0
    WEIGHTS = 1
    CONFIG = 2
    OPTION = 3


class VarType(_CEnum):
    FIXEDSMALL = 0
    FIXEDLARGE = 1


class Sampling(_CEnum):
    DDIM = 0
    DDPM = 1


class ClipLossForm(_CEnum):
    LOG = 0
    DIRECTION = 1


class GradMode(_CEnum):
    FULL = 0
    PER_STEP = 1


# C enum type -> (Python enum, prefix its members drop)
C_ENUMS = {
    "dc_status": (Status, "DC_"),
    "dc_dtype": (DType, "DC_"),
    "dc_container": (Container, "DC_CONTAINER_"),
    "dc_checkpoint_format": (CheckpointFormat, "DC_FORMAT_"),
    "dc_model_family": (ModelFamily, "DC_MODEL_"),
    "dc_size_source": (SizeSource, "DC_SIZE_"),
    "dc_var_type": (VarType, "DC_VAR_"),
    "dc_sampling": (Sampling, "DC_SAMPLING_"),
    "dc_clip_loss_form": (ClipLossForm, "DC_CLIP_LOSS_"),
    "dc_grad_mode": (GradMode, "DC_GRAD_"),
}
_ENUM_PREFIX = {cls: prefix for cls, prefix in C_ENUMS.values()}

# Handles the header declares as incomplete structs: passed as void pointers.
OPAQUE = ("dc_checkpoint", "dc_model", "dc_latent_cache", "dc_sampler", "dc_tokenizer",
          "dc_clip", "dc_idnet", "dc_finetuner", "dc_face_descriptor", "dc_face_aligner")


# ---- structs ----
class dc_tensor(Structure):
    _fields_ = [("dtype", c_int), ("ndim", c_int), ("shape", c_int64 * DC_MAX_DIMS),
                ("data", c_void_p)]


class dc_image(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("channels", c_int),
                ("data", POINTER(c_uint8))]


class dc_named_tensor(Structure):
    _fields_ = [("name", c_char_p), ("tensor", dc_tensor)]


class dc_model_options(Structure):
    _fields_ = [("version", c_uint), ("device", c_char_p), ("dtype", c_int),
                ("image_size", c_int), ("head_channels", c_int),
                ("config_path", c_char_p)]                      # version 2


class dc_model_config(Structure):
    _fields_ = [("version", c_uint), ("image_size", c_int), ("image_size_source", c_int),
                ("config_path", c_char_p), ("var_type", c_int), ("num_timesteps", c_int),
                ("beta_start", c_double), ("beta_end", c_double), ("warnings", c_char_p)]


class dc_model_info(Structure):
    _fields_ = [("family", c_int), ("image_size", c_int), ("in_channels", c_int),
                ("out_channels", c_int), ("base_channels", c_int), ("levels", c_int),
                ("channel_mult", c_double * DC_MAX_LEVELS), ("num_res_blocks", c_int),
                ("attention_levels", c_int * DC_MAX_LEVELS), ("head_channels", c_int),
                ("num_heads", c_int), ("learn_sigma", c_int), ("parameters", c_int64)]


class dc_progress(Structure):
    _fields_ = [("version", c_uint), ("stage", c_char_p), ("step", c_int), ("steps", c_int),
                ("image", c_int), ("images", c_int), ("epoch", c_int), ("epochs", c_int),
                ("loss_clip", c_double), ("loss_l1", c_double), ("loss_id", c_double),
                ("loss_total", c_double), ("grad_norm", c_double),
                ("learning_rate", c_double), ("seconds_per_image", c_double),
                ("eta_seconds", c_double),
                # version 2: the "finetune-epoch" report
                ("epoch_loss_clip", c_double), ("epoch_loss_l1", c_double),
                ("epoch_loss_id", c_double), ("epoch_loss_total", c_double),
                ("test_direction", c_double), ("test_grid", c_char_p)]


dc_progress_fn = CFUNCTYPE(c_int, c_void_p, POINTER(dc_progress))


class dc_diffusion_options(Structure):
    _fields_ = [("version", c_uint), ("t0", c_int), ("steps", c_int), ("sampling", c_int),
                ("eta", c_double), ("seed", c_uint64), ("num_timesteps", c_int),
                ("beta_start", c_double), ("beta_end", c_double),
                ("progress", dc_progress_fn), ("progress_user", c_void_p)]


class dc_image_metrics(Structure):
    _fields_ = [("mae", c_double), ("psnr", c_double), ("ssim", c_double)]


class dc_clip_options(Structure):
    _fields_ = [("version", c_uint), ("device", c_char_p), ("half", c_int),
                ("loss_form", c_int)]


class dc_idnet_options(Structure):
    _fields_ = [("version", c_uint), ("device", c_char_p)]


class dc_edit_options(Structure):
    _fields_ = [("version", c_uint), ("t0", c_int), ("inv_steps", c_int), ("gen_steps", c_int),
                ("eta", c_double), ("seed", c_uint64), ("repeats", c_int),
                ("projection_steps", c_int), ("cache", c_void_p), ("num_timesteps", c_int),
                ("beta_start", c_double), ("beta_end", c_double),
                ("progress", dc_progress_fn), ("progress_user", c_void_p)]


class dc_finetune_options(Structure):
    _fields_ = [("version", c_uint), ("source_texts", POINTER(c_char_p)),
                ("target_texts", POINTER(c_char_p)), ("text_pairs", c_size_t), ("t0", c_int),
                ("inv_steps", c_int), ("train_steps", c_int), ("eta", c_double),
                ("learning_rate", c_double), ("lr_gamma", c_double), ("epochs", c_int),
                ("images", c_int), ("image_indices", POINTER(c_size_t)),
                ("image_count", c_size_t), ("batch_size", c_int), ("clip_weight", c_double),
                ("l1_weight", c_double), ("id_weight", c_double), ("loss_form", c_int),
                ("grad_mode", c_int), ("seed", c_uint64), ("resume", c_int),
                ("progress", dc_progress_fn), ("progress_user", c_void_p),
                # version 2
                ("recompute", c_int), ("dtype", c_int), ("test_cache", c_void_p),
                ("test_images", c_size_t), ("test_steps", c_int),
                # version 3
                ("world_size", c_int), ("rank", c_int), ("master_addr", c_char_p),
                ("master_port", c_int), ("dist_timeout", c_double)]


class dc_dataset_preset(Structure):
    _fields_ = [("name", c_char_p), ("description", c_char_p), ("model_file", c_char_p),
                ("image_size", c_int), ("t0", c_int), ("inv_steps", c_int),
                ("train_steps", c_int), ("test_steps", c_int), ("learning_rate", c_double),
                ("lr_gamma", c_double), ("epochs", c_int), ("images", c_int),
                ("clip_weight", c_double), ("l1_weight", c_double), ("id_weight", c_double),
                ("grad_mode", c_int), ("config_file", c_char_p)]


class dc_edit_preset(Structure):
    _fields_ = [("name", c_char_p), ("dataset", c_char_p), ("source", c_char_p),
                ("target", c_char_p), ("t0", c_int)]


class dc_face_box(Structure):
    _fields_ = [("x", c_int), ("y", c_int), ("size", c_int)]


class dc_face_descriptor_options(Structure):
    _fields_ = [("version", c_uint), ("device", c_char_p)]


class dc_face(Structure):
    _fields_ = [("left", c_int64), ("top", c_int64), ("right", c_int64), ("bottom", c_int64),
                ("points", c_int64 * DC_FACE_LANDMARK_VALUES)]


class dc_face_aligner_options(Structure):
    _fields_ = [("version", c_uint), ("predictor_path", c_char_p), ("upsample", c_int),
                ("adjust_threshold", c_double), ("max_detect_pixels", c_int64)]


STRUCTS = {cls.__name__: cls for cls in (
    dc_tensor, dc_image, dc_named_tensor, dc_model_options, dc_model_info, dc_model_config,
    dc_progress,
    dc_diffusion_options, dc_image_metrics, dc_edit_options, dc_clip_options, dc_idnet_options,
    dc_finetune_options, dc_dataset_preset, dc_edit_preset, dc_face_box,
    dc_face_descriptor_options, dc_face, dc_face_aligner_options)}
CALLBACKS = {"dc_progress_fn": dc_progress_fn}
