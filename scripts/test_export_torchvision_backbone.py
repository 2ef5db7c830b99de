"""Tests for export_torchvision_backbone.py on randomly initialised networks.

Run with the environment described in that script's docstring:
    .deps/venv-export/bin/python -m pytest scripts/test_export_torchvision_backbone.py
Skipped when torch, torchvision, onnx or onnxruntime is missing.
"""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export_torchvision_backbone.py")
spec = importlib.util.spec_from_file_location("export_torchvision_backbone", SCRIPT)
exporter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exporter)


def hooked_features(model, x):
    """layer2 and layer3 outputs of the full network, captured by forward hooks."""
    feats = {}
    handles = [getattr(model, name).register_forward_hook(
        lambda _m, _i, out, name=name: feats.__setitem__(name, out.detach().numpy()))
        for name in exporter.LAYERS]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return feats


def run_onnx(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return dict(zip(exporter.LAYERS, sess.run(exporter.LAYERS, {"input": x.numpy()})))


def assert_close(got, want, name):
    assert got.shape == want.shape, name
    err = np.abs(got - want).max() / np.abs(want).max()
    print("%s: relative error %.3g" % (name, err))
    assert err < 1e-4, "%s: relative error %.3g" % (name, err)


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory):
    """The command line run once: --random-init --seed 0 at input size 64."""
    out = str(tmp_path_factory.mktemp("cli") / "wrn.onnx")
    subprocess.run([sys.executable, SCRIPT, "--random-init", "--seed", "0", "--out", out,
                    "--input-size", "64"], check=True, capture_output=True)
    return out


def test_cli_export_matches_torch_hooks(cli_export):
    model = onnx.load(cli_export)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["layer2", "layer3"]
    assert [i.name for i in model.graph.input] == ["input"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 13

    # The same seed rebuilds the same network; batch 3 differs from the export's 1.
    reference = exporter.build_model(seed=0)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    want = hooked_features(reference, x)
    got = run_onnx(cli_export, x)
    for name in exporter.LAYERS:
        assert_close(got[name], want[name], name)


def test_cli_sidecar(cli_export):
    with open(exporter.sidecar_path(cli_export)) as f:
        sidecar = json.load(f)
    with open(cli_export, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert sidecar["format"] == "libpatchcore-backbone/1"
    assert sidecar["model"] == "wrn.onnx"
    assert sidecar["model_sha256"] == digest
    assert sidecar["input_name"] == "input"
    assert sidecar["input_size"] == 64
    assert sidecar["mean"] == [0.485, 0.456, 0.406]
    assert sidecar["std"] == [0.229, 0.224, 0.225]
    assert sidecar["layers"] == ["layer2", "layer3"]
    assert sidecar["layer_shapes"] == {"layer2": [512, 8, 8], "layer3": [1024, 4, 4]}
    assert sidecar["source"]["weights"].endswith("seed 0")
    assert sidecar["source"]["up_to"] == "layer3"


def test_weights_file_with_batchnorm_statistics(tmp_path):
    """A state dict with non-trivial batch-norm statistics, loaded from a .pth file, so the
    exporter's batch-norm folding is exercised; 224x224 gives the reference 28x28/14x14."""
    model = exporter.build_model(seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    weights = str(tmp_path / "wrn.pth")
    torch.save(model.state_dict(), weights)

    loaded = exporter.build_model(weights=weights)
    out = str(tmp_path / "wrn.onnx")
    shapes = exporter.export_onnx(loaded, out, input_size=224)
    assert shapes == {"layer2": [512, 28, 28], "layer3": [1024, 14, 14]}
    x = torch.randn(2, 3, 224, 224, generator=gen)
    want = hooked_features(model, x)
    got = run_onnx(out, x)
    for name in exporter.LAYERS:
        assert_close(got[name], want[name], name)


def test_rejects_bad_arguments(tmp_path):
    out = str(tmp_path / "x.onnx")
    for args in (["--out", out],
                 ["--random-init", "--out", out],
                 ["--random-init", "--seed", "0", "--out", out, "--opset", "12"],
                 ["--random-init", "--seed", "0", "--out", out, "--input-size", "16"],
                 ["--weights", "w.pth", "--seed", "1", "--out", out],
                 ["--weights", str(tmp_path / "absent.pth"), "--out", out]):
        with pytest.raises(SystemExit) as exc:
            exporter.main(args)
        assert exc.value.code == 2, args
    assert not os.path.exists(out)
