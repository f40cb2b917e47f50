"""GPU experiments: text style and training settings on set A (val AUPRC decides; test reported).

Answered: banded text beats numeric text on validation with both training settings tried, so banded is the
default style (docs/text.md, "Which style?"); the early quick profile peaked after one epoch, so the quick profile
took the paper's learning rate. Output: results/gpu_style_and_profiles.json.

Written against the flat training settings of its time (``lora=False``, ``lora_layers``, ...), before they were
nested under ``model`` (issue 13): it does not run on today's settings. To rerun it, check out the code it ran
(commit fd414d9, where it is results/gpu_style_and_profiles.py) and run it there on a GPU with the MiniLM backbone
in .gpu/minilm::

    OUT=DIR python results/gpu_style_and_profiles.py
"""

import json
import os
import time
import traceback

from alfia.cohorts import Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.evaluation.metrics import evaluate
from alfia.inference import Run
from alfia.text.encoder import TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train

OUT = os.environ["OUT"]
BB = os.path.abspath(".gpu/minilm")
EXPS = [
    ("banded-quick", "banded", "quick", {}),
    ("numeric-quick", "numeric", "quick", {}),
    ("banded-quick-6ep", "banded", "quick", {"epochs": 6, "patience": 3}),
    ("banded-k1", "banded", "quick", {"lora_layers": 1}),
    ("banded-kall", "banded", "quick", {"lora_layers": None, "cache_prefix": False}),
    ("banded-nolora", "banded", "quick", {"lora": False}),
    ("numeric-paper", "numeric", "paper", {}),
    ("banded-paper", "banded", "paper", {}),
]


def run_one(name: str, style: str, profile: str, over: dict, dev, ext) -> dict:
    t0 = time.time()
    enc = TextEncoder("physionet2012", style).fit(dev.df)
    df = dev.df.copy()
    df["text"] = enc.transform(df)
    cohort = Cohort(df, dev.schema, {**dev.info, "text_encoder": enc.to_dict()})
    cfg = make_config(profile, **{k: v for k, v in over.items() if v is not None})
    if "lora_layers" in over:
        cfg.lora_layers = over["lora_layers"]
    run = f"/tmp/runs/{name}"
    train(cohort, run, cfg, backbone=BB, progress=False)
    r = Run.load(run)
    r.model.to("cuda")
    y = df[dev.label].to_numpy()
    p = r.model.predict_proba(df["text"].tolist(), batch_size=128)
    val, test = (df.split == "val").to_numpy(), (df.split == "test").to_numpy()
    pe = r.model.predict_proba(enc.transform(ext.df).tolist(), batch_size=128)
    with open(f"{run}/history.jsonl") as f:
        hist = [json.loads(line) for line in f]
    result = {"style": style, "profile": profile, "over": over, "history": hist,
              "val": evaluate(y[val], p[val], n_boot=200), "test": evaluate(y[test], p[test], n_boot=200),
              "external": evaluate(ext.df[ext.label].to_numpy(), pe, n_boot=200), "seconds": time.time() - t0}
    v, t, e = (result[k] for k in ("val", "test", "external"))
    print(f"{name}: val {v['auprc']['value']:.3f}/{v['auroc']['value']:.3f} test {t['auprc']['value']:.3f}/"
          f"{t['auroc']['value']:.3f} ext {e['auprc']['value']:.3f}/{e['auroc']['value']:.3f} epochs "
          f"{[round(h['val_auprc'], 3) for h in hist]} {time.time() - t0:.0f}s", flush=True)
    return result


def main() -> None:
    dev, ext = load_bundled("p12-a"), load_bundled("p12-b")
    results = {}
    for name, style, profile, over in EXPS:
        try:
            results[name] = run_one(name, style, profile, over, dev, ext)
        except Exception:
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc()}
        with open(f"{OUT}/gpu_results.json", "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
