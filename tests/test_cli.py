"""The `utjima` console script: `python -m utjima`, every subcommand's help, choices listed
on a bad value, user errors as one line with exit code 2."""

import argparse
import subprocess
import sys

import pytest

from utjima import __version__
from utjima.cli import build_parser, main

SUBCOMMANDS = ["predict", "export", "train", "finetune", "evaluate", "data", "serve"]


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


@pytest.mark.parametrize("argv, valid", [
    (["dance"], SUBCOMMANDS),
    (["predict", "x.jpg", "--detector", "tiny"], ["auto", "short", "full"]),
    (["evaluate", "--data", "genki4k", "--out", "o", "--threshold-rule", "median"],
     ["youden", "best_f1"]),
    (["data", "unpack"], ["prepare", "status"]),
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
    assert main(["train", "--preset", "nope", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("utjima train: error: unknown preset 'nope'; valid: ")
    assert "face64" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert main(["train", "--out", str(tmp_path / "run"), "--set", "colour=red"]) == 2
    assert "unknown TrainConfig field 'colour'" in capsys.readouterr().err
    assert main(["evaluate", "--data", "mnist", "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "unknown data spec 'mnist'; valid: smilesmiled[:train|val|test|all]" in err


def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    cases = [
        (["predict", str(tmp_path / "missing.jpg")], "utjima predict: error: no such file: "),
        (["predict", "--model", str(tmp_path), str(tmp_path)], "utjima predict: error: "),
        (["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m")],
         "utjima export: error: checkpoint "),
        (["finetune", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "r")],
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
