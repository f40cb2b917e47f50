"""Frozen-prefix caching: with LoRA on the top k layers only, the bottom layers never change, so their output
is computed once per text and reused in every epoch; only the top layers, the fusion and the head run.

Training from the cache is the same computation as training from token ids (the frozen layers run without
dropout in both; ``tests/training/test_prefix_cache.py`` checks losses and gradients)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from alfia.model.alfia import ALFIA, assemble_outputs, collect_outputs
from alfia.training.batching import TokenizedTexts, bucketed_batches


class PrefixCache:
    """Per text, the unpadded hidden states ``[len, H]`` of each index in ``model.prefix_indices()``."""

    def __init__(self, model: ALFIA, tokens: TokenizedTexts, batch_size: int = 32, progress: bool = True,
                 desc: str = "caching frozen layers"):
        self.indices = model.prefix_indices()
        self.lengths = tokens.lengths
        self.states: dict[int, list[torch.Tensor | None]] = {j: [None] * len(tokens) for j in self.indices}
        device = model.device
        batches = list(bucketed_batches(self.lengths, batch_size, shuffle=False))
        with torch.inference_mode():
            for rows in tqdm(batches, desc=desc, unit="batch", disable=not progress, leave=False):
                ids, mask = tokens.collate(rows)
                out = model.frozen_prefix(ids.to(device), mask.to(device))
                for j in self.indices:
                    for k, i in enumerate(rows):
                        self.states[j][i] = out[j][k, :self.lengths[i]].clone()

    def __len__(self) -> int:
        return len(self.lengths)

    def collate(self, rows: np.ndarray, device: torch.device) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        width = int(self.lengths[rows].max())
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        prefix = {}
        for j in self.indices:
            first = self.states[j][rows[0]]
            batch = torch.zeros((len(rows), width, first.shape[-1]), dtype=first.dtype)
            for k, i in enumerate(rows):
                batch[k, :self.lengths[i]] = self.states[j][i]
            prefix[j] = batch.to(device)
        for k, i in enumerate(rows):
            mask[k, :self.lengths[i]] = 1
        return prefix, mask.to(device)

    def infer(self, model: ALFIA, batch_size: int = 32, collect=None):
        """``(rows, collect(output))`` per batch, the model in eval mode: only the layers above the cache run."""
        collect = collect or collect_outputs
        parts = []
        was = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for rows in bucketed_batches(self.lengths, batch_size, shuffle=False):
                    prefix, mask = self.collate(rows, model.device)
                    parts.append((rows, collect(model(None, mask, prefix=prefix))))
        finally:
            model.train(was)
        return parts

    def predict_proba(self, model: ALFIA, batch_size: int = 32) -> np.ndarray:
        return assemble_outputs(self.infer(model, batch_size), len(self))[0]
