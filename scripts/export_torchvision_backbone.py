#!/usr/bin/env python3
"""Export torchvision's wide_resnet50_2, truncated after layer3, as a libpatchcore backbone.

This is the reference PatchCore setting (WideResNet50, layers ``layer2`` and ``layer3``)
for users who have torchvision's ImageNet weights. The result is an ONNX graph with

* input ``input``: RGB, NCHW, float32, ``[batch, 3, size, size]``, normalised with the
  ImageNet mean/std, i.e. ``(pixel/255 - mean) / std``;
* outputs ``layer2`` ``[batch, 512, size/8, size/8]`` and ``layer3``
  ``[batch, 1024, size/16, size/16]`` (28x28 and 14x14 at size 224);
* a dynamic batch dimension, opset 13 by default;

and a JSON sidecar next to it (same path, extension ``.json``) in the format that
``cmd/patchcore-backbone`` writes: ``format``, ``model``, ``model_sha256``,
``input_name``, ``input_size``, ``mean``, ``std``, ``layers``, ``layer_shapes``, ``source``.

Usage::

    # torchvision's IMAGENET1K_V1 weights, downloaded beforehand (on a machine with
    # internet: torchvision.models.Wide_ResNet50_2_Weights.IMAGENET1K_V1.get_state_dict(),
    # or the file wide_resnet50_2-95faca4d.pth from torchvision's model store)
    python scripts/export_torchvision_backbone.py \\
        --weights wide_resnet50_2-95faca4d.pth --out wrn50_layer3.onnx

    # a randomly initialised network, for tests
    python scripts/export_torchvision_backbone.py --random-init --seed 0 --out /tmp/wrn.onnx

Options: ``--input-size`` (default 224), ``--opset`` (default 13, at least 13).

Requirements: torch, torchvision, onnx (the exporter needs it); onnxruntime only for the
tests. Any torch >= 1.13 works. Offline, Debian 12 provides them without CUDA (about
150 MB of downloads)::

    apt-get install python3-torch python3-torchvision python3-onnx python3-pytest
    python3 -m venv --system-site-packages .deps/venv-export
    .deps/venv-export/bin/pip install onnxruntime
    .deps/venv-export/bin/python -m pytest scripts/test_export_torchvision_backbone.py

(PyPI's torch wheels for Linux carry CUDA and pull several GB of NVIDIA libraries.)
"""

import argparse
import hashlib
import inspect
import json
import os
import sys
import tempfile

import torch
import torchvision

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
LAYERS = ["layer2", "layer3"]
SIDECAR_FORMAT = "libpatchcore-backbone/1"


class Trunk(torch.nn.Module):
    """The stem and layer1..layer3 of a torchvision ResNet; returns (layer2, layer3)."""

    def __init__(self, resnet):
        super().__init__()
        self.stem = torch.nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3

    def forward(self, x):
        x = self.layer1(self.stem(x))
        l2 = self.layer2(x)
        return l2, self.layer3(l2)


def sha256_file(path):
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(weights=None, seed=None):
    """A full wide_resnet50_2 in eval mode: weights from a state-dict file, or, when
    weights is None, torchvision's random initialisation after torch.manual_seed(seed)."""
    if weights is None:
        if seed is None:
            raise ValueError("a random initialisation needs a seed")
        torch.manual_seed(seed)
    try:
        model = torchvision.models.wide_resnet50_2(weights=None)
    except TypeError:  # torchvision < 0.13
        model = torchvision.models.wide_resnet50_2(pretrained=False)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state, strict=True)
    return model.eval()


def export_onnx(model, out, input_size=224, opset=13):
    """Export the trunk of model (layer2 and layer3 outputs, dynamic batch) to out and
    return {layer: [C, H, W]}."""
    if opset < 13:
        raise ValueError("opset must be at least 13")
    if input_size < 32:
        raise ValueError("input size must be at least 32")
    trunk = Trunk(model).eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        shapes = {name: list(t.shape[1:]) for name, t in zip(LAYERS, trunk(dummy))}
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter, as in torch < 2.9
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    try:
        with torch.no_grad():
            torch.onnx.export(
                trunk,
                dummy,
                tmp,
                input_names=["input"],
                output_names=LAYERS,
                dynamic_axes={name: {0: "batch"} for name in ["input"] + LAYERS},
                opset_version=opset,
                do_constant_folding=True,
                **kwargs,
            )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return shapes


def sidecar_path(out):
    """The sidecar of an ONNX path: the extension replaced by .json."""
    return os.path.splitext(out)[0] + ".json"


def write_sidecar(out, input_size, shapes, source):
    """Write the JSON sidecar for the ONNX file at out and return its contents."""
    sidecar = {
        "format": SIDECAR_FORMAT,
        "model": os.path.basename(out),
        "model_sha256": sha256_file(out),
        "input_name": "input",
        "input_size": input_size,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "layers": LAYERS,
        "layer_shapes": shapes,
        "source": source,
    }
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)), suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, sidecar_path(out))
    return sidecar


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--weights", help="torchvision wide_resnet50_2 state dict (.pth)")
    group.add_argument("--random-init", action="store_true", help="random weights (tests only)")
    parser.add_argument("--seed", type=int, help="seed for --random-init")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--opset", type=int, default=13)
    args = parser.parse_args(argv)
    if args.random_init and args.seed is None:
        parser.error("--random-init needs --seed")
    if args.weights is not None and args.seed is not None:
        parser.error("--seed only applies to --random-init")
    if args.opset < 13:
        parser.error("--opset must be at least 13")
    if args.input_size < 32:
        parser.error("--input-size must be at least 32")
    if args.weights is not None and not os.path.isfile(args.weights):
        parser.error("--weights: no such file: %s" % args.weights)

    model = build_model(weights=args.weights, seed=args.seed)
    shapes = export_onnx(model, args.out, args.input_size, args.opset)
    source = {
        "package": "torchvision@" + torchvision.__version__.split("+")[0],
        "file": os.path.basename(args.weights) if args.weights else "",
        "sha256": sha256_file(args.weights) if args.weights else "",
        "up_to": "layer3",
        "weights": ("wide_resnet50_2 state dict" if args.weights
                    else "wide_resnet50_2, random initialisation, seed %d" % args.seed),
    }
    write_sidecar(args.out, args.input_size, shapes, source)
    print("wrote %s and %s" % (args.out, sidecar_path(args.out)))
    for name in LAYERS:
        print("  output %s [batch %s]" % (name, " ".join(map(str, shapes[name]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
