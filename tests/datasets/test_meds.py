"""``alfia cohort meds``: the MEDS checks and refusals, the label-file window, the two built-in tasks, the splits,
the features (chosen from the data or from a concept map) and what is never read (outcome codes, text_value)."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alfia.cli import main
from alfia.cohorts import read_cohort
from alfia.datasets.meds.builder import build_meds
from alfia.errors import AlfiaError
from tests.datasets.meds_fixtures import write_meds

T0 = pd.Timestamp("2150-01-01 08:00")
H = pd.Timedelta(hours=1)


def ev(subject, time, code, value=None, text=None):
    return {"subject_id": subject, "time": time, "code": code, "numeric_value": value, "text_value": text}


def person(subject, *, age=60.0, sex="F", admit=T0, died=None, discharge=None, hr=(), extra=()):
    """One subject: birth, sex, a hospital and ICU admission at ``admit``, heart rates at (hours, value)."""
    rows = [ev(subject, None, f"GENDER//{sex}"), ev(subject, admit - pd.Timedelta(days=365.25 * age), "MEDS_BIRTH"),
            ev(subject, admit - 2 * H, "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"),
            ev(subject, admit, "ICU_ADMISSION//MICU")]
    rows += [ev(subject, admit + h * H, "LAB//220045//bpm", v) for h, v in hr]
    if died is not None:
        rows += [ev(subject, admit + died * H, "MEDS_DEATH"), ev(subject, admit + died * H, "HOSPITAL_DISCHARGE//DIED")]
    if discharge is not None:
        rows += [ev(subject, admit + discharge * H, "HOSPITAL_DISCHARGE//HOME")]
    return rows + list(extra)


def cohort_of(tmp_path, rows, **kwargs):
    root = tmp_path / "meds"
    write_meds(root, pd.DataFrame(rows), codes={"LAB//220045//bpm": "Heart Rate"}, **kwargs.pop("write", {}))
    return build_meds(root, progress=False, min_share=0.01, **kwargs)


def labels_file(path, rows):
    table = pa.table({"subject_id": pa.array([r[0] for r in rows], pa.int64()),
                      "prediction_time": pa.array([r[1] for r in rows], pa.timestamp("us")),
                      "boolean_value": pa.array([r[2] for r in rows], pa.bool_())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def many(n=40, **kwargs):
    """``n`` subjects (enough for the splits), every fifth one dying in hospital."""
    rows = []
    for s in range(1, n + 1):
        rows += person(s, age=30 + s, died=30 if s % 5 == 0 else None, discharge=None if s % 5 == 0 else 50,
                       hr=[(1, 80 + s), (5, 90 + s)], **kwargs)
    return rows


# --- the standard and the refusals ----------------------------------------------------------------------------------

def test_a_folder_that_is_not_meds_is_refused_naming_the_first_difference(tmp_path):
    root = tmp_path / "meds"
    write_meds(root, pd.DataFrame(many(4)))
    shard = next((root / "data").rglob("*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.set_column(0, "subject_id", table["subject_id"].cast(pa.int32())), shard)
    with pytest.raises(AlfiaError, match=r"is not MEDS 0\.4: .*subject_id \(want int64, got int32\)"):
        build_meds(root, task="cw24-in-hospital", progress=False)
    (root / "metadata" / "codes.parquet").unlink()
    pq.write_table(table, shard)
    with pytest.raises(AlfiaError, match=r"is not MEDS 0\.4: metadata/codes\.parquet is missing"):
        build_meds(root, task="cw24-in-hospital", progress=False)
    with pytest.raises(AlfiaError, match="no data/"):
        build_meds(tmp_path, task="cw24-in-hospital", progress=False)


def test_a_label_file_with_the_wrong_columns_is_refused(tmp_path):
    rows = many(4)
    write_meds(tmp_path / "meds", pd.DataFrame(rows))
    bad = tmp_path / "labels" / "l.parquet"
    pq.write_table(pa.table({"subject_id": pa.array([1], pa.int64()),
                             "prediction_time": pa.array([T0 + 24 * H], pa.timestamp("us")),
                             "label": pa.array([True])}), bad.parent.mkdir(parents=True) or bad)
    with pytest.raises(AlfiaError, match="label"):
        build_meds(tmp_path / "meds", labels=bad.parent, progress=False)
    labels_file(bad, [(1, T0 + 24 * H, True)])
    table = pq.read_table(bad).drop(["boolean_value"]).append_column("integer_value", pa.array([1], pa.int64()))
    pq.write_table(table, bad)
    with pytest.raises(AlfiaError, match="no boolean_value column"):
        build_meds(tmp_path / "meds", labels=bad, progress=False)


def test_a_subject_in_the_labels_but_not_in_the_data_is_refused(tmp_path):
    write_meds(tmp_path / "meds", pd.DataFrame(many(4)))
    labels = labels_file(tmp_path / "l.parquet", [(1, T0 + 24 * H, False), (99, T0 + 24 * H, True)])
    with pytest.raises(AlfiaError, match="1 subject that the MEDS data does not hold .*subject_id 99"):
        build_meds(tmp_path / "meds", labels=labels, progress=False)


def test_a_subject_twice_at_one_prediction_time_is_refused(tmp_path):
    write_meds(tmp_path / "meds", pd.DataFrame(many(4)))
    labels = labels_file(tmp_path / "l.parquet", [(1, T0 + 24 * H, False), (1, T0 + 24 * H, True)])
    with pytest.raises(AlfiaError, match="subject 1 .* twice"):
        build_meds(tmp_path / "meds", labels=labels, progress=False)


def test_labels_and_task_exclude_each_other_and_one_is_needed(tmp_path):
    write_meds(tmp_path / "meds", pd.DataFrame(many(4)))
    with pytest.raises(AlfiaError, match="--labels DIR or --task NAME"):
        build_meds(tmp_path / "meds", progress=False)
    with pytest.raises(AlfiaError, match="unknown MEDS task"):
        build_meds(tmp_path / "meds", task="mortality", progress=False)


def test_the_cli_refuses_in_one_line_and_writes_nothing(tmp_path, capsys):
    write_meds(tmp_path / "meds", pd.DataFrame(many(4)))
    labels = labels_file(tmp_path / "l.parquet", [(1, T0 + 24 * H, False), (1, T0 + 24 * H, True)])
    out = tmp_path / "c.parquet"
    assert main(["cohort", "meds", "--source", str(tmp_path / "meds"), "--labels", str(labels), "--out",
                 str(out)]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "twice" in err[0] and not out.exists()


# --- the label-file window ------------------------------------------------------------------------------------------

def test_label_rows_read_the_24_hours_before_the_prediction_time_inclusive(tmp_path):
    t = T0 + 30 * H
    us = pd.Timedelta(microseconds=1)
    rows = person(1) + [ev(1, t - 24 * H - us, "LAB//220045//bpm", 50.0), ev(1, t - 24 * H, "LAB//220045//bpm", 60.0),
                        ev(1, t, "LAB//220045//bpm", 70.0), ev(1, t + us, "LAB//220045//bpm", 200.0)]
    for s in range(2, 30):
        rows += person(s, hr=[(10, 80.0)])
    labels = labels_file(tmp_path / "l.parquet", [(s, t, s == 1) for s in range(1, 30)])
    cohort = cohort_of(tmp_path, rows, labels=labels)
    row = cohort.df[cohort.df["subject_id"] == 1].iloc[0]
    assert (row["heart_rate_min"], row["heart_rate_max"], row["heart_rate_count"]) == (60.0, 70.0, 2)
    assert row["outcome"] == 1 and row["prediction_time"] == t
    assert row["age"] == pytest.approx(60.0 + 6 / 24 / 365.25)  # at prediction time - 24 h (admission + 6 h)
    assert cohort.task.label == "outcome" and "24 h before the prediction time" in cohort.task.inputs
    assert cohort.df["stay_id"].is_unique and set(cohort.df["gender"]) == {"F"}


# --- the built-in tasks ---------------------------------------------------------------------------------------------

def test_cw24_in_hospital_keeps_first_icu_stays_of_adults_and_labels_death_before_discharge(tmp_path):
    rows = many(30)
    rows += person(101, died=100, hr=[(0, 100.0), (23.9, 110.0), (24, 300.0)])  # label 1; hour 24 not an input
    rows += person(102, discharge=60, extra=[ev(102, T0 + 30 * H, "ICU_ADMISSION//SICU")])  # a second ICU stay
    rows += person(103, age=17, discharge=40)  # a child
    rows += person(104)  # no discharge, no death: outcome unknown
    rows += person(105, discharge=40, extra=[ev(105, T0 + 45 * H, "MEDS_DEATH")])  # death after discharge: 0
    cohort = cohort_of(tmp_path, rows, task="cw24-in-hospital")
    df = cohort.df.set_index("subject_id")
    assert 101 in df.index and df.loc[101, "hospital_mortality"] == 1
    assert (df.loc[101, "heart_rate_max"], df.loc[101, "heart_rate_count"]) == (110.0, 2)
    assert df.index.value_counts().loc[102] == 1 and df.loc[102, "prediction_time"] == T0 + 24 * H
    assert 103 not in df.index and 104 not in df.index
    assert df.loc[105, "hospital_mortality"] == 0
    attrition = cohort.info["attrition"]
    assert (attrition["not_first_icu_admission_of_hospital_stay"], attrition["age_under_18"],
            attrition["outcome_unknown"]) == (1, 1, 1)
    assert cohort.task.name == "cw24-in-hospital" and cohort.task.label == "hospital_mortality"


def test_meds_dev_in_icu_first_24h_uses_the_history_a_gap_and_death_before_icu_discharge(tmp_path):
    def stay(s, *ends, hr_before=None):
        rows = person(s, hr=[(2, 90.0)])
        if hr_before is not None:
            rows.append(ev(s, T0 - 100 * H, "LAB//220045//bpm", hr_before))
        return rows + [ev(s, T0 + h * H, code) for h, code in ends]

    rows = []
    for s in range(1, 30):
        rows += stay(s, (72, "ICU_DISCHARGE//MICU"))
    rows += stay(101, (60, "MEDS_DEATH"), (60, "ICU_DISCHARGE//MICU"), hr_before=40.0)  # death in the ICU: 1
    rows += stay(102, (30, "ICU_DISCHARGE//MICU"))  # discharged in the gap: left out
    rows += stay(103, (40, "ICU_ADMISSION//SICU"), (90, "ICU_DISCHARGE//SICU"))  # a new ICU stay in the gap: out
    rows += stay(104, (50, "ICU_DISCHARGE//MICU"), (100, "MEDS_DEATH"))  # died after the ICU: 0
    rows += stay(105, (24, "ICU_DISCHARGE//MICU"))  # discharged at 24 h (inside the gap, which starts after t)
    cohort = cohort_of(tmp_path, rows, task="meds-dev-in-icu-first-24h")
    df = cohort.df.set_index("subject_id")
    assert df.loc[101, "icu_mortality"] == 1 and df.loc[104, "icu_mortality"] == 0
    assert df.loc[101, "heart_rate_min"] == 40.0  # the whole history is an input
    first_stays = set(cohort.df.loc[cohort.df["prediction_time"] == T0 + 24 * H, "subject_id"])
    assert {102, 103, 105}.isdisjoint(first_stays) and {101, 104} <= first_stays
    assert (df.loc[[103], "prediction_time"] == T0 + 64 * H).all()  # 103's second ICU stay is a row of its own
    assert cohort.info["attrition"]["event_in_gap_24h_to_48h"] == 3
    assert "whole history" in cohort.task.title


# --- splits ---------------------------------------------------------------------------------------------------------

def test_meds_splits_are_read_and_other_names_fall_back_to_alfias_split(tmp_path, caplog):
    rows = many(40)
    splits = pd.DataFrame({"subject_id": range(1, 41), "split": ["train"] * 30 + ["tuning"] * 5 + ["held_out"] * 5})
    cohort = cohort_of(tmp_path, rows, task="cw24-in-hospital", write={"splits": splits})
    got = cohort.df.set_index("subject_id")["split"]
    assert (got.loc[31:35] == "val").all() and (got.loc[36:40] == "test").all() and (got.loc[:30] == "train").all()
    other = splits.assign(split=["fold0"] * 20 + ["fold1"] * 20)
    with caplog.at_level(logging.WARNING):
        cohort = cohort_of(tmp_path / "b", rows, task="cw24-in-hospital", write={"splits": other})
    assert "ALFIA's 75/12.5/12.5 split by subject" in caplog.text
    assert set(cohort.df["split"]) == {"train", "val", "test"}
    assert cohort.df.groupby("subject_id")["split"].nunique().max() == 1


# --- features -------------------------------------------------------------------------------------------------------

def test_features_are_named_by_their_description_and_outcome_codes_are_never_features(tmp_path):
    cohort = cohort_of(tmp_path, many(40), task="cw24-in-hospital")
    features = cohort.schema.feature_columns
    assert "heart_rate_max" in features and "heart_rate_count" in features
    assert "sex" not in features and "gender" in features  # GENDER//F|M: a category named by its prefix
    assert not any("discharge" in f or "death" in f for f in features)
    assert cohort.schema.derived_from == "meds" and cohort.schema.name.startswith("meds-")
    assert cohort.schema["heart_rate_max"].description.startswith("heart rate")
    assert set(cohort.schema.reference_columns) == {"subject_id", "prediction_time"}


def test_max_codes_and_min_share_choose_the_numeric_codes(tmp_path):
    rows = many(40)
    rare = [ev(s, T0 + 3 * H, "LAB//50813//mmol/L", 2.0) for s in range(1, 7)]  # lactate in 6 of 40 windows
    common = [ev(s, T0 + 3 * H, "LAB//50912//mg/dL", 1.0) for s in range(1, 41)]
    root = tmp_path / "meds"
    write_meds(root, pd.DataFrame(rows + rare + common), codes={"LAB//220045//bpm": "Heart Rate",
                                                                 "LAB//50813//mmol/L": "Lactate",
                                                                 "LAB//50912//mg/dL": "Creatinine"})
    wide = build_meds(root, task="cw24-in-hospital", min_share=0.01, progress=False).schema.feature_columns
    assert {"lactate_max", "creatinine_max", "heart_rate_max"} <= set(wide)
    narrow = build_meds(root, task="cw24-in-hospital", min_share=0.2, progress=False).schema.feature_columns
    assert "lactate_max" not in narrow and "creatinine_max" in narrow
    one = build_meds(root, task="cw24-in-hospital", min_share=0.01, max_codes=1, progress=False).schema
    assert sum(c.endswith("_max") for c in one.feature_columns) == 1


def test_a_concept_map_converts_units_reads_categories_and_drops_out_of_range_values(tmp_path):
    concepts = tmp_path / "concepts.csv"
    concepts.write_text("code,concept,unit,description,aggregate,scale,shift,valid_min,valid_max\n"
                        "LAB//220045//bpm,hr,bpm,heart rate,stats,,,0,250\n"
                        "LAB//223761//.*,temp,C,temperature,stats,0.5555555556,-17.7777777778,25,45\n"
                        "GENDER//(.*),sex,,sex,category,,,,\n")
    rows = many(30, extra=())
    rows += [ev(1, T0 + 2 * H, "LAB//223761//°F", 98.6), ev(1, T0 + 3 * H, "LAB//220045//bpm", 400.0)]
    cohort = cohort_of(tmp_path, rows, task="cw24-in-hospital", concepts=concepts)
    row = cohort.df.set_index("subject_id").loc[1]
    assert row["temp_max"] == pytest.approx(37.0, abs=1e-5) and row["hr_max"] == 91.0  # float32 values
    assert cohort.info["meds"]["feature_report"]["event_values_out_of_range_dropped"] == {"hr": 1}
    assert cohort.schema["sex"].categories == ("F",) and "gender" not in cohort.schema.feature_columns
    bad = tmp_path / "bad.csv"
    bad.write_text("code,concept,aggregate\nLAB//.*,stay_id,stats\n")
    with pytest.raises(AlfiaError, match="concept 'stay_id'"):
        cohort_of(tmp_path / "b", rows, task="cw24-in-hospital", concepts=bad)


def test_text_value_is_read_only_when_asked(tmp_path):
    note = "Pt confused, family at bedside"
    rows = many(30) + [ev(s, T0 + 1 * H, "NOTE//NURSING", None, note) for s in range(1, 31)]
    concepts = tmp_path / "concepts.csv"
    concepts.write_text("code,concept,aggregate\nLAB//220045//bpm,hr,stats\nNOTE//NURSING,nursing_note,category\n")
    with pytest.raises(AlfiaError, match="--text-values"):
        cohort_of(tmp_path, rows, task="cw24-in-hospital", concepts=concepts)
    plain = cohort_of(tmp_path / "b", rows, task="cw24-in-hospital")  # derived: text_value never selected
    assert note not in plain.df.astype(str).to_numpy().ravel().tolist()
    asked = cohort_of(tmp_path / "c", rows, task="cw24-in-hospital", concepts=concepts, text_values=True)
    assert (asked.df["nursing_note"] == note).all()


def test_features_of_an_earlier_cohort_give_the_same_schema(tmp_path):
    first = cohort_of(tmp_path / "a", many(40), task="cw24-in-hospital")
    path = tmp_path / "first.parquet"
    from alfia.cohorts import write_cohort

    write_cohort(first, path)
    rows = many(40, sex="M") + [ev(1, T0 + 3 * H, "LAB//50912//mg/dL", 1.0), ev(2, None, "GENDER//X")]
    again = cohort_of(tmp_path / "b", rows, task="cw24-in-hospital", features_of=path)
    assert again.schema == first.schema
    assert again.info["meds"]["feature_report"]["unknown_categories_set_missing"] == {"gender": 40}
    assert read_cohort(path).schema == first.schema  # the derived schema travels in the file
    meta = json.loads(pq.read_schema(path).metadata[b"alfia.cohort"])
    assert meta["schema_definition"]["derived_from"] == "meds"


def test_the_command_writes_shard_by_shard_the_cohort_built_in_memory(tmp_path):
    """`alfia cohort meds --out` streams the shards through a scratch file; the result is the in-memory cohort."""
    from alfia.datasets.meds.synthetic import write_synthetic_meds

    write_synthetic_meds(tmp_path / "meds", 120, shard_size=40, seed=3)
    out = tmp_path / "c.parquet"
    assert main(["cohort", "meds", "--source", str(tmp_path / "meds"), "--task", "cw24-in-hospital", "--out",
                 str(out)]) == 0
    written = read_cohort(out)
    built = build_meds(tmp_path / "meds", task="cw24-in-hospital", progress=False)
    assert written.schema == built.schema and written.info["meds"] == json.loads(json.dumps(built.info["meds"]))
    pd.testing.assert_frame_equal(written.df, built.df)
    assert pq.ParquetFile(out).num_row_groups > 1  # one row group per shard: never the whole table at once
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch file left
