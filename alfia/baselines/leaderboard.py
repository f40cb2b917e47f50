"""The leaderboard: every model of a study side by side in Table 3's format, with the paired comparison of
ALFIA (and ALFIA-boost) against the best tabular baseline.

Inputs are result folders of three kinds, recognised by their files:

- a baselines or boost folder (``results.json`` + ``predictions.parquet`` from ``run_baselines``/``run_boost``);
- an ALFIA run folder (``metrics.json`` ``{"val", "test"}`` + ``predictions.parquet`` with stay_id, split,
  the task's label column, probability, label), shown as ``ALFIA``;
- optionally ALFIA's external predictions (``<study>/p12-b.predictions.parquet``: stay_id, probability, label)
  with its metrics beside it (``p12-b.metrics.json``: ``{"metrics": evaluate-dict}``).

Tables (test split, external cohort): model, family, AUPRC, AUROC, best F1, best F2, O:E, calibration intercept,
calibration slope (each ``value (low–high)``, 95% stratified bootstrap), n; sorted by AUPRC, highest first. Best
F1/F2 are test-optimal (optimistic). O:E (observed over expected deaths, 1 ideal), the calibration intercept (0
ideal) and slope (1 ideal) are those of :func:`alfia.evaluation.metrics.evaluate`; a severity score is points, not a
probability, and has none (n/a). Bootstrap resamples whose calibration fit failed are counted (the JSON's and CSV's
``failed_resamples``) and named under the table.

Paired comparison: ``paired_difference`` of AUPRC, ALFIA (and ALFIA-boost) minus the best tabular baseline
(highest AUPRC on that table's rows), on the stays both models scored, with the same bootstrap resamples for
both models. It needs labels: the ALFIA run's own predictions carry them for the test split; for the external
cohort pass its labels (a cohort, or a table with stay_id and its task's label column).

Every folder names the task its models were trained for (results.json's ``task``, the run's config): the
leaderboard names it, and refuses folders of two different tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.cohorts import ID, SPLIT, Cohort
from alfia.cohorts.task import task_labels, task_of_run
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import format_ci, paired_difference
from alfia.io import atomic_path, metrics_path, write_text_atomic
from alfia.run_folder import RunFolder, StudyFolder

OUTCOME = "outcome"   # the labels tables' outcome column, whatever the task calls it
PREDICTIONS = RunFolder.PREDICTIONS   # a baselines folder names its predictions as a run folder does

WHERE = {"test": "test split", "external": "external cohort (all rows)"}
ALFIA = "ALFIA"
BOOST = "ALFIA-boost"
# The metrics of the tables: column heading -> key in an evaluate dict.
METRICS = {"AUPRC": "auprc", "AUROC": "auroc", "best F1": "best_f1", "best F2": "best_f2", "O:E": "oe_ratio",
           "calibration intercept": "calibration_intercept", "calibration slope": "calibration_slope"}
COLUMNS = ["model", "family", *METRICS, "n"]
# The metrics fitted in each resample: how many resamples failed is kept beside them.
FITTED = ("calibration_intercept", "calibration_slope")


@dataclass
class Entry:
    name: str
    family: str
    metrics: dict[str, dict]  # where -> evaluate dict
    # where -> stay_id, probability; a baselines folder's entries also hold "val" (the tables show test and external)
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    source: str = ""
    task: dict | None = None  # the task the model was trained for (None: a folder written before tasks)


@dataclass
class Leaderboard:
    """``tables`` hold the formatted strings of the markdown; ``numbers`` the same rows as numbers (one row per
    model: model, family, n, then ``<metric>_estimate``, ``<metric>_ci_low``, ``<metric>_ci_high`` for auprc, auroc,
    best_f1, best_f2, oe_ratio, calibration_intercept, calibration_slope, then ``<fit>_failed_resamples`` for the
    two calibration fits; NaN where undefined or absent, e.g. a score's calibration), which the CSV files and the
    JSON hold."""

    tables: dict[str, pd.DataFrame]  # where -> rows in COLUMNS, sorted by AUPRC
    comparisons: dict[str, list[dict]]  # where -> paired differences
    markdown: str
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it is not in the tables
    numbers: dict[str, pd.DataFrame] = field(default_factory=dict)  # where -> numeric rows, same order
    task: dict | None = None  # the task every model was trained for (None: no folder named one)

    def to_dict(self) -> dict:
        """JSON-ready: per table, one record per model with ``{metric: {"estimate", "ci_low", "ci_high"}}`` (the
        calibration fits also with ``failed_resamples``; null where absent, e.g. for a severity score)."""
        tables = {}
        for where, table in self.numbers.items():
            records = []
            for row in table.to_dict(orient="records"):
                record = {"model": row["model"], "family": row["family"], "n": int(row["n"])}
                for key in METRICS.values():
                    record[key] = {"estimate": _number(row[f"{key}_estimate"]), "ci_low": _number(row[f"{key}_ci_low"]),
                                   "ci_high": _number(row[f"{key}_ci_high"])}
                    if key in FITTED:
                        failed = _number(row[f"{key}_failed_resamples"])
                        record[key]["failed_resamples"] = None if failed is None else int(failed)
                records.append(record)
            tables[where] = records
        return {"task": self.task, "tables": tables, "comparisons": self.comparisons, "skipped": self.skipped}


def _number(value: Any) -> float | None:
    """A JSON number, or null for a missing or undefined value."""
    return None if value is None or pd.isna(value) else float(value)


# --------------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AlfiaError(f"cannot read {path} ({exc}); run the stage that writes it again") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise AlfiaError(f"cannot read {path} ({str(exc).splitlines()[0]}); run the stage that writes it again") \
            from None


def read_results_dir(folder: Path) -> tuple[list[Entry], dict[str, str]]:
    """The entries of a baselines/boost folder (metrics of test and external, predictions of every split it
    scored), and the models it skipped ``{name: reason}``."""
    results = _read_json(folder / "results.json")
    if not isinstance(results, dict) or "models" not in results:
        raise AlfiaError(f"{folder / 'results.json'} is not a baselines result (no 'models'); run `alfia baselines`")
    preds = _read_parquet(folder / PREDICTIONS) if (folder / PREDICTIONS).exists() else None
    task = results.get("task") if isinstance(results.get("task"), dict) else None
    entries = []
    for name, m in results["models"].items():
        entry = Entry(name, m.get("family", "tabular"), {w: m[w] for w in WHERE if w in m}, source=str(folder),
                      task=task)
        if preds is not None:
            mine = preds[preds["model"] == name]
            entry.predictions = {w: rows[[ID, "probability"]].reset_index(drop=True)
                                 for w, rows in mine.groupby("where", sort=False)}
        entries.append(entry)
    return entries, dict(results.get("skipped") or {})


def read_alfia_run(folder: Path, external_predictions: Path | None = None,
                   name: str = ALFIA) -> tuple[Entry, pd.DataFrame]:
    """ALFIA's entry and the test labels its predictions carry (stay_id, outcome)."""
    metrics = _read_json(folder / RunFolder.METRICS)
    if "test" not in metrics:
        raise AlfiaError(f"{folder / RunFolder.METRICS} has no test metrics; finish the run with `alfia train`")
    preds = _read_parquet(folder / PREDICTIONS)
    need = {ID, SPLIT, "probability"}
    if not need <= set(preds.columns):
        raise AlfiaError(f"{folder / PREDICTIONS} lacks {', '.join(sorted(need - set(preds.columns)))}")
    test = preds[preds[SPLIT] == "test"]
    task = task_of_run(RunFolder(folder))
    entry = Entry(name, "alfia", {"test": metrics["test"]},
                  {"test": test[[ID, "probability"]].reset_index(drop=True)}, source=str(folder),
                  task=task.to_dict())
    label = task.label
    labels = (test[[ID, label]].rename(columns={label: OUTCOME}).reset_index(drop=True) if label in test.columns
              else pd.DataFrame(columns=[ID, OUTCOME]))
    if external_predictions is not None:
        external_predictions = Path(external_predictions)
        ext = _read_parquet(external_predictions)
        if not {ID, "probability"} <= set(ext.columns):
            raise AlfiaError(f"{external_predictions} lacks stay_id/probability columns")
        entry.predictions["external"] = ext[[ID, "probability"]].reset_index(drop=True)
        beside = metrics_path(external_predictions)
        if beside.exists():
            ext_metrics = _read_json(beside)
            entry.metrics["external"] = ext_metrics.get("metrics", ext_metrics)
    return entry, labels


def labels_table(labels: Cohort | pd.DataFrame | None, where: str) -> pd.DataFrame | None:
    if labels is None:
        return None
    df = labels.df if isinstance(labels, Cohort) else labels
    if isinstance(labels, Cohort) and where == "test":
        df = df[df[SPLIT] == "test"]
    label = labels.label if isinstance(labels, Cohort) else next((c for c in df.columns if c in task_labels()), None)
    if ID not in df.columns or label is None:
        raise AlfiaError(f"labels need columns {ID} and the task's label ({', '.join(sorted(task_labels()))})")
    return df[[ID, label]].rename(columns={label: OUTCOME}).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------- build


def numbers_table(entries: list[Entry], where: str) -> pd.DataFrame:
    """The numeric rows of one table (the entries' metrics on ``where``: ``test``, ``external``, or any set they
    were scored on), sorted by AUPRC (highest first): model, family, n, then ``<metric>_estimate``,
    ``<metric>_ci_low``, ``<metric>_ci_high`` for auprc, auroc, best_f1, best_f2, oe_ratio, calibration_intercept,
    calibration_slope, then ``calibration_intercept_failed_resamples`` and ``calibration_slope_failed_resamples``
    (NaN where undefined or absent: a severity score has no calibration). The leaderboard's CSV files hold these
    rows, and ``ALFIAPredictor.leaderboard`` returns them."""
    columns = ["model", "family", "n"] + [f"{k}{part}" for k in METRICS.values()
                                          for part in ("_estimate", "_ci_low", "_ci_high")]
    columns += [f"{k}_failed_resamples" for k in FITTED]
    rows = []
    for e in entries:
        m = e.metrics.get(where)
        if not m:
            continue
        row = {"model": e.name, "family": e.family, "n": int(m.get("n", 0))}
        for key in METRICS.values():
            entry = m.get(key) or {}
            row[f"{key}_estimate"] = _number(entry.get("value"))
            row[f"{key}_ci_low"], row[f"{key}_ci_high"] = _number(entry.get("ci_low")), _number(entry.get("ci_high"))
        for key in FITTED:
            row[f"{key}_failed_resamples"] = _number((m.get(key) or {}).get("failed_resamples"))
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns).astype({k: float for k in columns[3:]})
    return table.sort_values("auprc_estimate", ascending=False, kind="stable").reset_index(drop=True)


def _formatted(numbers: pd.DataFrame) -> pd.DataFrame:
    """The markdown's strings ("0.462 (0.367–0.570)") of the numeric rows."""
    def cell(row: dict, key: str) -> str:
        return format_ci({"value": _number(row[f"{key}_estimate"]), "ci_low": _number(row[f"{key}_ci_low"]),
                          "ci_high": _number(row[f"{key}_ci_high"])})

    rows = [{"model": r["model"], "family": r["family"], **{h: cell(r, k) for h, k in METRICS.items()},
             "n": int(r["n"])} for r in numbers.to_dict(orient="records")]
    return pd.DataFrame(rows, columns=COLUMNS)


def paired_rows(labels: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The stays ``labels`` (stay_id, outcome) and two models' predictions (stay_id, probability) share, in stay
    order, with the models' probabilities as ``p_a`` and ``p_b``: the rows of a paired comparison."""
    return (labels.merge(a.rename(columns={"probability": "p_a"}), on=ID)
            .merge(b.rename(columns={"probability": "p_b"}), on=ID).sort_values(ID))


def _compare(entries: list[Entry], where: str, labels: pd.DataFrame | None, n_boot: int, seed: int) -> list[dict]:
    tabular = [e for e in entries if e.family == "tabular" and e.metrics.get(where) and where in e.predictions]
    if not tabular or labels is None or labels.empty:
        return []
    best = max(tabular, key=lambda e: e.metrics[where]["auprc"]["value"])
    out = []
    for name in (ALFIA, BOOST):
        mine = [e for e in entries if e.name == name and where in e.predictions]
        if not mine:
            continue
        merged = paired_rows(labels, mine[0].predictions[where], best.predictions[where])
        if merged.empty or merged[OUTCOME].nunique() < 2:
            continue
        diff = paired_difference(merged[OUTCOME].to_numpy(), merged["p_a"].to_numpy(), merged["p_b"].to_numpy(),
                                 metric="auprc", n_boot=n_boot, seed=seed)
        out.append({"model": name, "baseline": best.name, "n": int(len(merged)), **diff})
    return out


def leaderboard(dirs: list[str | Path], test_labels: Cohort | pd.DataFrame | None = None,
                external_labels: Cohort | pd.DataFrame | None = None, *,
                alfia_external: str | Path | None = None, out_dir: str | Path | None = None,
                n_boot: int = 1000, seed: int = 42) -> Leaderboard:
    """Merge result folders into the test and external leaderboards (see the module doc).

    ``dirs``: baselines/boost folders and at most one ALFIA run folder. ``alfia_external``: ALFIA's external
    predictions file. Labels for the paired comparison: the ALFIA run's predictions give the test labels when
    ``test_labels`` is absent. With ``out_dir``: writes leaderboard.md, leaderboard-test.csv,
    leaderboard-external.csv (numbers: ``estimate``/``ci_low``/``ci_high`` columns
    per metric) and leaderboard.json (the same numbers, see ``Leaderboard.to_dict``) there.
    """
    if not dirs:
        raise AlfiaError("give at least one result folder (baselines, boost or an ALFIA run)")
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    run_labels = None
    for d in map(Path, dirs):
        if not d.is_dir():
            raise AlfiaError(f"result folder {d} does not exist")
        if (d / "results.json").exists():
            found, skipped_here = read_results_dir(d)
            entries += found
            skipped.update(skipped_here)
        elif (d / RunFolder.METRICS).exists() and (d / PREDICTIONS).exists():
            if run_labels is not None:
                raise AlfiaError("give one ALFIA run folder only")
            entry, run_labels = read_alfia_run(d, alfia_external)
            entries.append(entry)
        else:
            raise AlfiaError(f"{d} holds neither results.json (baselines/boost) nor metrics.json + "
                             "predictions.parquet (an ALFIA run)")
    if alfia_external is not None and run_labels is None:
        raise AlfiaError("ALFIA's external predictions need its run folder among the result folders; add it")
    names = [e.name for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AlfiaError(f"model(s) {', '.join(dup)} appear in two result folders; give each once")
    tasks = {e.source: e.task for e in entries if e.task is not None}   # folder -> the task its models learnt
    if len({t.get("name") for t in tasks.values()}) > 1:
        raise AlfiaError("the result folders were trained for different tasks ("
                         + "; ".join(f"{d}: {t.get('name')}" for d, t in tasks.items())
                         + "); a leaderboard compares models of one task")
    task = next(iter(tasks.values()), None)
    labels = {"test": labels_table(test_labels, "test"), "external": labels_table(external_labels, "external")}
    if labels["test"] is None and run_labels is not None and not run_labels.empty:
        labels["test"] = run_labels
    numbers = {w: numbers_table(entries, w) for w in WHERE}
    numbers = {w: t for w, t in numbers.items() if len(t)}
    tables = {w: _formatted(t) for w, t in numbers.items()}
    comparisons = {w: _compare(entries, w, labels[w], n_boot, seed) for w in tables}
    notes = {w: _failed_fits(t) for w, t in numbers.items()}
    board = Leaderboard(tables, comparisons, _markdown(tables, comparisons, skipped, task, notes), skipped, numbers,
                        task)
    if out_dir is not None:
        out = StudyFolder(out_dir)   # a study's leaderboard files, named as a study folder names them
        write_text_atomic(out / StudyFolder.LEADERBOARD, board.markdown)
        for w, t in numbers.items():
            with atomic_path(out.leaderboard_table(w)) as tmp:
                t.to_csv(tmp, index=False)
        write_text_atomic(out / StudyFolder.LEADERBOARD_JSON, json.dumps(board.to_dict(), indent=2))
    return board


def _failed_fits(numbers: pd.DataFrame) -> list[str]:
    """"model: calibration slope k" for every model whose calibration fits failed in some bootstrap resamples."""
    out = []
    for row in numbers.to_dict(orient="records"):
        failed = [f"{heading} {int(row[f'{key}_failed_resamples'])}" for heading, key in METRICS.items()
                  if key in FITTED and (_number(row.get(f"{key}_failed_resamples")) or 0) > 0]
        if failed:
            out.append(f"{row['model']}: {', '.join(failed)}")
    return out


def _markdown(tables: dict[str, pd.DataFrame], comparisons: dict[str, list[dict]],
              skipped: dict[str, str] | None = None, task: dict | None = None,
              notes: dict[str, list[str]] | None = None) -> str:
    lines: list[str] = []
    if task is not None:
        lines += [f"Task: {task.get('name')} (label {task.get('label')}: {task.get('outcome')}).", ""]
    for where, table in tables.items():
        lines += [f"### Leaderboard: {WHERE[where]}", "",
                  "Values: estimate (95% stratified bootstrap CI); best F1/F2 are test-optimal (optimistic). "
                  "Calibration: O:E observed over expected deaths (1 is ideal), calibration intercept (0 is ideal; "
                  "above 0 the predictions are too low) and slope (1 is ideal; below 1 over-confident), both from "
                  "a logistic model of the outcome on logit(p); severity scores are points, not probabilities: "
                  "n/a.", "",
                  "| " + " | ".join(COLUMNS) + " |", "| " + " | ".join(["---"] * (len(COLUMNS) - 1)) + " | ---: |"]
        for row in table.itertuples(index=False):
            lines.append("| " + " | ".join(str(v) for v in row) + " |")
        if (notes or {}).get(where):
            lines += ["", "Bootstrap resamples whose calibration fit failed (separated or not converged; left out "
                      "of the interval): " + "; ".join(notes[where]) + "."]
        for c in comparisons.get(where, []):
            ci = ("n/a" if c["ci_low"] is None else f"{c['ci_low']:+.3f} to {c['ci_high']:+.3f}")
            lines.append("")
            lines.append(f"AUPRC difference {c['model']} \u2212 {c['baseline']} (best tabular baseline), paired "
                         f"bootstrap on the same {c['n']:,} stays and resamples: {c['difference']:+.3f} "
                         f"(95% CI {ci}).")
        lines.append("")
    if skipped:
        lines += ["Not in the tables (skipped, with the reason logged when it was skipped):", ""]
        lines += [f"- {name}: {why}" for name, why in skipped.items()]
        lines.append("")
    return "\n".join(lines)


def _is_sorted(values: list[float]) -> bool:  # used by tests
    return bool(np.all(np.diff(values) <= 0))
