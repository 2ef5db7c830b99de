"""Shared fixtures: golden data (testdata/golden of the repository, or $PATCHCORE_GOLDEN) and
the MobileNetV2 backbone."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # oracles.py

REPO = pathlib.Path(__file__).resolve().parents[3]

MNV2_LAYERS = ["block_6_expand_relu", "block_10_expand_relu"]


def _golden_root() -> pathlib.Path | None:
    candidates = [os.environ.get("PATCHCORE_GOLDEN"), REPO / "testdata" / "golden", REPO.parent / "shared" / "golden"]
    for c in candidates:
        if c and (pathlib.Path(c) / "mnv2").is_dir():
            return pathlib.Path(c)
    return None


@pytest.fixture(scope="session")
def golden() -> pathlib.Path:
    """Folder of the golden arrays (skips the test when absent)."""
    root = _golden_root()
    if root is None:
        pytest.skip("golden data not found (set PATCHCORE_GOLDEN)")
    return root


@pytest.fixture(scope="session")
def load(golden):
    """load("mnv2/memory_bank.npy") -> the array."""

    def _load(rel: str) -> np.ndarray:
        return np.load(golden / rel)

    return _load


@pytest.fixture(scope="session")
def mnv2_onnx(golden) -> str:
    """Path of the golden MobileNetV2 trunk."""
    return str(golden / "mnv2" / "nsfwjs_mnv2_block6er_block10er_pm1.onnx")


@pytest.fixture(scope="session")
def mnv2_png(golden):
    """(train paths, test paths) of the mnv2 images."""
    png = golden / "mnv2" / "png"
    return ([str(png / "train_good_000.png"), str(png / "train_good_001.png")],
            [str(png / "test_good_001.png"), str(png / "test_stain_000.png")])


@pytest.fixture(scope="session")
def mnv2_crops(load) -> np.ndarray:
    """The four 224x224 uint8 RGB crops [4, 224, 224, 3] (train0, train1, test0, test1),
    recovered exactly from input_onnx_pm1 = crop / 127.5 - 1."""
    x = load("mnv2/input_onnx_pm1.npy").astype(np.float64)
    crops = np.rint((x + 1.0) * 127.5)
    assert np.abs((crops / 127.5 - 1.0) - x).max() < 1e-6
    return np.ascontiguousarray(crops.astype(np.uint8).transpose(0, 2, 3, 1))


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
