"""TRIPOD-AI.md from a study folder (alfia.analysis.tripod): every checklist item once, in the checklist's numbering;
its numbers equal those of the study files they come from; what the study did not do is never claimed; no stay id
and no patient text. The study folder is built from small samples of the bundled sets A and B with the files
`alfia study` writes (metrics from ``evaluate``, Table 1 from ``table1``), without training; one test runs
``run_study`` itself with its heavy stages replaced."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.analysis.tripod import (
    AUTHOR,
    FILE,
    ITEMS,
    MAIN_ITEMS,
    STATUSES,
    missing,
    study_names,
    write_tripod,
)
from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.bundled import load_bundled
from alfia.cohorts.table1 import table1, to_markdown
from alfia.evaluation.metrics import evaluate, format_ci
from alfia.run_folder import RunFolder, StudyFolder
from alfia.text.encoder import TextEncoder

LABEL = "hospital_mortality"
ROW = re.compile(r"^\| (\d+[a-z]?) \| ", re.M)


def sample(name: str, per_split: dict[str, int], seed: int) -> Cohort:
    """A stratified sample of a bundled cohort (real features, so the missing data and Table 1 are real)."""
    c = load_bundled(name)
    df = c.df
    parts = [df[(df["split"] == s) & (df[LABEL] == y)].sample(n=max(2, n // (5 if y else 1)), random_state=seed)
             for s, n in per_split.items() for y in (0, 1)]
    return Cohort(df=pd.concat(parts).reset_index(drop=True), schema=c.schema, info=c.info)


def fake_probabilities(y: pd.Series, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.15 + 0.4 * y.to_numpy() + rng.normal(0, 0.2, len(y)), 0.01, 0.99)


def build_study(root: Path, *, subgroups: bool = True) -> dict:
    """A study folder with the files `alfia study` writes (names from StudyFolder/RunFolder), no model trained."""
    folder = StudyFolder(root)
    dev = sample("p12-a", {"train": 60, "val": 30, "test": 40}, 0)
    ext = sample("p12-b", {"train": 40, "val": 10, "test": 10}, 1)
    encoder = TextEncoder(dev.schema).fit(dev.df)
    write_cohort(dev, folder.cohort("p12-a"))
    write_cohort(ext, folder.cohort("p12-b"))
    for name, c in (("p12-a", dev), ("p12-b", ext)):
        write_cohort(encoder.encode(c), folder.encoded(name))
    encoder.save(folder / StudyFolder.ENCODER)
    folder.save_text(StudyFolder.TABLE1, to_markdown(table1(dev)) + "\n")
    run = folder.run
    run.path.mkdir(parents=True)
    metrics = {}
    for i, split in enumerate(("val", "test")):
        part = dev.split(split)
        metrics[split] = evaluate(part[LABEL], fake_probabilities(part[LABEL], i), threshold=0.3, n_boot=30)
    run.write_json(RunFolder.METRICS, metrics)
    run.write_json(RunFolder.CONFIG, {"backbone": "all-MiniLM-L6-v2", "train": {
        "profile": "quick", "epochs": 2, "lr": 1e-4, "seed": 42, "patience": 2, "class_weight": False,
        "distill": 1.0, "calibration": "platt", "model": {"lora": None, "readout": {"C": 0.3}}}})
    run.write_json(RunFolder.THRESHOLD, {"threshold": 0.3})
    run.write_json(RunFolder.CALIBRATION, {"method": "platt", "a": 0.9, "b": 0.25,
                                           "formula": "p = sigmoid(a * logit(p_raw) + b)",
                                           "fitted_on": "validation split"})
    ext_metrics = evaluate(ext.df[LABEL], fake_probabilities(ext.df[LABEL], 7), threshold=0.3, n_boot=30)
    folder.write_json(folder.metrics_path("p12-b").name, {"rows": len(ext.df), "labelled_rows": len(ext.df),
                                                          "threshold": 0.3, "metrics": ext_metrics})
    folder.write_json(StudyFolder.LEADERBOARD_JSON, {
        "tables": {"test": [{"model": "ALFIA", "family": "alfia"}, {"model": "SOFA (challenge)", "family": "score"}]},
        "comparisons": {"test": [{"model": "ALFIA", "baseline": "XGBoost", "metric": "auprc", "difference": -0.012,
                                  "ci_low": -0.081, "ci_high": 0.055}]}})
    if subgroups:
        (run.path / "figures").mkdir()
        (run.path / "figures" / "subgroups.json").write_text(json.dumps({"groups": {
            "gender=female": {"n": 31, "deaths": 4, "auroc": {"value": 0.71, "ci_low": 0.52, "ci_high": 0.88}}}}))
    path = write_tripod(root, ("p12-a", "p12-b"))
    return {"root": root, "path": path, "text": path.read_text(), "dev": dev, "ext": ext, "metrics": metrics,
            "ext_metrics": ext_metrics, "encoder": encoder}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("study"))


def row(text: str, number: str) -> str:
    """The table row of one item."""
    found = [line for line in text.splitlines() if line.startswith(f"| {number} | ")]
    assert len(found) == 1, (number, found)
    return found[0]


def test_the_item_list_is_the_checklists_numbering():
    assert MAIN_ITEMS == tuple(range(1, 28))   # 27 main items
    numbers = [item.number for item in ITEMS]
    assert len(numbers) == len(set(numbers)) == 52
    # sub-items run a, b, c ... within each main item, in order, and only where the main item has them
    for main in MAIN_ITEMS:
        subs = [n.removeprefix(str(main)) for n in numbers if re.fullmatch(rf"{main}[a-z]?", n)]
        assert subs == [""] or subs == [chr(ord("a") + i) for i in range(len(subs))], (main, subs)
    assert [n for n in numbers if re.fullmatch(r"12[a-z]", n)] == [f"12{c}" for c in "abcdefg"]
    assert [n for n in numbers if re.fullmatch(r"18[a-z]", n)] == [f"18{c}" for c in "abcdef"]
    assert {item.applies for item in ITEMS} == {"D", "E", "D;E"}


def test_every_item_appears_once_in_the_file(study):
    counts = Counter(ROW.findall(study["text"]))
    assert set(counts) == {item.number for item in ITEMS}
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n != 1}
    assert len({int(re.match(r"\d+", n).group()) for n in counts}) == 27
    for item in ITEMS:
        cells = row(study["text"], item.number).split(" | ")
        assert cells[4] in STATUSES, cells   # item | section | topic | D/E | status | answer


def test_numbers_equal_the_study_files(study):
    text, m, e = study["text"], study["metrics"]["test"], study["ext_metrics"]
    performance = row(text, "23a")
    for key in ("auprc", "auroc", "brier", "ece", "oe_ratio", "calibration_intercept", "calibration_slope"):
        assert format_ci(m[key]) in performance, key
        assert format_ci(e[key]) in performance, key
    assert f"AUPRC {format_ci(m['auprc'])}" in performance.split("p12-b (")[0]   # the test split's, before set B's
    assert f"p12-b ({e['n']:,} stays, {e['n_pos']:,} events): AUPRC {format_ci(e['auprc'])}" in performance
    assert "gender=female n 31, 4 events, AUROC 0.710 (0.520–0.880)" in performance
    assert "ALFIA − XGBoost on test: -0.012 (-0.081 to +0.055)" in performance
    dev = study["dev"].df
    analyses = row(text, "21")
    train = dev[dev["split"] == "train"]
    assert f"development (train): {len(train):,} stays, {int(train[LABEL].sum()):,} events" in analyses
    for split in ("val", "test"):
        split_m = study["metrics"][split]
        assert f"{split_m['n']:,} stays, {split_m['n_pos']:,} events" in analyses
    assert f"p12-a {len(dev):,} stays, {int(dev[LABEL].sum()):,} events" in row(text, "10")
    share = missing(study["dev"])
    worst = max(share["variables"], key=share["variables"].get)
    assert f"{worst} {100 * share['variables'][worst]:.2f}%" in row(text, "11")
    assert f"{100 * share['values']:.1f}% of predictor values missing" in row(text, "11")
    # the missing share the checklist gives is Table 1's for that variable
    table1_line = next(line for line in (study["root"] / StudyFolder.TABLE1).read_text().splitlines()
                       if line.startswith(f"| {worst} "))
    missing_line = (study["root"] / StudyFolder.TABLE1).read_text().splitlines()
    missing_line = missing_line[missing_line.index(table1_line) + 1]
    assert f"({100 * share['variables'][worst]:.2f}%)" in missing_line.split("|")[-3]   # the Overall column
    assert "0.300" in row(text, "15") and "a 0.900, b 0.250" in row(text, "12f")
    assert "SOFA (challenge)" in row(text, "3a")


def test_what_the_study_did_not_do_is_left_to_the_author(study):
    text = study["text"]
    for number in ("2", "3c", "5b", "17", "18a", "18b", "18c", "18d", "19", "27c"):
        assert f"| {AUTHOR} |" in row(text, number), number
    assert "No sample size calculation was done" in row(text, "10")
    assert "No approach to model fairness was applied" in row(text, "14")
    assert "Not examined" in row(text, "12d") and "Not examined" in row(text, "23b")
    assert "No resampling; no class weighting" in row(text, "13")


def test_absent_files_are_said_absent_not_invented(tmp_path):
    built = build_study(tmp_path, subgroups=False)
    text = built["text"]
    assert "no subgroup performance was computed" in row(text, "23a")
    assert "report.html" not in row(text, "12e")   # no report page in this folder: none is cited
    (tmp_path / StudyFolder.RUN / RunFolder.METRICS).unlink()
    text = write_tripod(tmp_path).read_text()      # names read from the folder
    assert f"| {AUTHOR} |" in row(text, "23a") and "AUPRC" not in row(text, "23a")
    assert Counter(ROW.findall(text)) == Counter(item.number for item in ITEMS)
    # a file of an unexpected shape costs its items, never the study's last step
    StudyFolder(tmp_path).write_json(StudyFolder.LEADERBOARD_JSON, {"tables": {"test": "not a list of rows"}})
    text = write_tripod(tmp_path).read_text()
    assert "could not be read for this item (AttributeError)" in row(text, "3a")
    assert Counter(ROW.findall(text)) == Counter(item.number for item in ITEMS)


def test_the_cohorts_are_found_in_the_folder(study):
    assert study_names(StudyFolder(study["root"])) == ("p12-a", "p12-b")


def leaks(text: str, cohorts: list[Cohort], encoder: TextEncoder) -> list[str]:
    """Stay ids (as whole numbers) and phrases of any stay's text found in ``text``."""
    found = []
    for c in cohorts:
        for stay in c.df["stay_id"].astype(str):
            if re.search(rf"(?<![\d.,]){stay}(?![\d,])", text):
                found.append(stay)
        for story in encoder.transform(c.df):
            found += [p for p in re.split(r"(?<=[.:;])\s+", story) if len(p) > 25 and p in text]
    return found


def test_no_stay_id_and_no_patient_text(study):
    cohorts = [study["dev"], study["ext"]]
    assert leaks(study["text"], cohorts, study["encoder"]) == []
    # the check finds what it looks for
    stay = str(study["dev"].df["stay_id"].iloc[0])
    story = study["encoder"].transform(study["dev"].df.head(1))[0]
    assert leaks(study["text"] + f"\n| x | stay {stay} |", cohorts, study["encoder"]) == [stay]
    assert leaks(study["text"] + story, cohorts, study["encoder"])


def test_the_study_writes_it(tmp_path, monkeypatch):
    """`alfia study` (run_study) writes TRIPOD-AI.md, lists it in its manifest and names it in its summary; the
    training, scoring, baselines and report stages are replaced by what they write."""
    import alfia.study as study_module

    dev, ext = sample("p12-a", {"train": 40, "val": 20, "test": 20}, 2), sample("p12-b", {"test": 30}, 3)
    write_cohort(dev, tmp_path / "dev.parquet")
    write_cohort(ext, tmp_path / "ext.parquet")
    out = tmp_path / "study"

    def train(cohort, run, config, **_):
        folder = RunFolder(run)
        folder.path.mkdir(parents=True, exist_ok=True)
        metrics = {s: evaluate(cohort.split(s)[LABEL], fake_probabilities(cohort.split(s)[LABEL], 0), n_boot=20)
                   for s in ("val", "test")}
        folder.write_json(RunFolder.METRICS, metrics)
        folder.write_json(RunFolder.CONFIG, {"train": config.to_dict()})
        folder.write_history([{"epoch": 1, "val_auprc": 0.4, "val_auroc": 0.7}])
        return metrics

    def predict_cohort(run, cohort, **_):
        m = evaluate(cohort.df[LABEL], fake_probabilities(cohort.df[LABEL], 1), n_boot=20)
        return pd.DataFrame({"stay_id": cohort.df["stay_id"], "probability": 0.1}), {
            "metrics": m, "threshold": 0.3, "ms_per_sample": 1.0, "peak_rss_mb": 1.0, "rows": len(cohort.df),
            "labelled_rows": len(cohort.df)}

    class Board:
        markdown = "leaderboard"

    def build_report(run, page, **_):
        Path(page).write_text("<html></html>")
        return Path(page)

    for name, fake in (("train", train), ("predict_cohort", predict_cohort), ("run_baselines", lambda *a, **k: None),
                       ("run_frozen_readout", lambda *a, **k: None), ("run_boost", lambda *a, **k: None),
                       ("leaderboard", lambda *a, **k: Board()), ("build_report", build_report),
                       ("backbone_identity", lambda *_: {"name": "test"})):
        monkeypatch.setattr(study_module, name, fake)
    study_module.run_study(out, cohort=tmp_path / "dev.parquet", external=tmp_path / "ext.parquet")
    text = (out / FILE).read_text()
    assert Counter(ROW.findall(text)) == Counter(item.number for item in ITEMS)
    assert "development: dev; external: ext" in text
    assert f"ext ({len(ext.df):,} stays" in row(text, "23a")
    assert FILE in json.loads((out / StudyFolder.MANIFEST).read_text())["files"]
    assert f"TRIPOD+AI checklist: {out / FILE}" in (out / StudyFolder.SUMMARY).read_text()
    assert leaks(text, [dev, ext], TextEncoder(dev.schema).fit(dev.df)) == []
