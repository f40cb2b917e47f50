"""Low-Rank Adaptation of the backbone through peft (paper section 2.3.4, eq. 20: ``h = W0 x + B A x``).

Paper setting (section 3.1): ``r=16, alpha=16, dropout=0.05, target_modules="query,key,value,output.dense"``.

peft selects a module when its full name equals a target or ENDS WITH ``"." + target``. In BERT and RoBERTa
(module names ``encoder.layer.<i>.…``) the default targets therefore select, in every transformed layer i,
these six linear layers::

    encoder.layer.<i>.attention.self.query
    encoder.layer.<i>.attention.self.key
    encoder.layer.<i>.attention.self.value
    encoder.layer.<i>.attention.output.dense     # attention output projection  ("output.dense")
    encoder.layer.<i>.output.dense               # FFN down-projection (4H -> H) ("output.dense" too)

that is, q, k, v, the attention output projection and the FFN output projection; NOT
``encoder.layer.<i>.intermediate.dense`` (FFN up-projection) and NOT ``pooler.dense``.
(:func:`lora_target_names` lists them for any model; ``tests/model/test_alfia.py`` checks this list.)

Other encoders name their projections differently (DistilBERT ``q_lin``…, DeBERTa ``query_proj``…): pass
their names in ``target_modules``, or ``("all-linear",)`` for every linear layer.

``layers=None`` adapts every layer; ``layers=k`` only the top k (peft ``layers_to_transform``), leaving the
lower ``L - k`` layers entirely frozen, so their outputs can be computed once and cached.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from alfia.codec import config_from_dict
from alfia.errors import AlfiaError

DEFAULT_TARGET_MODULES = ("query", "key", "value", "output.dense")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    layers: int | None = None

    def validate(self, num_layers: int | None = None) -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise AlfiaError(f"LoRA rank r must be a positive integer, got {self.r!r}")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise AlfiaError(f"LoRA alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise AlfiaError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules or not all(isinstance(t, str) and t for t in self.target_modules):
            raise AlfiaError("LoRA target_modules must be a non-empty list of module names, "
                             "e.g. query,key,value,output.dense")
        if self.layers is not None:
            if not isinstance(self.layers, int) or self.layers < 1:
                raise AlfiaError(f"LoRA layers must be a positive number of top layers, got {self.layers!r}")
            if num_layers is not None and self.layers > num_layers:
                raise AlfiaError(f"LoRA layers={self.layers} but the backbone has only {num_layers} layers; "
                                 f"use at most {num_layers}")

    def layers_to_transform(self, num_layers: int) -> list[int] | None:
        """peft's ``layers_to_transform``: None (all layers) or the indices of the top ``layers`` layers."""
        self.validate(num_layers)
        return None if self.layers is None else list(range(num_layers - self.layers, num_layers))

    def peft_config(self, num_layers: int):
        from peft import LoraConfig

        targets = self.target_modules
        target = "all-linear" if tuple(targets) == ("all-linear",) else list(targets)
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=target,
                          layers_to_transform=self.layers_to_transform(num_layers), bias="none")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "LoRA settings") -> LoraSettings:
        return config_from_dict(cls, data, where)


def num_layers_of(backbone: nn.Module) -> int:
    return int(backbone.config.num_hidden_layers)


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def apply_lora(backbone: nn.Module, settings: LoraSettings):
    """Freeze ``backbone`` and wrap it in a peft ``PeftModel`` with LoRA adapters (A, B trainable).

    peft modifies ``backbone`` in place (its target linears become LoRA layers); the returned PeftModel's
    ``forward`` passes keyword arguments through to the backbone.
    """
    from peft import get_peft_model

    freeze(backbone)
    config = settings.peft_config(num_layers_of(backbone))
    try:
        model = get_peft_model(backbone, config)
    except ValueError as exc:
        raise AlfiaError(f"LoRA cannot be applied to this backbone ({str(exc).splitlines()[0]}); set "
                         "target_modules to module names of this model") from None
    return model


def lora_target_names(model: nn.Module) -> list[str]:
    """Names (relative to the original backbone) of the modules that carry LoRA adapters in ``model``."""
    names = []
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):
            names.append(name.removeprefix("base_model.model."))
    return names
