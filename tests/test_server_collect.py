"""Clip collection (utjima/server/collect.py, routes/collect.py): uploads are checked whole
before anything is written, stored per participant in the clip format, and deleted by
their owner; without --collect every route answers 404. Bad uploads (over the limits, a
wrong token, overlapping segments, a clip without frames, path tricks, broken frames) get
one clear error and leave the collection as it was."""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import fake_model_dir

from utjima.data import clips as clipfmt
from utjima.server import collect
from utjima.server.app import create_app
from utjima.server.settings import Settings, SettingsError

TOKEN = "collect-token-for-tests"
PID, SID = "p-test01", "s20250101-1200-ab12"


def _jpeg(value: int, size=(48, 36)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def session(n_frames=(4, 3), prompts=("neutral", "big_smile")) -> tuple[dict, dict[str, bytes]]:
    """(manifest, {name: bytes}) of a small session as the capture page writes it."""
    clips, files = [], {}
    for k, (prompt, n) in enumerate(zip(prompts, n_frames, strict=True)):
        cid = f"{PID}-{SID}-{k + 1:02d}-{prompt}"
        smile = 1 if "smile" in prompt else 0
        clips.append({
            "id": cid, "frames_dir": cid, "times_ms": [i * 100.0 + 3 for i in range(n)],
            "segments": [{"start_ms": 100, "end_ms": n * 100 - 50, "smile": smile,
                          "emotion": "happy" if smile else "neutral", "face": 1,
                          "prompt": prompt}],
            "clip_smile": smile, "subject": PID, "session": SID, "prompt": prompt, "fps": 10,
            "capture": {"format": "utjima.capture/1",
                        "protocol": {"id": "seed-5-1", "version": 1, "scale": 1},
                        "device": {"user_agent": "pytest", "camera": "fake", "width": 640,
                                   "height": 480, "frame_rate": 30},
                        "lighting": "indoor_bright", "notes": "", "lang": "en",
                        "consent": "capture-consent/1", "recorded_at": "2025-01-01T12:00:00Z"},
            "quality": {"face": [1] * n, "face_frac": [0.3] * n, "luma": [120.0] * n,
                        "motion": [None] + [1.5] * (n - 1), "smile_prob": [0.1] * n},
        })
        for i in range(n):
            files[f"{cid}/{i:06d}.jpg"] = _jpeg(40 * k + 10 * i)
    return {"format": "utjima.clips/1", "crop": "full", "clips": clips}, files


def make_zip(manifest: dict | None, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        if manifest is not None:
            z.writestr("manifest.json", json.dumps(manifest))
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


def good_zip() -> bytes:
    return make_zip(*session())


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                    collect_dir=tmp_path / "clips", collect_token=TOKEN,
                    collect_max_upload_bytes=2 * 1024 * 1024)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def post(client, body: bytes, token: str | None = TOKEN, **headers):
    h = {"content-type": "application/zip", **headers}
    if token is not None:
        h["authorization"] = f"Bearer {token}"
    return client.post("/api/collect/uploads", content=body, headers=h)


def stored(settings) -> list[str]:
    """Every file under the collection folder except the lock and the staging area."""
    root = settings.collect_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.name != ".lock" and ".incoming" not in p.parts)


def test_the_format_constant_is_the_clip_format():
    assert collect.FORMAT == clipfmt.FORMAT


def test_an_upload_lands_as_a_clip_folder_that_loads(client, settings):
    r = post(client, good_zip())
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["participant"] == PID and receipt["session"] == SID
    assert receipt["frames"] == 7 and len(receipt["clips"]) == 2
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", receipt["participant_token"])
    root = settings.collect_dir
    assert (root / PID / receipt["clips"][0] / "000003.jpg").is_file()
    cs = clipfmt.load(root)
    assert cs.crop == "full" and [c.id for c in cs.clips] == receipt["clips"]
    neutral, smile = cs.clips
    assert neutral.subject == PID and len(neutral) == 4 and neutral.frames.shape[1:] == (36, 48, 3)
    # [100, n * 100 - 50) ms labelled, the transition margin before it unlabelled
    assert neutral.smile.tolist() == [-1, 0, 0, 0] and smile.smile.tolist() == [-1, 1, 1]
    assert smile.clip_smile == 1 and neutral.clip_smile == 0
    meta = json.loads((root / PID / "participant.json").read_text())
    assert receipt["participant_token"] not in json.dumps(meta)  # only its hash is kept


def test_without_collect_every_route_is_404_and_says_why(settings):
    with TestClient(create_app(replace(settings, collect_dir=None))) as c:
        for r in (c.get("/api/collect"), post(c, good_zip()),
                  c.delete(f"/api/collect/participants/{PID}")):
            assert r.status_code == 404
            assert r.json()["detail"]["code"] == "not_collecting"
            assert "--collect" in r.json()["detail"]["message"]
    assert not settings.collect_dir.exists()


@pytest.mark.parametrize("token, status, code", [(None, 401, "no_token"),
                                                 ("wrong-token-0123456789", 403, "bad_token")])
def test_a_missing_or_wrong_collection_token_is_refused(client, settings, token, status, code):
    r = post(client, good_zip(), token=token)
    assert r.status_code == status and r.json()["detail"]["code"] == code
    assert stored(settings) == []


def test_the_status_route_checks_a_token(client):
    assert client.get("/api/collect").json()["collecting"] is True
    ok = client.get("/api/collect", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.json()["token_ok"] is True
    bad = client.get("/api/collect", headers={"authorization": "Bearer nope-nope-nope-nope"})
    assert bad.status_code == 403


def _mutated(change) -> bytes:
    manifest, files = session()
    manifest = copy.deepcopy(manifest)
    out = change(manifest, files)
    return out if isinstance(out, bytes) else make_zip(manifest, files)


def _overlap(m, f):
    m["clips"][0]["segments"].append({"start_ms": 200, "end_ms": 300, "smile": 1})


def _no_frames(m, f):
    for name in [n for n in f if n.startswith(m["clips"][1]["id"])]:
        del f[name]


def _path_trick(m, f):
    f["../evil.jpg"] = _jpeg(1)


def _absolute(m, f):
    f["/etc/evil.jpg"] = _jpeg(1)


def _broken_frame(m, f):
    name = next(iter(f))
    f[name] = f[name][:200]


def _png_named_jpg(m, f):
    name = next(iter(f))
    buf = io.BytesIO()
    Image.new("RGB", (48, 36)).save(buf, "PNG")
    f[name] = buf.getvalue()


def _gap(m, f):
    del f[f"{m['clips'][0]['id']}/000001.jpg"]


def _times(m, f):
    m["clips"][0]["times_ms"][2] = m["clips"][0]["times_ms"][1]


def _bool_label(m, f):
    m["clips"][0]["segments"][0]["smile"] = True


def _emotion(m, f):
    m["clips"][0]["segments"][0]["emotion"] = "joy"


def _unknown_field(m, f):
    m["clips"][0]["secret"] = 1


def _two_people(m, f):
    m["clips"][1]["subject"] = "p-other"


def _orphan_frames(m, f):
    f[f"{PID}-{SID}-09-laughing/000000.jpg"] = _jpeg(3)


def _not_zip(m, f):
    return b"PK\x03\x04 this is not really a zip"


def _no_manifest(m, f):
    return make_zip(None, f)


def _crop_face(m, f):
    m["crop"] = "face"


@pytest.mark.parametrize("change, status, words", [
    (_overlap, 422, "overlaps"),
    (_no_frames, 422, "has no frames"),
    (_path_trick, 422, "unexpected file '../evil.jpg'"),
    (_absolute, 422, "unexpected file '/etc/evil.jpg'"),
    (_broken_frame, 422, "cannot be decoded"),
    (_png_named_jpg, 422, "is not a JPEG image"),
    (_gap, 422, "is missing"),
    (_times, 422, "strictly increasing"),
    (_bool_label, 422, "segments.0.smile"),
    (_emotion, 422, "emotion"),
    (_unknown_field, 422, "Extra inputs are not permitted"),
    (_two_people, 422, "one participant's session"),
    (_orphan_frames, 422, "belong to no clip"),
    (_not_zip, 400, "not a zip file"),
    (_no_manifest, 422, "no manifest.json"),
    (_crop_face, 422, "crop"),
])
def test_a_bad_upload_gets_one_clear_error_and_nothing_is_written(client, settings, change,
                                                                   status, words):
    assert post(client, good_zip()).status_code == 201  # something already stored
    before = stored(settings)
    manifest_before = (settings.collect_dir / "manifest.json").read_bytes()
    r = post(client, _mutated(change))
    assert r.status_code == status, r.text
    msg = r.json()["detail"]["message"]
    assert words in msg and "Traceback" not in msg
    assert stored(settings) == before
    assert (settings.collect_dir / "manifest.json").read_bytes() == manifest_before
    assert list((settings.collect_dir / ".incoming").iterdir()) == []


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(client, settings):
    r = post(client, b"\0" * (settings.collect_max_upload_bytes + 1))
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_large"
    assert stored(settings) == []


def test_limits_on_frames_and_frame_size(settings):
    limits = replace(collect.Limits.from_settings(settings), max_frames=5)
    with pytest.raises(collect.CollectError, match="at most 5"):
        collect.check_upload(good_zip(), limits)
    limits = replace(collect.Limits.from_settings(settings), max_frame_side=40)
    with pytest.raises(collect.CollectError, match="at most 40 px"):
        collect.check_upload(good_zip(), limits)
    limits = replace(collect.Limits.from_settings(settings), max_frame_bytes=100)
    with pytest.raises(collect.CollectError, match="the limit is 100"):
        collect.check_upload(good_zip(), limits)


def test_a_deflate_bomb_is_refused_by_its_real_size(settings):
    manifest, files = session()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest))
        z.writestr(f"{manifest['clips'][0]['id']}/000000.jpg", b"\0" * (3 * 1024 * 1024))
    with pytest.raises(collect.CollectError, match="limit"):
        collect.check_upload(buf.getvalue(), collect.Limits.from_settings(settings))


def test_a_returning_participant_needs_their_token_and_a_session_lands_once(client, settings):
    first = post(client, good_zip()).json()
    token = first["participant_token"]
    again = post(client, good_zip(), **{"x-participant-token": token})
    assert again.status_code == 409 and again.json()["detail"]["code"] == "already_uploaded"
    m, f = session()
    body = make_zip(*_renamed(m, f, "s20250101-1300-cd34"))
    taken = post(client, body)
    assert taken.status_code == 409 and taken.json()["detail"]["code"] == "participant_taken"
    ok = post(client, body, **{"x-participant-token": token})
    assert ok.status_code == 201 and "participant_token" not in ok.json()
    assert len(clipfmt.load(settings.collect_dir)) == 4


def _renamed(m: dict, f: dict, sid: str) -> tuple[dict, dict]:
    text = json.dumps(m).replace(SID, sid)
    return json.loads(text), {k.replace(SID, sid): v for k, v in f.items()}


def test_delete_my_clips_needs_my_token_and_removes_everything_of_mine(client, settings):
    token = post(client, good_zip()).json()["participant_token"]
    url = f"/api/collect/participants/{PID}"
    assert client.delete(url).status_code == 403
    assert client.delete(url, headers={"x-participant-token": "x" * 32}).status_code == 403
    mine = client.get(url, headers={"x-participant-token": token}).json()
    assert len(mine["clips"]) == 2 and mine["uploads"][0]["frames"] == 7
    r = client.delete(url, headers={"x-participant-token": token})
    assert r.status_code == 200 and r.json()["deleted_clips"] == 2
    assert not (settings.collect_dir / PID).exists()
    assert clipfmt.load(settings.collect_dir).clips == []
    assert client.delete(url, headers={"x-participant-token": token}).status_code == 404
    assert client.delete("/api/collect/participants/..%2F..").status_code == 404


def test_uploads_are_rate_limited_per_address(settings):
    with TestClient(create_app(replace(settings, collect_burst=2))) as c:
        codes = [post(c, b"not a zip").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_the_collection_folder_is_locked_and_must_be_ours(tmp_path):
    a = collect.Collection(tmp_path / "c")
    with pytest.raises(collect.CollectError, match="in use"):
        collect.Collection(tmp_path / "c")
    a.close()
    collect.Collection(tmp_path / "c").close()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "manifest.json").write_text('{"format": "utjima.clips/1", "crop": "face"}')
    with pytest.raises(collect.CollectError, match="not a capture collection"):
        collect.Collection(tmp_path / "d")


def test_a_wrong_collection_token_setting_is_refused(settings):
    with pytest.raises(SettingsError, match="collect_token"):
        replace(settings, collect_token="short")
    env = {"UTJIMA_COLLECT_DIR": "/tmp/x", "UTJIMA_COLLECT_TOKEN": "t" * 20}
    s = Settings.from_env(env)
    assert s.collect_dir == Path("/tmp/x") and s.collect_token == "t" * 20


def test_serve_prints_the_link_to_share(tmp_path, capsys, monkeypatch):
    """`utjima serve --collect` makes a token, prints the capture link, and refuses a
    folder another server collects into, in one line."""
    from utjima.cli import main

    held = collect.Collection(tmp_path / "c")
    rc = main(["serve", "--model", str(fake_model_dir(tmp_path / "m")), "--port", "0",
               "--data-dir", str(tmp_path / "d"), "--collect", str(tmp_path / "c")])
    held.close()
    err = capsys.readouterr().err
    assert rc == 2 and "in use by another" in err and "Traceback" not in err

    import uvicorn

    async def serve_no_requests(self) -> None:  # start up, print, shut down at once
        return None

    monkeypatch.setattr(uvicorn.Server, "main_loop", serve_no_requests)
    rc = main(["serve", "--model", str(fake_model_dir(tmp_path / "m")), "--port", "0",
               "--data-dir", str(tmp_path / "d"), "--collect", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert rc == 0 and "/capture#token=" in out and str(tmp_path / "c") in out
