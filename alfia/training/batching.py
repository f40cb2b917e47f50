"""Tokenised texts and length-bucketed, dynamically padded batches.

Padding every text to the longest one of the whole cohort wastes most of the compute on pad tokens; here each
batch is padded only to its own longest text, and texts of similar length are batched together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TokenizedTexts:
    """Token ids of every text, unpadded, truncated to ``max_length``."""

    ids: list[list[int]]
    pad_id: int

    @classmethod
    def from_texts(cls, tokenizer, texts: list[str], max_length: int) -> TokenizedTexts:
        encoded = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)
        return cls(ids=[list(x) for x in encoded["input_ids"]], pad_id=int(tokenizer.pad_token_id or 0))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids])

    def collate(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the given rows to their own longest text: (input_ids, attention_mask), both [B, T]."""
        width = max(len(self.ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, i in enumerate(rows):
            n = len(self.ids[i])
            input_ids[k, :n] = torch.tensor(self.ids[i], dtype=torch.long)
            mask[k, :n] = 1
        return input_ids, mask


def bucketed_batches(lengths: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0,
                     bucket_batches: int = 50) -> Iterator[np.ndarray]:
    """Yield arrays of row indices.

    Without shuffling: rows sorted by length (inference; callers restore the order). With shuffling: rows are
    shuffled, cut into chunks of ``bucket_batches`` batches, sorted by length inside each chunk, and the
    batches are yielded in a shuffled order, so that batches stay random but have little padding.
    """
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]
        return
    rng = np.random.Generator(np.random.PCG64(seed))
    order = rng.permutation(n)
    chunk = batch_size * bucket_batches
    batches = []
    for start in range(0, n, chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    for b in rng.permutation(len(batches)):
        yield batches[b]
