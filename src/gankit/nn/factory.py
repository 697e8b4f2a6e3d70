"""Networks by name, so configs, checkpoints and the CLI can say ``unet_256`` or ``basic``."""

from __future__ import annotations

import re

from torch import nn

from gankit.errors import ConfigError
from gankit.nn.layout import check_layout
from gankit.nn.norms import check_norm
from gankit.nn.patchgan import PatchDiscriminator, PixelDiscriminator
from gankit.nn.resnet import ResnetGenerator
from gankit.nn.unet import UnetGenerator

GENERATORS: tuple[str, ...] = (
    "unet_32",
    "unet_64",
    "unet_128",
    "unet_256",
    "resnet_6blocks",
    "resnet_9blocks",
)
DISCRIMINATORS: tuple[str, ...] = ("basic", "n_layers", "pixel")

_UNET = re.compile(r"unet_(\d+)")
_RESNET = re.compile(r"resnet_(\d+)blocks")


def _unknown(kind: str, name: str, valid: tuple[str, ...], extra: str = "") -> ConfigError:
    return ConfigError(f"unknown {kind} {name!r}; use one of {', '.join(valid)}{extra}")


def build_generator(
    name: str,
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    conv_bias: str = "official",
) -> nn.Module:
    """A generator by preset name: ``unet_N`` (N a power of two >= 8, log2(N) downsamplings;
    N is the smallest side it accepts) or ``resnet_Kblocks``. ``conv_bias`` picks the bias
    layout (:mod:`gankit.nn.layout`): official pix2pix/CycleGAN, or gankit 1's."""
    check_norm(norm)
    check_layout(conv_bias)
    extra = " (or unet_N for a power of two N >= 8, resnet_Kblocks for any K)"
    if match := _UNET.fullmatch(name):
        size = int(match.group(1))
        if size < 8 or size & (size - 1):
            raise _unknown("generator", name, GENERATORS, extra)
        return UnetGenerator(
            in_channels, out_channels, size.bit_length() - 1, ngf, norm, dropout, conv_bias
        )
    if match := _RESNET.fullmatch(name):
        return ResnetGenerator(
            in_channels, out_channels, ngf, norm, dropout, n_blocks=int(match.group(1)),
            conv_bias=conv_bias,
        )
    raise _unknown("generator", name, GENERATORS, extra)


def build_discriminator(
    name: str,
    in_channels: int,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "batch",
    conv_bias: str = "official",
) -> nn.Module:
    """A discriminator by name: ``basic`` (70x70 PatchGAN), ``n_layers`` (PatchGAN with
    ``n_layers`` downsamplings) or ``pixel`` (1x1 PixelGAN)."""
    check_norm(norm)
    check_layout(conv_bias)
    if name == "basic":
        return PatchDiscriminator(in_channels, ndf, 3, norm, conv_bias)
    if name == "n_layers":
        return PatchDiscriminator(in_channels, ndf, n_layers, norm, conv_bias)
    if name == "pixel":
        return PixelDiscriminator(in_channels, ndf, norm, conv_bias)
    raise _unknown("discriminator", name, DISCRIMINATORS)
