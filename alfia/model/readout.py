"""Pooled linear readout: a residual path from the fused layers' masked means straight to the logit.

Not in the paper. A logistic regression on the frozen backbone's pooled features of the same text beats the
paper's fusion + head trained on 3,000 stays (docs/experiments.md), so ALFIA may add this linear readout to the
head's logit:

    logit = ACH(ALF(H)) + w . standardise([s_(L-N_f+1) ; ... ; s_L]) + b

with ``s_j`` the attention-mask-weighted mean of fused layer ``j`` (eq. 2), the N_f means side by side.
Training starts from a logistic regression fitted on the training rows (``fit_start``) and from a head whose
output layer is zero, so the model begins at the linear readout and training can only move away from it where
the validation split says it helps (early stopping keeps the best epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from alfia.codec import POSITIVE, POSITIVE_NUMBER, Config, setting
from alfia.model import serialization


@dataclass
class ReadoutConfig(Config):
    """``hidden_size`` and ``num_layers`` (N_f) may stay ``None`` inside an ALFIAConfig: they are taken from
    the backbone and the fusion."""

    hidden_size: int | None = setting(None, help="the backbone's hidden size (unset: taken from the backbone)",
                                      check=POSITIVE)
    num_layers: int | None = setting(None, help="N_f, the fused layers it reads (unset: the fusion's)",
                                     check=POSITIVE)
    C: float = setting(0.3, help="inverse L2 strength of the readout's starting fit (default 0.3; turns the readout "
                       "on)", flag="--readout-c", check=POSITIVE_NUMBER)


def pooled_features(summaries: torch.Tensor) -> torch.Tensor:
    """``[B, N_f, H]`` layer means -> ``[B, N_f * H]``, side by side (lowest fused layer first)."""
    return summaries.reshape(summaries.shape[0], -1)


class PooledReadout(serialization.SavedModule, nn.Module):
    """``forward(summaries [B, N_f, H]) -> logits [B]``; the standardisation is part of the saved weights."""

    config_class = ReadoutConfig
    config_kind = "alfia.readout"

    def __init__(self, config: ReadoutConfig):
        super().__init__()
        config.validate("readout.").require("hidden_size", "num_layers", path="readout.")
        self.config = config
        width = config.num_layers * config.hidden_size
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.linear = nn.Linear(width, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, summaries: torch.Tensor) -> torch.Tensor:
        x = (pooled_features(summaries) - self.center.to(summaries.dtype)) / self.scale.to(summaries.dtype)
        return self.linear(x).squeeze(-1)

    @torch.no_grad()
    def fit_start(self, features: np.ndarray, target: np.ndarray) -> None:
        """Standardise on ``features`` ``[N, N_f * H]`` (training rows) and set the weights to an L2 logistic
        regression on ``target`` in [0, 1] (hard labels, or soft targets: each row enters twice, weighted)."""
        from sklearn.linear_model import LogisticRegression

        features = np.asarray(features, dtype=np.float64)
        center, scale = features.mean(axis=0), features.std(axis=0)
        scale[scale < 1e-6] = 1.0
        t = np.clip(np.asarray(target, dtype=np.float64), 0.0, 1.0)
        n = len(t)
        twice = np.empty((2 * n, features.shape[1]))   # the standardised rows twice, built in place (memory: 3 N)
        np.subtract(features, center, out=twice[:n])
        np.divide(twice[:n], scale, out=twice[:n])
        twice[n:] = twice[:n]
        lr = LogisticRegression(C=self.config.C, max_iter=2000)
        lr.fit(twice, np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[t, 1.0 - t])
        self.center.copy_(torch.as_tensor(center, dtype=self.center.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))
        self.linear.weight.copy_(torch.as_tensor(lr.coef_, dtype=self.linear.weight.dtype))
        self.linear.bias.copy_(torch.as_tensor(lr.intercept_, dtype=self.linear.bias.dtype))
