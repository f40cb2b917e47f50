"""What a report reads (the run folder and the optional extras, loaded and checked once) and small helpers the
sections share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.analysis.figures import FigureWriter
from alfia.cohorts import Cohort
from alfia.cohorts.task import task_of_run
from alfia.errors import AlfiaError
from alfia.io import metrics_path
from alfia.run_folder import RunFolder, StudyFolder

METRIC_NAMES = {"auprc": "AUPRC", "auroc": "AUROC", "best_f1": "best F1", "best_f2": "best F2", "brier": "Brier",
                "ece": "ECE", "oe_ratio": "O:E", "calibration_intercept": "calibration intercept",
                "calibration_slope": "calibration slope", "sensitivity": "Sensitivity", "specificity": "Specificity",
                "ppv": "PPV", "npv": "NPV", "f1": "F1", "f2": "F2"}


@dataclass
class Table:
    """A table for the templates: header and rows of plain values (escaped when rendered)."""
    header: list[str]
    rows: list[list]
    cls: str = ""


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise AlfiaError(f"cannot read {what} {path} ({type(exc).__name__}); pass the file the study wrote") from None


def read_history(run: Path) -> list[dict]:
    return RunFolder(run).history()


def best_epoch(history: list[dict]) -> int | None:
    """The early-stopping epoch: the last one marked best (the highest validation AUPRC)."""
    marked = [h["epoch"] for h in history if h.get("best")]
    if marked:
        return marked[-1]
    return max(history, key=lambda h: h["val_auprc"])["epoch"] if history else None


def thin(x: np.ndarray, y: np.ndarray, k: int = 200) -> tuple[list, list]:
    """At most ``k`` evenly spaced points of a curve (for the numbers files)."""
    if len(x) > k:
        idx = np.unique(np.linspace(0, len(x) - 1, k).round().astype(int))
        x, y = x[idx], y[idx]
    return np.round(x, 5).tolist(), np.round(y, 5).tolist()


@dataclass
class Options:
    """How the report is built (the keyword arguments of ``build_report``)."""
    max_stays: int | None = 1000
    projection: str = "umap"
    n_boot: int = 200
    classifier: str = "auto"
    include_texts: bool = True
    progress: object = print


@dataclass
class Inputs:
    """The run's files and the optional extras, loaded and checked once; the loaded model and the texts are
    attached by ``build_report``."""
    run: Path
    figs: FigureWriter
    options: Options
    cohort: Cohort | None = None
    baselines_dir: Path | None = None
    ablation: Path | None = None
    external_path: Path | None = None
    bench_path: Path | None = None
    loaded: object = None          # alfia.inference.Run
    texts: list[str] | None = None
    cache: dict = field(default_factory=dict)  # numbers several sections share, computed once

    def __post_init__(self):
        self.run = Path(self.run)
        files = RunFolder(self.run)
        if not files.has(RunFolder.PREDICTIONS) or not files.has(RunFolder.METRICS):
            raise AlfiaError(f"{self.run} has no {RunFolder.PREDICTIONS}/{RunFolder.METRICS}: it is not a finished "
                             "run (train it with `alfia train`, which scores it at the end)")
        self.predictions = files.predictions()
        self.metrics = files.metrics()
        self.threshold = files.threshold()
        self.config = files.config()
        self.history = files.history()
        self.task = task_of_run(files)   # the label column of its predictions, and what the report says it predicts
        self.label = self.task.label
        if self.cohort is not None:
            missing = set(self.predictions["stay_id"]) - set(self.cohort.df["stay_id"])
            if missing:
                raise AlfiaError(f"the cohort lacks {len(missing)} stays of the run's predictions; pass the "
                                 "cohort the run was trained on (--cohort)")
        self.baselines = self._baselines(self.baselines_dir)
        if self.ablation is not None and not Path(self.ablation).is_dir():
            raise AlfiaError(f"ablation folder {self.ablation} does not exist; run `alfia ablate` first")
        self.external = self._external(self.external_path)
        self.bench = read_json(self.bench_path, "bench JSON") if self.bench_path else None

    @staticmethod
    def _baselines(folder: Path | None) -> dict | None:
        if folder is None:
            return None
        folder = Path(folder)
        if not (folder / "results.json").exists():
            raise AlfiaError(f"{folder} has no results.json; pass the baselines folder (or leave --baselines out)")
        results = read_json(folder / "results.json", "baseline results")
        if not isinstance(results.get("models"), dict):
            raise AlfiaError(f"{folder / 'results.json'} has no \"models\" object; write it with the baselines")
        preds = RunFolder(folder).predictions()   # a baselines folder names its predictions as a run does
        return {"results": results, "predictions": preds}

    @staticmethod
    def _external(path: Path | None) -> dict | None:
        if path is None:
            return None
        path = Path(path)
        if not path.exists():
            raise AlfiaError(f"external predictions {path} do not exist; pass the file the study wrote")
        preds = pd.read_parquet(path)
        if not {"stay_id", "probability"} <= set(preds.columns):
            raise AlfiaError(f"{path} needs stay_id and probability columns")
        info_path = metrics_path(path)
        info = read_json(info_path, "external metrics") if info_path.exists() else {}
        # the external cohort's own name (a study's <external>.predictions.parquet, with <external>.metrics.json)
        return {"predictions": preds, "info": info, "name": info_path.name.removesuffix(StudyFolder.METRICS_SUFFIX)}

    @property
    def test(self) -> pd.DataFrame:
        return self.predictions[self.predictions["split"] == "test"]

    def test_models(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Test-split (labels, probabilities) of ALFIA and of every baseline with predictions (labels joined by
        stay_id from the run's predictions)."""
        t = self.test
        models = {"ALFIA": (t[self.label].to_numpy().astype(int), t["probability"].to_numpy())}
        labels = t.set_index("stay_id")[self.label]
        if self.baselines and self.baselines["predictions"] is not None:
            bp = self.baselines["predictions"]
            for name, group in bp[bp["where"] == "test"].groupby("model", sort=False):
                g = group[group["stay_id"].isin(labels.index)]
                if len(g) and labels.loc[g["stay_id"]].nunique() == 2:
                    models[str(name)] = (labels.loc[g["stay_id"]].to_numpy().astype(int), g["probability"].to_numpy())
        return models

    def leaderboard(self) -> list[dict]:
        """ALFIA and every baseline with test metrics, best test AUPRC first."""
        board = [{"model": "ALFIA", "family": "alfia", "test": self.metrics["test"],
                  "external": (self.external or {}).get("info", {}).get("metrics")}]
        if self.baselines is not None:
            for name, r in self.baselines["results"]["models"].items():
                board.append({"model": name, "family": r.get("family", "?"), "test": r.get("test"),
                              "external": r.get("external")})
        board.sort(key=lambda r: -((r["test"] or {}).get("auprc", {}).get("value") or -1))
        return board

    def best_baseline(self) -> dict | None:
        """The independent baseline with the highest test AUPRC (ALFIA-derived models, built on ALFIA's own
        embeddings, are left out: the summary compares ALFIA with what a site could use instead)."""
        others = [r for r in self.leaderboard() if r["model"] != "ALFIA" and r["family"] != "alfia-derived"
                  and r.get("test")]
        return others[0] if others else None

    def curve_models(self) -> list[str]:
        """Models drawn on the curves: ALFIA, the ALFIA-derived ones and the best three other baselines."""
        models = self.test_models()
        board = self.leaderboard()
        families = {r["model"]: r["family"] for r in board}
        ranked = [r["model"] for r in board if r["model"] in models]
        derived = [m for m in ranked if families.get(m) == "alfia-derived"]
        others = [m for m in ranked if m != "ALFIA" and m not in derived][:3]
        return ["ALFIA", *derived, *others]

    def cost(self) -> dict[str, dict]:
        """Inference cost entries: the external prediction run's and the benchmark's, ms per stay and memory."""
        entries: dict[str, dict] = {}
        info = (self.external or {}).get("info") or {}
        if "ms_per_sample" in info:
            entries[f"ALFIA on {self.external['name']}"] = {"ms_per_sample": info["ms_per_sample"],
                                                            "peak_rss_mb": info.get("peak_rss_mb")}
        bench = self.bench or {}
        for k, v in bench.items():
            if k.endswith("_infer_ms_per_sample") and isinstance(v, int | float):
                name = k.removesuffix("_infer_ms_per_sample")
                mem = next((bench[m] for m in (f"{name}_peak_rss_mb", f"{name}_peak_mb", f"{name}_infer_peak_rss_mb")
                            if isinstance(bench.get(m), int | float)), None)
                entries[f"bench: {name}"] = {"ms_per_sample": v, "peak_rss_mb": mem}
        return entries
