"""The published face alignment, DiffusionCLIP's utils/align_utils.py align_face (the FFHQ
method), written from REFERENCE.md §11 for Debian's PIL 9.4, scipy 1.10 and numpy 1.24: the
reference that test/scripts/test_face_align_reference.sh compares libdiffclip's C alignment
with. Takes the landmarks (int64 (68, 2), x, y) and a PIL image instead of a file path (the
published code opens the path with PIL.Image.open, then runs the same steps)."""

import numpy as np
import PIL.Image
import scipy.ndimage

# The published code's Image.ANTIALIAS is Lanczos; Pillow 10 removed the old name.
LANCZOS = getattr(PIL.Image, "ANTIALIAS", PIL.Image.LANCZOS)


def align_face(img, lm, output_size=256, transform_size=256, enable_padding=True, trace=None):
    """trace (a dict), when given, records the branches taken."""
    trace = {} if trace is None else trace
    lm = np.asarray(lm)
    lm_eye_left = lm[36:42]
    lm_eye_right = lm[42:48]
    lm_mouth_outer = lm[48:60]

    eye_left = np.mean(lm_eye_left, axis=0)
    eye_right = np.mean(lm_eye_right, axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_left = lm_mouth_outer[0]
    mouth_right = lm_mouth_outer[6]
    mouth_avg = (mouth_left + mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg

    # The oriented crop rectangle.
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    qsize = np.hypot(*x) * 2

    # Shrink.
    shrink = int(np.floor(qsize / output_size * 0.5))
    trace['shrink'] = shrink > 1
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)),
                 int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, LANCZOS)
        quad /= shrink
        qsize /= shrink

    # Crop.
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))),
            int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0),
            min(crop[2] + border, img.size[0]), min(crop[3] + border, img.size[1]))
    trace['crop'] = crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]
    if trace['crop']:
        img = img.crop(crop)
        quad -= crop[0:2]

    # Pad.
    pad = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))),
           int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0),
           max(pad[2] - img.size[0] + border, 0), max(pad[3] - img.size[1] + border, 0))
    trace['pad'] = enable_padding and max(pad) > border - 4
    if trace['pad']:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        # numpy's reflect repeats itself when a pad is wider than the image
        trace['pad_beyond_image'] = max(pad[0], pad[2]) >= img.size[0] or \
            max(pad[1], pad[3]) >= img.size[1]
        img = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), 'reflect')
        h, w, _ = img.shape
        y, x, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
                          1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]))
        blur = qsize * 0.02
        img += (scipy.ndimage.gaussian_filter(img, [blur, blur, 0]) - img) * \
            np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
        img = PIL.Image.fromarray(np.uint8(np.clip(np.rint(img), 0, 255)), 'RGB')
        quad += pad[:2]

    # Transform.
    img = img.transform((transform_size, transform_size), PIL.Image.QUAD,
                        (quad + 0.5).flatten(), PIL.Image.BILINEAR)
    trace['final_resize'] = output_size < transform_size
    if output_size < transform_size:
        img = img.resize((output_size, output_size), LANCZOS)
    return img
