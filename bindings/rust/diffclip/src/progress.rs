//! Progress callbacks: a Rust closure behind the C function pointer. Returning `false`
//! cancels the run; a panic is caught at the boundary (it must not unwind through C), cancels
//! the run and resumes once the C call has returned.
use std::any::Any;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};

use crate::sys;

/// What a progress callback receives after each step.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// "invert", "generate", "reconstruct", "finetune", ...
    pub stage: &'a str,
    /// 1-based step within the current image, and the count.
    pub step: i32,
    pub steps: i32,
    /// 1-based image, and the count.
    pub image: i32,
    pub images: i32,
    /// Fine-tuning; 0 elsewhere.
    pub epoch: i32,
    pub epochs: i32,
    pub loss_clip: f64,
    pub loss_l1: f64,
    pub loss_id: f64,
    pub loss_total: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub seconds_per_image: f64,
    pub eta_seconds: f64,
    /// Stage "finetune-epoch" (before the first epoch, epoch 0, and after each): the
    /// epoch's mean losses over its Adam steps.
    pub epoch_loss_clip: f64,
    pub epoch_loss_l1: f64,
    pub epoch_loss_id: f64,
    pub epoch_loss_total: f64,
    /// The test images' mean CLIP directional similarity with the epoch's weights.
    pub test_direction: f64,
    /// The epoch's test grid PNG, when there are test images.
    pub test_grid: Option<&'a str>,
}

impl<'a> Progress<'a> {
    /// # Safety
    /// `raw.stage` is NULL or a NUL-terminated string valid for `'a`.
    unsafe fn from_raw(raw: &'a sys::dc_progress) -> Progress<'a> {
        let stage = if raw.stage.is_null() {
            ""
        } else {
            CStr::from_ptr(raw.stage).to_str().unwrap_or("")
        };
        Progress {
            stage,
            step: raw.step,
            steps: raw.steps,
            image: raw.image,
            images: raw.images,
            epoch: raw.epoch,
            epochs: raw.epochs,
            loss_clip: raw.loss_clip,
            loss_l1: raw.loss_l1,
            loss_id: raw.loss_id,
            loss_total: raw.loss_total,
            grad_norm: raw.grad_norm,
            learning_rate: raw.learning_rate,
            seconds_per_image: raw.seconds_per_image,
            eta_seconds: raw.eta_seconds,
            epoch_loss_clip: raw.epoch_loss_clip,
            epoch_loss_l1: raw.epoch_loss_l1,
            epoch_loss_id: raw.epoch_loss_id,
            epoch_loss_total: raw.epoch_loss_total,
            test_direction: raw.test_direction,
            test_grid: if raw.test_grid.is_null() {
                None
            } else {
                CStr::from_ptr(raw.test_grid).to_str().ok()
            },
        }
    }
}

/// A boxed progress closure: `true` continues, `false` cancels.
pub(crate) type Callback<'a> = Box<dyn FnMut(&Progress<'_>) -> bool + Send + 'a>;

/// A callback and, after it panicked, the panic waiting to resume.
pub(crate) struct Hook<F> {
    callback: F,
    panic: Option<Box<dyn Any + Send>>,
}

impl<F: FnMut(&Progress<'_>) -> bool> Hook<F> {
    pub(crate) fn new(callback: F) -> Hook<F> {
        Hook {
            callback,
            panic: None,
        }
    }

    /// The (function, user) pair for an options struct; valid while `self` stays in place.
    pub(crate) fn install(&mut self) -> (sys::dc_progress_fn, *mut c_void) {
        (Some(trampoline::<F>), self as *mut Hook<F> as *mut c_void)
    }

    /// Continues a panic of the callback (after the C call has returned).
    pub(crate) fn resume_panic(&mut self) {
        if let Some(payload) = self.panic.take() {
            panic::resume_unwind(payload);
        }
    }
}

unsafe extern "C" fn trampoline<F: FnMut(&Progress<'_>) -> bool>(
    user: *mut c_void,
    progress: *const sys::dc_progress,
) -> c_int {
    // SAFETY: `user` is the Hook<F> that install() handed out, alive for the call.
    let hook = &mut *(user as *mut Hook<F>);
    if hook.panic.is_some() || progress.is_null() {
        return 1;
    }
    let progress = Progress::from_raw(&*progress);
    match panic::catch_unwind(AssertUnwindSafe(|| (hook.callback)(&progress))) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(payload) => {
            hook.panic = Some(payload);
            1
        }
    }
}

/// The options structs that carry a progress callback (`progress`, `progress_user`).
pub(crate) trait ProgressSlot {
    fn set_progress(&mut self, function: sys::dc_progress_fn, user: *mut c_void);
}

macro_rules! progress_slot {
    ($($options:ty),*) => {$(
        impl ProgressSlot for $options {
            fn set_progress(&mut self, function: sys::dc_progress_fn, user: *mut c_void) {
                self.progress = function;
                self.progress_user = user;
            }
        }
    )*};
}
progress_slot!(
    sys::dc_diffusion_options,
    sys::dc_edit_options,
    sys::dc_finetune_options
);

/// Runs `call` with `raw`, the progress closure (if any) installed for the call's duration;
/// a panic of the closure resumes once the call has returned.
pub(crate) fn call_with_progress<O: ProgressSlot, R>(
    mut raw: O,
    progress: Option<&mut Callback<'_>>,
    call: impl FnOnce(&O) -> R,
) -> R {
    let callback = match progress {
        None => return call(&raw),
        Some(callback) => callback,
    };
    let mut hook = Hook::new(callback);
    let (function, user) = hook.install();
    raw.set_progress(function, user);
    let result = call(&raw);
    hook.resume_panic();
    result
}

/// Installs the progress closure (if any) into `raw` for a handle that the library calls
/// back for its whole lifetime: the hook is boxed so that the user pointer stays valid, and
/// the handle keeps it.
pub(crate) fn lasting_hook<'a, O: ProgressSlot>(
    raw: &mut O,
    progress: Option<Callback<'a>>,
) -> Option<Box<Hook<Callback<'a>>>> {
    let mut hook = progress.map(|callback| Box::new(Hook::new(callback)));
    if let Some(hook) = hook.as_mut() {
        let (function, user) = hook.install();
        raw.set_progress(function, user);
    }
    hook
}
