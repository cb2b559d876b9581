"""The `utjima` console script: one command, a subcommand per job.

This is the only module that knows argparse and exit codes, and nothing but `__main__`
imports it. Each handler turns flags into keyword arguments for a stage's plain function
(imported when the handler runs, so `utjima --help` and `utjima serve` never load torch)
and prints what it returns. Stages raise `UtjimaError` subclasses for input a user can fix;
`main` prints them as one line and returns 2. `main(argv)` returns the exit code, so tests
drive the CLI in-process.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from utjima import __version__
from utjima.utils import UtjimaError


class CLIError(UtjimaError):
    """Flags that do not go together, or a stage's ValueError about a flag's value."""


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", metavar="DIR", default=None,
        help="model folder with model.json (default: the bundled model in utjima/models/)",
    )


# --- handlers: flags -> a stage's function -> printed result -------------------------

def _predict(a: argparse.Namespace) -> int:
    from utjima.predict import MediaError, describe, find_media, predict_file
    from utjima.runtime import SmileModel

    paths = find_media(a.paths)
    model = SmileModel(a.model)
    threshold = a.threshold if a.threshold is not None else model.contract.smile_threshold
    failed = 0
    for path in paths:
        try:
            result = predict_file(model, path, threshold=threshold, max_faces=a.max_faces,
                                  detector=a.detector)
        except MediaError as e:
            failed += 1
            print(f"utjima predict: error: {path}: {e}", file=sys.stderr)
            continue
        out = json.dumps(result, ensure_ascii=False) if a.json else describe(result, threshold)
        print(out, flush=True)
    return 1 if failed else 0


def _export(a: argparse.Namespace) -> int:
    from pathlib import Path

    from utjima.contract import MODEL_JSON
    from utjima.export import export_checkpoint

    data = export_checkpoint(a.checkpoint, a.out, threshold=a.threshold, report=a.report,
                             int8=not a.no_int8, opset=a.opset)
    for role, e in data["files"].items():
        print(f"{role:18s} {e['path']:28s} {e['bytes'] / 1e6:7.3f} MB")
    print(f"parity vs torch (max abs diff): {data['parity_max_abs_diff']}")
    print(f"wrote {Path(a.out) / MODEL_JSON}")
    return 0


def parse_set(items: list[str]) -> dict:
    """--set KEY=VALUE (JSON values where they parse): TrainConfig fields or model.<field>."""
    from utjima.model import ModelConfig
    from utjima.train import TrainConfig

    out: dict = {}
    valid = TrainConfig.field_names()
    model_fields = list(ModelConfig.__dataclass_fields__)
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq:
            raise CLIError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            val = json.loads(raw)
        except json.JSONDecodeError:
            val = raw
        if key.startswith("model."):
            if key[6:] not in model_fields:
                raise CLIError(f"unknown model field {key[6:]!r}; valid: {model_fields}")
            out.setdefault("model", {})[key[6:]] = val
        elif key in valid:
            out[key] = val
        else:
            raise CLIError(f"unknown TrainConfig field {key!r}; valid: {valid} or model.<field>")
    return out


def _train(a: argparse.Namespace) -> int:
    from utjima.train import CKPT_BEST, CKPT_LAST, FINETUNE_DEFAULTS, TrainConfig, train

    kw: dict = {}
    if a.mode == "finetune":
        kw.update(FINETUNE_DEFAULTS, init_from=a.checkpoint, freeze_trunk=a.freeze_trunk)
        if not a.data:
            raise CLIError("finetune needs --data (e.g. clips:DIR or images:DIR)")
    else:
        kw["preset"] = a.preset
    if a.data:
        kw["data"] = tuple(a.data)
    for name in ("epochs", "batch_size", "lr", "seed", "max_steps", "limit", "threads"):
        v = getattr(a, name, None)
        if v is not None:
            kw[name] = v
    kw.update(parse_set(a.set))
    try:
        result = train(TrainConfig(**kw), a.out, resume=a.resume)
    except (FileNotFoundError, ValueError) as e:  # an unknown preset, --resume without a run
        raise CLIError(str(e)) from e
    done = {k: result.get(k) for k in ("epoch", "step", "elapsed_s")}
    print(f"done: {json.dumps(done)}; checkpoints in {a.out}/{CKPT_LAST} and {CKPT_BEST}")
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from pathlib import Path

    from utjima.evaluate import evaluate, summary_lines

    select = [s for s in (a.select_threshold or "").split(",") if s]
    try:
        report = evaluate(a.data, a.out, model_dir=a.model, checkpoint=a.checkpoint,
                          select_on=select, rule=a.threshold_rule, n_boot=a.bootstrap,
                          limit=a.limit, int8=a.int8)
    except (FileNotFoundError, ValueError) as e:  # a test set to select on, a missing checkpoint
        raise CLIError(str(e)) from e
    thr = report["thresholds"]
    print(f"threshold {thr['selected']:.4f} ({thr.get('rule', '')} on {thr['selected_on']})")
    for line in summary_lines(report):
        print(line)
    print(f"wrote {Path(a.out) / 'report.json'} and report.html")
    return 0


def _data(a: argparse.Namespace) -> int:
    from utjima.data.prepare import prepare_all, status

    if a.action == "status":
        return 0 if status(a.source, a.cache) else 1
    prepare_all(a.source, a.cache)
    return 0


def serve_options(a: argparse.Namespace) -> dict:
    """`utjima serve` flags as keyword arguments of `utjima.server.main.serve` (None = not
    given: the UTJIMA_* variable or the default holds)."""
    return dict(
        host=a.host, port=a.port, model_dir=a.model, data_dir=a.data_dir,
        database_url=a.database_url, tls=a.tls or None, cert_file=a.cert, key_file=a.key,
        public_url=a.public_url, turn_urls=a.turn_url, stun_urls=a.stun_url,
        turn_secret=a.turn_secret, ice_transport_policy="relay" if a.relay_only else None,
        rounds_to_win=a.rounds_to_win,
        round_ms=None if a.round_seconds is None else a.round_seconds * 1000.0)


def _serve(a: argparse.Namespace) -> int:
    from utjima.server.main import serve

    serve(**serve_options(a))
    return 0


# --- the parser ----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="utjima",
        description="웃지마게임 (utjima): on-device smile/laugh judge and "
                    "try-not-to-laugh battles.",
    )
    parser.add_argument("--version", action="version", version=f"utjima {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, fn: Callable[[argparse.Namespace], int],
            help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    # predict ---------------------------------------------------------------------
    p = cmd("predict", _predict, "detect faces and score smiles in images and videos")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image or video files, or directories to walk "
                        "('-' reads paths from stdin)")
    _add_model_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--threshold", type=float, default=None,
                   help="smile decision threshold (default: thresholds.smile from model.json)")
    p.add_argument("--max-faces", type=int, default=20, help="at most this many faces per image")
    p.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                   help="face detector: short (selfie range), full (group photos, tiled); "
                        "auto = both merged for images, short for videos (as the browser does)")

    # export ----------------------------------------------------------------------
    p = cmd("export", _export, "export a checkpoint to ONNX files + model.json")
    p.add_argument("checkpoint", help="training checkpoint (.pt) written by `utjima train`")
    p.add_argument("--out", required=True, metavar="DIR", help="output model folder")
    p.add_argument("--threshold", type=float, default=None,
                   help="smile threshold for model.json "
                        "(default: the one chosen on validation, else 0.5)")
    p.add_argument("--report", default=None, metavar="JSON",
                   help="an evaluation report.json whose metrics go into model.json")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 encoder")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")

    # train / finetune ---------------------------------------------------------------
    for name, help in (
        ("train", "train a model from scratch (or a preset's pretrained trunk)"),
        ("finetune", "fine-tune a checkpoint "
                     "(seed defaults: AdamW lr 5e-5, batch 4, 10 epochs)"),
    ):
        p = cmd(name, _train, help)
        p.set_defaults(mode=name)
        if name == "finetune":
            p.add_argument("checkpoint", help="checkpoint to start from")
            p.add_argument("--freeze-trunk", action="store_true",
                           help="train only the LSTM and heads")
        else:
            p.add_argument("--preset", default="face64",
                           help="model preset (see utjima.model.PRESETS)")
        p.add_argument("--data", action="append", default=None, metavar="SPEC",
                       help="training data, repeatable: smilesmiled, ferplus, clips:DIR, "
                            "images:DIR (default for train: smilesmiled + ferplus)")
        p.add_argument("--out", required=True, metavar="DIR",
                       help="run folder (checkpoints, metrics.jsonl)")
        p.add_argument("--epochs", type=int, default=None, help="passes over the training data")
        p.add_argument("--batch-size", type=int, default=None, help="clips per step")
        p.add_argument("--lr", type=float, default=None, help="peak learning rate (AdamW)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--max-steps", type=int, default=None,
                       help="stop after this many steps (smoke runs)")
        p.add_argument("--limit", type=int, default=None,
                       help="use at most this many samples per source")
        p.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any TrainConfig field, e.g. --set label_smoothing=0.1")

    # evaluate --------------------------------------------------------------------
    p = cmd("evaluate", _evaluate,
            "measure a model on a labelled split and write report.json + plots")
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="evaluation data, repeatable: genki4k, ferplus:test, ferplus:valid, "
                        "smilesmiled:val, smilesmiled:test, images:DIR, clips:DIR")
    _add_model_arg(p)
    p.add_argument("--checkpoint", default=None,
                   help="evaluate a torch checkpoint instead of ONNX files")
    p.add_argument("--int8", action="store_true",
                   help="use the int8 encoder (what the browser runs)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder")
    p.add_argument("--select-threshold", default=None, metavar="SPEC[,SPEC]",
                   help="choose the smile threshold on these validation specs (never a test set)")
    p.add_argument("--threshold-rule", choices=["youden", "best_f1", "youden_laugh_like"],
                   default="youden",
                   help="which validation threshold becomes the selected one (default youden; "
                        "youden_laugh_like: raised until <= 3%% of laugh-like faces smile)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for 95%% intervals")
    p.add_argument("--limit", type=int, default=None, help="at most this many samples per source")

    # data ------------------------------------------------------------------------
    p = cmd("data", _data, "prepare and inspect the research datasets (cached outside the repo)")
    p.add_argument("action", choices=["prepare", "status"],
                   help="prepare: unpack + verify; status: what is where")
    p.add_argument("--source", default=None, metavar="DIR",
                   help="folder with the archives "
                        "(default: $UTJIMA_DATASETS or ../shared/datasets)")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="cache folder (default: $UTJIMA_CACHE or ~/.cache/utjima)")

    # serve -----------------------------------------------------------------------
    p = cmd("serve", _serve, "run the game server (and the live detector demo at /demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    _add_model_arg(p)
    p.add_argument("--data-dir", default=None,
                   help="where the SQLite database lives (default: ./data)")
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL, e.g. postgresql+psycopg://...")
    game = p.add_argument_group("game (defaults for every room)")
    game.add_argument("--rounds-to-win", type=int, default=None, metavar="N",
                      help="round wins that take the match (default "
                           f"{_serve_default('rounds_to_win')}; env UTJIMA_ROUNDS_TO_WIN)")
    game.add_argument("--round-seconds", type=float, default=None, metavar="S",
                      help="a round's time limit; nobody laughed by then = a draw (default "
                           f"{_serve_default('round_ms') / 1000:g}; env UTJIMA_ROUND_MS, in ms)")
    net = p.add_argument_group("playing across devices (docs/deploy.md)")
    net.add_argument("--tls", action="store_true",
                     help="serve HTTPS with a self-signed certificate made on first run and "
                          "kept in the data dir (browsers give other devices' pages the "
                          "camera only over HTTPS)")
    net.add_argument("--cert", default=None, metavar="PEM",
                     help="certificate chain for HTTPS (implies --tls; with --key)")
    net.add_argument("--key", default=None, metavar="PEM", help="the certificate's private key")
    net.add_argument("--public-url", default=None, metavar="URL",
                     help="the address friends open, when a domain or reverse proxy is in "
                          "front (e.g. https://play.example.org): used in invite links")
    net.add_argument("--turn-url", action="append", default=None, metavar="URL",
                     help="TURN server for players behind NATs, repeatable "
                          "(e.g. turn:turn.example.org:3478); needs --turn-secret")
    net.add_argument("--turn-secret", default=None, metavar="SECRET",
                     help="the TURN server's shared secret (coturn static-auth-secret): each "
                          "player gets short-lived credentials; prefer env UTJIMA_TURN_SECRET, "
                          "which other users cannot see in the process list")
    net.add_argument("--stun-url", action="append", default=None, metavar="URL",
                     help="STUN server, repeatable (e.g. stun:turn.example.org:3478)")
    net.add_argument("--relay-only", action="store_true",
                     help="send all video through the TURN server, so players never see "
                          "each other's IP address")
    return parser


def _serve_default(name: str):
    """A Settings field's default, for `utjima serve --help` (one source of truth)."""
    from utjima.server.settings import Settings

    return Settings.__dataclass_fields__[name].default


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UtjimaError as e:
        print(f"utjima {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
