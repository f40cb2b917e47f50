"""Targets of the ``synth-mimic-iv`` cohorts: the paper's Table 1 (MIMIC-IV), per outcome group.

Numbers are (mean, SD) for numeric variables and shares in percent, (survived, died), for categories; binary columns
list the share of "Yes". The engine that draws the cohorts is :mod:`alfia.cohorts.synthetic`.
"""

from alfia.cohorts.synthetic import Numeric, gcs_statistic, sofa_statistic

TARGETS: dict = {
    "table": "Table 1",
    "rate": 0.1084,
    "numeric": {
        "age": Numeric("normal", 18, 91, (64.30, 17.17), (71.08, 15.53)),
        "height": Numeric("normal", 120, 220, (169.93, 10.61), (168.22, 10.62), 0.1),
        "weight": Numeric("gamma_lo", 25, 400, (82.05, 34.86), (78.68, 24.32), 0.1),
        "apsiii": Numeric("gamma_lo", 0, 299, (38.90, 17.16), (65.53, 26.95)),
        "sapsii": Numeric("gamma_lo", 0, 163, (32.90, 12.62), (50.24, 16.24)),
        "lods": Numeric("gamma_lo", 0, 22, (3.72, 2.56), (7.18, 3.55)),
        "meld": Numeric("gamma_lo", 6, 40, (12.50, 6.92), (19.47, 10.06)),
        "oasis": Numeric("gamma_lo", 0, 75, (29.58, 7.96), (38.63, 9.06)),
        "gcs_max": gcs_statistic((14.88, 0.59), (14.59, 1.50)),
        "gcs_min": gcs_statistic((13.82, 2.48), (12.76, 3.70)),
        "gcs_first": gcs_statistic((14.40, 1.96), (14.04, 2.40)),
        "gcs_last": gcs_statistic((14.65, 1.12), (13.89, 2.72)),
        "gcs_mean": gcs_statistic((14.56, 1.00), (14.01, 1.98)),
        "gcs_std": gcs_statistic((0.45, 1.01), (0.83, 1.53)),
        "sofa_max": sofa_statistic((3.66, 2.83), (6.92, 4.18)),
        "sofa_min": sofa_statistic((1.42, 1.91), (2.71, 2.87)),
        "sofa_first": sofa_statistic((1.47, 1.95), (2.77, 2.92)),
        "sofa_last": sofa_statistic((3.56, 2.80), (6.78, 4.16)),
        "sofa_mean": sofa_statistic((3.05, 2.51), (5.63, 3.57)),
        "sofa_std": sofa_statistic((0.70, 0.63), (1.28, 1.01)),
    },
    "categories": {
        "gender": {"Female": (43.59, 45.78), "Male": (56.41, 54.22)},
        "marital_status": {"Divorced": (7.10, 5.72), "Married": (45.49, 38.67), "Single": (27.36, 20.12),
                           "Widowed": (11.12, 14.48), "Unknown": (8.94, 21.01)},
        "insurance": {"Medicaid": (14.59, 12.01), "Medicare": (51.38, 63.75), "No Charge": (0.01, 0.01),
                      "Other": (2.76, 1.76), "Private": (29.46, 17.99), "Unknown": (1.79, 4.47)},
        "smoker": {"Yes": (6.60, 4.85)},
        "alcohol_abuse": {"Yes": (0.94, 0.65)},
        "sirs": {"0": (2.43, 0.65), "1": (14.80, 5.32), "2": (33.84, 23.50), "3": (36.35, 42.68),
                 "4": (12.57, 27.86)},
    },
    # not in the paper's table: plausible shares, identical in both outcome groups (not calibrated)
    "uncalibrated": {
        "race": {"White": 66, "Black": 10, "Hispanic/Latino": 4, "Asian": 3, "Other": 5, "Unknown": 12},
        "language": {"English": 89, "Other": 9, "Unknown": 2},
        "admission_type": {"EW EMER.": 50, "URGENT": 17, "DIRECT EMER.": 6, "OBSERVATION ADMIT": 8,
                           "EU OBSERVATION": 2, "DIRECT OBSERVATION": 1.5, "AMBULATORY OBSERVATION": 0.5,
                           "ELECTIVE": 5, "SURGICAL SAME DAY ADMISSION": 10},
        "first_careunit": {"MICU": 21, "MICU/SICU": 17, "CVICU": 16, "SICU": 13, "TSICU": 11, "CCU": 11,
                           "Neuro Intermediate": 6, "Neuro SICU": 3, "Neuro Stepdown": 2},
    },
    # admission_location depends on admission_type (None: missing)
    "admission_location": {
        "planned": ({"ELECTIVE", "SURGICAL SAME DAY ADMISSION"},
                    {"PHYSICIAN REFERRAL": 70, "PROCEDURE SITE": 10, "CLINIC REFERRAL": 10,
                     "AMBULATORY SURGERY TRANSFER": 5, "PACU": 5}),
        "emergency": ({"EW EMER.", "EU OBSERVATION"},
                      {"EMERGENCY ROOM": 85, "WALK-IN/SELF REFERRAL": 5, "TRANSFER FROM HOSPITAL": 5,
                       "TRANSFER FROM SKILLED NURSING FACILITY": 3, "INFORMATION NOT AVAILABLE": 1, None: 1}),
        "other": (None,
                  {"TRANSFER FROM HOSPITAL": 45, "PHYSICIAN REFERRAL": 30, "CLINIC REFERRAL": 8,
                   "EMERGENCY ROOM": 5, "WALK-IN/SELF REFERRAL": 4, "PROCEDURE SITE": 4, "PACU": 2,
                   "INTERNAL TRANSFER TO OR FROM PSYCH": 1, "TRANSFER FROM SKILLED NURSING FACILITY": 1}),
    },
    "missing": {"height": 0.20, "weight": 0.03},  # MCAR, not calibrated
    "loadings": {"apsiii": 0.85, "sapsii": 0.85, "lods": 0.75, "oasis": 0.75, "meld": 0.45, "sirs": 0.5,
                 "gcs": 0.5, "sofa": 0.85, "age": 0.2},
    # overlap of the outcome groups (survived, died): see alfia.cohorts.synthetic
    "crossover": (0.02, 0.15),
}
