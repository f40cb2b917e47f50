"""O:E, calibration intercept and slope (with stratified bootstrap CIs) against statsmodels' unpenalised logistic
fits, on models with a known answer; the lowess calibration curve against statsmodels' lowess; severity scores
carry none of them."""

import json
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit
from statsmodels.nonparametric.smoothers_lowess import lowess

from alfia.baselines.scores import evaluate_score, score_severity
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.evaluation.calibration import calibration_summary, smoothed_calibration_curve
from alfia.evaluation.metrics import (
    bootstrap_indices,
    calibration_intercept,
    calibration_metrics,
    calibration_slope,
    evaluate,
    format_metrics,
    observed_expected_ratio,
)

CAL_KEYS = ("oe_ratio", "calibration_intercept", "calibration_slope")


def _true_risk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Risks with an ICU-like spread (mean about 0.2) and outcomes drawn from them: y ~ Bernoulli(risk)."""
    rng = np.random.default_rng(seed)
    risk = expit(rng.normal(-1.8, 1.2, n))
    return (rng.random(n) < risk).astype(int), risk


def _models(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    y, risk = _true_risk(n, seed)
    return y, {"perfect": risk,                                   # slope 1, intercept 0, O:E 1
               "over-confident": expit(2.0 * logit(risk)),      # logit(risk) = z / 2: slope 0.5
               "shifted": expit(logit(risk) - 1.0)}             # logit(risk) = z + 1: intercept +1, slope 1


def _statsmodels(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The reference: calibration intercept (offset model) and slope from statsmodels' GLM Binomial."""
    z = logit(np.clip(p, 1e-6, 1 - 1e-6))
    intercept = sm.GLM(y, np.ones_like(z), family=sm.families.Binomial(), offset=z).fit(tol=1e-12).params[0]
    slope = sm.GLM(y, sm.add_constant(z), family=sm.families.Binomial()).fit(tol=1e-12).params[1]
    return float(intercept), float(slope)


@pytest.mark.parametrize("name", ["perfect", "over-confident", "shifted"])
def test_point_estimates_equal_statsmodels(name):
    y, models = _models()
    p = models[name]
    intercept, slope = _statsmodels(y, p)
    assert calibration_intercept(y, p) == pytest.approx(intercept, abs=1e-6)
    assert calibration_slope(y, p) == pytest.approx(slope, abs=1e-6)
    assert observed_expected_ratio(y, p) == pytest.approx(y.sum() / p.sum(), rel=1e-12)
    result = evaluate(y, p, n_boot=0)
    assert result["calibration_intercept"]["value"] == pytest.approx(intercept, abs=1e-6)
    assert result["calibration_slope"]["value"] == pytest.approx(slope, abs=1e-6)
    assert result["oe_ratio"]["value"] == pytest.approx(y.sum() / p.sum(), rel=1e-12)
    assert result["calibration_slope"]["ci_low"] is None and result["calibration_slope"]["failed_resamples"] == 0


def test_known_answers_with_their_intervals():
    y, models = _models()
    m = {name: evaluate(y, p, n_boot=200) for name, p in models.items()}

    def holds(entry, value):
        return entry["ci_low"] <= value <= entry["ci_high"]

    perfect = m["perfect"]
    assert holds(perfect["calibration_slope"], 1.0) and holds(perfect["calibration_intercept"], 0.0)
    assert holds(perfect["oe_ratio"], 1.0)
    assert abs(perfect["calibration_slope"]["value"] - 1) < 0.05 and abs(perfect["oe_ratio"]["value"] - 1) < 0.05
    over = m["over-confident"]
    assert abs(over["calibration_slope"]["value"] - 0.5) < 0.03 and holds(over["calibration_slope"], 0.5)
    assert over["calibration_slope"]["ci_high"] < 1.0    # over-confident: the interval excludes 1
    shifted = m["shifted"]
    assert abs(shifted["calibration_intercept"]["value"] - 1.0) < 0.05 and holds(shifted["calibration_intercept"], 1.0)
    assert shifted["calibration_intercept"]["ci_low"] > 0    # predictions too low: shift up
    assert holds(shifted["calibration_slope"], 1.0)          # a shift leaves the slope at 1
    assert shifted["oe_ratio"]["ci_low"] > 1.2               # many more deaths observed than predicted
    for result in m.values():
        for key in CAL_KEYS:
            entry = result[key]
            assert entry["ci_low"] < entry["value"] < entry["ci_high"]
        assert result["calibration_slope"]["failed_resamples"] == 0
        json.dumps(result, allow_nan=False)


def test_bootstrap_intervals_equal_statsmodels_fits_on_the_same_resamples():
    y, risk = _true_risk(300, seed=3)
    p = expit(1.5 * logit(risk) + 0.3)
    n_boot = 40
    m = evaluate(y, p, n_boot=n_boot, seed=7)
    fits = np.array([_statsmodels(y[idx], p[idx]) for idx in bootstrap_indices(y, n_boot=n_boot, seed=7)])
    oe = np.array([y[idx].sum() / p[idx].sum() for idx in bootstrap_indices(y, n_boot=n_boot, seed=7)])
    for key, values in (("calibration_intercept", fits[:, 0]), ("calibration_slope", fits[:, 1]), ("oe_ratio", oe)):
        lo, hi = np.percentile(values, [2.5, 97.5])
        assert (m[key]["ci_low"], m[key]["ci_high"]) == pytest.approx((lo, hi), abs=1e-6), key
    # calibration_metrics alone gives the same numbers (the same resamples)
    alone = calibration_metrics(y, p, n_boot=n_boot, seed=7)
    assert alone == {key: m[key] for key in CAL_KEYS}


def _separates(y: np.ndarray, z: np.ndarray) -> bool:
    pos, neg = z[y == 1], z[y == 0]
    return bool(pos.min() >= neg.max() or pos.max() <= neg.min())


def test_failed_fits_are_counted_and_left_out_of_the_interval():
    # four deaths: three far above every survivor, one among them; a resample without that one is separated
    y = np.array([1] * 4 + [0] * 30)
    p = np.concatenate([[0.9, 0.8, 0.7, 0.2], [0.3] + [0.1] * 29])
    n_boot = 60
    m = evaluate(y, p, n_boot=n_boot)
    z = logit(p)
    resamples = list(bootstrap_indices(y, n_boot=n_boot))
    separated = [_separates(y[idx], z[idx]) for idx in resamples]
    assert 0 < sum(separated) < n_boot
    assert m["calibration_slope"]["failed_resamples"] == sum(separated)
    assert m["calibration_intercept"]["failed_resamples"] == 0   # the offset model needs only both outcomes
    slopes = [_statsmodels(y[idx], p[idx])[1] for idx, sep in zip(resamples, separated, strict=True) if not sep]
    lo, hi = np.percentile(slopes, [2.5, 97.5])
    assert (m["calibration_slope"]["ci_low"], m["calibration_slope"]["ci_high"]) == pytest.approx((lo, hi), abs=1e-5)
    assert m["calibration_slope"]["value"] == pytest.approx(_statsmodels(y, p)[1], abs=1e-6)
    assert f"[{sum(separated)} resample(s) failed to fit, left out]" in format_metrics(m)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")  # the reference's
def test_a_separating_model_has_no_slope_and_every_resample_fails():
    y = np.array([1] * 5 + [0] * 20)
    p = np.concatenate([np.linspace(0.6, 0.9, 5), np.linspace(0.05, 0.5, 20)])
    m = evaluate(y, p, n_boot=30)
    assert m["calibration_slope"] == {"value": None, "ci_low": None, "ci_high": None, "failed_resamples": 30}
    assert calibration_slope(y, p) is None
    assert m["calibration_intercept"]["value"] == pytest.approx(_statsmodels(y, p)[0], abs=1e-6)
    assert "Calibration slope n/a [30 resample(s) failed to fit, left out]" in format_metrics(m)


def test_probabilities_of_0_and_1_are_clipped_before_the_logit():
    y, risk = _true_risk(2000, seed=5)
    p = risk.copy()
    p[:20], p[20:40] = 0.0, 1.0
    intercept, slope = _statsmodels(y, p)
    assert np.isfinite([intercept, slope]).all()
    assert calibration_intercept(y, p) == pytest.approx(intercept, abs=1e-6)
    assert calibration_slope(y, p) == pytest.approx(slope, abs=1e-6)


def test_one_outcome_has_no_fit_and_evaluate_refuses_it():
    assert calibration_intercept([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert calibration_slope([0, 0, 0], [0.2, 0.5, 0.9]) is None
    assert observed_expected_ratio([0, 0], [0.0, 0.0]) is None
    assert observed_expected_ratio([0, 1], [0.25, 0.25]) == 2.0
    with pytest.raises(AlfiaError, match="both outcomes"):
        calibration_metrics([1, 1], [0.2, 0.3])


def test_severity_scores_carry_no_calibration():
    y, risk = _true_risk(500, seed=2)
    score = evaluate_score(y, risk, threshold=0.3, n_boot=20)
    assert not {"brier", "ece", *CAL_KEYS} & set(score)
    assert "auprc" in score and "sensitivity" in score
    without = evaluate(y, risk, n_boot=20, calibration=False)
    assert not {"brier", "ece", *CAL_KEYS} & set(without)
    assert without["auprc"] == evaluate(y, risk, n_boot=20)["auprc"]   # the rest unchanged, same resamples
    cohort = generate_synthetic("mimic-iv", n=400, seed=1)
    models, _ = score_severity(cohort, n_boot=20)
    assert models
    for entry in models.values():
        for where in ("test", "val", "all", "external"):
            assert not {"brier", "ece", *CAL_KEYS} & set(entry.get(where) or {})


def test_format_and_summary_name_the_three():
    y, models = _models(n=3000)
    text = format_metrics(evaluate(y, models["over-confident"], n_boot=50))
    lines = {line.split(" ")[0] + (" " + line.split(" ")[1] if line.startswith("Calibration") else ""): line
             for line in text.splitlines()}
    assert "(95% CI " in lines["O:E"] and "(95% CI " in lines["Calibration slope"]
    assert "(95% CI " in lines["Calibration intercept"]
    summary = calibration_summary(y, models["shifted"])
    assert summary["calibration_intercept"] == pytest.approx(calibration_intercept(y, models["shifted"]))
    assert summary["calibration_slope"] == pytest.approx(calibration_slope(y, models["shifted"]))
    assert summary["oe_ratio"] == pytest.approx(observed_expected_ratio(y, models["shifted"]))
    json.dumps(summary, allow_nan=False)


def test_smoothed_curve_is_statsmodels_lowess_with_a_bootstrap_band():
    y, models = _models(n=4000, seed=4)
    p = models["perfect"]
    curve = smoothed_calibration_curve(y, p, n_boot=50, seed=3)
    grid = np.asarray(curve["predicted"])
    assert grid[0] == pytest.approx(np.percentile(p, 1)) and grid[-1] == pytest.approx(np.percentile(p, 99))
    reference = np.clip(lowess(y.astype(float), p, frac=2 / 3, it=0, xvals=grid), 0, 1)
    assert curve["observed"] == pytest.approx(reference.tolist(), abs=1e-12)
    boot = np.stack([np.clip(lowess(y[idx].astype(float), p[idx], frac=2 / 3, it=0, xvals=grid), 0, 1)
                     for idx in bootstrap_indices(y, n_boot=50, seed=3)])
    assert curve["ci_low"] == pytest.approx(np.percentile(boot, 2.5, axis=0).tolist(), abs=1e-12)
    assert curve["ci_high"] == pytest.approx(np.percentile(boot, 97.5, axis=0).tolist(), abs=1e-12)
    # a perfectly calibrated model: the curve follows the diagonal, its band holds it almost everywhere
    lo, hi = np.asarray(curve["ci_low"]), np.asarray(curve["ci_high"])
    assert np.max(np.abs(np.asarray(curve["observed"]) - grid)) < 0.06
    assert np.mean((lo <= grid) & (grid <= hi)) > 0.9
    # an over-confident one: flatter than the diagonal (its high predictions are above the observed rate)
    over = smoothed_calibration_curve(y, models["over-confident"], n_boot=0)
    assert over["ci_low"] is None and over["observed"][-1] < over["predicted"][-1] - 0.1
    json.dumps(curve, allow_nan=False)
    with pytest.raises(AlfiaError, match="frac"):
        smoothed_calibration_curve(y, p, frac=0)


def test_no_warnings_and_affordable_on_a_large_cohort():
    import time

    y, models = _models(n=12_000, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        start = time.perf_counter()
        m = evaluate(y, models["over-confident"], threshold=0.3, n_boot=300)
        seconds = time.perf_counter() - start
    assert m["calibration_slope"]["failed_resamples"] == 0
    assert seconds < 20   # about 1 s on one core: the fits are vectorised over resamples
