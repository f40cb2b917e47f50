"""A run folder: what `alfia train` writes, and what every later command (predict, boost, report, serve, the
facade) reads. The one place that knows the names of its files::

    config.json          the settings (``train``), backbone, cohort checksum, versions, runtime
    encoder.json         the text encoder: inference writes texts exactly as in training
    model/               the best epoch's ALFIA (alfia.model.alfia)
    history.jsonl        one line per epoch
    checkpoint/          the last completed epoch, for --resume (never copied with a saved predictor)
    .checkpoint.tmp/     while a checkpoint is written (alfia.training.checkpoint), renamed to checkpoint/
    .tmp/                while training: the frozen-layer cache's file
    predictions.parquet  every split's probabilities (also the name of a baselines folder's predictions)
    metrics.json         validation and test metrics with CIs
    threshold.json       the alert threshold, chosen on validation
    calibration.json     the recalibration fitted on validation
    reference.json       the train split's reference for out-of-distribution warnings
    embeddings/          cached embeddings of scored cohorts
    manifest.json        what made the folder (alfia.manifest), written last

A study folder (``alfia study``) has its own type, :class:`StudyFolder`, with ALFIA's run folder inside it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alfia.errors import AlfiaError
from alfia.io import atomic_path, metrics_path, previous_folder, replace_folder, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd


class _Folder:
    """What a run folder and a study folder share: a path, its JSON files read (None when absent, one clear error
    when damaged) and written atomically."""

    what = "folder"        # how the damaged-file error names the folder
    remedy = "write it again"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def read_json(self, name: str) -> Any | None:
        """A JSON file of the folder, or None when it is not there; a damaged one is one clear error."""
        path = self.path / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlfiaError(f"{path} is unreadable ({type(exc).__name__}); the {self.what} is damaged, "
                             f"{self.remedy}") from None

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def write_json(self, name: str, data: Any) -> None:
        write_text_atomic(self.path / name, json.dumps(data, indent=2))


class RunFolder(_Folder):
    """The files of one run folder, by name; readers return None (or empty) for a file not written yet."""

    what, remedy = "run folder", "train it again"

    CONFIG = "config.json"
    ENCODER = "encoder.json"
    MODEL = "model"
    HISTORY = "history.jsonl"
    CHECKPOINT = "checkpoint"
    CHECKPOINT_TMP = ".checkpoint.tmp"   # a checkpoint being written, renamed to CHECKPOINT when complete
    TMP = ".tmp"
    PREDICTIONS = "predictions.parquet"
    METRICS = "metrics.json"
    THRESHOLD = "threshold.json"
    CALIBRATION = "calibration.json"
    REFERENCE = "reference.json"
    EMBEDDINGS = "embeddings"
    MANIFEST = "manifest.json"   # written last (alfia.manifest), in study folders too
    NOT_COPIED = (CHECKPOINT, TMP, EMBEDDINGS)   # a saved copy of a run is what inference needs, not what resumes it

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def checkpoint_tmp(self) -> Path:
        return self.path / self.CHECKPOINT_TMP

    @property
    def checkpoint_old(self) -> Path:
        """The previous checkpoint while the new one is renamed into place (:func:`alfia.io.previous_folder`)."""
        return previous_folder(self.checkpoint)

    @property
    def tmp(self) -> Path:
        return self.path / self.TMP

    @property
    def embeddings(self) -> Path:
        return self.path / self.EMBEDDINGS

    # -- reading ----------------------------------------------------------------------------------------------
    def config(self) -> dict:
        """config.json (empty for a folder without one)."""
        return self.read_json(self.CONFIG) or {}

    def settings(self) -> dict:
        """The training settings (config.json's ``train``; empty for runs that have none)."""
        return dict(self.config().get("train", {}))

    def setting(self, name: str, default=None):
        return self.settings().get(name, default)

    def encoder(self) -> dict | None:
        return self.read_json(self.ENCODER)

    def history(self) -> list[dict]:
        path = self.path / self.HISTORY
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def threshold(self) -> float | None:
        saved = self.read_json(self.THRESHOLD)
        return None if saved is None else float(saved["threshold"])

    def calibration(self) -> dict | None:
        return self.read_json(self.CALIBRATION)

    def reference(self) -> dict | None:
        return self.read_json(self.REFERENCE)

    def metrics(self) -> dict | None:
        return self.read_json(self.METRICS)

    def predictions(self) -> pd.DataFrame | None:
        import pandas as pd

        path = self.path / self.PREDICTIONS
        return pd.read_parquet(path) if path.is_file() else None

    # -- writing (each file atomically) -----------------------------------------------------------------------
    def write_history(self, rows: list[dict]) -> None:
        write_text_atomic(self.path / self.HISTORY, "".join(json.dumps(row) + "\n" for row in rows))

    def append_history(self, row: dict) -> None:
        with open(self.path / self.HISTORY, "a") as f:
            f.write(json.dumps(row) + "\n")

    def write_predictions(self, table: pd.DataFrame) -> None:
        with atomic_path(self.path / self.PREDICTIONS) as tmp:
            table.to_parquet(tmp, index=False)

    def copy_to(self, target: str | os.PathLike) -> RunFolder:
        """A copy of the run in the new folder ``target`` (what inference needs: not the checkpoint, the temporary
        folder or cached embeddings), written beside it and renamed into place."""
        target = Path(target)
        if target.exists() and any(target.iterdir()):
            raise AlfiaError(f"{target} is not empty; save the run to a new folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(self.path, tmp, ignore=shutil.ignore_patterns(*self.NOT_COPIED))
            replace_folder(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return RunFolder(target)


class StudyFolder(_Folder):
    """The files of one study folder (``alfia study``), by name. Cohorts are named by their own names (a bundled
    name as it is, a file by its stem: :func:`cohort_name`), so the study of ``p12-a`` with ``--external p12-b``
    writes ``p12-b.metrics.json`` and one of ``dev.parquet`` with ``--external ext.parquet`` ``ext.metrics.json``::

        <cohort>.parquet              the development and external cohorts as the study read them (mapped)
        <cohort>.encoded.parquet      the same with their texts (the development cohort's encoder)
        encoder.json                  that text encoder
        external-mapping.json         how an external cohort of another schema was read (only then)
        table1.md                     the development cohort's baseline characteristics
        alfia-run/                    ALFIA's run folder (a RunFolder)
        <external>.predictions.parquet  ALFIA on an external cohort, every row
        <external>.metrics.json         its metrics, threshold and cost (beside its predictions)
        baselines/ frozen-readout/ boost/   the baselines' folders
        leaderboard.md, leaderboard.json, leaderboard-test.csv, leaderboard-external.csv
        report.html                   the report page
        summary.md, timings.json      the study's summary and the seconds of each stage
        seeds/repeat-<r>/             with ``--seeds N``: repeat r = 1..N-1, every trained model again with its
                                      seed + r (a StudyFolder of the run, baselines, boost, external predictions and
                                      leaderboard files)
        seeds.md, seeds.json          the spread over the seeds and the headline comparisons per seed and pooled
        manifest.json                 what made the folder (alfia.manifest), written last
    """

    RUN = "alfia-run"
    BASELINES = "baselines"
    FROZEN_READOUT = "frozen-readout"
    BOOST = "boost"
    ENCODER = RunFolder.ENCODER
    MAPPING = "external-mapping.json"
    TABLE1 = "table1.md"
    LEADERBOARD = "leaderboard.md"
    LEADERBOARD_JSON = "leaderboard.json"
    LEADERBOARD_TABLE = "leaderboard-{where}.csv"   # where: test, external (alfia.baselines.leaderboard)
    REPORT = "report.html"
    SUMMARY = "summary.md"
    TIMINGS = "timings.json"
    SEEDS = "seeds"   # the folder of the seed repeats
    REPEAT = "repeat-{r}"
    SEED_SPREAD = "seeds.md"
    SEED_SPREAD_JSON = "seeds.json"
    MANIFEST = RunFolder.MANIFEST
    # what follows a cohort's name in the names of its files
    COHORT_SUFFIX = ".parquet"
    ENCODED_SUFFIX = ".encoded.parquet"
    PREDICTIONS_SUFFIX = ".predictions.parquet"
    METRICS_SUFFIX = ".metrics.json"
    what, remedy = "study folder", "run the study again"

    @property
    def run(self) -> RunFolder:
        return RunFolder(self.path / self.RUN)

    @property
    def baselines(self) -> Path:
        return self.path / self.BASELINES

    @property
    def frozen_readout(self) -> Path:
        return self.path / self.FROZEN_READOUT

    @property
    def boost(self) -> Path:
        return self.path / self.BOOST

    def repeat(self, r: int) -> StudyFolder:
        """Seed repeat ``r`` (0: this study itself; r >= 1: its folder under ``seeds/``)."""
        return self if r == 0 else StudyFolder(self.path / self.SEEDS / self.REPEAT.format(r=r))

    def repeats(self) -> list[StudyFolder]:
        """This study and every seed repeat it holds, in the order of r."""
        prefix = self.REPEAT.format(r="")
        numbers = (p.name.removeprefix(prefix) for p in (self.path / self.SEEDS).glob(prefix + "*"))
        return [self, *(self.repeat(r) for r in sorted(int(n) for n in numbers if n.isdigit()) if r > 0)]

    def leaderboard_table(self, where: str) -> Path:
        """The leaderboard's numbers on ``where`` (test, external) as CSV."""
        return self.path / self.LEADERBOARD_TABLE.format(where=where)

    # -- a cohort's files, by the cohort's name ---------------------------------------------------------------
    def cohort(self, name: str) -> Path:
        return self.path / f"{name}{self.COHORT_SUFFIX}"

    def encoded(self, name: str) -> Path:
        return self.path / f"{name}{self.ENCODED_SUFFIX}"

    def predictions(self, name: str) -> Path:
        """ALFIA's predictions on the external cohort ``name`` (its metrics beside: :meth:`metrics_path`)."""
        return self.path / f"{name}{self.PREDICTIONS_SUFFIX}"

    def metrics_path(self, name: str) -> Path:
        """The external cohort ``name``'s metrics (what ``alfia.inference.write_predictions`` writes beside its
        predictions)."""
        return metrics_path(self.predictions(name))

    # -- reading ----------------------------------------------------------------------------------------------
    def externals(self) -> list[str]:
        """The names of the external cohorts ALFIA scored in this folder (each ``<name>.metrics.json``), sorted."""
        if not self.path.is_dir():
            return []
        return sorted(p.name.removesuffix(self.METRICS_SUFFIX) for p in self.path.glob(f"*{self.METRICS_SUFFIX}")
                      if p.is_file())

    def external_metrics(self, name: str) -> dict | None:
        """``<name>.metrics.json``: ``{"metrics": evaluate-dict, "threshold", "ms_per_sample", ...}``, or None."""
        return self.read_json(self.metrics_path(name).name)

    def timings(self) -> dict[str, float]:
        """timings.json: seconds per stage (empty before the study has finished)."""
        return self.read_json(self.TIMINGS) or {}

    # -- writing (each file atomically) -----------------------------------------------------------------------
    def save_text(self, name: str, text: str) -> None:
        write_text_atomic(self.path / name, text)


def cohort_name(spec: str | os.PathLike) -> str:
    """The name a study gives a cohort in its file names: a bundled name as it is, a file by its stem."""
    return Path(spec).stem if Path(str(spec)).suffix else str(spec)
