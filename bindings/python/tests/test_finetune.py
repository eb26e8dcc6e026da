"""The Finetuner on the tiny golden models (the DDPM UNet, CLIP ViT, one training image):
progress after every step, an exception in the callable cancelling the run and propagating,
saved weights loading back on their base (full and delta), and the presets."""

import os

import support
from support import TestCase, flat, max_abs_diff

import diffclip


class FinetunerTest(TestCase):
    def setUp(self):
        super().setUp()
        support.needs("dc_finetuner_new")
        golden = support.golden(self, "ddpm_unet")
        root = os.path.dirname(golden)
        self.base = self.handle(diffclip.Model(os.path.join(golden, "model.pt"), device="cpu"))
        self.clip = self.handle(diffclip.Clip(os.path.join(root, "clip_vit",
                                                           "clip_state_dict.pt")))
        self.tokenizer = self.handle(diffclip.Tokenizer(support.clip_vocabulary(self)))
        self.cache = self.handle(diffclip.LatentCache(os.path.join(self.tmp, "train.cache"),
                                                      self.base, gen_steps=2, t0=300, steps=4))
        self.x0 = diffclip.read_npy(os.path.join(root, "finetune_step", "x0.npy"))
        self.assertEqual(self.cache.add(self.x0), 0)

    def handle(self, h):
        self.addCleanup(h.close)
        return h

    def finetuner(self):
        """1 epoch of 1 image, 2 generation steps, at a rate that visibly moves the weights."""
        return self.handle(diffclip.Finetuner(
            self.base, self.clip, self.tokenizer, self.cache, texts=("face", "angry face"),
            t0=300, inv_steps=4, train_steps=2, epochs=1, images=1, learning_rate=1e-3))

    def eps(self, model):
        return model.eps(self.x0, [300.0])

    def test_trains_reports_progress_and_saves_weights_that_load_back(self):
        ft = self.finetuner()
        self.assertEqual(ft.text_pairs, 1)
        seen = []
        path = os.path.join(self.tmp, "ft.pt")
        ft.train(path, progress=seen.append)
        epochs = [p for p in seen if p.stage == "finetune-epoch"]
        seen = [p for p in seen if p.stage != "finetune-epoch"]
        self.assertEqual([(p.stage, p.epoch, p.epochs, p.image, p.images, p.step, p.steps)
                          for p in seen],
                         [("finetune", 1, 1, 1, 1, step, 2) for step in (1, 2)])
        # before training and after the epoch; no test images asked for, so no grid
        self.assertEqual([(p.epoch, p.test_grid) for p in epochs], [(0, None), (1, None)])
        self.assertAlmostEqual(epochs[1].epoch_loss_total, seen[-1].loss_total, places=9)
        self.assertGreater(seen[-1].loss_clip, 0)
        self.assertGreater(seen[-1].grad_norm, 0)
        self.assertAlmostEqual(seen[-1].learning_rate, 1e-3, places=12)
        self.assertTrue(os.path.isfile(path))

        base_eps = self.eps(self.base)
        delta = os.path.join(self.tmp, "ft.delta")
        ft.save(delta)
        with diffclip.Model.load_finetuned(self.base, path) as full, \
                diffclip.Model.load_finetuned(self.base, delta, device="cpu") as from_delta:
            full_eps = self.eps(full)
            moved = max_abs_diff(full_eps, base_eps)
            self.assertGreater(moved, 1e-3)
            self.assertLess(max_abs_diff(self.eps(from_delta), full_eps), 1e-3 * moved)
            # save_delta of a loaded model gives the same weights back
            again = os.path.join(self.tmp, "again.delta")
            from_delta.save_delta(self.base, again)
            with diffclip.Model.load_finetuned(self.base, again) as reloaded:
                self.assertEqual(flat(self.eps(reloaded)), flat(self.eps(from_delta)))
        self.assertEqual(flat(self.eps(self.base)), flat(base_eps))  # the base is unchanged
        with self.assertRaises(diffclip.InvalidArgumentError):
            ft.train(os.path.join(self.tmp, "x.pt"), pair=1)  # there is one pair

    def test_recompute_bfloat16_and_test_grids(self):
        reports = []
        tests = self.handle(diffclip.LatentCache(os.path.join(self.tmp, "tests.cache"),
                                                 self.base, gen_steps=2, t0=300, steps=4))
        self.assertEqual(tests.add(self.x0), 0)
        ft = self.handle(diffclip.Finetuner(
            self.base, self.clip, self.tokenizer, self.cache, texts=("face", "angry face"),
            t0=300, inv_steps=4, train_steps=2, epochs=1, images=1, learning_rate=1e-3,
            recompute=True, dtype="bfloat16", test_cache=tests, test_images=1, test_steps=2))
        path = os.path.join(self.tmp, "modes.pt")
        ft.train(path, progress=lambda p: reports.append(p) if p.stage == "finetune-epoch"
                 else None)
        grids = [os.path.join(self.tmp, "modes.epoch%d.test.png" % e) for e in (0, 1)]
        self.assertEqual([p.test_grid for p in reports], grids)
        self.assertTrue(all(os.path.isfile(g) for g in grids))
        self.assertTrue(-1 <= reports[1].test_direction <= 1)
        with self.assertRaises(TypeError):
            diffclip.finetune_options(test_cache=tests)  # the Finetuner's own argument
        with self.assertRaises(diffclip.InvalidArgumentError):
            self.handle(diffclip.Finetuner(self.base, self.clip, self.tokenizer, self.cache,
                                           texts=("face", "angry face"), t0=300,
                                           inv_steps=4, grad_mode="per_step",
                                           recompute=True))

    def test_an_exception_in_the_progress_callable_cancels_and_propagates(self):
        ft = self.finetuner()
        calls = []

        def stop(progress):
            calls.append((progress.stage, progress.epoch))
            raise KeyError("stop here")

        path = os.path.join(self.tmp, "cancelled.pt")
        with self.assertRaises(KeyError) as caught:
            ft.train(path, progress=stop)
        self.assertEqual(caught.exception.args, ("stop here",))
        self.assertEqual(calls, [("finetune-epoch", 0)])  # the report before training
        self.assertFalse(os.path.exists(path))
        # the fine-tuner stays usable; a CancelledError from the callable is one too
        def cancel(progress):
            raise diffclip.CancelledError("enough")

        with self.assertRaises(diffclip.CancelledError):
            ft.train(path, progress=cancel)
        ft.train(path)
        self.assertTrue(os.path.isfile(path))

    def test_handles_stay_alive_while_the_finetuner_uses_them(self):
        ft = self.finetuner()
        for h in (self.cache, self.tokenizer, self.clip, self.base):
            h.close()
        ft.save(os.path.join(self.tmp, "early.safetensors"))
        ft.close()
        self.assertIsNone(self.base._ptr)

    def test_options_are_checked(self):
        with self.assertRaisesRegex(diffclip.InvalidArgumentError, "latent cache"):
            diffclip.Finetuner(self.base, self.clip, self.tokenizer, self.cache,
                               texts=[("face", "angry face")], t0=301, inv_steps=4)
        with self.assertRaises(TypeError):
            diffclip.finetune_options(progress=print)
        with self.assertRaises(TypeError):
            diffclip.finetune_options(no_such_option=1)


class PresetTest(TestCase):
    def setUp(self):
        super().setUp()
        support.needs("dc_dataset_preset_at")

    def test_presets(self):
        datasets = diffclip.dataset_presets()
        self.assertEqual([p.name for p in datasets],
                         ["celeba", "afhq", "church", "bedroom", "imagenet", "fashion"])
        imagenet = diffclip.dataset_preset("imagenet")
        self.assertEqual((imagenet.image_size, imagenet.grad_mode),
                         (512, diffclip.GradMode.PER_STEP))
        self.assertIsNone(diffclip.dataset_preset("nope"))
        edits = diffclip.edit_presets()
        self.assertEqual(len(edits), 56)
        self.assertTrue(all(diffclip.dataset_preset(e.dataset) for e in edits))
        self.assertEqual(diffclip.edit_preset("grey_hair").target, "person with grey hair")
        self.assertIsNone(diffclip.edit_preset("nope"))

    def test_options_from_a_preset_then_the_values_given(self):
        o = diffclip.finetune_options(preset="neanderthal", epochs=2, grad_mode="per_step")
        self.assertEqual((o.text_pairs, o.source_texts[0], o.target_texts[0]),
                         (1, b"Human", b"Neanderthal"))
        self.assertEqual((o.t0, o.inv_steps, o.train_steps, o.epochs, o.images),
                         (601, 40, 6, 2, 50))
        self.assertEqual(o.grad_mode, diffclip.GradMode.PER_STEP)
        o = diffclip.finetune_options(preset="angry", texts=[("a", "b"), ("c", "d")],
                                      image_indices=[3, 1])
        self.assertEqual((o.t0, o.text_pairs, o.target_texts[1]), (500, 2, b"d"))
        self.assertEqual((o.image_count, o.image_indices[0], o.image_indices[1]), (2, 3, 1))
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.finetune_options(preset="no-such-preset")
