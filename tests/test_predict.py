"""`utjima predict` and the onnxruntime pipeline behind it, on real photos and videos."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from utjima.cli import main
from utjima.contract import load_contract

FIXTURES = Path(__file__).parent / "fixtures"


def run(capsys, *argv):
    code = main(["predict", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def face_frame(face_rgb: np.ndarray, side: int = 200, size=(640, 480), dx: int = 0) -> np.ndarray:
    """A dataset face crop scaled to `side` px at the centre of a plain frame."""
    w, h = size
    frame = np.full((h, w, 3), 90, np.uint8)
    face = cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_CUBIC)
    x0, y0 = (w - side) // 2 + dx, (h - side) // 2
    frame[y0 : y0 + side, x0 : x0 + side] = face
    return frame


def predict_pictures(capsys, tmp_path: Path, pictures_rgb) -> tuple[int, list[list[dict]]]:
    """Save each picture as a PNG, run `utjima predict --json` on them: (exit code, faces per
    picture)."""
    paths = []
    for i, rgb in enumerate(pictures_rgb):
        paths.append(tmp_path / f"picture{i}.png")
        cv2.imwrite(str(paths[-1]), np.ascontiguousarray(rgb[:, :, ::-1]))
    code, out, _ = run(capsys, *map(str, paths), "--json")
    return code, [json.loads(line)["faces"] for line in out.splitlines()]


def write_video(path: Path, frames, fps: float = 15.0) -> None:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(np.ascontiguousarray(f[:, :, ::-1]))
    vw.release()


@pytest.fixture(scope="module")
def smile_faces(dataset_cache):
    """Clearly neutral and clearly smiling FER+ test faces (>= 8 of 10 votes), RGB, among
    those BlazeFace finds on their own (not every tight 48 px FER crop is findable; these
    tests are about what happens after detection)."""
    from utjima.data import ferplus
    from utjima.faces import FaceDetector

    full = FaceDetector(kind="full")

    def findable(face):
        c = np.full((300, 300, 3), 120, np.uint8)
        c[105:195, 105:195] = cv2.resize(face, (90, 90), interpolation=cv2.INTER_CUBIC)
        return any(f.score >= 0.7 for f in full.detect(c))

    fs = ferplus.load(dataset_cache("ferplus"), "test")
    votes = fs.emotion * 10  # soft labels back to vote shares
    rgb = lambda i: np.repeat(fs.images[i][:, :, None], 3, 2)  # noqa: E731
    pick = lambda k: [f for f in map(rgb, np.flatnonzero(votes[:, k] >= 8)[:12])  # noqa: E731
                      if findable(f)][:6]
    neutral, happy = pick(6), pick(3)
    assert len(neutral) == len(happy) == 6
    return neutral, happy


def test_photo_json(capsys):
    code, out, _ = run(capsys, str(FIXTURES / "astronaut.jpg"), "--json")
    assert code == 0
    r = json.loads(out)
    assert r["path"].endswith("astronaut.jpg") and len(r["faces"]) == 1
    f = r["faces"][0]
    x1, y1, x2, y2 = f["box"]
    assert 0 <= x1 < x2 <= r["width"] and 0 <= y1 < y2 <= r["height"]
    assert 0 <= f["smile_prob"] <= 1 and isinstance(f["smiling"], bool)
    assert abs(sum(f["emotion"].values()) - 1) < 1e-3
    assert list(f["emotion"]) == load_contract().classes


def test_no_face_image_and_text_output(capsys, tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    code, out, _ = run(capsys, str(blank), "--json")
    assert code == 0 and json.loads(out)["faces"] == []
    code, out, _ = run(capsys, str(blank))
    assert code == 0 and "no face found" in out


def test_group_photo_finds_every_face(capsys, tmp_path, smile_faces):
    faces = smile_faces[0][:3] + smile_faces[1][:3]
    canvas = np.full((900, 1600, 3), 120, np.uint8)
    for k, face in enumerate(faces):
        x, y = 120 + k * 240, 300 + (k % 2) * 200
        canvas[y : y + 90, x : x + 90] = cv2.resize(face, (90, 90), interpolation=cv2.INTER_CUBIC)
    p = tmp_path / "group.jpg"
    cv2.imwrite(str(p), canvas[:, :, ::-1])
    code, out, _ = run(capsys, str(p), "--json")
    assert code == 0 and len(json.loads(out)["faces"]) == 6


def test_video_json_and_laughs(capsys, tmp_path, smile_faces):
    neutral, happy = smile_faces
    frames = [face_frame(neutral[0], dx=i % 5) for i in range(20)]
    frames += [face_frame(happy[0], dx=i % 5) for i in range(20)]
    frames += [np.full((480, 640, 3), 90, np.uint8)] * 10  # the face leaves
    p = tmp_path / "clip.mp4"
    write_video(p, frames, fps=15)
    code, out, _ = run(capsys, str(p), "--json")
    assert code == 0
    r = json.loads(out)
    assert r["fps"] == 15 and r["n_frames"] == 50 and len(r["frames"]) == 50
    t = [f["t_ms"] for f in r["frames"]]
    assert t[0] == 0 and np.allclose(np.diff(t), 1000 / 15, atol=1.0)
    # a face that left is held through streaming.live.hold_ms of missed detections, then gone
    gone = 40 + int(load_contract().streaming["live"]["hold_ms"] // (1000 / 15)) + 1
    assert gone < 50
    assert all(f["face"] for f in r["frames"][:40])
    assert not any(f["face"] for f in r["frames"][gone:])
    assert all(f["smile_prob"] is None for f in r["frames"][gone:])
    for seg in r["laughs"]:
        assert seg["end_ms"] - seg["start_ms"] >= 0 and 0 <= seg["peak_prob"] <= 1
    if not load_contract().data["provenance"].get("training", "").startswith("none"):
        sp = np.array([f["smile_prob"] for f in r["frames"][:40]])
        assert sp[:15].mean() < sp[25:40].mean()
        assert len(r["laughs"]) == 1 and r["laughs"][0]["start_ms"] >= 20 * 1000 / 15 - 1


def test_video_without_faces(capsys, tmp_path):
    p = tmp_path / "empty.mp4"
    write_video(p, [np.full((120, 160, 3), 30 + i, np.uint8) for i in range(10)], fps=10)
    code, out, _ = run(capsys, str(p))
    assert code == 0 and "face in 0" in out and "no laugh" in out


def test_trained_model_tells_smiling_from_neutral(capsys, tmp_path, smile_faces):
    if load_contract().data["provenance"].get("training", "").startswith("none"):
        pytest.skip("the bundled model is an untrained placeholder")
    neutral, happy = smile_faces
    code, (n, s) = predict_pictures(capsys, tmp_path,
                                    [face_frame(neutral[0]), face_frame(happy[0])])
    assert code == 0 and n[0]["smiling"] is False and s[0]["smiling"] is True


def test_tight_face_crops_are_found_and_judged(capsys, tmp_path, smile_faces):
    """48 px FER+ crops saved as they are: the face fills the picture, where BlazeFace alone
    finds nothing; the photo path retries with the picture in a grey canvas."""
    if load_contract().data["provenance"].get("training", "").startswith("none"):
        pytest.skip("the bundled model is an untrained placeholder")
    neutral, happy = smile_faces
    code, (n, s) = predict_pictures(capsys, tmp_path, [neutral[1], happy[1]])
    assert code == 0 and len(n) == len(s) == 1
    for f in (n[0], s[0]):
        x1, y1, x2, y2 = f["box"]
        # the face is the picture
        assert x2 - x1 > 24 and -12 < x1 < 24 and -12 < y1 < 24 and 24 < x2 < 60
    assert n[0]["smiling"] is False and s[0]["smiling"] is True


def test_directory_walk_and_stdin(capsys, tmp_path, monkeypatch):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    shutil.copy(FIXTURES / "astronaut.jpg", d / "sub" / "a.jpg")
    (d / "notes.txt").write_text("not media")
    code, out, _ = run(capsys, str(d), "--json")
    assert code == 0 and len(out.splitlines()) == 1
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{FIXTURES / 'astronaut.jpg'}\n"))
    code, out, _ = run(capsys, "-", "--json")
    assert code == 0 and len(out.splitlines()) == 1


def test_bad_inputs_fail_with_one_clear_message(capsys, tmp_path, exported_model):
    code, _, err = run(capsys, str(tmp_path / "missing.jpg"))
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg at all")
    code, out, err = run(capsys, str(junk), str(FIXTURES / "astronaut.jpg"))
    assert code == 1 and "cannot decode image" in err
    assert "astronaut" in out  # the good file still ran
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0" * 100)
    code, _, err = run(capsys, str(broken))
    assert code == 1 and "broken.mp4" in err
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    code, _, err = run(capsys, str(odd))
    assert code == 1 and "unknown media type" in err
    bad_model = tmp_path / "model"
    shutil.copytree(exported_model, bad_model)
    (bad_model / "encoder.onnx").write_bytes(b"tampered")
    code, _, err = run(capsys, str(FIXTURES / "astronaut.jpg"), "--model", str(bad_model))
    assert code == 2 and "does not match its model.json" in err
    code, _, err = run(capsys, str(FIXTURES / "astronaut.jpg"), "--model",
                       str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err
