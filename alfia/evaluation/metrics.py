"""Point metrics, stratified bootstrap confidence intervals and paired model comparison.

Every model of the project (ALFIA, tabular baselines, derived models, severity scores) is scored here, so that
all numbers in a results table come from one implementation.

Definitions (``y`` in {0, 1}, ``p`` a predicted probability in [0, 1], a row is predicted positive when
``p >= threshold``):

- AUPRC: average precision, exactly as ``sklearn.metrics.average_precision_score``:
  ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct scores taken as thresholds, highest first (no interpolation).
- AUROC: area under the ROC curve, as ``sklearn.metrics.roc_auc_score`` (tied scores count one half).
- Best F-beta: the largest F-beta over the precision-recall curve's thresholds (the distinct scores), with the
  threshold reaching it (the highest one if several do). Maximised on the data being evaluated, it is
  *test-optimal (optimistic)*: report it beside, never instead of, metrics at a threshold fixed in advance
  with :func:`choose_threshold` on the validation split.
- Brier score: ``mean((p - y)^2)``.
- ECE (expected calibration error): ``sum_b (n_b / N) * |mean(y_b) - mean(p_b)|`` over ``n_bins`` equal-width
  bins of ``p`` on [0, 1] (bin ``b`` is ``[b/n_bins, (b+1)/n_bins)``, the last one closed so ``p = 1`` is
  counted); empty bins contribute nothing.
- O:E ratio: observed over expected deaths, ``sum(y) / sum(p)``; 1 is ideal, above 1 more deaths were observed than
  predicted (the predictions are too low on average). Undefined when ``sum(p) = 0``.
- Calibration intercept (calibration-in-the-large): ``a`` of the unpenalised logistic model
  ``logit P(y = 1) = a + z`` with ``z = logit(p)`` as an offset (its coefficient fixed at 1); 0 is ideal, above 0 the
  predictions are too low on average (they need shifting up), below 0 too high. It equals statsmodels'
  ``GLM(y, ones, family=Binomial(), offset=z)``.
- Calibration slope: ``b`` of the unpenalised logistic regression ``logit P(y = 1) = c + b z``; 1 is ideal, below 1
  the predictions are over-confident (too extreme: high risks too high, low risks too low), above 1 under-confident
  (too moderate). It equals statsmodels' ``GLM(y, [1, z], family=Binomial())``. Undefined when ``z`` separates the
  outcomes (every death's ``z`` at or above every survivor's, or at or below): no maximum-likelihood fit exists.
- For both fits ``p`` is clipped to ``[1e-6, 1 - 1e-6]`` before the logit (so that ``p = 0`` or ``1`` stays finite).
  They are fitted by Newton-Raphson with step halving (the point estimate from ``a = 0`` / ``(c, b) = (0, 1)``, each
  resample from the point estimate) until every step is below ``1e-10 * (1 + |coefficient|)``, at most 100
  iterations. A fit that is separated, does not converge or leaves the finite numbers *fails*: its value is
  ``None``, and a resample whose fit fails is left out of the interval and counted (``failed_resamples``).
- At a threshold: sensitivity TP/(TP+FN), specificity TN/(TN+FP), PPV TP/(TP+FP), NPV TN/(TN+FN), F1 and F2.
  A ratio with a zero denominator (e.g. PPV when nothing is predicted positive) is undefined: ``None``.

Confidence intervals: ``n_boot`` stratified bootstrap resamples (positives and negatives each resampled with
replacement, keeping their counts), seeded with ``seed``; 95% percentile intervals (2.5th and 97.5th
percentiles, numpy's default linear interpolation). Resamples where a metric is undefined are left out of its
interval. The resamples depend only on the labels, ``n_boot`` and ``seed``: every metric, and both models of
:func:`paired_difference`, use the same ones.

The calibration metrics (Brier, ECE, O:E, calibration intercept and slope) are those of probabilities: a severity
score mapped onto [0, 1] is a point count, not a probability, and ``evaluate(..., calibration=False)`` leaves them
out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from alfia.errors import AlfiaError

__all__ = [
    "average_precision",
    "roc_auc",
    "best_fbeta",
    "choose_threshold",
    "threshold_metrics",
    "brier_score",
    "expected_calibration_error",
    "observed_expected_ratio",
    "calibration_intercept",
    "calibration_slope",
    "calibration_metrics",
    "CALIBRATION_FIT_METRICS",
    "bootstrap_indices",
    "evaluate",
    "format_metrics",
    "paired_difference",
    "TEST_OPTIMAL_LABEL",
]

TEST_OPTIMAL_LABEL = "test-optimal (optimistic)"
CI_LEVEL = 0.95
_PAIRED_METRICS = ("auprc", "auroc")
# Upper bound on the elements of one block of resamples held in memory at once (resamples x rows).
_BLOCK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------------------------- validation


def check_inputs(y: ArrayLike, p: ArrayLike, *, both_classes: bool = False, name: str = "p"):
    """Validate and convert labels and probabilities: return ``(y, p)`` as int64 and float64 1-D arrays.

    Raises :class:`AlfiaError` (one line) unless ``y`` and ``p`` are 1-D, non-empty and of the same length,
    ``y`` holds only 0 and 1, ``p`` is finite and within [0, 1], and (with ``both_classes``) ``y`` holds both
    classes.
    """
    y_arr = _as_1d(y, "labels (y)")
    p_arr = _as_1d(p, f"predicted probabilities ({name})")
    if y_arr.shape[0] != p_arr.shape[0]:
        raise AlfiaError(
            f"labels (y) have {y_arr.shape[0]} rows but predictions ({name}) have {p_arr.shape[0]}: "
            "pass one prediction per labelled row"
        )
    if y_arr.dtype == bool:
        y_arr = y_arr.astype(np.int64)
    if not _is_real(y_arr.dtype):
        raise AlfiaError(f"labels (y) must be 0/1 numbers, got dtype {y_arr.dtype}")
    with np.errstate(invalid="ignore"):
        bad_y = ~np.isin(y_arr, (0, 1))
    if bad_y.any():
        raise AlfiaError(
            f"labels (y) must be 0 or 1; found {y_arr[bad_y][0].item()!r} at row {int(np.flatnonzero(bad_y)[0])}"
        )
    y_arr = y_arr.astype(np.int64)
    if p_arr.dtype == bool or not _is_real(p_arr.dtype):
        raise AlfiaError(f"predictions ({name}) must be probabilities (floats in [0, 1]), got dtype {p_arr.dtype}")
    p_arr = p_arr.astype(np.float64)
    bad_p = ~np.isfinite(p_arr) | (p_arr < 0.0) | (p_arr > 1.0)
    if bad_p.any():
        raise AlfiaError(
            f"predictions ({name}) must be finite probabilities in [0, 1]; found {p_arr[bad_p][0].item()!r} at row "
            f"{int(np.flatnonzero(bad_p)[0])}"
        )
    if both_classes:
        n_pos = int(y_arr.sum())
        if n_pos == 0 or n_pos == y_arr.shape[0]:
            only = "positive" if n_pos else "negative"
            raise AlfiaError(
                f"labels (y) are all {only} ({y_arr.shape[0]} rows): AUROC/AUPRC need both outcomes present"
            )
    return y_arr, p_arr


def check_labels(y: ArrayLike) -> np.ndarray:
    """Validate labels alone (1-D, non-empty, 0/1): return them as an int64 array."""
    y_arr = _as_1d(y, "labels (y)")
    return check_inputs(y_arr, np.zeros(y_arr.shape[0]))[0]


def _is_real(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)


def _as_1d(values: ArrayLike, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
        if arr.dtype == object:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AlfiaError(f"{what} must be a 1-D array of numbers: {exc}") from None
    if arr.ndim != 1:
        raise AlfiaError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise AlfiaError(f"{what} are empty: there is nothing to evaluate")
    return arr


def _check_threshold(threshold: Any, what: str = "threshold") -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise AlfiaError(f"{what} must be a number in [0, 1], got {threshold!r}") from None
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise AlfiaError(f"{what} must be a number in [0, 1], got {threshold!r}")
    return t


def _check_n_boot(n_boot: Any) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise AlfiaError(f"n_boot must be a whole number >= 0 (0 skips the intervals), got {n_boot!r}")
    return int(n_boot)


def _check_beta(beta: Any) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise AlfiaError(f"beta must be a positive number, got {beta!r}") from None
    if not (math.isfinite(b) and b > 0):
        raise AlfiaError(f"beta must be a positive number, got {beta!r}")
    return b


# ------------------------------------------------------------------------------- core (weighted) computation


class _Ranked:
    """Predictions grouped by distinct score (highest first), prepared once for many resamples."""

    def __init__(self, y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> None:
        neg_unique, inverse = np.unique(-p, return_inverse=True)
        self.scores = -neg_unique  # distinct scores, descending
        self.group = inverse.reshape(-1)  # row -> index into self.scores
        self.n_groups = self.scores.shape[0]
        self.p = p
        self.y = y
        self.sq_err = (p - y) ** 2
        self.n_bins = n_bins
        self.bin = _bin_index(p, n_bins)
        self.resid = y - p  # per-row contribution to a bin's (observed - predicted) sum


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.arange(1, n_bins) / n_bins  # inner edges; bin b is [b/n, (b+1)/n), last bin closed
    return np.searchsorted(edges, p, side="right")


def _block_counts(group_of_rows: np.ndarray, n_groups: int) -> np.ndarray:
    """Counts of each group per resample: ``group_of_rows`` is (resamples, rows) -> (resamples, groups)."""
    n_res = group_of_rows.shape[0]
    offsets = (np.arange(n_res) * n_groups)[:, None]
    counts = np.bincount((group_of_rows + offsets).ravel(), minlength=n_res * n_groups)
    return counts.reshape(n_res, n_groups).astype(np.float64)


def _curve_counts(r: _Ranked, idx: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resample and distinct score (descending): positives at it and cumulative TP/FP counts."""
    pos = _block_counts(r.group[idx[:, :n_pos]], r.n_groups)
    neg = _block_counts(r.group[idx[:, n_pos:]], r.n_groups)
    return pos, np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)


def _ap_auc(pos: np.ndarray, tps: np.ndarray, fps: np.ndarray, n_pos: int, n_neg: int):
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 0.0)
    ap = (pos / n_pos * precision).sum(axis=1)
    neg = np.diff(fps, axis=1, prepend=0.0)
    tps_before = tps - pos
    auc = (neg * (tps_before + 0.5 * pos)).sum(axis=1) / (n_pos * n_neg)
    return ap, auc


def _fbeta_curve(tps: np.ndarray, fps: np.ndarray, n_pos: int, beta: float) -> np.ndarray:
    b2 = beta * beta
    # (1+b^2) TP / ((1+b^2) TP + b^2 FN + FP); the denominator is >= b^2 * n_pos > 0.
    return (1.0 + b2) * tps / (tps + fps + b2 * n_pos)


def _at_threshold(tp, fp, n_pos: int, n_neg: int) -> dict[str, np.ndarray]:
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    fn = n_pos - tp
    tn = n_neg - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "sensitivity": tp / n_pos,
            "specificity": tn / n_neg,
            "ppv": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "npv": np.where(tn + fn > 0, tn / (tn + fn), np.nan),
            "f1": 2.0 * tp / (2.0 * tp + fp + fn),
            "f2": 5.0 * tp / (5.0 * tp + 4.0 * fn + fp),
        }
    return out


def _block_stats(
    r: _Ranked, idx: np.ndarray, n_pos: int, n_neg: int, threshold: float | None, betas=(1.0, 2.0)
) -> dict[str, np.ndarray]:
    """All metrics for a block of resamples ``idx`` (resamples, rows; positives' rows first)."""
    pos, tps, fps = _curve_counts(r, idx, n_pos)
    ap, auc = _ap_auc(pos, tps, fps, n_pos, n_neg)
    out = {"auprc": ap, "auroc": auc}
    for beta in betas:
        f = _fbeta_curve(tps, fps, n_pos, beta)
        out[f"best_f{beta:g}"] = f.max(axis=1)
        out[f"_best_f{beta:g}_group"] = f.argmax(axis=1)
    n = n_pos + n_neg
    out["brier"] = r.sq_err[idx].sum(axis=1) / n
    n_res = idx.shape[0]
    offsets = (np.arange(n_res) * r.n_bins)[:, None]
    resid_sums = np.bincount(
        (r.bin[idx] + offsets).ravel(), weights=r.resid[idx].ravel(), minlength=n_res * r.n_bins
    ).reshape(n_res, r.n_bins)
    out["ece"] = np.abs(resid_sums).sum(axis=1) / n
    if threshold is not None:
        k = int(np.searchsorted(-r.scores, -threshold, side="right"))  # distinct scores >= threshold
        tp = tps[:, k - 1] if k > 0 else np.zeros(n_res)
        fp = fps[:, k - 1] if k > 0 else np.zeros(n_res)
        out.update(_at_threshold(tp, fp, n_pos, n_neg))
        out["_tp"], out["_fp"] = tp, fp
    return out


def _point_index(y: np.ndarray) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == 1), np.flatnonzero(y == 0)])[None, :]


# ------------------------------------------------------------------------------------------ point metrics


def average_precision(y: ArrayLike, p: ArrayLike) -> float:
    """AUPRC as average precision; equals ``sklearn.metrics.average_precision_score(y, p)``."""
    y, p = check_inputs(y, p, both_classes=True)
    n_pos = int(y.sum())
    pos, tps, fps = _curve_counts(_Ranked(y, p), _point_index(y), n_pos)
    return float(_ap_auc(pos, tps, fps, n_pos, y.shape[0] - n_pos)[0][0])


def roc_auc(y: ArrayLike, p: ArrayLike) -> float:
    """AUROC; equals ``sklearn.metrics.roc_auc_score(y, p)`` (ties count one half)."""
    y, p = check_inputs(y, p, both_classes=True)
    n_pos = int(y.sum())
    pos, tps, fps = _curve_counts(_Ranked(y, p), _point_index(y), n_pos)
    return float(_ap_auc(pos, tps, fps, n_pos, y.shape[0] - n_pos)[1][0])


def best_fbeta(y: ArrayLike, p: ArrayLike, beta: float = 1.0) -> tuple[float, float]:
    """Largest F-beta over the precision-recall curve's thresholds: ``(f_beta, threshold)``.

    Predicted positive means ``p >= threshold``; among thresholds reaching the maximum the highest is returned.
    """
    beta = _check_beta(beta)
    y, p = check_inputs(y, p, both_classes=True)
    n_pos = int(y.sum())
    r = _Ranked(y, p)
    _, tps, fps = _curve_counts(r, _point_index(y), n_pos)
    f = _fbeta_curve(tps, fps, n_pos, beta)[0]
    g = int(f.argmax())
    return float(f[g]), float(r.scores[g])


def choose_threshold(y_val: ArrayLike, p_val: ArrayLike, beta: float = 1.0) -> float:
    """Threshold maximising F-beta on the validation split, to be applied unchanged to test and external data.

    It depends on the validation labels and predictions only.
    """
    return best_fbeta(y_val, p_val, beta)[1]


def threshold_metrics(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, float | int | None]:
    """Confusion counts and sensitivity, specificity, PPV, NPV, F1, F2 at ``p >= threshold``."""
    t = _check_threshold(threshold)
    y, p = check_inputs(y, p)
    pred = p >= t
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    out: dict[str, float | int | None] = {"tp": tp, "fp": fp, "tn": n_neg - fp, "fn": n_pos - tp}
    with np.errstate(invalid="ignore", divide="ignore"):
        values = _at_threshold(tp, fp, n_pos, n_neg)
    out.update({k: _float_or_none(v) for k, v in values.items()})
    return out


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score ``mean((p - y)^2)``; equals ``sklearn.metrics.brier_score_loss``."""
    y, p = check_inputs(y, p)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> float:
    """ECE ``sum_b (n_b / N) |mean(y_b) - mean(p_b)|`` over ``n_bins`` equal-width bins of [0, 1].

    Bin ``b`` is ``[b/n_bins, (b+1)/n_bins)``; the last bin also holds ``p = 1``. Empty bins contribute 0.
    """
    n_bins = _check_n_bins(n_bins)
    y, p = check_inputs(y, p)
    sums = np.bincount(_bin_index(p, n_bins), weights=y - p, minlength=n_bins)
    return float(np.abs(sums).sum() / y.shape[0])


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise AlfiaError(f"n_bins must be a whole number >= 1, got {n_bins!r}")
    return int(n_bins)


# ------------------------------------------------------------------------------ calibration intercept and slope

# The calibration metrics of evaluate beyond Brier and ECE, in the order they are shown.
CALIBRATION_FIT_METRICS = ("oe_ratio", "calibration_intercept", "calibration_slope")
LOGIT_CLIP = 1e-6
_FIT_TOL = 1e-10
_FIT_MAX_ITER = 100
_FIT_MAX_HALVINGS = 40
_FIT_BLOCK_ELEMENTS = 250_000  # resamples x rows fitted at once


def _expit(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def _clipped_logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def _logistic_terms(theta: np.ndarray, z: np.ndarray, n_pos: int, slope: bool):
    """Log-likelihood, gradient and information (minus the Hessian) of the logistic fits, per resample.

    ``z`` is (resamples, rows) with each resample's positives first (``n_pos`` of them), as the bootstrap blocks
    hold them; ``theta`` is (resamples, 1) for the intercept with offset ``z`` and (resamples, 2) ``(c, b)`` for the
    slope. Returns ``ll`` (R,), ``grad`` (R, k) and ``info`` (R, k, k).
    """
    if slope:
        eta = z * theta[:, 1:2]
        eta += theta[:, :1]
    else:
        eta = z + theta[:, :1]
    mu = _expit(eta)
    soft = np.abs(eta)  # log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|)), stable both ways
    np.negative(soft, out=soft)
    np.exp(soft, out=soft)
    np.log1p(soft, out=soft)
    soft += np.maximum(eta, 0.0)
    ll = eta[:, :n_pos].sum(axis=1) - soft.sum(axis=1)
    g0 = n_pos - mu.sum(axis=1)
    w = mu * (1.0 - mu)
    h00 = w.sum(axis=1)
    if not slope:
        return ll, g0[:, None], h00[:, None, None]
    g1 = z[:, :n_pos].sum(axis=1) - np.einsum("ij,ij->i", z, mu)
    w *= z
    h01 = w.sum(axis=1)
    h11 = np.einsum("ij,ij->i", w, z)
    grad = np.stack([g0, g1], axis=1)
    info = np.stack([np.stack([h00, h01], axis=1), np.stack([h01, h11], axis=1)], axis=1)
    return ll, grad, info


def _newton_step(grad: np.ndarray, info: np.ndarray) -> np.ndarray:
    if grad.shape[1] == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / info[:, 0, :]
    h00, h01, h11 = info[:, 0, 0], info[:, 0, 1], info[:, 1, 1]
    g0, g1 = grad[:, 0], grad[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        det = h00 * h11 - h01 * h01
        det = np.where(det > 0, det, np.nan)  # a singular (or numerically indefinite) information: no step
        return np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=1)


def _separated(z: np.ndarray, n_pos: int) -> np.ndarray:
    """Per resample: does ``z`` separate the outcomes (no maximum-likelihood slope exists)?"""
    if n_pos == 0 or n_pos == z.shape[1]:
        return np.ones(z.shape[0], dtype=bool)
    pos, neg = z[:, :n_pos], z[:, n_pos:]
    return (pos.min(axis=1) >= neg.max(axis=1)) | (pos.max(axis=1) <= neg.min(axis=1))


def _fit_logistic(z: np.ndarray, n_pos: int, start: np.ndarray, slope: bool) -> np.ndarray:
    """Newton-Raphson with step halving for every resample (row of ``z``) at once; ``start``: (k,) or (R, k).

    Returns the coefficients (R, k), NaN where the fit fails (separated, singular, not converged, not finite).
    """
    n_res, k = z.shape[0], (2 if slope else 1)
    result = np.full((n_res, k), np.nan)
    if slope:
        live = np.flatnonzero(~_separated(z, n_pos))
    else:
        live = np.arange(n_res) if 0 < n_pos < z.shape[1] else np.arange(0)
    if live.size == 0:
        return result
    theta = np.broadcast_to(np.asarray(start, dtype=np.float64), (n_res, k))[live].copy()
    za = z[live]
    ll, grad, info = _logistic_terms(theta, za, n_pos, slope)
    for _ in range(_FIT_MAX_ITER):
        step = _newton_step(grad, info)
        bad = ~np.isfinite(step).all(axis=1) | ~np.isfinite(ll)
        step[bad] = 0.0
        size = np.abs(step).max(axis=1)
        scale_of = 1.0 + np.abs(theta).max(axis=1)
        small = ~bad & (size <= _FIT_TOL * scale_of)   # converged: take this last (negligible) step
        result[live[small]] = theta[small] + step[small]
        go = ~(small | bad)
        if not go.any():
            return result
        live, theta, za, ll, step, size, scale_of = (live[go], theta[go], za[go], ll[go], step[go], size[go],
                                                     scale_of[go])
        new_theta = theta + step
        new_ll, grad, info = _logistic_terms(new_theta, za, n_pos, slope)
        # step halving where the log-likelihood fell (beyond rounding)
        worse = ~(new_ll >= ll - 1e-12 * np.abs(ll))
        scale = np.ones(theta.shape[0])
        for _ in range(_FIT_MAX_HALVINGS):
            if not worse.any():
                break
            rows = np.flatnonzero(worse)
            scale[rows] /= 2.0
            new_theta[rows] = theta[rows] + scale[rows, None] * step[rows]
            new_ll[rows], grad[rows], info[rows] = _logistic_terms(new_theta[rows], za[rows], n_pos, slope)
            worse[rows] = ~(new_ll[rows] >= ll[rows] - 1e-12 * np.abs(ll[rows]))
        if worse.any():
            # no halving helped: converged when the full step was already negligible (rounding), else failed
            near = worse & (size <= 1e-6 * scale_of)
            result[live[near]] = theta[near]
            keep = ~worse
            live, new_theta, za, new_ll, grad, info = (live[keep], new_theta[keep], za[keep], new_ll[keep],
                                                       grad[keep], info[keep])
            if live.size == 0:
                return result
        theta, ll = new_theta, new_ll
    return result  # the rows still live did not converge: NaN


class _CalibrationFit:
    """O:E, calibration intercept and slope, prepared once for many resamples (positives' rows first)."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        self.p = p
        self.z = _clipped_logit(p)
        self.n_pos = int(y.sum())
        self.start_intercept = np.array([0.0])
        self.start_slope = np.array([0.0, 1.0])

    def block(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        expected = self.p[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            oe = np.where(expected > 0, self.n_pos / expected, np.nan)
        intercept, slope = np.empty(idx.shape[0]), np.empty(idx.shape[0])
        rows = max(1, _FIT_BLOCK_ELEMENTS // idx.shape[1])  # small enough to stay in the CPU's cache
        for i in range(0, idx.shape[0], rows):
            z = self.z[idx[i:i + rows]]
            intercept[i:i + rows] = _fit_logistic(z, self.n_pos, self.start_intercept, slope=False)[:, 0]
            slope[i:i + rows] = _fit_logistic(z, self.n_pos, self.start_slope, slope=True)[:, 1]
        return {"oe_ratio": oe, "calibration_intercept": intercept, "calibration_slope": slope}

    def warm_start(self, point: dict[str, np.ndarray]) -> None:
        """Start the resamples' fits from the point estimates (when they exist): fewer iterations."""
        if np.isfinite(point["_intercept_theta"]).all():
            self.start_intercept = point["_intercept_theta"]
        if np.isfinite(point["_slope_theta"]).all():
            self.start_slope = point["_slope_theta"]

    def point(self, y: np.ndarray) -> dict[str, np.ndarray]:
        idx = _point_index(y)
        expected = self.p.sum()
        z = self.z[idx]
        a = _fit_logistic(z, self.n_pos, self.start_intercept, slope=False)
        b = _fit_logistic(z, self.n_pos, self.start_slope, slope=True)
        return {"oe_ratio": np.array([self.n_pos / expected if expected > 0 else np.nan]),
                "calibration_intercept": a[:, 0], "calibration_slope": b[:, 1],
                "_intercept_theta": a[0], "_slope_theta": b[0]}


def observed_expected_ratio(y: ArrayLike, p: ArrayLike) -> float | None:
    """O:E ``sum(y) / sum(p)``: observed over expected deaths; ``None`` when ``sum(p) = 0``."""
    y, p = check_inputs(y, p)
    expected = float(p.sum())
    return float(y.sum()) / expected if expected > 0 else None


def calibration_intercept(y: ArrayLike, p: ArrayLike) -> float | None:
    """Calibration-in-the-large: ``a`` of ``logit P(y = 1) = a + logit(p)`` (offset; ``p`` clipped to
    ``[1e-6, 1 - 1e-6]``), unpenalised maximum likelihood; ``None`` when the fit fails (one outcome only)."""
    y, p = check_inputs(y, p)
    return _float_or_none(_CalibrationFit(y, p).point(y)["calibration_intercept"])


def calibration_slope(y: ArrayLike, p: ArrayLike) -> float | None:
    """Calibration slope: ``b`` of ``logit P(y = 1) = c + b logit(p)`` (``p`` clipped to ``[1e-6, 1 - 1e-6]``),
    unpenalised maximum likelihood; ``None`` when the fit fails (``logit(p)`` separates the outcomes)."""
    y, p = check_inputs(y, p)
    return _float_or_none(_CalibrationFit(y, p).point(y)["calibration_slope"])


def calibration_metrics(y: ArrayLike, p: ArrayLike, n_boot: int = 1000, seed: int = 42) -> dict[str, dict]:
    """O:E, calibration intercept and slope as in :func:`evaluate` (the same resamples for the same ``y``,
    ``n_boot`` and ``seed``), without the other metrics: ``{name: {"value", "ci_low", "ci_high"}}``, the two fits
    also with ``failed_resamples``."""
    y, p = check_inputs(y, p, both_classes=True)
    n_boot = _check_n_boot(n_boot)
    fit = _CalibrationFit(y, p)
    point = fit.point(y)
    fit.warm_start(point)
    boot: dict[str, list[np.ndarray]] = {name: [] for name in CALIBRATION_FIT_METRICS}
    if n_boot:
        for idx in _bootstrap_blocks(y, n_boot, seed):
            for name, values in fit.block(idx).items():
                boot[name].append(values)
    return _calibration_entries(point, boot, n_boot)


def _calibration_entries(point: dict[str, np.ndarray], boot: dict[str, list[np.ndarray]],
                         n_boot: int) -> dict[str, dict]:
    out = {}
    for name in CALIBRATION_FIT_METRICS:
        values = np.concatenate(boot[name]) if n_boot else np.zeros(0)
        lo, hi = _interval(values) if n_boot else (None, None)
        out[name] = {"value": _float_or_none(point[name]), "ci_low": lo, "ci_high": hi}
        if name != "oe_ratio":
            out[name]["failed_resamples"] = int((~np.isfinite(values)).sum())
    return out


# ---------------------------------------------------------------------------------------------- bootstrap


def bootstrap_indices(y: ArrayLike, n_boot: int = 1000, seed: int = 42) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` stratified bootstrap resamples of the rows of ``y`` as arrays of row indices.

    Each resample holds as many positives and as many negatives as ``y`` (positives' rows first), drawn with
    replacement within each class. The sequence depends only on ``y``, ``n_boot`` and ``seed``.
    """
    y_arr = check_labels(y)
    n_boot = _check_n_boot(n_boot)
    pos_rows = np.flatnonzero(y_arr == 1)
    neg_rows = np.flatnonzero(y_arr == 0)
    rng = np.random.default_rng(seed)

    def draw(rows: np.ndarray) -> np.ndarray:
        return rows[rng.integers(0, rows.shape[0], rows.shape[0])] if rows.shape[0] else rows

    for _ in range(n_boot):
        yield np.concatenate([draw(pos_rows), draw(neg_rows)])


def _bootstrap_blocks(y: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """The resamples of :func:`bootstrap_indices`, stacked into (resamples, rows) blocks to bound memory."""
    per_block = max(1, _BLOCK_ELEMENTS // y.shape[0])
    block: list[np.ndarray] = []
    for idx in bootstrap_indices(y, n_boot, seed):
        block.append(idx)
        if len(block) == per_block:
            yield np.stack(block)
            block = []
    if block:
        yield np.stack(block)


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if values.shape[0] == 0:
        return None, None
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def _float_or_none(value: Any) -> float | None:
    v = float(np.asarray(value).reshape(-1)[0])
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------------------------------- evaluate

_CI_METRICS = ("auprc", "auroc", "brier", "ece", "best_f1", "best_f2")
_THRESHOLD_METRICS = ("f1", "f2", "sensitivity", "specificity", "ppv", "npv")


def evaluate(
    y: ArrayLike,
    p: ArrayLike,
    threshold: float | None = None,
    n_boot: int = 1000,
    seed: int = 42,
    n_bins: int = 10,
    calibration: bool = True,
) -> dict[str, Any]:
    """Every metric of the project with stratified bootstrap 95% CIs, as a JSON-serialisable dict.

    Keys: ``n``, ``n_pos``, ``prevalence``, ``n_boot``, ``seed``, ``ci_level``, ``threshold`` (``None`` unless
    given); ``auprc``, ``auroc``, ``brier``, ``ece``, ``oe_ratio`` as ``{"value", "ci_low", "ci_high"}``;
    ``calibration_intercept`` and ``calibration_slope`` as ``{"value", "ci_low", "ci_high", "failed_resamples"}``
    (resamples whose fit failed, left out of the interval); ``best_f1`` and
    ``best_f2`` as ``{"value", "ci_low", "ci_high", "threshold", "label"}`` where ``label`` is
    ``"test-optimal (optimistic)"`` (the threshold is optimised on these very rows; their CI re-optimises it in
    each resample). With a ``threshold`` (fixed in advance, e.g. by :func:`choose_threshold` on validation):
    ``f1``, ``f2``, ``sensitivity``, ``specificity``, ``ppv``, ``npv`` as ``{"value", "ci_low", "ci_high"}``
    and ``confusion`` ``{"tp", "fp", "tn", "fn"}``. An undefined value (e.g. PPV with nothing predicted
    positive) is ``None``. ``n_boot=0`` gives ``None`` intervals. ``calibration=False`` (a score mapped onto [0, 1],
    not a probability) leaves the calibration metrics out: Brier, ECE, O:E, calibration intercept and slope.
    """
    y, p = check_inputs(y, p, both_classes=True)
    t = None if threshold is None else _check_threshold(threshold)
    n_boot = _check_n_boot(n_boot)
    n_bins = _check_n_bins(n_bins)
    n = int(y.shape[0])
    n_pos = int(y.sum())
    n_neg = n - n_pos
    r = _Ranked(y, p, n_bins)

    point = _block_stats(r, _point_index(y), n_pos, n_neg, t)
    names = _CI_METRICS + (_THRESHOLD_METRICS if t is not None else ())
    if not calibration:
        names = tuple(name for name in names if name not in ("brier", "ece"))
    boot: dict[str, list[np.ndarray]] = {name: [] for name in names}
    fit = _CalibrationFit(y, p) if calibration else None
    if fit is not None:
        cal_point = fit.point(y)
        fit.warm_start(cal_point)
        cal_boot: dict[str, list[np.ndarray]] = {name: [] for name in CALIBRATION_FIT_METRICS}
    if n_boot:
        for idx in _bootstrap_blocks(y, n_boot, seed):
            stats = _block_stats(r, idx, n_pos, n_neg, t)
            for name in names:
                boot[name].append(stats[name])
            if fit is not None:
                for name, values in fit.block(idx).items():
                    cal_boot[name].append(values)

    result: dict[str, Any] = {
        "n": n,
        "n_pos": n_pos,
        "prevalence": n_pos / n,
        "n_boot": n_boot,
        "seed": seed,
        "ci_level": CI_LEVEL,
        "threshold": t,
    }
    for name in names:
        lo, hi = _interval(np.concatenate(boot[name])) if n_boot else (None, None)
        result[name] = {"value": _float_or_none(point[name]), "ci_low": lo, "ci_high": hi}
    if fit is not None:
        result.update(_calibration_entries(cal_point, cal_boot, n_boot))
    for name in ("best_f1", "best_f2"):
        result[name]["threshold"] = float(r.scores[int(point[f"_{name}_group"][0])])
        result[name]["label"] = TEST_OPTIMAL_LABEL
    if t is not None:
        tp, fp = int(point["_tp"][0]), int(point["_fp"][0])
        result["confusion"] = {"tp": tp, "fp": fp, "tn": n_neg - fp, "fn": n_pos - tp}
    return result


_DISPLAY = {
    "auprc": "AUPRC",
    "auroc": "AUROC",
    "brier": "Brier",
    "ece": "ECE",
    "oe_ratio": "O:E",
    "calibration_intercept": "Calibration intercept",
    "calibration_slope": "Calibration slope",
    "f1": "F1",
    "f2": "F2",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "npv": "NPV",
}


def format_ci(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """"0.462 (0.367–0.570)" for a metric entry of ``evaluate``; "n/a" when absent or undefined."""
    if not entry or entry.get("value") is None:
        return "n/a"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        text += f" ({entry['ci_low']:.{digits}f}\u2013{entry['ci_high']:.{digits}f})"
    return text


def _fmt_value(entry: dict[str, Any], ci_pct: str) -> str:
    value = entry.get("value")
    text = "n/a" if value is None else f"{value:.3f}"
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if lo is not None and hi is not None:
        text += f" ({ci_pct} CI {lo:.3f}\u2013{hi:.3f})"
    return text


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, e.g. ``AUPRC 0.462 (95% CI 0.401–0.523)``, from an :func:`evaluate` result."""
    ci_pct = f"{round(100 * metrics.get('ci_level', CI_LEVEL)):d}%"
    lines = []
    if "n" in metrics and "n_pos" in metrics:
        lines.append(f"n {metrics['n']} ({metrics['n_pos']} positive, {100 * metrics['n_pos'] / metrics['n']:.1f}%)")
    for name in ("auprc", "auroc", "brier", "ece", *CALIBRATION_FIT_METRICS):
        if name in metrics:
            entry = metrics[name]
            failed = entry.get("failed_resamples")
            note = f" [{failed} resample(s) failed to fit, left out]" if failed else ""
            lines.append(f"{_DISPLAY[name]} {_fmt_value(entry, ci_pct)}{note}")
    for name, label in (("best_f1", "Best F1"), ("best_f2", "Best F2")):
        if name in metrics:
            entry = metrics[name]
            lines.append(
                f"{label} [{entry.get('label', TEST_OPTIMAL_LABEL)}] {_fmt_value(entry, ci_pct)}"
                f" at threshold {entry['threshold']:.3f}"
            )
    if metrics.get("threshold") is not None:
        t = metrics["threshold"]
        for name in _THRESHOLD_METRICS:
            if name in metrics:
                lines.append(f"{_DISPLAY[name]} @ {t:.3f} {_fmt_value(metrics[name], ci_pct)}")
        if "confusion" in metrics:
            c = metrics["confusion"]
            lines.append(f"Confusion @ {t:.3f} TP {c['tp']} FP {c['fp']} TN {c['tn']} FN {c['fn']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- paired comparison


def _seed_rows(p: ArrayLike) -> list:
    """One row of predictions per seed: a 2-D array's rows, anything else as one row (checked by check_inputs)."""
    arr = np.asarray(p)
    return list(arr) if arr.ndim == 2 else [p]


def paired_difference(
    y: ArrayLike,
    p_a: ArrayLike,
    p_b: ArrayLike,
    metric: str = "auprc",
    n_boot: int = 1000,
    seed: int = 42,
) -> dict[str, Any]:
    """Paired bootstrap difference ``metric(p_a) - metric(p_b)`` on the same rows and the same resamples.

    ``p_a`` and ``p_b`` are one prediction per row, or one row of predictions per training seed (``(k, n)``, the
    same ``k`` for both): then the difference is that of the metric's mean over the seeds, each resample scoring
    every seed's model (a pooled comparison: the training's variability and the sample's in one interval).
    Returns ``{"metric", "difference", "ci_low", "ci_high", "n_boot", "seed"}`` (95% percentile interval of
    the per-resample differences). Identical predictions give exactly 0 and [0, 0].
    """
    if metric not in _PAIRED_METRICS:
        raise AlfiaError(f"metric must be one of {', '.join(_PAIRED_METRICS)}, got {metric!r}")
    rows_a, rows_b = _seed_rows(p_a), _seed_rows(p_b)
    if len(rows_a) != len(rows_b):
        raise AlfiaError(f"p_a holds {len(rows_a)} seeds' predictions and p_b {len(rows_b)}; pass the same seeds")
    ranked_a, ranked_b = [], []
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        y_checked, row_a = check_inputs(y, row_a, both_classes=True, name="p_a")
        _, row_b = check_inputs(y, row_b, both_classes=True, name="p_b")
        ranked_a.append(_Ranked(y_checked, row_a))
        ranked_b.append(_Ranked(y_checked, row_b))
    y = y_checked
    n_boot = _check_n_boot(n_boot)
    n_pos = int(y.sum())
    n_neg = int(y.shape[0]) - n_pos
    which = _PAIRED_METRICS.index(metric)

    def metric_of(ranked: list[_Ranked], idx: np.ndarray) -> np.ndarray:
        """The metric per resample, averaged over the seeds."""
        values = []
        for r in ranked:
            pos, tps, fps = _curve_counts(r, idx, n_pos)
            values.append(_ap_auc(pos, tps, fps, n_pos, n_neg)[which])
        return np.mean(values, axis=0)

    point_idx = _point_index(y)
    difference = float(metric_of(ranked_a, point_idx)[0] - metric_of(ranked_b, point_idx)[0])
    diffs = [metric_of(ranked_a, idx) - metric_of(ranked_b, idx) for idx in _bootstrap_blocks(y, n_boot, seed)]
    lo, hi = _interval(np.concatenate(diffs)) if diffs else (None, None)
    return {"metric": metric, "difference": difference, "ci_low": lo, "ci_high": hi, "n_boot": n_boot, "seed": seed}
