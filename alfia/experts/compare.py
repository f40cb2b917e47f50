"""Scoring experts and ALFIA on the same booklet cases (paper section 3.3, Figure 5e-f): ``alfia experts
compare``.

Each rater's probabilities (0-100, divided by 100) and ALFIA's probabilities on the same stays are scored with the
project's metrics (AUPRC and AUROC with stratified bootstrap 95% CIs), and ALFIA minus each rater as a paired
bootstrap difference on the same resamples. A ratings file is checked whole before anything is scored: unknown,
missing and duplicated cases and values out of range are all refused together, with their CSV line numbers.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import evaluate, paired_difference
from alfia.experts.booklet import RATING_COLUMNS
from alfia.io import write_text_atomic

METRICS = (("auprc", "AUPRC"), ("auroc", "AUROC"))


def read_ratings(path: str | Path, case_ids: list[str]) -> pd.DataFrame:
    """A rater's CSV as (case_id, probability in [0, 1], confidence), in the order of ``case_ids``."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AlfiaError(f"cannot read the ratings {path} ({exc}); use ratings-template.csv") from None
    missing_columns = [c for c in RATING_COLUMNS if c not in df.columns]
    if missing_columns:
        raise AlfiaError(f"{path} lacks the columns {', '.join(missing_columns)}; fill in ratings-template.csv")
    problems = []
    line = df.index + 2  # the header is line 1
    ids = df["case_id"].str.strip()
    known = set(case_ids)
    for what, bad in (("unknown case", ~ids.isin(known)), ("duplicated case", ids.duplicated(keep=False))):
        if bad.any():
            problems.append(f"{what} on lines {_lines(line[bad])}")
    prob = pd.to_numeric(df["probability_of_death"].str.strip(), errors="coerce")
    bad = prob.isna() | (prob < 0) | (prob > 100)
    if bad.any():
        problems.append(f"probability_of_death not a number from 0 to 100 on lines {_lines(line[bad])}")
    conf = pd.to_numeric(df["confidence"].str.strip(), errors="coerce")
    bad = conf.isna() | ~conf.isin([1, 2, 3, 4, 5])
    if bad.any():
        problems.append(f"confidence not a whole number from 1 to 5 on lines {_lines(line[bad])}")
    absent = [c for c in case_ids if c not in set(ids)]
    if absent:
        problems.append(f"cases without a rating: {', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}")
    if problems:
        raise AlfiaError(f"{path} is refused: " + "; ".join(problems))
    out = pd.DataFrame({"case_id": ids, "probability": prob / 100, "confidence": conf.astype(int)})
    return out.set_index("case_id").loc[case_ids].reset_index()


def _lines(lines) -> str:
    lines = [str(x) for x in lines]
    return ", ".join(lines[:10]) + (" ..." if len(lines) > 10 else "")


def load_key(booklet: str | Path) -> dict:
    path = Path(booklet) / "sealed" / "key.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise AlfiaError(f"{path} is missing or unreadable: pass the folder `alfia experts sample` wrote") from None


def compare(booklet: str | Path, ratings: list[str | Path], run: str | Path, cohort: Cohort,
            n_boot: int = 1000, device: str | None = "auto", precision: str | None = None) -> dict:
    """Every rater and ALFIA scored on the booklet's cases; ALFIA minus each rater, paired. ``device`` /
    ``precision``: where the run's model scores them (:mod:`alfia.model.runtime`)."""
    from alfia.inference import Run

    key = load_key(booklet)
    case_ids = list(key["cases"])
    stay_ids = [key["cases"][c] for c in case_ids]
    rows = cohort.df.set_index("stay_id")
    unknown = [s for s in stay_ids if s not in rows.index]
    if unknown:
        raise AlfiaError(f"the cohort lacks {len(unknown)} of the booklet's stays (e.g. {unknown[0]}); pass the "
                         "cohort the booklet was drawn from")
    if not ratings:
        raise AlfiaError("pass at least one ratings file with --ratings")
    y = rows.loc[stay_ids, cohort.label].to_numpy().astype(int)
    raters = {"ALFIA": {}}
    for path in ratings:  # every file is checked before the model is loaded
        name = Path(path).stem
        if name in raters:
            raise AlfiaError(f"two ratings files are named {name!r}; rename one")
        r = read_ratings(path, case_ids)
        raters[name] = {"probability": r["probability"].to_numpy(), "confidence": r["confidence"].to_numpy()}
    part = Cohort(df=rows.loc[stay_ids].reset_index(), schema=cohort.schema, info=cohort.info)
    alfia_p = Run.load(run, device, precision).predict_proba(part)
    raters["ALFIA"]["probability"] = alfia_p
    result = {"n": len(y), "n_pos": int(y.sum()), "n_boot": n_boot, "raters": {}}
    for name, data in raters.items():
        scored = evaluate(y, data["probability"], n_boot=n_boot)
        entry = {m: scored[m] for m, _ in METRICS}
        if "confidence" in data:
            entry["mean_confidence"] = float(np.mean(data["confidence"]))
            entry["alfia_minus_rater"] = {m: paired_difference(y, alfia_p, data["probability"], metric=m,
                                                               n_boot=n_boot) for m, _ in METRICS}
        result["raters"][name] = entry
    return result


def write_report(result: dict, out: str | Path) -> None:
    """report.html with the two plots of Figure 5e-f (AUPRC and AUROC with 95% CIs), and report.json beside."""
    from alfia.analysis.figures import COLOURS, FigureWriter, new_figure

    out = Path(out)
    figs = FigureWriter(out.parent / f"{out.stem}-figures")
    names = list(result["raters"])
    blocks = []
    for metric, label in METRICS:
        fig, axes = new_figure(5, 3.4)
        ax = axes[0, 0]
        values = [result["raters"][n][metric] for n in names]
        v = np.array([x["value"] for x in values])
        lo = np.array([x["ci_low"] if x["ci_low"] is not None else x["value"] for x in values])
        hi = np.array([x["ci_high"] if x["ci_high"] is not None else x["value"] for x in values])
        ax.bar(names, v, yerr=[v - lo, hi - v], capsize=5, color=[COLOURS[0]] + [COLOURS[1]] * (len(names) - 1))
        ax.set(ylabel=label, ylim=(0, 1), title=f"{label} with 95% CI ({result['n']} cases)")
        ax.grid(alpha=0.3, axis="y")
        blocks.append(figs.figure(f"experts-{metric}", fig, {n: result["raters"][n][metric] for n in names},
                                  f"ALFIA and each expert: {label} with 95% CI"))
    rows = []
    for name in names:
        entry = result["raters"][name]
        cells = [f"{entry[m]['value']:.3f} [{_ci(entry[m])}]" for m, _ in METRICS]
        diff = entry.get("alfia_minus_rater")
        cells += [f"{diff[m]['difference']:+.3f} [{_ci(diff[m])}]" if diff else "" for m, _ in METRICS]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in [name, *cells]) + "</tr>")
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ALFIA and experts</title><style>"
            "body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:20px auto}td,th{padding:3px 8px;"
            "border-bottom:1px solid #ddd}figure{display:inline-block;margin:8px}</style></head><body>"
            f"<h1>ALFIA and experts on the same {result['n']} cases ({result['n_pos']} deaths)</h1>"
            f"<p>Stratified bootstrap 95% intervals, {result['n_boot']} resamples; the difference is ALFIA minus "
            "the rater on the same resamples.</p><table><tr><th>rater</th><th>AUPRC</th><th>AUROC</th>"
            "<th>ALFIA - rater, AUPRC</th><th>ALFIA - rater, AUROC</th></tr>" + "".join(rows) + "</table>"
            + "".join(blocks) + "</body></html>")
    write_text_atomic(out, page)
    write_text_atomic(out.with_suffix(".json"), json.dumps(result, indent=2))


def _ci(entry: dict) -> str:
    if entry.get("ci_low") is None:
        return "no CI"
    return f"{entry['ci_low']:.3f}, {entry['ci_high']:.3f}"
