"""edges2shapes: a built-in paired demo dataset, generated on the fly (no download).

Each sample is 1-3 non-overlapping shapes on a light background. "B" is the picture: each
shape filled with its kind's colour (circle red, rectangle blue, triangle green) and shaded
by a radial highlight towards its upper left; the background is a soft vertical gradient.
"A" is the outline drawing of the same shapes (black lines on white, like edges2shoes). The
fill follows from the outline, so a small pix2pix learns the mapping in minutes on a CPU.

Sample ``i`` of ``ShapesDataset(n, size, seed)`` depends only on (seed, i); keys work as in
:mod:`gankit.data.datasets`: ``i`` or ``(i, seed)``, the flip drawn from the key's generator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from gankit.data.datasets import parse_key
from gankit.data.image_io import save_image
from gankit.errors import ConfigError

KINDS = ("circle", "rectangle", "triangle")
COLORS = {
    "circle": (0.85, 0.13, 0.12),
    "rectangle": (0.13, 0.30, 0.85),
    "triangle": (0.10, 0.62, 0.18),
}
_EDGE_HALF_WIDTH = 1.0  # outline half width in pixels


def _box_sdf(x: np.ndarray, y: np.ndarray, cx: float, cy: float, hx: float, hy: float
             ) -> np.ndarray:
    qx, qy = np.abs(x - cx) - hx, np.abs(y - cy) - hy
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


def _triangle_sdf(x: np.ndarray, y: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Largest signed distance to the three edge lines: exact inside and along the edges."""
    d = np.full(x.shape, -np.inf)
    for i in range(3):
        (x0, y0), (x1, y1) = verts[i], verts[(i + 1) % 3]
        nx, ny = y0 - y1, x1 - x0  # outward normal: vertices run counter-clockwise (y up)
        norm = np.hypot(nx, ny)
        d = np.maximum(d, ((x - x0) * nx + (y - y0) * ny) / norm)
    return d


def _layout(rng: np.random.Generator, size: int) -> list[tuple[str, float, float, float, Any]]:
    """1-3 shapes as (kind, centre x, centre y, radius, extra) with disjoint bounding circles."""
    shapes: list[tuple[str, float, float, float, Any]] = []
    count = int(rng.integers(1, 4))
    for _ in range(count):
        for _try in range(20):
            r = float(rng.uniform(0.13, 0.24)) * size
            cx, cy = (float(v) for v in rng.uniform(r + 2, size - r - 2, size=2))
            if all(np.hypot(cx - sx, cy - sy) > r + sr + 3 for _, sx, sy, sr, _ in shapes):
                break
        else:
            continue
        kind = KINDS[int(rng.integers(3))]
        if kind == "rectangle":
            aspect = float(rng.uniform(0.6, 1.0))
            extra = (r * 0.8, r * 0.8 * aspect) if rng.random() < 0.5 else (r * 0.8 * aspect,
                                                                             r * 0.8)
        elif kind == "triangle":
            start = float(rng.uniform(0, 2 * np.pi))
            angles = start + np.array([0.0, 2.0, 4.0]) * np.pi / 3
            angles += rng.uniform(-0.25, 0.25, size=3)
            extra = np.stack([cx + r * np.cos(angles), cy - r * np.sin(angles)], axis=1)
        else:
            extra = None
        shapes.append((kind, cx, cy, r, extra))
    return shapes


def render(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges, picture) of sample ``index`` as float32 HxWx3 arrays in [0, 1]."""
    rng = np.random.default_rng([seed, index])
    coords = np.arange(size, dtype=np.float64) + 0.5
    top, bottom = 0.97, 0.86
    picture = np.repeat((top + (bottom - top) * coords / size)[:, None, None], size, axis=1)
    picture = np.repeat(picture, 3, axis=2)
    edges = np.zeros((size, size))
    for kind, cx, cy, r, extra in _layout(rng, size):
        # work in the shape's bounding window: far cheaper than the whole image
        y0, y1 = max(0, int(cy - r) - 3), min(size, int(cy + r) + 4)
        x0, x1 = max(0, int(cx - r) - 3), min(size, int(cx + r) + 4)
        x, y = np.meshgrid(coords[x0:x1], coords[y0:y1])
        if kind == "circle":
            sdf = np.hypot(x - cx, y - cy) - r
        elif kind == "rectangle":
            sdf = _box_sdf(x, y, cx, cy, *extra)
        else:
            sdf = _triangle_sdf(x, y, extra)
        coverage = np.clip(0.5 - sdf, 0.0, 1.0)[..., None]
        glow = np.clip(np.hypot(x - (cx - 0.35 * r), y - (cy - 0.35 * r)) / (1.6 * r), 0, 1)
        fill = (np.array(COLORS[kind]) * (1.05 - 0.55 * glow[..., None])
                + 0.35 * ((1 - glow) ** 4)[..., None])
        window = picture[y0:y1, x0:x1]
        window[:] = window * (1 - coverage) + np.clip(fill, 0, 1) * coverage
        line = np.clip(1.5 - np.abs(sdf) / _EDGE_HALF_WIDTH, 0.0, 1.0)
        np.maximum(edges[y0:y1, x0:x1], line, out=edges[y0:y1, x0:x1])
    drawing = np.repeat((1.0 - edges)[..., None], 3, axis=2)
    return drawing.astype(np.float32), picture.astype(np.float32)


def _tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).mul_(2).sub_(1)


class ShapesDataset(Dataset):
    """The edges2shapes demo pairs: {"A": outlines, "B": shaded shapes, "A_path", "B_path"}."""

    data_kind = "paired"

    def __init__(self, n: int, size: int = 64, seed: int = 0,
                 kind: Literal["edges2shapes"] = "edges2shapes", flip: bool = True) -> None:
        if kind != "edges2shapes":
            raise ConfigError(f"unknown shapes dataset kind {kind!r}; use edges2shapes")
        if n < 1 or size < 16:
            raise ConfigError(f"shapes dataset needs n >= 1 and size >= 16, got n={n}, "
                              f"size={size}")
        self.n, self.size, self.seed, self.kind, self.flip = n, size, seed, kind, flip

    def __len__(self) -> int:
        return self.n

    def describe(self) -> str:
        flips = ", random flips" if self.flip else ""
        return (f"built-in {self.kind} dataset: {self.n} pairs of {self.size}x{self.size} "
                f"images, seed {self.seed}{flips}")

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, self.n)
        drawing, picture = render(self.seed, index, self.size)
        a, b = _tensor(drawing), _tensor(picture)
        if self.flip and rng.random() < 0.5:
            a, b = a.flip(-1), b.flip(-1)
        name = f"shapes/{index:06d}"
        return {"A": a, "B": b, "A_path": name, "B_path": name}


def write_shapes_folder(root: str | os.PathLike, n: int, size: int = 64, seed: int = 0
                        ) -> Path:
    """Write ``n`` samples as a paired folder: root/A/000000.png (edges), root/B/... (fills)."""
    root = Path(root)
    for i in range(n):
        drawing, picture = render(seed, i, size)
        save_image(_tensor(drawing), root / "A" / f"{i:06d}.png")
        save_image(_tensor(picture), root / "B" / f"{i:06d}.png")
    return root
