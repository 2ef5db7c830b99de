"""High-level PatchCore model: images (or backbone feature maps) in, anomaly scores and
maps out, with calibration, persistence and thread-safe prediction."""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np

from . import _native
from ._arrays import I32P, U8P, Owned, as_float32, f32, i32, is_torch, layer_arrays, to_numpy
from .errors import InvalidArgumentError

# PATCHCORE_PARAM_* keys of patchcore.h.
_INT_PARAMS = {
    "resize": 1,
    "imagesize": 2,
    "pretrain_embed_dimension": 3,
    "target_embed_dimension": 4,
    "patchsize": 5,
    "num_nn": 6,
    "nn_method": 7,
    "seed": 8,
    "num_threads": 9,
    "batch_size": 10,
    "embed_backbone": 11,
}
_FLOAT_PARAMS = {"percentage": 20, "sigma": 21}
_FLOATS_PARAMS = {"mean": 30, "std": 31}
_STRING_PARAMS = {"sampler": 41, "device": 42}
_BACKBONE_PATH = 40
_BANK_ROWS, _GRID_HEIGHT, _GRID_WIDTH, _THRESHOLD = 100, 101, 102, 103

_NN_METHODS = {"exact": 0, "ivfpq": 1}
_PIXEL_FORMATS = {"rgb": 0, "bgr": 1}
_CALIBRATION = {"quantile": (0, 0.99), "mean_std": (1, 3.0), "f1": (2, 0.0)}
_INT32_MAX = 2**31 - 1


def _calibration(method: str, param):
    try:
        code, default = _CALIBRATION[method]
    except KeyError:
        raise InvalidArgumentError(f"method = {method!r}; need one of {sorted(_CALIBRATION)}") from None
    return code, float(default if param is None else param)


def _pixel_format(pixel_format: str) -> int:
    try:
        return _PIXEL_FORMATS[pixel_format.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(f"pixel_format = {pixel_format!r}; need 'rgb' or 'bgr'") from None


def _is_path(x) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def _pixel_batch(a: np.ndarray) -> tuple[np.ndarray, int]:
    """A uint8 [N, H, W, C] batch in the library's layout (image i at i*H*stride, rows
    ``stride`` bytes apart, pixels packed) and its row stride. Views that already have this
    layout, crops of larger images included, are passed without a copy."""
    n, h, w, c = a.shape
    s = a.strides
    packed = (c == 1 or s[3] == 1) and s[2] == c and w * c <= s[1] <= _INT32_MAX
    if not (packed and (n == 1 or s[0] == h * s[1])):
        a = np.ascontiguousarray(a)
    return a, a.strides[1]


def _dims(batch: np.ndarray) -> tuple[int, int, int, int]:
    """(N, H, W, C) of a pixel batch, each checked to fit the library's int32 parameters."""
    return tuple(i32(v, name) for v, name in zip(batch.shape, ("images", "height", "width", "channels")))


def _as_image(x, where: str) -> np.ndarray:
    """One image as uint8 [H, W, C] (grey [H, W] becomes [H, W, 1])."""
    a = to_numpy(x)
    if a.dtype != np.uint8:
        raise InvalidArgumentError(f"{where} has dtype {a.dtype}; images must be uint8 (0-255)")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InvalidArgumentError(f"{where} has shape {a.shape}; need [H, W] or [H, W, C]")
    return a


def _image_runs(images):
    """Splits an image collection into runs the library takes in one call.

    Yields ("files", start, [paths]) and ("pixels", start, uint8 [N, H, W, C]) in input
    order. ``images`` is a path, a uint8 batch [N, H, W, C], or a list of paths and
    [H, W] / [H, W, C] uint8 arrays; consecutive arrays of one shape are stacked (a copy)
    into one batch, a batch array is used as it is.
    """
    if _is_path(images):
        images = [images]
    if isinstance(images, np.ndarray) or is_torch(images):
        a = to_numpy(images)
        if a.ndim != 4:
            raise InvalidArgumentError(
                f"images has shape {a.shape}; an array must be a uint8 batch [N, H, W, C] "
                "(pass a list [image] for single images)")
        if a.dtype != np.uint8:
            raise InvalidArgumentError(f"images has dtype {a.dtype}; images must be uint8 (0-255)")
        if len(a):
            yield "pixels", 0, a
        return
    items = list(images)
    i = 0
    while i < len(items):
        if _is_path(items[i]):
            j = i
            while j < len(items) and _is_path(items[j]):
                j += 1
            yield "files", i, items[i:j]
        else:
            first = _as_image(items[i], f"images[{i}]")
            run = [first]
            j = i + 1
            while j < len(items) and not _is_path(items[j]):
                nxt = _as_image(items[j], f"images[{j}]")
                if nxt.shape != first.shape:
                    break
                run.append(nxt)
                j += 1
            yield "pixels", i, (first[None] if len(run) == 1 else np.stack(run))
        i = j


def _collection(images):
    """images with a length: paths and arrays as they are, other iterables as a list."""
    if _is_path(images) or isinstance(images, np.ndarray) or is_torch(images):
        return images
    return list(images)


def _count(images) -> int:
    return 1 if _is_path(images) else len(images)


class PatchCore(Owned):
    """A PatchCore anomaly detector (Roth et al. 2022), number for number as the reference.

    Every argument defaults to the reference's value (the library's defaults):

    Args:
        backbone: ONNX model (path or bytes) or a torch.nn.Module (exported to ONNX, needs
            PyTorch). None makes a features-only model fed with fit_features/predict_features.
        layers: backbone layer names in network order (default ["layer2", "layer3"]).
        resize: shorter image side after resizing (256).
        imagesize: centre crop and anomaly-map size (224).
        mean, std: per-channel normalisation (ImageNet).
        pretrain_embed_dimension, target_embed_dimension: 1024, 1024.
        patchsize: odd neighbourhood size (3).
        sampler: "identity", "random", "greedy_coreset" or "approx_greedy_coreset" (default).
        percentage: coreset fraction (0.1).
        num_nn: neighbours averaged per patch (1).
        nn_method: "exact" (FAISS IndexFlatL2) or "ivfpq".
        seed: sampler seed (0).
        device: "cpu", "cuda" or "cuda:N".
        num_threads: worker threads (0: all cores).
        batch_size: images per backbone call (8).
        embed_backbone: store the ONNX bytes in saved models (False).
        sigma: Gaussian sigma of the anomaly maps (4).

    Thread safety: predict*, segment, normalize and the properties may be called from many
    threads at once (the GIL is released inside the library); fit*, calibrate* and close
    need exclusive use.
    """

    _free_name = "patchcore_model_free"

    def __init__(self, backbone=None, layers=None, *, resize=None, imagesize=None, mean=None, std=None,
                 pretrain_embed_dimension=None, target_embed_dimension=None, patchsize=None,
                 sampler=None, percentage=None, num_nn=None, nn_method=None, seed=None, device=None,
                 num_threads=None, batch_size=None, embed_backbone=None, sigma=None) -> None:
        lib = _native.lib()
        cfg = _native.new_handle(lib.patchcore_config_create)
        try:
            self._configure(lib, cfg, dict(
                backbone=backbone, layers=layers, resize=resize, imagesize=imagesize, mean=mean, std=std,
                pretrain_embed_dimension=pretrain_embed_dimension, target_embed_dimension=target_embed_dimension,
                patchsize=patchsize, sampler=sampler, percentage=percentage, num_nn=num_nn,
                nn_method=nn_method, seed=seed, device=device, num_threads=num_threads,
                batch_size=batch_size, embed_backbone=embed_backbone, sigma=sigma))
            self._set_handle(_native.new_handle(lib.patchcore_model_create, cfg))
        finally:
            _native.check(lib.patchcore_config_free(cfg))
        self._layers = None if layers is None else list(layers)

    @staticmethod
    def _configure(lib, cfg: int, settings: dict) -> None:
        for name, key in _INT_PARAMS.items():
            value = settings[name]
            if value is None:
                continue
            if name == "nn_method":
                if value not in _NN_METHODS:
                    raise InvalidArgumentError(f"nn_method = {value!r}; need 'exact' or 'ivfpq'")
                value = _NN_METHODS[value]
            value = int(value)
            if not -(2**63) <= value < 2**63:
                raise InvalidArgumentError(f"{name} = {value} does not fit in int64")
            _native.check(lib.patchcore_config_set_int(cfg, key, value))
        for name, key in _FLOAT_PARAMS.items():
            if settings[name] is not None:
                _native.check(lib.patchcore_config_set_float(cfg, key, float(settings[name])))
        for name, key in _FLOATS_PARAMS.items():
            if settings[name] is not None:
                values = np.ascontiguousarray(settings[name], dtype=np.float32).ravel()
                _native.check(lib.patchcore_config_set_floats(cfg, key, f32(values), values.size))
        for name, key in _STRING_PARAMS.items():
            if settings[name] is not None:
                _native.check(lib.patchcore_config_set_string(cfg, key, str(settings[name]).encode()))
        layers = settings["layers"]
        if layers is not None:
            if isinstance(layers, (str, bytes)):
                raise InvalidArgumentError("layers must be a list of layer names")
            names = _native.string_array(layers)
            _native.check(lib.patchcore_config_set_layers(cfg, names, len(layers)))
        backbone = settings["backbone"]
        if backbone is None:
            return
        if isinstance(backbone, (str, os.PathLike)):
            _native.check(lib.patchcore_config_set_string(cfg, _BACKBONE_PATH, _native.encode_path(backbone)))
            return
        if hasattr(backbone, "get_submodule") and hasattr(backbone, "parameters"):
            from ._torch_export import export_backbone

            size = settings["imagesize"] or 224
            backbone = export_backbone(backbone, layers or ["layer2", "layer3"], (3, size, size))
        if not isinstance(backbone, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(
                f"backbone is a {type(backbone).__name__}; need an ONNX path, ONNX bytes or a torch.nn.Module")
        data = bytes(backbone)
        _native.check(lib.patchcore_config_set_backbone_bytes(cfg, data, len(data)))

    @classmethod
    def _from_handle(cls, handle: int) -> "PatchCore":
        self = cls.__new__(cls)
        self._set_handle(handle)
        self._layers = None
        return self

    # ------------------------------------------------------------------ properties

    def _get_int(self, key: int) -> int:
        out = ctypes.c_int64()
        _native.check(_native.lib().patchcore_model_get_int(self._h, key, ctypes.byref(out)))
        return out.value

    def _get_float(self, key: int) -> float:
        out = ctypes.c_double()
        _native.check(_native.lib().patchcore_model_get_float(self._h, key, ctypes.byref(out)))
        return out.value

    @property
    def config(self) -> dict:
        """The model's numeric settings (strings, layers and mean/std are not readable)."""
        settings = {name: self._get_int(key) for name, key in _INT_PARAMS.items()}
        settings["nn_method"] = {v: k for k, v in _NN_METHODS.items()}[settings["nn_method"]]
        settings["embed_backbone"] = bool(settings["embed_backbone"])
        settings.update({name: self._get_float(key) for name, key in _FLOAT_PARAMS.items()})
        return settings

    @property
    def bank_size(self) -> int:
        """Rows of the memory bank (0 before fit)."""
        return self._get_int(_BANK_ROWS)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the patch grid of one image."""
        return self._get_int(_GRID_HEIGHT), self._get_int(_GRID_WIDTH)

    @property
    def map_shape(self) -> tuple[int, int]:
        """(height, width) of one anomaly map."""
        side = self._get_int(_INT_PARAMS["imagesize"])
        return side, side

    @property
    def threshold(self) -> float | None:
        """The calibrated image-score threshold, or None before calibration."""
        value = self._get_float(_THRESHOLD)
        return None if math.isnan(value) else value

    # ------------------------------------------------------------------ fitting

    def add(self, images, pixel_format: str = "rgb") -> None:
        """Embeds good training images and keeps them for the next ``fit()`` (streaming fit).

        ``images``: a path, a uint8 batch [N, H, W, C], or a list of paths and [H, W] /
        [H, W, C] uint8 arrays (C = 1, 3 or 4; alpha is ignored).
        """
        lib = _native.lib()
        fmt = _pixel_format(pixel_format)
        for kind, _, run in _image_runs(images):
            if kind == "files":
                _native.check(lib.patchcore_model_add_files(self._h, _native.string_array(run), len(run)))
            else:
                batch, stride = _pixel_batch(run)
                n, h, w, c = _dims(batch)
                _native.check(lib.patchcore_model_add_images(
                    self._h, batch.ctypes.data_as(U8P), n, w, h, stride, c, fmt))

    def fit(self, images=None, pixel_format: str = "rgb") -> "PatchCore":
        """Builds the memory bank from ``images`` (see ``add``) plus anything added before."""
        if images is not None:
            self.add(images, pixel_format)
        _native.check(_native.lib().patchcore_model_fit(self._h))
        return self

    def _ordered_layers(self, layers):
        if isinstance(layers, dict) and self._layers is not None:
            missing = [n for n in self._layers if n not in layers]
            if missing:
                raise InvalidArgumentError(f"layers lacks {missing}; the model uses {self._layers}")
            return [layers[n] for n in self._layers]
        return layers

    def add_features(self, layers) -> None:
        """Adds backbone feature maps of good images: a list (or dict by layer name) of
        float arrays [N, C_i, H_i, W_i], one per model layer."""
        arrays, pointers, shapes = layer_arrays(self._ordered_layers(layers))
        _native.check(_native.lib().patchcore_model_add_features(self._h, pointers, shapes, len(arrays)))

    def fit_features(self, layers) -> "PatchCore":
        """Builds the memory bank from feature maps (see ``add_features``)."""
        self.add_features(layers)
        _native.check(_native.lib().patchcore_model_fit(self._h))
        return self

    # ------------------------------------------------------------------ prediction

    def _outputs(self, n: int, maps: bool):
        scores = np.empty(n, dtype=np.float32)
        out_maps = np.empty((n,) + self.map_shape, dtype=np.float32) if maps else None
        return scores, out_maps

    def predict(self, images, pixel_format: str = "rgb", maps: bool = True):
        """Scores images (same forms as ``add``).

        Returns:
            (scores [N] float32: max patch score, a squared L2 distance;
             maps [N, imagesize, imagesize] float32 anomaly maps, or None with maps=False).
        """
        lib = _native.lib()
        fmt = _pixel_format(pixel_format)
        images = _collection(images)
        scores, out_maps = self._outputs(_count(images), maps)
        for kind, start, run in _image_runs(images):
            n = len(run)
            s = scores[start:start + n]
            m = out_maps[start:start + n] if maps else None
            m_ptr, m_cap = (f32(m), m.size) if maps else (None, 0)
            if kind == "files":
                _native.check(lib.patchcore_model_predict_files(
                    self._h, _native.string_array(run), n, f32(s), m_ptr, m_cap, None))
            else:
                batch, stride = _pixel_batch(run)
                _, h, w, c = _dims(batch)
                _native.check(lib.patchcore_model_predict(
                    self._h, batch.ctypes.data_as(U8P), n, w, h, stride, c, fmt, f32(s), m_ptr, m_cap, None))
        return scores, out_maps

    def predict_features(self, layers, maps: bool = True):
        """Scores feature maps (as ``add_features``); returns (scores [N], maps [N, H, W] or None)."""
        arrays, pointers, shapes = layer_arrays(self._ordered_layers(layers))
        scores, out_maps = self._outputs(arrays[0].shape[0], maps)
        m_ptr, m_cap = (f32(out_maps), out_maps.size) if maps else (None, 0)
        _native.check(_native.lib().patchcore_model_predict_features(
            self._h, pointers, shapes, len(arrays), f32(scores), m_ptr, m_cap, None))
        return scores, out_maps

    __call__ = predict

    # ------------------------------------------------------------------ calibration

    def calibrate(self, images, method: str = "quantile", param: float | None = None,
                  pixel_format: str = "rgb") -> float:
        """Sets the threshold from held-out GOOD images and returns it.

        method "quantile": the ``param`` quantile of their scores (default 0.99);
        "mean_std": mean + ``param`` (default 3) standard deviations.
        """
        code, value = _calibration(method, param)
        if code == _CALIBRATION["f1"][0]:
            raise InvalidArgumentError("method 'f1' needs labels: use calibrate_scores(scores, labels, 'f1')")
        runs_source = _collection(images)
        runs = list(_image_runs(runs_source))
        if len(runs) == 1 and runs[0][0] == "pixels":
            batch, stride = _pixel_batch(runs[0][2])
            n, h, w, c = _dims(batch)
            out = ctypes.c_float()
            _native.check(_native.lib().patchcore_model_calibrate(
                self._h, batch.ctypes.data_as(U8P), n, w, h, stride, c, _pixel_format(pixel_format),
                code, value, ctypes.byref(out)))
            return out.value
        scores, _ = self.predict(runs_source, pixel_format, maps=False)
        return self.calibrate_scores(scores, None, method, param)

    def calibrate_scores(self, scores, labels=None, method: str = "quantile", param: float | None = None) -> float:
        """Sets the threshold from image scores and returns it.

        "quantile" / "mean_std" use the scores labelled 0 (all when labels is None); "f1"
        needs labels (0 good, 1 anomalous) and picks the F1-optimal score.
        """
        code, value = _calibration(method, param)
        s = as_float32(scores, "scores", ndim=1)
        lab = None
        if labels is not None:
            lab = np.ascontiguousarray(to_numpy(labels), dtype=np.int32)
            if lab.shape != s.shape:
                raise InvalidArgumentError(f"labels has shape {lab.shape}, scores {s.shape}")
        out = ctypes.c_float()
        _native.check(_native.lib().patchcore_model_calibrate_scores(
            self._h, f32(s), None if lab is None else lab.ctypes.data_as(I32P), s.size, code, value,
            ctypes.byref(out)))
        return out.value

    def normalize(self, scores) -> np.ndarray:
        """Scores mapped to [0, 1] with the threshold at 0.5 (needs calibration)."""
        s = as_float32(scores, "scores")
        out = np.empty_like(s)
        _native.check(_native.lib().patchcore_model_normalize_scores(self._h, f32(s), s.size, f32(out)))
        return out

    def segment(self, maps, threshold: float | None = None) -> np.ndarray:
        """Boolean masks ``maps >= threshold`` (default: the calibrated threshold)."""
        m = as_float32(maps, "maps")
        out = np.empty(m.shape, dtype=np.uint8)
        thr = math.nan if threshold is None else float(threshold)
        _native.check(_native.lib().patchcore_model_segment(self._h, f32(m), m.size, thr, out.ctypes.data_as(U8P)))
        return out.view(np.bool_)

    # ------------------------------------------------------------------ persistence

    def save(self, path) -> None:
        """Writes the fitted model to ``path`` atomically."""
        _native.check(_native.lib().patchcore_model_save(self._h, _native.encode_path(path)))

    def to_bytes(self) -> bytes:
        """The fitted model as bytes (the same format as ``save``)."""
        lib = _native.lib()
        size = _native.query_size(lib.patchcore_model_save_to_buffer, self._h)
        buf = ctypes.create_string_buffer(size)
        _native.check(lib.patchcore_model_save_to_buffer(self._h, buf, size, None))
        return buf.raw

    @staticmethod
    def _backbone_arg(backbone):
        if backbone is None:
            return None
        if not isinstance(backbone, (str, os.PathLike)):
            raise InvalidArgumentError("backbone must be the path of the ONNX file the model was fitted with")
        return _native.encode_path(backbone)

    @classmethod
    def load(cls, path, backbone=None) -> "PatchCore":
        """Reads a model written by ``save``; ``backbone`` overrides the ONNX file it names
        (its sha256 must match)."""
        lib = _native.lib()
        return cls._from_handle(_native.new_handle(
            lib.patchcore_model_load, _native.encode_path(path), cls._backbone_arg(backbone)))

    @classmethod
    def from_bytes(cls, data, backbone=None) -> "PatchCore":
        """Reads a model from ``to_bytes`` output."""
        data = bytes(data)
        lib = _native.lib()
        return cls._from_handle(_native.new_handle(
            lib.patchcore_model_load_from_buffer, data, len(data), cls._backbone_arg(backbone)))
