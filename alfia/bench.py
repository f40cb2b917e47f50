"""``alfia bench``: ALFIA's default inference and training paths against the authors' reference setup
(``--profile quick``, the default, below); ``--profile paper`` runs :mod:`alfia.bench_paper` instead (the paper's
setting on a GPU).

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
machine's measured matmul throughput on the backbone's own GEMM shapes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from alfia.errors import AlfiaError, SettingError, UsageError

REQUIRED_KEYS = ("reference_infer_ms_per_sample", "alfia_infer_ms_per_sample", "inference_speedup",
                 "reference_train_samples_per_s", "alfia_train_samples_per_s", "training_speedup",
                 "max_abs_prob_diff", "floor_infer_ms_per_sample", "machine")


# -- measuring ------------------------------------------------------------------------------------------------
def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class PeakMemory:
    """Peak resident memory (MB) while the block runs, sampled every 10 ms; GPU peak allocation on a GPU."""

    def __init__(self) -> None:
        self.rss_mb = 0.0
        self.gpu_mb: float | None = None
        self._stop = threading.Event()

    def _rss(self) -> float:
        try:
            import psutil

            return psutil.Process().memory_info().rss / 2**20
        except ImportError:  # pragma: no cover - psutil is a dependency of the environment
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.rss_mb = max(self.rss_mb, self._rss())

    def __enter__(self) -> PeakMemory:
        self.rss_mb = self._rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_mb = round(max(self.rss_mb, self._rss()), 1)
        if torch.cuda.is_available():
            self.gpu_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)


def machine_info() -> dict:
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    simd = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")) or "vnni" in f)
    info = {"cpu": cpu, "cpu_flags": simd, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def gemm_gflops(rows: int, hidden: int, ffn: int, *, int8: bool = False, repeats: int = 7,
                device: torch.device | str = "cpu") -> float:
    """Matmul throughput (GFLOP/s, median of ``repeats``) on one encoder layer's GEMMs on ``device``: 4 x [rows, H]
    @ [H, H] (q, k, v, attention output), [rows, H] @ [H, F] and [rows, F] @ [F, H]; ``int8``: the same through
    int8 dynamically quantised linears (CPU)."""
    from alfia.model.quantize import quantize_linears

    device = "cpu" if int8 else device
    shapes = [(hidden, hidden)] * 4 + [(hidden, ffn), (ffn, hidden)]
    layers = torch.nn.ModuleList(torch.nn.Linear(k, n, bias=False) for k, n in shapes).to(device).eval()
    if int8:
        quantize_linears(layers)
    inputs = [torch.randn(rows, k, device=device) for k, _ in shapes]
    flops = sum(2 * rows * k * n for k, n in shapes)

    def once() -> float:
        _sync()
        start = time.perf_counter()
        for layer, x in zip(layers, inputs, strict=True):
            layer(x)
        _sync()
        return time.perf_counter() - start

    with torch.inference_mode():
        for _ in range(2):
            once()
        seconds = statistics.median(once() for _ in range(repeats))
    return flops / seconds / 1e9


def flops_per_sample(model, texts: Sequence[str]) -> float:
    """Mean FLOPs of one forward at each text's own token count (no padding), by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    total = 0
    model.eval()
    with torch.inference_mode():
        for text in texts:
            enc = model.tokenize([text])
            with FlopCounterMode(display=False) as counter:
                model(enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device))
            total += counter.get_total_flops()
    return total / len(texts)


# -- data -----------------------------------------------------------------------------------------------------
def _set_a(stays: int, seed: int = 0):
    """Set A encoded with the banded text style, and a training cohort of at most ``stays`` rows: a stratified
    sample of the train and validation splits (the whole test split is kept for the AUPRC check)."""
    import pandas as pd

    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.text.encoder import TextEncoder

    cohort = load_bundled("p12-a")
    cohort = TextEncoder("physionet2012", "banded").fit(cohort.df).encode(cohort)
    df = cohort.df
    rng = np.random.Generator(np.random.PCG64(seed))

    def sample(part: pd.DataFrame, n: int) -> pd.DataFrame:
        if n >= len(part):
            return part
        pos, neg = part[part["hospital_mortality"] == 1], part[part["hospital_mortality"] == 0]
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


def _inference_texts(df, stays: int) -> tuple[list[str], np.ndarray, int]:
    """``stays`` texts: set A's test split first, then the other rows, repeated cyclically when more are asked
    for. Returns texts, labels, and how many leading rows are the test split."""
    test = df[df["split"] == "test"]
    rest = df[df["split"] != "test"]
    texts = test["text"].tolist() + rest["text"].tolist()
    labels = np.concatenate([test["hospital_mortality"].to_numpy(), rest["hospital_mortality"].to_numpy()])
    reps = math.ceil(stays / len(texts))
    return (texts * reps)[:stays], np.tile(labels, reps)[:stays], min(len(test), stays)


# -- reference ------------------------------------------------------------------------------------------------
REFERENCE_LENGTH = 512   # the authors' code pads every text to 512 tokens (ALFIA caps it at the backbone's limit)


def _padded(model, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every text padded to the reference model's ``max_length`` (built or loaded with REFERENCE_LENGTH)."""
    enc = model.tokenizer(list(texts), padding="max_length", truncation=True, max_length=model.max_length,
                          return_tensors="pt")
    return enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)


def reference_inference(model_dir: Path, texts: Sequence[str], batch_size: int = 16,
                        device: torch.device | str = "auto") -> dict:
    """The saved model through HF + peft, eager attention, every text padded to 512, ``no_grad``, batch 16: fp32
    (TF32 off) on ``device``, the authors' pipeline as it runs."""
    from alfia.model.alfia import ALFIA

    model = ALFIA.load(model_dir, device=device, precision="fp32", attn_implementation="eager",
                       max_length=REFERENCE_LENGTH).eval()
    probs = np.zeros(len(texts))
    with torch.no_grad():
        model(*_padded(model, texts[:batch_size]))   # warm-up, not timed
        with PeakMemory() as memory:
            _sync()
            start = time.perf_counter()
            for s in range(0, len(texts), batch_size):
                logits = model(*_padded(model, texts[s:s + batch_size])).logits
                probs[s:s + batch_size] = torch.sigmoid(logits.float()).cpu().numpy()
            _sync()
            seconds = time.perf_counter() - start
    return {"probs": probs, "ms_per_sample": 1000 * seconds / len(texts), "peak_rss_mb": memory.rss_mb,
            "peak_gpu_mb": memory.gpu_mb, "padded_tokens": int(model.max_length)}


def reference_training(backbone: str | None, texts: Sequence[str], labels: np.ndarray, steps: int,
                       batch_size: int = 4, warmup: int = 2, device: torch.device | str = "auto") -> dict:
    """LoRA (paper settings) on every layer, batch 4 padded to 512, eager attention, dropout on, AdamW lr 1e-4,
    clipping 1.0, fp32 (TF32 off) on ``device``: ``steps`` timed optimizer steps after ``warmup`` untimed ones."""
    from alfia.model.alfia import ALFIA, ALFIAConfig
    from alfia.model.backbone import DEFAULT_BACKBONE
    from alfia.model.fusion import FusionConfig
    from alfia.model.lora import LoraSettings

    torch.manual_seed(42)
    config = ALFIAConfig(backbone=backbone or DEFAULT_BACKBONE, fusion=FusionConfig(num_fusion_layers=4),
                         lora=LoraSettings(), max_length=REFERENCE_LENGTH, attn_implementation="eager")
    model = ALFIA(config).to_runtime(device, "fp32")
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    y = torch.tensor(labels, dtype=torch.float32)
    n_pos = max(float(y.sum()), 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - n_pos) / n_pos, device=model.device))
    order = np.random.Generator(np.random.PCG64(0)).permutation(len(texts))

    def step(k: int) -> None:
        rows = order[(k * batch_size + np.arange(batch_size)) % len(texts)]
        ids, mask = _padded(model, [texts[i] for i in rows])
        loss = loss_fn(model(ids, mask).logits.float(), y[rows].to(model.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()

    for k in range(warmup):
        step(k)
    with PeakMemory() as memory:
        _sync()
        start = time.perf_counter()
        for k in range(warmup, warmup + steps):
            step(k)
        _sync()
        seconds = time.perf_counter() - start
    return {"samples_per_s": steps * batch_size / seconds, "steps": steps, "batch_size": batch_size,
            "peak_rss_mb": memory.rss_mb, "peak_gpu_mb": memory.gpu_mb}


# -- alfia ----------------------------------------------------------------------------------------------------
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
        _sync()
        start = time.perf_counter()
        train(cohort, out, config, backbone=backbone, progress=False, device=device)
        _sync()
        seconds = time.perf_counter() - start
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
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
        _sync()
        start = time.perf_counter()
        probs = model.predict_proba(list(texts), batch_size=batch_size, quantize=quantize)
        _sync()
        seconds = time.perf_counter() - start
    return {"probs": probs, "ms_per_sample": 1000 * seconds / len(texts), "peak_rss_mb": memory.rss_mb,
            "peak_gpu_mb": memory.gpu_mb, "quantize_seconds": round(build, 2) if quantize else None}


# -- the benchmark --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's thread count set to ``threads`` (None: unchanged) for the block, then restored."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    texts, labels, n_test = _inference_texts(df, max(sizes + [stays]))

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
        floor = _hardware_floor(model, texts, batch_size, int8)
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
        ref_train = reference_training(backbone, train["text"].tolist(), train["hospital_mortality"].to_numpy(),
                                       reference_steps, device=device)
        log(f"  {ref_train['samples_per_s']:.2f} samples/s")

    result.update(_inference_summary(main, ref, ours_on_ref, floor, labels[:n_test]))
    result.update(_training_summary(train_info, ref_train, exact))
    result.update({"alfia_infer_sizes": [{"stays": e["stays"], **{k: {kk: vv for kk, vv in v.items() if kk != "probs"}
                                                                  for k, v in e.items() if isinstance(v, dict)}}
                                         for e in per_size],
                   "reference_stays": reference_stays, "batch_size": batch_size})
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["peak_rss_mb_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result = _rounded(result)
    write_text_atomic(out, json.dumps(result, indent=2))
    write_text_atomic(out.with_suffix(".md"), to_markdown(result))
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


def _hardware_floor(model, texts: list[str], batch_size: int, int8: bool) -> dict:
    """The floor: FLOPs at real token counts / measured GEMM throughput (fp32, and int8 where it runs)."""
    tokens = [len(x) for x in model.tokenizer(texts[:256], truncation=True, max_length=model.max_length)
              ["input_ids"]]
    median_tokens = int(np.median(tokens))
    flops = flops_per_sample(model, texts[:16])
    hidden = int(model.backbone_info["hidden_size"])
    ffn = int(getattr(model._base_model().config, "intermediate_size", 4 * hidden))
    rows = batch_size * median_tokens
    gemm = gemm_gflops(rows, hidden, ffn, device=model.device)
    gemm_int8 = gemm_gflops(rows, hidden, ffn, int8=True) if int8 else None
    return {"flops_per_sample": flops, "median_tokens": median_tokens, "gemm_gflops_fp32": gemm,
            "gemm_gflops_int8": gemm_int8, "floor_infer_ms_per_sample": 1000 * flops / (gemm * 1e9),
            "floor_infer_ms_per_sample_int8": 1000 * flops / (gemm_int8 * 1e9) if int8 else None}


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


def _inference_summary(main: dict, ref: dict, ours_on_ref: dict, floor: dict, y_test: np.ndarray) -> dict:
    """ALFIA's inference at the main size against the reference and the floor, with the test AUPRC of each path."""
    from alfia.evaluation.metrics import average_precision

    int8 = "int8" in main
    has_both = len(np.unique(y_test)) == 2

    def auprc(p: np.ndarray) -> float | None:
        return round(float(average_precision(y_test, p[:len(y_test)])), 4) if has_both else None

    ms = {k: main[k]["ms_per_sample"] for k in ("fp32", "int8") if k in main}
    summary = {
        "reference_infer_ms_per_sample": ref["ms_per_sample"],
        "alfia_infer_ms_per_sample": ms["fp32"],
        "inference_speedup": ref["ms_per_sample"] / ms["fp32"],
        "alfia_int8_infer_ms_per_sample": ms.get("int8"),
        "inference_speedup_int8": ref["ms_per_sample"] / ms["int8"] if int8 else None,
        "max_abs_prob_diff": float(np.abs(ours_on_ref["fp32"] - ref["probs"]).max()),
        "max_abs_prob_diff_int8": float(np.abs(ours_on_ref["int8"] - ref["probs"]).max()) if int8 else None,
        "test_auprc_fp32": auprc(main["fp32"]["probs"]),
        "test_auprc_int8": auprc(main["int8"]["probs"]) if int8 else None,
        "test_stays": len(y_test),
        **floor,
        "alfia_vs_floor": ms["fp32"] / floor["floor_infer_ms_per_sample"],
        "reference_infer": {k: v for k, v in ref.items() if k != "probs"},
    }
    if int8 and has_both:
        summary["test_auprc_diff_int8"] = round(abs(summary["test_auprc_int8"] - summary["test_auprc_fp32"]), 4)
    return summary


def _training_summary(train_info: dict, ref_train: dict, exact: dict | None) -> dict:
    """ALFIA's training speed against the reference's, and its quality against the exact (uncached) path."""
    return {
        "reference_train_samples_per_s": ref_train["samples_per_s"],
        "alfia_train_samples_per_s": train_info["samples_per_s"],
        "training_speedup": train_info["samples_per_s"] / ref_train["samples_per_s"],
        "alfia_train_epoch_samples_per_s": train_info["epoch_samples_per_s"],
        "training_speedup_epochs_only": (train_info["epoch_samples_per_s"] or 0) / ref_train["samples_per_s"],
        "reference_train": ref_train,
        "alfia_train": train_info,
        "exact_train": exact,
        "val_auprc_default": train_info["best_val_auprc"],
        "val_auprc_exact": exact["best_val_auprc"] if exact else None,
        "val_auprc_diff_vs_exact": abs(train_info["best_val_auprc"] - exact["best_val_auprc"]) if exact else None,
    }


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def to_markdown(r: dict) -> str:
    m = r["machine"]

    def f(x, fmt="{:.1f}"):
        return "–" if x is None else fmt.format(x)

    ref_i, ref_t, al_t = r["reference_infer"], r["reference_train"], r["alfia_train"]
    main = next((e for e in r["alfia_infer_sizes"] if e["stays"] == r["stays"]), r["alfia_infer_sizes"][0])
    int8 = main.get("int8") or {}
    ours = f"alfia {r.get('precision', 'fp32')}"   # results written before --precision existed were fp32
    lines = [
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs, torch threads {m['torch_threads']}, "
        f"SIMD {' '.join(m['cpu_flags']) or '?'}" + (f", GPU {m['gpu']}" if m.get("gpu") else "") +
        f"; torch {m['torch']}; load average {m['load_average_start'][0]} at start, "
        f"{m['load_average_end'][0]} at end. Backbone {r['backbone']}" +
        (f"; device {r['device']}, reference fp32, {ours}." if "device" in r else "."),
        "",
        f"| | reference | {ours} | alfia int8 |",
        "| --- | ---: | ---: | ---: |",
        f"| inference ms/sample | {f(r['reference_infer_ms_per_sample'])} ({r['reference_stays']} stays, "
        f"padded to {ref_i['padded_tokens']}) | {f(r['alfia_infer_ms_per_sample'])} ({main['stays']} stays) | "
        f"{f(r.get('alfia_int8_infer_ms_per_sample'))} |",
        f"| inference speed-up | 1 | **{f(r['inference_speedup'])}x** | "
        f"**{f(r.get('inference_speedup_int8'))}x** |",
        f"| max abs prob diff vs reference (same weights) | 0 | {f(r['max_abs_prob_diff'], '{:.2g}')} | "
        f"{f(r.get('max_abs_prob_diff_int8'), '{:.2g}')} |",
        f"| test AUPRC ({r['test_stays']} stays) | | {f(r['test_auprc_fp32'], '{:.4f}')} | "
        f"{f(r.get('test_auprc_int8'), '{:.4f}')} |",
        f"| floor ms/sample (FLOPs / GEMM rate) | | {f(r['floor_infer_ms_per_sample'])} | "
        f"{f(r.get('floor_infer_ms_per_sample_int8'))} |",
        f"| peak RSS MB, inference | {f(ref_i['peak_rss_mb'], '{:.0f}')} | "
        f"{f(main['fp32']['peak_rss_mb'], '{:.0f}')} | {f(int8.get('peak_rss_mb'), '{:.0f}')} |",
        f"| training samples/s | {f(r['reference_train_samples_per_s'], '{:.2f}')} "
        f"({ref_t['steps']} steps x {ref_t['batch_size']}) | {f(r['alfia_train_samples_per_s'], '{:.2f}')} "
        f"end to end ({al_t['train_stays']} stays x {al_t['epochs']} epoch(s)); "
        f"{f(r['alfia_train_epoch_samples_per_s'], '{:.2f}')} in the epochs | |",
        f"| training speed-up | 1 | **{f(r['training_speedup'])}x** end to end; "
        f"{f(r['training_speedup_epochs_only'])}x epochs only | |",
        f"| peak RSS MB, training | {f(ref_t['peak_rss_mb'], '{:.0f}')} | {f(al_t['peak_rss_mb'], '{:.0f}')} | |",
        f"| best validation AUPRC: default path / exact path (no cache) | | "
        f"{f(r.get('val_auprc_default'), '{:.4f}')} / {f(r.get('val_auprc_exact'), '{:.4f}')} | |",
        "",
        f"FLOPs per sample {r['flops_per_sample'] / 1e9:.2f} G at a median of {r['median_tokens']} tokens; "
        f"measured GEMM {f(r['gemm_gflops_fp32'])} GFLOP/s fp32, {f(r.get('gemm_gflops_int8'))} GFLOP/s int8; "
        f"{ours} is {f(r['alfia_vs_floor'], '{:.2f}')}x its (fp32) floor.",
    ]
    lines += ["", "| stays | fp32 ms/sample | fp32 peak RSS MB | int8 ms/sample | int8 peak RSS MB |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for e in r["alfia_infer_sizes"]:
        q = e.get("int8") or {}
        lines.append(f"| {e['stays']} | {f(e['fp32']['ms_per_sample'])} | {f(e['fp32']['peak_rss_mb'], '{:.0f}')}"
                     f" | {f(q.get('ms_per_sample'))} | {f(q.get('peak_rss_mb'), '{:.0f}')} |")
    return "\n".join(lines) + "\n"


# -- command line ---------------------------------------------------------------------------------------------
def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise AlfiaError(f"--sizes must be comma-separated numbers of stays, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise AlfiaError(f"--sizes must be positive numbers of stays, got {value!r}")
    return sizes


def cmd_bench(args: argparse.Namespace) -> None:
    if not str(args.out).endswith(".json"):
        raise UsageError(f"--out must name a .json file, got {args.out!r}")
    if args.profile == "paper":
        from alfia.bench_paper import cmd_paper_bench

        return cmd_paper_bench(args)
    if args.tiny or args.steps:
        raise UsageError("--tiny and --steps are options of --profile paper; add --profile paper")
    r = run_bench(args.out, stays=args.stays, sizes=_sizes(args.sizes) if args.sizes else None,
                  backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size,
                  reference_stays=args.reference_stays, reference_steps=args.reference_steps,
                  int8=not args.no_int8, exact_check=not args.no_exact, threads=args.threads,
                  device=args.device, precision=args.precision)
    print(to_markdown(r))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")


def add_commands(sub) -> None:
    from alfia.bench_paper import add_paper_options
    from alfia.cli_options import add_backbone, add_batch_size, add_device, add_profile, positive_int

    p = sub.add_parser("bench", help="inference and training speed against the reference HF setup (--profile "
                       "quick) or in the paper's setting on a GPU (--profile paper, docs/speed.md)")
    p.add_argument("--out", required=True, help="results .json (a .md table is written beside it)")
    add_profile(p)
    add_device(p)
    p.add_argument("--stays", type=positive_int, default=1000,
                   help="stays for alfia inference and training (default 1000)")
    p.add_argument("--sizes", help="inference sweep, e.g. 1000,2000,4000,8000 (texts repeated; default --stays)")
    add_backbone(p)
    p.add_argument("--epochs", type=positive_int, default=1, help="quick-profile epochs timed (default 1)")
    add_batch_size(p)
    p.add_argument("--reference-stays", type=positive_int, default=256,
                   help="reference inference sample (default 256)")
    p.add_argument("--reference-steps", type=positive_int, default=64, help="reference training steps (default 64)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 inference path")
    p.add_argument("--no-exact", action="store_true",
                   help="skip the quality check (the same training without the frozen-layer cache)")
    add_paper_options(p)
    p.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """``python -m alfia.bench ...``: the bench command on its own."""
    import sys

    from alfia.cli_options import run_command, setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(prog="alfia bench")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
