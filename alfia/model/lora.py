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

Other encoder families name their projections differently (DistilBERT ``q_lin``…, DeBERTa ``query_proj``…, MPNet
``attn.q``…, ModernBERT ``Wqkv``/``Wo``): ``target_modules=None`` (the default) takes the backbone family's own
targets from :mod:`alfia.model.families`, which select the same modules as the paper's string does in BERT. Given
targets (``--lora-targets``) must cover the four attention projections of every adapted layer; ``("all-linear",)``
adapts every linear layer.

``layers=None`` adapts every layer; ``layers=k`` only the top k (peft ``layers_to_transform``), leaving the
lower ``L - k`` layers entirely frozen, so their outputs can be computed once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from alfia.codec import DROPOUT, POSITIVE, Config, setting
from alfia.errors import AlfiaError, SettingError
from alfia.model.families import Family, check_lora_coverage


@dataclass
class LoraSettings(Config):
    r: int = setting(16, help="LoRA rank (default 16; turns LoRA on)", flag="--lora-r", check=POSITIVE)
    alpha: int = setting(16, help="LoRA scaling alpha (default 16; turns LoRA on)", flag="--lora-alpha",
                         check=POSITIVE)
    dropout: float = setting(0.05, help="LoRA dropout (default 0.05; turns LoRA on)", flag="--lora-dropout",
                             check=DROPOUT)
    target_modules: tuple[str, ...] | None = setting(
        None, help="the modules that get LoRA, comma-separated (default: the backbone family's query, key, value "
        "and attention-output projections, docs/model.md; turns LoRA on)", flag="--lora-targets", parse="list")
    layers: int | None = setting(None, help="LoRA on the top k layers, or 'all' (default: the profile's; turns LoRA "
                                 "on)", flag="--lora-layers", check=POSITIVE, parse="layers")

    def check(self, path: str) -> None:
        targets = self.target_modules
        if targets is not None and (not targets or not all(isinstance(t, str) and t.strip() for t in targets)):
            raise SettingError(path + "target_modules", "must be a non-empty list of module names, e.g. "
                               "query,key,value,output.dense (or unset: the backbone family's)")

    def layers_to_transform(self, num_layers: int) -> list[int] | None:
        """peft's ``layers_to_transform``: None (all layers) or the indices of the top ``layers`` layers."""
        self.validate("model.lora.")
        if self.layers is not None and self.layers > num_layers:
            raise SettingError("model.lora.layers", f"is {self.layers} but the backbone has only {num_layers} "
                               f"layers; use at most {num_layers}")
        return None if self.layers is None else list(range(num_layers - self.layers, num_layers))

    def peft_config(self, num_layers: int, family: Family):
        """peft's LoraConfig; the targets are ``target_modules``, or the family's when unset."""
        from peft import LoraConfig

        targets = self.target_modules or family.lora_targets
        target = "all-linear" if tuple(targets) == ("all-linear",) else list(targets)
        layers = self.layers_to_transform(num_layers)
        # peft finds a module's layer index after the name of the layer list ("layer", ModernBERT's "layers")
        pattern = family.layers_path.rsplit(".", 1)[-1] if layers is not None else None
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=target,
                          layers_to_transform=layers, layers_pattern=pattern, bias="none")


def num_layers_of(backbone: nn.Module) -> int:
    return int(backbone.config.num_hidden_layers)


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def apply_lora(backbone: nn.Module, settings: LoraSettings, family: Family):
    """Freeze ``backbone`` (of ``family``) and wrap it in a peft ``PeftModel`` with LoRA adapters (A, B trainable).

    peft modifies ``backbone`` in place (its target linears become LoRA layers). Targets that match nothing, or
    leave any of an adapted layer's attention projections without LoRA, are a SettingError naming what was found.
    """
    from peft import NoMatchingPeftModuleError, get_peft_model

    num_layers = num_layers_of(backbone)
    if family.shares_layers and settings.layers is not None:
        raise SettingError("model.lora.layers", f"cannot be {settings.layers} for {family.name}: its layers share "
                           "one set of weights, so LoRA goes on all of them or none (leave it unset)")
    targets = settings.target_modules or family.lora_targets
    config = settings.peft_config(num_layers, family)
    freeze(backbone)
    try:
        model = get_peft_model(backbone, config)
    except NoMatchingPeftModuleError:
        raise SettingError("model.lora.target_modules", f"{','.join(targets)} matches no module of this "
                           f"{family.name} backbone ({family.describe()}); leave it unset for "
                           f"{','.join(family.lora_targets)}") from None
    except ValueError as exc:  # peft's other refusals (e.g. a target that is not a layer it can adapt)
        raise AlfiaError(f"LoRA cannot be applied to this backbone ({str(exc).splitlines()[0]}); check "
                         "target_modules") from None
    check_lora_coverage(backbone, family, targets, family.lora_layers(num_layers, config.layers_to_transform))
    return model


def lora_target_names(model: nn.Module) -> list[str]:
    """Names (relative to the original backbone) of the modules that carry LoRA adapters in ``model``."""
    names = []
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and hasattr(module, "base_layer"):
            names.append(name.removeprefix("base_model.model."))
    return names
