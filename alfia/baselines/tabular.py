"""Tabular baselines of Table 3 through AutoGluon-Tabular, trained and scored exactly like ALFIA.

Every model gets the cohort's tabular *feature* columns only (``schema.feature_columns``: never a reference
column such as ``ref_saps1``/``ref_sofa``, nor ``stay_id``, ``split``, ``text`` or the label), is trained on
the train split with the validation split as AutoGluon's tuning data (early stopping and the weighted
ensemble), never bagged, so no validation or test row enters any model's training data. Each model is then
scored on the test split and, when given, on all rows of the external cohort, with
:func:`alfia.evaluation.metrics.evaluate` and the threshold that maximises F1 on its own validation
predictions (applied unchanged).

Budgets (``PRESETS``), chosen by the profile (``profile="quick"``, ``--profile``: each profile of
:data:`alfia.training.config.PROFILES` names its budget): ``quick`` (light hyper-parameters with fixed iteration
budgets -- trees, boosting rounds, epochs -- and no time limit, so that the same code and seed give the same
leaderboard on any machine; about 2 minutes on a 2-core CPU for 3,000 training rows; the quick and ablation
profiles) and ``paper`` (the full zoo with AutoGluon's defaults, no limits). results.json names the budget
(``"preset"``).
A model that cannot run (a missing optional package, no TabPFN weights, a failure inside AutoGluon) is
skipped with one printed line, and its reason is kept in the results.
"""

from __future__ import annotations

import importlib
import json
import logging
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alfia.baselines import _autogluon
from alfia.cohorts import ID, SPLIT, Cohort, Task
from alfia.cohorts.features import check_feature_columns, feature_frame
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import choose_threshold, evaluate
from alfia.io import atomic_path, write_text_atomic
from alfia.run_folder import RunFolder

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it

PRESETS = ("quick", "paper")  # the zoo's budgets (ModelSpec.quick / .paper); a profile names its own
FAMILIES = ("tabular", "score", "alfia-derived")
ENSEMBLE = "WeightedEnsemble"
_AG_ENSEMBLE = "WeightedEnsemble_L2"


def _log(message: str) -> None:
    logger.info(f"baselines: {message}")


# ------------------------------------------------------------------------------------------------ the zoo


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo: its Table 3 name, AutoGluon hyper-parameter key and settings per preset."""

    name: str
    key: str
    quick: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # importable modules the model needs
    missing_reason: str = ""  # the skip reason when one of them is missing
    model_class: str = ""  # "module:Class" of a model this project adds to AutoGluon (used instead of ``key``)

    def params(self, preset: str) -> dict:
        return dict(self.quick if preset == "quick" else self.paper)

    def ag_key(self):
        """What AutoGluon's ``hyperparameters`` dict takes for this model: its key, or the model class."""
        if not self.model_class:
            return self.key
        module, name = self.model_class.split(":")
        return getattr(importlib.import_module(module), name)


# PyPI's torchvision wheels are CUDA builds: beside the CPU torch, `import torchvision` fails ("operator
# torchvision::nms does not exist"), and fastai imports it
FASTAI_MISSING = ("fastai is not installed: it needs torchvision, and PyPI's torchvision (a CUDA build) does not "
                  "import beside the project's CPU torch build")
_GBM_QUICK = {"num_boost_round": 300, "learning_rate": 0.05}
_GBM_LARGE = {"learning_rate": 0.03, "num_leaves": 128, "feature_fraction": 0.9, "min_data_in_leaf": 3}

ZOO: tuple[ModelSpec, ...] = (
    ModelSpec("KNeighborsUnif", "KNN", {"weights": "uniform"}, {"weights": "uniform"}),
    ModelSpec("KNeighborsDist", "KNN", {"weights": "distance"}, {"weights": "distance"}),
    ModelSpec("LinearModel", "LR"),
    ModelSpec("RandomForestGini", "RF", {"criterion": "gini", "n_estimators": 200}, {"criterion": "gini"}),
    ModelSpec("RandomForestEntr", "RF", {"criterion": "entropy", "n_estimators": 200}, {"criterion": "entropy"}),
    ModelSpec("ExtraTreesGini", "XT", {"criterion": "gini", "n_estimators": 200}, {"criterion": "gini"}),
    ModelSpec("ExtraTreesEntr", "XT", {"criterion": "entropy", "n_estimators": 200}, {"criterion": "entropy"}),
    ModelSpec("LightGBM", "GBM", dict(_GBM_QUICK), {}),
    ModelSpec("LightGBMXT", "GBM", {**_GBM_QUICK, "extra_trees": True}, {"extra_trees": True}),
    ModelSpec("LightGBMLarge", "GBM", {**_GBM_LARGE, "num_boost_round": 300}, dict(_GBM_LARGE)),
    ModelSpec("XGBoost", "XGB", {"n_estimators": 300, "learning_rate": 0.05}, {}, ("xgboost",),
              "xgboost is not installed"),
    ModelSpec("CatBoost", "CAT", {"iterations": 300}, {}, ("catboost",), "catboost is not installed"),
    ModelSpec("NeuralNetFastAI", "FASTAI", {"epochs": 10}, {}, ("fastai",), FASTAI_MISSING),
    ModelSpec("NeuralNetTorch", "NN_TORCH", {"num_epochs": 30}, {}),
    # autogluon.multimodal (AutoGluon's own FT-Transformer) pins an older pandas and pulls in torchvision: the
    # reference implementation runs behind AutoGluon's model interface instead (alfia/baselines/ft_transformer.py)
    ModelSpec("FTTransformer", "FT_TRANSFORMER", {"n_blocks": 1, "max_epochs": 60, "patience": 8}, {},
              ("rtdl_revisiting_models",), "rtdl_revisiting_models (FT-Transformer) is not installed",
              model_class="alfia.baselines.ft_transformer:FTTransformerModel"),
    ModelSpec("TabM", "TABM", {"n_epochs": 30}, {}),
    ModelSpec("RealMLP", "REALMLP", {"n_epochs": 64}, {}, ("pytabkit",), "pytabkit (RealMLP) is not installed"),
    ModelSpec("TabPFN", "REALTABPFN-V2", {}, {}, ("tabpfn",), "the tabpfn package is not installed"),
)
MODEL_NAMES = tuple(s.name for s in ZOO) + (ENSEMBLE,)

# quick preset: these models fit on one thread (their threads crawl, ~10x, on a busy 2-core machine, and one
# thread keeps their arithmetic order, hence their results, the same from run to run)
_ONE_THREAD = ("GBM", "XGB", "NN_TORCH", "TABM", "REALMLP", "FT_TRANSFORMER")


def select_zoo(preset: str, models: list[str] | None = None, tabpfn_weights: str | Path | None = None,
               zoo: tuple[ModelSpec, ...] = ZOO) -> tuple[list[ModelSpec], dict[str, str]]:
    """The specs to fit and the models skipped before fitting (``{name: reason}``)."""
    _check_preset(preset)
    wanted = list(models) if models is not None else [s.name for s in zoo] + [ENSEMBLE]
    known = {s.name for s in zoo} | {ENSEMBLE}
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise AlfiaError(f"unknown model(s) {', '.join(unknown)}; known are {', '.join(sorted(known))}")
    specs, skipped = [], {}
    for spec in zoo:
        if spec.name not in wanted:
            continue
        missing = [m for m in spec.requires if not _autogluon.available(m)]
        if missing:
            skipped[spec.name] = spec.missing_reason or f"{', '.join(missing)} not installed"
            continue
        if spec.key == "REALTABPFN-V2":
            if tabpfn_weights is None:
                skipped[spec.name] = ("no TabPFN weights given (pass tabpfn_weights / --tabpfn-weights with a local "
                                      "checkpoint; nothing is downloaded)")
                continue
            if not Path(tabpfn_weights).exists():
                skipped[spec.name] = f"TabPFN weights {tabpfn_weights} do not exist"
                continue
            spec = ModelSpec(spec.name, spec.key, {"model_path": str(tabpfn_weights)},
                             {"model_path": str(tabpfn_weights)})
        specs.append(spec)
    for name, reason in skipped.items():
        _log(f"skipped {name}: {reason}")
    return specs, skipped


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise AlfiaError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


def budget_of(profile: str, preset: str | None = None, caller: str = "run_baselines") -> str:
    """The zoo's budget (one of ``PRESETS``) of a registered profile (:data:`alfia.training.config.PROFILES`);
    ``preset``: the old keyword of the profile (accepted for one release, with a DeprecationWarning)."""
    from alfia.training.config import profile_of

    if preset is not None:
        warnings.warn(f"{caller}(preset=...) is deprecated; pass profile={preset!r}", DeprecationWarning,
                      stacklevel=3)
        profile = preset
    return profile_of(profile).baselines


# ------------------------------------------------------------------------------------------------ inputs


@dataclass
class Rows:
    """One evaluation set: features, labels and stay ids, aligned row by row."""

    X: pd.DataFrame
    y: np.ndarray
    ids: np.ndarray
    label: str  # the outcome's name: the cohort's task's label column


def split_rows(dev: Cohort, external: Cohort | None = None, extra: pd.DataFrame | None = None,
               extra_external: pd.DataFrame | None = None) -> dict[str, Rows]:
    """``train``/``val``/``test`` of ``dev`` and all rows of ``external``; ``extra`` (indexed by stay_id) adds
    columns such as ALF embeddings."""
    if external is not None and external.schema.name != dev.schema.name:
        raise AlfiaError(f"the external cohort has schema {external.schema.name!r}, the development cohort "
                         f"{dev.schema.name!r}: they need the same feature columns")
    sets: dict[str, Rows] = {}
    for where in ("train", "val", "test"):
        mask = dev.df[SPLIT] == where
        if not mask.any():
            raise AlfiaError(f"the development cohort has no {where!r} rows; assign splits with `alfia cohort`")
        sets[where] = _rows(dev, mask, extra)
        if len(np.unique(sets[where].y)) < 2 and where != "train":
            raise AlfiaError(f"the {where} split holds one outcome only; AUPRC needs both")
    if external is not None:
        sets["external"] = _rows(external, None, extra_external)
    return sets


def _rows(cohort: Cohort, mask, extra: pd.DataFrame | None) -> Rows:
    X = feature_frame(cohort, mask)
    df = cohort.df if mask is None else cohort.df[mask.to_numpy()]
    ids = df[ID].to_numpy()
    if extra is not None:
        missing = ~pd.Index(ids).isin(extra.index)
        if missing.any():
            raise AlfiaError(f"{int(missing.sum())} stays have no embedding (e.g. stay_id {ids[missing][0]}); "
                             "embed the same cohort the run scores")
        X = pd.concat([X, extra.loc[ids].reset_index(drop=True)], axis=1)
    return Rows(X=X, y=df[cohort.label].to_numpy(dtype=np.int64), ids=ids, label=cohort.label)


# -------------------------------------------------------------------------------------------- fit + score


def fit_zoo(sets: dict[str, Rows], specs: list[ModelSpec], path: Path, preset: str, *, seed: int = 0,
            time_limit: float | None = None, verbosity: int = 1) -> tuple[Any, dict[str, str], dict[str, str]]:
    """Fit every spec on ``train`` with ``val`` as tuning data (no bagging), each model seeded with ``seed``
    (AutoGluon's default 0: the committed results). Returns the predictor, the trained models ``{name: autogluon
    model name}`` (plus the weighted ensemble) and ``{name: reason}`` for failures."""
    TabularPredictor = _autogluon.tabular_predictor()
    if not specs:
        raise AlfiaError("no model of the zoo can run here; see the skipped reasons above")
    hyperparameters: dict = {}  # AutoGluon key (or model class) -> list of settings
    for spec in specs:
        params = spec.params(preset)
        ag_args = {"name": spec.name}
        params["ag_args"] = ag_args
        key = _autogluon.seed_key(spec.ag_key())
        if key is not None:
            params[key] = seed
        if preset == "quick" and spec.key in _ONE_THREAD:
            params["ag_args_fit"] = {"num_cpus": 1}
        hyperparameters.setdefault(spec.ag_key(), []).append(params)
    if path.exists():
        shutil.rmtree(path)
    label = sets["train"].label
    train = sets["train"].X.assign(**{label: sets["train"].y})
    val = sets["val"].X.assign(**{label: sets["val"].y})
    predictor = TabularPredictor(label=label, eval_metric="average_precision", problem_type="binary", path=str(path),
                                 verbosity=verbosity)
    predictor.fit(train_data=train, tuning_data=val, hyperparameters=hyperparameters, time_limit=time_limit,
                  num_bag_folds=0, num_stack_levels=0, auto_stack=False, fit_weighted_ensemble=True,
                  raise_on_no_models_fitted=False, calibrate=False, calibrate_decision_threshold=False,
                  dynamic_stacking=False)
    trained_ag = set(predictor.model_names())
    errors = getattr(getattr(predictor, "_trainer", None), "_models_failed_to_train_errors", {}) or {}
    trained, failed = {}, {}
    for spec in specs:
        if spec.name in trained_ag:
            trained[spec.name] = spec.name
        else:
            err = errors.get(spec.name, {})
            reason = (f"failed inside AutoGluon: {err.get('exc_type', '')}: {err.get('exc_str', '')}".strip()
                      if err else "not trained (AutoGluon skipped it, e.g. the time limit ran out)")
            failed[spec.name] = reason.splitlines()[0][:300]
            _log(f"skipped {spec.name}: {failed[spec.name]}")
    if _AG_ENSEMBLE in trained_ag:
        trained[ENSEMBLE] = _AG_ENSEMBLE
    return predictor, trained, failed


def predict(predictor, model: str, X: pd.DataFrame) -> np.ndarray:
    p = predictor.predict_proba(X, model=model, as_multiclass=True)
    return np.clip(p[1].to_numpy(dtype=np.float64), 0.0, 1.0)


def score_predictions(name: str, family: str, probs: dict[str, np.ndarray], sets: dict[str, Rows], *,
                      n_boot: int, seed: int) -> tuple[dict, pd.DataFrame]:
    """Results entry and prediction rows of one model from its val/test(/external) probabilities."""
    threshold = choose_threshold(sets["val"].y, probs["val"])
    entry: dict[str, Any] = {"family": family}
    for where in ("test", "external"):
        if where in probs:
            entry[where] = evaluate(sets[where].y, probs[where], threshold=threshold, n_boot=n_boot, seed=seed)
    entry["threshold"] = float(threshold)
    frames = [pd.DataFrame({"model": name, "where": where, "stay_id": sets[where].ids, "probability": p})
              for where, p in probs.items()]
    return entry, pd.concat(frames, ignore_index=True)


def score_zoo(predictor, trained: dict[str, str], sets: dict[str, Rows], family: str, *, n_boot: int, seed: int,
              rename: dict[str, str] | None = None) -> tuple[dict, list[pd.DataFrame]]:
    models, frames = {}, []
    for name, ag_name in trained.items():
        probs = {where: predict(predictor, ag_name, sets[where].X)
                 for where in ("val", "test", "external") if where in sets}
        shown = (rename or {}).get(name, name)
        models[shown], pred = score_predictions(shown, family, probs, sets, n_boot=n_boot, seed=seed)
        frames.append(pred)
    return models, frames


def ag_features(predictor) -> list[str]:
    """The columns AutoGluon was given (before its own feature generation)."""
    return list(predictor.original_features)


# ------------------------------------------------------------------------------------------------ outputs


def write_results(out_dir: Path, models: dict, skipped: dict, preset: str, features: list[str],
                  predictions: list[pd.DataFrame], info: dict, task: Task) -> dict:
    """results.json (the models' metrics, what was skipped, the task they were trained for), predictions.parquet
    and run_info.json."""
    results = {"models": models, "skipped": skipped, "preset": preset, "features": features, "task": task.to_dict()}
    table = (pd.concat(predictions, ignore_index=True) if predictions
             else pd.DataFrame({"model": [], "where": [], "stay_id": [], "probability": []}))
    table = table.astype({"model": str, "where": str, "stay_id": "int64", "probability": "float64"})
    with atomic_path(out_dir / RunFolder.PREDICTIONS) as tmp:   # named as a run folder's predictions
        table.to_parquet(tmp, index=False)
    write_text_atomic(out_dir / "run_info.json", json.dumps(info, indent=2, default=str))
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2))
    return results


def run_info(sets: dict[str, Rows], ag_columns: list[str], seconds: dict[str, float], preset: str,
             seed: int) -> dict:
    return {
        "preset": preset,
        "seed": seed,
        "autogluon": _autogluon.version(),
        "python": platform.python_version(),
        "autogluon_features": ag_columns,
        "rows": {where: int(len(r.ids)) for where, r in sets.items()},
        "train_stay_ids": [int(i) for i in sets["train"].ids],
        "bagging": "none: every model trains on the train split only; val is tuning data",
        "seconds": seconds,
    }


# ------------------------------------------------------------------------------------------------ the API


def run_baselines(dev: Cohort, out_dir: str | Path, external: Cohort | None = None, profile: str = "quick", *,
                  models: list[str] | None = None, scores: bool = True, tabpfn_weights: str | Path | None = None,
                  seed: int = 0, n_boot: int = 1000, boot_seed: int = 42, time_limit: float | None = None,
                  verbosity: int = 1, zoo: tuple[ModelSpec, ...] = ZOO, preset: str | None = None) -> dict:
    """Train and score the tabular zoo (and, with ``scores``, the severity scores) on ``dev``'s splits, at the
    budget of ``profile`` (a registered profile; ``preset``: its old name, deprecated). ``seed``: every model's
    seed (AutoGluon's default 0); ``boot_seed``: the bootstrap's, apart, so that another model seed is scored on
    the same resamples.

    Writes ``out_dir/results.json``, ``out_dir/predictions.parquet`` and ``out_dir/run_info.json``; the fitted
    AutoGluon models stay in ``out_dir/autogluon``. ``models`` restricts the zoo (names of Table 3).
    """
    from alfia.baselines.scores import score_severity

    preset = budget_of(profile, preset)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    sets = split_rows(dev, external)
    features = list(sets["train"].X.columns)
    specs, skipped = select_zoo(preset, models, tabpfn_weights, zoo)
    predictor, trained, failed = fit_zoo(sets, specs, out_dir / "autogluon", preset, seed=seed,
                                         time_limit=time_limit, verbosity=verbosity)
    skipped.update(failed)
    if (models is None or ENSEMBLE in models) and ENSEMBLE not in trained:
        skipped[ENSEMBLE] = "AutoGluon fitted no weighted ensemble (no base model was trained)"
        _log(f"skipped {ENSEMBLE}: {skipped[ENSEMBLE]}")
    if models is not None and ENSEMBLE not in models:
        trained.pop(ENSEMBLE, None)
    given = ag_features(predictor)
    check_feature_columns(given, dev)
    seconds["fit"] = round(time.perf_counter() - start, 1)
    results, frames = score_zoo(predictor, trained, sets, "tabular", n_boot=n_boot, seed=boot_seed)
    seconds["score models"] = round(time.perf_counter() - start - seconds["fit"], 1)
    if scores:
        t0 = time.perf_counter()
        score_models, score_frames = score_severity(dev, external, n_boot=n_boot, seed=boot_seed)
        results.update(score_models)
        frames += score_frames
        seconds["severity scores"] = round(time.perf_counter() - t0, 1)
    seconds["total"] = round(time.perf_counter() - start, 1)
    info = run_info(sets, given, seconds, preset, seed)
    out = write_results(out_dir, results, skipped, preset, features, frames, info, dev.task)
    _log(f"{len(results)} models scored, {len(skipped)} skipped, {seconds['total']:.0f} s; results in "
         f"{out_dir / 'results.json'}")
    return out
