//! Generation with the noise of several models mixed, and editing, transition and
//! translation over the mix (the header's "Sampler" section).
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::ptr::{self, NonNull};

use crate::error::{check, invalid, Result};
use crate::handle::open;
use crate::model::{DiffusionOptions, LatentCache, Model};
use crate::progress::{call_with_progress, Callback, Progress};
use crate::sys;
use crate::tensor::{Tensor, TensorView};

/// Parameters of `edit`, `transition` and `translate` (defaults from dc_edit_options_init:
/// t0 500, 40 inversion and 40 generation steps, eta 0, seed 1234, 10 repeats of 6
/// projection steps, T 1000, betas 1e-4..0.02) and an optional progress closure.
pub struct EditOptions<'a> {
    raw: sys::dc_edit_options,
    progress: Option<Callback<'a>>,
}

impl<'a> EditOptions<'a> {
    pub fn new() -> EditOptions<'a> {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_edit_options_init(&mut raw, sys::DC_EDIT_OPTIONS_VERSION) };
        EditOptions {
            raw,
            progress: None,
        }
    }

    /// The latent's timestep.
    pub fn t0(mut self, t0: i32) -> Self {
        self.raw.t0 = t0;
        self
    }

    /// DDIM inversion steps with model 0.
    pub fn inv_steps(mut self, steps: i32) -> Self {
        self.raw.inv_steps = steps;
        self
    }

    /// DDIM generation steps with the mix.
    pub fn gen_steps(mut self, steps: i32) -> Self {
        self.raw.gen_steps = steps;
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

    /// translate: the number of projections.
    pub fn repeats(mut self, repeats: i32) -> Self {
        self.raw.repeats = repeats;
        self
    }

    /// translate: DDIM steps of a projection.
    pub fn projection_steps(mut self, steps: i32) -> Self {
        self.raw.projection_steps = steps;
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

    /// Called after every step (stages "invert", "project", "generate"): `true` continues,
    /// `false` cancels the run.
    pub fn progress(mut self, callback: impl FnMut(&Progress<'_>) -> bool + Send + 'a) -> Self {
        self.progress = Some(Box::new(callback));
        self
    }

    /// Runs `call` with the raw options (their cache set), the progress closure installed for
    /// its duration.
    fn run<R>(
        &mut self,
        cache: *mut sys::dc_latent_cache,
        call: impl FnOnce(*const sys::dc_edit_options) -> Result<R>,
    ) -> Result<R> {
        let mut raw = self.raw;
        raw.cache = cache;
        call_with_progress(raw, self.progress.as_mut(), |raw| call(raw))
    }
}

impl Default for EditOptions<'_> {
    fn default() -> Self {
        EditOptions::new()
    }
}

/// eps(x, t) = sum_i w_i(t) eps_i(x, t) over models of one family, resolution and output
/// layout (model 0 is the original). The weights start as model 0 alone and must sum to 1
/// at every t. The sampler borrows its models for its lifetime.
pub struct Sampler<'a> {
    ptr: NonNull<sys::dc_sampler>,
    count: usize,
    _models: PhantomData<&'a mut Model>,
}

// SAFETY: the sampler is used by one thread at a time (&mut self) and its models are
// borrowed exclusively.
unsafe impl Send for Sampler<'_> {}

impl<'a> Sampler<'a> {
    /// A sampler over 1 to 64 models (one model more than once: sum its weights instead).
    pub fn new(models: impl IntoIterator<Item = &'a mut Model>) -> Result<Sampler<'a>> {
        let raw: Vec<*mut sys::dc_model> = models.into_iter().map(|m| m.raw()).collect();
        let ptr = open(|out| unsafe { sys::dc_sampler_new(out, raw.as_ptr(), raw.len()) })?;
        Ok(Sampler {
            ptr,
            count: raw.len(),
            _models: PhantomData,
        })
    }

    /// The number of models.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn weights<'w>(&self, weights: &'w [f64], what: &str) -> Result<&'w [f64]> {
        if weights.len() != self.count {
            return Err(invalid(format!(
                "{what}: {} weights for {} models",
                weights.len(),
                self.count
            )));
        }
        Ok(weights)
    }

    /// Constant weights, one per model.
    pub fn set_weights(&mut self, weights: &[f64]) -> Result<()> {
        let weights = self.weights(weights, "weights")?;
        check(unsafe { sys::dc_sampler_set_weights(self.ptr.as_ptr(), weights.as_ptr()) })
    }

    /// At timestep t the weights of the highest threshold <= t; e.g. the published hybrid
    /// config {300: [1, 0], 0: [0.3, 0.7]} is `&[(300, [1.0, 0.0]), (0, [0.3, 0.7])]`. The
    /// lowest threshold must be <= 0.
    pub fn set_piecewise<W: AsRef<[f64]>>(&mut self, pieces: &[(i32, W)]) -> Result<()> {
        let thresholds: Vec<c_int> = pieces.iter().map(|(t, _)| *t).collect();
        let mut rows = Vec::with_capacity(pieces.len() * self.count);
        for (t, row) in pieces {
            rows.extend_from_slice(self.weights(row.as_ref(), &format!("threshold {t}"))?);
        }
        check(unsafe {
            sys::dc_sampler_set_piecewise(
                self.ptr.as_ptr(),
                thresholds.as_ptr(),
                rows.as_ptr(),
                pieces.len(),
            )
        })
    }

    /// Weights `a` at t <= t_a, `b` at t >= t_b, linear in t between.
    pub fn set_ramp(&mut self, t_a: i32, a: &[f64], t_b: i32, b: &[f64]) -> Result<()> {
        let (a, b) = (self.weights(a, "a")?, self.weights(b, "b")?);
        check(unsafe {
            sys::dc_sampler_set_ramp(self.ptr.as_ptr(), t_a, a.as_ptr(), t_b, b.as_ptr())
        })
    }

    /// The weights at timestep t, one per model.
    pub fn weights_at(&self, t: i32) -> Result<Vec<f64>> {
        let mut weights = vec![0.0; self.count];
        check(unsafe { sys::dc_sampler_weights_at(self.ptr.as_ptr(), t, weights.as_mut_ptr()) })?;
        Ok(weights)
    }

    /// Generation from a latent at t0 with the mix (as [`Model::generate`]).
    pub fn generate(
        &mut self,
        latent: &TensorView<'_>,
        options: &mut DiffusionOptions<'_>,
    ) -> Result<Tensor> {
        let sampler = self.ptr.as_ptr();
        options.run(|raw| {
            Tensor::from_call(|out| unsafe {
                sys::dc_sampler_generate(sampler, latent.raw(), raw, out)
            })
        })
    }

    /// Runs an edit with the cache (if any) in the options; a panic of the cache's own
    /// progress closure resumes after the call.
    fn edit_call<R>(
        &mut self,
        cache: Option<&mut LatentCache<'_>>,
        options: &mut EditOptions<'_>,
        call: impl FnOnce(*mut sys::dc_sampler, *const sys::dc_edit_options) -> Result<R>,
    ) -> Result<R> {
        let sampler = self.ptr.as_ptr();
        let raw_cache = cache.as_ref().map_or(ptr::null_mut(), |c| c.raw());
        let result = options.run(raw_cache, |raw| call(sampler, raw));
        if let Some(cache) = cache {
            cache.resume_panic();
        }
        result
    }

    /// x0 (N, 3, H, W) in [-1, 1] inverted with model 0 to t0 (through `cache`, a latent
    /// cache of model 0's weights made with this t0 and inv_steps, when given), then
    /// generated with the mix.
    pub fn edit(
        &mut self,
        x0: &TensorView<'_>,
        cache: Option<&mut LatentCache<'_>>,
        options: &mut EditOptions<'_>,
    ) -> Result<Tensor> {
        self.edit_call(cache, options, |sampler, raw| {
            Tensor::from_call(|out| unsafe { sys::dc_sampler_edit(sampler, x0.raw(), raw, out) })
        })
    }

    /// x0 inverted once, then generated `count` >= 2 times from model 0 alone to the
    /// sampler's weights: (N * count, 3, H, W), image n's transition in rows n * count...
    pub fn transition(
        &mut self,
        x0: &TensorView<'_>,
        count: i32,
        cache: Option<&mut LatentCache<'_>>,
        options: &mut EditOptions<'_>,
    ) -> Result<Tensor> {
        self.edit_call(cache, options, |sampler, raw| {
            Tensor::from_call(|out| unsafe {
                sys::dc_sampler_transition(sampler, x0.raw(), count, raw, out)
            })
        })
    }

    /// Unseen-domain translation and stroke-to-image: x0 projected by `repeats` noising and
    /// denoising rounds with model 0, then edited with the mix: (output, projection).
    pub fn translate(
        &mut self,
        x0: &TensorView<'_>,
        options: &mut EditOptions<'_>,
    ) -> Result<(Tensor, Tensor)> {
        self.edit_call(None, options, |sampler, raw| {
            let (mut out, mut projected) = (Tensor::zeroed(), Tensor::zeroed());
            check(unsafe {
                sys::dc_sampler_translate(sampler, x0.raw(), raw, out.out(), projected.out())
            })?;
            Ok((out.validated()?, projected.validated()?))
        })
    }
}

impl Drop for Sampler<'_> {
    fn drop(&mut self) {
        unsafe { sys::dc_sampler_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Sampler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sampler({:p}, {} models)", self.ptr, self.count)
    }
}
