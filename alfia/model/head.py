"""Attentional Classifier Head (ACH), paper section 2.3.3, eqs. 15-19.

``Z`` (the ALF output, ``[B, H]``) is read as a length-1 sequence ``Z'`` (``[B, 1, H]``) and passed through one
post-norm transformer block, then a linear output layer:

* eq. 15: ``AttnOut = MultiheadAttention(Z', Z', Z')`` (``attention``; ``batch_first``);
* eq. 16: ``Z1 = LayerNorm_1(Z' + Dropout(AttnOut))`` (``norm1``);
* eq. 17: ``F = FFN(Z1)`` with FFN = Linear H->eH, GELU, Dropout, Linear eH->H (``ffn``, e = ``ffn_expansion``);
* eq. 18: ``Z2 = LayerNorm_2(Z1 + Dropout(F))`` (``norm2``);
* eq. 19: ``logit = Z2 W_out + b_out`` (``output``), ONE logit per text.

One logit with a sigmoid is the same model as eq. 19's two logits with a softmax: softmax over ``[z0, z1]``
gives ``p1 = sigmoid(z1 - z0)``, so ``softmax([0, z]) = sigmoid(z)``; training uses BCE-with-logits.

Note that attention over a sequence of length 1 has a single key, so its softmax is exactly 1 and
``AttnOut = W_o (W_v Z + b_v) + b_o``: the query and key projections exist (as in the paper) but cannot
change the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from alfia.codec import DROPOUT, POSITIVE, Config, setting
from alfia.errors import AlfiaError, SettingError
from alfia.model import serialization


@dataclass
class HeadConfig(Config):
    """Hyper-parameters of :class:`AttentionalClassifierHead`; ``hidden_size`` must divide by ``num_heads``
    (it may be left ``None`` inside an ALFIAConfig and is then taken from the backbone)."""

    hidden_size: int | None = setting(None, help="the backbone's hidden size (unset: taken from the backbone)",
                                      check=POSITIVE)
    num_heads: int = setting(4, help="attention heads of the classifier head", check=POSITIVE)
    dropout: float = setting(0.1, help="dropout inside the classifier head", check=DROPOUT)
    ffn_expansion: int = setting(2, help="width of the head's feed-forward layer, in hidden sizes", check=POSITIVE)

    def check(self, path: str) -> None:
        if self.hidden_size is not None and self.hidden_size % self.num_heads:
            raise SettingError(path + "num_heads", f"must divide the hidden size {self.hidden_size} (the classifier "
                               f"head's attention), got {self.num_heads}")


class AttentionalClassifierHead(serialization.SavedModule, nn.Module):
    """The ACH (eqs. 15-19): ``forward(z [B, H]) -> logits [B]``."""

    config_class = HeadConfig
    config_kind = "alfia.head"

    def __init__(self, config: HeadConfig):
        super().__init__()
        config.validate("head.").require("hidden_size", path="head.")
        self.config = config
        h, inner = config.hidden_size, config.hidden_size * config.ffn_expansion
        self.attention = nn.MultiheadAttention(h, config.num_heads, dropout=config.dropout, batch_first=True)
        self.dropout1 = nn.Dropout(config.dropout)
        self.norm1 = nn.LayerNorm(h)
        self.ffn = nn.Sequential(nn.Linear(h, inner), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(inner, h))
        self.dropout2 = nn.Dropout(config.dropout)
        self.norm2 = nn.LayerNorm(h)
        self.output = nn.Linear(h, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[-1] != self.config.hidden_size:
            raise AlfiaError(f"the classifier head expects [B, {self.config.hidden_size}] embeddings, "
                             f"got {tuple(z.shape)}")
        x = z.unsqueeze(1)                                                  # Z', [B, 1, H]
        attn, _ = self.attention(x, x, x, need_weights=False)               # eq. 15
        x = self.norm1(x + self.dropout1(attn))                             # eq. 16
        x = self.norm2(x + self.dropout2(self.ffn(x)))                      # eqs. 17-18
        return self.output(x.squeeze(1)).squeeze(-1)                        # eq. 19, [B]
