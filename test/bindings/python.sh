#!/bin/sh
# The Python binding's unittest suite (bindings/python/tests/run.py), with numpy and with
# numpy hidden. Environment (make test sets it): PYTHON, DIFFCLIP_LIBRARY, DC_GOLDEN,
# DC_CLIP_DATA.
. "$(dirname "$0")/lib.sh"
python=${PYTHON:-/usr/bin/python3}
if ! command -v "$python" >/dev/null 2>&1; then
    skip_rest "python" "no $python"
fi
exec "$python" bindings/python/tests/run.py
