"""Adaptive Layer Fusion (ALF), paper section 2.3.2, eqs. 2-14.

The module takes the hidden states of the top ``N_f`` transformer layers, ``H^(L-N_f+1) .. H^(L)`` (each
``[B, T, H]``), and the attention mask ``A`` (``[B, T]``, 1 = real token), and returns one vector per text:

====  =====================================================================================================
eq.   step (names of the submodules below)
====  =====================================================================================================
2     ``s_j``: attention-mask-weighted mean of each layer's tokens
3-6   layer attention: query = mean_j s_j; ``W_Q, W_K, W_V``: H -> n_h*d_k; per-head scaled dot-product
      softmax over the N_f layers; context ``W_O``: n_h*d_v -> H (``query``, ``key``, ``value``, ``out``)
7     ``lambda = sigmoid(W_gate c' + b)`` (``gate``); with gating off, the scores averaged over heads
8     ``H_fused_raw = sum_j lambda_j H^(j)``
9     ``H_enh = LayerNorm_1(H_fused_raw + content_projection(.) + interaction(.))``
      (``content_projection``: Linear H->H; ``interaction``: Linear-LayerNorm-GELU-Dropout-Linear)
10    ``beta = masked softmax(token_scorer(H_enh))``; token_scorer (default ``"tanh"``): Linear H->H/2, Tanh,
      Linear H/2->H/4, Tanh, Linear H/4->1 (the classic additive-attention scorer; bounded scores keep the
      softmax calm). ``token_scorer="authors"``: the authors' code's variant, Linear H->H/2, LayerNorm, GELU,
      Dropout, Linear H/2->H/4, GELU, Linear H/4->1 (the paper does not specify the scorer's layers)
11    ``c_local = sum_t beta_t h_t^enh``
12-13 ``c_global = global_context(masked mean of H_enh)``; global_context: Linear-LayerNorm-GELU-Dropout
14    ``c_fused = context_fusion([c_local; c_global])`` (Linear 2H->H, LayerNorm, Dropout);
      ``out = LayerNorm_2(c_fused + output_projection(c_fused))``
====  =====================================================================================================

``kind="mean"`` (:class:`MeanPooling`) replaces the module by the plain attention-mask mean of the top layer's
tokens: the ablation's "no fusion" variant, a setting like any other (``model.fusion.kind``).

The module holds no state between calls (nothing is cached on ``self`` in ``forward``), works on any stack of
hidden states (from a live backbone or from a cache), and is indifferent to padding: pads enter only through
the mask. Softmaxes over tokens are computed in float32 with a large negative fill, so ``beta`` is exactly 0
on padding and sums to 1 over real tokens, also under autocast.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from alfia.codec import DROPOUT, POSITIVE, Config, Interval, OneOf, setting
from alfia.errors import AlfiaError
from alfia.model import serialization

TOKEN_SCORERS = ("tanh", "authors")
FUSION_KINDS = ("alf", "mean")   # Adaptive Layer Fusion; the ablation's plain mean of the top layer


@dataclass
class FusionConfig(Config):
    """Hyper-parameters of :class:`AdaptiveLayerFusion` (paper defaults: 4 layers, 4 heads of 64 dims).

    ``hidden_size`` is the backbone's d_model; inside :class:`~alfia.model.alfia.ALFIAConfig` it may be left
    ``None`` and is then taken from the backbone. The layer-attention width ``num_heads * head_dim`` is
    independent of ``hidden_size``.
    """

    hidden_size: int | None = setting(None, help="the backbone's hidden size (unset: taken from the backbone)",
                                      check=Interval(int, 4))
    num_fusion_layers: int = setting(4, help="N_f, the top layers fused (default 4)", flag="--fusion-layers",
                                     check=POSITIVE)
    num_heads: int = setting(4, help="heads of the cross-layer attention", check=POSITIVE)
    head_dim: int = setting(64, help="width of each cross-layer attention head", check=POSITIVE)
    use_gating: bool = setting(True, help="the sigmoid gate on the fused layers (eq. 7)")
    dropout: float = setting(0.1, help="dropout inside the fusion module", check=DROPOUT)
    token_scorer: str = setting("tanh", help="the token scorer of eq. 10: tanh (ALFIA's) or authors (the authors' "
                                "code's variant)", check=OneOf(TOKEN_SCORERS))
    kind: str = setting("alf", help="alf (Adaptive Layer Fusion, default) or mean (no fusion: the attention-mask "
                        "mean of the top layer's tokens, the ablation's mean-pool variant)", check=OneOf(FUSION_KINDS))


class FusionOutput(NamedTuple):
    embedding: torch.Tensor       # H_ALF_out, [B, H]
    layer_weights: torch.Tensor   # lambda, [B, N_f] (order: lowest selected layer first, top layer last)
    token_weights: torch.Tensor   # beta, [B, T] (0 on padding, sums to 1 over real tokens)
    layer_means: torch.Tensor | None = None   # s_j of eq. 2, [B, N_f, H] (what the pooled readout reads)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` over positions where ``mask`` is true, computed in float32.

    Masked positions get exactly 0; a row with no true position gets all zeros (never NaN).
    """
    scores = scores.float()
    mask = mask.bool()
    filled = scores.masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.softmax(filled, dim=dim).masked_fill(~mask, 0.0)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim -2 of ``x`` (``[..., T, H]``) weighted by ``mask`` (``[..., T]``), eqs. 2 and 12."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=-2) / weights.sum(dim=-2).clamp(min=1.0)


def stacked_layers(hidden_states: torch.Tensor | Sequence[torch.Tensor], config: FusionConfig) -> torch.Tensor:
    """The top N_f hidden states as one ``[N_f, B, T, H]`` tensor, their shape checked against ``config``."""
    stack = hidden_states if isinstance(hidden_states, torch.Tensor) else torch.stack(tuple(hidden_states))
    n_f, h = config.num_fusion_layers, config.hidden_size
    if stack.dim() != 4 or stack.shape[0] != n_f or stack.shape[-1] != h:
        raise AlfiaError(f"the fusion module expects {n_f} hidden-state tensors of shape [B, T, {h}], got "
                         f"{tuple(stack.shape)}; pass the top {n_f} layers of a backbone with hidden size {h}")
    return stack


class AdaptiveLayerFusion(serialization.SavedModule, nn.Module):
    """The ALF module (eqs. 2-14); see the module docstring for the submodule of each equation."""

    config_class = FusionConfig
    config_kind = "alfia.fusion"

    def __init__(self, config: FusionConfig):
        super().__init__()
        config.validate("fusion.").require("hidden_size", path="fusion.")
        self.config = config
        h, n_f, inner = config.hidden_size, config.num_fusion_layers, config.num_heads * config.head_dim
        # eqs. 3-6: inter-layer attention
        self.query = nn.Linear(h, inner)
        self.key = nn.Linear(h, inner)
        self.value = nn.Linear(h, inner)
        self.out = nn.Linear(inner, h)
        # eq. 7: layer gating
        self.gate = nn.Linear(h, n_f) if config.use_gating else None
        # eq. 9: post-fusion processing
        self.content_projection = nn.Linear(h, h)
        self.interaction = nn.Sequential(nn.Linear(h, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(config.dropout),
                                         nn.Linear(h, h))
        self.enhance_norm = nn.LayerNorm(h)
        # eq. 10: token scorer
        if config.token_scorer == "authors":
            self.token_scorer = nn.Sequential(nn.Linear(h, h // 2), nn.LayerNorm(h // 2), nn.GELU(),
                                              nn.Dropout(config.dropout), nn.Linear(h // 2, h // 4), nn.GELU(),
                                              nn.Linear(h // 4, 1))
        else:
            self.token_scorer = nn.Sequential(nn.Linear(h, h // 2), nn.Tanh(), nn.Linear(h // 2, h // 4),
                                              nn.Tanh(), nn.Linear(h // 4, 1))
        # eq. 13: global context layer
        self.global_context = nn.Sequential(nn.Linear(h, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(config.dropout))
        # eq. 14: context fusion and output
        self.context_fusion = nn.Sequential(nn.Linear(2 * h, h), nn.LayerNorm(h), nn.Dropout(config.dropout))
        self.output_projection = nn.Linear(h, h)
        self.output_norm = nn.LayerNorm(h)

    def _stack(self, hidden_states: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        return stacked_layers(hidden_states, self.config)

    def layer_attention(self, summaries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 3-6 on layer summaries ``[B, N_f, H]``: returns (c'_layer_attn ``[B, H]``, scores
        ``[B, n_h, N_f]``)."""
        b, n_f, _ = summaries.shape
        n_h, d_k = self.config.num_heads, self.config.head_dim
        q_global = summaries.mean(dim=1)                                           # [B, H]
        q = self.query(q_global).view(b, n_h, 1, d_k)                              # eq. 3
        k = self.key(summaries).view(b, n_f, n_h, d_k).transpose(1, 2)             # eq. 4, [B, n_h, N_f, d_k]
        v = self.value(summaries).view(b, n_f, n_h, d_k).transpose(1, 2)           # eq. 5
        logits = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(d_k)       # [B, n_h, 1, N_f]
        scores = torch.softmax(logits, dim=-1)                                     # eq. 6
        context = (scores.to(v.dtype) @ v).reshape(b, n_h * d_k)                   # c_layer_attn
        return self.out(context), scores.squeeze(2)

    def forward(self, hidden_states: torch.Tensor | Sequence[torch.Tensor],
                attention_mask: torch.Tensor) -> FusionOutput:
        """``hidden_states``: the top N_f layers, lowest first (a sequence of ``[B, T, H]`` or one
        ``[N_f, B, T, H]`` tensor); ``attention_mask``: ``[B, T]``, nonzero for real tokens."""
        stack = self._stack(hidden_states)
        if attention_mask.shape != stack.shape[1:3]:
            raise AlfiaError(f"attention mask shape {tuple(attention_mask.shape)} does not match the hidden "
                             f"states' [B, T] = {tuple(stack.shape[1:3])}")
        mask = attention_mask.bool()
        summaries = masked_mean(stack, mask.unsqueeze(0)).transpose(0, 1)          # eq. 2, [B, N_f, H]
        context, scores = self.layer_attention(summaries)                          # eqs. 3-6
        if self.gate is not None:
            layer_weights = torch.sigmoid(self.gate(context))                      # eq. 7, [B, N_f]
        else:
            layer_weights = scores.mean(dim=1).to(context.dtype)                   # rows sum to 1
        fused_raw = torch.einsum("bj,jbth->bth", layer_weights.to(stack.dtype), stack)   # eq. 8
        enhanced = self.enhance_norm(fused_raw + self.content_projection(fused_raw)
                                     + self.interaction(fused_raw))                # eq. 9
        token_scores = self.token_scorer(enhanced).squeeze(-1)                     # [B, T]
        token_weights = masked_softmax(token_scores, mask)                         # eq. 10
        c_local = torch.einsum("bt,bth->bh", token_weights.to(enhanced.dtype), enhanced)  # eq. 11
        c_global = self.global_context(masked_mean(enhanced, mask))                # eqs. 12-13
        c_fused = self.context_fusion(torch.cat([c_local, c_global], dim=-1))
        embedding = self.output_norm(c_fused + self.output_projection(c_fused))   # eq. 14
        return FusionOutput(embedding, layer_weights, token_weights, summaries)


class MeanPooling(serialization.SavedModule, nn.Module):
    """``kind="mean"``: no fusion. The embedding is the attention-mask mean of the top layer's tokens, the layer
    weights put 1 on the top layer, the token weights are the mask's uniform weights; the layer means (eq. 2, what a
    pooled readout reads) are those of every fused layer, as the ALF module gives them. No parameters.

    Building it draws (and drops) the initial weights of the ALF module of the same config, so that every part
    built after it (head, readout, LoRA) starts from exactly the weights it has with ``kind="alf"`` and the same
    seed: the two models differ in the pooling alone."""

    config_class = FusionConfig
    config_kind = "alfia.fusion"

    def __init__(self, config: FusionConfig):
        super().__init__()
        config.validate("fusion.").require("hidden_size", path="fusion.")
        self.config = config
        AdaptiveLayerFusion(dataclasses.replace(config, kind="alf"))   # the same random draws, weights dropped

    def forward(self, hidden_states: torch.Tensor | Sequence[torch.Tensor],
                attention_mask: torch.Tensor) -> FusionOutput:
        stack = stacked_layers(hidden_states, self.config)
        last = stack[-1]
        mask = attention_mask.bool()
        token_weights = mask.float() / mask.float().sum(1, keepdim=True).clamp(min=1)
        layer_weights = torch.zeros(last.shape[0], stack.shape[0], dtype=last.dtype, device=last.device)
        layer_weights[:, -1] = 1
        means = masked_mean(stack, mask.unsqueeze(0)).transpose(0, 1)
        return FusionOutput(masked_mean(last, mask), layer_weights, token_weights, means)


FUSION_MODULES = {"alf": AdaptiveLayerFusion, "mean": MeanPooling}


def fusion_class(kind: str) -> type[AdaptiveLayerFusion] | type[MeanPooling]:
    """The module of a fusion ``kind`` (:data:`FUSION_KINDS`)."""
    return FUSION_MODULES[kind]
