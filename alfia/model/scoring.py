"""Scoring texts with an ALFIA model (Algorithm 2): tokenised once, batched by length, in eval mode and the
model's precision (or the int8 CPU copy), with an optional progress bar. The model class keeps the forward pass;
everything that loops over texts is here, and inference, training and the benchmarks call it.

``score(model, texts, batch_size, collect)`` is the loop: ``collect(output)`` per batch, as ``(row indices,
value)`` pairs. :func:`predict_proba`, :func:`embed` and :func:`predict_embed` put those parts back in the order of
the texts; :func:`collect_outputs` / :func:`assemble_outputs` are the one way to keep every output of a pass
(probability, embedding, layer weights, layer means) and put them back in row order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from alfia.errors import AlfiaError
from alfia.model.runtime import Precision
from alfia.model.tokens import TokenizedTexts

if TYPE_CHECKING:
    from alfia.model.alfia import ALFIA, ALFIAOutput


def batches(model: ALFIA, texts: Sequence[str], batch_size: int,
            runner: nn.Module | None = None) -> Iterator[tuple[np.ndarray, ALFIAOutput]]:
    """Every text tokenised once (unpadded, a few bytes a token: :class:`~alfia.model.tokens.TokenizedTexts`);
    batches of similar token counts, each padded to its own longest text (longest batches first, so the peak
    memory is reached at once); ``runner`` (default ``model``) computes each batch. Yields (row indices into
    ``texts``, output)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise AlfiaError("texts must be a list of strings")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise AlfiaError(f"batch size must be a positive integer, got {batch_size!r}")
    if not texts:
        return
    tokens = TokenizedTexts.from_texts(model.tokenizer, list(texts), model.max_length)
    order = np.argsort(-tokens.lengths, kind="stable")
    runner = model if runner is None else runner
    device = model.device
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        input_ids, mask = tokens.collate(idx)
        yield idx, runner(input_ids.to(device), mask.to(device))


def score(model: ALFIA, texts: Sequence[str], batch_size: int, collect, quantize: bool = False,
          progress: bool = False, on_batch=None) -> list:
    """``collect(output)`` per batch, in eval mode and the model's precision (int8: fp32 around it), as (row
    indices, value) pairs; ``progress``: a progress bar (stderr) over the batches; ``on_batch(n)``: called after
    each batch of n texts. The model's training mode is restored afterwards."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    try:
        runner = None
        if quantize:
            from alfia.model.quantize import quantized_copy

            runner = quantized_copy(model)
        total = -(-len(texts) // batch_size) if isinstance(batch_size, int) and batch_size > 0 else None
        bar = tqdm(batches(model, texts, batch_size, runner), total=total, desc="scoring stays", unit="batch",
                   disable=not progress, leave=False)
        parts = []
        with torch.inference_mode(), Precision().autocast() if quantize else model.precision.autocast():
            for idx, out in bar:
                parts.append((idx, collect(out)))
                if on_batch is not None:
                    on_batch(len(idx))
    finally:
        model.train(was_training)
    return parts


def probability(out: ALFIAOutput) -> np.ndarray:
    """Per batch: P(death) = sigmoid(logit), as numpy."""
    return torch.sigmoid(out.logits.float()).cpu().numpy()


def collect_outputs(out: ALFIAOutput) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Per batch: P(death), the L2-normalised ALF embedding, the layer weights and, with a readout, the fused
    layers' means side by side (its input), as numpy arrays."""
    means = None if out.layer_means is None else out.layer_means.float().flatten(1).cpu().numpy()
    return (torch.sigmoid(out.logits.float()).cpu().numpy(),
            torch.nn.functional.normalize(out.embedding.float(), p=2, dim=-1).cpu().numpy(),
            out.layer_weights.float().cpu().numpy(), means)


def assemble_outputs(parts, n: int, first: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Put the per-batch :func:`collect_outputs` of ``(row indices, outputs)`` pairs back into row order: ``n``
    rows numbered from ``first`` (a chunk of a cohort is a run of consecutive rows)."""
    probs = np.zeros(n, dtype=np.float64)
    emb = weights = means = None
    for rows, (p, e, w, m) in parts:
        idx = rows - first if first else rows
        if emb is None:
            emb = np.zeros((n, e.shape[1]), dtype=np.float32)
            weights = np.zeros((n, w.shape[1]), dtype=np.float32)
            means = None if m is None else np.zeros((n, m.shape[1]), dtype=np.float32)
        probs[idx], emb[idx], weights[idx] = p, e, w
        if means is not None:
            means[idx] = m
    return probs, emb, weights, means


def predict_proba(model: ALFIA, texts: Sequence[str], batch_size: int = 32, quantize: bool = False) -> np.ndarray:
    """P(in-hospital death) for each text, float64 ``[N]``, in the order of ``texts``.

    ``quantize=False`` (default): the model's precision, the same computation as its ``forward`` (each batch
    padded only to its own longest text, which does not change a prediction). ``quantize=True``: a CPU-only int8
    copy of the backbone (LoRA merged, ``nn.Linear`` dynamically quantised, see :mod:`alfia.model.quantize`);
    faster on CPUs, probabilities within ~1e-2 of fp32 (measured in ``docs/speed.md``)."""
    probs = np.zeros(len(texts), dtype=np.float64)
    for idx, p in score(model, texts, batch_size, probability, quantize):
        probs[idx] = p
    return probs


def embed(model: ALFIA, texts: Sequence[str], batch_size: int = 32,
          quantize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 2: L2-normalised ALF embeddings ``[N, H]`` and layer weights lambda ``[N, N_f]`` (float32, order
    of ``texts``; lambda columns: lowest fused layer first). ``quantize``: as in :func:`predict_proba`."""
    def collect(out: ALFIAOutput):
        emb = torch.nn.functional.normalize(out.embedding.float(), p=2, dim=-1)
        return emb.cpu().numpy(), out.layer_weights.float().cpu().numpy()

    parts = score(model, texts, batch_size, collect, quantize)
    hidden, n_f = model.config.fusion.hidden_size, model.config.fusion.num_fusion_layers
    emb = np.zeros((len(texts), hidden), dtype=np.float32)
    weights = np.zeros((len(texts), n_f), dtype=np.float32)
    for idx, (e, w) in parts:
        emb[idx], weights[idx] = e, w
    return emb, weights


def predict_embed(model: ALFIA, texts: Sequence[str], batch_size: int = 32, quantize: bool = False,
                  progress: bool = False, on_batch=None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Probabilities, L2-normalised embeddings, layer weights and (with a readout) the fused layers' means from
    ONE pass (inference costs a backbone forward per text; the study needs them all)."""
    return assemble_outputs(score(model, texts, batch_size, collect_outputs, quantize, progress, on_batch),
                            len(texts))
