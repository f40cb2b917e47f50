"""``alfia ablate`` as the backbone comparison: a training profile as it is, the external cohort, ALFIA-boost, the
tabular reference, parameters, timings and the back-to-back inference time, with tiny models on a few real stays."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from alfia.analysis import ablation
from alfia.analysis.ablation import SPEED_ROUNDS, ablation_markdown, run_ablation
from alfia.baselines import boost as boost_mod
from alfia.baselines.tabular import ModelSpec
from alfia.cohorts import CW24, Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import evaluate
from tests.analysis.test_report import TINY, small_cohort

LABEL = CW24.label  # the outcome column of the CW-24 cohorts these tests build

pytest.importorskip("autogluon.tabular", reason="AutoGluon is not installed (make setup installs it)")

N_BOOT = 20
# a random forest stands in for the boosters: LightGBM's threads crawl on a busy 2-core test machine
BOOST_ZOO = (ModelSpec("ALFIA-boost (RandomForest)", "RF", {"n_estimators": 20}),)


def external_cohort() -> Cohort:
    ext = load_bundled("p12-b")
    df = ext.df
    df = pd.concat([df[df[LABEL] == 0].sample(n=24, random_state=1),
                    df[df[LABEL] == 1].sample(n=8, random_state=1)]).reset_index(drop=True)
    return Cohort(df=df, schema=ext.schema, info=ext.info)


def fake_baselines(folder, cohort: Cohort, seed: int = 0):
    """A baselines folder as `alfia baselines` writes it, with a WeightedEnsemble scoring ``cohort``'s rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, entry = [], {"family": "tabular", "threshold": 0.5}
    for where in ("val", "test"):
        part = cohort.df[cohort.df["split"] == where]
        p = np.clip(0.4 * part[LABEL] + rng.random(len(part)) * 0.6, 0, 1)
        rows.append(pd.DataFrame({"model": "WeightedEnsemble", "where": where, "stay_id": part["stay_id"],
                                  "probability": p}))
        if where == "test":
            entry["test"] = evaluate(part[LABEL], p, threshold=0.5, n_boot=N_BOOT)
    pd.concat(rows).to_parquet(folder / "predictions.parquet", index=False)
    (folder / "results.json").write_text(json.dumps({"models": {"WeightedEnsemble": entry}, "skipped": {}}))
    return folder


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_bert_dir, tiny_roberta_dir):
    root = tmp_path_factory.mktemp("ablation")
    cohort, ext = small_cohort(), external_cohort()
    base = fake_baselines(root / "baselines", cohort)
    args = dict(backbones=[str(tiny_bert_dir), str(tiny_roberta_dir)], variants=["default", "random-init", "no-lora"],
                profile="quick", external=ext, external_name="p12-b", boost=True, baselines=base, speed_stays=6,
                n_boot=N_BOOT, progress=False, **{**TINY, "epochs": 1})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(boost_mod, "run_boost", functools.partial(boost_mod.run_boost, zoo=BOOST_ZOO))
        path = run_ablation(cohort, root / "out", **args)
    return {"root": root, "out": root / "out", "index": json.loads(path.read_text()), "cohort": cohort, "ext": ext,
            "args": args}


def test_quick_profile_runs_each_backbone_and_the_random_init_control(compared):
    index = compared["index"]
    assert [r["variant"] for r in compared["index"]["runs"]] == ["default", "random-init", "default"]
    assert index["profile"] == "quick" and all(r["settings"]["profile"] == "quick" for r in index["runs"])
    assert list(index["skipped"].values()) == ["the quick profile's backbone is frozen already (no LoRA)"]
    for r in index["runs"]:
        config = json.loads((compared["out"] / r["folder"] / "config.json").read_text())["train"]
        assert config["model"]["lora"] is None and config["model"]["readout"] is not None
        assert config["calibration"] == "platt" and config["distill"] == 1.0


def test_every_metric_is_the_one_of_the_run_predictions(compared):
    out, cohort, ext = compared["out"], compared["cohort"], compared["ext"]
    for r in compared["index"]["runs"]:
        preds = pd.read_parquet(out / r["folder"] / "predictions.parquet")
        for where in ("val", "test"):
            part = preds[preds["split"] == where]
            assert r["metrics"][where]["auprc"]["value"] == pytest.approx(
                average_precision_score(part[LABEL], part["probability"]))
            assert r["metrics"][where]["auroc"]["value"] == pytest.approx(
                roc_auc_score(part[LABEL], part["probability"]))
        external = pd.read_parquet(out / r["folder"] / "external.predictions.parquet")
        y = ext.df.set_index("stay_id").loc[external["stay_id"], LABEL]
        assert r["metrics"]["external"]["n"] == len(ext.df)
        assert r["metrics"]["external"]["auprc"]["value"] == pytest.approx(
            average_precision_score(y, external["probability"]))
        assert r["external_ms_per_stay"] > 0
        boosted = pd.read_parquet(out / r["folder"] / "boost" / "predictions.parquet")
        val = boosted[(boosted["model"] == "ALFIA-boost") & (boosted["where"] == "val")]
        y_val = cohort.df.set_index("stay_id").loc[val["stay_id"], LABEL]
        assert r["boost"]["val"]["auprc"]["value"] == pytest.approx(average_precision_score(y_val, val["probability"]))
        assert {"val", "test", "external"} <= set(r["boost"])
    reference = compared["index"]["reference"]["metrics"]
    base = pd.read_parquet(compared["root"] / "baselines" / "predictions.parquet")
    val = base[base["where"] == "val"]
    y_val = cohort.df.set_index("stay_id").loc[val["stay_id"], LABEL]
    assert reference["val"]["auroc"]["value"] == pytest.approx(roc_auc_score(y_val, val["probability"]))
    assert "external" not in reference   # the fake baselines scored no external cohort


def test_parameters_timings_and_inference_time(compared, tiny_bert_dir):
    from transformers import AutoModel

    runs = {r["variant"] + ("" if i < 2 else "-2"): r for i, r in enumerate(compared["index"]["runs"])}
    tiny = sum(p.numel() for p in AutoModel.from_pretrained(tiny_bert_dir).parameters())
    assert runs["default"]["parameters"]["backbone"] == runs["random-init"]["parameters"]["backbone"] == tiny
    assert runs["default-2"]["parameters"]["backbone"] != tiny   # the other backbone
    assert 0 < runs["default"]["parameters"]["trained"] < 10 * tiny
    for r in runs.values():
        assert set(r["timing"]) == {"train", "external", "boost"}
        assert all(t["seconds"] > 0 and t["load_start"] >= 0 and t["load_end"] >= 0 for t in r["timing"].values())
        assert len(r["ms_per_stay_rounds"]) == SPEED_ROUNDS and r["ms_per_stay"] == sorted(r["ms_per_stay_rounds"])[1]
    assert compared["index"]["inference"]["stays"] == 6


def test_the_curves_figure_plots_every_run(compared):
    figures = compared["out"] / "figures"
    numbers = json.loads((figures / "training-curves.json").read_text())
    runs = compared["index"]["runs"]
    assert numbers["legend"] == [r["name"] for r in runs] and (figures / "training-curves.png").stat().st_size
    for r in runs:
        history = [json.loads(x) for x in (compared["out"] / r["folder"] / "history.jsonl").read_text().splitlines()]
        assert numbers[r["name"]]["val_auprc"] == [h["val_auprc"] for h in history]
        assert numbers[r["name"]]["epoch"][0] == 0 and numbers[r["name"]]["best_epoch"] == r["best_epoch"]


def test_markdown_shows_validation_first_then_test_then_external(compared):
    text = (compared["out"] / "ablation.md").read_text()
    assert text == ablation_markdown(compared["index"])
    table = text.split("**Validation, test and external metrics (95% bootstrap CIs)**")[1].split("**Cost")[0]
    data = [line.split(" | ")[0].strip("| ") for line in table.splitlines() if line.startswith("| ")][2:]
    assert data == ["validation"] * 7 + ["test"] * 7 + ["p12-b (all rows)"] * 6   # 3 ALFIA, 3 boost, reference
    assert "| validation | WeightedEnsemble (tabular) |" in table
    name = compared["index"]["runs"][0]["name"]
    val = compared["index"]["runs"][0]["metrics"]["val"]["auprc"]
    assert f"| validation | ALFIA ({name}) | {val['value']:.3f} ({val['ci_low']:.3f}–{val['ci_high']:.3f}) |" in table
    cost = text.split("**Cost")[1]
    assert f"| {name} | " in cost and "median of 3 rounds back to back" in cost


def test_a_second_call_trains_nothing_again(compared, monkeypatch):
    def never(*_a, **_k):
        raise AssertionError("a finished step ran again")

    monkeypatch.setattr("alfia.training.trainer.Trainer.fit", never)   # the mean-pool variant trains through it
    monkeypatch.setattr("alfia.training.trainer.train", never)
    monkeypatch.setattr(boost_mod, "run_boost", never)
    monkeypatch.setattr("alfia.inference.predict_cohort", never)
    path = run_ablation(compared["cohort"], compared["out"], **{**compared["args"], "speed_stays": 0})
    again = json.loads(path.read_text())
    for before, after in zip(compared["index"]["runs"], again["runs"], strict=True):
        assert after["timing"] == before["timing"] and after["metrics"] == before["metrics"]
        assert "ms_per_stay" not in after and after["parameters"] == before["parameters"]


def test_refusals(compared, tmp_path):
    cohort = compared["cohort"]
    with pytest.raises(AlfiaError, match="unknown ablation profile"):
        run_ablation(cohort, tmp_path / "a", profile="fast")
    with pytest.raises(AlfiaError, match="no results.json"):
        run_ablation(cohort, tmp_path / "a", baselines=tmp_path)
    other = small_cohort()
    other.df["stay_id"] = other.df["stay_id"] + 10**7   # another cohort's stays
    with pytest.raises(AlfiaError, match="not of this cohort's validation rows"):
        ablation.model_results(fake_baselines(tmp_path / "b", other), "WeightedEnsemble", cohort, N_BOOT)


def test_every_variant_is_configuration():
    """No trainer subclass: each variant is settings on top of the profile's (random-init: another backbone)."""
    from alfia.training.config import make_config

    assert ablation.variant_settings("default") == {} == ablation.variant_settings("random-init")
    assert ablation.variant_settings("no-lora") == {"model.lora": None}
    assert ablation.variant_settings("nf2") == {"model.fusion.num_fusion_layers": 2}
    mean = ablation.variant_settings("mean-pool")
    assert mean == {"model.fusion.num_fusion_layers": 1, "model.fusion.kind": "mean"}
    config = make_config("quick", **mean)
    assert config.model.fusion.kind == "mean"
    assert "plain mean pooling" in ablation.describe("mean-pool", config)
    assert not hasattr(ablation, "MeanPooling") and not hasattr(ablation, "_mean_pool_trainer")
