"""How far a study's results move with the training seed (``alfia study --seeds N``).

Repeat 0 is the study itself; repeat r = 1..N-1 (``seeds/repeat-<r>``) trained every model again with its seed + r:
ALFIA with 42 + r (its weights' initialisation, batch order, out-of-fold teacher), AutoGluon's models (the tabular
zoo, ALFIA-boost and ALFIA-nn) with 0 + r, and the frozen encoder's readout with the run's seed. The severity
scores train nothing and repeat identically. Every repeat is scored on the same bootstrap resamples (seed 42).

Per model and table (test split, external cohort): the mean, standard deviation, minimum and maximum over the seeds
of each leaderboard metric, beside the single-seed study's estimate and 95% CI -- the CI covers the test sample, the
spread the training. The headline comparisons (ALFIA and ALFIA-boost against the single-seed study's best tabular
baseline of that table, ALFIA against the frozen encoder's readout) are paired bootstrap AUPRC differences per
seed and pooled (:func:`alfia.evaluation.metrics.paired_difference` over every seed's predictions, the metric's mean
over the seeds). A ranking is read only where it holds in every seed: the 95% CI of the difference lies on the same
side of 0 in each; otherwise the pair is "level".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.baselines.leaderboard import (
    ALFIA,
    BOOST,
    METRICS,
    OUTCOME,
    WHERE,
    labels_table,
    paired_rows,
    read_alfia_run,
    read_results_dir,
)
from alfia.baselines.readout import FROZEN_LR
from alfia.cohorts import ID, Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import format_ci, paired_difference
from alfia.io import write_text_atomic
from alfia.run_folder import StudyFolder

# the columns of the markdown's spread table: heading -> leaderboard metric
SHOWN = {"AUPRC": "auprc", "AUROC": "auroc", "calibration slope": "calibration_slope"}
HEADLINE = (ALFIA, BOOST)   # compared with the best tabular baseline


@dataclass
class SeedSpread:
    """``models``: where -> one record per model (name, family, seeds, then per metric the values per seed, mean,
    sd, min, max and the single-seed study's entry); ``comparisons``: where -> one record per headline pair (model,
    baseline, per seed, pooled, reading); ``repeats``: per repeat its r and folder."""

    repeats: list[dict]
    models: dict[str, list[dict]]
    comparisons: dict[str, list[dict]]
    markdown: str

    def to_dict(self) -> dict:
        return {"repeats": self.repeats, "models": self.models, "comparisons": self.comparisons}


def _leaderboard(folder: StudyFolder) -> dict:
    path = folder / StudyFolder.LEADERBOARD_JSON
    if not path.exists():
        raise AlfiaError(f"{path} is missing: seed repeat {folder.path} did not finish; run the study again")
    return json.loads(path.read_text())


def _spread(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"values": [float(v) for v in arr], "mean": float(arr.mean()),
            "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "min": float(arr.min()), "max": float(arr.max())}


def model_spread(boards: list[dict], where: str) -> list[dict]:
    """Per model of ``where``'s table: its metrics over the repeats' leaderboards (``boards[0]``: the study's),
    sorted by mean AUPRC (highest first)."""
    rows_of: dict[str, list[dict]] = {}
    for board in boards:
        for row in board.get("tables", {}).get(where, []):
            rows_of.setdefault(row["model"], []).append(row)
    study = {row["model"]: row for row in boards[0].get("tables", {}).get(where, [])}
    out = []
    for name, rows in rows_of.items():
        rec = {"model": name, "family": rows[0]["family"], "n": rows[0]["n"], "seeds": len(rows)}
        for key in METRICS.values():
            values = [r[key]["estimate"] for r in rows if (r.get(key) or {}).get("estimate") is not None]
            rec[key] = _spread(values) if values else None
            first = (study.get(name) or {}).get(key) or {}
            if rec[key] is not None and first.get("estimate") is not None:
                rec[key]["study"] = {"value": first["estimate"], "ci_low": first["ci_low"],
                                     "ci_high": first["ci_high"]}
        out.append(rec)
    return sorted(out, key=lambda r: -(r["auprc"]["mean"] if r["auprc"] else -math.inf))


def _predictions(folder: StudyFolder, ext_name: str) -> tuple[dict[str, dict[str, pd.DataFrame]], pd.DataFrame]:
    """where -> model -> (stay_id, probability) of one repeat, and its test labels (stay_id, outcome)."""
    found: dict[str, dict[str, pd.DataFrame]] = {w: {} for w in WHERE}
    entries = []
    for d in (folder.baselines, folder.frozen_readout, folder.boost):
        if (d / "results.json").exists():
            entries += read_results_dir(d)[0]
    external = folder.predictions(ext_name)
    alfia, test_labels = read_alfia_run(folder.run.path, external if external.exists() else None)
    for entry in [*entries, alfia]:
        for where in WHERE:
            if where in entry.predictions:
                found[where][entry.name] = entry.predictions[where]
    return found, test_labels


def _pairs(board: dict, where: str) -> list[tuple[str, str]]:
    rows = board.get("tables", {}).get(where, [])
    tabular = [r for r in rows if r["family"] == "tabular" and (r.get("auprc") or {}).get("estimate") is not None]
    pairs = []
    if tabular:
        best = max(tabular, key=lambda r: r["auprc"]["estimate"])["model"]
        pairs += [(name, best) for name in HEADLINE]
    return pairs + [(ALFIA, FROZEN_LR)]


def reading(per_seed: list[dict]) -> str:
    """"above" / "below" when the difference's 95% CI lies on that side of 0 in every seed, else "level"."""
    if per_seed and all(c["ci_low"] is not None and c["ci_low"] > 0 for c in per_seed):
        return "above in every seed"
    if per_seed and all(c["ci_high"] is not None and c["ci_high"] < 0 for c in per_seed):
        return "below in every seed"
    return "level"


def compare(predictions: list[dict[str, pd.DataFrame]], labels: pd.DataFrame, pairs: list[tuple[str, str]], *,
            n_boot: int, boot_seed: int) -> list[dict]:
    """The paired AUPRC difference of each pair per repeat and pooled (pairs some repeat lacks are left out)."""
    out = []
    for model, baseline in pairs:
        if not all(model in p and baseline in p for p in predictions):
            continue
        merged = [paired_rows(labels, p[model], p[baseline]) for p in predictions]
        ids = merged[0][ID].to_numpy()
        if any(not np.array_equal(m[ID].to_numpy(), ids) for m in merged) or merged[0][OUTCOME].nunique() < 2:
            raise AlfiaError(f"the seed repeats scored different stays for {model} or {baseline}; run the study again")
        y = merged[0][OUTCOME].to_numpy()
        per_seed = [paired_difference(y, m["p_a"].to_numpy(), m["p_b"].to_numpy(), n_boot=n_boot, seed=boot_seed)
                    for m in merged]
        pooled = paired_difference(y, np.stack([m["p_a"].to_numpy() for m in merged]),
                                   np.stack([m["p_b"].to_numpy() for m in merged]), n_boot=n_boot, seed=boot_seed)
        out.append({"model": model, "baseline": baseline, "n": int(len(y)), "metric": "auprc",
                    "per_seed": per_seed, "pooled": pooled, "reading": reading(per_seed)})
    return out


def seed_spread(folder: str | Path, external_labels: Cohort | pd.DataFrame, ext_name: str, *, n_boot: int = 1000,
                boot_seed: int = 42) -> SeedSpread:
    """The spread of the study in ``folder`` over its seed repeats (see the module doc); ``external_labels``: the
    external cohort (or a table of stay_id and its task's label), ``ext_name``: its name in the study folder."""
    study = StudyFolder(folder)
    repeats = study.repeats()
    if len(repeats) < 2:
        raise AlfiaError(f"{study.path} holds no seed repeat; run `alfia study --seeds N` with N >= 2")
    boards = [_leaderboard(f) for f in repeats]
    read = [_predictions(f, ext_name) for f in repeats]
    labels = {"test": read[0][1], "external": labels_table(external_labels, "external")}
    models = {w: model_spread(boards, w) for w in WHERE if boards[0].get("tables", {}).get(w)}
    comparisons = {w: compare([r[0][w] for r in read], labels[w], _pairs(boards[0], w), n_boot=n_boot,
                              boot_seed=boot_seed) for w in models}
    info = [{"repeat": r, "folder": str(f.path.relative_to(study.path)) if r else "."} for r, f in enumerate(repeats)]
    spread = SeedSpread(info, models, comparisons, "")
    spread.markdown = spread_markdown(spread, n_boot, boot_seed)
    return spread


def _mean_sd(entry: dict | None, with_range: bool = False) -> str:
    if not entry:
        return "n/a"
    text = f"{entry['mean']:.3f} ± {entry['sd']:.3f}"
    return text + f" ({entry['min']:.3f}–{entry['max']:.3f})" if with_range else text


def _difference(c: dict) -> str:
    ci = "n/a" if c["ci_low"] is None else f"{c['ci_low']:+.3f} to {c['ci_high']:+.3f}"
    return f"{c['difference']:+.3f} ({ci})"


def spread_markdown(spread: SeedSpread, n_boot: int, boot_seed: int) -> str:
    n = len(spread.repeats)
    lines = [f"Repeat r = 0..{n - 1} trains every model with its seed + r (ALFIA 42 + r; AutoGluon's models, "
             f"ALFIA-boost and ALFIA-nn 0 + r; repeat 0 is the single-seed study); every repeat is scored on the "
             f"same {n_boot:,} stratified bootstrap resamples (seed {boot_seed}). Mean ± standard deviation over the "
             f"{n} seeds (min–max) beside the single-seed study's estimate and 95% CI: the CI covers the test "
             "sample, the spread the training. A ranking is read only where the paired difference's CI lies on the "
             "same side of 0 with every seed; otherwise \"level\".", ""]
    for where, rows in spread.models.items():
        lines += [f"### Over {n} seeds: {WHERE[where]}", "",
                  "| model | family | seeds | AUPRC mean ± sd (min–max) | AUPRC, single-seed study (95% CI) | "
                  + " | ".join(f"{h} mean ± sd" for h in SHOWN if h != "AUPRC") + " |",
                  "| --- | --- | ---: | --- | --- | " + " | ".join("---" for h in SHOWN if h != "AUPRC") + " |"]
        for r in rows:
            study = (r["auprc"] or {}).get("study")
            lines.append(f"| {r['model']} | {r['family']} | {r['seeds']} | {_mean_sd(r['auprc'], True)} | "
                         f"{format_ci(study)} | "
                         + " | ".join(_mean_sd(r[k]) for h, k in SHOWN.items() if h != "AUPRC") + " |")
        lines.append("")
        comps = spread.comparisons.get(where, [])
        if comps:
            lines += ["| AUPRC difference | per seed (95% CI) | pooled over the seeds (95% CI) | reading |",
                      "| --- | --- | --- | --- |"]
            for c in comps:
                lines.append(f"| {c['model']} − {c['baseline']} | "
                             + "; ".join(_difference(s) for s in c["per_seed"])
                             + f" | {_difference(c['pooled'])} | {c['reading']} |")
            lines.append("")
    return "\n".join(lines)


def write_seed_spread(folder: str | Path, external_labels: Cohort | pd.DataFrame, ext_name: str) -> SeedSpread:
    """``seeds.md`` and ``seeds.json`` in the study folder (:func:`seed_spread`)."""
    spread = seed_spread(folder, external_labels, ext_name)
    study = StudyFolder(folder)
    write_text_atomic(study / StudyFolder.SEED_SPREAD, f"# Spread over {len(spread.repeats)} seeds\n\n"
                      + spread.markdown)
    write_text_atomic(study / StudyFolder.SEED_SPREAD_JSON, json.dumps(spread.to_dict(), indent=2))
    return spread
