"""Section 7, latent space (Fig. 6b-k): a 2-D map of each embedding of the test stays coloured by outcome (with
a legend), separation measures, and one fixed downstream classifier's AUPRC/AUROC on each embedding."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from alfia.analysis.figures import COLOURS, DIED, SURVIVED, new_figure
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table
from alfia.evaluation.metrics import format_ci

LATENT_MEASURES = (("centroid_distance", "centroid distance (HIB)"), ("nearest_negative",
                   "mean distance positive to nearest negative (HIB)"), ("within_neg", "within survivors (LIB)"),
                   ("within_pos", "within deaths (LIB)"), ("separation_ratio", "separation ratio (HIB)"),
                   ("silhouette", "silhouette (HIB)"))


def _analysis(inp: Inputs) -> dict:
    from alfia.analysis import latent

    o = inp.options
    key = latent.latent_key(inp.run, inp.cohort, o.max_stays, o.projection, o.classifier)
    data = latent.load_cached(inp.figs.data_dir / "latent.json", key)
    if data is None:
        data = latent.latent_analysis(inp.loaded, inp.cohort, inp.texts, max_stays=o.max_stays,
                                      projection=o.projection, n_boot=o.n_boot, classifier=o.classifier,
                                      progress=o.progress)
        data["key"] = key
    else:
        o.progress("latent space: reusing figures/latent.json (same run, cohort and settings)")
    if not o.include_texts:
        data.pop("stay_ids", None)  # --no-texts: no stay id in any file the report writes
    inp.figs.data("latent", data)
    return data


def _maps(inp: Inputs, sets: dict, labels: np.ndarray):
    names = list(sets)
    cols = 4
    nrows = -(-len(names) // cols)
    fig, axes = new_figure(12, 2.8 * nrows + 0.4, ncols=cols, nrows=nrows)
    handles = [Line2D([], [], ls="", marker="o", color=DIED, label=f"died (n={int(labels.sum())})"),
               Line2D([], [], ls="", marker="o", color=SURVIVED, label=f"survived (n={int((labels == 0).sum())})")]
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        xy = np.array(sets[names[k]]["xy"])
        order = np.argsort(labels, kind="stable")  # deaths drawn last, on top
        ax.scatter(xy[order, 0], xy[order, 1], s=4, c=[DIED if v else SURVIVED for v in labels[order]],
                   linewidths=0)
        ax.set_title(names[k], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:  # one legend serves every panel (the colours are the same)
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.7)
    projection = inp.options.projection
    return inp.figs.figure("latent-maps", fig, {"see": "latent.json", "projection": projection, "sets": names},
                           f"{projection.upper()} of each embedding (test split)")


def _measures(inp: Inputs, sets: dict):
    names = list(sets)
    fig, axes = new_figure(12, 2.2 + 0.22 * len(names), ncols=3, nrows=2)
    for ax, (mkey, title) in zip(axes.flat, LATENT_MEASURES, strict=True):
        vals = [sets[n]["measures"][mkey] for n in names]
        ax.barh(names, [v if v is not None else 0 for v in vals],
                color=[COLOURS[3] if n == "ALF output" else COLOURS[0] for n in names])
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
        ax.invert_yaxis()
    return inp.figs.figure("latent-measures", fig, {n: sets[n]["measures"] for n in names},
                           "Separation measures (L2-normalised)")


def _classifier(inp: Inputs, sets: dict):
    names = list(sets)
    fig, axes = new_figure(12, 1.5 + 0.25 * len(names), ncols=2)
    for ax, mkey in zip(axes[0], ("auprc", "auroc"), strict=True):
        for j, n in enumerate(names):
            m = sets[n]["classifier"][mkey]
            lo = m["value"] - (m["ci_low"] if m["ci_low"] is not None else m["value"])
            hi = (m["ci_high"] if m["ci_high"] is not None else m["value"]) - m["value"]
            ax.errorbar([m["value"]], [j], xerr=[[lo], [hi]], fmt="o", capsize=2,
                        color=COLOURS[3] if n == "ALF output" else COLOURS[0])
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel(f"downstream classifier test {METRIC_NAMES[mkey]} (95% CI)")
        ax.grid(alpha=0.3)
    return inp.figs.figure("latent-classifier", fig, {n: sets[n]["classifier"] for n in names},
                           "Downstream classifier on each embedding")


def build(inp: Inputs) -> dict:
    if inp.texts is None:
        return {"data": None}
    data = _analysis(inp)
    sets = data["sets"]
    names = list(sets)
    best = max(names, key=lambda n: sets[n]["classifier"]["auprc"]["value"])
    words = (f"The downstream classifier separates deaths best on {best} (test AUPRC "
             f"{format_ci(sets[best]['classifier']['auprc'])})")
    if "ALF output" in sets and best != "ALF output":
        words += f"; on the ALF output it reaches {format_ci(sets['ALF output']['classifier']['auprc'])}"
    rows = [[n, sets[n]["dim"], *[("n/a" if sets[n]["measures"][k] is None else f"{sets[n]['measures'][k]:.4f}")
                                  for k, _ in LATENT_MEASURES],
             format_ci(sets[n]["classifier"]["auprc"]), format_ci(sets[n]["classifier"]["auroc"])] for n in names]
    return {"data": data, "projection": inp.options.projection.upper(),
            "maps": _maps(inp, sets, np.array(data["labels"])), "measures": _measures(inp, sets),
            "classifier": _classifier(inp, sets), "words": words + ".",
            "table": Table(["embedding", "dim", "centroid dist.", "pos→nearest neg.", "within survivors",
                            "within deaths", "separation ratio", "silhouette", "AUPRC", "AUROC"], rows, "latent")}
