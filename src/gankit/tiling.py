"""Translate images too large for memory in overlapping tiles, blended without seams.

The image is cut into ``tile`` x ``tile`` windows whose starts are ``tile - overlap`` apart
(rounded down to the generator's size multiple, so every tile sees the same downsampling grid
as the whole image would). Tiles are translated a batch at a time and added into one output
with weights that partition unity: in each overlap a tile's weight is 0 over the quarter next
to its own edge (where its convolutions saw padding instead of the neighbouring pixels), rises
along a raised cosine over the middle half and is 1 beyond. Sides that lie on the image border
get weight 1 up to the border, since the whole-image run pads them the same way.

For a fully-convolutional generator in eval mode the result equals the untiled one wherever
every tile that contributes is further than the generator's receptive radius from its inner
edges; ``overlap / 4`` at least that radius makes it equal everywhere. Normalisation that uses
the statistics of the image itself (instance norm, or batch norm in train mode) sees one tile
at a time, so there the tiles differ slightly in tone; large tiles keep that small.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gankit.errors import ConfigError

log = logging.getLogger(__name__)

Translate = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Tile:
    """One window ``[top, bottom) x [left, right)`` of the image and its overlaps with the
    neighbouring windows on each side (0 on the image border)."""

    top: int
    bottom: int
    left: int
    right: int
    overlap_top: int
    overlap_bottom: int
    overlap_left: int
    overlap_right: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.bottom - self.top, self.right - self.left


def _spans(length: int, tile: int, step: int) -> list[tuple[int, int]]:
    """[start, end) windows of at most ``tile`` covering ``range(length)``, ``step`` apart."""
    if length <= tile:
        return [(0, length)]
    spans = []
    start = 0
    while True:
        end = min(start + tile, length)
        spans.append((start, end))
        if end == length:
            return spans
        start += step


def tile_step(tile: int, overlap: int, multiple: int = 1) -> int:
    """Distance between tile starts: ``tile - overlap``, rounded down to ``multiple`` (the
    generator's size multiple) unless that would leave less than half a tile. At most half a
    tile of overlap means a pixel lies in at most two tiles along each axis, where the weights
    of :func:`tile_weights` add up to exactly 1."""
    if tile < 1:
        raise ConfigError(f"--tile must be at least 1 pixel, not {tile}")
    if overlap < 0 or 2 * overlap > tile:
        raise ConfigError(f"--overlap must be between 0 and half of --tile ({tile // 2}), not "
                          f"{overlap}")
    step = tile - overlap
    aligned = step // multiple * multiple
    if multiple > 1 and aligned >= multiple and 2 * aligned >= tile:
        step = aligned
    return step


def tile_grid(height: int, width: int, tile: int, overlap: int, multiple: int = 1
              ) -> list[Tile]:
    """The windows that cover a ``height`` x ``width`` image, row by row."""
    step = tile_step(tile, overlap, multiple)
    rows, cols = _spans(height, tile, step), _spans(width, tile, step)

    def overlaps(spans: list[tuple[int, int]], i: int) -> tuple[int, int]:
        before = spans[i - 1][1] - spans[i][0] if i > 0 else 0
        after = spans[i][1] - spans[i + 1][0] if i + 1 < len(spans) else 0
        return max(before, 0), max(after, 0)

    grid = []
    for i, (top, bottom) in enumerate(rows):
        ot, ob = overlaps(rows, i)
        for j, (left, right) in enumerate(cols):
            ol, orr = overlaps(cols, j)
            grid.append(Tile(top, bottom, left, right, ot, ob, ol, orr))
    return grid


def _ramp(length: int, before: int, after: int) -> torch.Tensor:
    """Weights along one side of a tile: 0 -> 1 over the middle half of the overlap with the
    previous tile, 1 -> 0 over the middle half of the overlap with the next one."""
    x = torch.arange(length, dtype=torch.float64) + 0.5
    w = torch.ones(length, dtype=torch.float64)
    if before > 0:
        t = ((x / before - 0.25) / 0.5).clamp(0, 1)
        w = w * (0.5 - 0.5 * torch.cos(math.pi * t))
    if after > 0:
        t = (((length - x) / after - 0.25) / 0.5).clamp(0, 1)
        w = w * (0.5 - 0.5 * torch.cos(math.pi * t))
    return w.float()


def tile_weights(t: Tile) -> torch.Tensor:
    """The (H, W) blending weights of one tile."""
    h, w = t.shape
    return _ramp(h, t.overlap_top, t.overlap_bottom)[:, None] * _ramp(
        w, t.overlap_left, t.overlap_right)[None, :]


def translate_tiled(
    translate: Translate,
    image: torch.Tensor,
    tile: int,
    overlap: int,
    *,
    batch_size: int = 4,
    multiple: int = 1,
) -> torch.Tensor:
    """``translate`` (N, C, h, w) -> (N, C', h, w) applied to a (C, H, W) image in tiles
    (or (N, C', s h, s w) -> an image ``s`` times larger: super-resolution).

    Only the input, the output and one batch of tiles are in memory at a time; the generator's
    activations are those of ``batch_size`` tiles, not of the whole image.
    """
    if image.dim() != 3:
        raise ValueError(f"translate_tiled takes one CxHxW image, got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    grid = tile_grid(height, width, tile, overlap, multiple)
    by_shape: dict[tuple[int, int], list[Tile]] = defaultdict(list)
    for t in grid:
        by_shape[t.shape].append(t)
    out: torch.Tensor | None = None
    total = torch.zeros(0)
    for tiles in by_shape.values():
        for start in range(0, len(tiles), batch_size):
            chunk = tiles[start:start + batch_size]
            batch = torch.stack([image[:, t.top:t.bottom, t.left:t.right] for t in chunk])
            result = translate(batch).detach().to("cpu", torch.float32)
            # A super-resolution model's output is ``scale`` times the tile: every window,
            # overlap and weight of the output is the input's scaled by it.
            scale = max(1, result.shape[-1] // batch.shape[-1])
            if out is None:
                out = torch.zeros(result.shape[1], height * scale, width * scale)
                total = torch.zeros(height * scale, width * scale)
            for t, res in zip(chunk, result, strict=True):
                if scale > 1:
                    t = Tile(*(scale * v for v in dataclasses.astuple(t)))
                weight = tile_weights(t)
                out[:, t.top:t.bottom, t.left:t.right] += res * weight
                total[t.top:t.bottom, t.left:t.right] += weight
    assert out is not None
    return out / total.clamp_min(1e-12)
