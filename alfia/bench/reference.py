"""The authors' reference pipeline, the baseline ``alfia bench`` (quick profile) measures ALFIA against.

HuggingFace transformers + peft as the authors' code uses them: every text padded to 512 tokens (the backbone's
limit), fp32 (TF32 off), eager attention, ``torch.no_grad``, inference batch 16; training batch 4 with LoRA (r=16,
paper targets) on every layer, backbone and LoRA dropout on, AdamW.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alfia.bench.measure import PeakMemory, sync

REFERENCE_LENGTH = 512   # the authors' code pads every text to 512 tokens (ALFIA caps it at the backbone's limit)


def _padded(model, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every text padded to the reference model's ``max_length`` (built or loaded with REFERENCE_LENGTH)."""
    enc = model.tokenizer(list(texts), padding="max_length", truncation=True, max_length=model.max_length,
                          return_tensors="pt")
    return enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)


def reference_inference(model_dir: Path, texts: Sequence[str], batch_size: int = 16,
                        device: torch.device | str = "auto") -> dict:
    """The saved model through HF + peft, eager attention, every text padded to 512, ``no_grad``, batch 16: fp32
    (TF32 off) on ``device``, the authors' pipeline as it runs."""
    from alfia.model.alfia import ALFIA

    model = ALFIA.load(model_dir, device=device, precision="fp32", attn_implementation="eager",
                       max_length=REFERENCE_LENGTH).eval()
    probs = np.zeros(len(texts))
    with torch.no_grad():
        model(*_padded(model, texts[:batch_size]))   # warm-up, not timed
        with PeakMemory() as memory:
            sync()
            start = time.perf_counter()
            for s in range(0, len(texts), batch_size):
                logits = model(*_padded(model, texts[s:s + batch_size])).logits
                probs[s:s + batch_size] = torch.sigmoid(logits.float()).cpu().numpy()
            sync()
            seconds = time.perf_counter() - start
    return {"probs": probs, "ms_per_sample": 1000 * seconds / len(texts), "peak_rss_mb": memory.rss_mb,
            "peak_gpu_mb": memory.gpu_mb, "padded_tokens": int(model.max_length)}


def reference_training(backbone: str | None, texts: Sequence[str], labels: np.ndarray, steps: int,
                       batch_size: int = 4, warmup: int = 2, device: torch.device | str = "auto") -> dict:
    """LoRA (paper settings) on every layer, batch 4 padded to 512, eager attention, dropout on, AdamW lr 1e-4,
    clipping 1.0, fp32 (TF32 off) on ``device``: ``steps`` timed optimizer steps after ``warmup`` untimed ones."""
    from alfia.model.alfia import ALFIA, ALFIAConfig
    from alfia.model.backbone import DEFAULT_BACKBONE
    from alfia.model.fusion import FusionConfig
    from alfia.model.lora import LoraSettings

    torch.manual_seed(42)
    config = ALFIAConfig(backbone=backbone or DEFAULT_BACKBONE, fusion=FusionConfig(num_fusion_layers=4),
                         lora=LoraSettings(), max_length=REFERENCE_LENGTH, attn_implementation="eager")
    model = ALFIA(config).to_runtime(device, "fp32")
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    y = torch.tensor(labels, dtype=torch.float32)
    n_pos = max(float(y.sum()), 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - n_pos) / n_pos, device=model.device))
    order = np.random.Generator(np.random.PCG64(0)).permutation(len(texts))

    def step(k: int) -> None:
        rows = order[(k * batch_size + np.arange(batch_size)) % len(texts)]
        ids, mask = _padded(model, [texts[i] for i in rows])
        loss = loss_fn(model(ids, mask).logits.float(), y[rows].to(model.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()

    for k in range(warmup):
        step(k)
    with PeakMemory() as memory:
        sync()
        start = time.perf_counter()
        for k in range(warmup, warmup + steps):
            step(k)
        sync()
        seconds = time.perf_counter() - start
    return {"samples_per_s": steps * batch_size / seconds, "steps": steps, "batch_size": batch_size,
            "peak_rss_mb": memory.rss_mb, "peak_gpu_mb": memory.gpu_mb}
