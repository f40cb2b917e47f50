"""The ``eicu`` schema: the CW-24 variables of the eICU Collaborative Research Database (paper Table 2).

One row per ICU stay (``patientunitstayid``). Demographics come from the patient and hospital tables, APACHE IV
from ``apachepatientresult``, SAPS II and OASIS are computed over the first 24 hours, and the GCS and SOFA
statistics summarise every value in the first 24 hours of the ICU stay.
"""

from __future__ import annotations

from alfia.cohorts.schema import Column, Schema
from alfia.datasets.mimic_iv.schema import FIRST_DAY, dynamic_score_columns

AT_ADMISSION = "at ICU admission"
FIRST_DAY_SCORE = "first-day score: worst values in the first 24 h of the ICU stay"

REGIONS = ("Midwest", "Northeast", "South", "West", "Unknown")
ETHNICITIES = ("African American", "Asian", "Caucasian", "Hispanic", "Native American", "Other/Unknown", "Unknown")
# patient.unittype, spelled as in eICU
UNIT_TYPES = ("CCU-CTICU", "CSICU", "CTICU", "Cardiac ICU", "MICU", "Med-Surg ICU", "Neuro ICU", "SICU")
GENDERS = ("Female", "Male", "Unknown")
SMOKER = ("No", "Yes", "Unknown")

SCHEMA = Schema(
    name="eicu",
    description="eICU-CRD ICU stays (CW-24): demographics, first-day severity scores, GCS/SOFA statistics",
    columns=(
        Column("region", "category", "US census region of the hospital (hospital.region; empty is Unknown)",
               categories=REGIONS, window=AT_ADMISSION),
        Column("ethnicity", "category", "Ethnicity as recorded in patient.ethnicity (empty is Unknown)",
               categories=ETHNICITIES, window=AT_ADMISSION),
        Column("unit_type", "category", "ICU unit type (patient.unittype)", categories=UNIT_TYPES,
               window=AT_ADMISSION),
        Column("gender", "category", "Gender (patient.gender; Other and empty are Unknown)", categories=GENDERS,
               window=AT_ADMISSION),
        Column("age", "int", "Age (patient.age; '> 89' is recorded as 90)", unit="years", valid=(0, 90),
               window=AT_ADMISSION),
        Column("height", "float", "Admission height", unit="cm", valid=(100, 250), window=AT_ADMISSION,
               decimals=0),
        Column("weight", "float", "Admission weight", unit="kg", valid=(20, 400), window=AT_ADMISSION,
               decimals=1),
        Column("smoker", "category", "Current smoker (APACHE predictor variables; Unknown when not recorded)",
               categories=SMOKER, window=AT_ADMISSION),
        Column("alcohol_abuse", "binary", "Alcohol abuse (diagnosis or history)", window=AT_ADMISSION),
        Column("drug_abuse", "binary", "Drug abuse (diagnosis or history)", window=AT_ADMISSION),
        Column("obesity", "binary", "Obesity (diagnosis)", window=AT_ADMISSION),
        Column("apache_iv", "int", "APACHE IV score (apachepatientresult.apachescore; -1 is missing)",
               unit="points", valid=(0, 286), window=FIRST_DAY_SCORE, label="APACHE IV"),
        Column("sapsii", "int", "SAPS II", unit="points", valid=(0, 163), window=FIRST_DAY_SCORE, label="SAPS II"),
        Column("oasis", "int", "OASIS", unit="points", valid=(0, 75), window=FIRST_DAY_SCORE, label="OASIS"),
        *dynamic_score_columns(FIRST_DAY),
    ),
    notes=(
        "Table 2 of the paper: its outcome columns (142,628 + 13,838) do not add up to its total (157,883).",
        "Ages recorded as '> 89' are 90; out-of-range height/weight are set to missing by the builder.",
        "GCS/SOFA statistics use the values charted in [ICU admission, ICU admission + 24 h).",
    ),
)
