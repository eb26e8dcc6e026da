"""Generation with the noise of several models mixed, and editing, transition and
translation over the mix (the header's "Sampler" section)."""

import contextlib
from ctypes import byref, c_double, c_int, c_void_p

from ._arrays import TensorIn, take_tensor, take_tensors
from ._errors import InvalidArgumentError
from ._ffi import check, lib
from ._handle import (Handle, attach_progress, finish, make_options, using_dependencies)
from ._model import diffusion_options
from ._types import DC_EDIT_OPTIONS_VERSION, DType, dc_edit_options, dc_tensor

__all__ = ["Sampler", "edit_options"]

_F32 = DType.FLOAT32


def edit_options(t0=None, inv_steps=None, gen_steps=None, eta=None, seed=None, repeats=None,
                 projection_steps=None, num_timesteps=None, beta_start=None, beta_end=None):
    """A dc_edit_options from its defaults (t0 500, 40 inversion and 40 generation steps, eta
    0, seed 1234, 10 repeats of 6 projection steps, T 1000, betas 1e-4..0.02) and the values
    given."""
    return make_options(dc_edit_options, "dc_edit_options_init", DC_EDIT_OPTIONS_VERSION,
                        t0=t0, inv_steps=inv_steps, gen_steps=gen_steps, eta=eta, seed=seed,
                        repeats=repeats, projection_steps=projection_steps,
                        num_timesteps=num_timesteps, beta_start=beta_start, beta_end=beta_end)


class Sampler(Handle):
    """eps(x, t) = sum_i w_i(t) eps_i(x, t) over models of one family, resolution and output
    layout (model 0 is the original). The weights start as model 0 alone and must sum to 1 at
    every t. The same Model may appear more than once. The models stay in use by the sampler
    until it is closed (closing a model first defers its release)."""

    _free = "dc_sampler_free"

    def __init__(self, models):
        super().__init__()
        self._models = tuple(models)
        distinct = list({id(m): m for m in self._models}.values())
        with contextlib.ExitStack() as stack:
            pointers = {id(m): stack.enter_context(m._use()).value for m in distinct}
            array = (c_void_p * len(self._models))(*(pointers[id(m)] for m in self._models))
            self._open("dc_sampler_new", array, len(self._models), depends_on=distinct)

    def __len__(self):
        with self._use() as p:
            return lib().dc_sampler_count(p)

    def _weights(self, values, what):
        values = [float(v) for v in values]
        if len(values) != len(self):
            raise InvalidArgumentError("%s: %d weights for %d models" % (what, len(values),
                                                                        len(self)))
        return (c_double * len(values))(*values)

    def set_weights(self, weights):
        """Constant weights, one per model."""
        weights = self._weights(weights, "weights")
        with self._use() as p:
            check(lib().dc_sampler_set_weights(p, weights))

    def set_piecewise(self, schedule):
        """At timestep t the weights of the highest threshold <= t: schedule maps thresholds
        to weights ({300: [1, 0], 0: [0.3, 0.7]}, the published hybrid config), or is a list
        of (threshold, weights) pairs. The lowest threshold must be <= 0."""
        pieces = list(schedule.items() if hasattr(schedule, "items") else schedule)
        thresholds = (c_int * len(pieces))(*(int(t) for t, _ in pieces))
        rows = []
        for t, row in pieces:
            rows.extend(self._weights(row, "weights at threshold %d" % int(t)))
        weights = (c_double * len(rows))(*rows)
        with self._use() as p:
            check(lib().dc_sampler_set_piecewise(p, thresholds, weights, len(pieces)))

    def set_ramp(self, t_a, a, t_b, b):
        """Weights `a` at t <= t_a, `b` at t >= t_b, linear in t between."""
        a, b = self._weights(a, "a"), self._weights(b, "b")
        with self._use() as p:
            check(lib().dc_sampler_set_ramp(p, int(t_a), a, int(t_b), b))

    def weights_at(self, t):
        """The weights at timestep t, a list with one entry per model."""
        weights = (c_double * len(self))()
        with self._use() as p:
            check(lib().dc_sampler_weights_at(p, int(t), weights))
        return list(weights)

    @contextlib.contextmanager
    def _running(self, cache=None):
        """The sampler's pointer with its models held, and a cache (with its model) for an
        edit set in `options`."""
        with self._use() as p, using_dependencies(
                self._models + ((cache._model,) if cache is not None else ())):
            yield p

    def generate(self, latent, progress=None, **options):
        """Generation from a latent at t0 with the mix (as Model.generate; options as
        diffusion_options())."""
        opts = diffusion_options(**options)
        latent = TensorIn(latent, _F32, "latent")
        out = dc_tensor()
        hook = attach_progress(opts, progress)
        with self._running() as p:
            status = lib().dc_sampler_generate(p, latent.ref, byref(opts), byref(out))
        finish(hook, status)
        return take_tensor(out)

    def _edit(self, function, x0, extra, outputs, cache, progress, options):
        opts = edit_options(**options)
        x0 = TensorIn(x0, _F32, "x0")
        outs = [dc_tensor() for _ in range(outputs)]
        hook = attach_progress(opts, progress)
        with self._running(cache) as p, \
                (cache._use() if cache is not None else contextlib.nullcontext()) as c:
            opts.cache = None if c is None else c.value
            status = getattr(lib(), function)(p, x0.ref, *extra, byref(opts),
                                              *(byref(o) for o in outs))
        try:
            if cache is not None:
                finish(cache._hook, 0)  # an exception of the cache's own progress callable
            finish(hook, status)
        except BaseException:
            for o in outs:  # whatever a failed or cancelled call left
                lib().dc_tensor_free(byref(o))
            raise
        return take_tensors(outs)

    def edit(self, x0, cache=None, progress=None, **options):
        """x0 (N, 3, H, W) in [-1, 1] inverted with model 0 to t0 (through `cache`, a
        LatentCache of model 0 made with this t0 and inv_steps, when given), then generated
        with the mix. options: as edit_options(); progress: called with a Progress after each
        step (stages "invert", "generate"; an exception it raises stops the run and
        propagates)."""
        return self._edit("dc_sampler_edit", x0, (), 1, cache, progress, options)[0]

    def transition(self, x0, count, cache=None, progress=None, **options):
        """x0 inverted once, then generated `count` >= 2 times from model 0 alone to the
        sampler's weights: (N * count, 3, H, W), image n's transition in rows n * count..."""
        return self._edit("dc_sampler_transition", x0, (int(count),), 1, cache, progress,
                          options)[0]

    def translate(self, x0, progress=None, **options):
        """Unseen-domain translation and stroke-to-image: x0 projected by `repeats` noising
        and denoising rounds with model 0, then edited with the mix. Returns (out,
        projected)."""
        return self._edit("dc_sampler_translate", x0, (), 2, None, progress, options)
