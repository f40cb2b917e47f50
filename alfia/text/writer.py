"""The sentence writer the per-schema templates use: number rounding, units, band words, abbreviations
expanded once, and one consistent rule for missing values (omitted where they occur, then listed once at the
end as "not recorded").

A template only says *what* to write; the writer decides *how* a value is shown in each text style:
``numeric`` writes "lactate 4.2 mmol/L", ``banded`` writes "lactate high" with cut points fitted on the
training split.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

from alfia.cohorts.schema import Schema

BANDS = ("very low", "low", "typical", "high", "very high")
# Quantiles of the training split that separate the five bands.
BAND_QUANTILES = (0.05, 0.25, 0.75, 0.95)

ABBREVIATIONS = {
    "GCS": "Glasgow Coma Scale",
    "SOFA": "Sequential Organ Failure Assessment",
    "SAPS II": "Simplified Acute Physiology Score II",
    "OASIS": "Oxford Acute Severity of Illness Score",
    "SIRS": "Systemic Inflammatory Response Syndrome",
    "APACHE III": "Acute Physiology and Chronic Health Evaluation III",
    "APACHE IV": "Acute Physiology and Chronic Health Evaluation IV",
    "LODS": "Logistic Organ Dysfunction Score",
    "MELD": "Model for End-Stage Liver Disease",
    "BMI": "body mass index",
    "ICU": "intensive care unit",
    "MAP": "mean arterial pressure",
    "BUN": "blood urea nitrogen",
    "WBC": "white blood cell count",
    "PaO2/FiO2": "ratio of arterial oxygen tension to inspired oxygen fraction",
    "HCO3": "bicarbonate",
    "SD": "standard deviation",
}


def format_number(value: float, decimals: int) -> str:
    """Round half away from zero to ``decimals`` places; never prints "-0"."""
    scaled = abs(value) * 10**decimals
    rounded = math.floor(scaled + 0.5) / 10**decimals
    if rounded == 0:
        return f"{0:.{decimals}f}"
    return f"{math.copysign(rounded, value):.{decimals}f}"


def band_of(value: float, cuts: Iterable[float]) -> str:
    """The band word of ``value`` given four ascending cut points (a value equal to a cut is in the lower band)."""
    return BANDS[bisect.bisect_left(list(cuts), value)]


class Writer:
    """Writes one stay. Create one per text: it remembers which abbreviations it has already expanded."""

    def __init__(self, row: Mapping, schema: Schema, style: str, cuts: Mapping[str, list[float]]):
        self.row = row
        self.schema = schema
        self.style = style
        self.cuts = cuts
        self._expanded: set[str] = set()
        self.missing: list[str] = []
        self.numbers: list[tuple[str, str]] = []  # (column, number as written): lets tests parse texts back

    # -- values ---------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        value = self.row[name]
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    def raw(self, name: str):
        return self.row[name] if self.has(name) else None

    def num(self, name: str) -> str | None:
        """The rounded number alone (both styles), or None when missing."""
        if not self.has(name):
            return None
        text = format_number(float(self.row[name]), self.schema[name].text_decimals)
        self.numbers.append((name, text))
        return text

    def value(self, name: str) -> str | None:
        """The value as this style shows it: "4.2 mmol/L" (numeric) or "high" (banded); None when missing."""
        if not self.has(name):
            return None
        if self.style == "banded" and name in self.cuts:
            return band_of(float(self.row[name]), self.cuts[name])
        unit = self.schema[name].unit
        number = self.num(name)
        return f"{number} {unit}" if unit and unit not in ("points", "score") else number

    def measure(self, name: str, label: str) -> str | None:
        """"label value", or None (and ``label`` noted as not recorded) when the value is missing."""
        shown = self.value(name)
        if shown is None:
            self.missing.append(label)
            return None
        return f"{label} {shown}"

    # -- words ----------------------------------------------------------------------------------
    def abbr(self, short: str) -> str:
        """"Glasgow Coma Scale (GCS)" the first time in this text, then "GCS"."""
        if short in self._expanded:
            return short
        self._expanded.add(short)
        return f"{ABBREVIATIONS[short]} ({short})"

    @staticmethod
    def sentence(parts: Iterable[str | None], lead: str = "") -> str:
        """Join the present parts into one sentence; "" when none is present."""
        present = [p for p in parts if p]
        if not present:
            return ""
        body = lead + ", ".join(present)
        return body[0].upper() + body[1:] + "."

    def missing_sentence(self) -> str:
        if not self.missing:
            return ""
        return "Not recorded in the first 24 hours: " + ", ".join(self.missing) + "."

    @staticmethod
    def join(sentences: Iterable[str]) -> str:
        return " ".join(s for s in sentences if s)
