"""Array conversion and handle ownership shared by the binding's classes.

Inputs: an array that is already C-contiguous float32 (or uint8 for images) is passed to
the library without a copy; anything else goes through ``np.ascontiguousarray``, which
copies. The converted array is a local of the calling function, so it stays alive until
the C call returns. Outputs are allocated here with ``np.empty`` and filled by the library.

PyTorch tensors are accepted wherever arrays are (``tensor.detach().cpu().numpy()``, a
copy only for GPU tensors); torch is never imported unless such a tensor is passed.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from . import _native
from .errors import InvalidArgumentError, InvalidHandleError

F32P = ctypes.POINTER(ctypes.c_float)
I64P = ctypes.POINTER(ctypes.c_int64)
I32P = ctypes.POINTER(ctypes.c_int32)
U8P = ctypes.POINTER(ctypes.c_uint8)


def is_torch(x) -> bool:
    """True for a torch.Tensor (checked without importing torch)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x):
    """A numpy view of x (torch tensors are detached and moved to the CPU)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def like_input(out: np.ndarray, original):
    """``out`` as a torch tensor on ``original``'s device when ``original`` is a tensor."""
    if is_torch(original):
        import torch

        return torch.from_numpy(out).to(original.device)
    return out


def as_float32(x, name: str, ndim: int | None = None, min_ndim: int | None = None) -> np.ndarray:
    """x as a C-contiguous float32 array (no copy when it already is one).

    Raises InvalidArgumentError for non-numeric dtypes and a wrong number of dimensions;
    values (NaN, Inf) are checked by the library.
    """
    a = to_numpy(x)
    if a.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} has dtype {a.dtype}; need real numbers (float32 preferred)")
    if ndim is not None and a.ndim != ndim:
        raise InvalidArgumentError(f"{name} has shape {a.shape}; need {ndim} dimensions")
    if min_ndim is not None and a.ndim < min_ndim:
        raise InvalidArgumentError(f"{name} has shape {a.shape}; need at least {min_ndim} dimensions")
    return np.ascontiguousarray(a, dtype=np.float32)


def i32(value, name: str) -> int:
    """value as an int that fits a C int32_t (ctypes would silently truncate a larger one)."""
    v = int(value)
    if not -(2**31) <= v < 2**31:
        raise InvalidArgumentError(f"{name} = {v} does not fit in int32")
    return v


def f32(a: np.ndarray):
    """``float*`` to the data of a float32 array."""
    return a.ctypes.data_as(F32P)


def layer_arrays(layers, name: str = "layers"):
    """Per-layer NCHW feature maps as the C (layers, shapes, n_layers) triple.

    Returns (arrays, pointer_array, shape_array); keep all three referenced until the call
    returns.
    """
    if isinstance(layers, dict):
        layers = list(layers.values())
    elif is_torch(layers) or isinstance(layers, np.ndarray):
        raise InvalidArgumentError(f"{name} must be a list of per-layer arrays [N, C, H, W], not one array")
    arrays = [as_float32(m, f"{name}[{i}]", ndim=4) for i, m in enumerate(layers)]
    if not arrays:
        raise InvalidArgumentError(f"{name} is empty")
    pointers = (F32P * len(arrays))(*[f32(a) for a in arrays])
    shapes = (ctypes.c_int64 * (4 * len(arrays)))(*[d for a in arrays for d in a.shape])
    return arrays, pointers, shapes


class Owned:
    """Owns one library handle: ``close()`` frees it (idempotent), ``with`` closes on exit,
    and ``__del__`` closes as a last resort."""

    _free_name = ""  # the patchcore_*_free function of the handle's kind

    _handle_value: int | None = None

    def _set_handle(self, handle: int | None) -> None:
        """Installs a new handle (None: none) and frees the previous one, if any."""
        lock = self.__dict__.get("_handle_lock")
        if lock is None:
            lock = self._handle_lock = threading.Lock()
        with lock:
            old, self._handle_value = self._handle_value, handle
        if old is not None:
            _native.check(getattr(_native.lib(), self._free_name)(old))

    @property
    def _h(self) -> int:
        h = self._handle_value
        if h is None:
            raise InvalidHandleError(f"this {type(self).__name__} is closed")
        return h

    @property
    def closed(self) -> bool:
        """True once close() has run (or before a handle was created)."""
        return self._handle_value is None

    def close(self) -> None:
        """Frees the library object. Safe to call more than once."""
        if self._handle_value is not None:
            self._set_handle(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown, or a handle the library already dropped
            pass
