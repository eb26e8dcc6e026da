"""Progress callbacks as Python callables (an exception cancels the run and propagates), the
handles' thread rule, and the latent cache's dependency on its model."""

import array
import os
import threading

import support
from support import TestCase, flat, shape

import diffclip


class _ModelCase(TestCase):
    def setUp(self):
        super().setUp()
        support.needs("dc_invert")
        directory = support.golden(self, "ddpm_unet")
        self.model = diffclip.Model(os.path.join(directory, "model.pt"), device="cpu")
        self.addCleanup(self.model.close)
        self.x0 = diffclip.read_npy(os.path.join(directory, "x0.npy"))

    def first_image(self):
        """x0[:1], without numpy too."""
        count, *rest = shape(self.x0)
        values = flat(self.x0)
        first = array.array("f", values[:len(values) // count])
        return memoryview(first).cast("B").cast("f", [1] + rest)


class ProgressTest(_ModelCase):
    def test_called_after_every_step(self):
        seen = []
        self.model.invert(self.x0, t0=300, steps=8, progress=seen.append)
        self.assertTrue(seen)
        self.assertIsInstance(seen[0], diffclip.Progress)
        self.assertEqual({p.stage for p in seen}, {"invert"})
        self.assertEqual([p.step for p in seen if p.image == 1],
                         list(range(1, seen[0].steps + 1)))
        self.assertEqual(seen[-1].step, seen[-1].steps)

    def test_an_exception_cancels_and_propagates(self):
        calls = []

        def stop_at_two(progress):
            calls.append(progress.step)
            if len(calls) == 2:
                raise KeyError("stop here")

        with self.assertRaises(KeyError) as caught:
            self.model.invert(self.x0, t0=300, steps=8, progress=stop_at_two)
        self.assertEqual(caught.exception.args, ("stop here",))
        self.assertEqual(len(calls), 2)
        # the handle stays usable and gives the uncancelled result
        full = self.model.invert(self.x0, t0=300, steps=8)
        again = self.model.invert(self.x0, t0=300, steps=8, progress=lambda p: None)
        self.assertEqual(flat(full), flat(again))

    def test_cancelled_error_from_the_callback(self):
        def cancel(progress):
            raise diffclip.CancelledError("enough")

        with self.assertRaises(diffclip.CancelledError):
            self.model.generate(self.x0, t0=300, steps=4, progress=cancel)

    def test_reentrant_use_is_refused(self):
        def reenter(progress):
            self.model.eps(self.x0, [0.0] * shape(self.x0)[0])

        with self.assertRaises(diffclip.InvalidArgumentError):
            self.model.invert(self.x0, t0=300, steps=4, progress=reenter)

    def test_other_threads_may_use_other_handles(self):
        results = {}
        directory = support.golden(self, "ddpm_unet")

        def run(key):
            with diffclip.Model(os.path.join(directory, "model.pt"), device="cpu") as model:
                results[key] = flat(model.invert(self.x0, t0=300, steps=4))

        workers = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.assertEqual(results[0], results[1])
        self.assertEqual(results[0], flat(self.model.invert(self.x0, t0=300, steps=4)))


class LatentCacheTest(_ModelCase):
    def setUp(self):
        super().setUp()
        support.needs("dc_latent_cache_open")

    def test_add_get_reuse(self):
        path = os.path.join(self.tmp, "latents.cache")
        image = self.first_image()
        steps = []
        with diffclip.LatentCache(path, self.model, gen_steps=2, t0=300, steps=4,
                                  progress=steps.append) as cache:
            self.assertEqual(len(cache), 0)
            self.assertEqual(cache.add(image), 0)
            self.assertEqual(cache.add(image), 0)  # found, not added again
            self.assertEqual(len(cache), 1)
            x0, x_rec, x_lat = cache[0]
            self.assertEqual(flat(x0), flat(image))
            self.assertEqual(shape(x_rec), shape(image))
            self.assertGolden(x_lat, self.model.invert(image, t0=300, steps=4), "cached latent")
            self.assertEqual(len(list(cache)), 1)
        with diffclip.LatentCache(path, self.model, gen_steps=2, t0=300, steps=4) as cache:
            self.assertEqual(len(cache), 1)
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.LatentCache(path, self.model, gen_steps=2, t0=200, steps=4)

    def test_model_outlives_the_cache(self):
        cache = diffclip.LatentCache(os.path.join(self.tmp, "c.cache"), self.model,
                                     gen_steps=2, t0=300, steps=4)
        self.model.close()
        self.assertTrue(self.model.closed)
        with self.assertRaisesRegex(diffclip.InvalidArgumentError, "closed"):
            self.model.eps(self.x0, [0.0])  # closed for direct use ...
        self.assertEqual(cache.add(self.first_image()), 0)  # ... yet alive for the cache
        cache.close()
        self.assertIsNone(self.model._ptr)  # released with its last dependent
