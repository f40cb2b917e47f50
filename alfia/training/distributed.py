"""Data-parallel training with no separate code path: under ``torchrun --nproc_per_node=N`` (or ``accelerate
launch``) the environment names a world size above 1 and training runs as DDP, NCCL on GPUs and gloo on CPU.
On its own, every helper here is a no-op for a single process."""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as torch_dist


def world_size() -> int:
    return torch_dist.get_world_size() if torch_dist.is_initialized() else 1


def rank() -> int:
    return torch_dist.get_rank() if torch_dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch_dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend=backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def teardown() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device().index] if device().type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def barrier() -> None:
    if world_size() > 1:
        torch_dist.barrier()


def broadcast_pair(a: float, b: int) -> tuple[float, int]:
    """Rank 0's early-stopping state, shared so that every rank stops at the same epoch."""
    if world_size() == 1:
        return a, b
    t = torch.tensor([float(a), float(b)], dtype=torch.float64, device=device())
    torch_dist.broadcast(t, src=0)
    return float(t[0]), int(t[1])


def bf16_supported() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return True  # CPU autocast supports bf16; it pays where the CPU has AVX-512 BF16 / AMX


@contextlib.contextmanager
def autocast(enabled: bool):
    if enabled and bf16_supported():
        with torch.autocast(device_type=device().type, dtype=torch.bfloat16):
            yield
    else:
        yield
