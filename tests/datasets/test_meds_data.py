"""The MEDS data ALFIA ships or makes for tests: the synthetic MIMIC-IV-MEDS writer, the MIMIC-IV-MEDS -> YAIB concept
map, and the YAIB demo -> MEDS fixture, all checked against the ``meds`` package's schemas."""

import json
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alfia.datasets.meds.synthetic import DATA_SCHEMA, write_synthetic_meds
from alfia.datasets.yaib.schema import BY_NAME, VARIABLES
from tests.datasets import meds_fixtures as mf

meds = pytest.importorskip("meds")

STATICS = {"height": ("cm", (10, 230), "first"), "weight": ("kg", (1, 500), "first"), "sex": (None, None, "category")}


def _validate_dataset(root) -> list[pd.DataFrame]:
    """Every file of a MEDS dataset against the meds schemas; the shards as frames."""
    shards = []
    files = sorted((root / "data").rglob("*.parquet"))
    assert files
    for path in files:
        table = pq.read_table(path)
        meds.DataSchema.validate(table)
        assert table.schema.equals(meds.DataSchema.schema()), table.schema
        shards.append(table.to_pandas())
    meds.CodeMetadataSchema.validate(pq.read_table(root / meds.code_metadata_filepath))
    meds.SubjectSplitSchema.validate(pq.read_table(root / meds.subject_splits_filepath))
    meds.DatasetMetadataSchema.validate(json.loads((root / meds.dataset_metadata_filepath).read_text()))
    return shards


def _sorted_within_subject(df: pd.DataFrame) -> bool:
    key = df["time"].astype("int64").where(df["time"].notna(), np.iinfo(np.int64).min).to_numpy()
    subject = df["subject_id"].to_numpy()
    same = subject[1:] == subject[:-1]
    return bool(np.all(subject[1:] >= subject[:-1]) and np.all(key[1:][same] >= key[:-1][same]))


def _map() -> list[dict]:
    return mf.read_map_rows()


def _first_row(code: str, rows: list[dict]) -> dict | None:
    return next((r for r in rows if re.fullmatch(r["code"], code)), None)


# ---------------------------------------------------------------------------------------------------------------
# the synthetic MIMIC-IV-MEDS writer
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic-meds")
    return root, write_synthetic_meds(root, 300, seed=7, days=3, shard_size=100)


def test_synthetic_meds_validates_against_the_meds_schemas(synthetic):
    root, info = synthetic
    assert DATA_SCHEMA.equals(meds.DataSchema.schema())
    shards = _validate_dataset(root)
    assert info["shards"] == len(shards) == 5  # train 240 (3 shards of <= 100), tuning 30, held_out 30
    assert info["events"] == sum(len(s) for s in shards)
    assert info["bytes"] == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert info["splits"] == {"train": 240, "tuning": 30, "held_out": 30}
    meta = json.loads((root / "metadata" / "dataset.json").read_text())
    assert meta["meds_version"] == "0.4.1" and meta["dataset_name"]

    seen = [set(s["subject_id"]) for s in shards]
    assert sum(len(s) for s in seen) == len(set().union(*seen)) == 300  # each subject in exactly one shard
    assert all(_sorted_within_subject(s) for s in shards)
    splits = pd.read_parquet(root / "metadata" / "subject_splits.parquet")
    assert set(splits["subject_id"]) == set().union(*seen)
    for s, path in zip(shards, sorted((root / "data").rglob("*.parquet")), strict=True):
        assert set(splits.set_index("subject_id").loc[list(set(s["subject_id"])), "split"]) == {path.parent.name}
    assert max(pq.ParquetFile(p).metadata.row_group(0).num_rows for p in (root / "data").rglob("*.parquet")) \
        <= 1_000_000

    df = pd.concat(shards, ignore_index=True)
    codes = pd.read_parquet(root / "metadata" / "codes.parquet")
    assert set(df["code"]) <= set(codes["code"]) and codes["description"].str.len().gt(0).all()
    assert (df["time"].isna() == df["code"].str.startswith("GENDER//")).all()  # the static rows
    per = df.groupby("subject_id")["code"]
    for code in ("MEDS_BIRTH", "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"):
        assert per.apply(lambda c, code=code: (c == code).sum()).eq(1).all()
    assert per.apply(lambda c: c.str.startswith("ICU_ADMISSION//").sum()).isin([1, 2]).all()
    death = df[df["code"] == "MEDS_DEATH"].set_index("subject_id")["time"]
    died = df[df["code"] == "HOSPITAL_DISCHARGE//DIED"].set_index("subject_id")["time"]
    assert len(death) == info["deaths"] > 0 and death.sort_index().equals(died.sort_index())
    birth = df[df["code"] == "MEDS_BIRTH"].set_index("subject_id")["time"]
    admit = df[df["code"].str.startswith("HOSPITAL_ADMISSION")].set_index("subject_id")["time"]
    age = (admit - birth.reindex(admit.index)).dt.days / 365.25
    assert age.between(17.99, 90.01).all()
    values = df[df["code"] == "LAB//220045//bpm"]["numeric_value"]
    assert values.between(25, 220).all() and 70 < values.median() < 100


def test_synthetic_meds_codes_feed_the_concept_map(synthetic):
    root, _ = synthetic
    codes = set(pd.read_parquet(root / "metadata" / "codes.parquet")["code"])
    rows = _map()
    fed = {c: (_first_row(c, rows) or {}).get("concept") for c in codes}
    assert {fed[f"LAB//RESULT//{i}//{u}"] for i, u in ((50912, "mg/dL"), (50813, "mmol/L"), (51006, "mg/dL"))} == \
        {"crea", "lact", "bun"}
    assert fed["LAB//220045//bpm"] == "hr" and fed["LAB//223762//°C"] == "temp"
    assert fed["SUBJECT_FLUID_OUTPUT//226559//ml"] == "urine" and fed["GENDER//F"] == "sex"
    assert fed["LAB//SPECIMEN_COLLECTED//50912"] is None  # no value: feeds nothing
    assert {"hr", "sbp", "dbp", "map", "resp", "o2sat", "temp", "crea", "na", "k", "lact", "wbc", "hgb", "plt", "glu",
            "bun", "urine", "sex"} == {c for c in fed.values() if c}


def test_synthetic_meds_is_deterministic_and_has_a_legacy_lab_form(tmp_path):
    a = write_synthetic_meds(tmp_path / "a", 40, seed=3, days=2, lab_style="legacy")
    b = write_synthetic_meds(tmp_path / "b", 40, seed=3, days=2, lab_style="legacy")
    assert a["events"] == b["events"]
    da = pd.read_parquet(tmp_path / "a" / "data" / "train" / "0.parquet")
    assert da.equals(pd.read_parquet(tmp_path / "b" / "data" / "train" / "0.parquet"))
    assert "LAB//50912//mg/dL" in set(da["code"]) and not da["code"].str.startswith("LAB//RESULT//").any()
    with pytest.raises(ValueError):
        write_synthetic_meds(tmp_path / "c", 10, lab_style="other")


# ---------------------------------------------------------------------------------------------------------------
# the concept map
# ---------------------------------------------------------------------------------------------------------------
def test_concept_map_covers_yaib_with_ricus_names_units_and_ranges():
    rows = _map()
    assert rows and {"code", "concept", "unit", "description", "aggregate", "scale", "shift", "valid_min",
                     "valid_max", "source", "note", "example"} <= set(rows[0])
    names = {v.name for v in VARIABLES}
    assert {r["concept"] for r in rows} == names | set(STATICS)  # all 48 hourly concepts and the statics but age
    for r in rows:
        pattern = re.compile(r["code"])
        assert pattern.fullmatch(r["example"]), r
        assert _first_row(r["example"], rows) is r, f"{r['example']} is taken by an earlier row"
        float(r["scale"] or 1), float(r["shift"] or 0)
        if r["concept"] in names:
            v = BY_NAME[r["concept"]]
            assert (r["unit"] or None) == v.unit and r["description"] == v.words
            assert (float(r["valid_min"]), float(r["valid_max"])) == tuple(map(float, v.valid))
            assert r["aggregate"] == ("sum" if v.name == "urine" else "stats")
            assert "miiv" in r["source"] and re.search(r"itemid \d+", r["source"])
        else:
            unit, valid, aggregate = STATICS[r["concept"]]
            assert (r["unit"] or None) == unit and r["aggregate"] == aggregate
            if valid:
                assert (float(r["valid_min"]), float(r["valid_max"])) == valid
        if r["aggregate"] == "category":
            assert pattern.groups == 1 and pattern.fullmatch("GENDER//M").group(1) == "M"


def test_concept_map_matches_both_lab_forms_and_converts_units():
    rows = _map()
    for code, concept in (("LAB//50912//mg/dL", "crea"), ("LAB//RESULT//50912//mg/dL", "crea"),
                          ("LAB//50912", "crea"), ("LAB//RESULT//50813//mmol/L", "lact"),
                          ("LAB//220045//bpm", "hr"), ("SUBJECT_FLUID_OUTPUT//226559//ml", "urine")):
        assert _first_row(code, rows)["concept"] == concept, code
    for code in ("LAB//SPECIMEN_COLLECTED//50912", "LAB//509120//mg/dL", "LAB//RESULT//2200450//bpm",
                 "LAB//220045X//bpm", "MEDS_BIRTH", "ICU_ADMISSION//MICU"):
        assert _first_row(code, rows) is None, code

    def convert(code, value):
        r = _first_row(code, rows)
        return value * float(r["scale"] or 1) + float(r["shift"] or 0)

    assert convert("LAB//223761//°F", 98.6) == pytest.approx(37.0)
    assert convert("LAB//223762//°C", 37.0) == 37.0
    assert convert("LAB//RESULT//50889//mg/dL", 1.5) == pytest.approx(15.0)
    assert convert("LAB//RESULT//50889//mg/L", 15.0) == 15.0
    assert convert("LAB//226707//Inch", 70) == pytest.approx(177.8)


def test_concept_map_reads_with_the_meds_reader():
    concepts = pytest.importorskip("alfia.datasets.meds.concepts")
    cmap = concepts.read_concept_map(mf.meds_concepts_path())
    assert len(cmap.rules) == len(_map()) and len(cmap.concepts) == 48 + len(STATICS)


# ---------------------------------------------------------------------------------------------------------------
# the YAIB demo as MEDS
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def yaib_meds(tmp_path_factory):
    root = tmp_path_factory.mktemp("yaib-meds")
    return root, mf.yaib_to_meds(root)


def test_yaib_to_meds_converts_every_hourly_value(yaib_meds):
    root, info = yaib_meds
    (df,) = _validate_dataset(root)
    meds.LabelSchema.validate(pq.read_table(info["labels"]))
    assert _sorted_within_subject(df)
    folder = mf.REPO / "alfia" / "datasets" / "yaib" / "data" / "eicu_demo"
    dyn, sta = pd.read_parquet(folder / "dyn.parquet"), pd.read_parquet(folder / "sta.parquet")
    hourly = dyn.drop(columns=["stay_id", "time"])
    assert info["subjects"] == len(sta) == df["subject_id"].nunique()
    assert info["hourly_events"] == int(hourly.notna().sum().sum())

    timed = df[df["time"].notna()]
    admit = timed[timed["code"].str.startswith("ICU_ADMISSION//")].set_index("subject_id")["time"]
    timed = timed.assign(hour=(timed["time"] - admit.reindex(timed["subject_id"]).to_numpy()) / pd.Timedelta(hours=1))
    for concept in hourly.columns:
        code = info["codes"][concept]
        events = timed[timed["code"] == code]
        assert len(events) == dyn[concept].notna().sum(), concept
        late = dyn["time"] >= pd.Timedelta(hours=24)  # ricu's 24:00-24:59 row: at admission + 25 h
        assert (events["hour"] > 24).sum() == (dyn[concept].notna() & late).sum(), concept
        assert (events["hour"] <= 24).sum() == (dyn[concept].notna() & ~late).sum(), concept
    assert timed.loc[timed["code"].isin(info["codes"].values()), "hour"].between(1, 25).all()
    hr = dyn.dropna(subset=["hr"]).iloc[0]
    event = timed[(timed["subject_id"] == hr["stay_id"]) & (timed["code"] == "LAB//220045//bpm")].iloc[0]
    assert event["hour"] == hr["time"] / pd.Timedelta(hours=1) + 1 and event["numeric_value"] == np.float32(hr["hr"])

    rows = _map()
    structural = re.compile(r"MEDS_BIRTH|MEDS_DEATH|(HOSPITAL|ICU)_(ADMISSION|DISCHARGE)//.*")
    for code in set(df["code"]):
        assert structural.fullmatch(code) or _first_row(code, rows), code
    for concept, code in info["codes"].items():
        assert _first_row(code, rows)["concept"] == concept


def test_yaib_to_meds_statics_age_labels_and_splits(yaib_meds):
    root, info = yaib_meds
    df = pd.read_parquet(info["data"][0])
    folder = mf.REPO / "alfia" / "datasets" / "yaib" / "data" / "eicu_demo"
    sta = pd.read_parquet(folder / "sta.parquet").set_index("stay_id")
    outc = pd.read_parquet(folder / "outc.parquet").set_index("stay_id")["label"]
    static = df[df["time"].isna()]
    sex = static[static["code"].str.startswith("GENDER//")].set_index("subject_id")["code"]
    assert sex.map({"GENDER//F": "Female", "GENDER//M": "Male"}).equals(sta["sex"].dropna().reindex(sex.index))
    height = static[static["code"] == info["codes"]["height"]].set_index("subject_id")["numeric_value"] * 2.54
    assert np.allclose(height, sta["height"].reindex(height.index), rtol=1e-6)
    assert len(height) == sta["height"].notna().sum()
    weight = static[static["code"] == info["codes"]["weight"]].set_index("subject_id")["numeric_value"]
    assert np.allclose(weight, sta["weight"].reindex(weight.index), rtol=1e-6)

    at = df[df["code"].str.startswith("ICU_ADMISSION//")].set_index("subject_id")["time"]
    birth = df[df["code"] == "MEDS_BIRTH"].set_index("subject_id")["time"]
    age = (at.reindex(birth.index) - birth) / pd.Timedelta(days=365.25)
    assert np.allclose(age, sta["age"].reindex(age.index), atol=1e-9) and len(age) == sta["age"].notna().sum()

    death = df[df["code"] == "MEDS_DEATH"].set_index("subject_id")["time"]
    assert set(death.index) == set(outc[outc == 1].index) and info["deaths"] == len(death)
    assert ((death - at.reindex(death.index)) == pd.Timedelta(hours=48)).all()
    labels = pd.read_parquet(info["labels"]).set_index("subject_id")
    assert labels["boolean_value"].astype(int).equals(outc.reindex(labels.index).astype(int).rename("boolean_value"))
    assert ((labels["prediction_time"] - at.reindex(labels.index)) == pd.Timedelta(hours=24)).all()

    from alfia.cohorts.registry import load_bundled

    own = load_bundled("yaib-eicu-demo").df.set_index("stay_id")["split"]
    splits = pd.read_parquet(root / "metadata" / "subject_splits.parquet").set_index("subject_id")["split"]
    assert splits.equals(own.map(mf.SPLIT_NAMES).reindex(splits.index).rename("split"))
    assert set(splits) == {"train", "tuning", "held_out"}


def test_write_meds_sorts_shards_and_types(tmp_path):
    t = pd.Timestamp("2150-01-01 10:00")
    events = pd.DataFrame({"subject_id": [2, 1, 2, 1, 3, 3],
                           "time": [t, t + pd.Timedelta(hours=1), pd.NaT, t, t, t],
                           "code": ["B", "A", "GENDER//F", "A", "C", "D"],
                           "numeric_value": [1.0, 2.0, None, 3.0, None, 4.5],
                           "text_value": [None, None, None, "x", None, None]})
    out = mf.write_meds(tmp_path, events, codes={"A": "a code"}, shards=2)
    shards = _validate_dataset(tmp_path)
    assert out["shards"] == 2 and out["subjects"] == 3 and out["events"] == 6
    df = pd.concat(shards, ignore_index=True)
    assert df["subject_id"].tolist() == [1, 1, 2, 2, 3, 3] and df["code"].tolist() == ["A", "A", "GENDER//F", "B",
                                                                                        "C", "D"]
    assert df["numeric_value"].tolist()[:2] == [3.0, 2.0] and df["text_value"].tolist()[0] == "x"
    codes = pd.read_parquet(tmp_path / "metadata" / "codes.parquet").set_index("code")["description"]
    assert codes["A"] == "a code" and set(codes.index) == set("ABCD") | {"GENDER//F"}
