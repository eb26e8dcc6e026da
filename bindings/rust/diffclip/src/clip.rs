//! CLIP and the face identity network (frozen: gradients flow only to their inputs).
use std::path::Path;
use std::ptr;

use crate::error::{check, Result};
use crate::handle::{c_path, c_text, handle, open, with_device};
use crate::image::ImageView;
use crate::sys;
use crate::tensor::{Tensor, TensorView};
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClipLossForm {
    /// -log((2 - L_dir) / 2), what DiffusionCLIP optimises (the default).
    Log,
    /// L_dir = mean(1 - cos), the paper's form.
    Direction,
}

impl ClipLossForm {
    pub(crate) fn raw(self) -> sys::dc_clip_loss_form {
        match self {
            ClipLossForm::Log => sys::DC_CLIP_LOSS_LOG,
            ClipLossForm::Direction => sys::DC_CLIP_LOSS_DIRECTION,
        }
    }
}

/// How to load CLIP: defaults from dc_clip_options_init, then the values set.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    raw: sys::dc_clip_options,
    device: Option<String>,
}

impl ClipOptions {
    pub fn new() -> ClipOptions {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_clip_options_init(&mut raw, sys::DC_CLIP_OPTIONS_VERSION) };
        ClipOptions { raw, device: None }
    }

    /// "cpu" (the default), "cuda", "cuda:N" or "auto".
    pub fn device(mut self, device: &str) -> ClipOptions {
        self.device = Some(device.to_string());
        self
    }

    /// float16 arithmetic as CLIP runs on a GPU (CUDA only).
    pub fn half(mut self, half: bool) -> ClipOptions {
        self.raw.half = half as i32;
        self
    }

    /// Which loss `Clip::loss` differentiates.
    pub fn loss_form(mut self, form: ClipLossForm) -> ClipOptions {
        self.raw.loss_form = form.raw();
        self
    }
}

impl Default for ClipOptions {
    fn default() -> ClipOptions {
        ClipOptions::new()
    }
}

/// The directional CLIP loss; `grad` (with respect to x_trg) when asked for.
#[derive(Debug)]
pub struct ClipLoss {
    pub direction: f64,
    pub log: f64,
    pub grad: Option<Tensor>,
}

handle!(
    /// OpenAI CLIP from a TorchScript archive or a state dict.
    Clip,
    sys::dc_clip,
    sys::dc_clip_free
);

impl Clip {
    pub fn load(path: impl AsRef<Path>, options: &ClipOptions) -> Result<Clip> {
        let path = c_path(path.as_ref())?;
        let (raw, _device) = with_device(options.raw, options.device.as_deref())?;
        let ptr = open(|out| unsafe { sys::dc_clip_load(out, path.as_ptr(), &raw) })?;
        Ok(Clip { ptr })
    }

    /// The side of the square images encode_image takes.
    pub fn input_size(&self) -> usize {
        unsafe { sys::dc_clip_input_size(self.raw()) as usize }
    }

    pub fn embed_dim(&self) -> usize {
        unsafe { sys::dc_clip_embed_dim(self.raw()) as usize }
    }

    /// DiffusionCLIP's preprocessing of float32 (N, 3, H, W) images in [-1, 1].
    pub fn preprocess(&mut self, x: &TensorView<'_>) -> Result<Tensor> {
        let clip = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_clip_preprocess(clip, x.raw(), out) })
    }

    /// CLIP's own preprocessing of an RGB photo (Pillow-exact bicubic resize of the shorter
    /// side, centre crop, mean and std): (1, 3, S, S) float32.
    pub fn preprocess_image(&self, image: &ImageView<'_>) -> Result<Tensor> {
        let clip = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_clip_preprocess_image(clip, image.raw(), out) })
    }

    /// Preprocessed (N, 3, S, S) float32 -> (N, embed_dim) features, not normalised.
    pub fn encode_image(&mut self, x: &TensorView<'_>) -> Result<Tensor> {
        let clip = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_clip_encode_image(clip, x.raw(), out) })
    }

    /// int64 or int32 (N, 77) tokens -> (N, embed_dim) features, not normalised.
    pub fn encode_text(&mut self, tokens: &TensorView<'_>) -> Result<Tensor> {
        let clip = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_clip_encode_text(clip, tokens.raw(), out) })
    }

    /// The directional loss of editing x_src (`source` text) into x_trg (`target` text).
    pub fn loss(
        &mut self,
        tokenizer: &mut Tokenizer,
        source: &str,
        target: &str,
        x_src: &TensorView<'_>,
        x_trg: &TensorView<'_>,
        want_grad: bool,
    ) -> Result<ClipLoss> {
        let (source, target) = (
            c_text(source, "the source text")?,
            c_text(target, "the target text")?,
        );
        let mut losses = [0.0f64; 2];
        let mut grad = Tensor::zeroed();
        let grad_out = if want_grad {
            grad.out()
        } else {
            ptr::null_mut()
        };
        check(unsafe {
            sys::dc_clip_loss(
                self.raw(),
                tokenizer.raw(),
                source.as_ptr(),
                target.as_ptr(),
                x_src.raw(),
                x_trg.raw(),
                losses.as_mut_ptr(),
                grad_out,
            )
        })?;
        let grad = if want_grad {
            Some(grad.validated()?)
        } else {
            None
        };
        Ok(ClipLoss {
            direction: losses[0],
            log: losses[1],
            grad,
        })
    }
}

/// How to load the identity network.
#[derive(Debug, Clone)]
pub struct IdNetOptions {
    raw: sys::dc_idnet_options,
    device: Option<String>,
}

impl IdNetOptions {
    pub fn new() -> IdNetOptions {
        // SAFETY: plain data, filled by the library's initialiser.
        let mut raw = unsafe { std::mem::zeroed() };
        unsafe { sys::dc_idnet_options_init(&mut raw, sys::DC_IDNET_OPTIONS_VERSION) };
        IdNetOptions { raw, device: None }
    }

    /// "cpu" (the default), "cuda", "cuda:N" or "auto".
    pub fn device(mut self, device: &str) -> IdNetOptions {
        self.device = Some(device.to_string());
        self
    }
}

impl Default for IdNetOptions {
    fn default() -> IdNetOptions {
        IdNetOptions::new()
    }
}

/// The identity loss: mean of 1 - <f(x_hat), f(x0)>, per sample and its gradient when asked.
#[derive(Debug)]
pub struct IdLoss {
    pub loss: f64,
    pub per_sample: Option<Tensor>,
    pub grad: Option<Tensor>,
}

handle!(
    /// The IR-SE face identity network of DiffusionCLIP's identity loss.
    IdNet,
    sys::dc_idnet,
    sys::dc_idnet_free
);

impl IdNet {
    pub fn load(path: impl AsRef<Path>, options: &IdNetOptions) -> Result<IdNet> {
        let path = c_path(path.as_ref())?;
        let (raw, _device) = with_device(options.raw, options.device.as_deref())?;
        let ptr = open(|out| unsafe { sys::dc_idnet_load(out, path.as_ptr(), &raw) })?;
        Ok(IdNet { ptr })
    }

    /// Aligned faces (N, 3, H, W) float32 in [-1, 1] -> (N, 512), L2-normalised.
    pub fn features(&mut self, x: &TensorView<'_>) -> Result<Tensor> {
        let net = self.raw();
        Tensor::from_call(|out| unsafe { sys::dc_idnet_features(net, x.raw(), out) })
    }

    pub fn id_loss(
        &mut self,
        x0: &TensorView<'_>,
        x_hat: &TensorView<'_>,
        want_per_sample: bool,
        want_grad: bool,
    ) -> Result<IdLoss> {
        let mut loss = 0.0;
        let (mut per_sample, mut grad) = (Tensor::zeroed(), Tensor::zeroed());
        let per_sample_out = if want_per_sample {
            per_sample.out()
        } else {
            ptr::null_mut()
        };
        let grad_out = if want_grad {
            grad.out()
        } else {
            ptr::null_mut()
        };
        check(unsafe {
            sys::dc_idnet_id_loss(
                self.raw(),
                x0.raw(),
                x_hat.raw(),
                &mut loss,
                per_sample_out,
                grad_out,
            )
        })?;
        Ok(IdLoss {
            loss,
            per_sample: if want_per_sample {
                Some(per_sample.validated()?)
            } else {
                None
            },
            grad: if want_grad {
                Some(grad.validated()?)
            } else {
                None
            },
        })
    }
}
