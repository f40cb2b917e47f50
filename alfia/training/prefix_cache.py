"""Frozen-prefix caching: with LoRA on the top k layers only (or none), the bottom layers never change, so their
output is computed once per text and reused in every epoch; only the top layers, the fusion and the head run.

Training from the cache is the same computation as training from token ids (the frozen layers run without
dropout in both; ``tests/training/test_prefix_cache.py`` checks losses and gradients).

Memory: the cache is ``tokens x cached layers x hidden`` numbers, so it grows with the cohort (61,000 stays x 215
tokens x 4 layers x 384 hidden is 81 GB in fp32). It is estimated before it is built and logged; it lives on the
CPU in ordinary (pageable) memory, in the autocast dtype when the run autocasts (else the backbone weights'
dtype; a batch read from it is pinned on a GPU run, never the cache itself). Above ``budget`` bytes (by default a
share of the memory available to the job: the host's, or its cgroup's where that is less) it is written to a file
in the run's temporary folder (or ``--cache-dir``) instead and read back batch by batch (explicit reads, not a
memory map, so that the pages read never count as the process's memory). The file is unlinked as soon as it is
open: nothing is left behind, even after a SIGKILL. Under data parallelism each rank caches only the rows it owns.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from alfia.errors import AlfiaError
from alfia.model.alfia import ALFIA
from alfia.model.scoring import assemble_outputs, collect_outputs
from alfia.model.tokens import TokenizedTexts
from alfia.training.batching import bucketed_batches

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_SHARE = 0.10  # of the memory available when no budget is given, shared by a node's ranks


PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 2**62   # cgroup v1 writes "no limit" as a huge number (LONG_MAX rounded to a page)


def available_memory(proc: Path | None = None, cgroup_root: Path | None = None) -> int:
    """Bytes of memory available to new allocations of this process: the host's (Linux: MemAvailable; else free
    pages), or less where the job's cgroup (a SLURM job, a Kubernetes pod's limit) leaves less
    (:func:`cgroup_available`), so that a cache over it spills to a file instead of the job being OOM-killed.
    ``proc`` and ``cgroup_root``: where /proc and the cgroup file system are (default :data:`PROC`,
    :data:`CGROUP_ROOT`; tests read fake ones)."""
    proc = PROC if proc is None else Path(proc)
    host = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                host = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if host is None:
        host = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    job = cgroup_available(proc, cgroup_root)
    return max(0, host if job is None else min(host, job))


def cgroup_available(proc: Path | None = None, cgroup_root: Path | None = None) -> int | None:
    """What this process's memory cgroup and every cgroup above it still allow, the tightest of them (None: no
    limit, or no cgroup file system). Per cgroup: cgroup v2 ``memory.max`` - ``memory.current`` + the reclaimable
    ``inactive_file`` of ``memory.stat`` (``max``: no limit); cgroup v1 ``memory.limit_in_bytes`` -
    ``memory.usage_in_bytes`` + ``total_inactive_file``."""
    proc = PROC if proc is None else Path(proc)
    cgroup_root = CGROUP_ROOT if cgroup_root is None else Path(cgroup_root)
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    v1 = v2 = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "memory" in parts[1].split(","):
            v1 = parts[2]
        elif parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
    if v1 is not None:
        mount = next((d for d in sorted(cgroup_root.glob("*")) if "memory" in d.name.split(",") and d.is_dir()),
                     None)
        if mount is None:
            return None
        files = ("memory.limit_in_bytes", "memory.usage_in_bytes", ("total_inactive_file", "inactive_file"))
        return _tightest(mount, v1, *files)
    if v2 is not None:
        return _tightest(cgroup_root, v2, "memory.max", "memory.current", ("inactive_file",))
    return None


def _tightest(mount: Path, path: str, limit_file: str, usage_file: str, inactive: tuple[str, ...]) -> int | None:
    """The least of limit - usage + inactive over the cgroup ``path`` (under ``mount``) and its parents up to the
    mount itself (inside a container the mount is the container's own cgroup, which may not show ``path``)."""
    folder = mount / path.strip("/")
    if not folder.is_dir() or ".." in Path(path).parts:
        folder = mount
    best = None
    while True:
        room = _room(folder, limit_file, usage_file, inactive)
        if room is not None:
            best = room if best is None else min(best, room)
        if folder == mount or mount not in folder.parents:
            return best
        folder = folder.parent


def _room(folder: Path, limit_file: str, usage_file: str, inactive: tuple[str, ...]) -> int | None:
    """limit - usage + reclaimable page cache of one cgroup; None without a limit (or without its files)."""
    try:
        limit = (folder / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= NO_LIMIT:
            return None
        usage = int((folder / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    stat = {}
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            stat[key] = value
    except OSError:
        pass
    reclaimable = next((int(stat[k]) for k in inactive if stat.get(k, "").strip().isdigit()), 0)
    return max(0, int(limit) - usage + reclaimable)


def default_budget() -> int:
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return int(DEFAULT_BUDGET_SHARE * available_memory() / max(local_ranks, 1))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class PrefixCache:
    """Per text of ``rows`` (default: all), the unpadded hidden states ``[len, H]`` of each index in
    ``model.prefix_indices()``, stored text after text as one ``[tokens, indices * H]`` array."""

    def __init__(self, model: ALFIA, tokens: TokenizedTexts, batch_size: int = 32, progress: bool = True,
                 desc: str = "caching frozen layers", *, rows: np.ndarray | None = None, budget: int | None = None,
                 folder: str | os.PathLike | None = None):
        self.indices = model.prefix_indices()
        self.rows = np.arange(len(tokens)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.slot = np.full(len(tokens), -1, dtype=np.int64)   # row of the cohort -> its place in the cache
        self.slot[self.rows] = np.arange(len(self.rows))
        self.lengths = tokens.lengths                          # of every row, cached or not
        own = self.lengths[self.rows]
        self.offsets = np.zeros(len(own) + 1, dtype=np.int64)
        np.cumsum(own, out=self.offsets[1:])
        self.hidden = int(model.config.fusion.hidden_size)
        self.width = len(self.indices) * self.hidden           # numbers per token
        self.dtype = model.precision.autocast_dtype or model.backbone_dtype
        self.pin = model.device.type == "cuda"   # batches read from it, not the cache itself
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        nbytes = int(self.offsets[-1]) * self.width * itemsize
        budget = default_budget() if budget is None else budget
        self.file = None
        where = "in memory"
        if nbytes > budget:
            folder = Path(folder) if folder is not None else Path(tempfile.gettempdir())
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd, path = tempfile.mkstemp(prefix="frozen-layers.", suffix=".bin", dir=folder)
            except OSError as exc:
                raise AlfiaError(f"cannot write the frozen-layer cache's file ({_size(nbytes)}, over the "
                                 f"{_size(budget)} budget) in {folder}: {exc.strerror or exc}; choose another "
                                 "--cache-dir or a larger --cache-budget") from None
            os.unlink(path)   # the open descriptor keeps the data; no file outlives the process
            self.file = os.fdopen(fd, "r+b", buffering=0)
            where = f"in a file in {folder} (over the {_size(budget)} budget; --cache-budget)"
            self.data = None
        else:
            # ordinary memory, never pinned: torch's caching host allocator rounds a pinned block up to a power of
            # two (a cache of 2^34 + 1 bytes would take 2^35 of unswappable memory), and pinning buys nothing here:
            # a batch is copied out of the cache into a fresh tensor (:meth:`padded`), which is what gets pinned
            self.data = torch.empty((int(self.offsets[-1]), self.width), dtype=self.dtype)
        logger.info(f"{desc}: {len(self.rows):,} texts x {int(own.mean()) if len(own) else 0} tokens x "
                    f"{len(self.indices)} layers x {self.hidden} hidden, {str(self.dtype).removeprefix('torch.')}: "
                    f"{_size(nbytes)} {where}")
        self._build(model, tokens, batch_size, progress, desc)

    def _build(self, model: ALFIA, tokens: TokenizedTexts, batch_size: int, progress: bool, desc: str) -> None:
        device = model.device
        batches = list(bucketed_batches(self.lengths[self.rows], batch_size, shuffle=False))
        with torch.inference_mode(), model.precision.autocast():
            for local in tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False):
                ids, mask = tokens.collate(self.rows[local])
                out = model.frozen_prefix(ids.to(device), mask.to(device))
                block = torch.cat([out[j] for j in self.indices], dim=-1).to("cpu", self.dtype)
                for k, s in enumerate(local):
                    self._write(s, block[k, :self.offsets[s + 1] - self.offsets[s]])

    def _write(self, slot: int, states: torch.Tensor) -> None:
        start = int(self.offsets[slot])
        if self.data is not None:
            self.data[start:start + len(states)] = states
        else:
            raw = states.contiguous().view(torch.uint8).numpy()
            os.pwrite(self.file.fileno(), raw, start * raw.shape[1])

    def _read(self, slot: int, out: torch.Tensor) -> None:
        """The cached states of ``slot`` into ``out`` ([len, width])."""
        start, stop = int(self.offsets[slot]), int(self.offsets[slot + 1])
        if self.data is not None:
            out.copy_(self.data[start:stop])
        else:
            raw = out.view(torch.uint8).numpy()   # pread: no shared file offset, so loader workers may read too
            data = os.pread(self.file.fileno(), raw.nbytes, start * raw.shape[1])
            if len(data) != raw.nbytes:
                raise OSError(f"short read from the frozen-layer cache file ({len(data)} of {raw.nbytes} bytes)")
            raw[...] = np.frombuffer(data, dtype=np.uint8).reshape(raw.shape)

    @property
    def bytes_in_memory(self) -> int:
        """What the cache holds in memory (0 in a file)."""
        return 0 if self.data is None else self.data.numel() * self.data.element_size()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.data = None

    def __len__(self) -> int:
        return len(self.rows)

    def padded(self, rows: np.ndarray, pin: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The states of ``rows`` (rows of the cohort that this cache holds) padded to their longest text,
        ``[B, T, indices * H]``, and their attention mask ``[B, T]``, on the CPU."""
        slots = self.slot[rows]
        if (slots < 0).any():
            raise IndexError("rows outside this cache asked for (a rank reads only the rows it owns)")
        lengths = self.lengths[rows]
        width = int(lengths.max())
        batch = torch.zeros((len(rows), width, self.width), dtype=self.dtype, pin_memory=pin)
        mask = torch.zeros((len(rows), width), dtype=torch.long, pin_memory=pin)
        for k, s in enumerate(slots):
            self._read(s, batch[k, :lengths[k]])
            mask[k, :lengths[k]] = 1
        return batch, mask

    def to_prefix(self, batch: torch.Tensor, mask: torch.Tensor,
                  device: torch.device) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """A :meth:`padded` batch on ``device`` as the model's ``prefix`` (index -> ``[B, T, H]``) and mask."""
        blocks = batch.to(device, non_blocking=True).split(self.hidden, dim=-1)
        prefix = {j: block.contiguous() for j, block in zip(self.indices, blocks, strict=True)}
        return prefix, mask.to(device, non_blocking=True)

    def collate(self, rows: np.ndarray, device: torch.device) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """The model's ``prefix`` and attention mask of ``rows`` on ``device``."""
        return self.to_prefix(*self.padded(rows, pin=self.pin), device)

    def infer(self, model: ALFIA, batch_size: int = 32, collect=None, rows: np.ndarray | None = None,
              on_batch=None):
        """``(rows, collect(output))`` per batch over ``rows`` (default: all cached), the model in eval mode and its
        precision: only the layers above the cache run. ``on_batch(n)``: called after each batch of n texts."""
        collect = collect or collect_outputs
        rows = self.rows if rows is None else np.asarray(rows, dtype=np.int64)
        parts = []
        was = model.training
        model.eval()
        try:
            with torch.inference_mode(), model.precision.autocast():
                for local in bucketed_batches(self.lengths[rows], batch_size, shuffle=False):
                    prefix, mask = self.collate(rows[local], model.device)
                    parts.append((local, collect(model(None, mask, prefix=prefix))))
                    if on_batch is not None:
                        on_batch(len(local))
        finally:
            model.train(was)
        return parts

    def predict_proba(self, model: ALFIA, batch_size: int = 32) -> np.ndarray:
        return assemble_outputs(self.infer(model, batch_size), len(self))[0]
