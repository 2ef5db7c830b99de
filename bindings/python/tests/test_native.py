"""The ctypes layer: signatures against the header, library lookup, version check, error
mapping, thread-local messages and stale handles."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import patchcore
from patchcore import _native, errors
from conftest import REPO

HEADER = REPO / "include" / "patchcore.h"


def _header_functions() -> dict:
    """name -> parameter count of every PATCHCORE_API function of patchcore.h."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    found = {}
    for m in re.finditer(r"PATCHCORE_API\s+[^;]*?\b(patchcore_\w+)\s*\(([^)]*)\)\s*;", text):
        params = m.group(2).strip()
        found[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    return found


@pytest.mark.skipif(not HEADER.exists(), reason="include/patchcore.h not in this checkout")
def test_every_header_function_is_declared_with_its_arity():
    header = _header_functions()
    assert len(header) >= 50
    assert set(header) == set(_native._SIGNATURES)
    lib = _native.lib()
    for name, arity in header.items():
        fn = getattr(lib, name)
        assert len(fn.argtypes) == arity, name
        assert fn.restype is not None, name


def test_handle_parameters_are_pointer_sized():
    lib = _native.lib()
    for name in ("patchcore_model_free", "patchcore_scorer_free", "patchcore_segmentor_free",
                 "patchcore_aggregator_free", "patchcore_config_free"):
        assert getattr(lib, name).argtypes == [ctypes.c_void_p]


def test_version():
    assert patchcore.library_version() == "%d.%d.%d" % _native.BINDING_VERSION
    number = _native.lib().patchcore_version_number()
    assert number == 10000 * _native.BINDING_VERSION[0] + 100 * _native.BINDING_VERSION[1] + _native.BINDING_VERSION[2]
    _native.check_version(number)
    _native.check_version(number + 1)  # a newer patch release serves this binding
    with pytest.raises(ImportError, match="major version 1"):
        _native.check_version(10000 + number)
    with pytest.raises(ImportError, match="older than"):
        _native.check_version(0)


def test_status_strings_match_error_classes():
    lib = _native.lib()
    for code, cls in errors._CLASSES.items():
        assert lib.patchcore_status_string(code).decode() == errors._STATUS_NAMES[code]
        exc = errors.error_for_status(code, "m")
        assert type(exc) is cls and exc.status == code and str(exc) == "m"
    assert lib.patchcore_status_string(99).decode() == "PATCHCORE_ERR_UNKNOWN"
    assert issubclass(patchcore.InvalidArgumentError, ValueError)
    assert issubclass(patchcore.PatchCoreIOError, OSError)
    assert issubclass(patchcore.OutOfMemoryError, MemoryError)
    assert all(issubclass(c, patchcore.PatchCoreError) for c in errors._CLASSES.values())


def test_library_error_carries_message_and_status():
    with pytest.raises(patchcore.InvalidArgumentError) as info:
        patchcore.set_num_threads(-3)
    assert info.value.status == errors.ERR_INVALID_ARGUMENT
    assert info.value.status_name == "PATCHCORE_ERR_INVALID_ARGUMENT"
    assert "-3" in str(info.value)


def test_int32_overflow_is_refused_before_the_call():
    with pytest.raises(patchcore.InvalidArgumentError, match="int32"):
        patchcore.set_num_threads(2**32)


def test_last_error_is_per_thread():
    """8 threads fail with different values at the same time; each reads its own message."""
    barrier = threading.Barrier(8)
    seen = {}

    def work(i: int) -> None:
        lib = _native.lib()
        barrier.wait()
        for _ in range(50):
            status = lib.patchcore_set_num_threads(-(1000 + i))
            assert status == errors.ERR_INVALID_ARGUMENT
            message = _native.last_error()
            if str(-(1000 + i)) not in message:
                seen[i] = message
                return
        seen[i] = None

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {i: None for i in range(8)}


def test_last_error_longer_than_first_buffer(mnv2_onnx):
    """A message longer than the binding's first 512-byte buffer is read whole."""
    name = "layer_" + "x" * 900
    with pytest.raises(patchcore.InvalidArgumentError) as info:
        patchcore.common.NetworkFeatureAggregator(mnv2_onnx, [name], "cpu")
    assert name in str(info.value)


def test_stale_and_double_free_are_invalid_handle():
    lib = _native.lib()
    h = _native.new_handle(lib.patchcore_segmentor_create, 8, 8, 4.0)
    _native.check(lib.patchcore_segmentor_free(h))
    assert lib.patchcore_segmentor_free(h) == errors.ERR_INVALID_HANDLE
    out = np.empty(64, dtype=np.float32)
    scores = np.zeros(4, dtype=np.float32)
    status = lib.patchcore_segmentor_convert(h, scores.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 1, 2, 2,
                                             out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 64, None)
    assert status == errors.ERR_INVALID_HANDLE
    with pytest.raises(patchcore.InvalidHandleError):
        _native.check(status)
    assert lib.patchcore_segmentor_free(None) == errors.OK


def test_handle_of_another_kind_is_refused():
    lib = _native.lib()
    seg = _native.new_handle(lib.patchcore_segmentor_create, 8, 8, 4.0)
    try:
        assert lib.patchcore_scorer_free(seg) == errors.ERR_INVALID_HANDLE
    finally:
        _native.check(lib.patchcore_segmentor_free(seg))


def _run_python(code: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _env_without_library() -> dict:
    env = dict(os.environ)
    env.pop("PATCHCORE_LIBRARY", None)
    return env


def test_lookup_explicit_path_that_does_not_exist():
    env = dict(os.environ, PATCHCORE_LIBRARY="/nonexistent/libpatchcore.so")
    r = _run_python("import patchcore; patchcore.library_version()", env)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "/nonexistent/libpatchcore.so" in r.stderr and "PATCHCORE_LIBRARY" in r.stderr


def test_lookup_in_package_directory(tmp_path):
    """Without PATCHCORE_LIBRARY, a libpatchcore.so inside the package directory is used."""
    lib_path = _native.lib()._name
    pkg = tmp_path / "patchcore"
    shutil.copytree(os.path.dirname(patchcore.__file__), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(lib_path, pkg / "libpatchcore.so")
    r = _run_python("import patchcore; print(patchcore.library_path()); print(patchcore.library_version())",
                    dict(_env_without_library(), PYTHONPATH=str(tmp_path)), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(pkg / "libpatchcore.so"), patchcore.library_version()]


def test_lookup_through_system_loader():
    """Without PATCHCORE_LIBRARY and without a copy in the package, the loader's search path
    (here LD_LIBRARY_PATH) finds the versioned soname."""
    lib_dir = os.path.dirname(os.path.realpath(_native.lib()._name))
    here = os.path.dirname(patchcore.__file__)
    if any(os.path.exists(os.path.join(here, n)) for n in _native._library_names()):
        pytest.skip("the installed package carries its own library")
    soname = os.path.join(lib_dir, "libpatchcore.so.%d" % _native.BINDING_VERSION[0])
    if not os.path.exists(soname):
        pytest.skip(f"{soname} does not exist (the library was not installed by `make lib`)")
    env = dict(_env_without_library(), LD_LIBRARY_PATH=lib_dir)
    r = _run_python("import patchcore; print(patchcore.library_version())", env, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == patchcore.library_version()
