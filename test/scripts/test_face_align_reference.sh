#!/bin/sh
# The C face alignment against the published align_face in Python (test/tools/
# align_face_reference.py, PIL 9.4 + scipy + numpy) on real photographs and landmark sets that
# reach every branch (test/tools/face_align_compare.py). Environment (make test sets it):
# PYTHON, DIFFCLIP_LIBRARY.
. "$(dirname "$0")/../bindings/lib.sh"
python=${PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import numpy, PIL.Image, scipy.ndimage' 2>/dev/null; then
    skip_rest "face_align_reference" "$python lacks numpy, PIL or scipy (make deps installs python3-pil python3-scipy)"
fi
for photo in /usr/lib/python3/dist-packages/skimage/data/astronaut.png \
             /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg; do
    if [ ! -f "$photo" ]; then
        skip_rest "face_align_reference" "$photo is missing (make deps)"
    fi
done
exec "$python" test/tools/face_align_compare.py
