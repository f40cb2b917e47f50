"""The ``mimic-iv`` schema: the CW-24 variables of MIMIC-IV (paper section 2.1, Table 1).

One row per ICU stay. Demographics and admission characteristics come from the hospital admission and the
patient table; severity scores are mimic-code's first-day scores; the GCS and SOFA statistics summarise every
measurement in the first 24 hours of the ICU stay. The builder fills exactly these columns.
"""

from __future__ import annotations

from alfia.cohorts.schema import Column, Schema

AT_ADMISSION = "at hospital admission (recorded before or at ICU admission)"
FIRST_DAY_SCORE = "first-day score: mimic-code's window from 6 h before to 24 h after ICU admission"
FIRST_DAY = "[ICU admission, ICU admission + 24 h)"

GENDERS = ("Female", "Male")
MARITAL_STATUSES = ("Divorced", "Married", "Single", "Widowed", "Unknown")
RACES = ("White", "Black", "Hispanic/Latino", "Asian", "Other", "Unknown")
INSURANCES = ("Medicaid", "Medicare", "No Charge", "Other", "Private", "Unknown")
LANGUAGES = ("English", "Other", "Unknown")
# admissions.admission_type, spelled as in MIMIC-IV
ADMISSION_TYPES = (
    "EW EMER.", "URGENT", "DIRECT EMER.", "OBSERVATION ADMIT", "EU OBSERVATION", "DIRECT OBSERVATION",
    "AMBULATORY OBSERVATION", "ELECTIVE", "SURGICAL SAME DAY ADMISSION",
)
# admissions.admission_location, spelled as in MIMIC-IV (a missing location is None)
ADMISSION_LOCATIONS = (
    "EMERGENCY ROOM", "PHYSICIAN REFERRAL", "TRANSFER FROM HOSPITAL", "WALK-IN/SELF REFERRAL",
    "CLINIC REFERRAL", "PROCEDURE SITE", "PACU", "TRANSFER FROM SKILLED NURSING FACILITY",
    "INTERNAL TRANSFER TO OR FROM PSYCH", "AMBULATORY SURGERY TRANSFER", "INFORMATION NOT AVAILABLE",
)
# icustays.first_careunit -> the abbreviation used in this schema
CARE_UNITS = {
    "Medical Intensive Care Unit (MICU)": "MICU",
    "Medical/Surgical Intensive Care Unit (MICU/SICU)": "MICU/SICU",
    "Cardiac Vascular Intensive Care Unit (CVICU)": "CVICU",
    "Surgical Intensive Care Unit (SICU)": "SICU",
    "Trauma SICU (TSICU)": "TSICU",
    "Coronary Care Unit (CCU)": "CCU",
    "Neuro Surgical Intensive Care Unit (Neuro SICU)": "Neuro SICU",
    "Neuro Intermediate": "Neuro Intermediate",
    "Neuro Stepdown": "Neuro Stepdown",
}
STATS = ("max", "min", "first", "last", "mean", "std")
_STAT_WORDS = {"max": "maximum", "min": "minimum", "first": "first", "last": "last", "mean": "mean",
               "std": "standard deviation (ddof=1; 0 for a single value)"}


def dynamic_score_columns(window: str = FIRST_DAY) -> tuple[Column, ...]:
    """The 6 GCS and 6 SOFA statistics over every value charted in ``window`` (shared with ``eicu``); the first
    day's highest SOFA is also scored on its own as a severity score."""
    cols = []
    for score, lo, hi, what in (("gcs", 3, 15, "Glasgow Coma Scale total"),
                                ("sofa", 0, 24, "SOFA score")):
        for stat in STATS:
            if stat in ("max", "min", "first", "last"):
                label = "SOFA (max, first day)" if (score, stat) == ("sofa", "max") else None
                cols.append(Column(f"{score}_{stat}", "int", f"{_STAT_WORDS[stat].capitalize()} {what}",
                                   valid=(lo, hi), window=window, label=label))
            else:
                valid = (lo, hi) if stat == "mean" else (0.0, round((hi - lo) / 2**0.5, 1) + 0.1)
                cols.append(Column(f"{score}_{stat}", "float", f"{_STAT_WORDS[stat].capitalize()} of the {what}",
                                   valid=valid, window=window, decimals=1))
    return tuple(cols)


SCHEMA = Schema(
    name="mimic-iv",
    description="MIMIC-IV ICU stays (CW-24): demographics, admission, first-day severity scores, GCS/SOFA statistics",
    columns=(
        Column("gender", "category", "Gender", categories=GENDERS, window=AT_ADMISSION),
        Column("age", "int", "Age at hospital admission (anchor_age + years to admission; capped at 91)",
               unit="years", valid=(18, 91), window=AT_ADMISSION),
        Column("marital_status", "category", "Marital status", categories=MARITAL_STATUSES,
               window=AT_ADMISSION),
        Column("race", "category", "Race, grouped from admissions.race", categories=RACES, window=AT_ADMISSION),
        Column("insurance", "category", "Insurance", categories=INSURANCES, window=AT_ADMISSION),
        Column("language", "category", "Language (English, another language, or unknown '?')",
               categories=LANGUAGES, window=AT_ADMISSION),
        Column("admission_type", "category", "Hospital admission type", categories=ADMISSION_TYPES,
               window=AT_ADMISSION),
        Column("admission_location", "category", "Location before the hospital admission",
               categories=ADMISSION_LOCATIONS, window=AT_ADMISSION),
        Column("first_careunit", "category", "First ICU care unit of the stay (abbreviated)",
               categories=tuple(CARE_UNITS.values()), window="at ICU admission"),
        Column("height", "float", "Height (first-day height)", unit="cm", valid=(100, 250),
               window=FIRST_DAY_SCORE, decimals=0),
        Column("weight", "float", "Weight (first-day weight)", unit="kg", valid=(20, 400),
               window=FIRST_DAY_SCORE, decimals=1),
        Column("smoker", "binary", "Smoker (tobacco use diagnosis)", window=AT_ADMISSION),
        Column("alcohol_abuse", "binary", "Alcohol abuse (diagnosis)", window=AT_ADMISSION),
        Column("apsiii", "int", "APACHE III (acute physiology score III)", unit="points", valid=(0, 299),
               window=FIRST_DAY_SCORE, label="APS III"),
        Column("sapsii", "int", "SAPS II", unit="points", valid=(0, 163), window=FIRST_DAY_SCORE, label="SAPS II"),
        Column("sirs", "int", "SIRS criteria met (0-4)", unit="criteria", valid=(0, 4), window=FIRST_DAY_SCORE,
               label="SIRS"),
        Column("lods", "int", "LODS (logistic organ dysfunction score)", unit="points", valid=(0, 22),
               window=FIRST_DAY_SCORE, label="LODS"),
        Column("meld", "float", "MELD score (mimic-code, MELD-Na where sodium is available)", unit="points",
               valid=(6, 40), window=FIRST_DAY_SCORE, decimals=0, label="MELD"),
        Column("oasis", "int", "OASIS", unit="points", valid=(0, 75), window=FIRST_DAY_SCORE, label="OASIS"),
        *dynamic_score_columns(FIRST_DAY),
    ),
    notes=(
        "Scores are mimic-code's first-day scores, computed from 6 h before to 24 h after ICU admission "
        "(the paper's CW-24 restricts predictors to the first 24 h; the 6 h before admission is mimic-code's "
        "convention).",
        "GCS/SOFA statistics use the values charted in [ICU admission, ICU admission + 24 h).",
        "Out-of-range height/weight (data entry errors) are set to missing by the builder, not clipped.",
        "race, language, admission_type, admission_location and first_careunit are not in the paper's Table 1.",
    ),
)
