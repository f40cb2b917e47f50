"""Token counts of texts with a backbone's tokenizer (the token budget is a speed budget too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

# Texts tokenised at a time. The tokenizer builds its own objects per token (ids, offsets, token strings, about a
# hundred bytes a token in Rust and Python): 8,192 texts of ~250 tokens held ~600 MiB at once, a few hundred hold
# little, and a larger call is no faster.
TOKENIZE_CHUNK = 512


class TokenLengths(NamedTuple):
    p50: float
    p95: float
    max: int
    lengths: np.ndarray


def token_ids(tokenizer, texts: list[str], max_length: int | None = None) -> Iterator[list[list[int]]]:
    """The token ids of ``texts`` (special tokens included; cut to ``max_length`` when given), one list per
    :data:`TOKENIZE_CHUNK` texts: a cohort is never tokenised at once."""
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        yield tokenizer(list(texts[start:start + TOKENIZE_CHUNK]), add_special_tokens=True,
                        truncation=max_length is not None, max_length=max_length, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)["input_ids"]


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text as the model sees them before truncation (special tokens included)."""
    counts = np.zeros(len(texts), dtype=int)
    done = 0
    for ids in token_ids(tokenizer, texts):
        counts[done:done + len(ids)] = [len(x) for x in ids]
        done += len(ids)
    return counts


def token_lengths(texts: list[str], tokenizer) -> TokenLengths:
    """Tokens per text including the special tokens, as the model sees them (before truncation), and their
    percentiles; ``tokenizer``: a HuggingFace tokenizer, e.g. ``alfia.model.backbone.load_tokenizer()``."""
    lengths = token_counts(tokenizer, texts)
    return TokenLengths(float(np.percentile(lengths, 50)), float(np.percentile(lengths, 95)),
                        int(lengths.max()), lengths)
