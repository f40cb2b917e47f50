"""The leaderboard: merging result folders, sorting by AUPRC, and the paired comparison (no AutoGluon needed)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from alfia.baselines.leaderboard import leaderboard
from alfia.baselines.scores import evaluate_score
from alfia.cli.baselines import add_commands
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import choose_threshold, evaluate, format_ci
from alfia.inference import write_predictions
from alfia.io import metrics_path

N_BOOT = 50
RNG = np.random.default_rng(0)
Y_TEST = (RNG.random(300) < 0.2).astype(int)
Y_EXT = (RNG.random(400) < 0.2).astype(int)
IDS_TEST = np.arange(1000, 1300)
IDS_EXT = np.arange(5000, 5400)


def _probs(y, strength, seed):
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(strength * (y - 0.5) * 2 + rng.normal(size=len(y)))))


def _results_dir(path, models: dict[str, tuple[str, float]], skipped: dict[str, str] | None = None):
    """A baselines-style folder: {name: (family, signal strength)}; a score is evaluated as scores.py does."""
    path.mkdir(parents=True, exist_ok=True)
    entries, frames = {}, []
    for i, (name, (family, strength)) in enumerate(models.items()):
        p_test, p_ext = _probs(Y_TEST, strength, i), _probs(Y_EXT, strength, 100 + i)
        t = choose_threshold(Y_TEST, p_test)
        ev = evaluate_score if family == "score" else evaluate
        entries[name] = {"family": family, "test": ev(Y_TEST, p_test, threshold=t, n_boot=N_BOOT),
                         "external": ev(Y_EXT, p_ext, threshold=t, n_boot=N_BOOT), "threshold": t}
        frames += [pd.DataFrame({"model": name, "where": "test", "stay_id": IDS_TEST, "probability": p_test}),
                   pd.DataFrame({"model": name, "where": "external", "stay_id": IDS_EXT, "probability": p_ext})]
    (path / "results.json").write_text(json.dumps({"models": entries, "skipped": skipped or {}, "preset": "quick",
                                                   "features": ["age"]}))
    pd.concat(frames).to_parquet(path / "predictions.parquet", index=False)
    return path


def _alfia_run(path, p_test, p_ext=None):
    """An ALFIA run folder (metrics.json, predictions.parquet) and, optionally, the study's external files."""
    path.mkdir(parents=True, exist_ok=True)
    t = choose_threshold(Y_TEST, p_test)
    (path / "metrics.json").write_text(json.dumps({"val": {}, "test": evaluate(Y_TEST, p_test, threshold=t,
                                                                                n_boot=N_BOOT)}))
    pd.DataFrame({"stay_id": IDS_TEST, "split": "test", "hospital_mortality": Y_TEST, "probability": p_test,
                  "label": (p_test >= t).astype(int)}).to_parquet(path / "predictions.parquet", index=False)
    if p_ext is None:
        return path, None
    ext = path.parent / "p12-b.predictions.parquet"  # written as the study writes it
    write_predictions(pd.DataFrame({"stay_id": IDS_EXT, "probability": p_ext, "label": (p_ext >= t).astype(int)}),
                      {"metrics": evaluate(Y_EXT, p_ext, threshold=t, n_boot=N_BOOT)}, ext)
    return path, ext


def test_predictions_and_their_metrics_lie_side_by_side(tmp_path):
    assert metrics_path(tmp_path / "p12-b.predictions.parquet") == tmp_path / "p12-b.metrics.json"
    assert metrics_path(tmp_path / "b.pred.parquet") == tmp_path / "b.pred.metrics.json"
    assert metrics_path(tmp_path / "scores.csv") == tmp_path / "scores.metrics.json"
    write_predictions(pd.DataFrame({"stay_id": [1], "probability": [0.2]}), {"rows": 1},
                      tmp_path / "p12-b.predictions.parquet")
    assert json.loads((tmp_path / "p12-b.metrics.json").read_text()) == {"rows": 1}


def _auprcs(table):
    return [float(c.split(" ")[0]) for c in table["AUPRC"]]


def test_merge_and_sort(tmp_path):
    base = _results_dir(tmp_path / "baselines", {"Weak": ("tabular", 0.3), "Strong": ("tabular", 1.5),
                                                 "SAPS II": ("score", 0.6)})
    boost = _results_dir(tmp_path / "boost", {"ALFIA-boost": ("alfia-derived", 1.2)})
    run, ext = _alfia_run(tmp_path / "study" / "run", _probs(Y_TEST, 1.0, 7), _probs(Y_EXT, 1.0, 8))
    board = leaderboard([base, boost, run], external_labels=pd.DataFrame({"stay_id": IDS_EXT,
                                                                          "hospital_mortality": Y_EXT}),
                        alfia_external=ext, out_dir=tmp_path / "board", n_boot=N_BOOT)
    for where in ("test", "external"):
        table = board.tables[where]
        assert set(table["model"]) == {"Weak", "Strong", "SAPS II", "ALFIA-boost", "ALFIA"}
        values = _auprcs(table)
        assert values == sorted(values, reverse=True)
        assert list(table.columns) == ["model", "family", "AUPRC", "AUROC", "best F1", "best F2", "O:E",
                                       "calibration intercept", "calibration slope", "n"]
        assert all("(" in c and "\u2013" in c for c in table["AUPRC"])
        compared = {c["model"]: c for c in board.comparisons[where]}
        assert set(compared) == {"ALFIA", "ALFIA-boost"}
        assert all(c["baseline"] == "Strong" for c in compared.values())  # the best *tabular* model
    assert (tmp_path / "board" / "leaderboard-test.csv").exists()
    assert (tmp_path / "board" / "leaderboard-external.csv").exists()
    assert "Leaderboard: test split" in (tmp_path / "board" / "leaderboard.md").read_text()


def test_skipped_models_are_listed_with_their_reason(tmp_path):
    base = _results_dir(tmp_path / "baselines", {"Strong": ("tabular", 1.5)},
                        skipped={"NeuralNetFastAI": "fastai is not installed"})
    boost = _results_dir(tmp_path / "boost", {"ALFIA-boost": ("alfia-derived", 1.2)},
                         skipped={"ALFIA-nn (NeuralNetFastAI)": "fastai is not installed"})
    board = leaderboard([base, boost], out_dir=tmp_path / "board", n_boot=N_BOOT)
    assert "- NeuralNetFastAI: fastai is not installed" in board.markdown
    assert "- ALFIA-nn (NeuralNetFastAI): fastai is not installed" in board.markdown
    assert json.loads((tmp_path / "board" / "leaderboard.json").read_text())["skipped"] == {
        "NeuralNetFastAI": "fastai is not installed", "ALFIA-nn (NeuralNetFastAI)": "fastai is not installed"}
    assert all("NeuralNetFastAI" not in t["model"].tolist() for t in board.tables.values())


def test_identical_predictions_give_zero_difference(tmp_path):
    base = _results_dir(tmp_path / "baselines", {"Strong": ("tabular", 1.5), "Weak": ("tabular", 0.2)})
    preds = pd.read_parquet(base / "predictions.parquet")
    same = preds[(preds["model"] == "Strong") & (preds["where"] == "test")].sort_values("stay_id")
    run, _ = _alfia_run(tmp_path / "run", same["probability"].to_numpy())
    board = leaderboard([base, run], n_boot=N_BOOT)
    (c,) = board.comparisons["test"]
    assert c["model"] == "ALFIA" and c["baseline"] == "Strong"
    assert c["difference"] == 0.0 and c["ci_low"] == 0.0 and c["ci_high"] == 0.0


def test_bad_inputs(tmp_path):
    with pytest.raises(AlfiaError, match="does not exist"):
        leaderboard([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlfiaError, match="neither"):
        leaderboard([tmp_path / "empty"])
    a = _results_dir(tmp_path / "a", {"X": ("tabular", 1.0)})
    b = _results_dir(tmp_path / "b", {"X": ("tabular", 1.0)})
    with pytest.raises(AlfiaError, match="two result folders"):
        leaderboard([a, b])


def test_cli_commands(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="alfia")
    add_commands(parser.add_subparsers(dest="command", required=True))
    base = _results_dir(tmp_path / "baselines", {"Strong": ("tabular", 1.5)})
    args = parser.parse_args(["leaderboard", str(base), "--out", str(tmp_path / "board"), "--n-boot", "10"])
    args.func(args)
    assert "Strong" in capsys.readouterr().out
    args = parser.parse_args(["baselines", "--cohort", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "o")])
    with pytest.raises(AlfiaError, match="does not exist"):
        args.func(args)
    with pytest.raises(SystemExit) as exc:  # a usage error, found by argparse: exit status 2
        parser.parse_args(["leaderboard", str(base), "--n-boot", "-1"])
    assert exc.value.code == 2
    assert "--n-boot: must be at least 0, got -1" in capsys.readouterr().err


def test_json_and_csv_hold_the_numbers_of_results_json(tmp_path):
    base = _results_dir(tmp_path / "baselines", {"Weak": ("tabular", 0.3), "Strong": ("tabular", 1.5)})
    leaderboard([base], out_dir=tmp_path / "board", n_boot=N_BOOT)
    results = json.loads((base / "results.json").read_text())["models"]
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    for where in ("test", "external"):
        rows = board["tables"][where]
        assert [r["model"] for r in rows] == ["Strong", "Weak"]
        csv = pd.read_csv(tmp_path / "board" / f"leaderboard-{where}.csv").set_index("model")
        for row in rows:
            for metric in ("auprc", "auroc", "best_f1", "best_f2"):
                want = results[row["model"]][where][metric]
                got = row[metric]
                assert isinstance(got["estimate"], float)
                assert got["estimate"] == want["value"]
                assert got["ci_low"] == want["ci_low"] and got["ci_high"] == want["ci_high"]
                assert got["ci_low"] <= got["estimate"] <= got["ci_high"]
                assert csv.loc[row["model"], f"{metric}_estimate"] == pytest.approx(want["value"], abs=1e-12)
                assert csv.loc[row["model"], f"{metric}_ci_low"] == pytest.approx(want["ci_low"], abs=1e-12)
            assert row["n"] == results[row["model"]][where]["n"]


def test_cli_json_prints_the_numbers_alone(tmp_path, capsys):
    from alfia.cli import main

    base = _results_dir(tmp_path / "baselines", {"Weak": ("tabular", 0.3), "Strong": ("tabular", 1.5)})
    assert main(["leaderboard", str(base), "--n-boot", "10", "--out", str(tmp_path / "board"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert printed == json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert printed["tables"]["test"][0]["auprc"]["estimate"] > printed["tables"]["test"][1]["auprc"]["estimate"]


def test_cli_json_on_bad_input_prints_nothing_on_stdout(tmp_path, capsys):
    from alfia.cli import main

    assert main(["leaderboard", str(tmp_path / "missing"), "--json"]) != 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def _with_task(folder, task):
    """Name the task in a baselines folder's results.json, as run_baselines / run_boost write it."""
    results = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**results, "task": task.to_dict()}))
    return folder


def test_the_leaderboard_names_its_task_and_refuses_two(tmp_path):
    from alfia.cohorts.task import CW24, YAIB_MORTALITY24

    base = _with_task(_results_dir(tmp_path / "baselines", {"Strong": ("tabular", 1.5)}), CW24)
    run, _ = _alfia_run(tmp_path / "run", _probs(Y_TEST, 1.0, 7))  # a run without config.json: CW-24
    board = leaderboard([base, run], out_dir=tmp_path / "board", n_boot=N_BOOT)
    assert board.task["name"] == CW24.name
    assert json.loads((tmp_path / "board" / "leaderboard.json").read_text())["task"]["label"] == "hospital_mortality"
    assert (tmp_path / "board" / "leaderboard.md").read_text().startswith("Task: cw24-in-hospital-mortality")
    icu = _with_task(_results_dir(tmp_path / "icu", {"Other": ("tabular", 1.0)}), YAIB_MORTALITY24)
    with pytest.raises(AlfiaError, match="different tasks"):
        leaderboard([base, icu], n_boot=N_BOOT)


def test_every_model_with_probabilities_carries_its_calibration_and_a_score_none(tmp_path):
    base = _results_dir(tmp_path / "baselines", {"Strong": ("tabular", 1.5), "SAPS II": ("score", 0.6)})
    run, _ = _alfia_run(tmp_path / "run", _probs(Y_TEST, 1.0, 7))
    board = leaderboard([base, run], out_dir=tmp_path / "board", n_boot=N_BOOT)
    results = json.loads((base / "results.json").read_text())["models"]
    alfia = json.loads((run / "metrics.json").read_text())["test"]
    want = {"Strong": results["Strong"]["test"], "ALFIA": alfia}
    # markdown: a cell per calibration metric, "n/a" for the score (points, not probabilities)
    lines = {line.split(" | ")[0].strip("| "): [c.strip() for c in line.strip().strip("|").split("|")]
             for line in board.markdown.split("### Leaderboard: external")[0].splitlines()
             if line.startswith("| ") and "---" not in line}
    header = lines["model"]
    for name, m in want.items():
        for heading, key in (("O:E", "oe_ratio"), ("calibration intercept", "calibration_intercept"),
                             ("calibration slope", "calibration_slope")):
            assert lines[name][header.index(heading)] == format_ci(m[key])
            assert m[key]["ci_low"] < m[key]["value"] < m[key]["ci_high"]
    assert [lines["SAPS II"][header.index(h)] for h in ("O:E", "calibration intercept", "calibration slope")] == \
        ["n/a"] * 3
    assert "over-confident" in board.markdown and "severity scores are points" in board.markdown
    # JSON and CSV: the same numbers, with the failed resamples of each fit
    rows = {r["model"]: r for r in json.loads((tmp_path / "board" / "leaderboard.json").read_text())["tables"]["test"]}
    csv = pd.read_csv(tmp_path / "board" / "leaderboard-test.csv").set_index("model")
    for name, m in want.items():
        for key in ("oe_ratio", "calibration_intercept", "calibration_slope"):
            assert rows[name][key]["estimate"] == m[key]["value"]
            assert (rows[name][key]["ci_low"], rows[name][key]["ci_high"]) == (m[key]["ci_low"], m[key]["ci_high"])
            assert csv.loc[name, f"{key}_estimate"] == pytest.approx(m[key]["value"], abs=1e-12)
        for key in ("calibration_intercept", "calibration_slope"):
            assert rows[name][key]["failed_resamples"] == m[key]["failed_resamples"] == 0
            assert csv.loc[name, f"{key}_failed_resamples"] == 0
    assert rows["SAPS II"]["calibration_slope"] == {"estimate": None, "ci_low": None, "ci_high": None,
                                                    "failed_resamples": None}
    assert np.isnan(csv.loc["SAPS II", "oe_ratio_estimate"])
    assert "calibration fit failed" not in board.markdown   # nothing failed: no note


def test_failed_calibration_fits_are_named_under_the_table(tmp_path):
    # a model that all but separates the outcomes: its slope cannot be fitted in some resamples
    y = np.array([1] * 4 + [0] * 30)
    p = np.concatenate([[0.9, 0.8, 0.7, 0.2], [0.3] + [0.1] * 29])
    m = evaluate(y, p, n_boot=N_BOOT)
    k = m["calibration_slope"]["failed_resamples"]
    assert 0 < k < N_BOOT
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"models": {"Sharp": {"family": "tabular", "test": m}}}))
    board = leaderboard([folder], out_dir=tmp_path / "board", n_boot=N_BOOT)
    assert f"Sharp: calibration slope {k}." in board.markdown
    record = json.loads((tmp_path / "board" / "leaderboard.json").read_text())["tables"]["test"][0]
    assert record["calibration_slope"]["failed_resamples"] == k
