"""A schema derived from the data (``Schema.derived_from``: its name is no registered name) travels with the cohort
file (metadata ``alfia.cohort`` -> ``schema_definition``) and with the run (encoder.json), and every command reads it
back from there: read_cohort, the text encoder, `alfia encode`, `alfia predict` and ALFIAPredictor.load."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alfia.cohorts import Cohort, read_cohort, write_cohort
from alfia.cohorts.io import META_KEY
from alfia.cohorts.registry import dataset_names, load_cohort, register_dataset, unregister_dataset
from alfia.cohorts.schema import Column, Schema
from alfia.cohorts.splits import assign_splits
from alfia.cohorts.task import Task
from alfia.errors import AlfiaError
from alfia.text.encoder import TextEncoder, load_encoder

# the data set as registered: its declared schema says little, its builder derives the real one from the data
DECLARED = Schema(name="toyderived", description="a toy data set whose schema depends on its data",
                  columns=(Column("age", "float", "age", unit="years", valid=(18, 110)),))
DERIVED = Schema(name="toyderived-abc12345", description="toyderived, as derived from one source",
                 derived_from="toyderived",
                 columns=(Column("age", "float", "age", unit="years", valid=(18, 110)),
                          Column("lactate", "float", "lactate", unit="mmol/L", valid=(0, 30), decimals=2),
                          Column("gcs", "int", "Glasgow Coma Scale", unit="points", valid=(3, 15)),
                          Column("sepsis", "binary", "sepsis on admission"),
                          Column("unit", "category", "care unit", categories=("medical", "surgical")),
                          Column("ref_score", "float", "the source's own score", role="reference", label="REF")),
                 notes=("derived from the codes the source holds",))
TINY = {"epochs": 1, "batch_size": 16, "model": {"max_length": 48, "fusion": {"num_fusion_layers": 2}}}


def describe(w) -> str:
    """The data set's template: one measure per feature of whatever schema it is given."""
    return w.join([w.sentence([w.measure(c.name, c.description) for c in w.schema.columns if c.role == "feature"
                               and c.kind != "category"]), w.sentence([w.raw("unit")], lead="unit "),
                   w.missing_sentence()])


@pytest.fixture(scope="module", autouse=True)
def toyderived():
    register_dataset("toyderived", schema=DECLARED, template=describe)
    yield
    unregister_dataset("toyderived")


def derived_cohort(n: int = 96, seed: int = 0) -> Cohort:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 4 == 0).astype(int)
    df = pd.DataFrame({"stay_id": np.arange(1, n + 1), "hospital_mortality": y,
                       "age": rng.uniform(20, 90, n).round(), "lactate": np.where(y == 1, 5.0, 1.2) + rng.random(n),
                       "gcs": np.where(y == 1, 6, 15), "sepsis": y.astype(float),
                       "unit": np.where(rng.random(n) < 0.5, "medical", "surgical"), "ref_score": rng.random(n)})
    df.loc[::7, "lactate"] = np.nan  # a missing value, written as "not recorded"
    df["split"] = assign_splits(df["stay_id"], df["hospital_mortality"])
    return Cohort(df=DERIVED.validate(df), schema=DERIVED, info={"source": "toy builder", "synthetic": True})


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory):
    return write_cohort(derived_cohort(), tmp_path_factory.mktemp("derived") / "toy.parquet")


def _plain(df: pd.DataFrame, path, meta: dict | None = None):
    """A parquet table without ALFIA's schema definition (``meta``: the metadata it does hold)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if meta is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


def test_a_schema_round_trips_through_its_dict():
    task = Task(name="toy-48h", label="died_48h", outcome="death within 48 h", window=(0.0, 48.0),
                prediction_time=48.0, exclusions=("age < 18 years", "stay < 4 h"), source="a test")
    for schema in (DERIVED, Schema(name="toyderived-0f0f0f0f", description="another", columns=DERIVED.columns,
                                   task=task, derived_from="toyderived")):
        data = json.loads(json.dumps(schema.to_dict()))  # as stored: JSON
        assert Schema.from_dict(data) == schema
    assert DERIVED.dataset == "toyderived" and DECLARED.dataset == "toyderived" and DECLARED.derived_from is None
    assert DERIVED.name not in dataset_names()


@pytest.mark.parametrize("bad", ["a schema", {}, {**DERIVED.to_dict(), "columns": [{"name": "x", "kind": "text",
                                                                                  "description": "x"}]},
                                 {**DERIVED.to_dict(), "columns": [{"name": "x", "kind": "float", "description": "x",
                                                                    "valid": [1, 2, 3]}]},
                                 {**DERIVED.to_dict(), "columns": [{"name": "x", "kind": "category",
                                                                    "description": "x"}]},
                                 {**DERIVED.to_dict(), "name": 7}, {**DERIVED.to_dict(), "task": "cw24"}])
def test_an_unreadable_schema_definition_is_one_clear_error(bad):
    with pytest.raises(AlfiaError, match="rebuild the cohort with `alfia cohort`") as caught:
        Schema.from_dict(bad)
    assert "\n" not in str(caught.value)


def test_the_cohort_file_carries_a_derived_schema(cohort_file):
    meta = json.loads(pq.read_schema(cohort_file).metadata[META_KEY])
    assert meta["schema"] == DERIVED.name and meta["schema_definition"] == DERIVED.to_dict()
    cohort = read_cohort(cohort_file)   # although no registry knows its name
    assert cohort.schema == DERIVED and cohort.info["schema_definition"] == DERIVED.to_dict()
    pd.testing.assert_frame_equal(cohort.df, derived_cohort().df)
    assert load_cohort(str(cohort_file)).schema == DERIVED
    # and once more: a read cohort written again keeps it
    again = write_cohort(cohort, cohort_file.with_name("again.parquet"))
    assert read_cohort(again).schema == DERIVED


def test_a_declared_schema_is_still_found_by_name(tmp_path):
    df = derived_cohort().df[["stay_id", "hospital_mortality", "age", "split"]]
    path = write_cohort(Cohort(df=DECLARED.validate(df), schema=DECLARED), tmp_path / "declared.parquet")
    assert "schema_definition" not in json.loads(pq.read_schema(path).metadata[META_KEY])
    assert read_cohort(path).schema is DECLARED


def test_an_unregistered_name_without_its_definition_is_the_usual_error(tmp_path):
    path = _plain(derived_cohort().df, tmp_path / "bare.parquet", {"schema": DERIVED.name})
    with pytest.raises(AlfiaError, match="unknown schema 'toyderived-abc12345'; known schemas are"):
        read_cohort(path)


def test_a_dataframe_takes_the_schema_object():
    cohort = load_cohort(derived_cohort().df.drop(columns=["hospital_mortality", "split"]), schema=DERIVED,
                         require_outcome=False)
    assert cohort.schema is DERIVED and cohort.info["schema_definition"] == DERIVED.to_dict()
    with pytest.raises(AlfiaError, match="unknown schema"):   # a string is still a registered name
        load_cohort(derived_cohort().df, schema=DERIVED.name)


def test_the_text_encoder_saves_and_reloads_a_derived_schema(tmp_path):
    cohort = derived_cohort()
    encoder = TextEncoder(DERIVED, style="numeric").fit(cohort.df)
    encoded = encoder.encode(cohort)
    assert encoder.schema_name == DERIVED.name and encoder.schema is DERIVED
    assert encoded.df["text"].str.contains("Glasgow Coma Scale").all()
    assert encoded.df["text"].str.contains("Not recorded: lactate").sum() == cohort.df["lactate"].isna().sum()
    assert encoded.info["text_encoder"]["schema_definition"] == DERIVED.to_dict()
    encoder.save(tmp_path / "encoder.json")
    assert json.loads((tmp_path / "encoder.json").read_text())["schema_definition"] == DERIVED.to_dict()
    loaded = TextEncoder.load(tmp_path / "encoder.json")
    assert loaded.schema == DERIVED and loaded.schema_name == DERIVED.name
    pd.testing.assert_series_equal(loaded.transform(cohort.df), encoded.df["text"])
    banded = TextEncoder(DERIVED).fit(cohort.df)   # cut points round trip too
    assert TextEncoder.from_dict(json.loads(json.dumps(banded.to_dict()))).cuts_ == banded.cuts_
    # without its definition, the name alone finds nothing
    with pytest.raises(AlfiaError, match="unknown schema 'toyderived-abc12345'"):
        TextEncoder.from_dict({k: v for k, v in encoder.to_dict().items() if k != "schema_definition"})


def test_a_derived_schema_of_an_unregistered_data_set_is_one_clear_error():
    orphan = Schema(name="gone-12345678", description="x", columns=DERIVED.columns, derived_from="gone")
    with pytest.raises(AlfiaError, match="derived by data set 'gone', which is not registered here"):
        TextEncoder(orphan)


def test_cli_encode_reads_the_schema_from_the_file(cohort_file, tmp_path):
    from alfia.cli import main

    out = tmp_path / "toy.text.parquet"
    assert main(["encode", str(cohort_file), "--out", str(out), "--style", "numeric"]) == 0
    encoded = read_cohort(out)
    assert encoded.schema == DERIVED and encoded.df["text"].str.startswith("Age").all()
    assert load_encoder(out).schema == DERIVED
    # new stays in a plain table: --schema names the reused encoder's schema
    plain = _plain(derived_cohort().df.drop(columns=["hospital_mortality", "split"]), tmp_path / "new.parquet")
    again = tmp_path / "new.text.parquet"
    assert main(["encode", str(plain), "--schema", DERIVED.name, "--encoder", str(out), "--out", str(again)]) == 0
    assert read_cohort(again, require_outcome=False).df["text"].tolist() == encoded.df["text"].tolist()


@pytest.fixture(scope="module")
def trained(cohort_file, tiny_bert_dir, tmp_path_factory):
    from alfia import ALFIAPredictor

    path = tmp_path_factory.mktemp("derived-run") / "run"
    ALFIAPredictor(backbone=str(tiny_bert_dir), path=path, device="cpu", **TINY).fit(str(cohort_file), progress=False,
                                                                                     n_boot=20)
    return path


def test_the_facade_trains_and_scores_a_derived_schema(trained):
    from alfia import ALFIAPredictor
    from alfia.inference import Run

    assert Run.load(trained, device="cpu").encoder.schema == DERIVED   # from the run's encoder.json
    predictor = ALFIAPredictor.load(trained, device="cpu")
    assert predictor.schema == DERIVED and predictor.schema_name == DERIVED.name
    cohort = derived_cohort()
    new = cohort.df.drop(columns=["hospital_mortality", "split"])   # a DataFrame, validated with the run's schema
    p = predictor.predict_proba(new)
    assert p.index.tolist() == new["stay_id"].tolist() and p.between(0, 1).all()
    np.testing.assert_allclose(p, predictor.predict_proba(cohort), rtol=0, atol=1e-6)
    with pytest.raises(AlfiaError, match="missing columns gcs"):
        predictor.predict_proba(new.drop(columns=["gcs"]))


def test_the_service_takes_the_schema_from_the_run(trained):
    from alfia.serving.service import RiskService

    service = RiskService.load(trained, device="cpu")
    assert service.schema == DERIVED and service.schema_card()["name"] == DERIVED.name
    record = derived_cohort().df.iloc[0][DERIVED.feature_columns].to_dict()
    assert service.text_of(record) == TextEncoder(DERIVED, style="banded").fit(derived_cohort().df).describe_row(record)


def test_cli_predict_scores_a_derived_cohort(trained, cohort_file, tmp_path):
    from alfia import ALFIAPredictor
    from alfia.cli import main

    out = tmp_path / "scores.parquet"
    assert main(["predict", str(trained), str(cohort_file), "--out", str(out)]) == 0
    scores = pd.read_parquet(out)
    expected = ALFIAPredictor.load(trained, device="cpu").predict_proba(read_cohort(cohort_file))
    np.testing.assert_allclose(scores["probability"], expected, rtol=0, atol=1e-6)
    # a plain table of new stays: --schema names the run's schema, read from its encoder.json
    plain = _plain(derived_cohort().df.drop(columns=["hospital_mortality", "split"]), tmp_path / "new.parquet")
    assert main(["predict", str(trained), str(plain), "--schema", DERIVED.name, "--out",
                 str(tmp_path / "new.scores.parquet")]) == 0
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "new.scores.parquet")["probability"], expected, rtol=0,
                               atol=1e-6)
