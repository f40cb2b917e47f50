"""MEDS through the whole pipeline.

1. A cohort whose schema comes from the data (a synthetic MEDS dataset, no concept map) through cohort -> encode ->
   train -> predict (new stays read with --features-of) -> serve -> report on the command line.
2. Real values through MEDS: the bundled YAIB eICU demo written as MEDS (tests/datasets/meds_fixtures.py) and read
   back with the shipped MIMIC-IV-MEDS -> YAIB concept map and label files at admission + 24 h gives the YAIB
   reader's features (to float32's precision: MEDS stores values as float32), its splits, and, with the same text
   template, the same ALFIA probabilities.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.cli import main
from alfia.cohorts import Cohort, read_cohort, write_cohort
from alfia.cohorts.registry import load_bundled
from alfia.datasets.meds.builder import build_meds
from alfia.datasets.meds.synthetic import write_synthetic_meds
from alfia.text.encoder import load_encoder
from tests.datasets.meds_fixtures import first_codes, meds_concepts_path, yaib_to_meds

TINY = ["--epochs", "1", "--batch-size", "32", "--max-length", "64", "--fusion-layers", "2", "--lora-r", "4"]


@pytest.fixture(scope="module")
def derived_run(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("meds-e2e")
    write_synthetic_meds(root / "meds", 300, shard_size=100, seed=1)
    write_synthetic_meds(root / "meds-new", 60, shard_size=60, seed=2)
    cohort, encoded, run = root / "cohort.parquet", root / "encoded.parquet", root / "run"
    assert main(["cohort", "meds", "--source", str(root / "meds"), "--task", "cw24-in-hospital", "--out",
                 str(cohort)]) == 0
    assert main(["encode", str(cohort), "--out", str(encoded)]) == 0
    assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), *TINY]) == 0
    return root, cohort, run


def test_a_cohort_whose_schema_comes_from_the_data_trains_and_predicts_new_stays(derived_run):
    root, cohort_path, run = derived_run
    cohort = read_cohort(cohort_path)
    assert cohort.schema.derived_from == "meds" and not cohort.schema.name == "meds"
    encoder = json.loads((run / "encoder.json").read_text())
    assert encoder["schema"] == cohort.schema.name and encoder["schema_definition"]["derived_from"] == "meds"
    new = root / "new.parquet"
    assert main(["cohort", "meds", "--source", str(root / "meds-new"), "--task", "cw24-in-hospital",
                 "--features-of", str(cohort_path), "--out", str(new)]) == 0
    assert read_cohort(new).schema == cohort.schema
    out = root / "new.pred.parquet"
    assert main(["predict", str(run), str(new), "--out", str(out)]) == 0
    scored = pd.read_parquet(out)
    assert len(scored) == len(read_cohort(new).df) and scored["probability"].between(0, 1).all()


def test_the_derived_schema_serves_and_reports(derived_run):
    from fastapi.testclient import TestClient

    from alfia.serving.app import create_app
    from alfia.serving.service import RiskService

    root, cohort_path, run = derived_run
    cohort = read_cohort(cohort_path)
    client = TestClient(create_app(RiskService.load(run)))
    card = client.get("/v1/model").json()
    assert card["schema"]["name"] == cohort.schema.name
    row = cohort.df.iloc[0]
    record = {c.name: (row[c.name] if c.kind == "category" else float(row[c.name]))
              for c in cohort.schema.columns if c.role == "feature" and not pd.isna(row[c.name])}
    answer = client.post("/v1/predict", json={"stays": [{"record": record}]})
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert "heart rate" in result["text"] and "LAB//" not in result["text"]
    report = root / "report.html"
    assert main(["report", str(run), "--cohort", str(root / "encoded.parquet"), "--out", str(report), "--no-texts",
                 "--max-stays", "200", "--projection", "pca", "--classifier", "mlp"]) == 0
    page = report.read_text()
    assert cohort.schema.name in page and "cw24-in-hospital" in page


def test_the_facade_fits_and_evaluates_a_meds_source(derived_run, tiny_bert_dir, tmp_path):
    from alfia import ALFIAPredictor
    from alfia.datasets.meds import MedsSource

    root, cohort_path, _ = derived_run
    from tests.api.test_predictor import TINY as FACADE_TINY

    predictor = ALFIAPredictor(backbone=str(tiny_bert_dir), path=tmp_path / "run", device="cpu", **FACADE_TINY)
    predictor.fit(MedsSource(root / "meds", task="cw24-in-hospital"), progress=False, n_boot=20)
    assert predictor.schema_name == read_cohort(cohort_path).schema.name  # the same data, the same derived schema
    new = MedsSource(root / "meds-new", task="cw24-in-hospital", features_of=cohort_path)
    metrics = predictor.evaluate(new, n_boot=20)
    assert 0 <= metrics["auprc"]["value"] <= 1 and metrics["n"] == len(new.cohort().df)


# --- real values through MEDS ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def yaib_and_meds(tmp_path_factory):
    root = tmp_path_factory.mktemp("yaib-meds")
    written = yaib_to_meds(root / "meds")
    meds = build_meds(root / "meds", labels=written["labels"], concepts=meds_concepts_path(), progress=False)
    return load_bundled("yaib-eicu-demo"), meds


def test_meds_gives_the_yaib_readers_features_and_splits(yaib_and_meds):
    yaib, meds = yaib_and_meds
    y = yaib.df.set_index("stay_id")
    m = meds.df.set_index("subject_id")
    assert sorted(m.index) == sorted(y.index) and len(m) == 1367
    m = m.loc[y.index]
    assert (m["split"] == y["split"]).all()
    assert (m["outcome"].to_numpy() == y[yaib.label].to_numpy()).all()
    shared = [c for c in yaib.schema.feature_columns if c != "sex"]
    assert set(shared) <= set(meds.schema.feature_columns)  # every aggregate, urine's total, age, height, weight
    for name in shared:
        a, b = y[name].astype("float64").to_numpy(), m[name].astype("float64").to_numpy()
        assert (np.isnan(a) == np.isnan(b)).all(), name
        values = y[name.removesuffix("_std") + "_max"] if name.endswith("_std") else y[name]  # a spread's scale
        scale = max(1.0, float(np.nanmax(np.abs(values.astype("float64"))))) if values.notna().any() else 1.0
        # MEDS stores numeric_value as float32: equal to 1e-6 of the variable's scale
        assert np.nanmax(np.abs(a - b), initial=0.0) <= 1e-6 * scale, name
    assert (m["sex"].map({"F": "Female", "M": "Male"}).to_numpy() == y["sex"].to_numpy()).all()


def yaib_as_float32(folder):
    """The bundled YAIB eICU demo with its values as MEDS holds them (numeric_value float32, in the unit of the
    fixture's code: height in inches), read by the YAIB reader: the reference the MEDS path must equal exactly."""
    from importlib import resources

    import pyarrow.parquet as pq

    from alfia.datasets.yaib.builder import build_yaib, read_patients

    data = resources.files("alfia.datasets.yaib.data")
    codes = first_codes()
    folder.mkdir()
    with resources.as_file(data.joinpath("eicu_demo")) as source:
        for name in ("sta.parquet", "dyn.parquet", "outc.parquet"):
            df = pq.read_table(source / name).to_pandas()
            for column in df.columns:
                if column not in ("stay_id", "label") and df[column].dtype.kind == "f":
                    _, scale, shift = codes.get(column, ("", 1.0, 0.0))
                    stored = ((df[column] - shift) / scale).astype("float32")
                    df[column] = stored.astype("float64") * scale + shift
            df.to_parquet(folder / name)
    with resources.as_file(data.joinpath("eicu_demo_patients.csv")) as patients:
        return build_yaib(folder, patients=read_patients(patients), patients_source="the shipped patient ids")


def test_meds_and_yaib_give_the_same_texts_and_alfia_probabilities(yaib_and_meds, tmp_path, tiny_bert_dir):
    _, meds = yaib_and_meds
    yaib = yaib_as_float32(tmp_path / "yaib32")
    yaib_path, run = tmp_path / "yaib.parquet", tmp_path / "run"
    write_cohort(yaib, yaib_path)
    encoded = tmp_path / "yaib.text.parquet"
    assert main(["encode", str(yaib_path), "--out", str(encoded)]) == 0
    assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), *TINY]) == 0
    # the MEDS values in YAIB's schema: the same template, splits and stays
    m = meds.df.set_index("subject_id").loc[yaib.df["stay_id"]]
    assert (m["split"].to_numpy() == yaib.df["split"].to_numpy()).all()
    df = yaib.df.copy()
    for name in yaib.schema.feature_columns:
        if name == "sex":
            df[name] = m[name].map({"F": "Female", "M": "Male"}).to_numpy()
        else:
            df[name] = m[name].astype("float64").to_numpy()
    from_meds = tmp_path / "from-meds.parquet"
    write_cohort(Cohort(df, yaib.schema, {"source": "yaib-eicu-demo through MEDS"}, task=yaib.task), from_meds)
    encoder = load_encoder(run)  # the run's own texts of both: the same words for every stay
    assert (encoder.transform(yaib.df) == encoder.transform(df)).all()
    for name, path in (("yaib", yaib_path), ("meds", from_meds)):
        assert main(["predict", str(run), str(path), "--out", str(tmp_path / f"{name}.pred.parquet")]) == 0
    a = pd.read_parquet(tmp_path / "yaib.pred.parquet").set_index("stay_id")["probability"]
    b = pd.read_parquet(tmp_path / "meds.pred.parquet").set_index("stay_id")["probability"].loc[a.index]
    assert len(a) == 1367 and (a - b).abs().max() <= 1e-6
