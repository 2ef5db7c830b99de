"""The reference's ``patchcore.common`` (amazon-science/patchcore-inspection) on libpatchcore.

Same class names, constructor signatures and methods as the reference, computed by the
library (ONNX Runtime backbones, FAISS search, the reference's exact pooling and
segmentation arithmetic). Differences, all deliberate:

* ``NetworkFeatureAggregator`` takes an ONNX model (path or bytes) instead of a torchvision
  module; a ``torch.nn.Module`` is exported to ONNX first (needs PyTorch). ``forward``
  returns a new dict per call instead of mutating ``self.outputs`` (thread safety).
* ``FaissNN`` passes ``num_workers`` to its own index instead of setting FAISS' process-wide
  OpenMP thread count, and ``NearestNeighbourScorer``'s default ``nn_method`` is a new
  ``FaissNN(False, 4)`` per scorer rather than one object shared by every scorer.
* ``NearestNeighbourScorer.load`` reads ``nnscorer_features.pkl`` lazily, on first access to
  ``detection_features``, with an unpickler that only accepts numpy arrays.
* ``ConcatMerger`` and ``AverageMerger`` are plain numpy (reshapes and means), as in the
  reference; ``ConcatMerger`` returns a view instead of a copy for a single input array.

Arrays: numpy in, numpy out. Torch tensors are accepted everywhere; the classes that are
``torch.nn.Module`` in the reference (``NetworkFeatureAggregator``, ``Preprocessing``,
``MeanMapper``, ``Aggregator``) return tensors on the input's device for tensor inputs; the
others return numpy, as the reference does. Inputs that are C-contiguous float32 are read in
place; others are converted with ``np.ascontiguousarray`` (a copy).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import shutil
import tempfile
import threading

import numpy as np

from . import _native
from ._arrays import I64P, Owned, as_float32, f32, i32, like_input, to_numpy
from .errors import FormatError, InvalidArgumentError, InvalidStateError, PatchCoreError, PatchCoreIOError
from .ops import adaptive_avg_pool1d

NN_EXACT = 0
NN_IVFPQ = 1

INDEX_FILE = "nnscorer_search_index.faiss"
FEATURES_FILE = "nnscorer_features.pkl"


# ------------------------------------------------------------------ nearest neighbours


def _replace_in_message(exc: PatchCoreError, old: str, new: str) -> PatchCoreError:
    """The same error with a temporary path in its message replaced by the user's path."""
    return type(exc)(exc.message.replace(old, new), exc.status)


class FaissNN(Owned):
    """Exact nearest-neighbour search (FAISS ``IndexFlatL2``, squared L2 distances).

    Args:
        on_gpu: search on GPU 0 (raises UnsupportedError at fit in a CPU-only build).
        num_workers: search threads of this index (0: all cores).

    The library's index answers a fixed number k of neighbours; it is created with the
    largest k any ``NearestNeighbourScorer`` using this object asked for (1 by default).
    ``run`` with a smaller k uses the first columns, a larger k rebuilds the index once
    (through a save/load in a temporary folder). Fitting, loading and k changes need
    exclusive use of the object; searches may run concurrently from many threads.
    """

    _free_name = "patchcore_scorer_free"
    _method = NN_EXACT

    def __init__(self, on_gpu: bool = False, num_workers: int = 4) -> None:
        self.on_gpu = bool(on_gpu)
        self.num_workers = i32(num_workers, "num_workers")
        self._k = 1
        self._lock = threading.RLock()

    # The library scorer behind this object; None before fit/load and after reset_index.

    def _create(self, k: int) -> int:
        lib = _native.lib()
        return _native.new_handle(lib.patchcore_scorer_create, i32(k, "n_nearest_neighbours"), self._method, int(self.on_gpu),
                                  self.num_workers)

    def _install(self, k: int, fill) -> None:
        """Creates a scorer with k neighbours, lets ``fill(handle)`` fit or load it, and swaps
        it in (freeing the previous one); on failure the new scorer is freed."""
        h = self._create(k)
        try:
            fill(h)
        except BaseException:
            _native.lib().patchcore_scorer_free(h)
            raise
        self._set_handle(h)
        self._k = k

    def _fitted(self) -> tuple[int, int]:
        """(handle, k) of the fitted index; InvalidStateError before fit/load."""
        with self._lock:
            h, k = self._handle_value, self._k
        if h is None:
            raise InvalidStateError(f"{type(self).__name__} has no index: call fit() or load() first")
        return h, k

    def _reserve(self, k: int) -> None:
        """Makes the index answer at least k neighbours (rebuilding a fitted one if needed)."""
        with self._lock:
            if k <= self._k:
                return
            if self._handle_value is None:
                self._k = k
                return
            lib = _native.lib()
            old = self._handle_value
            with tempfile.TemporaryDirectory(prefix="patchcore-rekey-") as tmp:
                folder = _native.encode_path(tmp)
                _native.check(lib.patchcore_scorer_save(old, folder, 1, b""))
                self._install(k, lambda h: _native.check(lib.patchcore_scorer_load(h, folder, b"")))

    def fit(self, features) -> None:
        """Indexes features [N, D] (replacing any previous index)."""
        x = as_float32(features, "features", ndim=2)
        lib = _native.lib()
        with self._lock:
            self._install(self._k, lambda h: _native.check(lib.patchcore_scorer_fit(h, f32(x), *x.shape)))

    def _search(self, k: int, query_features):
        """(scores [n], distances [n, k], indices [n, k]) for queries [n, D]."""
        k = int(k)
        if k < 1:
            raise InvalidArgumentError(f"n_nearest_neighbours = {k}; need >= 1")
        q = as_float32(query_features, "query_features", ndim=2)
        self._reserve(k)
        h, have = self._fitted()
        n = q.shape[0]
        scores = np.empty(n, dtype=np.float32)
        distances = np.empty((n, have), dtype=np.float32)
        indices = np.empty((n, have), dtype=np.int64)
        _native.check(_native.lib().patchcore_scorer_predict(
            h, f32(q), n, q.shape[1], f32(scores), f32(distances), indices.ctypes.data_as(I64P)))
        if have != k:
            distances = np.ascontiguousarray(distances[:, :k])
            indices = np.ascontiguousarray(indices[:, :k])
            scores = np.mean(distances, axis=-1)
        return scores, distances, indices

    def run(self, n_nearest_neighbours: int, query_features, index_features=None):
        """Returns (distances [n, k] float32 squared L2, ascending; indices [n, k] int64).

        With ``index_features`` the search runs on a temporary index of those features
        instead of the fitted one.
        """
        if index_features is None:
            return self._search(n_nearest_neighbours, query_features)[1:]
        temporary = type(self)(self.on_gpu, self.num_workers)
        try:
            temporary._k = max(1, int(n_nearest_neighbours))
            temporary.fit(index_features)
            return temporary._search(n_nearest_neighbours, query_features)[1:]
        finally:
            temporary.close()

    def save(self, filename) -> None:
        """Writes the index to ``filename`` in FAISS' format (``faiss.read_index`` reads it)."""
        h, _ = self._fitted()
        lib = _native.lib()
        filename = os.path.abspath(os.fsdecode(filename))
        folder, base = os.path.split(filename)
        if base.endswith(INDEX_FILE):  # the library writes this name itself
            _native.check(lib.patchcore_scorer_save(
                h, _native.encode_path(folder), 0, _native.encode_path(base[: -len(INDEX_FILE)])))
            return
        try:
            tmp = tempfile.mkdtemp(prefix=".patchcore-save-", dir=folder)
        except OSError as exc:
            raise PatchCoreIOError(f"FaissNN.save: cannot write {filename}: {exc.strerror}") from None
        written = os.path.join(tmp, INDEX_FILE)
        try:
            _native.check(lib.patchcore_scorer_save(h, _native.encode_path(tmp), 0, b""))
            os.replace(written, filename)
        except PatchCoreError as exc:
            raise _replace_in_message(exc, written, filename) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, filename) -> None:
        """Reads an index written by ``save`` or ``faiss.write_index`` (replacing any index)."""
        filename = os.path.abspath(os.fsdecode(filename))
        lib = _native.lib()
        with self._lock, tempfile.TemporaryDirectory(prefix="patchcore-load-") as tmp:
            link = os.path.join(tmp, INDEX_FILE)
            try:
                os.symlink(filename, link)
            except OSError:  # no symlinks here: copy instead
                try:
                    shutil.copyfile(filename, link)
                except OSError as exc:
                    raise PatchCoreIOError(f"FaissNN.load: cannot read {filename}: {exc.strerror}") from None
            folder = _native.encode_path(tmp)
            try:
                self._install(self._k, lambda h: _native.check(lib.patchcore_scorer_load(h, folder, b"")))
            except PatchCoreError as exc:
                raise _replace_in_message(exc, link, filename) from None

    def _load_folder(self, folder, prepend: str) -> None:
        lib = _native.lib()
        args = (_native.encode_path(folder), _native.encode_path(prepend))
        with self._lock:
            self._install(self._k, lambda h: _native.check(lib.patchcore_scorer_load(h, *args)))

    def _save_folder(self, folder, save_features_separately: bool, prepend: str) -> None:
        h, _ = self._fitted()
        _native.check(_native.lib().patchcore_scorer_save(
            h, _native.encode_path(folder), int(bool(save_features_separately)), _native.encode_path(prepend)))

    def reset_index(self) -> None:
        """Drops the index (the object can be fitted or loaded again)."""
        with self._lock:
            self.close()


class ApproximateFaissNN(FaissNN):
    """Approximate search: FAISS ``IndexIVFPQ`` (512 lists, 64 sub-quantizers of 8 bits,
    nprobe 1), trained on the indexed features; D must be a multiple of 64 and at least 512
    features are needed to train it."""

    _method = NN_IVFPQ


class _BaseMerger:
    """Merges a list of feature arrays [N, ...] into one [N, D] array."""

    def merge(self, features: list) -> np.ndarray:
        """Reduces every array to [N, d_i] and concatenates them along axis 1."""
        reduced = [self._reduce(to_numpy(f)) for f in features]
        if len(reduced) == 1:
            return reduced[0]
        return np.concatenate(reduced, axis=1)


class AverageMerger(_BaseMerger):
    """[N, C, ...] -> [N, C]: the mean over every axis after the second."""

    @staticmethod
    def _reduce(features):
        return features.reshape(features.shape[0], features.shape[1], -1).mean(axis=-1)


class ConcatMerger(_BaseMerger):
    """[N, ...] -> [N, prod(...)]: a reshape (a view when the array is contiguous)."""

    @staticmethod
    def _reduce(features):
        return features.reshape(len(features), -1)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else (no arbitrary code from a model folder)."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._allowed:
            raise FormatError(f"{self._path}: refusing to unpickle {module}.{name} (only numpy arrays)")
        return super().find_class(module, name)


def _read_features(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        unpickler = _ArrayUnpickler(f)
        unpickler._path = path
        value = unpickler.load()
    if not isinstance(value, np.ndarray):
        raise FormatError(f"{path} does not hold a numpy array")
    return value


class NearestNeighbourScorer:
    """Anomaly scores as the mean squared L2 distance to the k nearest memory-bank rows.

    Args:
        n_nearest_neighbours: k >= 1.
        nn_method: a ``FaissNN`` or ``ApproximateFaissNN`` (default: a new ``FaissNN(False, 4)``).
    """

    def __init__(self, n_nearest_neighbours: int, nn_method: FaissNN | None = None) -> None:
        k = int(n_nearest_neighbours)
        if k < 1:
            raise InvalidArgumentError(f"n_nearest_neighbours = {n_nearest_neighbours}; need >= 1")
        if nn_method is None:
            nn_method = FaissNN(False, 4)
        elif not isinstance(nn_method, FaissNN):
            raise InvalidArgumentError(f"nn_method is a {type(nn_method).__name__}; need FaissNN or ApproximateFaissNN")
        self.feature_merger = ConcatMerger()
        self.n_nearest_neighbours = k
        self.nn_method = nn_method
        nn_method._reserve(k)
        self._detection_features = None
        self._features_file = None

    @property
    def detection_features(self):
        """The indexed features [N, D]: the merged fit input, or after ``load`` the contents of
        ``nnscorer_features.pkl`` when the folder had one (read on first access), else None."""
        if self._detection_features is None and self._features_file is not None:
            self._detection_features = _read_features(self._features_file)
            self._features_file = None
        return self._detection_features

    @detection_features.setter
    def detection_features(self, value) -> None:
        self._detection_features = value
        self._features_file = None

    def fit(self, detection_features: list) -> None:
        """Indexes the merged features (a list of arrays [N, ...], see ConcatMerger)."""
        self.detection_features = self.feature_merger.merge(detection_features)
        self.nn_method.fit(self.detection_features)

    def predict(self, query_features: list):
        """Returns (scores [n] float32, distances [n, k] float32, indices [n, k] int64) for
        the merged queries; scores are the mean of the k squared distances."""
        query = self.feature_merger.merge(query_features)
        return self.nn_method._search(self.n_nearest_neighbours, query)

    @staticmethod
    def _detection_file(folder, prepend: str = "") -> str:
        return os.path.join(folder, prepend + FEATURES_FILE)

    @staticmethod
    def _index_file(folder, prepend: str = "") -> str:
        return os.path.join(folder, prepend + INDEX_FILE)

    def save(self, save_folder, save_features_separately: bool = False, prepend: str = "") -> None:
        """Writes ``<prepend>nnscorer_search_index.faiss`` (FAISS format) and, with
        ``save_features_separately``, ``<prepend>nnscorer_features.pkl`` (a pickled numpy
        array) into save_folder, as the reference does."""
        self.nn_method._save_folder(save_folder, save_features_separately, prepend)

    def save_and_reset(self, save_folder) -> None:
        """Saves the index (no features file) and drops it."""
        self.save(save_folder)
        self.nn_method.reset_index()

    def load(self, load_folder, prepend: str = "") -> None:
        """Reads what ``save`` (or the reference) wrote into load_folder."""
        self.nn_method._load_folder(load_folder, prepend)
        path = self._detection_file(os.fsdecode(load_folder), prepend)
        self._detection_features = None
        self._features_file = path if os.path.exists(path) else None


# ------------------------------------------------------------------ embedding modules


class MeanMapper:
    """Flattens each row and adaptive-average-pools it to ``preprocessing_dim`` values."""

    def __init__(self, preprocessing_dim: int) -> None:
        self.preprocessing_dim = int(preprocessing_dim)

    def forward(self, features):
        """[N, ...] -> [N, preprocessing_dim]."""
        a = to_numpy(features)
        out = adaptive_avg_pool1d(a.reshape(len(a), -1), self.preprocessing_dim)
        return like_input(out, features)

    __call__ = forward


class Preprocessing:
    """One MeanMapper per layer; ``input_dims`` only sets the number of layers (as in the
    reference)."""

    def __init__(self, input_dims, output_dim: int) -> None:
        self.input_dims = input_dims
        self.output_dim = int(output_dim)
        self.preprocessing_modules = [MeanMapper(self.output_dim) for _ in input_dims]

    def forward(self, features):
        """List of per-layer patch arrays [P, C_i, ps, ps] -> [P, n_layers, output_dim]."""
        features = list(features)
        if len(features) != len(self.preprocessing_modules):
            raise InvalidArgumentError(
                f"got {len(features)} feature arrays for {len(self.preprocessing_modules)} layers")
        pooled = [m.forward(to_numpy(f)) for m, f in zip(self.preprocessing_modules, features)]
        return like_input(np.stack(pooled, axis=1), features[0])

    __call__ = forward


class Aggregator:
    """Flattens [N, n_layers, d] to [N, n_layers * d] and pools it to ``target_dim``."""

    def __init__(self, target_dim: int) -> None:
        self.target_dim = int(target_dim)

    def forward(self, features):
        """[N, ...] -> [N, target_dim]."""
        a = to_numpy(features)
        out = adaptive_avg_pool1d(a.reshape(len(a), -1), self.target_dim)
        return like_input(out, features)

    __call__ = forward


# ------------------------------------------------------------------ segmentation


class RescaleSegmentor(Owned):
    """Anomaly maps from patch scores: bilinear upsampling (align_corners=False) to
    ``target_size``, then a Gaussian blur with sigma ``smoothing`` (4) exactly as
    ``scipy.ndimage.gaussian_filter`` (truncate 4, reflect borders).

    Args:
        device: kept for signature compatibility; the library computes on the CPU.
        target_size: int or (height, width).
    """

    _free_name = "patchcore_segmentor_free"

    def __init__(self, device, target_size=224) -> None:
        self.device = device
        self.target_size = target_size
        self.smoothing = 4
        self._key = None
        self._lock = threading.Lock()

    def _target(self) -> tuple[int, int]:
        t = self.target_size
        if isinstance(t, (int, np.integer)):
            return int(t), int(t)
        t = tuple(int(v) for v in t)
        if len(t) != 2:
            raise InvalidArgumentError(f"target_size = {self.target_size!r}; need an int or (height, width)")
        return t

    def _segmentor(self) -> tuple[int, tuple[int, int]]:
        """The library segmentor for the current target_size/smoothing (rebuilt when they change)."""
        key = (self._target(), float(self.smoothing))
        with self._lock:
            if self._key != key or self._handle_value is None:
                lib = _native.lib()
                th, tw = (i32(v, "target_size") for v in key[0])
                h = _native.new_handle(lib.patchcore_segmentor_create, th, tw, key[1])
                self._set_handle(h)
                self._key = key
            return self._handle_value, key[0]

    def convert_to_segmentation(self, patch_scores) -> list:
        """Patch scores [B, h, w] -> list of B float32 arrays [H, W]."""
        scores = as_float32(patch_scores, "patch_scores", ndim=3)
        h, (th, tw) = self._segmentor()
        b = scores.shape[0]
        out = np.empty((b, th, tw), dtype=np.float32)
        _native.check(_native.lib().patchcore_segmentor_convert(
            h, f32(scores), *scores.shape, f32(out), out.size, None))
        return list(out)


# ------------------------------------------------------------------ backbone


class NetworkFeatureAggregator(Owned):
    """Runs a backbone and returns the outputs of the requested layers.

    Args:
        backbone: an ONNX model (path, or bytes of the file); a ``torch.nn.Module`` is
            exported to ONNX first (needs PyTorch).
        layers_to_extract_from: graph outputs or intermediate tensor names (for an exported
            module: dotted module paths), in network order.
        device: "cpu", "cuda" or "cuda:N" (a torch.device is accepted).
    """

    _free_name = "patchcore_aggregator_free"

    def __init__(self, backbone, layers_to_extract_from, device="cpu") -> None:
        if isinstance(layers_to_extract_from, (str, bytes)):
            raise InvalidArgumentError("layers_to_extract_from must be a list of layer names")
        self.layers_to_extract_from = list(layers_to_extract_from)
        self.backbone = backbone
        self.device = device
        self._shapes = {}
        onnx_path = onnx_bytes = None
        if isinstance(backbone, (bytes, bytearray, memoryview)):
            onnx_bytes = bytes(backbone)
        elif isinstance(backbone, (str, os.PathLike)):
            onnx_path = _native.encode_path(backbone)
        elif hasattr(backbone, "get_submodule") and hasattr(backbone, "parameters"):
            from ._torch_export import export_backbone

            onnx_bytes = export_backbone(backbone, self.layers_to_extract_from)
        else:
            raise InvalidArgumentError(
                f"backbone is a {type(backbone).__name__}; need an ONNX path, ONNX bytes or a torch.nn.Module")
        lib = _native.lib()
        names = _native.string_array(self.layers_to_extract_from)
        dev = None if device is None else str(device).encode()
        n_bytes = len(onnx_bytes) if onnx_bytes is not None else 0
        self._set_handle(_native.new_handle(
            lib.patchcore_aggregator_create, onnx_path, onnx_bytes, n_bytes, names,
            len(self.layers_to_extract_from), dev))

    def feature_shapes(self, input_shape) -> list:
        """[(C, H, W)] of every layer for one input of shape (channels, height, width)."""
        key = tuple(i32(v, "input_shape") for v in input_shape)
        if len(key) != 3:
            raise InvalidArgumentError(f"input_shape = {input_shape!r}; need (channels, height, width)")
        shapes = self._shapes.get(key)
        if shapes is None:
            n = len(self.layers_to_extract_from)
            out = np.empty(3 * n, dtype=np.int64)
            _native.check(_native.lib().patchcore_aggregator_feature_shapes(
                self._h, *key, out.ctypes.data_as(I64P), out.size, None))
            shapes = [tuple(int(v) for v in out[3 * i: 3 * i + 3]) for i in range(n)]
            self._shapes[key] = shapes
        return list(shapes)

    def feature_dimensions(self, input_shape) -> list:
        """Channel count of every layer for inputs of shape (channels, height, width)."""
        return [s[0] for s in self.feature_shapes(input_shape)]

    def forward(self, images) -> dict:
        """images [B, C, H, W] (float, already normalised) -> {layer: array [B, C_l, H_l, W_l]}."""
        x = as_float32(images, "images", ndim=4)
        h = self._h
        lib = _native.lib()
        shapes = self.feature_shapes(x.shape[1:])
        outs = [np.empty((x.shape[0], c, hh, ww), dtype=np.float32) for c, hh, ww in shapes]
        n = len(outs)
        ptrs = (ctypes.POINTER(ctypes.c_float) * n)(*[f32(o) for o in outs])
        caps = (ctypes.c_size_t * n)(*[o.size for o in outs])
        # One backbone run fills every layer's buffer.
        _native.check(lib.patchcore_aggregator_forward_all(h, f32(x), *x.shape, ptrs, caps, n, None))
        return {name: like_input(o, images) for name, o in zip(self.layers_to_extract_from, outs)}

    __call__ = forward


__all__ = [
    "FaissNN",
    "ApproximateFaissNN",
    "AverageMerger",
    "ConcatMerger",
    "NearestNeighbourScorer",
    "MeanMapper",
    "Preprocessing",
    "Aggregator",
    "RescaleSegmentor",
    "NetworkFeatureAggregator",
]
