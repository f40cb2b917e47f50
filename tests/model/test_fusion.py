"""Adaptive Layer Fusion: every equation (2-14) recomputed by hand from the module's own parameters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from alfia.errors import AlfiaError
from alfia.model.fusion import AdaptiveLayerFusion, FusionConfig, masked_softmax

H, N_F, B, T = 32, 3, 3, 7


def _inputs(seed: int = 0, b: int = B, t: int = T, n_f: int = N_F, h: int = H):
    g = torch.Generator().manual_seed(seed)
    hidden = [torch.randn(b, t, h, generator=g) for _ in range(n_f)]
    lengths = torch.tensor([t, 4, 1][:b])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    return hidden, mask


def _module(use_gating: bool = True, seed: int = 0) -> AdaptiveLayerFusion:
    torch.manual_seed(seed)
    module = AdaptiveLayerFusion(FusionConfig(H, num_fusion_layers=N_F, use_gating=use_gating)).eval()
    with torch.no_grad():   # LayerNorms are 1/0 at init: randomise them so the equations are really tested
        for name, p in module.named_parameters():
            if "norm" in name.lower() or ".1." in name:
                p.add_(0.3 * torch.randn_like(p))
    return module


def _ln(x, norm):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _lin(x, lin):
    return x @ lin.weight.T + lin.bias


def reference(m: AdaptiveLayerFusion, hidden: list[torch.Tensor], mask: torch.Tensor):
    """Eqs. 2-14 written out one sample at a time, straight from the paper."""
    n_h, d_k = m.config.num_heads, m.config.head_dim
    outs, lambdas, betas = [], [], []
    for i in range(mask.shape[0]):
        a = mask[i].float()                                                    # A_t
        layers = [hs[i] for hs in hidden]                                      # H^(j), [T, H]
        s = torch.stack([(a[:, None] * h_j).sum(0) / a.sum() for h_j in layers])   # eq. 2, [N_f, H]
        q_global = s.mean(0)
        q = _lin(q_global, m.query)                                            # eq. 3
        k = _lin(s, m.key)                                                     # eq. 4
        v = _lin(s, m.value)                                                   # eq. 5
        heads_ctx, heads_scores = [], []
        for hd in range(n_h):
            sl = slice(hd * d_k, (hd + 1) * d_k)
            sc = torch.softmax(q[sl] @ k[:, sl].T / math.sqrt(d_k), dim=-1)     # eq. 6, [N_f]
            heads_scores.append(sc)
            heads_ctx.append(sc @ v[:, sl])
        c_prime = _lin(torch.cat(heads_ctx), m.out)                            # c'_layer_attn
        if m.config.use_gating:
            lam = torch.sigmoid(_lin(c_prime, m.gate))                         # eq. 7
        else:
            lam = torch.stack(heads_scores).mean(0)
        fused = sum(lam[j] * layers[j] for j in range(len(layers)))            # eq. 8
        inter = m.interaction
        h_int = _lin(F.gelu(_ln(_lin(fused, inter[0]), inter[1])), inter[4])
        enh = _ln(fused + _lin(fused, m.content_projection) + h_int, m.enhance_norm)  # eq. 9
        ts = m.token_scorer
        score = _lin(torch.tanh(_lin(torch.tanh(_lin(enh, ts[0])), ts[2])), ts[4]).squeeze(-1)
        real = a.bool()
        beta = torch.zeros_like(score)
        beta[real] = torch.softmax(score[real], dim=0)                         # eq. 10
        c_local = (beta[:, None] * enh).sum(0)                                 # eq. 11
        pooled = (a[:, None] * enh).sum(0) / a.sum()                           # eq. 12
        gc = m.global_context
        c_global = F.gelu(_ln(_lin(pooled, gc[0]), gc[1]))                     # eq. 13
        cf = m.context_fusion
        c_fused = _ln(_lin(torch.cat([c_local, c_global]), cf[0]), cf[1])
        out = _ln(c_fused + _lin(c_fused, m.output_projection), m.output_norm)  # eq. 14
        outs.append(out)
        lambdas.append(lam)
        betas.append(beta)
    return torch.stack(outs), torch.stack(lambdas), torch.stack(betas)


@pytest.mark.parametrize("use_gating", [True, False])
def test_equations_2_to_14(use_gating):
    m = _module(use_gating)
    hidden, mask = _inputs()
    with torch.no_grad():
        out = m(hidden, mask)
        ref_emb, ref_lam, ref_beta = reference(m, hidden, mask)
    assert out.embedding.shape == (B, H) and out.layer_weights.shape == (B, N_F) and out.token_weights.shape == (B, T)
    torch.testing.assert_close(out.embedding, ref_emb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.layer_weights, ref_lam, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.token_weights, ref_beta, atol=1e-6, rtol=1e-5)


def test_tensor_and_list_inputs_agree():
    m = _module()
    hidden, mask = _inputs()
    with torch.no_grad():
        a, b = m(hidden, mask), m(torch.stack(hidden), mask)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_gating_off_layer_weights_sum_to_one_and_gating_on_are_sigmoids():
    hidden, mask = _inputs(1)
    with torch.no_grad():
        off = _module(use_gating=False)(hidden, mask).layer_weights
        on = _module(use_gating=True)(hidden, mask).layer_weights
    assert off.shape == on.shape == (B, N_F)
    torch.testing.assert_close(off.sum(-1), torch.ones(B))
    assert bool(((on > 0) & (on < 1)).all())
    assert not torch.allclose(on.sum(-1), torch.ones(B))


def test_token_weights_sum_to_one_and_vanish_on_padding():
    hidden, mask = _inputs(2)
    with torch.no_grad():
        beta = _module()(hidden, mask).token_weights
    torch.testing.assert_close(beta.sum(-1), torch.ones(B))
    assert bool((beta[mask == 0] == 0).all())
    assert bool((beta[mask == 1] > 0).all())


def test_padding_does_not_change_the_output():
    m = _module()
    hidden, mask = _inputs(3)
    extra = 5
    g = torch.Generator().manual_seed(9)
    padded = [torch.cat([h, 100 * torch.randn(B, extra, H, generator=g)], dim=1) for h in hidden]
    padded_mask = torch.cat([mask, torch.zeros(B, extra, dtype=mask.dtype)], dim=1)
    # garbage in the positions already padded must not matter either
    for h in padded:
        h[padded_mask == 0] = 1e4 * torch.randn(int((padded_mask == 0).sum()), H, generator=g)
    with torch.no_grad():
        a, b = m(hidden, mask), m(padded, padded_mask)
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.layer_weights, b.layer_weights, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b.token_weights[:, :T][mask == 1], a.token_weights[mask == 1], atol=1e-6, rtol=1e-5)
    assert bool((b.token_weights[padded_mask == 0] == 0).all())


def test_every_layer_matters_and_each_sample_is_independent():
    m = _module()
    hidden, mask = _inputs(4)
    with torch.no_grad():
        base = m(hidden, mask).embedding
        for j in range(N_F):
            changed = [h.clone() for h in hidden]
            changed[j][0, 0] += 1.0
            out = m(changed, mask).embedding
            assert not torch.allclose(out[0], base[0])
            torch.testing.assert_close(out[1:], base[1:])


def test_masked_softmax_is_robust():
    scores = torch.tensor([[1e30, -1e30, 3.0], [0.0, 0.0, 0.0]], dtype=torch.bfloat16)
    mask = torch.tensor([[1, 0, 1], [0, 0, 0]])
    out = masked_softmax(scores, mask)
    assert out.dtype == torch.float32 and not out.isnan().any()
    assert out[0, 1] == 0 and out[1].sum() == 0


def test_forward_sets_no_state():
    m = _module()
    before = set(vars(m))
    hidden, mask = _inputs()
    with torch.no_grad():
        m(hidden, mask)
    assert set(vars(m)) == before


def test_wrong_number_of_layers_is_a_clear_error():
    hidden, mask = _inputs(n_f=N_F + 1)
    with pytest.raises(AlfiaError, match=f"expects {N_F} hidden-state tensors"):
        _module()(hidden, mask)


def test_config_validation():
    with pytest.raises(AlfiaError):
        AdaptiveLayerFusion(FusionConfig(None))
    with pytest.raises(AlfiaError):
        AdaptiveLayerFusion(FusionConfig(H, num_fusion_layers=0))


def test_save_load_roundtrip(tmp_path):
    m = _module(use_gating=False)
    m.save(tmp_path / "fusion")
    loaded = AdaptiveLayerFusion.load(tmp_path / "fusion").eval()
    assert loaded.config == m.config
    hidden, mask = _inputs()
    with torch.no_grad():
        assert torch.equal(m(hidden, mask).embedding, loaded(hidden, mask).embedding)
    raw = (tmp_path / "fusion" / "config.json").read_text()
    assert '"torch"' in raw and '"transformers"' in raw and '"alfia"' in raw
    (tmp_path / "fusion" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AlfiaError, match="corrupted"):
        AdaptiveLayerFusion.load(tmp_path / "fusion")


def test_authors_token_scorer_is_an_option_and_tanh_stays_the_default(tmp_path):
    assert FusionConfig(H).token_scorer == "tanh"
    torch.manual_seed(0)
    m = AdaptiveLayerFusion(FusionConfig(H, num_fusion_layers=N_F, token_scorer="authors")).eval()
    assert [type(x).__name__ for x in m.token_scorer] == [
        "Linear", "LayerNorm", "GELU", "Dropout", "Linear", "GELU", "Linear"]
    assert [x.out_features for x in m.token_scorer if isinstance(x, torch.nn.Linear)] == [H // 2, H // 4, 1]
    hidden, mask = _inputs()
    with torch.no_grad():
        out = m(hidden, mask)
    assert torch.allclose(out.token_weights.sum(-1), torch.ones(B)) and (out.token_weights[mask == 0] == 0).all()
    m.save(tmp_path / "fusion")
    loaded = AdaptiveLayerFusion.load(tmp_path / "fusion").eval()
    assert loaded.config.token_scorer == "authors"
    with torch.no_grad():
        assert torch.equal(loaded(hidden, mask).embedding, out.embedding)
    with pytest.raises(AlfiaError, match="token_scorer must be one of tanh, authors"):
        AdaptiveLayerFusion(FusionConfig(H, token_scorer="relu"))
