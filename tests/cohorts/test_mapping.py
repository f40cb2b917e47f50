"""External validation across schemas: declared mappings MIMIC-IV <-> eICU on the synthetic cohorts, mode
imputation from the training cohort, the refusal below half overlap, and `alfia predict` on a mapped cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.cli import main
from alfia.cohorts import write_cohort
from alfia.cohorts.mapping import FeatureMapping, declared_mapping, map_cohort, training_modes
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.text.encoder import TextEncoder

SOURCE_ONLY = {"eicu": ["region", "apache_iv", "drug_abuse", "obesity"],
               "mimic-iv": ["marital_status", "insurance", "language", "admission_type", "admission_location",
                            "apsiii", "sirs", "lods", "meld"]}

IMPUTED_SCORES = ("APACHE III", "SIRS", "LODS", "MELD")  # MIMIC-IV scores eICU lacks


@pytest.fixture(scope="module")
def cohorts():
    return {"mimic-iv": generate_synthetic("mimic-iv", n=400, seed=0),
            "eicu": generate_synthetic("eicu", n=400, seed=1, id_offset=10_000)}


@pytest.mark.parametrize("source, target", [("eicu", "mimic-iv"), ("mimic-iv", "eicu")])
def test_mapped_and_imputed_variables_are_listed_and_right(cohorts, source, target):
    src, train = cohorts[source], cohorts[target]
    mapped = map_cohort(src, train)
    report = mapped.info["mapping"]
    assert mapped.schema.name == target and len(mapped.df) == len(src.df)
    names_mapped = [m["variable"] for m in report["mapped"]]
    names_imputed = [m["variable"] for m in report["imputed"]]
    assert sorted(names_mapped + names_imputed) == sorted(train.schema.feature_columns)
    assert not set(names_mapped) & set(names_imputed)
    assert set(names_imputed) == set(SOURCE_ONLY[target])  # exactly what the source lacks is imputed
    modes = training_modes(train, names_imputed)
    for entry in report["imputed"]:  # the training cohort's train-split mode, in every row
        assert (mapped.df[entry["variable"]] == modes[entry["variable"]]).all()
        assert entry["value"] == modes[entry["variable"]]
    # a variable of the same meaning and unit keeps its values (unless outside the target's valid range)
    lo, hi = train.schema["age"].valid
    age = src.df["age"].where(src.df["age"].between(lo, hi))
    pd.testing.assert_series_equal(mapped.df["age"], age.astype("float64"), check_names=False)
    pd.testing.assert_series_equal(mapped.df["gcs_min"], src.df["gcs_min"], check_names=False)
    lost = {m["variable"]: m["set_missing"] for m in report["mapped"]}
    assert lost["age"] == int((src.df["age"].notna() & age.isna()).sum())
    assert (mapped.df["hospital_mortality"] == src.df["hospital_mortality"]).all()
    json.dumps(report)  # the report is written as JSON beside the results


def test_categories_are_translated_by_meaning(cohorts):
    mapped = map_cohort(cohorts["eicu"], cohorts["mimic-iv"]).df
    eicu = cohorts["eicu"].df
    pairs = {("Caucasian", "White"), ("African American", "Black"), ("Hispanic", "Hispanic/Latino")}
    for before, after in pairs:
        assert (mapped.loc[eicu["ethnicity"] == before, "race"] == after).all()
    assert mapped.loc[eicu["smoker"] == "Yes", "smoker"].eq(1).all()
    assert mapped.loc[eicu["smoker"] == "Unknown", "smoker"].isna().all()
    assert mapped.loc[eicu["unit_type"] == "Med-Surg ICU", "first_careunit"].eq("MICU/SICU").all()


def test_texts_mention_what_the_source_lacks_only_as_imputed_and_listed(cohorts):
    src, train = cohorts["eicu"], cohorts["mimic-iv"]
    mapped = map_cohort(src, train)
    imputed = {m["variable"] for m in mapped.info["mapping"]["imputed"]}
    encoder = TextEncoder("mimic-iv", "numeric").fit(train.df)
    rows = mapped.df.head(30)[encoder.columns_].to_dict("records")
    for row in rows:
        text = encoder.describe_row(row)
        assert "APACHE IV" not in text and "region" not in text.lower()  # the source's own variables stay out
        for name in SOURCE_ONLY["mimic-iv"]:
            assert name in imputed
            # written as a recorded value: the text changes when it is left out, and it is not "not recorded"
            assert encoder.describe_row({**row, name: None}) != text
        writer = encoder.writer(row)
        encoder._describe(writer)
        assert not [m for m in writer.missing for score in IMPUTED_SCORES if score in m]
    # without the imputation the same scores would have been written "not recorded"
    bare = {**rows[0], **dict.fromkeys(SOURCE_ONLY["mimic-iv"])}
    writer = encoder.writer(bare)
    encoder._describe(writer)
    assert all(any(score in m for m in writer.missing) for score in IMPUTED_SCORES)


def test_refused_below_half_overlap_and_without_a_declared_mapping(cohorts):
    full = declared_mapping("eicu", "mimic-iv")
    n = len(cohorts["mimic-iv"].schema.feature_columns)
    few = FeatureMapping("eicu", "mimic-iv", full.links[:n // 2 - 1])
    with pytest.raises(AlfiaError, match="fewer than half"):
        map_cohort(cohorts["eicu"], cohorts["mimic-iv"], few)
    just_half = FeatureMapping("eicu", "mimic-iv", full.links[:-(len(full.links) - (n + 1) // 2)])
    assert map_cohort(cohorts["eicu"], cohorts["mimic-iv"], just_half).schema.name == "mimic-iv"
    from alfia.cohorts.bundled import load_bundled

    with pytest.raises(AlfiaError, match="no feature mapping is declared"):
        map_cohort(load_bundled("p12-b"), cohorts["mimic-iv"])


def test_predict_on_a_cohort_of_another_schema(cohorts, tiny_bert_dir, tmp_path, capsys):
    from alfia.training.config import make_config
    from alfia.training.trainer import train
    from tests.analysis.test_report import TINY

    dev = cohorts["mimic-iv"]
    encoder = TextEncoder("mimic-iv").fit(dev.df)
    df = dev.df.copy()
    df["text"] = encoder.transform(df)
    from alfia.cohorts import Cohort

    encoded = Cohort(df=df, schema=dev.schema, info={**dev.info, "text_encoder": encoder.to_dict()})
    run = tmp_path / "run"
    train(encoded, run, make_config("quick", **{**TINY, "epochs": 1}), backbone=str(tiny_bert_dir), progress=False)
    from alfia.inference import finish_run

    finish_run(run, encoded, n_boot=10)
    write_cohort(dev, tmp_path / "mimic.parquet")
    write_cohort(cohorts["eicu"], tmp_path / "eicu.parquet")
    out = tmp_path / "eicu-pred.parquet"
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "eicu.parquet"), "--out", str(out)]) == 1
    assert "--training-cohort" in capsys.readouterr().err
    assert not out.exists()
    assert main(["predict", str(run), str(tmp_path / "eicu.parquet"), "--out", str(out),
                 "--training-cohort", str(tmp_path / "mimic.parquet")]) == 0
    printed = capsys.readouterr().out
    for name in SOURCE_ONLY["mimic-iv"]:
        assert f"imputed {name} = " in printed
    assert "mapped  race <- ethnicity" in printed
    info = json.loads(out.with_suffix(".metrics.json").read_text())
    assert {m["variable"] for m in info["mapping"]["imputed"]} == set(SOURCE_ONLY["mimic-iv"])
    pred = pd.read_parquet(out)
    assert len(pred) == 400 and np.isfinite(pred["probability"]).all()


def test_baselines_external_of_another_schema_is_mapped_and_listed(cohorts, tmp_path, capsys):
    from alfia.cli.baselines import _external

    write_cohort(cohorts["eicu"], tmp_path / "eicu.parquet")
    same = _external(cohorts["eicu"], str(tmp_path / "eicu.parquet"), None, str(tmp_path / "same"))
    assert same.schema.name == "eicu" and not (tmp_path / "same").exists()  # same schema: untouched
    mapped = _external(cohorts["mimic-iv"], str(tmp_path / "eicu.parquet"), None, str(tmp_path / "out"))
    assert mapped.schema.name == "mimic-iv"
    listed = json.loads((tmp_path / "out" / "external-mapping.json").read_text())
    assert listed == mapped.info["mapping"]
    assert "imputed meld = " in capsys.readouterr().out
