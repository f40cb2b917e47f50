"""Data-parallel training with no separate code path: under ``torchrun --nproc_per_node=N`` (or ``accelerate
launch``) the environment names a world size above 1 and training runs as DDP, NCCL on GPUs and gloo on the CPU (the
backend follows the run's ``--device``, not what the machine has).
On its own, every helper here is a no-op for a single process.

Every helper that communicates is a collective: all ranks call it, in the same order, or the run hangs. The trainer
keeps that rule by giving every rank the same plan of steps (``alfia.training.batching.epoch_plan``) and by calling
these helpers outside any ``if is_main()``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist


def world_size() -> int:
    return torch_dist.get_world_size() if torch_dist.is_initialized() else 1


def rank() -> int:
    return torch_dist.get_rank() if torch_dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def on_cuda(spec: str | torch.device | None = "auto") -> bool:
    """Whether the device ``spec`` names (``auto``/None, ``cpu``, ``cuda``, ``cuda:N``) is a GPU on this machine:
    ``auto`` is one when CUDA is available; a named device is what it names (the model's runtime checks it)."""
    spec = "auto" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        return torch.cuda.is_available()
    return spec.split(":", 1)[0] == "cuda"


def backend(spec: str | torch.device | None = "auto") -> str:
    """The process group's backend for a run on the device ``spec``: NCCL on GPUs, gloo on the CPU (also on a machine
    that has GPUs: ``--device cpu`` under torchrun)."""
    return "nccl" if on_cuda(spec) else "gloo"


def setup(device: str | torch.device | None = "auto") -> None:
    """Under torchrun, this process's group on the backend of the run's ``device`` (and, on a GPU, its LOCAL_RANK's
    GPU as the current one); alone, nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch_dist.is_initialized():
        name = backend(device)
        if name == "nccl":
            torch.cuda.set_device(local_rank())
        torch_dist.init_process_group(backend=name)


def teardown() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def local_rank() -> int:
    """This process's place on its node (torchrun's LOCAL_RANK; 0 alone)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def device() -> torch.device:
    """This process's device: its GPU (LOCAL_RANK) when CUDA is available, else the CPU."""
    return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")


def wrap(model: torch.nn.Module, on: torch.device) -> torch.nn.Module:
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[on.index] if on.type == "cuda" else None)


def barrier() -> None:
    if world_size() > 1:
        torch_dist.barrier()


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (pickled between this run's own processes only)."""
    if world_size() == 1:
        return obj
    box = [obj if is_main() else None]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj) -> list | None:
    """Every rank's ``obj`` in rank order, on rank 0 (None elsewhere)."""
    if world_size() == 1:
        return [obj]
    box = [None] * world_size() if is_main() else None
    torch_dist.gather_object(obj, box, dst=0)
    return box


def all_sum(values: list[float], on: torch.device) -> list[float]:
    """The sums over ranks of a few numbers, on every rank (one all-reduce)."""
    if world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=on)
    torch_dist.all_reduce(t)
    return t.tolist()
