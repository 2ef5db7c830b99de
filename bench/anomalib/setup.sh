#!/usr/bin/env bash
# Builds the environment bench/anomalib/patchcore_anomalib.py runs in: a virtualenv over
# Debian 12's CPU-only python3-torch 1.13.1 / python3-torchvision 0.14.1 with anomalib 0.7.0
# (the last release that accepts torch 1.x; 1.0 and later need torch >= 2, which PyPI ships
# only as a CUDA build pulling several GB of NVIDIA wheels) and its dependencies from PyPI,
# pinned to numpy-1 builds by constraints.txt. About 250 MB of wheels, one minute.
#
#   bash bench/anomalib/setup.sh        # -> bench/anomalib/.venv
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
  echo "bench/anomalib/setup.sh: needs Debian's python3-torch and python3-torchvision (apt-get install python3-torch python3-torchvision)" >&2
  exit 1
fi
[ -x "$here/.venv/bin/python" ] || "$py" -m venv --system-site-packages "$here/.venv"
"$here/.venv/bin/pip" install -q -c "$here/constraints.txt" anomalib==0.7.0
"$here/.venv/bin/python" -c 'import sys; sys.path.insert(0, "'"$here"'"); import py311shim, torch; from anomalib.models.patchcore.torch_model import PatchcoreModel; print("anomalib PatchCore importable; torch", torch.__version__)'
