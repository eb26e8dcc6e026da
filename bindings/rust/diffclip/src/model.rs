//! Diffusion models, the DDIM encoder and generator, image metrics and the latent cache.
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

use crate::error::{check, Result};
use crate::handle::{c_path, handle, open, with_device};
use crate::progress::{call_with_progress, lasting_hook, Callback, Hook, Progress};
use crate::sys;
use crate::tensor::{DType, Tensor, TensorView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    /// The DDPM UNet of the CelebA-HQ / LSUN checkpoints.
    Ddpm,
    /// guided-diffusion's ADM UNet (AFHQ, ImageNet).
    Adm,
    /// A family this binding does not know (a newer library).
    Other(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// Deterministic with eta 0.
    Ddim,
    /// Markovian.
    Ddpm,
}

/// Where a model's image size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeSource {
    /// Nothing tells it: photos need [`ModelOptions::image_size`] or a config.
    Unknown,
    /// The architecture (DDPM attention at 16 x 16, ADM model_defaults).
    Weights,
    /// The config's data.image_size.
    Config,
    /// [`ModelOptions::image_size`].
    Option,
    /// A source this binding does not know (a newer library).
    Other(i32),
}

/// The log-variance of DDPM sampling (the config's model.var_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarType {
    FixedSmall,
    FixedLarge,
    Other(i32),
}

/// What a model's config (or its absence) decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// 0 when unknown.
    pub image_size: i32,
    pub image_size_source: SizeSource,
    pub config_path: Option<String>,
    pub var_type: VarType,
    pub num_timesteps: i32,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Lines ending in '\n', or empty.
    pub warnings: String,
}

/// How to load a model: defaults from dc_model_options_init, then the values set.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    raw: sys::dc_model_options,
    device: Option<String>,
    config: Option<PathBuf>,
}

impl ModelOptions {
    pub fn new() -> ModelOptions {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_model_options_init(&mut raw, sys::DC_MODEL_OPTIONS_VERSION) };
        ModelOptions { raw, device: None, config: None }
    }

    /// The model's published YAML config (celeba.yml, ...): its image size, var_type and
    /// schedule, the model section checked against the weights.
    pub fn config(mut self, path: impl AsRef<Path>) -> ModelOptions {
        self.config = Some(path.as_ref().to_path_buf());
        self
    }

    /// "cpu", "cuda", "cuda:N" or "auto" (the default).
    pub fn device(mut self, device: &str) -> ModelOptions {
        self.device = Some(device.to_string());
        self
    }

    /// Float32 (the default), Float16 or BFloat16.
    pub fn dtype(mut self, dtype: DType) -> ModelOptions {
        self.raw.dtype = dtype.raw();
        self
    }

    /// The size the model was trained at; 0 (the default): the config's, else what the
    /// weights tell, else unknown.
    pub fn image_size(mut self, size: i32) -> ModelOptions {
        self.raw.image_size = size;
        self
    }

    /// ADM channels per attention head; 0 (the default): 64, as published.
    pub fn head_channels(mut self, channels: i32) -> ModelOptions {
        self.raw.head_channels = channels;
        self
    }
}

impl Default for ModelOptions {
    fn default() -> ModelOptions {
        ModelOptions::new()
    }
}

/// What was inferred from a model's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub family: ModelFamily,
    pub image_size: i32,
    pub in_channels: i32,
    /// 6 for learned-sigma models: eps, then the variance output.
    pub out_channels: i32,
    pub base_channels: i32,
    /// One entry per level.
    pub channel_mult: Vec<f64>,
    pub num_res_blocks: i32,
    /// One entry per level: whether it has attention.
    pub attention_levels: Vec<bool>,
    pub head_channels: i32,
    pub num_heads: i32,
    pub learn_sigma: bool,
    pub parameters: i64,
}

/// Diffusion parameters (defaults from dc_diffusion_options_init: t0 500, 40 steps, DDIM,
/// eta 0, seed 1234, the schedule 0: the model's, from its config, else T 1000, betas
/// 1e-4..0.02) and an optional progress closure.
pub struct DiffusionOptions<'a> {
    raw: sys::dc_diffusion_options,
    progress: Option<Callback<'a>>,
}

impl<'a> DiffusionOptions<'a> {
    pub fn new() -> DiffusionOptions<'a> {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_diffusion_options_init(&mut raw, sys::DC_DIFFUSION_OPTIONS_VERSION) };
        DiffusionOptions {
            raw,
            progress: None,
        }
    }

    /// The latent's timestep, 1 <= t0 < T.
    pub fn t0(mut self, t0: i32) -> Self {
        self.raw.t0 = t0;
        self
    }

    pub fn steps(mut self, steps: i32) -> Self {
        self.raw.steps = steps;
        self
    }

    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.raw.sampling = match sampling {
            Sampling::Ddim => sys::DC_SAMPLING_DDIM,
            Sampling::Ddpm => sys::DC_SAMPLING_DDPM,
        };
        self
    }

    pub fn eta(mut self, eta: f64) -> Self {
        self.raw.eta = eta;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.raw.seed = seed;
        self
    }

    pub fn num_timesteps(mut self, t: i32) -> Self {
        self.raw.num_timesteps = t;
        self
    }

    pub fn betas(mut self, start: f64, end: f64) -> Self {
        self.raw.beta_start = start;
        self.raw.beta_end = end;
        self
    }

    /// Called after every step: `true` continues, `false` cancels the run.
    pub fn progress(mut self, callback: impl FnMut(&Progress<'_>) -> bool + Send + 'a) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }

    /// Runs `call` with the raw options, the progress closure installed for its duration.
    pub(crate) fn run<R>(
        &mut self,
        call: impl FnOnce(*const sys::dc_diffusion_options) -> Result<R>,
    ) -> Result<R> {
        call_with_progress(self.raw, self.progress.as_mut(), |raw| call(raw))
    }
}

impl Default for DiffusionOptions<'_> {
    fn default() -> Self {
        DiffusionOptions::new()
    }
}

handle!(
    /// A DDPM or ADM diffusion UNet, its architecture inferred from the weights.
    Model,
    sys::dc_model,
    sys::dc_model_free
);

impl Model {
    /// Loads a diffusion model from any checkpoint container.
    pub fn load(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model> {
        let path = c_path(path.as_ref())?;
        let (mut raw, _device) = with_device(options.raw, options.device.as_deref())?;
        let config = options.config.as_deref().map(c_path).transpose()?;
        if let Some(c) = &config {
            raw.config_path = c.as_ptr();
        }
        let ptr = open(|out| unsafe { sys::dc_model_load(out, path.as_ptr(), &raw) })?;
        Ok(Model { ptr })
    }

    /// Where the image size came from, var_type and the noise schedule.
    pub fn config(&self) -> Result<ModelConfig> {
        // SAFETY: plain data the library fills; its strings live as long as the model.
        let mut raw: sys::dc_model_config = unsafe { std::mem::zeroed() };
        raw.version = sys::DC_MODEL_CONFIG_VERSION;
        check(unsafe { sys::dc_model_get_config(self.raw(), &mut raw) })?;
        let text = |p: *const c_char| {
            (!p.is_null())
                .then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        };
        Ok(ModelConfig {
            image_size: raw.image_size,
            image_size_source: match raw.image_size_source {
                sys::DC_SIZE_UNKNOWN => SizeSource::Unknown,
                sys::DC_SIZE_WEIGHTS => SizeSource::Weights,
                sys::DC_SIZE_CONFIG => SizeSource::Config,
                sys::DC_SIZE_OPTION => SizeSource::Option,
                other => SizeSource::Other(other),
            },
            config_path: text(raw.config_path),
            var_type: match raw.var_type {
                sys::DC_VAR_FIXEDSMALL => VarType::FixedSmall,
                sys::DC_VAR_FIXEDLARGE => VarType::FixedLarge,
                other => VarType::Other(other),
            },
            num_timesteps: raw.num_timesteps,
            beta_start: raw.beta_start,
            beta_end: raw.beta_end,
            warnings: text(raw.warnings).unwrap_or_default(),
        })
    }

    /// Fine-tuned weights of `base`: a full state dict in any container, or a delta file made
    /// for this base ([`Finetuner::save`](crate::Finetuner::save), [`Model::save_delta`]).
    /// The new model shares nothing mutable with base. `options` None: base's device and
    /// dtype (its head layout and image size always come from base).
    pub fn load_finetuned(
        base: &Model,
        path: impl AsRef<Path>,
        options: Option<&ModelOptions>,
    ) -> Result<Model> {
        let path = c_path(path.as_ref())?;
        let options = options
            .map(|o| with_device(o.raw, o.device.as_deref()))
            .transpose()?;
        let raw = options.as_ref().map_or(ptr::null(), |(r, _)| r as *const _);
        let ptr = open(|out| unsafe {
            sys::dc_model_load_finetuned(out, base.raw(), path.as_ptr(), raw)
        })?;
        Ok(Model { ptr })
    }

    /// Writes this model minus `base` (of the same architecture) as a delta file, which
    /// [`Model::load_finetuned`] reads on top of base.
    pub fn save_delta(&self, base: &Model, path: impl AsRef<Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        check(unsafe { sys::dc_model_save_delta(self.raw(), base.raw(), path.as_ptr()) })
    }

    pub fn info(&self) -> Result<ModelInfo> {
        // SAFETY: plain data the library fills.
        let mut raw: sys::dc_model_info = unsafe { std::mem::zeroed() };
        check(unsafe { sys::dc_model_get_info(self.raw(), &mut raw) })?;
        let levels = (raw.levels.max(0) as usize).min(sys::DC_MAX_LEVELS);
        Ok(ModelInfo {
            family: match raw.family {
                sys::DC_MODEL_DDPM => ModelFamily::Ddpm,
                sys::DC_MODEL_ADM => ModelFamily::Adm,
                other => ModelFamily::Other(other),
            },
            image_size: raw.image_size,
            in_channels: raw.in_channels,
            out_channels: raw.out_channels,
            base_channels: raw.base_channels,
            channel_mult: raw.channel_mult[..levels].to_vec(),
            num_res_blocks: raw.num_res_blocks,
            attention_levels: raw.attention_levels[..levels]
                .iter()
                .map(|&a| a != 0)
                .collect(),
            head_channels: raw.head_channels,
            num_heads: raw.num_heads,
            learn_sigma: raw.learn_sigma != 0,
            parameters: raw.parameters,
        })
    }

    /// A human-readable description of what was inferred (several lines).
    pub fn describe(&self) -> Result<String> {
        let mut buf = vec![0 as c_char; 1 << 16];
        check(unsafe { sys::dc_model_describe(self.raw(), buf.as_mut_ptr(), buf.len()) })?;
        // SAFETY: the library NUL-terminates within the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// The raw network output for x (N, 3, H, W) and timesteps t (N), both float32:
    /// (N, out_channels, H, W) float32.
    pub fn eps(&mut self, x: &TensorView<'_>, t: &TensorView<'_>) -> Result<Tensor> {
        let model = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_model_eps(model, x.raw(), t.raw(), out) })
    }

    /// Deterministic DDIM inversion of x0 (N, 3, H, W) in [-1, 1] to the latent at t0.
    pub fn invert(
        &mut self,
        x0: &TensorView<'_>,
        options: &mut DiffusionOptions<'_>,
    ) -> Result<Tensor> {
        let model = self.raw();
        options.run(|raw| {
            Tensor::from_call(|out| unsafe { sys::dc_invert(model, x0.raw(), raw, out) })
        })
    }

    /// Generation from a latent at t0 back to an image.
    pub fn generate(
        &mut self,
        latent: &TensorView<'_>,
        options: &mut DiffusionOptions<'_>,
    ) -> Result<Tensor> {
        let model = self.raw();
        options.run(|raw| {
            Tensor::from_call(|out| unsafe { sys::dc_generate(model, latent.raw(), raw, out) })
        })
    }
}

/// The stochastic forward sqrt(abar[t0-1]) x0 + sqrt(1 - abar[t0-1]) noise; `None` draws the
/// noise with the options' seed.
pub fn add_noise(
    x0: &TensorView<'_>,
    noise: Option<&TensorView<'_>>,
    options: &DiffusionOptions<'_>,
) -> Result<Tensor> {
    let noise = noise.map_or(ptr::null(), |n| n.raw());
    Tensor::from_call(|out| unsafe { sys::dc_add_noise(x0.raw(), noise, &options.raw, out) })
}

/// Reconstruction measures of two NCHW images in [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageMetrics {
    /// Mean absolute error on [0, 1].
    pub mae: f64,
    /// PSNR in dB on [0, 1].
    pub psnr: f64,
    pub ssim: f64,
}

pub fn compare_images(a: &TensorView<'_>, b: &TensorView<'_>) -> Result<ImageMetrics> {
    let mut m = sys::dc_image_metrics::default();
    check(unsafe { sys::dc_compare_images(a.raw(), b.raw(), &mut m) })?;
    Ok(ImageMetrics {
        mae: m.mae,
        psnr: m.psnr,
        ssim: m.ssim,
    })
}

/// Per image (x0, x_rec, x_lat) for one model and one set of parameters, kept in one file.
/// It holds the model (and the inversion options' progress closure, called during `add`)
/// for its lifetime.
pub struct LatentCache<'a> {
    ptr: NonNull<sys::dc_latent_cache>,
    model: NonNull<sys::dc_model>,
    hook: Option<Box<Hook<Callback<'a>>>>,
    _model: PhantomData<&'a mut Model>,
}

// SAFETY: the cache is used by one thread at a time (&mut self), its model is borrowed
// exclusively and its progress closure is Send.
unsafe impl Send for LatentCache<'_> {}

impl<'a> LatentCache<'a> {
    /// Opens (or prepares to create) the cache at `path`: inversion with the options' t0
    /// and steps, reconstruction with `gen_steps`. A file made with another model or other
    /// parameters is refused.
    pub fn open(
        path: impl AsRef<Path>,
        model: &'a mut Model,
        inversion: DiffusionOptions<'a>,
        gen_steps: i32,
    ) -> Result<LatentCache<'a>> {
        let path = c_path(path.as_ref())?;
        let mut raw = inversion.raw;
        let hook = lasting_hook(&mut raw, inversion.progress);
        let model = model.ptr;
        let ptr = open(|out| unsafe {
            sys::dc_latent_cache_open(out, path.as_ptr(), model.as_ptr(), &raw, gen_steps as c_int)
        })?;
        Ok(LatentCache {
            ptr,
            model,
            hook,
            _model: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        unsafe { sys::dc_latent_cache_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn raw(&self) -> *mut sys::dc_latent_cache {
        self.ptr.as_ptr()
    }

    /// The model the cache holds (borrowed for the cache's lifetime).
    pub(crate) fn model_raw(&self) -> *mut sys::dc_model {
        self.model.as_ptr()
    }

    /// Continues a panic of the cache's progress closure, which the library calls during
    /// `add` and the calls that add through the cache (Sampler::edit).
    pub(crate) fn resume_panic(&mut self) {
        if let Some(hook) = self.hook.as_mut() {
            hook.resume_panic();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Finds x0 (1, 3, H, W), or inverts, reconstructs and appends it; its index.
    pub fn add(&mut self, x0: &TensorView<'_>) -> Result<usize> {
        let mut index = 0;
        let status = unsafe { sys::dc_latent_cache_add(self.ptr.as_ptr(), x0.raw(), &mut index) };
        self.resume_panic();
        check(status)?;
        Ok(index)
    }

    /// Entry `index`: (x0, x_rec, x_lat).
    pub fn get(&self, index: usize) -> Result<(Tensor, Tensor, Tensor)> {
        let (mut x0, mut rec, mut lat) = (Tensor::zeroed(), Tensor::zeroed(), Tensor::zeroed());
        check(unsafe {
            sys::dc_latent_cache_get(self.ptr.as_ptr(), index, x0.out(), rec.out(), lat.out())
        })?;
        Ok((x0.validated()?, rec.validated()?, lat.validated()?))
    }
}

impl Drop for LatentCache<'_> {
    fn drop(&mut self) {
        unsafe { sys::dc_latent_cache_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for LatentCache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LatentCache({:p})", self.ptr)
    }
}
