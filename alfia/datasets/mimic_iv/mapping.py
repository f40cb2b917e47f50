"""A cohort of another schema read as MIMIC-IV (external validation across schemas; the engine is
:mod:`alfia.cohorts.mapping`): each link is declared by hand, with its category translation."""

from alfia.cohorts.mapping import FeatureMapping, Link, same
from alfia.datasets.mimic_iv.schema import STATS

DYNAMIC = tuple(f"{score}_{stat}" for score in ("gcs", "sofa") for stat in STATS)
# variables MIMIC-IV and eICU both hold under the same name, meaning and unit
SAME_MEANING = ("age", "height", "weight", "alcohol_abuse", "sapsii", "oasis", *DYNAMIC)

ETHNICITY_TO_RACE = {"Caucasian": "White", "African American": "Black", "Hispanic": "Hispanic/Latino",
                     "Asian": "Asian", "Native American": "Other", "Other/Unknown": "Other", "Unknown": "Unknown"}
UNIT_TYPE_TO_CAREUNIT = {"MICU": "MICU", "SICU": "SICU", "Med-Surg ICU": "MICU/SICU", "Cardiac ICU": "CCU",
                         "CCU-CTICU": "CCU", "CTICU": "CVICU", "CSICU": "CVICU", "Neuro ICU": "Neuro SICU"}

FROM_EICU = FeatureMapping("eicu", "mimic-iv", (
    *same(*SAME_MEANING),
    Link("gender", "gender", {"Female": "Female", "Male": "Male"}, "Unknown becomes missing"),
    Link("race", "ethnicity", ETHNICITY_TO_RACE, "Native American joins Other"),
    Link("first_careunit", "unit_type", UNIT_TYPE_TO_CAREUNIT,
         "unit kind as the MIMIC-IV care unit (CCU-CTICU as CCU, cardiac surgery units as CVICU)"),
    Link("smoker", "smoker", {"No": 0, "Yes": 1}, "Unknown becomes missing"),
))
