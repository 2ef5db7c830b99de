"""Exports a torch.nn.Module backbone to ONNX so that the library can run it.

The exported graph returns the requested layers' outputs, found as the reference's
NetworkFeatureAggregator finds them: a dotted module path (``layer2``, ``features.denseblock2``,
``blocks.3``); when the module is an ``nn.Sequential`` its last child is hooked. The forward
pass stops after the last requested layer, so nothing beyond it enters the graph. Batch,
height and width are dynamic.

torch is imported only here, and only when a module is actually passed.
"""

from __future__ import annotations

import inspect
import io

from .errors import InvalidArgumentError, UnsupportedError


class _StopForward(Exception):
    """Raised by the hook of the last requested layer to end the forward pass."""


def export_backbone(module, layers, input_shape=(3, 224, 224), opset: int = 17) -> bytes:
    """Returns ONNX bytes of ``module`` truncated after ``layers[-1]``, with one output per
    layer named after it.

    Raises:
        UnsupportedError: PyTorch (with its ONNX exporter) is not installed.
        InvalidArgumentError: a layer name does not name a submodule.
    """
    try:
        import torch
    except ImportError as exc:
        raise UnsupportedError(
            "a torch.nn.Module backbone needs PyTorch to export it to ONNX (pip install torch "
            "onnx); or pass the path or bytes of an ONNX file instead"
        ) from exc

    layers = list(layers)
    if not layers:
        raise InvalidArgumentError("layers_to_extract_from is empty")

    class Trunk(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = module
            self.outputs = {}

        def forward(self, x):
            self.outputs.clear()
            try:
                self.backbone(x)
            except _StopForward:
                pass
            return tuple(self.outputs[name] for name in layers)

    trunk = Trunk()

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            trunk.outputs[name] = output
            if name == layers[-1]:
                raise _StopForward()

        return hook

    handles = []
    try:
        for name in layers:
            try:
                target = module.get_submodule(name)
            except AttributeError as exc:
                raise InvalidArgumentError(f"backbone has no submodule {name!r}") from exc
            if isinstance(target, torch.nn.Sequential) and len(target) > 0:
                target = target[-1]
            handles.append(target.register_forward_hook(hook_for(name)))
        params = next(module.parameters(), None)
        device = params.device if params is not None else torch.device("cpu")
        dummy = torch.ones((1,) + tuple(input_shape), device=device)
        dynamic = {"input": {0: "batch", 2: "height", 3: "width"}}
        dynamic.update({name: {0: "batch", 2: f"{name}_h", 3: f"{name}_w"} for name in layers})
        kwargs = dict(input_names=["input"], output_names=layers, dynamic_axes=dynamic,
                      opset_version=opset, do_constant_folding=True)
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False  # the TorchScript exporter understands the hooks
        buf = io.BytesIO()
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                torch.onnx.export(trunk, (dummy,), buf, **kwargs)
        finally:
            module.train(was_training)
        return buf.getvalue()
    finally:
        for h in handles:
            h.remove()
