"""Known answers: separation measures on hand-placed clusters, Brier/ECE by hand, net benefit on a small table."""

import numpy as np
import pytest

from alfia.analysis.latent import separation_measures
from alfia.errors import AlfiaError
from alfia.evaluation.calibration import calibration_summary, decision_curve, net_benefit


def test_separation_measures_on_two_hand_placed_clusters():
    # after L2 normalisation: negatives at angles 0 and 90 degrees, positives at 180 and 270 degrees
    x = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, -5.0]])
    y = np.array([0, 0, 1, 1])
    m = separation_measures(x, y)
    # centroids (0.5, 0.5) and (-0.5, -0.5): distance sqrt(2)
    assert m["centroid_distance"] == pytest.approx(np.sqrt(2))
    # (-1, 0): nearest negative (0, 1) at sqrt(2); (0, -1): nearest (1, 0) at sqrt(2)
    assert m["nearest_negative"] == pytest.approx(np.sqrt(2))
    assert m["within_pos"] == pytest.approx(np.sqrt(2))
    assert m["within_neg"] == pytest.approx(np.sqrt(2))
    assert m["separation_ratio"] == pytest.approx(1.0)
    # silhouette: a = sqrt(2), b = mean(2, sqrt(2)) for every point
    b = (2 + np.sqrt(2)) / 2
    assert m["silhouette"] == pytest.approx((b - np.sqrt(2)) / b)


def test_separation_improves_with_tighter_clusters_and_needs_both_classes():
    rng = np.random.default_rng(0)
    centre = np.array([1.0, 0, 0])
    other = np.array([0, 1.0, 0])
    tight = np.vstack([centre + 0.01 * rng.normal(size=(20, 3)), other + 0.01 * rng.normal(size=(20, 3))])
    loose = np.vstack([centre + 0.5 * rng.normal(size=(20, 3)), other + 0.5 * rng.normal(size=(20, 3))])
    y = np.r_[np.zeros(20), np.ones(20)]
    t, lo = separation_measures(tight, y), separation_measures(loose, y)
    assert t["separation_ratio"] > 10 * lo["separation_ratio"]
    assert t["silhouette"] > 0.9 > lo["silhouette"]
    with pytest.raises(AlfiaError):
        separation_measures(tight, np.zeros(40))


def test_brier_and_ece_by_hand():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.1, 0.15, 0.8, 0.7, 0.9])
    s = calibration_summary(y, p, n_bins=2)
    assert s["brier"] == pytest.approx((0.01 + 0.7225 + 0.04 + 0.49 + 0.01) / 5)
    # bin [0, .5): p .1 .15, y 0 1 -> |0.5 - 0.125| * 2/5; bin [.5, 1]: p .8 .7 .9, y 1 0 1 -> |2/3 - .8| * 3/5
    assert s["ece"] == pytest.approx(0.375 * 2 / 5 + abs(2 / 3 - 0.8) * 3 / 5)
    assert [b["count"] for b in s["bins"]] == [2, 3]


def test_net_benefit_on_a_small_table():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.55, 0.3, 0.2, 0.1, 0.1, 0.05, 0.4, 0.2])
    # pt 0.25: predicted positive p >= .25 -> rows 0,1,2,3,8: TP 2, FP 3 -> 2/10 - 3/10 * (1/3) = 0.1
    # pt 0.5: rows 0,1,2: TP 2, FP 1 -> 0.2 - 0.1 * 1 = 0.1
    assert net_benefit(y, p, [0.25, 0.5]) == pytest.approx([0.1, 0.1])
    dca = decision_curve(y, p, [0.25])
    assert dca["treat_all"] == pytest.approx([0.3 - 0.7 / 3])
    assert dca["treat_none"] == [0.0]
