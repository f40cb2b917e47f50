"""``alfia bench`` (``--profile quick``, the default): ALFIA's default inference and training paths against the
authors' reference setup (:mod:`alfia.bench.reference`); ``--profile paper`` runs :mod:`alfia.bench.paper` instead
(the paper's setting on a GPU).

Everything runs in one process on one device (``--device``), on the same texts (bundled PhysioNet 2012 set A,
banded text style) and the same backbone:

reference   HuggingFace transformers + peft as the authors' code uses them: every text padded to 512 tokens
            (the backbone's limit), fp32 (TF32 off), eager attention, ``torch.no_grad``, inference batch 16;
            training batch 4 with LoRA (r=16, paper targets) on every layer, backbone and LoRA dropout on, AdamW.
            Measured on a sample (``--reference-stays``, ``--reference-steps``).
alfia       what ``alfia train`` (quick profile) and ``alfia predict`` do, in ``--precision``: the Trainer on the
            cohort, then ``ALFIA.load`` + ``predict_proba`` (dynamic padding, length bucketing, inference mode,
            SDPA), and int8 (``quantize=True``, CPU only).

Reported: inference ms/sample, training samples/s, peak memory per phase (RSS sampled every 10 ms; GPU memory on
a GPU), the ratios, max |p_alfia - p_reference| on the same weights, AUPRC of fp32 and int8 on set A's test
split, and the floor: FLOPs per sample at the real token counts (``torch.utils.flop_counter``) divided by this
machine's measured matmul throughput on the backbone's own GEMM shapes (:mod:`alfia.bench.measure`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alfia.bench.measure import PeakMemory, hardware_floor, machine_info, sync, torch_threads
from alfia.bench.reference import reference_inference, reference_training
from alfia.bench.report import inference_summary, quick_markdown, rounded, training_summary
from alfia.errors import SettingError
from alfia.run_folder import RunFolder

REQUIRED_KEYS = ("reference_infer_ms_per_sample", "alfia_infer_ms_per_sample", "inference_speedup",
                 "reference_train_samples_per_s", "alfia_train_samples_per_s", "training_speedup",
                 "max_abs_prob_diff", "floor_infer_ms_per_sample", "machine")


def _set_a(stays: int, seed: int = 0):
    """Set A encoded with the banded text style, and a training cohort of at most ``stays`` rows: a stratified
    sample of the train and validation splits (the whole test split is kept for the AUPRC check)."""
    import pandas as pd

    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.cohorts.registry import default_study
    from alfia.text.encoder import TextEncoder

    cohort = load_bundled(default_study().development)   # PhysioNet 2012's set A, as its data set declares
    cohort = TextEncoder(cohort.schema, "banded").fit(cohort.df).encode(cohort)
    df = cohort.df
    rng = np.random.Generator(np.random.PCG64(seed))

    def sample(part: pd.DataFrame, n: int) -> pd.DataFrame:
        if n >= len(part):
            return part
        pos, neg = part[part[cohort.label] == 1], part[part[cohort.label] == 0]
        n_pos = min(len(pos), max(2, round(n * len(pos) / len(part))))
        take = [pos.iloc[rng.permutation(len(pos))[:n_pos]], neg.iloc[rng.permutation(len(neg))[:n - n_pos]]]
        return pd.concat(take).sort_index()

    train = sample(df[df["split"] == "train"], stays)
    val = sample(df[df["split"] == "val"], max(8, min(500, stays // 4)))
    test = df[df["split"] == "test"]
    if stays < len(test):
        test = sample(test, max(8, stays))
    train_df = pd.concat([train, val, test]).reset_index(drop=True)
    return df, Cohort(df=train_df, schema=cohort.schema, info=cohort.info)


def _inference_texts(df, stays: int, label: str) -> tuple[list[str], np.ndarray, int]:
    """``stays`` texts: set A's test split first, then the other rows, repeated cyclically when more are asked
    for. Returns texts, labels, and how many leading rows are the test split."""
    test = df[df["split"] == "test"]
    rest = df[df["split"] != "test"]
    texts = test["text"].tolist() + rest["text"].tolist()
    labels = np.concatenate([test[label].to_numpy(), rest[label].to_numpy()])
    reps = math.ceil(stays / len(texts))
    return (texts * reps)[:stays], np.tile(labels, reps)[:stays], min(len(test), stays)


def alfia_training(cohort, backbone: str | None, epochs: int, out: Path, device: torch.device | str = "auto",
                   **overrides) -> dict:
    """``alfia train`` with the quick profile (``epochs`` epochs) on ``device``, timed end to end: tokenising,
    caching the frozen layers, the epochs, validation and checkpoints. ``overrides``: e.g. ``cache_prefix=False``
    for the exact path (the same computation from token ids in every step), ``precision``."""
    from alfia.training.config import make_config
    from alfia.training.trainer import train

    config = make_config("quick", epochs=epochs, patience=max(2, epochs), **overrides)
    n_train = int((cohort.df["split"] == "train").sum())
    with PeakMemory() as memory:
        sync()
        start = time.perf_counter()
        train(cohort, out, config, backbone=backbone, progress=False, device=device)
        sync()
        seconds = time.perf_counter() - start
    history = RunFolder(out).history()
    epoch_seconds = sum(h["seconds"] for h in history)
    return {"samples_per_s": n_train * len(history) / seconds, "train_stays": n_train, "epochs": len(history),
            "seconds": seconds, "epoch_seconds": epoch_seconds,
            "epoch_samples_per_s": n_train * len(history) / epoch_seconds if epoch_seconds else None,
            "setup_seconds": seconds - epoch_seconds, "peak_rss_mb": memory.rss_mb, "peak_gpu_mb": memory.gpu_mb,
            "best_val_auprc": max(h["val_auprc"] for h in history),
            "profile": {"batch_size": config.batch_size, "cache_prefix": config.cache_prefix,
                        "lora_layers": None if config.model.lora is None else config.model.lora.layers,
                        "fusion_layers": config.model.fusion.num_fusion_layers,
                        "backbone_dropout": config.model.backbone_dropout, "max_length": config.model.max_length}}


def alfia_inference(model, texts: Sequence[str], batch_size: int, quantize: bool) -> dict:
    from alfia.model.quantize import quantized_copy

    build = 0.0
    if quantize:
        start = time.perf_counter()
        quantized_copy(model)
        build = time.perf_counter() - start
    model.predict_proba(list(texts[:batch_size]), batch_size=batch_size, quantize=quantize)   # warm-up
    with PeakMemory() as memory:
        sync()
        start = time.perf_counter()
        probs = model.predict_proba(list(texts), batch_size=batch_size, quantize=quantize)
        sync()
        seconds = time.perf_counter() - start
    return {"probs": probs, "ms_per_sample": 1000 * seconds / len(texts), "peak_rss_mb": memory.rss_mb,
            "peak_gpu_mb": memory.gpu_mb, "quantize_seconds": round(build, 2) if quantize else None}


def run_bench(out: str | os.PathLike, *, stays: int = 1000, sizes: Sequence[int] | None = None,
              backbone: str | None = None, epochs: int = 1, batch_size: int = 32, reference_stays: int = 256,
              reference_steps: int = 64, int8: bool = True, exact_check: bool = True, threads: int | None = None,
              device: str = "auto", precision: str = "auto", log=None) -> dict:
    """ALFIA on ``device`` in ``precision`` (alfia.model.runtime) against the reference, fp32 on the same device."""
    from alfia.io import write_text_atomic
    from alfia.model.alfia import ALFIA
    from alfia.model.runtime import resolve_device, resolve_precision

    log = log or logging.getLogger("alfia").info
    sizes = _check_bench_args(stays, sizes, epochs, batch_size, reference_stays, reference_steps)
    device = resolve_device(device)
    precision = resolve_precision(precision, device).name   # a choice this device cannot honour stops here
    if device.type == "cuda":
        torch.cuda.set_device(device)   # the timers' synchronisation and the peak-memory counters read this GPU
    out = Path(out)
    int8 = int8 and device.type == "cpu"
    result: dict = {"machine": machine_info(), "backbone": backbone or "all-MiniLM-L6-v2", "stays": stays,
                    "sizes": sizes, "device": str(device), "precision": precision}
    df, train_cohort = _set_a(stays)
    texts, labels, n_test = _inference_texts(df, max(sizes + [stays]), train_cohort.label)

    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="alfia-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        log(f"alfia training (quick profile, {epochs} epoch(s)) on {int((train_cohort.df['split'] == 'train').sum())}"
            " stays ...")
        train_info = alfia_training(train_cohort, backbone, epochs, run_dir, device, precision=precision)
        log(f"  {train_info['samples_per_s']:.2f} samples/s end to end, "
            f"{train_info['epoch_samples_per_s'] or 0:.2f} samples/s in the epochs")
        exact = None
        if exact_check:
            log("exact path: the same training without the frozen-layer cache (quality check) ...")
            exact = alfia_training(train_cohort, backbone, epochs, Path(tmp) / "exact", device,
                                   precision=precision, cache_prefix=False)
            log(f"  best validation AUPRC {exact['best_val_auprc']:.4f} (default path "
                f"{train_info['best_val_auprc']:.4f}); {exact['samples_per_s']:.2f} samples/s end to end")
        model = ALFIA.load(run_dir / "model", device=device, precision=precision)
        floor = hardware_floor(model, texts, batch_size, int8)
        main_size = min(sizes, key=lambda s: abs(s - stays))   # the --stays run, or the closest size
        per_size = _inference_sizes(model, texts, sizes, main_size, batch_size, int8, log)
        main = next(e for e in per_size if e["stays"] == main_size)

        log(f"reference inference on {reference_stays} stays (padded, eager, batch 16) ...")
        ref_texts = (texts * math.ceil(reference_stays / len(texts)))[:reference_stays]
        ref = reference_inference(run_dir / "model", ref_texts, device=device)
        model.precision.apply()   # the reference switched TF32 off for the process: ours computes as before
        log(f"  {ref['ms_per_sample']:.1f} ms/sample")
        ours_on_ref = {"fp32": model.predict_proba(ref_texts, batch_size=batch_size)}
        if int8:
            ours_on_ref["int8"] = model.predict_proba(ref_texts, batch_size=batch_size, quantize=True)
        del model

        log(f"reference training ({reference_steps} steps of batch 4, LoRA on every layer, padded) ...")
        train = train_cohort.df[train_cohort.df["split"] == "train"]
        ref_train = reference_training(backbone, train["text"].tolist(), train[train_cohort.label].to_numpy(),
                                       reference_steps, device=device)
        log(f"  {ref_train['samples_per_s']:.2f} samples/s")

    result.update(inference_summary(main, ref, ours_on_ref, floor, labels[:n_test]))
    result.update(training_summary(train_info, ref_train, exact))
    result.update({"alfia_infer_sizes": [{"stays": e["stays"], **{k: {kk: vv for kk, vv in v.items() if kk != "probs"}
                                                                  for k, v in e.items() if isinstance(v, dict)}}
                                         for e in per_size],
                   "reference_stays": reference_stays, "batch_size": batch_size})
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["peak_rss_mb_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result = rounded(result)
    write_text_atomic(out, json.dumps(result, indent=2))
    write_text_atomic(out.with_suffix(".md"), quick_markdown(result))
    return result


def _check_bench_args(stays, sizes, epochs, batch_size, reference_stays, reference_steps) -> list[int]:
    """The sizes to time, sorted; a bad value is a SettingError naming its argument (the CLI names its flag)."""
    for name, value in (("stays", stays), ("epochs", epochs), ("batch_size", batch_size),
                        ("reference_stays", reference_stays), ("reference_steps", reference_steps)):
        if not isinstance(value, int) or value < 1:
            raise SettingError(name, f"must be a positive integer, got {value!r}")
    sizes = sorted({int(s) for s in (sizes or [stays])})
    if any(s < 1 for s in sizes):
        raise SettingError("sizes", "must be positive numbers of stays, e.g. 1000,2000,4000,8000")
    return sizes


def _inference_sizes(model, texts: list[str], sizes: list[int], main_size: int, batch_size: int, int8: bool,
                     log) -> list[dict]:
    """ALFIA's inference timed at every size: fp32 everywhere, int8 at the main size only."""
    per_size = []
    for size in sizes:
        log(f"alfia inference on {size} stays ...")
        entry = {"stays": size, "fp32": alfia_inference(model, texts[:size], batch_size, quantize=False)}
        if int8 and size == main_size:
            entry["int8"] = alfia_inference(model, texts[:size], batch_size, quantize=True)
        log("  " + ", ".join(f"{k} {v['ms_per_sample']:.1f} ms/sample, peak RSS {v['peak_rss_mb']:.0f} MB"
                             for k, v in entry.items() if isinstance(v, dict)))
        per_size.append(entry)
    return per_size
