"""The expert comparison: the booklet is blinded and holds only unseen stays; the scores match scikit-learn;
malformed ratings are refused with their lines named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from alfia.cli import main
from alfia.cohorts import Cohort, write_cohort
from alfia.errors import AlfiaError
from alfia.experts.booklet import BOOKLET_FILES, write_booklet
from alfia.experts.compare import compare, read_ratings
from alfia.inference import Run

N = 20


@pytest.fixture(scope="module")
def booklet(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("experts") / "booklet"
    cases = write_booklet(tiny_run["cohort"], tiny_run["run"], out, n=N, seed=3)
    return {"dir": out, "cases": cases}


def rate(booklet, tiny_run, path, noise: float, seed: int) -> np.ndarray:
    """A rater who sees the outcome through noise; returns the probabilities (0-1) written."""
    df = tiny_run["cohort"].df.set_index("stay_id")
    y = df.loc[booklet["cases"]["stay_id"], "hospital_mortality"].to_numpy()
    rng = np.random.default_rng(seed)
    p = np.clip(np.round(100 * (0.3 * y + noise * rng.random(len(y)))), 0, 100)
    pd.DataFrame({"case_id": booklet["cases"]["case_id"], "probability_of_death": p.astype(int),
                  "confidence": rng.integers(1, 6, len(y))}).to_csv(path, index=False)
    return p / 100


def test_booklet_holds_no_label_no_output_and_only_unseen_stays(booklet, tiny_run):
    cohort, run = tiny_run["cohort"], tiny_run["run"]
    key = json.loads((booklet["dir"] / "sealed" / "key.json").read_text())
    stays = list(key["cases"].values())
    assert len(stays) == len(set(stays)) == N
    splits = pd.read_parquet(run / "predictions.parquet").set_index("stay_id")["split"]
    assert set(splits.loc[stays]) == {"test"}  # never a training or validation stay of the run
    y = cohort.df.set_index("stay_id").loc[stays, "hospital_mortality"]
    assert 0 < y.sum() < N  # both outcomes, so that the raters can be scored
    cases = pd.read_csv(booklet["dir"] / "cases.csv")
    assert list(cases.columns) == ["case_id", "text"]
    template = pd.read_csv(booklet["dir"] / "ratings-template.csv")
    assert list(template.columns) == ["case_id", "probability_of_death", "confidence"]
    assert template[["probability_of_death", "confidence"]].isna().all().all()
    predictions = pd.read_parquet(run / "predictions.parquet")
    for name in BOOKLET_FILES:
        text = (booklet["dir"] / name).read_text().lower()
        for word in ("hospital_mortality", "died", "survived", "deceased", "label", "alfia", "threshold"):
            assert word not in text, (name, word)
        for stay in stays:  # no stay id: a rater could look the outcome up
            assert f"stay {stay}" not in text and f",{stay}," not in text
        for p in predictions["probability"].round(4):
            assert f"{p:.4f}" not in text  # no model output
    # a text a clinician reads: numbers with units, not the model's band words
    assert any(" mmHg" in t or " bpm" in t for t in cases["text"])
    assert not any(" very high" in t for t in cases["text"])


def test_an_external_cohort_loses_the_ids_the_run_trained_on(tiny_run, tmp_path):
    cohort = tiny_run["cohort"]
    external = cohort.df.copy()
    external["split"] = "test"  # a cohort that claims every row is new: the run's own ids still stay out
    picked = write_booklet(Cohort(df=external, schema=cohort.schema, info=cohort.info), tiny_run["run"],
                           tmp_path / "b", n=N, seed=1)
    seen = pd.read_parquet(tiny_run["run"] / "predictions.parquet").query("split != 'test'")["stay_id"]
    assert not set(picked["stay_id"]) & set(seen)


def test_compare_matches_scikit_learn(booklet, tiny_run, tmp_path):
    a = rate(booklet, tiny_run, tmp_path / "dr_a.csv", noise=0.8, seed=1)
    b = rate(booklet, tiny_run, tmp_path / "dr_b.csv", noise=0.4, seed=2)
    result = compare(booklet["dir"], [tmp_path / "dr_a.csv", tmp_path / "dr_b.csv"], tiny_run["run"],
                     tiny_run["cohort"], n_boot=50)
    df = tiny_run["cohort"].df.set_index("stay_id")
    stays = booklet["cases"]["stay_id"].to_numpy()
    y = df.loc[stays, "hospital_mortality"].to_numpy()
    alfia = Run.load(tiny_run["run"]).predict_proba(Cohort(df=df.loc[stays].reset_index(),
                                                           schema=tiny_run["cohort"].schema))
    for name, p in (("dr_a", a), ("dr_b", b), ("ALFIA", alfia)):
        entry = result["raters"][name]
        assert entry["auprc"]["value"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
        assert entry["auroc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert entry["auprc"]["ci_low"] <= entry["auprc"]["value"] <= entry["auprc"]["ci_high"]
    diff = result["raters"]["dr_b"]["alfia_minus_rater"]["auroc"]
    assert diff["difference"] == pytest.approx(roc_auc_score(y, alfia) - roc_auc_score(y, b), abs=1e-12)


@pytest.mark.parametrize("change, named", [
    (lambda d: d.assign(case_id=d["case_id"].where(d.index != 3, "C999")), ["unknown case on lines 5",
                                                                           "cases without a rating: C04"]),
    (lambda d: pd.concat([d, d.iloc[[0]]]), ["duplicated case on lines 2, 22"]),
    (lambda d: d.assign(probability_of_death=d["probability_of_death"].where(d.index != 1, 140)),
     ["probability_of_death not a number from 0 to 100 on lines 3"]),
    (lambda d: d.assign(probability_of_death=d["probability_of_death"].astype(str).where(d.index != 0, "high")),
     ["probability_of_death not a number from 0 to 100 on lines 2"]),
    (lambda d: d.assign(confidence=d["confidence"].where(d.index != 6, 0)),
     ["confidence not a whole number from 1 to 5 on lines 8"]),
    (lambda d: d.iloc[:-2], ["cases without a rating: C19, C20"]),
    (lambda d: d.drop(columns="confidence"), ["lacks the columns confidence"]),
])
def test_malformed_ratings_are_refused_naming_the_rows(booklet, tiny_run, tmp_path, change, named):
    rate(booklet, tiny_run, tmp_path / "r.csv", noise=0.5, seed=0)
    change(pd.read_csv(tmp_path / "r.csv")).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(AlfiaError) as err:
        read_ratings(tmp_path / "r.csv", list(booklet["cases"]["case_id"]))
    for part in named:
        assert part in str(err.value)


def test_cli_sample_and_compare(tiny_run, tmp_path, capsys):
    cohort_file = tmp_path / "cohort.parquet"
    write_cohort(tiny_run["cohort"], cohort_file)
    run = str(tiny_run["run"])
    assert main(["experts", "sample", str(cohort_file), "--run", run, "--n", "12", "--out",
                 str(tmp_path / "b")]) == 0
    assert main(["experts", "sample", str(cohort_file), "--run", run, "--n", "12", "--out",
                 str(tmp_path / "b")]) == 1  # never overwrites a booklet
    assert "not empty" in capsys.readouterr().err
    assert main(["experts", "sample", str(cohort_file), "--run", run, "--n", "999", "--out",
                 str(tmp_path / "c")]) == 1
    assert capsys.readouterr().err.startswith("error: only")
    cases = pd.read_csv(tmp_path / "b" / "cases.csv")
    ratings = pd.DataFrame({"case_id": cases["case_id"], "probability_of_death": np.arange(12) * 8,
                            "confidence": 3})
    ratings.to_csv(tmp_path / "dr.csv", index=False)
    out = tmp_path / "report.html"
    assert main(["experts", "compare", str(tmp_path / "b"), "--ratings", str(tmp_path / "dr.csv"), "--run", run,
                 "--out", str(out), "--n-boot", "20"]) == 0
    page = out.read_text()
    assert page.count("<img") == 2 and "dr" in page and "ALFIA" in page
    assert json.loads(out.with_suffix(".json").read_text())["n"] == 12
    ratings.iloc[:-1].to_csv(tmp_path / "bad.csv", index=False)
    out.unlink()
    capsys.readouterr()
    assert main(["experts", "compare", str(tmp_path / "b"), "--ratings", str(tmp_path / "bad.csv"), "--run", run,
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "cases without a rating: C12" in err and err.count("\n") == 1
    assert not out.exists()
