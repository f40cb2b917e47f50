import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import Cohort, read_cohort, write_cohort
from alfia.cohorts.registry import register_dataset, unregister_dataset
from alfia.cohorts.schema import Column, Schema
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError

TOY = Schema(
    name="toy",
    description="a toy schema for tests",
    columns=(
        Column("age", "float", "age", unit="years", valid=(18, 120)),
        Column("sex", "category", "sex", categories=("female", "male")),
        Column("score", "int", "a score", valid=(0, 4)),
        Column("ref", "float", "reference", role="reference"),
    ),
)

def toy_frame(n=8):
    return pd.DataFrame({
        "stay_id": range(1, n + 1),
        "hospital_mortality": [0, 1] * (n // 2),
        "age": np.linspace(20, 90, n),
        "sex": ["female", "male"] * (n // 2),
        "score": [0, 1, 2, 3] * (n // 4),
        "ref": np.nan,
        "split": ["train"] * n,
    })


def test_valid_frame_passes_and_keeps_order():
    out = TOY.validate(toy_frame())
    assert list(out.columns) == TOY.required_columns()
    assert TOY.feature_columns == ["age", "sex", "score"]
    assert TOY.reference_columns == ["ref"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns=["age"]), "missing columns age"),
        (lambda d: d.assign(extra=1), "unexpected columns extra"),
        (lambda d: d.assign(hospital_mortality=[0, 2] * 4), "must be 0 or 1"),
        (lambda d: d.assign(stay_id=[1] * 8), "duplicate stay_id"),
        (lambda d: d.assign(age=[10.0] * 8), "outside its valid range"),
        (lambda d: d.assign(sex=["x"] * 8), "unknown values"),
        (lambda d: d.assign(score=[0.5] * 8), "whole numbers"),
        (lambda d: d.assign(split=["dev"] * 8), "allowed are train, val, test"),
        (lambda d: d.iloc[:0], "is empty"),
    ],
)
def test_invalid_frames_raise_one_clear_error(mutate, message):
    with pytest.raises(AlfiaError, match=message):
        TOY.validate(mutate(toy_frame()))


def test_missing_values_stay_missing():
    df = toy_frame()
    df.loc[0, "age"] = np.nan
    df.loc[1, "sex"] = None
    out = TOY.validate(df)
    assert np.isnan(out.loc[0, "age"]) and pd.isna(out.loc[1, "sex"])


def test_splits_are_stratified_deterministic_and_order_free():
    rng = np.random.default_rng(0)
    ids = pd.Series(rng.permutation(4000) + 100)
    y = pd.Series((rng.random(4000) < 0.14).astype(int))
    a = assign_splits(ids, y)
    counts = a.value_counts()
    assert abs(counts["train"] - 3000) <= 2 and abs(counts["val"] - 500) <= 2 and abs(counts["test"] - 500) <= 2
    for split in ("train", "val", "test"):
        rate = y[a == split].mean()
        assert abs(rate - y.mean()) < 0.01
    order = rng.permutation(4000)
    b = assign_splits(ids.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True))
    mapping_a = dict(zip(ids, a, strict=True))
    mapping_b = dict(zip(ids.iloc[order], b, strict=True))
    assert mapping_a == mapping_b
    assert assign_splits(ids, y, seed=1).tolist() != a.tolist()


@pytest.fixture
def toy_registered():
    register_dataset("toy", schema=TOY, template=lambda w: "")  # read_cohort finds a file's schema in the registry
    yield
    unregister_dataset("toy")


def test_write_is_atomic_and_keeps_the_old_file(tmp_path, toy_registered):
    path = tmp_path / "toy.parquet"
    write_cohort(Cohort(toy_frame(), TOY, {"source": "test"}), path)
    before = path.read_bytes()
    with pytest.raises(AlfiaError):
        write_cohort(Cohort(toy_frame().assign(age=5.0), TOY), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["toy.parquet"]
    back = read_cohort(path)
    assert back.info["source"] == "test" and len(back.df) == 8


def test_patient_level_splits_keep_each_patient_in_one_split_and_stay_stratified():
    """Regression (issue 15): eICU stays of one patient could land in train and test."""
    rng = np.random.default_rng(1)
    n_patients = 1500
    stays_per_patient = rng.integers(1, 4, n_patients)
    patients = pd.Series(np.repeat([f"00-{i}" for i in range(n_patients)], stays_per_patient))
    ids = pd.Series(np.arange(len(patients)) + 10)
    y = pd.Series((rng.random(len(patients)) < 0.12).astype(int))
    split = assign_splits(ids, y, patient_ids=patients)
    assert (split.groupby(patients).nunique() == 1).all()
    patient_died = y.groupby(patients).max()
    patient_split = split.groupby(patients).first()
    assert abs((patient_split == "train").mean() - 0.75) < 0.01
    for name in ("train", "val", "test"):
        assert abs(patient_died[patient_split == name].mean() - patient_died.mean()) < 0.01
    # one stay per patient: identical to the stay-level split (PhysioNet 2012's published splits do not move)
    assert assign_splits(ids, y, patient_ids=ids).tolist() == assign_splits(ids, y).tolist()
