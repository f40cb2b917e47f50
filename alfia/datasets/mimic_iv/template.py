"""Clinical text for the CW-24 MIMIC-IV cohort (paper Figure 1b).

Order: demographics -> admission details -> anthropometrics -> lifestyle -> first-day severity scores -> GCS and
SOFA over the first 24 hours -> what was not recorded. Codes are written in words (no unexpanded abbreviation).
"""

from __future__ import annotations

from alfia.text.wording import article, cw24_text
from alfia.text.writer import Writer

ADMISSION_TYPES = {
    "EW EMER.": "emergency", "URGENT": "urgent", "DIRECT EMER.": "direct emergency",
    "OBSERVATION ADMIT": "observation", "EU OBSERVATION": "emergency-unit observation",
    "DIRECT OBSERVATION": "direct observation", "AMBULATORY OBSERVATION": "ambulatory observation",
    "ELECTIVE": "elective", "SURGICAL SAME DAY ADMISSION": "same-day surgical",
}
CARE_UNITS = {
    "MICU": "medical intensive care unit", "MICU/SICU": "medical/surgical intensive care unit",
    "CVICU": "cardiac vascular intensive care unit", "SICU": "surgical intensive care unit",
    "TSICU": "trauma surgical intensive care unit", "CCU": "coronary care unit",
    "Neuro SICU": "neuro surgical intensive care unit", "Neuro Intermediate": "neuro intermediate unit",
    "Neuro Stepdown": "neuro step-down unit",
}
LOCATIONS = {
    "EMERGENCY ROOM": "from the emergency room", "PHYSICIAN REFERRAL": "on physician referral",
    "TRANSFER FROM HOSPITAL": "transferred from another hospital",
    "WALK-IN/SELF REFERRAL": "as a walk-in or self-referral", "CLINIC REFERRAL": "on clinic referral",
    "PROCEDURE SITE": "from a procedure site", "PACU": "from the post-anesthesia care unit",
    "TRANSFER FROM SKILLED NURSING FACILITY": "transferred from a skilled nursing facility",
    "INTERNAL TRANSFER TO OR FROM PSYCH": "by internal transfer from psychiatry",
    "AMBULATORY SURGERY TRANSFER": "transferred from ambulatory surgery",
}
RACES = {"White": "white", "Black": "Black", "Hispanic/Latino": "Hispanic or Latino", "Asian": "Asian",
         "Other": "of another race"}
SCORES = (("apsiii", "APACHE III"), ("sapsii", "SAPS II"), ("sirs", "SIRS"), ("lods", "LODS"), ("meld", "MELD"),
          ("oasis", "OASIS"))


def _demographics(w: Writer) -> str:
    sex = {"Female": "woman", "Male": "man"}.get(w.raw("gender"), "patient")
    age = w.num("age")
    who = f"{age}-year-old {sex}" if age is not None else f"{sex} of unrecorded age"
    details = []
    race = RACES.get(w.raw("race"))
    if race:
        details.append(race)
    marital = w.raw("marital_status")
    if marital and marital != "Unknown":
        details.append(marital.lower())
    language = w.raw("language")
    if language == "English":
        details.append("English-speaking")
    elif language == "Other":
        details.append("speaking a language other than English")
    insurance = w.raw("insurance")
    if insurance and insurance != "Unknown":
        details.append(f"insurance {insurance}")
    extra = f" ({', '.join(details)})" if details else ""
    return f"{article(who)} {who}{extra}."


def _admission(w: Writer) -> str:
    kind = ADMISSION_TYPES.get(w.raw("admission_type"))
    where = LOCATIONS.get(w.raw("admission_location"))
    unit = CARE_UNITS.get(w.raw("first_careunit"))
    parts = [f"{article(kind)} {kind} admission" if kind else "An admission"]
    if where:
        parts.append(where)
    if unit:
        parts.append(f"to the {unit}")
    return " ".join(parts) + "."


def _lifestyle(w: Writer) -> str:
    words = {1: "yes", 0: "none recorded"}
    parts = [f"smoking {words[int(w.raw('smoker'))]}" if w.has("smoker") else None,
             f"alcohol abuse {words[int(w.raw('alcohol_abuse'))]}" if w.has("alcohol_abuse") else None]
    return w.sentence(parts)


def describe(w: Writer) -> str:
    # the arguments are evaluated in text order, so abbreviations are expanded at their first mention
    return cw24_text(w, _demographics(w), _admission(w), _lifestyle(w), SCORES)
