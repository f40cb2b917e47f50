"""ALFIA-derived models (section 2.4, Table 3's ALFIA-boost/nn): the ALF embeddings of a trained ALFIA run,
concatenated with the tabular features, fed to AutoGluon in place of ALFIA's attentional classifier head.

- ``ALFIA-boost (CatBoost)``, ``ALFIA-boost (LightGBM)`` and ``ALFIA-boost``, the weighted ensemble of the two
  (weights fitted on the validation split, as AutoGluon's WeightedEnsemble);
- ``ALFIA-nn (NeuralNetTorch)`` and ``ALFIA-nn (NeuralNetFastAI)`` (skipped where fastai cannot run).

With a run that has the pooled readout, the readout's logit joins the features as ``alfia_readout_logit``,
out of fold for the training rows (:func:`alfia.baselines.readout.out_of_fold_readout`): stacking without
letting the booster trust an in-sample output. The 384 ALF embedding dimensions then stay out by default
(``with_embeddings=False``): on set A's validation split they lowered CatBoost's AUPRC from 0.474 (features +
out-of-fold logit + layer weights) to 0.375 (docs/experiments.md); ``with_embeddings=True`` gives the paper's
variant. A run without a readout always uses the embeddings (the paper's ALFIA-boost).

The embeddings come from :func:`alfia.inference.embed_cohort` (the run's own text encoder writes each stay's
text from its features; ``emb_*`` and the fusion's ``layer_weight_*`` columns, as Algorithm 2's output). The
rows, splits, tuning data, threshold rule and metrics are exactly those of :func:`run_baselines`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from alfia import inference
from alfia.baselines import tabular
from alfia.baselines.tabular import ModelSpec
from alfia.cohorts import ID, Cohort
from alfia.cohorts.features import check_feature_columns
from alfia.errors import AlfiaError
from alfia.model.alfia import ALFIA
from alfia.run_folder import RunFolder

_BOOST = (
    ModelSpec("ALFIA-boost (CatBoost)", "CAT", {"iterations": 300}, {}, ("catboost",), "catboost is not installed"),
    ModelSpec("ALFIA-boost (LightGBM)", "GBM", {"num_boost_round": 300, "learning_rate": 0.05}, {}),
)
_NN = (
    ModelSpec("ALFIA-nn (NeuralNetTorch)", "NN_TORCH", {"num_epochs": 30}, {}),
    ModelSpec("ALFIA-nn (NeuralNetFastAI)", "FASTAI", {"epochs": 10}, {}, ("fastai",), tabular.FASTAI_MISSING),
)
BOOST_ZOO: tuple[ModelSpec, ...] = _BOOST + _NN
BOOST_ENSEMBLE = "ALFIA-boost"


def embeddings(run_dir: str | Path, cohort: Cohort, with_embeddings: bool = True, device: str | None = "auto",
               precision: str | None = None) -> pd.DataFrame:
    """ALF embedding columns (``emb_*``, ``layer_weight_*``; only the layer weights without
    ``with_embeddings``) of every stay, indexed by stay_id; ``device`` / ``precision``: where the run's model
    computes them when they are not cached (:mod:`alfia.model.runtime`)."""
    emb = inference.embed_cohort(run_dir, cohort, device=device, precision=precision)
    if ID not in emb.columns or len(emb) != len(cohort.df):
        raise AlfiaError(f"the embeddings of run {run_dir} do not match the cohort's rows")
    cols = [c for c in emb.columns if c.startswith(("emb_", "layer_weight_") if with_embeddings else "layer_weight_")]
    if not cols:
        raise AlfiaError(f"run {run_dir} produced no embedding columns")
    clash = sorted(set(cols) & {c.name for c in cohort.schema.columns})
    if clash:
        raise AlfiaError(f"embedding columns {', '.join(clash)} clash with cohort columns")
    return emb.set_index(ID)[cols].astype("float64")


def _has_readout(run_dir: str | Path) -> bool:
    model = RunFolder(run_dir).model
    return model.is_dir() and ALFIA.read_config(model)[0].readout is not None


def run_boost(run_dir: str | Path, dev: Cohort, out_dir: str | Path, external: Cohort | None = None,
              profile: str = "quick", *, seed: int = 0, n_boot: int = 1000, boot_seed: int = 42,
              time_limit: float | None = None,
              verbosity: int = 1, models: list[str] | None = None,
              zoo: tuple[ModelSpec, ...] = BOOST_ZOO, with_embeddings: bool = False, device: str | None = "auto",
              precision: str | None = None, preset: str | None = None) -> dict:
    """Train and score ALFIA-boost / ALFIA-nn on ``dev``'s splits at the budget of ``profile`` (``preset``: its
    old name, deprecated); same outputs as ``run_baselines`` (family ``"alfia-derived"``; ``seed``: the models',
    ``boot_seed``: the bootstrap's). ``device`` / ``precision``: where the run's model embeds the stays."""
    on = {"device": device, "precision": precision}
    preset = tabular.budget_of(profile, preset, "run_boost")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    readout = _has_readout(run_dir)
    with_embeddings = with_embeddings or not readout
    dev_emb = embeddings(run_dir, dev, with_embeddings, **on)
    ext_emb = embeddings(run_dir, external, with_embeddings, **on) if external is not None else None
    if readout:  # stacking: the readout's logit, out of fold for the training rows
        from alfia.baselines.readout import out_of_fold_readout

        dev_logit, ext_logit = out_of_fold_readout(run_dir, dev, external, **on)
        dev_emb = dev_emb.join(dev_logit)
        ext_emb = ext_emb.join(ext_logit) if ext_emb is not None else None
    sets = tabular.split_rows(dev, external, dev_emb, ext_emb)
    features = list(sets["train"].X.columns)
    emb_cols = list(dev_emb.columns)
    seconds = {"embed": round(time.perf_counter() - start, 1)}
    specs, skipped = tabular.select_zoo(preset, models, zoo=zoo)
    predictor, trained, failed = tabular.fit_zoo(sets, specs, out_dir / "autogluon", preset, seed=seed,
                                                 time_limit=time_limit, verbosity=verbosity)
    skipped.update(failed)
    trained.pop(tabular.ENSEMBLE, None)  # the ensemble over boosters *and* nets is not a model of the paper
    boosters = [s.name for s in zoo if s.name.startswith("ALFIA-boost (") and s.name in trained]
    if len(boosters) >= 2:
        names = predictor.fit_weighted_ensemble(base_models=boosters, name_suffix="ALFIAboost")
        trained[BOOST_ENSEMBLE] = names[0]
    elif boosters:
        trained[BOOST_ENSEMBLE] = boosters[0]
    else:
        skipped[BOOST_ENSEMBLE] = "no booster was trained"
    given = tabular.ag_features(predictor)
    check_feature_columns(given, dev, allowed_extra=emb_cols)
    seconds["fit"] = round(time.perf_counter() - start - seconds["embed"], 1)
    results, frames = tabular.score_zoo(predictor, trained, sets, "alfia-derived", n_boot=n_boot, seed=boot_seed)
    seconds["total"] = round(time.perf_counter() - start, 1)
    info = tabular.run_info(sets, given, seconds, preset, seed) | {
        "run": str(run_dir), "embedding_columns": emb_cols, "with_embeddings": with_embeddings}
    return tabular.write_results(out_dir, results, skipped, preset, features, frames, info, dev.task)
