"""utjima.metrics against values computed by hand, and against brute-force definitions."""

import numpy as np
import pytest

from utjima import EMOTIONS
from utjima.metrics import (
    binary_at,
    binary_report,
    bootstrap_ci,
    capped_fpr_threshold,
    ece,
    multiclass_report,
    pr_curve,
    roc_auc,
    roc_curve,
    select_thresholds,
)

# Five scores worked by hand: positives {0.9, 0.4, 0.7}, negatives {0.4, 0.2}. Of the six
# (positive, negative) pairs five are ordered right and one is a tie: AUC = 5.5 / 6.
Y5 = np.array([1, 1, 0, 0, 1], bool)
P5 = np.array([0.9, 0.4, 0.4, 0.2, 0.7])


def test_auc_and_roc_curve_by_hand():
    assert roc_auc(Y5, P5) == pytest.approx(11 / 12, abs=1e-12)
    fpr, tpr, thr = roc_curve(Y5, P5)
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.7, 0.4, 0.2])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 2, 1])
    prec, rec = pr_curve(Y5, P5)
    np.testing.assert_allclose(prec, [1, 1, 1, 3 / 4, 3 / 5])
    np.testing.assert_allclose(rec, [0, 1 / 3, 2 / 3, 1, 1])
    assert roc_auc(~Y5, P5) == pytest.approx(1 / 12, abs=1e-12)  # the labels swapped


def test_thresholds_by_hand():
    # y 0 0 1 1, p .1 .4 .35 .8: TPR - FPR is 0.5 at t = 0.8 and at t = 0.35 (the first wins);
    # F1 is 2/3, 0.8, 0.5, 2/3 at t = 0.1, 0.35, 0.4, 0.8
    t = select_thresholds(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.4, 0.35, 0.8]))
    assert t == {"youden": 0.8, "youden_j": 0.5, "best_f1": 0.35,
                 "best_f1_value": pytest.approx(0.8)}


def test_calibration_error_by_hand():
    # two bins: confidence 0.25 with 1 of 2 smiling, 0.75 with 2 of 2: |0.25-0.5|/2 + |0.75-1|/2
    e, table = ece(np.array([0, 1, 1, 1]), np.array([0.25, 0.25, 0.75, 0.75]))
    assert e == pytest.approx(0.25)
    rows = [(r["n"], r["confidence"], r["accuracy"]) for r in table]
    assert rows == [(2, 0.25, 0.5), (2, 0.75, 1.0)]


def test_bootstrap_interval_contains_the_point_and_is_reproducible():
    rng = np.random.default_rng(4)
    y = rng.random(300) < 0.5
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 300), 0, 1)
    acc = lambda a, b: float(((b >= 0.5) == a).mean())  # noqa: E731
    lo, hi = bootstrap_ci(acc, (y, p), n=300, seed=1)
    assert lo < acc(y, p) < hi and 0.02 < hi - lo < 0.2
    assert bootstrap_ci(acc, (y, p), n=300, seed=1) == (lo, hi)
    assert all(np.isnan(bootstrap_ci(acc, (y, p), n=0)))


def brute_auc(y, p):
    pos, neg = p[y], p[~y]
    return np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    p = np.round(rng.random(200) + 0.3 * y, 1)  # many ties
    assert roc_auc(y, p) == pytest.approx(brute_auc(y, p), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, p)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, p), abs=1e-12)
    assert np.isnan(roc_auc(np.ones(3, bool), np.arange(3.0)))


def test_confusion_and_scores():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    r = binary_at(y, p, 0.5)
    assert r["confusion"] == {"tn": 4, "fp": 1, "fn": 1, "tp": 2}
    assert r["accuracy"] == 6 / 8 and r["precision"] == 2 / 3 and r["recall"] == 2 / 3
    assert r["f1"] == pytest.approx(2 / 3)


def test_thresholds_split_separable_data():
    y = np.array([0] * 50 + [1] * 50, bool)
    p = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.6, 1.0, 50)]
    t = select_thresholds(y, p)
    assert 0.3 < t["youden"] <= 0.6 and t["youden_j"] == 1.0
    assert 0.3 < t["best_f1"] <= 0.6 and t["best_f1_value"] == 1.0


def test_calibration_error_and_intervals():
    rng = np.random.default_rng(1)
    p = rng.random(4000)
    y = rng.random(4000) < p  # calibrated by construction
    e, table = ece(y, p)
    assert e < 0.03 and sum(r["n"] for r in table) == 4000
    e_bad, _ = ece(y, p ** 4)
    assert e_bad > 0.15
    lo, hi = bootstrap_ci(lambda a, b: roc_auc(a, b), (y, p), n=200)
    assert lo < roc_auc(y, p) < hi and hi - lo < 0.05
    r = binary_report(y, p, 0.5, n_boot=100)
    assert r["ci95"]["accuracy"][0] < r["accuracy"] < r["ci95"]["accuracy"][1]


def test_multiclass_report():
    labels = np.array([0, 1, 2, 3, 3, 6])
    probs = np.eye(7)[[0, 1, 2, 3, 4, 6]]
    r = multiclass_report(labels, probs, list(EMOTIONS), n_boot=50)
    assert r["accuracy"] == 5 / 6 and r["confusion"][3][4] == 1
    assert r["per_class_recall"]["happy"] == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_capped_fpr_threshold_lets_at_most_that_share_through(dtype):
    p = np.random.default_rng(0).random(1065).astype(dtype)
    for cap in (0.0, 0.03, 0.5):
        t = capped_fpr_threshold(p, cap)
        assert (p >= t).sum() == int(np.floor(cap * len(p)))  # float32 scores vs a Python float too
        assert (p.astype(np.float64) >= t).sum() == int(np.floor(cap * len(p)))
    assert capped_fpr_threshold(np.array([0.2, 0.9]), 1.0) == 0.0
