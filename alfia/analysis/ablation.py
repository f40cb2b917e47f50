"""``alfia ablate``: what each part of ALFIA contributes, on one cohort and its fixed split.

The variants share the paper's mechanics at the quick profile's CPU budget (``ABLATION_BASE``: LoRA on the top
layer, labels with the class-weighted loss, no pooled readout, no teacher, no recalibration): the default quick
profile's readout would carry every variant alike and hide what the parts of the paper's model contribute.

Variants (first backbone; every further ``--backbone`` gets only the default variant, for Fig. 3):

==============  ==========================================================================================
default         pre-trained backbone, LoRA on the top layers (quick profile), N_f = 4, fusion + head
random-init     the same architecture randomly initialised (written to ``OUT/_backbones``), otherwise default
no-lora         the backbone frozen: only the fusion module and the head are trained
nf1 nf2 nf6     N_f = 1, 2, 6 fused layers (a value above the backbone's depth is skipped, with the reason)
mean-pool       no fusion: the plain attention-mask mean of the last layer's tokens goes straight to the head
                (same LoRA, head, optimiser and early stopping; the run keeps no model/ folder, its best
                epoch's predictions and metrics are written exactly as ``finish_run`` writes them)
==============  ==========================================================================================

Each variant is a run folder ``OUT/<name>`` (config.json, history.jsonl, predictions.parquet, metrics.json);
``OUT/ablation.json`` and ``OUT/ablation.md`` hold the table (test AUPRC/AUROC with 95% bootstrap CIs).
A variant whose folder already has metrics.json is not trained again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.io import write_text_atomic
from alfia.model.serialization import CONFIG_NAME
from alfia.run_folder import RunFolder

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it

ABLATION_BASE = {"model.lora": {"layers": 1, "dropout": 0.0}, "model.readout": None, "head_lr": 3e-4,
                 "distill": 0.0, "class_weight": True, "calibration": "none"}
VARIANTS = ("default", "random-init", "no-lora", "nf1", "nf2", "nf6", "mean-pool")
DESCRIPTIONS = {"default": "pre-trained, LoRA, N_f=4, fusion", "random-init": "random-init backbone, LoRA, N_f=4",
                "no-lora": "pre-trained, frozen (no LoRA), N_f=4", "nf1": "N_f=1", "nf2": "N_f=2", "nf6": "N_f=6",
                "mean-pool": "plain mean pooling of the last layer (no fusion)"}


class MeanPooling(nn.Module):
    """Stands in for the fusion module: the masked mean of the last layer (no parameters)."""

    def forward(self, hidden_states, attention_mask):
        from alfia.model.fusion import FusionOutput, masked_mean

        last = hidden_states[-1]
        mask = attention_mask.bool()
        weights = mask.float() / mask.float().sum(1, keepdim=True).clamp(min=1)
        ones = torch.ones(last.shape[0], 1, dtype=last.dtype, device=last.device)
        means = masked_mean(torch.stack(tuple(hidden_states)), mask.unsqueeze(0)).transpose(0, 1)
        return FusionOutput(masked_mean(last, mask), ones, weights, means)


def _mean_pool_trainer():
    from alfia.training.trainer import Trainer

    class MeanPoolTrainer(Trainer):
        """The quick-profile trainer with the fusion module replaced by :class:`MeanPooling`. The model cannot be
        saved as an ALFIA folder; the trainer keeps the best epoch's weights in memory and restores them."""

        def _build(self) -> None:
            super()._build()
            self.model.fusion = MeanPooling()

        def _save_best(self) -> None:
            pass

    return MeanPoolTrainer


def random_init_copy(backbone: str | None, folder: Path, seed: int = 0) -> Path:
    """The backbone's architecture with fresh random weights, and its tokenizer, saved to ``folder``."""
    from transformers import AutoConfig, AutoModel

    from alfia.model.backbone import load_tokenizer, resolve_backbone

    if (folder / CONFIG_NAME).exists():
        return folder
    where = resolve_backbone(backbone)
    config = AutoConfig.from_pretrained(where, local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(backbone).save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def _depth(backbone: str | None) -> int:
    from transformers import AutoConfig

    from alfia.model.backbone import resolve_backbone

    return int(AutoConfig.from_pretrained(resolve_backbone(backbone), local_files_only=True).num_hidden_layers)


def _short(backbone: str | None) -> str:
    return Path(str(backbone or "default")).name.replace("/", "_") or "backbone"


def run_ablation(cohort: Cohort, out: str | Path, backbones: list[str | None] | None = None,
                 variants: list[str] | None = None, n_boot: int = 1000, progress: bool = True,
                 **overrides) -> Path:
    """Train every variant into ``out``; returns the path of ``ablation.json``. ``overrides`` go to
    :func:`alfia.training.config.make_config` (quick profile over ``ABLATION_BASE``), e.g. ``epochs=2``."""
    from alfia.inference import finish_run
    from alfia.training.config import make_config
    from alfia.training.trainer import check_cohort, train

    check_cohort(cohort)
    out = Path(out)
    backbones = backbones or [None]
    variants = list(variants or VARIANTS)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise AlfiaError(f"unknown ablation variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    out.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, str | None, str]] = []
    for i, backbone in enumerate(backbones):
        tag = "" if len(backbones) == 1 else f"{_short(backbone)}-"
        for v in (variants if i == 0 else ["default"]):
            plan.append((f"{tag}{v}", backbone, v))
    runs, skipped = [], {}
    for name, backbone, variant in plan:
        settings: dict = {}
        used_backbone = backbone
        if variant == "random-init":
            used_backbone = str(random_init_copy(backbone, out / "_backbones" / f"random-init-{_short(backbone)}"))
        elif variant == "no-lora":
            settings["model.lora"] = None
        elif variant.startswith("nf"):
            settings["model.fusion.num_fusion_layers"] = int(variant[2:])
            if int(variant[2:]) > _depth(backbone):
                skipped[name] = f"the backbone has only {_depth(backbone)} layers"
                continue
        elif variant == "mean-pool":
            settings["model.fusion.num_fusion_layers"] = 1
        config = make_config("quick", **{**ABLATION_BASE, **overrides, **settings})
        folder = out / name
        start = time.perf_counter()
        if not (folder / RunFolder.METRICS).exists():
            if progress:
                logger.info(f"== ablation {name}: {DESCRIPTIONS[variant]}")
            if variant == "mean-pool":
                shutil.rmtree(folder, ignore_errors=True)
                trainer = _mean_pool_trainer()(cohort, folder, config, backbone=used_backbone, progress=progress)
                trainer.fit()
                finish_run(trainer.out, cohort, n_boot=n_boot, model=trainer.model)
            else:
                train(cohort, folder, config, backbone=used_backbone, resume=folder.exists(), progress=progress)
                finish_run(folder, cohort, n_boot=n_boot)
        metrics, history = RunFolder(folder).metrics()["test"], RunFolder(folder).history()
        best = [h["epoch"] for h in history if h.get("best")]
        runs.append({"name": name, "folder": name, "variant": variant, "backbone": backbone or "default",
                     "description": DESCRIPTIONS[variant], "settings": {**settings, "profile": "quick", **overrides},
                     "best_epoch": best[-1] if best else None, "epochs": len(history),
                     "auprc": metrics["auprc"], "auroc": metrics["auroc"],
                     "seconds": round(time.perf_counter() - start, 1)})
    index = {"cohort": cohort.info.get("source"), "runs": runs, "skipped": skipped}
    write_text_atomic(out / "ablation.json", json.dumps(index, indent=2))
    write_text_atomic(out / "ablation.md", ablation_markdown(index))
    return out / "ablation.json"


def _cell(m: dict) -> str:
    if m.get("ci_low") is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def ablation_markdown(index: dict) -> str:
    lines = ["| variant | what | best epoch | test AUPRC (95% CI) | test AUROC (95% CI) |",
             "| --- | --- | ---: | --- | --- |"]
    for r in index["runs"]:
        lines.append(f"| {r['name']} | {r['description']} | {r['best_epoch']} | {_cell(r['auprc'])} | "
                     f"{_cell(r['auroc'])} |")
    for name, why in index.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | | |")
    return "\n".join(lines) + "\n"


def ablation_summary(folder: Path) -> list[list]:
    index = json.loads((Path(folder) / "ablation.json").read_text())
    return [[r["name"], r["description"], r["best_epoch"], _cell(r["auprc"]), _cell(r["auroc"])]
            for r in index["runs"]] + [[k, f"skipped: {v}", "", "", ""] for k, v in index.get("skipped", {}).items()]


__all__ = ["VARIANTS", "MeanPooling", "ablation_markdown", "random_init_copy", "run_ablation"]
