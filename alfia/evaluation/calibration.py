"""Calibration and clinical usefulness: reliability curve, Brier score, ECE and decision-curve net benefit.

- Reliability curve: ``n_bins`` equal-width bins of the predicted probability on [0, 1] (bin ``b`` is
  ``[b/n_bins, (b+1)/n_bins)``, the last one closed); per non-empty bin the mean predicted probability, the
  observed event rate and the count.
- Brier score ``mean((p - y)^2)`` and ECE ``sum_b (n_b / N) |mean(y_b) - mean(p_b)|`` over the same bins; O:E
  ``sum(y) / sum(p)``, the calibration intercept (logistic model of ``y`` with ``logit(p)`` as an offset) and the
  calibration slope (logistic regression of ``y`` on ``logit(p)``), ``p`` clipped to ``[1e-6, 1 - 1e-6]`` before the
  logit (see :mod:`alfia.evaluation.metrics`, which also gives them bootstrap intervals in ``evaluate``).
- Smoothed calibration curve: a lowess smooth (statsmodels, local linear, ``frac`` 2/3, no robustness iterations,
  as for a 0/1 outcome) of ``y`` on ``p``, evaluated on ``n_points`` equally spaced predictions between the 1st and
  99th percentiles of ``p`` (where there are data to smooth), clipped to [0, 1]; its 95% band is the 2.5th and
  97.5th percentiles, at each point, of the same smooth over stratified bootstrap resamples (those of
  :func:`alfia.evaluation.metrics.bootstrap_indices`).
- Net benefit at threshold probability ``pt`` (Vickers & Elkin 2006), treating ``p >= pt`` as positive:
  ``TP/N - FP/N * pt / (1 - pt)``. Treat-all: ``prevalence - (1 - prevalence) * pt / (1 - pt)``; treat-none: 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from alfia.errors import AlfiaError
from alfia.evaluation.metrics import (
    CI_LEVEL,
    _bin_index,
    _check_n_bins,
    _check_n_boot,
    bootstrap_indices,
    brier_score,
    calibration_intercept,
    calibration_slope,
    check_inputs,
    check_labels,
    expected_calibration_error,
    observed_expected_ratio,
)
from alfia.run_folder import RunFolder

__all__ = [
    "reliability_curve",
    "brier_score",
    "expected_calibration_error",
    "calibration_summary",
    "smoothed_calibration_curve",
    "net_benefit",
    "treat_all_net_benefit",
    "decision_curve",
    "DEFAULT_DCA_THRESHOLDS",
]

# Threshold probabilities 0.05, 0.06, ..., 0.50.
DEFAULT_DCA_THRESHOLDS: tuple[float, ...] = tuple(round(k / 100, 2) for k in range(5, 51))


def reliability_curve(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> list[dict[str, float | int]]:
    """Reliability-diagram data: one dict per non-empty bin, lowest bin first.

    Keys: ``bin_low``, ``bin_high``, ``mean_predicted``, ``observed_rate``, ``count``.
    """
    n_bins = _check_n_bins(n_bins)
    y, p = check_inputs(y, p)
    b = _bin_index(p, n_bins)
    counts = np.bincount(b, minlength=n_bins)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y.astype(np.float64), minlength=n_bins)
    return [
        {
            "bin_low": k / n_bins,
            "bin_high": (k + 1) / n_bins,
            "mean_predicted": float(sum_p[k] / counts[k]),
            "observed_rate": float(sum_y[k] / counts[k]),
            "count": int(counts[k]),
        }
        for k in range(n_bins)
        if counts[k] > 0
    ]


def calibration_summary(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """``{"brier", "ece", "oe_ratio", "calibration_intercept", "calibration_slope", "n_bins", "bins"}`` with
    ``bins`` from :func:`reliability_curve` (JSON-serialisable; a fit that fails, or an O:E with nothing expected,
    is ``None``). Point values only: :func:`alfia.evaluation.metrics.evaluate` gives their intervals."""
    return {
        "brier": brier_score(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
        "oe_ratio": observed_expected_ratio(y, p),
        "calibration_intercept": calibration_intercept(y, p),
        "calibration_slope": calibration_slope(y, p),
        "n_bins": int(n_bins),
        "bins": reliability_curve(y, p, n_bins),
    }


LOWESS_FRAC = 2.0 / 3.0


def _lowess(y: np.ndarray, p: np.ndarray, grid: np.ndarray, frac: float) -> np.ndarray:
    from statsmodels.nonparametric.smoothers_lowess import lowess

    return np.asarray(lowess(y, p, frac=frac, it=0, xvals=grid), dtype=np.float64)


def smoothed_calibration_curve(y: ArrayLike, p: ArrayLike, n_boot: int = 200, seed: int = 42,
                               frac: float = LOWESS_FRAC, n_points: int = 50) -> dict[str, Any]:
    """Lowess-smoothed calibration curve with a stratified bootstrap 95% band (see the module doc).

    Returns ``{"predicted", "observed", "ci_low", "ci_high", "frac", "n_boot", "seed", "ci_level"}`` as lists
    (JSON-serialisable); ``ci_low``/``ci_high`` are ``None`` with ``n_boot=0``. Resamples whose smooth is not
    finite at a point (too few distinct predictions around it) are left out of that point's band.
    """
    y, p = check_inputs(y, p)
    n_boot = _check_n_boot(n_boot)
    if not (isinstance(frac, int | float) and 0.0 < frac <= 1.0):
        raise AlfiaError(f"frac must be a fraction in (0, 1], got {frac!r}")
    if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer) or n_points < 2:
        raise AlfiaError(f"n_points must be a whole number >= 2, got {n_points!r}")
    lo, hi = np.percentile(p, [1.0, 99.0])
    grid = np.linspace(lo, hi, int(n_points)) if hi > lo else np.array([lo, hi], dtype=np.float64)
    yf = y.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = _lowess(yf, p, grid, frac)
        band_low = band_high = None
        if n_boot:
            curves = np.stack([_lowess(yf[idx], p[idx], grid, frac) for idx in bootstrap_indices(y, n_boot, seed)])
            curves = np.where(np.isfinite(curves), np.clip(curves, 0.0, 1.0), np.nan)
            alpha = 100.0 * (1.0 - CI_LEVEL) / 2.0
            ok = np.isfinite(curves).any(axis=0)
            band_low, band_high = np.full(grid.shape[0], np.nan), np.full(grid.shape[0], np.nan)
            if ok.any():
                band_low[ok], band_high[ok] = np.nanpercentile(curves[:, ok], [alpha, 100.0 - alpha], axis=0)
    observed = np.clip(observed, 0.0, 1.0)

    def listed(values: np.ndarray | None) -> list[float | None] | None:
        return None if values is None else [float(v) if np.isfinite(v) else None for v in values]

    return {"predicted": listed(grid), "observed": listed(observed), "ci_low": listed(band_low),
            "ci_high": listed(band_high), "frac": float(frac), "n_boot": n_boot, "seed": seed, "ci_level": CI_LEVEL}


def _check_thresholds(thresholds: ArrayLike) -> np.ndarray:
    try:
        pt = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    except (TypeError, ValueError):
        raise AlfiaError(f"threshold probabilities must be numbers in (0, 1), got {thresholds!r}") from None
    if pt.ndim != 1 or pt.shape[0] == 0:
        raise AlfiaError("threshold probabilities must be a non-empty 1-D list of numbers in (0, 1)")
    bad = ~np.isfinite(pt) | (pt <= 0.0) | (pt >= 1.0)
    if bad.any():
        raise AlfiaError(f"threshold probabilities must lie strictly between 0 and 1; got {pt[bad][0].item()!r}")
    return pt


def net_benefit(y: ArrayLike, p: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Net benefit ``TP/N - FP/N * pt/(1 - pt)`` of treating ``p >= pt`` as positive, for each ``pt``."""
    pt = _check_thresholds(thresholds)
    y, p = check_inputs(y, p)
    n = y.shape[0]
    pred = p[None, :] >= pt[:, None]
    tp = (pred & (y == 1)[None, :]).sum(axis=1)
    fp = (pred & (y == 0)[None, :]).sum(axis=1)
    return tp / n - fp / n * pt / (1.0 - pt)


def treat_all_net_benefit(y: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Net benefit of treating everyone: ``prevalence - (1 - prevalence) * pt / (1 - pt)``."""
    pt = _check_thresholds(thresholds)
    y = check_labels(y)
    prevalence = float(y.mean())
    return prevalence - (1.0 - prevalence) * pt / (1.0 - pt)


def decision_curve(
    y: ArrayLike, p: ArrayLike, thresholds: ArrayLike = DEFAULT_DCA_THRESHOLDS
) -> dict[str, list[float]]:
    """Decision-curve data: ``{"threshold", "model", "treat_all", "treat_none"}`` as lists (JSON-serialisable).

    Default thresholds: 0.05 to 0.50 in steps of 0.01. Treat-none is 0 everywhere.
    """
    pt = _check_thresholds(thresholds)
    model = net_benefit(y, p, pt)
    treat_all = treat_all_net_benefit(y, pt)
    return {
        "threshold": [float(t) for t in pt],
        "model": [float(v) for v in model],
        "treat_all": [float(v) for v in treat_all],
        "treat_none": [0.0] * pt.shape[0],
    }


# -- recalibration ---------------------------------------------------------------------------------------------
CALIBRATION_FILE = RunFolder.CALIBRATION


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


class Calibrator:
    """``p = sigmoid(a * logit(p_raw) + b)``, fitted on the validation split after training.

    ``platt`` (Platt 1999) fits ``a`` and ``b``; ``temperature`` (Guo et al. 2017) fits ``a = 1/T`` with
    ``b = 0``; ``none`` is the identity. Both fits minimise the log loss (unpenalised): a monotone map, so
    rankings (AUPRC, AUROC) are unchanged and only the probabilities move.
    """

    def __init__(self, method: str = "none", a: float = 1.0, b: float = 0.0):
        if method not in ("none", "platt", "temperature"):
            raise AlfiaError(f"unknown calibration method {method!r}; use none, platt or temperature")
        self.method, self.a, self.b = method, float(a), float(b)

    def fit(self, y: ArrayLike, p_raw: ArrayLike) -> Calibrator:
        from scipy.optimize import minimize

        y, p_raw = check_inputs(y, p_raw, both_classes=True)
        z, y = _logit(p_raw), y.astype(np.float64)
        if self.method == "none":
            return self

        def loss(theta: np.ndarray) -> float:
            a, b = theta[0], theta[1] if self.method == "platt" else 0.0
            s = a * z + b
            return float(np.mean(np.logaddexp(0.0, s) - y * s))

        start = np.array([1.0, 0.0]) if self.method == "platt" else np.array([1.0])
        theta = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12}).x
        self.a, self.b = float(theta[0]), float(theta[1]) if self.method == "platt" else 0.0
        return self

    def transform(self, p_raw: ArrayLike) -> np.ndarray:
        if self.method == "none":
            return np.asarray(p_raw, dtype=np.float64)
        from scipy.special import expit

        return expit(self.a * _logit(p_raw) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b,
                "formula": "p = sigmoid(a * logit(p_raw) + b)", "fitted_on": "validation split"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        try:
            return cls(str(data["method"]), float(data["a"]), float(data["b"]))
        except (KeyError, TypeError, ValueError):
            raise AlfiaError(f"{CALIBRATION_FILE} is damaged (needs method, a and b); train the run again") \
                from None
