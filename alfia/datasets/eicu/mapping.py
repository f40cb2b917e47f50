"""A cohort of another schema read as eICU (external validation across schemas; the engine is
:mod:`alfia.cohorts.mapping`): each link is declared by hand, with its category translation."""

from alfia.cohorts.mapping import FeatureMapping, Link, same
from alfia.datasets.mimic_iv.mapping import SAME_MEANING

RACE_TO_ETHNICITY = {"White": "Caucasian", "Black": "African American", "Hispanic/Latino": "Hispanic",
                     "Asian": "Asian", "Other": "Other/Unknown", "Unknown": "Unknown"}
CAREUNIT_TO_UNIT_TYPE = {"MICU": "MICU", "SICU": "SICU", "MICU/SICU": "Med-Surg ICU", "CCU": "Cardiac ICU",
                         "CVICU": "CTICU", "TSICU": "SICU", "Neuro SICU": "Neuro ICU",
                         "Neuro Intermediate": "Neuro ICU", "Neuro Stepdown": "Neuro ICU"}

FROM_MIMIC_IV = FeatureMapping("mimic-iv", "eicu", (
    *same("gender", *SAME_MEANING),
    Link("ethnicity", "race", RACE_TO_ETHNICITY, "MIMIC-IV race groups as eICU ethnicities"),
    Link("unit_type", "first_careunit", CAREUNIT_TO_UNIT_TYPE,
         "care unit by its kind (TSICU as SICU, neuro units as Neuro ICU)"),
    Link("smoker", "smoker", {0: "No", 1: "Yes"}, "tobacco-use diagnosis as current smoker; missing stays "
         "missing"),
))
