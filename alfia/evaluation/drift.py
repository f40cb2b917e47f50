"""How far a stay lies from the data a run was trained on, and where a score would be meaningless.

At the end of training, :func:`build_reference` summarises the train split; ``finish_run`` writes it to
``RUN/reference.json``::

    variables               per feature: kind, missing share, [min, max] (numbers) or the values seen (others)
    missing_per_stay        the share of a stay's variables that are missing: mean, 99th percentile, max
    text                    tokens and words per text (min, median, max), the refusal threshold in words, and
                            the template: sentence openings at least half the training texts have

Every scored stay then gets its warnings (:func:`stay_warnings`), each ``{"kind", "message"}``:

    outside_training_range  variables outside the train split's [min, max] or with a value it never had
    missing_variables       more of the stay's variables missing than in 99% of the training stays
    token_count             a text with fewer or more tokens than any training text
    template                a free text with fewer of the template's sentence openings than 99% of the
                            training texts (texts the run's own encoder wrote follow the template)
    truncated               a text longer than the model reads (its end is not read)
    reference_unavailable   a run trained before reference.json existed: the distance is unknown

A stay with any of the first four is ``out_of_distribution`` (None when the reference is unavailable).
Truncation alone is not: a run whose training texts were cut too has read no further in training either.

Refusal: a text with fewer than :func:`min_words` words is no patient description. The threshold is half the
tokens of the shortest training text, capped at that text's word count so that no training text is refused.
It is counted in words (runs of characters other than space, tab, newline and carriage return), not tokens,
so that the service's JSON schema can state it (:func:`words_pattern`); a word is at least one token (unless it
is made only of characters the tokenizer drops, such as control characters), so a text under the threshold in
tokens is refused too.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import Cohort
from alfia.cohorts.schema import SPLIT
from alfia.errors import AlfiaError
from alfia.run_folder import RunFolder
from alfia.text.stats import token_counts

REFERENCE_FILE = RunFolder.REFERENCE
REFERENCE_VERSION = 1
MISSING_QUANTILE = 0.99   # a stay warns when it misses more variables than this share of the training stays
TEMPLATE_SHARE = 0.5      # a sentence opening belongs to the template when half the training texts have it
TEMPLATE_QUANTILE = 0.01  # a free text warns when it has fewer openings than 99% of the training texts
SHOWN_VARIABLES = 5       # missing variables named in a warning (the ones most often recorded in training)
OUT_OF_DISTRIBUTION = ("outside_training_range", "missing_variables", "token_count", "template")
KINDS = (*OUT_OF_DISTRIBUTION, "truncated", "reference_unavailable", "task")
_WORD = re.compile(r"[^ \t\n\r]+")  # a word: what lies between spaces, tabs, newlines and carriage returns
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DIGITS = re.compile(r"\d+")
_KEY_WORD = re.compile(r"[a-z#]+")


# -- words, tokens and the refusal threshold ---------------------------------------------------------------
def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def words_pattern(n: int) -> str:
    """A regular expression (the same in JSON Schema, Python and Rust) that a text matches exactly when it has at
    least ``n`` words (``n >= 1``). Flat on purpose: generators such as schemathesis draw from it quickly."""
    space, word = r"[ \t\n\r]", r"[^ \t\n\r]"
    return f"^{space}*(?:{word}+{space}+){{{n - 1}}}{word}" if n > 1 else f"^{space}*{word}"


def min_words(reference: dict | None) -> int:
    """The fewest words a text may have to be scored: 1 without a reference."""
    return int(reference["text"]["min_words"]) if reference is not None else 1


# -- the reference, built at training time -----------------------------------------------------------------
def build_reference(cohort: Cohort, texts: list[str], tokenizer) -> dict:
    """The train split's reference (module docstring) from the cohort's features and the run's texts of its rows
    (``texts[i]`` is row ``i``'s text); the same tokenizer as the model's."""
    df = cohort.df
    if len(texts) != len(df):
        raise AlfiaError(f"{len(texts)} texts for {len(df)} stays; pass the run's text of every row")
    train = (df[SPLIT] == "train").to_numpy() if SPLIT in df.columns else np.ones(len(df), dtype=bool)
    if not train.any():
        raise AlfiaError("the cohort has no train rows: the training reference is built on the train split")
    rows = df[train]
    variables = {}
    for col in cohort.schema.columns:
        if col.role != "feature" or col.name not in rows.columns:
            continue
        values = rows[col.name]
        present = values[values.notna()]
        entry: dict = {"kind": col.kind, "missing_share": round(1 - len(present) / len(rows), 4)}
        if col.kind in ("int", "float"):
            numbers = pd.to_numeric(present, errors="coerce").dropna()
            if len(numbers):
                entry.update(min=float(numbers.min()), max=float(numbers.max()))
        else:
            entry["values"] = sorted({_category(v, col.kind) for v in present})
        variables[col.name] = entry
    missing = rows[list(variables)].isna().mean(axis=1).to_numpy() if variables else np.zeros(len(rows))
    train_texts = [t for t, keep in zip(texts, train, strict=True) if keep]
    tokens = token_counts(tokenizer, train_texts)
    words = np.array([count_words(t) for t in train_texts])
    return {
        "version": REFERENCE_VERSION, "schema": cohort.schema.name, "train_stays": int(train.sum()),
        "variables": variables,
        "missing_per_stay": {"mean": round(float(missing.mean()), 4),
                             "p99": round(float(np.quantile(missing, MISSING_QUANTILE)), 4),
                             "max": round(float(missing.max()), 4)},
        "text": {"tokens": _spread(tokens), "words": _spread(words),
                 "min_words": max(1, min(int(tokens.min()) // 2, int(words.min()))),
                 "template": _template(train_texts)},
    }


def load_reference(folder: str | Path) -> dict | None:
    """A run's reference.json; None for a run trained before it existed."""
    path = RunFolder(folder) / REFERENCE_FILE
    if not path.exists():
        return None
    try:
        reference = json.loads(path.read_text())
        if reference.get("version") != REFERENCE_VERSION or not {"variables", "missing_per_stay",
                                                                 "text"} <= set(reference):
            raise ValueError("unknown layout")
    except (OSError, ValueError, AttributeError) as exc:
        raise AlfiaError(f"cannot read {path} ({type(exc).__name__}: {exc}); finish the run again "
                         "(alfia train --resume) to rewrite it") from None
    return reference


def _spread(values: np.ndarray) -> dict:
    return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}


def _category(value, kind: str):
    """A category's value as the reference keeps it: 0/1 for binary variables, text otherwise."""
    return int(float(value)) if kind == "binary" else str(value)


def _key_words(text: str) -> list[str]:
    """Lower-case words with every number written '#': "First 24 hours:" -> ["first", "#", "hours"]."""
    return _KEY_WORD.findall(_DIGITS.sub("#", text.lower()))


def _has_opening(text_words: str, key: str) -> bool:
    return f" {key} " in text_words


def _template(texts: list[str]) -> dict:
    """The sentence openings (first two words) at least ``TEMPLATE_SHARE`` of the texts have, each with how it
    was first written, and the fewest of them that 99% of the texts contain."""
    counts: Counter = Counter()
    written: dict[str, str] = {}
    for text in texts:
        keys = set()
        for sentence in _SENTENCE_END.split(text.strip()):
            words = _key_words(sentence)
            if len(words) >= 2:
                key = " ".join(words[:2])
                keys.add(key)
                written.setdefault(key, " ".join(sentence.split()[:2]).replace(";", ","))
        counts.update(keys)
    keys = sorted(k for k, c in counts.items() if c >= TEMPLATE_SHARE * len(texts))
    found = [_openings_found(text, keys) for text in texts]
    return {"openings": [{"key": k, "written": written[k]} for k in keys],
            "found_p01": int(np.floor(np.quantile(found, TEMPLATE_QUANTILE))) if keys else 0}


def _openings_found(text: str, keys: list[str]) -> int:
    words = f" {' '.join(_key_words(text))} "
    return sum(_has_opening(words, k) for k in keys)


# -- warnings per stay ---------------------------------------------------------------------------------------
def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _number(x: float) -> str:
    return f"{x:g}"


def record_warnings(reference: dict, record: Mapping) -> list[dict]:
    """Variables outside the training range, and more variables missing than in 99% of the training stays."""
    out = []
    variables = reference["variables"]
    outside, absent = [], []
    for name, ref in variables.items():
        value = record.get(name)
        if _missing(value):
            absent.append(name)
        elif "min" in ref and not ref["min"] <= float(value) <= ref["max"]:
            outside.append(f"{name} {_number(float(value))} (training {_number(ref['min'])} to "
                           f"{_number(ref['max'])})")
        elif "values" in ref and _category(value, ref["kind"]) not in ref["values"]:
            outside.append(f"{name} '{str(value).replace(';', ',')}' (never in the training split)")
    if outside:
        out.append({"kind": "outside_training_range",
                    "message": "outside the training split's range: " + ", ".join(outside)})
    share = len(absent) / len(variables) if variables else 0.0
    usual = reference["missing_per_stay"]["p99"]
    if share > usual:
        often = sorted(absent, key=lambda n: (variables[n]["missing_share"], n))[:SHOWN_VARIABLES]
        out.append({"kind": "missing_variables",
                    "message": f"{len(absent)} of {len(variables)} variables not recorded ({share:.0%}), against "
                               f"at most {usual:.0%} for 99% of the training stays (not recorded here, but almost "
                               f"always in training: {', '.join(often)})"})
    return out


def text_warnings(reference: dict | None, tokens: int, max_tokens: int, free_text: str | None = None) -> list[dict]:
    """Token count outside the training texts' range, the template's sentence openings missing (``free_text``: a
    text not written by the run's encoder), truncation."""
    out = []
    if reference is not None:
        spread = reference["text"]["tokens"]
        if not spread["min"] <= tokens <= spread["max"]:
            out.append({"kind": "token_count",
                        "message": f"the text has {tokens} tokens, outside the training texts' {spread['min']} "
                                   f"to {spread['max']}"})
        template = reference["text"]["template"]
        keys = [o["key"] for o in template["openings"]]
        if free_text is not None and keys:
            found = f" {' '.join(_key_words(free_text))} "
            lacking = [o["written"] for o in template["openings"] if not _has_opening(found, o["key"])]
            if len(keys) - len(lacking) < template["found_p01"]:
                out.append({"kind": "template",
                            "message": f"written unlike the training texts: {len(keys) - len(lacking)} of the "
                                       f"template's {len(keys)} usual sentence openings found (missing: "
                                       + ", ".join(f"'{w}'" for w in lacking) + ")"})
    if tokens > max_tokens:
        out.append({"kind": "truncated",
                    "message": f"the text has {tokens} tokens; the model reads the first {max_tokens}, the rest "
                               "was not read"})
    return out


def task_mismatch(run_task, cohort) -> dict | None:
    """The warning for stays scored under another task than the run's (:class:`alfia.cohorts.task.Task`): e.g. a
    run trained on death in the ICU scoring stays labelled with death in hospital. None when the tasks agree, or
    when the cohort neither carries outcomes nor names its task (new stays: they are scored for the run's task)."""
    if "task" not in cohort.info and cohort.label not in cohort.df.columns:
        return None
    how = run_task.differs(cohort.task)
    if not how:
        return None
    return {"kind": "task", "message": f"the run was trained for {run_task.name!r} ({run_task.title}); these stays "
                                       f"are of {how}, so the probabilities are not of their outcome"}


def unavailable() -> dict:
    return {"kind": "reference_unavailable",
            "message": f"the run has no training reference ({REFERENCE_FILE}: it was trained before ALFIA kept "
                       "one), so how far this stay lies from the training data is not known"}


def stay_warnings(reference: dict | None, texts: list[str], tokens: Iterable[int], max_tokens: int,
                  records: pd.DataFrame | list[Mapping] | None = None, free_text: bool = False) -> list[list[dict]]:
    """Every stay's warnings: ``records`` (a cohort table or dicts, one per stay; None for texts alone) are
    checked against the variables, ``texts`` and their ``tokens`` against the texts; ``free_text``: the texts
    were not written by the run's encoder, so they are checked against its template too."""
    if isinstance(records, pd.DataFrame):   # one row's dict at a time: a cohort's dicts would cost ~10 kB a stay
        columns = list(records.columns)
        rows = (dict(zip(columns, values, strict=True)) for values in records.itertuples(index=False, name=None))
    else:
        rows = iter(records) if records is not None else None
    out = []
    for text, n in zip(texts, tokens, strict=True):
        warned = [unavailable()] if reference is None else []
        row = next(rows) if rows is not None else None
        if reference is not None and row is not None:
            warned += record_warnings(reference, row)
        warned += text_warnings(reference, int(n), max_tokens, text if free_text else None)
        out.append(warned)
    return out


def out_of_distribution(warnings: list[dict], reference: dict | None) -> bool | None:
    if reference is None:
        return None
    return any(w["kind"] in OUT_OF_DISTRIBUTION for w in warnings)


# -- as table columns (alfia predict) and their counts (the report) ------------------------------------------
def warning_columns(warnings: list[list[dict]], reference: dict | None) -> dict:
    """``warnings`` ("kind: message" entries joined by "; ", empty when none) and ``out_of_distribution``
    (missing when the run has no reference)."""
    return {"warnings": pd.array(["; ".join(f"{w['kind']}: {w['message']}" for w in ws) for ws in warnings],
                                 dtype="string"),
            "out_of_distribution": pd.array([out_of_distribution(ws, reference) for ws in warnings],
                                            dtype="boolean")}


def kinds_of(column: Iterable[str]) -> list[set[str]]:
    """The warning kinds of each stay, read back from a ``warnings`` column."""
    return [{part.split(": ", 1)[0] for part in str(cell).split("; ") if part}
            if isinstance(cell, str) else set() for cell in column]


def count_kinds(kinds: list[set[str]]) -> dict[str, int]:
    """Stays with each warning kind (every kind, zeros included, in a fixed order)."""
    return {kind: sum(kind in k for k in kinds) for kind in KINDS}


def describe_warnings(table: pd.DataFrame) -> str:
    """One line for a predictions table: how many stays carry a warning, and of which kinds."""
    kinds = kinds_of(table["warnings"])
    counts = {k: n for k, n in count_kinds(kinds).items() if n}
    ood = table["out_of_distribution"]
    where = "unknown (the run has no reference.json)" if ood.isna().all() else f"{int(ood.sum()):,}"
    return (f"warnings: {sum(bool(k) for k in kinds):,} of {len(table):,} stays ("
            + (", ".join(f"{k} {n:,}" for k, n in counts.items()) or "none") + f"); out of distribution: {where}")
