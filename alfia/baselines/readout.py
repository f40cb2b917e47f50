"""Two uses of a run's pooled layer means (the readout's input, :mod:`alfia.model.readout`), no new backbone pass:

- ``frozen encoder + logistic regression``, the leaderboard row that fine-tuning has to beat: an L2 logistic
  regression (C = 0.01, standardised features) on hard labels, reading the masked token mean of each fused
  layer, averaged over the layers, next to the top layer's. It needs a run whose backbone stayed frozen
  (no LoRA): only then are its layer means the frozen encoder's.
- ``out_of_fold_readout``: the readout's logit as a stacking feature for ALFIA-boost, out of fold for the
  training rows (K refits, each without the fold it scores), so that the booster never learns from a logit
  that was fitted on the same row's label.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from alfia import inference
from alfia.baselines import tabular
from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.model.alfia import ALFIA, ALFIAConfig
from alfia.model.readout import ReadoutConfig
from alfia.run_folder import RunFolder

FROZEN_LR = "frozen encoder + logistic regression"
OOF_COLUMN = "alfia_readout_logit"


def _run_settings(run_dir: str | Path) -> tuple[dict, ALFIAConfig]:
    """The run's training settings (seed, distill) and its saved model's config (LoRA, fused layers, readout)."""
    files = RunFolder(run_dir)
    return files.settings(), ALFIA.read_config(files.model)[0]


def _pooled(means: pd.DataFrame, n_layers: int) -> np.ndarray:
    """``layer_mean_*`` (N_f layers side by side) -> the issue's readout: the layers' average next to the top's."""
    x = means.to_numpy(np.float64).reshape(len(means), n_layers, -1)
    return np.concatenate([x.mean(axis=1), x[:, -1]], axis=1)


def _logistic(c: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def run_frozen_readout(run_dir: str | Path, dev: Cohort, out_dir: str | Path, external: Cohort | None = None, *,
                       n_boot: int = 1000, seed: int = 42, c: float = 0.01, device: str | None = "auto",
                       precision: str | None = None) -> dict:
    """Fit and score the frozen-encoder logistic regression; writes results.json + predictions.parquet in
    ``out_dir`` (family ``"frozen encoder"``, read by the leaderboard like any baselines folder). ``device`` /
    ``precision``: where the run's model computes the layer means when they are not cached."""
    on = {"device": device, "precision": precision}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    saved = _run_settings(run_dir)[1]
    skipped, models, frames = {}, {}, []
    if saved.lora is not None:
        skipped[FROZEN_LR] = "the run fine-tuned its backbone (LoRA): its layer means are not the frozen encoder's"
    else:
        n_layers = saved.fusion.num_fusion_layers
        extra = inference.layer_means(run_dir, dev, **on)
        extra_ext = inference.layer_means(run_dir, external, **on) if external is not None else None
        sets = tabular.split_rows(dev, external)
        features = {"train": extra.loc[sets["train"].ids], **{w: extra.loc[sets[w].ids] for w in ("val", "test")}}
        if extra_ext is not None:
            features["external"] = extra_ext.loc[sets["external"].ids]
        model = _logistic(c).fit(_pooled(features["train"], n_layers), sets["train"].y)
        probs = {w: model.predict_proba(_pooled(f, n_layers))[:, 1] for w, f in features.items() if w != "train"}
        models[FROZEN_LR], pred = tabular.score_predictions(FROZEN_LR, "frozen encoder", probs, sets,
                                                            n_boot=n_boot, seed=seed)
        frames.append(pred)
    info = {"run": str(run_dir), "C": c, "seconds": round(time.perf_counter() - start, 1),
            "features": "masked token mean of each fused layer, averaged, next to the top layer's (standardised)"}
    return tabular.write_results(out_dir, models, skipped, "fixed", [], frames, info, dev.task)


def out_of_fold_readout(run_dir: str | Path, dev: Cohort, external: Cohort | None = None, folds: int = 5,
                        device: str | None = "auto", precision: str | None = None
                        ) -> tuple[pd.Series, pd.Series | None]:
    """The readout's logit per stay (indexed by stay_id): out of fold for the training rows, from one fit on all
    training rows for the others. Same features, target and C as the run's readout (``alfia.training``)."""
    from alfia.training.teacher import out_of_fold_teacher

    settings, model = _run_settings(run_dir)
    seed, distill = int(settings.get("seed", 42)), float(settings.get("distill", 0.0))
    c = (model.readout or ReadoutConfig()).C
    on = {"device": device, "precision": precision}
    means = inference.layer_means(run_dir, dev, **on)
    train = (dev.df["split"] == "train").to_numpy()
    ids = dev.df["stay_id"].to_numpy()
    x, y = means.loc[ids].to_numpy(np.float64), dev.df[dev.label].to_numpy(np.float64)
    train_rows = np.flatnonzero(train)

    def fit(rows: np.ndarray):
        """The readout's fit on training rows ``rows`` (positions in ``train_rows``): targets as in training,
        the teacher cross-fitted on these rows alone; each row enters twice, weighted by its target."""
        target = y[train_rows[rows]]
        if distill > 0:
            mask = np.zeros(len(ids), dtype=bool)
            mask[train_rows[rows]] = True
            target = (1 - distill) * target + distill * out_of_fold_teacher(dev, seed=seed, rows=mask)
        xs = x[train_rows[rows]]
        return _logistic(c).fit(np.vstack([xs, xs]), np.r_[np.ones(len(rows)), np.zeros(len(rows))],
                                logisticregression__sample_weight=np.r_[target, 1 - target])

    logit = np.zeros(len(ids))
    oof = np.zeros(len(train_rows))
    for fit_rows, held in KFold(folds, shuffle=True, random_state=seed).split(train_rows):
        oof[held] = fit(fit_rows).decision_function(x[train_rows[held]])
    full = fit(np.arange(len(train_rows)))
    logit[train_rows] = oof
    logit[~train] = full.decision_function(x[~train])
    dev_logit = pd.Series(logit, index=pd.Index(ids, name="stay_id"), name=OOF_COLUMN)
    ext_logit = None
    if external is not None:
        ext_means = inference.layer_means(run_dir, external, **on)
        ext_ids = external.df["stay_id"].to_numpy()
        ext_logit = pd.Series(full.decision_function(ext_means.loc[ext_ids].to_numpy(np.float64)),
                              index=pd.Index(ext_ids, name="stay_id"), name=OOF_COLUMN)
    if not np.isfinite(logit).all():
        raise AlfiaError("the out-of-fold readout produced non-finite logits; check the run's layer means")
    return dev_logit, ext_logit
