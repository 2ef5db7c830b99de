"""Reliability from Python (docs/reliability.md): RSS stays flat over 10,000 create / fit /
predict / serialise / load / close cycles of tiny features-only models, and threads share
one model with identical results."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np

import patchcore

# Run in a fresh process, so that other tests' heaps do not blur the measurement: RSS after
# 1,000 cycles (allocator pools and the Go heap warmed up) and after 10,000.
_SOAK_SCRIPT = """
import sys
import numpy as np
import patchcore
sys.path.insert(0, sys.argv[1])
from conftest import rss_bytes

cycles = int(sys.argv[2])
rng = np.random.default_rng(11)
train = [rng.random((2, 8, 4, 4), dtype=np.float32), rng.random((2, 8, 2, 2), dtype=np.float32)]
test = [rng.random((1, 8, 4, 4), dtype=np.float32), rng.random((1, 8, 2, 2), dtype=np.float32)]
want = None
marks = []
for i in range(1, cycles + 1):
    model = patchcore.PatchCore(layers=["a", "b"], sampler="identity", resize=16, imagesize=16,
                                pretrain_embed_dimension=16, target_embed_dimension=16, num_threads=1)
    model.fit_features(train)
    scores, _ = model.predict_features(test, maps=False)
    copy = patchcore.PatchCore.from_bytes(model.to_bytes())
    again, _ = copy.predict_features(test, maps=False)
    copy.close()
    model.close()
    if want is None:
        want = scores
    assert np.array_equal(scores, want) and np.array_equal(again, want), (scores, again, want)
    if i == min(1000, cycles):
        marks.append(rss_bytes())
marks.append(rss_bytes())
print(" ".join(str(m) for m in marks))
"""

SOAK_CYCLES = int(os.environ.get("PATCHCORE_SOAK_CYCLES", "10000"))
RSS_BOUND_MIB = 8


def test_rss_flat_over_10000_model_cycles():
    r = subprocess.run([sys.executable, "-c", _SOAK_SCRIPT, os.path.dirname(__file__), str(SOAK_CYCLES)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    at_1000, at_end = (int(v) for v in r.stdout.split())
    growth = (at_end - at_1000) / 2**20
    print(f"RSS {at_1000 / 2**20:.1f} MiB after 1000 cycles, {at_end / 2**20:.1f} MiB after {SOAK_CYCLES}")
    assert growth < RSS_BOUND_MIB, f"RSS grew by {growth:.2f} MiB from cycle 1000 to {SOAK_CYCLES}"


def test_sixteen_threads_share_one_model():
    rng = np.random.default_rng(12)
    train = [rng.random((2, 8, 4, 4), dtype=np.float32), rng.random((2, 8, 2, 2), dtype=np.float32)]
    test = [rng.random((2, 8, 4, 4), dtype=np.float32), rng.random((2, 8, 2, 2), dtype=np.float32)]
    with patchcore.PatchCore(layers=["a", "b"], sampler="identity", resize=16, imagesize=16,
                             pretrain_embed_dimension=16, target_embed_dimension=16) as model:
        model.fit_features(train)
        want_scores, want_maps = model.predict_features(test)
        failures = []

        def work():
            for _ in range(100):
                scores, maps = model.predict_features(test)
                if not (np.array_equal(scores, want_scores) and np.array_equal(maps, want_maps)):
                    failures.append((scores, want_scores))
                    return

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures[0]


# A forked child (multiprocessing's "fork" start method, the default on Linux before
# Python 3.14) gets InvalidStateError at once instead of hanging; the parent keeps working.
_FORK_SCRIPT = """
import multiprocessing as mp
import numpy as np
import patchcore

def child(model, test, queue):
    try:
        model.predict_features(test, maps=False)
        queue.put("no error")
    except patchcore.InvalidStateError as e:
        queue.put("InvalidStateError: " + str(e))
    except Exception as e:
        queue.put(type(e).__name__ + ": " + str(e))

rng = np.random.default_rng(13)
train = [rng.random((2, 8, 4, 4), dtype=np.float32), rng.random((2, 8, 2, 2), dtype=np.float32)]
test = [rng.random((1, 8, 4, 4), dtype=np.float32), rng.random((1, 8, 2, 2), dtype=np.float32)]
model = patchcore.PatchCore(layers=["a", "b"], sampler="identity", resize=16, imagesize=16,
                            pretrain_embed_dimension=16, target_embed_dimension=16)
model.fit_features(train)
before, _ = model.predict_features(test, maps=False)
ctx = mp.get_context("fork")
queue = ctx.Queue()
p = ctx.Process(target=child, args=(model, test, queue))
p.start()
print(queue.get(timeout=60))
p.join(60)
after, _ = model.predict_features(test, maps=False)
assert np.array_equal(before, after)
"""


def test_forked_child_fails_fast():
    r = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("InvalidStateError: "), r.stdout
    assert "fork" in r.stdout
