"""The `utjima` console script: one command, a subcommand per job.

This is the only module that knows argparse and exit codes, and nothing but `__main__`
imports it. Each handler turns flags into keyword arguments for a stage's plain function
(imported when the handler runs, so `utjima --help` and `utjima serve` never load torch)
and prints what it returns. Stages raise `UtjimaError` subclasses for input a user can fix;
`main` prints them as one line and returns 2. `main(argv)` returns the exit code, so tests
drive the CLI in-process.

Fail fast: every value is checked when the flags are parsed (numbers against their range,
output folders that are files, files that do not exist), and every data spec, model folder
and checkpoint before any work starts; each message lists what is valid. `--help` shows
each flag's default and choices. Output that is piped into `head` ends quietly, and the
video decoder's own log lines are silenced (set OPENCV_FFMPEG_LOGLEVEL to see them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from utjima import __version__
from utjima.utils import UtjimaError


class CLIError(UtjimaError):
    """Flags that do not go together, or a stage's ValueError about a flag's value."""


# --- values checked while the flags are parsed ----------------------------------------

@dataclass(frozen=True)
class Num:
    """An argparse `type`: an int or a finite float within bounds, with a message saying
    which values are valid."""

    kind: type  # int or float
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False  # lo itself excluded
    open_hi: bool = False

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.lo is not None and self.hi is not None:
            return (f"{what} in {'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}"
                    f"{')' if self.open_hi else ']'}")
        if self.lo is not None:
            return f"{what} {'>' if self.open_lo else '>='} {self.lo:g}"
        return what

    def __call__(self, text) -> int | float:
        try:
            v = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self}") from None
        bad = not math.isfinite(v)
        bad |= self.lo is not None and (v < self.lo or (self.open_lo and v == self.lo))
        bad |= self.hi is not None and (v > self.hi or (self.open_hi and v == self.hi))
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {self}")
        return v


PROBABILITY = Num(float, 0, 1, open_lo=True, open_hi=True)
POSITIVE = Num(int, 1)
COUNT = Num(int, 0)


def out_dir(text: str) -> str:
    """An output folder: may not exist yet, must not be a file, must be creatable."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder (it is created "
                                         "when missing)")
    parent = next((a for a in [p, *p.absolute().parents] if a.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot create {text}: {parent} is not a writable "
                                         "folder")
    return text


def existing_file(text: str) -> str:
    if not Path(text).is_file():
        what = "a folder, not a file" if Path(text).is_dir() else "not found"
        raise argparse.ArgumentTypeError(f"{text}: {what}")
    return text


# --- help that shows defaults and (lazily computed) choices ---------------------------

class _Help(argparse.HelpFormatter):
    """Appends "(default: X)" to a flag's help, unless the help already names its default or
    there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if ("default" in text or not action.option_strings or d is None or d is False
                or d == [] or d is argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


class _HelpRaw(_Help):
    """Defaults shown, and the epilog (a field list) printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:  # the description
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


class LazyChoices(Sequence):
    """argparse choices computed when first needed: the preset names live beside the torch
    model, and `utjima --help` must not load torch."""

    def __init__(self, fn: Callable[[], Sequence[str]]):
        self._fn, self._items = fn, None

    def _get(self) -> list[str]:
        if self._items is None:
            self._items = list(self._fn())
        return self._items

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, x) -> bool:
        return x in self._get()


def _preset_names() -> list[str]:
    from utjima.model import PRESETS

    return list(PRESETS)


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser that can finish its help when help is shown: `epilog_fn`
    writes the epilog, `defaults_fn` fills "{field}" in flag help with config defaults (both
    need torch, which only `train --help` should pay for)."""

    def __init__(self, *args, epilog_fn: Callable[[], str] | None = None,
                 defaults_fn: Callable[[], dict] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epilog_fn, self.defaults_fn = epilog_fn, defaults_fn

    def format_help(self) -> str:
        if self.epilog_fn is not None:
            self.epilog = self.epilog_fn()
        if self.defaults_fn is not None:
            d = self.defaults_fn()
            for action in self._actions:
                if action.help and "{" in action.help:
                    action.help = action.help.format_map(d)
        return super().format_help()


def _config_help(cls, prefix: str = "", values: dict | None = None) -> list[str]:
    """`name=default  comment` for each field of a config dataclass (`values` replace the
    defaults), the comments taken from its source (utjima's configs comment every field)."""
    import inspect
    import re
    from dataclasses import MISSING, fields

    comments: dict[str, str] = {}
    last = None
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+): [^#]*?(?:#\s*(.*))?$", line)
        if m and m.group(1) in cls.__dataclass_fields__:
            last = m.group(1)
            comments[last] = m.group(2) or ""
        elif last and re.match(r"\s+#", line):
            comments[last] += " " + line.strip().lstrip("#").strip()
        else:
            last = None
    out = []
    for f in fields(cls):
        d = f.default if f.default is not MISSING else f.default_factory()
        d = (values or {}).get(f.name, d)
        d = list(d) if isinstance(d, tuple) else d
        out.append(f"  {prefix}{f.name}={json.dumps(d)}  {comments.get(f.name, '')}".rstrip())
    return out


def _train_defaults(mode: str) -> dict:
    from dataclasses import asdict

    from utjima.train import FINETUNE_DEFAULTS, TrainConfig

    d = asdict(TrainConfig())
    d.update(FINETUNE_DEFAULTS if mode == "finetune" else {})
    return {**d, "specs": _spec_list(), "data_plus": " + ".join(d["data"])}


def _train_epilog(mode: str) -> str:
    from utjima.model import PRESETS, ModelConfig
    from utjima.train import FINETUNE_DEFAULTS, TrainConfig

    lines = []
    if mode == "train":
        lines.append("presets (--preset; how each differs from the ModelConfig defaults):")
        base = ModelConfig()
        for name, cfg in PRESETS.items():
            diff = {k: v for k, v in vars(cfg).items() if getattr(base, k) != v}
            lines.append(f"  {name:9s} " + ", ".join(f"{k}={v}" for k, v in diff.items()))
        lines.append("")
    else:
        lines += ["finetune changes these TrainConfig defaults (the seed's recipe):",
                  "  " + ", ".join(f"{k}={json.dumps(v)}" for k, v in FINETUNE_DEFAULTS.items()),
                  ""]
    lines.append(f"--set KEY=VALUE (JSON values; TrainConfig fields, {mode}'s defaults):")
    lines += _config_help(TrainConfig, values=FINETUNE_DEFAULTS if mode == "finetune" else None)
    lines += ["", "--set model.KEY=VALUE (ModelConfig fields; a preset sets some of them):"]
    lines += _config_help(ModelConfig, "model.")
    return "\n".join(lines)


def _spec_list() -> str:
    from utjima.data import SPECS, TEST_ONLY

    return ", ".join(f"{n}:DIR" if s is None else
                     f"{n}{' (test only)' if n in TEST_ONLY else f'[:{chr(124).join(s)}]'}"
                     for n, s in SPECS.items())


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", metavar="DIR", default=None,
        help="model folder with model.json (default: the bundled model in utjima/models/)",
    )


# --- handlers: flags -> a stage's function -> printed result -------------------------

def _predict(a: argparse.Namespace) -> int:
    from utjima.predict import (
        MediaError,
        describe,
        find_media,
        judge_config,
        media_kind,
        predict_file,
    )
    from utjima.runtime import SmileModel

    paths = find_media(a.paths)
    model = SmileModel(a.model)
    threshold = a.threshold if a.threshold is not None else model.contract.smile_threshold
    if any(_is_video(media_kind, p) for p in paths):
        judge_config(model, threshold)  # a threshold the judge refuses fails before any file
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


def _is_video(media_kind, path: Path) -> bool:
    try:
        return media_kind(path) == "video"
    except UtjimaError:  # reported when its turn comes
        return False


def _export(a: argparse.Namespace) -> int:
    from utjima.contract import MODEL_JSON
    from utjima.export import export_checkpoint

    data = export_checkpoint(a.checkpoint, a.out, threshold=a.threshold, report=a.report,
                             int8=not a.no_int8, opset=a.opset)
    for role, e in data["files"].items():
        print(f"{role:18s} {e['path']:28s} {e['bytes'] / 1e6:7.3f} MB")
    print(f"parity vs torch (max abs diff): {data['parity_max_abs_diff']}")
    print(f"wrote {Path(a.out) / MODEL_JSON}")
    return 0


def _conforms(v, tp) -> bool:
    """Does a JSON value fit a dataclass field's type (int, float, str, bool, tuple[str, ...],
    dict, X | None)?"""
    import types
    import typing

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(v, t) for t in typing.get_args(tp))
    if tp is type(None):
        return v is None
    if tp is bool:
        return isinstance(v, bool)
    if tp is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if tp is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if tp is str:
        return isinstance(v, str)
    if tp is tuple or origin is tuple:
        inner = [t for t in typing.get_args(tp) if t is not Ellipsis]
        return isinstance(v, list) and all(_conforms(x, inner[0]) for x in v if inner)
    if tp is dict or origin is dict:
        return isinstance(v, dict)
    return True


def _type_name(tp) -> str:
    """A field's type as a user reads it: 'an integer or null', 'a JSON list of strings'."""
    import types
    import typing

    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if tp is tuple or typing.get_origin(tp) is tuple:
        return 'a JSON list of strings, e.g. ["ferplus:train"]'
    if tp is dict or typing.get_origin(tp) is dict:
        return 'a JSON object, e.g. {"width_mult": 0.75}'
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             type(None): "null"}
    return names.get(tp, str(tp))


# --set keys that are also flags take the flag's check
SET_CHECKS: dict[str, Num] = {"epochs": POSITIVE, "batch_size": POSITIVE,
                              "lr": Num(float, 0, open_lo=True), "seed": COUNT,
                              "max_steps": POSITIVE, "limit": POSITIVE, "threads": COUNT}


def parse_set(items: list[str]) -> dict:
    """--set KEY=VALUE (JSON values where they parse): TrainConfig fields or model.<field>,
    each checked against the field's type (and a flag's range where one exists)."""
    import typing

    from utjima.model import ModelConfig
    from utjima.train import TrainConfig

    out: dict = {}
    train_types = typing.get_type_hints(TrainConfig)
    model_types = typing.get_type_hints(ModelConfig)
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq:
            raise CLIError(f"--set wants KEY=VALUE, got {item!r}")
        try:
            val = json.loads(raw)
        except json.JSONDecodeError:
            val = raw
        if key.startswith("model."):
            field, types_ = key[6:], model_types
            if field not in types_:
                raise CLIError(f"unknown model field {field!r}; valid: {list(types_)}")
        elif key in train_types:
            field, types_ = key, train_types
        else:
            raise CLIError(f"unknown TrainConfig field {key!r}; valid: {list(train_types)} "
                           "or model.<field>")
        if not _conforms(val, types_[field]):
            raise CLIError(f"--set {item}: {key} takes {_type_name(types_[field])}, "
                           f"got {json.dumps(val)}")
        if key in SET_CHECKS and val is not None:
            try:
                val = SET_CHECKS[key](val)
            except argparse.ArgumentTypeError as e:
                raise CLIError(f"--set {item}: {e}") from None
        if key.startswith("model."):
            out.setdefault("model", {})[field] = val
        else:
            out[key] = val
    return out


def _train(a: argparse.Namespace) -> int:
    from utjima.data import TEST_ONLY, check_spec
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
        cfg = TrainConfig(**kw)
    except (TypeError, ValueError) as e:
        raise CLIError(str(e)) from e
    # everything is checked before the run folder is made or any data is read
    for spec in (*cfg.data, *cfg.val):
        name, _ = check_spec(spec)
        if name in TEST_ONLY:
            raise CLIError(f"{spec} is a held-out test set: never train or select on it")
    for path in (cfg.init_from, cfg.teacher):
        if path:
            from utjima.model import load_checkpoint

            load_checkpoint(path)
    try:
        result = train(cfg, a.out, resume=a.resume)
    except (FileNotFoundError, ValueError) as e:  # --resume without a run, or a changed config
        raise CLIError(str(e)) from e
    done = {k: result.get(k) for k in ("epoch", "step", "elapsed_s")}
    print(f"done: {json.dumps(done)}; checkpoints in {a.out}/{CKPT_LAST} and {CKPT_BEST}")
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from utjima.evaluate import evaluate, summary_lines

    select = [s for s in (a.select_threshold or "").split(",") if s]
    try:
        report = evaluate(a.data, a.out, model_dir=a.model, checkpoint=a.checkpoint,
                          select_on=select, rule=a.threshold_rule, n_boot=a.bootstrap,
                          limit=a.limit, int8=a.int8, n_errors=a.errors,
                          command=a.command_line)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    thr = report["thresholds"]
    where = thr["selected_on"]
    how = (f"{thr['rule']} on {', '.join(where)}" if isinstance(where, list) else f"from {where}")
    print(f"threshold {thr['selected']:.4f} ({how})")
    for line in summary_lines(report):
        print(line)
    print(f"wrote {Path(a.out) / 'report.json'} and {Path(a.out) / 'report.html'}")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    """'7,10,30' -> (7, 10, 30): integers >= 0 separated by commas (an argparse type)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not integers >= 0 separated by commas")
    return values


def _study(a: argparse.Namespace) -> int:
    from utjima.study import QUICK, StudyConfig, study, summary_lines

    kw: dict = dict(QUICK) if a.quick else {}
    for flag, key in (("folds", "folds"), ("seeds", "seeds"), ("epochs", "epochs"),
                      ("patience", "patience"), ("freeze_epochs", "freeze_epochs"),
                      ("jobs", "jobs"), ("bootstrap", "n_boot"), ("init", "init_from"),
                      ("threshold_rule", "threshold_rule")):
        v = getattr(a, flag)
        if v is not None:
            kw[key] = v
    doc = study(StudyConfig(data=a.data, short_captures=a.short_captures, **kw), a.out,
                command=a.command_line)
    for line in summary_lines(doc):
        print(line)
    print(f"wrote {a.out}/study.json, report.html and predictions.json")
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
        round_ms=None if a.round_seconds is None else a.round_seconds * 1000.0,
        collect_dir=a.collect, collect_token=a.collect_token, predict=a.predict or None,
        node_id=a.node_id, redis_url=a.redis, node_url=a.node_url)


def _serve(a: argparse.Namespace) -> int:
    from utjima.server.main import serve

    serve(**serve_options(a))
    return 0


def _review(a: argparse.Namespace) -> int:
    from utjima.review.main import run

    return run(a.source, port=a.port, model_dir=a.model, reviewer=a.reviewer, oof=a.oof,
               open_browser=not a.no_browser, export_sheets=a.export_sheets,
               print_stats=a.stats)


# --- the parser ----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="utjima", formatter_class=_Help,
        description="웃지마게임 (utjima): on-device smile/laugh judge and "
                    "try-not-to-laugh battles.",
    )
    parser.add_argument("--version", action="version", version=f"utjima {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    def cmd(name: str, fn: Callable[[argparse.Namespace], int], help: str,
            formatter_class=_Help, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=formatter_class,
                           **kwargs)
        p.set_defaults(func=fn)
        return p

    # predict ---------------------------------------------------------------------
    p = cmd("predict", _predict, "detect faces and score smiles in images and videos")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image or video files, or directories to walk "
                        "('-' reads paths from stdin)")
    _add_model_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.add_argument("--threshold", type=PROBABILITY, default=None, metavar="P",
                   help=f"smile decision threshold, {PROBABILITY} "
                        "(default: thresholds.smile from model.json)")
    p.add_argument("--max-faces", type=POSITIVE, default=20, metavar="N",
                   help="at most this many faces per image")
    p.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                   help="face detector: short (selfie range), full (group photos, tiled); "
                        "auto = both merged for images, short for videos (as the browser does)")

    # export ----------------------------------------------------------------------
    p = cmd("export", _export, "export a checkpoint to ONNX files + model.json")
    p.add_argument("checkpoint", type=existing_file,
                   help="training checkpoint (.pt) written by `utjima train`")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="output model folder")
    p.add_argument("--threshold", type=PROBABILITY, default=None, metavar="P",
                   help="smile threshold for model.json "
                        "(default: the one chosen on validation in --report, else 0.5)")
    p.add_argument("--report", type=existing_file, default=None, metavar="JSON",
                   help="an evaluation report.json whose metrics go into model.json")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 encoder")
    p.add_argument("--opset", type=Num(int, 14, 20), default=17, metavar="N",
                   help="ONNX opset, 14 (HardSwish) to 20")

    # train / finetune ---------------------------------------------------------------
    for name, help in (
        ("train", "train a model from scratch (or a preset's pretrained trunk)"),
        ("finetune", "fine-tune a checkpoint with the seed's recipe "
                     "(AdamW, constant learning rate, a tenth of --data held out)"),
    ):
        p = cmd(name, _train, help, formatter_class=_HelpRaw,
                epilog_fn=lambda m=name: _train_epilog(m),
                defaults_fn=lambda m=name: _train_defaults(m))
        p.set_defaults(mode=name)
        if name == "finetune":
            p.add_argument("checkpoint", type=existing_file, help="checkpoint to start from")
            p.add_argument("--freeze-trunk", action="store_true",
                           help="train only the LSTM and heads")
            data_help = "fine-tuning data, repeatable: {specs}"
        else:
            p.add_argument("--preset", default="face64", metavar="NAME",
                           choices=LazyChoices(_preset_names),
                           help="model preset, one of: %(choices)s (listed below)")
            data_help = "training data, repeatable: {specs} (default: {data_plus})"
        p.add_argument("--data", action="append", default=None, metavar="SPEC", help=data_help)
        p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                       help="run folder (checkpoints, metrics.jsonl)")
        p.add_argument("--epochs", type=POSITIVE, default=None, metavar="N",
                       help="passes over the training data (default: {epochs})")
        p.add_argument("--batch-size", type=POSITIVE, default=None, metavar="N",
                       help="clips per step (default: {batch_size})")
        p.add_argument("--lr", type=Num(float, 0, open_lo=True), default=None, metavar="LR",
                       help="peak learning rate, AdamW (default: {lr:g})")
        p.add_argument("--seed", type=COUNT, default=0, metavar="N", help="random seed")
        p.add_argument("--max-steps", type=POSITIVE, default=None, metavar="N",
                       help="stop after this many steps (smoke runs; default: no limit)")
        p.add_argument("--limit", type=POSITIVE, default=None, metavar="N",
                       help="use at most this many samples per source (default: all)")
        p.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
        p.add_argument("--threads", type=COUNT, default=None, metavar="N",
                       help="torch CPU threads (default: {threads}; 0 = all cores)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any TrainConfig field (listed below with defaults), "
                            "e.g. --set label_smoothing=0.1 --set model.width_mult=0.75")

    # evaluate --------------------------------------------------------------------
    p = cmd("evaluate", _evaluate,
            "measure a model on labelled data; write report.json and a self-contained "
            "report.html", defaults_fn=lambda: {"specs": _spec_list()})
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help="evaluation data, repeatable: {specs}")
    _add_model_arg(p)
    p.add_argument("--checkpoint", type=existing_file, default=None, metavar="PT",
                   help="evaluate a torch checkpoint instead of ONNX files")
    p.add_argument("--int8", action="store_true",
                   help="use the int8 encoder (what the browser runs)")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR", help="report folder")
    p.add_argument("--select-threshold", default=None, metavar="SPEC[,SPEC]",
                   help="choose the smile threshold on these validation specs, e.g. "
                        "smilesmiled:val,ferplus:valid; never a test set "
                        "(default: the threshold in model.json)")
    p.add_argument("--threshold-rule", choices=["youden", "best_f1", "youden_laugh_like"],
                   default="youden",
                   help="which validation threshold is used: youden = max TPR - FPR, "
                        "best_f1 = max F1, youden_laugh_like = youden raised until <= 3%% of "
                        "laugh-like faces smile")
    p.add_argument("--bootstrap", type=COUNT, default=1000, metavar="N",
                   help="bootstrap resamples for the 95%% intervals (0: none)")
    p.add_argument("--limit", type=POSITIVE, default=None, metavar="N",
                   help="at most this many samples per source (default: all)")
    p.add_argument("--errors", type=COUNT, default=20, metavar="N",
                   help="worst errors shown as thumbnails (false laughs; half as many misses)")

    # study -----------------------------------------------------------------------
    p = cmd("study", _study,
            "the seed's fine-tuning A/B on clips: subject-grouped K-fold, seeds, arms "
            "0/7/10/30/50 epochs, early stopping, frozen trunk, ensemble (docs/study.md)")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="clips with participant ids: ckplus:all (the CK+ sequences) or "
                        "clips:DIR (docs/clip_format.md)")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="study folder: study.json, report.html, predictions.json, runs/ "
                        "(run again to finish an interrupted study)")
    p.add_argument("--quick", action="store_true",
                   help="the test grid: 2 folds, 1 seed, arms at 1 and 2 epochs")
    p.add_argument("--folds", type=Num(int, 2), default=None, metavar="K",
                   help="subject-grouped folds (default: 5)")
    p.add_argument("--seeds", type=_int_list, default=None, metavar="S,S,..",
                   help="seeds of every arm (default: 0,1,2)")
    p.add_argument("--epochs", type=_int_list, default=None, metavar="E,E,..",
                   help="fixed-epoch arms, read off one run per fold and seed "
                        "(default: 7,10,30,50)")
    p.add_argument("--patience", type=POSITIVE, default=None, metavar="N",
                   help="early stopping: epochs without a lower validation loss (default: 5)")
    p.add_argument("--freeze-epochs", type=POSITIVE, default=None, metavar="N",
                   help="epochs of the frozen-trunk arm (default: 10)")
    p.add_argument("--init", type=existing_file, default=None, metavar="CKPT",
                   help="the start model (default: utjima/models/torch/shipped.pt)")
    p.add_argument("--threshold-rule", choices=["youden", "best_f1"], default=None,
                   help="how inner validation re-chooses the threshold (default: youden)")
    p.add_argument("--bootstrap", type=Num(int, 100), default=None, metavar="N",
                   help="bootstrap resamples of participants (default: 2000)")
    p.add_argument("--jobs", type=COUNT, default=None, metavar="N",
                   help="runs in parallel, one CPU thread each (default: 0 = the CPU cores)")
    p.add_argument("--short-captures", action="store_true",
                   help="keep clips of shortened capture runs (?scale < 1, made by tests)")

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
    col = p.add_argument_group("collecting clips (docs/capture.md)")
    col.add_argument("--collect", default=None, metavar="DIR",
                      help="accept clips recorded on /capture and store them in DIR "
                           "(docs/capture.md); without it uploads are refused")
    col.add_argument("--collect-token", default=None, metavar="TOKEN",
                      help="the token uploads must carry (default: $UTJIMA_COLLECT_TOKEN, "
                           "else a random one, printed in the link to share)")
    clu = p.add_argument_group("several processes behind a proxy (docs/deploy.md)")
    clu.add_argument("--node-id", default=None, metavar="C",
                     help="this process's id in a cluster: one character of the room code "
                          "alphabet (A-Z without I L O, 2-9); its room codes start with it, "
                          "which is how the proxy routes a room (needs --redis; default: one "
                          "process, no cluster; env UTJIMA_NODE_ID)")
    clu.add_argument("--redis", default=None, metavar="URL",
                     help="the cluster's room directory, e.g. redis://127.0.0.1:6379/0 (needs "
                          "--node-id, a PostgreSQL --database-url and pip install "
                          "'utjima[scale]'; env UTJIMA_REDIS_URL)")
    clu.add_argument("--node-url", default=None, metavar="URL",
                     help="how the other processes reach this one (default "
                          "http://HOST:PORT; env UTJIMA_NODE_URL)")
    p.add_argument("--predict", action="store_true",
                   help="also answer POST /api/predict (frames in, faces and smiles out, "
                        "onnxruntime on this machine; off by default: the game never sends "
                        "video to the server)")

    # review ----------------------------------------------------------------------
    p = cmd("review", _review, "check recorded clips on a local page: frames, label spans, "
                               "the model's scores, relabelling with an audit log "
                               "(docs/review.md)")
    p.add_argument("source", metavar="DIR",
                   help="a clip folder (manifest.json; changes go to review.json beside it), "
                        "or a research clip set to look at, read-only: ckplus[:SPLIT]")
    _add_model_arg(p)
    p.add_argument("--reviewer", default=None, metavar="NAME",
                   help="your name in the audit log (else you type it on the page)")
    p.add_argument("--port", type=Num(int, 0, 65535), default=0, metavar="N",
                   help="port on 127.0.0.1 (default: 0 = a free one)")
    p.add_argument("--no-browser", action="store_true",
                   help="print the page's address instead of opening it")
    p.add_argument("--oof", default=None, metavar="PATH",
                   help="out-of-fold per-frame scores to use instead of the model's: a "
                        "`utjima study --out` folder, or utjima.oof/1 JSON (docs/review.md)")
    p.add_argument("--export-sheets", type=out_dir, default=None, metavar="OUT",
                   help="write one contact-sheet PNG per clip into OUT and exit")
    p.add_argument("--stats", action="store_true",
                   help="print the dataset statistics and exit")
    return parser


def _serve_default(name: str):
    """A Settings field's default, for `utjima serve --help` (one source of truth)."""
    from utjima.server.settings import Settings

    return Settings.__dataclass_fields__[name].default


def _quiet_decoders() -> None:
    """OpenCV's FFmpeg backend prints its own log lines ("moov atom not found") before our
    one-line error; silence them unless the user asked for them. Read when cv2 loads, so
    this runs before any stage imports it."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _stdout_gone() -> None:
    """The reader of our stdout went away (`utjima predict --json dir | head -1`): point
    stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout (tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_decoders()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "utjima " + shlex.join(argv)
    try:
        return int(args.func(args) or 0)
    except UtjimaError as e:
        print(f"utjima {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _stdout_gone()
        return 0  # the reader has what it asked for (`| head`), as ripgrep does
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
