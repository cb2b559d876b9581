"""Write a fake-camera .y4m for Chromium: a neutral face, then a smiling face.

Faces come from SMILEsmileD's test split (picked by label; the research archive is read from
$UTJIMA_DATASETS or ../shared/datasets and unpacked into $UTJIMA_CACHE or ~/.cache/utjima),
or the astronaut fixture with --astronaut. Each face is upscaled to --face-px on a plain
640x480 background with slight motion; the neutral one sits left of centre, the smiling one
right of it.

    .venv/bin/python -m tools.make_fake_camera /tmp/cam.y4m --seconds 2
    chromium --use-fake-device-for-media-stream --use-fake-ui-for-media-stream \\
             --use-file-for-fake-video-capture=/tmp/cam.y4m ...

The importable part (write_y4m, compose, smile_clip, ...) is harness/fakecam.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import fakecam


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the .y4m file to write")
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each segment (default 2)")
    ap.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    ap.add_argument("--face-px", type=int, default=fakecam.FACE_PX,
                    help="face crop side in the frame, px")
    ap.add_argument("--astronaut", action="store_true",
                    help="use the astronaut fixture, not SMILEsmileD")
    a = ap.parse_args(argv)
    if a.seconds <= 0 or a.fps < 1:
        ap.error("--seconds must be > 0 and --fps >= 1")
    if a.astronaut:
        faces = fakecam.astronaut_faces()
    else:
        from utjima.data import cache

        try:
            root = cache.prepare("smilesmiled")
        except (cache.DatasetError, OSError) as e:
            print(f"error: SMILEsmileD unavailable ({e}); pass --astronaut", file=sys.stderr)
            return 2
        faces = fakecam.pick_smilesmiled(root)
    n = round(a.seconds * a.fps)
    fakecam.write_y4m(a.out, fakecam.smile_clip(faces, a.seconds, a.fps, a.face_px), fps=a.fps)
    print(f"wrote {a.out}: {2 * n} frames {fakecam.FRAME_W}x{fakecam.FRAME_H} @ {a.fps} fps, "
          f"faces {faces.source} {faces.ids[0]} (neutral) then {faces.ids[1]} (smiling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
