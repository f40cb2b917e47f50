"""Training settings and the two profiles.

``paper``: what the paper states (4 fusion layers, LoRA r 16, alpha 16, dropout 0.05 on every layer, max length
512, early stopping on validation AUPRC with patience 5, seed 42); the rest is ours, as the paper does not state it
and the authors' code was not available to check (AdamW, lr 1e-4, weight decay 0.01, linear schedule with 10%
warm-up, clipping 1.0, batch 4, up to 25 epochs).
``quick``: the main job's profile for 2 CPU cores, chosen on set A's validation split (docs/experiments.md):
the backbone frozen (its fused layers cached once per text), the fusion + head trained for 2 epochs on top of
a pooled logistic-regression readout fitted to a tabular teacher's out-of-fold probabilities, no class weight,
Platt scaling fitted on validation; the backbone's maximum length (the default; padding is per batch).
Both profiles recalibrate on the validation split (``calibration="platt"``).

One config tree: the model's own config (:class:`alfia.model.alfia.ALFIAConfig`, saved with the model) is nested
as ``TrainConfig.model``; a setting is named by its path, e.g. ``model.fusion.num_fusion_layers``::

    make_config("quick", epochs=1, **{"model.fusion.num_fusion_layers": 2})
    make_config("paper", model={"lora": {"r": 8}, "max_length": 256})

A path into an optional part that is off (``model.lora.r`` in the quick profile, whose ``model.lora`` is None)
turns that part on with its defaults; ``model.lora=None`` turns it off.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field

from alfia.codec import config_from_dict, flatten, nested_dataclass
from alfia.errors import AlfiaError, SettingError
from alfia.model.alfia import ALFIAConfig
from alfia.model.runtime import PRECISIONS, WEIGHT_DTYPES

CALIBRATIONS = ("none", "platt", "temperature")


@dataclass
class TrainConfig:
    model: ALFIAConfig = field(default_factory=ALFIAConfig)  # the paper's model: N_f 4, LoRA r 16, alpha 16
    epochs: int = 25
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 4
    eval_batch_size: int = 32
    patience: int = 5
    seed: int = 42
    cache_prefix: bool = True  # with model.lora.layers=k, compute the frozen bottom layers once per text
    cache_budget: int | None = None  # bytes of memory the frozen-layer cache may take, else a file (None: a share
    #                                  of the available memory, alfia.training.prefix_cache)
    head_lr: float | None = None  # learning rate of fusion + head (+ readout) (None: lr)
    precision: str = "auto"  # alfia.model.runtime: auto (CUDA: bf16/fp16 autocast, TF32; CPU: fp32), fp32, tf32, ...
    grad_accum: int = 1  # micro-batches per optimiser step: the effective batch is batch_size x grad_accum x ranks
    gradient_checkpointing: bool = False  # recompute the backbone's activations in backward (less GPU memory)
    class_weight: bool = True  # pos_weight = negatives/positives in the loss (paper); shifts every logit
    distill: float = 0.0  # weight of the tabular teacher's out-of-fold probabilities in the target (0: labels only)
    calibration: str = "none"  # fitted on the validation split after training: none, platt or temperature
    profile: str = "custom"

    def validate(self) -> TrainConfig:
        """Ranges, each error naming the setting's path (the CLI translates it to its flag)."""
        m = self.model
        positive = {name: getattr(self, name) for name in
                    ("epochs", "batch_size", "eval_batch_size", "patience", "grad_accum")}
        positive["model.fusion.num_fusion_layers"] = m.fusion.num_fusion_layers
        if m.lora is not None:
            positive.update({"model.lora.r": m.lora.r, "model.lora.alpha": m.lora.alpha})
            if m.lora.layers is not None:
                positive["model.lora.layers"] = m.lora.layers
        for name, value in positive.items():
            if value < 1:
                raise SettingError(name, "must be at least 1")
        for name in ("lr", "head_lr"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingError(name, "must be positive")
        if m.max_length is not None and m.max_length < 8:
            raise SettingError("model.max_length", "must be at least 8 tokens")
        if not 0.0 <= self.distill <= 1.0:
            raise SettingError("distill", "must be between 0 and 1")
        if m.readout is not None and m.readout.C <= 0:
            raise SettingError("model.readout.C", "must be positive")
        if self.calibration not in CALIBRATIONS:
            raise SettingError("calibration", f"must be one of {', '.join(CALIBRATIONS)}")
        if self.precision not in PRECISIONS:
            raise SettingError("precision", f"must be one of {', '.join(PRECISIONS)}")
        if m.dtype not in WEIGHT_DTYPES:
            raise SettingError("model.dtype", f"must be one of {', '.join(WEIGHT_DTYPES)}")
        if m.lora is not None and not 0.0 <= m.lora.dropout < 1.0:
            raise SettingError("model.lora.dropout", "must be in [0, 1)")
        if self.weight_decay < 0:
            raise SettingError("weight_decay", "must not be negative")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise SettingError("warmup_ratio", "must be in [0, 1)")
        if self.cache_budget is not None and self.cache_budget < 0:
            raise SettingError("cache_budget", "must not be negative")
        return self

    def describe(self) -> str:
        """One line of every setting by its path, for the log (``epochs=2, ..., model.lora=None, ...``)."""
        return ", ".join(f"{k}={v}" for k, v in flatten(self.to_dict()).items())

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(),
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}}

    @classmethod
    def from_dict(cls, data: dict, where: str = "training config", remedy: str = "fix or re-save it") -> TrainConfig:
        return config_from_dict(cls, data, where, remedy)


# each profile: settings over TrainConfig's defaults, nested like TrainConfig.to_dict()
PROFILES: dict[str, dict] = {
    "paper": dict(epochs=25, lr=1e-4, batch_size=4, patience=5, calibration="platt",
                  model=dict(max_length=512, lora=dict(layers=None))),
    # chosen on set A's validation split (docs/experiments.md): a frozen backbone, the fusion + head trained
    # from a logistic-regression readout of the fused layers' means, fitted to a tabular teacher's out-of-fold
    # probabilities, no class weight, Platt scaling on validation
    "quick": dict(epochs=2, lr=1e-4, head_lr=1e-4, batch_size=8, patience=2, distill=1.0, class_weight=False,
                  calibration="platt",
                  model=dict(max_length=None, lora=None, backbone_dropout=0.0, readout=dict(C=0.3))),
}


def make_config(profile: str = "quick", **overrides) -> TrainConfig:
    """The profile's settings with ``overrides`` on top: field names, dotted paths (``"model.lora.r"``) or nested
    dicts (``model={"lora": {"r": 8}}``). ``None`` is a value: ``model.lora=None`` turns LoRA off,
    ``model.lora.layers=None`` puts it on every layer; ``{}`` turns an optional part on with its defaults."""
    if profile not in PROFILES:
        raise AlfiaError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    settings = TrainConfig().to_dict()
    for layer in (PROFILES[profile], overrides):
        for path, value in _paths(layer):
            _set(settings, TrainConfig, path, value)
    settings["profile"] = profile
    return TrainConfig.from_dict(settings, "training settings", "fix the setting").validate()


def _paths(settings: dict, prefix: tuple[str, ...] = ()):
    """``(path, value)`` for every leaf of possibly nested, possibly dotted settings (a config dataclass counts
    as its dict); an empty dict is a leaf."""
    for key, value in settings.items():
        path = prefix + tuple(key.split("."))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
        if isinstance(value, dict) and value:
            yield from _paths(value, path)
        else:
            yield path, value


def _set(settings: dict, cls, path: tuple[str, ...], value, done: tuple[str, ...] = ()) -> None:
    name, where = path[0], ".".join(done + path)
    if name not in {f.name for f in dataclasses.fields(cls)}:
        raise AlfiaError(f"unknown training setting {where!r}; see alfia.training.config.TrainConfig")
    part = nested_dataclass(typing.get_type_hints(cls)[name])
    if len(path) == 1:
        if part is not None and isinstance(value, dict):  # {}: the part on, as it is or with its defaults
            settings[name] = settings.get(name) or {}
        else:
            settings[name] = copy.deepcopy(value)
        return
    if part is None:
        raise AlfiaError(f"unknown training setting {where!r}: {'.'.join(done + (name,))} has no parts")
    if settings.get(name) is None:  # a setting inside an optional part that is off turns the part on
        settings[name] = {}
    _set(settings[name], part, path[1:], value, done + (name,))
