"""Tokenised texts, held compactly: the token ids of every text, unpadded and truncated, in one flat int32 array,
tokenised a chunk at a time, and batches padded only to their own longest text. Training, the frozen-layer cache
and inference all read texts through it, so no step holds a cohort as the tokenizer's Python lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alfia.text.stats import token_ids


@dataclass
class TokenizedTexts:
    """Token ids of every text, unpadded, truncated to ``max_length``: one flat int32 array and the offsets of each
    text (a few bytes per token, where Python lists of ints cost ~36)."""

    flat: np.ndarray
    offsets: np.ndarray
    pad_id: int

    @classmethod
    def from_texts(cls, tokenizer, texts: list[str], max_length: int) -> TokenizedTexts:
        parts, lengths = [], []
        for encoded in token_ids(tokenizer, texts, max_length):
            lengths += [len(x) for x in encoded]
            parts += [np.asarray(x, dtype=np.int32) for x in encoded]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return cls(flat=flat, offsets=offsets, pad_id=int(tokenizer.pad_token_id or 0))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def ids(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]:self.offsets[i + 1]]

    def collate(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the given rows to their own longest text: (input_ids, attention_mask), both [B, T]."""
        lengths = self.lengths[rows]
        width = int(lengths.max())
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, i in enumerate(rows):
            input_ids[k, :lengths[k]] = torch.from_numpy(self.ids(i).astype(np.int64))
            mask[k, :lengths[k]] = 1
        return input_ids, mask
