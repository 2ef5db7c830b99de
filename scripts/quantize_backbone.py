#!/usr/bin/env python3
"""Make reduced-precision (int8, fp16) variants of a libpatchcore ONNX backbone.

An offline conversion step: it reads a backbone made by this project (an ONNX file with a
JSON sidecar next to it giving ``layers``, ``mean``, ``std`` and ``input_size``, as
``scripts/make-backbone.sh``, ``cmd/patchcore-backbone`` and
``scripts/export_torchvision_backbone.py`` write them) and writes, next to it or in
``--out-dir``:

* ``<name>_int8.onnx``: ONNX Runtime static quantization in QDQ format, int8 weights per
  output channel and (by default) uint8 activations per tensor, with activation ranges
  calibrated on images of a folder (good training images) preprocessed as the library
  does;
* ``<name>_fp16.onnx``: weights and activations in float16, with the graph input and the
  feature layers kept float32 by Cast nodes at the boundary;

each with a sidecar ``<name>_<precision>.json``: the source's sidecar (same layers, mean,
std, input size) with ``model`` and ``model_sha256`` describing the new file and a
``precision`` object recording how it was made and the relative L2 error of every feature
layer against the float32 backbone on a few check images.

The library cuts the graph at the sidecar's layers and reads them as float32 outputs, so
the script checks, on ONNX Runtime's CPU provider, that every layer still exists in the
converted graph as a float32 tensor of the expected shape; when it does not (or when a
layer's error exceeds ``--max-rel-error``) it exits with status 1 and writes nothing.
Files are written atomically (a temporary file in the same folder, then a rename).

Usage::

    scripts/install-quantize.sh      # .deps/venv-quantize: onnxruntime 1.30.0, onnx, ...
    .deps/venv-quantize/bin/python scripts/quantize_backbone.py \\
        .deps/models/mobilenet_v2_block10.onnx \\
        --calib .deps/bench-data/demo-1000/grass/train/good

Calibration preprocessing is the library's (core/image.go, the reference's transform):
RGB, shorter side resized to ``input_size*256/224`` with Pillow's antialiased bilinear
filter in uint8, centre crop ``input_size`` (offset rounded half to even), ``/255``,
``(x - mean)/std`` in float32, NCHW. With Pillow this is bit-exact for PNG; JPEG files may
decode a few levels apart from the library's Go decoder, which does not matter for
calibration.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

SIDECAR_FORMAT = "libpatchcore-backbone/1"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


class ConversionError(Exception):
    """A backbone that cannot be converted or a converted graph the library cannot use."""


def sha256_file(path):
    """Hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sidecar_path(model_path):
    """The sidecar of an ONNX path: the extension replaced by .json."""
    return os.path.splitext(model_path)[0] + ".json"


def read_sidecar(model_path):
    """The source backbone's sidecar, checked for the fields the conversion needs."""
    path = sidecar_path(model_path)
    try:
        with open(path) as f:
            sc = json.load(f)
    except FileNotFoundError:
        raise ConversionError("%s has no sidecar %s (layers, mean, std, input_size)" % (model_path, path)) from None
    except json.JSONDecodeError as e:
        raise ConversionError("sidecar %s is not JSON: %s" % (path, e)) from None
    if sc.get("format") != SIDECAR_FORMAT:
        raise ConversionError("sidecar %s has format %r, want %r" % (path, sc.get("format"), SIDECAR_FORMAT))
    layers = sc.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(l, str) and l for l in layers):
        raise ConversionError("sidecar %s: layers must be a non-empty list of names" % path)
    for key in ("mean", "std"):
        v = sc.get(key)
        if not isinstance(v, list) or len(v) != 3 or not all(isinstance(x, (int, float)) for x in v):
            raise ConversionError("sidecar %s: %s must be three numbers" % (path, key))
    if any(x == 0 for x in sc["std"]):
        raise ConversionError("sidecar %s: std has a zero" % path)
    size = sc.get("input_size")
    if not isinstance(size, int) or size < 16:
        raise ConversionError("sidecar %s: input_size must be an integer >= 16" % path)
    return sc


def crop_offset(side, crop):
    """torchvision's CenterCrop offset int(round((side - crop) / 2)), half to even."""
    return int(round((side - crop) / 2.0))


def preprocess(path, input_size, mean, std):
    """One image as the library feeds it to the backbone: float32 [3, size, size]."""
    resize = input_size * 256 // 224
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if w <= h:
            nw, nh = resize, int(resize * h / w)
        else:
            nw, nh = int(resize * w / h), resize
        im = im.resize((nw, nh), Image.BILINEAR)
        top, left = crop_offset(nh, input_size), crop_offset(nw, input_size)
        im = im.crop((left, top, left + input_size, top + input_size))
        u8 = np.asarray(im, dtype=np.uint8)
    x = u8.astype(np.float32) / np.float32(255)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def list_images(folder):
    """The image files of a folder, sorted by name."""
    if not os.path.isdir(folder):
        raise ConversionError("image folder %s does not exist" % folder)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ConversionError("image folder %s has no .png/.jpg/.bmp files" % folder)
    return files


def split_images(files, calib_count, check_count):
    """calib_count calibration files spread evenly over files, and check_count other files
    for the accuracy check (calibration files when too few are left)."""
    calib_count = min(calib_count, len(files))
    idx = np.linspace(0, len(files) - 1, calib_count).round().astype(int)
    calib = [files[i] for i in sorted(set(idx.tolist()))]
    chosen = set(calib)
    rest = [f for f in files if f not in chosen] or calib
    step = max(1, len(rest) // max(1, check_count))
    return calib, rest[::step][:check_count]


def graph_input_name(model):
    """The only graph input that is not an initializer."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ConversionError("the backbone must have exactly one image input, it has %s" % inputs)
    return inputs[0]


def cut_model(model, layers):
    """A copy of model whose outputs are the layers, declared float32 (as the library
    cuts it); nodes past them are left for ONNX Runtime to prune."""
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    del cut.graph.output[:]
    for name in layers:
        cut.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return cut


def elem_types(model):
    """Element type of every tensor ONNX shape inference can type (inputs, outputs,
    value_info, initializers)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an untypable graph: fall back on what the file declares
        inferred = model
    g = inferred.graph
    types = {t.name: t.data_type for t in g.initializer}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        if v.type.HasField("tensor_type"):
            types[v.name] = v.type.tensor_type.elem_type
    return types


def check_layers(model, layers, what):
    """Raise ConversionError unless every layer is produced by a node of model (or is a
    graph output) with a float32 type."""
    produced = {o for n in model.graph.node for o in n.output} | {o.name for o in model.graph.output}
    missing = [l for l in layers if l not in produced]
    if missing:
        raise ConversionError("%s has no tensor named %s: the library could not cut it at the sidecar's layers" % (what, missing))
    types = elem_types(model)
    for l in layers:
        t = types.get(l, TensorProto.FLOAT)
        if t != TensorProto.FLOAT:
            raise ConversionError("%s: layer %s is %s, the library reads layers as float32"
                                  % (what, l, TensorProto.DataType.Name(t).lower()))


def session(model, layers):
    """A CPU session of model cut at layers."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(cut_model(model, layers).SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_layers(sess, input_name, images):
    """{layer: [N, C, h, w] float array} over images, one image per run."""
    names = [o.name for o in sess.get_outputs()]
    outs = {n: [] for n in names}
    for x in images:
        for n, y in zip(names, sess.run(None, {input_name: x[None]})):
            outs[n].append(y)
    return {n: np.concatenate(v) for n, v in outs.items()}


def layer_errors(ref, got, layers, expected_shapes, what):
    """Check the converted layers' dtype and shape, and return their relative L2 error
    ||got - ref|| / ||ref|| per image (mean and max) against the float32 ones."""
    errs = {}
    for l in layers:
        r, g = ref[l], got[l]
        if g.dtype != np.float32:
            raise ConversionError("%s: layer %s comes out as %s, the library reads float32" % (what, l, g.dtype))
        if g.shape != r.shape:
            raise ConversionError("%s: layer %s has shape %s, the float32 backbone gives %s" % (what, l, g.shape[1:], r.shape[1:]))
        want = expected_shapes.get(l)
        if want is not None and list(g.shape[1:]) != list(want):
            raise ConversionError("%s: layer %s has shape %s, the sidecar says %s" % (what, l, list(g.shape[1:]), want))
        if not np.all(np.isfinite(g)):
            raise ConversionError("%s: layer %s has non-finite values" % (what, l))
        d = (g - r).reshape(len(r), -1).astype(np.float64)
        n = np.maximum(np.linalg.norm(r.reshape(len(r), -1).astype(np.float64), axis=1), 1e-30)
        rel = np.linalg.norm(d, axis=1) / n
        errs[l] = {"rel_l2_mean": round(float(rel.mean()), 6), "rel_l2_max": round(float(rel.max()), 6)}
    return errs


class ImageReader(CalibrationDataReader):
    """ONNX Runtime calibration data: one preprocessed image per batch, over a range of
    the files that set_range selects."""

    def __init__(self, input_name, files, sidecar):
        self.input_name, self.files, self.sc = input_name, files, sidecar
        self.i, self.end = 0, len(files)

    def __len__(self):
        return len(self.files)

    def get_next(self):
        """The next {input: [1, 3, size, size]} feed, None after the range's last image."""
        if self.i >= self.end:
            return None
        x = preprocess(self.files[self.i], self.sc["input_size"], self.sc["mean"], self.sc["std"])
        self.i += 1
        return {self.input_name: x[None]}

    def set_range(self, start_index, end_index):
        """Read the files [start_index, end_index) next."""
        self.i, self.end = start_index, min(end_index, len(self.files))


def inline_identity_initializers(model):
    """Replace every Identity of an initializer (torch's exporter shares equal weights
    through them) by a copy of the initializer under the Identity's output name: the
    quantizer leaves a Conv whose bias is not an initializer in float32."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    outputs = {v.name for v in g.output}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs:
            t = TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {x for n in g.node for x in n.input} | outputs | {v.name for v in g.input}
    unused = [t for t in g.initializer if t.name not in used]
    for t in unused:
        g.initializer.remove(t)
    return model


def make_int8(src_path, work_dir, calib_files, sidecar, args):
    """Quantize src_path statically (QDQ, per-channel int8 weights); return the ModelProto
    and the description stored in the sidecar."""
    src = os.path.join(work_dir, "src.onnx")
    pre = os.path.join(work_dir, "pre.onnx")
    out = os.path.join(work_dir, "int8.onnx")
    onnx.save(inline_identity_initializers(onnx.load(src_path)), src)
    # ONNX shape inference and ORT's basic (provider-independent) graph optimisations; the
    # symbolic shape inference for transformers is skipped (it needs sympy, CNNs do not).
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[args.calibration]
    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[args.activations]
    # One image per collection pass, merged into the running ranges (histograms), so the
    # memory stays that of one image's activations whatever the number of images.
    # (CalibMaxIntermediateOutputs would do the same, but in onnxruntime 1.30 it discards
    # the outputs it collected instead of merging them.)
    extra = {"CalibStridedMinMax": 1}
    reader = ImageReader(graph_input_name(onnx.load(pre, load_external_data=False)), calib_files, sidecar)
    quantize_static(pre, out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=args.reduce_range, activation_type=act, weight_type=QuantType.QInt8,
                    calibrate_method=method, extra_options=extra)
    how = {
        "dtype": "int8",
        "method": ("onnxruntime %s quantize_static: QDQ format, int8 weights per output channel, %s activations "
                   "per tensor, %s calibration%s" % (ort.__version__, args.activations, args.calibration,
                                                      ", reduce_range" if args.reduce_range else "")),
        "calibration_images": len(calib_files),
        "calibration_folder": args.calib,
    }
    return onnx.load(out), how


def to_float32_boundary(model, names):
    """Make every tensor of names that float16 conversion typed float16 a float32 tensor of
    the same name: the float16 value is renamed <name>_fp16 and a Cast produces <name>.
    For the graph input the Cast goes the other way (float32 in, float16 inside)."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    types = elem_types(model)
    casts_in, casts_out = [], []
    for name in names:
        if types.get(name) != TensorProto.FLOAT16 or name in inits:
            continue
        inner = name + "_fp16"
        for n in g.node:
            for i, x in enumerate(n.input):
                if x == name:
                    n.input[i] = inner
            for i, x in enumerate(n.output):
                if x == name:
                    n.output[i] = inner
        for v in g.value_info:
            if v.name == name:
                v.name = inner
        is_input = any(v.name == name for v in g.input)
        for v in list(g.input) + list(g.output):
            if v.name == name:
                v.type.tensor_type.elem_type = TensorProto.FLOAT
        if is_input:
            casts_in.append(helper.make_node("Cast", [name], [inner], name=name + "_to_fp16", to=TensorProto.FLOAT16))
        else:
            casts_out.append(helper.make_node("Cast", [inner], [name], name=name + "_to_fp32", to=TensorProto.FLOAT))
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    return model


def make_fp16(src_model, layers):
    """Convert src_model to float16 (onnxconverter-common) with float32 image input,
    graph outputs and feature layers; return the ModelProto and its description."""
    import warnings

    import onnxconverter_common
    from onnxconverter_common import float16

    # keep_io_types=True is not used: onnxconverter-common 1.16 then leaves internal
    # consumers of a graph output reading the float32 cast (MobileNetV2's
    # block_6_expand_relu feeds block_6_pad), which ONNX Runtime rejects. The float32
    # boundary is added afterwards instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number ... will be truncated to 1e-07"
        m16 = float16.convert_float_to_float16(src_model, keep_io_types=False)
    names = [v.name for v in m16.graph.input] + [v.name for v in m16.graph.output] + list(layers)
    m16 = to_float32_boundary(m16, list(dict.fromkeys(names)))
    how = {
        "dtype": "fp16",
        "method": ("onnxconverter-common %s convert_float_to_float16 (weights and activations float16; "
                   "weights clamped to |w| in [1e-7, 1e4]), float32 input and layers via Cast nodes"
                   % onnxconverter_common.__version__),
    }
    return m16, how


def write_atomic_bytes(path, data):
    """Write data to path through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert(src_path, out_dir, variants, args):
    """Build, check and write the requested variants; return {variant: (onnx path,
    sidecar dict)}. Nothing is written unless every requested variant passes."""
    sc = read_sidecar(src_path)
    layers = sc["layers"]
    src_model = onnx.load(src_path)
    input_name = graph_input_name(src_model)
    check_layers(src_model, layers, src_path)
    files = list_images(args.calib) if args.calib else []
    if "int8" in variants and not files:
        raise ConversionError("int8 needs --calib, a folder of good training images")
    calib, check = split_images(files, args.calib_count, args.check_images) if files else ([], [])
    check_x = [preprocess(f, sc["input_size"], sc["mean"], sc["std"]) for f in check]
    if not check_x:  # no image folder (fp16 only): a fixed pseudo-random image
        rng = np.random.default_rng(0)
        check_x = [rng.standard_normal((3, sc["input_size"], sc["input_size"])).astype(np.float32)]
    ref = run_layers(session(src_model, layers), input_name, check_x)
    stem = os.path.splitext(os.path.basename(src_path))[0]
    built = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quantize-") as work:
        for v in variants:
            what = "%s variant of %s" % (v, src_path)
            if v == "int8":
                model, how = make_int8(src_path, work, calib, sc, args)
            else:
                model, how = make_fp16(src_model, layers)
            check_layers(model, layers, what)
            try:
                sess = session(model, layers)
            except Exception as e:  # ONNX Runtime refusing the graph (e.g. a missing kernel)
                raise ConversionError("%s: ONNX Runtime %s (CPU) cannot run it: %s" % (what, ort.__version__, e)) from None
            errs = layer_errors(ref, run_layers(sess, input_name, check_x), layers, sc.get("layer_shapes") or {}, what)
            worst = max(e["rel_l2_max"] for e in errs.values())
            if worst > args.max_rel_error:
                raise ConversionError("%s: a layer's relative L2 error is %.4f > --max-rel-error %.4f (%s)"
                                      % (what, worst, args.max_rel_error, errs))
            how["check_images"] = len(check) if check else 0
            how["layer_rel_l2"] = errs
            how["derived_from"] = {"model": os.path.basename(src_path), "model_sha256": sha256_file(src_path)}
            built[v] = (model.SerializeToString(), how)
    out = {}
    for v, (data, how) in built.items():
        path = os.path.join(out_dir, "%s_%s.onnx" % (stem, v))
        write_atomic_bytes(path, data)
        side = dict(sc)
        side["model"] = os.path.basename(path)
        side["model_sha256"] = sha256_file(path)
        side["precision"] = how
        write_atomic_bytes(sidecar_path(path), (json.dumps(side, indent=2) + "\n").encode())
        out[v] = (path, side)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("model", help="ONNX backbone with its .json sidecar")
    parser.add_argument("--variants", default="int8,fp16", help="comma-separated: int8, fp16 (default: both)")
    parser.add_argument("--calib", help=("folder of good training images: int8 calibration, and the check images "
                                         "(without it, fp16 is checked on one pseudo-random image)"))
    parser.add_argument("--calib-count", type=int, default=32, help="calibration images, spread over the folder (default 32)")
    parser.add_argument("--check-images", type=int, default=4,
                        help="other images of the folder on which each layer is compared with float32 (default 4)")
    parser.add_argument("--calibration", choices=CALIBRATION_METHODS, default="minmax",
                        help="activation range estimate (default minmax)")
    parser.add_argument("--activations", choices=("uint8", "int8"), default="uint8",
                        help=("activation type (default uint8: on x86 CPUs ONNX Runtime then fuses every Conv and Add "
                              "into QLinearConv/QLinearAdd; with int8 it leaves a third of the Convs and every Add "
                              "in float32 between Quantize/Dequantize pairs, which is slower)"))
    parser.add_argument("--reduce-range", action="store_true",
                        help="7-bit weights, for x86 CPUs without VNNI where 8-bit U8S8 products can saturate")
    parser.add_argument("--max-rel-error", type=float, default=0.25,
                        help="fail when a layer's relative L2 error on a check image exceeds this (default 0.25)")
    parser.add_argument("--out-dir", help="output folder (default: the model's folder)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ("int8", "fp16")]
    if bad or not variants or len(set(variants)) != len(variants):
        parser.error("--variants takes distinct names among int8, fp16, got %r" % args.variants)
    if args.calib_count <= 0 or args.check_images <= 0:
        parser.error("--calib-count and --check-images must be positive")
    if not args.max_rel_error > 0:
        parser.error("--max-rel-error must be positive")
    if not os.path.isfile(args.model):
        parser.error("no such file: %s" % args.model)
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.model))
    os.makedirs(out_dir, exist_ok=True)
    try:
        written = convert(args.model, out_dir, variants, args)
    except ConversionError as e:
        print("quantize_backbone: error: %s" % e, file=sys.stderr)
        return 1
    for v, (path, side) in written.items():
        errs = ", ".join("%s %.4f (max %.4f)" % (l, e["rel_l2_mean"], e["rel_l2_max"])
                         for l, e in side["precision"]["layer_rel_l2"].items())
        print("wrote %s and %s; relative L2 error vs float32: %s" % (path, sidecar_path(path), errs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
