"""Clinical text for the CW-24 eICU cohort (paper Figure 1b).

Order: demographics -> admission details (region, unit) -> anthropometrics -> lifestyle and history -> severity
scores -> GCS and SOFA over the first 24 hours -> what was not recorded.
"""

from __future__ import annotations

from alfia.text.wording import article, cw24_text
from alfia.text.writer import Writer

UNITS = {
    "CCU-CTICU": "coronary / cardiothoracic intensive care unit", "CSICU": "cardiac surgery intensive care unit",
    "CTICU": "cardiothoracic intensive care unit", "Cardiac ICU": "cardiac intensive care unit",
    "MICU": "medical intensive care unit", "Med-Surg ICU": "medical-surgical intensive care unit",
    "Neuro ICU": "neurological intensive care unit", "SICU": "surgical intensive care unit",
}
ETHNICITIES = {"African American": "African American", "Asian": "Asian", "Caucasian": "Caucasian",
               "Hispanic": "Hispanic", "Native American": "Native American"}
SCORES = (("apache_iv", "APACHE IV"), ("sapsii", "SAPS II"), ("oasis", "OASIS"))


def _demographics(w: Writer) -> str:
    sex = {"Female": "woman", "Male": "man"}.get(w.raw("gender"), "patient")
    age = w.num("age")
    if age is not None:
        who = f"{age}-year-old {sex}" if float(w.raw("age")) < 90 else f"{sex} aged {age} or older"
    else:
        who = f"{sex} of unrecorded age"
    ethnicity = ETHNICITIES.get(w.raw("ethnicity"))
    who = f"{ethnicity} {who}" if ethnicity and age is None else who
    extra = f" ({ethnicity})" if ethnicity and age is not None else ""
    return f"{article(who)} {who}{extra}."


def _admission(w: Writer) -> str:
    unit = UNITS.get(w.raw("unit_type"))
    region = w.raw("region")
    where = f" in the {region}" if region and region != "Unknown" else ""
    return f"Admitted to a {unit}{where}." if unit else (f"Admitted to a hospital{where}." if where else "")


def _history(w: Writer) -> str:
    smoker = {"Yes": "smoker", "No": "non-smoker"}.get(w.raw("smoker"))
    flags = [label for name, label in (("alcohol_abuse", "alcohol abuse"), ("drug_abuse", "drug abuse"),
                                       ("obesity", "obesity")) if w.has(name) and w.raw(name) == 1]
    parts = [smoker] + ([f"history of {', '.join(flags)}"] if flags else [])
    return w.sentence(parts)


def describe(w: Writer) -> str:
    # the arguments are evaluated in text order, so abbreviations are expanded at their first mention
    return cw24_text(w, _demographics(w), _admission(w), _history(w), SCORES)
