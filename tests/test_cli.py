"""The `utjima` console script: `python -m utjima`, every subcommand's help with its defaults,
choices listed on a bad value, every value checked before work starts, user errors as one
line with exit code 2, clean pipes and quiet decoders."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utjima import __version__
from utjima.cli import build_parser, main, parse_set
from utjima.utils import UtjimaError

FIXTURES = Path(__file__).parent / "fixtures"
SUBCOMMANDS = ["predict", "export", "train", "finetune", "evaluate", "study", "data",
               "serve", "review"]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_python_m_utjima_lists_every_subcommand_without_loading_torch():
    code = ("import sys\nfrom utjima.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "EXIT 0" in out.stdout and "TORCH False" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "utjima", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: utjima")
    for name in SUBCOMMANDS:
        assert f"    {name}" in out.stdout, name
    out = subprocess.run([sys.executable, "-m", "utjima", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"utjima {__version__}"


def test_the_parser_has_exactly_these_subcommands():
    assert sorted(_subparsers()) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: utjima {name}")


def test_every_flag_has_help():
    for name, p in _subparsers().items():
        for action in p._actions:
            assert action.help, f"utjima {name}: {action.option_strings or action.dest} has no help"


def _option_blocks(help_text: str) -> dict[str, str]:
    """--flag -> its help text, from a rendered --help."""
    blocks, cur = {}, None
    for line in help_text.splitlines():
        stripped = line.strip()
        if line.startswith("  -"):
            cur = stripped.split()[0].rstrip(",")
            blocks[cur] = stripped
        elif cur and line.startswith("    ") and stripped:
            blocks[cur] += " " + stripped
        else:
            cur = None
    return blocks


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_names_its_defaults(name, capsys):
    """Each flag with a default value shows it; for train/finetune the defaults are the
    TrainConfig's (finetune's recipe), filled in when help is shown."""
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = capsys.readouterr().out
    blocks = _option_blocks(text)
    p = _subparsers()[name]
    for action in p._actions:
        if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
            continue
        block = blocks[action.option_strings[-1]]
        assert "default" in block and str(action.default) in block, (name, block)
    assert not re.search(r"\{\w+(:\w*)?\}", text), "a help template was left unfilled"
    if name in ("train", "finetune"):
        epochs, batch = ("10", "4") if name == "finetune" else ("20", "128")
        assert f"(default: {epochs})" in blocks["--epochs"]
        assert f"(default: {batch})" in blocks["--batch-size"]
        assert f"epochs={epochs}" in text  # the --set field list, with this command's defaults
        assert "label_smoothing=0.0  smile targets" in text and "model.width_mult=" in text
    if name == "train":
        for preset in ("seed", "face64", "lite64"):
            assert preset in blocks["--preset"]
    if name in ("train", "evaluate"):
        assert "ferplus[:train|valid|test]" in blocks["--data"]
        assert "genki4k (test only)" in blocks["--data"]


@pytest.mark.parametrize("argv, valid", [
    (["dance"], SUBCOMMANDS),
    (["predict", "x.jpg", "--detector", "tiny"], ["auto", "short", "full"]),
    (["evaluate", "--data", "genki4k", "--out", "o", "--threshold-rule", "median"],
     ["youden", "best_f1", "youden_laugh_like"]),
    (["data", "unpack"], ["prepare", "status"]),
    (["train", "--out", "o", "--preset", "nope"], ["seed", "face64", "lite64"]),
])
def test_an_unknown_choice_lists_the_valid_ones(argv, valid, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    for v in valid:
        assert repr(v) in err or v in err, (v, err)


def test_unknown_values_checked_by_a_stage_list_the_valid_ones(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "colour=red"]) == 2
    assert "unknown TrainConfig field 'colour'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert main(["evaluate", "--data", "mnist", "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "unknown data spec 'mnist'; valid: smilesmiled[:train|val|test|all]" in err


def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    cases = [
        (["predict", str(tmp_path / "missing.jpg")], "utjima predict: error: no such file: "),
        (["predict", "--model", str(tmp_path), str(tmp_path)], "utjima predict: error: "),
        (["export", str(garbage), "--out", str(tmp_path / "m")],
         f"utjima export: error: {garbage} is not a torch checkpoint"),
        (["finetune", str(garbage), "--out", str(tmp_path / "r")],
         "utjima finetune: error: finetune needs --data"),
        (["serve", "--model", str(tmp_path / "none")], "utjima serve: error: model folder "),
    ]
    for argv, start in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(start) and err.count("\n") == 1, (argv, err)


def test_serve_help_shows_the_game_settings_with_their_defaults(capsys):
    """Issue 10: rounds to win and round length were only UTJIMA_* variables."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--rounds-to-win N round wins that take the match (default 3" in out
    assert "--round-seconds S a round's time limit" in out and "(default 30;" in out
    for flag in ("--tls", "--cert", "--key", "--public-url", "--turn-url", "--turn-secret",
                 "--stun-url", "--relay-only"):
        assert flag in out


def test_serve_flags_become_settings():
    from utjima.cli import build_parser, serve_options
    from utjima.server.settings import Settings

    a = build_parser().parse_args([
        "serve", "--rounds-to-win", "2", "--round-seconds", "45", "--tls", "--public-url",
        "https://play.example.org", "--turn-url", "turn:t:3478", "--turn-secret", "s",
        "--relay-only"])
    s = Settings.from_env({"UTJIMA_ROUND_MS": "20000"}, **serve_options(a))
    assert (s.rounds_to_win, s.round_ms, s.tls) == (2, 45000.0, True)
    assert s.public_url == "https://play.example.org" and s.turn_urls == ("turn:t:3478",)
    assert s.ice_transport_policy == "relay"
    s = Settings.from_env({"UTJIMA_ROUND_MS": "20000"},
                          **serve_options(build_parser().parse_args(["serve"])))
    assert (s.round_ms, s.tls, s.ice_transport_policy) == (20000.0, False, "all")  # env holds


@pytest.mark.parametrize("argv, message", [
    (["predict", "x.jpg", "--threshold", "5"], "argument --threshold: 5 is out of range: give "
                                                "a number in (0, 1)"),
    (["predict", "x.jpg", "--threshold", "nan"], "nan is out of range"),
    (["predict", "x.jpg", "--threshold", "high"], "'high' is not a number in (0, 1)"),
    (["predict", "x.jpg", "--max-faces", "-1"], "argument --max-faces: -1 is out of range: "
                                                 "give an integer >= 1"),
    (["predict", "x.jpg", "--max-faces", "0"], "give an integer >= 1"),
    (["train", "--out", "o", "--epochs", "-1"], "argument --epochs: -1 is out of range"),
    (["train", "--out", "o", "--lr", "0"], "argument --lr: 0 is out of range: give a number > 0"),
    (["evaluate", "--data", "genki4k", "--out", "o", "--bootstrap", "-5"], "--bootstrap: -5"),
    (["export", str(FIXTURES / "astronaut.jpg"), "--out", "o", "--opset", "99"],
     "give an integer in [14, 20]"),
])
def test_values_are_checked_when_the_flags_are_parsed(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "finetune", "evaluate", "export"])
def test_out_being_a_file_is_refused_before_any_work(command, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(b"x")
    argv = {"train": ["train"], "finetune": ["finetune", str(ckpt), "--data", "ferplus"],
            "evaluate": ["evaluate", "--data", "genki4k"], "export": ["export", str(ckpt)]}
    with pytest.raises(SystemExit) as e:
        main([*argv[command], "--out", str(afile)])
    assert e.value.code == 2
    assert f"argument --out: {afile} is a file" in capsys.readouterr().err
    assert afile.read_text() == "keep me"


def test_set_values_are_checked_against_the_config_types(capsys):
    assert parse_set(["epochs=3", "lr=1e-3", "teacher=runs/t.pt", "data=[\"ferplus\"]",
                      "model.width_mult=0.75", "max_steps=null"]) == {
        "epochs": 3, "lr": 1e-3, "teacher": "runs/t.pt", "data": ["ferplus"],
        "model": {"width_mult": 0.75}, "max_steps": None}
    for item, message in [
        ("epochs=abc", 'epochs takes an integer, got "abc"'),
        ("epochs=2.5", "epochs takes an integer, got 2.5"),
        ("epochs=-1", "--set epochs=-1: -1 is out of range: give an integer >= 1"),
        ("lr=NaN", "lr takes a number"),
        ("balance_sources=1", "balance_sources takes true or false"),
        ("data=ferplus", "data takes a JSON list of strings"),
        ("model.img_size=big", "model.img_size takes an integer"),
        ("max_steps=0", "out of range"),
        ("nothing", "--set wants KEY=VALUE"),
    ]:
        with pytest.raises(UtjimaError) as e:
            parse_set([item])
        assert message in str(e.value), (item, str(e.value))


def test_train_refuses_bad_data_and_checkpoints_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not really a pickle")
    for argv, message in [
        (["train", "--out", str(out), "--set", "epochs=abc"], 'epochs takes an integer'),
        (["train", "--out", str(out), "--data", "bogus"], "unknown data spec 'bogus'; valid:"),
        (["train", "--out", str(out), "--data", f"clips:{tmp_path / 'none'}"], "is not a folder"),
        (["finetune", str(garbage), "--data", f"images:{tmp_path}", "--out", str(out)],
         f"{garbage} is not a torch checkpoint"),
        (["train", "--out", str(out), "--set", f"teacher={garbage}"], "is not a torch checkpoint"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert not out.exists(), argv


def test_data_specs_fail_in_under_a_second_listing_the_valid_ones(tmp_path):
    """`--data bogus` after a valid spec: refused before any data is read, best of 3 runs of
    the real console entry (`python -m utjima`) under one second."""
    argv = [sys.executable, "-m", "utjima", "evaluate", "--data", "ferplus:test", "--data",
            "bogus", "--out", str(tmp_path / "rep")]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - t0)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith("utjima evaluate: error: unknown data spec 'bogus'; "
                                     "valid: smilesmiled[:train|val|test|all], "
                                     "ferplus[:train|valid|test], genki4k"), out.stderr
        assert out.stderr.endswith(", clips:DIR, images:DIR\n") and out.stderr.count("\n") == 1
    assert min(times) < 1.0, times
    assert not (tmp_path / "rep").exists()


def test_missing_data_and_test_sets_are_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UTJIMA_DATASETS", str(tmp_path / "archives"))
    monkeypatch.setenv("UTJIMA_CACHE", str(tmp_path / "cache"))
    rep = str(tmp_path / "rep")
    assert main(["evaluate", "--data", "ferplus:test", "--out", rep]) == 2
    assert "dataset 'ferplus' is not available: put ferplus.tar.gz at" in capsys.readouterr().err
    monkeypatch.undo()
    for sel in ("ferplus:test", "smilesmiled:all", "genki4k"):
        assert main(["evaluate", "--data", f"images:{tmp_path}", "--select-threshold",
                     f"smilesmiled:val,{sel}", "--out", rep]) == 2
        assert "never on a test set" in capsys.readouterr().err
    assert not Path(rep).exists()


def _sh(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=180,
                          cwd=cwd)


def test_predict_json_into_head_exits_cleanly(tmp_path):
    for i in range(4):
        shutil.copy(FIXTURES / "astronaut.jpg", tmp_path / f"a{i}.jpg")
    out = _sh(f"set -o pipefail; {sys.executable} -m utjima predict --json {tmp_path} "
              f"2> {tmp_path / 'err.txt'} | head -1", Path.cwd())
    err = (tmp_path / "err.txt").read_text()
    assert out.returncode == 0 and err == "", err
    assert len(out.stdout.splitlines()) == 1 and json.loads(out.stdout)["faces"]


def test_decoders_stay_quiet(tmp_path):
    """A broken video: our one line, none of FFmpeg's ("moov atom not found") before it."""
    (tmp_path / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 200)
    (tmp_path / "cut.jpg").write_bytes((FIXTURES / "astronaut.jpg").read_bytes()[:9000])
    out = subprocess.run([sys.executable, "-m", "utjima", "predict", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith(f"utjima predict: error: {tmp_path / 'broken.mp4'}: ")
    assert lines[1].startswith(f"utjima predict: error: {tmp_path / 'cut.jpg'}: cannot decode")
