"""Diffusion models, the DDIM encoder and generator, image metrics and the latent cache."""

import ctypes
from ctypes import byref

from ._arrays import TensorIn, take_tensor, take_tensors, tensor_ref
from ._ffi import check, lib
from ._handle import (Handle, Record, attach_progress, c_path, call_with_progress,
                      enum_value, finish, make_options)
from ._types import (DC_DIFFUSION_OPTIONS_VERSION, DC_MODEL_CONFIG_VERSION,
                     DC_MODEL_OPTIONS_VERSION, DType, ModelFamily, SizeSource, VarType,
                     dc_diffusion_options, dc_image_metrics, dc_model_config, dc_model_info,
                     dc_model_options, dc_tensor)

__all__ = ["Model", "ModelInfo", "ModelConfig", "ImageMetrics", "LatentCache", "add_noise",
           "compare_images", "diffusion_options"]

_F32 = DType.FLOAT32


class ModelInfo(Record):
    """What dc_model_get_info reports; channel_mult and attention_levels have one entry per
    level."""


class ModelConfig(Record):
    """What dc_model_get_config reports: image_size (0: unknown), image_size_source
    (SizeSource), config_path (str or None), var_type (VarType), num_timesteps, beta_start,
    beta_end, warnings (str, lines)."""


class ImageMetrics(Record):
    """mae and psnr (dB) on [0, 1], ssim."""


def diffusion_options(t0=None, steps=None, sampling=None, eta=None, seed=None,
                      num_timesteps=None, beta_start=None, beta_end=None):
    """A dc_diffusion_options from its defaults (t0 500, steps 40, DDIM, eta 0, seed 1234,
    the schedule 0: the model's, from its config, else T 1000, betas 1e-4..0.02) and the
    values given."""
    if sampling is not None:
        sampling = enum_value("dc_sampling", sampling)
    return make_options(dc_diffusion_options, "dc_diffusion_options_init",
                        DC_DIFFUSION_OPTIONS_VERSION, t0=t0, steps=steps, sampling=sampling,
                        eta=eta, seed=seed, num_timesteps=num_timesteps,
                        beta_start=beta_start, beta_end=beta_end)


class Model(Handle):
    """A DDPM or ADM diffusion UNet loaded from any checkpoint container, its architecture
    inferred from the weights.

    device: "cpu", "cuda", "cuda:N" or "auto" (default); dtype: "float32" (default),
    "float16" or "bfloat16"; image_size and head_channels: 0 or None to infer (the image
    size from the config, else the weights, else unknown); config: the model's published
    YAML config (celeba.yml, ...), which gives the image size, var_type and schedule and is
    checked against the weights."""

    _free = "dc_model_free"

    def __init__(self, path, device=None, dtype=None, image_size=None, head_channels=None,
                 config=None):
        super().__init__()
        options = make_options(dc_model_options, "dc_model_options_init",
                               DC_MODEL_OPTIONS_VERSION, device=device,
                               dtype=None if dtype is None else enum_value("dc_dtype", dtype),
                               image_size=image_size, head_channels=head_channels,
                               config_path=None if config is None else c_path(config))
        self._open("dc_model_load", c_path(path), byref(options))

    @classmethod
    def load_finetuned(cls, base, path, device=None, dtype=None):
        """Fine-tuned weights of `base`: a full state dict in any container, or a delta file
        made for this base (Finetuner.save, save_delta). The new model shares nothing
        mutable with base. device and dtype: as for Model(); both None keep base's (one
        given, the other takes Model()'s default)."""
        model = cls.__new__(cls)
        Handle.__init__(model)
        options = None
        if device is not None or dtype is not None:
            options = byref(make_options(
                dc_model_options, "dc_model_options_init", DC_MODEL_OPTIONS_VERSION,
                device=device, dtype=None if dtype is None else enum_value("dc_dtype", dtype)))
        with base._use() as b:
            model._open("dc_model_load_finetuned", b, c_path(path), options)
        return model

    def save_delta(self, base, path):
        """Writes this model minus `base` (of the same architecture) as a delta file, which
        load_finetuned reads on top of base."""
        with self._use() as p, base._use() as b:
            check(lib().dc_model_save_delta(p, b, c_path(path)))

    @property
    def info(self):
        raw = dc_model_info()
        with self._use() as p:
            check(lib().dc_model_get_info(p, byref(raw)))
        fields = Record.of(raw).__dict__
        fields["family"] = ModelFamily(raw.family)
        fields["channel_mult"] = fields["channel_mult"][:raw.levels]
        fields["attention_levels"] = fields["attention_levels"][:raw.levels]
        return ModelInfo(**fields)

    @property
    def config(self):
        """Where the image size came from, var_type and the schedule (ModelConfig)."""
        raw = dc_model_config(version=DC_MODEL_CONFIG_VERSION)
        with self._use() as p:
            check(lib().dc_model_get_config(p, byref(raw)))
        fields = Record.of(raw).__dict__
        fields["image_size_source"] = SizeSource(raw.image_size_source)
        fields["var_type"] = VarType(raw.var_type)
        return ModelConfig(**fields)

    def describe(self):
        """A human-readable description of the inferred architecture."""
        buf = ctypes.create_string_buffer(1 << 16)
        with self._use() as p:
            check(lib().dc_model_describe(p, buf, len(buf)))
        return buf.value.decode("utf-8", "replace")

    def eps(self, x, t):
        """The raw network output for x (N, 3, H, W) and timesteps t (N,), both float32:
        (N, out_channels, H, W) float32."""
        out = dc_tensor()
        x, t = TensorIn(x, _F32, "x"), TensorIn(t, _F32, "t")
        with self._use() as p:
            check(lib().dc_model_eps(p, x.ref, t.ref, byref(out)))
        return take_tensor(out)

    def invert(self, x0, progress=None, **options):
        """Deterministic DDIM inversion of x0 (N, 3, H, W) in [-1, 1] to the latent at t0.
        options: as diffusion_options(); progress: called with a Progress after each step
        (an exception it raises stops the run and propagates)."""
        return self._diffusion("dc_invert", x0, progress, options)

    def generate(self, latent, progress=None, **options):
        """Generation from a latent at t0 back to an image, DDIM or DDPM."""
        return self._diffusion("dc_generate", latent, progress, options)

    def _diffusion(self, function, x, progress, options):
        opts = diffusion_options(**options)
        x = TensorIn(x, _F32, "x")
        out = dc_tensor()
        with self._use() as p:
            call_with_progress(opts, progress, getattr(lib(), function), p, x.ref,
                               byref(opts), byref(out))
        return take_tensor(out)


def add_noise(x0, noise=None, **options):
    """sqrt(abar[t0-1]) x0 + sqrt(1 - abar[t0-1]) noise; noise None draws it with `seed`."""
    opts = diffusion_options(**options)
    out = dc_tensor()
    x0, noise = TensorIn(x0, _F32, "x0"), tensor_ref(noise, _F32, "noise")
    check(lib().dc_add_noise(x0.ref, noise and noise.ref, byref(opts), byref(out)))
    return take_tensor(out)


def compare_images(a, b):
    """Reconstruction measures of two NCHW float32 images in [-1, 1]."""
    metrics = dc_image_metrics()
    check(lib().dc_compare_images(TensorIn(a, _F32, "a").ref, TensorIn(b, _F32, "b").ref,
                                  byref(metrics)))
    return ImageMetrics(**Record.of(metrics).__dict__)


class LatentCache(Handle):
    """Per image (x0, x_rec, x_lat) for one model and one set of parameters, kept in one file
    and reused when every parameter matches: inversion with t0 and steps, reconstruction with
    gen_steps. The model stays in use by the cache until it is closed (closing the model
    first defers its release). progress: called during add() (an exception it raises stops
    the inversion and propagates)."""

    _free = "dc_latent_cache_free"

    def __init__(self, path, model, gen_steps, t0=None, steps=None, progress=None):
        super().__init__()
        self._model = model
        self._options = diffusion_options(t0=t0, steps=steps)
        self._hook = attach_progress(self._options, progress)
        with model._use() as m:
            self._open("dc_latent_cache_open", c_path(path), m, byref(self._options),
                       int(gen_steps), depends_on=(model,))

    def __len__(self):
        with self._use() as p:
            return lib().dc_latent_cache_count(p)

    def add(self, x0):
        """Finds x0 (1, 3, H, W) float32, or inverts, reconstructs and appends it (the file
        is replaced atomically); returns its index."""
        x0 = TensorIn(x0, _F32, "x0")
        index = ctypes.c_size_t()
        with self._use() as p, self._model._use(by_dependent=True):
            status = lib().dc_latent_cache_add(p, x0.ref, byref(index))
        finish(self._hook, status)
        return index.value

    def get(self, index):
        """Entry `index` as (x0, x_rec, x_lat)."""
        outs = [dc_tensor() for _ in range(3)]
        with self._use() as p:
            check(lib().dc_latent_cache_get(p, int(index), *(byref(o) for o in outs)))
        return take_tensors(outs)

    __getitem__ = get

    def __iter__(self):
        for index in range(len(self)):
            yield self.get(index)
