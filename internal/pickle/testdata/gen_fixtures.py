# Regenerates the pickle fixtures of this directory with Python 3 and numpy 1.24
# (Debian bookworm's python3-numpy, the numpy of the reference runs):
#   cd internal/pickle/testdata && /usr/bin/python3 gen_fixtures.py
# pickle_test.go checks the decoded values against the same constants.
import pickle

import numpy as np

arr = np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.5) - np.float32(1)
for proto in (2, 3, 4, 5):
    with open(f"array_f32_p{proto}.pkl", "wb") as f:
        pickle.dump(arr, f, proto)

with open("array_f64_be_p2.pkl", "wb") as f:
    pickle.dump(np.array([[1.5, -2.25, 3.0]], dtype=">f8"), f, 2)

with open("array_empty_p5.pkl", "wb") as f:
    pickle.dump(np.zeros((0, 4), dtype=np.float32), f, pickle.HIGHEST_PROTOCOL)

# The dict the reference writes as patchcore_params.pkl.
params = {
    "backbone.name": "wideresnet50",
    "layers_to_extract_from": ["layer2", "layer3"],
    "input_shape": (3, 224, 224),
    "pretrain_embed_dimension": 1024,
    "target_embed_dimension": 1024,
    "patchsize": 3,
    "patchstride": 1,
    "anomaly_scorer_num_nn": 1,
}
with open("patchcore_params.pkl", "wb") as f:
    pickle.dump(params, f, pickle.HIGHEST_PROTOCOL)

shared = [1, 2]
values = {
    "none": None,
    "true": True,
    "false": False,
    "neg": -123456,
    "big": 2**70 + 5,
    "negbig": -(2**65),
    "float": -0.125,
    "text": "h\u00e9llo \u2603",
    "bytes": b"\x00\x01\xff",
    "nested": [shared, shared, (1, "a", [None])],
    "np_f32": np.float32(0.25),
    "np_i64": np.int64(-7),
    "np_bool": np.bool_(True),
    7: "int key",
}
for proto in (0, 2, 5):
    with open(f"values_p{proto}.pkl", "wb") as f:
        pickle.dump(values, f, proto)
