"""Scoring texts for the service: probability, layer weights lambda and the token attention beta summed per word.

Determinism: the same text must always get the same answer, whatever other texts share its batch. Each text is
padded to a fixed bucket of ``BUCKET`` tokens that depends on its own length only, and only texts of one bucket
are batched together, so every text is computed on exactly the same input tensor row every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from alfia.model.alfia import ALFIA

BUCKET = 32  # tokens; padding waste is below this, and batches mix texts of similar length
DIGITS = 4   # answers are rounded: a clinician reads 0.1234, not 0.12340187


@dataclass(frozen=True)
class Scored:
    probability: float
    layer_weights: tuple[float, ...]
    words: tuple[tuple[str, float], ...]  # every word of the text in order, with its share of beta


class Scorer:
    """``calibrate``: the run's validation-fitted map from the model's raw probability to the one shown
    (``Run.calibrator.transform``; identity when the run has none)."""

    def __init__(self, model: ALFIA, batch_size: int = 32, calibrate=None):
        self.model = model.eval()
        self.batch_size = batch_size
        self.calibrate = calibrate or (lambda p: p)
        self.pad = int(model.tokenizer.pad_token_id or 0)

    def score(self, texts: list[str]) -> list[Scored]:
        enc = self.model.tokenizer(list(texts), truncation=True, max_length=self.model.max_length,
                                   return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        buckets: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            width = min(-(-len(row) // BUCKET) * BUCKET, self.model.max_length)  # len(row) <= max_length
            buckets.setdefault(width, []).append(i)
        out: list[Scored | None] = [None] * len(texts)
        with torch.inference_mode(), self.model.precision.autocast():
            for width, rows in buckets.items():
                for start in range(0, len(rows), self.batch_size):
                    part = rows[start:start + self.batch_size]
                    input_ids = torch.full((len(part), width), self.pad, dtype=torch.long)
                    mask = torch.zeros((len(part), width), dtype=torch.long)
                    for k, i in enumerate(part):
                        input_ids[k, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                        mask[k, :len(ids[i])] = 1
                    res = self.model(input_ids.to(self.model.device), mask.to(self.model.device))
                    probs = self.calibrate(torch.sigmoid(res.logits.float()).double().cpu().numpy())
                    lam = res.layer_weights.float().cpu().numpy()
                    beta = res.token_weights.float().cpu().numpy()
                    for k, i in enumerate(part):
                        out[i] = Scored(round(float(probs[k]), DIGITS),
                                        tuple(round(float(x), DIGITS) for x in lam[k]),
                                        word_weights(texts[i], offsets[i], beta[k]))
        return out  # type: ignore[return-value]


def word_weights(text: str, offsets, beta: np.ndarray) -> tuple[tuple[str, float], ...]:
    """Every whitespace-separated word of ``text`` with the summed attention of its tokens (0 for words past the
    truncation and for special tokens, which have no characters)."""
    spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    weights = np.zeros(len(spans))
    starts = [s for s, _, _ in spans]
    for (a, b), w in zip(offsets, beta[:len(offsets)], strict=True):
        if b <= a:
            continue
        k = int(np.searchsorted(starts, a, side="right")) - 1
        if k >= 0:
            weights[k] += w
    return tuple((word, round(float(w), DIGITS)) for (_, _, word), w in zip(spans, weights, strict=True))
