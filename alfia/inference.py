"""Using a trained run (Algorithm 2): probabilities, labels at the validation-chosen threshold, embeddings.

    run = Run.load("runs/p12")
    run.predict_proba(cohort_or_texts)      # P(in-hospital death)

Texts are always written by the run's own text encoder from the cohort's features, so inference sees exactly
the text style and band cut points of training, whatever text column the cohort may carry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.evaluation import drift
from alfia.evaluation.calibration import CALIBRATION_FILE, Calibrator
from alfia.evaluation.metrics import choose_threshold, evaluate
from alfia.io import atomic_path, metrics_path, write_text_atomic
from alfia.model.alfia import ALFIA, assemble_outputs
from alfia.model.serialization import DIGESTS_NAME, code_version, folder_digest
from alfia.text.encoder import TextEncoder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Run:
    folder: Path
    model: ALFIA
    encoder: TextEncoder | None
    threshold: float | None
    calibrator: Calibrator = dataclasses.field(default_factory=Calibrator)

    @classmethod
    def load(cls, folder: str | Path) -> Run:
        folder = Path(folder)
        if not folder.is_dir():
            raise AlfiaError(f"run folder {folder} does not exist; train one with `alfia train`")
        if not (folder / "model").is_dir():
            raise AlfiaError(f"run folder {folder} has no trained model (model/ is missing); "
                             "the training did not finish an epoch: run `alfia train ... --resume`")
        model = ALFIA.load(folder / "model")
        encoder = TextEncoder.load(folder / "encoder.json") if (folder / "encoder.json").exists() else None
        threshold = None
        if (folder / "threshold.json").exists():
            threshold = float(json.loads((folder / "threshold.json").read_text())["threshold"])
        calibrator = Calibrator()
        if (folder / CALIBRATION_FILE).exists():
            calibrator = Calibrator.from_dict(json.loads((folder / CALIBRATION_FILE).read_text()))
        return cls(folder, model, encoder, threshold, calibrator)

    def texts(self, data: Cohort | list[str]) -> list[str]:
        if isinstance(data, Cohort):
            if self.encoder is None:
                if "text" not in data.df.columns:
                    raise AlfiaError("this run has no text encoder and the cohort has no text; encode it first")
                return data.df["text"].tolist()
            if self.encoder.schema_name != data.schema.name:
                raise AlfiaError(f"the run was trained on schema {self.encoder.schema_name!r}, "
                                 f"the cohort is {data.schema.name!r}")
            return self.encoder.transform(data.df).tolist()
        return list(data)

    def predict_proba(self, data: Cohort | list[str], batch_size: int = 32) -> np.ndarray:
        """The calibrated P(in-hospital death) (the run's validation-fitted calibrator, identity if none)."""
        return self.calibrator.transform(self.model.predict_proba(self.texts(data), batch_size=batch_size))

    def embed(self, data: Cohort | list[str], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        return self.model.embed(self.texts(data), batch_size=batch_size)


class TruncationWarning(UserWarning):
    """Some texts have more tokens than the model reads: their ends (last labs, "Not recorded") were not seen."""


def truncated_texts(model: ALFIA, texts: list[str]) -> np.ndarray:
    """Per text: does it have more tokens (special tokens included) than the model's ``max_length``?"""
    if not texts:
        return np.zeros(0, dtype=bool)
    ids = model.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    return np.fromiter((len(x) > model.max_length for x in ids), dtype=bool, count=len(ids))


def warn_truncated(cut: np.ndarray, limit: int) -> None:
    """The one warning of a command whose texts were cut (counts only: no patient text)."""
    if cut.any():
        warnings.warn(f"{int(cut.sum())} of {len(cut)} texts are longer than the model's {limit}-token limit and "
                      "were cut: their last facts were not read (the outputs count them in 'truncated'); retrain "
                      "with a larger --max-length to read them whole", TruncationWarning, stacklevel=3)


def _embedding_frame(stay_ids, emb: np.ndarray, weights: np.ndarray, means: np.ndarray | None) -> pd.DataFrame:
    data = {"stay_id": np.asarray(stay_ids)}
    data.update({f"emb_{i}": emb[:, i] for i in range(emb.shape[1])})
    data.update({f"layer_weight_{j}": weights[:, j] for j in range(weights.shape[1])})
    if means is not None:  # the readout's input: the fused layers' token means (``layer_mean_*``)
        data.update({f"layer_mean_{k}": means[:, k] for k in range(means.shape[1])})
    return pd.DataFrame(data)


def model_key(folder: str | Path) -> str | None:
    """What names a run's model in cache keys: the digest of its saved weight files (so retraining or resuming
    into the same folder gives new keys) and the code version; None when the run folder holds no saved model."""
    model = Path(folder) / "model"
    if not (model / DIGESTS_NAME).is_file():
        return None
    return f"{folder_digest(model)}:{code_version()}"


def _embedding_cache(run: Run, stay_ids, texts: list[str]) -> Path | None:
    """Where the embeddings of exactly these stays and texts, from exactly this model's weights and this code,
    are kept in the run folder: computing them costs a backbone pass per stay, so finishing, external prediction
    and ALFIA-boost share one. None (nothing cached) for a model that was not saved."""
    key = model_key(run.folder)
    if key is None:
        return None
    digest = hashlib.sha256(key.encode() + b"\x1d")
    for stay, text in zip(np.asarray(stay_ids).tolist(), texts, strict=True):
        digest.update(f"{stay}\x1f{text}\x1e".encode())
    return run.folder / "embeddings" / f"{digest.hexdigest()[:20]}.parquet"


def _save_embeddings(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def infer_cohort(run: Run, cohort: Cohort, batch_size: int = 32, caches: dict | None = None,
                 quantize: bool = False, texts: list[str] | None = None,
                 progress: bool = False) -> tuple[np.ndarray, pd.DataFrame]:
    """Probabilities and the embedding frame of every row, in one pass; rows of the splits in ``caches``
    (split -> PrefixCache, built by the trainer on exactly those rows) run only the layers above the cache.
    ``quantize``: the int8 CPU path (:meth:`ALFIA.predict_proba`); its embeddings are not cached, so the run's
    embedding cache always holds the fp32 ones. ``texts``: the run's texts of the cohort, when already written.
    ``progress``: a progress bar over the batches (stderr)."""
    texts = run.texts(cohort) if texts is None else texts
    df = cohort.df
    probs = np.zeros(len(df))
    emb = weights = means = None
    todo = np.ones(len(df), dtype=bool)
    parts = []
    for split, cache in (caches or {}).items():
        rows = np.flatnonzero((df["split"] == split).to_numpy())
        if len(rows) != len(cache):
            continue
        parts.append((rows, assemble_outputs(cache.infer(run.model, batch_size), len(rows))))
        todo[rows] = False
    rest = np.flatnonzero(todo)
    if len(rest):
        parts.append((rest, run.model.predict_embed([texts[i] for i in rest], batch_size=batch_size,
                                                    quantize=quantize, progress=progress)))
    for rows, (p, e, w, m) in parts:
        if emb is None:
            emb = np.zeros((len(df), e.shape[1]), dtype=np.float32)
            weights = np.zeros((len(df), w.shape[1]), dtype=np.float32)
            means = None if m is None else np.zeros((len(df), m.shape[1]), dtype=np.float32)
        probs[rows], emb[rows], weights[rows] = p, e, w
        if means is not None:
            means[rows] = m
    frame = _embedding_frame(df["stay_id"], emb, weights, means)
    cache = None if quantize else _embedding_cache(run, df["stay_id"], texts)
    if cache is not None:
        _save_embeddings(cache, frame)
    return probs, frame


def finish_run(folder: str | Path, cohort: Cohort, n_boot: int = 1000, *, model: ALFIA | None = None,
               caches: dict | None = None) -> dict:
    """After training: the best model predicts every split (and keeps their embeddings); the threshold is chosen
    on validation; the test split is scored here, once. Writes predictions.parquet, threshold.json and
    metrics.json, and reference.json (the train split's reference for out-of-distribution warnings,
    :mod:`alfia.evaluation.drift`). ``model``/``caches``: the trainer's best model and frozen-layer caches, to skip
    recomputing."""
    run = Run.load(folder) if model is None else Run(Path(folder), model, _saved_encoder(folder), None)
    df = cohort.df
    texts = run.texts(cohort)
    p_raw, _ = infer_cohort(run, cohort, caches=caches, texts=texts)
    cut = truncated_texts(run.model, texts)
    warn_truncated(cut, run.model.max_length)
    write_text_atomic(run.folder / drift.REFERENCE_FILE,  # what a stay is compared with when the run is used
                      json.dumps(drift.build_reference(cohort, texts, run.model.tokenizer), indent=2))
    y = df["hospital_mortality"].to_numpy()
    val, test = (df["split"] == "val").to_numpy(), (df["split"] == "test").to_numpy()
    calibrator = Calibrator(_run_setting(run.folder, "calibration", "none")).fit(y[val], p_raw[val])
    write_text_atomic(run.folder / CALIBRATION_FILE, json.dumps(calibrator.to_dict(), indent=2))
    p = calibrator.transform(p_raw)
    threshold = choose_threshold(y[val], p[val])
    write_text_atomic(run.folder / "threshold.json",
                      json.dumps({"threshold": threshold, "chosen_on": "validation split, best F1",
                                  "scale": "calibrated probability"}, indent=2))
    predictions = pd.DataFrame({"stay_id": df["stay_id"], "split": df["split"], "hospital_mortality": y,
                                "probability": p, "p_raw": p_raw, "label": (p >= threshold).astype(int),
                                "truncated": cut})
    with atomic_path(run.folder / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    metrics = {"val": evaluate(y[val], p[val], threshold=threshold, n_boot=n_boot),
               "test": evaluate(y[test], p[test], threshold=threshold, n_boot=n_boot),
               "truncation": {"limit_tokens": run.model.max_length,
                              "truncated_texts": {split: int(cut[(df["split"] == split).to_numpy()].sum())
                                                  for split in ("train", "val", "test")}}}
    write_text_atomic(run.folder / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _run_setting(folder: Path, name: str, default):
    """A training setting from the run's config.json (``default`` for runs written before it existed)."""
    path = folder / "config.json"
    train = json.loads(path.read_text()).get("train", {}) if path.exists() else {}
    return train.get(name, default)


def _saved_encoder(folder: str | Path) -> TextEncoder | None:
    path = Path(folder) / "encoder.json"
    return TextEncoder.load(path) if path.exists() else None


def write_predictions(table: pd.DataFrame, info: dict, out: str | Path) -> None:
    """``predict_cohort``'s outputs: the table at ``out`` (.csv, else parquet) and ``info`` beside it
    (:func:`metrics_path`), each written atomically."""
    with atomic_path(out) as tmp:
        if str(out).endswith(".csv"):
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    write_text_atomic(metrics_path(out), json.dumps(info, indent=2))


def predict_cohort(folder: str | Path, cohort: Cohort, batch_size: int = 32,
                   quantize: bool = False, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Probabilities and labels for every row of ``cohort``, with each stay's ``warnings`` and whether it is
    ``out_of_distribution`` (:mod:`alfia.evaluation.drift`); metrics with CIs when it has labels. ``quantize``:
    the int8 dynamic-quantised CPU path (opt-in; docs/speed.md has its measured speed and AUPRC change);
    ``progress``: a progress bar (stderr)."""
    run = Run.load(folder)
    if run.threshold is None:
        raise AlfiaError(f"run {folder} has no threshold.json: its training did not finish")
    start = time.perf_counter()
    texts = run.texts(cohort)
    p_raw, _ = infer_cohort(run, cohort, batch_size=batch_size, quantize=quantize, texts=texts, progress=progress)
    p = run.calibrator.transform(p_raw)
    seconds = time.perf_counter() - start
    cut = truncated_texts(run.model, texts)
    warn_truncated(cut, run.model.max_length)
    out = pd.DataFrame({"stay_id": cohort.df["stay_id"], "probability": p, "p_raw": p_raw,
                        "label": (p >= run.threshold).astype(int), "threshold": run.threshold, "truncated": cut})
    reference = drift.load_reference(folder)  # how far each stay lies from the training data (never silent)
    warned = drift.stay_warnings(reference, texts, drift.token_counts(run.model.tokenizer, texts),
                                 run.model.max_length, cohort.df, free_text=run.encoder is None)
    out = out.assign(**drift.warning_columns(warned, reference))
    info = {"ms_per_sample": 1000 * seconds / len(p), "peak_rss_mb": peak_rss_mb(), "rows": len(p),
            "threshold": run.threshold, "precision": "int8" if quantize else "fp32",
            "calibration": run.calibrator.to_dict(), "truncated_texts": int(cut.sum()),
            "limit_tokens": run.model.max_length}
    metrics = labelled_metrics(cohort, p, run.threshold)
    if metrics is not None:
        info["labelled_rows"] = metrics["n"]
        info["metrics"] = metrics
    return out, info


def labelled_metrics(cohort: Cohort, p: np.ndarray, threshold: float, n_boot: int = 1000) -> dict | None:
    """Metrics with CIs over the stays whose outcome is known; None when the table has no outcome column or its
    known outcomes are all one class (new patients are scored without one)."""
    if "hospital_mortality" not in cohort.df.columns:
        return None
    y = cohort.df["hospital_mortality"]
    known = y.notna().to_numpy()
    y = y[known].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        return None
    return evaluate(y, p[known], threshold=threshold, n_boot=n_boot)


def cached_embeddings(run: Run, cohort: Cohort, batch_size: int = 32, progress: bool = False) -> pd.DataFrame:
    """The embedding frame of every row of ``cohort`` (see :func:`embed_cohort`), from the run's embedding cache
    when these exact stays and texts were embedded before (finishing a run caches its whole cohort)."""
    cached = _embedding_cache(run, cohort.df["stay_id"], run.texts(cohort))
    if cached is not None and cached.exists():
        return pd.read_parquet(cached)
    return infer_cohort(run, cohort, batch_size=batch_size, progress=progress)[1]


def embed_cohort(folder: str | Path, cohort: Cohort, batch_size: int = 32, progress: bool = False) -> pd.DataFrame:
    """``stay_id``, ``emb_0..`` (L2-normalised ALF embedding) and ``layer_weight_0..`` per stay (Algorithm 2)."""
    frame = cached_embeddings(Run.load(folder), cohort, batch_size, progress)
    return frame[[c for c in frame.columns if not c.startswith("layer_mean_")]]


def layer_means(folder: str | Path, cohort: Cohort, batch_size: int = 32) -> pd.DataFrame:
    """The readout's input per stay (``layer_mean_0..``: the fused layers' token means side by side), indexed by
    stay_id; only runs with a readout have them."""
    frame = cached_embeddings(Run.load(folder), cohort, batch_size)
    cols = [c for c in frame.columns if c.startswith("layer_mean_")]
    if not cols:
        raise AlfiaError(f"run {folder} has no pooled readout, so no layer means; train it with --readout")
    return frame.set_index("stay_id")[cols]


def split_embeddings(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """An embedding frame as arrays: (embeddings ``[N, H]``, layer weights ``[N, N_f]``)."""
    emb = frame[[c for c in frame.columns if c.startswith("emb_")]].to_numpy(np.float32)
    return emb, frame[[c for c in frame.columns if c.startswith("layer_weight_")]].to_numpy(np.float32)
