"""Training settings and the two profiles.

``paper``: the paper's and the authors' code's settings (AdamW, lr 1e-4, weight decay 0.01, linear schedule
with 10% warm-up, clipping 1.0, batch 4, max length 512, up to 25 epochs, patience 5, LoRA on every layer).
``quick``: the main job's profile for 2 CPU cores: fewer epochs, larger batches, the length taken from the
data, LoRA on the top layers only (the bottom layers stay frozen, so no gradient flows through them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from alfia.errors import AlfiaError, SettingError


@dataclass
class TrainConfig:
    epochs: int = 25
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 4
    eval_batch_size: int = 32
    max_length: int | None = 512  # None: the longest training text, capped at the backbone's limit
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
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, dict] = {
    "paper": dict(epochs=25, lr=1e-4, batch_size=4, max_length=512, patience=5, lora_layers=None),
    "quick": dict(epochs=2, lr=1e-4, head_lr=3e-4, batch_size=8, max_length=None, patience=2, lora_layers=1,
                  lora_dropout=0.0, backbone_dropout=0.0),
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
