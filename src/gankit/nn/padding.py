"""Run size-constrained generators on images of any size: pad up, run, crop back.

A U-Net with 8 downsamplings only accepts sides that are multiples of 256; at inference a
300x517 photo is padded to 512x768 (reflection, so the border looks like image content),
translated, and cropped back to 300x517.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError, DataError

PadMode = Literal["reflect", "replicate", "constant"]
_PAD_MODES = ("reflect", "replicate", "constant")


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def check_multiple(x: torch.Tensor, multiple: int, what: str) -> None:
    """Raise a clear :class:`DataError` when ``x``'s height or width is not a multiple."""
    if multiple <= 1 or _tracing():
        return
    h, w = x.shape[-2], x.shape[-1]
    if h % multiple or w % multiple:
        raise DataError(
            f"{what} needs height and width that are multiples of {multiple}, got {h}x{w}; "
            f"crop or resize the images (for example to {_round_up(h, multiple)}x"
            f"{_round_up(w, multiple)}) or run it through gankit.nn.run_any_size"
        )


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pad_dim(x: torch.Tensor, amount: int, dim: int, mode: str) -> torch.Tensor:
    """Pad the end of the height (dim=-2) or width (dim=-1) axis by ``amount``."""
    if amount == 0:
        return x
    pad = (0, amount, 0, 0) if dim == -1 else (0, 0, 0, amount)
    if mode == "constant":
        return F.pad(x, pad, mode="constant", value=0.0)
    if mode == "reflect" and amount >= x.shape[dim]:
        mode = "replicate"  # reflection cannot pad by as much as or more than the side itself
    return F.pad(x, pad, mode=mode)


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` (C,H,W or N,C,H,W) up to multiples of ``multiple``.

    Returns the padded tensor and the original ``(h, w)`` for :func:`crop_to`. Reflection
    falls back to replication on an axis too small to reflect (pad >= side).
    """
    if mode not in _PAD_MODES:
        raise ConfigError(f"unknown pad mode {mode!r}; use one of {', '.join(_PAD_MODES)}")
    if x.dim() not in (3, 4):
        raise DataError(
            f"expected an image tensor of shape (C,H,W) or (N,C,H,W), got {tuple(x.shape)}"
        )
    h, w = x.shape[-2], x.shape[-1]
    if multiple <= 1:
        return x, (h, w)
    x = _pad_dim(x, _round_up(h, multiple) - h, -2, mode)
    x = _pad_dim(x, _round_up(w, multiple) - w, -1, mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The top-left ``size = (h, w)`` window of ``x``: undoes :func:`pad_to_multiple`."""
    h, w = size
    return x[..., :h, :w]


def run_any_size(
    net: nn.Module, x: torch.Tensor, multiple: int | None = None, mode: str = "reflect"
) -> torch.Tensor:
    """``net(x)`` for any spatial size: pad to ``multiple``, run, crop back.

    ``multiple`` defaults to ``net.size_multiple`` (1 if the net has none). If the network
    changes the resolution by a fixed factor (a super-resolution generator, say), the crop
    is scaled by the same factor.
    """
    if multiple is None:
        multiple = int(getattr(net, "size_multiple", 1))
    padded, (h, w) = pad_to_multiple(x, multiple, mode)
    out = net(padded)
    scale_h = out.shape[-2] / padded.shape[-2]
    scale_w = out.shape[-1] / padded.shape[-1]
    return crop_to(out, (round(h * scale_h), round(w * scale_w)))
