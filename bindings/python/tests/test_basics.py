"""Library loading, errors, runtime settings, arrays in and out, files, handles."""

import array
import os
import subprocess
import sys
import threading

import support
from support import TestCase, flat, shape, uses_numpy

import diffclip
from diffclip import _ffi


def _run_python(code, **env):
    """Runs `code` in a fresh interpreter with this package and the given environment."""
    environment = dict(os.environ, PYTHONPATH=os.path.dirname(support.HERE), **env)
    for name, value in env.items():
        if value is None:
            del environment[name]
    return subprocess.run([sys.executable, "-c", code], env=environment,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


class LibraryTest(TestCase):
    def test_version_matches_header(self):
        self.assertEqual(diffclip.version(), diffclip._types.DC_VERSION_STRING)

    def test_explicit_library_that_does_not_exist(self):
        code = ("import diffclip\n"
                "try:\n    diffclip.version()\n"
                "except diffclip.LibraryError as e:\n    print('LibraryError', e)\n")
        out = _run_python(code, DIFFCLIP_LIBRARY="/nonexistent/libdiffclip.so.0")
        self.assertIn("LibraryError", out.stdout)
        self.assertIn("/nonexistent/libdiffclip.so.0", out.stdout)

    def test_source_tree_finds_its_build(self):
        built = os.path.join(support.REPO, "lib", _ffi.SONAME)
        if not os.path.exists(built):
            self.skipTest("no %s in this tree" % built)
        out = _run_python("import diffclip._ffi as f; print(f.lib().path)",
                          DIFFCLIP_LIBRARY=None)
        self.assertEqual(out.stdout.strip(), built, out.stdout)

    def test_a_directory_as_library_setting(self):
        directory = os.path.dirname(os.path.realpath(_ffi.lib().path))
        out = _run_python("import diffclip._ffi as f; print(f.lib().path)",
                          DIFFCLIP_LIBRARY=directory)
        self.assertEqual(out.stdout.strip(), os.path.join(directory, _ffi.SONAME), out.stdout)


class ErrorTest(TestCase):
    def test_status_classes(self):
        cases = [(diffclip.InvalidArgumentError, "DC_EINVAL", ValueError),
                 (diffclip.FileIOError, "DC_EIO", OSError),
                 (diffclip.FormatError, "DC_EFORMAT", ValueError),
                 (diffclip.OutOfMemoryError, "DC_ENOMEM", MemoryError),
                 (diffclip.DeviceError, "DC_EDEVICE", diffclip.DiffclipError),
                 (diffclip.CancelledError, "DC_ECANCELLED", diffclip.DiffclipError),
                 (diffclip.InternalError, "DC_EINTERNAL", diffclip.DiffclipError)]
        for cls, name, builtin in cases:
            self.assertEqual(cls.status.c_name, name)
            self.assertEqual(diffclip.status_name(cls.status), name)
            error = _ffi.error_for_status(cls.status, "why")
            self.assertIs(type(error), cls)
            self.assertIsInstance(error, builtin)
            self.assertEqual(error.status_name, name)
        self.assertIs(type(_ffi.error_for_status(-99, "?")), diffclip.DiffclipError)

    def test_message_is_last_error(self):
        path = os.path.join(self.tmp, "missing.npy")
        with self.assertRaises(diffclip.FileIOError) as caught:
            diffclip.read_npy(path)
        self.assertIn(path, str(caught.exception))
        self.assertEqual(str(caught.exception), diffclip.last_error())
        self.assertEqual(caught.exception.status, diffclip.Status.EIO)

    def test_format_error(self):
        path = os.path.join(self.tmp, "bad.npy")
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00garbage")
        with self.assertRaises(diffclip.FormatError):
            diffclip.read_npy(path)

    def test_invalid_argument(self):
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_image(os.path.join(self.tmp, "x.bmp"), _image(2, 3))


class RuntimeTest(TestCase):
    def test_threads(self):
        before = diffclip.get_num_threads()
        try:
            diffclip.set_num_threads(1)
            self.assertEqual(diffclip.get_num_threads(), 1)
        finally:
            diffclip.set_num_threads(before)
        self.assertEqual(diffclip.get_num_threads(), before)

    def test_dtypes(self):
        self.assertEqual(diffclip.dtype_name(diffclip.DType.BFLOAT16), "bfloat16")
        self.assertEqual(diffclip.dtype_name("int64"), "int64")
        self.assertEqual(diffclip.dtype_size("DC_FLOAT64"), 8)
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.dtype_size("complex64")

    def test_cuda_available_is_a_bool(self):
        self.assertIn(diffclip.cuda_available(), (True, False))


def _typed(values, code, shape_):
    """A memoryview of `values` with a format and shape, without numpy."""
    storage = array.array("B" if code == "?" else code, values)  # array has no bool type
    return memoryview(storage).cast("B").cast(code, shape_)


def _image(height, width):
    data = [(7 * i) % 256 for i in range(height * width * 3)]
    return _typed(data, "B", (height, width, 3))


class ArrayTest(TestCase):
    def roundtrip(self, value, expected_shape, expected_flat):
        path = os.path.join(self.tmp, "a.npy")
        diffclip.write_npy(path, value)
        back = diffclip.read_npy(path)
        self.assertArrayType(back)
        self.assertEqual(shape(back), expected_shape)
        self.assertEqual(flat(back), expected_flat)
        return back

    def test_npy_roundtrip_every_format(self):
        for code, values in (("f", [1.5, -2.0, 0.25, 8.0, 3.0, -1.0]),
                             ("d", [1e300, -2.0, 0.5, 7.0, 0.0, 1.0]),
                             ("q", [2 ** 62, -5, 0, 1, 2, 3]),
                             ("i", [2 ** 30, -5, 0, 1, 2, 3]),
                             ("B", [0, 255, 1, 2, 3, 4]),
                             ("?", [True, False, True, True, False, False])):
            back = self.roundtrip(_typed(values, code, (2, 3)), (2, 3), values)
            if uses_numpy():
                self.assertEqual(back.dtype.char if code != "q" else "q",
                                 {"f": "f", "d": "d", "q": "q", "i": "i", "B": "B",
                                  "?": "?"}[code])
            else:
                self.assertEqual(back.format, code)

    def test_inputs_of_every_kind(self):
        self.roundtrip(array.array("f", [1, 2, 3]), (3,), [1.0, 2.0, 3.0])
        self.roundtrip([[1.5, 2], [3, 4]], (2, 2), [1.5, 2.0, 3.0, 4.0])
        self.roundtrip([[1, 2], [3, 4]], (2, 2), [1, 2, 3, 4])
        self.roundtrip(bytes(range(4)), (4,), [0, 1, 2, 3])  # read-only buffer
        self.roundtrip(bytearray(b"\x05\x06"), (2,), [5, 6])

    def test_scalar_and_empty(self):
        path = os.path.join(self.tmp, "s.npy")
        diffclip.write_npy(path, _typed([4.0], "f", ()))
        back = diffclip.read_npy(path)
        self.assertEqual(shape(back), ())
        self.assertEqual(flat(back), [4.0])
        diffclip.write_npy(path, array.array("f"))
        back = diffclip.read_npy(path)
        self.assertEqual(flat(back), [])

    def test_refused_inputs(self):
        path = os.path.join(self.tmp, "r.npy")
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_npy(path, [[1.0, 2.0], [3.0]])  # ragged
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_npy(path, array.array("f", range(4)).tolist() and
                               memoryview(array.array("f", range(4)))[::2])  # strided
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_npy(path, _typed([0.0] * 512, "f", (2,) * 9))  # 9 dimensions

    def test_numpy_arrays(self):
        if not uses_numpy():
            self.skipTest("numpy hidden")
        import numpy as np
        path = os.path.join(self.tmp, "n.npy")
        a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)[:, ::2, :]  # not contiguous
        diffclip.write_npy(path, a)
        np.testing.assert_array_equal(diffclip.read_npy(path), a)
        diffclip.write_npy(path, a.astype(">f4"))  # big-endian input is made native
        self.assertEqual(diffclip.read_npy(path).dtype, np.float32)
        diffclip.write_npy(path, np.float64(2.5))  # a scalar stays 0-dimensional
        self.assertEqual(diffclip.read_npy(path).shape, ())
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_npy(path, np.zeros(3, np.complex64))

    def test_image_roundtrip_and_conversions(self):
        img = _image(5, 7)
        path = os.path.join(self.tmp, "i.png")
        diffclip.write_image(path, img)
        back = diffclip.read_image(path)
        self.assertArrayType(back)
        self.assertEqual(shape(back), (5, 7, 3))
        self.assertEqual(flat(back), flat(img))
        t = diffclip.image_to_tensor(back, 4)
        self.assertEqual(shape(t), (1, 3, 4, 4))
        self.assertTrue(all(-1.0 <= v <= 1.0 for v in flat(t)))
        round_trip = diffclip.tensor_to_image(t)
        self.assertEqual(shape(round_trip), (4, 4, 3))
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.write_image(path, _typed([0.0] * 12, "f", (2, 2, 3)))


class CheckpointTest(TestCase):
    def test_write_and_read_back(self):
        # (a 128-byte safetensors header: its length starts with 0x80, as a pickle does)
        tensors = [("b.weight", _typed([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "f", (2, 3))),
                   ("a.steps", _typed([7], "q", (1,)))]
        for name in ("c.pt", "c.safetensors"):
            path = os.path.join(self.tmp, name)
            diffclip.write_checkpoint(path, tensors)
            with diffclip.Checkpoint(path) as ckpt:
                self.assertEqual(ckpt.container, diffclip.Container.TORCH_ZIP
                                 if name.endswith(".pt") else diffclip.Container.SAFETENSORS)
                self.assertEqual(len(ckpt), 2)
                self.assertEqual(sorted(ckpt.names()), ["a.steps", "b.weight"])
                self.assertIn("a.steps", ckpt)
                self.assertNotIn("c", ckpt)
                self.assertEqual(flat(ckpt["b.weight"]), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
                self.assertEqual(shape(ckpt[ckpt.find("a.steps")]), (1,))
                with self.assertRaises(KeyError):
                    ckpt["missing"]
            self.assertTrue(ckpt.closed)
            with self.assertRaises(diffclip.InvalidArgumentError):
                len(ckpt)
            ckpt.close()  # idempotent

    def test_mapping_and_explicit_format(self):
        path = os.path.join(self.tmp, "weights.bin")
        diffclip.write_checkpoint(path, {"w": [1.0, 2.0]}, format="safetensors")
        with diffclip.Checkpoint(path) as ckpt:
            self.assertEqual(ckpt.container, diffclip.Container.SAFETENSORS)
            self.assertEqual(dict((k, flat(v)) for k, v in ckpt.items()), {"w": [1.0, 2.0]})

    def test_missing_file(self):
        with self.assertRaises(diffclip.FileIOError):
            diffclip.Checkpoint(os.path.join(self.tmp, "none.pt"))


class HandleTest(TestCase):
    def test_other_threads_wait_their_turn(self):
        path = os.path.join(self.tmp, "c.pt")
        diffclip.write_checkpoint(path, {"w": [1.0]})
        ckpt = diffclip.Checkpoint(path)
        seen = []
        with ckpt._use():
            worker = threading.Thread(target=lambda: seen.append(len(ckpt)))
            worker.start()
            worker.join(0.05)
            self.assertEqual(seen, [])  # blocked while this thread uses the handle
            with self.assertRaises(diffclip.InvalidArgumentError):
                len(ckpt)  # re-entry on the same thread is refused, not a deadlock
        worker.join()
        self.assertEqual(seen, [1])
        ckpt.close()

    def test_tokenizer(self):
        with diffclip.Tokenizer(support.clip_vocabulary(self)) as tok:
            tokens = tok.tokenize(["a face", "an angry face"], context_length=8)
            self.assertEqual(shape(tokens), (2, 8))
            self.assertEqual(flat(tokens)[:4], [49406, 320, 1710, 49407])
            with self.assertRaises(diffclip.InvalidArgumentError):
                tok.tokenize("word " * 20, context_length=8)
            self.assertEqual(flat(tok.tokenize("word " * 20, context_length=8,
                                               truncate=True))[-1], 49407)
            with self.assertRaises(diffclip.InvalidArgumentError):
                tok.tokenize("nul\0inside")
