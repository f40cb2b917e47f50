"""Section 3, performance (Table 3, Fig. 4): the test leaderboard, external validation beside the internal test,
PR and ROC curves of ALFIA and the strongest baselines, and each metric's spread over bootstrap resamples."""

from __future__ import annotations

import numpy as np

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report import verdicts
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table, thin
from alfia.evaluation.metrics import average_precision, best_fbeta, bootstrap_indices, format_ci, roc_auc

BOX_METRICS = ("auprc", "auroc", "best_f1", "best_f2")
# The leaderboard's columns: discrimination, then calibration (a severity score has none: n/a).
BOARD_METRICS = ("auprc", "auroc", "best_f1", "best_f2", "brier", "oe_ratio", "calibration_intercept",
                 "calibration_slope")


def _bootstrap_distributions(models: dict, n_boot: int) -> dict:
    out = {}
    for name, (y, p) in models.items():
        vals = {k: [] for k in BOX_METRICS}
        for idx in bootstrap_indices(y, n_boot=n_boot, seed=42):
            yy, pp = y[idx], p[idx]
            vals["auprc"].append(average_precision(yy, pp))
            vals["auroc"].append(roc_auc(yy, pp))
            vals["best_f1"].append(best_fbeta(yy, pp, 1.0)[0])
            vals["best_f2"].append(best_fbeta(yy, pp, 2.0)[0])
        out[name] = {k: np.round(v, 5).tolist() for k, v in vals.items()}
    return out


def _curves(inp: Inputs):
    from sklearn.metrics import precision_recall_curve, roc_curve

    models = inp.test_models()
    fig, axes = new_figure(10, 4.2, ncols=2)
    curves = {}
    for i, name in enumerate(inp.curve_models()):
        y, p = models[name]
        prec, rec, _ = precision_recall_curve(y, p)
        fpr, tpr, _ = roc_curve(y, p)
        c = COLOURS[i % len(COLOURS)]
        axes[0, 0].plot(rec, prec, color=c, label=f"{name} (AUPRC {average_precision(y, p):.3f})")
        axes[0, 1].plot(fpr, tpr, color=c, label=f"{name} (AUROC {roc_auc(y, p):.3f})")
        r, pr = thin(rec, prec)
        f, t = thin(fpr, tpr)
        curves[name] = {"recall": r, "precision": pr, "fpr": f, "tpr": t}
    prevalence = float(models["ALFIA"][0].mean())
    axes[0, 0].axhline(prevalence, color="grey", ls=":", label=f"prevalence {prevalence:.3f}")
    axes[0, 1].plot([0, 1], [0, 1], color="grey", ls=":", label="chance")
    axes[0, 0].set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
    axes[0, 1].set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC (test)")
    for ax in axes[0]:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return inp.figs.figure("pr-roc", fig, {"prevalence": prevalence, "curves": curves}, "PR and ROC curves")


def _bootstrap(inp: Inputs, ranked: list[str]):
    models = inp.test_models()
    dist = _bootstrap_distributions({k: models[k] for k in ranked[:10]}, inp.options.n_boot)
    fig, axes = new_figure(11, 1.2 + 0.35 * len(dist), ncols=4)
    for ax, key in zip(axes[0], BOX_METRICS, strict=True):
        ax.boxplot([dist[m][key] for m in dist], orientation="horizontal", tick_labels=list(dist), showfliers=False)
        ax.set_title(METRIC_NAMES[key])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    n_boot = inp.options.n_boot
    return inp.figs.figure("bootstrap", fig, {"n_boot": n_boot, "seed": 42, "distributions": dist},
                           f"Test metrics over {n_boot} stratified bootstrap resamples")


def build(inp: Inputs) -> dict:
    board = inp.leaderboard()
    skipped = inp.baselines["results"].get("skipped", {}) if inp.baselines else {}
    rows = [[i + 1, r["model"], r["family"], (r["test"] or {}).get("n", "")]
            + [format_ci((r["test"] or {}).get(k)) for k in BOARD_METRICS]
            for i, r in enumerate(board)]
    inp.figs.data("leaderboard", {"models": board, "skipped": skipped})
    ext_rows = [[r["model"], format_ci((r["test"] or {}).get("auprc")), format_ci(r["external"].get("auprc")),
                 format_ci((r["test"] or {}).get("auroc")), format_ci(r["external"].get("auroc"))]
                for r in board if r.get("external")]
    words = []
    best = inp.best_baseline()
    if best is not None:
        words = [verdicts.compare_verdict(METRIC_NAMES[k], "ALFIA", inp.metrics["test"][k], best["model"],
                                          best["test"][k]) for k in ("auprc", "auroc") if best["test"].get(k)]
    models = inp.test_models()
    ranked = [r["model"] for r in board if r["model"] in models]
    return {"has_baselines": inp.baselines is not None,
            "board": Table(["rank", "model", "family", "n", *[METRIC_NAMES[k] for k in BOARD_METRICS]], rows),
            "skipped": skipped,
            "external": Table(["model", "AUPRC internal test", "AUPRC external", "AUROC internal test",
                               "AUROC external"], ext_rows) if ext_rows else None,
            "curves": _curves(inp), "words": words, "bootstrap": _bootstrap(inp, ranked)}
