"""Calibration (reliability curve, Brier, ECE) and decision-curve net benefit on hand-computed examples."""

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from alfia.errors import AlfiaError
from alfia.evaluation import evaluate
from alfia.evaluation.calibration import (
    DEFAULT_DCA_THRESHOLDS,
    brier_score,
    calibration_summary,
    decision_curve,
    expected_calibration_error,
    net_benefit,
    reliability_curve,
    treat_all_net_benefit,
)

# Bins (width 0.1): 0.05 -> bin 0; 0.15, 0.15 -> bin 1; 0.85 -> bin 8; 0.95, 0.95 -> bin 9.
Y_HAND = np.array([0, 0, 1, 1, 1, 0])
P_HAND = np.array([0.05, 0.15, 0.15, 0.85, 0.95, 0.95])


def test_ece_hand_computed():
    # (1/6)|0 - 0.05| + (2/6)|0.5 - 0.15| + (1/6)|1 - 0.85| + (2/6)|0.5 - 0.95| = (0.05 + 0.7 + 0.15 + 0.9) / 6
    assert expected_calibration_error(Y_HAND, P_HAND) == pytest.approx(0.3)
    # one bin holding everything: |mean(y) - mean(p)| = |3/6 - 3.1/6|
    assert expected_calibration_error(Y_HAND, P_HAND, n_bins=1) == pytest.approx(0.1 / 6)


def test_brier_hand_computed():
    expected = (0.05**2 + 0.15**2 + 0.85**2 + 0.15**2 + 0.05**2 + 0.95**2) / 6
    assert brier_score(Y_HAND, P_HAND) == pytest.approx(expected)
    assert expected == pytest.approx(1.675 / 6)


def test_evaluate_reports_the_same_brier_and_ece():
    y = np.tile(Y_HAND, 5)
    p = np.tile(P_HAND, 5)
    result = evaluate(y, p, n_boot=20)
    assert result["ece"]["value"] == pytest.approx(0.3)
    assert result["brier"]["value"] == pytest.approx(1.675 / 6)


def test_reliability_curve_hand_computed():
    bins = reliability_curve(Y_HAND, P_HAND)
    assert [b["count"] for b in bins] == [1, 2, 1, 2]
    assert [b["bin_low"] for b in bins] == pytest.approx([0.0, 0.1, 0.8, 0.9])
    assert [b["mean_predicted"] for b in bins] == pytest.approx([0.05, 0.15, 0.85, 0.95])
    assert [b["observed_rate"] for b in bins] == pytest.approx([0.0, 0.5, 1.0, 0.5])


def test_bin_edges_left_closed_and_last_bin_holds_one():
    bins = reliability_curve([0, 1, 1], [0.3, 1.0, 0.0])
    assert [(b["bin_low"], b["count"]) for b in bins] == [(0.0, 1), (0.3, 1), (0.9, 1)]


def test_reliability_curve_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    bins = reliability_curve(y, p)
    assert [b["observed_rate"] for b in bins] == pytest.approx(prob_true)
    assert [b["mean_predicted"] for b in bins] == pytest.approx(prob_pred)
    summary = calibration_summary(y, p)
    json.dumps(summary, allow_nan=False)
    assert sum(b["count"] for b in summary["bins"]) == 1000


# Net benefit table, N = 10, 3 events (prevalence 0.3):
#   pt = 0.10: p >= 0.10 -> TP 3, FP 6: 3/10 - 6/10 * 0.1/0.9  = 0.2333...
#   pt = 0.25: p >= 0.25 -> TP 2, FP 4: 2/10 - 4/10 * 0.25/0.75 = 0.0666...
#   pt = 0.50: p >= 0.50 -> TP 1, FP 1: 1/10 - 1/10 * 1        = 0
# Treat all: 0.3 - 0.7 * pt/(1 - pt) = 0.2222..., 0.0666..., -0.4
Y_DCA = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0])
P_DCA = np.array([0.9, 0.4, 0.35, 0.2, 0.1, 0.15, 0.6, 0.05, 0.3, 0.25])


def test_net_benefit_hand_computed():
    nb = net_benefit(Y_DCA, P_DCA, [0.1, 0.25, 0.5])
    assert nb == pytest.approx([0.3 - 0.6 / 9, 0.2 - 0.4 / 3, 0.0])
    assert treat_all_net_benefit(Y_DCA, [0.1, 0.25, 0.5]) == pytest.approx([0.3 - 0.7 / 9, 0.3 - 0.7 / 3, -0.4])


def test_decision_curve_default_grid_and_reference_curves():
    curve = decision_curve(Y_DCA, P_DCA)
    json.dumps(curve, allow_nan=False)
    assert curve["threshold"][0] == 0.05 and curve["threshold"][-1] == 0.5
    assert len(curve["threshold"]) == len(DEFAULT_DCA_THRESHOLDS) == 46
    assert curve["treat_none"] == [0.0] * 46
    k = curve["threshold"].index(0.25)
    assert curve["model"][k] == pytest.approx(0.2 - 0.4 / 3)
    assert curve["treat_all"][k] == pytest.approx(0.3 - 0.7 / 3)


def test_perfect_model_net_benefit_is_prevalence():
    y = np.array([0, 0, 0, 1, 1])
    p = y.astype(float)
    assert net_benefit(y, p, DEFAULT_DCA_THRESHOLDS) == pytest.approx(np.full(46, 0.4))


@pytest.mark.parametrize("thresholds", [[0.0, 0.2], [0.2, 1.0], [np.nan], [], ["a"]])
def test_bad_thresholds_raise_alfia_error(thresholds):
    with pytest.raises(AlfiaError, match="threshold probabilities"):
        net_benefit(Y_DCA, P_DCA, thresholds)


@pytest.mark.parametrize(
    "fn", [reliability_curve, brier_score, expected_calibration_error, calibration_summary, decision_curve]
)
def test_bad_inputs_raise_alfia_error(fn):
    with pytest.raises(AlfiaError, match="rows"):
        fn([0, 1, 1], [0.1, 0.2])
    with pytest.raises(AlfiaError, match="0 or 1"):
        fn([0, 3], [0.1, 0.2])
    with pytest.raises(AlfiaError, match="finite"):
        fn([0, 1], [0.1, np.inf])


def test_bad_n_bins_raises_alfia_error():
    with pytest.raises(AlfiaError, match="n_bins"):
        reliability_curve(Y_HAND, P_HAND, n_bins=0)
