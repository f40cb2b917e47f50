"""Section 4, clinical usefulness: calibration and decision curves (ALFIA, raw and calibrated when the run has
both, and the baselines drawn on the other curves), the threshold metrics and the subgroups, each with its
reading in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report import verdicts
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table
from alfia.evaluation.calibration import calibration_summary, decision_curve
from alfia.evaluation.metrics import evaluate, format_ci

SUBGROUP_COLUMNS = ("gender", "sex", "age", "icu_type", "first_careunit", "unit_type")
AGE_BANDS = [(0, 50, "<50"), (50, 65, "50-64"), (65, 80, "65-79"), (80, 200, ">=80")]


def curves(inp: Inputs) -> dict[str, dict]:
    """Calibration and decision curve of every model drawn (computed once, shared with the summary):
    ``{name: {"calibration", "decision_curve", "mean_predicted", "observed_rate"}}``. When the predictions have a
    ``p_raw`` column beside ``probability`` (a calibrated run), "ALFIA (raw)" comes first and "ALFIA" is the
    calibrated one."""
    if "curves" in inp.cache:
        return inp.cache["curves"]
    t = inp.test
    y = t[inp.label].to_numpy().astype(int)
    models = {}
    if "p_raw" in t.columns:
        models["ALFIA (raw)"] = (y, t["p_raw"].to_numpy())
    all_models = inp.test_models()
    models.update({name: all_models[name] for name in inp.curve_models()})
    out = {}
    for name, (yy, pp) in models.items():
        out[name] = {"calibration": calibration_summary(yy, pp), "decision_curve": decision_curve(yy, pp),
                     "mean_predicted": float(np.mean(pp)), "observed_rate": float(np.mean(yy))}
    inp.cache["curves"] = out
    return out


def calibration_words(inp: Inputs) -> list[str]:
    """The verdict on the probability ALFIA shows (calibrated when the run recalibrates), then on its raw one."""
    all_curves = curves(inp)
    return [verdicts.calibration_verdict(name, c["calibration"]["ece"], c["mean_predicted"], c["observed_rate"])
            for name in ("ALFIA", "ALFIA (raw)") if (c := all_curves.get(name))]


def decision_words(inp: Inputs) -> str:
    c = curves(inp)["ALFIA"]["decision_curve"]
    return verdicts.decision_verdict("ALFIA", c["threshold"], c["model"], c["treat_all"])


def _baseline_decision_words(inp: Inputs) -> str:
    """How often the best baseline's net benefit beats ALFIA's."""
    all_curves = curves(inp)
    best = (inp.best_baseline() or {}).get("model")
    if best not in all_curves:
        return ""
    a, b = (np.asarray(all_curves[n]["decision_curve"]["model"]) for n in ("ALFIA", best))
    wins = int((b > a + verdicts.NET_BENEFIT_TIE).sum())
    return (f"{best}'s net benefit is higher than ALFIA's at {wins} of {len(a)} threshold probabilities.")


def _figure(inp: Inputs):
    all_curves = curves(inp)
    fig, axes = new_figure(10, 4.2, ncols=2)
    cal_ax, dca_ax = axes[0]
    cal_ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
    for i, (name, c) in enumerate(all_curves.items()):
        cal = c["calibration"]
        style = dict(color=COLOURS[i % len(COLOURS)], lw=2.2 if name == "ALFIA" else 1.2,
                     alpha=1 if name in ("ALFIA", "ALFIA (raw)") else 0.75)
        cal_ax.plot([b["mean_predicted"] for b in cal["bins"]], [b["observed_rate"] for b in cal["bins"]], "o-",
                    ms=3.5, label=f"{name} (ECE {cal['ece']:.3f})", **style)
        dca_ax.plot(c["decision_curve"]["threshold"], c["decision_curve"]["model"], label=name, **style)
    dca = all_curves["ALFIA"]["decision_curve"]
    dca_ax.plot(dca["threshold"], dca["treat_all"], color="grey", ls="--", label="treat all")
    dca_ax.plot(dca["threshold"], dca["treat_none"], color="k", ls=":", label="treat none")
    values = [v for c in all_curves.values() for v in c["decision_curve"]["model"]] + list(dca["treat_all"])
    dca_ax.set_ylim(min(min(values), 0) - 0.01, max(max(values), 0) + 0.02)
    cal_ax.set(xlabel="mean predicted probability", ylabel="observed death rate", title="calibration (test)",
               xlim=(0, 1), ylim=(0, 1))
    dca_ax.set(xlabel="threshold probability", ylabel="net benefit", title="decision curve (test)")
    for a in axes[0]:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return inp.figs.figure("calibration", fig, {"calibration": all_curves["ALFIA"]["calibration"],
                                                "decision_curve": dca, "models": all_curves},
                           "Calibration and decision curve")


def _subgroups(df: pd.DataFrame) -> dict[str, pd.Series]:
    groups = {}
    for col in SUBGROUP_COLUMNS:
        if col not in df.columns:
            continue
        s = df[col]
        if col == "age":
            bands = pd.Series(None, index=s.index, dtype=object)
            for lo, hi, name in AGE_BANDS:
                bands[(s >= lo) & (s < hi)] = name
            groups["age band"] = bands
        else:
            groups[col] = s.astype(object).where(s.notna(), None)
    return groups


def _subgroup_table(inp: Inputs) -> tuple[Table | None, dict]:
    t = inp.test
    y, p = t[inp.label].to_numpy().astype(int), t["probability"].to_numpy()
    df = t.merge(inp.cohort.df.drop(columns=[inp.cohort.label, "split"], errors="ignore"), on="stay_id")
    rows, data = [], {}
    for col, values in _subgroups(df).items():
        for level in sorted(v for v in values.dropna().unique()):
            sel = (values == level).to_numpy()
            yy, pp = y[sel], p[sel]
            entry = {"n": int(sel.sum()), "deaths": int(yy.sum())}
            if len(np.unique(yy)) == 2:
                e = evaluate(yy, pp, threshold=inp.threshold, n_boot=inp.options.n_boot)
                entry.update({k: e.get(k) for k in ("auprc", "auroc", "sensitivity", "specificity")})
            data[f"{col}={level}"] = entry
            rows.append([col, level, entry["n"], entry["deaths"]]
                        + [format_ci(entry.get(k)) for k in ("auprc", "auroc", "sensitivity", "specificity")])
    header = ["variable", "group", "n", "deaths", "AUPRC", "AUROC", "sensitivity", "specificity"]
    return (Table(header, rows) if rows else None), data


def build(inp: Inputs) -> dict:
    figure = _figure(inp)
    cal = curves(inp)["ALFIA"]["calibration"]
    m = inp.metrics["test"]
    names = ("sensitivity", "specificity", "ppv", "npv", "f1", "f2")
    threshold = None
    if m.get("threshold") is not None:
        threshold = {"value": m["threshold"], "table": Table([METRIC_NAMES[k] for k in names],
                                                             [[format_ci(m.get(k)) for k in names]]),
                     "confusion": m.get("confusion")}
    context = {"figure": figure, "brier": cal["brier"], "ece": cal["ece"], "n_bins": cal["n_bins"],
               "calibration_words": calibration_words(inp), "decision_words": decision_words(inp),
               "baseline_words": _baseline_decision_words(inp), "threshold": threshold,
               "subgroups": None, "subgroup_words": "", "has_cohort": inp.cohort is not None,
               "subgroup_columns": ", ".join(SUBGROUP_COLUMNS)}
    if inp.cohort is not None:
        table, data = _subgroup_table(inp)
        inp.figs.data("subgroups", {"threshold": inp.threshold, "n_boot": inp.options.n_boot, "groups": data})
        context["subgroups"] = table
        context["subgroup_words"] = verdicts.subgroup_verdict(data, m.get("auroc")) if data else ""
    return context
