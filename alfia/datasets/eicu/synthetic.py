"""Targets of the ``synth-eicu`` cohorts: the paper's Table 2 (eICU), per outcome group.

Numbers are (mean, SD) for numeric variables and shares in percent, (survived, died), for categories; binary columns
list the share of "Yes". The engine that draws the cohorts is :mod:`alfia.cohorts.synthetic`.
"""

from alfia.cohorts.synthetic import Numeric, gcs_statistic, sofa_statistic

TARGETS: dict = {
    "table": "Table 2",
    "rate": 0.0877,
    "numeric": {
        "age": Numeric("normal", 18, 90, (62.43, 17.25), (69.76, 15.06)),
        "height": Numeric("normal", 120, 220, (169.35, 13.74), (168.42, 14.47), 0.1),
        "weight": Numeric("gamma_lo", 25, 400, (84.19, 26.84), (80.90, 28.18), 0.1),
        "apache_iv": Numeric("gamma_lo", 0, 286, (51.02, 22.63), (87.23, 33.34)),
        "sapsii": Numeric("gamma_lo", 0, 163, (28.90, 13.05), (49.58, 17.89)),
        "oasis": Numeric("gamma_lo", 0, 75, (24.65, 8.91), (35.76, 11.34)),
        "gcs_max": gcs_statistic((14.28, 1.88), (11.03, 4.38)),
        "gcs_min": gcs_statistic((12.72, 3.55), (8.47, 4.73)),
        "gcs_first": gcs_statistic((13.28, 3.20), (10.19, 4.75)),
        "gcs_last": gcs_statistic((13.93, 2.33), (9.40, 4.64)),
        "gcs_mean": gcs_statistic((13.63, 2.39), (9.76, 4.35)),
        "gcs_std": gcs_statistic((0.72, 1.24), (1.27, 1.57)),
        "sofa_max": sofa_statistic((4.58, 3.01), (7.83, 3.95)),
        "sofa_min": sofa_statistic((1.84, 2.13), (3.42, 2.91)),
        "sofa_first": sofa_statistic((2.00, 2.25), (3.56, 2.99)),
        "sofa_last": sofa_statistic((4.30, 2.95), (7.55, 3.98)),
        "sofa_mean": sofa_statistic((3.92, 2.74), (6.67, 3.49)),
        "sofa_std": sofa_statistic((0.86, 0.70), (1.39, 1.03)),
    },
    "categories": {
        "region": {"Midwest": (34.62, 29.82), "Northeast": (7.08, 9.50), "South": (31.14, 34.26),
                   "West": (20.70, 20.53), "Unknown": (6.46, 5.88)},
        "ethnicity": {"African American": (11.19, 10.28), "Asian": (1.67, 1.81), "Caucasian": (76.59, 77.50),
                      "Hispanic": (3.82, 3.97), "Native American": (0.74, 0.68),
                      "Other/Unknown": (4.75, 4.52), "Unknown": (1.23, 1.24)},
        "unit_type": {"CCU-CTICU": (8.48, 7.78), "CSICU": (3.69, 2.39), "CTICU": (3.33, 2.12),
                      "Cardiac ICU": (6.96, 8.17), "MICU": (8.17, 11.61), "Med-Surg ICU": (55.53, 55.13),
                      "Neuro ICU": (7.55, 6.91), "SICU": (6.28, 5.88)},
        "gender": {"Female": (45.94, 46.58), "Male": (54.02, 53.30), "Unknown": (0.03, 0.12)},
        "smoker": {"No": (8.43, 8.21), "Yes": (10.05, 9.13), "Unknown": (81.52, 82.66)},
        "alcohol_abuse": {"Yes": (2.09, 1.63)},
        "drug_abuse": {"Yes": (0.12, 0.04)},
        "obesity": {"Yes": (1.04, 1.26)},
    },
    "uncalibrated": {},
    "missing": {"height": 0.02, "weight": 0.02},  # MCAR, not calibrated
    "loadings": {"apache_iv": 0.85, "sapsii": 0.85, "oasis": 0.75, "gcs": 0.6, "sofa": 0.85, "age": 0.2},
    # overlap of the outcome groups (survived, died): see alfia.cohorts.synthetic
    "crossover": (0.02, 0.15),
}
