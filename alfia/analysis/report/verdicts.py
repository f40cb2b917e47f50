"""The report's conclusions in words, computed from the numbers it plots (never written by hand).

- Calibration: ECE <= 0.05 well calibrated, <= 0.10 moderately, above 0.10 poorly; the direction (over- or
  under-estimating) from the mean predicted risk against the observed death rate.
- Calibration slope, intercept and O:E, judged by their 95% intervals against the ideal (1, 0 and 1): an interval
  that includes the ideal reads "no clear" miscalibration of that kind (not proof of good calibration); otherwise a
  slope below 1 is over-confident (predictions too extreme), above 1 under-confident (too moderate); an intercept
  above 0 means predictions too low on average (they need shifting up), below 0 too high (shifting down); an O:E
  above 1 means more deaths observed than predicted, below 1 fewer. Without an interval the direction is given and
  called uncertain.
- Decision curve: the threshold ranges where the model's net benefit is above both treat-all and treat-none, and
  those where it sits at or below treat-all.
- Comparisons and subgroups: the estimates with their 95% intervals, and whether the intervals overlap (overlap is
  read as "no clear difference", not as a test).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alfia.evaluation.metrics import format_ci

WELL_CALIBRATED_ECE = 0.05
POORLY_CALIBRATED_ECE = 0.10
NET_BENEFIT_TIE = 1e-3  # net benefits closer than this are "at" each other


def calibration_verdict(name: str, ece: float, mean_predicted: float, observed_rate: float) -> str:
    if ece > POORLY_CALIBRATED_ECE:
        quality = (f"{name} is poorly calibrated (ECE {ece:.3f} > {POORLY_CALIBRATED_ECE:.2f}): its probabilities "
                   "should not be read as risks")
    elif ece > WELL_CALIBRATED_ECE:
        quality = f"{name} is moderately calibrated (ECE {ece:.3f})"
    else:
        quality = f"{name} is well calibrated (ECE {ece:.3f} <= {WELL_CALIBRATED_ECE:.2f})"
    ratio = mean_predicted / observed_rate if observed_rate > 0 else float("inf")
    if ratio > 1.1:
        direction = (f"it over-estimates risk on average (mean predicted {mean_predicted:.1%} against "
                     f"{observed_rate:.1%} observed deaths)")
    elif ratio < 0.9:
        direction = (f"it under-estimates risk on average (mean predicted {mean_predicted:.1%} against "
                     f"{observed_rate:.1%} observed deaths)")
    else:
        direction = (f"its mean predicted risk {mean_predicted:.1%} is close to the {observed_rate:.1%} observed "
                     "death rate")
    return f"{quality}; {direction}."


def _interval(entry: dict) -> tuple[float | None, float | None]:
    return entry.get("ci_low"), entry.get("ci_high")


def _judged(entry: dict, ideal: float) -> str:
    """"includes" / "above" / "below": where the estimate lies against ``ideal``, judged by its 95% interval when
    it has one ("includes": the interval holds the ideal); "above?" / "below?" / "at?" without an interval."""
    lo, hi = _interval(entry)
    value = entry["value"]
    if lo is None or hi is None:
        return "above?" if value > ideal else "below?" if value < ideal else "at?"
    if lo <= ideal <= hi:
        return "includes"
    return "above" if lo > ideal else "below"


def _failed_note(entry: dict, n_boot: int | None) -> str:
    failed = entry.get("failed_resamples") or 0
    if not failed:
        return ""
    of = f" of {n_boot}" if n_boot else ""
    return f" ({failed}{of} bootstrap fits failed and are left out of the interval)"


# each calibration number: its label, ideal value, and what it means within / above / below its ideal
CALIBRATION_READINGS = (
    ("calibration_slope", "calibration slope", 1.0, "no clear over- or under-confidence",
     "under-confident: its predictions are too moderate (high risks too low, low risks too high)",
     "over-confident: its predictions are too extreme (high risks too high, low risks too low)"),
    ("calibration_intercept", "calibration intercept", 0.0, "no clear shift up or down",
     "its predictions are too low on average (they would need shifting up)",
     "its predictions are too high on average (they would need shifting down)"),
    ("oe_ratio", "O:E", 1.0, "about as many deaths were observed as predicted",
     "more deaths were observed than predicted", "fewer deaths were observed than predicted"),
)


def _reading(entry: dict, label: str, ideal: float, within: str, above: str, below: str,
             n_boot: int | None) -> str:
    """One calibration number in words, judged against its ideal value by its 95% CI."""
    judged = _judged(entry, ideal)
    text = f"{label} {format_ci(entry)}{_failed_note(entry, n_boot)}"
    if judged == "includes":
        return f"{text}: its 95% CI includes {ideal:g}, so {within}"
    if judged.startswith("at"):
        return f"{text}: exactly {ideal:g}"
    side = "above" if judged.startswith("above") else "below"
    certainty = " (no interval, so uncertain)" if judged.endswith("?") else f", its 95% CI excluding {ideal:g}"
    return f"{text}: {side} {ideal:g}{certainty}, so {above if side == 'above' else below}"


def calibration_fit_verdict(name: str, where: str, metrics: dict, n_boot: int | None = None) -> str:
    """The calibration slope, intercept and O:E of ``name`` on ``where`` in words (see the module doc);
    ``metrics`` holds ``oe_ratio``, ``calibration_intercept`` and ``calibration_slope`` entries of ``evaluate``."""
    parts, entries = [], []
    for key, label, ideal, within, above, below in CALIBRATION_READINGS:
        entry = metrics.get(key) or {}
        entries.append((entry, ideal))
        if entry.get("value") is not None:
            parts.append(_reading(entry, label, ideal, within, above, below, n_boot if key != "oe_ratio" else None))
        elif key == "calibration_slope":
            parts.append("its calibration slope could not be fitted (its predictions separate the outcomes)")
        elif key == "calibration_intercept":
            parts.append("its calibration intercept could not be fitted")
    text = f"{name} on {where}: " + "; ".join(parts) + "."
    if all(e.get("value") is not None and _judged(e, ideal) == "includes" for e, ideal in entries):
        text += " Every interval includes its ideal value: no clear miscalibration (which is not proof of none)."
    return text


def _ranges(thresholds: np.ndarray, mask: np.ndarray) -> list[str]:
    """Contiguous runs of ``mask`` as "5%–11%" strings."""
    out, start = [], None
    for i, on in enumerate([*mask, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            lo, hi = thresholds[start], thresholds[i - 1]
            out.append(f"{lo:.0%}" if lo == hi else f"{lo:.0%}–{hi:.0%}")
            start = None
    return out


def decision_verdict(name: str, thresholds: Sequence[float], model: Sequence[float],
                     treat_all: Sequence[float]) -> str:
    pt, nb, everyone = (np.asarray(v, dtype=float) for v in (thresholds, model, treat_all))
    helps = nb > np.maximum(everyone, 0.0) + NET_BENEFIT_TIE
    below_all = nb <= everyone + NET_BENEFIT_TIE
    span = f"{pt[0]:.0%}–{pt[-1]:.0%}"
    if not helps.any():
        return (f"Across threshold probabilities {span}, {name}'s net benefit sits at or below treat-all or "
                "treat-none: deciding with it would not help more than treating every patient (or none).")
    parts = [f"{name}'s net benefit is above both treat-all and treat-none at threshold probabilities "
             f"{', '.join(_ranges(pt, helps))}"]
    if below_all.any():
        parts.append(f"it sits at or below treat-all at {', '.join(_ranges(pt, below_all))}")
    return "; ".join(parts) + "."


def compare_verdict(metric: str, name: str, estimate: dict, other: str, other_estimate: dict) -> str:
    """``name`` against ``other`` on one metric (higher is better), with their 95% intervals."""
    a, b = estimate["value"], other_estimate["value"]
    lo_a, hi_a = estimate.get("ci_low"), estimate.get("ci_high")
    lo_b, hi_b = other_estimate.get("ci_low"), other_estimate.get("ci_high")
    order = "above" if a > b else "below" if a < b else "equal to"
    text = f"{name}'s test {metric} {format_ci(estimate)} is {order} {other}'s {format_ci(other_estimate)}"
    if None in (lo_a, hi_a, lo_b, hi_b):
        return text + "."
    if lo_a <= hi_b and lo_b <= hi_a:
        return text + "; the 95% intervals overlap, so the difference is uncertain."
    return text + "; the 95% intervals do not overlap."


def subgroup_verdict(groups: dict[str, dict], overall: dict | None) -> str:
    """Which subgroups have the lowest and highest AUROC, and whether any interval excludes the overall AUROC."""
    scored = {k: g["auroc"] for k, g in groups.items() if g.get("auroc")}
    unscored = [k for k, g in groups.items() if not g.get("auroc")]
    if not scored:
        return "No subgroup has both deaths and survivors, so none has an AUROC."
    low = min(scored, key=lambda k: scored[k]["value"])
    high = max(scored, key=lambda k: scored[k]["value"])
    text = (f"AUROC ranges from {format_ci(scored[low])} ({low}) to {format_ci(scored[high])} ({high}) across "
            f"{len(scored)} subgroups")
    if overall is not None:
        v = overall["value"]
        off = [k for k, m in scored.items() if m.get("ci_high") is not None and
               (m["ci_high"] < v or m["ci_low"] > v)]
        text += (f"; the intervals of {', '.join(off)} exclude the overall AUROC {v:.3f}" if off else
                 f"; every interval includes the overall AUROC {v:.3f}, so no subgroup clearly differs")
    if unscored:
        text += f"; {len(unscored)} group(s) with a single outcome have no AUROC"
    return text + "."


def training_verdict(history: list[dict], best: int | None) -> str:
    if not history or best is None:
        return ""
    last = history[-1]["epoch"]
    top = max(h["val_auprc"] for h in history)
    when = "the last epoch" if best == last else f"epoch {best} of {last}"
    return f"The weights kept are from {when} (validation AUPRC {top:.3f})."
