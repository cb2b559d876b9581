"""utjima.report: the PNG plots exist, are real images and are what report.html shows."""

import numpy as np
import pytest
from PIL import Image

from utjima import EMOTIONS
from utjima.metrics import binary_report, multiclass_report
from utjima.report import plot_binary, plot_confusion, write_html

pytest.importorskip("matplotlib")


def test_plots_and_the_html_page(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    p = np.clip(0.6 * y + rng.random(200) * 0.5, 0, 1)
    files = plot_binary("ferplus_test", y, p, 0.5, tmp_path)
    assert files == ["ferplus_test_roc.png", "ferplus_test_pr.png", "ferplus_test_reliability.png",
                     "ferplus_test_confusion.png"]
    labels = rng.integers(0, 7, 50)
    probs = np.eye(7)[np.where(rng.random(50) < 0.7, labels, rng.integers(0, 7, 50))]
    emotion = multiclass_report(labels, probs, list(EMOTIONS), n_boot=20)
    files.append(plot_confusion("ferplus_test_emotion", np.array(emotion["confusion"]),
                                list(EMOTIONS), tmp_path))
    assert files[-1] == "ferplus_test_emotion_confusion.png"
    for f in files:
        with Image.open(tmp_path / f) as im:
            assert im.format == "PNG" and im.width >= 200 and im.height >= 200, f
            assert np.asarray(im.convert("L")).std() > 10, f"{f} is blank"

    smile = binary_report(y, p, 0.5, n_boot=20)
    report = {"model": "models/<test>", "thresholds": {"selected": 0.5, "selected_on": ["x:val"]},
              "sources": {"ferplus:test": {"description": "FER+ test faces", "n": 200,
                                           "smile": smile, "emotion": emotion, "plots": files}}}
    page = write_html(report, tmp_path).read_text()
    assert (tmp_path / "report.html").is_file()
    for f in files:
        assert f'<img src="{f}"' in page
    assert "models/&lt;test&gt;" in page  # escaped
    assert "<h2>ferplus:test</h2>" in page and "FER+ test faces n=200" in page
    assert f"{smile['accuracy']:.4f}" in page and f"{emotion['accuracy']:.4f}" in page
    assert "thresholds (validation: [&#x27;x:val&#x27;])" in page
