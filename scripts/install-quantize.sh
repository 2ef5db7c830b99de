#!/usr/bin/env bash
# Installs the optional Python tools of scripts/quantize_backbone.py (reduced-precision
# int8/fp16 backbones) into a virtual environment under .deps/ (ignored by git):
#
#   scripts/install-quantize.sh              # -> .deps/venv-quantize
#   PATCHCORE_DEPS=/path scripts/install-quantize.sh
#
# Then:
#   .deps/venv-quantize/bin/python scripts/quantize_backbone.py --help
#   .deps/venv-quantize/bin/python -m pytest scripts/test_quantize_backbone.py
#
# Idempotent: the environment is (re)built only when it is missing or was built for other
# pinned versions (a stamp file records them). Needs python3 (>= 3.11) with the venv module
# and PyPI. onnxruntime is pinned to the version of the runtime that install-deps.sh puts
# in .deps/lib (1.30.0), so a model the script accepts is one the library loads. Not part
# of `make test`: nothing in the library needs these packages.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PATCHCORE_DEPS:-$root/.deps}
venv=$prefix/venv-quantize
python=${PYTHON:-python3}

requirements=(
  onnxruntime==1.30.0
  onnx==1.19.1
  onnxconverter-common==1.16.0
  numpy==2.2.6
  pillow==11.3.0
  pytest==9.2.0
)
stamp=$venv/.libpatchcore-quantize
want=$(printf '%s\n' "${requirements[@]}")

log() { printf '[install-quantize] %s\n' "$*"; }

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "present: $venv"
  exit 0
fi
rm -rf "$venv"
log "creating $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
"$venv/bin/python" -c 'import onnxruntime, onnx, onnxconverter_common, numpy, PIL; print("onnxruntime", onnxruntime.__version__, "onnx", onnx.__version__)'
printf '%s\n' "$want" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "installed: $venv"
