"""The Sampler on the golden noise_combination case: DDIM generation with eps = (1 - g) eps_A +
g eps_B against row g = 0.35 of mixed.npy (max|ours - golden| <= 1e-4 (1 + max|golden|)),
the same mix as three models and as schedules, refused weights, and the editing modes."""

import os

import support
from support import TestCase, flat, shape

import diffclip


class SamplerTest(TestCase):
    def setUp(self):
        super().setUp()
        support.needs("dc_sampler_new")
        directory = support.golden(self, "noise_combination")
        self.a = diffclip.Model(os.path.join(directory, "..", "ddpm_unet", "model.pt"),
                                device="cpu")
        self.addCleanup(self.a.close)
        self.b = diffclip.Model(os.path.join(directory, "model_b.pt"), device="cpu")
        self.addCleanup(self.b.close)
        self.lat = diffclip.read_npy(os.path.join(directory, "lat.npy"))
        mixed = diffclip.read_npy(os.path.join(directory, "mixed.npy"))
        self.assertEqual(shape(mixed), (3, 1, 3, 32, 32))
        n = 3 * 32 * 32
        self.row_035 = flat(mixed)[n:2 * n]  # gammas_of_model_b [0, 0.35, 1]

    def assertRow(self, out, what):
        self.assertEqual(shape(out), (1, 3, 32, 32), what)
        tolerance = 1e-4 * (1 + max(abs(v) for v in self.row_035))
        error = max(abs(x - y) for x, y in zip(flat(out), self.row_035))
        self.assertLessEqual(error, tolerance, "%s: max abs error %.3g > %.3g" % (
            what, error, tolerance))

    def test_mix_of_two_models_matches_the_golden_row(self):
        with diffclip.Sampler([self.a, self.b]) as sampler:
            self.assertEqual(len(sampler), 2)
            self.assertEqual(sampler.weights_at(500), [1.0, 0.0])  # model 0 alone at first
            sampler.set_weights([0.65, 0.35])
            seen = []
            out = sampler.generate(self.lat, t0=300, steps=4, progress=seen.append)
            self.assertRow(out, "gamma 0.35")
            self.assertEqual([p.step for p in seen], [1, 2, 3, 4])
            self.assertEqual({p.stage for p in seen}, {"generate"})

    def test_one_model_twice_and_schedules_give_the_same_mix(self):
        with diffclip.Sampler([self.a, self.b, self.a]) as sampler:
            weights = [0.4, 0.35, 0.25]
            sampler.set_weights(weights)
            self.assertRow(sampler.generate(self.lat, t0=300, steps=4), "three models")
            sampler.set_piecewise({300: weights, 0: weights})
            self.assertRow(sampler.generate(self.lat, t0=300, steps=4), "piecewise")
            sampler.set_ramp(0, weights, 1000, weights)
            self.assertRow(sampler.generate(self.lat, t0=300, steps=4), "ramp")

    def test_schedules_and_refused_weights(self):
        with diffclip.Sampler([self.a, self.b]) as sampler:
            sampler.set_piecewise([(300, [1, 0]), (0, [0.3, 0.7])])
            self.assertEqual(sampler.weights_at(300), [1.0, 0.0])
            self.assertEqual(sampler.weights_at(299), [0.3, 0.7])
            sampler.set_ramp(100, [1, 0], 700, [0, 1])
            self.assertAlmostEqual(sampler.weights_at(400)[1], 0.5, places=12)
            sampler.set_weights([0.25, 0.75])
            with self.assertRaisesRegex(diffclip.InvalidArgumentError, "sum to 1.1"):
                sampler.set_weights([0.5, 0.6])
            with self.assertRaises(diffclip.InvalidArgumentError):
                sampler.set_weights([1.0])  # one weight for two models
            self.assertEqual(sampler.weights_at(10), [0.25, 0.75])  # kept

    def test_the_sampler_keeps_its_models(self):
        sampler = diffclip.Sampler([self.a, self.b])
        sampler.set_weights([0.65, 0.35])
        self.a.close()
        self.b.close()
        self.assertRow(sampler.generate(self.lat, t0=300, steps=4), "after closing the models")
        sampler.close()
        self.assertIsNone(self.a._ptr)

    def test_edit_transition_and_translate(self):
        x0 = self.a.generate(self.lat, t0=300, steps=4)
        options = dict(t0=300, inv_steps=6, gen_steps=4, repeats=2)
        with diffclip.Sampler([self.a, self.b]) as sampler:
            sampler.set_weights([0, 1])
            stages = []
            edit = sampler.edit(x0, progress=lambda p: stages.append(p.stage), **options)
            self.assertEqual(shape(edit), (1, 3, 32, 32))
            self.assertEqual(sorted(set(stages)), ["generate", "invert"])
            strip = sampler.transition(x0, 3, **options)
            self.assertEqual(shape(strip), (3, 3, 32, 32))
            n = 3 * 32 * 32
            self.assertEqual(flat(strip)[2 * n:], flat(edit))  # g = 1 is the edit
            with diffclip.LatentCache(os.path.join(self.tmp, "edit.cache"), self.a,
                                      gen_steps=4, t0=300, steps=6) as cache:
                cached = sampler.edit(x0, cache=cache, **options)
                self.assertEqual(len(cache), 1)
            self.assertEqual(flat(cached), flat(edit))
            out, projected = sampler.translate(x0, **options)
            self.assertEqual((shape(out), shape(projected)), ((1, 3, 32, 32),) * 2)
            self.assertEqual(flat(out), flat(sampler.edit(projected, **options)))
            with self.assertRaises(diffclip.InvalidArgumentError):
                sampler.transition(x0, 1, **options)

            def stop(progress):
                raise KeyError("stop")

            with self.assertRaises(KeyError):
                sampler.edit(x0, progress=stop, **options)
