#!/usr/bin/env python3
"""Independent reference values for internal/metrics, written to sklearn_vectors.json.

Run in a throw-away virtual environment (the JSON is committed; Go tests only read it):

    python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install numpy scikit-learn scipy
    /tmp/skvenv/bin/python internal/metrics/testdata/gen_sklearn_vectors.py

Oracles:
  * auroc            sklearn.metrics.roc_auc_score
  * roc              sklearn.metrics.roc_curve(drop_intermediate=False), leading +inf dropped
  * f1_threshold     sklearn.metrics.precision_recall_curve, F1 = 2PR/(P+R+1e-10), NaN->0,
                     restricted to thresholds at or above the highest one with full recall
                     (torchmetrics/anomalib), first argmax in increasing-threshold order
  * quantiles        numpy.quantile (default method 'linear')
  * mean_sigma       mean + k * numpy.std (ddof=0)
  * aupro            straightforward numpy port of the MVTec AD definition with
                     scipy.ndimage.label (8-connectivity)

All scores are float32 values (stored as the shortest decimal of their float64 value) with
many ties. Masks are strings of '0'/'1', row-major.
"""
import json
import os
from bisect import bisect

import numpy as np
import scipy
import sklearn
from scipy import ndimage
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sklearn_vectors.json")
QUANTILES = [0.0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]
SIGMA_K = [0.0, 1.0, 3.0]


def f32(a):
    return np.asarray(a, dtype=np.float32)


def tolist(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64)]


def random_scores(rng, labels):
    n = len(labels)
    shift = rng.uniform(-0.5, 2.0) * labels  # separation varies from inverted to clean
    kind = rng.integers(3)
    if kind == 0:  # heavy ties: few distinct levels
        return f32(np.round(rng.integers(0, 8, n) / 4.0 - 0.5 + shift))
    if kind == 1:  # quantised normal
        return f32(np.round((rng.normal(2.0, 1.5, n) + shift) * 16) / 16)
    return f32(rng.random(n) * 3.0 + shift)  # mostly distinct


def f1_threshold(labels, scores):
    p, r, t = precision_recall_curve(labels, scores.astype(np.float64))
    p, r = p[:-1], r[:-1]  # the appended (1, 0) point has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * p * r / (p + r + 1e-10)
    f1 = np.nan_to_num(f1, nan=0.0)
    full = np.nonzero(r == 1.0)[0]
    start = full.max()  # highest threshold with full recall: torchmetrics cuts below it
    i = start + int(np.argmax(f1[start:]))
    return {"threshold": float(t[i]), "f1": float(f1[i]), "precision": float(p[i]), "recall": float(r[i])}


def label_case(rng, n, with_roc):
    frac = rng.uniform(0.1, 0.9)
    labels = rng.random(n) < frac
    if labels.all() or not labels.any():
        labels[0] = not labels[1]
    scores = random_scores(rng, labels)
    s64 = scores.astype(np.float64)
    case = {
        "scores": tolist(scores),
        "labels": "".join("1" if b else "0" for b in labels),
        "auroc": float(roc_auc_score(labels, s64)),
        "f1": f1_threshold(labels, scores),
        "quantiles": [float(np.quantile(s64, q)) for q in QUANTILES],
        "mean_sigma": [float(np.mean(s64) + k * np.std(s64)) for k in SIGMA_K],
    }
    if with_roc:
        fpr, tpr, thr = roc_curve(labels, s64, drop_intermediate=False)
        assert np.isinf(thr[0])
        case["roc"] = {"fpr": tolist(fpr), "tpr": tolist(tpr), "thresholds": tolist(thr[1:])}
    return case


def random_mask(rng, h, w):
    m = np.zeros((h, w), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        kind = rng.integers(3)
        y, x = rng.integers(h), rng.integers(w)
        if kind == 0:  # rectangle
            m[y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)] = True
        elif kind == 1:  # diagonal chain: one region under 8-connectivity, many under 4
            for k in range(rng.integers(2, 7)):
                if 0 <= y + k < h and 0 <= x + k < w:
                    m[y + k, x + k] = True
        else:  # disc
            r = rng.uniform(1.0, 4.0)
            yy, xx = np.mgrid[0:h, 0:w]
            m |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return m


def mvtec_aupro(maps, masks, limit):
    """AUPRO as defined by the MVTec AD evaluation (8-connected GT regions)."""
    structure = np.ones((3, 3), dtype=int)
    fp_changes = np.zeros(maps.shape, dtype=np.uint32)
    pro_changes = np.zeros(maps.shape, dtype=np.float64)
    n_ok, n_regions = 0, 0
    for i, gt in enumerate(masks):
        labeled, n = ndimage.label(gt, structure)
        n_regions += n
        ok = labeled == 0
        n_ok += int(ok.sum())
        fp_changes[i][ok] = 1
        for k in range(1, n + 1):
            region = labeled == k
            pro_changes[i][region] = 1.0 / region.sum()
    scores = maps.astype(np.float64).ravel()
    order = np.argsort(scores, kind="stable")[::-1]
    scores = scores[order]
    fprs = np.cumsum(fp_changes.ravel()[order], dtype=np.float64) / n_ok
    pros = np.cumsum(pro_changes.ravel()[order], dtype=np.float64) / n_regions
    keep = np.append(np.diff(scores) != 0, True)
    fprs = np.clip(fprs[keep], None, 1.0)
    pros = np.clip(pros[keep], None, 1.0)
    x = np.concatenate(([0.0], fprs, [1.0]))
    y = np.concatenate(([0.0], pros, [1.0]))
    correction = 0.0
    if limit not in x:
        ins = bisect(list(x), limit)
        y_int = y[ins - 1] + (y[ins] - y[ins - 1]) * (limit - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_int + y[ins - 1]) * (limit - x[ins - 1])
    sel = x <= limit
    x, y = x[sel], y[sel]
    return (float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1]))) + correction) / limit


def pixel_case(rng, n_img, h, w):
    masks = np.zeros((n_img, h, w), dtype=bool)
    for i in range(n_img):
        if rng.random() < 0.7:
            masks[i] = random_mask(rng, h, w)
    if not masks.any():
        masks[0] = random_mask(rng, h, w)
    levels = int(rng.choice([8, 64, 1024]))
    maps = rng.random((n_img, h, w)) + 0.6 * masks * rng.random((n_img, h, w))
    maps = f32(np.floor(maps * levels) / levels)
    flat = maps.astype(np.float64).ravel()
    lab = masks.ravel()
    return {
        "height": h,
        "width": w,
        "maps": [tolist(m.ravel()) for m in maps],
        "masks": ["".join("1" if b else "0" for b in m.ravel()) for m in masks],
        "pixel_auroc": float(roc_auc_score(lab, flat)),
        "pixel_f1": f1_threshold(lab, flat.astype(np.float32)),
        "aupro": {str(lim): mvtec_aupro(maps, masks, lim) for lim in (0.3, 0.05, 1.0)},
    }


def main():
    rng = np.random.default_rng(20240611)
    label_cases = [label_case(rng, int(n), i < 10) for i, n in enumerate(rng.integers(5, 120, 30))]
    pixel_cases = [pixel_case(rng, int(rng.integers(2, 6)), int(rng.integers(8, 24)), int(rng.integers(8, 24))) for _ in range(8)]
    doc = {
        "generator": "gen_sklearn_vectors.py",
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "scipy": scipy.__version__},
        "quantile_q": QUANTILES,
        "sigma_k": SIGMA_K,
        "label_cases": label_cases,
        "pixel_cases": pixel_cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
