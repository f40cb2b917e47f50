"""Which GPU and which process-group backend a run uses, on a machine with GPUs (faked: torch.cuda and
torch.distributed record what they are asked, so that these run on a CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as torch_dist

from alfia import distributed as dist
from alfia.model.runtime import Precision
from alfia.training import trainer


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with 2 (fake) GPUs of compute capability 9.0; ``calls`` records set_device and
    init_process_group."""
    calls = {"set_device": [], "backend": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls["set_device"].append(
        torch.device("cuda", device) if isinstance(device, int) else torch.device(device)))
    monkeypatch.setattr(torch_dist, "is_initialized", lambda: False)
    monkeypatch.setattr(torch_dist, "init_process_group",
                        lambda backend=None, **kwargs: calls["backend"].append(backend))
    return calls


@pytest.mark.parametrize("device,backend,current", [("cpu", "gloo", []), ("auto", "nccl", [1]),
                                                     ("cuda", "nccl", [1]), (None, "nccl", [1])])
def test_under_torchrun_the_backend_follows_the_device_not_the_machine(monkeypatch, two_gpus, device, backend,
                                                                        current):
    """Issue 30, item 1, row "torchrun ... alfia train --device cpu on a machine that has GPUs": gloo for the CPU
    (NCCL cannot carry CPU tensors: a raw torch error at the first collective), NCCL on GPUs."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    dist.setup(device)
    assert two_gpus["backend"] == [backend]
    assert two_gpus["set_device"] == [torch.device("cuda", i) for i in current]


def test_train_passes_its_device_to_the_process_group(monkeypatch):
    """Issue 30, item 1 (the same row): ``train(..., device="cpu")`` sets the group up for the CPU."""
    asked = []

    class Stop(Exception):
        pass

    def setup(device="auto"):
        asked.append(device)
        raise Stop

    monkeypatch.setattr(dist, "setup", setup)
    with pytest.raises(Stop):
        trainer.train(None, "unused", None, device="cpu")
    assert asked == ["cpu"]


def test_a_single_process_on_the_second_gpu_makes_it_the_current_device(two_gpus):
    """Issue 30, item 1, row "a single process on --device cuda:1 also creates a context on GPU 0": the run's GPU
    becomes the current CUDA device (the DataLoader's pin thread and every lazily opened context use the current
    one), in training (the trainer's device) and wherever a model is put on its runtime (predict, serve)."""
    assert dist.world_size() == 1
    assert trainer._training_device("cuda:1") == torch.device("cuda", 1)
    assert two_gpus["set_device"] == [torch.device("cuda", 1)]

    from alfia.model.alfia import ALFIA

    model = ALFIA.__new__(ALFIA)   # no weights needed: only the runtime step is checked
    torch.nn.Module.__init__(model)
    model.to = lambda device: model   # no real GPU to move to
    assert model.to_runtime("cuda:1", "fp32") is model
    assert model.precision == Precision("fp32", "cuda")
    assert two_gpus["set_device"] == [torch.device("cuda", 1)] * 2
    # the CPU sets nothing
    trainer._training_device("cpu")
    assert two_gpus["set_device"] == [torch.device("cuda", 1)] * 2
