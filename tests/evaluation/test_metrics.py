"""Metrics against scikit-learn, bootstrap determinism and stratification, thresholds, paired differences."""

import json

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    fbeta_score,
    precision_recall_curve,
    roc_auc_score,
)

from alfia.errors import AlfiaError
from alfia.evaluation import (
    TEST_OPTIMAL_LABEL,
    average_precision,
    best_fbeta,
    bootstrap_indices,
    brier_score,
    choose_threshold,
    evaluate,
    expected_calibration_error,
    format_metrics,
    paired_difference,
    roc_auc,
    threshold_metrics,
)


def _data(n=600, prevalence=0.15, ties=None, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    p = np.clip(rng.beta(2, 6, n) + 0.25 * y, 0.0, 1.0)
    if ties is not None:
        p = np.round(p * ties) / ties
    return y, p


@pytest.mark.parametrize("ties", [None, 50, 10, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auprc_auroc_match_sklearn(ties, seed):
    y, p = _data(ties=ties, seed=seed)
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p), rel=1e-12, abs=1e-15)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12, abs=1e-15)


def test_auprc_auroc_all_tied_scores():
    y = np.array([0, 1, 0, 1, 0])
    p = np.full(5, 0.4)
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))
    assert roc_auc(y, p) == pytest.approx(0.5)


@pytest.mark.parametrize("beta", [1.0, 2.0])
@pytest.mark.parametrize("ties", [None, 10])
def test_best_fbeta_matches_sklearn_curve(beta, ties):
    y, p = _data(ties=ties, seed=3)
    precision, recall, thresholds = precision_recall_curve(y, p)
    b2 = beta * beta
    with np.errstate(invalid="ignore"):
        f = np.nan_to_num((1 + b2) * precision * recall / (b2 * precision + recall))[:-1]
    value, threshold = best_fbeta(y, p, beta)
    assert value == pytest.approx(f.max(), rel=1e-12)
    assert value == pytest.approx(fbeta_score(y, p >= threshold, beta=beta), rel=1e-12)
    assert threshold in thresholds


def test_threshold_metrics_match_sklearn_and_hand_counts():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.5, 0.05])
    m = threshold_metrics(y, p, 0.5)  # predicted positive: 0.9, 0.6, 0.7, 0.5 -> TP 2, FP 2
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 2, 3, 1)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(3 / 5)
    assert m["ppv"] == pytest.approx(2 / 4)
    assert m["npv"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(fbeta_score(y, p >= 0.5, beta=1))
    assert m["f2"] == pytest.approx(fbeta_score(y, p >= 0.5, beta=2))
    assert threshold_metrics(y, p, 0.95)["ppv"] is None  # nothing predicted positive: undefined


def test_brier_and_ece_match_sklearn_on_random_data():
    y, p = _data(seed=4)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    bins = np.minimum((p * 10).astype(int), 9)
    expected = sum(
        (bins == b).mean() * abs(y[bins == b].mean() - p[bins == b].mean()) for b in range(10) if (bins == b).any()
    )
    assert expected_calibration_error(y, p) == pytest.approx(expected, rel=1e-10)


def test_bootstrap_is_deterministic_with_seed():
    y, p = _data(n=400, seed=5)
    a = evaluate(y, p, threshold=0.4, n_boot=200, seed=42)
    b = evaluate(y, p, threshold=0.4, n_boot=200, seed=42)
    c = evaluate(y, p, threshold=0.4, n_boot=200, seed=7)
    assert a == b
    assert a["auprc"]["ci_low"] != c["auprc"]["ci_low"]
    first = [idx.copy() for idx in bootstrap_indices(y, 5, 42)]
    second = list(bootstrap_indices(y, 5, 42))
    assert all(np.array_equal(u, v) for u, v in zip(first, second, strict=True))


def test_stratified_resampling_keeps_class_counts():
    y, _ = _data(n=300, prevalence=0.1, seed=6)
    resamples = list(bootstrap_indices(y, 50, 42))
    assert len(resamples) == 50
    for idx in resamples:
        assert idx.shape == y.shape
        assert y[idx].sum() == y.sum()
    # with replacement: some rows repeat
    assert any(len(np.unique(idx)) < len(idx) for idx in resamples)


def test_bootstrap_blocks_do_not_change_results(monkeypatch):
    from alfia.evaluation import metrics

    y, p = _data(n=300, seed=7)
    whole = evaluate(y, p, threshold=0.3, n_boot=100)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 1000)  # several blocks of 3 resamples
    assert evaluate(y, p, threshold=0.3, n_boot=100) == whole


def test_bootstrap_cis_match_a_plain_sklearn_loop():
    y, p = _data(n=200, ties=20, seed=8)
    result = evaluate(y, p, n_boot=100, seed=42)
    aps = [average_precision_score(y[idx], p[idx]) for idx in bootstrap_indices(y, 100, 42)]
    aucs = [roc_auc_score(y[idx], p[idx]) for idx in bootstrap_indices(y, 100, 42)]
    assert result["auprc"]["ci_low"] == pytest.approx(np.percentile(aps, 2.5), rel=1e-10)
    assert result["auprc"]["ci_high"] == pytest.approx(np.percentile(aps, 97.5), rel=1e-10)
    assert result["auroc"]["ci_low"] == pytest.approx(np.percentile(aucs, 2.5), rel=1e-10)
    assert result["auroc"]["ci_high"] == pytest.approx(np.percentile(aucs, 97.5), rel=1e-10)


def test_cis_contain_point_estimates_on_typical_data():
    y, p = _data(n=2000, seed=9)
    result = evaluate(y, p, threshold=0.45)
    for name in (
        "auprc",
        "auroc",
        "brier",
        "best_f1",
        "best_f2",
        "f1",
        "f2",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
    ):
        entry = result[name]
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], name
        assert entry["ci_low"] < entry["ci_high"], name


def test_evaluate_structure_is_json_serialisable_and_consistent():
    y, p = _data(n=500, seed=10)
    result = evaluate(y, p, threshold=0.35, n_boot=50)
    json.dumps(result, allow_nan=False)
    assert result["n"] == 500 and result["n_pos"] == int(y.sum()) and result["threshold"] == 0.35
    assert result["auprc"]["value"] == pytest.approx(average_precision_score(y, p))
    assert result["auroc"]["value"] == pytest.approx(roc_auc_score(y, p))
    assert result["brier"]["value"] == pytest.approx(brier_score_loss(y, p))
    f1, t1 = best_fbeta(y, p, 1)
    assert result["best_f1"]["value"] == pytest.approx(f1) and result["best_f1"]["threshold"] == t1
    assert result["best_f1"]["label"] == TEST_OPTIMAL_LABEL
    at = threshold_metrics(y, p, 0.35)
    for name in ("f1", "f2", "sensitivity", "specificity", "ppv", "npv"):
        assert result[name]["value"] == pytest.approx(at[name])
    assert result["confusion"] == {k: at[k] for k in ("tp", "fp", "tn", "fn")}
    without = evaluate(y, p, n_boot=0)
    assert without["threshold"] is None and "f1" not in without and "sensitivity" not in without
    assert without["auprc"]["ci_low"] is None


def test_format_metrics_one_line_per_metric():
    y, p = _data(n=400, seed=11)
    text = format_metrics(evaluate(y, p, threshold=0.4, n_boot=100))
    lines = text.splitlines()
    auprc = next(line for line in lines if line.startswith("AUPRC "))
    assert "(95% CI " in auprc and "\u2013" in auprc
    assert any(line.startswith("Best F1 [test-optimal (optimistic)]") for line in lines)
    assert any(line.startswith("Sensitivity @ 0.400") for line in lines)


def test_chosen_threshold_depends_on_validation_only():
    y_val, p_val = _data(n=500, seed=12)
    y_test, p_test = _data(n=500, seed=13)
    t = choose_threshold(y_val, p_val)
    assert t == best_fbeta(y_val, p_val, 1.0)[1]
    before = evaluate(y_test, p_test, threshold=t, n_boot=0)
    shuffled = np.random.default_rng(0).permutation(y_test)
    assert choose_threshold(y_val, p_val) == t  # test labels played no part
    after = evaluate(shuffled, p_test, threshold=t, n_boot=0)
    assert before["threshold"] == after["threshold"] == t
    assert choose_threshold(y_val, p_val, beta=2) <= t  # F2 favours recall: a lower or equal threshold


def test_paired_difference_identical_predictions_is_exactly_zero():
    y, p = _data(n=500, ties=20, seed=14)
    for metric in ("auprc", "auroc"):
        d = paired_difference(y, p, p.copy(), metric=metric, n_boot=300)
        assert (d["difference"], d["ci_low"], d["ci_high"]) == (0.0, 0.0, 0.0)


def test_paired_difference_matches_point_metrics_and_is_deterministic():
    y, p = _data(n=500, seed=15)
    noisy = np.clip(p + np.random.default_rng(1).normal(0, 0.15, p.shape), 0, 1)
    d = paired_difference(y, p, noisy, metric="auprc", n_boot=200)
    assert d["difference"] == pytest.approx(average_precision_score(y, p) - average_precision_score(y, noisy))
    assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    assert d == paired_difference(y, p, noisy, metric="auprc", n_boot=200)
    auc = paired_difference(y, p, noisy, metric="auroc", n_boot=200)
    assert auc["difference"] == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, noisy))
    # same resamples: the per-resample difference equals the difference of each model's own bootstrap
    diffs = [
        average_precision_score(y[i], p[i]) - average_precision_score(y[i], noisy[i])
        for i in bootstrap_indices(y, 200, 42)
    ]
    assert d["ci_low"] == pytest.approx(np.percentile(diffs, 2.5), rel=1e-9)


@pytest.mark.parametrize(
    "y, p, message",
    [
        ([0, 1, 1], [0.1, 0.2], "rows"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "0 or 1"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "finite"),
        ([0, 1, 1], [0.1, 1.2, 0.3], "[0, 1]"),
        ([0, 1, 1], [-0.1, 0.5, 0.3], "[0, 1]"),
        ([1, 1, 1], [0.1, 0.5, 0.3], "both outcomes"),
        ([0, 0, 0], [0.1, 0.5, 0.3], "both outcomes"),
        ([], [], "empty"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        (["a", "b"], [0.1, 0.2], "labels"),
        ([0, 1], ["x", "y"], "predictions"),
    ],
)
def test_bad_inputs_raise_alfia_error(y, p, message):
    for fn in (evaluate, average_precision, roc_auc):
        with pytest.raises(AlfiaError, match=message.replace("[", r"\[").replace("]", r"\]")):
            fn(y, p)


def test_bad_options_raise_alfia_error():
    y, p = _data(n=100, seed=16)
    with pytest.raises(AlfiaError, match="threshold"):
        evaluate(y, p, threshold=1.5)
    with pytest.raises(AlfiaError, match="n_boot"):
        evaluate(y, p, n_boot=-1)
    with pytest.raises(AlfiaError, match="metric"):
        paired_difference(y, p, p, metric="brier")
    with pytest.raises(AlfiaError, match="rows"):
        paired_difference(y, p, p[:-1])
    with pytest.raises(AlfiaError, match="beta"):
        choose_threshold(y, p, beta=0)


def test_single_class_allowed_where_defined():
    y = np.zeros(4, dtype=int)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert brier_score(y, p) == pytest.approx(np.mean(p**2))
    assert threshold_metrics(y, p, 0.25)["sensitivity"] is None
