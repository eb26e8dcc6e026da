//! Raw declarations of libdiffclip's C API, one for one with `include/diffclip.h`
//! (tests/header.rs checks every function, struct field, enum value and macro against it).
//!
//! Enums are `c_int` type aliases with their enumerators as constants, so that any value the
//! library returns is representable. Opaque handles are zero-sized `#[repr(C)]` structs used
//! only behind pointers. The safe API is the `diffclip` crate.
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_int, c_uint, c_void};

// ---- macros ----
pub const DC_VERSION_MAJOR: c_int = 0;
pub const DC_VERSION_MINOR: c_int = 2;
pub const DC_VERSION_PATCH: c_int = 0;
pub const DC_VERSION_STRING: &str = "0.2.0";
pub const DC_VERSION_NUMBER: c_uint = 200;
pub const DC_MAX_DIMS: usize = 8;
pub const DC_MAX_LEVELS: usize = 12;
pub const DC_MODEL_OPTIONS_VERSION: c_uint = 2;
pub const DC_MODEL_CONFIG_VERSION: c_uint = 1;
pub const DC_PROGRESS_VERSION: c_uint = 2;
pub const DC_DIFFUSION_OPTIONS_VERSION: c_uint = 1;
pub const DC_CLIP_OPTIONS_VERSION: c_uint = 1;
pub const DC_IDNET_OPTIONS_VERSION: c_uint = 1;
pub const DC_EDIT_OPTIONS_VERSION: c_uint = 1;
pub const DC_FINETUNE_OPTIONS_VERSION: c_uint = 3;
pub const DC_FACE_DESCRIPTOR_OPTIONS_VERSION: c_uint = 1;
pub const DC_FACE_DESCRIPTOR_SIZE: usize = 128;
pub const DC_FACE_INPUT_SIZE: c_int = 150;
pub const DC_FACE_SAME_PERSON_DISTANCE: f64 = 0.6;
pub const DC_FACE_LANDMARK_COUNT: usize = 68;
pub const DC_FACE_LANDMARK_VALUES: usize = 136;
pub const DC_FACE_DEFAULT_PREDICTOR: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
pub const DC_FACE_MAX_ALIGN_SIZE: c_int = 4096;
pub const DC_FACE_ALIGNER_OPTIONS_VERSION: c_uint = 1;

// ---- enums ----
pub type dc_status = c_int;
pub const DC_OK: dc_status = 0;
pub const DC_EINVAL: dc_status = -1;
pub const DC_EIO: dc_status = -2;
pub const DC_EFORMAT: dc_status = -3;
pub const DC_ENOMEM: dc_status = -4;
pub const DC_EDEVICE: dc_status = -5;
pub const DC_ECANCELLED: dc_status = -6;
pub const DC_EINTERNAL: dc_status = -7;
pub const DC_ENOTFOUND: dc_status = -8;

pub type dc_dtype = c_int;
pub const DC_FLOAT32: dc_dtype = 0;
pub const DC_FLOAT16: dc_dtype = 1;
pub const DC_BFLOAT16: dc_dtype = 2;
pub const DC_FLOAT64: dc_dtype = 3;
pub const DC_INT64: dc_dtype = 4;
pub const DC_INT32: dc_dtype = 5;
pub const DC_UINT8: dc_dtype = 6;
pub const DC_BOOL: dc_dtype = 7;

pub type dc_container = c_int;
pub const DC_CONTAINER_TORCH_ZIP: dc_container = 0;
pub const DC_CONTAINER_TORCH_LEGACY: dc_container = 1;
pub const DC_CONTAINER_TORCHSCRIPT: dc_container = 2;
pub const DC_CONTAINER_SAFETENSORS: dc_container = 3;
pub const DC_CONTAINER_NPY: dc_container = 4;

pub type dc_checkpoint_format = c_int;
pub const DC_FORMAT_AUTO: dc_checkpoint_format = 0;
pub const DC_FORMAT_TORCH_ZIP: dc_checkpoint_format = 1;
pub const DC_FORMAT_SAFETENSORS: dc_checkpoint_format = 2;

pub type dc_model_family = c_int;
pub const DC_MODEL_DDPM: dc_model_family = 0;
pub const DC_MODEL_ADM: dc_model_family = 1;

pub type dc_size_source = c_int;
pub const DC_SIZE_UNKNOWN: dc_size_source = 0;
pub const DC_SIZE_WEIGHTS: dc_size_source = 1;
pub const DC_SIZE_CONFIG: dc_size_source = 2;
pub const DC_SIZE_OPTION: dc_size_source = 3;

pub type dc_var_type = c_int;
pub const DC_VAR_FIXEDSMALL: dc_var_type = 0;
pub const DC_VAR_FIXEDLARGE: dc_var_type = 1;

pub type dc_sampling = c_int;
pub const DC_SAMPLING_DDIM: dc_sampling = 0;
pub const DC_SAMPLING_DDPM: dc_sampling = 1;

pub type dc_clip_loss_form = c_int;
pub const DC_CLIP_LOSS_LOG: dc_clip_loss_form = 0;
pub const DC_CLIP_LOSS_DIRECTION: dc_clip_loss_form = 1;

pub type dc_grad_mode = c_int;
pub const DC_GRAD_FULL: dc_grad_mode = 0;
pub const DC_GRAD_PER_STEP: dc_grad_mode = 1;

// ---- opaque handles ----
macro_rules! opaque {
    ($($name:ident),* $(,)?) => {$(
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(
    dc_checkpoint,
    dc_model,
    dc_latent_cache,
    dc_sampler,
    dc_tokenizer,
    dc_clip,
    dc_idnet,
    dc_finetuner,
    dc_face_descriptor,
    dc_face_aligner
);

// ---- structs ----
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_tensor {
    pub dtype: dc_dtype,
    pub ndim: c_int,
    pub shape: [i64; DC_MAX_DIMS],
    pub data: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_image {
    pub width: c_int,
    pub height: c_int,
    pub channels: c_int,
    pub data: *mut u8,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_named_tensor {
    pub name: *const c_char,
    pub tensor: dc_tensor,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_model_options {
    pub version: c_uint,
    pub device: *const c_char,
    pub dtype: dc_dtype,
    pub image_size: c_int,
    pub head_channels: c_int,
    /// Version 2.
    pub config_path: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_model_config {
    pub version: c_uint,
    pub image_size: c_int,
    pub image_size_source: dc_size_source,
    pub config_path: *const c_char,
    pub var_type: dc_var_type,
    pub num_timesteps: c_int,
    pub beta_start: f64,
    pub beta_end: f64,
    pub warnings: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_model_info {
    pub family: dc_model_family,
    pub image_size: c_int,
    pub in_channels: c_int,
    pub out_channels: c_int,
    pub base_channels: c_int,
    pub levels: c_int,
    pub channel_mult: [f64; DC_MAX_LEVELS],
    pub num_res_blocks: c_int,
    pub attention_levels: [c_int; DC_MAX_LEVELS],
    pub head_channels: c_int,
    pub num_heads: c_int,
    pub learn_sigma: c_int,
    pub parameters: i64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_progress {
    pub version: c_uint,
    pub stage: *const c_char,
    pub step: c_int,
    pub steps: c_int,
    pub image: c_int,
    pub images: c_int,
    pub epoch: c_int,
    pub epochs: c_int,
    pub loss_clip: f64,
    pub loss_l1: f64,
    pub loss_id: f64,
    pub loss_total: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub seconds_per_image: f64,
    pub eta_seconds: f64,
    // version 2: the "finetune-epoch" report
    pub epoch_loss_clip: f64,
    pub epoch_loss_l1: f64,
    pub epoch_loss_id: f64,
    pub epoch_loss_total: f64,
    pub test_direction: f64,
    pub test_grid: *const c_char,
}

pub type dc_progress_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, progress: *const dc_progress) -> c_int>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_diffusion_options {
    pub version: c_uint,
    pub t0: c_int,
    pub steps: c_int,
    pub sampling: dc_sampling,
    pub eta: f64,
    pub seed: u64,
    pub num_timesteps: c_int,
    pub beta_start: f64,
    pub beta_end: f64,
    pub progress: dc_progress_fn,
    pub progress_user: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct dc_image_metrics {
    pub mae: f64,
    pub psnr: f64,
    pub ssim: f64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_edit_options {
    pub version: c_uint,
    pub t0: c_int,
    pub inv_steps: c_int,
    pub gen_steps: c_int,
    pub eta: f64,
    pub seed: u64,
    pub repeats: c_int,
    pub projection_steps: c_int,
    pub cache: *mut dc_latent_cache,
    pub num_timesteps: c_int,
    pub beta_start: f64,
    pub beta_end: f64,
    pub progress: dc_progress_fn,
    pub progress_user: *mut c_void,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_clip_options {
    pub version: c_uint,
    pub device: *const c_char,
    pub half: c_int,
    pub loss_form: dc_clip_loss_form,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_idnet_options {
    pub version: c_uint,
    pub device: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_finetune_options {
    pub version: c_uint,
    pub source_texts: *const *const c_char,
    pub target_texts: *const *const c_char,
    pub text_pairs: usize,
    pub t0: c_int,
    pub inv_steps: c_int,
    pub train_steps: c_int,
    pub eta: f64,
    pub learning_rate: f64,
    pub lr_gamma: f64,
    pub epochs: c_int,
    pub images: c_int,
    pub image_indices: *const usize,
    pub image_count: usize,
    pub batch_size: c_int,
    pub clip_weight: f64,
    pub l1_weight: f64,
    pub id_weight: f64,
    pub loss_form: dc_clip_loss_form,
    pub grad_mode: dc_grad_mode,
    pub seed: u64,
    pub resume: c_int,
    pub progress: dc_progress_fn,
    pub progress_user: *mut c_void,
    // version 2
    pub recompute: c_int,
    pub dtype: dc_dtype,
    pub test_cache: *mut dc_latent_cache,
    pub test_images: usize,
    pub test_steps: c_int,
    // version 3
    pub world_size: c_int,
    pub rank: c_int,
    pub master_addr: *const c_char,
    pub master_port: c_int,
    pub dist_timeout: f64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_dataset_preset {
    pub name: *const c_char,
    pub description: *const c_char,
    pub model_file: *const c_char,
    pub image_size: c_int,
    pub t0: c_int,
    pub inv_steps: c_int,
    pub train_steps: c_int,
    pub test_steps: c_int,
    pub learning_rate: f64,
    pub lr_gamma: f64,
    pub epochs: c_int,
    pub images: c_int,
    pub clip_weight: f64,
    pub l1_weight: f64,
    pub id_weight: f64,
    pub grad_mode: dc_grad_mode,
    pub config_file: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_edit_preset {
    pub name: *const c_char,
    pub dataset: *const c_char,
    pub source: *const c_char,
    pub target: *const c_char,
    pub t0: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct dc_face_box {
    pub x: c_int,
    pub y: c_int,
    pub size: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_face_descriptor_options {
    pub version: c_uint,
    pub device: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_face {
    pub left: i64,
    pub top: i64,
    pub right: i64,
    pub bottom: i64,
    pub points: [i64; DC_FACE_LANDMARK_VALUES],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dc_face_aligner_options {
    pub version: c_uint,
    pub predictor_path: *const c_char,
    pub upsample: c_int,
    pub adjust_threshold: f64,
    pub max_detect_pixels: i64,
}

// ---- functions ----
extern "C" {
    pub fn dc_last_error() -> *const c_char;
    pub fn dc_status_name(status: dc_status) -> *const c_char;
    pub fn dc_version() -> *const c_char;
    pub fn dc_version_number() -> c_uint;

    // runtime
    pub fn dc_set_num_threads(n: c_int) -> dc_status;
    pub fn dc_get_num_threads() -> c_int;
    pub fn dc_cuda_available() -> c_int;
    pub fn dc_device_check(device: *const c_char) -> dc_status;
    pub fn dc_backend_info() -> *const c_char;
    pub fn dc_cuda_memory_peak(
        device: *const c_char,
        peak_allocated: *mut i64,
        peak_reserved: *mut i64,
    ) -> dc_status;
    pub fn dc_cuda_memory_reset_peak(device: *const c_char) -> dc_status;

    // arrays and images
    pub fn dc_dtype_name(dtype: dc_dtype) -> *const c_char;
    pub fn dc_dtype_size(dtype: dc_dtype) -> usize;
    pub fn dc_tensor_numel(t: *const dc_tensor) -> i64;
    pub fn dc_tensor_free(t: *mut dc_tensor);
    pub fn dc_npy_read(path: *const c_char, out: *mut dc_tensor) -> dc_status;
    pub fn dc_npy_write(path: *const c_char, t: *const dc_tensor) -> dc_status;
    pub fn dc_image_read(path: *const c_char, out: *mut dc_image) -> dc_status;
    pub fn dc_image_write(path: *const c_char, img: *const dc_image) -> dc_status;
    pub fn dc_image_free(img: *mut dc_image);
    pub fn dc_image_to_tensor(img: *const dc_image, size: c_int, out: *mut dc_tensor) -> dc_status;
    pub fn dc_tensor_to_image(t: *const dc_tensor, index: i64, out: *mut dc_image) -> dc_status;

    // checkpoints
    pub fn dc_checkpoint_open(out: *mut *mut dc_checkpoint, path: *const c_char) -> dc_status;
    pub fn dc_checkpoint_free(ckpt: *mut dc_checkpoint);
    pub fn dc_checkpoint_container(ckpt: *const dc_checkpoint) -> dc_container;
    pub fn dc_checkpoint_count(ckpt: *const dc_checkpoint) -> usize;
    pub fn dc_checkpoint_name(ckpt: *const dc_checkpoint, i: usize) -> *const c_char;
    pub fn dc_checkpoint_tensor(
        ckpt: *const dc_checkpoint,
        i: usize,
        view: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_checkpoint_find(
        ckpt: *const dc_checkpoint,
        name: *const c_char,
        index: *mut usize,
    ) -> dc_status;
    pub fn dc_checkpoint_write(
        path: *const c_char,
        format: dc_checkpoint_format,
        tensors: *const dc_named_tensor,
        count: usize,
    ) -> dc_status;

    // diffusion models
    pub fn dc_model_options_init(options: *mut dc_model_options, version: c_uint) -> dc_status;
    pub fn dc_model_load(
        out: *mut *mut dc_model,
        path: *const c_char,
        options: *const dc_model_options,
    ) -> dc_status;
    pub fn dc_model_free(model: *mut dc_model);
    pub fn dc_model_get_info(model: *const dc_model, info: *mut dc_model_info) -> dc_status;
    pub fn dc_model_get_config(model: *const dc_model, config: *mut dc_model_config)
        -> dc_status;
    pub fn dc_model_describe(model: *const dc_model, buf: *mut c_char, size: usize) -> dc_status;
    pub fn dc_model_eps(
        model: *mut dc_model,
        x: *const dc_tensor,
        t: *const dc_tensor,
        out: *mut dc_tensor,
    ) -> dc_status;

    // diffusion
    pub fn dc_diffusion_options_init(options: *mut dc_diffusion_options, version: c_uint) -> dc_status;
    pub fn dc_invert(
        model: *mut dc_model,
        x0: *const dc_tensor,
        options: *const dc_diffusion_options,
        latent: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_generate(
        model: *mut dc_model,
        latent: *const dc_tensor,
        options: *const dc_diffusion_options,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_add_noise(
        x0: *const dc_tensor,
        noise: *const dc_tensor,
        options: *const dc_diffusion_options,
        xt: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_compare_images(
        a: *const dc_tensor,
        b: *const dc_tensor,
        metrics: *mut dc_image_metrics,
    ) -> dc_status;

    // latent cache
    pub fn dc_latent_cache_open(
        out: *mut *mut dc_latent_cache,
        path: *const c_char,
        model: *mut dc_model,
        inversion: *const dc_diffusion_options,
        gen_steps: c_int,
    ) -> dc_status;
    pub fn dc_latent_cache_free(cache: *mut dc_latent_cache);
    pub fn dc_latent_cache_count(cache: *const dc_latent_cache) -> usize;
    pub fn dc_latent_cache_add(
        cache: *mut dc_latent_cache,
        x0: *const dc_tensor,
        index: *mut usize,
    ) -> dc_status;
    pub fn dc_latent_cache_get(
        cache: *const dc_latent_cache,
        index: usize,
        x0: *mut dc_tensor,
        x_rec: *mut dc_tensor,
        x_lat: *mut dc_tensor,
    ) -> dc_status;

    // sampler
    pub fn dc_sampler_new(
        out: *mut *mut dc_sampler,
        models: *const *mut dc_model,
        count: usize,
    ) -> dc_status;
    pub fn dc_sampler_free(sampler: *mut dc_sampler);
    pub fn dc_sampler_count(sampler: *const dc_sampler) -> usize;
    pub fn dc_sampler_set_weights(sampler: *mut dc_sampler, weights: *const f64) -> dc_status;
    pub fn dc_sampler_set_piecewise(
        sampler: *mut dc_sampler,
        thresholds: *const c_int,
        weights: *const f64,
        pieces: usize,
    ) -> dc_status;
    pub fn dc_sampler_set_ramp(
        sampler: *mut dc_sampler,
        t_a: c_int,
        a: *const f64,
        t_b: c_int,
        b: *const f64,
    ) -> dc_status;
    pub fn dc_sampler_weights_at(
        sampler: *const dc_sampler,
        t: c_int,
        weights: *mut f64,
    ) -> dc_status;
    pub fn dc_sampler_generate(
        sampler: *mut dc_sampler,
        latent: *const dc_tensor,
        options: *const dc_diffusion_options,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_edit_options_init(options: *mut dc_edit_options, version: c_uint) -> dc_status;
    pub fn dc_sampler_edit(
        sampler: *mut dc_sampler,
        x0: *const dc_tensor,
        options: *const dc_edit_options,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_sampler_transition(
        sampler: *mut dc_sampler,
        x0: *const dc_tensor,
        count: c_int,
        options: *const dc_edit_options,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_sampler_translate(
        sampler: *mut dc_sampler,
        x0: *const dc_tensor,
        options: *const dc_edit_options,
        out: *mut dc_tensor,
        projected: *mut dc_tensor,
    ) -> dc_status;

    // tokenizer
    pub fn dc_tokenizer_new(out: *mut *mut dc_tokenizer, vocab_path: *const c_char) -> dc_status;
    pub fn dc_tokenizer_free(tok: *mut dc_tokenizer);
    pub fn dc_tokenize(
        tok: *mut dc_tokenizer,
        texts: *const *const c_char,
        count: usize,
        context_length: c_int,
        truncate: c_int,
        out: *mut dc_tensor,
    ) -> dc_status;

    // CLIP and identity network
    pub fn dc_clip_options_init(options: *mut dc_clip_options, version: c_uint) -> dc_status;
    pub fn dc_clip_load(
        out: *mut *mut dc_clip,
        path: *const c_char,
        options: *const dc_clip_options,
    ) -> dc_status;
    pub fn dc_clip_free(clip: *mut dc_clip);
    pub fn dc_clip_input_size(clip: *const dc_clip) -> c_int;
    pub fn dc_clip_embed_dim(clip: *const dc_clip) -> c_int;
    pub fn dc_clip_preprocess(
        clip: *mut dc_clip,
        x: *const dc_tensor,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_clip_preprocess_image(
        clip: *const dc_clip,
        img: *const dc_image,
        out: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_clip_encode_image(
        clip: *mut dc_clip,
        x: *const dc_tensor,
        features: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_clip_encode_text(
        clip: *mut dc_clip,
        tokens: *const dc_tensor,
        features: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_clip_loss(
        clip: *mut dc_clip,
        tokenizer: *mut dc_tokenizer,
        source: *const c_char,
        target: *const c_char,
        x_src: *const dc_tensor,
        x_trg: *const dc_tensor,
        losses: *mut f64,
        grad: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_idnet_options_init(options: *mut dc_idnet_options, version: c_uint) -> dc_status;
    pub fn dc_idnet_load(
        out: *mut *mut dc_idnet,
        path: *const c_char,
        options: *const dc_idnet_options,
    ) -> dc_status;
    pub fn dc_idnet_free(net: *mut dc_idnet);
    pub fn dc_idnet_features(
        net: *mut dc_idnet,
        x: *const dc_tensor,
        features: *mut dc_tensor,
    ) -> dc_status;
    pub fn dc_idnet_id_loss(
        net: *mut dc_idnet,
        x0: *const dc_tensor,
        x_hat: *const dc_tensor,
        loss: *mut f64,
        per_sample: *mut dc_tensor,
        grad: *mut dc_tensor,
    ) -> dc_status;

    // fine-tuning
    pub fn dc_finetune_options_init(options: *mut dc_finetune_options, version: c_uint) -> dc_status;
    pub fn dc_dataset_preset_at(i: usize) -> *const dc_dataset_preset;
    pub fn dc_dataset_preset_find(name: *const c_char) -> *const dc_dataset_preset;
    pub fn dc_edit_preset_at(i: usize) -> *const dc_edit_preset;
    pub fn dc_edit_preset_find(name: *const c_char) -> *const dc_edit_preset;
    pub fn dc_finetune_options_apply_preset(
        options: *mut dc_finetune_options,
        name: *const c_char,
    ) -> dc_status;
    pub fn dc_finetuner_new(
        out: *mut *mut dc_finetuner,
        base: *mut dc_model,
        clip: *mut dc_clip,
        tokenizer: *mut dc_tokenizer,
        idnet: *mut dc_idnet,
        cache: *mut dc_latent_cache,
        options: *const dc_finetune_options,
    ) -> dc_status;
    pub fn dc_finetuner_free(ft: *mut dc_finetuner);
    pub fn dc_finetuner_train(ft: *mut dc_finetuner, pair: usize, path: *const c_char)
        -> dc_status;
    pub fn dc_finetuner_save(ft: *mut dc_finetuner, path: *const c_char) -> dc_status;
    pub fn dc_model_save_delta(
        model: *const dc_model,
        base: *const dc_model,
        path: *const c_char,
    ) -> dc_status;
    pub fn dc_model_load_finetuned(
        out: *mut *mut dc_model,
        base: *const dc_model,
        path: *const c_char,
        options: *const dc_model_options,
    ) -> dc_status;

    // face descriptor
    pub fn dc_face_descriptor_options_init(
        options: *mut dc_face_descriptor_options,
        version: c_uint,
    ) -> dc_status;
    pub fn dc_face_descriptor_load(
        out: *mut *mut dc_face_descriptor,
        manifest_path: *const c_char,
        weights_path: *const c_char,
        options: *const dc_face_descriptor_options,
    ) -> dc_status;
    pub fn dc_face_descriptor_free(net: *mut dc_face_descriptor);
    pub fn dc_face_crop(
        img: *const dc_image,
        face: *const dc_face_box,
        size: c_int,
        out: *mut dc_image,
    ) -> dc_status;
    pub fn dc_face_descriptor_compute(
        net: *mut dc_face_descriptor,
        img: *const dc_image,
        face: *const dc_face_box,
        descriptor: *mut f32,
    ) -> dc_status;
    pub fn dc_face_distance(a: *const f32, b: *const f32, distance: *mut f64) -> dc_status;
    // face alignment
    pub fn dc_face_aligner_options_init(
        options: *mut dc_face_aligner_options,
        version: c_uint,
    ) -> dc_status;
    pub fn dc_face_aligner_new(
        out: *mut *mut dc_face_aligner,
        options: *const dc_face_aligner_options,
    ) -> dc_status;
    pub fn dc_face_aligner_free(aligner: *mut dc_face_aligner);
    pub fn dc_face_detect(
        aligner: *mut dc_face_aligner,
        img: *const dc_image,
        faces: *mut *mut dc_face,
        count: *mut usize,
    ) -> dc_status;
    pub fn dc_faces_free(faces: *mut dc_face);
    pub fn dc_face_align(
        aligner: *mut dc_face_aligner,
        img: *const dc_image,
        size: c_int,
        out: *mut dc_image,
        face: *mut dc_face,
    ) -> dc_status;
    pub fn dc_face_align_landmarks(
        img: *const dc_image,
        points: *const i64,
        output_size: c_int,
        transform_size: c_int,
        out: *mut dc_image,
    ) -> dc_status;
}
