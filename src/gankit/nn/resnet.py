"""The CycleGAN / Johnson et al. residual generator."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.layout import norm_bias
from gankit.nn.norms import norm_layer
from gankit.nn.padding import check_multiple

PaddingKind = Literal["reflect", "replicate", "zero"]
PADDINGS: tuple[str, ...] = ("reflect", "replicate", "zero")


def _padded_conv(
    in_ch: int, out_ch: int, kernel: int, padding: str, bias: bool
) -> list[nn.Module]:
    """A size-preserving conv whose border padding is ``padding`` (reflection avoids seams)."""
    amount = kernel // 2
    if padding == "reflect":
        return [nn.ReflectionPad2d(amount), nn.Conv2d(in_ch, out_ch, kernel, bias=bias)]
    if padding == "replicate":
        return [nn.ReplicationPad2d(amount), nn.Conv2d(in_ch, out_ch, kernel, bias=bias)]
    return [nn.Conv2d(in_ch, out_ch, kernel, padding=amount, bias=bias)]


class ResnetBlock(nn.Module):
    """x + (pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm)(x)."""

    def __init__(self, channels: int, norm: str, padding: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers = _padded_conv(channels, channels, 3, padding, bias)
        layers += [norm_layer(norm, channels), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += _padded_conv(channels, channels, 3, padding, bias)
        layers.append(norm_layer(norm, channels))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 downsamplings, ``n_blocks`` residual blocks, two transposed-conv
    upsamplings and a 7x7 conv to Tanh. Height and width must be multiples of 4.

    Every conv but the 7x7 output one has a bias only with instance norm
    (``conv_bias="official"``, as in CycleGAN) or unless BatchNorm follows (``"gankit1"``).
    """

    size_multiple = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
        padding: str = "reflect",
        conv_bias: str = "official",
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ConfigError(f"unknown padding {padding!r}; use one of {', '.join(PADDINGS)}")
        if n_blocks < 0:
            raise ConfigError(f"ResnetGenerator needs n_blocks >= 0, got {n_blocks}")
        bias = norm_bias(norm, conv_bias)
        layers: list[nn.Module] = _padded_conv(in_channels, ngf, 7, "reflect", bias)
        layers += [norm_layer(norm, ngf), nn.ReLU(inplace=True)]
        width = ngf
        for _ in range(2):
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResnetBlock(width, norm, padding, dropout, bias) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(norm, width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += _padded_conv(width, out_channels, 7, "reflect", True)
        layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.size_multiple, "ResnetGenerator")
        return self.model(x)
