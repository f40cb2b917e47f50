"""Section 2, training dynamics (Fig. 3b-e): validation AUPRC/AUROC per epoch of this run and of the ablation
runs, the test scores of each run's kept epoch, and the ablation's tables where it has them (validation, test and
external metrics with ALFIA-boost and the tabular reference; parameters, training and inference time)."""

from __future__ import annotations

from pathlib import Path

from alfia.analysis.ablation import ablation_tables
from alfia.analysis.figures import COLOURS, FigureWriter, integer_ticks, new_figure
from alfia.analysis.report import verdicts
from alfia.analysis.report.inputs import METRIC_NAMES, Inputs, Table, best_epoch, read_history, read_json
from alfia.evaluation.metrics import format_ci
from alfia.run_folder import RunFolder


def _ablation_runs(folder: Path) -> list[tuple[str, Path]]:
    index = folder / "ablation.json"
    if index.exists():
        data = read_json(index, "ablation index")
        return [(r["name"], folder / r["folder"]) for r in data.get("runs", []) if (folder / r["folder"]).is_dir()]
    return sorted((p.name, p) for p in folder.iterdir() if (p / RunFolder.HISTORY).exists())


def curves(figs: FigureWriter, runs: list[tuple[str, Path]]):
    """Fig. 3b/d: validation AUPRC and AUROC per epoch of each ``(name, run folder)``, the kept epoch circled;
    written as ``training-curves`` (PNG and numbers) by ``figs``. Returns (the figure's HTML or None, numbers)."""
    data = {}
    fig, axes = new_figure(10, 3.6, ncols=2)
    for i, (name, folder) in enumerate(runs):
        hist = read_history(folder)
        if not hist:
            continue
        best = best_epoch(hist)
        epochs = [h["epoch"] for h in hist]
        data[name] = {"epoch": epochs, "val_auprc": [h["val_auprc"] for h in hist],
                      "val_auroc": [h["val_auroc"] for h in hist], "best_epoch": best,
                      "train_loss": [h.get("train_loss") for h in hist]}
        for ax, key in zip(axes[0], ("val_auprc", "val_auroc"), strict=True):
            c = COLOURS[i % len(COLOURS)]
            ax.plot(epochs, data[name][key], marker=".", color=c, label=name)
            ax.plot([best], [data[name][key][epochs.index(best)]], "o", color=c, ms=9, mfc="none")
    if not data:
        return None, data
    for ax, label in zip(axes[0], ("validation AUPRC", "validation AUROC"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        integer_ticks(ax)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    return figs.figure("training-curves", fig, data, "Validation metrics per epoch"), data


def _finals(inp: Inputs, runs: list[tuple[str, Path]], data: dict):
    finals = []
    for name, folder in runs:
        mpath = folder / RunFolder.METRICS
        if mpath.exists():
            m = read_json(mpath, "metrics").get("test", {})
            if m:
                finals.append({"name": name, "auprc": m["auprc"], "auroc": m["auroc"],
                               "best_epoch": data.get(name, {}).get("best_epoch")})
    if not finals:
        return None, None
    fig, axes = new_figure(10, 0.5 + 0.4 * len(finals), ncols=2)
    for ax, key in zip(axes[0], ("auprc", "auroc"), strict=True):
        for j, f in enumerate(finals):
            m = f[key]
            lo = m["value"] - (m["ci_low"] if m.get("ci_low") is not None else m["value"])
            hi = (m["ci_high"] if m.get("ci_high") is not None else m["value"]) - m["value"]
            ax.errorbar([m["value"]], [j], xerr=[[lo], [hi]], fmt="o", color=COLOURS[j % len(COLOURS)], capsize=3)
        ax.set_yticks(range(len(finals)), [f["name"] for f in finals], fontsize=7)
        ax.set_xlabel(f"test {METRIC_NAMES[key]} (95% CI)")
        ax.invert_yaxis()
        ax.grid(alpha=0.3)
    figure = inp.figs.figure("final-scores", fig, {"runs": finals}, "Test scores of the kept epoch")
    table = Table(["run", "early-stopping epoch", "test AUPRC (95% CI)", "test AUROC (95% CI)"],
                  [[f["name"], f["best_epoch"], format_ci(f["auprc"]), format_ci(f["auroc"])] for f in finals])
    return figure, table


def _comparison(folder: Path) -> list[tuple[str, Table]]:
    """The ablation's tables beyond its list of runs (which the test-score table above already shows)."""
    index = folder / "ablation.json"
    if not index.exists():
        return []
    return [(title, Table(header, rows)) for title, header, rows in
            ablation_tables(read_json(index, "ablation index"))[1:]]


def build(inp: Inputs) -> dict:
    runs = [("this run", inp.run)]
    comparison = []
    if inp.ablation is not None:
        runs += _ablation_runs(Path(inp.ablation))
        comparison = _comparison(Path(inp.ablation))
    figure, data = curves(inp.figs, runs)
    finals, table = _finals(inp, runs, data) if figure is not None else (None, None)
    return {"curves": figure, "finals": finals, "table": table, "comparison": comparison,
            "words": verdicts.training_verdict(inp.history, best_epoch(inp.history))}
