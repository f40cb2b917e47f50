"""scripts/compare_study.py: a study folder against the committed results, metric by metric."""

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_study", ROOT / "scripts" / "compare_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study_from_results(folder: Path, script) -> Path:
    for name, rel in script.FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "results" / "study" / name, folder / rel)
    return folder


def test_same_metrics_pass_and_any_changed_metric_fails(tmp_path, capsys):
    script = _script()
    study = _study_from_results(tmp_path / "study", script)
    expected = str(ROOT / "results" / "study")
    assert script.main([str(study), "--expected", expected]) == 0
    # timings are no metrics
    ext = json.loads((study / "p12-b.metrics.json").read_text())
    ext["ms_per_sample"] += 10
    (study / "p12-b.metrics.json").write_text(json.dumps(ext))
    assert script.main([str(study), "--expected", expected]) == 0
    # a metric moved in the 4th decimal: named, and the exit status says so (ALFIA's run files are torch-trained:
    # within --torch-tol by default, identical with --torch-tol 0)
    metrics = json.loads((study / "alfia-run" / "metrics.json").read_text())
    metrics["test"]["auprc"]["value"] += 1e-4
    (study / "alfia-run" / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert script.main([str(study), "--expected", expected, "--torch-tol", "0"]) == 1
    assert "metrics.json: test.auprc.value: expected" in capsys.readouterr().out
    assert script.main([str(study), "--expected", expected, "--tol", "1e-3", "--torch-tol", "0"]) == 0
    assert script.main([str(study), "--expected", expected]) == 0
    metrics["test"]["auprc"]["value"] += 0.1
    (study / "alfia-run" / "metrics.json").write_text(json.dumps(metrics))
    assert script.main([str(study), "--expected", expected]) == 1
    (study / "leaderboard.json").unlink()
    assert script.main([str(study), "--expected", expected, "--tol", "1e-3"]) == 1


def test_a_task_recorded_on_one_side_only_is_no_difference_but_another_task_is():
    script = _script()
    task = {"name": "cw24-in-hospital-mortality", "label": "hospital_mortality"}
    assert script.differences({"auprc": 0.4}, {"auprc": 0.4, "task": task}) == []
    other = {"name": "yaib-mortality24", "label": "icu_mortality"}
    assert len(script.differences({"auprc": 0.4, "task": task}, {"auprc": 0.4, "task": other})) == 2
    assert script.differences({"auprc": 0.4}, {"auprc": 0.4, "n": 3}) == [".n: only in the study"]


def test_the_calibration_metrics_are_compared_where_the_expected_results_have_them(tmp_path, capsys):
    script = _script()
    slope = {"value": 0.9, "ci_low": 0.8, "ci_high": 1.0, "failed_resamples": 0}
    cal = {"oe_ratio": {"value": 1.0, "ci_low": 0.9, "ci_high": 1.1}, "calibration_slope": slope}
    # both sides have them: every number is compared, the failed fits too
    assert script.differences({"auprc": 0.4, **cal}, {"auprc": 0.4, **cal}) == []
    moved = {**cal, "calibration_slope": {**slope, "ci_high": 1.01}}
    assert script.differences({"test": cal}, {"test": moved}) == [
        "test.calibration_slope.ci_high: expected 1.0, found 1.01"]
    failed = {**cal, "calibration_slope": {**slope, "failed_resamples": 3}}
    assert script.differences(cal, failed) == ["calibration_slope.failed_resamples: expected 0, found 3"]
    # a study that lost them differs
    assert script.differences({"auprc": 0.4, **cal}, {"auprc": 0.4}) == [".calibration_slope: only in the expected "
                                                                         "results", ".oe_ratio: only in the expected "
                                                                         "results"]
    # only in the study (the committed results predate them): noted, no difference
    noted: list[str] = []
    assert script.differences({"test": {"auprc": 0.4}}, {"test": {"auprc": 0.4, **cal}}, not_compared=noted) == []
    assert noted == ["test.calibration_slope", "test.oe_ratio"]
    # the script: a study with the new metrics against committed results without them (results written before
    # they existed: here the committed ones with the test split's taken out) passes and says so
    study = _study_from_results(tmp_path / "study", script)
    metrics = json.loads((study / "alfia-run" / "metrics.json").read_text())
    metrics["test"].update(cal)
    (study / "alfia-run" / "metrics.json").write_text(json.dumps(metrics))
    expected = tmp_path / "expected"
    shutil.copytree(ROOT / "results" / "study", expected)
    older = {**metrics, "test": {k: v for k, v in metrics["test"].items() if k not in script.ADDED_METRICS}}
    (expected / "metrics.json").write_text(json.dumps(older))
    capsys.readouterr()
    assert script.main([str(study), "--expected", str(expected)]) == 0
    assert "not compared: 3 calibration metric(s)" in capsys.readouterr().out
    # once the committed results have them, a change is a difference
    (expected / "metrics.json").write_text(json.dumps({**metrics, "test": {**metrics["test"], **moved}}))
    assert script.main([str(study), "--expected", str(expected), "--torch-tol", "0"]) == 1
    assert "metrics.json: test.calibration_slope.ci_high: expected 1.01, found 1.0" in capsys.readouterr().out


def test_leaderboard_rows_are_matched_by_name_exactly_for_deterministic_models(tmp_path, capsys):
    """Two leaderboards with the same rows in another order are no difference; a deterministic model's number must
    be identical, a torch-trained model's within --torch-tol."""
    script = _script()
    study = _study_from_results(tmp_path / "study", script)
    expected = str(ROOT / "results" / "study")
    board = json.loads((study / "leaderboard.json").read_text())
    rows = board["tables"]["test"]
    rows[0], rows[1] = rows[1], rows[0]  # swapped places
    (study / "leaderboard.json").write_text(json.dumps(board))
    assert script.main([str(study), "--expected", expected]) == 0
    by_name = {r["model"]: r for r in rows}
    by_name["ALFIA-boost"]["auprc"]["estimate"] += 0.02  # torch-trained: within 0.05
    (study / "leaderboard.json").write_text(json.dumps(board))
    assert script.main([str(study), "--expected", expected]) == 0
    by_name["LightGBMXT"]["auprc"]["estimate"] += 1e-6  # deterministic: exact
    (study / "leaderboard.json").write_text(json.dumps(board))
    capsys.readouterr()
    assert script.main([str(study), "--expected", expected]) == 1
    out = capsys.readouterr().out
    assert "tables.test[LightGBMXT].auprc.estimate" in out and "ALFIA-boost" not in out
    del rows[-1]
    (study / "leaderboard.json").write_text(json.dumps(board))
    capsys.readouterr()
    assert script.main([str(study), "--expected", expected]) == 1
    assert "only in the expected results" in capsys.readouterr().out
