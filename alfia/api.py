"""The Python facade: train, evaluate, save, load and use ALFIA in a few lines, in the spirit of AutoGluon's
``TabularPredictor``.

    from alfia import ALFIAPredictor

    predictor = ALFIAPredictor(schema="physionet2012", path="runs/p12").fit("p12-a")
    predictor.evaluate("p12-b")                       # AUPRC, AUROC, Brier, ECE ... with 95% CIs
    predictor = ALFIAPredictor.load("runs/p12")
    predictor.predict_proba(new_stays)                # no outcome or split column needed

Data is anything :func:`alfia.cohorts.load_cohort` accepts: a :class:`~alfia.cohorts.Cohort`, a ``DataFrame``,
a parquet file or a bundled name (``p12-a``). The predictor's state is its run folder (``path``), written by
:func:`alfia.training.trainer.train`: what the ``alfia train`` command writes, and what ``alfia predict`` reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import Cohort, load_cohort
from alfia.errors import AlfiaError
from alfia.inference import Run, cached_embeddings, labelled_metrics
from alfia.run_folder import RunFolder
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder
from alfia.training.config import make_config

DEFAULT_ROOT = "ALFIAModels"  # where fit() writes when no path is given


class ALFIAPredictor:
    """ALFIA behind one object: ``fit`` on a cohort with train/val/test splits, then score any stays.

    ``schema``: the cohort's schema (default: the one the cohort names); ``style``: the text style (numeric or
    banded); ``profile``: quick or paper; ``backbone``: a HuggingFace name or local folder (default: the packaged
    MiniLM); ``path``: the run folder; ``settings``: training settings over the profile's, by field name or path
    (``epochs=1``, ``**{"model.lora.r": 8}``, ``model={"max_length": 256}``: see
    :class:`alfia.training.config.TrainConfig`); ``device`` / ``precision``: where and how the model trains and
    predicts (``"auto"``: the GPU when there is one, with bf16 autocast where it has it natively; else the CPU in
    fp32; :mod:`alfia.model.runtime`), kept by :meth:`load` and every later call.
    """

    def __init__(self, schema: str | None = None, style: str = DEFAULT_STYLE, profile: str = "quick",
                 backbone: str | None = None, path: str | os.PathLike | None = None, device: str | None = "auto",
                 precision: str | None = "auto", **settings):
        self.schema = schema
        self.style = style
        if precision is not None:
            settings.setdefault("precision", precision)
        self.config = make_config(profile, **settings)  # checks the settings now, not after the data is read
        self.backbone = backbone
        self.device = device
        self.precision = self.config.precision
        self.path = Path(path) if path else Path(DEFAULT_ROOT) / time.strftime("run-%Y%m%d-%H%M%S")
        self.test_metrics: dict | None = None  # the test split's metrics, scored once after fit
        self._run: Run | None = None

    # -- training ---------------------------------------------------------------------------------
    def fit(self, cohort, *, resume: bool = False, n_boot: int = 1000, progress: bool = True) -> ALFIAPredictor:
        """Encode the cohort (band cut points from its train split), train, choose the threshold on validation and
        score the test split once. Returns the predictor."""
        from alfia.training.trainer import train

        data = self._cohort(cohort, require_outcome=True)
        encoded = TextEncoder(data.schema.name, style=self.style).fit(data.df).encode(data)
        metrics = train(encoded, self.path, self.config, backbone=self.backbone, resume=resume, progress=progress,
                        finish=True, n_boot=n_boot, device=self.device)
        self.test_metrics = metrics["test"] if metrics else None
        self._run = Run.load(self.path, self.device, self.precision)
        return self

    # -- using it ---------------------------------------------------------------------------------
    def predict_proba(self, data, batch_size: int = 32) -> np.ndarray:
        """P(in-hospital death) of every stay."""
        return self.run.predict_proba(self._cohort(data), batch_size=batch_size)

    def predict(self, data, batch_size: int = 32) -> np.ndarray:
        """0/1 per stay at the threshold chosen on the validation split."""
        return (self.predict_proba(data, batch_size) >= self.threshold).astype(int)

    def embed(self, data, batch_size: int = 32) -> pd.DataFrame:
        """``stay_id``, the L2-normalised ALF embedding ``emb_0..`` and the layer weights of every stay."""
        return cached_embeddings(self.run, self._cohort(data), batch_size=batch_size)

    def evaluate(self, data, n_boot: int = 1000, batch_size: int = 32) -> dict:
        """Metrics with 95% bootstrap CIs over the stays whose outcome is known (all rows, whatever their split)."""
        cohort = self._cohort(data)
        metrics = labelled_metrics(cohort, self.run.predict_proba(cohort, batch_size=batch_size), self.threshold,
                                   n_boot=n_boot)
        if metrics is None:
            raise AlfiaError("evaluate needs stays of both outcomes in a hospital_mortality column; "
                             "use predict_proba for unlabelled stays")
        return metrics

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> Path:
        """The run folder is the saved predictor; ``path``: copy it there (a new folder), atomically."""
        run = self.run
        if path is None or Path(path).resolve() == run.folder.resolve():
            return run.folder
        return run.files.copy_to(path).path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = "auto", precision: str | None = "auto"
             ) -> ALFIAPredictor:
        """A predictor from a run folder (``fit``, ``save`` or ``alfia train``), its model on ``device``."""
        run = Run.load(path, device, precision)
        if run.threshold is None:
            raise AlfiaError(f"run {path} has no {RunFolder.THRESHOLD}: its training did not finish")
        saved = run.files.config()
        train_settings = dict(saved.get("train", {}))
        profile = train_settings.pop("profile", "quick")
        predictor = cls(schema=run.encoder.schema_name if run.encoder else None,
                        style=run.encoder.style if run.encoder else DEFAULT_STYLE,
                        profile=profile if profile != "custom" else "quick", backbone=saved.get("backbone"),
                        path=path, device=device, precision=precision)
        predictor._run = run
        return predictor

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        if self._run is None:
            raise AlfiaError("the predictor is not fitted; call fit() or ALFIAPredictor.load(path)")
        return self._run

    @property
    def threshold(self) -> float:
        return float(self.run.threshold)

    def _cohort(self, data, require_outcome: bool = False) -> Cohort:
        cohort = load_cohort(data, schema=self.schema, require_outcome=require_outcome)
        if self.schema is None:
            self.schema = cohort.schema.name
        elif cohort.schema.name != self.schema:
            raise AlfiaError(f"the predictor is for schema {self.schema!r}, the data is {cohort.schema.name!r}")
        return cohort


def encoded_cohort(spec, style: str = DEFAULT_STYLE) -> Cohort:
    """A cohort (anything :func:`load_cohort` takes) with its text: as encoded, or encoded now in ``style`` with
    cut points from its own train split."""
    cohort = load_cohort(spec)
    if "text" not in cohort.df.columns:
        cohort = TextEncoder(cohort.schema.name, style=style).fit(cohort.df).encode(cohort)
    return cohort


def find_run_cohort(run: str | os.PathLike) -> Cohort | None:
    """The encoded cohort beside a run folder whose checksum is the one in the run's config.json (as ``alfia
    study`` leaves them), or None."""
    from alfia.cohorts import read_cohort
    from alfia.training.trainer import cohort_checksum

    wanted = RunFolder(run).config().get("cohort", {}).get("checksum")
    if wanted is None:
        return None
    for candidate in sorted(Path(run).parent.glob("*.parquet")):
        try:
            cohort = read_cohort(candidate)
        except AlfiaError:
            continue
        if "text" in cohort.df.columns and cohort_checksum(cohort) == wanted:
            return cohort
    return None
