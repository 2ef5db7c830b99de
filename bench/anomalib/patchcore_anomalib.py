#!/usr/bin/env python3
"""Times anomalib 0.7.0's PatchCore (its torch model, without the Lightning trainer) on the
same images and settings as bench/cmd/pcbench, for docs/benchmarks.md.

WideResNet50 (timm, random initialisation: no weights can be downloaded here), layers
layer2 and layer3, input resized to 256 and centre-cropped to 224 with ImageNet
normalisation, coreset fraction --pct, k = 1 patch search, batch 8 for fit. anomalib's
embedding differs from the reference's: a 3x3 average pool per layer, nearest-neighbour
upsampling and concatenation (1536 dimensions, no adaptive-pool projection to 1024), its own
k-center-greedy coreset on a sparse random projection, and torch.cdist search.

Appends one JSON object (kind "anomalib") to --out, which pcbench report renders.

    bench/anomalib/.venv/bin/python bench/anomalib/patchcore_anomalib.py \
        --images .deps/bench-data/demo-1000/grass -n 60 --pct 0.1 --out results.jsonl
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # anomalib's coreset loop draws a progress bar
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import py311shim  # noqa: E402,F401  (before torch)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402

import anomalib  # noqa: E402
from anomalib.models.patchcore.torch_model import PatchcoreModel  # noqa: E402

IMAGE_EXT = (".png", ".jpg", ".jpeg")


def list_images(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXT))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_avg():
    return list(os.getloadavg())


def roc_auc(scores, labels):
    """Mann-Whitney AUROC with ties counted one half."""
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True, help="MVTec-style category folder (train/good, test/*)")
    ap.add_argument("-n", type=int, default=60, help="training images (cycled when fewer)")
    ap.add_argument("--pct", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-test", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="append the JSON line here (default: stdout)")
    args = ap.parse_args()

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(args.seed)
    result = {"kind": "anomalib", "anomalib": anomalib.__version__, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_before": load_avg(), "images": args.n, "percentage": args.pct}

    train_all = list_images(os.path.join(args.images, "train", "good"))
    train = [train_all[i % len(train_all)] for i in range(args.n)]
    result["distinct_images"] = min(len(train_all), args.n)
    test, labels = [], []
    test_root = os.path.join(args.images, "test")
    for kind in sorted(os.listdir(test_root)) if os.path.isdir(test_root) else []:
        for p in list_images(os.path.join(test_root, kind)):
            test.append(p)
            labels.append(kind != "good")
    test, labels = test[: args.max_test], labels[: args.max_test]

    tf = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    model = PatchcoreModel(input_size=(224, 224), layers=["layer2", "layer3"], backbone="wide_resnet50_2",
                           pre_trained=False, num_neighbors=9)
    model.feature_extractor.eval()

    # Fit: the steps of PatchcoreModel.forward in training mode, timed apart.
    t_pre = t_bb = t_emb = 0.0
    embeddings = []
    fit_start = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(train), args.batch):
            t0 = time.perf_counter()
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in train[start:start + args.batch]])
            t1 = time.perf_counter()
            features = model.feature_extractor(x)
            t2 = time.perf_counter()
            features = {k: model.feature_pooler(v) for k, v in features.items()}
            emb = model.reshape_embedding(model.generate_embedding(features))
            embeddings.append(emb)
            t3 = time.perf_counter()
            t_pre, t_bb, t_emb = t_pre + t1 - t0, t_bb + t2 - t1, t_emb + t3 - t2
        embedding = torch.vstack(embeddings)
        del embeddings
        t = time.perf_counter()
        model.subsample_embedding(embedding, args.pct)
        result["coreset_s"] = time.perf_counter() - t
    result["fit_s"] = time.perf_counter() - fit_start
    n = len(train)
    result.update(preprocess_ms=1000 * t_pre / n, backbone_ms=1000 * t_bb / n, embed_ms=1000 * t_emb / n,
                  rows=int(embedding.shape[0]), dim=int(embedding.shape[1]), bank_rows=int(model.memory_bank.shape[0]),
                  fit_peak_rss_mib=peak_rss_mib())
    del embedding

    # Predict: batch 1 latency and batch 8 throughput on decoded images.
    model.eval()
    imgs = [Image.open(p).convert("RGB") for p in test]
    lat, scores = [], []
    with torch.no_grad():
        model(tf(imgs[0]).unsqueeze(0))  # warm-up
        for img in imgs:
            t = time.perf_counter()
            _, score = model(tf(img).unsqueeze(0))
            lat.append(1000 * (time.perf_counter() - t))
            scores.append(float(score.reshape(-1)[0]))
        batch = [imgs[i % len(imgs)] for i in range(8)]
        reps = 2
        t = time.perf_counter()
        for _ in range(reps):
            model(torch.stack([tf(im) for im in batch]))
        b8 = time.perf_counter() - t
    result.update(test_images=len(imgs), predict_b1_median_ms=statistics.median(lat),
                  predict_b1_mean_ms=statistics.mean(lat), predict_b8_ms_per_image=1000 * b8 / (8 * reps),
                  image_auroc=roc_auc(scores, labels), peak_rss_mib=peak_rss_mib(), load_after=load_avg())
    line = json.dumps(result)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    else:
        print(line)
    print(f"anomalib PatchCore: {n} images: fit {result['fit_s']:.1f}s (coreset {result['coreset_s']:.1f}s), "
          f"predict b1 {result['predict_b1_median_ms']:.0f} ms, peak RSS {result['peak_rss_mib']:.0f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
