"""Clinical text for the PhysioNet 2012 cohort.

Order: demographics -> admission details -> anthropometrics -> clinical scores -> dynamic assessments (GCS,
SOFA) -> vital signs -> laboratory values -> what was not recorded. The cohort has no lifestyle variables.
Everything except age and height/weight is from the first 24 hours in the unit, which the text says once.
Lowest and highest values are written as one range ("heart rate 58 to 80 bpm") to keep the text short.
"""

from __future__ import annotations

from alfia.text.wording import article, dynamic
from alfia.text.writer import Writer

UNITS = {"Coronary Care Unit": "coronary care unit", "Cardiac Surgery Recovery Unit": "cardiac surgery recovery unit",
         "Medical ICU": "medical intensive care unit", "Surgical ICU": "surgical intensive care unit"}

# (low column, high column, words); None where the cohort keeps only one side
VITALS = (
    ("hr_min", "hr_max", "heart rate"), ("map_min", None, "lowest mean arterial pressure"),
    ("temp_min", "temp_max", "temperature"), (None, "resp_rate_max", "highest respiratory rate"),
    ("pf_ratio_min", None, "lowest {PaO2/FiO2} ratio"), (None, "urine_output", "urine output"),
)
LABS_LOWEST = (("ph_min", "pH"), ("hco3_min", "bicarbonate"), ("platelets_min", "platelets"))
LABS_HIGHEST = (("lactate_max", "lactate"), ("bun_max", "urea nitrogen"), ("creatinine_max", "creatinine"),
                ("wbc_max", "white cells"), ("bilirubin_max", "bilirubin"), ("glucose_max", "glucose"))


def _label(w: Writer, label: str) -> str:
    """Expand the first occurrence of an abbreviation written as {ABBR} in a label."""
    if "{" not in label:
        return label
    head, rest = label.split("{", 1)
    short, tail = rest.split("}", 1)
    return head + (short if w.expanded(short) else w.abbr(short)) + tail


def _short(label: str) -> str:
    """The name used in the not-recorded list: "respiratory rate", not "highest respiratory rate"."""
    for word in ("highest ", "lowest "):
        label = label.removeprefix(word)
    return label.replace("{", "").replace("}", "")


def _measure(w: Writer, low: str | None, high: str | None, label: str) -> str | None:
    if low and high:
        return w.span(low, high, _short(label))
    shown = w.value(low or high)
    if shown is None:
        w.missing.append(_short(label))
        return None
    return f"{_label(w, label)} {shown}"


def _demographics(w: Writer) -> str:
    sex = {"female": "woman", "male": "man"}.get(w.raw("gender"), "patient")
    age = w.num("age")
    who = f"{age}-year-old {sex}" if age is not None else f"{sex} of unrecorded age"
    unit = w.raw("icu_type")
    where = f" admitted to the {UNITS[unit]}" if unit else ""
    return f"{article(who)} {who}{where}."


def _ventilation(w: Writer) -> str | None:
    if not w.has("mech_vent"):
        return None
    return "mechanically ventilated" if w.raw("mech_vent") == 1 else "not ventilated"


def _labs(w: Writer) -> str:
    """Lab values without units (each column's unit is in the schema): units cost ~25 tokens per text."""
    lowest = [w.measure(name, label, unit=False) for name, label in LABS_LOWEST]
    highest = [w.measure(name, label, unit=False) for name, label in LABS_HIGHEST]
    parts = []
    if any(lowest):
        parts.append("lowest " + ", ".join(p for p in lowest if p))
    if any(highest):
        parts.append("highest " + ", ".join(p for p in highest if p))
    return f"Labs: {'; '.join(parts)}." if parts else ""


def describe(w: Writer) -> str:
    body = [
        _demographics(w),
        w.sentence([w.measure("height", "height"), w.measure("weight", "weight"),
                    w.measure("bmi", "body mass index")]),
        w.sentence([w.measure("sirs", f"{w.abbr('SIRS')} criteria"), w.measure("sapsii_approx", w.abbr("SAPS II")),
                    w.measure("oasis_approx", w.abbr("OASIS"))], lead="first 24 hours: "),
        dynamic(w, "gcs", "GCS"),
        dynamic(w, "sofa", "SOFA"),
        w.sentence([_ventilation(w)] + [_measure(w, lo, hi, label) for lo, hi, label in VITALS]),
        _labs(w),
    ]
    return w.join(body + [w.missing_sentence()])
