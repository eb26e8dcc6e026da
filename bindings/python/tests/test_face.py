"""The face descriptor: crops, distances, and (with face-api's weights, $DC_FACEAPI) the
descriptors of synthetic faces."""

import math
import os
import unittest

import support
from support import TestCase, flat, shape

import diffclip


def _image(height, width, seed):
    data = bytearray((seed * 31 + 7 * i + (i // 3) * 13) % 256 for i in range(height * width * 3))
    return memoryview(data).cast("B", (height, width, 3))


class FaceTest(TestCase):
    def test_distance(self):
        zeros, ones = [0.0] * 128, [1.0] * 128
        self.assertAlmostEqual(diffclip.face_distance(zeros, ones), math.sqrt(128), places=5)
        self.assertEqual(diffclip.face_distance(ones, ones), 0.0)
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.face_distance([0.0] * 127, ones)
        self.assertEqual(diffclip.FACE_SAME_PERSON_DISTANCE, 0.6)

    def test_crop(self):
        img = _image(40, 60, 1)
        crop = diffclip.face_crop(img, (10, 5, 30), size=20)
        self.assertArrayType(crop)
        self.assertEqual(shape(crop), (20, 20, 3))
        self.assertEqual(shape(diffclip.face_crop(img)), (150, 150, 3))
        same = diffclip.face_crop(img, (10, 0, 40), size=40)
        centred = diffclip.face_crop(img, size=40)  # the centred largest square
        self.assertEqual(flat(same), flat(centred))
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.face_crop(img, (50, 0, 30))  # outside the image

    def test_descriptors(self):
        directory = os.environ.get("DC_FACEAPI") or os.path.join(support.REPO, "third_party",
                                                                  "face-api")
        manifest = os.path.join(directory, "face_recognition_model-weights_manifest.json")
        if not os.path.exists(manifest):
            if os.environ.get("CI") == "true":
                self.fail("%s is missing (make deps installs it)" % manifest)
            raise unittest.SkipTest("%s is missing (make deps installs it)" % manifest)
        with diffclip.FaceDescriptor(manifest, device="cpu") as net:
            face = _image(150, 150, 2)
            a = net.compute(face)
            self.assertArrayType(a)
            self.assertEqual(shape(a), (128,))
            boxed = net.compute(face, (0, 0, 150))
            self.assertEqual(flat(boxed), flat(a))
            other = net.compute(_image(150, 150, 3))
            self.assertEqual(diffclip.face_distance(a, a), 0.0)
            self.assertGreater(diffclip.face_distance(a, other), 0.0)


ASTRONAUT = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"


class FaceAlignerTest(TestCase):
    def aligner(self):
        for path in (diffclip.FACE_DEFAULT_PREDICTOR, ASTRONAUT):
            if not os.path.exists(path):
                if os.environ.get("CI") == "true":
                    self.fail("%s missing: required under CI=true (make deps)" % path)
                raise unittest.SkipTest("%s missing (make deps)" % path)
        return diffclip.FaceAligner()

    def test_detect_and_align_a_portrait(self):
        with self.aligner() as aligner:
            photo = diffclip.read_image(ASTRONAUT)
            faces = aligner.detect(photo)
            self.assertEqual(len(faces), 1)
            face = faces[0]
            self.assertEqual(shape(face.landmarks), (68, 2))
            self.assertTrue(face.left < flat(face.landmarks)[72] < face.right)
            aligned, used = aligner.align(photo, size=64, with_face=True)
            self.assertEqual(shape(aligned), (64, 64, 3))
            self.assertEqual(flat(used.landmarks), flat(face.landmarks))
            # the same maths from the landmarks alone
            again = diffclip.face_align_landmarks(photo, face.landmarks, 64)
            self.assertEqual(flat(again), flat(aligned))
            self.assertEqual(shape(diffclip.face_align_landmarks(photo, face.landmarks, 32, 64)),
                             (32, 32, 3))

    def test_no_face_and_bad_input(self):
        with self.aligner() as aligner:
            with self.assertRaises(diffclip.NotFoundError) as caught:
                aligner.align(_image(80, 90, 3))
            self.assertIn("no face was found", str(caught.exception))
            self.assertEqual(caught.exception.status, diffclip.Status.ENOTFOUND)
            self.assertEqual(aligner.detect(_image(80, 90, 3)), [])
            with self.assertRaises(diffclip.InvalidArgumentError):
                aligner.align(_image(80, 90, 3), size=0)
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.face_align_landmarks(_image(40, 40, 1), [[0, 0]] * 68)   # degenerate
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.face_align_landmarks(_image(40, 40, 1), [[0, 0]] * 67)
        with self.assertRaises(diffclip.InvalidArgumentError):
            diffclip.FaceAligner(upsample=5)
        with self.assertRaises(diffclip.FileIOError):
            diffclip.FaceAligner("/nonexistent/predictor.dat")
        with self.assertRaises(diffclip.FormatError):
            diffclip.FaceAligner(HEADER_PATH)


HEADER_PATH = support.HEADER
