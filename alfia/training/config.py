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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from alfia.errors import AlfiaError, SettingError

CALIBRATIONS = ("none", "platt", "temperature")


@dataclass
class TrainConfig:
    epochs: int = 25
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 4
    eval_batch_size: int = 32
    max_length: int | None = 512  # None: the backbone's maximum (capped at 512): headroom for longer texts
    patience: int = 5
    seed: int = 42
    fusion_layers: int = 4
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_layers: int | None = None  # None: every layer; k: the top k layers only
    cache_prefix: bool = True  # with lora_layers=k, compute the frozen bottom layers once per text
    backbone_dropout: float | None = None  # None: the backbone's own dropout; 0 halves a CPU training step
    head_dropout: float = 0.1  # dropout of the fusion module and the classifier head (paper: 0.1)
    head_lr: float | None = None  # learning rate of fusion + head (None: lr)
    bf16: bool = False  # autocast where the device supports it
    class_weight: bool = True  # pos_weight = negatives/positives in the loss (paper); shifts every logit
    distill: float = 0.0  # weight of the tabular teacher's out-of-fold probabilities in the target (0: labels only)
    readout: bool = False  # add the pooled linear readout (alfia.model.readout), started at a logistic regression
    readout_c: float = 0.3  # inverse L2 strength of that starting logistic regression
    calibration: str = "none"  # fitted on the validation split after training: none, platt or temperature
    profile: str = "custom"

    def validate(self) -> TrainConfig:
        positive = ("epochs", "batch_size", "eval_batch_size", "fusion_layers", "lora_r", "lora_alpha", "patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingError(name, "must be at least 1")
        for name in ("lr", "head_lr"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingError(name, "must be positive")
        if self.max_length is not None and self.max_length < 8:
            raise SettingError("max_length", "must be at least 8 tokens")
        if not 0.0 <= self.distill <= 1.0:
            raise SettingError("distill", "must be between 0 and 1")
        if self.readout_c <= 0:
            raise SettingError("readout_c", "must be positive")
        if self.calibration not in CALIBRATIONS:
            raise SettingError("calibration", f"must be one of {', '.join(CALIBRATIONS)}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, dict] = {
    "paper": dict(epochs=25, lr=1e-4, batch_size=4, max_length=512, patience=5, lora_layers=None,
                  calibration="platt"),
    # chosen on set A's validation split (docs/experiments.md): a frozen backbone, the fusion + head trained
    # from a logistic-regression readout of the fused layers' means, fitted to a tabular teacher's out-of-fold
    # probabilities, no class weight, Platt scaling on validation
    "quick": dict(epochs=2, lr=1e-4, head_lr=1e-4, batch_size=8, max_length=None, patience=2, lora=False,
                  backbone_dropout=0.0, readout=True, readout_c=0.3, distill=1.0, class_weight=False,
                  calibration="platt"),
}


def make_config(profile: str = "quick", **overrides) -> TrainConfig:
    if profile not in PROFILES:
        raise AlfiaError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise AlfiaError(f"unknown training settings: {', '.join(sorted(unknown))}")
    values = {**PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None}, "profile": profile}
    return TrainConfig(**values).validate()
