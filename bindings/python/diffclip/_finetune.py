"""Fine-tuning (the header's "Fine-tuning" section): the published dataset and edit presets,
the fine-tuner, and fine-tuned weights loaded on top of their base model (Model.load_finetuned,
Model.save_delta)."""

import contextlib
from ctypes import byref, c_char_p, c_size_t

from ._ffi import check, lib
from ._handle import (Handle, ProgressHook, Record, c_path, c_text, enum_value, finish,
                      make_options, set_options, using_dependencies)
from ._types import DC_FINETUNE_OPTIONS_VERSION, GradMode, dc_finetune_options

__all__ = ["DatasetPreset", "EditPreset", "Finetuner", "dataset_preset", "dataset_presets",
           "edit_preset", "edit_presets", "finetune_options"]


class DatasetPreset(Record):
    """The published README's settings for a released base model: name, description,
    model_file, image_size, t0, inv_steps, train_steps, test_steps, learning_rate, lr_gamma,
    epochs, images, clip_weight, l1_weight, id_weight, grad_mode, config_file (its published
    YAML config, "celeba.yml", ...)."""


class EditPreset(Record):
    """A published edit: name, dataset (a dataset preset's name), source and target texts,
    t0 (0: the dataset's)."""


def _record(cls, pointer):
    if not pointer:
        return None
    fields = Record.of(pointer.contents).__dict__
    if "grad_mode" in fields:
        fields["grad_mode"] = GradMode(fields["grad_mode"])
    return cls(**fields)


def _all(cls, at):
    records, i = [], 0
    while True:
        record = _record(cls, getattr(lib(), at)(i))
        if record is None:
            return records
        records.append(record)
        i += 1


def dataset_presets():
    """Every dataset preset ("celeba", "afhq", "church", "bedroom", "imagenet")."""
    return _all(DatasetPreset, "dc_dataset_preset_at")


def dataset_preset(name):
    """The dataset preset called `name`, or None."""
    return _record(DatasetPreset, lib().dc_dataset_preset_find(c_text(name, "name")))


def edit_presets():
    """Every edit preset ("neanderthal", "pixar", "angry", "makeup", ...)."""
    return _all(EditPreset, "dc_edit_preset_at")


def edit_preset(name):
    """The edit preset called `name`, or None."""
    return _record(EditPreset, lib().dc_edit_preset_find(c_text(name, "name")))


# Set through finetune_options' own arguments (arrays) or by the Finetuner (progress).
_NOT_OPTIONS = ("source_texts", "target_texts", "text_pairs", "image_indices", "image_count",
                "progress", "progress_user", "test_cache")


def finetune_options(preset=None, texts=None, image_indices=None, **fields):
    """A dc_finetune_options: the defaults, then the settings of `preset` (a dataset or edit
    preset's name), then the values given. texts: (source, target) pairs, each trained from
    the base weights (or one pair); image_indices: the cache entries to train on, in order.
    fields: the struct's other fields (t0, inv_steps, train_steps, eta, learning_rate,
    lr_gamma, epochs, images, batch_size, clip_weight, l1_weight, id_weight, loss_form,
    grad_mode, seed, resume, recompute, dtype, test_images, test_steps; and for data
    parallelism, docs/scaling.md: world_size, rank, master_addr, master_port, dist_timeout).
    The arrays live as long as the struct."""
    for name in _NOT_OPTIONS:
        if name in fields:
            raise TypeError("finetune_options: %s is not an option (use texts, image_indices "
                            "or the Finetuner's progress)" % name)
    options = make_options(dc_finetune_options, "dc_finetune_options_init",
                           DC_FINETUNE_OPTIONS_VERSION)
    if preset is not None:
        check(lib().dc_finetune_options_apply_preset(byref(options), c_text(preset, "preset")))
    if fields.get("loss_form") is not None:
        fields["loss_form"] = enum_value("dc_clip_loss_form", fields["loss_form"])
    if fields.get("grad_mode") is not None:
        fields["grad_mode"] = enum_value("dc_grad_mode", fields["grad_mode"])
    for flag in ("resume", "recompute"):
        if fields.get(flag) is not None:
            fields[flag] = int(bool(fields[flag]))
    if fields.get("dtype") is not None:
        fields["dtype"] = enum_value("dc_dtype", fields["dtype"])
    master = fields.pop("master_addr", None)
    set_options(options, **fields)
    if master is not None:
        options.master_addr = c_text(master, "master_addr")
        options.master = options.master_addr  # kept alive
    if texts is not None:
        pairs = [tuple(texts)] if len(texts) == 2 and isinstance(texts[0], str) else texts
        pairs = [(c_text(s, "source text"), c_text(t, "target text")) for s, t in pairs]
        options.source_texts = (c_char_p * len(pairs))(*(s for s, _ in pairs))
        options.target_texts = (c_char_p * len(pairs))(*(t for _, t in pairs))
        options.text_pairs = len(pairs)
        options.texts = (options.source_texts, options.target_texts)  # kept alive
    if image_indices is not None:
        indices = (c_size_t * len(image_indices))(*(int(i) for i in image_indices))
        options.image_indices = indices
        options.image_count = len(indices)
        options.indices = indices  # kept alive
    return options


def _ignore(progress):
    pass


class Finetuner(Handle):
    """DiffusionCLIP's fine-tuning of a copy of `base` (which stays unchanged) on the images
    of `cache` (a LatentCache made with base, t0 and inv_steps), guided by `clip` with its
    `tokenizer`, and `idnet` (an IdNet, needed when id_weight > 0). test_cache: a LatentCache
    of test images (made like `cache`), the first test_images of which are edited into
    "NAME.epochE.test.png" around every epoch (None: cache's). preset, texts, image_indices
    and options: as finetune_options(). Every handle given stays in use by the fine-tuner
    until it is closed (closing one first defers its release)."""

    _free = "dc_finetuner_free"

    def __init__(self, base, clip, tokenizer, cache, idnet=None, preset=None, texts=None,
                 image_indices=None, test_cache=None, **options):
        super().__init__()
        opts = finetune_options(preset, texts, image_indices, **options)
        # The library keeps the options' callback: one hook for the handle's lifetime, whose
        # callable train() sets for its run.
        self._hook = ProgressHook(_ignore)
        opts.progress = self._hook.function
        self._pairs = opts.text_pairs
        self._handles = (base, clip, tokenizer, idnet, cache, test_cache)
        with contextlib.ExitStack() as stack:
            pointers = [None if h is None else stack.enter_context(h._use())
                        for h in self._handles]
            opts.test_cache = pointers[-1]
            self._open("dc_finetuner_new", *pointers[:-1], byref(opts),
                       depends_on=[h for h in self._handles if h is not None])

    @property
    def text_pairs(self):
        """The number of (source, target) pairs; train() takes one's index."""
        return self._pairs

    def _call(self, function, *args):
        with self._use() as p, using_dependencies(self._handles):
            return getattr(lib(), function)(p, *args)

    def train(self, path, pair=0, progress=None):
        """Trains text pair `pair` from the base weights for every epoch, saving after each
        ("ft.pt" -> "ft.epoch2.pt"; after the last epoch `path` itself). The format follows
        the extension: ".safetensors", ".delta", else a torch.save zip. progress: called with
        a Progress after every generation step (stage "finetune") and around every epoch
        (stage "finetune-epoch": epoch_loss_*, test_direction, test_grid); an exception it
        raises stops the run (files saved so far stay intact) and propagates."""
        self._hook.callback = progress if progress is not None else _ignore
        try:
            status = self._call("dc_finetuner_train", int(pair), c_path(path))
        finally:
            self._hook.callback = _ignore
        finish(self._hook, status)

    def save(self, path):
        """Writes the current weights: ".delta" as float16 differences from the base,
        ".safetensors" or (any other name) a torch.save zip state dict with the base's key
        names."""
        check(self._call("dc_finetuner_save", c_path(path)))
