"""int8 dynamic quantisation of an ALFIA model for CPU inference (``ALFIA.predict_proba(..., quantize=True)``).

The copy has its LoRA adapters merged into the base weights (``W0 + B A``, peft ``merge_and_unload``) and every
``nn.Linear`` of the backbone replaced by ``torch.ao.quantization.quantize_dynamic``'s int8 version: weights
int8 per tensor, activations quantised per batch at run time, int32 accumulation. Embeddings, LayerNorm,
attention softmax, the fusion module and the head stay fp32. The original model is not touched.

The copy is kept (one per model) and rebuilt when any parameter of the model changed in place (an optimizer
step, a weight load), so repeated calls on a fixed model pay the quantisation once.
"""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import nn

from alfia.errors import AlfiaError

_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> tuple:
    return tuple((id(p), p._version) for p in model.parameters())


def quantize_linears(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` by its int8 dynamic version (in place; returned)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():   # torch.ao.quantization is deprecated in favour of torchao; it still works
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)


def build_quantized_copy(model) -> nn.Module:
    """A new eval-mode ALFIA with the backbone merged and int8-quantised (CPU only)."""
    if model.device.type != "cpu":
        raise AlfiaError("int8 quantisation is a CPU inference path; on a GPU predict without quantize")
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    if hasattr(clone.backbone, "merge_and_unload"):   # a peft model: fold W0 + B A into one weight
        clone.backbone = clone.backbone.merge_and_unload()
    quantize_linears(clone.backbone)
    return clone


def quantized_copy(model) -> nn.Module:
    """The cached int8 copy of ``model``, rebuilt when the model's weights changed since it was made."""
    key = _fingerprint(model)
    cached = _COPIES.get(model)
    if cached is None or cached[0] != key:
        cached = (key, build_quantized_copy(model))
        _COPIES[model] = cached
    return cached[1]
