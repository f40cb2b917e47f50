"""Optional MLflow logging of a run or study folder (``--mlflow URI`` or ``ALFIA_MLFLOW_URI``).

Off unless asked for: nothing here is imported otherwise. One MLflow run per folder, logged once its manifest
is written: parameters (``config.json``'s settings, the backbone and the cohort checksum), per-epoch metrics
from ``history.jsonl`` (step = epoch), final metrics from ``metrics.json`` and, for a study folder, each external
cohort's ``<external>.metrics.json`` (:class:`alfia.run_folder.StudyFolder`), and the folder's files as artefacts.
Patient-level files stay out of MLflow: cohort tables and predictions (``*.parquet``), the report page and its
figures (they quote patient texts); so do the resumable checkpoint and AutoGluon's pickled models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alfia.codec import flatten
from alfia.errors import AlfiaError
from alfia.run_folder import RunFolder, StudyFolder

KEPT_OUT_SUFFIXES = (".parquet", ".html")
# Resumable state; AutoGluon's pickled models (large, not portable); the report's figures (token attention quotes
# patient texts).
KEPT_OUT_DIRS = (RunFolder.CHECKPOINT, "autogluon", "figures")


def params_of(folder: Path) -> dict[str, Any]:
    params: dict[str, Any] = flatten(RunFolder(folder).config())
    manifest = RunFolder(folder).read_json(RunFolder.MANIFEST) or {}
    if "backbone" in manifest:
        params["backbone"] = manifest["backbone"]["name"]
    for name, checksum in (manifest.get("cohort") or {}).items():
        params[f"cohort.{name}"] = checksum
    if manifest.get("alfia", {}).get("git"):
        params["git_commit"] = manifest["alfia"]["git"]["commit"]
    return {k: ("" if v is None else v) for k, v in params.items()}


def final_metrics(folder: Path) -> dict[str, float]:
    """``{"where.metric": estimate}`` (e.g. ``test.auprc``, apart from the per-epoch ``val_auprc``) from
    metrics.json (``{"val"|"test": evaluate-dict}``) and every external cohort's metrics of a study folder
    (``<external>.metrics.json``): ``external.auprc`` for a study's one external cohort, ``external.<name>.auprc``
    for each of several."""
    out: dict[str, float] = {}
    sources = []
    sources += list((RunFolder(folder).metrics() or {}).items())
    study = StudyFolder(folder)
    externals = study.externals()
    for name in externals:
        where = "external" if len(externals) == 1 else f"external.{name}"
        sources.append((where, (study.external_metrics(name) or {}).get("metrics", {})))
    for where, metrics in sources:
        if not isinstance(metrics, dict):
            continue
        for name, value in metrics.items():
            if isinstance(value, dict) and isinstance(value.get("value"), int | float):
                out[f"{where}.{name}"] = float(value["value"])
    return out


def artefacts_of(folder: Path) -> list[Path]:
    keep = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if path.suffix in KEPT_OUT_SUFFIXES or any(p in KEPT_OUT_DIRS or p.startswith(".") for p in rel.parts[:-1]):
            continue
        keep.append(rel)
    return keep


def log_folder(folder: str | os.PathLike, uri: str, experiment: str = "alfia") -> str:
    """Log ``folder`` to the MLflow tracking server or store at ``uri``; returns the MLflow run id."""
    try:
        import mlflow
    except ImportError:
        raise AlfiaError("MLflow logging was asked for (--mlflow or ALFIA_MLFLOW_URI) but mlflow is not "
                         "installed; run `pip install -c constraints.txt -e '.[mlflow]'` or unset it") from None
    folder = Path(folder)
    if uri.startswith("file:") or "://" not in uri:
        # A folder given on purpose: MLflow 3 keeps its file store but refuses it unless asked (its documented
        # opt-in); a user's own MLFLOW_ALLOW_FILE_STORE wins.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=folder.resolve().name) as run:
        mlflow.log_params(params_of(folder))
        for epoch in RunFolder(folder).history():
            values = {k: float(v) for k, v in epoch.items()
                      if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)}
            mlflow.log_metrics(values, step=int(epoch["epoch"]))
        metrics = final_metrics(folder)
        if metrics:
            mlflow.log_metrics(metrics)
        for rel in artefacts_of(folder):
            mlflow.log_artifact(str(folder / rel), artifact_path=rel.parent.as_posix() if rel.parent.parts else None)
        return run.info.run_id
