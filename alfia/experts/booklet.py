"""The blinded booklet of the expert comparison (paper section 3.3): ``alfia experts sample``.

Cases are drawn only from stays the run never trained or tuned on (its own train and validation stays are left
out by id), stratified by outcome so that both outcomes are present, and written as texts a clinician reads
(values with units). What the raters get holds no label and no model output:

    DIR/booklet.html            the cases, one per section
    DIR/cases.csv               case_id, text
    DIR/ratings-template.csv    case_id, probability_of_death (0-100), confidence (1-5), to fill in
    DIR/sealed/key.json         which stay each case is, the cohort and the run: for ``experts compare`` only;
                                keep it away from the raters
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError, SettingError
from alfia.io import atomic_path, write_text_atomic
from alfia.run_folder import RunFolder
from alfia.text.encoder import TextEncoder

RATING_COLUMNS = ("case_id", "probability_of_death", "confidence")
BOOKLET_FILES = ("booklet.html", "cases.csv", "ratings-template.csv")


def unseen_rows(cohort: Cohort, run: str | Path) -> pd.DataFrame:
    """The rows of ``cohort`` whose stay the run neither trained nor tuned on (train and validation stays of the
    run's ``predictions.parquet``, matched by id: conservative for an external cohort whose ids collide)."""
    path = RunFolder(run) / RunFolder.PREDICTIONS
    if not path.exists():
        raise AlfiaError(f"{path} is missing: without the run's own splits no row can be shown to be unseen; "
                         "finish the run's training first")
    seen = pd.read_parquet(path, columns=["stay_id", "split"])
    seen_ids = set(seen.loc[seen["split"].isin(["train", "val"]), "stay_id"].tolist())
    return cohort.df[~cohort.df["stay_id"].isin(seen_ids)]


def draw_cases(rows: pd.DataFrame, n: int, seed: int, label: str) -> pd.DataFrame:
    """``n`` rows stratified by outcome (the ``label`` column; the cohort's prevalence, at least one of each), in
    random order."""
    if n < 2:
        raise SettingError("n", "must be at least 2 (both outcomes must be present)")
    if len(rows) < n:
        raise AlfiaError(f"only {len(rows)} stays are unseen by the run, fewer than the {n} asked for; "
                         f"ask for {len(rows)} or fewer")
    rng = np.random.default_rng(seed)
    pos, neg = rows[rows[label] == 1], rows[rows[label] == 0]
    n_pos = min(len(pos), max(1, round(n * len(pos) / len(rows))))
    if n_pos == 0 or n - n_pos > len(neg) or n - n_pos < 1:
        raise AlfiaError("the unseen stays do not hold both outcomes in the numbers asked for; change --n")
    picked = pd.concat([pos.iloc[rng.choice(len(pos), n_pos, replace=False)],
                        neg.iloc[rng.choice(len(neg), n - n_pos, replace=False)]])
    return picked.iloc[rng.permutation(n)].reset_index(drop=True)


def write_booklet(cohort: Cohort, run: str | Path, out: str | Path, n: int = 100, seed: int = 42,
                  cohort_spec: str | None = None) -> pd.DataFrame:
    """Write the booklet for ``n`` cases to ``out``; returns the cases (case_id, stay_id, text)."""
    run = Path(run)
    encoder_path = run / RunFolder.ENCODER
    if encoder_path.exists():
        schema = TextEncoder.load(encoder_path).schema_name
        if schema != cohort.schema.name:
            raise AlfiaError(f"the run was trained on schema {schema!r}, the cohort is {cohort.schema.name!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AlfiaError(f"{out} is not empty; choose a new folder for the booklet (nothing was written)")
    picked = draw_cases(unseen_rows(cohort, run), n, seed, cohort.label)
    # numbers with units, the way a clinician reads a chart (the model's banded words would hint at its cut points)
    readable = TextEncoder(cohort.schema, style="numeric").fit(cohort.df)
    width = len(str(n))
    cases = pd.DataFrame({"case_id": [f"C{i + 1:0{width}d}" for i in range(n)],
                          "stay_id": picked["stay_id"].to_numpy(),
                          "text": readable.transform(picked).to_numpy()})
    (out / "sealed").mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "cases.csv") as tmp:
        cases[["case_id", "text"]].to_csv(tmp, index=False)
    template = pd.DataFrame({"case_id": cases["case_id"], "probability_of_death": "", "confidence": ""})
    with atomic_path(out / "ratings-template.csv") as tmp:
        template.to_csv(tmp, index=False)
    write_text_atomic(out / "booklet.html", _booklet_html(cases))
    key = {"cases": dict(zip(cases["case_id"], map(int, cases["stay_id"]), strict=True)),
           "cohort": cohort_spec, "schema": cohort.schema.name, "run": str(run.resolve()), "n": n, "seed": seed}
    write_text_atomic(out / "sealed" / "key.json", json.dumps(key, indent=2))
    return cases


def _booklet_html(cases: pd.DataFrame) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ICU cases: expert rating</title>",
        "<style>body{font:15px/1.5 Georgia,serif;max-width:820px;margin:24px auto;color:#222}"
        "section{border-top:1px solid #ccc;padding:8px 0}h2{font:600 16px system-ui,sans-serif}</style>",
        "</head><body><h1>ICU cases: probability of in-hospital death</h1>",
        f"<p>{len(cases)} ICU stays, each described from the first 24 hours. For each case, write in "
        "<code>ratings-template.csv</code> the probability of death during this hospital stay (0-100) and your "
        "confidence in that rating (1 = very unsure, 5 = very sure). Rate each case on its own.</p>",
    ]
    for case_id, text in zip(cases["case_id"], cases["text"], strict=True):
        parts.append(f"<section><h2>Case {html.escape(case_id)}</h2><p>{html.escape(text)}</p></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
