"""utjima.report, the report kit: numbers for people, tables with intervals, labelled heat-map
confusion matrices, SVG charts with the operating point, thumbnails, provenance; one
self-contained page, checked as markup here and in headless Chromium (offline, from a file)."""

import base64
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from utjima import EMOTIONS
from utjima import report as rk
from utjima.metrics import binary_at, binary_report, multiclass_report


def scores(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    p = np.clip(0.55 * y + rng.random(n) * 0.5, 0, 1)
    return y, p


def test_numbers_read_well():
    assert rk.fmt(-0.0001) == "0.000" and rk.fmt(-0.0001, percent=True) == "0.0"
    assert rk.fmt(0.91234, percent=True) == "91.2" and rk.fmt(0.91234) == "0.912"
    assert rk.fmt(float("nan")) == rk.fmt(None) == "–"
    assert rk.fmt(12345) == "12,345" and rk.fmt(np.int64(7)) == "7"
    assert rk.fmt(True) == "yes"
    e = rk.Est.of({"auc": 0.9, "ci95": {"auc": [0.88, 0.92]}}, "auc")
    assert (e.value, e.lo, e.hi) == (0.9, 0.88, 0.92)
    assert rk.Est.of({"auc": 0.9}, "missing") is None and math.isnan(rk.Est.of({"a": 1}, "a").lo)


def test_headline_table_has_every_metric_with_its_interval():
    y, p = scores()
    m = binary_report(y, p, 0.5, n_boot=50)
    assert set(m["ci95"]) >= {"accuracy", "precision", "recall", "f1", "auc"}
    html = rk.headline_table([rk.Row("FER+ test", m, note="ferplus:test",
                                     extra={"faces found %": 0.983})],
                             extra_columns=["faces found %"])
    for title in ("Accuracy %", "Precision %", "Recall %", "F1 %", "AUC", "ECE", "faces found %"):
        assert f">{title}<" in html
    lo, hi = m["ci95"]["recall"]
    assert f"<b>{m['recall'] * 100:.1f}</b>" in html
    assert f"{lo * 100:.1f}–{hi * 100:.1f}" in html
    assert f"<b>{m['auc']:.3f}</b>" in html and ">98.3<" in html
    assert f"<b>{len(y):,}</b>" in html and f">{int(y.sum())}<" in html


def test_confusion_matrix_is_a_labelled_heat_map():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 300)
    probs = np.eye(7)[np.where(rng.random(300) < 0.6, labels, rng.integers(0, 7, 300))]
    cm = np.array(multiclass_report(labels, probs, list(EMOTIONS), n_boot=0)["confusion"])
    html = rk.confusion_matrix(cm, list(EMOTIONS), title="FER+ test")
    assert html.count('class="col"') == 7 and html.count('class="row"') == 7
    for c in EMOTIONS:
        assert f">{c}<" in html
    i, j = 2, 5
    share = cm[i, j] / cm[i].sum()
    tip = f"true {EMOTIONS[i]}, predicted {EMOTIONS[j]}: {cm[i, j]:,} of {cm[i].sum():,}"
    cell = re.search(re.escape(f'title="{tip}"') + r"><b>([^<]*)<i>%</i></b><small>(\d+)<", html)
    assert cell and cell.groups() == (f"{share * 100:.1f}", str(cm[i, j]))
    assert f'<td class="tot">{cm.sum():,}</td>' in html  # grand total
    # binary confusion straight from binary_at's dict; colour strength follows the row share
    y, p = scores()
    c = binary_at(y, p, 0.5)["confusion"]
    two = rk.confusion_matrix(c)
    alphas = [float(a) for a in re.findall(r"rgba\(\d+,\d+,\d+,([\d.]+)\)", two)]
    assert len(alphas) == 4
    tn_share = c["tn"] / (c["tn"] + c["fp"])
    assert alphas[0] == pytest.approx(tn_share ** 0.7, abs=1e-3)


def test_charts_mark_the_operating_point():
    y, p = scores()
    s = rk.Series("test", y, p, 0.5)
    roc = rk.roc_chart([s])
    op = binary_at(y, p, 0.5)
    c = op["confusion"]
    fpr = c["fp"] / (c["fp"] + c["tn"])
    ch = rk._Chart("", "")
    cx, cy = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="5.5"', roc).groups()
    assert float(cx) == pytest.approx(ch.x(fpr), abs=0.06)
    assert float(cy) == pytest.approx(ch.y(op["recall"]), abs=0.06)
    assert "AUC " in roc and roc.count("<polyline") == 1 and "<svg" in roc
    pr = rk.pr_chart([s, rk.Series("other", y, p[::-1], 0.5)])
    assert pr.count("r=\"5.5\"") == 2 and "AP " in pr
    rel = rk.reliability_chart([s])
    assert f"ECE {rk.fmt(binary_report(y, p, 0.5, n_boot=0)['ece'])}" in rel  # the tables' ECE
    # a 4,000-point curve is thinned, its ends kept
    big = rk.Series("big", *scores(4000, 2), None)
    points = re.search(r'points="([^"]+)"', rk.roc_chart([big])).group(1).split()
    assert 20 < len(points) < 2000
    assert points[0] == f"{ch.x(0):.1f},{ch.y(0):.1f}"
    assert points[-1] == f"{ch.x(1):.1f},{ch.y(1):.1f}"


def test_thumbnails_are_embedded_pngs_marked_as_research():
    img = (np.arange(48 * 48) % 251).astype(np.uint8).reshape(48, 48)
    html = rk.thumbnail_grid([rk.Thumb(img, "0.97", "FER+ test\nfer001.png", "false_laugh",
                                       "no face found")], research=True)
    assert 'class="thumbs research"' in html and "no face found" in html
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        assert np.array_equal(np.asarray(im), img)
    assert "research" not in rk.thumbnail_grid([rk.Thumb(img, "0.1")])
    assert "none" in rk.thumbnail_grid([], empty="none")


def test_a_page_is_self_contained_and_escapes_text(tmp_path):
    y, p = scores()
    page = rk.Page("Study <1>", subtitle="a & b", meta={"model": "m<x>"})
    page.section("Headline", rk.headline_table([rk.Row("a<b>", binary_report(y, p, 0.5, 20))]),
                 intro="why <this>")
    page.section("Curves", rk.curve_panel([rk.Series("s", y, p, 0.5)]))
    page.section("Provenance", rk.provenance({"Model": {"sha256": "ab" * 8, "n": 3,
                                                        "nested": {"k": "<v>"}}}))
    out = page.write(tmp_path / "r" / "report.html")
    text = out.read_text()
    assert text.startswith("<!doctype html>") and "<style>" in text
    assert "Study &lt;1&gt;" in text and "a &amp; b" in text and "m&lt;x&gt;" in text
    assert "a&lt;b&gt;" in text and "why &lt;this&gt;" in text and "&lt;v&gt;" in text
    assert '<a href="#headline">Headline</a>' in text and 'id="curves"' in text
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from the network


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_page_renders_offline_in_chromium(tmp_path):
    """The kit's page as a browser shows it, from a file with the network refused: every
    picture decodes, nothing overflows 1280 px, the 7-class matrix is large enough to read,
    research thumbnails can be left out. Synthetic scores and pictures (no research pixels)."""
    pytest.importorskip("playwright")
    from harness.screenshots import shoot

    y, p = scores(1200)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 7, 500)
    probs = np.eye(7)[np.where(rng.random(500) < 0.6, labels, rng.integers(0, 7, 500))]
    emo = multiclass_report(labels, probs, list(EMOTIONS), n_boot=0)
    faces = [np.full((64, 64), 40 * k, np.uint8) for k in range(6)]
    page = rk.Page("Smile detector evaluation", subtitle="synthetic")
    page.section("Headline", rk.headline_table([rk.Row("set A", binary_report(y, p, 0.5, 50)),
                                                rk.Row("set B", binary_report(y, p**2, 0.5, 50))]))
    page.section("Curves", rk.curve_panel([rk.Series("set A", y, p, 0.5),
                                           rk.Series("set B", y, p**2, 0.5)]))
    page.section("Emotions", rk.grid(rk.confusion_matrix(emo["confusion"], list(EMOTIONS)),
                                     rk.confusion_matrix(binary_at(y, p, 0.5)["confusion"])))
    page.section("Worst errors", rk.thumbnail_grid(
        [rk.Thumb(f, f"0.9{k}", f"set A\nid{k}", "false_laugh") for k, f in enumerate(faces)],
        research=True))
    html = page.write(tmp_path / "report.html")

    facts = shoot(html, tmp_path / "shots")
    assert facts["requests"] == [] and facts["broken"] == 0
    assert facts["images"] == 6 and facts["svgs"] == 3
    assert facts["scrollWidth"] <= 1280, "the page overflows a 1280 px window"
    assert facts["cmCell"] >= 60, f"confusion cells {facts['cmCell']} px wide: too small to read"
    for f in facts["files"]:
        with Image.open(f) as im:
            assert im.width == 1280 and np.asarray(im.convert("L")).std() > 20, f
    public = shoot(html, tmp_path / "shots", name="public", hide_research=True,
                   until="#emotions")
    assert public["visibleImages"] == 0 and facts["visibleImages"] == 6
    with Image.open(public["files"][1]) as full, Image.open(facts["files"][1]) as whole:
        assert full.height < whole.height  # clipped below the emotions, thumbnails gone
