"""PatchGAN discriminators: classify overlapping patches (or single pixels) as real or fake.

Both return raw logits of shape (N, 1, h, w); the sigmoid lives in the loss
(:class:`gankit.losses.AdversarialLoss`), which is numerically safer and lets the same
network serve as a WGAN critic.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.layout import norm_bias
from gankit.nn.norms import norm_layer


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convs, then two stride-1 4x4 convs to a 1-channel logit map.

    n_layers=3 is the 70x70 PatchGAN of pix2pix/CycleGAN (a 256x256 input gives 30x30 logits);
    n_layers=1 and 5 give 16x16 and 286x286 receptive fields. The first and last convs have a
    bias; the others only with instance norm (``conv_bias="official"``) or unless BatchNorm
    follows (``"gankit1"``).
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        conv_bias: str = "official",
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"PatchDiscriminator needs n_layers >= 1, got {n_layers}")
        bias = norm_bias(norm, conv_bias)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            new_width = ndf * min(2**n, 8)
            layers += [
                nn.Conv2d(width, new_width, 4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, new_width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = new_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN: judges each pixel's colour on its own (logits keep the input's H x W).

    As in the reference, the official layout gives the second and the last conv a bias only
    with instance norm; gankit 1 gave the last one a bias always.
    """

    def __init__(
        self, in_channels: int, ndf: int = 64, norm: str = "batch", conv_bias: str = "official"
    ) -> None:
        super().__init__()
        bias = norm_bias(norm, conv_bias)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias if conv_bias == "official" else True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
