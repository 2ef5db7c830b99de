"""Stateless operations of the library: PyTorch-exact adaptive average pooling and the
reference's whole post-backbone embedding (PatchMaker, grid alignment, Preprocessing,
Aggregator) in one call."""

from __future__ import annotations

import numpy as np

from . import _native
from ._arrays import as_float32, f32, i32, layer_arrays, like_input
from .errors import InvalidArgumentError


def adaptive_avg_pool1d(x, output_size: int):
    """``torch.nn.functional.adaptive_avg_pool1d`` over the last axis.

    Output element i of each row averages input elements
    ``[floor(i*L/O), ceil((i+1)*L/O))`` (L input length, O = output_size), exactly as PyTorch.

    Args:
        x: array [..., L] (at least 1-D); a torch tensor gives a torch tensor back.
        output_size: O >= 1.

    Returns:
        float32 array [..., O].
    """
    a = as_float32(x, "x", min_ndim=1)
    if int(output_size) < 1:
        raise InvalidArgumentError(f"output_size = {output_size}; need >= 1")
    lead = a.shape[:-1]
    rows = int(np.prod(lead, dtype=np.int64)) if lead else 1
    out = np.empty(lead + (int(output_size),), dtype=np.float32)
    lib = _native.lib()
    _native.check(lib.patchcore_adaptive_avg_pool1d(f32(a), rows, a.shape[-1], int(output_size), f32(out)))
    return like_input(out, x)


def embed(layers, patchsize: int = 3, pretrain_embed_dimension: int = 1024,
          target_embed_dimension: int = 1024) -> np.ndarray:
    """Patch embeddings of per-layer feature maps, as the reference's ``PatchCore._embed``
    after the backbone.

    Args:
        layers: list (or dict, in insertion order) of float arrays [N, C_i, H_i, W_i], one
            per backbone layer; the first layer defines the patch grid.
        patchsize: odd neighbourhood size of the PatchMaker (stride 1).
        pretrain_embed_dimension: output length of each layer's MeanMapper.
        target_embed_dimension: output length of the Aggregator.

    Returns:
        float32 array [N * gridH * gridW, target_embed_dimension], image-major then row-major.
    """
    arrays, pointers, shapes = layer_arrays(layers)
    lib = _native.lib()
    target = i32(target_embed_dimension, "target_embed_dimension")
    args = (pointers, shapes, len(arrays), i32(patchsize, "patchsize"),
            i32(pretrain_embed_dimension, "pretrain_embed_dimension"), target)
    needed = _native.query_size(lib.patchcore_embed, *args)
    out = np.empty((needed // target, target), dtype=np.float32)
    _native.check(lib.patchcore_embed(*args, f32(out), out.size, None))
    return out
