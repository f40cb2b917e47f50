"""Length-bucketed batches with dynamic padding, and the epoch's plan of steps across ranks.

Padding every text to the longest one of the whole cohort wastes most of the compute on pad tokens; here each
batch is padded only to its own longest text, and texts of similar length are batched together.

Under data parallelism every rank owns a fixed shard of the training rows (row ``i`` belongs to rank ``i % world``),
so that a rank caches only its own rows' frozen layers; each step takes one local batch from every shard. A shard
with fewer batches than the others takes zero-weighted steps at the end, so that every rank joins every collective.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


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


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """The rows of ``n`` that rank ``rank`` of ``world`` owns: every world-th row, from its rank on."""
    return np.arange(rank, n, world)


@dataclass
class Step:
    """One optimiser step: per micro-step, every rank's rows (an empty array: a zero-weighted step), and the number
    of rows the step averages over (all ranks, all micro-steps)."""

    micro: list[list[np.ndarray]]
    rows: int


def epoch_plan(lengths: np.ndarray, batch_size: int, world: int, grad_accum: int, seed: int) -> list[Step]:
    """The optimiser steps of one epoch, the same on every rank (each rank computes the whole plan, no collective).

    Rank r's shard is shuffled into bucketed batches with its own seed (rank 0's is ``seed``: one process gives the
    batches it always gave); micro-step s takes every rank's s-th batch; ``grad_accum`` micro-steps make a step.
    """
    per_rank = []
    for r in range(world):
        rows = shard(len(lengths), r, world)
        per_rank.append([rows[b] for b in bucketed_batches(lengths[rows], batch_size, shuffle=True,
                                                           seed=seed + 7919 * r)])
    empty = np.zeros(0, dtype=np.int64)
    n_micro = max(len(b) for b in per_rank)
    micro = [[b[s] if s < len(b) else empty for b in per_rank] for s in range(n_micro)]
    steps = []
    for start in range(0, n_micro, grad_accum):
        group = micro[start:start + grad_accum]
        steps.append(Step(group, sum(len(rows) for ranks in group for rows in ranks)))
    return steps
