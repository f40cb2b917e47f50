"""Where a model runs and in what precision: one device for the whole run, and one precision policy.

Device (``--device``): ``auto`` (the default) is this process's GPU when CUDA is available (under ``torchrun``,
the GPU of its ``LOCAL_RANK``), else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name one.

Precision (``--precision``) is how the model computes, not how its weights are stored (that is the model's
``dtype``, :data:`WEIGHT_DTYPES`):

=========  =============================================================================================
``auto``   CUDA: bf16 autocast on GPUs that compute bf16 natively (compute capability >= 8.0: A100, H100,
           RTX 30xx/40xx), else fp16 autocast with a gradient scaler (V100, T4); TF32 matmuls on.
           CPU: fp32, as ever.
``fp32``   full fp32 everywhere, TF32 off: the reference maths.
``tf32``   fp32 tensors, TF32 matmuls (CUDA only).
``bf16``   bf16 autocast (CUDA with native bf16, or a CPU: slow without AVX-512 BF16 / AMX); TF32 on (CUDA).
``fp16``   fp16 autocast + gradient scaler (CUDA only); TF32 on.
=========  =============================================================================================

A trained run is scored in its own precision unless another is asked for (:func:`run_precision`; the default of
``Run.load``, ``ALFIAPredictor.load``, the service and every command that loads a run), so that its threshold and
calibrator meet the outputs they were fitted on.

Under autocast the backbone's matmuls run in the low precision while softmaxes, norms and the loss stay fp32
(torch's autocast lists); the fusion, head and readout keep fp32 weights and read whatever dtype arrives.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from alfia import distributed as dist
from alfia.errors import AlfiaError

DEVICE_HELP = "auto (the GPU when CUDA is available, else the CPU), cpu, cuda or cuda:N"
PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16")
PRECISION_HELP = ("auto (CUDA: bf16 autocast where the GPU has it natively, else fp16 with a gradient scaler, "
                  "TF32 on; CPU: fp32), fp32 (all off), tf32, bf16 or fp16")
RUN_PRECISION_HELP = "a trained run's own precision where this device computes it (else auto); a new run: auto"
WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The device that ``spec`` names on this machine; a GPU that is not there is one clear error."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = "auto" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        return dist.device()
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise AlfiaError(f"unknown device {spec!r}; use {DEVICE_HELP}") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise AlfiaError(f"device {spec!r} is not supported; use {DEVICE_HELP}")
    if not torch.cuda.is_available():
        raise AlfiaError(f"device {spec!r} asked for, but CUDA is not available on this machine; use --device cpu "
                         "(or auto)")
    index = dist.local_rank() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise AlfiaError(f"device {spec!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s); "
                         f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return torch.device("cuda", index)


def use_device(device: torch.device) -> torch.device:
    """Make ``device`` this process's current CUDA device when it is a GPU (a no-op on the CPU): what torch puts on
    "cuda" without an index, the DataLoader's pin-memory thread and every lazily created CUDA context then use it,
    so that a process on ``cuda:1`` opens nothing on GPU 0."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def native_bf16(device: torch.device) -> bool:
    """bf16 computed by the hardware itself: compute capability >= 8.0 on CUDA (``torch.cuda.is_bf16_supported``
    also counts slow emulation on older GPUs); any CPU runs bf16 autocast."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return True


@dataclass(frozen=True)
class Precision:
    """A resolved precision policy on one device: ``name`` is one of PRECISIONS other than ``auto``."""

    name: str = "fp32"
    device_type: str = "cpu"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_grad_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.name == "fp16"

    @property
    def tf32(self) -> bool:
        return self.device_type == "cuda" and self.name != "fp32"

    def autocast(self):
        """The autocast context of this policy (a no-op for fp32 and tf32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)

    def apply(self) -> Precision:
        """Switch CUDA's TF32 matmuls on or off for this process (they are a global setting of torch)."""
        if self.device_type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32
        return self

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(self.device_type) if self.uses_grad_scaler else None


def resolve_precision(name: str | None, device: torch.device) -> Precision:
    """The policy ``name`` means on ``device`` (see the module docstring); a choice the device cannot honour is one
    clear error, never a silent slow emulation."""
    name = "auto" if name is None else str(name).lower()
    if name not in PRECISIONS:
        raise AlfiaError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if name == "auto":
        name = ("bf16" if native_bf16(device) else "fp16") if cuda else "fp32"
    if not cuda and name in ("tf32", "fp16"):
        raise AlfiaError(f"precision {name} is for CUDA GPUs; on a CPU use fp32 (the default) or bf16")
    if cuda and name == "bf16" and not native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        raise AlfiaError(f"this GPU has no native bf16 (compute capability {major}.{minor} < 8.0); use --precision "
                         "fp16 (or auto)")
    return Precision(name, device.type)


def run_precision(trained: str | None, device: torch.device) -> str:
    """The precision a run trained in ``trained`` (its config.json's ``runtime.precision``) is scored in on
    ``device`` when none is asked for: its own where this device computes it, so that its threshold and calibrator
    meet the outputs they were fitted on; else what ``auto`` chooses here (an fp16 or TF32 run on a CPU: fp32; a
    bf16 run on a GPU without native bf16: fp16). A run that names none (older runs) was fp32."""
    name = "fp32" if trained is None else str(trained).lower()
    if name not in PRECISIONS:
        name = "auto"
    try:
        return resolve_precision(name, device).name
    except AlfiaError:   # this device cannot compute the run's precision
        return resolve_precision("auto", device).name


def unscaled_fp16(weights: str, precision: str) -> bool:
    """fp16 weights trained under a precision without a gradient scaler (fp32, tf32: no autocast), whose LoRA
    gradients can underflow to zero silently: training refuses it (``fp16`` precision scales the loss; bf16 weights
    have fp32's range)."""
    return weights == "fp16" and precision in ("fp32", "tf32")


def weight_dtype(name: str) -> torch.dtype:
    if name not in WEIGHT_DTYPES:
        raise AlfiaError(f"unknown weight dtype {name!r}; use one of {', '.join(WEIGHT_DTYPES)}")
    return WEIGHT_DTYPES[name]
