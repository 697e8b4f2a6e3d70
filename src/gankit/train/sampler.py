"""Deterministic data order: the same (seed, epoch) always gives the same keys.

Each key is ``(index, sample_seed)``; datasets draw every random choice of a sample (crop, flip,
unpaired partner) from ``sample_seed``. Data order and augmentation then depend only on the seed
and the position in the run, never on worker processes or global RNGs, which is what lets a run
stopped mid-epoch resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    def __init__(self, n: int, seed: int, epoch: int, *, start: int = 0, shuffle: bool = True):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(n) if shuffle else np.arange(n)
        seeds = rng.integers(0, 2**63 - 1, size=n)
        self.keys = [(int(i), int(s)) for i, s in zip(order, seeds, strict=True)][start:]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)
