"""``alfia report``: one self-contained HTML page about a trained run (images inlined, opens offline).

Sections: 1 cohort, 2 training dynamics (Fig. 3b-e), 3 performance (Table 3, Fig. 4), 4 clinical usefulness
(calibration, decision curve, subgroups, threshold metrics), 5 what the model learned (Fig. 6a: layer weights
lambda, token attention beta), 6 latent space (Fig. 6b-k), 7 cost (Fig. 5c-d). Every figure also writes the
numbers it plots to ``RUN/figures/<name>.json``. A section whose inputs are absent says what to pass.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.analysis.figures import COLOURS, DIED, SURVIVED, FigureWriter, new_figure
from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.calibration import calibration_summary, decision_curve
from alfia.evaluation.metrics import average_precision, best_fbeta, bootstrap_indices, evaluate, format_ci, roc_auc
from alfia.io import write_text_atomic

SUBGROUP_COLUMNS = ("gender", "sex", "age", "icu_type", "first_careunit", "unit_type")
AGE_BANDS = [(0, 50, "<50"), (50, 65, "50-64"), (65, 80, "65-79"), (80, 200, ">=80")]
BOX_METRICS = ("auprc", "auroc", "best_f1", "best_f2")
METRIC_NAMES = {"auprc": "AUPRC", "auroc": "AUROC", "best_f1": "best F1", "best_f2": "best F2", "brier": "Brier",
                "ece": "ECE", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV",
                "npv": "NPV", "f1": "F1", "f2": "F2"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f0f0f0}td.num{text-align:right}.lead{font-style:italic;color:#444}
.missing{color:#a33}.text{font-family:monospace;font-size:.85em;background:#fafafa;border:1px solid #ddd;
padding:.6em;white-space:pre-wrap}figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.8em;color:#555}
.tok{padding:0 1px;border-radius:2px}.warn{background:#fff3cd;padding:.5em;border:1px solid #e0c36a}
"""


# ----------------------------------------------------------------------------------------------- helpers

def _esc(x) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _missing(what: str) -> str:
    return f'<p class="missing">Not shown: {_esc(what)}</p>'


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AlfiaError(f"cannot read {what} {path} ({type(exc).__name__}); pass the file the study wrote") from None


def read_history(run: Path) -> list[dict]:
    path = Path(run) / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def best_epoch(history: list[dict]) -> int | None:
    """The early-stopping epoch: the last one marked best (the highest validation AUPRC)."""
    marked = [h["epoch"] for h in history if h.get("best")]
    if marked:
        return marked[-1]
    return max(history, key=lambda h: h["val_auprc"])["epoch"] if history else None


def _thin(x: np.ndarray, y: np.ndarray, k: int = 200) -> tuple[list, list]:
    if len(x) > k:
        idx = np.unique(np.linspace(0, len(x) - 1, k).round().astype(int))
        x, y = x[idx], y[idx]
    return np.round(x, 5).tolist(), np.round(y, 5).tolist()


class Inputs:
    """What a report reads: the run folder and the optional extras, loaded and checked once."""

    def __init__(self, run: Path, baselines: Path | None, ablation: Path | None, cohort: Cohort | None,
                 external: Path | None, bench: Path | None):
        self.run = Path(run)
        if not (self.run / "predictions.parquet").exists() or not (self.run / "metrics.json").exists():
            raise AlfiaError(f"{self.run} has no predictions.parquet/metrics.json: it is not a finished run "
                             "(train it with `alfia train`, which scores it at the end)")
        self.predictions = pd.read_parquet(self.run / "predictions.parquet")
        self.metrics = _read_json(self.run / "metrics.json", "metrics")
        self.threshold = float(_read_json(self.run / "threshold.json", "threshold")["threshold"]) \
            if (self.run / "threshold.json").exists() else None
        self.config = _read_json(self.run / "config.json", "config") if (self.run / "config.json").exists() else {}
        self.history = read_history(self.run)
        self.cohort = cohort
        if cohort is not None:
            missing = set(self.predictions["stay_id"]) - set(cohort.df["stay_id"])
            if missing:
                raise AlfiaError(f"the cohort lacks {len(missing)} stays of the run's predictions; pass the "
                                 "cohort the run was trained on (--cohort)")
        self.baselines = self._baselines(baselines)
        self.ablation = Path(ablation) if ablation else None
        if self.ablation is not None and not self.ablation.is_dir():
            raise AlfiaError(f"ablation folder {self.ablation} does not exist; run `alfia ablate` first")
        self.external = self._external(external)
        self.bench = _read_json(bench, "bench JSON") if bench else None

    def _baselines(self, folder: Path | None) -> dict | None:
        if folder is None:
            return None
        folder = Path(folder)
        if not (folder / "results.json").exists():
            raise AlfiaError(f"{folder} has no results.json; pass the baselines folder (or leave --baselines out)")
        results = _read_json(folder / "results.json", "baseline results")
        if not isinstance(results.get("models"), dict):
            raise AlfiaError(f"{folder / 'results.json'} has no \"models\" object; write it with the baselines")
        preds = pd.read_parquet(folder / "predictions.parquet") if (folder / "predictions.parquet").exists() \
            else None
        return {"results": results, "predictions": preds}

    def _external(self, path: Path | None) -> dict | None:
        if path is None:
            return None
        path = Path(path)
        if not path.exists():
            raise AlfiaError(f"external predictions {path} do not exist; pass the file the study wrote")
        preds = pd.read_parquet(path)
        if not {"stay_id", "probability"} <= set(preds.columns):
            raise AlfiaError(f"{path} needs stay_id and probability columns")
        stem = path.name.removesuffix(".parquet").removesuffix(".predictions")
        info_path = path.with_name(f"{stem}.metrics.json")
        info = _read_json(info_path, "external metrics") if info_path.exists() else {}
        return {"predictions": preds, "info": info, "name": stem}

    # -- test-split predictions of every model, with labels ---------------------------------------------------
    def test_models(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Test-split (labels, probabilities) of ALFIA and of every baseline with predictions (labels joined by
        stay_id from the run's predictions)."""
        t = self.predictions[self.predictions["split"] == "test"]
        models = {"ALFIA": (t["hospital_mortality"].to_numpy().astype(int), t["probability"].to_numpy())}
        labels = t.set_index("stay_id")["hospital_mortality"]
        if self.baselines and self.baselines["predictions"] is not None:
            bp = self.baselines["predictions"]
            for name, group in bp[bp["where"] == "test"].groupby("model", sort=False):
                g = group[group["stay_id"].isin(labels.index)]
                if len(g) and labels.loc[g["stay_id"]].nunique() == 2:
                    models[str(name)] = (labels.loc[g["stay_id"]].to_numpy().astype(int), g["probability"].to_numpy())
        return models


# ----------------------------------------------------------------------------------------------- sections

def section_cohort(inp: Inputs, figs: FigureWriter, texts: list[str] | None) -> str:
    lead = ("The cohort the run was trained and tested on: baseline characteristics by outcome (Table 1), the "
            "label rate and split sizes, how long the texts are in backbone tokens, and one example text.")
    out = [f'<p class="lead">{lead}</p>']
    p = inp.predictions
    rows = []
    for split in ("train", "val", "test"):
        s = p[p["split"] == split]
        rows.append([split, f"{len(s):,}", f"{int(s['hospital_mortality'].sum()):,}",
                     f"{s['hospital_mortality'].mean():.1%}" if len(s) else "n/a"])
    y_all = p["hospital_mortality"]
    rows.append(["all", f"{len(p):,}", f"{int(y_all.sum()):,}", f"{y_all.mean():.1%}"])
    out.append(_table(["split", "stays", "deaths", "label rate"], rows))
    figs.data("cohort-splits", {"rows": rows})
    if inp.cohort is None:
        out.append(_missing("Table 1, text lengths and an example text need the cohort: pass --cohort"))
        return "\n".join(out)
    from alfia.cohorts.table1 import table1

    try:
        t1 = table1(inp.cohort)
        out.append(f"<h3>{_esc(t1.attrs.get('title', 'Table 1'))}</h3>")
        out.append(_table(list(t1.columns), t1.values.tolist(), "table1"))
        figs.data("table1", {"columns": list(t1.columns), "rows": t1.values.tolist()})
    except (AlfiaError, KeyError) as exc:
        out.append(_missing(f"Table 1 ({exc})"))
    if texts is not None:
        tokenizer = inp.tokenizer
        lengths = np.array([len(x) for x in tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]])
        fig, ax = new_figure(7, 3)
        counts, edges, _ = ax[0, 0].hist(lengths, bins=40, color=COLOURS[0])
        limit = inp.max_length
        if limit:
            ax[0, 0].axvline(limit, color="k", ls="--", label=f"max length {limit}")
            ax[0, 0].legend()
        ax[0, 0].set_xlabel("tokens per text (backbone tokenizer, with special tokens)")
        ax[0, 0].set_ylabel("stays")
        stats = {"p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)),
                 "max": int(lengths.max()), "truncated": int((lengths > limit).sum()) if limit else 0}
        out.append(figs.figure("cohort-token-lengths", fig, {"counts": counts, "edges": edges, **stats},
                               "Text length in tokens"))
        out.append(f"<p>Median {stats['p50']:.0f} tokens, 95th percentile {stats['p95']:.0f}, longest "
                   f"{stats['max']}; {stats['truncated']} texts are longer than the model's limit.</p>")
        test_rows = np.flatnonzero(inp.cohort.df["split"].to_numpy() == "test")
        example = texts[int(test_rows[0]) if len(test_rows) else 0]
        out.append(f'<p>An example text (first test stay):</p><div class="text">{_esc(example)}</div>')
    return "\n".join(out)


def _ablation_runs(folder: Path) -> list[tuple[str, Path]]:
    index = folder / "ablation.json"
    if index.exists():
        data = _read_json(index, "ablation index")
        return [(r["name"], folder / r["folder"]) for r in data.get("runs", []) if (folder / r["folder"]).is_dir()]
    return sorted((p.name, p) for p in folder.iterdir() if (p / "history.jsonl").exists())


def section_training(inp: Inputs, figs: FigureWriter) -> str:
    lead = ("Validation AUPRC (left) and AUROC (right) after each epoch; the dot marks the early-stopping epoch "
            "whose weights were kept. Higher is better; a curve that flattens has converged.")
    out = [f'<p class="lead">{lead}</p>']
    runs = [("this run", inp.run)]
    if inp.ablation is not None:
        runs += _ablation_runs(inp.ablation)
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
        return "\n".join([*out, _missing("history.jsonl is empty: the run did not finish an epoch")])
    for ax, label in zip(axes[0], ("validation AUPRC", "validation AUROC"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    out.append(figs.figure("training-curves", fig, data, "Validation metrics per epoch"))
    finals = []
    for name, folder in runs:
        mpath = folder / "metrics.json"
        if mpath.exists():
            m = _read_json(mpath, "metrics").get("test", {})
            if m:
                finals.append({"name": name, "auprc": m["auprc"], "auroc": m["auroc"],
                               "best_epoch": data.get(name, {}).get("best_epoch")})
    if finals:
        fig, axes = new_figure(10, 0.5 + 0.4 * len(finals), ncols=2)
        for ax, key in zip(axes[0], ("auprc", "auroc"), strict=True):
            for j, f in enumerate(finals):
                m = f[key]
                lo = m["value"] - (m["ci_low"] if m.get("ci_low") is not None else m["value"])
                hi = (m["ci_high"] if m.get("ci_high") is not None else m["value"]) - m["value"]
                ax.errorbar([m["value"]], [j], xerr=[[lo], [hi]], fmt="o", color=COLOURS[j % len(COLOURS)],
                            capsize=3)
            ax.set_yticks(range(len(finals)), [f["name"] for f in finals], fontsize=7)
            ax.set_xlabel(f"test {METRIC_NAMES[key]} (95% CI)")
            ax.invert_yaxis()
            ax.grid(alpha=0.3)
        out.append(figs.figure("final-scores", fig, {"runs": finals}, "Test scores of the kept epoch"))
        out.append(_table(["run", "early-stopping epoch", "test AUPRC (95% CI)", "test AUROC (95% CI)"],
                          [[f["name"], f["best_epoch"], format_ci(f["auprc"]), format_ci(f["auroc"])] for f in finals]))
    return "\n".join(out)


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


def section_performance(inp: Inputs, figs: FigureWriter, n_boot: int) -> str:
    from sklearn.metrics import precision_recall_curve, roc_curve

    lead = ("Test-split discrimination of every model (95% bootstrap CIs; best F1/F2 are test-optimal and "
            "optimistic): the leaderboard, precision-recall and ROC curves of ALFIA and the strongest "
            "baselines, and the spread of each metric over bootstrap resamples. Higher is better.")
    out = [f'<p class="lead">{lead}</p>']
    board = [{"model": "ALFIA", "family": "alfia", "test": inp.metrics["test"],
              "external": (inp.external or {}).get("info", {}).get("metrics")}]
    skipped = {}
    if inp.baselines is None:
        out.append(_missing("baselines: pass --baselines DIR (results.json + predictions.parquet) to compare"))
    else:
        res = inp.baselines["results"]
        for name, r in res["models"].items():
            board.append({"model": name, "family": r.get("family", "?"), "test": r.get("test"),
                          "external": r.get("external")})
        skipped = res.get("skipped", {})
    board.sort(key=lambda r: -((r["test"] or {}).get("auprc", {}).get("value") or -1))
    rows = [[i + 1, r["model"], r["family"], (r["test"] or {}).get("n", "")]
            + [format_ci((r["test"] or {}).get(k)) for k in ("auprc", "auroc", "best_f1", "best_f2", "brier")]
            for i, r in enumerate(board)]
    out.append("<h3>Leaderboard (test split)</h3>")
    out.append(_table(["rank", "model", "family", "n", "AUPRC", "AUROC", "best F1", "best F2", "Brier"], rows))
    if skipped:
        out.append("<p>Skipped: " + "; ".join(f"{_esc(k)} ({_esc(v)})" for k, v in skipped.items()) + "</p>")
    figs.data("leaderboard", {"models": board, "skipped": skipped})
    ext_rows = [[r["model"], format_ci((r["test"] or {}).get("auprc")), format_ci(r["external"].get("auprc")),
                 format_ci((r["test"] or {}).get("auroc")), format_ci(r["external"].get("auroc"))]
                for r in board if r.get("external")]
    out.append("<h3>External validation beside internal test</h3>")
    if ext_rows:
        out.append(_table(["model", "AUPRC internal test", "AUPRC external", "AUROC internal test",
                           "AUROC external"], ext_rows))
    else:
        out.append(_missing("external results: pass --external-predictions FILE (with its .metrics.json)"))
    # curves of ALFIA, the ALFIA-derived models and the best three other baselines
    models = inp.test_models()
    families = {r["model"]: r["family"] for r in board}
    ranked = [r["model"] for r in board if r["model"] in models]
    derived = [m for m in ranked if families.get(m) == "alfia-derived"]
    others = [m for m in ranked if m != "ALFIA" and m not in derived][:3]
    shown = ["ALFIA", *derived, *others]
    fig, axes = new_figure(10, 4.2, ncols=2)
    curves = {}
    for i, name in enumerate(shown):
        y, p = models[name]
        prec, rec, _ = precision_recall_curve(y, p)
        fpr, tpr, _ = roc_curve(y, p)
        c = COLOURS[i % len(COLOURS)]
        axes[0, 0].plot(rec, prec, color=c, label=f"{name} (AUPRC {average_precision(y, p):.3f})")
        axes[0, 1].plot(fpr, tpr, color=c, label=f"{name} (AUROC {roc_auc(y, p):.3f})")
        r, pr = _thin(rec, prec)
        f, t = _thin(fpr, tpr)
        curves[name] = {"recall": r, "precision": pr, "fpr": f, "tpr": t}
    prevalence = float(models["ALFIA"][0].mean())
    axes[0, 0].axhline(prevalence, color="grey", ls=":", label=f"prevalence {prevalence:.3f}")
    axes[0, 1].plot([0, 1], [0, 1], color="grey", ls=":")
    axes[0, 0].set(xlabel="recall", ylabel="precision", title="precision-recall (test)")
    axes[0, 1].set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC (test)")
    for ax in axes[0]:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    out.append(figs.figure("pr-roc", fig, {"prevalence": prevalence, "curves": curves}, "PR and ROC curves"))
    boot_models = {k: models[k] for k in ranked[:10]}
    dist = _bootstrap_distributions(boot_models, n_boot)
    fig, axes = new_figure(11, 1.2 + 0.35 * len(dist), ncols=4)
    for ax, key in zip(axes[0], BOX_METRICS, strict=True):
        ax.boxplot([dist[m][key] for m in dist], orientation="horizontal", tick_labels=list(dist), showfliers=False)
        ax.set_title(METRIC_NAMES[key])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    out.append(figs.figure("bootstrap", fig, {"n_boot": n_boot, "seed": 42, "distributions": dist},
                           f"Test metrics over {n_boot} stratified bootstrap resamples"))
    return "\n".join(out)


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


def section_clinical(inp: Inputs, figs: FigureWriter, n_boot: int) -> str:
    lead = ("Whether ALFIA's probabilities can be used as risks: calibration (points on the diagonal are "
            "well calibrated; lower Brier and ECE are better), the decision curve (net benefit above both "
            "treat-all and treat-none means the model helps at that threshold probability), metrics by "
            "subgroup, and the confusion-based metrics at the threshold chosen on validation.")
    out = [f'<p class="lead">{lead}</p>']
    t = inp.predictions[inp.predictions["split"] == "test"]
    y, p = t["hospital_mortality"].to_numpy().astype(int), t["probability"].to_numpy()
    cal = calibration_summary(y, p)
    dca = decision_curve(y, p)
    fig, axes = new_figure(10, 4, ncols=2)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.plot([b["mean_predicted"] for b in cal["bins"]], [b["observed_rate"] for b in cal["bins"]], "o-",
            color=COLOURS[0], label=f"ALFIA (Brier {cal['brier']:.3f}, ECE {cal['ece']:.3f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed death rate", title="calibration (test)")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.plot(dca["threshold"], dca["model"], color=COLOURS[0], label="ALFIA")
    ax.plot(dca["threshold"], dca["treat_all"], color="grey", ls="--", label="treat all")
    ax.plot(dca["threshold"], dca["treat_none"], color="k", ls=":", label="treat none")
    low = min(min(dca["model"]), 0) - 0.01
    ax.set_ylim(low, max(max(dca["model"]), max(dca["treat_all"]), 0) + 0.02)
    ax.set(xlabel="threshold probability", ylabel="net benefit", title="decision curve (test)")
    ax.legend(fontsize=8)
    for a in axes[0]:
        a.grid(alpha=0.3)
    out.append(figs.figure("calibration", fig, {"calibration": cal, "decision_curve": dca},
                           "Calibration and decision curve"))
    out.append(f"<p>Brier score {cal['brier']:.4f}, expected calibration error {cal['ece']:.4f} "
               f"({cal['n_bins']} equal-width bins).</p>")
    m = inp.metrics["test"]
    if m.get("threshold") is not None:
        names = ("sensitivity", "specificity", "ppv", "npv", "f1", "f2")
        out.append(f"<h3>At the threshold chosen on validation ({m['threshold']:.3f})</h3>")
        out.append(_table([METRIC_NAMES[k] for k in names], [[format_ci(m.get(k)) for k in names]]))
        c = m.get("confusion")
        if c:
            out.append(f"<p>TP {c['tp']}, FP {c['fp']}, TN {c['tn']}, FN {c['fn']}.</p>")
    out.append("<h3>Subgroups (test split)</h3>")
    if inp.cohort is None:
        out.append(_missing("subgroups need the cohort's columns: pass --cohort"))
        return "\n".join(out)
    df = t.merge(inp.cohort.df.drop(columns=["hospital_mortality", "split"], errors="ignore"), on="stay_id")
    rows, data = [], {}
    for col, values in _subgroups(df).items():
        for level in sorted(v for v in values.dropna().unique()):
            sel = (values == level).to_numpy()
            yy, pp = y[sel], p[sel]
            entry = {"n": int(sel.sum()), "deaths": int(yy.sum())}
            if len(np.unique(yy)) == 2:
                e = evaluate(yy, pp, threshold=inp.threshold, n_boot=n_boot)
                entry.update({k: e.get(k) for k in ("auprc", "auroc", "sensitivity", "specificity")})
            data[f"{col}={level}"] = entry
            rows.append([col, level, entry["n"], entry["deaths"]]
                        + [format_ci(entry.get(k)) for k in ("auprc", "auroc", "sensitivity", "specificity")])
    if rows:
        out.append(_table(["variable", "group", "n", "deaths", "AUPRC", "AUROC", "sensitivity", "specificity"], rows))
        out.append("<p>Groups with a single outcome have no AUPRC/AUROC (n/a).</p>")
    else:
        out.append(_missing(f"the cohort has none of the subgroup columns {', '.join(SUBGROUP_COLUMNS)}"))
    figs.data("subgroups", {"threshold": inp.threshold, "n_boot": n_boot, "groups": data})
    return "\n".join(out)


def _token_html(tokens: list[str], weights: np.ndarray) -> str:
    top = float(weights.max()) if len(weights) else 1.0
    parts = []
    for tok, w in zip(tokens, weights, strict=True):
        alpha = 0.0 if top <= 0 else float(w) / top
        text = tok
        space = " "
        if text.startswith("##"):
            text, space = text[2:], ""
        elif text[:1] in ("Ġ", "▁"):
            text = text[1:]
        parts.append(f'{space}<span class="tok" style="background:rgba(220,50,32,{alpha:.2f})" '
                     f'title="beta={w:.4f}">{_esc(text)}</span>')
    return "".join(parts).strip()


def section_learned(inp: Inputs, figs: FigureWriter, run, texts: list[str] | None) -> str:
    import torch

    from alfia.inference import cached_embeddings, split_embeddings

    lead = ("What ALFIA attends to: the learned layer weights lambda of the fused layers (mean over test stays and "
            "their spread; a larger weight means that layer contributes more to the fused representation), and "
            "the token attention beta over a few test texts (darker red = more weight) for correctly and "
            "wrongly classified stays.")
    out = [f'<p class="lead">{lead}</p>']
    if texts is None:
        return "\n".join([*out, _missing("layer and token weights need the texts: pass --cohort")])
    df = inp.cohort.df
    test_rows = np.flatnonzero(df["split"].to_numpy() == "test")
    test_texts = [texts[i] for i in test_rows]
    _, lam = split_embeddings(cached_embeddings(run, inp.cohort).iloc[test_rows])
    n_f, n_layers = lam.shape[1], run.model.num_layers
    names = [f"layer {j}" for j in range(n_layers - n_f + 1, n_layers + 1)]
    fig, axes = new_figure(10, 3.4, ncols=2)
    axes[0, 0].bar(names, lam.mean(0), color=COLOURS[0])
    axes[0, 0].set(ylabel="mean lambda", title="mean layer weight (test)")
    axes[0, 1].boxplot([lam[:, j] for j in range(n_f)], tick_labels=names, showfliers=False)
    axes[0, 1].set(ylabel="lambda", title="distribution over test stays")
    for a in axes[0]:
        a.grid(alpha=0.3)
    q = np.percentile(lam, [5, 25, 50, 75, 95], axis=0)
    out.append(figs.figure("layer-weights", fig, {"layers": names, "mean": lam.mean(0), "sd": lam.std(0),
                                                  "percentiles": {"5": q[0], "25": q[1], "50": q[2], "75": q[3],
                                                                  "95": q[4]}},
                           "Learned layer weights lambda"))
    pred = inp.predictions.set_index("stay_id")
    ids = df["stay_id"].to_numpy()[test_rows]
    y = pred.loc[ids, "hospital_mortality"].to_numpy().astype(int)
    label = pred.loc[ids, "label"].to_numpy().astype(int)
    prob = pred.loc[ids, "probability"].to_numpy()
    picks = []
    kinds = (("true positive", (y == 1) & (label == 1), 2), ("true negative", (y == 0) & (label == 0), 1),
             ("false positive", (y == 0) & (label == 1), 2), ("false negative", (y == 1) & (label == 0), 2))
    for kind, sel, k in kinds:
        rows = np.flatnonzero(sel)
        rows = rows[np.argsort(-np.abs(prob[rows] - (inp.threshold or 0.5)))][:k]  # the most confident ones
        picks += [(kind, int(r)) for r in rows]
    model = run.model
    model.eval()
    shown = []
    for kind, r in picks:
        enc = model.tokenize([test_texts[r]])
        with torch.inference_mode():
            beta = model(enc["input_ids"], enc["attention_mask"]).token_weights[0].float().numpy()
        tokens = model.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        shown.append({"kind": kind, "stay_id": int(ids[r]), "died": int(y[r]), "probability": float(prob[r]),
                      "tokens": tokens, "beta": np.round(beta, 5).tolist()})
    figs.data("token-attention", {"threshold": inp.threshold, "stays": shown})
    out.append("<h3>Token attention beta</h3>")
    for s in shown:
        out.append(f"<p><b>{_esc(s['kind'])}</b> — stay {s['stay_id']}, died {s['died']}, predicted "
                   f"{s['probability']:.3f}</p><div class='text'>{_token_html(s['tokens'], np.array(s['beta']))}"
                   "</div>")
    return "\n".join(out)


LATENT_MEASURES = (("centroid_distance", "centroid distance (HIB)"), ("nearest_negative",
                   "mean distance positive to nearest negative (HIB)"), ("within_neg", "within survivors (LIB)"),
                   ("within_pos", "within deaths (LIB)"), ("separation_ratio", "separation ratio (HIB)"),
                   ("silhouette", "silhouette (HIB)"))


def section_latent(inp: Inputs, figs: FigureWriter, run, texts: list[str] | None, max_stays: int | None,
                   projection: str, n_boot: int, classifier: str, progress) -> str:
    from alfia.analysis import latent

    out = []
    if texts is None:
        return _missing("the latent-space analysis needs the cohort: pass --cohort")
    key = latent.latent_key(inp.run, inp.cohort, max_stays, projection, classifier)
    data = latent.load_cached(figs.data_dir / "latent.json", key)
    if data is None:
        data = latent.latent_analysis(run, inp.cohort, texts, max_stays=max_stays, projection=projection,
                                      n_boot=n_boot, classifier=classifier, progress=progress)
        data["key"] = key
    else:
        progress("latent space: reusing figures/latent.json (same run, cohort and settings)")
    lead = (f"How the test stays lie in each representation: {projection.upper()} maps coloured by outcome (yellow "
            "deaths, blue survivors), separation measures on L2-normalised embeddings (HIB: higher is better, LIB: "
            f"lower is better) and the AUPRC/AUROC of one fixed downstream classifier ({data['classifier']}) "
            f"fitted on {data['n_train']} train stays and scored on {data['n_test']} test stays. The ALF output "
            "comes from a model trained on these train stays, the other sets are not task-trained.")
    out.append(f'<p class="lead">{lead}</p>')
    sets = data["sets"]
    labels = np.array(data["labels"])
    names = list(sets)
    cols = 4
    nrows = -(-len(names) // cols)
    fig, axes = new_figure(12, 2.8 * nrows, ncols=cols, nrows=nrows)
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
    figs.data("latent", data)
    out.append(figs.figure("latent-maps", fig, {"see": "latent.json", "projection": projection, "sets": names},
                           f"{projection.upper()} of each embedding (test split)"))
    fig, axes = new_figure(12, 2.2 + 0.22 * len(names), ncols=3, nrows=2)
    for ax, (mkey, title) in zip(axes.flat, LATENT_MEASURES, strict=True):
        vals = [sets[n]["measures"][mkey] for n in names]
        ax.barh(names, [v if v is not None else 0 for v in vals],
                color=[COLOURS[3] if n == "ALF output" else COLOURS[0] for n in names])
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
        ax.invert_yaxis()
    out.append(figs.figure("latent-measures", fig, {n: sets[n]["measures"] for n in names},
                           "Separation measures (L2-normalised)"))
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
    out.append(figs.figure("latent-classifier", fig, {n: sets[n]["classifier"] for n in names},
                           "Downstream classifier on each embedding"))
    rows = [[n, sets[n]["dim"], *[("n/a" if sets[n]["measures"][k] is None else f"{sets[n]['measures'][k]:.4f}")
                                  for k, _ in LATENT_MEASURES],
             format_ci(sets[n]["classifier"]["auprc"]), format_ci(sets[n]["classifier"]["auroc"])] for n in names]
    out.append(_table(["embedding", "dim", "centroid dist.", "pos→nearest neg.", "within survivors",
                       "within deaths", "separation ratio", "silhouette", "AUPRC", "AUROC"], rows, "latent"))
    return "\n".join(out)


def section_cost(inp: Inputs, figs: FigureWriter) -> str:
    lead = ("What inference costs on this machine: milliseconds per stay and peak process memory (lower is "
            "better), from the external prediction run and, when given, the benchmark.")
    out = [f'<p class="lead">{lead}</p>']
    entries: dict[str, dict] = {}
    info = (inp.external or {}).get("info") or {}
    if "ms_per_sample" in info:
        entries[f"ALFIA on {inp.external['name']}"] = {"ms_per_sample": info["ms_per_sample"],
                                                       "peak_rss_mb": info.get("peak_rss_mb")}
    bench = inp.bench or {}
    for k, v in bench.items():
        if k.endswith("_infer_ms_per_sample") and isinstance(v, int | float):
            name = k.removesuffix("_infer_ms_per_sample")
            mem = next((bench[m] for m in (f"{name}_peak_rss_mb", f"{name}_peak_mb", f"{name}_infer_peak_rss_mb")
                        if isinstance(bench.get(m), int | float)), None)
            entries[f"bench: {name}"] = {"ms_per_sample": v, "peak_rss_mb": mem}
    if not entries:
        return "\n".join([*out, _missing("cost needs --external-predictions FILE (its .metrics.json) or --bench")])
    names = list(entries)
    fig, axes = new_figure(10, 1.2 + 0.4 * len(names), ncols=2)
    axes[0, 0].barh(names, [entries[n]["ms_per_sample"] for n in names], color=COLOURS[0])
    axes[0, 0].set_xlabel("inference ms per stay")
    axes[0, 1].barh(names, [entries[n]["peak_rss_mb"] or 0 for n in names], color=COLOURS[1])
    axes[0, 1].set_xlabel("peak memory (MB, process RSS)")
    for a in axes[0]:
        a.invert_yaxis()
        a.tick_params(axis="y", labelsize=7)
    out.append(figs.figure("cost", fig, {"entries": entries, "bench": bench}, "Inference cost"))
    rows = [[n, f"{e['ms_per_sample']:.2f}", "n/a" if e["peak_rss_mb"] is None else f"{e['peak_rss_mb']:.0f}"]
            for n, e in entries.items()]
    out.append(_table(["what", "ms per stay", "peak memory (MB)"], rows))
    if bench:
        out.append(_table(["bench key", "value"], [[k, v] for k, v in bench.items()
                                                  if isinstance(v, int | float | str)]))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- the page

SECTIONS = ("cohort", "training", "performance", "clinical", "learned", "latent", "cost")
TITLES = {"cohort": "1. Cohort", "training": "2. Training dynamics", "performance": "3. Performance",
          "clinical": "4. Clinical usefulness", "learned": "5. What the model learned", "latent": "6. Latent space",
          "cost": "7. Cost"}


def build_report(run: str | Path, out: str | Path | None = None, *, baselines: str | Path | None = None,
                 ablation: str | Path | None = None, cohort: Cohort | None = None,
                 external_predictions: str | Path | None = None, bench: str | Path | None = None,
                 max_stays: int | None = 1000, projection: str = "umap", n_boot: int = 200,
                 classifier: str = "auto", figures_dir: str | Path | None = None, progress=print) -> Path:
    """Write the study report of ``run`` to ``out`` (default ``RUN/report.html``); returns its path."""
    from alfia.inference import Run

    run = Path(run)
    out = Path(out) if out else run / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise AlfiaError(f"the report is an HTML page: give --out a .html name, not {out.name}")
    from alfia.analysis.latent import resolve_classifier

    resolve_classifier(classifier)
    if projection not in ("umap", "pca"):
        raise AlfiaError(f"unknown projection {projection!r}; use umap or pca")
    if external_predictions is None and (run.parent / "p12-b.predictions.parquet").exists():
        external_predictions = run.parent / "p12-b.predictions.parquet"  # where the study writes them
    started = time.perf_counter()
    inp = Inputs(run, Path(baselines) if baselines else None, Path(ablation) if ablation else None, cohort,
                 Path(external_predictions) if external_predictions else None, Path(bench) if bench else None)
    data_dir = Path(figures_dir) if figures_dir else run / "figures"
    png_dirs = [] if out.parent.resolve() == run.resolve() else [out.parent / f"{out.stem}-figures"]
    figs = FigureWriter(data_dir, png_dirs)
    loaded = Run.load(run)
    inp.tokenizer = loaded.model.tokenizer
    inp.max_length = loaded.model.max_length
    texts = loaded.texts(cohort) if cohort is not None else None
    body = []
    builders = {
        "cohort": lambda: section_cohort(inp, figs, texts),
        "training": lambda: section_training(inp, figs),
        "performance": lambda: section_performance(inp, figs, n_boot),
        "clinical": lambda: section_clinical(inp, figs, n_boot),
        "learned": lambda: section_learned(inp, figs, loaded, texts),
        "latent": lambda: section_latent(inp, figs, loaded, texts, max_stays, projection, n_boot, classifier,
                                       progress),
        "cost": lambda: section_cost(inp, figs),
    }
    seconds = {}
    for name in SECTIONS:
        t0 = time.perf_counter()
        progress(f"report: {TITLES[name]}")
        body.append(f'<section id="{name}"><h2>{TITLES[name]}</h2>\n{builders[name]()}\n</section>')
        seconds[name] = round(time.perf_counter() - t0, 1)
    source = inp.config.get("cohort", {})
    synthetic = bool(source.get("synthetic")) or (cohort is not None and cohort.synthetic)
    warn = ('<p class="warn">SYNTHETIC cohort: these numbers say nothing about patients.</p>' if synthetic else "")
    head = (f"<p>Run <code>{_esc(run.resolve())}</code>; cohort {_esc(source.get('schema', '?'))} "
            f"({_esc(source.get('source', '?'))}, {source.get('rows', '?')} rows); backbone "
            f"{_esc(loaded.model.config.backbone)}; built {time.strftime('%Y-%m-%d %H:%M')} in "
            f"{time.perf_counter() - started:.0f} s.</p>")
    nav = " · ".join(f'<a href="#{n}">{TITLES[n]}</a>' for n in SECTIONS)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>ALFIA study report</title>'
            f"<style>{CSS}</style></head><body><h1>ALFIA study report</h1>{warn}{head}<nav>{nav}</nav>\n"
            + "\n".join(body) + "\n</body></html>\n")
    figs.data("report-timing", {"seconds": seconds})
    write_text_atomic(out, page)
    return out
