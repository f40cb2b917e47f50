"""The TRIPOD+AI checklist of a study folder (``alfia study`` writes it as ``TRIPOD-AI.md``): one row per item,
saying where the study answers it, with the numbers copied from the study's own files, or that ALFIA does not
report it and the author must add it. Nothing in it is a claim the study's files do not support.

Source of :data:`ITEMS`: Collins GS, Moons KGM, Dhiman P, Riley RD, Beam AL, Van Calster B, et al. TRIPOD+AI
statement: updated guidance for reporting clinical prediction models that use regression or machine learning
methods. BMJ 2024;385:e078378. doi:10.1136/bmj-2023-078378 -- the "TRIPOD+AI checklist" table (version
11 January 2024; 27 items, numbered 1 to 27 with sub-items a, b, c, ...).

Where it was read: the BMJ page itself could not be read from here. The table was read in a public copy of the
checklist (a markdown file titled "TRIPOD+AI Checklist", "Version: 11-January-2024", ending "From: Collins GS, Moons
KGM, Dhiman P, et al. BMJ 2024;385:e078378", found through a public code index that does not name its repository),
and its numbering agrees with two independent paraphrases of the checklist citing the same paper (a reporting-
guidelines reference file: 3a-3c, 5a-5b, 6a-6c, 8a-8c, 9a-9c, 12a-12g, 18a-18f, 20a-20c, 23a-23b, 27a-27c; and the
"tripod-check" page of skills.sh: items 1-6c). The official home of the checklist is https://www.tripod-statement.org/;
a reviewer should check the numbers, sections, topics and D/E marks below against the paper's checklist table. The
section and topic names are the table's; ``about`` is this project's own few words for each item, not the
checklist's wording. TRIPOD+AI for Abstracts (item 2) is a separate checklist and is not expanded here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alfia.cohorts import SPLIT, SPLITS, Cohort, read_cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import CALIBRATION_FIT_METRICS, format_ci
from alfia.io import write_text_atomic
from alfia.run_folder import RunFolder, StudyFolder

logger = logging.getLogger(__name__)
FILE = "TRIPOD-AI.md"   # in the study folder, beside summary.md
SOURCE = ("Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for reporting clinical "
          "prediction models that use regression or machine learning methods. BMJ 2024;385:e078378. "
          "doi:10.1136/bmj-2023-078378 (checklist table, version 11 January 2024)")

REPORTED = "reported"
PARTLY = "partly: the author must complete it"
AUTHOR = "not reported by ALFIA — the author must add it"
STATUSES = (REPORTED, PARTLY, AUTHOR)


@dataclass(frozen=True)
class Item:
    """One row of the checklist: its number ("12e"), section and topic as the table names them, whether it
    concerns development (D), evaluation (E) or both (D;E), and this project's own short words for what it asks."""

    number: str
    section: str
    topic: str
    applies: str
    about: str

    @property
    def main(self) -> int:
        """The main item (12 for "12e")."""
        return int(self.number.rstrip("abcdefghi"))


_M, _R, _D, _O = "Methods", "Results", "Discussion", "Open science"
ITEMS: tuple[Item, ...] = (
    Item("1", "Title", "Title", "D;E", "study type, population and outcome named in the title"),
    Item("2", "Abstract", "Abstract", "D;E", "structured abstract (TRIPOD+AI for Abstracts)"),
    Item("3a", "Introduction", "Background", "D;E", "healthcare context, diagnostic or prognostic, rationale, "
         "existing models"),
    Item("3b", "Introduction", "Background", "D;E", "target population, intended purpose and users in the care "
         "pathway"),
    Item("3c", "Introduction", "Background", "D;E", "known health inequalities between sociodemographic groups"),
    Item("4", "Introduction", "Objectives", "D;E", "development, evaluation or both"),
    Item("5a", _M, "Data", "D;E", "data sources of each data set, why chosen, how representative"),
    Item("5b", _M, "Data", "D;E", "dates of participant accrual and of follow-up"),
    Item("6a", _M, "Participants", "D;E", "setting; number and location of centres"),
    Item("6b", _M, "Participants", "D;E", "eligibility criteria"),
    Item("6c", _M, "Participants", "D;E", "treatments received and how they were handled"),
    Item("7", _M, "Data preparation", "D;E", "pre-processing and quality checks, alike across groups"),
    Item("8a", _M, "Outcome", "D;E", "outcome, time horizon, how and when assessed, why, alike across groups"),
    Item("8b", _M, "Outcome", "D;E", "outcome assessors where judgement is needed"),
    Item("8c", _M, "Outcome", "D;E", "blinding of the outcome assessment"),
    Item("9a", _M, "Predictors", "D", "how the initial predictors were chosen; any pre-selection"),
    Item("9b", _M, "Predictors", "D;E", "each predictor defined, how and when measured; blinding"),
    Item("9c", _M, "Predictors", "D;E", "predictor assessors where judgement is needed"),
    Item("10", _M, "Sample size", "D;E", "how the study size came about and why it suffices"),
    Item("11", _M, "Missing data", "D;E", "how missing data were handled; data left out and why"),
    Item("12a", _M, "Analytical methods", "D", "how the data were used and partitioned"),
    Item("12b", _M, "Analytical methods", "D", "how predictors were handled (form, scaling, transformation)"),
    Item("12c", _M, "Analytical methods", "D", "model type, rationale, building steps, tuning, internal "
         "validation"),
    Item("12d", _M, "Analytical methods", "D;E", "heterogeneity across clusters (hospitals, countries)"),
    Item("12e", _M, "Analytical methods", "D;E", "performance measures and plots; comparison of models"),
    Item("12f", _M, "Analytical methods", "E", "model updating arising from the evaluation"),
    Item("12g", _M, "Analytical methods", "E", "how predictions were computed for the evaluation"),
    Item("13", _M, "Class imbalance", "D;E", "class imbalance methods and any recalibration after them"),
    Item("14", _M, "Fairness", "D;E", "approaches to model fairness and why"),
    Item("15", _M, "Model output", "D", "what the model outputs; classification thresholds and how chosen"),
    Item("16", _M, "Training versus evaluation", "D;E", "differences between development and evaluation data"),
    Item("17", _M, "Ethical approval", "D;E", "approving ethics committee; consent or waiver"),
    Item("18a", _O, "Funding", "D;E", "funding source and the funders' role"),
    Item("18b", _O, "Conflicts of interest", "D;E", "the authors' interests and financial disclosures"),
    Item("18c", _O, "Protocol", "D;E", "where the protocol is, or that there is none"),
    Item("18d", _O, "Registration", "D;E", "registry and number, or that there is none"),
    Item("18e", _O, "Data sharing", "D;E", "availability of the study data"),
    Item("18f", _O, "Code sharing", "D;E", "availability of the analysis code"),
    Item("19", "Patient & public involvement", "Patient & public involvement", "D;E",
         "involvement in design, conduct, reporting or dissemination, or none"),
    Item("20a", _R, "Participants", "D;E", "flow of participants, with and without the outcome; follow-up"),
    Item("20b", _R, "Participants", "D;E", "characteristics per data source: size, events, predictors, missing "
         "data"),
    Item("20c", _R, "Participants", "E", "evaluation data against the development data"),
    Item("21", _R, "Model development", "D;E", "participants and events in each analysis"),
    Item("22", _R, "Model specification", "D", "the full model, for others to predict with; access terms"),
    Item("23a", _R, "Model performance", "D;E", "performance with confidence intervals, key subgroups too"),
    Item("23b", _R, "Model performance", "D;E", "heterogeneity of performance across clusters"),
    Item("24", _R, "Model updating", "E", "results of any model updating"),
    Item("25", _D, "Interpretation", "D;E", "overall interpretation, fairness included, against earlier work"),
    Item("26", _D, "Limitations", "D;E", "limitations and their effect on bias, uncertainty, generalisability"),
    Item("27a", _D, "Usability of the model in the context of current care", "D",
         "handling poor or unavailable input data in use"),
    Item("27b", _D, "Usability of the model in the context of current care", "D",
         "user interaction with the model and the expertise it needs"),
    Item("27c", _D, "Usability of the model in the context of current care", "D;E",
         "next steps for research: applicability, generalisability"),
)
MAIN_ITEMS = tuple(sorted({item.main for item in ITEMS}))   # 1 .. 27

RUN = StudyFolder.RUN
MODEL_CARD = f"{RUN}/MODEL_CARD.md"   # written into the run by the model card, when that exists
FIGURES = "figures"   # the report's number files inside the run (alfia.analysis.report.build)
REPORT = StudyFolder.REPORT


# ------------------------------------------------------------------------------------------ what the study holds


@dataclass
class Facts:
    """What a study folder holds, read once; every part may be absent (None or empty)."""

    folder: StudyFolder
    dev: str
    ext: str | None
    cohort: Cohort | None = None
    external: Cohort | None = None
    metrics: dict = field(default_factory=dict)        # the run's metrics.json
    ext_info: dict | None = None                       # <external>.metrics.json
    config: dict = field(default_factory=dict)         # the run's config.json
    threshold: float | None = None
    calibration: dict | None = None
    leaderboard: dict | None = None
    subgroups: dict | None = None                      # the report's subgroups numbers
    warnings: dict | None = None                       # the report's cohort-warnings numbers
    mapping: dict | None = None                        # external-mapping.json
    run_manifest: dict | None = None
    encoder: dict | None = None

    def has(self, name: str) -> bool:
        return self.folder.has(name)

    @property
    def label(self) -> str | None:
        return self.cohort.label if self.cohort is not None else None

    @property
    def task(self):
        return self.cohort.task if self.cohort is not None else None

    @property
    def ext_metrics(self) -> dict:
        return (self.ext_info or {}).get("metrics") or {}


def _json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AlfiaError(f"{path} is unreadable ({type(exc).__name__}); run the study again") from None


def _cohort(path: Path) -> Cohort | None:
    return read_cohort(path) if path.is_file() else None


def study_names(folder: StudyFolder) -> tuple[str, str | None]:
    """The development and external cohorts of a study folder: from its manifest (``cohort``: development first),
    else from its files (the external cohort is the one ALFIA scored, ``<name>.metrics.json``)."""
    externals = folder.externals()
    listed = list((folder.read_json(StudyFolder.MANIFEST) or {}).get("cohort") or {})
    if len(listed) == 2:
        return listed[0], listed[1]
    suffixes = (StudyFolder.ENCODED_SUFFIX, StudyFolder.PREDICTIONS_SUFFIX)
    cohorts = sorted(p.name.removesuffix(StudyFolder.COHORT_SUFFIX) for p in folder.path.glob(
        f"*{StudyFolder.COHORT_SUFFIX}") if p.is_file() and not p.name.endswith(suffixes))
    dev = [c for c in cohorts if c not in externals]
    if not dev:
        raise AlfiaError(f"{folder.path} holds no development cohort file; run the study first")
    return dev[0], (externals[0] if externals else None)


def read_facts(folder: StudyFolder, names: tuple[str, str | None] | None = None) -> Facts:
    dev, ext = names or study_names(folder)
    run = folder.run
    facts = Facts(folder, dev, ext)
    facts.cohort = _cohort(folder.cohort(dev))
    facts.external = _cohort(folder.cohort(ext)) if ext else None
    facts.metrics = run.metrics() or {}
    facts.ext_info = folder.external_metrics(ext) if ext else None
    facts.config = run.config()
    facts.threshold = run.threshold()
    facts.calibration = run.calibration()
    facts.leaderboard = folder.read_json(StudyFolder.LEADERBOARD_JSON)
    facts.subgroups = _json(run.path / FIGURES / "subgroups.json")
    facts.warnings = _json(run.path / FIGURES / "cohort-warnings.json")
    facts.mapping = folder.read_json(StudyFolder.MAPPING)
    facts.run_manifest = run.read_json(RunFolder.MANIFEST)
    facts.encoder = folder.read_json(StudyFolder.ENCODER)
    return facts


# ------------------------------------------------------------------------------------------------ formatting


def _n(x: Any) -> str:
    return f"{int(x):,}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _code(path: str) -> str:
    return f"`{path}`"


def _run_file(name: str) -> str:
    return _code(f"{RUN}/{name}")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def counts(df, label: str) -> tuple[int, int]:
    """Stays and events (label 1) of a table."""
    return len(df), int(df[label].sum())


def split_counts(cohort: Cohort) -> dict[str, tuple[int, int]]:
    """``{split: (stays, events)}`` of a cohort, in the order train, val, test."""
    if SPLIT not in cohort.df.columns:
        return {}
    return {s: counts(cohort.df[cohort.df[SPLIT] == s], cohort.label) for s in SPLITS}


def features(cohort: Cohort) -> list[str]:
    """The cohort's model inputs (its schema's feature columns)."""
    return [c.name for c in cohort.schema.columns if c.role == "feature" and c.name in cohort.df.columns]


def missing(cohort: Cohort) -> dict[str, Any]:
    """The missing data of a cohort's predictors: the share of all values, of stays with any, and per variable."""
    cols = features(cohort)
    table = cohort.df[cols].isna()
    n = len(table)
    per = {c: float(table[c].mean()) for c in cols} if n else {}
    return {"values": float(table.to_numpy().mean()) if table.size else 0.0,
            "stays": float(table.any(axis=1).mean()) if n else 0.0, "variables": per,
            "with_missing": sum(v > 0 for v in per.values()), "n_features": len(cols)}


def missing_words(cohort: Cohort, top: int = 5) -> str:
    m = missing(cohort)
    worst = sorted(((v, k) for k, v in m["variables"].items() if v > 0), reverse=True)[:top]
    words = (f"{100 * m['values']:.1f}% of predictor values missing; {100 * m['stays']:.1f}% of stays miss at least "
             f"one; {m['with_missing']} of {m['n_features']} predictors have missing values")
    if worst:
        words += " (most often: " + ", ".join(f"{k} {100 * v:.2f}%" for v, k in worst) + ")"
    return words


def metric_line(m: dict, keys: tuple[str, ...] = ("auprc", "auroc", "brier", "ece", *CALIBRATION_FIT_METRICS)) -> str:
    """"AUPRC 0.460 (0.362–0.575), AUROC ..." for the keys an evaluate dict holds."""
    names = {"auprc": "AUPRC", "auroc": "AUROC", "brier": "Brier", "ece": "ECE", "oe_ratio": "O:E",
             "calibration_intercept": "calibration intercept", "calibration_slope": "calibration slope",
             "sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV"}
    return ", ".join(f"{names[k]} {format_ci(m[k])}" for k in keys if m.get(k))


def ci_words(m: dict) -> str:
    level = m.get("ci_level", 0.95)
    boot = f"{_n(m['n_boot'])} stratified bootstrap resamples" if m.get("n_boot") else "bootstrap"
    return f"{round(100 * level)}% CIs from {boot}"


# ------------------------------------------------------------------------------------------------ the answers


def _title(f: Facts) -> tuple[str, str]:
    task = f"task: {f.task.title}; " if f.task else ""
    return PARTLY, (f"The study gives the elements: development of a prediction model (ALFIA, a transformer reading "
                    f"each stay's first hours as clinical text) on {f.dev} and its evaluation on held-out data; "
                    f"{task}the manuscript's title is the author's ({_code(StudyFolder.SUMMARY)}).")


def _abstract(f: Facts) -> tuple[str, str]:
    return AUTHOR, (f"No abstract is written by ALFIA; its numbers are in {_code(StudyFolder.SUMMARY)} and in "
                    "items 20-23 below. TRIPOD+AI for Abstracts applies.")


def _context(f: Facts) -> tuple[str, str]:
    scores = _scores(f)
    compared = f"; existing severity scores scored on the same stays: {', '.join(scores)}" if scores else ""
    what = (f"Prognostic: {f.task.outcome}, predicted at {f.task.prediction_time:g} h after ICU admission from the "
            f"data of hours {f.task.window[0]:g}-{f.task.window[1]:g}" if f.task else "Prognostic")
    return PARTLY, (f"{what}{compared} ({_code(StudyFolder.LEADERBOARD)}; docs/cohorts.md, section The task). "
                    "The clinical rationale and references to existing models are the author's.")


def _population(f: Facts) -> tuple[str, str]:
    who = f"ICU stays of {_source(f.cohort, licence=False)}" if f.cohort is not None else "ICU stays"
    return PARTLY, (f"Population: {who} meeting the task's eligibility (item 6b). The intended purpose in the "
                    "care pathway and the intended users are not stated by ALFIA.")


def _author(what: str = "") -> Callable[[Facts], tuple[str, str]]:
    def answer(_f: Facts) -> tuple[str, str]:
        return AUTHOR, what or "Nothing in the study's files answers this item."
    return answer


def _objectives(f: Facts) -> tuple[str, str]:
    ext = f" and on {f.ext} (all rows, held out from development)" if f.ext else ""
    return REPORTED, (f"Both: ALFIA is developed on {f.dev} (train and validation splits) and evaluated on its test "
                      f"split{ext}; severity scores and tabular models are compared on the same stays "
                      f"({_code(StudyFolder.SUMMARY)}). The objectives in words are the author's.")


def _source(cohort: Cohort | None, licence: bool = True) -> str:
    if cohort is None:
        return "a cohort file that is not in the study folder"
    info = cohort.info
    words = str(info.get("source") or f"schema {cohort.schema.name}")
    if cohort.synthetic:
        words += " (SYNTHETIC: invented rows that say nothing about patients)"
    if licence and info.get("license"):
        words += f", licence {info['license']}"
    return words


def _sources(f: Facts) -> tuple[str, str]:
    parts = [f"development: {f.dev} = {_source(f.cohort)}"]
    if f.ext:
        parts.append(f"evaluation: {f.ext} = {_source(f.external)}")
    return PARTLY, ("; ".join(parts) + f" ({_code(f.folder.cohort(f.dev).name)} metadata; docs/cohorts.md). Why "
                    "these data and how representative they are: not assessed by ALFIA — the author must add it.")


def _setting(f: Facts) -> tuple[str, str]:
    return PARTLY, ("Intensive care units (one row per ICU stay). The number and location of centres are not in the "
                    "study's files — the author must add them (for the bundled PhysioNet 2012 sets: docs/cohorts.md).")


def _eligibility(f: Facts) -> tuple[str, str]:
    if f.task is None:
        return AUTHOR, "The development cohort file is absent, so its task's criteria cannot be read."
    rules = "; ".join(f.task.exclusions) or "none recorded"
    return REPORTED, (f"Task {f.task.name} ({f.task.source or 'no source recorded'}): exclusions: {rules} (the "
                      f"cohort file's task; docs/cohorts.md, section The task).")


def _treatments(f: Facts) -> tuple[str, str]:
    return AUTHOR, ("ALFIA models no treatment; treatment variables among the predictors (e.g. mechanical "
                    "ventilation, where the schema has one) are inputs like any other (docs/features.md).")


def _preparation(f: Facts) -> tuple[str, str]:
    schema = f.cohort.schema.name if f.cohort is not None else "the cohort's schema"
    style = (f.encoder or {}).get("style", "?")
    return PARTLY, (f"Every cohort is validated against its schema {schema} (types, units, valid ranges) and "
                    "missing values stay missing (docs/cohorts.md, docs/features.md); each data set's cleaning is in "
                    "its page (PhysioNet 2012: docs/physionet2012.md, section Cleaning; MIMIC-IV, eICU: "
                    f"docs/databases.md); each stay is written as text in the {style!r} style "
                    f"({_code(StudyFolder.ENCODER)}; docs/text.md). The same rules apply to every stay; whether data "
                    "quality differs across sociodemographic groups was not checked.")


def _outcome(f: Facts) -> tuple[str, str]:
    if f.task is None:
        return AUTHOR, "The development cohort file is absent, so its task cannot be read."
    t = f.task
    return PARTLY, (f"{t.outcome} (label column {t.label}), one prediction per stay at {t.prediction_time:g} h after "
                    f"ICU admission, read from the data source's records (task {t.name}: docs/cohorts.md). The "
                    "rationale, the follow-up horizon beyond 'in hospital' and the consistency of the outcome's "
                    "recording across sociodemographic groups: the author must add them.")


def _assessors(f: Facts) -> tuple[str, str]:
    return AUTHOR, ("ALFIA assesses no outcome: the label is read from the data source; who recorded it, and "
                    "whether judgement was involved, is for the author.")


def _blinding(f: Facts) -> tuple[str, str]:
    return PARTLY, ("The outcome never enters a predictor or a text (the texts are written from the predictor columns "
                    "only: docs/text.md; reference scores never reach a model: docs/cohorts.md); blinding in the "
                    "data source's own recording is for the author.")


def _choice(f: Facts) -> tuple[str, str]:
    if f.cohort is None:
        return AUTHOR, "The development cohort file is absent."
    return REPORTED, (f"All {len(features(f.cohort))} predictors the schema {f.cohort.schema.name} declares as "
                      "features, with no selection on their association with the outcome; the schema's reference "
                      "columns never reach a model (docs/features.md; docs/cohorts.md).")


def _predictors(f: Facts) -> tuple[str, str]:
    if f.cohort is None:
        return AUTHOR, "The development cohort file is absent."
    window = ((f.task.inputs or f"hours {f.task.window[0]:g}-{f.task.window[1]:g} of the ICU stay") if f.task
              else "the input window")  # a MEDS label file's task says its window in words
    return PARTLY, (f"{len(features(f.cohort))} predictors from {window}, each with its definition, unit and valid "
                    f"range in docs/features.md (schema {f.cohort.schema.name}). Blinding of the predictors' "
                    "measurement to the outcome: the author must add it.")


def _predictor_assessors(f: Facts) -> tuple[str, str]:
    return AUTHOR, ("Some predictors may rest on a clinician's judgement (e.g. a charted coma scale); who assessed "
                    "them is not in the study's files.")


def _sample_size(f: Facts) -> tuple[str, str]:
    sizes = []
    if f.cohort is not None:
        n, e = counts(f.cohort.df, f.label)
        sizes.append(f"{f.dev} {_n(n)} stays, {_n(e)} events")
    if f.external is not None and f.external.label in f.external.df.columns:
        n, e = counts(f.external.df, f.external.label)
        sizes.append(f"{f.ext} {_n(n)} stays, {_n(e)} events")
    used = f" ({'; '.join(sizes)})" if sizes else ""
    return PARTLY, (f"No sample size calculation was done: the study uses every stay of its cohorts{used}. "
                    "Whether that size suffices: the author must justify it.")


def _missing(f: Facts) -> tuple[str, str]:
    if f.cohort is None:
        return AUTHOR, "The development cohort file is absent."
    parts = [f"ALFIA fills in no missing predictor value: the stay's text lists it as not recorded "
             f"(docs/text.md). {f.dev}: {missing_words(f.cohort)}"]
    if f.external is not None:
        parts.append(f"{f.ext}: {missing_words(f.external)}")
    if f.has(StudyFolder.TABLE1):
        parts.append(f"each variable's missing count by outcome: {_code(StudyFolder.TABLE1)}")
    if f.mapping and f.mapping.get("imputed"):
        names = ", ".join(str(m["variable"]) for m in f.mapping["imputed"])
        parts.append(f"in the external cohort, mapped from another schema, {names} had no counterpart and were set to "
                     f"the training cohort's mode ({_code(StudyFolder.MAPPING)})")
    parts.append("the tabular baselines get the same columns with their gaps (docs/baselines.md); a severity score "
                 "missing for a stay leaves that stay out of the score's metrics only")
    left = "No stay of the development cohort is left out"
    rows, labelled = (f.ext_info or {}).get("rows"), (f.ext_info or {}).get("labelled_rows")
    if rows is not None and labelled is not None:
        left += (f"; {_n(labelled)} of {_n(rows)} {f.ext} rows have an outcome and enter its metrics"
                 + (" (the others lack the outcome)" if labelled < rows else ""))
    return REPORTED, "; ".join(parts) + f". {left}."


def _partition(f: Facts) -> tuple[str, str]:
    sizes = ""
    if f.cohort is not None and split_counts(f.cohort):
        sizes = ": " + "; ".join(f"{s} {_n(n)} stays, {_n(e)} events" for s, (n, e) in
                                 split_counts(f.cohort).items())
    ext = f"; {f.ext} is scored whole, every row" if f.ext else ""
    recalibrated = " and fits the recalibration" if _recalibrated(f) else ""
    return REPORTED, (f"{f.dev}'s fixed train/validation/test split (its split column{sizes}; ALFIA's cohort "
                      "builders draw it 75/12.5/12.5%, stratified by outcome, seed 42, by patient where the source "
                      f"has a patient id: docs/cohorts.md): train fits the model, validation chooses the epoch and "
                      f"the threshold{recalibrated}, test is read once after training{ext}.")


def _recalibrated(f: Facts) -> bool:
    return (f.config.get("train") or {}).get("calibration") not in (None, "none")


def _handling(f: Facts) -> tuple[str, str]:
    style = (f.encoder or {}).get("style")
    how = ("each value as a band word between the 5th, 25th, 75th and 95th percentiles of the train split"
           if style == "banded" else "values with their units, rounded as the schema declares"
           if style == "numeric" else "as the text encoder's style")
    return REPORTED, (f"Predictors are written as clinical text ({how}; {_code(StudyFolder.ENCODER)}; docs/text.md) "
                      "and read by the transformer; the tabular baselines get the raw columns (docs/baselines.md).")


def _model(f: Facts) -> tuple[str, str]:
    s = f.config.get("train") or {}
    if not s:
        return AUTHOR, f"The run's settings ({_run_file(RunFolder.CONFIG)}) are absent."
    keys = ("profile", "epochs", "batch_size", "lr", "head_lr", "weight_decay", "patience", "seed", "calibration",
            "distill", "class_weight")
    settings = ", ".join(f"{k} {s[k]}" for k in keys if k in s)
    model = s.get("model") or {}
    parts = [f"backbone {f.config.get('backbone', '?')}" + (" fine-tuned with LoRA" if model.get("lora") else
                                                            " frozen" if "lora" in model else ""),
             "adaptive layer fusion and a classification head"]
    if model.get("readout"):
        parts.append("a pooled linear readout")
    if s.get("distill"):
        parts.append(f"targets mixed with a LightGBM teacher's out-of-fold probabilities (weight {s['distill']})")
    chosen = (" The quick profile's settings were chosen on set A's validation split (docs/experiments.md)."
              if s.get("profile") == "quick" else "")
    return REPORTED, (f"ALFIA: {', '.join(parts)} (docs/model.md); {settings} ({_run_file(RunFolder.CONFIG)}; "
                      f"docs/training.md). Early stopping on validation AUPRC.{chosen} Internal validation: the "
                      "held-out test split, scored once (no cross-validation or bootstrap of the development).")


def _clusters(f: Facts) -> tuple[str, str]:
    return REPORTED, ("Not examined: the study has no cluster (hospital) identifier and estimates no heterogeneity "
                      "across clusters.")


def _measures(f: Facts) -> tuple[str, str]:
    m = f.metrics.get("test") or {}
    if not m:
        return AUTHOR, f"The run's metrics ({_run_file(RunFolder.METRICS)}) are absent."
    names = {"auprc": "AUPRC (primary)", "auroc": "AUROC", "brier": "Brier score", "ece": "ECE", "oe_ratio": "O:E",
             "calibration_intercept": "calibration intercept", "calibration_slope": "calibration slope",
             "best_f1": "best F1 and F2 (test-optimal, optimistic)", "sensitivity": "sensitivity, specificity, PPV, "
             "NPV, F1, F2 at the validation threshold"}
    parts = [", ".join(v for k, v in names.items() if k in m) + f", {ci_words(m)} ({_run_file(RunFolder.METRICS)}; "
             "docs/training.md)"]
    if f.has(REPORT):
        parts.append(f"calibration curves and the decision curve ({_code(REPORT)}, section 4)")
    if (f.leaderboard or {}).get("comparisons"):
        parts.append(f"models compared on the same stays, AUPRC differences by paired bootstrap "
                     f"({_code(StudyFolder.LEADERBOARD)}; docs/baselines.md)")
    if f.has(StudyFolder.SEED_SPREAD):
        parts.append(f"every trained model repeated over training seeds: the spread over the seeds and the "
                     f"comparisons per seed and pooled ({_code(StudyFolder.SEED_SPREAD)})")
    return REPORTED, "; ".join(parts) + "."


def _updating(f: Facts) -> tuple[str, str]:
    cal = f.calibration
    fitted = (f"the recalibration ({cal.get('method')}) fitted on the validation split ({cal.get('formula', '')}; "
              f"a {cal['a']:.3f}, b {cal['b']:.3f}: {_run_file(RunFolder.CALIBRATION)}) is part of the developed model"
              if cal and "a" in cal and "b" in cal else "no recalibration file is in the run")
    return REPORTED, f"No updating from the evaluation data: {fitted}, and is applied unchanged to {f.ext or 'them'}."


def _how_predicted(f: Facts) -> tuple[str, str]:
    where = _code(f.folder.predictions(f.ext).name) if f.ext else "the predictions file"
    return REPORTED, (f"With the saved run ({_code(RUN + '/')}) through alfia.inference.predict_cohort, as "
                      f"`alfia predict` does (docs/training.md); predictions and warnings per stay in {where}.")


def _imbalance(f: Facts) -> tuple[str, str]:
    s = f.config.get("train") or {}
    if not s:
        return AUTHOR, f"The run's settings ({_run_file(RunFolder.CONFIG)}) are absent."
    weighted = ("the loss weighted by the class ratio" if s.get("class_weight") else
                "no class weighting")
    cal = s.get("calibration")
    after = f"; predictions recalibrated ({cal}) on the validation split" if cal and cal != "none" else ""
    return REPORTED, (f"No resampling; {weighted} (class_weight {s.get('class_weight')}: "
                      f"{_run_file(RunFolder.CONFIG)}){after}.")


def _fairness(f: Facts) -> tuple[str, str]:
    shown = (f"; performance by subgroup is reported (item 23a; {_code(REPORT)}, section 4)" if f.subgroups else
             "; no subgroup performance was computed")
    return PARTLY, f"No approach to model fairness was applied in development{shown}. The rationale is the author's."


def _output(f: Facts) -> tuple[str, str]:
    thr = f" ({f.threshold:.3f}: {_run_file(RunFolder.THRESHOLD)})" if f.threshold is not None else ""
    return REPORTED, ("A calibrated probability of the outcome per stay; an alert threshold, the best F1 on the "
                      f"validation split{thr}, applied unchanged to test and external data (docs/training.md).")


def _differences(f: Facts) -> tuple[str, str]:
    parts = [f"internal test: the same source, eligibility, outcome and predictors as development ({f.dev})"]
    if f.ext:
        same = (f"{f.ext}: the same schema" if not f.mapping else
                f"{f.ext}: schema {f.mapping.get('source_schema')} mapped onto {f.mapping.get('target_schema')}, "
                f"{len(f.mapping.get('mapped') or [])} variables mapped, {len(f.mapping.get('imputed') or [])} "
                f"imputed ({_code(StudyFolder.MAPPING)})")
        if f.external is not None and f.cohort is not None and f.task != f.external.task:
            same += f"; task {f.external.task.name} against {f.task.name}"
        parts.append(same + f"; source {_source(f.external)}")
        parts.append("prevalence " + _prevalences(f))
    return PARTLY, "; ".join(parts) + ". Differences of setting and eligibility between the sources: the author."


def _prevalences(f: Facts) -> str:
    out = []
    for name, c in ((f.dev, f.cohort), (f.ext, f.external)):
        if c is not None and c.label in c.df.columns:
            n, e = counts(c.df, c.label)
            out.append(f"{name} {_pct(e, n)}")
    return " against ".join(out) or "n/a"


def _flow(f: Facts) -> tuple[str, str]:
    if f.cohort is None:
        return AUTHOR, "The development cohort file is absent."
    n, e = counts(f.cohort.df, f.label)
    parts = [f"{f.dev}: {_n(n)} stays, {_n(e)} with the outcome, {_n(n - e)} without"]
    parts += [f"{s} {_n(sn)} ({_n(se)} events)" for s, (sn, se) in split_counts(f.cohort).items()]
    if f.external is not None:
        en, ee = counts(f.external.df, f.external.label)
        parts.append(f"{f.ext}: {_n(en)} stays, {_n(ee)} with the outcome, {_n(en - ee)} without")
    return PARTLY, ("; ".join(parts) + ". Stays excluded before the cohort files (per criterion) and the follow-up "
                    "time are not in the study's files — the author must add them.")


def _characteristics(f: Facts) -> tuple[str, str]:
    if f.cohort is None:
        return AUTHOR, "The development cohort file is absent."
    table = (f"{_code(StudyFolder.TABLE1)}: {f.dev}'s predictors by outcome (mean ± SD or median [IQR], missing "
             "counts, SMD)" if f.has(StudyFolder.TABLE1) else "no Table 1 in the folder")
    return PARTLY, (f"{table}; sizes, events and missing data per cohort in items 11 and 20a. The external cohort has "
                    "no Table 1, and differences across demographic groups are not tabulated: the author must add "
                    "them.")


def _comparison(f: Facts) -> tuple[str, str]:
    if not f.ext:
        return AUTHOR, "The study has no external cohort."
    words = [f"prevalence {_prevalences(f)}"]
    if f.cohort is not None and f.external is not None:
        words.append(f"missing predictor values {100 * missing(f.cohort)['values']:.1f}% against "
                     f"{100 * missing(f.external)['values']:.1f}%")
    row = _warning_row(f)
    if row:
        words.append(f"{row.get('out of distribution', '?')} of {row.get('stays', '?')} {f.ext} stays have a value "
                     f"or text outside the train split's range ({_code(REPORT)}, section 1)")
    return PARTLY, "; ".join(words) + ". A full comparison of predictor distributions: the author must add it."


def _warning_row(f: Facts) -> dict | None:
    if not f.warnings or not f.ext:
        return None
    header = f.warnings.get("header") or []
    for row in f.warnings.get("rows") or []:
        if row and str(row[0]).startswith(f.ext):
            return dict(zip(header, row, strict=False))
    return None


def _analyses(f: Facts) -> tuple[str, str]:
    parts = []
    if f.cohort is not None:
        sizes = split_counts(f.cohort)
        if "train" in sizes:
            parts.append(f"development (train): {_n(sizes['train'][0])} stays, {_n(sizes['train'][1])} events")
    tuned = "epoch, recalibration, threshold" if _recalibrated(f) else "epoch, threshold"
    for split, what in (("val", f"tuning (validation: {tuned})"),
                        ("test", "internal evaluation (test)")):
        m = f.metrics.get(split)
        if m:
            parts.append(f"{what}: {_n(m['n'])} stays, {_n(m['n_pos'])} events")
    if f.ext_metrics:
        parts.append(f"external evaluation ({f.ext}): {_n(f.ext_metrics['n'])} stays, {_n(f.ext_metrics['n_pos'])} "
                     "events")
    if not parts:
        return AUTHOR, "Neither the cohort nor the run's metrics are in the folder."
    return REPORTED, "; ".join(parts) + f" ({_run_file(RunFolder.METRICS)}, the cohort file, the external metrics)."


def _specification(f: Facts) -> tuple[str, str]:
    card = f"; model card: {_code(MODEL_CARD)}" if f.folder.has(MODEL_CARD) else ""
    weights = "weights in model/, " if f.folder.run.model.is_dir() else ""
    return PARTLY, (f"The whole model is the run folder {_code(RUN + '/')} ({weights}"
                    f"{RunFolder.CONFIG}, {RunFolder.ENCODER}, {RunFolder.CALIBRATION}, {RunFolder.THRESHOLD}), "
                    f"loaded by `alfia predict`, `alfia serve` or ALFIAPredictor (docs/training.md, "
                    f"docs/serving.md){card}. Restrictions on access or re-use (e.g. the licence of the training "
                    "data): the author must state them.")


def _performance(f: Facts) -> tuple[str, str]:
    test = f.metrics.get("test")
    if not test:
        return AUTHOR, f"The run's metrics ({_run_file(RunFolder.METRICS)}) are absent."
    parts = [f"{f.dev} test ({_n(test['n'])} stays, {_n(test['n_pos'])} events): {metric_line(test)}"]
    at = metric_line(test, ("sensitivity", "specificity", "ppv", "npv"))
    if at:
        parts.append(f"at the threshold: {at}")
    if f.ext_metrics:
        e = f.ext_metrics
        parts.append(f"{f.ext} ({_n(e['n'])} stays, {_n(e['n_pos'])} events): {metric_line(e)}")
    if not all(k in test for k in CALIBRATION_FIT_METRICS):
        parts.append("O:E and the calibration intercept and slope are not in this run's metrics")
    parts.append(f"{ci_words(test)} ({_run_file(RunFolder.METRICS)}"
                 + (f", {_code(f.folder.metrics_path(f.ext).name)}" if f.ext_metrics else "") + ")")
    groups = (f.subgroups or {}).get("groups") or {}
    if groups:
        parts.append("subgroups, test split: " + "; ".join(
            f"{name} n {_n(g.get('n', 0))}, {_n(g.get('deaths', 0))} events, AUROC {format_ci(g.get('auroc'))}"
            for name, g in groups.items()) + f" ({_run_file(FIGURES + '/subgroups.json')})")
    else:
        parts.append("no subgroup performance was computed")
    comparisons = (f.leaderboard or {}).get("comparisons") or {}
    for where, rows in comparisons.items():
        for c in rows:
            if c.get("model") == "ALFIA" and None not in (c.get("difference"), c.get("ci_low"), c.get("ci_high")):
                parts.append(f"AUPRC difference ALFIA − {c['baseline']} on {where}: {c['difference']:+.3f} "
                             f"({c['ci_low']:+.3f} to {c['ci_high']:+.3f})")
    return REPORTED, "; ".join(parts) + "."


def _updating_results(f: Facts) -> tuple[str, str]:
    return REPORTED, "No model updating was done on the evaluation data (item 12f)."


def _interpretation(f: Facts) -> tuple[str, str]:
    return PARTLY, (f"The study reads its own numbers in words (calibration, decision curve, comparison with the "
                    f"best baseline: {_code(REPORT)}; {_code(StudyFolder.SUMMARY)}). The interpretation against the "
                    "objectives, previous studies and fairness is the author's.")


def _limitations(f: Facts) -> tuple[str, str]:
    facts = []
    test = f.metrics.get("test")
    if test and test.get("auprc", {}).get("ci_low") is not None:
        a = test["auprc"]
        facts.append(f"a single development split: the test AUPRC's 95% CI spans {a['ci_high'] - a['ci_low']:.3f} "
                     f"on {_n(test['n'])} stays")
    if f.cohort is not None and f.cohort.synthetic:
        facts.append(f"{f.dev} is SYNTHETIC")
    if f.external is not None and f.external.synthetic:
        facts.append(f"{f.ext} is SYNTHETIC")
    if not f.has(StudyFolder.SEED_SPREAD):
        facts.append("one training seed: how far the results move with it is not measured here (`alfia study "
                     "--seeds N`)")
    facts.append("no sample size calculation (item 10), no cluster analysis (item 12d), no fairness method "
                 "(item 14)")
    return PARTLY, ("Facts the author should weigh: " + "; ".join(facts) + ". Known limits of the data and scores: "
                    "docs/cohorts.md, docs/physionet2012.md, docs/reliability.md. The discussion is the author's.")


def _poor_input(f: Facts) -> tuple[str, str]:
    ref = f"{_run_file(RunFolder.REFERENCE)}; " if f.folder.run.has(RunFolder.REFERENCE) else ""
    return REPORTED, ("Missing values are accepted and written as not recorded; each scored stay carries warnings "
                      "against the train split (values or categories outside its range, more variables missing than "
                      f"in 99% of training stays, unusual or truncated texts: {ref}docs/serving.md), in `alfia "
                      "predict`'s output and the risk service's answers; the stay is scored all the same.")


def _users(f: Facts) -> tuple[str, str]:
    return PARTLY, ("Users send a stay's variables (or its text) to `alfia predict` or the risk service and get a "
                    "probability, a risk band and warnings (docs/serving.md). The expertise required of users, "
                    "and how they act on a warning: the author must add them.")


def _scores(f: Facts) -> list[str]:
    rows = ((f.leaderboard or {}).get("tables") or {}).get("test") or []
    return [str(r["model"]) for r in rows if r.get("family") == "score"]


def _data_sharing(f: Facts) -> tuple[str, str]:
    return PARTLY, (f"The study folder holds the cohorts as it read them ({_code(f.folder.cohort(f.dev).name)}"
                    + (f", {_code(f.folder.cohort(f.ext).name)}" if f.ext else "")
                    + f"); their sources: {_source(f.cohort)}"
                    + (f"; {_source(f.external)}" if f.ext else "")
                    + ". Whether and how the data can be shared (e.g. credentialed access) is the author's statement.")


def _code_sharing(f: Facts) -> tuple[str, str]:
    alfia = (f.run_manifest or {}).get("alfia") or {}
    git = alfia.get("git") or {}
    version = f"ALFIA {alfia['version']}" if alfia.get("version") else "ALFIA"
    commit = (f", commit {git['commit']}{' with local changes' if git.get('dirty') else ''}" if git.get("commit")
              else "")
    return PARTLY, (f"The analysis is `alfia study`, {version}{commit} ({_run_file(RunFolder.MANIFEST)}; "
                    f"{_code(StudyFolder.MANIFEST)} lists every file's SHA-256). Where the code is available and "
                    "under which licence: the author must add it.")


ANSWERS: dict[str, Callable[[Facts], tuple[str, str]]] = {
    "1": _title, "2": _abstract, "3a": _context, "3b": _population,
    "3c": _author("Health inequalities are not described by ALFIA."), "4": _objectives,
    "5a": _sources, "5b": _author("The cohort files carry no accrual or follow-up dates."), "6a": _setting,
    "6b": _eligibility, "6c": _treatments, "7": _preparation, "8a": _outcome, "8b": _assessors, "8c": _blinding,
    "9a": _choice, "9b": _predictors, "9c": _predictor_assessors, "10": _sample_size, "11": _missing,
    "12a": _partition, "12b": _handling, "12c": _model, "12d": _clusters, "12e": _measures, "12f": _updating,
    "12g": _how_predicted, "13": _imbalance, "14": _fairness, "15": _output, "16": _differences,
    "17": _author("Ethics approval and consent (or its waiver) are not recorded by ALFIA."),
    "18a": _author("Funding is not recorded by ALFIA."),
    "18b": _author("Conflicts of interest are not recorded by ALFIA."),
    "18c": _author("ALFIA prepares no protocol; say where it is, or that none was prepared."),
    "18d": _author("ALFIA registers nothing; give the registry and number, or say it was not registered."),
    "18e": _data_sharing, "18f": _code_sharing,
    "19": _author("Patient and public involvement is not recorded by ALFIA; describe it or state there was none."),
    "20a": _flow, "20b": _characteristics, "20c": _comparison, "21": _analyses, "22": _specification,
    "23a": _performance,
    "23b": lambda f: (REPORTED, "Not examined: the study has no clusters (item 12d)."),
    "24": _updating_results, "25": _interpretation, "26": _limitations, "27a": _poor_input, "27b": _users,
    "27c": _author("Next steps for research are not written by ALFIA."),
}




# --------------------------------------------------------------------------------------------------- the file


def rows(facts: Facts) -> list[tuple[Item, str, str]]:
    """``(item, status, answer)`` for every checklist item, in the checklist's order."""
    out = []
    for item in ITEMS:
        try:
            status, text = ANSWERS[item.number](facts)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:   # a file of an unexpected shape
            logger.warning(f"TRIPOD+AI item {item.number}: the study's files could not be read ({exc!r})")
            status, text = AUTHOR, f"The study's files could not be read for this item ({type(exc).__name__})."
        out.append((item, status, text))
    return out


def render(facts: Facts) -> str:
    answered = rows(facts)
    tally = {s: sum(1 for _, st, _ in answered if st == s) for s in STATUSES}
    ext = f"; external: {facts.ext}" if facts.ext else ""
    lines = [f"# TRIPOD+AI checklist: ALFIA study (development: {facts.dev}{ext})", "",
             f"Checklist: {SOURCE}. {len(MAIN_ITEMS)} items, {len(ITEMS)} rows with their sub-items, in the "
             "checklist's numbering; the topic words are ALFIA's short reading of each item, not the checklist's "
             "text (alfia/analysis/tripod.py holds the list and its source).", "",
             f"Status: **{REPORTED}**: the study's files answer the item (file named in the row); **{PARTLY}**: "
             f"they answer part of it; **{AUTHOR}**: nothing the study did answers it. Every number is copied from "
             "the file the row names; paths are relative to this folder, docs/ pages are ALFIA's documentation.", "",
             f"Tally: {tally[REPORTED]} reported, {tally[PARTLY]} partly, {tally[AUTHOR]} for the author.", "",
             "| item | section | topic | D/E | status | what the study reports, and where |",
             "| --- | --- | --- | --- | --- | --- |"]
    for item, status, text in answered:
        lines.append(f"| {item.number} | {item.section} | {_cell(item.topic + ': ' + item.about)} | {item.applies} "
                     f"| {status} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def write_tripod(study: str | os.PathLike | StudyFolder, names: tuple[str, str | None] | None = None,
                 out: str | os.PathLike | None = None) -> Path:
    """Write the TRIPOD+AI checklist of the study folder ``study`` to ``out`` (default ``study/TRIPOD-AI.md``);
    ``names``: its development and external cohorts (default: read from the folder, :func:`study_names`). Every
    file it reads may be absent: its items then say so. Returns the path written."""
    folder = study if isinstance(study, StudyFolder) else StudyFolder(study)
    facts = read_facts(folder, names)
    text = render(facts)
    if out is None:
        folder.save_text(FILE, text)
        return folder / FILE
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


__all__ = ["FILE", "ITEMS", "MAIN_ITEMS", "SOURCE", "STATUSES", "Item", "read_facts", "render", "rows",
           "study_names", "write_tripod"]
