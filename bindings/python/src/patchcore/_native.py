"""Loads libpatchcore through ctypes and declares the C signatures of include/patchcore.h.

Library lookup, first match wins:

1. the file named by the environment variable ``PATCHCORE_LIBRARY`` (an explicit path;
   when set, nothing else is tried);
2. the package directory (a wheel may ship ``libpatchcore.so`` next to this file);
3. the system loader: ``ctypes.util.find_library("patchcore")``, then the versioned
   soname ``libpatchcore.so.<MAJOR>``.

The library is loaded once per process and never unloaded (the Go runtime inside it does
not support dlclose). Its major version must equal the binding's, and its version must be
at least the one the binding was written for (:data:`BINDING_VERSION`).

Every function gets ``argtypes``/``restype``: handles are ``c_void_p`` (the default ``int``
restype would truncate them), statuses and booleans ``c_int32``. Calls go through
``ctypes.CDLL``, which releases the GIL for their duration.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    POINTER,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_void_p,
)

from .errors import ERR_BUFFER_TOO_SMALL, OK, InternalError, error_for_status

#: Version of the C ABI this binding was written against (include/patchcore.h).
BINDING_VERSION = (0, 1, 0)

_ENV_LIBRARY = "PATCHCORE_LIBRARY"

_handle = c_void_p
_handle_p = POINTER(c_void_p)
_f32p = POINTER(c_float)
_f32pp = POINTER(_f32p)
_i32p = POINTER(c_int32)
_i64p = POINTER(c_int64)
_u8p = POINTER(c_uint8)
_sizep = POINTER(c_size_t)
_strp = POINTER(c_char_p)

# name: (restype, argtypes), in header order. Every function of patchcore.h is here.
_SIGNATURES = {
    "patchcore_version_number": (c_int32, []),
    "patchcore_version_string": (c_char_p, []),
    "patchcore_status_string": (c_char_p, [c_int32]),
    "patchcore_last_error": (c_size_t, [POINTER(c_char), c_size_t]),
    "patchcore_set_onnxruntime_path": (c_int32, [c_char_p]),
    "patchcore_set_num_threads": (c_int32, [c_int32]),
    "patchcore_gpu_available": (c_int32, []),
    # config
    "patchcore_config_create": (c_int32, [_handle_p]),
    "patchcore_config_free": (c_int32, [_handle]),
    "patchcore_config_set_int": (c_int32, [_handle, c_int32, c_int64]),
    "patchcore_config_set_float": (c_int32, [_handle, c_int32, c_double]),
    "patchcore_config_set_floats": (c_int32, [_handle, c_int32, _f32p, c_size_t]),
    "patchcore_config_set_string": (c_int32, [_handle, c_int32, c_char_p]),
    "patchcore_config_set_layers": (c_int32, [_handle, _strp, c_size_t]),
    "patchcore_config_set_backbone_bytes": (c_int32, [_handle, c_void_p, c_size_t]),
    # model
    "patchcore_model_create": (c_int32, [_handle, _handle_p]),
    "patchcore_model_free": (c_int32, [_handle]),
    "patchcore_model_add_images": (
        c_int32,
        [_handle, _u8p, c_int32, c_int32, c_int32, c_int32, c_int32, c_int32],
    ),
    "patchcore_model_add_files": (c_int32, [_handle, _strp, c_size_t]),
    "patchcore_model_add_features": (c_int32, [_handle, _f32pp, _i64p, c_int32]),
    "patchcore_model_fit": (c_int32, [_handle]),
    "patchcore_model_map_size": (c_int32, [_handle, _sizep]),
    "patchcore_model_predict": (
        c_int32,
        [_handle, _u8p, c_int32, c_int32, c_int32, c_int32, c_int32, c_int32,
         _f32p, _f32p, c_size_t, _sizep],
    ),
    "patchcore_model_predict_files": (
        c_int32,
        [_handle, _strp, c_size_t, _f32p, _f32p, c_size_t, _sizep],
    ),
    "patchcore_model_predict_features": (
        c_int32,
        [_handle, _f32pp, _i64p, c_int32, _f32p, _f32p, c_size_t, _sizep],
    ),
    "patchcore_model_segment": (c_int32, [_handle, _f32p, c_size_t, c_float, _u8p]),
    "patchcore_model_calibrate": (
        c_int32,
        [_handle, _u8p, c_int32, c_int32, c_int32, c_int32, c_int32, c_int32,
         c_int32, c_double, _f32p],
    ),
    "patchcore_model_calibrate_scores": (
        c_int32,
        [_handle, _f32p, _i32p, c_size_t, c_int32, c_double, _f32p],
    ),
    "patchcore_model_normalize_scores": (c_int32, [_handle, _f32p, c_size_t, _f32p]),
    "patchcore_model_get_int": (c_int32, [_handle, c_int32, _i64p]),
    "patchcore_model_get_float": (c_int32, [_handle, c_int32, POINTER(c_double)]),
    "patchcore_model_save": (c_int32, [_handle, c_char_p]),
    "patchcore_model_save_to_buffer": (c_int32, [_handle, c_void_p, c_size_t, _sizep]),
    "patchcore_model_load": (c_int32, [c_char_p, c_char_p, _handle_p]),
    "patchcore_model_load_from_buffer": (c_int32, [c_void_p, c_size_t, c_char_p, _handle_p]),
    # aggregator
    "patchcore_aggregator_create": (
        c_int32,
        [c_char_p, c_void_p, c_size_t, _strp, c_size_t, c_char_p, _handle_p],
    ),
    "patchcore_aggregator_free": (c_int32, [_handle]),
    "patchcore_aggregator_feature_shapes": (
        c_int32,
        [_handle, c_int32, c_int32, c_int32, _i64p, c_size_t, _sizep],
    ),
    "patchcore_aggregator_forward": (
        c_int32,
        [_handle, _f32p, c_int64, c_int64, c_int64, c_int64, c_int32, _f32p, c_size_t, _sizep],
    ),
    "patchcore_aggregator_forward_all": (
        c_int32,
        [_handle, _f32p, c_int64, c_int64, c_int64, c_int64, _f32pp, _sizep, c_size_t, _sizep],
    ),
    # embedding
    "patchcore_embed": (
        c_int32,
        [_f32pp, _i64p, c_int32, c_int32, c_int32, c_int32, _f32p, c_size_t, _sizep],
    ),
    "patchcore_adaptive_avg_pool1d": (c_int32, [_f32p, c_int64, c_int64, c_int64, _f32p]),
    # scorer
    "patchcore_scorer_create": (c_int32, [c_int32, c_int32, c_int32, c_int32, _handle_p]),
    "patchcore_scorer_free": (c_int32, [_handle]),
    "patchcore_scorer_fit": (c_int32, [_handle, _f32p, c_int64, c_int64]),
    "patchcore_scorer_predict": (
        c_int32,
        [_handle, _f32p, c_int64, c_int64, _f32p, _f32p, _i64p],
    ),
    "patchcore_scorer_save": (c_int32, [_handle, c_char_p, c_int32, c_char_p]),
    "patchcore_scorer_load": (c_int32, [_handle, c_char_p, c_char_p]),
    # segmentor
    "patchcore_segmentor_create": (c_int32, [c_int32, c_int32, c_double, _handle_p]),
    "patchcore_segmentor_free": (c_int32, [_handle]),
    "patchcore_segmentor_convert": (
        c_int32,
        [_handle, _f32p, c_int64, c_int64, c_int64, _f32p, c_size_t, _sizep],
    ),
}


def _library_names() -> list[str]:
    """File names of the library on this platform, most specific first."""
    major = BINDING_VERSION[0]
    if sys.platform == "darwin":
        return [f"libpatchcore.{major}.dylib", "libpatchcore.dylib"]
    if sys.platform == "win32":
        return ["patchcore.dll", "libpatchcore.dll"]
    return ["libpatchcore.so", f"libpatchcore.so.{major}"]


def _candidates() -> list[str]:
    """Paths or names to hand to ctypes.CDLL, in lookup order (see the module doc)."""
    explicit = os.environ.get(_ENV_LIBRARY)
    if explicit:
        return [explicit]
    here = os.path.dirname(os.path.abspath(__file__))
    found = [os.path.join(here, n) for n in _library_names() if os.path.exists(os.path.join(here, n))]
    system = ctypes.util.find_library("patchcore")
    if system:
        found.append(system)
    found.append(_library_names()[-1])  # the versioned soname, through the loader's path
    return found


def check_version(number: int) -> None:
    """Raises ImportError unless a library of version ``number`` (major*10000 + minor*100 +
    patch) can serve this binding: same major, and not older than BINDING_VERSION."""
    major, minor, patch = number // 10000, number // 100 % 100, number % 100
    want = BINDING_VERSION
    if major != want[0]:
        raise ImportError(
            f"libpatchcore {major}.{minor}.{patch} has major version {major}, "
            f"this binding needs major version {want[0]}"
        )
    if (major, minor, patch) < want:
        raise ImportError(
            f"libpatchcore {major}.{minor}.{patch} is older than {'.'.join(map(str, want))}, "
            "the version this binding was written for"
        )


def _declare(lib: ctypes.CDLL) -> None:
    missing = []
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(f"libpatchcore at {lib._name} lacks {', '.join(missing)}")


def _load() -> ctypes.CDLL:
    errors = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        _declare(lib)
        check_version(lib.patchcore_version_number())
        return lib
    hint = (
        f"set {_ENV_LIBRARY} to the path of libpatchcore.so (built by `make lib` into "
        "build/lib), or install it where the system loader finds it"
    )
    if any("static TLS" in e for e in errors):
        hint = (
            "this build of the library needs more static thread-local storage than glibc "
            "reserves for libraries loaded at run time (a packaging bug of the library); as a "
            "workaround start Python with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536"
        )
    raise ImportError("cannot load libpatchcore: " + "; ".join(errors) + "; " + hint)


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, then cached for the process)."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                _lib = _load()
    return _lib


def last_error() -> str:
    """The calling thread's last error message from the library ("" when there is none)."""
    fn = lib().patchcore_last_error
    cap = 512
    while True:
        buf = ctypes.create_string_buffer(cap)
        needed = fn(buf, cap)
        if needed <= cap:
            return buf.value.decode("utf-8", errors="replace")
        cap = needed


def check(status: int) -> None:
    """Raises the PatchCoreError subclass for a non-OK status, with the library's message."""
    if status != OK:
        message = last_error() or lib().patchcore_status_string(status).decode()
        raise error_for_status(status, message)


def query_size(fn, *args) -> int:
    """The element count a sized-output function needs: calls ``fn(*args, NULL, 0,
    &needed)`` and accepts OK or BUFFER_TOO_SMALL (any other status raises)."""
    needed = c_size_t()
    status = fn(*args, None, 0, ctypes.byref(needed))
    if status != ERR_BUFFER_TOO_SMALL:
        check(status)
    return needed.value


def new_handle(constructor, *args) -> int:
    """Calls a constructor whose last parameter is the out-handle; returns the handle."""
    out = c_void_p()
    check(constructor(*args, ctypes.byref(out)))
    if not out.value:
        raise InternalError(f"{constructor.__name__} returned OK but no handle")
    return out.value


def encode_path(path) -> bytes:
    """A str, bytes or os.PathLike as the UTF-8 (or filesystem-encoded) C string."""
    return os.fsencode(path)


def string_array(items) -> ctypes.Array:
    """A ``const char* const*`` array of the given str/bytes/PathLike items (the array keeps
    the encoded bytes alive while it is referenced)."""
    encoded = [encode_path(s) for s in items]
    return (c_char_p * len(encoded))(*encoded)
