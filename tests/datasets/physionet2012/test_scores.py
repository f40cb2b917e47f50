"""The PhysioNet 2012 severity-score tables (SOFA components, SIRS, SAPS II, OASIS), point by point."""

from alfia.datasets.physionet2012.scores import (
    oasis_components,
    sapsii_components,
    sirs_score,
    sofa_cardiovascular,
    sofa_cns,
    sofa_coagulation,
    sofa_liver,
    sofa_renal_creatinine,
    sofa_renal_urine,
    sofa_respiration,
)


def test_sofa_component_tables():
    assert [sofa_respiration(pf, False) for pf in (450, 350, 250, 150, 50)] == [0, 1, 2, 2, 2]
    assert [sofa_respiration(pf, True) for pf in (450, 350, 250, 150, 50)] == [0, 1, 2, 3, 4]
    assert [sofa_coagulation(p) for p in (200, 150, 149, 99, 49, 19)] == [0, 0, 1, 2, 3, 4]
    assert [sofa_liver(b) for b in (1.1, 1.2, 2.0, 6.0, 12.0)] == [0, 1, 2, 3, 4]
    assert [sofa_cardiovascular(m) for m in (70, 69.9, 30)] == [0, 1, 1]
    assert [sofa_cns(g) for g in (15, 14, 13, 12, 10, 9, 6, 5, 3)] == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [sofa_renal_creatinine(c) for c in (1.1, 1.2, 2.0, 3.5, 5.0)] == [0, 1, 2, 3, 4]
    assert [sofa_renal_urine(u) for u in (600, 499, 199)] == [0, 3, 4]


def test_sirs():
    assert sirs_score() is None
    assert sirs_score(temp_min=36.5, temp_max=37, hr_max=80, rr_max=16, wbc_min=8, wbc_max=9) == 0
    assert sirs_score(temp_max=38.5, hr_max=95, paco2_min=30, wbc_min=3) == 4
    assert sirs_score(temp_min=35.5, hr_max=90, rr_max=20, wbc_max=12) == 1


def test_sapsii_and_oasis_tables():
    v = {"age": 72, "hr_min": 38, "hr_max": 130, "sbp_min": 85, "sbp_max": 150, "temp_max": 39.2,
         "pf_vent_min": 150, "urine_output": 800, "bun_max": 50, "wbc_min": 0.5, "wbc_max": 25,
         "k_min": 3.5, "k_max": 5.5, "na_min": 120, "na_max": 150, "hco3_min": 17, "bilirubin_max": 5,
         "gcs_min": 7}
    assert sapsii_components(v) == {"age": 15, "hr": 11, "sbp": 5, "temp": 3, "pao2fio2": 9, "urine": 4,
                                    "bun": 6, "wbc": 12, "potassium": 3, "sodium": 5, "bicarbonate": 3,
                                    "bilirubin": 4, "gcs": 13}
    w = {"age": 80, "gcs_min": 14, "hr_min": 60, "hr_max": 110, "map_min": 55, "map_max": 100, "rr_min": 10,
         "resp_rate_max": 20, "temp_min": 36.0, "temp_max": 37.0, "urine_output": 1000, "mech_vent": 1,
         "icu_type": "Medical ICU"}
    assert oasis_components(w) == {"age": 9, "gcs": 3, "hr": 3, "map": 2, "resp_rate": 1, "temp": 2,
                                   "urine": 5, "mech_vent": 9, "elective_surgery": 6}
    w.update(icu_type="Cardiac Surgery Recovery Unit", mech_vent=0, temp_max=40)
    assert oasis_components(w)["elective_surgery"] == 0 and oasis_components(w)["temp"] == 6
