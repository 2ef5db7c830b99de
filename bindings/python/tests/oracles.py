"""Independent numpy (float64) re-implementations of the reference's arithmetic, used as
test oracles. Written from the reference's documented behaviour (docs/patchcore-spec.md),
not from the library's code."""

from __future__ import annotations

import numpy as np


def adaptive_avg_pool1d(x, out_len: int) -> np.ndarray:
    """torch.nn.functional.adaptive_avg_pool1d over the last axis, in float64:
    window i = [floor(i*L/O), ceil((i+1)*L/O))."""
    x = np.asarray(x, dtype=np.float64)
    length = x.shape[-1]
    out = np.empty(x.shape[:-1] + (out_len,))
    for i in range(out_len):
        lo = (i * length) // out_len
        hi = -((-(i + 1) * length) // out_len)
        out[..., i] = x[..., lo:hi].mean(axis=-1)
    return out


def patchify(maps: np.ndarray, patchsize: int = 3) -> np.ndarray:
    """PatchMaker.patchify (stride 1, zero padding): [B, C, H, W] -> [B, H*W, C, ps, ps]."""
    b, c, h, w = maps.shape
    pad = (patchsize - 1) // 2
    padded = np.pad(maps, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((b, h, w, c, patchsize, patchsize), dtype=maps.dtype)
    for ky in range(patchsize):
        for kx in range(patchsize):
            out[..., ky, kx] = padded[:, :, ky:ky + h, kx:kx + w].transpose(0, 2, 3, 1)
    return out.reshape(b, h * w, c, patchsize, patchsize)


def _bilinear_axis(x: np.ndarray, out_len: int, axis: int) -> np.ndarray:
    """1-D linear resampling with align_corners=False along one axis (PyTorch rules)."""
    in_len = x.shape[axis]
    scale = in_len / out_len
    src = np.maximum((np.arange(out_len) + 0.5) * scale - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_len - 1)
    i1 = np.minimum(i0 + 1, in_len - 1)
    lam = src - i0
    shape = [1] * x.ndim
    shape[axis] = out_len
    lam = lam.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - lam) + np.take(x, i1, axis=axis) * lam


def bilinear_resize(x, size) -> np.ndarray:
    """F.interpolate(mode="bilinear", align_corners=False) over the last two axes, float64."""
    x = np.asarray(x, dtype=np.float64)
    x = _bilinear_axis(x, size[0], x.ndim - 2)
    return _bilinear_axis(x, size[1], x.ndim - 1)


def embed(layers, patchsize=3, pretrain_dim=1024, target_dim=1024, preprocessing=None, aggregator=None):
    """PatchCore._embed after the backbone. ``preprocessing``/``aggregator`` default to the
    float64 oracles; the binding's classes can be passed in to check them inside the flow."""
    patches = [patchify(np.asarray(m, dtype=np.float32), patchsize) for m in layers]
    gh, gw = layers[0].shape[2:]
    aligned = [patches[0]]
    for m, p in zip(layers[1:], patches[1:]):
        b, c, h, w = m.shape
        x = p.reshape(b, h, w, c, patchsize, patchsize).transpose(0, 3, 4, 5, 1, 2)
        x = bilinear_resize(x, (gh, gw)).astype(np.float32)
        aligned.append(x.transpose(0, 4, 5, 1, 2, 3).reshape(b, gh * gw, c, patchsize, patchsize))
    flat = [x.reshape(-1, *x.shape[-3:]) for x in aligned]
    if preprocessing is None:
        pre = np.stack([adaptive_avg_pool1d(x.reshape(len(x), -1), pretrain_dim) for x in flat], axis=1)
    else:
        pre = preprocessing(flat)
    if aggregator is None:
        return adaptive_avg_pool1d(np.asarray(pre).reshape(len(pre), -1), target_dim)
    return aggregator(pre)


def gaussian_filter(img, sigma: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(img, sigma) for 2-D input: truncate 4, mode "reflect"
    (half-sample symmetric), separable, float64."""
    radius = int(4.0 * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(img, dtype=np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for j, wj in enumerate(k):
            acc += wj * np.take(padded, np.arange(j, j + n), axis=axis)
        out = acc
    return out


def segmentation(patch_scores, target, sigma: float = 4.0) -> np.ndarray:
    """RescaleSegmentor.convert_to_segmentation in float64: [B, h, w] -> [B, H, W]."""
    up = bilinear_resize(patch_scores, target)
    return np.stack([gaussian_filter(m, sigma) for m in up])


def knn(bank, queries, k: int):
    """Brute-force k nearest neighbours in float64: (squared distances [n, k], indices)."""
    bank = np.asarray(bank, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    d = (queries**2).sum(1)[:, None] - 2 * queries @ bank.T + (bank**2).sum(1)[None, :]
    d = np.maximum(d, 0.0)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, axis=1), idx


def quantile(values, q: float) -> float:
    """The linear-interpolation quantile (numpy's default)."""
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))


def rel_err(actual, expected) -> float:
    """max|actual - expected| / max|expected| (the golden README's comparison)."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max()) / scale
