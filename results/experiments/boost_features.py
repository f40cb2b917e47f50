"""ALFIA-boost feature sets on set A (issue 12): which of ALFIA's outputs help a booster, chosen on validation.

    python results/experiments/boost_features.py      (after `make study`; output: boost_features.txt)
"""
import pandas as pd, sys, time
sys.path.insert(0,'.')
from alfia.cohorts.bundled import load_bundled
from alfia.baselines.tabular import feature_frame
from alfia.baselines.readout import out_of_fold_readout
from alfia.baselines.boost import embeddings
from alfia.evaluation.metrics import average_precision as ap, roc_auc as auc
import lightgbm as lgb
from catboost import CatBoostClassifier
run = "study/alfia-run"
dev, ext = load_bundled('p12-a'), load_bundled('p12-b')
t=time.time()
dl, el = out_of_fold_readout(run, dev, ext)
print('oof', time.time()-t, flush=True)
de, ee = embeddings(run, dev), embeddings(run, ext)
sp=dev.df.split.to_numpy(); y=dev.df.hospital_mortality.to_numpy(); yb=ext.df.hospital_mortality.to_numpy()
X=feature_frame(dev); Xb=feature_frame(ext)
ids=dev.df.stay_id.to_numpy(); idb=ext.df.stay_id.to_numpy()
variants={'features':(X,Xb),
 'features+logit':(X.assign(logit=dl.loc[ids].to_numpy()), Xb.assign(logit=el.loc[idb].to_numpy())),
 'features+emb+logit':(pd.concat([X.assign(logit=dl.loc[ids].to_numpy()), de.loc[ids].reset_index(drop=True)],axis=1), pd.concat([Xb.assign(logit=el.loc[idb].to_numpy()), ee.loc[idb].reset_index(drop=True)],axis=1))}
tr,va,te=sp=='train',sp=='val',sp=='test'
cats=[c for c in X.columns if str(X[c].dtype)=='category']
for name,(A,B) in variants.items():
    for mname in ['lgbm','cat']:
        if mname=='lgbm':
            m=lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, verbose=-1, n_jobs=2, random_state=0).fit(A[tr], y[tr])
            p=m.predict_proba(A)[:,1]; pb=m.predict_proba(B)[:,1]
        else:
            Ac=A.copy(); Bc=B.copy()
            for c in cats: Ac[c]=Ac[c].astype(str); Bc[c]=Bc[c].astype(str)
            m=CatBoostClassifier(iterations=300, verbose=0, thread_count=2, random_seed=0, cat_features=cats).fit(Ac[tr], y[tr], eval_set=(Ac[va], y[va]))
            p=m.predict_proba(Ac)[:,1]; pb=m.predict_proba(Bc)[:,1]
        print(f"{name:20s} {mname:5s} val {ap(y[va],p[va]):.3f}/{auc(y[va],p[va]):.3f} | test {ap(y[te],p[te]):.3f} | B {ap(yb,pb):.3f}/{auc(yb,pb):.3f}", flush=True)
