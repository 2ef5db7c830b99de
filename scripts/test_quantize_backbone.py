"""Tests for quantize_backbone.py.

Run in the environment scripts/install-quantize.sh makes (not part of `make test`):
    .deps/venv-quantize/bin/python -m pytest scripts/test_quantize_backbone.py
Needs no network. The conversion tests use the default backbone
.deps/models/mobilenet_v2_block10.onnx (scripts/make-backbone.sh) and are skipped without
it; they calibrate on .deps/bench-data/demo-1000/grass/train/good when present, else on
synthetic images.
"""

import hashlib
import importlib.util
import json
import os

import pytest

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")
Image = pytest.importorskip("PIL.Image")
from onnx import TensorProto, helper  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MNV2 = os.path.join(ROOT, ".deps", "models", "mobilenet_v2_block10.onnx")
GRASS = os.path.join(ROOT, ".deps", "bench-data", "demo-1000", "grass", "train", "good")

spec = importlib.util.spec_from_file_location("quantize_backbone", os.path.join(HERE, "quantize_backbone.py"))
qb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qb)

# Bounds on a layer's relative L2 error against float32 on a real image; measured on the
# grass images: int8 0.06, fp16 0.006 (MobileNetV2, both layers).
INT8_MAX_REL = 0.10
FP16_MAX_REL = 0.02


def test_preprocess_crop_and_normalise_by_hand(tmp_path):
    # Shorter side 256 = the resize for size 224, so no resampling happens and the result
    # is the centre crop normalised: offsets (259-224)/2 = 17.5 -> 18 (half to even) and
    # (300-224)/2 = 38.
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, size=(259, 256, 3), dtype=np.uint8)  # H=259, W=256
    path = str(tmp_path / "a.png")
    Image.fromarray(u8).save(path)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    got = qb.preprocess(path, 224, mean, std)
    crop = u8[18:18 + 224, 16:16 + 224].astype(np.float32)
    want = ((crop / np.float32(255) - np.float32(mean)) / np.float32(std)).transpose(2, 0, 1)
    assert got.dtype == np.float32 and got.shape == (3, 224, 224)
    np.testing.assert_array_equal(got, want)

    u8 = rng.integers(0, 256, size=(256, 300, 3), dtype=np.uint8)
    Image.fromarray(u8).save(path)
    got = qb.preprocess(path, 224, [0.5] * 3, [0.5] * 3)
    want = (u8[16:240, 38:262].astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    np.testing.assert_array_equal(got, want.transpose(2, 0, 1))


def tiny_fp16_layer_model():
    """X float -> Cast fp16 -> Relu (Y, float16) -> Cast -> Z float (output)."""
    nodes = [
        helper.make_node("Cast", ["X"], ["Xh"], to=TensorProto.FLOAT16),
        helper.make_node("Relu", ["Xh"], ["Y"]),
        helper.make_node("Cast", ["Y"], ["Z"], to=TensorProto.FLOAT),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [1, 2, 3, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_check_layers_rejects_missing_and_non_float32_layers():
    m = tiny_fp16_layer_model()
    qb.check_layers(m, ["Z"], "tiny")  # a float32 graph output
    with pytest.raises(qb.ConversionError, match="float16"):
        qb.check_layers(m, ["Y"], "tiny")
    with pytest.raises(qb.ConversionError, match="no tensor named"):
        qb.check_layers(m, ["W"], "tiny")


def test_fp16_keeps_input_and_an_internal_layer_float32():
    # Conv -> Relu (L, the layer, consumed further) -> Conv -> out: L must stay a float32
    # tensor named L while the convolutions run in float16.
    rng = np.random.default_rng(2)
    w1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["X", "W1"], ["A"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["A"], ["L"]),
             helper.make_node("Conv", ["L", "W2"], ["out"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 8, 8])],
                          [onnx.numpy_helper.from_array(w1, "W1"), onnx.numpy_helper.from_array(w2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m16, how = qb.make_fp16(m, ["L"])
    assert how["dtype"] == "fp16"
    assert m16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(t.data_type == TensorProto.FLOAT16 for t in m16.graph.initializer)
    qb.check_layers(m16, ["L"], "tiny fp16")
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    ref = qb.run_layers(qb.session(m, ["L", "out"]), "X", [x])
    got = qb.run_layers(qb.session(m16, ["L", "out"]), "X", [x])
    errs = qb.layer_errors(ref, got, ["L", "out"], {"L": [4, 8, 8]}, "tiny fp16")
    assert got["L"].dtype == np.float32
    assert errs["L"]["rel_l2_max"] < 2e-3 and errs["out"]["rel_l2_max"] < 2e-3


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    """The grass training images when present, else 12 synthetic textures."""
    if os.path.isdir(GRASS):
        return GRASS
    d = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(3)
    for i in range(12):
        base = rng.integers(60, 200, size=(3,))
        noise = rng.normal(0, 25, size=(64, 64, 3))
        img = np.clip(base + np.kron(noise, np.ones((4, 4, 1))), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(str(d / ("%02d.png" % i)))
    return str(d)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, calib_dir):
    if not os.path.isfile(MNV2):
        pytest.skip("no %s (scripts/make-backbone.sh)" % MNV2)
    out = tmp_path_factory.mktemp("variants")
    rc = qb.main([MNV2, "--calib", calib_dir, "--calib-count", "8", "--check-images", "2", "--out-dir", str(out)])
    assert rc == 0
    return out


@pytest.mark.parametrize("variant,bound", [("int8", INT8_MAX_REL), ("fp16", FP16_MAX_REL)])
def test_variant_layers_are_float32_and_close_to_fp32(converted, calib_dir, variant, bound):
    path = os.path.join(str(converted), "mobilenet_v2_block10_%s.onnx" % variant)
    with open(qb.sidecar_path(MNV2)) as f:
        src = json.load(f)
    with open(qb.sidecar_path(path)) as f:
        side = json.load(f)
    for key in ("format", "layers", "mean", "std", "input_size", "layer_shapes"):
        assert side[key] == src[key]
    with open(path, "rb") as f:
        assert side["model_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert side["model"] == os.path.basename(path)
    assert side["precision"]["dtype"] == variant
    assert side["precision"]["derived_from"]["model_sha256"] == src["model_sha256"]

    layers = src["layers"]
    model = onnx.load(path)
    produced = {o for n in model.graph.node for o in n.output}
    assert set(layers) <= produced
    # One real image that was not among the calibration images (the last of the folder).
    image = qb.list_images(calib_dir)[-1]
    x = qb.preprocess(image, src["input_size"], src["mean"], src["std"])
    ref = qb.run_layers(qb.session(onnx.load(MNV2), layers), "input", [x])
    got = qb.run_layers(qb.session(model, layers), "input", [x])
    for l in layers:
        assert got[l].dtype == np.float32
        assert list(got[l].shape[1:]) == src["layer_shapes"][l]
        rel = np.linalg.norm(got[l] - ref[l]) / np.linalg.norm(ref[l])
        assert 0 < rel < bound, (l, rel)


def test_failed_check_writes_nothing(tmp_path, calib_dir):
    if not os.path.isfile(MNV2):
        pytest.skip("no %s (scripts/make-backbone.sh)" % MNV2)
    rc = qb.main([MNV2, "--variants", "fp16", "--calib", calib_dir, "--check-images", "1",
                  "--max-rel-error", "1e-9", "--out-dir", str(tmp_path)])
    assert rc == 1
    assert os.listdir(str(tmp_path)) == []
