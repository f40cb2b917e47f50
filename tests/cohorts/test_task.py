"""The task as an object: it travels with the cohort file, every label is read from it, and a cohort of another
task than the run's is flagged."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from alfia.cohorts import CW24, Cohort, load_cohort, read_cohort, write_cohort
from alfia.cohorts.io import META_KEY
from alfia.cohorts.synthetic import generate_synthetic
from alfia.cohorts.task import YAIB_MORTALITY24, Task, get_task, register_task, task_of_run
from alfia.errors import AlfiaError
from alfia.evaluation.drift import task_mismatch
from alfia.run_folder import RunFolder


def relabelled(cohort: Cohort, task: Task) -> Cohort:
    """The same stays and labels, stated under ``task`` (its label column)."""
    return Cohort(cohort.df.rename(columns={cohort.label: task.label}), cohort.schema, dict(cohort.info), task=task)


def test_the_two_tasks_say_what_they_predict():
    assert CW24.label == "hospital_mortality" and YAIB_MORTALITY24.label == "icu_mortality"
    assert "death in hospital" in CW24.title and "first 24 h" in CW24.title
    assert len(YAIB_MORTALITY24.exclusions) == 6 and any("30 h" in e for e in YAIB_MORTALITY24.exclusions)
    assert get_task("yaib-mortality24") is YAIB_MORTALITY24
    with pytest.raises(AlfiaError, match="unknown task"):
        get_task("mortality-72h")


def test_a_window_that_ends_after_the_prediction_time_is_refused():
    with pytest.raises(ValueError, match="prediction time"):
        Task("bad", "died", "death", window=(0, 48), prediction_time=24)


def test_a_task_round_trips_through_a_dict_and_a_name_keeps_its_definition():
    assert Task.from_dict(YAIB_MORTALITY24.to_dict()) is YAIB_MORTALITY24
    own = Task("my-task", "died_72h", "death within 72 h", window=(0, 12), prediction_time=12)
    assert Task.from_dict(json.loads(json.dumps(own.to_dict()))) == own
    register_task(own)
    with pytest.raises(AlfiaError, match="already registered"):
        register_task(Task("my-task", "other", "x"))


def test_the_cohort_file_carries_its_task_and_the_label_column(tmp_path):
    cohort = relabelled(generate_synthetic("eicu", n=200, seed=1), YAIB_MORTALITY24)
    write_cohort(cohort, tmp_path / "c.parquet")
    back = read_cohort(tmp_path / "c.parquet")
    assert back.task == YAIB_MORTALITY24 and back.label == "icu_mortality"
    assert "icu_mortality" in back.df.columns and "hospital_mortality" not in back.df.columns
    info = json.loads(pq.read_schema(tmp_path / "c.parquet").metadata[META_KEY])
    assert info["task"]["name"] == "yaib-mortality24"


def test_a_file_of_before_tasks_reads_as_its_schemas_task(tmp_path):
    cohort = generate_synthetic("eicu", n=120, seed=2)
    write_cohort(cohort, tmp_path / "c.parquet")
    table = pq.read_table(tmp_path / "c.parquet")
    info = json.loads(table.schema.metadata[META_KEY])
    del info["task"]
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(info).encode()}), tmp_path / "old.parquet")
    assert read_cohort(tmp_path / "old.parquet").task is CW24


def test_a_label_column_that_is_not_the_tasks_is_refused(tmp_path):
    cohort = generate_synthetic("eicu", n=120, seed=2)
    with pytest.raises(AlfiaError, match="icu_mortality"):
        cohort.schema.validate(cohort.df, task=YAIB_MORTALITY24)


def test_the_cross_task_warning_names_both_tasks_and_stays_quiet_for_the_same_task():
    cohort = generate_synthetic("eicu", n=100, seed=3)
    assert task_mismatch(CW24, cohort) is None
    other = relabelled(cohort, YAIB_MORTALITY24)
    warned = task_mismatch(CW24, other)
    assert warned["kind"] == "task" and "icu_mortality" in warned["message"]
    assert "cw24-in-hospital-mortality" in warned["message"]
    # new stays (no outcome, no recorded task) are scored for the run's task without a warning
    unlabelled = load_cohort(other.df.drop(columns=["icu_mortality", "split"]), schema="eicu",
                             require_outcome=False)
    assert task_mismatch(YAIB_MORTALITY24, unlabelled) is None


def test_a_run_names_its_task_and_older_runs_their_schemas(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_json(RunFolder.CONFIG, {"cohort": {"schema": "eicu"}})
    assert task_of_run(folder) is CW24
    folder.write_json(RunFolder.CONFIG, {"task": YAIB_MORTALITY24.to_dict(), "cohort": {"schema": "eicu"}})
    assert task_of_run(folder) is YAIB_MORTALITY24


def test_table1_names_the_tasks_outcome():
    from alfia.cohorts.table1 import table1

    cohort = relabelled(generate_synthetic("eicu", n=200, seed=4), YAIB_MORTALITY24)
    t = table1(cohort)
    assert "Death in the ICU, n (%)" in t["Characteristic"].tolist()
    assert "death in the ICU" in t.attrs["title"]
    assert isinstance(t, pd.DataFrame)
