//! Fine-tuning (the header's "Fine-tuning" section): the published dataset and edit presets,
//! the fine-tuner; fine-tuned weights load with `Model::load_finetuned`.
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::clip::{Clip, ClipLossForm, IdNet};
use crate::error::{check, Result};
use crate::handle::{c_path, c_text, open};
use crate::model::LatentCache;
use crate::progress::{lasting_hook, Callback, Hook, Progress};
use crate::sys;
use crate::tensor::DType;
use crate::tokenizer::Tokenizer;

/// How the gradient flows through the generation steps while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GradMode {
    /// Through all train steps; one Adam step per batch (the published clip_finetune).
    Full,
    /// Per step, with an Adam step every step (the published clip_finetune_eff).
    PerStep,
    /// A mode this binding does not know (a newer library).
    Other(i32),
}

impl GradMode {
    fn from_raw(raw: sys::dc_grad_mode) -> GradMode {
        match raw {
            sys::DC_GRAD_FULL => GradMode::Full,
            sys::DC_GRAD_PER_STEP => GradMode::PerStep,
            other => GradMode::Other(other),
        }
    }

    fn raw(self) -> sys::dc_grad_mode {
        match self {
            GradMode::Full => sys::DC_GRAD_FULL,
            GradMode::PerStep => sys::DC_GRAD_PER_STEP,
            GradMode::Other(raw) => raw,
        }
    }
}

/// The library's static strings (presets live as long as the loaded library).
fn static_str(s: *const c_char) -> &'static str {
    if s.is_null() {
        return "";
    }
    // SAFETY: a NUL-terminated string in the library's static data.
    unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("")
}

/// The published README's settings for a released base model.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPreset {
    /// "celeba", "afhq", "church", "bedroom", "imagenet"
    pub name: &'static str,
    pub description: &'static str,
    /// The published base weights.
    pub model_file: &'static str,
    pub image_size: i32,
    pub t0: i32,
    pub inv_steps: i32,
    pub train_steps: i32,
    pub test_steps: i32,
    pub learning_rate: f64,
    pub lr_gamma: f64,
    pub epochs: i32,
    pub images: i32,
    pub clip_weight: f64,
    pub l1_weight: f64,
    pub id_weight: f64,
    pub grad_mode: GradMode,
    /// Its published YAML config ("celeba.yml", ...).
    pub config_file: &'static str,
}

impl DatasetPreset {
    fn from_raw(raw: *const sys::dc_dataset_preset) -> Option<DatasetPreset> {
        // SAFETY: NULL or a preset in the library's static data.
        let p = unsafe { raw.as_ref() }?;
        Some(DatasetPreset {
            name: static_str(p.name),
            description: static_str(p.description),
            model_file: static_str(p.model_file),
            image_size: p.image_size,
            t0: p.t0,
            inv_steps: p.inv_steps,
            train_steps: p.train_steps,
            test_steps: p.test_steps,
            learning_rate: p.learning_rate,
            lr_gamma: p.lr_gamma,
            epochs: p.epochs,
            images: p.images,
            clip_weight: p.clip_weight,
            l1_weight: p.l1_weight,
            id_weight: p.id_weight,
            grad_mode: GradMode::from_raw(p.grad_mode),
            config_file: static_str(p.config_file),
        })
    }

    /// Every dataset preset.
    pub fn all() -> Vec<DatasetPreset> {
        (0..)
            .map_while(|i| DatasetPreset::from_raw(unsafe { sys::dc_dataset_preset_at(i) }))
            .collect()
    }

    /// The preset called `name`.
    pub fn find(name: &str) -> Option<DatasetPreset> {
        let name = c_text(name, "the name").ok()?;
        DatasetPreset::from_raw(unsafe { sys::dc_dataset_preset_find(name.as_ptr()) })
    }
}

/// A published edit: its texts, its dataset preset and, for the released fine-tuned models,
/// the t0 they were trained with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPreset {
    /// "neanderthal", "pixar", "angry", "makeup", ...
    pub name: &'static str,
    /// A dataset preset's name.
    pub dataset: &'static str,
    pub source: &'static str,
    pub target: &'static str,
    /// 0: the dataset's.
    pub t0: i32,
}

impl EditPreset {
    fn from_raw(raw: *const sys::dc_edit_preset) -> Option<EditPreset> {
        // SAFETY: NULL or a preset in the library's static data.
        let p = unsafe { raw.as_ref() }?;
        Some(EditPreset {
            name: static_str(p.name),
            dataset: static_str(p.dataset),
            source: static_str(p.source),
            target: static_str(p.target),
            t0: p.t0,
        })
    }

    /// Every edit preset.
    pub fn all() -> Vec<EditPreset> {
        (0..)
            .map_while(|i| EditPreset::from_raw(unsafe { sys::dc_edit_preset_at(i) }))
            .collect()
    }

    /// The preset called `name`.
    pub fn find(name: &str) -> Option<EditPreset> {
        let name = c_text(name, "the name").ok()?;
        EditPreset::from_raw(unsafe { sys::dc_edit_preset_find(name.as_ptr()) })
    }
}

/// Fine-tuning parameters (defaults from dc_finetune_options_init: t0 500, 40 inversion and
/// 6 training steps, lr 8e-6 growing 1.3x per epoch, 5 epochs of 50 images, weights clip 3,
/// L1 1, identity 0, the full gradient), a preset's settings and an optional progress
/// closure, called after every generation step (stage "finetune").
pub struct FinetuneOptions<'a> {
    raw: sys::dc_finetune_options,
    texts: Option<Vec<(String, String)>>,
    image_indices: Option<Vec<usize>>,
    master_addr: Option<String>,
    progress: Option<Callback<'a>>,
}

impl<'a> FinetuneOptions<'a> {
    pub fn new() -> FinetuneOptions<'a> {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_finetune_options_init(&mut raw, sys::DC_FINETUNE_OPTIONS_VERSION) };
        FinetuneOptions {
            raw,
            texts: None,
            image_indices: None,
            master_addr: None,
            progress: None,
        }
    }

    /// Sets what a dataset or edit preset holds (an edit preset: its dataset's numbers, its
    /// texts and t0). Apply presets first and explicit choices after them.
    pub fn preset(mut self, name: &str) -> Result<Self> {
        let name = c_text(name, "the preset name")?;
        check(unsafe { sys::dc_finetune_options_apply_preset(&mut self.raw, name.as_ptr()) })?;
        self.texts = None;
        Ok(self)
    }

    /// (source, target) text pairs, each trained from the base weights.
    pub fn texts(mut self, pairs: &[(&str, &str)]) -> Self {
        self.texts = Some(
            pairs
                .iter()
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        );
        self
    }

    /// The latents' timestep; must be the cache's.
    pub fn t0(mut self, t0: i32) -> Self {
        self.raw.t0 = t0;
        self
    }

    /// Inversion steps; must be the cache's.
    pub fn inv_steps(mut self, steps: i32) -> Self {
        self.raw.inv_steps = steps;
        self
    }

    /// Generation steps while training.
    pub fn train_steps(mut self, steps: i32) -> Self {
        self.raw.train_steps = steps;
        self
    }

    pub fn eta(mut self, eta: f64) -> Self {
        self.raw.eta = eta;
        self
    }

    /// Adam's initial rate.
    pub fn learning_rate(mut self, rate: f64) -> Self {
        self.raw.learning_rate = rate;
        self
    }

    /// The rate's factor after every epoch.
    pub fn lr_gamma(mut self, gamma: f64) -> Self {
        self.raw.lr_gamma = gamma;
        self
    }

    pub fn epochs(mut self, epochs: i32) -> Self {
        self.raw.epochs = epochs;
        self
    }

    /// Training images per epoch.
    pub fn images(mut self, images: i32) -> Self {
        self.raw.images = images;
        self
    }

    /// The cache entries to train on, in order (default: 0, 1, ...).
    pub fn image_indices(mut self, indices: &[usize]) -> Self {
        self.image_indices = Some(indices.to_vec());
        self
    }

    /// Images per Adam step.
    pub fn batch_size(mut self, size: i32) -> Self {
        self.raw.batch_size = size;
        self
    }

    /// The loss weights of CLIP, L1 and identity (> 0 needs an identity network).
    pub fn weights(mut self, clip: f64, l1: f64, id: f64) -> Self {
        self.raw.clip_weight = clip;
        self.raw.l1_weight = l1;
        self.raw.id_weight = id;
        self
    }

    pub fn loss_form(mut self, form: ClipLossForm) -> Self {
        self.raw.loss_form = form.raw();
        self
    }

    pub fn grad_mode(mut self, mode: GradMode) -> Self {
        self.raw.grad_mode = mode.raw();
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.raw.seed = seed;
        self
    }

    /// Continue from the latest epoch file a killed or cancelled run left.
    pub fn resume(mut self, resume: bool) -> Self {
        self.raw.resume = resume as i32;
        self
    }

    /// The full-gradient mode with each UNet call's activations recomputed in the backward
    /// pass: the same gradient in about the per-step mode's memory.
    pub fn recompute(mut self, recompute: bool) -> Self {
        self.raw.recompute = recompute as i32;
        self
    }

    /// The UNet's compute dtype while training (Float32, BFloat16, or Float16 on CUDA); the
    /// weights and Adam's state stay float32.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.raw.dtype = dtype.raw();
        self
    }

    /// How many test images (the first entries of the test cache, else of the training
    /// cache) are edited into "NAME.epochE.test.png" around every epoch (default 0: none).
    pub fn test_images(mut self, count: usize) -> Self {
        self.raw.test_images = count;
        self
    }

    /// The test images' generation steps (default 0: inv_steps).
    pub fn test_steps(mut self, steps: i32) -> Self {
        self.raw.test_steps = steps;
        self
    }

    /// Data parallelism (docs/scaling.md): this process is `rank` of `world_size`, each with
    /// its share of the images in its cache (rank r: images r, r + world_size, ...).
    pub fn process_group(mut self, world_size: i32, rank: i32) -> Self {
        self.raw.world_size = world_size;
        self.raw.rank = rank;
        self
    }

    /// Where rank 0 serves the rendezvous (default 127.0.0.1:29500).
    pub fn master(mut self, addr: &str, port: i32) -> Self {
        self.master_addr = Some(addr.to_string());
        self.raw.master_port = port;
        self
    }

    /// Seconds a rank waits for another (default 300).
    pub fn dist_timeout(mut self, seconds: f64) -> Self {
        self.raw.dist_timeout = seconds;
        self
    }

    /// Called after every generation step: `true` continues, `false` cancels the run.
    pub fn progress(mut self, callback: impl FnMut(&Progress<'_>) -> bool + Send + 'a) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }
}

impl Default for FinetuneOptions<'_> {
    fn default() -> Self {
        FinetuneOptions::new()
    }
}

/// DiffusionCLIP's fine-tuning of a copy of a latent cache's model (which stays unchanged) on
/// the cache's images, guided by CLIP and optionally an identity network. It borrows them
/// all, and keeps the options' progress closure, for its lifetime.
pub struct Finetuner<'a> {
    ptr: NonNull<sys::dc_finetuner>,
    text_pairs: usize,
    hook: Option<Box<Hook<Callback<'a>>>>,
    _handles: PhantomData<&'a mut ()>,
}

// SAFETY: used by one thread at a time (&mut self); its handles are borrowed exclusively and
// its progress closure is Send.
unsafe impl Send for Finetuner<'_> {}

impl<'a> Finetuner<'a> {
    /// A fine-tuner of `cache`'s model (the base), whose images it trains on; the options'
    /// t0 and inv_steps must be the cache's.
    pub fn new<'c: 'a>(
        cache: &'a mut LatentCache<'c>,
        clip: &'a mut Clip,
        tokenizer: &'a mut Tokenizer,
        idnet: Option<&'a mut IdNet>,
        options: FinetuneOptions<'a>,
    ) -> Result<Finetuner<'a>> {
        Finetuner::with_test_cache(cache, None, clip, tokenizer, idnet, options)
    }

    /// As `new`, with the test images' own latent cache (made like `cache`), whose first
    /// `test_images` entries are edited into each epoch's grid.
    pub fn with_test_cache<'c: 'a, 't: 'a>(
        cache: &'a mut LatentCache<'c>,
        test_cache: Option<&'a mut LatentCache<'t>>,
        clip: &'a mut Clip,
        tokenizer: &'a mut Tokenizer,
        idnet: Option<&'a mut IdNet>,
        options: FinetuneOptions<'a>,
    ) -> Result<Finetuner<'a>> {
        let mut raw = options.raw;
        raw.test_cache = test_cache.map_or(ptr::null_mut(), |c| c.raw());
        // the library copies the texts and indices: these need only outlive the call
        let texts = options
            .texts
            .as_ref()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|(s, t)| Ok((c_text(s, "a source text")?, c_text(t, "a target text")?)))
                    .collect::<Result<Vec<(CString, CString)>>>()
            })
            .transpose()?;
        let sources: Vec<*const c_char>;
        let targets: Vec<*const c_char>;
        if let Some(texts) = &texts {
            sources = texts.iter().map(|(s, _)| s.as_ptr()).collect();
            targets = texts.iter().map(|(_, t)| t.as_ptr()).collect();
            raw.source_texts = sources.as_ptr();
            raw.target_texts = targets.as_ptr();
            raw.text_pairs = texts.len();
        }
        if let Some(indices) = &options.image_indices {
            raw.image_indices = indices.as_ptr();
            raw.image_count = indices.len();
        }
        // read by dc_finetuner_new only
        let master = options
            .master_addr
            .as_deref()
            .map(|a| c_text(a, "the master address"))
            .transpose()?;
        if let Some(master) = &master {
            raw.master_addr = master.as_ptr();
        }
        let hook = lasting_hook(&mut raw, options.progress);
        let idnet = idnet.map_or(ptr::null_mut(), |n| n.raw());
        let ptr = open(|out| unsafe {
            sys::dc_finetuner_new(
                out,
                cache.model_raw(),
                clip.raw(),
                tokenizer.raw(),
                idnet,
                cache.raw(),
                &raw,
            )
        })?;
        Ok(Finetuner {
            ptr,
            text_pairs: raw.text_pairs,
            hook,
            _handles: PhantomData,
        })
    }

    /// The number of (source, target) pairs; `train` takes one's index.
    pub fn text_pairs(&self) -> usize {
        self.text_pairs
    }

    /// Trains text pair `pair` from the base weights for every epoch, saving after each
    /// ("ft.pt" -> "ft.epoch2.pt"; after the last epoch `path` itself). The format follows
    /// the extension: ".safetensors", ".delta", else a torch.save zip. A cancelled run
    /// ([`Status::Cancelled`](crate::Status::Cancelled)) leaves the files saved so far
    /// intact and the fine-tuner usable; a panic of the progress closure resumes here.
    pub fn train(&mut self, pair: usize, path: impl AsRef<Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        let status = unsafe { sys::dc_finetuner_train(self.ptr.as_ptr(), pair, path.as_ptr()) };
        if let Some(hook) = self.hook.as_mut() {
            hook.resume_panic();
        }
        check(status)
    }

    /// Writes the current weights: ".delta" as float16 differences from the base,
    /// ".safetensors" or (any other name) a torch.save zip state dict with the base's key
    /// names.
    pub fn save(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        check(unsafe { sys::dc_finetuner_save(self.ptr.as_ptr(), path.as_ptr()) })
    }
}

impl Drop for Finetuner<'_> {
    fn drop(&mut self) {
        unsafe { sys::dc_finetuner_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Finetuner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Finetuner({:p})", self.ptr)
    }
}
