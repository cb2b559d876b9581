"""The `utjima` console script: one command, a subcommand per job.

Arguments are declared here without importing the heavy modules, so `utjima --help`
and `utjima serve` never load torch; each handler imports its module when it runs.
`main(argv)` returns the exit code, so tests drive the CLI in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from utjima import __version__
from utjima.contract import ContractError


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", metavar="DIR", default=None,
        help="model folder with model.json (default: the bundled model in utjima/models/)",
    )


# --- handlers: each imports its module lazily --------------------------------------

def _predict(a: argparse.Namespace) -> int:
    from utjima.predict import run_predict
    return run_predict(a)


def _export(a: argparse.Namespace) -> int:
    from utjima.export import run_export
    return run_export(a)


def _train(a: argparse.Namespace) -> int:
    from utjima.train import run_train
    return run_train(a)


def _evaluate(a: argparse.Namespace) -> int:
    from utjima.evaluate import run_evaluate
    return run_evaluate(a)


def _data(a: argparse.Namespace) -> int:
    from utjima.data.cli import run_data
    return run_data(a)


def _serve(a: argparse.Namespace) -> int:
    from utjima.server.main import run_serve
    return run_serve(a)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="utjima",
        description="웃지마게임 (utjima): on-device smile/laugh judge and try-not-to-laugh battles.",
    )
    parser.add_argument("--version", action="version", version=f"utjima {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    # predict ---------------------------------------------------------------------
    p = cmd("predict", _predict, "detect faces and score smiles in images and videos")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image or video files, or directories to walk ('-' reads paths from stdin)")
    _add_model_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--threshold", type=float, default=None,
                   help="smile decision threshold (default: thresholds.smile from model.json)")
    p.add_argument("--max-faces", type=int, default=20, help="at most this many faces per image")
    p.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                   help="face detector: short (selfie range), full (group photos, tiled); auto = "
                        "both merged for images, short for videos (as the browser does)")

    # export ----------------------------------------------------------------------
    p = cmd("export", _export, "export a checkpoint to ONNX files + model.json")
    p.add_argument("checkpoint", help="training checkpoint (.pt) written by `utjima train`")
    p.add_argument("--out", required=True, metavar="DIR", help="output model folder")
    p.add_argument("--threshold", type=float, default=None,
                   help="smile threshold for model.json (default: the one chosen on validation, else 0.5)")
    p.add_argument("--report", default=None, metavar="JSON",
                   help="an evaluation report.json whose metrics go into model.json")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 encoder")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")

    # train / finetune ---------------------------------------------------------------
    for name, help in (("train", "train a model from scratch (or a preset's pretrained trunk)"),
                       ("finetune", "fine-tune a checkpoint (seed defaults: AdamW lr 5e-5, batch 4, 10 epochs)")):
        p = cmd(name, _train, help)
        p.set_defaults(mode=name)
        if name == "finetune":
            p.add_argument("checkpoint", help="checkpoint to start from")
            p.add_argument("--freeze-trunk", action="store_true", help="train only the LSTM and heads")
        else:
            p.add_argument("--preset", default="face64", help="model preset (see utjima.model.PRESETS)")
        p.add_argument("--data", action="append", default=None, metavar="SPEC",
                       help="training data, repeatable: smilesmiled, ferplus, clips:DIR, images:DIR "
                            "(default for train: smilesmiled + ferplus)")
        p.add_argument("--out", required=True, metavar="DIR", help="run folder (checkpoints, metrics.jsonl)")
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--batch-size", type=int, default=None)
        p.add_argument("--lr", type=float, default=None)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
        p.add_argument("--limit", type=int, default=None, help="use at most this many samples per source")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any TrainConfig field, e.g. --set label_smoothing=0.1")

    # evaluate --------------------------------------------------------------------
    p = cmd("evaluate", _evaluate, "measure a model on a labelled split and write report.json + plots")
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="evaluation data, repeatable: genki4k, ferplus:test, ferplus:valid, "
                        "smilesmiled:val, smilesmiled:test, images:DIR, clips:DIR")
    _add_model_arg(p)
    p.add_argument("--checkpoint", default=None, help="evaluate a torch checkpoint instead of ONNX files")
    p.add_argument("--int8", action="store_true", help="use the int8 encoder (what the browser runs)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--select-threshold", default=None, metavar="SPEC[,SPEC]",
                   help="choose the smile threshold on these validation specs (never a test set)")
    p.add_argument("--threshold-rule", choices=["youden", "best_f1"], default="youden",
                   help="which validation threshold becomes the selected one (default youden)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% intervals")
    p.add_argument("--limit", type=int, default=None, help="at most this many samples per source")

    # data ------------------------------------------------------------------------
    p = cmd("data", _data, "prepare and inspect the research datasets (cached outside the repo)")
    p.add_argument("action", choices=["prepare", "status"], help="prepare: unpack + verify; status: what is where")
    p.add_argument("--source", default=None, metavar="DIR",
                   help="folder with the archives (default: $UTJIMA_DATASETS or ../shared/datasets)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="cache folder (default: $UTJIMA_CACHE or ~/.cache/utjima)")

    # serve -----------------------------------------------------------------------
    p = cmd("serve", _serve, "run the game server (and the live detector demo at /demo)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    _add_model_arg(p)
    p.add_argument("--data-dir", default=None, help="where the SQLite database lives (default: ./data)")
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL, e.g. postgresql+psycopg://...")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ContractError) as e:
        print(f"utjima {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
