"""Using a trained run (Algorithm 2): probabilities, labels at the validation-chosen threshold, embeddings.

    run = Run.load("runs/p12")
    run.predict_proba(cohort_or_texts)      # P(in-hospital death)

Texts are always written by the run's own text encoder from the cohort's features, so inference sees exactly
the text style and band cut points of training, whatever text column the cohort may carry.

Cohorts are scored a chunk of stays at a time (:data:`CHUNK`): texts tokenised, scored and their embeddings
written to the run's embedding cache chunk by chunk, so memory does not grow with the cohort beyond a few numbers
per stay. Under ``torchrun`` (after training) every rank scores its share of each chunk and rank 0 gathers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from alfia import distributed as dist
from alfia.cohorts import Cohort
from alfia.cohorts.task import Task, task_of_run
from alfia.errors import AlfiaError
from alfia.evaluation import drift
from alfia.evaluation.calibration import Calibrator
from alfia.evaluation.metrics import choose_threshold, evaluate
from alfia.io import atomic_path, metrics_path, write_text_atomic
from alfia.model import scoring
from alfia.model.alfia import ALFIA
from alfia.model.card import write_model_card
from alfia.model.runtime import resolve_device, run_precision
from alfia.model.scoring import assemble_outputs
from alfia.model.serialization import DIGESTS_NAME, code_version, folder_digest
from alfia.run_folder import RunFolder
from alfia.text.encoder import TextEncoder, saved_encoder
from alfia.text.stats import token_counts

logger = logging.getLogger(__name__)

CHUNK = 2048  # stays scored at a time: the tokens, outputs and embeddings of one chunk (~40 MB at hidden 1,024)


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
    def load(cls, folder: str | Path, device: str | None = "auto", precision: str | None = None) -> Run:
        """A trained run, its model on ``device`` computing in ``precision`` (:mod:`alfia.model.runtime`; None, the
        default: the run's own precision where this device computes it, else auto, :func:`run_precision`)."""
        files = RunFolder(folder)
        if not files.path.is_dir():
            raise AlfiaError(f"run folder {folder} does not exist; train one with `alfia train`")
        if not files.model.is_dir():
            raise AlfiaError(f"run folder {folder} has no trained model (model/ is missing); "
                             "the training did not finish an epoch: run `alfia train ... --resume`")
        if precision is None:
            device = resolve_device(device)
            precision = run_precision(trained_precision(files), device)
        model = ALFIA.load(files.model, device=device, precision=precision)
        calibration = files.calibration()
        calibrator = Calibrator.from_dict(calibration) if calibration is not None else Calibrator()
        return cls(files.path, model, saved_encoder(files), files.threshold(), calibrator)

    @property
    def files(self) -> RunFolder:
        return RunFolder(self.folder)

    @functools.cached_property
    def task(self) -> Task:
        """The task the run was trained for (its config's; older runs: their schema's)."""
        return task_of_run(self.files)

    def task_warning(self, cohort: Cohort) -> dict | None:
        """The warning for ``cohort`` when its task is not the run's (:func:`alfia.evaluation.drift.task_mismatch`),
        logged once as one line; None when the tasks agree."""
        warned = drift.task_mismatch(self.task, cohort)
        if warned is not None:
            logger.warning(f"warning: {warned['message']}")
        return warned

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

    def predict_proba(self, data: Cohort | list[str], batch_size: int = 32, quantize: bool = False) -> np.ndarray:
        """The calibrated P(in-hospital death) (the run's validation-fitted calibrator, identity if none);
        ``quantize``: the int8 CPU path (:meth:`alfia.model.alfia.ALFIA.predict_proba`)."""
        return self.calibrator.transform(self.model.predict_proba(self.texts(data), batch_size=batch_size,
                                                                  quantize=quantize))

    def embed(self, data: Cohort | list[str], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        return self.model.embed(self.texts(data), batch_size=batch_size)


def trained_precision(files: RunFolder) -> str | None:
    """The precision a run computed in while training: its config.json's ``runtime`` (what ``auto`` chose), else
    its training settings' (None: a run from before either was written)."""
    config = files.config()
    precision = (config.get("runtime") or {}).get("precision") or (config.get("train") or {}).get("precision")
    return precision if isinstance(precision, str) else None


class TruncationWarning(UserWarning):
    """Some texts have more tokens than the model reads: their ends (last labs, "Not recorded") were not seen."""


def truncated_texts(model: ALFIA, texts: list[str], tokens: np.ndarray | None = None) -> np.ndarray:
    """Per text: does it have more tokens (special tokens included) than the model's ``max_length``? ``tokens``:
    the texts' token counts (:func:`alfia.text.stats.token_counts`), when already counted."""
    tokens = token_counts(model.tokenizer, texts) if tokens is None else tokens
    return tokens > model.max_length


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
    model = RunFolder(folder).model
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
    return run.files.embeddings / f"{digest.hexdigest()[:20]}.parquet"


def _chunk_outputs(run: Run, cohort: Cohort, texts: list[str], rows: np.ndarray, caches: dict, batch_size: int,
                   quantize: bool, on_batch) -> list:
    """This rank's ``(cohort rows, (p, emb, weights, means))`` parts of one chunk: rows of a split with a cache
    from the cache (each rank holds the rows it owns), every other row by text (every world-th one per rank)."""
    world, rank = dist.world_size(), dist.rank()
    split = cohort.df["split"].to_numpy() if "split" in cohort.df.columns else None
    todo = np.ones(len(rows), dtype=bool)
    parts = []
    for name, (cache, position) in caches.items():
        inside = split[rows] == name
        todo &= ~inside
        mine = rows[inside][cache.slot[position[rows[inside]]] >= 0]
        if len(mine):
            outputs = assemble_outputs(cache.infer(run.model, batch_size, rows=position[mine], on_batch=on_batch),
                                       len(mine))
            parts.append((mine, outputs))
    rest = rows[todo][rank::world]
    if len(rest):
        parts.append((rest, scoring.predict_embed(run.model, [texts[i] for i in rest], batch_size=batch_size,
                                                  quantize=quantize, on_batch=on_batch)))
    return parts


def _usable_caches(cohort: Cohort, caches: dict | None) -> dict:
    """split -> (cache, each cohort row's position in its split) for the caches built on exactly that split."""
    usable = {}
    for name, cache in (caches or {}).items():
        inside = (cohort.df["split"] == name).to_numpy()
        if len(cache.slot) == inside.sum():
            position = np.full(len(inside), -1, dtype=np.int64)
            position[inside] = np.arange(inside.sum())
            usable[name] = (cache, position)
    return usable


def infer_cohort(run: Run, cohort: Cohort, batch_size: int = 32, caches: dict | None = None,
                 quantize: bool = False, texts: list[str] | None = None, progress: bool = False,
                 keep_frame: bool = False) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """Probabilities of every row, a chunk at a time, the embedding frame (:func:`_embedding_frame`) of every row
    written to the run's embedding cache as it goes. Rows of the splits in ``caches`` (split -> PrefixCache, built
    by the trainer on exactly those rows) run only the layers above the cache. ``quantize``: the int8 CPU path
    (:meth:`ALFIA.predict_proba`); its embeddings are not cached, so the run's embedding cache always holds the
    model's own ones. ``texts``: the run's texts of the cohort, when already written. ``progress``: a progress bar
    (stderr). ``keep_frame``: also return the whole embedding frame (else None).

    Under torchrun every rank calls it and scores its share; rank 0 returns the results, the others (None, None).
    """
    texts = run.texts(cohort) if texts is None else texts
    n = len(cohort.df)
    usable = _usable_caches(cohort, caches)
    stay_ids = cohort.df["stay_id"].to_numpy()
    cache = None if quantize else _embedding_cache(run, stay_ids, texts)
    main = dist.is_main()
    probs = np.zeros(n) if main else None
    frames: list[pd.DataFrame] = []
    writer = contextlib.nullcontext() if cache is None or not main else _ParquetChunks(cache)
    bar = tqdm(total=-(-n // dist.world_size()), desc="scoring stays", unit="stay", leave=False,
               disable=not (progress and main))
    with writer as sink, bar:
        for start in range(0, n, CHUNK):
            rows = np.arange(start, min(start + CHUNK, n))
            gathered = dist.gather(_chunk_outputs(run, cohort, texts, rows, usable, batch_size, quantize, bar.update))
            if not main:
                continue
            # a chunk is a run of consecutive rows
            p, emb, weights, means = assemble_outputs([part for parts in gathered for part in parts], len(rows),
                                                      first=rows[0])
            probs[rows] = p
            frame = _embedding_frame(stay_ids[rows], emb, weights, means)
            if sink is not None:
                sink.write(frame)
            if keep_frame and sink is None:
                frames.append(frame)
    if not main:
        return None, None
    if not keep_frame:
        return probs, None
    return probs, pd.read_parquet(cache) if cache is not None else pd.concat(frames, ignore_index=True)


class _ParquetChunks:
    """A parquet file written a chunk (row group) at a time, renamed into place when complete."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.writer = None

    def __enter__(self) -> _ParquetChunks:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()
        self._atomic.__exit__(*exc)


def finish_run(folder: str | Path, cohort: Cohort, n_boot: int = 1000, *, model: ALFIA | None = None,
               caches: dict | None = None, batch_size: int = 32, progress: bool = False) -> dict | None:
    """After training: the best model predicts every split (and keeps their embeddings); the threshold is chosen
    on validation; the test split is scored here, once. Writes predictions.parquet, threshold.json and
    metrics.json, reference.json (the train split's reference for out-of-distribution warnings,
    :mod:`alfia.evaluation.drift`) and, last, MODEL_CARD.md (:mod:`alfia.model.card`). ``model``/``caches``: the
    trainer's best model (on its device, in its precision) and frozen-layer caches, to skip recomputing;
    ``progress``: a progress bar over the stays. Under torchrun every rank scores its share; rank 0 writes and
    returns the metrics, the others None."""
    run = Run.load(folder) if model is None else Run(Path(folder), model, saved_encoder(RunFolder(folder)), None)
    df = cohort.df
    texts = run.texts(cohort)
    p_raw, _ = infer_cohort(run, cohort, batch_size=batch_size, caches=caches, texts=texts,
                            progress=progress)
    if not dist.is_main():
        return None
    cut = truncated_texts(run.model, texts)
    warn_truncated(cut, run.model.max_length)
    files = run.files
    # what a stay is compared with when the run is used
    files.write_json(RunFolder.REFERENCE, drift.build_reference(cohort, texts, run.model.tokenizer))
    y = df[cohort.label].to_numpy()
    val, test = (df["split"] == "val").to_numpy(), (df["split"] == "test").to_numpy()
    calibrator = Calibrator(files.setting("calibration", "none")).fit(y[val], p_raw[val])
    files.write_json(RunFolder.CALIBRATION, calibrator.to_dict())
    p = calibrator.transform(p_raw)
    threshold = choose_threshold(y[val], p[val])
    files.write_json(RunFolder.THRESHOLD, {"threshold": threshold, "chosen_on": "validation split, best F1",
                                           "scale": "calibrated probability"})
    files.write_predictions(pd.DataFrame({"stay_id": df["stay_id"], "split": df["split"], cohort.label: y,
                                          "probability": p, "p_raw": p_raw, "label": (p >= threshold).astype(int),
                                          "truncated": cut}))
    metrics = {"val": evaluate(y[val], p[val], threshold=threshold, n_boot=n_boot),
               "test": evaluate(y[test], p[test], threshold=threshold, n_boot=n_boot),
               "truncation": {"limit_tokens": run.model.max_length,
                              "truncated_texts": {split: int(cut[(df["split"] == split).to_numpy()].sum())
                                                  for split in ("train", "val", "test")}}}
    files.write_json(RunFolder.METRICS, metrics)
    write_model_card(files.path)
    return metrics


def write_predictions(table: pd.DataFrame, info: dict, out: str | Path) -> None:
    """``predict_cohort``'s outputs: the table at ``out`` (.csv, else parquet) and ``info`` beside it
    (:func:`metrics_path`), each written atomically."""
    with atomic_path(out) as tmp:
        if str(out).endswith(".csv"):
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    write_text_atomic(metrics_path(out), json.dumps(info, indent=2))


def predict_cohort(folder: str | Path, cohort: Cohort, batch_size: int = 32, quantize: bool = False,
                   progress: bool = False, device: str | None = "auto",
                   precision: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Probabilities and labels for every row of ``cohort``, with each stay's ``warnings`` and whether it is
    ``out_of_distribution`` (:mod:`alfia.evaluation.drift`); metrics with CIs when it has labels. ``quantize``:
    the int8 dynamic-quantised CPU path (opt-in; docs/speed.md has its measured speed and AUPRC change);
    ``progress``: a progress bar (stderr); ``device`` / ``precision``: :mod:`alfia.model.runtime`."""
    run = Run.load(folder, device="cpu" if quantize else device, precision=precision)
    if run.threshold is None:
        raise AlfiaError(f"run {folder} has no {RunFolder.THRESHOLD}: its training did not finish")
    start = time.perf_counter()
    texts = run.texts(cohort)
    p_raw, _ = infer_cohort(run, cohort, batch_size=batch_size, quantize=quantize, texts=texts, progress=progress)
    p = run.calibrator.transform(p_raw)
    seconds = time.perf_counter() - start
    tokens = token_counts(run.model.tokenizer, texts)
    cut = truncated_texts(run.model, texts, tokens)
    warn_truncated(cut, run.model.max_length)
    out = pd.DataFrame({"stay_id": cohort.df["stay_id"], "probability": p, "p_raw": p_raw,
                        "label": (p >= run.threshold).astype(int), "threshold": run.threshold, "truncated": cut})
    reference = drift.load_reference(folder)  # how far each stay lies from the training data (never silent)
    warned = drift.stay_warnings(reference, texts, tokens, run.model.max_length, cohort.df,
                                 free_text=run.encoder is None)
    other_task = run.task_warning(cohort)
    if other_task is not None:
        warned = [[*w, other_task] for w in warned]
    out = out.assign(**drift.warning_columns(warned, reference))
    info = {"task": run.task.to_dict(), "cohort_task": cohort.task.name,
            "ms_per_sample": 1000 * seconds / len(p), "peak_rss_mb": peak_rss_mb(), "rows": len(p),
            "threshold": run.threshold, "precision": "int8" if quantize else run.model.precision.name,
            "device": str(run.model.device),
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
    if cohort.label not in cohort.df.columns:
        return None
    y = cohort.df[cohort.label]
    known = y.notna().to_numpy()
    y = y[known].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        return None
    return evaluate(y, p[known], threshold=threshold, n_boot=n_boot)


def cached_embeddings(run: Run, cohort: Cohort, batch_size: int = 32, progress: bool = False) -> pd.DataFrame:
    """The embedding frame of every row of ``cohort`` (see :func:`embed_cohort`), from the run's embedding cache
    when these exact stays and texts were embedded before (finishing a run caches its whole cohort)."""
    texts = run.texts(cohort)
    cached = _embedding_cache(run, cohort.df["stay_id"], texts)
    if cached is not None and cached.exists():
        return pd.read_parquet(cached)
    return infer_cohort(run, cohort, batch_size=batch_size, texts=texts, progress=progress, keep_frame=True)[1]


def embed_cohort(folder: str | Path, cohort: Cohort, batch_size: int = 32, progress: bool = False,
                 device: str | None = "auto", precision: str | None = None) -> pd.DataFrame:
    """``stay_id``, ``emb_0..`` (L2-normalised ALF embedding) and ``layer_weight_0..`` per stay (Algorithm 2)."""
    frame = cached_embeddings(Run.load(folder, device, precision), cohort, batch_size, progress)
    return frame[_embedding_columns(frame.columns)]


def _embedding_columns(columns) -> list[str]:
    return [c for c in columns if not c.startswith("layer_mean_")]


def write_embeddings(folder: str | Path, cohort: Cohort, out: str | Path, batch_size: int = 32,
                     progress: bool = False, device: str | None = "auto", precision: str | None = None) -> int:
    """:func:`embed_cohort`'s table written to ``out`` (parquet) a chunk at a time, from the run's embedding cache
    (filled first when these stays were never embedded): memory does not grow with the cohort. Returns the number
    of embedding dimensions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = Run.load(folder, device, precision)
    texts = run.texts(cohort)
    cached = _embedding_cache(run, cohort.df["stay_id"], texts)
    if cached is None:   # a run without a saved model has no cache: the frame is built in memory
        frame = embed_cohort(folder, cohort, batch_size, progress, device, precision)
        with atomic_path(out) as tmp:
            frame.to_parquet(tmp, index=False)
        return sum(c.startswith("emb_") for c in frame.columns)
    if not cached.exists():
        infer_cohort(run, cohort, batch_size=batch_size, texts=texts, progress=progress)
    source = pq.ParquetFile(cached)
    columns = _embedding_columns(source.schema_arrow.names)
    schema = pa.schema([source.schema_arrow.field(c) for c in columns])
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for group in range(source.num_row_groups):
            writer.write_table(source.read_row_group(group, columns=columns))
    return sum(c.startswith("emb_") for c in columns)


def layer_means(folder: str | Path, cohort: Cohort, batch_size: int = 32, device: str | None = "auto",
                precision: str | None = None) -> pd.DataFrame:
    """The readout's input per stay (``layer_mean_0..``: the fused layers' token means side by side), indexed by
    stay_id; only runs with a readout have them."""
    frame = cached_embeddings(Run.load(folder, device, precision), cohort, batch_size)
    cols = [c for c in frame.columns if c.startswith("layer_mean_")]
    if not cols:
        raise AlfiaError(f"run {folder} has no pooled readout, so no layer means; train it with --readout")
    return frame.set_index("stay_id")[cols]


def split_embeddings(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """An embedding frame as arrays: (embeddings ``[N, H]``, layer weights ``[N, N_f]``)."""
    emb = frame[[c for c in frame.columns if c.startswith("emb_")]].to_numpy(np.float32)
    return emb, frame[[c for c in frame.columns if c.startswith("layer_weight_")]].to_numpy(np.float32)
