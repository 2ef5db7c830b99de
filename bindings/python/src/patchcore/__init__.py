"""patchcore: PatchCore industrial anomaly detection (Roth et al., CVPR 2022) on libpatchcore.

* :class:`PatchCore`: the whole model (images or feature maps in; scores, anomaly maps,
  thresholds and masks out; save/load).
* :mod:`patchcore.common`: the reference implementation's building blocks
  (NetworkFeatureAggregator, NearestNeighbourScorer, FaissNN, ApproximateFaissNN,
  Preprocessing, Aggregator, RescaleSegmentor, ConcatMerger, AverageMerger).
* :mod:`patchcore.ops`: adaptive_avg_pool1d and the post-backbone embedding.

The native library is located and loaded on first use (see ``patchcore._native``).
"""

from __future__ import annotations

from . import _native
from .errors import (
    BackendError,
    BufferTooSmallError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    InvalidHandleError,
    InvalidStateError,
    OutOfMemoryError,
    PatchCoreError,
    PatchCoreIOError,
    UnsupportedError,
)
from . import common, ops
from .model import PatchCore
from .ops import adaptive_avg_pool1d, embed

__version__ = ".".join(map(str, _native.BINDING_VERSION))


def library_version() -> str:
    """Version string of the loaded libpatchcore, e.g. "0.1.0"."""
    return _native.lib().patchcore_version_string().decode()


def library_path() -> str:
    """File the native library was loaded from (as given to the loader)."""
    return _native.lib()._name


def gpu_available() -> bool:
    """True when this libpatchcore build can run FAISS on a GPU."""
    return bool(_native.lib().patchcore_gpu_available())


def set_num_threads(n: int) -> None:
    """Default worker threads for objects created afterwards (0: all cores)."""
    from ._arrays import i32

    _native.check(_native.lib().patchcore_set_num_threads(i32(n, "n")))


def set_onnxruntime_path(path) -> None:
    """ONNX Runtime library to use; must be called before the first backbone is created."""
    _native.check(_native.lib().patchcore_set_onnxruntime_path(_native.encode_path(path)))


__all__ = [
    "common",
    "ops",
    "PatchCore",
    "adaptive_avg_pool1d",
    "embed",
    "library_version",
    "library_path",
    "gpu_available",
    "set_num_threads",
    "set_onnxruntime_path",
    "PatchCoreError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "InvalidStateError",
    "BufferTooSmallError",
    "PatchCoreIOError",
    "FormatError",
    "OutOfMemoryError",
    "InternalError",
    "UnsupportedError",
    "BackendError",
]
