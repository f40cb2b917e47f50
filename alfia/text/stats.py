"""Token counts of texts with a backbone's tokenizer (the token budget is a speed budget too)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TokenLengths(NamedTuple):
    p50: float
    p95: float
    max: int
    lengths: np.ndarray


def token_lengths(texts: list[str], tokenizer) -> TokenLengths:
    """Tokens per text including the special tokens, as the model sees them (before truncation); ``tokenizer``: a
    HuggingFace tokenizer, e.g. ``alfia.model.backbone.load_tokenizer()`` (the default backbone's)."""
    ids = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    return TokenLengths(float(np.percentile(lengths, 50)), float(np.percentile(lengths, 95)),
                        int(lengths.max()), lengths)
