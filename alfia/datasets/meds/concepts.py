"""Which MEDS codes become which features: a concept map (``--concepts FILE``) or the codes found in the data.

A concept map is a CSV file, one row per code pattern::

    code,concept,unit,description,aggregate,scale,shift,valid_min,valid_max
    LAB//220045//.*,hr,bpm,heart rate,stats,,,0,300
    LAB//223761//.*,temp,C,temperature,stats,0.5555555556,-17.7777777778,32,42
    GENDER//(.*),sex,,sex,category,,,,

``code`` is a regular expression matched against the whole code (``re.fullmatch``; the first matching row wins);
``value * scale + shift`` converts a code's unit into the concept's (empty: 1 and 0); values outside
``[valid_min, valid_max]`` are set to missing and counted. ``aggregate`` says what the concept becomes:

- ``stats``: the CW-24 aggregates of :func:`alfia.cohorts.sqldb.dynamic_stats` (highest, lowest, first, last, mean,
  standard deviation of the values in the input window) and ``count`` (how many values): ``{concept}_max`` ...
  ``{concept}_count``;
- ``sum``: the total over the window (e.g. urine output): ``{concept}_total``;
- ``first`` / ``last``: one value, static rows first, then in time order (e.g. height, weight): ``{concept}``;
- ``category``: the last value of the pattern's first capture group (static rows first): ``{concept}``; a pattern
  without a group takes the event's ``text_value``, which is read only with ``--text-values``.

Other columns (``source``, ``note``) are kept for people. Without a map, :func:`derived_concepts` makes one from the
codes of the training split's windows.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from alfia.cohorts.sqldb import STATS
from alfia.errors import AlfiaError

AGGREGATES = ("stats", "sum", "first", "last", "category")
STAT_WORDS = {"max": "highest value", "min": "lowest value", "first": "first value", "last": "last value",
              "mean": "mean value", "std": "standard deviation (ddof=1; 0 for one value)",
              "count": "number of values"}
SUFFIXES = (*STATS, "count", "total")
# the columns a cohort keeps besides its features (and what no concept may be called)
RESERVED = frozenset({"stay_id", "split", "text", "subject_id", "prediction_time", "age"})
NAME = re.compile(r"[a-z][a-z0-9_]*")
COLUMNS = ("code", "concept", "unit", "description", "aggregate", "scale", "shift", "valid_min", "valid_max")


@dataclass(frozen=True)
class Concept:
    """One feature group: a clinical concept and what it becomes in the cohort."""

    name: str
    words: str  # how the text and the service name it
    aggregate: str
    unit: str | None = None
    valid: tuple[float, float] | None = None
    codes: tuple[str, ...] = ()  # the patterns (a map) or exact codes (derived) that feed it

    def columns(self) -> list[tuple[str, str]]:
        """(column name, statistic) in cohort order: ``stat`` is one of STATS, count, total or the aggregate."""
        if self.aggregate == "stats":
            return [(f"{self.name}_{s}", s) for s in (*STATS, "count")]
        if self.aggregate == "sum":
            return [(f"{self.name}_total", "total")]
        return [(self.name, self.aggregate)]

    def to_dict(self) -> dict:
        return {"name": self.name, "words": self.words, "aggregate": self.aggregate, "unit": self.unit,
                "valid": list(self.valid) if self.valid else None, "codes": list(self.codes)}

    @classmethod
    def from_dict(cls, data: dict) -> Concept:
        return cls(name=data["name"], words=data["words"], aggregate=data["aggregate"], unit=data.get("unit"),
                   valid=tuple(data["valid"]) if data.get("valid") else None, codes=tuple(data.get("codes", ())))


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern
    concept: str
    scale: float = 1.0
    shift: float = 0.0


@dataclass
class ConceptMap:
    """Rules (first match wins) and the concepts they feed, in the order the cohort shows them."""

    concepts: list[Concept]
    rules: list[Rule]
    source: str  # the file, or how the concepts were chosen
    _matched: dict[str, tuple[Rule, str | None] | None] = field(default_factory=dict, repr=False)

    def match(self, code: str) -> tuple[Rule, str | None] | None:
        """The rule of ``code`` and, for a category, the value its capture group holds; None: not a feature."""
        if code not in self._matched:
            found = None
            for rule in self.rules:
                m = rule.pattern.fullmatch(code)
                if m:
                    found = (rule, m.group(1) if rule.pattern.groups else None)
                    break
            self._matched[code] = found
        return self._matched[code]

    def code_table(self, codes) -> list[tuple[str, str, float, float, str | None]]:
        """(code, concept, scale, shift, category value) of every code that feeds a concept."""
        rows = []
        for code in codes:
            found = self.match(code)
            if found is not None:
                rule, value = found
                rows.append((code, rule.concept, rule.scale, rule.shift, value))
        return rows

    def text_concepts(self) -> list[str]:
        """Category concepts whose value is the event's text_value (a pattern without a capture group)."""
        return sorted({r.concept for r in self.rules if not r.pattern.groups
                       and next(c for c in self.concepts if c.name == r.concept).aggregate == "category"})

    def to_dict(self) -> dict:
        return {"source": self.source, "concepts": [c.to_dict() for c in self.concepts],
                "rules": [{"code": r.pattern.pattern, "concept": r.concept, "scale": r.scale, "shift": r.shift}
                          for r in self.rules]}

    @classmethod
    def from_dict(cls, data: dict) -> ConceptMap:
        try:
            return cls(concepts=[Concept.from_dict(c) for c in data["concepts"]],
                       rules=[Rule(re.compile(r["code"]), r["concept"], float(r["scale"]), float(r["shift"]))
                              for r in data["rules"]], source=str(data["source"]))
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise AlfiaError(f"the MEDS feature definition in the cohort file is not readable ({exc}); build the "
                             "cohort again with `alfia cohort meds`") from None

    def digest(self) -> str:
        """8 hex digits naming the features (the derived schema's name: meds-<digest>)."""
        text = repr([(c.name, c.aggregate, c.unit, c.valid) for c in self.concepts])
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def read_concept_map(path: str | Path) -> ConceptMap:
    """A concept map CSV file (see the module docstring), checked row by row."""
    path = Path(path)
    if not path.is_file():
        raise AlfiaError(f"concept map {path} does not exist; pass a CSV file with columns {', '.join(COLUMNS[:5])}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("code", "concept", "aggregate") if c not in (reader.fieldnames or [])]
        if missing:
            raise AlfiaError(f"concept map {path} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                             f"its columns are {', '.join(COLUMNS)}")
        rows = list(reader)
    concepts: dict[str, Concept] = {}
    rules = []
    for line, row in enumerate(rows, start=2):
        where = f"concept map {path}, line {line}"
        name, aggregate = (row.get("concept") or "").strip(), (row.get("aggregate") or "").strip()
        if not NAME.fullmatch(name) or name in RESERVED or name.endswith(tuple(f"_{s}" for s in SUFFIXES)):
            raise AlfiaError(f"{where}: concept {name!r} must be lower-case letters, digits and _ , not one of "
                             f"{', '.join(sorted(RESERVED))} and not end in _{'/_'.join(SUFFIXES)}")
        if aggregate not in AGGREGATES:
            raise AlfiaError(f"{where}: aggregate {aggregate!r} is not one of {', '.join(AGGREGATES)}")
        try:
            pattern = re.compile((row.get("code") or "").strip())
        except re.error as exc:
            raise AlfiaError(f"{where}: code pattern is not a regular expression ({exc})") from None
        scale, shift = _number(row, "scale", 1.0, where), _number(row, "shift", 0.0, where)
        lo, hi = _number(row, "valid_min", None, where), _number(row, "valid_max", None, where)
        valid = None if lo is None and hi is None else (-math.inf if lo is None else lo, math.inf if hi is None else hi)
        concept = Concept(name=name, words=(row.get("description") or name.replace("_", " ")).strip(),
                          aggregate=aggregate, unit=(row.get("unit") or "").strip() or None, valid=valid)
        known = concepts.get(name)
        if known is not None and (known.aggregate, known.unit, known.valid) != (concept.aggregate, concept.unit,
                                                                                 concept.valid):
            raise AlfiaError(f"{where}: concept {name!r} is declared again with another aggregate, unit or range; "
                             "give every row of a concept the same ones")
        concepts[name] = Concept(name, (known or concept).words, aggregate, concept.unit, valid,
                                 (*(known.codes if known else ()), pattern.pattern))
        rules.append(Rule(pattern, name, scale, shift))
    if not rules:
        raise AlfiaError(f"concept map {path} has no rows; add one row per code pattern")
    return ConceptMap(concepts=list(concepts.values()), rules=rules, source=str(path))


def _number(row: dict, column: str, default, where: str):
    text = (row.get(column) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise AlfiaError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise AlfiaError(f"{where}: {column} must be a finite number")
    return value


def column_name(text: str, taken: set[str]) -> str:
    """A column name from a description or code ("Heart Rate" -> heart_rate), unique among ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "code"
    if not base[0].isalpha():
        base = f"c_{base}"
    base = base[:48].rstrip("_")
    if base in RESERVED or base.endswith(tuple(f"_{s}" for s in SUFFIXES)):
        base = f"{base}_value"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def code_unit(code: str) -> str | None:
    """The unit a code carries as its last part in MIMIC-IV-MEDS's style (``LAB//220045//bpm``), else None."""
    parts = code.split("//")
    last = parts[-1].strip() if len(parts) >= 3 else ""
    return last if last and not last.isdigit() and len(last) <= 16 and last.upper() != "UNK" else None


def derived_concepts(numeric: list[str], categorical: dict[str, list[str]], descriptions: dict[str, str],
                     source: str) -> ConceptMap:
    """A concept map of the codes chosen from the data: each numeric code its own ``stats`` concept (named and
    written by its description in codes.parquet, else by the code), each categorical prefix (``GENDER`` of
    ``GENDER//F``) a ``category`` concept of its values."""
    taken: set[str] = set(RESERVED)
    concepts, rules = [], []
    for prefix, codes in categorical.items():
        name = column_name(prefix, taken)
        words = re.sub(r"\b(icu|ed|icd|drg)\b", lambda m: m.group(1).upper(), prefix.replace("_", " ").lower())
        concepts.append(Concept(name, words, "category", codes=tuple(codes)))
        # every value of the prefix (a later cohort's new value is then counted as unknown, not silently lost);
        # a prefix becomes a category only when none of its codes carries a number
        rules.append(Rule(re.compile(f"{re.escape(prefix)}//(.*)"), name))
    for code in numeric:
        words = descriptions.get(code) or code
        name = column_name(words, taken)
        concepts.append(Concept(name, _words(words), "stats", unit=code_unit(code), codes=(code,)))
        rules.append(Rule(re.compile(re.escape(code)), name))
    return ConceptMap(concepts=concepts, rules=rules, source=source)


def _words(description: str) -> str:
    """A description as the text writes it: "Heart Rate" -> "heart rate"; acronyms (2+ capitals) kept."""
    return " ".join(w if sum(ch.isupper() for ch in w) > 1 else w.lower() for w in description.split())
