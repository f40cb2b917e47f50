"""The clinical-text encoder on the real bundled cohort: round trip, budgets, leakage, fitting on train only."""

import numpy as np
import pytest

from alfia.cohorts.bundled import load_bundled
from alfia.errors import AlfiaError
from alfia.model.backbone import load_tokenizer
from alfia.text.encoder import TextEncoder, load_encoder
from alfia.text.stats import token_lengths
from tests.text.helpers import assert_round_trip


@pytest.fixture(scope="module")
def p12a():
    return load_bundled("p12-a")


@pytest.fixture(scope="module")
def p12b():
    return load_bundled("p12-b")


def test_numeric_round_trip(p12a):
    encoder = TextEncoder("physionet2012", "numeric").fit(p12a.df)
    for row in p12a.df.sample(300, random_state=0).to_dict("records"):
        assert_round_trip(encoder, row)


@pytest.mark.parametrize("style", ["numeric", "banded"])
def test_token_budget_on_both_sets(p12a, p12b, style):
    encoder = TextEncoder("physionet2012", style).fit(p12a.df)
    for cohort in (p12a, p12b):
        lengths = token_lengths(encoder.transform(cohort.df).tolist(), load_tokenizer())
        assert lengths.p95 <= 256 and lengths.max <= 384, (style, lengths.p95, lengths.max)


def test_banded_cut_points_ignore_validation_and_test_rows(p12a):
    a = TextEncoder("physionet2012", "banded").fit(p12a.df)
    changed = p12a.df.copy()
    other = changed["split"] != "train"
    changed.loc[other, "lactate_max"] = 39.0
    changed.loc[other, "hr_max"] = changed.loc[other, "hr_max"] * 1.5
    b = TextEncoder("physionet2012", "banded").fit(changed)
    assert a.cuts_ == b.cuts_
    changed.loc[changed.index[changed["split"] == "train"][:50], "lactate_max"] = 39.0
    assert TextEncoder("physionet2012", "banded").fit(changed).cuts_["lactate_max"] != a.cuts_["lactate_max"]


@pytest.mark.parametrize("style", ["numeric", "banded"])
def test_ids_and_reference_scores_never_reach_the_text(p12a, style):
    encoder = TextEncoder("physionet2012", style).fit(p12a.df)
    df = p12a.df.head(50)
    before = encoder.transform(df)
    changed = df.assign(stay_id=df["stay_id"] + 10**6, ref_saps1=99.0, ref_sofa=23.0,
                        hospital_mortality=1 - df["hospital_mortality"])
    assert encoder.transform(changed).tolist() == before.tolist()


def test_deterministic_and_abbreviations_expanded_once(p12a):
    encoder = TextEncoder("physionet2012", "numeric").fit(p12a.df)
    texts = encoder.transform(p12a.df.head(200))
    assert texts.tolist() == encoder.transform(p12a.df.head(200)).tolist()
    for text in texts:
        for short, long in (("GCS", "Glasgow Coma Scale"), ("SOFA", "Sequential Organ Failure Assessment"),
                            ("SD", "standard deviation")):
            if short in text:
                assert text.count(f"{long} ({short})") == 1, text
                assert text.index(long) < text.index(f"({short})")
        assert "nan" not in text.lower().split() and "None" not in text


def test_refuses_other_columns_and_round_trips_through_json(p12a, tmp_path):
    encoder = TextEncoder("physionet2012", "banded").fit(p12a.df)
    with pytest.raises(AlfiaError, match="missing columns lactate_max; unexpected columns foo"):
        encoder.transform(p12a.df.drop(columns=["lactate_max"]).assign(foo=1))
    encoder.save(tmp_path / "enc.json")
    again = load_encoder(tmp_path / "enc.json")
    assert again.transform(p12a.df.head(20)).tolist() == encoder.transform(p12a.df.head(20)).tolist()
    with pytest.raises(AlfiaError, match="unknown text style"):
        TextEncoder("physionet2012", "fancy")


GOLDEN_ROW = {
    "age": 67.0, "gender": "male", "height": 175.0, "weight": 80.24, "bmi": 26.2, "icu_type": "Medical ICU",
    "gcs_first": 7.0, "gcs_last": 9.0, "gcs_min": 7.0, "gcs_max": 10.0, "gcs_mean": 8.25, "gcs_std": 1.08,
    "sofa_first": 4.0, "sofa_last": 4.0, "sofa_min": 4.0, "sofa_max": 4.0, "sofa_mean": 4.0, "sofa_std": 0.0,
    "sirs": 3.0, "sapsii_approx": 41.0, "oasis_approx": 35.0, "hr_max": 121.0, "hr_min": 88.0, "map_min": 58.0,
    "temp_max": 38.94, "temp_min": 36.5, "resp_rate_max": np.nan, "urine_output": 640.0, "mech_vent": 1.0,
    "pf_ratio_min": 180.0, "lactate_max": 4.25, "ph_min": 7.214, "hco3_min": 17.0, "bun_max": 38.0,
    "creatinine_max": 2.15, "wbc_max": 18.35, "platelets_min": 95.0, "bilirubin_max": np.nan,
    "glucose_max": 210.0,
}


def test_golden_text_numeric(p12a):
    encoder = TextEncoder("physionet2012", "numeric").fit(p12a.df)
    assert encoder.describe_row(GOLDEN_ROW) == (
        "A 67-year-old man admitted to the medical intensive care unit. Height 175 cm, weight 80.2 kg, "
        "body mass index 26.2. First 24 hours: Systemic Inflammatory Response Syndrome (SIRS) criteria 3, "
        "Simplified Acute Physiology Score II (SAPS II) 41, Oxford Acute Severity of Illness Score (OASIS) 35. "
        "Glasgow Coma Scale (GCS) 7 to 10 (first 7, last 9, mean 8.3, standard deviation (SD) 1.1). "
        "Sequential Organ Failure Assessment (SOFA) 4 throughout. Mechanically ventilated, heart rate 88 to "
        "121 bpm, lowest mean arterial pressure 58 mmHg, temperature 36.5 to 38.9 °C, lowest arterial oxygen "
        "tension / inspired oxygen fraction (PaO2/FiO2) ratio 180 mmHg, urine output 640 mL. Labs: lowest pH "
        "7.21, bicarbonate 17, platelets 95; highest lactate 4.3, urea nitrogen 38, creatinine 2.2, white "
        "cells 18.4, glucose 210. Not recorded: respiratory rate, bilirubin."
    )


def test_golden_text_banded_uses_band_words(p12a):
    encoder = TextEncoder("physionet2012", "banded").fit(p12a.df)
    text = encoder.describe_row(GOLDEN_ROW)
    assert text.startswith("A 67-year-old man admitted to the medical intensive care unit. Height ")
    assert "highest lactate very high" in text or "highest lactate high" in text
    assert "4.3" not in text and "Not recorded: respiratory rate, bilirubin." in text
