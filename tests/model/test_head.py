"""Attentional Classifier Head: eqs. 15-19 recomputed by hand from the module's own parameters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from alfia.errors import AlfiaError
from alfia.model.head import AttentionalClassifierHead, HeadConfig

H, B = 32, 5


def _head(seed: int = 0) -> AttentionalClassifierHead:
    torch.manual_seed(seed)
    head = AttentionalClassifierHead(HeadConfig(H)).eval()
    with torch.no_grad():
        for name, p in head.named_parameters():
            if "norm" in name or "bias" in name:
                p.add_(0.3 * torch.randn_like(p))
    return head


def _ln(x, norm):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def test_equations_15_to_19():
    head = _head()
    z = torch.randn(B, H, generator=torch.Generator().manual_seed(1))
    mha = head.attention
    n_h, d = mha.num_heads, H // mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    # eq. 15 in full: scaled dot-product attention of Z' (length 1) with itself, per head
    q, k, v = z @ w_q.T + b_q, z @ w_k.T + b_k, z @ w_v.T + b_v
    heads = []
    for hd in range(n_h):
        sl = slice(hd * d, (hd + 1) * d)
        score = (q[:, sl] * k[:, sl]).sum(-1, keepdim=True) / math.sqrt(d)      # [B, 1]: one key
        heads.append(torch.softmax(score[:, :, None], dim=-1)[:, 0] * v[:, sl])  # softmax over 1 key = 1
    attn = torch.cat(heads, dim=-1) @ mha.out_proj.weight.T + mha.out_proj.bias
    # with a single key the attention is exactly out_proj(value(Z)), as documented in the module
    torch.testing.assert_close(attn, (z @ w_v.T + b_v) @ mha.out_proj.weight.T + mha.out_proj.bias)
    z1 = _ln(z + attn, head.norm1)                                                  # eq. 16
    ffn = head.ffn
    f = F.gelu(z1 @ ffn[0].weight.T + ffn[0].bias) @ ffn[3].weight.T + ffn[3].bias  # eq. 17
    z2 = _ln(z1 + f, head.norm2)                                                    # eq. 18
    logits = (z2 @ head.output.weight.T + head.output.bias).squeeze(-1)             # eq. 19
    with torch.no_grad():
        out = head(z)
    assert out.shape == (B,)
    torch.testing.assert_close(out, logits, atol=1e-5, rtol=1e-5)
    # one logit + sigmoid == eq. 19's two-class softmax over [0, z]
    two_class = torch.softmax(torch.stack([torch.zeros_like(out), out], dim=-1), dim=-1)[:, 1]
    torch.testing.assert_close(torch.sigmoid(out), two_class)


def test_samples_are_independent():
    head = _head()
    z = torch.randn(B, H)
    with torch.no_grad():
        full = head(z)
        single = torch.stack([head(z[i:i + 1])[0] for i in range(B)])
    torch.testing.assert_close(full, single, atol=1e-6, rtol=1e-5)


def test_hidden_size_must_divide_by_heads():
    with pytest.raises(AlfiaError, match=r"head.num_heads must divide the hidden size 30"):
        AttentionalClassifierHead(HeadConfig(30, num_heads=4))
    AttentionalClassifierHead(HeadConfig(384, num_heads=4))   # MiniLM


def test_wrong_input_shape():
    with pytest.raises(AlfiaError, match=r"expects \[B, 32\]"):
        _head()(torch.randn(2, 3, H))


def test_save_load_roundtrip(tmp_path):
    head = _head()
    head.save(tmp_path / "head")
    loaded = AttentionalClassifierHead.load(tmp_path / "head").eval()
    z = torch.randn(B, H)
    with torch.no_grad():
        assert torch.equal(head(z), loaded(z))
    (tmp_path / "head" / "config.json").write_text("{not json")
    with pytest.raises(AlfiaError, match="not valid JSON"):
        AttentionalClassifierHead.load(tmp_path / "head")
