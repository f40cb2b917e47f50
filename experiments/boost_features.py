"""ALFIA-boost feature sets on set A (issue 12): which of ALFIA's outputs help a booster, chosen on validation.

Answered: the tabular features plus the readout's out-of-fold logit (CatBoost: validation AUPRC 0.474), not the 384
ALF embedding dimensions (0.375), so ALFIA-boost leaves the embeddings out by default (docs/experiments.md,
section 3; alfia/baselines/boost.py). Output: results/experiments/boost_features.txt.

    .venv/bin/python experiments/boost_features.py [RUN]     (RUN: a quick-profile run on p12-a, default
                                                              study/alfia-run, as `make study` leaves it)
"""

import sys
import tempfile
import time

import lightgbm as lgb
import pandas as pd
from catboost import CatBoostClassifier

from alfia.baselines.boost import embeddings
from alfia.baselines.readout import out_of_fold_readout
from alfia.cohorts import ID, SPLIT
from alfia.cohorts.features import feature_frame
from alfia.evaluation.metrics import average_precision as ap
from alfia.evaluation.metrics import roc_auc as auc
from alfia.text.inputs import load_input


def main() -> None:
    run = sys.argv[1] if len(sys.argv) > 1 else "study/alfia-run"
    dev, ext = load_input("p12-a"), load_input("p12-b")
    t = time.time()
    dl, el = out_of_fold_readout(run, dev, ext)
    print("oof", time.time() - t, flush=True)
    de, ee = embeddings(run, dev), embeddings(run, ext)
    sp, y, yb = dev.df[SPLIT].to_numpy(), dev.df[dev.label].to_numpy(), ext.df[ext.label].to_numpy()
    X, Xb = feature_frame(dev), feature_frame(ext)
    ids, idb = dev.df[ID].to_numpy(), ext.df[ID].to_numpy()
    with_logit = (X.assign(logit=dl.loc[ids].to_numpy()), Xb.assign(logit=el.loc[idb].to_numpy()))
    variants = {"features": (X, Xb), "features+logit": with_logit,
                "features+emb+logit": (pd.concat([with_logit[0], de.loc[ids].reset_index(drop=True)], axis=1),
                                       pd.concat([with_logit[1], ee.loc[idb].reset_index(drop=True)], axis=1))}
    tr, va, te = sp == "train", sp == "val", sp == "test"
    cats = [c for c in X.columns if str(X[c].dtype) == "category"]
    for name, (A, B) in variants.items():
        for mname in ["lgbm", "cat"]:
            if mname == "lgbm":
                m = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, verbose=-1, n_jobs=2,
                                       random_state=0).fit(A[tr], y[tr])
                p, pb = m.predict_proba(A)[:, 1], m.predict_proba(B)[:, 1]
            else:
                Ac, Bc = A.copy(), B.copy()
                for c in cats:
                    Ac[c], Bc[c] = Ac[c].astype(str), Bc[c].astype(str)
                with tempfile.TemporaryDirectory() as train_dir:   # CatBoost's own logs, not ./catboost_info
                    m = CatBoostClassifier(iterations=300, verbose=0, thread_count=2, random_seed=0,
                                           cat_features=cats, train_dir=train_dir).fit(Ac[tr], y[tr],
                                                                                       eval_set=(Ac[va], y[va]))
                p, pb = m.predict_proba(Ac)[:, 1], m.predict_proba(Bc)[:, 1]
            print(f"{name:20s} {mname:5s} val {ap(y[va], p[va]):.3f}/{auc(y[va], p[va]):.3f} | test "
                  f"{ap(y[te], p[te]):.3f} | B {ap(yb, pb):.3f}/{auc(yb, pb):.3f}", flush=True)


if __name__ == "__main__":
    main()
