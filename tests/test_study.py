"""The fine-tuning study (utjima.study): folds never leak a participant, arms are points on
one run's curve, exact McNemar values, a bootstrap that resamples participants, resume that
skips finished runs, bad inputs refused before work; and a small real study on clips in
the capture format (whole camera frames cropped through the face path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import fakecam
from utjima.cli import main
from utjima.data import clips as clipfmt
from utjima.metrics import bootstrap_ci, cluster_resamples, mcnemar_exact
from utjima.study import (
    QUICK,
    StudyClip,
    StudyConfig,
    StudyError,
    Task,
    _ckplus_timeline,
    early_stop_epoch,
    inner_split,
    judge_base,
    judge_clip,
    make_plan,
    outer_folds,
    paired_comparison,
    picks,
    study,
    tasks,
    val_loss_vs_test,
)


def _clip(cid: str, subject: str, label: int, n: int = 6) -> StudyClip:
    """A study clip with no real pixels (for planning and statistics)."""
    smile = np.full(n, label, np.int8)
    smile[0] = 0
    return StudyClip(cid, subject, label, np.zeros((n, 8, 8, 3), np.uint8), np.arange(n),
                     np.arange(n) * 100.0, smile, np.full(n, -1, np.int8), np.ones(n, bool),
                     100.0 if label else None, np.ones(n, bool))


def _clips(n_subjects: int, smiling: int) -> list[StudyClip]:
    out = []
    for k in range(n_subjects):
        s = f"p{k:02d}"
        out.append(_clip(f"{s}-rest", s, 0))
        out.append(_clip(f"{s}-talk", s, 0))
        if k < smiling:
            out.append(_clip(f"{s}-laugh", s, 1))
    return out


# --- exact McNemar ---------------------------------------------------------------------

@pytest.mark.parametrize("b, c, p", [
    (0, 0, 1.0),                       # no disagreement
    (1, 0, 1.0),
    (0, 5, 2 / 32),                    # 0.0625: five clips all one way is not enough
    (0, 6, 2 / 64),                    # 0.03125: six all one way is
    (1, 7, 2 * (1 + 8) / 256),         # 0.0703: the seed's 6-clip gain with one clip lost
    (2, 8, 2 * (1 + 10 + 45) / 1024),  # 0.109
    (5, 5, 1.0),                       # capped at 1
    (12, 3, 2 * (1 + 15 + 105 + 455) / 2**15),
])
def test_mcnemar_exact_on_hand_made_tables(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)
    assert mcnemar_exact(c, b) == pytest.approx(p, rel=1e-12)  # two-sided: symmetric


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 3)


# --- the bootstrap resamples participants, not clips ---------------------------------------

def test_cluster_resamples_draw_whole_participants():
    w = cluster_resamples(7, 500, seed=3)
    assert w.shape == (500, 7) and (w.sum(1) == 7).all()
    assert (w == np.round(w)).all() and w.min() >= 0
    assert np.array_equal(w, cluster_resamples(7, 500, seed=3))  # seeded


def test_paired_bootstrap_resamples_participants():
    """All of the arm's gain comes from one participant's 4 clips (of 20, 5 participants):
    resampling clips would call it certain; resampling participants leaves that person out
    in a third of the resamples, so the interval reaches 0."""
    groups = np.repeat([f"p{k}" for k in range(5)], 4)
    y = np.tile([True, False, True, False], 5)
    base = np.array([y.copy()])
    base[0, :4] = ~y[:4]                       # the baseline gets p0 wrong, everyone else right
    arm = np.array([y.copy()])                 # the arm gets everything right
    r = paired_comparison(y, base, arm, groups, sorted(set(groups)), n_boot=2000)
    assert r["delta_accuracy"] == pytest.approx(0.2)
    assert r["mcnemar"] == [{"baseline_only_right": 0, "arm_only_right": 4, "p": 0.125}]
    assert r["ci95"][0] == 0.0 and r["ci95"][1] > 0.3
    diff = (arm[0] == y).astype(float) - (base[0] == y).astype(float)
    clip_lo, _ = bootstrap_ci(lambda d: float(d.mean()), (diff,), 2000)
    assert clip_lo > 0  # the clip bootstrap's false certainty the study avoids


def test_paired_comparison_pairs_each_seed_with_the_same_clips():
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    y = np.array([1, 0, 1, 0, 1, 0], bool)
    base = np.array([[1, 1, 1, 0, 0, 0]], bool)          # one baseline (no seed)
    arm = np.array([[1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0]], bool)  # two seeds
    r = paired_comparison(y, base, arm, groups, ["a", "b", "c"], n_boot=200)
    assert [t["arm_only_right"] for t in r["mcnemar"]] == [2, 0]
    assert r["per_seed_delta"] == pytest.approx([2 / 6, 0.0])
    assert r["p_max"] == 1.0


# --- folds and inner splits never leak a participant ---------------------------------------

@pytest.mark.parametrize("n_subjects, smiling, k", [(10, 8, 5), (7, 3, 3), (4, 4, 2), (2, 1, 2)])
def test_folds_never_leak_a_participant(n_subjects, smiling, k):
    clips = _clips(n_subjects, smiling)
    cfg = StudyConfig(data="clips:x", folds=k, seeds=(0, 1, 2))
    plan = make_plan(_Data(clips), cfg)
    subjects = {c.subject for c in clips}
    seen = []
    for f in plan["folds"]:
        test = set(f["test_subjects"])
        seen += f["test_subjects"]
        assert test.isdisjoint(f["train_subjects"]) and test | set(f["train_subjects"]) == subjects
        assert {c.subject for c in clips if c.id in f["test"]} == test
        assert sorted(f["test"]) == sorted(c.id for c in clips if c.subject in test)
        for inner in f["inner"].values():
            assert set(inner["train"]) | set(inner["val"]) == {
                c.id for c in clips if c.subject not in test}
            assert not set(inner["train"]) & set(inner["val"])
            if inner["by"] == "participant":
                val_subjects = {c.subject for c in clips if c.id in inner["val"]}
                train_subjects = {c.subject for c in clips if c.id in inner["train"]}
                assert val_subjects.isdisjoint(train_subjects) and train_subjects
                assert val_subjects <= set(f["train_subjects"])
            else:  # one participant to train on: a share of their clips
                assert len(f["train_subjects"]) == 1
    assert sorted(seen) == sorted(subjects)  # every participant in exactly one test fold
    if smiling >= k:  # stratified: every fold has a smile to test on
        assert all(any(c.label for c in clips if c.id in f["test"]) for f in plan["folds"])
    assert make_plan(_Data(clips), cfg) == plan  # deterministic


def test_inner_split_is_9_to_1_by_participant_and_keeps_smiles_to_choose_on():
    clips = _clips(20, 12)
    splits = [inner_split(clips, 0.1, seed, fold=1) for seed in range(6)]
    for s in splits:
        assert s["by"] == "participant" and len(s["val_subjects"]) == 2  # 10 % of 20
        assert any(c.label for c in clips if c.id in s["val"])
    assert len({tuple(s["val_subjects"]) for s in splits}) > 1  # the seed draws the split


def test_too_few_participants_for_k_folds_is_one_clear_error():
    with pytest.raises(StudyError, match="5 folds need at least 5 participants; the data has 3"):
        outer_folds(_clips(3, 2), 5)


class _Data:
    def __init__(self, clips):
        self.clips, self.spec = clips, "clips:x"

    def fingerprint(self):
        return "x"


# --- arms are points on one run's curve ---------------------------------------------------

def test_early_stopping_keeps_the_best_epoch_before_patience_runs_out():
    assert early_stop_epoch([1.0, 0.8, 0.7, 0.75, 0.9, 0.95, 0.5], patience=3) == 2
    assert early_stop_epoch([1.0, 0.8, 0.7, 0.75, 0.9, 0.95, 0.5], patience=5) == 6
    assert early_stop_epoch([0.5, 0.6, 0.7], patience=2) == 0  # epoch 0: the start model
    assert early_stop_epoch([0.5, 0.5, 0.4], patience=5) == 2


def test_arms_read_off_one_curve():
    cfg = StudyConfig(data="clips:x", folds=2, seeds=(0, 1), epochs=(2, 3), patience=1,
                      freeze_epochs=2)
    # one full run per fold and seed, whatever the number of epoch arms
    full = [t for t in tasks(cfg) if t.kind == "full"]
    assert sorted((t.fold, t.seed) for t in full) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert len(tasks(cfg)) == 2 * len(full)

    def rec(e, val_loss, seed):
        return {"val_loss": val_loss, "threshold": 0.1 * e + 0.01 * seed,
                "test": {"c1": [e + seed / 10, 0.0]}}
    losses = [0.9, 0.8, 0.85, 0.7]  # epochs 0..3; patience 1 stops after epoch 2: best 1
    records = {}
    for k in (1, 2):
        for s in (0, 1):
            records[(k, s, "full")] = [rec(e, v, s) for e, v in enumerate(losses)]
            records[(k, s, "frozen")] = [rec(e, 1.0, s) for e in range(3)]
    p2 = picks("epochs_2", cfg, records, 1)
    assert p2[1].epoch == 2 and p2[1].threshold == pytest.approx(0.21)
    assert p2[1].probs["c1"][0] == pytest.approx(2.1)
    assert picks("epochs_3", cfg, records, 0)[2].epoch == 3
    assert picks("early_stop", cfg, records, 0)[1].epoch == 1
    assert picks("frozen", cfg, records, 0)[1].epoch == 2
    base = picks("baseline", cfg, records, 0)[1]
    assert base.epoch == 0 and base.threshold == pytest.approx(0.467, abs=1e-3)  # model.json's
    assert picks("baseline_rethreshold", cfg, records, 1)[1].threshold == pytest.approx(0.01)
    ens = picks("ensemble", cfg, records, "all")[1]  # the fold's seeds, early stopping each
    assert ens.probs["c1"][0] == pytest.approx((1.0 + 1.1) / 2)
    assert ens.threshold == pytest.approx((0.1 + 0.11) / 2)


def test_val_loss_vs_held_out_leaves_runs_at_the_ceiling_apart():
    """A fold whose held-out AUC is 1.0 at every epoch says nothing about "val loss down ==
    test up": no correlation, no best epoch (argmax would call epoch 0 the best)."""
    moving = {"val_loss": [0.5, 0.4, 0.3, 0.35], "test_auc": [0.80, 0.85, 0.90, 0.88],
              "test_clip_accuracy": [0.5, 0.6, 0.7, 0.6]}
    flat = {"val_loss": [0.5, 0.2, 0.1, 0.05], "test_auc": [1.0, 1.0, 1.0, 1.0],
            "test_clip_accuracy": [0.9, 0.9, 1.0, 1.0]}
    v = val_loss_vs_test({"full": {"runs": {"fold1-seed0": moving, "fold2-seed0": flat}}})
    assert v["runs"] == 2 and v["runs_test_auc_constant"] == 1
    assert v["spearman_val_loss_test_auc_median"] == pytest.approx(-1.0)  # the flat run: none
    assert v["epoch_min_val_loss_minus_epoch_best_test_auc_median"] == 0  # moving: 2 - 2
    assert v["share_val_down_test_auc_down_median"] == 0.0
    assert v["spearman_val_loss_test_clip_accuracy_median"] < 0


# --- the unit of evaluation -------------------------------------------------------------

def test_a_ckplus_clip_is_played_as_the_webcam_rendering_plays_it():
    from utjima.data import ckplus

    n = 12
    clip = clipfmt.Clip("S1_001", np.zeros((n, 8, 8, 3), np.uint8), np.arange(n) * 1000 / 30,
                        *ckplus.frame_labels("happy", n), clip_smile=1, subject="S1")
    c = _ckplus_timeline(clip)
    _, apex_ms = ckplus.webcam_video(np.zeros((n, 192, 192), np.uint8))
    assert c.onset_ms == pytest.approx(apex_ms)
    assert c.frame.tolist() == [0] * 30 + list(range(n)) + [n - 1] * 30
    assert c.recorded.sum() == n and (c.smile[~c.recorded] == -1).all()
    assert c.smile[c.recorded].tolist() == clip.smile.tolist()


def test_the_judge_decides_a_clip():
    c = _clip("p-laugh", "p", 1, n=20)
    probs = np.r_[np.zeros(5), np.full(15, 0.9)]   # smiling from 500 ms on, for 1.4 s
    v = judge_clip(c, probs, 0.5, judge_base())
    assert v["laugh"] and v["start_ms"] == 500.0 and v["latency_ms"] == 400.0
    assert not judge_clip(c, np.r_[np.zeros(17), np.full(3, 0.9)], 0.5, judge_base())["laugh"]
    assert not judge_clip(c, probs, 0.95, judge_base())["laugh"]  # the arm's threshold counts


# --- bad inputs: one clear error each, nothing written ------------------------------------

def _run_cli(args, capsys) -> tuple[int, str]:
    code = main(["study", *args])
    return code, capsys.readouterr().err


def test_bad_inputs_are_one_clear_error_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _run_cli(["--data", f"clips:{empty}", "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "no manifest.json" in err
    # a clip without a participant
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    nameless = tmp_path / "nameless"
    clipfmt.write(nameless, [clipfmt.Clip("c1", frames, [0, 100, 200], [0, 0, 1], [-1] * 3,
                                          clip_smile=1)])
    code, err = _run_cli(["--data", f"clips:{nameless}", "--out", str(out)], capsys)
    assert code == 2 and "have no 'subject'" in err
    # two participants, five folds
    two = tmp_path / "two"
    clipfmt.write(two, [clipfmt.Clip(f"{s}-c", frames, [0, 100, 200], [0, 0, 1], [-1] * 3,
                                     clip_smile=1, subject=s) for s in ("p1", "p2")])
    code, err = _run_cli(["--data", f"clips:{two}", "--out", str(out)], capsys)
    assert code == 2 and "5 folds need at least 5 participants; the data has 2" in err
    # a checkpoint that does not load
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 10)
    code, err = _run_cli(["--data", f"clips:{two}", "--folds", "2", "--init", str(garbage),
                          "--out", str(out)], capsys)
    assert code == 2 and "does not load" in err and err.count("\n") == 1
    # not a clip spec; a missing archive or folder
    code, err = _run_cli(["--data", "ferplus:train", "--out", str(out)], capsys)
    assert code == 2 and "needs recorded clips" in err
    code, err = _run_cli(["--data", "selfies:x", "--out", str(out)], capsys)
    assert code == 2 and "unknown data spec" in err and "ckplus" in err
    # flags checked while parsed: usage error, exit 2
    (tmp_path / "file").write_text("x")
    for bad in (["--folds", "1"], ["--epochs", "7,ten"], ["--seeds", ""], ["--jobs", "-1"],
                ["--init", str(tmp_path / "missing.pt")], ["--bootstrap", "5"]):
        with pytest.raises(SystemExit) as e:
            main(["study", "--data", f"clips:{two}", "--out", str(out), *bad])
        assert e.value.code == 2
        assert "error: argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--data", f"clips:{two}", "--out", str(tmp_path / "file")])
    assert "is a file" in capsys.readouterr().err
    # a grid that makes no sense
    with pytest.raises(StudyError, match="epochs must be >= 1"):
        StudyConfig(data=f"clips:{two}", epochs=(0, 10))
    assert not out.exists()


# --- a small real study: capture-format clips, resume ---------------------------------------

def write_capture_clips(folder: Path, participants: int = 3, fps: float = 10.0) -> Path:
    """Clips as the capture page writes them (crop "full", one prompt each, labels from
    segments, capture fields): the fixture's face on a camera frame, per participant a
    neutral, a laughing and a talking clip, each 1.5 s."""
    face = fakecam.astronaut_face()
    n = round(1.5 * fps)
    times = [round(i * 1000 / fps, 1) for i in range(n)]
    entries = []
    for k in range(participants):
        pid = f"p-test{k}"
        for j, (prompt, smile) in enumerate((("neutral", 0), ("laughing", 1), ("talking", 0))):
            cid = f"{pid}-s20250101-0000-ab{k}{j}-{j + 1:02d}-{prompt}"
            frames = [fakecam.compose(face, 160 + 4 * np.sin(i + k), 120 + 3 * j, face_px=110,
                                      size=(320, 240)) for i in range(n)]
            clipfmt.write(folder, [clipfmt.Clip(cid, np.stack(frames), times, [-1] * n,
                                                [-1] * n)], crop="full", ext=".jpg",
                          append=True)
            manifest = json.loads((folder / "manifest.json").read_text())
            e = manifest["clips"][-1]
            e.pop("labels", None)
            e.update(segments=[{"start_ms": 300, "end_ms": 1400, "smile": smile,
                                "face": 1, "prompt": prompt}], default={"smile": None},
                     clip_smile=smile, subject=pid, prompt=prompt,
                     capture={"format": "utjima.capture/1",
                              "protocol": {"id": "seed-5-1", "version": 1, "scale": 0.2}})
            entries.append(e)
            (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.slow
def test_a_small_study_on_capture_clips_and_its_resume(tmp_path):
    clips = write_capture_clips(tmp_path / "clips")
    cfg = StudyConfig(data=f"clips:{clips}", short_captures=True, jobs=1, **QUICK)
    out = tmp_path / "study"
    doc = study(cfg, out, progress=False)
    # the unit and the data
    assert doc["format"] == "utjima.study/1"
    assert doc["data"]["clips"] == 9 and doc["data"]["clips_laughed"] == 3
    assert doc["data"]["participants"] == ["p-test0", "p-test1", "p-test2"]
    # folds: every participant tested once, never trained on in its fold
    tested = [s for f in doc["folds"] for s in f["test_subjects"]]
    assert sorted(tested) == doc["data"]["participants"]
    for f in doc["folds"]:
        assert not set(f["test_subjects"]) & set(f["train_subjects"])
    # every arm, per seed, with intervals; paired comparisons with the baseline
    assert list(doc["arms"]) == ["baseline", "baseline_rethreshold", "epochs_1", "epochs_2",
                                 "early_stop", "frozen", "ensemble"]
    for name, a in doc["arms"].items():
        assert len(a["clip"]["per_seed"]) == (1 if name == "ensemble" else len(cfg.seeds))
        assert 0 <= a["clip"]["accuracy"] <= 1 and a["clip"]["ci95"]["accuracy"] is not None
        if name != "baseline":
            v = a["vs_baseline"]
            assert 0 < v["p_max"] <= 1 and v["ci95"][0] <= v["delta_accuracy"] <= v["ci95"][1]
    # one run per fold, seed and kind; curves from epoch 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "fold1-seed0-frozen", "fold1-seed0-full", "fold2-seed0-frozen", "fold2-seed0-full"]
    assert [r["epoch"] for r in doc["curves"]["full"]["epochs"]] == [0, 1, 2]
    assert not list(out.glob("runs/*/last.pt"))  # deleted once a run is done
    # out-of-fold predictions for the review, one score per recorded frame
    pred = json.loads((out / "predictions.json").read_text())
    assert pred["format"] == "utjima.study-predictions/1" and len(pred["clips"]) == 9
    for c in pred["clips"]:
        assert len(c["frame_scores"]["baseline"]) == c["n_frames"] == 15
        fold = doc["folds"][c["fold"] - 1]
        assert c["subject"] in fold["test_subjects"]
    assert (out / "report.html").is_file()
    # resume: finished runs are skipped, and the numbers do not move
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")}
    again = study(cfg, out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")} == stamps
    assert again["arms"] == doc["arms"] and again["timings"]["runs_this_time"] == []
    # the wall time counts every invocation: the first one's runs are not forgotten
    inv = again["timings"]["invocations"]
    assert [i["runs_done"] for i in inv] == [4, 0]
    assert again["timings"]["wall_s_all_invocations"] == pytest.approx(
        doc["timings"]["total_s"] + again["timings"]["total_s"], abs=0.11)
    # a run lost (no run.json): redone, with the same records (1 thread: deterministic)
    lost = out / "runs" / "fold2-seed0-full"
    before = (lost / "metrics.jsonl").read_text().splitlines()
    (lost / "run.json").unlink()
    (lost / "metrics.jsonl").unlink()
    third = study(cfg, out, progress=False)
    assert third["timings"]["runs_this_time"] == ["fold2-seed0-full"]
    after = (lost / "metrics.jsonl").read_text().splitlines()
    strip = ("epoch_s", "elapsed_s")
    assert [{k: v for k, v in json.loads(x).items() if k not in strip} for x in after] == \
        [{k: v for k, v in json.loads(x).items() if k not in strip} for x in before]
    # a different grid in the same folder: refused, nothing changed
    with pytest.raises(StudyError, match="another config"):
        study(StudyConfig(**{**cfg.__dict__, "lr": 1e-4}), out, progress=False)


def test_shortened_capture_runs_are_left_out_unless_asked(tmp_path):
    from utjima.study import load_data

    clips = write_capture_clips(tmp_path / "clips", participants=2)
    with pytest.raises(StudyError, match="shortened capture run: 6.*--short-captures"):
        load_data(f"clips:{clips}", progress=False)
    data = load_data(f"clips:{clips}", short_captures=True, progress=False)
    assert len(data.clips) == 6 and all(c.crops.shape[1:] == (128, 128, 3) for c in data.clips)
    assert all(c.face.all() for c in data.clips)  # the face path found the face in every frame


def test_task_names_are_stable():
    assert Task(3, 1, "full").name == "fold3-seed1-full"
