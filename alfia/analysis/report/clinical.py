"""Section 4, clinical usefulness: calibration (binned, and lowess-smoothed with a bootstrap band) and decision
curves (ALFIA, raw and calibrated when the run has both, and the baselines drawn on the other curves), the
calibration slope, intercept and O:E of every model that outputs probabilities per cohort (severity scores are
points, not probabilities: they have none), the threshold metrics and the subgroups, each with its reading in
words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report import verdicts
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table
from alfia.evaluation.calibration import calibration_summary, decision_curve, smoothed_calibration_curve
from alfia.evaluation.metrics import (
    CALIBRATION_FIT_METRICS,
    calibration_metrics,
    evaluate,
    format_ci,
    observed_expected_ratio,
)

SUBGROUP_COLUMNS = ("gender", "sex", "age", "icu_type", "first_careunit", "unit_type")
AGE_BANDS = [(0, 50, "<50"), (50, 65, "50-64"), (65, 80, "65-79"), (80, 200, ">=80")]


def curves(inp: Inputs) -> dict[str, dict]:
    """Calibration and decision curve of every model drawn (computed once, shared with the summary):
    ``{name: {"calibration", "smoothed", "decision_curve", "mean_predicted", "observed_rate"}}`` (``smoothed``:
    the lowess curve with its bootstrap band, ``None`` for a severity score). When the predictions have a ``p_raw``
    column beside ``probability`` (a calibrated run), "ALFIA (raw)" comes first and "ALFIA" is the calibrated
    one."""
    if "curves" in inp.cache:
        return inp.cache["curves"]
    t = inp.test
    y = t[inp.label].to_numpy().astype(int)
    models = {}
    if "p_raw" in t.columns:
        models["ALFIA (raw)"] = (y, t["p_raw"].to_numpy())
    all_models = inp.test_models()
    models.update({name: all_models[name] for name in inp.curve_models()})
    scores = _scores(inp)
    out = {}
    for name, (yy, pp) in models.items():
        smoothed = None if name in scores else smoothed_calibration_curve(yy, pp, n_boot=inp.options.n_boot)
        out[name] = {"calibration": calibration_summary(yy, pp), "smoothed": smoothed,
                     "decision_curve": decision_curve(yy, pp), "mean_predicted": float(np.mean(pp)),
                     "observed_rate": float(np.mean(yy))}
    inp.cache["curves"] = out
    return out


def _scores(inp: Inputs) -> set[str]:
    """The severity scores among the models (points, not probabilities: no calibration fit)."""
    return {r["model"] for r in inp.leaderboard() if r.get("family") == "score"}


def _fit_entries(m: dict | None) -> dict | None:
    if m and all(k in m for k in CALIBRATION_FIT_METRICS):
        return {k: m[k] for k in CALIBRATION_FIT_METRICS}
    return None


def calibration_fits(inp: Inputs) -> list[dict]:
    """O:E, calibration intercept and slope with 95% CIs of every model drawn that outputs probabilities, on the
    internal test split, and ALFIA's on the external cohort: ``[{"model", "cohort", "metrics", "n_boot",
    "source"}]``. The numbers the run and the baselines stored (metrics.json, results.json: the leaderboards') are
    used when they hold them, else computed from the predictions with the report's ``n_boot``; an external metrics
    file written before these metrics gives n/a."""
    if "fits" in inp.cache:
        return inp.cache["fits"]
    scores = _scores(inp)
    t = inp.test
    y = t[inp.label].to_numpy().astype(int)
    models = inp.test_models()
    if "p_raw" in t.columns:
        models = {"ALFIA (raw)": (y, t["p_raw"].to_numpy()), **models}
    stored = {"ALFIA": inp.metrics.get("test")}
    if inp.baselines is not None:
        stored.update({name: r.get("test") for name, r in inp.baselines["results"]["models"].items()})
    rows = []
    drawn = list(curves(inp))
    for name in sorted(drawn, key=lambda n: (n != "ALFIA", n != "ALFIA (raw)", drawn.index(n))):
        if name in scores or name not in models:
            continue
        m = stored.get(name)
        entries = _fit_entries(m)
        if entries is not None:
            n_boot, source = m.get("n_boot"), "stored"
        else:
            n_boot, source = inp.options.n_boot, "computed"
            entries = calibration_metrics(*models[name], n_boot=n_boot)
        rows.append({"model": name, "cohort": "internal test split", "metrics": entries, "n_boot": n_boot,
                     "source": source})
    external = (inp.external or {}).get("info", {}).get("metrics")
    if external:
        entries = _fit_entries(external)
        rows.append({"model": "ALFIA", "cohort": f"external cohort {inp.external['name']}",
                     "metrics": entries or {k: None for k in CALIBRATION_FIT_METRICS},
                     "n_boot": external.get("n_boot"), "source": "stored" if entries else "absent"})
    inp.cache["fits"] = rows
    return rows


def calibration_fit_words(inp: Inputs, models: tuple[str, ...] = ("ALFIA", "ALFIA (raw)")) -> list[str]:
    """The calibration slope, intercept and O:E of ALFIA (and its raw probability) per cohort, in words."""
    return [verdicts.calibration_fit_verdict(r["model"], f"the {r['cohort']}", r["metrics"], r["n_boot"])
            for r in calibration_fits(inp) if r["model"] in models and r["source"] != "absent"]


def _fit_table(inp: Inputs) -> Table | None:
    rows = [[r["model"], r["cohort"], *[format_ci((r["metrics"] or {}).get(k)) for k in CALIBRATION_FIT_METRICS],
             ", ".join(f"{k.removeprefix('calibration_')} {e['failed_resamples']}"
                       for k in CALIBRATION_FIT_METRICS[1:]
                       if (e := r["metrics"].get(k)) and e.get("failed_resamples")) or "0"]
            for r in calibration_fits(inp)]
    if not rows:
        return None
    return Table(["model", "cohort", "O:E (1 ideal)", "calibration intercept (0 ideal)", "calibration slope (1 ideal)",
                  "failed bootstrap fits"], rows)


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


def _slope_label(cal: dict) -> str:
    a, b = cal.get("calibration_intercept"), cal.get("calibration_slope")
    slope = "n/a" if b is None else f"{b:.2f}"
    intercept = "n/a" if a is None else f"{a:+.2f}"
    return f"slope {slope}, intercept {intercept}"


def _figure(inp: Inputs):
    all_curves = curves(inp)
    fig, axes = new_figure(15, 4.2, ncols=3)
    cal_ax, smooth_ax, dca_ax = axes[0]
    for ax in (cal_ax, smooth_ax):
        ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration" if ax is cal_ax else None)
    for i, (name, c) in enumerate(all_curves.items()):
        cal = c["calibration"]
        style = dict(color=COLOURS[i % len(COLOURS)], lw=2.2 if name == "ALFIA" else 1.2,
                     alpha=1 if name in ("ALFIA", "ALFIA (raw)") else 0.75)
        cal_ax.plot([b["mean_predicted"] for b in cal["bins"]], [b["observed_rate"] for b in cal["bins"]], "o-",
                    ms=3.5, label=f"{name} (ECE {cal['ece']:.3f})", **style)
        sm = c.get("smoothed")
        if sm is not None:
            x = np.array(sm["predicted"], dtype=float)
            observed = np.array([np.nan if v is None else v for v in sm["observed"]], dtype=float)
            smooth_ax.plot(x, observed, label=f"{name} ({_slope_label(cal)})", **style)
            if sm["ci_low"] is not None and name in ("ALFIA", "ALFIA (raw)"):
                lo, hi = (np.array([np.nan if v is None else v for v in sm[k]], dtype=float)
                          for k in ("ci_low", "ci_high"))
                smooth_ax.fill_between(x, lo, hi, color=style["color"], alpha=0.18, lw=0,
                                       label=f"{name}: 95% band, {sm['n_boot']} bootstrap resamples")
        dca_ax.plot(c["decision_curve"]["threshold"], c["decision_curve"]["model"], label=name, **style)
    dca = all_curves["ALFIA"]["decision_curve"]
    dca_ax.plot(dca["threshold"], dca["treat_all"], color="grey", ls="--", label="treat all")
    dca_ax.plot(dca["threshold"], dca["treat_none"], color="k", ls=":", label="treat none")
    values = [v for c in all_curves.values() for v in c["decision_curve"]["model"]] + list(dca["treat_all"])
    dca_ax.set_ylim(min(min(values), 0) - 0.01, max(max(values), 0) + 0.02)
    cal_ax.set(xlabel="mean predicted probability", ylabel="observed death rate", title="calibration, binned (test)",
               xlim=(0, 1), ylim=(0, 1))
    smooth_ax.set(xlabel="predicted probability", ylabel="observed death rate (lowess)",
                  title="calibration, lowess-smoothed (test)", xlim=(0, 1), ylim=(0, 1))
    dca_ax.set(xlabel="threshold probability", ylabel="net benefit", title="decision curve (test)")
    for a in axes[0]:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    return inp.figs.figure("calibration", fig, {"calibration": all_curves["ALFIA"]["calibration"],
                                                "smoothed": all_curves["ALFIA"]["smoothed"],
                                                "decision_curve": dca, "models": all_curves,
                                                "fits": calibration_fits(inp)},
                           "Calibration (binned, and lowess-smoothed with a bootstrap band) and decision curve")


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
                entry.update({k: e.get(k) for k in ("auprc", "auroc", "sensitivity", "specificity", "oe_ratio")})
            else:   # a single outcome: O:E is still defined (no interval), the rest is not
                entry["oe_ratio"] = {"value": observed_expected_ratio(yy, pp), "ci_low": None, "ci_high": None}
            entry["expected"] = float(pp.sum())
            data[f"{col}={level}"] = entry
            rows.append([col, level, entry["n"], entry["deaths"], f"{entry['expected']:.1f}"]
                        + [format_ci(entry.get(k)) for k in ("oe_ratio", "auprc", "auroc", "sensitivity",
                                                            "specificity")])
    header = ["variable", "group", "n", "deaths", "expected deaths", "O:E", "AUPRC", "AUROC", "sensitivity",
              "specificity"]
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
    fits = calibration_fits(inp)
    inp.figs.data("calibration-fits", {"rows": fits})
    context = {"figure": figure, "brier": cal["brier"], "ece": cal["ece"], "n_bins": cal["n_bins"],
               "fit_table": _fit_table(inp), "fit_words": calibration_fit_words(inp),
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
