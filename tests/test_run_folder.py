"""alfia.run_folder: RunFolder and StudyFolder, the one place that names the files of a run and of a study; their
readers (None or empty for a file not written yet, one clear error for a damaged one), their atomic writers and
RunFolder.copy_to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from alfia.errors import AlfiaError
from alfia.io import metrics_path
from alfia.run_folder import RunFolder, StudyFolder, cohort_name

ROOT = Path(__file__).resolve().parents[1]


def names_of(cls) -> dict[str, str]:
    return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


# -- RunFolder --------------------------------------------------------------------------------------------------
def test_run_folder_names_its_files(tmp_path):
    run = RunFolder(tmp_path)
    names = names_of(RunFolder)
    assert len(set(names.values())) == len(names)   # no two files share a name
    assert run / RunFolder.METRICS == tmp_path / "metrics.json"
    assert (run.model, run.checkpoint, run.tmp, run.embeddings) == (
        tmp_path / RunFolder.MODEL, tmp_path / RunFolder.CHECKPOINT, tmp_path / RunFolder.TMP,
        tmp_path / RunFolder.EMBEDDINGS)
    assert set(RunFolder.NOT_COPIED) <= set(names.values())
    assert repr(run) == f"RunFolder({str(tmp_path)!r})"


def test_run_folder_readers_before_anything_is_written(tmp_path):
    run = RunFolder(tmp_path / "empty")
    assert run.config() == {} and run.settings() == {} and run.setting("epochs", 3) == 3
    assert run.history() == []
    assert all(v is None for v in (run.encoder(), run.threshold(), run.calibration(), run.reference(),
                                   run.metrics(), run.predictions()))
    assert not run.has(RunFolder.METRICS)


def test_run_folder_writes_and_reads_back(tmp_path):
    run = RunFolder(tmp_path)
    run.write_json(RunFolder.CONFIG, {"train": {"epochs": 2, "profile": "quick"}})
    run.write_json(RunFolder.THRESHOLD, {"threshold": 0.25})
    run.write_json(RunFolder.METRICS, {"test": {"auprc": {"value": 0.5}}})
    assert run.settings() == {"epochs": 2, "profile": "quick"} and run.setting("profile") == "quick"
    assert run.threshold() == 0.25 and run.metrics()["test"]["auprc"]["value"] == 0.5
    run.write_history([{"epoch": 1, "val_auprc": 0.4}])
    run.append_history({"epoch": 2, "val_auprc": 0.5})
    assert [h["epoch"] for h in run.history()] == [1, 2]
    run.write_history([{"epoch": 1, "val_auprc": 0.3}])   # rewritten whole (a resumed run drops later epochs)
    assert run.history() == [{"epoch": 1, "val_auprc": 0.3}]
    table = pd.DataFrame({"stay_id": [1, 2], "probability": [0.1, 0.9]})
    run.write_predictions(table)
    pd.testing.assert_frame_equal(run.predictions(), table)
    assert run.has(RunFolder.PREDICTIONS)


def test_a_damaged_json_file_is_one_clear_error(tmp_path):
    (tmp_path / RunFolder.METRICS).write_text("{not json")
    with pytest.raises(AlfiaError, match="metrics.json is unreadable.*damaged"):
        RunFolder(tmp_path).metrics()
    (tmp_path / StudyFolder.TIMINGS).write_bytes(b"\xff\xfe")
    with pytest.raises(AlfiaError, match="timings.json is unreadable.*damaged"):
        StudyFolder(tmp_path).timings()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    run = RunFolder(tmp_path)
    good = pd.DataFrame({"stay_id": [1], "probability": [0.5]})
    run.write_predictions(good)
    bad = pd.DataFrame({"stay_id": [1], "probability": [object()]})   # pyarrow cannot write it
    with pytest.raises(pa.ArrowException):
        run.write_predictions(bad)
    pd.testing.assert_frame_equal(run.predictions(), good)
    run.write_json(RunFolder.METRICS, {"a": 1})
    with pytest.raises(TypeError):
        run.write_json(RunFolder.METRICS, {"a": {1, 2}})   # a set is no JSON
    assert run.metrics() == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [RunFolder.METRICS, RunFolder.PREDICTIONS]


def test_copy_to_copies_what_inference_needs(tmp_path):
    src = RunFolder(tmp_path / "run")
    for rel in (RunFolder.CONFIG, f"{RunFolder.MODEL}/head.safetensors", *(f"{n}/x" for n in RunFolder.NOT_COPIED)):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    copy = src.copy_to(tmp_path / "saved" / "run")
    assert isinstance(copy, RunFolder) and copy.path == tmp_path / "saved" / "run"
    assert sorted(p.relative_to(copy.path).as_posix() for p in copy.path.rglob("*") if p.is_file()) == [
        RunFolder.CONFIG, f"{RunFolder.MODEL}/head.safetensors"]
    assert (copy / RunFolder.CONFIG).read_text() == RunFolder.CONFIG
    assert [p.name for p in (tmp_path / "saved").iterdir()] == ["run"]   # nothing left beside it
    with pytest.raises(AlfiaError, match="not empty"):
        src.copy_to(copy.path)
    (tmp_path / "empty").mkdir()
    assert src.copy_to(tmp_path / "empty").has(RunFolder.CONFIG)   # an empty folder is fine


# -- StudyFolder ------------------------------------------------------------------------------------------------
def test_study_folder_names_cohort_files_by_the_cohorts_own_names(tmp_path):
    study = StudyFolder(tmp_path)
    assert study.cohort("p12-a") == tmp_path / "p12-a.parquet"
    assert study.encoded("p12-a") == tmp_path / "p12-a.encoded.parquet"
    assert study.predictions("ext") == tmp_path / "ext.predictions.parquet"
    assert study.metrics_path("ext") == tmp_path / "ext.metrics.json"
    # where write_predictions puts the metrics of the predictions it writes
    assert metrics_path(study.predictions("hospital-b")) == study.metrics_path("hospital-b")
    assert isinstance(study.run, RunFolder) and study.run.path == tmp_path / StudyFolder.RUN
    assert (study.baselines, study.frozen_readout, study.boost) == (
        tmp_path / "baselines", tmp_path / "frozen-readout", tmp_path / "boost")
    assert study / StudyFolder.SUMMARY == tmp_path / "summary.md"
    assert study.leaderboard_table("external") == tmp_path / "leaderboard-external.csv"
    assert StudyFolder.MANIFEST == RunFolder.MANIFEST and StudyFolder.ENCODER == RunFolder.ENCODER
    names = names_of(StudyFolder)
    files = [v for k, v in names.items() if not k.endswith("_SUFFIX")]
    assert len(set(files)) == len(files)


def test_the_physionet_study_keeps_the_file_names_compare_study_reads(tmp_path):
    """scripts/compare_study.py compares a new study's files with results/study: StudyFolder must name them as the
    study always has."""
    spec = importlib.util.spec_from_file_location("compare_study", ROOT / "scripts" / "compare_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    study = StudyFolder(tmp_path)
    produced = {study.run / RunFolder.METRICS, study.run / RunFolder.HISTORY, study.run / RunFolder.CALIBRATION,
                study.metrics_path("p12-b"), study / StudyFolder.LEADERBOARD_JSON}
    assert {tmp_path / rel for rel in script.FILES.values()} == produced


def test_study_folder_readers(tmp_path):
    study = StudyFolder(tmp_path / "study")
    assert study.externals() == [] and study.timings() == {} and study.external_metrics("ext") is None
    study.path.mkdir()
    study.write_json(StudyFolder.TIMINGS, {"cohorts": 0.2, "encode": 1.0})
    study.save_text(StudyFolder.SUMMARY, "# study\n")
    for name, auprc in (("p12-b", 0.5), ("ext", 0.4)):
        study.write_json(study.metrics_path(name).name, {"metrics": {"auprc": {"value": auprc}}})
    pd.DataFrame({"stay_id": [1]}).to_parquet(study.encoded("p12-a"))
    study.run.path.mkdir()
    study.run.write_json(RunFolder.METRICS, {"test": {}})   # the run's metrics are no external cohort's
    assert study.externals() == ["ext", "p12-b"]
    assert study.external_metrics("p12-b") == {"metrics": {"auprc": {"value": 0.5}}}
    assert list(study.timings()) == ["cohorts", "encode"]
    assert (study / StudyFolder.SUMMARY).read_text() == "# study\n"
    assert study.has(StudyFolder.SUMMARY) and not study.has(StudyFolder.REPORT)
    assert not [p for p in study.path.iterdir() if p.name.startswith(".")]   # no temporary file left


@pytest.mark.parametrize("spec, name", [("p12-a", "p12-a"), ("yaib-eicu-demo", "yaib-eicu-demo"),
                                        ("data/hospital-b.parquet", "hospital-b"), (Path("/x/dev.parquet"), "dev")])
def test_cohort_name(spec, name):
    assert cohort_name(spec) == name


def test_numbers_survive_a_round_trip(tmp_path):
    table = pd.DataFrame({"stay_id": np.arange(3), "probability": [0.1, np.nan, 1.0]})
    RunFolder(tmp_path).write_predictions(table)
    pd.testing.assert_frame_equal(RunFolder(tmp_path).predictions(), table)


def test_the_report_finds_the_external_predictions_of_the_study_its_run_is_in(tmp_path):
    from alfia.analysis.report.build import study_external

    study = StudyFolder(tmp_path)
    study.run.path.mkdir()
    assert study_external(study.run.path) is None
    pd.DataFrame({"stay_id": [1], "probability": [0.5]}).to_parquet(study.predictions("ext"))
    assert study_external(study.run.path) is None   # predictions without their metrics are not the study's
    study.write_json(study.metrics_path("ext").name, {"metrics": {}})
    assert study_external(study.run.path) == study.predictions("ext")   # by the external cohort's own name
    pd.DataFrame({"stay_id": [1], "probability": [0.5]}).to_parquet(study.predictions("p12-b"))
    study.write_json(study.metrics_path("p12-b").name, {"metrics": {}})
    assert study_external(study.run.path) is None   # two: the report takes --external-predictions
