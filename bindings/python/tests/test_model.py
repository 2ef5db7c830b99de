"""patchcore.PatchCore: the golden end-to-end run, input forms, calibration, persistence,
errors, threads and leaks."""

from __future__ import annotations

import gc
import os
import shutil
import threading

import numpy as np
import pytest

import oracles
import patchcore
from conftest import MNV2_LAYERS
from patchcore import PatchCore

# The MobileNetV2 trunk takes [-1, 1] input: mean = std = 0.5 turns x/255 into x/127.5 - 1.
MNV2 = dict(layers=MNV2_LAYERS, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), sampler="identity", num_nn=1)


@pytest.fixture(scope="module")
def fitted(mnv2_onnx, mnv2_png):
    """The reference run: fit on the two train PNGs, identity sampler."""
    model = PatchCore(backbone=mnv2_onnx, **MNV2)
    model.fit(mnv2_png[0])
    yield model
    model.close()


def test_golden_end_to_end_from_files(fitted, mnv2_png, load):
    assert fitted.bank_size == 2 * 784
    assert fitted.grid_shape == (28, 28)
    assert fitted.map_shape == (224, 224)
    scores, maps = fitted.predict(mnv2_png[1])
    want = load("mnv2/image_scores_k1.npy")
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert oracles.rel_err(scores, want) < 1e-3
    assert maps.shape == (2, 224, 224) and maps.dtype == np.float32
    assert oracles.rel_err(maps, load("mnv2/segmentations_k1.npy")) < 1e-3
    assert scores[1] > scores[0]  # the stained image is the anomalous one


def test_config_reflects_arguments(fitted):
    cfg = fitted.config
    assert cfg["resize"] == 256 and cfg["imagesize"] == 224 and cfg["num_nn"] == 1
    assert cfg["nn_method"] == "exact" and cfg["embed_backbone"] is False
    assert cfg["pretrain_embed_dimension"] == 1024 and cfg["target_embed_dimension"] == 1024
    assert cfg["sigma"] == 4.0


def test_pixel_inputs_give_the_golden_scores(mnv2_onnx, mnv2_crops, load):
    """The 224x224 crops as arrays (resize 224 keeps them unchanged), in every accepted form."""
    model = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2)
    model.fit(mnv2_crops[:2])  # a uint8 batch [N, H, W, 3], read in place
    want = load("mnv2/image_scores_k1.npy")
    test = mnv2_crops[2:]
    scores, maps = model.predict(test)
    assert oracles.rel_err(scores, want) < 1e-3
    # A list of images (stacked into one batch), a BGR view (non-contiguous: copied), crops of
    # a larger canvas (a strided view: passed in place) and a mixed list give the same result.
    variants = {
        "list": (list(test), "rgb"),
        "bgr": (test[..., ::-1], "bgr"),
        "generator": ((img for img in test), "rgb"),
    }
    canvas = np.zeros((2, 300, 260, 3), dtype=np.uint8)
    canvas[:, 10:234, 20:244] = test
    variants["strided"] = (canvas[:, 10:234, 20:244], "rgb")
    for name, (images, fmt) in variants.items():
        s, m = model.predict(images, pixel_format=fmt)
        np.testing.assert_array_equal(s, scores, err_msg=name)
        np.testing.assert_array_equal(m, maps, err_msg=name)
    s, m = model.predict(list(test), maps=False)
    assert m is None
    np.testing.assert_array_equal(s, scores)
    model.close()


def test_mixed_paths_and_arrays(fitted, mnv2_png):
    files_scores, _ = fitted.predict(mnv2_png[1])
    gray = np.full((256, 256), 128, dtype=np.uint8)
    scores, maps = fitted.predict([mnv2_png[1][0], gray, mnv2_png[1][1]], maps=True)
    assert scores[0] == files_scores[0] and scores[2] == files_scores[1]
    rgb_scores, _ = fitted.predict([np.repeat(gray[:, :, None], 3, axis=2)])
    assert scores[1] == rgb_scores[0]  # grey is replicated to 3 channels
    assert maps.shape == (3, 224, 224)
    single, _ = fitted.predict(mnv2_png[1][1])  # one path alone
    assert single[0] == files_scores[1]


def test_features_only_model_on_golden_maps(load):
    model = PatchCore(layers=MNV2_LAYERS, sampler="identity")
    model.fit_features([load("mnv2/block6_train.npy"), load("mnv2/block10_train.npy")])
    assert model.bank_size == 1568
    test = {"block_10_expand_relu": load("mnv2/block10_test.npy"), "block_6_expand_relu": load("mnv2/block6_test.npy")}
    scores, maps = model.predict_features(test)  # a dict is ordered by the model's layers
    assert oracles.rel_err(scores, load("mnv2/image_scores_k1.npy")) < 1e-3
    assert oracles.rel_err(maps, load("mnv2/segmentations_k1.npy")) < 1e-3
    model.close()


def test_streaming_fit_equals_one_batch(mnv2_onnx, mnv2_crops):
    one = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2).fit(mnv2_crops[:2])
    two = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2)
    two.add([mnv2_crops[0]])
    two.fit([mnv2_crops[1]])
    np.testing.assert_array_equal(one.predict(mnv2_crops[2:])[0], two.predict(mnv2_crops[2:])[0])
    one.close()
    two.close()


# ------------------------------------------------------------------ calibration


def _features_model(seed: int, n_train: int = 4):
    rng = np.random.default_rng(seed)
    model = PatchCore(layers=["a", "b"], sampler="identity", resize=16, imagesize=16,
                      pretrain_embed_dimension=16, target_embed_dimension=16)
    model.fit_features([rng.random((n_train, 8, 4, 4), dtype=np.float32),
                        rng.random((n_train, 8, 2, 2), dtype=np.float32)])
    return model, rng


def test_calibrate_scores_methods():
    model, _ = _features_model(0)
    assert model.threshold is None
    scores = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 11.0], dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1])
    thr = model.calibrate_scores(scores[:4], method="quantile", param=1.0)
    assert thr == 4.0 and model.threshold == 4.0
    thr = model.calibrate_scores(scores, labels, method="quantile", param=0.5)
    assert thr == pytest.approx(oracles.quantile(scores[:4], 0.5))
    thr = model.calibrate_scores(scores[:4], method="mean_std", param=0.0)
    assert thr == pytest.approx(2.5)
    thr = model.calibrate_scores(scores[:4], method="mean_std", param=2.0)
    assert thr == pytest.approx(2.5 + 2.0 * np.std(scores[:4]), rel=1e-6)  # population std
    thr = model.calibrate_scores(scores, labels, method="f1")
    assert thr == 10.0  # the lowest anomalous score separates the classes (F1 = 1)
    # clamp((s - threshold) / (max - min) + 0.5, 0, 1) with min 1 and max 11 of the scores.
    s = np.array([10.0, 6.0, 12.0, 3.0, -1e9, 1e9], dtype=np.float32)
    want = np.clip((s.astype(np.float64) - 10.0) / 10.0 + 0.5, 0, 1)
    np.testing.assert_allclose(model.normalize(s), want, rtol=1e-6)
    assert model.normalize(s.reshape(2, 3)).shape == (2, 3)
    with pytest.raises(patchcore.InvalidArgumentError):
        model.calibrate_scores(scores, labels, method="nope")
    with pytest.raises(patchcore.InvalidArgumentError):
        model.calibrate_scores(scores, labels[:3])
    with pytest.raises(patchcore.InvalidArgumentError):
        model.calibrate_scores(scores, np.array([0, 0, 0, 0, 1, 2]))
    model.close()


def test_calibrate_images_matches_scores(mnv2_onnx, mnv2_crops, mnv2_png):
    model = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2).fit(mnv2_crops[:2])
    held_out = mnv2_crops[2:]
    scores, _ = model.predict(held_out, maps=False)
    thr_batch = model.calibrate(held_out, "quantile", 0.5)  # one batch: patchcore_model_calibrate
    assert thr_batch == pytest.approx(oracles.quantile(scores, 0.5), rel=1e-6)
    thr_mixed = model.calibrate([held_out[0], mnv2_png[1][1]], "quantile", 0.5)  # predict + calibrate_scores
    file_score = model.predict(mnv2_png[1][1], maps=False)[0][0]
    assert thr_mixed == pytest.approx(oracles.quantile([scores[0], file_score], 0.5), rel=1e-6)
    with pytest.raises(patchcore.InvalidArgumentError, match="labels"):
        model.calibrate(held_out, "f1")
    model.close()


def test_segment():
    model, rng = _features_model(1)
    maps = rng.random((2, 16, 16), dtype=np.float32)
    masks = model.segment(maps, 0.5)
    assert masks.dtype == np.bool_ and masks.shape == maps.shape
    np.testing.assert_array_equal(masks, maps >= 0.5)
    with pytest.raises(patchcore.InvalidStateError):
        model.segment(maps)  # no calibrated threshold yet
    model.calibrate_scores(np.array([0.25, 0.75], dtype=np.float32), method="quantile", param=0.5)
    np.testing.assert_array_equal(model.segment(maps), maps >= 0.5)
    model.close()


# ------------------------------------------------------------------ persistence


def test_save_load_and_bytes_round_trip(fitted, mnv2_png, mnv2_onnx, tmp_path):
    want = fitted.predict(mnv2_png[1])
    path = tmp_path / "model.patchcore"
    fitted.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.patchcore"]  # atomic: no temporary left
    loaded_models = [PatchCore.load(str(path), backbone=mnv2_onnx),
                     PatchCore.from_bytes(fitted.to_bytes(), backbone=mnv2_onnx)]
    # Without an override the backbone named in the file is looked up next to the model file.
    with pytest.raises(patchcore.PatchCoreIOError, match="nsfwjs_mnv2"):
        PatchCore.load(path)
    shutil.copyfile(mnv2_onnx, tmp_path / os.path.basename(mnv2_onnx))
    loaded_models.append(PatchCore.load(path))
    for loaded in loaded_models:
        with loaded:
            got = loaded.predict(mnv2_png[1])
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            assert loaded.bank_size == fitted.bank_size
        assert loaded.closed


def test_embedded_backbone_and_backbone_mismatch(mnv2_onnx, mnv2_crops, tmp_path):
    with open(mnv2_onnx, "rb") as f:
        onnx = f.read()
    model = PatchCore(backbone=onnx, resize=224, imagesize=224, embed_backbone=True, **MNV2).fit(mnv2_crops[:2])
    want = model.predict(mnv2_crops[2:])[0]
    data = model.to_bytes()
    assert len(data) > len(onnx)
    with PatchCore.from_bytes(data) as loaded:  # nothing else needed
        np.testing.assert_array_equal(loaded.predict(mnv2_crops[2:])[0], want)
    other = tmp_path / "other.onnx"
    other.write_bytes(onnx + b"\0")
    plain = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2).fit(mnv2_crops[:2])
    plain.save(tmp_path / "plain.patchcore")
    with pytest.raises(patchcore.InvalidArgumentError, match="sha256"):
        PatchCore.load(tmp_path / "plain.patchcore", backbone=other)
    model.close()
    plain.close()


def test_load_errors(fitted, tmp_path):
    with pytest.raises(patchcore.PatchCoreIOError, match="absent.patchcore"):
        PatchCore.load(tmp_path / "absent.patchcore")
    data = fitted.to_bytes()
    truncated = tmp_path / "truncated.patchcore"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(patchcore.FormatError, match="truncated.patchcore"):
        PatchCore.load(truncated)
    with pytest.raises(patchcore.FormatError):
        PatchCore.from_bytes(data[:100])
    with pytest.raises(patchcore.InvalidArgumentError):
        PatchCore.load(tmp_path / "x", backbone=b"bytes")


def test_calibration_survives_save(tmp_path):
    model, rng = _features_model(2)
    model.calibrate_scores(np.array([1.0, 3.0], dtype=np.float32), method="quantile", param=1.0)
    model.save(tmp_path / "m")
    with PatchCore.load(tmp_path / "m") as loaded:
        assert loaded.threshold == 3.0
    model.close()


# ------------------------------------------------------------------ errors


def test_lifecycle_errors(mnv2_onnx, mnv2_crops):
    model = PatchCore(backbone=mnv2_onnx, resize=224, imagesize=224, **MNV2)
    with pytest.raises(patchcore.InvalidStateError):
        model.predict(mnv2_crops[2:])
    with pytest.raises(patchcore.InvalidStateError):
        model.fit()  # nothing added
    model.close()
    model.close()  # idempotent
    assert model.closed
    with pytest.raises(patchcore.InvalidHandleError, match="closed"):
        model.predict(mnv2_crops[2:])
    with PatchCore(layers=["a"]) as m:
        pass
    assert m.closed


def test_argument_errors(fitted, mnv2_onnx, tmp_path):
    with pytest.raises(patchcore.InvalidArgumentError, match="uint8"):
        fitted.predict([np.zeros((64, 64, 3), dtype=np.float32)])
    with pytest.raises(patchcore.InvalidArgumentError, match="batch"):
        fitted.predict(np.zeros((64, 64, 3), dtype=np.uint8))  # a lone image must be in a list
    with pytest.raises(patchcore.InvalidArgumentError):
        fitted.predict([np.zeros((64, 64, 2), dtype=np.uint8)])  # 2 channels
    with pytest.raises(patchcore.InvalidArgumentError, match="pixel_format"):
        fitted.predict([np.zeros((64, 64, 3), dtype=np.uint8)], pixel_format="yuv")
    with pytest.raises(patchcore.PatchCoreIOError, match="nope.png"):
        fitted.predict([str(tmp_path / "nope.png")])
    not_png = tmp_path / "bad.png"
    not_png.write_bytes(b"not an image")
    with pytest.raises(patchcore.FormatError, match="bad.png"):
        fitted.predict([str(not_png)])
    with pytest.raises(patchcore.InvalidArgumentError, match="no_such_layer"):
        PatchCore(backbone=mnv2_onnx, layers=["block_6_expand_relu", "no_such_layer"])
    with pytest.raises(patchcore.PatchCoreIOError, match="absent.onnx"):
        PatchCore(backbone=str(tmp_path / "absent.onnx"), layers=MNV2_LAYERS)
    with pytest.raises(patchcore.InvalidArgumentError, match="sampler|magic"):
        PatchCore(sampler="magic")
    with pytest.raises(patchcore.InvalidArgumentError, match="nn_method"):
        PatchCore(nn_method="annoy")
    with pytest.raises(patchcore.InvalidArgumentError):
        PatchCore(patchsize=4)
    with pytest.raises(patchcore.InvalidArgumentError):
        PatchCore(mean=(0.5, 0.5))
    with pytest.raises(patchcore.InvalidArgumentError):
        PatchCore(percentage=1.5)


def test_feature_errors():
    model, rng = _features_model(3)
    good = [rng.random((1, 8, 4, 4), dtype=np.float32), rng.random((1, 8, 2, 2), dtype=np.float32)]
    nan = [good[0].copy(), good[1]]
    nan[0][0, 1, 2, 3] = np.nan
    with pytest.raises(patchcore.InvalidArgumentError):
        model.predict_features(nan)
    with pytest.raises(patchcore.InvalidArgumentError):
        model.predict_features(good[:1])  # one layer for a two-layer model
    with pytest.raises(patchcore.InvalidArgumentError, match="dimensions"):
        model.predict_features([good[0][0], good[1][0]])
    with pytest.raises(patchcore.InvalidArgumentError, match="list"):
        model.predict_features(good[0])
    with pytest.raises(patchcore.InvalidArgumentError):
        model.predict_features([good[0], rng.random((2, 8, 2, 2), dtype=np.float32)])  # batch mismatch
    # A non-contiguous float64 view is converted and gives the contiguous result.
    strided = [np.asfortranarray(good[0].astype(np.float64)), good[1][:, :, :, :]]
    np.testing.assert_array_equal(model.predict_features(strided)[0], model.predict_features(good)[0])
    with pytest.raises(patchcore.InvalidStateError):
        PatchCore(layers=["a", "b"]).predict([np.zeros((8, 8, 3), dtype=np.uint8)])  # features-only model
    model.close()


# ------------------------------------------------------------------ threads and leaks


def test_concurrent_predict(fitted, mnv2_crops):
    images = list(mnv2_crops)
    want_scores, want_maps = fitted.predict(images)
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = fitted.predict(images)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for scores, maps in results:
        np.testing.assert_array_equal(scores, want_scores)
        np.testing.assert_array_equal(maps, want_maps)


def test_predict_releases_the_gil(fitted, mnv2_crops):
    """While one thread is inside predict, a pure-Python thread keeps running."""
    images = list(mnv2_crops) * 2
    ticks = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    before = ticks
    fitted.predict(images)
    during = ticks - before
    done.set()
    t.join()
    assert during > 100_000


_LEAK_SCRIPT = """
import gc, sys
import numpy as np
import patchcore
sys.path.insert(0, sys.argv[1])
from conftest import rss_bytes

rng = np.random.default_rng(4)
train = [rng.random((2, 8, 4, 4), dtype=np.float32), rng.random((2, 8, 2, 2), dtype=np.float32)]
test = [rng.random((1, 8, 4, 4), dtype=np.float32), rng.random((1, 8, 2, 2), dtype=np.float32)]

def cycle():
    model = patchcore.PatchCore(layers=["a", "b"], sampler="identity", resize=16, imagesize=16,
                                pretrain_embed_dimension=16, target_embed_dimension=16)
    model.fit_features(train)
    model.predict_features(test)
    model.close()
    nn = patchcore.common.FaissNN(False, 1)
    nn.fit(train[0].reshape(2, -1))
    nn.run(1, test[0].reshape(1, -1))
    nn.close()
    seg = patchcore.common.RescaleSegmentor("cpu", 16)
    seg.convert_to_segmentation(np.ones((1, 4, 4), dtype=np.float32))
    seg.close()

for _ in range(200):  # warm-up: allocator pools, Go heap growth
    cycle()
marks = []
for _ in range(3):
    gc.collect()
    marks.append(rss_bytes())
    for _ in range(1000):
        cycle()
gc.collect()
marks.append(rss_bytes())
print(" ".join(str(m) for m in marks))
"""


def test_no_leak_over_1000_models():
    """Create, fit, predict and close 3 x 1000 small models, indexes and segmentors in a
    fresh process (so that other tests' heaps do not blur the measurement): RSS stays
    bounded and does not keep growing from one thousand to the next."""
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _LEAK_SCRIPT, os.path.dirname(__file__)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    marks = [int(v) for v in r.stdout.split()]
    mib = [(b - a) / 2**20 for a, b in zip(marks, marks[1:])]
    assert sum(mib) < 32, f"RSS grew by {mib} MiB per 1000 cycles"
    assert mib[-1] < 4, f"RSS still growing: {mib} MiB per 1000 cycles"


def test_del_frees_the_handle():
    from patchcore import _native

    model, _ = _features_model(5)
    handle = model._handle_value
    del model
    gc.collect()
    assert _native.lib().patchcore_model_free(handle) == patchcore.errors.ERR_INVALID_HANDLE
