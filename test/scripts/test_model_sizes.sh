#!/bin/sh
# Models trained at sizes other than the old guess, with and without their YAML config,
# against a PyTorch re-implementation of the published UNet and DDIM maths
# (test/scripts/model_sizes.py says what is checked). Environment (make test sets it):
# PYTHON (Debian's /usr/bin/python3 with torch), DC_CLI, DC_GOLDEN, DC_CLIP_DATA.
. "$(dirname "$0")/../bindings/lib.sh"
python=${PYTHON:-/usr/bin/python3}
if ! command -v "$python" >/dev/null 2>&1; then
    skip_rest "model_sizes" "SKIPPED: no $python (Debian's python3-torch)"
fi
exec "$python" "$(dirname "$0")/model_sizes.py"
