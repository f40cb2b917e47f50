"""The study report from a tiny run: every section, image and number file; the page renders in Chromium."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.analysis.ablation import run_ablation
from alfia.analysis.report import SECTIONS, build_report
from alfia.cohorts import Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.errors import AlfiaError
from alfia.inference import finish_run
from alfia.model.alfia import ALFIA
from alfia.text.encoder import TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train

TINY = dict(epochs=2, batch_size=16, lr=5e-3, head_lr=5e-3, fusion_layers=2, lora_r=4, lora_alpha=8, patience=3,
            lora_layers=None, max_length=48)


def small_cohort() -> Cohort:
    """A stratified sample of the bundled set A (real features, so Table 1 and the subgroups have content)."""
    dev = load_bundled("p12-a")
    df = dev.df
    parts = [df[(df["split"] == s) & (df["hospital_mortality"] == y)].sample(n=n // (4 if y else 1), random_state=0)
             for s, n in (("train", 60), ("val", 20), ("test", 32)) for y in (0, 1)]
    df = pd.concat(parts).reset_index(drop=True)
    encoder = TextEncoder(dev.schema.name).fit(df)
    df["text"] = encoder.transform(df)
    return Cohort(df=df, schema=dev.schema, info={**dev.info, "text_encoder": encoder.to_dict()})


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_bert_dir):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    cohort = small_cohort()
    run = root / "alfia-run"
    train(cohort, run, make_config("quick", **TINY), backbone=str(tiny_bert_dir), progress=False)
    finish_run(run, cohort, n_boot=20)
    # baselines as the baselines engineer writes them
    preds = pd.read_parquet(run / "predictions.parquet")
    rng = np.random.default_rng(0)
    base = root / "baselines"
    base.mkdir()
    rows, models = [], {}
    from alfia.evaluation.metrics import evaluate

    for name, family, noise in (("XGBoost", "tabular", 0.3), ("ALFIA-boost", "alfia-derived", 0.2),
                                ("SOFA", "score", 0.6)):
        for where in ("val", "test"):
            t = preds[preds["split"] == where]
            p = np.clip(t["hospital_mortality"] * 0.5 + rng.random(len(t)) * noise + 0.1, 0, 1)
            rows.append(pd.DataFrame({"model": name, "where": where, "stay_id": t["stay_id"], "probability": p}))
            if where == "test":
                models[name] = {"family": family, "threshold": 0.5,
                                "test": evaluate(t["hospital_mortality"], p, threshold=0.5, n_boot=20),
                                "external": evaluate(t["hospital_mortality"], p, n_boot=20)}
    pd.concat(rows).to_parquet(base / "predictions.parquet", index=False)
    (base / "results.json").write_text(json.dumps({"models": models, "skipped": {"TabPFN": "not installed"}}))
    # the study's external outputs
    test = preds[preds["split"] == "test"]
    ext = root / "p12-b.predictions.parquet"
    test[["stay_id", "probability", "label"]].to_parquet(ext, index=False)
    (root / "p12-b.metrics.json").write_text(json.dumps(
        {"ms_per_sample": 3.5, "peak_rss_mb": 900.0, "rows": len(test), "threshold": 0.5,
         "metrics": evaluate(test["hospital_mortality"], test["probability"], n_boot=20)}))
    bench = root / "bench.json"
    bench.write_text(json.dumps({"reference_infer_ms_per_sample": 5.0, "alfia_infer_ms_per_sample": 4.0}))
    ablation = root / "ablation"
    run_ablation(cohort, ablation, backbones=[str(tiny_bert_dir)],
                 variants=["default", "random-init", "no-lora", "nf6", "mean-pool"], n_boot=20,
                 progress=False, **{**TINY, "epochs": 1})
    out = root / "page" / "report.html"
    with pytest.MonkeyPatch.context() as mp:
        # finishing the run cached the ALF embeddings of its whole cohort: the report must not embed them again
        def no_second_pass(*_a, **_k):
            raise AssertionError("the report recomputed ALF embeddings instead of reading the run's cache")

        for name in ("embed", "predict_embed", "predict_proba"):
            mp.setattr(ALFIA, name, no_second_pass)
        build_report(run, out, baselines=base, ablation=ablation, cohort=cohort, bench=bench, max_stays=40,
                     projection="pca", n_boot=20, classifier="mlp", progress=lambda *_: None)
    return {"root": root, "run": run, "out": out, "html": out.read_text(), "ablation": ablation}


def test_every_section_and_image_is_present(built):
    page = built["html"]
    for name in SECTIONS:
        assert f'<section id="{name}">' in page
    assert "Not shown" not in page, re.findall(r'Not shown[^<]*', page)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-name="([^"]+)"', page)
    names = {n for _, n in images}
    assert names >= {"cohort-token-lengths", "training-curves", "final-scores", "pr-roc", "bootstrap",
                     "calibration", "layer-weights", "latent-maps", "latent-measures", "latent-classifier", "cost"}
    for data, name in images:
        assert len(data) > 1000, name
        assert (built["run"] / "figures" / f"{name}.json").exists()
        assert (built["run"] / "figures" / f"{name}.png").exists()
        assert (built["out"].parent / "report-figures" / f"{name}.png").exists()
    assert "src=\"http" not in page and "<script" not in page  # offline, nothing to fetch
    for text in ("Baseline characteristics", "XGBoost", "ALFIA-boost", "TabPFN", "Brier", "net benefit",
                 "age band", "icu_type", "gender", "Sensitivity", "true positive", "false negative",
                 "scikit-learn MLPClassifier", "ms per stay", "reference", "mean-pool", "random-init"):
        assert text in page, text


def test_latent_section_has_all_fourteen_sets(built):
    data = json.loads((built["run"] / "figures" / "latent.json").read_text())
    sets = data["sets"]
    pooled = [f"backbone L{j} {p}" for j in (1, 2, 3, 4) for p in ("cls", "mean", "max")]
    assert list(sets) == ["raw tabular", *pooled, "ALF output"]
    for name, s in sets.items():
        assert len(s["xy"]) == data["n_test"] == len(data["labels"])
        assert set(s["measures"]) == {"centroid_distance", "nearest_negative", "within_pos", "within_neg",
                                      "separation_ratio", "silhouette"}
        assert 0 <= s["classifier"]["auprc"]["value"] <= 1
        assert name in built["html"]
    assert sets["backbone L4 cls"]["dim"] == 32 and sets["raw tabular"]["dim"] > 30


def test_numbers_files_match_the_run(built):
    figs = built["run"] / "figures"
    curves = json.loads((figs / "training-curves.json").read_text())
    history = [json.loads(x) for x in (built["run"] / "history.jsonl").read_text().splitlines()]
    assert curves["this run"]["val_auprc"] == [h["val_auprc"] for h in history]
    assert set(curves) >= {"default", "mean-pool", "random-init", "no-lora"}
    cal = json.loads((figs / "calibration.json").read_text())
    metrics = json.loads((built["run"] / "metrics.json").read_text())["test"]
    assert cal["calibration"]["brier"] == pytest.approx(metrics["brier"]["value"])
    lam = json.loads((figs / "layer-weights.json").read_text())
    assert len(lam["mean"]) == 2
    ablation = json.loads((built["ablation"] / "ablation.json").read_text())
    assert [r["name"] for r in ablation["runs"]] == ["default", "random-init", "no-lora", "mean-pool"]
    assert "nf6" in ablation["skipped"]
    assert not (built["ablation"] / "mean-pool" / "model").exists()
    assert (built["ablation"] / "mean-pool" / "predictions.parquet").exists()


def test_bad_inputs_are_one_line_errors(tmp_path, built):
    with pytest.raises(AlfiaError, match="not a finished run"):
        build_report(tmp_path, tmp_path / "r.html")
    with pytest.raises(AlfiaError, match=".html"):
        build_report(built["run"], tmp_path / "r.pdf")
    with pytest.raises(AlfiaError, match="results.json"):
        build_report(built["run"], tmp_path / "r.html", baselines=tmp_path)
    with pytest.raises(AlfiaError, match="unknown ablation variant"):
        run_ablation(small_cohort(), tmp_path / "a", variants=["bogus"])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_page_renders_in_headless_chromium(built, tmp_path):
    from PIL import Image

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
             "--v=0"]
    url = built["out"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    r = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3000", url], capture_output=True,
                       text=True, timeout=60)
    assert shot.exists(), r.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text and figures, not a blank page
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    for name in SECTIONS:
        assert f'id="{name}"' in dom.stdout
    assert dom.stdout.count("<img") >= 11
    for log in (r.stderr, dom.stderr):
        assert "Uncaught" not in log and "ERROR:CONSOLE" not in log
    assert Path(shot).stat().st_size > 10_000
