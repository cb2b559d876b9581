"""The report kit: one look for every HTML report about a model (`utjima evaluate`, studies).

A report is one self-contained HTML file: the CSS is inline, charts are inline SVG drawn
here (no matplotlib), face thumbnails are base64 PNG. It opens from disk with no network
and prints as it looks. Every block is a function that returns `Html` (escaped markup);
text you pass in is escaped for you. numpy and Pillow only; no torch.

    import numpy as np
    from utjima import report as rk
    from utjima.metrics import binary_report

    page = rk.Page("Fine-tuning study", subtitle="face64 before and after 10 epochs on clips",
                   meta={"model": "runs/ft/best.pt", "data": "clips:recordings/test"})
    before, after = binary_report(y, p0, 0.3), binary_report(y, p1, 0.3)
    page.section("Headline", rk.headline_table([rk.Row("before", before),
                                                rk.Row("after", after, note="fine-tuned")]),
                 intro="95 % bootstrap intervals under each figure.")
    page.section("Curves", rk.curve_panel([rk.Series("before", y, p0, 0.3),
                                           rk.Series("after", y, p1, 0.3)]))
    page.section("Confusion", rk.grid(
        rk.confusion_matrix(before["confusion"], title="before"),
        rk.confusion_matrix(after["confusion"], title="after")))
    page.section("Worst errors", rk.thumbnail_grid(
        [rk.Thumb(crop_u8, "0.97", "clip 12, frame 40", tone="false_laugh")]))
    page.section("Provenance", rk.provenance({"Model": {"checkpoint": "runs/ft/best.pt"},
                                              "Data": {"test": "clips:recordings/test"}}))
    page.write("reports/study/report.html")

Blocks:
- `headline_table(rows)`: one row per model or data set; accuracy, precision, recall, F1
  (percent), AUC and ECE, each with its 95 % interval when the dict has one (`ci95`, as
  `utjima.metrics.binary_report` writes it). `extra` columns go before the metrics.
- `table(header, rows)`: any small table; cells may be `Est` (a value with an interval).
- `confusion_matrix(cm, classes)`: a labelled heat map; each cell shows the row share
  (large) and the count (small); blue = correct, orange = confused; row and column totals.
  A 2x2 dict `{"tn", "fp", "fn", "tp"}` is accepted as is.
- `curve_panel(series)`: ROC, precision-recall and reliability charts side by side, every
  series drawn with its operating point (the threshold) as a ringed dot; or the charts
  alone: `roc_chart`, `pr_chart`, `reliability_chart`.
- `line_chart(lines)`: lines over a numeric x, e.g. learning curves (epochs vs loss).
- `thumbnail_grid(thumbs)`: face crops with a score and a caption; `tone` colours the
  frame ("false_laugh" red, "missed" amber, "ok" green, "" grey). Research images must not
  end up in committed files: such grids carry `class="research"` when `research=True`,
  which is what a screenshot for a README hides.
- `provenance(groups)`: where the model and the data came from, as labelled key/value lists.
- `callout(text)`, `grid(*blocks)` (side by side, wrapping), `titled(title, block)` (a
  block under a caption that lines up with the charts'), `bars(values)` (a labelled bar
  list, e.g. per-class recall).

A PNG of a page (for a README or a review): `python -m tools.report_png report.html --out
DIR [--full-only --public --until "#curves"]` (headless Chromium; --public leaves research
thumbnails out, so the picture may be committed).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from utjima import __version__

# Okabe-Ito: told apart by colour-blind readers too; series take them in order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000")


class Html(str):
    """Markup that is safe to insert as is (built by this module, text already escaped)."""


def esc(x) -> Html:
    return x if isinstance(x, Html) else Html(html.escape(str(x)))


def _join(parts: Iterable) -> Html:
    return Html("".join(esc(p) for p in parts))


# --- numbers -------------------------------------------------------------------------

def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def fmt(v, digits: int = 3, percent: bool = False) -> str:
    """A number for people: fixed digits, never "-0", a dash for None or NaN;
    `percent` shows a 0..1 fraction as 0..100 with one decimal."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)) and not percent:
        return f"{int(v):,}"
    if not _finite(v):
        return "–"
    v = float(v) * (100 if percent else 1)
    s = f"{v:.{1 if percent else digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


@dataclass(frozen=True)
class Est:
    """A value with its 95 % interval (lo, hi); NaN bounds = no interval."""

    value: float
    lo: float = math.nan
    hi: float = math.nan

    @classmethod
    def of(cls, d: Mapping, key: str) -> Est | None:
        """From a metrics dict with `ci95` (utjima.metrics.binary_report): Est(d[key], *ci)."""
        if key not in d:
            return None
        lo, hi = (d.get("ci95") or {}).get(key, (math.nan, math.nan))
        return cls(d[key], lo, hi)


def _is_number(v) -> bool:
    return isinstance(v, (Est, int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _cell(v, percent: bool = False, digits: int = 3) -> Html:
    if isinstance(v, Est):
        ci = ""
        if _finite(v.lo) and _finite(v.hi):
            ci = (f'<span class="ci">{fmt(v.lo, digits, percent)}–'
                  f"{fmt(v.hi, digits, percent)}</span>")
        return Html(f'<td class="num"><b>{fmt(v.value, digits, percent)}</b>{ci}</td>')
    if isinstance(v, Html):
        return Html(f"<td>{v}</td>")
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return Html(f'<td class="num">{fmt(v, digits, percent)}</td>')
    return Html(f"<td>{esc('–' if v is None else v)}</td>")


# --- tables --------------------------------------------------------------------------

def table(header: Sequence, rows: Iterable[Sequence], percent_cols: Sequence[int] = (),
          cls: str = "") -> Html:
    """A plain table. Cells: str (escaped), Html, numbers (formatted), `Est`;
    `percent_cols` (indices) show 0..1 values as percentages."""
    rows = [list(r) for r in rows]
    numeric = [bool(rows) and _is_number(rows[0][i]) for i in range(len(header))]
    head = "".join(f'<th{" class=num" if numeric[i] else ""}>{esc(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(_cell(c, i in percent_cols) for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return Html(f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


@dataclass
class Row:
    """One line of a headline table: a label, a `binary_report` dict, extra cells by column."""

    label: str
    metrics: Mapping
    note: str = ""
    extra: Mapping | None = None


# (key, column title, shown as percent)
BINARY_COLUMNS = (("accuracy", "Accuracy %", True), ("precision", "Precision %", True),
                  ("recall", "Recall %", True), ("f1", "F1 %", True), ("auc", "AUC", False),
                  ("ece", "ECE", False))


def headline_table(rows: Sequence[Row], extra_columns: Sequence[str] = (),
                   columns=BINARY_COLUMNS) -> Html:
    """The headline: per row, n (positives), any `extra_columns` (taken from `row.extra`),
    then each metric with its 95 % interval underneath."""
    head = ["", "n (smiles)", *extra_columns, *(c[1] for c in columns)]
    body = []
    for r in rows:
        m = r.metrics
        label = f"<b>{esc(r.label)}</b>" + (f'<span class="sub">{esc(r.note)}</span>'
                                            if r.note else "")
        n = (f'<td class="num"><b>{fmt(m.get("n"))}</b>'
             f'<span class="ci">{fmt(m.get("n_pos"))}</span></td>') if "n" in m else _cell(None)
        cells = [f'<th scope="row">{label}</th>', n]
        cells += [_cell((r.extra or {}).get(c), percent=True) for c in extra_columns]
        cells += [_cell(Est.of(m, key), percent=pct) for key, _, pct in columns]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return Html('<table class="headline"><thead><tr>'
                + "".join(f"<th>{esc(h)}</th>" for h in head)
                + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")


# --- confusion matrices ----------------------------------------------------------------

def _as_matrix(cm) -> np.ndarray:
    if isinstance(cm, Mapping):  # binary: rows = true (no, yes), columns = predicted
        return np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]], dtype=int)
    return np.asarray(cm, dtype=int)


def confusion_matrix(cm, classes: Sequence[str] = ("no smile", "smile"), title: str = "",
                     true_label: str = "true", pred_label: str = "predicted") -> Html:
    """A heat map: rows are the true class, columns the predicted one. Each cell: its share of
    the row (large) and the count (small); colour strength = row share, blue on the diagonal
    (right), orange off it (confused). Totals at the ends of rows and columns."""
    m = _as_matrix(cm)
    k = len(classes)
    assert m.shape == (k, k), (m.shape, k)
    rows_n = m.sum(1)
    share = m / np.maximum(rows_n[:, None], 1)
    head = "".join(f'<th class="col">{esc(c)}</th>' for c in classes)
    body = []
    for i, c in enumerate(classes):
        cells = []
        for j in range(k):
            a = float(share[i, j]) ** 0.7 if rows_n[i] else 0.0
            rgb = (29, 78, 216) if i == j else (234, 88, 12)
            fg = "#fff" if a > 0.55 else "#1f2430"
            tip = f"true {c}, predicted {classes[j]}: {m[i, j]:,} of {rows_n[i]:,}"
            big = (f"{fmt(share[i, j], percent=True)}<i>%</i>" if m[i, j] else "0")
            cells.append(f'<td class="{"" if m[i, j] else "zero"}" style="background:'
                         f'rgba({rgb[0]},{rgb[1]},{rgb[2]},{a:.3f});color:{fg}" '
                         f'title="{esc(tip)}"><b>{big}</b>'
                         + (f"<small>{m[i, j]:,}</small>" if m[i, j] else "") + "</td>")
        body.append(f'<tr><th class="row">{esc(c)}</th>{"".join(cells)}'
                    f'<td class="tot">{rows_n[i]:,}</td></tr>')
    cols_n = "".join(f'<td class="tot">{v:,}</td>' for v in m.sum(0))
    cap = f"<figcaption>{esc(title)}</figcaption>" if title else ""
    return Html(
        f'<figure class="cm cm{min(k, 8)}">{cap}<table class="cmt">'
        f'<thead><tr><th class="corner"><span>{esc(true_label)} ↓</span>'
        f'<span>{esc(pred_label)} →</span></th>{head}<th class="tot">n</th></tr></thead>'
        f'<tbody>{"".join(body)}<tr><th class="tot">n</th>{cols_n}'
        f'<td class="tot">{int(m.sum()):,}</td></tr></tbody></table></figure>')


# --- charts (inline SVG) ---------------------------------------------------------------

@dataclass
class Series:
    """Scores of one model on one data set: labels `y` (bool), scores `p` in 0..1, and the
    decision threshold (its operating point is marked); `color` defaults to the palette."""

    label: str
    y: np.ndarray
    p: np.ndarray
    threshold: float | None = None
    color: str | None = None


class _Chart:
    """A chart, SVG, sized to sit three in a row; axes 0..1 unless `xlim`/`ylim` say
    otherwise (then ticks show data values)."""

    W, H, L, R, T, B = 340, 300, 48, 14, 12, 44

    def __init__(self, xlabel: str, ylabel: str, xlim: tuple[float, float] = (0.0, 1.0),
                 ylim: tuple[float, float] = (0.0, 1.0)):
        self.parts: list[str] = []
        self.xlabel, self.ylabel = xlabel, ylabel
        self.xlim, self.ylim = xlim, ylim

    def x(self, v: float) -> float:
        u = (v - self.xlim[0]) / ((self.xlim[1] - self.xlim[0]) or 1)
        return self.L + u * (self.W - self.L - self.R)

    def y(self, v: float) -> float:
        u = (v - self.ylim[0]) / ((self.ylim[1] - self.ylim[0]) or 1)
        return self.H - self.B - u * (self.H - self.T - self.B)

    def line(self, xs, ys, color: str, width: float = 2.2, dash: str = "") -> None:
        pts = _thin([self.x(v) for v in xs], [self.y(v) for v in ys])
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" '
                          f'stroke-width="{width}" stroke-linejoin="round"{extra}/>')

    def dot(self, x: float, y: float, color: str, r: float = 5.5, tip: str = "") -> None:
        title = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(f'<circle cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="{r}" '
                          f'fill="{color}" stroke="#fff" stroke-width="2">{title}</circle>'
                          f'<circle cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="{r + 2.5}" '
                          f'fill="none" stroke="{color}" stroke-width="1.2"/>')

    def diagonal(self) -> None:
        """The dashed y = x line: chance for ROC, perfect calibration for reliability."""
        self.parts.append(f'<line x1="{self.x(0)}" y1="{self.y(0)}" x2="{self.x(1)}" '
                          f'y2="{self.y(1)}" class="chance"/>')

    def operating_points(self, series: Sequence[Series], xy) -> None:
        """A ringed dot per series with a threshold, drawn above every line; `xy(op)` ->
        (x, y, tooltip) from `_operating_point`'s figures."""
        for s, c in zip(series, _colors(series), strict=True):
            if s.threshold is not None:
                op = _operating_point(np.asarray(s.y, bool), np.asarray(s.p, float),
                                      s.threshold)
                x, y, tip = xy(op)
                self.dot(x, y, c, tip=f"{s.label}: threshold {fmt(s.threshold)}, {tip}")

    def svg(self, label: str) -> str:
        g = []
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        for t in np.linspace(0, 1, 6):
            tx, ty = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            g.append(f'<line x1="{self.x(tx):.1f}" y1="{self.y(y0)}" x2="{self.x(tx):.1f}" '
                     f'y2="{self.y(y1)}" class="grid"/>'
                     f'<line x1="{self.x(x0)}" y1="{self.y(ty):.1f}" x2="{self.x(x1)}" '
                     f'y2="{self.y(ty):.1f}" class="grid"/>'
                     f'<text x="{self.x(tx):.1f}" y="{self.y(y0) + 16}" class="tick" '
                     f'text-anchor="middle">{_tick(tx, x1 - x0)}</text>'
                     f'<text x="{self.x(x0) - 7}" y="{self.y(ty) + 4:.1f}" class="tick" '
                     f'text-anchor="end">{_tick(ty, y1 - y0)}</text>')
        g.append(f'<rect x="{self.x(x0)}" y="{self.y(y1)}" width="{self.x(x1) - self.x(x0)}" '
                 f'height="{self.y(y0) - self.y(y1)}" class="frame"/>')
        g.append(f'<text x="{(self.x(x0) + self.x(x1)) / 2:.1f}" y="{self.H - 8}" class="axis" '
                 f'text-anchor="middle">{esc(self.xlabel)}</text>'
                 f'<text transform="translate(13 {(self.y(y0) + self.y(y1)) / 2:.1f}) '
                 f'rotate(-90)" class="axis" text-anchor="middle">{esc(self.ylabel)}</text>')
        return (f'<svg viewBox="0 0 {self.W} {self.H}" role="img" aria-label="{esc(label)}">'
                + "".join(g) + "".join(self.parts) + "</svg>")


def _tick(v: float, span: float) -> str:
    """A tick label with as many decimals as the axis span needs (1 for 0..1)."""
    digits = 0 if span >= 10 else 1 if span >= 1 else 2 if span >= 0.1 else 3
    return fmt(v, digits) if digits else fmt(round(v), 0)


def _thin(xs: Sequence[float], ys: Sequence[float], px: float = 0.75) -> list[tuple]:
    """Drop points closer than `px` pixels to the last kept one (a 4,000-point ROC draws
    the same with a few hundred); the ends are always kept."""
    out = [(xs[0], ys[0])]
    for a, b in zip(xs[1:-1], ys[1:-1], strict=True):
        if abs(a - out[-1][0]) + abs(b - out[-1][1]) >= px:
            out.append((a, b))
    if len(xs) > 1:
        out.append((xs[-1], ys[-1]))
    return out


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def _figure(title: str, svg: str, legend: list[tuple[str, str, str]], note: str = "") -> Html:
    items = "".join(f'<li><i style="background:{c}"></i>{esc(name)}'
                    f'<span class="val">{esc(val)}</span></li>' for c, name, val in legend)
    note_html = f'<p class="fignote">{esc(note)}</p>' if note else ""
    return Html(f'<figure class="chart"><figcaption>{esc(title)}</figcaption>{svg}'
                f'<ul class="legend">{items}</ul>{note_html}</figure>')


def _operating_point(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    from utjima.metrics import binary_at

    r = binary_at(y, p, threshold)
    c = r["confusion"]
    r["fpr"] = c["fp"] / max(c["fp"] + c["tn"], 1)
    return r


def roc_chart(series: Sequence[Series], title: str = "ROC curve") -> Html:
    from utjima.metrics import roc_auc, roc_curve

    ch = _Chart("false positive rate (false laughs)", "true positive rate (recall)")
    ch.diagonal()
    legend = []
    for s, c in zip(series, _colors(series), strict=True):
        y, p = np.asarray(s.y, bool), np.asarray(s.p, float)
        fpr, tpr, _ = roc_curve(y, p)
        ch.line(fpr, tpr, c)
        legend.append((c, s.label, f"AUC {fmt(roc_auc(y, p))}"))
    ch.operating_points(series, lambda op: (op["fpr"], op["recall"], f"FPR {fmt(op['fpr'])}, "
                                            f"TPR {fmt(op['recall'])}"))
    return _figure(title, ch.svg(title), legend, _dot_note(series))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall steps (sklearn's `average_precision_score`)."""
    from utjima.metrics import pr_curve

    prec, rec = pr_curve(np.asarray(y, bool), np.asarray(p, float))
    return float(np.sum(np.diff(rec) * prec[1:]))


def pr_chart(series: Sequence[Series], title: str = "Precision-recall curve") -> Html:
    from utjima.metrics import pr_curve

    ch = _Chart("recall (smiles caught)", "precision (calls that were smiles)")
    legend = []
    for s, c in zip(series, _colors(series), strict=True):
        y, p = np.asarray(s.y, bool), np.asarray(s.p, float)
        prec, rec = pr_curve(y, p)
        ch.line(rec[1:], prec[1:], c)
        base = float(y.mean())
        ch.line([0, 1], [base, base], c, width=1, dash="3 4")
        legend.append((c, s.label, f"AP {fmt(average_precision(y, p))}"))
    ch.operating_points(series, lambda op: (op["recall"], op["precision"],
                                            f"recall {fmt(op['recall'])}, "
                                            f"precision {fmt(op['precision'])}"))
    return _figure(title, ch.svg(title), legend,
                   _dot_note(series) + " Dashed: the share of smiles (a coin's precision).")


def reliability_chart(series: Sequence[Series], bins: int = 15,
                      title: str = "Reliability diagram") -> Html:
    """Observed smile rate against the predicted smile_prob, in equal-width bins; on the
    diagonal = calibrated. Dot area follows the number of faces in the bin. The bins are
    `utjima.metrics.ece`'s, so the legend's ECE is the one in the tables."""
    from utjima.metrics import ece

    ch = _Chart("predicted smile_prob", "observed smile rate")
    ch.diagonal()
    legend = []
    for s, c in zip(series, _colors(series), strict=True):
        y, p = np.asarray(s.y, bool), np.asarray(s.p, float)
        e, rows = ece(y, p, bins=bins)
        xs, ys = [r["confidence"] for r in rows], [r["accuracy"] for r in rows]
        ch.line(xs, ys, c, width=1.8)
        total = max(sum(r["n"] for r in rows), 1)
        for r in rows:
            rad = 2.0 + 7.0 * math.sqrt(r["n"] / total)
            ch.parts.append(f'<circle cx="{ch.x(r["confidence"]):.1f}" '
                            f'cy="{ch.y(r["accuracy"]):.1f}" r="{rad:.1f}" fill="{c}" '
                            f'fill-opacity="0.75" stroke="#fff" stroke-width="1">'
                            f'<title>{esc(s.label)}: {r["n"]:,} faces with smile_prob '
                            f'{fmt(r["lo"], 2)}–{fmt(r["hi"], 2)}, {fmt(r["accuracy"], 2)} '
                            f"smiling</title></circle>")
        legend.append((c, s.label, f"ECE {fmt(e)}"))
    return _figure(title, ch.svg(title), legend,
                   "Dot area: faces in the bin. On the diagonal: smile_prob means what it says.")


def _dot_note(series: Sequence[Series]) -> str:
    thr = sorted({round(float(s.threshold), 4) for s in series if s.threshold is not None})
    if not thr:
        return ""
    at = fmt(thr[0]) if len(thr) == 1 else "each series' threshold"
    return f"Ringed dot: the operating point at threshold {at}."


def curve_panel(series: Sequence[Series]) -> Html:
    """ROC, precision-recall and reliability side by side."""
    return grid(roc_chart(series), pr_chart(series), reliability_chart(series), cls="charts")


@dataclass
class Line:
    """One line of a `line_chart`: y over x (NaN points are left out), its legend value."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None
    dash: str = ""
    value: str = ""


def line_chart(lines: Sequence[Line], title: str, xlabel: str, ylabel: str,
               xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
               marks: Sequence[float] = (), note: str = "") -> Html:
    """Lines over a numeric x (learning curves: epochs vs loss or accuracy), the axes fitted
    to the data unless given; `marks` draws faint vertical lines (e.g. the epochs compared)."""
    pts = [(x, y) for ln in lines for x, y in zip(ln.xs, ln.ys, strict=True)
           if _finite(x) and _finite(y)]
    xs, ys = [p[0] for p in pts] or [0.0, 1.0], [p[1] for p in pts] or [0.0, 1.0]
    xlim = xlim or (min(xs), max(xs))
    if ylim is None:
        lo, hi = min(ys), max(ys)
        pad = 0.05 * (hi - lo or 1)
        ylim = (lo - pad, hi + pad)
    ch = _Chart(xlabel, ylabel, xlim, ylim)
    for m in marks:
        ch.parts.append(f'<line x1="{ch.x(m):.1f}" y1="{ch.y(ylim[0])}" x2="{ch.x(m):.1f}" '
                        f'y2="{ch.y(ylim[1])}" class="chance"/>')
    legend = []
    for i, ln in enumerate(lines):
        c = ln.color or PALETTE[i % len(PALETTE)]
        keep = [(x, y) for x, y in zip(ln.xs, ln.ys, strict=True) if _finite(x) and _finite(y)]
        if keep:
            ch.line([p[0] for p in keep], [p[1] for p in keep], c, dash=ln.dash)
        legend.append((c, ln.label, ln.value))
    return _figure(title, ch.svg(title), legend, note)


def bars(values: Mapping[str, float], percent: bool = True, color: str = PALETTE[0]) -> Html:
    """A labelled horizontal bar per item, 0..1 (e.g. per-class recall)."""
    rows = []
    for name, v in values.items():
        w = 100 * float(v) if _finite(v) else 0.0
        rows.append(f'<div class="bar"><span class="name">{esc(name)}</span>'
                    f'<span class="track"><span style="width:{w:.1f}%;background:{color}">'
                    f'</span></span><span class="val">{fmt(v, percent=percent)}</span></div>')
    return Html('<div class="bars">' + "".join(rows) + "</div>")


# --- thumbnails ------------------------------------------------------------------------

@dataclass
class Thumb:
    """A face crop (uint8 (H, W) grey or (H, W, 3) RGB), its score (a short string drawn on
    the picture), a caption of one or two short lines, and a tag (e.g. "no face found")."""

    image: np.ndarray
    score: str
    caption: str = ""
    tone: str = ""  # "false_laugh", "missed", "ok" or ""
    tag: str = ""


def png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_grid(thumbs: Sequence[Thumb], research: bool = False, empty: str = "none") -> Html:
    """Crops in a wrapping grid, 96 px each. `research=True` marks the grid as research
    pixels (class "research"), which screenshots meant for a repository leave out."""
    if not thumbs:
        return Html(f'<p class="empty">{esc(empty)}</p>')
    items = "".join(
        f'<figure class="thumb {esc(t.tone)}" title="{esc(t.caption)}">'
        f'<div class="pic"><img alt="{esc(t.caption)}" src="{png_data_uri(t.image)}">'
        f'<span class="score">{esc(t.score)}</span>'
        + (f'<span class="tag">{esc(t.tag)}</span>' if t.tag else "")
        + "</div><figcaption>" + "".join(f"<span>{esc(line)}</span>"
                                         for line in t.caption.split("\n"))
        + "</figcaption></figure>" for t in thumbs)
    return Html(f'<div class="thumbs{" research" if research else ""}">{items}</div>')


# --- provenance, layout ------------------------------------------------------------------

def _value(v) -> Html:
    if isinstance(v, Html):
        return v
    if isinstance(v, Mapping):
        return Html("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{_value(x)}</dd>"
                                     for k, x in v.items()) + "</dl>")
    if isinstance(v, (list, tuple)):
        return Html(", ".join(_value(x) for x in v) if v else "–")
    if isinstance(v, float):
        return Html(fmt(v, 4))
    return esc("–" if v is None or v == "" else v)


def provenance(groups: Mapping[str, Mapping | Html], wide: Sequence[str] = ()) -> Html:
    """Labelled key/value lists, one card per group ("Model", "Run", ...); a group may be
    Html instead (a table); the groups named in `wide` take a whole row."""
    cards = "".join(f'<div class="prov{" wide" if g in wide else ""}"><h3>{esc(g)}</h3>'
                    f"{_value(items)}</div>" for g, items in groups.items())
    return Html(f'<div class="provs">{cards}</div>')


def titled(title: str, block: str) -> Html:
    """A block under a small caption, lined up with the captions of charts and matrices."""
    return Html(f'<figure class="tbl"><figcaption>{esc(title)}</figcaption>{esc(block)}'
                "</figure>")


def callout(text: str | Html, tone: str = "") -> Html:
    return Html(f'<p class="callout {esc(tone)}">{esc(text)}</p>')


def grid(*blocks: str, cls: str = "") -> Html:
    return Html(f'<div class="grid {esc(cls)}">{_join(blocks)}</div>')


def _slug(title: str) -> str:
    s = "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return "-".join(p for p in s.split("-") if p) or "section"


class Page:
    """A report page: a header, sections (each listed at the top), a footer."""

    def __init__(self, title: str, subtitle: str = "", meta: Mapping | None = None):
        self.title, self.subtitle, self.meta = title, subtitle, dict(meta or {})
        self.sections: list[tuple[str, str, Html]] = []

    def section(self, title: str, *blocks: str, intro: str | Html = "",
                id: str | None = None) -> Page:
        """Add a section; `blocks` are Html from this module (plain text is escaped)."""
        sid = id or _slug(title)
        head = f'<p class="intro">{esc(intro)}</p>' if intro else ""
        self.sections.append((sid, title, Html(head + _join(blocks))))
        return self

    def render(self) -> str:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        meta = "".join(f"<div><dt>{esc(k)}</dt><dd>{_value(v)}</dd></div>"
                       for k, v in self.meta.items())
        toc = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t, _ in self.sections)
        body = "".join(f'<section id="{esc(i)}"><h2>{esc(t)}</h2>{b}</section>'
                       for i, t, b in self.sections)
        return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>"
                f'<header class="top"><div class="wrap"><p class="brand">utjima · report</p>'
                f"<h1>{esc(self.title)}</h1>"
                + (f'<p class="subtitle">{esc(self.subtitle)}</p>' if self.subtitle else "")
                + f'<dl class="meta">{meta}</dl></div></header>'
                f'<nav class="toc"><div class="wrap">{toc}</div></nav>'
                f'<main class="wrap">{body}</main>'
                f'<footer class="wrap">utjima {esc(__version__)} · written {now}</footer>'
                "</body></html>\n")

    def write(self, path: str | Path) -> Path:
        from utjima.utils import atomic_write

        path = Path(path)
        with atomic_write(path) as tmp:
            tmp.write_text(self.render(), encoding="utf-8")
        return path


CSS = """
:root{--ink:#1f2430;--muted:#667085;--line:#e4e7ec;--bg:#f5f6f8;--card:#fff;--accent:#0072B2;
--bad:#d92d20;--warn:#dc6803;--good:#039855}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:14.5px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Noto Sans","Noto Sans KR","NanumGothic",sans-serif;
font-variant-numeric:tabular-nums}
.wrap{max-width:1200px;margin:0 auto;padding:0 28px}
header.top{background:linear-gradient(135deg,#0b2540 0%,#0f3b66 60%,#155e8c 100%);color:#fff;
padding:26px 0 22px}
.brand{margin:0 0 4px;font-size:12px;letter-spacing:.14em;text-transform:uppercase;opacity:.7}
h1{margin:0;font-size:27px;font-weight:650;letter-spacing:-.01em}
.subtitle{margin:6px 0 0;font-size:15.5px;opacity:.92;max-width:900px}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 28px;margin:16px 0 0;font-size:13px}
dl.meta div{display:flex;gap:8px}dl.meta dt{opacity:.65}dl.meta dd{margin:0}
nav.toc{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
nav.toc .wrap{display:flex;flex-wrap:wrap;gap:2px 18px;padding-top:9px;padding-bottom:9px}
nav.toc a{color:var(--muted);text-decoration:none;font-size:13px;font-weight:550}
nav.toc a:hover{color:var(--accent)}
main{padding-bottom:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:20px 24px 22px;margin:20px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{margin:0 0 4px;font-size:18px;font-weight:650}
h3{margin:0 0 8px;font-size:14px;font-weight:650}
.intro{margin:0 0 14px;color:var(--muted);max-width:860px}
table{border-collapse:collapse;font-size:13.5px}
th,td{padding:7px 10px;text-align:left;vertical-align:top}
thead th{font-size:12px;font-weight:600;color:var(--muted);text-transform:none;
border-bottom:1.5px solid var(--ink);white-space:nowrap}
thead th.num{text-align:right}
table:not(.cmt) tbody tr+tr>*{border-top:1px solid var(--line)}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f4f7;
white-space:nowrap;padding:1px 5px;border-radius:4px}
td.num{text-align:right;white-space:nowrap}
td.num b{font-weight:600;display:block}
.ci{display:block;font-size:11.5px;color:var(--muted);font-weight:400}
.sub{display:block;font-size:12px;color:var(--muted);font-weight:400;max-width:300px}
table.headline{width:100%}table.headline.compact{width:auto;min-width:620px}
table.headline td.num b{font-size:15.5px}
figure.tbl>figcaption{margin-bottom:2px}
table.headline thead th:not(:first-child){text-align:right}
table.headline tbody th{font-weight:400}
.grid{display:flex;flex-wrap:wrap;gap:18px 26px;align-items:flex-start}
figure{margin:0}
figure>figcaption{font-weight:650;font-size:13.5px;margin-bottom:6px}
figure.chart{flex:1 1 300px;max-width:350px}
figure.chart svg{width:100%;height:auto;display:block}
svg .grid{stroke:#eef0f3;stroke-width:1}
svg .frame{fill:none;stroke:#98a2b3;stroke-width:1}
svg .chance{stroke:#98a2b3;stroke-width:1;stroke-dasharray:4 4}
svg .tick{font-size:11px;fill:var(--muted)}
svg .axis{font-size:12px;fill:var(--ink)}
ul.legend{list-style:none;margin:6px 0 0;padding:0;font-size:12.5px}
ul.legend li{display:flex;align-items:center;gap:7px;line-height:1.7}
ul.legend i{width:14px;height:4px;border-radius:2px;display:inline-block;flex:none}
ul.legend .val{margin-left:auto;color:var(--muted)}
.fignote{margin:4px 0 0;font-size:11.5px;color:var(--muted)}
figure.cm table{border-collapse:separate;border-spacing:3px;font-size:13px}
figure.cm td{width:66px;height:56px;text-align:center;vertical-align:middle;border-radius:6px;
padding:2px}
figure.cm.cm2 td{width:84px;height:60px}
figure.cm td b{display:block;font-size:16px;font-weight:650;line-height:1.2}
figure.cm td b i{font-style:normal;font-size:11px;font-weight:500;margin-left:1px;opacity:.8}
figure.cm td small{display:block;font-size:11.5px;opacity:.85}
figure.cm td.zero{color:#98a2b3!important}figure.cm td.zero b{font-weight:400;font-size:14px}
figure.cm th{font-size:12.5px;font-weight:600;color:var(--ink);padding:4px 6px;border:0;
vertical-align:middle}
figure.cm th.col{text-align:center;vertical-align:bottom;width:66px}
figure.cm.cm2 th.col{width:84px}
figure.cm th.row{text-align:right;white-space:nowrap}
figure.cm .tot{color:var(--muted);font-weight:400;font-size:11.5px;background:none;
text-align:center;width:auto;min-width:40px;padding:0 4px}
figure.cm th.corner{font-size:11px;color:var(--muted);font-weight:400;text-align:right;
line-height:1.3;vertical-align:bottom}
figure.cm th.corner span{display:block}
.bars{display:grid;gap:5px;min-width:280px}
.bar{display:grid;grid-template-columns:78px 1fr 46px;align-items:center;gap:8px;
font-size:12.5px}
.bar .track{background:#eef0f3;height:10px;border-radius:5px;overflow:hidden}
.bar .track span{display:block;height:100%;border-radius:5px}
.bar .val{text-align:right;color:var(--muted)}
.thumbs{display:grid;grid-template-columns:repeat(auto-fill,minmax(100px,1fr));gap:12px 10px}
.thumb{min-width:0;--tone:#667085}
.thumb.false_laugh{--tone:var(--bad)}.thumb.missed{--tone:var(--warn)}
.thumb.ok{--tone:var(--good)}
.thumb .pic{position:relative;border-radius:8px;overflow:hidden;
box-shadow:0 0 0 2px var(--tone)}
.thumb img{width:100%;aspect-ratio:1;object-fit:cover;display:block;background:#ddd}
.thumb .score{position:absolute;left:0;bottom:0;background:var(--tone);color:#fff;
font-size:12.5px;font-weight:650;padding:1px 7px 1px 6px;border-top-right-radius:7px}
.thumb .tag{position:absolute;right:0;top:0;background:rgba(16,24,40,.75);color:#fff;
font-size:10px;padding:1px 5px;border-bottom-left-radius:6px}
.thumb figcaption{font-size:11px;line-height:1.35;margin-top:5px;color:var(--muted)}
.thumb figcaption span{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.thumb figcaption span:first-child{color:var(--ink);font-weight:550}
.callout{background:#f0f7ff;border-left:4px solid var(--accent);padding:10px 14px;
border-radius:6px;margin:0 0 14px;max-width:960px}
.callout.warn{background:#fffaeb;border-left-color:var(--warn)}
.empty{color:var(--muted);font-style:italic}
.provs{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
.prov.wide{grid-column:1/-1}
.prov table{width:100%;font-size:12.5px}.prov table td{font-size:12px}
.prov{border:1px solid var(--line);border-radius:10px;padding:12px 16px;background:#fcfcfd}
.prov dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0;
font-size:12.5px}
.prov dt{color:var(--muted)}
.prov dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:12px;overflow-wrap:anywhere}
.prov dd dl{grid-template-columns:max-content 1fr}
footer{color:var(--muted);font-size:12px;padding:4px 28px 28px}
@media print{nav.toc{display:none}section{break-inside:avoid;box-shadow:none}}
"""
