"""The Python facade: train, evaluate, save, load and use ALFIA in a few lines, in the spirit of AutoGluon's
``TabularPredictor``.

    from alfia import ALFIAPredictor

    predictor = ALFIAPredictor(schema="physionet2012", path="runs/p12").fit("p12-a")
    predictor.evaluate("p12-b")                       # AUPRC, AUROC, Brier, ECE ... with 95% CIs
    predictor.leaderboard("p12-b")                    # ALFIA beside the data set's severity scores, with CIs
    predictor = ALFIAPredictor.load("runs/p12")
    predictor.predict_proba(new_stays)                # a Series by stay_id; no outcome or split column needed

Data is anything :func:`alfia.text.inputs.load_input` accepts, as on the command line: a
:class:`~alfia.cohorts.Cohort`, a ``DataFrame``, a parquet file or a bundled name (``p12-a``); to score, also a
plain list of clinical texts. The predictor's state is its run folder (``path``), written by
:func:`alfia.training.trainer.train`: what the ``alfia train`` command writes, and what ``alfia predict`` reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from alfia.cohorts import ID, Cohort
from alfia.cohorts.schema import Schema
from alfia.errors import AlfiaError, SettingError
from alfia.inference import Run, cached_embeddings, labelled_metrics
from alfia.model.card import scored_metrics, write_model_card
from alfia.run_folder import RunFolder
from alfia.text.encoder import DEFAULT_STYLE
from alfia.text.inputs import load_input
from alfia.training.config import make_config

DEFAULT_ROOT = "ALFIAModels"  # where fit() writes when no path is given


def check_int8(int8: bool, device: str | None) -> None:
    """int8 scoring is a CPU path (dynamic quantisation): refused beside another device, as the facade's
    ``int8=True`` and ``alfia predict --int8`` both ask (a SettingError: the CLI names the flag)."""
    if int8 and device not in ("auto", "cpu", None):
        raise SettingError("int8", f"is a CPU path: it needs the device cpu or auto, not {device!r}")


class ALFIAPredictor:
    """ALFIA behind one object: ``fit`` on a cohort with train/val/test splits, then score any stays.

    ``schema``: the cohort's schema, a registered name or a :class:`~alfia.cohorts.schema.Schema` (one derived from
    the data; default: the one the cohort names, after :meth:`load` the run's); ``style``: the text style (numeric or
    banded); ``profile``: quick or paper; ``backbone``: a HuggingFace name or local folder (default: the packaged
    MiniLM); ``path``: the run folder; ``settings``: training settings over the profile's, by field name or path
    (``epochs=1``, ``**{"model.lora.r": 8}``, ``model={"max_length": 256}``: see
    :class:`alfia.training.config.TrainConfig`); ``device`` / ``precision``: where and how the model trains and
    predicts (``"auto"``: the GPU when there is one, with bf16 autocast where it has it natively; else the CPU in
    fp32; :mod:`alfia.model.runtime`; precision None: training in the settings' precision, auto by default, and
    scoring in the run's own, :func:`alfia.model.runtime.run_precision`), kept by :meth:`load` and every later call;
    ``int8``: score with the int8
    dynamic-quantised copy of the model (a CPU path, as ``alfia predict --int8``).
    """

    def __init__(self, schema: str | Schema | None = None, style: str = DEFAULT_STYLE, profile: str = "quick",
                 backbone: str | None = None, path: str | os.PathLike | None = None, device: str | None = "auto",
                 precision: str | None = None, int8: bool = False, **settings):
        check_int8(int8, device)
        self.schema = schema
        self.int8 = int8
        self.style = style
        if precision is not None:
            settings.setdefault("precision", precision)
        self.config = make_config(profile, **settings)  # checks the settings now, not after the data is read
        self.backbone = backbone
        self.device = device
        self.precision = precision   # what scoring asks for (None: the run's own precision)
        self.path = Path(path) if path else Path(DEFAULT_ROOT) / time.strftime("run-%Y%m%d-%H%M%S")
        self.test_metrics: dict | None = None  # the test split's metrics, scored once after fit
        self._run: Run | None = None

    # -- training ---------------------------------------------------------------------------------
    def fit(self, cohort, *, resume: bool = False, n_boot: int = 1000, progress: bool = True) -> ALFIAPredictor:
        """Encode the cohort (band cut points from its train split), train, choose the threshold on validation and
        score the test split once. Returns the predictor."""
        from alfia.training.trainer import train

        encoded = self._cohort(cohort, require_outcome=True, encoded=True)
        metrics = train(encoded, self.path, self.config, backbone=self.backbone, resume=resume, progress=progress,
                        finish=True, n_boot=n_boot, device=self.device)
        self.test_metrics = metrics["test"] if metrics else None
        self._run = self._load_run(self.path)
        return self

    # -- using it ---------------------------------------------------------------------------------
    def predict_proba(self, data, batch_size: int = 32) -> pd.Series:
        """P(in-hospital death) of every stay, a Series indexed by ``stay_id`` (a list of texts: by position)."""
        stays = self._stays(data)
        p = self.run.predict_proba(stays, batch_size=batch_size, quantize=self.int8)
        index = pd.Index(stays.df[ID], name=ID) if isinstance(stays, Cohort) else pd.RangeIndex(len(p))
        return pd.Series(p, index=index, name="probability")

    def predict(self, data, decision_threshold: float | None = None, batch_size: int = 32) -> pd.Series:
        """0/1 per stay, indexed as :meth:`predict_proba`: at ``decision_threshold``, by default the one chosen on
        the validation split."""
        threshold = self.threshold if decision_threshold is None else float(decision_threshold)
        if not 0.0 <= threshold <= 1.0:
            raise AlfiaError(f"decision_threshold must be a probability in [0, 1], got {decision_threshold!r}")
        return (self.predict_proba(data, batch_size) >= threshold).astype(int).rename("label")

    def embed(self, data, batch_size: int = 32) -> pd.DataFrame:
        """``stay_id``, the L2-normalised ALF embedding ``emb_0..`` and the layer weights of every stay."""
        return cached_embeddings(self.run, self._cohort(data), batch_size=batch_size)

    def evaluate(self, data, n_boot: int = 1000, batch_size: int = 32) -> dict:
        """Metrics with 95% bootstrap CIs over the stays whose outcome is known (all rows, whatever their split);
        ``warnings`` lists what the numbers must be read with (a cohort of another task than the run's)."""
        cohort = self._cohort(data)
        p = self.run.predict_proba(cohort, batch_size=batch_size, quantize=self.int8)
        metrics = labelled_metrics(cohort, p, self.threshold, n_boot=n_boot)
        if metrics is None:
            raise AlfiaError(f"evaluate needs stays of both outcomes in a {cohort.label} column; "
                             "use predict_proba for unlabelled stays")
        other_task = self.run.task_warning(cohort)
        if other_task is not None:
            metrics["warnings"] = [f"task: {other_task['message']}"]
        return metrics

    def leaderboard(self, data, n_boot: int = 1000, batch_size: int = 32) -> pd.DataFrame:
        """ALFIA beside the severity scores the data set carries (SAPS II, SOFA ...: its labelled columns, read as
        risk scores by :func:`alfia.baselines.scores.score_severity`), on the stays of ``data`` whose outcome is
        known: one row per model, best AUPRC first, with 95% bootstrap CIs, in the columns of the baselines'
        leaderboard numbers (:func:`alfia.baselines.leaderboard.numbers_table`): model, family, n, then
        ``auprc_estimate``, ``auprc_ci_low``, ``auprc_ci_high`` and the same for auroc, best_f1, best_f2, oe_ratio,
        calibration_intercept and calibration_slope, then ``calibration_intercept_failed_resamples`` and
        ``calibration_slope_failed_resamples`` (NaN where undefined: a severity score is no probability, so it has
        no calibration; ALFIA's Brier and ECE: :meth:`evaluate`)."""
        from alfia.baselines.leaderboard import ALFIA, Entry, numbers_table
        from alfia.baselines.scores import score_severity

        cohort = self._cohort(data)
        entries = [Entry(ALFIA, "alfia", {"all": self.evaluate(cohort, n_boot=n_boot, batch_size=batch_size)})]
        scores, _ = score_severity(cohort, n_boot=n_boot, by_split=False)
        entries += [Entry(name, m["family"], {"all": m["all"]}) for name, m in scores.items()]
        return numbers_table(entries, "all")

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> Path:
        """The run folder is the saved predictor; ``path``: copy it there (a new folder), atomically. Either way
        with its model card written again (``MODEL_CARD.md``, :mod:`alfia.model.card`): the copy's names the
        cohorts the original's did, a study's external ones included."""
        run = self.run
        if path is None or Path(path).resolve() == run.folder.resolve():
            write_model_card(run.folder)
            return run.folder
        scored = scored_metrics(run.folder)
        saved = run.files.copy_to(path).path
        write_model_card(saved, scored=scored)
        return saved

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = "auto", precision: str | None = None,
             int8: bool = False) -> ALFIAPredictor:
        """A predictor from a run folder (``fit``, ``save`` or ``alfia train``), its model on ``device`` computing in
        ``precision`` (None, the default: the run's own where this device computes it, else auto; ``int8``: scored
        by the int8 CPU path)."""
        saved = RunFolder(path).config()
        train_settings = dict(saved.get("train", {}))
        profile = train_settings.pop("profile", "quick")
        predictor = cls(profile=profile if profile != "custom" else "quick", backbone=saved.get("backbone"),
                        path=path, device=device, precision=precision, int8=int8)
        predictor._run = run = predictor._load_run(path)
        if run.encoder is not None:   # the schema (the object: a derived one has no registered name) and text style
            predictor.schema, predictor.style = run.encoder.schema, run.encoder.style
        return predictor

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        if self._run is None:
            raise AlfiaError("the predictor is not fitted; call fit() or ALFIAPredictor.load(path)")
        return self._run

    @property
    def schema_name(self) -> str | None:
        """The name of the predictor's schema, whether it holds the name or the schema."""
        return self.schema.name if isinstance(self.schema, Schema) else self.schema

    @property
    def threshold(self) -> float:
        return float(self.run.threshold)

    def _load_run(self, path) -> Run:
        run = Run.load(path, "cpu" if self.int8 else self.device, self.precision)
        if run.threshold is None:
            raise AlfiaError(f"run {path} has no {RunFolder.THRESHOLD}: its training did not finish")
        return run

    def _stays(self, data) -> Cohort | list[str]:
        """Stays to score: a plain list of texts as it is, else a cohort without outcome."""
        if isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
            return list(data)
        return self._cohort(data)

    def _cohort(self, data, require_outcome: bool = False, encoded: bool = False) -> Cohort:
        cohort = load_input(data, self.schema, require_outcome=require_outcome, encoded=encoded, style=self.style)
        if self.schema is None:
            self.schema = cohort.schema   # the object: later DataFrames are validated with it, derived or not
        elif cohort.schema.name != self.schema_name:
            raise AlfiaError(f"the predictor is for schema {self.schema_name!r}, the data is {cohort.schema.name!r}")
        return cohort


def find_run_cohort(run: str | os.PathLike) -> Cohort | None:
    """The encoded cohort beside a run folder whose checksum is the one in the run's config.json (as ``alfia
    study`` leaves them), or None."""
    wanted = RunFolder(run).config().get("cohort", {}).get("checksum")
    if wanted is None:
        return None
    for candidate in sorted(Path(run).parent.glob("*.parquet")):
        try:
            cohort = load_input(candidate)
        except AlfiaError:
            continue
        if "text" in cohort.df.columns and cohort.checksum() == wanted:
            return cohort
    return None
