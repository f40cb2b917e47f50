"""The MIMIC-IV and eICU templates on synthetic cohorts: golden texts, round trip, token budget, no leakage."""

import numpy as np
import pytest

from alfia.cohorts.synthetic import generate_synthetic
from alfia.model.backbone import load_tokenizer
from alfia.text.encoder import TextEncoder
from alfia.text.stats import token_lengths
from tests.text.helpers import assert_round_trip

MIMIC_ROW = {
    "gender": "Female", "age": 81, "marital_status": "Widowed", "race": "Black", "insurance": "Medicare",
    "language": "English", "admission_type": "URGENT", "admission_location": "TRANSFER FROM HOSPITAL",
    "first_careunit": "MICU", "height": 160.0, "weight": 55.25, "smoker": 0.0, "alcohol_abuse": 1.0,
    "apsiii": 72.0, "sapsii": 51.0, "sirs": 3.0, "lods": 7.0, "meld": 18.5, "oasis": 40.0,
    "gcs_max": 14.0, "gcs_min": 8.0, "gcs_first": 8.0, "gcs_last": 14.0, "gcs_mean": 11.25, "gcs_std": 2.5,
    "sofa_max": 9.0, "sofa_min": 9.0, "sofa_first": 9.0, "sofa_last": 9.0, "sofa_mean": 9.0, "sofa_std": 0.0,
}
EICU_ROW = {
    "region": "South", "ethnicity": "Hispanic", "unit_type": "Neuro ICU", "gender": "Male", "age": 90,
    "height": np.nan, "weight": 70.0, "smoker": "Yes", "alcohol_abuse": 0.0, "drug_abuse": 1.0, "obesity": 0.0,
    "apache_iv": 88.0, "sapsii": np.nan, "oasis": 33.0,
    "gcs_max": 15.0, "gcs_min": 15.0, "gcs_first": 15.0, "gcs_last": 15.0, "gcs_mean": 15.0, "gcs_std": 0.0,
    "sofa_max": 5.0, "sofa_min": 2.0, "sofa_first": 2.0, "sofa_last": 4.0, "sofa_mean": 3.44, "sofa_std": 0.96,
}
GOLDEN = {
    "mimic-iv": (MIMIC_ROW,
                 "An 81-year-old woman (Black, widowed, English-speaking, insurance Medicare). An urgent admission "
                 "transferred from another hospital to the medical intensive care unit. Height 160 cm, weight "
                 "55.3 kg. Smoking none recorded, alcohol abuse yes. First-day scores: Acute Physiology and Chronic "
                 "Health Evaluation III (APACHE III) 72, Simplified Acute Physiology Score II (SAPS II) 51, "
                 "Systemic Inflammatory Response Syndrome (SIRS) 3, Logistic Organ Dysfunction Score (LODS) 7, "
                 "Model for End-Stage Liver Disease (MELD) 19, Oxford Acute Severity of Illness Score (OASIS) 40. "
                 "First 24 hours in the unit: Glasgow Coma Scale (GCS) 8 to 14 (first 8, last 14, mean 11.3, "
                 "standard deviation (SD) 2.5). Sequential Organ Failure Assessment (SOFA) 9 throughout."),
    "eicu": (EICU_ROW,
             "A man aged 90 or older (Hispanic). Admitted to a neurological intensive care unit in the South. Weight "
             "70.0 kg. Smoker, history of drug abuse. First-day scores: Acute Physiology and Chronic Health "
             "Evaluation IV (APACHE IV) 88, Oxford Acute Severity of Illness Score (OASIS) 33. First 24 hours in "
             "the unit: Glasgow Coma Scale (GCS) 15 throughout. Sequential Organ Failure Assessment (SOFA) 2 to 5 "
             "(first 2, last 4, mean 3.4, standard deviation (SD) 1.0). Not recorded: height, Simplified Acute "
             "Physiology Score II (SAPS II)."),
}


@pytest.fixture(scope="module", params=["mimic-iv", "eicu"])
def cohort(request):
    return generate_synthetic(request.param, n=3000, seed=5)


def test_golden_text(cohort):
    row, expected = GOLDEN[cohort.schema.name]
    assert TextEncoder(cohort.schema.name, "numeric").fit(cohort.df).describe_row(row) == expected


def test_round_trip(cohort):
    encoder = TextEncoder(cohort.schema.name, "numeric").fit(cohort.df)
    for row in cohort.df.sample(300, random_state=1).to_dict("records"):
        assert_round_trip(encoder, row)
    assert_round_trip(encoder, {**GOLDEN[cohort.schema.name][0]})


@pytest.mark.parametrize("style", ["numeric", "banded"])
def test_token_budget(cohort, style):
    texts = TextEncoder(cohort.schema.name, style).fit(cohort.df).transform(cohort.df).tolist()
    lengths = token_lengths(texts, load_tokenizer())
    assert lengths.p95 <= 256 and lengths.max <= 384, (lengths.p95, lengths.max)


def test_ids_and_labels_never_reach_the_text(cohort):
    encoder = TextEncoder(cohort.schema.name, "banded").fit(cohort.df)
    df = cohort.df.head(100)
    changed = df.assign(stay_id=df["stay_id"] + 10**7, hospital_mortality=1 - df["hospital_mortality"])
    assert encoder.transform(changed).tolist() == encoder.transform(df).tolist()
