"""How the benchmarks measure: timers, peak memory, FLOPs, the machine's GEMM throughput and the floor they give."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch


def sync(device: torch.device | None = None) -> None:
    """Wait for the GPU's queued work before reading a clock: ``device``'s, or (None) the current CUDA device's."""
    if device is None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    elif device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(device: torch.device, run: Callable[[int], object], times: int) -> float:
    """Seconds for ``run(0)``, ..., ``run(times - 1)`` on ``device``, its queued work included."""
    sync(device)
    start = time.perf_counter()
    for k in range(times):
        run(k)
    sync(device)
    return time.perf_counter() - start


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


def reset_gpu_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_peak_mb(device: torch.device) -> float | None:
    """``device``'s peak allocation (MB) since :func:`reset_gpu_peak`; None off a GPU."""
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


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


def count_flops(run: Callable[[], object]) -> int:
    """FLOPs of one ``run()``, by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def throughput(flops: int, seconds_each: float, peak: float | None) -> dict:
    """Achieved TFLOP/s, and its share of ``peak`` (TFLOP/s; None: unknown)."""
    achieved = flops / seconds_each / 1e12
    return {"tflops_per_s": achieved, "share_of_peak": achieved / peak if peak else None}


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
        sync()
        start = time.perf_counter()
        for layer, x in zip(layers, inputs, strict=True):
            layer(x)
        sync()
        return time.perf_counter() - start

    with torch.inference_mode():
        for _ in range(2):
            once()
        seconds = statistics.median(once() for _ in range(repeats))
    return flops / seconds / 1e9


def flops_per_sample(model, texts: Sequence[str]) -> float:
    """Mean FLOPs of one forward at each text's own token count (no padding), by torch's FLOP counter."""
    total = 0
    model.eval()
    with torch.inference_mode():
        for text in texts:
            enc = model.tokenize([text])
            ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
            total += count_flops(partial(model, ids, mask))
    return total / len(texts)


def hardware_floor(model, texts: list[str], batch_size: int, int8: bool) -> dict:
    """The floor: FLOPs at real token counts / measured GEMM throughput (fp32, and int8 where it runs)."""
    tokens = [len(x) for x in model.tokenizer(texts[:256], truncation=True, max_length=model.max_length)
              ["input_ids"]]
    median_tokens = int(np.median(tokens))
    flops = flops_per_sample(model, texts[:16])
    hidden = int(model.backbone_info["hidden_size"])
    ffn = int(getattr(model.base_model().config, "intermediate_size", 4 * hidden))
    rows = batch_size * median_tokens
    gemm = gemm_gflops(rows, hidden, ffn, device=model.device)
    gemm_int8 = gemm_gflops(rows, hidden, ffn, int8=True) if int8 else None
    return {"flops_per_sample": flops, "median_tokens": median_tokens, "gemm_gflops_fp32": gemm,
            "gemm_gflops_int8": gemm_int8, "floor_infer_ms_per_sample": 1000 * flops / (gemm * 1e9),
            "floor_infer_ms_per_sample_int8": 1000 * flops / (gemm_int8 * 1e9) if int8 else None}
