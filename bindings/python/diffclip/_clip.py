"""CLIP and the face identity network (frozen; gradients flow only to their inputs)."""

import collections
import ctypes
from ctypes import byref

from ._arrays import ImageIn, TensorIn, take_tensor
from ._ffi import check, lib
from ._handle import Handle, c_path, c_text, enum_value, make_options
from ._types import (DC_CLIP_OPTIONS_VERSION, DC_IDNET_OPTIONS_VERSION, DType,
                     dc_clip_options, dc_idnet_options, dc_tensor)

__all__ = ["Clip", "ClipLoss", "IdNet", "IdLoss"]

_F32 = DType.FLOAT32

ClipLoss = collections.namedtuple("ClipLoss", "direction log grad")
ClipLoss.__doc__ = """direction: L_dir = mean(1 - cos); log: -log((2 - L_dir) / 2); grad: the
gradient of the clip's loss form with respect to x_trg, or None when not asked for."""
IdLoss = collections.namedtuple("IdLoss", "loss per_sample grad")
IdLoss.__doc__ = """loss: mean of 1 - <f(x_hat), f(x0)>; per_sample (N,) and grad (of loss
with respect to x_hat) are None when not asked for."""


class Clip(Handle):
    """OpenAI CLIP from a TorchScript archive or a state dict.

    device: "cpu" (default), "cuda", "cuda:N" or "auto"; half: float16 on CUDA;
    loss_form: "log" (default, what DiffusionCLIP optimises) or "direction"."""

    _free = "dc_clip_free"

    def __init__(self, path, device=None, half=None, loss_form=None):
        super().__init__()
        options = make_options(dc_clip_options, "dc_clip_options_init", DC_CLIP_OPTIONS_VERSION,
                               device=device, half=None if half is None else int(bool(half)),
                               loss_form=None if loss_form is None
                               else enum_value("dc_clip_loss_form", loss_form))
        self._open("dc_clip_load", c_path(path), byref(options))

    @property
    def input_size(self):
        """The side of the square images encode_image takes."""
        with self._use() as p:
            return lib().dc_clip_input_size(p)

    @property
    def embed_dim(self):
        with self._use() as p:
            return lib().dc_clip_embed_dim(p)

    def _forward(self, function, x, dtype, what):
        x = TensorIn(x, dtype, what)
        out = dc_tensor()
        with self._use() as p:
            check(getattr(lib(), function)(p, x.ref, byref(out)))
        return take_tensor(out)

    def preprocess(self, x):
        """DiffusionCLIP's preprocessing of float32 (N, 3, H, W) images in [-1, 1]."""
        return self._forward("dc_clip_preprocess", x, _F32, "x")

    def preprocess_image(self, image):
        """CLIP's own preprocessing of a (height, width, 3) uint8 photo (Pillow-exact
        bicubic resize of the shorter side, centre crop, mean and std): (1, 3, S, S)."""
        image = ImageIn(image)
        out = dc_tensor()
        with self._use() as p:
            check(lib().dc_clip_preprocess_image(p, image.ref, byref(out)))
        return take_tensor(out)

    def encode_image(self, x):
        """Preprocessed (N, 3, S, S) float32 -> (N, embed_dim) features, not normalised."""
        return self._forward("dc_clip_encode_image", x, _F32, "x")

    def encode_text(self, tokens):
        """int64 or int32 (N, 77) tokens -> (N, embed_dim) features, not normalised."""
        return self._forward("dc_clip_encode_text", tokens, None, "tokens")

    def loss(self, tokenizer, source, target, x_src, x_trg, grad=False):
        """The directional CLIP loss of editing x_src (`source` text) into x_trg (`target`
        text), both float32 (N, 3, H, W) in [-1, 1]: a ClipLoss."""
        losses = (ctypes.c_double * 2)()
        x_src, x_trg = TensorIn(x_src, _F32, "x_src"), TensorIn(x_trg, _F32, "x_trg")
        g = dc_tensor()
        with self._use() as p, tokenizer._use() as tok:
            check(lib().dc_clip_loss(p, tok, c_text(source, "source"), c_text(target, "target"),
                                     x_src.ref, x_trg.ref, losses, byref(g) if grad else None))
        return ClipLoss(losses[0], losses[1], take_tensor(g) if grad else None)


class IdNet(Handle):
    """The IR-SE face identity network (model_ir_se50.pth). device: as for Clip."""

    _free = "dc_idnet_free"

    def __init__(self, path, device=None):
        super().__init__()
        options = make_options(dc_idnet_options, "dc_idnet_options_init",
                               DC_IDNET_OPTIONS_VERSION, device=device)
        self._open("dc_idnet_load", c_path(path), byref(options))

    def features(self, x):
        """Aligned faces (N, 3, H, W) float32 in [-1, 1] -> (N, 512), L2-normalised."""
        x = TensorIn(x, _F32, "x")
        out = dc_tensor()
        with self._use() as p:
            check(lib().dc_idnet_features(p, x.ref, byref(out)))
        return take_tensor(out)

    def id_loss(self, x0, x_hat, per_sample=False, grad=False):
        """The identity loss between sources x0 and edits x_hat: an IdLoss."""
        x0, x_hat = TensorIn(x0, _F32, "x0"), TensorIn(x_hat, _F32, "x_hat")
        loss = ctypes.c_double()
        outs = (dc_tensor(), dc_tensor())
        with self._use() as p:
            check(lib().dc_idnet_id_loss(p, x0.ref, x_hat.ref, byref(loss),
                                         byref(outs[0]) if per_sample else None,
                                         byref(outs[1]) if grad else None))
        return IdLoss(loss.value, take_tensor(outs[0]) if per_sample else None,
                      take_tensor(outs[1]) if grad else None)
