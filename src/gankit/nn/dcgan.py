"""The DCGAN generator and discriminator (Radford et al. 2015), for any square image size.

The generator projects z to a small feature map and doubles its size with stride-2 transposed
convolutions; the discriminator mirrors it with stride-2 convolutions. The number of doublings
comes from the image size: 28 -> 7 (two), 32 -> 4 (three), 64 -> 4 (four), so MNIST, CIFAR and
64 px data all work without code changes.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.norms import norm_layer, uses_bias


def upsampling_plan(size: int) -> tuple[int, int]:
    """(doublings, start size): halve ``size`` while it is even and above 4."""
    start, doublings = size, 0
    while start % 2 == 0 and start > 4:
        start //= 2
        doublings += 1
    if doublings == 0:
        raise ConfigError(f"image size {size} cannot be reached by doubling (it is odd or below "
                          "8); resize the images with --preprocess resize_and_crop --load-size "
                          "32 --crop-size 32")
    return doublings, start


class DCGANGenerator(nn.Module):
    """z (N, in_features) -> images (N, channels, size, size) in [-1, 1]."""

    def __init__(self, in_features: int, channels: int, size: int, ngf: int = 64,
                 norm: str = "batch", max_width: int = 512) -> None:
        super().__init__()
        doublings, start = upsampling_plan(size)
        widths = [min(max_width, ngf * 2 ** i) for i in reversed(range(doublings))]
        self.start = (widths[0], start)
        self.project = nn.Sequential(
            nn.Linear(in_features, widths[0] * start * start, bias=uses_bias(norm)),
        )
        self.project_norm = nn.Sequential(norm_layer(norm, widths[0]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for i in range(doublings):
            last = i == doublings - 1
            out = channels if last else widths[i + 1]
            layers.append(nn.ConvTranspose2d(widths[i], out, 4, 2, 1,
                                             bias=last or uses_bias(norm)))
            layers += [nn.Tanh()] if last else [norm_layer(norm, out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        width, start = self.start
        x = self.project(z.flatten(1)).view(z.shape[0], width, start, start)
        return self.body(self.project_norm(x))


class DCGANDiscriminator(nn.Module):
    """Images -> (N, out_features) logits; ``features`` gives the flattened trunk output, for
    models that add heads of their own (an auxiliary classifier, K+1 classes)."""

    def __init__(self, channels: int, size: int, ndf: int = 64, norm: str = "batch",
                 out_features: int = 1, max_width: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        doublings, start = upsampling_plan(size)
        layers: list[nn.Module] = []
        width_in = channels
        for i in range(doublings):
            width = min(max_width, ndf * 2 ** i)
            first = i == 0  # DCGAN: no norm on the layer that sees the image
            layers.append(nn.Conv2d(width_in, width, 4, 2, 1, bias=first or uses_bias(norm)))
            if not first:
                layers.append(norm_layer(norm, width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width_in = width
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = width_in * start * start
        self.head = nn.Linear(self.feature_dim, out_features) if out_features else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("this discriminator was built without a head (out_features=0)")
        return self.head(self.trunk(x))
