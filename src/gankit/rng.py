"""Per-sample random draws that a run on several processes shares with a single process.

In a distributed run every process keeps the same global torch RNG stream (the engine
re-synchronises it at each step) and holds one contiguous block of the global batch. A draw of
one row per sample (the noise z of a generator, the interpolation weights of a gradient
penalty) asks :func:`per_sample` for it: each process draws the rows of the whole global batch
and keeps its own block, so sample ``i`` of the global batch gets the same numbers as it would
in one process training on the whole batch, and no two processes share noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BatchShard:
    """This process's block of the global batch: rows ``offset .. offset + size``."""

    offset: int = 0
    size: int = 0  # 0: not in a distributed step (draws are plain)
    global_size: int = 0
    rank: int = 0
    world_size: int = 1


_current = BatchShard()


def set_batch_shard(shard: BatchShard) -> None:
    global _current
    _current = shard


def batch_shard() -> BatchShard:
    return _current


def per_sample(draw: Callable[[int], torch.Tensor], n: int) -> torch.Tensor:
    """``draw(n)`` for ``n`` rows, drawn as this process's block of the global batch.

    ``n`` equal to the local batch: the rows of the whole global batch are drawn and this
    block kept. Any other ``n`` (a model that splits its batch into critic mini-batches):
    ``n`` rows for each process, this process's kept.
    """
    shard = _current
    if shard.world_size == 1 or shard.size == 0:
        return draw(n)
    if n == shard.size:
        return draw(shard.global_size)[shard.offset:shard.offset + n]
    return draw(n * shard.world_size)[shard.rank * n:(shard.rank + 1) * n]
