"""patchcore.common used as the reference uses it, checked against the golden arrays and
float64 numpy oracles."""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np
import pytest

import oracles
import patchcore
from conftest import MNV2_LAYERS
from patchcore import common
from patchcore.common import (
    Aggregator,
    ApproximateFaissNN,
    AverageMerger,
    ConcatMerger,
    FaissNN,
    MeanMapper,
    NearestNeighbourScorer,
    NetworkFeatureAggregator,
    Preprocessing,
    RescaleSegmentor,
)

RNG = np.random.default_rng(1)

# ------------------------------------------------------------------ backbone


@pytest.fixture(scope="module")
def aggregator(mnv2_onnx):
    agg = NetworkFeatureAggregator(mnv2_onnx, MNV2_LAYERS, "cpu")
    yield agg
    agg.close()


def test_feature_dimensions(aggregator):
    assert aggregator.feature_dimensions((3, 224, 224)) == [192, 384]
    assert aggregator.feature_shapes((3, 224, 224)) == [(192, 28, 28), (384, 14, 14)]
    assert aggregator.layers_to_extract_from == MNV2_LAYERS


def test_forward_matches_golden_feature_maps(aggregator, load):
    x = load("mnv2/input_onnx_pm1.npy")
    for part, sl in (("train", slice(0, 2)), ("test", slice(2, 4))):
        out = aggregator(x[sl])
        assert list(out) == MNV2_LAYERS
        for name, golden_name in zip(MNV2_LAYERS, ("block6", "block10")):
            want = load(f"mnv2/{golden_name}_{part}.npy")
            assert out[name].shape == want.shape and out[name].dtype == np.float32
            assert oracles.rel_err(out[name], want) < 1e-4, (part, name)


def test_forward_from_bytes_and_non_contiguous_input(mnv2_onnx, load):
    x = load("mnv2/input_onnx_pm1.npy")[2:4]
    with open(mnv2_onnx, "rb") as f:
        data = f.read()
    with NetworkFeatureAggregator(data, MNV2_LAYERS, "cpu") as agg:
        a = agg.forward(x)
        # A Fortran-ordered float64 copy is converted (copied) before the call: same result.
        b = agg.forward(np.asfortranarray(x.astype(np.float64)))
    for name in MNV2_LAYERS:
        np.testing.assert_array_equal(a[name], b[name])


def test_embed_flow_of_the_reference(load):
    """PatchCore._embed after the backbone, with the binding's Preprocessing and Aggregator
    (the numpy oracle does PatchMaker and the grid alignment): golden embeddings."""
    maps = [load("mnv2/block6_test.npy"), load("mnv2/block10_test.npy")]
    preprocessing = Preprocessing([192, 384], 1024)
    aggregator = Aggregator(target_dim=1024)

    def pre(features):
        out = preprocessing(features)
        assert out.shape == (len(features[0]), 2, 1024) and out.dtype == np.float32
        return out

    got = oracles.embed(maps, preprocessing=pre, aggregator=aggregator)
    want = load("mnv2/embed_test.npy")
    assert got.shape == want.shape
    assert oracles.rel_err(got, want) < 1e-5
    # The library's fused embedding gives the same rows.
    fused = patchcore.embed(maps, 3, 1024, 1024)
    assert oracles.rel_err(fused, want) < 1e-5


def test_backbone_errors(mnv2_onnx, tmp_path):
    with pytest.raises(patchcore.InvalidArgumentError, match="no_such_layer"):
        NetworkFeatureAggregator(mnv2_onnx, ["block_6_expand_relu", "no_such_layer"], "cpu")
    missing = str(tmp_path / "missing.onnx")
    with pytest.raises(patchcore.PatchCoreIOError, match="missing.onnx"):
        NetworkFeatureAggregator(missing, MNV2_LAYERS, "cpu")
    with pytest.raises(patchcore.FormatError):
        NetworkFeatureAggregator(b"this is not an onnx model", MNV2_LAYERS, "cpu")
    with pytest.raises(patchcore.InvalidArgumentError):
        NetworkFeatureAggregator(3.5, MNV2_LAYERS, "cpu")
    with pytest.raises(patchcore.InvalidArgumentError):
        NetworkFeatureAggregator(mnv2_onnx, "block_6_expand_relu", "cpu")


def test_forward_errors(aggregator, load):
    x = load("mnv2/input_onnx_pm1.npy")[:1]
    with pytest.raises(patchcore.InvalidArgumentError, match="dimensions"):
        aggregator(x[0])
    with pytest.raises(patchcore.InvalidArgumentError, match="dtype"):
        aggregator(x.astype(np.complex64))
    with pytest.raises(patchcore.InvalidArgumentError):
        aggregator(x[:, :2])  # 2 channels: the graph wants 3


def test_torch_module_backbone_without_torch():
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed: the export path runs for real")

    class FakeModule:  # duck-types a torch.nn.Module
        def get_submodule(self, name):
            return self

        def parameters(self):
            return iter(())

    with pytest.raises(patchcore.UnsupportedError, match="PyTorch"):
        NetworkFeatureAggregator(FakeModule(), ["layer2"], "cpu")
    with pytest.raises(patchcore.UnsupportedError, match="PyTorch"):
        patchcore.PatchCore(backbone=FakeModule(), layers=["layer2"])


def test_torch_module_backbone_export():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    net = torch.nn.Sequential()
    net.add_module("stem", torch.nn.Conv2d(3, 4, 3, padding=1))
    net.add_module("layer2", torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.ReLU()))
    net.add_module("layer3", torch.nn.Conv2d(6, 8, 3, stride=2, padding=1))
    net.add_module("head", torch.nn.Conv2d(8, 2, 1))
    x = torch.randn(2, 3, 32, 32)
    with NetworkFeatureAggregator(net, ["layer2", "layer3"], "cpu") as agg:
        out = agg(x)
    with torch.no_grad():
        l2 = net.layer2(net.stem(x))
        l3 = net.layer3(l2)
    assert torch.allclose(out["layer2"], l2, atol=1e-5) and torch.allclose(out["layer3"], l3, atol=1e-5)


# ------------------------------------------------------------------ pooling modules


@pytest.mark.parametrize("length,out_len", [(4608, 1024), (9216, 1024), (1728, 1024), (3456, 1024),
                                            (2048, 384), (10, 4), (7, 3), (5, 5), (3, 8)])
def test_adaptive_avg_pool1d_windows(length, out_len):
    x = RNG.standard_normal((6, length)).astype(np.float32)
    got = patchcore.adaptive_avg_pool1d(x, out_len)
    assert got.shape == (6, out_len) and got.dtype == np.float32
    assert oracles.rel_err(got, oracles.adaptive_avg_pool1d(x, out_len)) < 1e-6


def test_adaptive_avg_pool1d_leading_axes_and_errors():
    x = RNG.standard_normal((2, 3, 50)).astype(np.float32)
    got = patchcore.adaptive_avg_pool1d(x, 7)
    assert got.shape == (2, 3, 7)
    assert oracles.rel_err(got, oracles.adaptive_avg_pool1d(x, 7)) < 1e-6
    with pytest.raises(patchcore.InvalidArgumentError):
        patchcore.adaptive_avg_pool1d(x, 0)
    with pytest.raises(patchcore.InvalidArgumentError, match="dtype"):
        patchcore.adaptive_avg_pool1d(np.array(["a", "b"]), 1)


def test_preprocessing_and_aggregator_against_oracle():
    p = 37
    layers = [RNG.standard_normal((p, 192, 3, 3)).astype(np.float32),
              RNG.standard_normal((p, 384, 3, 3)).astype(np.float32)]
    pre = Preprocessing([192, 384], 1024)
    assert len(pre.preprocessing_modules) == 2
    got = pre.forward(layers)
    want = np.stack([oracles.adaptive_avg_pool1d(x.reshape(p, -1), 1024) for x in layers], axis=1)
    assert got.shape == (p, 2, 1024)
    assert oracles.rel_err(got, want) < 1e-6
    agg = Aggregator(384)
    out = agg(got)
    assert out.shape == (p, 384)
    assert oracles.rel_err(out, oracles.adaptive_avg_pool1d(got.reshape(p, -1), 384)) < 1e-6
    mm = MeanMapper(100)
    assert oracles.rel_err(mm(layers[0]), oracles.adaptive_avg_pool1d(layers[0].reshape(p, -1), 100)) < 1e-6
    with pytest.raises(patchcore.InvalidArgumentError):
        pre.forward(layers[:1])


def test_mergers():
    a = RNG.standard_normal((4, 3, 2, 2)).astype(np.float32)
    b = RNG.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ConcatMerger().merge([a, b]), np.concatenate([a.reshape(4, -1), b], axis=1))
    np.testing.assert_array_equal(ConcatMerger().merge([a]), a.reshape(4, 12))
    np.testing.assert_allclose(AverageMerger().merge([a, b[:, :, None]]),
                               np.concatenate([a.mean(axis=(2, 3)), b], axis=1), rtol=1e-6)


# ------------------------------------------------------------------ nearest neighbours


@pytest.fixture(scope="module")
def golden_scorer(load):
    scorer = NearestNeighbourScorer(n_nearest_neighbours=1, nn_method=FaissNN(False, 4))
    scorer.fit(detection_features=[load("mnv2/memory_bank.npy")])
    yield scorer
    scorer.nn_method.close()


def test_scorer_on_golden_embeddings(golden_scorer, load):
    scores, distances, indices = golden_scorer.predict([load("mnv2/embed_test.npy")])
    want = load("mnv2/patch_scores_k1.npy").reshape(-1)
    assert scores.shape == (1568,) and distances.shape == (1568, 1) and indices.shape == (1568, 1)
    assert scores.dtype == np.float32 and distances.dtype == np.float32 and indices.dtype == np.int64
    assert oracles.rel_err(scores, want) < 1e-3
    agreement = np.mean(indices[:, 0] == load("mnv2/nn_index_k1.npy").reshape(-1))
    assert agreement >= 0.99
    # Image scores = max over each image's 784 patches.
    np.testing.assert_allclose(scores.reshape(2, -1).max(axis=1), load("mnv2/image_scores_k1.npy"), rtol=1e-3)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_scorer_against_brute_force(k):
    bank = RNG.standard_normal((500, 48)).astype(np.float32)
    queries = RNG.standard_normal((64, 48)).astype(np.float32)
    scorer = NearestNeighbourScorer(k, FaissNN(False, 2))
    scorer.fit([bank.reshape(500, 3, 16)])  # ConcatMerger flattens [N, 3, 16] to [N, 48]
    scores, distances, indices = scorer.predict([queries])
    want_d, want_i = oracles.knn(bank, queries, k)
    assert oracles.rel_err(distances, want_d) < 1e-4
    assert np.mean(indices == want_i) > 0.99
    np.testing.assert_allclose(scores, want_d.mean(axis=1), rtol=1e-4)
    assert np.all(np.diff(distances, axis=1) >= 0)
    np.testing.assert_array_equal(scorer.detection_features, bank)


def test_faissnn_run_and_shared_method():
    bank = RNG.standard_normal((300, 16)).astype(np.float32)
    q = RNG.standard_normal((20, 16)).astype(np.float32)
    nn = FaissNN(False, 4)
    nn.fit(bank)
    d1, i1 = nn.run(1, q)
    d5, i5 = nn.run(5, q)  # k above the index's k: rebuilt once, same neighbours
    want_d, want_i = oracles.knn(bank, q, 5)
    np.testing.assert_array_equal(i5, want_i)
    np.testing.assert_allclose(d5, want_d, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(i1[:, 0], want_i[:, 0])
    d2, i2 = nn.run(2, q)  # smaller k: the first columns
    np.testing.assert_array_equal(i2, want_i[:, :2])
    # Two scorers sharing one FaissNN with different k.
    s1, s3 = NearestNeighbourScorer(1, nn), NearestNeighbourScorer(3, nn)
    np.testing.assert_allclose(s3.predict([q])[0], want_d[:, :3].mean(axis=1), rtol=1e-4)
    np.testing.assert_allclose(s1.predict([q])[0], want_d[:, 0], rtol=1e-4, atol=1e-6)
    # A throw-away index from index_features.
    other = RNG.standard_normal((50, 16)).astype(np.float32)
    d, i = nn.run(2, q, index_features=other)
    want_d, want_i = oracles.knn(other, q, 2)
    np.testing.assert_array_equal(i, want_i)
    nn.reset_index()
    with pytest.raises(patchcore.InvalidStateError, match="fit"):
        nn.run(1, q)
    nn.fit(bank)  # usable again after reset_index
    assert nn.run(1, q)[1].shape == (20, 1)
    nn.close()
    nn.close()


def test_scorer_errors():
    scorer = NearestNeighbourScorer(1)
    q = RNG.standard_normal((3, 8)).astype(np.float32)
    with pytest.raises(patchcore.InvalidStateError):
        scorer.predict([q])
    bad = RNG.standard_normal((10, 8)).astype(np.float32)
    bad[3, 2] = np.nan
    with pytest.raises(patchcore.InvalidArgumentError):
        scorer.fit([bad])
    scorer.fit([np.abs(bad[[0, 1, 2, 4]])])
    with pytest.raises(patchcore.InvalidArgumentError):
        scorer.predict([RNG.standard_normal((3, 9)).astype(np.float32)])  # wrong dimension
    with pytest.raises(patchcore.InvalidArgumentError):
        scorer.predict([np.full((1, 8), np.inf, dtype=np.float32)])
    with pytest.raises(patchcore.InvalidArgumentError):
        NearestNeighbourScorer(0)
    with pytest.raises(patchcore.InvalidArgumentError):
        NearestNeighbourScorer(1, nn_method="faiss")
    with pytest.raises(patchcore.InvalidArgumentError, match="dimensions"):
        FaissNN().fit(np.zeros(5, dtype=np.float32))


def test_scorer_concurrent_predict(golden_scorer, load):
    queries = load("mnv2/embed_test.npy")
    want = golden_scorer.predict([queries])
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        results[i] = golden_scorer.predict([queries])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        for got, w in zip(r, want):
            np.testing.assert_array_equal(got, w)


def test_scorer_save_load_round_trip(golden_scorer, load, tmp_path):
    queries = load("mnv2/embed_test.npy")
    want = golden_scorer.predict([queries])
    golden_scorer.save(str(tmp_path), save_features_separately=False, prepend="Ensemble-1-1_")
    assert sorted(os.listdir(tmp_path)) == ["Ensemble-1-1_nnscorer_search_index.faiss"]
    assert os.path.getsize(tmp_path / "Ensemble-1-1_nnscorer_search_index.faiss") == 45 + 1568 * 1024 * 4
    other = NearestNeighbourScorer(1, FaissNN(False, 4))
    other.load(str(tmp_path), prepend="Ensemble-1-1_")
    assert other.detection_features is None
    for got, w in zip(other.predict([queries]), want):
        np.testing.assert_array_equal(got, w)
    other.nn_method.close()


def test_save_and_reset(tmp_path):
    bank = RNG.standard_normal((30, 8)).astype(np.float32)
    scorer = NearestNeighbourScorer(1)
    scorer.fit([bank])
    want = scorer.predict([bank[:4]])
    scorer.save_and_reset(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["nnscorer_search_index.faiss"]
    with pytest.raises(patchcore.InvalidStateError):
        scorer.predict([bank[:4]])
    scorer.load(str(tmp_path))
    np.testing.assert_array_equal(scorer.predict([bank[:4]])[0], want[0])


@pytest.mark.skipif(patchcore.gpu_available(), reason="this build has GPU support")
def test_gpu_request_in_cpu_build(mnv2_onnx):
    with pytest.raises(patchcore.UnsupportedError):
        FaissNN(on_gpu=True).fit(RNG.standard_normal((10, 4)).astype(np.float32))
    with pytest.raises(patchcore.UnsupportedError, match="cuda"):
        NetworkFeatureAggregator(mnv2_onnx, MNV2_LAYERS, "cuda")
    with pytest.raises(patchcore.InvalidArgumentError, match="tpu"):
        patchcore.PatchCore(layers=["a"], device="tpu")


def test_scorer_load_errors(tmp_path):
    scorer = NearestNeighbourScorer(1)
    with pytest.raises(patchcore.PatchCoreIOError, match="nnscorer_search_index.faiss"):
        scorer.load(str(tmp_path))
    (tmp_path / "nnscorer_search_index.faiss").write_bytes(b"IxF2" + b"\0" * 10)
    with pytest.raises(patchcore.FormatError, match="nnscorer_search_index.faiss"):
        scorer.load(str(tmp_path))
    with pytest.raises(patchcore.InvalidStateError):
        scorer.save(str(tmp_path))


def test_faissnn_save_load_any_filename(tmp_path):
    bank = RNG.standard_normal((40, 8)).astype(np.float32)
    q = RNG.standard_normal((5, 8)).astype(np.float32)
    nn = FaissNN()
    nn.fit(bank)
    want = nn.run(2, q)
    path = tmp_path / "my index.bin"
    nn.save(path)
    assert sorted(os.listdir(tmp_path)) == ["my index.bin"]  # no temporary left behind
    again = FaissNN()
    again.load(path)
    for got, w in zip(again.run(2, q), want):
        np.testing.assert_array_equal(got, w)
    with pytest.raises(patchcore.PatchCoreIOError, match="nothing-here.faiss"):
        again.load(tmp_path / "nothing-here.faiss")
    with pytest.raises(patchcore.PatchCoreIOError, match="no-such-dir"):
        nn.save(tmp_path / "no-such-dir" / "x.faiss")


def test_approximate_faiss_nn():
    bank = RNG.standard_normal((1000, 64)).astype(np.float32)
    nn = ApproximateFaissNN(False, 2)
    scorer = NearestNeighbourScorer(3, nn)
    scorer.fit([bank])
    scores, distances, indices = scorer.predict([bank[:100]])
    assert distances.shape == (100, 3) and indices.shape == (100, 3)
    # nprobe 1 over 512 lists of ~2 rows: as in FAISS, missing neighbours are -1 with the
    # largest float as distance; a bank row always finds itself first.
    np.testing.assert_array_equal(indices[:, 0], np.arange(100))
    assert np.all((indices >= 0) == (distances < 1e30)) and indices.max() < 1000
    assert np.all(np.diff(distances, axis=1) >= 0)
    full = indices.min(axis=1) >= 0
    assert full.sum() > 10
    np.testing.assert_allclose(scores[full], distances[full].mean(axis=1), rtol=1e-5)
    # PQ distances approximate the exact ones: a row's distance to itself is far below a
    # typical distance to another row.
    typical = oracles.knn(bank[100:200], bank[:100], 1)[0].mean()
    assert np.median(distances[:, 0]) < 0.5 * typical
    with pytest.raises(patchcore.PatchCoreError):
        ApproximateFaissNN().fit(RNG.standard_normal((1000, 48)).astype(np.float32))  # 48 % 64 != 0
    with pytest.raises(patchcore.PatchCoreError):
        ApproximateFaissNN().fit(RNG.standard_normal((100, 64)).astype(np.float32))  # too few to train
    nn.close()


# ------------------------------------------------------------------ segmentation


def test_segmentor_on_golden_patch_scores(load):
    patch_scores = load("mnv2/patch_scores_k1.npy")
    want = load("mnv2/segmentations_k1.npy")
    for target in (224, (224, 224)):
        seg = RescaleSegmentor(device="cpu", target_size=target)
        maps = seg.convert_to_segmentation(patch_scores)
        assert isinstance(maps, list) and len(maps) == 2
        assert maps[0].shape == (224, 224) and maps[0].dtype == np.float32
        assert oracles.rel_err(np.stack(maps), want) < 1e-5
        seg.close()


def test_segmentor_against_oracle_other_sizes_and_sigma():
    patch_scores = RNG.random((3, 7, 9)).astype(np.float32)
    seg = RescaleSegmentor("cpu", target_size=(40, 52))
    got = np.stack(seg.convert_to_segmentation(patch_scores))
    assert oracles.rel_err(got, oracles.segmentation(patch_scores, (40, 52))) < 1e-5
    seg.smoothing = 2  # changing the reference's attributes takes effect
    seg.target_size = 30
    got = np.stack(seg.convert_to_segmentation(patch_scores))
    assert got.shape == (3, 30, 30)
    assert oracles.rel_err(got, oracles.segmentation(patch_scores, (30, 30), sigma=2)) < 1e-5
    with pytest.raises(patchcore.InvalidArgumentError, match="dimensions"):
        seg.convert_to_segmentation(patch_scores[0])
    seg.close()
    with pytest.raises(patchcore.InvalidArgumentError):
        RescaleSegmentor("cpu", target_size=(1, 2, 3)).convert_to_segmentation(patch_scores)


# ------------------------------------------------------------------ reference on-disk format


def test_saved_folder_is_readable_by_faiss_and_pickle(golden_scorer, load, tmp_path):
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    import pickle

    golden_scorer.save(str(tmp_path), save_features_separately=True, prepend="")
    index = faiss.read_index(str(tmp_path / "nnscorer_search_index.faiss"))
    bank = load("mnv2/memory_bank.npy")
    assert index.ntotal == 1568 and index.d == 1024 and index.metric_type == faiss.METRIC_L2
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), bank)
    with open(tmp_path / "nnscorer_features.pkl", "rb") as f:
        features = pickle.load(f)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, bank)
    d, i = index.search(load("mnv2/embed_test.npy"), 1)
    scores, _, indices = golden_scorer.predict([load("mnv2/embed_test.npy")])
    np.testing.assert_allclose(scores, d[:, 0], rtol=1e-4, atol=1e-3)
    assert np.mean(indices[:, 0] == i[:, 0]) > 0.99


def test_folder_written_by_faiss_and_pickle_is_loaded(tmp_path):
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    import pickle

    bank = RNG.standard_normal((200, 32)).astype(np.float32)
    q = RNG.standard_normal((30, 32)).astype(np.float32)
    index = faiss.IndexFlatL2(32)
    index.add(bank)
    faiss.write_index(index, str(tmp_path / "Ensemble-2-3_nnscorer_search_index.faiss"))
    with open(tmp_path / "Ensemble-2-3_nnscorer_features.pkl", "wb") as f:
        pickle.dump(bank, f, pickle.HIGHEST_PROTOCOL)
    scorer = NearestNeighbourScorer(2, FaissNN(False, 4))
    scorer.load(str(tmp_path), prepend="Ensemble-2-3_")
    np.testing.assert_array_equal(scorer.detection_features, bank)
    want_d, want_i = index.search(q, 2)
    scores, d, i = scorer.predict([q])
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_allclose(d, want_d, rtol=1e-5, atol=1e-5)
    # A bare faiss file through FaissNN.load.
    nn = FaissNN()
    nn.load(tmp_path / "Ensemble-2-3_nnscorer_search_index.faiss")
    np.testing.assert_array_equal(nn.run(2, q)[1], want_i)


def test_faissnn_save_is_readable_by_faiss(tmp_path):
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    bank = RNG.standard_normal((64, 16)).astype(np.float32)
    nn = FaissNN()
    nn.fit(bank)
    nn.save(tmp_path / "bare.index")
    np.testing.assert_array_equal(faiss.read_index(str(tmp_path / "bare.index")).reconstruct_n(0, 64), bank)


def test_approximate_index_is_readable_by_faiss(tmp_path):
    faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    bank = RNG.standard_normal((1000, 64)).astype(np.float32)
    nn = ApproximateFaissNN()
    nn.fit(bank)
    nn.save(tmp_path / "ivfpq.faiss")
    index = faiss.read_index(str(tmp_path / "ivfpq.faiss"))
    ivf = faiss.extract_index_ivf(index)
    assert index.ntotal == 1000 and ivf.nlist == 512
    assert faiss.downcast_index(index).pq.M == 64


def test_pickle_with_code_is_refused(tmp_path):
    """Neither the library nor the binding's lazy reader executes a pickle's code."""
    import pickle

    bank = RNG.standard_normal((10, 4)).astype(np.float32)
    nn = FaissNN()
    nn.fit(bank)
    nn.save(tmp_path / "nnscorer_search_index.faiss")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "nnscorer_features.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(patchcore.FormatError, match="nnscorer_features.pkl"):
        NearestNeighbourScorer(1).load(str(tmp_path))
    with pytest.raises(patchcore.FormatError, match="refusing"):
        common._read_features(str(tmp_path / "nnscorer_features.pkl"))
    assert not marker.exists()
