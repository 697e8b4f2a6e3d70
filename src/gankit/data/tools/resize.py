"""``gankit data resize IN --out DIR --size N [--mode crop|pad|stretch]``: square images.

Every image under IN (recursively; the folder structure and file names are kept) becomes
N x N, the preparation pix2pix-tensorflow's ``process.py --operation resize`` does:
  crop     scale so the short side is N, then cut the centre square (default)
  pad      scale so the long side is N, then pad the short side equally on both ends
           (``pad_color``: white, black, or edge to repeat the border pixels; an image with
           alpha is padded transparent)
  stretch  scale to N x N, changing the aspect ratio
Resizing is bicubic and antialiased in float, so 16-bit images stay 16-bit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from gankit.data.tools.common import (
    ToolReport,
    bit_depth_of,
    done_before,
    input_images,
    progress,
    read,
    resize_array,
    write,
)
from gankit.errors import ConfigError

log = logging.getLogger(__name__)

ResizeMode = Literal["crop", "pad", "stretch"]
PadColor = Literal["white", "black", "edge"]
MODES = ("crop", "pad", "stretch")
PAD_COLORS = ("white", "black", "edge")


def square(arr: np.ndarray, size: int, mode: str = "crop", pad_color: str = "white"
           ) -> np.ndarray:
    """An HxWxC [0, 1] array as ``size`` x ``size`` by ``mode`` (see the module docstring)."""
    if size < 1:
        raise ConfigError(f"--size must be at least 1, not {size}")
    if mode not in MODES:
        raise ConfigError(f"unknown resize mode {mode!r}; use one of {', '.join(MODES)}")
    if pad_color not in PAD_COLORS:
        raise ConfigError(f"unknown pad colour {pad_color!r}; use one of "
                          f"{', '.join(PAD_COLORS)}")
    h, w = arr.shape[:2]
    if mode == "stretch":
        return resize_array(arr, size, size)
    short, long = min(h, w), max(h, w)
    scale = size / (short if mode == "crop" else long)
    nh, nw = (max(size, round(h * scale)), max(size, round(w * scale))) if mode == "crop" \
        else (min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale))))
    arr = resize_array(arr, nh, nw)
    if mode == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return arr[top:top + size, left:left + size]
    top, left = (size - nh) // 2, (size - nw) // 2
    pad = ((top, size - nh - top), (left, size - nw - left), (0, 0))
    if pad_color == "edge":
        return np.pad(arr, pad, mode="edge")
    value = 1.0 if pad_color == "white" else 0.0
    out = np.pad(arr, pad, mode="constant", constant_values=value)
    if arr.shape[2] in (2, 4):  # transparent padding
        alpha = np.zeros((size, size), arr.dtype)
        alpha[top:top + nh, left:left + nw] = arr[..., -1]
        out[..., -1] = alpha
    return out


def _writable(arr: np.ndarray) -> np.ndarray:
    """Gray + alpha is written as RGBA (save_image writes 1, 3 or 4 channels)."""
    if arr.shape[2] == 2:
        return np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    return arr


def resize_folder(
    in_dir: str | Path,
    out_dir: str | Path,
    size: int,
    *,
    mode: str = "crop",
    pad_color: str = "white",
    skip_existing: bool = False,
    show_progress: bool = True,
) -> ToolReport:
    """Write every image under ``in_dir`` as ``size`` x ``size`` under ``out_dir``."""
    square(np.zeros((1, 1, 1), np.float32), size, mode, pad_color)  # check the options first
    in_dir, files = input_images(in_dir)
    out_dir = Path(out_dir)
    report = ToolReport("resize", out_dir)
    for path in progress(files, len(files), "resize", show_progress):
        dest = out_dir / path.relative_to(in_dir)
        if done_before(dest, skip_existing, report):
            continue
        arr = read(path, report)
        if arr is None:
            continue
        depth = bit_depth_of(arr)
        if depth == 16 and dest.suffix.lower() not in (".png", ".tif", ".tiff"):
            depth = 8
        report.written.append(write(_writable(square(arr, size, mode, pad_color)), dest, depth))
    report.counts[f"size {size}x{size}, mode {mode}"] = len(report.written)
    return report
