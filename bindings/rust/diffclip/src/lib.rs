//! Safe Rust binding of libdiffclip: text-guided image editing with diffusion models
//! (DiffusionCLIP), over the C API of `diffclip-sys`.
//!
//! - Every fallible call returns [`Result`]; an [`Error`] carries the status and the
//!   library's message (`dc_last_error()`).
//! - Handles ([`Model`], [`Clip`], [`IdNet`], [`LatentCache`], [`Sampler`], [`Finetuner`],
//!   [`Tokenizer`], [`Checkpoint`], [`FaceDescriptor`], [`FaceAligner`]) free themselves on drop; those opened
//!   over other handles borrow them for their lifetime. They are `Send` but not `Sync`: the
//!   header lets one thread at a time use a handle, and different handles run on different
//!   threads concurrently.
//! - Arrays go in as [`TensorView`]s over slices and come out as [`Tensor`]s that hold the
//!   library's buffer (read them with [`Tensor::as_slice`]).
//! - Progress callbacks are closures; returning `false` cancels the run
//!   ([`Status::Cancelled`]); a panic inside one cancels it and resumes after the call.
//!
//! ```no_run
//! # fn main() -> diffclip::Result<()> {
//! let mut model = diffclip::Model::load("celeba_hq.ckpt", &diffclip::ModelOptions::new())?;
//! let x = vec![0.0f32; 3 * 256 * 256];
//! let eps = model.eps(&diffclip::TensorView::new(&x, &[1, 3, 256, 256])?,
//!                     &diffclip::TensorView::new(&[500.0f32], &[1])?)?;
//! println!("{:?}: {}", eps.shape(), eps.as_slice::<f32>().unwrap()[0]);
//! # Ok(())
//! # }
//! ```

mod checkpoint;
mod clip;
mod error;
mod face;
mod finetune;
mod handle;
mod image;
mod model;
mod progress;
mod sampler;
mod tensor;
mod tokenizer;

pub use checkpoint::{write_checkpoint, Checkpoint, CheckpointFormat, Container};
pub use clip::{Clip, ClipLoss, ClipLossForm, ClipOptions, IdLoss, IdNet, IdNetOptions};
pub use error::{Error, Result, Status};
pub use face::{
    face_align_landmarks, face_crop, face_distance, Face, FaceAligner, FaceAlignerOptions,
    FaceBox, FaceDescriptor, FaceDescriptorValues, Landmarks, FACE_DEFAULT_PREDICTOR,
    FACE_DESCRIPTOR_SIZE, FACE_INPUT_SIZE, FACE_LANDMARK_COUNT, FACE_SAME_PERSON_DISTANCE,
};
pub use finetune::{DatasetPreset, EditPreset, FinetuneOptions, Finetuner, GradMode};
pub use image::{image_to_tensor, read_image, tensor_to_image, write_image, Image, ImageView};
pub use model::{
    add_noise, compare_images, DiffusionOptions, ImageMetrics, LatentCache, Model, ModelConfig,
    ModelFamily, ModelInfo, ModelOptions, Sampling, SizeSource, VarType,
};
pub use progress::Progress;
pub use sampler::{EditOptions, Sampler};
pub use tensor::{read_npy, write_npy, DType, Element, Tensor, TensorView};
pub use tokenizer::Tokenizer;

pub use diffclip_sys as sys;

use std::ffi::CStr;

/// The library's version number (`sys::DC_VERSION_NUMBER` of its header: 200 for 0.2.0).
pub fn version_number() -> u32 {
    unsafe { sys::dc_version_number() }
}

/// Whether the loaded library can serve this crate: the major version of the header the
/// crate was written for and a number at least its `DC_VERSION_NUMBER` (an older library
/// lacks functions or options fields the crate uses). Every handle constructor checks it.
pub fn check_library_version() -> Result<()> {
    let (found, want) = (version_number(), sys::DC_VERSION_NUMBER);
    if found / 10000 == want / 10000 && found >= want {
        return Ok(());
    }
    Err(Error::new(
        Status::InvalidArgument,
        format!(
            "the loaded libdiffclip is {}; this crate was written for {} and needs that \
             version or a newer one of the same major version",
            version(),
            sys::DC_VERSION_STRING
        ),
    ))
}

/// The library's version ("0.2.0").
pub fn version() -> &'static str {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::dc_version()) }
        .to_str()
        .unwrap_or("")
}

/// CPU threads for tensor work (process-wide); `n <= 0`: the number of online cores.
pub fn set_num_threads(n: i32) -> Result<()> {
    error::check(unsafe { sys::dc_set_num_threads(n) })
}

pub fn num_threads() -> i32 {
    unsafe { sys::dc_get_num_threads() }
}

pub fn cuda_available() -> bool {
    unsafe { sys::dc_cuda_available() != 0 }
}
