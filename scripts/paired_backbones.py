"""Paired bootstrap AUPRC/AUROC differences MPNet - MiniLM (ALFIA quick, and ALFIA-boost) on set A's validation
and test splits and on set B, on the same stays and resamples (alfia.evaluation.metrics.paired_difference), from a
folder of `alfia ablate ... --backbone all-MiniLM-L6-v2 --backbone all-mpnet-base-v2 --external p12-b --boost`.

Usage: .venv/bin/python scripts/paired_backbones.py ABLATION_DIR   (writes ABLATION_DIR/paired.json)
"""
import json
import sys
from pathlib import Path

import pandas as pd

from alfia.baselines.boost import BOOST_ENSEMBLE
from alfia.baselines.leaderboard import read_results_dir
from alfia.cohorts import CW24
from alfia.cohorts.registry import load_cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import paired_difference

LABEL = CW24.label  # the outcome column of the CW-24 cohorts these tests build

root = Path(sys.argv[1])
runs = {"MPNet": root / "all-mpnet-base-v2-default", "MiniLM": root / "all-MiniLM-L6-v2-default"}
labels = pd.concat([pd.read_parquet(runs["MiniLM"] / "predictions.parquet")[["stay_id", LABEL]],
                    load_cohort("p12-b").df[["stay_id", LABEL]]]).drop_duplicates("stay_id").set_index("stay_id")[LABEL]


def scores(run: Path, model: str, where: str) -> pd.Series:
    if model == "ALFIA":
        if where == "external":
            d = pd.read_parquet(run / "external.predictions.parquet")
        else:
            d = pd.read_parquet(run / "predictions.parquet")
            d = d[d["split"] == where]
    else:
        entries, _ = read_results_dir(run / "boost")
        d = next(e for e in entries if e.name == BOOST_ENSEMBLE).predictions[where]
    return d.set_index("stay_id")["probability"]


out = {}
for model in ("ALFIA", BOOST_ENSEMBLE):
    for where in ("val", "test", "external"):
        try:
            a, b = scores(runs["MPNet"], model, where), scores(runs["MiniLM"], model, where)
        except (FileNotFoundError, KeyError, StopIteration, AlfiaError):
            continue
        if len(a) == 0:
            continue
        ids = a.index.intersection(b.index)
        if not len(ids) == len(a) == len(b):
            raise SystemExit(f"{model} {where}: the two runs scored different stays ({len(a)} vs {len(b)})")
        y = labels.loc[ids].to_numpy()
        out[f"{model} {where}"] = {k: paired_difference(y, a.loc[ids].to_numpy(), b.loc[ids].to_numpy(), k)
                                   for k in ("auprc", "auroc")}
        out[f"{model} {where}"]["n"] = len(ids)
(root / "paired.json").write_text(json.dumps(out, indent=2))
for k, v in out.items():
    print(k, v["n"], {m: f"{x['difference']:+.3f} ({x['ci_low']:+.3f} to {x['ci_high']:+.3f})"
                      for m, x in v.items() if m != "n"})
