"""`alfia study --seeds N` (alfia.study + alfia.analysis.seeds): every trained model again with its seed + r, the
spread over the seeds beside the single-seed study's CI, and the headline comparisons per seed and pooled. The
study's heavy stages are replaced by stand-ins that write the files the real ones write, with predictions that
depend on the seed they were given; the leaderboard and the spread are the real code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.analysis.seeds import reading
from alfia.baselines.readout import FROZEN_LR
from alfia.cohorts import write_cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import choose_threshold, evaluate, paired_difference
from alfia.run_folder import RunFolder, StudyFolder
from tests.analysis.test_tripod import LABEL, sample

N_BOOT = 40


def _p(y: np.ndarray, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(strength * (np.asarray(y) - 0.5) * 2 + rng.normal(size=len(y)))))


def _results(out, dev, ext, models: dict[str, tuple[str, float]], seed: int) -> None:
    """A baselines-style folder (results.json, predictions.parquet) whose predictions depend on ``seed``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    test, entries, frames = dev.split("test"), {}, []
    for i, (name, (family, strength)) in enumerate(models.items()):
        p_test, p_ext = _p(test[LABEL], strength, 10 * seed + i), _p(ext.df[LABEL], strength, 10 * seed + i + 5)
        t = choose_threshold(test[LABEL], p_test)
        entries[name] = {"family": family, "threshold": t,
                         "test": evaluate(test[LABEL], p_test, threshold=t, n_boot=N_BOOT),
                         "external": evaluate(ext.df[LABEL], p_ext, threshold=t, n_boot=N_BOOT)}
        frames += [pd.DataFrame({"model": name, "where": "test", "stay_id": test["stay_id"], "probability": p_test}),
                   pd.DataFrame({"model": name, "where": "external", "stay_id": ext.df["stay_id"],
                                 "probability": p_ext})]
    (out / "results.json").write_text(json.dumps({"models": entries, "skipped": {}, "preset": "quick"}))
    pd.concat(frames).to_parquet(out / RunFolder.PREDICTIONS, index=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``run_study(seeds=3)`` on small samples of sets A and B, its training stages replaced (see the module doc)."""
    import alfia.study as study_module

    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("seeds")
    dev, ext = sample("p12-a", {"train": 40, "val": 30, "test": 60}, 4), sample("p12-b", {"test": 80}, 5)
    write_cohort(dev, tmp / "dev.parquet")
    write_cohort(ext, tmp / "ext.parquet")
    seen: dict[str, list] = {"train": [], "baselines": [], "boost": []}
    run_seed: dict[str, int] = {}

    def train(cohort, run, config, **_):
        seen["train"].append(config.seed)
        run_seed[str(run)] = config.seed
        folder = RunFolder(run)
        folder.path.mkdir(parents=True, exist_ok=True)
        p = _p(cohort.df[LABEL], 1.2, config.seed)
        metrics = {s: evaluate(cohort.df[LABEL][m], p[m], n_boot=N_BOOT)
                   for s in ("val", "test") for m in [(cohort.df["split"] == s).to_numpy()]}
        folder.write_json(RunFolder.METRICS, metrics)
        folder.write_json(RunFolder.CONFIG, {"train": config.to_dict()})
        folder.write_history([{"epoch": 1, "val_auprc": 0.4, "val_auroc": 0.7}])
        pd.DataFrame({"stay_id": cohort.df["stay_id"], "split": cohort.df["split"], LABEL: cohort.df[LABEL],
                      "probability": p}).to_parquet(folder.path / RunFolder.PREDICTIONS, index=False)
        return metrics

    def predict_cohort(run, cohort, **_):
        p = _p(cohort.df[LABEL], 1.2, run_seed[str(run)] + 1000)
        return pd.DataFrame({"stay_id": cohort.df["stay_id"], "probability": p}), {
            "metrics": evaluate(cohort.df[LABEL], p, n_boot=N_BOOT), "threshold": 0.3, "ms_per_sample": 1.0,
            "peak_rss_mb": 1.0, "rows": len(cohort.df), "labelled_rows": len(cohort.df)}

    def run_baselines(dev, out, external, profile, seed, **_):
        seen["baselines"].append(seed)
        _results(out, dev, external, {"ExtraTreesEntr": ("tabular", 1.5), "LinearModel": ("tabular", 0.8)}, seed)

    def run_boost(run, dev, out, external, profile, seed, **_):
        seen["boost"].append(seed)
        _results(out, dev, external, {"ALFIA-boost": ("alfia-derived", 1.4)}, 50 + seed)

    def run_frozen_readout(run, dev, out, external, **_):
        _results(out, dev, external, {FROZEN_LR: ("frozen encoder", 0.9)}, 70 + run_seed[str(run)])

    def build_report(run, page, **_):
        Path(page).write_text("<html></html>")
        return Path(page)

    for name, fake in (("train", train), ("predict_cohort", predict_cohort), ("run_baselines", run_baselines),
                       ("run_frozen_readout", run_frozen_readout), ("run_boost", run_boost),
                       ("build_report", build_report), ("backbone_identity", lambda *_: {"name": "test"})):
        mp.setattr(study_module, name, fake)
    out = tmp / "study"
    study_module.run_study(out, cohort=tmp / "dev.parquet", external=tmp / "ext.parquet", seeds=3)
    mp.undo()
    return {"out": out, "seen": seen, "spread": json.loads((out / StudyFolder.SEED_SPREAD_JSON).read_text()),
            "boards": [json.loads((f / StudyFolder.LEADERBOARD_JSON).read_text())
                       for f in StudyFolder(out).repeats()]}


def test_every_trained_model_is_trained_again_with_its_seed_plus_r(study):
    assert study["seen"] == {"train": [42, 43, 44], "baselines": [0, 1, 2], "boost": [0, 1, 2]}
    folder = StudyFolder(study["out"])
    assert [f.path for f in folder.repeats()] == [folder.path] + [folder.path / "seeds" / f"repeat-{r}"
                                                                 for r in (1, 2)]
    assert [r["repeat"] for r in study["spread"]["repeats"]] == [0, 1, 2]
    assert json.loads((folder / StudyFolder.MANIFEST).read_text())["seeds"] == 3


def test_the_spread_is_that_of_the_repeats_leaderboards(study):
    for where in ("test", "external"):
        rows = {r["model"]: r for r in study["spread"]["models"][where]}
        assert set(rows) == {r["model"] for r in study["boards"][0]["tables"][where]}
        for name, rec in rows.items():
            values = [next(r for r in b["tables"][where] if r["model"] == name)["auprc"]["estimate"]
                      for b in study["boards"]]
            assert rec["seeds"] == 3 and rec["auprc"]["values"] == values
            assert rec["auprc"]["mean"] == pytest.approx(np.mean(values))
            assert rec["auprc"]["sd"] == pytest.approx(np.std(values, ddof=1))
            first = next(r for r in study["boards"][0]["tables"][where] if r["model"] == name)["auprc"]
            assert rec["auprc"]["study"] == {"value": first["estimate"], "ci_low": first["ci_low"],
                                             "ci_high": first["ci_high"]}
        assert len({tuple(r["auprc"]["values"]) for r in rows.values()}) == len(rows)   # the seeds moved them


def test_per_seed_comparisons_are_the_leaderboards_and_the_pooled_one_their_mean(study):
    for where in ("test", "external"):
        comps = {(c["model"], c["baseline"]): c for c in study["spread"]["comparisons"][where]}
        board = {(c["model"], c["baseline"]): c for c in study["boards"][0]["comparisons"][where]}
        assert set(board) <= set(comps) and ("ALFIA", FROZEN_LR) in comps
        for key, c in board.items():   # seed 0 is the single-seed study's own comparison, to the last digit
            assert {k: comps[key]["per_seed"][0][k] for k in ("difference", "ci_low", "ci_high")} == \
                {k: c[k] for k in ("difference", "ci_low", "ci_high")}
        for c in comps.values():
            assert len(c["per_seed"]) == 3
            assert c["pooled"]["difference"] == pytest.approx(np.mean([s["difference"] for s in c["per_seed"]]))
            assert c["pooled"]["ci_low"] <= c["pooled"]["difference"] <= c["pooled"]["ci_high"]
            assert c["reading"] == reading(c["per_seed"])


def test_the_summary_and_seeds_md_show_the_spread(study):
    text = (study["out"] / StudyFolder.SEED_SPREAD).read_text()
    assert text.startswith("# Spread over 3 seeds")
    assert "AUPRC mean ± sd (min–max)" in text and "pooled over the seeds" in text
    assert "## Spread over 3 seeds" in (study["out"] / StudyFolder.SUMMARY).read_text()
    assert "seed repeat 2 of 2" in " ".join(json.loads((study["out"] / StudyFolder.TIMINGS).read_text()))


def test_a_ranking_is_read_only_where_every_seed_agrees():
    above, below = {"ci_low": 0.01, "ci_high": 0.05}, {"ci_low": -0.05, "ci_high": -0.01}
    across = {"ci_low": -0.01, "ci_high": 0.03}
    assert reading([above, above]) == "above in every seed"
    assert reading([below, below, below]) == "below in every seed"
    assert reading([below, across]) == "level" and reading([above, below]) == "level"


def test_pooled_paired_difference_is_the_mean_over_seeds():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.25).astype(int)
    a = np.stack([_p(y, 1.0, s) for s in range(3)])
    b = np.stack([_p(y, 0.6, 10 + s) for s in range(3)])
    single = [paired_difference(y, a[s], b[s], n_boot=N_BOOT) for s in range(3)]
    pooled = paired_difference(y, a, b, n_boot=N_BOOT)
    assert pooled["difference"] == pytest.approx(np.mean([d["difference"] for d in single]))
    one = paired_difference(y, a[:1], b[:1], n_boot=N_BOOT)
    assert one == single[0]   # one seed: the plain paired difference
    with pytest.raises(AlfiaError, match="same seeds"):
        paired_difference(y, a, b[:2], n_boot=N_BOOT)


def test_seeds_must_be_a_whole_number_of_at_least_one(tmp_path):
    from alfia.cli import main
    from alfia.study import run_study

    with pytest.raises(AlfiaError, match="seeds must be"):
        run_study(tmp_path / "s", seeds=0)
    assert not (tmp_path / "s").exists()
    with pytest.raises(SystemExit):
        main(["study", "--out", str(tmp_path / "t"), "--seeds", "0"])


def test_tripod_names_the_spread_and_a_single_seed_study_its_absence(study, tmp_path):
    from alfia.analysis.tripod import FILE
    from tests.analysis.test_tripod import build_study, row

    text = (study["out"] / FILE).read_text()
    assert StudyFolder.SEED_SPREAD in row(text, "12e") and "one training seed" not in row(text, "26")
    single = build_study(tmp_path)["text"]
    assert StudyFolder.SEED_SPREAD not in row(single, "12e") and "one training seed" in row(single, "26")
