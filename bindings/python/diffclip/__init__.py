"""Python binding of libdiffclip (DiffusionCLIP: text-guided diffusion image editing).

Standard library only (ctypes); arrays come back as numpy arrays when numpy is importable,
else as memoryviews. Every failing call raises a DiffclipError subclass whose message is the
library's dc_last_error(). Handles (Model, Clip, IdNet, LatentCache, Sampler, Finetuner,
Tokenizer, Checkpoint, FaceDescriptor, FaceAligner) are context managers with close().

The library is found through $DIFFCLIP_LIBRARY, then the install prefix, then the system's
loader (see diffclip._ffi).
"""

from ._checkpoint import Checkpoint, write_checkpoint
from ._clip import Clip, ClipLoss, IdLoss, IdNet
from ._errors import (CancelledError, DeviceError, DiffclipError, FileIOError, FormatError,
                      InternalError, InvalidArgumentError, LibraryError, NotFoundError,
                      OutOfMemoryError)
from ._face import (FACE_DEFAULT_PREDICTOR, FACE_DESCRIPTOR_SIZE, FACE_INPUT_SIZE,
                    FACE_LANDMARK_COUNT, FACE_SAME_PERSON_DISTANCE, Face, FaceAligner,
                    FaceDescriptor, face_align_landmarks, face_crop, face_distance)
from ._finetune import (DatasetPreset, EditPreset, Finetuner, dataset_preset, dataset_presets,
                        edit_preset, edit_presets, finetune_options)
from ._files import (image_to_tensor, read_image, read_npy, tensor_to_image, write_image,
                     write_npy)
from ._handle import Progress
from ._model import (ImageMetrics, LatentCache, Model, ModelConfig, ModelInfo, add_noise,
                     compare_images, diffusion_options)
from ._runtime import (cuda_available, dtype_name, dtype_size, get_num_threads, last_error,
                       set_num_threads, status_name, version)
from ._sampler import Sampler, edit_options
from ._tokenizer import Tokenizer
from ._types import (CheckpointFormat, ClipLossForm, Container, DType, GradMode, ModelFamily,
                     Sampling, SizeSource, Status, VarType)

__version__ = "0.1.0"

__all__ = [
    # handles
    "Checkpoint", "Clip", "FaceAligner", "FaceDescriptor", "Finetuner", "IdNet", "LatentCache", "Model",
    "Sampler", "Tokenizer",
    # functions
    "add_noise", "compare_images", "cuda_available", "dataset_preset", "dataset_presets",
    "diffusion_options", "dtype_name", "dtype_size", "edit_options", "edit_preset",
    "edit_presets", "face_align_landmarks", "face_crop", "face_distance", "finetune_options", "get_num_threads",
    "image_to_tensor", "last_error", "read_image", "read_npy", "set_num_threads", "status_name",
    "tensor_to_image", "version", "write_checkpoint", "write_image", "write_npy",
    # constants, records and enums
    "FACE_DEFAULT_PREDICTOR", "FACE_DESCRIPTOR_SIZE", "FACE_INPUT_SIZE", "FACE_LANDMARK_COUNT",
    "FACE_SAME_PERSON_DISTANCE", "Face",
    "ClipLoss", "DatasetPreset", "EditPreset", "IdLoss", "ImageMetrics", "ModelConfig",
    "ModelInfo", "Progress", "CheckpointFormat", "ClipLossForm", "Container", "DType",
    "GradMode", "ModelFamily", "Sampling", "SizeSource", "Status", "VarType",
    # errors
    "DiffclipError", "InvalidArgumentError", "FileIOError", "FormatError",
    "OutOfMemoryError", "DeviceError", "CancelledError", "InternalError", "NotFoundError",
    "LibraryError",
]
