"""Readout experiments on frozen features (issue 12): features, targets (labels vs the tabular teacher) and C,
chosen on set A's validation split; test and set B printed for the record.

Answered: the 4 fused layers' means side by side (``top4cat``), fitted to the teacher's out-of-fold probabilities
(d = 1) with C = 0.3, is the quick profile's readout (``model.readout.C=0.3``, ``distill=1.0``; docs/experiments.md,
section 2). Output: results/experiments/readout_lr.txt.

    .venv/bin/python experiments/dump_features.py banded FEAT
    .venv/bin/python experiments/dump_features.py numeric FEAT
    .venv/bin/python experiments/readout_lr.py FEAT
"""

import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from alfia.cohorts import SPLIT
from alfia.evaluation.metrics import average_precision as ap
from alfia.evaluation.metrics import roc_auc as auc
from alfia.text.inputs import load_input
from alfia.training.teacher import out_of_fold_teacher

FEAT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/feat"


def load(style: str, c: str) -> np.ndarray:
    whole = f"{FEAT}/{style}-{c}.npy"
    if os.path.exists(whole):
        return np.load(whole).astype(np.float64)
    hi = np.load(f"{FEAT}/{style}-{c}-hi.npy")   # layers 4-6 (the GPU run brought back halves)
    lo_path = f"{FEAT}/{style}-{c}-lo.npy"
    lo = np.load(lo_path) if os.path.exists(lo_path) else np.zeros((len(hi), 4, hi.shape[2]))
    return np.concatenate([lo, hi], 1).astype(np.float64)


def feats(L: np.ndarray, kind: str) -> np.ndarray:
    top4 = L[:, 3:7]
    if kind == "readout":
        return np.concatenate([top4.mean(1), L[:, 6]], 1)
    if kind == "top4cat":
        return top4.reshape(len(L), -1)
    return L[:, 1:7].reshape(len(L), -1)   # all6


def fit(X, Xb, t, C, tr):
    m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
    Z, Zb = (X - m) / s, (Xb - m) / s
    n = tr.sum()
    lr = LogisticRegression(C=C, max_iter=3000).fit(np.vstack([Z[tr], Z[tr]]), np.r_[np.ones(n), np.zeros(n)],
                                                    sample_weight=np.r_[t, 1 - t])
    return lr.predict_proba(Z)[:, 1], lr.predict_proba(Zb)[:, 1]


def main() -> None:
    dev, ext = load_input("p12-a"), load_input("p12-b")
    sp, y, yb = dev.df[SPLIT].to_numpy(), dev.df[dev.label].to_numpy(), ext.df[ext.label].to_numpy()
    tr, va, te = sp == "train", sp == "val", sp == "test"
    teach = out_of_fold_teacher(dev)
    for style in ["banded", "numeric"]:
        A, B = load(style, "a"), load(style, "b")
        for kind in (["readout", "top4cat", "all6"] if style == "banded" else ["readout"]):
            X, Xb = feats(A, kind), feats(B, kind)
            for d in [0.0, 0.5, 1.0]:
                t = (1 - d) * y[tr] + d * teach
                for C in [0.003, 0.01, 0.03, 0.1, 0.3]:
                    s, sb = fit(X, Xb, t, C, tr)
                    print(f"{style:<8s} {kind:<8s} d={d:.1f} C={C:<5g} val {ap(y[va], s[va]):.3f}/"
                          f"{auc(y[va], s[va]):.3f} | test {ap(y[te], s[te]):.3f} | B {ap(yb, sb):.3f}/"
                          f"{auc(yb, sb):.3f}", flush=True)


if __name__ == "__main__":
    main()
