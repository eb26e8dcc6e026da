"""What the tests share: the package from this source tree, golden data, comparisons that
work on numpy arrays and on memoryviews alike."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HEADER = os.path.join(REPO, "include", "diffclip.h")

import diffclip  # noqa: E402  (after the path is set)
from diffclip import _arrays, _ffi  # noqa: E402


def uses_numpy():
    return _arrays.numpy is not None


def _data_dir(test, variable, default, what):
    path = os.environ.get(variable) or os.path.join(REPO, "..", "shared", default)
    if os.path.isdir(path):
        return path
    message = "%s missing (%s=%s)" % (what, variable, path)
    if os.environ.get("CI") == "true":
        test.fail(message + ": required under CI=true")
    raise unittest.SkipTest(message)


def golden(test, case):
    """The golden case folder, or skip (fail under CI=true) when it is missing."""
    return _data_dir(test, "DC_GOLDEN", "golden", "golden data") + "/" + case


def clip_vocabulary(test):
    return os.path.join(_data_dir(test, "DC_CLIP_DATA", "clip", "CLIP data"),
                        "bpe_simple_vocab_16e6.txt.gz")


def needs(function):
    """Skips a test while the library lacks `function` (an older library)."""
    if not _ffi.lib().has(function):
        raise unittest.SkipTest("the library has no %s yet" % function)


def shape(a):
    return tuple(a.shape)


def flat(a):
    """The elements of an array or memoryview as a flat list."""
    if uses_numpy() and not isinstance(a, memoryview):
        return a.ravel().tolist()
    items = a.tolist()
    for _ in range(a.ndim - 1):
        items = [x for row in items for x in row]
    return items if a.ndim else [items]


def max_abs_diff(a, b):
    return max((abs(x - y) for x, y in zip(flat(a), flat(b))), default=0.0)


class TestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="diffclip-py-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def assertArrayType(self, a):
        self.assertIsInstance(a, memoryview if not uses_numpy() else _arrays.numpy.ndarray)

    def assertGolden(self, ours, golden_array, what, relative=1e-4):
        """max|ours - golden| <= relative * (1 + max|golden|), shapes equal."""
        self.assertEqual(shape(ours), shape(golden_array), what + ": shape")
        tolerance = relative * (1 + max((abs(x) for x in flat(golden_array)), default=0.0))
        error = max_abs_diff(ours, golden_array)
        self.assertLessEqual(error, tolerance, "%s: max abs error %.3g > %.3g" % (
            what, error, tolerance))
        return error


def relative_l2(a, b):
    """|a - b| / |b| (L2 norms)."""
    fa, fb = flat(a), flat(b)
    num = sum((x - y) ** 2 for x, y in zip(fa, fb))
    den = sum(y * y for y in fb)
    return (num / den) ** 0.5 if den else num ** 0.5
