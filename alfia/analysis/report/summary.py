"""The one-screen summary the page opens on: ALFIA's headline test metrics with 95% CIs beside the best
baseline's (and the external set's), the calibration (ECE, then slope, intercept and O:E per cohort) and
decision-curve verdicts in words, and the cost per stay."""

from __future__ import annotations

from alfia.analysis.report import clinical, verdicts
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table
from alfia.evaluation.metrics import format_ci

HEADLINE = ("auprc", "auroc", "brier", "ece")


def build(inp: Inputs) -> dict:
    test = inp.metrics["test"]
    best = inp.best_baseline()
    external = (inp.external or {}).get("info", {}).get("metrics")
    columns = [("ALFIA, internal test", test)]
    if best is not None:
        columns.append((f"best baseline ({best['model']}), internal test", best["test"]))
    if external:
        columns.append((f"ALFIA, external ({inp.external['name']})", external))
    rows = [[f"{METRIC_NAMES[k]} ({'higher' if k in ('auprc', 'auroc') else 'lower'} is better)",
             *[format_ci(m.get(k)) for _, m in columns]] for k in HEADLINE]
    rows.append(["stays (deaths)", *[f"{m.get('n', '?')} ({m.get('n_pos', '?')})" for _, m in columns]])
    points = []
    if best is not None:
        for k in ("auprc", "auroc"):
            if test.get(k) and best["test"].get(k):
                points.append(verdicts.compare_verdict(METRIC_NAMES[k], "ALFIA", test[k], best["model"],
                                                       best["test"][k]))
    else:
        points.append("No baseline was given (pass --baselines DIR) so ALFIA is not compared here.")
    points += clinical.calibration_words(inp)
    points += clinical.calibration_fit_words(inp, ("ALFIA",))
    points.append(clinical.decision_words(inp))
    cost = inp.cost()
    first = next(iter(cost.items()), None)
    if first is None:
        points.append("Cost per stay was not measured (pass --external-predictions FILE or --bench FILE).")
    else:
        name, e = first
        memory = f", peak memory {e['peak_rss_mb']:,.0f} MB" if e.get("peak_rss_mb") else ""
        points.append(f"Cost per stay: {e['ms_per_sample']:.1f} ms of inference ({name}{memory}).")
    inp.figs.data("summary", {"columns": [c for c, _ in columns], "rows": rows, "points": points})
    return {"table": Table(["", *[c for c, _ in columns]], rows, "summary-metrics"), "points": points,
            "prevalence": test.get("prevalence")}
