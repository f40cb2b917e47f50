"""Issue 12's experiments: each idea trained on set A's training split, chosen on its validation split.

Answered: a pooled logistic-regression readout, distilled from a tabular teacher and Platt-scaled on validation,
carries the model on 2 CPU cores (docs/experiments.md, section 1: the quick profile's readout, teacher and
calibration). Every row records validation AUPRC/AUROC (the decision) and, for the record, the test split and set
B (reported after the decision). Runs on a GPU when there is one, else on the CPU. Output:
results/experiments/sweep.json.

Written against the flat training settings of its time (``lora=False``, ``readout=True``, ...), before they were
nested under ``model`` (issue 13): it does not run on today's settings. To rerun it, check out the code it ran
(commit 973456d, where it is results/experiments/sweep.py) and run it there::

    OUT=DIR python results/experiments/sweep.py [NAME ...]      (default OUT: results/experiments)
"""

import json
import os
import sys
import time
import traceback

import pandas as pd
import torch

from alfia.cohorts import Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.evaluation.metrics import evaluate
from alfia.inference import Run
from alfia.text.encoder import TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train

OUT = os.environ.get("OUT", "results/experiments")
R = dict(readout=True, class_weight=False, calibration="platt")
EXPS = {
    "quick-today": ("banded", {}),
    "no-class-weight": ("banded", dict(class_weight=False)),
    "readout": ("banded", R),
    "readout-distill0.5": ("banded", {**R, "distill": 0.5}),
    "readout-distill0.5-6ep": ("banded", {**R, "distill": 0.5, "epochs": 6, "patience": 3}),
    "frozen-readout-10ep": ("banded", {**R, "lora": False, "epochs": 10, "patience": 3, "head_lr": 1e-4}),
    "frozen-readout-distill0.5-10ep": ("banded", {**R, "distill": 0.5, "lora": False, "epochs": 10,
                                                  "patience": 3, "head_lr": 1e-4}),
    "readout-distill1.0-6ep": ("banded", {**R, "distill": 1.0, "epochs": 6, "patience": 3}),
    "numeric-readout-distill0.5-6ep": ("numeric", {**R, "distill": 0.5, "epochs": 6, "patience": 3}),
    "readout-distill0.5-6ep-lr3e-4": ("banded", {**R, "distill": 0.5, "epochs": 6, "patience": 3, "lr": 3e-4,
                                                 "head_lr": 1e-4}),
    "readout-distill0.5-6ep-seed43": ("banded", {**R, "distill": 0.5, "epochs": 6, "patience": 3, "seed": 43}),
    "readout-distill0.5-6ep-seed44": ("banded", {**R, "distill": 0.5, "epochs": 6, "patience": 3, "seed": 44}),
}


def short(m):
    return {k: m[k]["value"] for k in ("auprc", "auroc", "brier", "ece")}


def run_one(name, style, over, dev, ext, results):
    t0 = time.time()
    enc = TextEncoder(dev.schema.name, style).fit(dev.df)
    df = dev.df.copy()
    df["text"] = enc.transform(df)
    cohort = Cohort(df, dev.schema, {**dev.info, "text_encoder": enc.to_dict()})
    cfg = make_config("quick", **over)
    folder = f"/tmp/runs/{name}"
    metrics = train(cohort, folder, cfg, progress=False, finish=True, n_boot=200)
    run = Run.load(folder)
    run.model.to("cuda" if torch.cuda.is_available() else "cpu")
    y_ext = ext.df[ext.label].to_numpy()
    p_raw = run.model.predict_proba(enc.transform(ext.df).tolist(), batch_size=128)
    p_ext = run.calibrator.transform(p_raw)
    pred = pd.read_parquet(f"{folder}/predictions.parquet")
    test = pred[pred.split == "test"]
    with open(f"{folder}/history.jsonl") as f:
        hist = [json.loads(x) for x in f]
    results[name] = {
        "style": style, "settings": over, "history": hist, "calibration": run.calibrator.to_dict(),
        "val": short(metrics["val"]), "test": short(metrics["test"]),
        "test_raw": short(evaluate(test[dev.label].to_numpy(), test.p_raw.to_numpy(), n_boot=0)),
        "set_b": short(evaluate(y_ext, p_ext, n_boot=0)), "set_b_raw": short(evaluate(y_ext, p_raw, n_boot=0)),
        "seconds": round(time.time() - t0, 1)}
    r = results[name]
    print(f"{name}: val {r['val']['auprc']:.3f}/{r['val']['auroc']:.3f} | test {r['test']['auprc']:.3f} "
          f"ece {r['test']['ece']:.3f} | B {r['set_b']['auprc']:.3f}/{r['set_b']['auroc']:.3f} ece "
          f"{r['set_b']['ece']:.3f} (raw {r['set_b_raw']['ece']:.3f}) | epochs "
          f"{[(h['epoch'], round(h['val_auprc'], 3)) for h in hist]} {r['seconds']:.0f}s", flush=True)


def main():
    names = sys.argv[1:] or list(EXPS)
    dev, ext = load_bundled("p12-a"), load_bundled("p12-b")
    path = os.path.join(OUT, "sweep.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    for name in names:
        style, over = EXPS[name]
        try:
            run_one(name, style, over, dev, ext, results)
        except Exception:
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc()}
        with open(path, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
