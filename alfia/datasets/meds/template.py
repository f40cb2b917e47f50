"""The clinical text of a MEDS cohort, whatever its features: the schema derived from the data says what each
column is (its description, unit and aggregate), and this template writes it in a fixed order.

"A 67-year-old woman. Care unit: MICU. In the input window: heart rate 62 to 110 bpm, last 80; creatinine 1.4
mg/dL; urine output 1,450 mL. Not recorded: lactate."

Each feature is named by its description (codes.parquet's, or the concept map's), never by its raw code where a
description exists; a numeric concept is written as its range and last value, a total or a single value as one
number, a category as its last value.
"""

from __future__ import annotations

from alfia.text.writer import Writer

SEX_WORDS = {"F": "woman", "FEMALE": "woman", "M": "man", "MALE": "man"}
SEX_COLUMNS = ("sex", "gender")
AGGREGATE_SUFFIXES = ("_max", "_min", "_first", "_last", "_mean", "_std", "_count")


def words_of(w: Writer, name: str) -> str:
    """A column's description without the statistic in brackets: "heart rate (highest value)" -> "heart rate"."""
    return w.schema[name].description.rsplit(" (", 1)[0]


def _demographics(w: Writer) -> str:
    sex_column = next((c for c in SEX_COLUMNS if c in w.schema.feature_columns), None)
    sex = SEX_WORDS.get(str(w.raw(sex_column)).upper(), "patient") if sex_column else "patient"
    age = w.num("age") if "age" in w.schema.feature_columns else None
    who = f"{age}-year-old {sex}" if age is not None else f"{sex} of unrecorded age"
    return f"{'An' if who[0] in 'aeiou8' else 'A'} {who}."


def _numeric(w: Writer, concept: str) -> str | None:
    """"heart rate 62 to 110 bpm, last 80" (numeric style) or "lowest heart rate low, highest high, last typical"."""
    return w.span_last(f"{concept}_min", f"{concept}_max", f"{concept}_last", words_of(w, f"{concept}_max"))


def describe(w: Writer) -> str:
    features = w.schema.feature_columns
    present = set(features)
    categories, measures = [], []
    sex_column = next((c for c in SEX_COLUMNS if c in present), None)
    for name in features:
        col = w.schema[name]
        if name in ("age", sex_column):
            continue
        if col.kind == "category":
            if w.has(name):
                categories.append(f"{col.description[:1].upper()}{col.description[1:]}: {w.raw(name)}.")
            continue
        if name.endswith("_max") and name.removesuffix("_max") + "_min" in present:
            measures.append(_numeric(w, name.removesuffix("_max")))
        elif name.endswith(AGGREGATE_SUFFIXES) and name.rsplit("_", 1)[0] + "_max" in present:
            continue  # part of a numeric concept written above
        else:
            measures.append(w.measure(name, words_of(w, name)))
    shown = [m for m in measures if m]
    window = f"In the input window: {'; '.join(shown)}." if shown else ""
    return w.join([_demographics(w), *categories, window, w.missing_sentence()])
