"""Conformance through the binding with ../shared/golden (README.md there): the DDPM UNet's
eps, DDIM inversion and generation and the stochastic forward, CLIP, the identity network,
the tokenizer and both checkpoint containers. Tolerance as the cases state:
max|ours - golden| <= 1e-4 * (1 + max|golden|), gradients relative L2 <= 1e-3."""

import json
import os

import support
from support import TestCase, flat, shape

import diffclip


class DdpmGolden(TestCase):
    def setUp(self):
        super().setUp()
        self.dir = support.golden(self, "ddpm_unet")

    def npy(self, name):
        return diffclip.read_npy(os.path.join(self.dir, name))

    def test_checkpoint_containers_hold_the_same_tensors(self):
        with diffclip.Checkpoint(os.path.join(self.dir, "model.pt")) as zipped, \
                diffclip.Checkpoint(os.path.join(self.dir, "model_legacy.pt")) as legacy:
            self.assertEqual(zipped.container, diffclip.Container.TORCH_ZIP)
            self.assertEqual(legacy.container, diffclip.Container.TORCH_LEGACY)
            self.assertEqual(sorted(zipped.names()), sorted(legacy.names()))
            self.assertGreater(len(zipped), 10)
            for name in zipped.names():
                self.assertEqual(flat(zipped[name]), flat(legacy[name]), name)

    def test_eps(self):
        support.needs("dc_model_eps")
        for checkpoint in ("model.pt", "model_legacy.pt"):
            with diffclip.Model(os.path.join(self.dir, checkpoint), device="cpu") as model:
                eps = model.eps(self.npy("x.npy"), self.npy("t.npy"))
                self.assertArrayType(eps)
                self.assertGolden(eps, self.npy("eps.npy"), checkpoint + " eps")

    def test_model_info(self):
        support.needs("dc_model_get_info")
        with diffclip.Model(os.path.join(self.dir, "model.pt"), device="cpu") as model:
            info = model.info
            self.assertEqual((info.family, info.image_size, info.in_channels,
                              info.out_channels, info.base_channels, info.levels,
                              info.num_res_blocks, info.learn_sigma),
                             (diffclip.ModelFamily.DDPM, 32, 3, 3, 32, 3, 1, 0))
            self.assertEqual(info.channel_mult, [1.0, 2.0, 2.0])
            self.assertEqual(info.attention_levels, [0, 1, 0])
            self.assertGreater(info.parameters, 100000)
            self.assertIn("32", model.describe())

    def test_config(self):
        support.needs("dc_model_get_config")
        import tempfile
        model_path = os.path.join(self.dir, "model.pt")
        with tempfile.TemporaryDirectory() as tmp:
            good, bad = os.path.join(tmp, "mine.yml"), os.path.join(tmp, "bad.yml")
            with open(good, "w") as f:
                f.write("data:\n    image_size: 32\nmodel:\n    ch: 32\n"
                        "    ch_mult: [1, 2, 2]\n    num_res_blocks: 1\n"
                        "    attn_resolutions: [16, ]\n    var_type: fixedlarge\n"
                        "diffusion:\n    beta_schedule: cosine\n    beta_end: 0.015\n")
            with open(bad, "w") as f:
                f.write("model:\n    ch: 128\n")
            with diffclip.Model(model_path, device="cpu", config=good) as model, \
                    diffclip.Model(model_path, device="cpu") as plain:
                c = model.config
                self.assertEqual((c.image_size, c.image_size_source, c.var_type, c.config_path,
                                  c.num_timesteps, c.beta_end),
                                 (32, diffclip.SizeSource.CONFIG, diffclip.VarType.FIXEDLARGE,
                                  good, 1000, 0.015))
                self.assertIn("cosine", c.warnings)
                self.assertEqual(plain.config.image_size_source, diffclip.SizeSource.WEIGHTS)
                x0 = self.npy("x0.npy")
                self.assertNotEqual(flat(model.invert(x0, t0=300, steps=3)),
                                    flat(plain.invert(x0, t0=300, steps=3)))
                self.assertEqual(flat(model.invert(x0, t0=300, steps=3)),
                                 flat(plain.invert(x0, t0=300, steps=3, beta_end=0.015)))
            with self.assertRaises(diffclip.FormatError) as raised:
                diffclip.Model(model_path, device="cpu", config=bad)
            self.assertIn("model.ch is 128, but the weights have 32", str(raised.exception))

    def test_inversion_and_generation(self):
        support.needs("dc_invert")
        with diffclip.Model(os.path.join(self.dir, "model.pt"), device="cpu") as model:
            latent = model.invert(self.npy("x0.npy"), t0=300, steps=8)
            self.assertGolden(latent, self.npy("lat.npy"), "DDIM inversion")
            rec = model.generate(self.npy("lat.npy"), t0=300, steps=4, eta=0.0)
            self.assertGolden(rec, self.npy("rec.npy"), "DDIM generation")

    def test_stochastic_forward(self):
        support.needs("dc_add_noise")
        xt = diffclip.add_noise(self.npy("x0.npy"), self.npy("noise.npy"), t0=300)
        self.assertGolden(xt, self.npy("xt_ddpm.npy"), "stochastic forward")
        drawn = diffclip.add_noise(self.npy("x0.npy"), t0=300, seed=7)
        self.assertEqual(flat(drawn), flat(diffclip.add_noise(self.npy("x0.npy"), t0=300,
                                                                seed=7)))

    def test_compare_images(self):
        support.needs("dc_compare_images")
        x0 = self.npy("x0.npy")
        same = diffclip.compare_images(x0, x0)
        self.assertEqual(same.mae, 0.0)
        self.assertAlmostEqual(same.ssim, 1.0, places=6)
        other = diffclip.compare_images(x0, self.npy("rec.npy"))
        self.assertGreater(other.mae, 0.0)
        self.assertLess(other.ssim, 1.0)


class AdmGolden(TestCase):
    def test_learned_sigma_output(self):
        support.needs("dc_model_eps")
        directory = support.golden(self, "adm_unet")
        npy = lambda name: diffclip.read_npy(os.path.join(directory, name))  # noqa: E731
        # the case's heads have 16 channels (published models: 64, the default)
        with diffclip.Model(os.path.join(directory, "model.pt"), device="cpu",
                            head_channels=16) as model:
            self.assertEqual(model.info.family, diffclip.ModelFamily.ADM)
            self.assertEqual(model.info.learn_sigma, 1)
            out = model.eps(npy("x.npy"), npy("t.npy"))
            self.assertEqual(shape(out)[1], 6)
            self.assertGolden(out, npy("out.npy"), "ADM output")


class ClipGolden(TestCase):
    def setUp(self):
        super().setUp()
        self.dir = support.golden(self, "clip_vit")
        with open(os.path.join(self.dir, "strings.json"), encoding="utf-8") as f:
            self.strings = json.load(f)

    def npy(self, name):
        return diffclip.read_npy(os.path.join(self.dir, name))

    def test_encoders_and_preprocessing(self):
        for checkpoint in ("clip_torchscript.pt", "clip_state_dict.pt"):
            with diffclip.Clip(os.path.join(self.dir, checkpoint)) as clip:
                self.assertEqual((clip.input_size, clip.embed_dim), (224, 32))
                photo = memoryview(bytearray([128] * 200 * 300 * 3)).cast("B", (200, 300, 3))
                self.assertEqual(shape(clip.preprocess_image(photo)), (1, 3, 224, 224))
                self.assertGolden(clip.encode_image(self.npy("image.npy")),
                                  self.npy("image_features.npy"), checkpoint + " image")
                self.assertGolden(clip.encode_text(self.npy("tokens.npy")),
                                  self.npy("text_features.npy"), checkpoint + " text")
                self.assertGolden(clip.preprocess(self.npy("x_src.npy")),
                                  self.npy("preprocessed.npy"), checkpoint + " preprocess")

    def test_directional_loss_and_gradient(self):
        with diffclip.Clip(os.path.join(self.dir, "clip_state_dict.pt")) as clip, \
                diffclip.Tokenizer(support.clip_vocabulary(self)) as tok:
            result = clip.loss(tok, self.strings[0], self.strings[1], self.npy("x_src.npy"),
                               self.npy("x_trg.npy"), grad=True)
            want = flat(self.npy("loss.npy"))
            tolerance = 1e-4 * (1 + max(abs(v) for v in want))
            self.assertLessEqual(abs(result.direction - want[0]), tolerance)
            self.assertLessEqual(abs(result.log - want[1]), tolerance)
            grad_want = self.npy("grad_x_trg.npy")
            self.assertEqual(shape(result.grad), shape(grad_want))
            self.assertLessEqual(support.relative_l2(result.grad, grad_want), 1e-3)
            no_grad = clip.loss(tok, self.strings[0], self.strings[1], self.npy("x_src.npy"),
                                self.npy("x_trg.npy"))
            self.assertIsNone(no_grad.grad)
            self.assertAlmostEqual(no_grad.direction, result.direction, places=6)


class IdNetGolden(TestCase):
    def test_features_and_loss(self):
        directory = support.golden(self, "arcface_irse")
        npy = lambda name: diffclip.read_npy(os.path.join(directory, name))  # noqa: E731
        with diffclip.IdNet(os.path.join(directory, "irse_fp16.pt")) as net:
            self.assertGolden(net.features(npy("x.npy")), npy("features.npy"), "features")
            result = net.id_loss(npy("x.npy"), npy("x_hat.npy"), per_sample=True)
            self.assertGolden(result.per_sample, npy("id_loss.npy"), "identity loss")
            per_sample = flat(result.per_sample)
            self.assertAlmostEqual(result.loss, sum(per_sample) / len(per_sample), places=5)
            self.assertIsNone(result.grad)


class TokenizerGolden(TestCase):
    def test_tokens(self):
        directory = support.golden(self, "tokenizer")
        with open(os.path.join(directory, "strings.json"), encoding="utf-8") as f:
            strings = json.load(f)
        with diffclip.Tokenizer(support.clip_vocabulary(self)) as tok:
            tokens = tok.tokenize(strings, context_length=77, truncate=True)
        want = diffclip.read_npy(os.path.join(directory, "tokens.npy"))
        self.assertEqual(shape(tokens), shape(want))
        self.assertEqual(flat(tokens), flat(want))
