"""Training settings and the profiles (``PROFILES``: quick, paper and the ablation's).

``paper``: what the paper states (4 fusion layers, LoRA r 16, alpha 16, dropout 0.05 on every layer, max length
512, early stopping on validation AUPRC with patience 5, seed 42); the rest is ours, as the paper does not state it
and the authors' code was not available to check (AdamW, lr 1e-4, weight decay 0.01, linear schedule with 10%
warm-up, clipping 1.0, batch 4, up to 25 epochs).
``quick``: the main job's profile for 2 CPU cores, chosen on set A's validation split (docs/experiments.md):
the backbone frozen (its fused layers cached once per text), the fusion + head trained for 2 epochs on top of
a pooled logistic-regression readout fitted to a tabular teacher's out-of-fold probabilities, no class weight,
Platt scaling fitted on validation; the backbone's maximum length (the default; padding is per batch).
Both profiles recalibrate on the validation split (``calibration="platt"``).
``ablation``: ``ABLATION`` over the quick profile, the default of ``alfia ablate`` (:mod:`alfia.analysis.ablation`).
Each profile also names the tabular baselines' budget at its scale (:class:`Profile`), so that one ``--profile``
chooses the settings of every command.

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
from dataclasses import dataclass

from alfia.codec import (
    DROPOUT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_NUMBER,
    SHARE,
    Config,
    Interval,
    OneOf,
    flatten,
    nested_dataclass,
    setting,
)
from alfia.errors import AlfiaError, SettingError
from alfia.model.alfia import ALFIAConfig
from alfia.model.runtime import PRECISION_HELP, PRECISIONS, unscaled_fp16

CALIBRATIONS = ("none", "platt", "temperature")


@dataclass
class TrainConfig(Config):
    """Every training setting: each field's help and flag are what ``alfia train --help`` shows (the command line
    is generated from them, :func:`alfia.codec.settings_of`)."""

    model: ALFIAConfig = setting(default_factory=ALFIAConfig, help="the model (the paper's: N_f 4, LoRA r 16, alpha "
                                 "16), saved with it")
    epochs: int = setting(25, help="maximum epochs (default: the profile's)", flag="--epochs", check=POSITIVE)
    lr: float = setting(1e-4, help="learning rate of the LoRA adapters (default: the profile's)", flag="--lr",
                        check=POSITIVE_NUMBER)
    weight_decay: float = setting(0.01, help="AdamW weight decay (default 0.01)", flag="--weight-decay",
                                  check=NON_NEGATIVE)
    warmup_ratio: float = setting(0.1, help="share of the optimiser steps spent warming up (default 0.1)",
                                  flag="--warmup", check=DROPOUT)
    grad_clip: float = setting(1.0, help="gradient norm clipping", check=POSITIVE_NUMBER)
    batch_size: int = setting(4, help="training batch per process (default: the profile's)", flag="--batch-size",
                              check=POSITIVE)
    eval_batch_size: int = setting(32, help="stays per batch in validation, caching and the final scoring (default "
                                   "32)", flag="--eval-batch-size", check=POSITIVE)
    patience: int = setting(5, help="epochs without a better validation AUPRC before stopping (default: the "
                            "profile's)", flag="--patience", check=POSITIVE)
    seed: int = setting(42, help="random seed of the initial weights and batch order (default 42)", flag="--seed",
                        check=Interval(int))
    cache_prefix: bool = setting(True, help="with model.lora.layers=k (or no LoRA), compute the frozen bottom layers "
                                 "once per text")
    cache_budget: int | None = setting(None, help="memory the frozen-layer caches (train and validation together) "
                                       "may take, e.g. 8G (default: a tenth of the memory available to the job, the "
                                       "host's or its cgroup's); above it a cache is a file (--cache-dir)",
                                       flag="--cache-budget", check=Interval(int, 0), parse="size")
    cache_dir: str | None = setting(None, help="folder of a frozen-layer cache over its budget, e.g. node-local "
                                    "scratch ($TMPDIR on a cluster node; default: the run folder's .tmp)",
                                    flag="--cache-dir")
    head_lr: float | None = setting(None, help="learning rate of fusion, head and readout (default: the profile's)",
                                    flag="--head-lr", check=POSITIVE_NUMBER)
    # its flag is every model-running command's --precision (alfia.cli.options.add_device)
    precision: str = setting("auto", help=PRECISION_HELP + " (default auto)", check=OneOf(PRECISIONS))
    grad_accum: int = setting(1, help="micro-batches per optimiser step (default 1): the effective batch is "
                              "--batch-size x --grad-accum x processes", flag="--grad-accum", check=POSITIVE)
    gradient_checkpointing: bool = setting(False, help="recompute the backbone's activations in backward: less GPU "
                                           "memory, ~1/3 more compute", flag="--gradient-checkpointing")
    class_weight: bool = setting(True, help="pos_weight = negatives/positives in the loss (default: quick no, paper "
                                 "yes)", flag="--class-weight")
    distill: float = setting(0.0, help="weight of the tabular teacher's out-of-fold probabilities in the target, 0-1 "
                             "(default: quick 1, paper 0)", flag="--distill", check=SHARE)
    calibration: str = setting("none", help="recalibration fitted on the validation split (default platt)",
                               flag="--calibration", check=OneOf(CALIBRATIONS))
    profile: str = setting("custom", help="the profile the settings started from")

    def check(self, path: str) -> None:
        if self.model.max_length is not None and self.model.max_length < 8:
            raise SettingError(path + "model.max_length", f"must be at least 8 tokens to train, got "
                               f"{self.model.max_length}")
        if unscaled_fp16(self.model.dtype, self.precision):
            raise SettingError(path + "precision", f"{self.precision} with {{0}} fp16 trains fp16 weights without a "
                               "gradient scaler (LoRA gradients can underflow silently); use {1} fp16, or {0} bf16",
                               others=(path + "model.dtype", path + "precision"))

    def describe(self) -> str:
        """One line of every setting by its path, for the log (``epochs=2, ..., model.lora=None, ...``)."""
        return ", ".join(f"{k}={v}" for k, v in flatten(self.to_dict()).items())


@dataclass(frozen=True)
class Profile:
    """A named starting point of every command that trains (``--profile``: train, baselines, boost, ablate, bench,
    study; ``ALFIAPredictor(profile=...)``): ``settings`` over TrainConfig's defaults (nested like
    ``TrainConfig.to_dict()``, or by dotted path), ``baselines`` the tabular baselines' budget at the same scale
    (``"quick"``: fixed iteration budgets; ``"paper"``: AutoGluon's defaults, :mod:`alfia.baselines.tabular`) and
    ``help`` what ``--help`` says of it."""

    settings: dict
    baselines: str
    help: str


_QUICK = dict(epochs=2, lr=1e-4, head_lr=1e-4, batch_size=8, patience=2, distill=1.0, class_weight=False,
              calibration="platt", model=dict(max_length=None, lora=None, backbone_dropout=0.0, readout=dict(C=0.3)))
# the ablation's budget (alfia/analysis/ablation.py): the paper's mechanics at the quick profile's CPU budget -- LoRA
# on the top layer, labels with the class-weighted loss, no pooled readout, no teacher, no recalibration -- whose
# readout would otherwise carry every variant alike and hide what the parts of the paper's model contribute
ABLATION = {"model.lora": {"layers": 1, "dropout": 0.0}, "model.readout": None, "head_lr": 3e-4, "distill": 0.0,
            "class_weight": True, "calibration": "none"}

# the one registry of profiles (the command line's --profile choices)
PROFILES: dict[str, Profile] = {
    "paper": Profile(dict(epochs=25, lr=1e-4, batch_size=4, patience=5, calibration="platt",
                          model=dict(max_length=512, lora=dict(layers=None))), "paper",
                     "paper: the paper's settings (LoRA on every layer, 25 epochs) and the full baselines zoo"),
    # chosen on set A's validation split (docs/experiments.md): a frozen backbone, the fusion + head trained
    # from a logistic-regression readout of the fused layers' means, fitted to a tabular teacher's out-of-fold
    # probabilities, no class weight, Platt scaling on validation
    "quick": Profile(_QUICK, "quick", "quick: 2 CPU cores (frozen backbone, readout, teacher, calibration) and the "
                     "baselines' fixed budgets"),
    # ABLATION over the quick profile: applied after it, path by path
    "ablation": Profile({**_QUICK, **ABLATION}, "quick", "ablation: the paper's mechanics at the quick budget "
                        "(LoRA on the top layer, labels, no readout)"),
}


def profile_of(name: str) -> Profile:
    """The registered profile ``name``, or an AlfiaError naming the choices."""
    if name not in PROFILES:
        raise AlfiaError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def make_config(profile: str = "quick", **overrides) -> TrainConfig:
    """The profile's settings with ``overrides`` on top: field names, dotted paths (``"model.lora.r"``) or nested
    dicts (``model={"lora": {"r": 8}}``). ``None`` is a value: ``model.lora=None`` turns LoRA off,
    ``model.lora.layers=None`` puts it on every layer; ``{}`` turns an optional part on with its defaults."""
    settings = TrainConfig().to_dict()
    for layer in (profile_of(profile).settings, overrides):
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
