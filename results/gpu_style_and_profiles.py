"""GPU experiments: text style and training settings on set A (val AUPRC decides; test reported).

Written against the flat training settings of its time (``lora=False``, ``readout=True``, ...), before they were
nested under ``model`` (issue 13); to rerun it, check out the code it ran (commit fd414d9).
"""
import json, os, sys, time, traceback
import torch
sys.path.insert(0, ".")
from alfia.cohorts.bundled import load_bundled
from alfia.cohorts import Cohort
from alfia.text.encoder import TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train
from alfia.inference import Run
from alfia.evaluation.metrics import evaluate, choose_threshold
OUT = os.environ["OUT"]
BB = os.path.abspath(".gpu/minilm")
dev = load_bundled("p12-a"); ext = load_bundled("p12-b")
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
results = {}
for name, style, profile, over in EXPS:
    t0 = time.time()
    try:
        enc = TextEncoder("physionet2012", style).fit(dev.df)
        df = dev.df.copy(); df["text"] = enc.transform(df)
        cohort = Cohort(df, dev.schema, {**dev.info, "text_encoder": enc.to_dict()})
        cfg = make_config(profile, **{k: v for k, v in over.items() if v is not None})
        if "lora_layers" in over: cfg.lora_layers = over["lora_layers"]
        run = f"/tmp/runs/{name}"
        train(cohort, run, cfg, backbone=BB, progress=False)
        r = Run.load(run); r.model.to("cuda")
        y = df["hospital_mortality"].to_numpy()
        p = r.model.predict_proba(df["text"].tolist(), batch_size=128)
        val, test = (df.split == "val").to_numpy(), (df.split == "test").to_numpy()
        thr = choose_threshold(y[val], p[val])
        pe = r.model.predict_proba(enc.transform(ext.df).tolist(), batch_size=128)
        hist = [json.loads(l) for l in open(f"{run}/history.jsonl")]
        results[name] = {"style": style, "profile": profile, "over": over, "history": hist,
                         "val": evaluate(y[val], p[val], n_boot=200), "test": evaluate(y[test], p[test], n_boot=200),
                         "external": evaluate(ext.df.hospital_mortality.to_numpy(), pe, n_boot=200),
                         "seconds": time.time() - t0}
        v, t, e = (results[name][k] for k in ("val", "test", "external"))
        print(f"{name}: val {v['auprc']['value']:.3f}/{v['auroc']['value']:.3f} test {t['auprc']['value']:.3f}/{t['auroc']['value']:.3f} ext {e['auprc']['value']:.3f}/{e['auroc']['value']:.3f} epochs {[round(h['val_auprc'],3) for h in hist]} {time.time()-t0:.0f}s", flush=True)
    except Exception:
        traceback.print_exc(); results[name] = {"error": traceback.format_exc()}
    json.dump(results, open(f"{OUT}/gpu_results.json", "w"), indent=1)
