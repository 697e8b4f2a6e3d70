"""Fully connected networks: the generators and discriminators of the original GAN papers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Activation = Literal["relu", "leaky_relu"]


def _activation(kind: Activation) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "relu" else nn.LeakyReLU(0.2, inplace=True)


class MLP(nn.Module):
    """Linear layers with an activation (and optional batch norm or dropout) between them.

    ``batch_norm`` uses PyTorch's default eps: the popular one-file scripts pass 0.8 as the
    second positional argument, which is eps, not momentum.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: Activation = "leaky_relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        output: Literal["none", "tanh"] = "none",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if batch_norm and i > 0:  # as DCGAN: no norm on the layer that sees the input
                layers.append(nn.BatchNorm1d(h))
            layers.append(_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class ImageMLP(MLP):
    """An MLP whose output is reshaped into images (N, C, H, W) in [-1, 1] (tanh)."""

    def __init__(self, in_features: int, hidden: Sequence[int], image_shape: Sequence[int],
                 **kwargs: object) -> None:
        c, h, w = image_shape
        super().__init__(in_features, hidden, c * h * w, output="tanh", **kwargs)  # type: ignore
        self.image_shape = (c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).view(x.shape[0], *self.image_shape)
