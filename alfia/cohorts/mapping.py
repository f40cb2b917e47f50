"""External validation across schemas (paper section 3.3, Figure 5a-b): a cohort of another schema is mapped onto
the training schema through a declared feature mapping.

- A variable both schemas hold is mapped by meaning and unit (each link below is declared by hand, with its
  category translation; a value with no counterpart, or outside the target's valid range, becomes missing and is
  counted).
- A variable the target schema has and the source lacks is imputed with its mode on the training cohort's train
  split, as the paper did; it is then written into the text as a real value would be, so every imputed variable
  is listed in the mapping report that travels with the cohort (``cohort.info["mapping"]``).
- A source that shares fewer than half of the training schema's features is refused: too little of what the
  model learned from would be real.

Declared: MIMIC-IV -> eICU and eICU -> MIMIC-IV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.schema import ID, LABEL, SPLIT
from alfia.cohorts.schemas.mimic_iv import STATS
from alfia.errors import AlfiaError

MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class Link:
    """The target variable ``target`` read from the source variable ``source``; ``values`` translates
    categories (a source value not listed becomes missing)."""

    target: str
    source: str
    values: dict | None = None
    note: str = ""


@dataclass(frozen=True)
class FeatureMapping:
    source: str
    target: str
    links: tuple[Link, ...] = field(default=())


def _same(*names: str) -> tuple[Link, ...]:
    return tuple(Link(n, n) for n in names)


DYNAMIC = tuple(f"{score}_{stat}" for score in ("gcs", "sofa") for stat in STATS)
SAME_MEANING = ("age", "height", "weight", "alcohol_abuse", "sapsii", "oasis", *DYNAMIC)

RACE_TO_ETHNICITY = {"White": "Caucasian", "Black": "African American", "Hispanic/Latino": "Hispanic",
                     "Asian": "Asian", "Other": "Other/Unknown", "Unknown": "Unknown"}
ETHNICITY_TO_RACE = {"Caucasian": "White", "African American": "Black", "Hispanic": "Hispanic/Latino",
                     "Asian": "Asian", "Native American": "Other", "Other/Unknown": "Other", "Unknown": "Unknown"}
CAREUNIT_TO_UNIT_TYPE = {"MICU": "MICU", "SICU": "SICU", "MICU/SICU": "Med-Surg ICU", "CCU": "Cardiac ICU",
                         "CVICU": "CTICU", "TSICU": "SICU", "Neuro SICU": "Neuro ICU",
                         "Neuro Intermediate": "Neuro ICU", "Neuro Stepdown": "Neuro ICU"}
UNIT_TYPE_TO_CAREUNIT = {"MICU": "MICU", "SICU": "SICU", "Med-Surg ICU": "MICU/SICU", "Cardiac ICU": "CCU",
                         "CCU-CTICU": "CCU", "CTICU": "CVICU", "CSICU": "CVICU", "Neuro ICU": "Neuro SICU"}

MAPPINGS = {
    ("mimic-iv", "eicu"): FeatureMapping("mimic-iv", "eicu", (
        *_same("gender", *SAME_MEANING),
        Link("ethnicity", "race", RACE_TO_ETHNICITY, "MIMIC-IV race groups as eICU ethnicities"),
        Link("unit_type", "first_careunit", CAREUNIT_TO_UNIT_TYPE,
             "care unit by its kind (TSICU as SICU, neuro units as Neuro ICU)"),
        Link("smoker", "smoker", {0: "No", 1: "Yes"}, "tobacco-use diagnosis as current smoker; missing stays "
             "missing"),
    )),
    ("eicu", "mimic-iv"): FeatureMapping("eicu", "mimic-iv", (
        *_same(*SAME_MEANING),
        Link("gender", "gender", {"Female": "Female", "Male": "Male"}, "Unknown becomes missing"),
        Link("race", "ethnicity", ETHNICITY_TO_RACE, "Native American joins Other"),
        Link("first_careunit", "unit_type", UNIT_TYPE_TO_CAREUNIT,
             "unit kind as the MIMIC-IV care unit (CCU-CTICU as CCU, cardiac surgery units as CVICU)"),
        Link("smoker", "smoker", {"No": 0, "Yes": 1}, "Unknown becomes missing"),
    )),
}


def declared_mapping(source: str, target: str) -> FeatureMapping:
    if (source, target) not in MAPPINGS:
        known = ", ".join(f"{a} -> {b}" for a, b in MAPPINGS)
        raise AlfiaError(f"no feature mapping is declared from schema {source!r} to {target!r} (declared: {known}); "
                         "predict on a cohort of the training schema")
    return MAPPINGS[(source, target)]


def training_modes(training: Cohort, names: list[str]) -> dict:
    """The most frequent value of each variable on the train split (the smallest one on a tie; None when the
    variable is never recorded there)."""
    train = training.df[training.df[SPLIT] == "train"]
    modes = {}
    for name in names:
        mode = train[name].dropna().mode()
        value = mode.iloc[0] if len(mode) else None
        modes[name] = value.item() if isinstance(value, np.generic) else value
    return modes


def map_cohort(cohort: Cohort, training: Cohort, mapping: FeatureMapping | None = None) -> Cohort:
    """``cohort`` written in the schema of ``training``; the report is ``info["mapping"]``."""
    target = training.schema
    mapping = mapping or declared_mapping(cohort.schema.name, target.name)
    features = target.feature_columns
    linked = [link.target for link in mapping.links]
    if len(linked) < MIN_OVERLAP * len(features):
        raise AlfiaError(f"the cohort (schema {cohort.schema.name!r}) shares only {len(linked)} of the "
                         f"{len(features)} features of the training schema {target.name!r}, fewer than half: "
                         "the model would read mostly imputed values; validate on a cohort closer to the training "
                         "data")
    src = cohort.df
    df = pd.DataFrame({ID: src[ID].to_numpy(), LABEL: src[LABEL].to_numpy()})
    mapped = []
    for link in mapping.links:
        col = target[link.target]
        values = src[link.source]
        if link.values is not None:
            values = values.map(lambda v, table=link.values: table.get(v) if pd.notna(v) else None)
        if col.kind == "category":
            values = values.astype(object).where(values.notna(), None)
            untranslated = int((src[link.source].notna() & values.isna()).sum())
            outside = 0
        else:
            values = pd.to_numeric(values, errors="coerce").astype("float64")
            untranslated = int((src[link.source].notna() & values.isna()).sum())
            lo, hi = col.valid if col.valid is not None else (-np.inf, np.inf)
            bad = values.notna() & ((values < lo) | (values > hi))
            outside = int(bad.sum())
            values = values.where(~bad)
        df[link.target] = values.to_numpy()
        mapped.append({"variable": link.target, "from": link.source, "note": link.note,
                       "set_missing": untranslated + outside})
    imputed_names = [n for n in features if n not in linked]
    modes = training_modes(training, imputed_names)
    for name in imputed_names:
        df[name] = modes[name]
    for name in target.reference_columns:  # never a model input: nothing to carry over
        df[name] = np.nan
    df[SPLIT] = src[SPLIT].to_numpy()
    df = df[target.required_columns]
    report = {"source_schema": cohort.schema.name, "target_schema": target.name,
              "shared": f"{len(linked)} of {len(features)} features", "mapped": mapped,
              "imputed": [{"variable": n, "value": modes[n], "from": "mode of the training cohort's train split"}
                          for n in imputed_names]}
    info = {**cohort.info, "schema": target.name, "mapping": report}
    info.pop("text_encoder", None)  # the source's texts are not the target's
    return Cohort(df=target.validate(df, where="mapped cohort"), schema=target, info=info)


def describe(report: dict) -> str:
    """The mapping report as lines for a terminal."""
    lines = [f"mapped schema {report['source_schema']} onto {report['target_schema']}: {report['shared']} shared"]
    for m in report["mapped"]:
        extra = f" ({m['note']})" if m["note"] else ""
        lost = f"; {m['set_missing']} values without a counterpart set missing" if m["set_missing"] else ""
        lines.append(f"  mapped  {m['variable']} <- {m['from']}{extra}{lost}")
    for m in report["imputed"]:
        lines.append(f"  imputed {m['variable']} = {m['value']!r} (mode of the training cohort; written into "
                     "the text as a recorded value)")
    return "\n".join(lines)


def for_run(run, cohort: Cohort, training: Cohort | None) -> Cohort:
    """``cohort`` as the run reads it: unchanged in the run's schema, else mapped onto it (needs the run's
    training cohort, for the modes)."""
    from pathlib import Path

    from alfia.text.encoder import TextEncoder

    if not (Path(run) / "encoder.json").exists():  # a run trained on given texts reads them as they are
        return cohort
    schema = TextEncoder.load(Path(run) / "encoder.json").schema_name
    if cohort.schema.name == schema:
        return cohort
    if training is None:
        raise AlfiaError(f"the cohort is schema {cohort.schema.name!r}, the run {schema!r}: pass the run's training "
                         "cohort with --training-cohort to map it (docs/serving.md, external validation)")
    if training.schema.name != schema:
        raise AlfiaError(f"the training cohort is schema {training.schema.name!r}, the run {schema!r}")
    return map_cohort(cohort, training)
