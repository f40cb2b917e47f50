"""Readout experiments on frozen features (issue 12): features, targets (labels vs the tabular teacher) and C,
chosen on set A's validation split; test and set B printed for the record.

    python results/experiments/dump_features.py banded FEAT; python results/experiments/dump_features.py numeric FEAT
    python results/experiments/readout_lr.py FEAT     (output: results/experiments/readout_lr.txt)
"""
import os
import sys

import numpy as np

sys.path.insert(0, '.')
FEAT = sys.argv[1] if len(sys.argv) > 1 else '/tmp/feat'
from alfia.cohorts.bundled import load_bundled
from alfia.training.teacher import out_of_fold_teacher
from alfia.evaluation.metrics import average_precision as ap, roc_auc as auc
from sklearn.linear_model import LogisticRegression
dev, ext = load_bundled('p12-a'), load_bundled('p12-b')
sp = dev.df.split.to_numpy(); y = dev.df.hospital_mortality.to_numpy(); yb = ext.df.hospital_mortality.to_numpy()
tr, va, te = sp=='train', sp=='val', sp=='test'
teach = out_of_fold_teacher(dev)
def load(style, c):
    whole = f'{FEAT}/{style}-{c}.npy'
    if os.path.exists(whole):
        return np.load(whole).astype(np.float64)
    hi = np.load(f'{FEAT}/{style}-{c}-hi.npy')   # layers 4-6 (the GPU run brought back halves)
    lo = np.load(f'{FEAT}/{style}-{c}-lo.npy') if os.path.exists(f'{FEAT}/{style}-{c}-lo.npy') else np.zeros((len(hi), 4, hi.shape[2]))
    return np.concatenate([lo, hi], 1).astype(np.float64)
def feats(L, kind):
    top4 = L[:, 3:7]
    if kind=='readout': return np.concatenate([top4.mean(1), L[:,6]],1)
    if kind=='top4cat': return top4.reshape(len(L),-1)
    if kind=='all6': return L[:,1:7].reshape(len(L),-1)
def fit(X, Xb, t, C):
    m, s = X[tr].mean(0), X[tr].std(0)+1e-6
    Z, Zb = (X-m)/s, (Xb-m)/s
    n=tr.sum()
    lr=LogisticRegression(C=C, max_iter=3000).fit(np.vstack([Z[tr],Z[tr]]), np.r_[np.ones(n),np.zeros(n)], sample_weight=np.r_[t,1-t])
    return lr.predict_proba(Z)[:,1], lr.predict_proba(Zb)[:,1]
rows=[]
for style in ['banded','numeric']:
    A, B = load(style,'a'), load(style,'b')
    for kind in (['readout','top4cat','all6'] if style=='banded' else ['readout']):
        X, Xb = feats(A,kind), feats(B,kind)
        for d in [0.0, 0.5, 1.0]:
            t = (1-d)*y[tr] + d*teach
            for C in [0.003, 0.01, 0.03, 0.1, 0.3]:
                s, sb = fit(X, Xb, t, C)
                r=(style,kind,d,C, ap(y[va],s[va]), auc(y[va],s[va]), ap(y[te],s[te]), ap(yb,sb), auc(yb,sb))
                print("%-8s %-8s d=%.1f C=%-5g val %.3f/%.3f | test %.3f | B %.3f/%.3f"%r, flush=True)
