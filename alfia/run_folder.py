"""A run folder: what `alfia train` writes, and what every later command (predict, boost, report, serve, the
facade) reads. The one place that knows the names of its files::

    config.json          the settings (``train``), backbone, cohort checksum, versions, runtime
    encoder.json         the text encoder: inference writes texts exactly as in training
    model/               the best epoch's ALFIA (alfia.model.alfia)
    history.jsonl        one line per epoch
    checkpoint/          the last completed epoch, for --resume (never copied with a saved predictor)
    .tmp/                while training: the frozen-layer cache's file
    predictions.parquet  every split's probabilities (also the name of a baselines folder's predictions)
    metrics.json         validation and test metrics with CIs
    threshold.json       the alert threshold, chosen on validation
    calibration.json     the recalibration fitted on validation
    reference.json       the train split's reference for out-of-distribution warnings
    embeddings/          cached embeddings of scored cohorts
    manifest.json        what made the folder (alfia.manifest), written last
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alfia.errors import AlfiaError
from alfia.io import atomic_path, replace_folder, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd



class RunFolder:
    """The files of one run folder, by name; readers return None (or empty) for a file not written yet."""

    CONFIG = "config.json"
    ENCODER = "encoder.json"
    MODEL = "model"
    HISTORY = "history.jsonl"
    CHECKPOINT = "checkpoint"
    TMP = ".tmp"
    PREDICTIONS = "predictions.parquet"
    METRICS = "metrics.json"
    THRESHOLD = "threshold.json"
    CALIBRATION = "calibration.json"
    REFERENCE = "reference.json"
    EMBEDDINGS = "embeddings"
    MANIFEST = "manifest.json"   # written last (alfia.manifest), in study folders too
    NOT_COPIED = (CHECKPOINT, TMP, EMBEDDINGS)   # a saved copy of a run is what inference needs, not what resumes it

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def tmp(self) -> Path:
        return self.path / self.TMP

    @property
    def embeddings(self) -> Path:
        return self.path / self.EMBEDDINGS

    # -- reading ----------------------------------------------------------------------------------------------
    def read_json(self, name: str) -> Any | None:
        """A JSON file of the run, or None when it is not there; a damaged one is one clear error."""
        path = self.path / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlfiaError(f"{path} is unreadable ({type(exc).__name__}); the run folder is damaged, train it "
                             "again") from None

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

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    # -- writing (each file atomically) -----------------------------------------------------------------------
    def write_json(self, name: str, data: Any) -> None:
        write_text_atomic(self.path / name, json.dumps(data, indent=2))

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
