"""Normalisation layers chosen by name, so configs and CLI flags can say ``--norm instance``."""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from gankit.errors import ConfigError

NormKind = Literal["batch", "instance", "layer", "none"]
NORM_KINDS: tuple[str, ...] = get_args(NormKind)


def check_norm(kind: str) -> None:
    """Raise a :class:`ConfigError` naming the valid kinds if ``kind`` is not one of them."""
    if kind not in NORM_KINDS:
        raise ConfigError(
            f"unknown norm {kind!r}; use one of {', '.join(NORM_KINDS)} (for example --norm batch)"
        )


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer for ``channels`` feature maps.

    BatchNorm keeps PyTorch's default eps/momentum (an accidental ``BatchNorm2d(n, 0.8)`` sets
    eps=0.8); InstanceNorm is non-affine without running statistics, as in pix2pix/CycleGAN.
    """
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "layer":  # over (C, H, W) of each sample: a critic norm that keeps samples apart
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def uses_bias(kind: str) -> bool:
    """Whether a conv followed by this norm needs its own bias.

    BatchNorm's learned shift makes a preceding conv bias redundant; the reference
    implementation keeps the bias for every other norm, and so do we.
    """
    check_norm(kind)
    return kind != "batch"
