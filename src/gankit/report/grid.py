"""Image grids for people: samples side by side, saved as 8-bit PNG.

Tensors here use the model convention, values in [-1, 1]; grids stay in that range so they can
be logged as they are, and become 8-bit only when saved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from gankit.atomic import write_bytes_atomic
from gankit.data.image_io import to_pil


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"expected images shaped (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("cannot make a grid of zero images")
    if images.shape[1] not in (1, 2, 3, 4):
        raise ValueError(f"expected 1 to 4 channels, got {images.shape[1]}")
    return images.detach().to("cpu", torch.float32).clamp(-1.0, 1.0)


def _on_white(images: torch.Tensor) -> torch.Tensor:
    """Composite gray+alpha or RGBA on white (1.0), so transparent pixels do not show black."""
    if images.shape[1] not in (2, 4):
        return images
    color, alpha = images[:, :-1], (images[:, -1:] + 1.0) / 2.0
    return color * alpha + (1.0 - alpha)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) with C in 1..4 -> (N, 3, H, W) for display: gray repeated, alpha on white."""
    images = _on_white(_as_batch(images))
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def make_grid(
    images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile (N, C, H, W) images, ``nrow`` per row, into one (C', H', W') image.

    Gray stays one channel; gray+alpha and RGBA are composited on white (C' = 1 or 3).
    Cell ``i`` starts at ``(padding + (i // nrow) * (H + padding),
    padding + (i % nrow) * (W + padding))``; padding and empty cells hold ``pad_value``.
    """
    if nrow < 1:
        raise ValueError(f"nrow must be at least 1, got {nrow}")
    images = _on_white(_as_batch(images))
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.full(
        (c, rows * (h + padding) + padding, cols * (w + padding) + padding), float(pad_value)
    )
    for i in range(n):
        y = padding + (i // cols) * (h + padding)
        x = padding + (i % cols) * (w + padding)
        grid[:, y : y + h, x : x + w] = images[i]
    return grid


def image_rows(
    columns: dict[str, torch.Tensor],
    padding: int = 2,
    *,
    samples_per_row: int = 1,
    min_size: int = 0,
) -> torch.Tensor:
    """One row per sample, one column per named batch (e.g. input | output | target), in RGB.

    Batches of different sizes (a low-resolution input next to its upscaled output) are shown
    at the largest size with nearest-neighbour scaling, so pixels stay visible; ``min_size``
    enlarges small images the same way (by a whole factor). ``samples_per_row`` puts several
    samples side by side.
    """
    if not columns:
        raise ValueError("image_rows needs at least one column")
    batches = {name: to_rgb(t) for name, t in columns.items()}
    counts = {name: b.shape[0] for name, b in batches.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"columns hold different numbers of images: {counts}")
    h = max(b.shape[2] for b in batches.values())
    w = max(b.shape[3] for b in batches.values())
    factor = max(1, -(-min_size // h)) if min_size else 1
    h, w = h * factor, w * factor
    resized = [
        b if b.shape[2:] == (h, w) else F.interpolate(b, size=(h, w), mode="nearest")
        for b in batches.values()
    ]
    interleaved = torch.stack(resized, dim=1).flatten(0, 1)  # sample-major: row i = sample i
    return make_grid(interleaved, nrow=len(resized) * samples_per_row, padding=padding)


def save_png(image: Image.Image, path: Path) -> Path:
    """Save a PIL image as PNG atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    write_bytes_atomic(Path(path), buf.getvalue())
    return Path(path)


def save_grid(tensor: torch.Tensor, path: Path) -> Path:
    """Save a (C, H, W) image in [-1, 1] (a grid) as an 8-bit PNG, atomically.

    A batch (N, C, H, W) is tiled into a near-square grid first.
    """
    if tensor.dim() == 4:
        tensor = make_grid(tensor, nrow=math.ceil(math.sqrt(tensor.shape[0])))
    return save_png(to_pil(tensor), Path(path))
