"""Conditional GAN (Mirza & Osindero 2014): G and D both see the class label, so G learns
p(x | y) and any chosen class can be sampled.

Two network kinds. ``mlp`` is the paper's: G maps z and an embedding of y to hidden ReLU layers
(200 and 1000 units) joined in a 1200-unit layer; D maps x and y to maxout layers (240 units x
5 pieces and 50 x 5) joined in a 240 x 4 maxout layer; dropout 0.5 in both. ``dcgan`` uses the
DCGAN convolutions: z joined with the one-hot label for G (its first linear layer is the label
embedding), and the label as one-hot extra input channels for D; it learns clean digits in far
fewer steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import option
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model


@dataclass
class CGANConfig(GenerationConfig):
    net: Literal["mlp", "dcgan"] = option(
        "mlp", "networks: the paper's fully connected G and maxout D (mlp), or DCGAN "
        "convolutions with the label joined to z and as extra input channels of D (dcgan)")
    hidden_z: int = option(200, "mlp: G's hidden layer for z", min=1)
    hidden_y: int = option(1000, "mlp: G's hidden layer for the label", min=1)
    hidden_g: int = option(1200, "mlp: G's joint hidden layer", min=1)
    maxout_x: int = option(240, "mlp: units of D's maxout layer for the image", min=1)
    maxout_y: int = option(50, "mlp: units of D's maxout layer for the label", min=1)
    maxout_joint: int = option(240, "mlp: units of D's joint maxout layer", min=1)
    pieces: int = option(5, "mlp: pieces per maxout unit of D's first layers", min=1)
    pieces_joint: int = option(4, "mlp: pieces per maxout unit of D's joint layer", min=1)
    dropout: float = option(0.5, "mlp: dropout on the hidden layers of G and D", min=0.0)
    ngf: int = shared.ngf(64, "dcgan: G's width at the last layer (doubled per layer inward)")
    ndf: int = shared.ndf(64, "dcgan: D's width at the first layer (doubled per layer)")
    norm: shared.Norm = shared.norm("batch", "dcgan: normalisation in G and D")
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D (the paper's SGD schedule was "
                       "tuned for maxout nets over hundreds of epochs)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")


def one_hot(labels: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """The labels as one-hot rows of ``like``'s dtype (the paper's y)."""
    return F.one_hot(labels, num_classes).to(like.dtype)


class Maxout(nn.Module):
    """A linear layer of ``units`` x ``pieces`` outputs, keeping each unit's largest piece."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)


class MLPConditionalGenerator(nn.Module):
    """(z, y) -> images: z and one-hot y each to a ReLU layer, joined in one more, then tanh
    pixels (the paper's sigmoid, moved to [-1, 1])."""

    def __init__(self, c: CGANConfig) -> None:
        super().__init__()
        self.num_classes = c.num_classes
        self.image_shape = (c.channels, c.image_size, c.image_size)
        self.z_branch = nn.Sequential(nn.Linear(c.latent_dim, c.hidden_z), nn.ReLU(inplace=True),
                                      nn.Dropout(c.dropout))
        self.y_branch = nn.Sequential(nn.Linear(c.num_classes, c.hidden_y),
                                      nn.ReLU(inplace=True), nn.Dropout(c.dropout))
        pixels = c.channels * c.image_size * c.image_size
        self.joint = nn.Sequential(
            nn.Linear(c.hidden_z + c.hidden_y, c.hidden_g), nn.ReLU(inplace=True),
            nn.Dropout(c.dropout), nn.Linear(c.hidden_g, pixels), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = one_hot(labels, self.num_classes, z)
        h = torch.cat([self.z_branch(z), self.y_branch(y)], dim=1)
        return self.joint(h).view(z.shape[0], *self.image_shape)


class MLPConditionalDiscriminator(nn.Module):
    """(x, y) -> logit: x and one-hot y each to a maxout layer, joined in one more maxout
    layer."""

    def __init__(self, c: CGANConfig) -> None:
        super().__init__()
        self.num_classes = c.num_classes
        pixels = c.channels * c.image_size * c.image_size
        self.x_branch = Maxout(pixels, c.maxout_x, c.pieces)
        self.y_branch = Maxout(c.num_classes, c.maxout_y, c.pieces)
        self.joint = Maxout(c.maxout_x + c.maxout_y, c.maxout_joint, c.pieces_joint)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.maxout_joint, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = one_hot(labels, self.num_classes, x)
        h = torch.cat([self.x_branch(x.flatten(1)), self.y_branch(y)], dim=1)
        return self.head(self.drop(self.joint(self.drop(h))))


class ConvConditionalGenerator(nn.Module):
    """(z, y) -> images: a DCGAN generator on z joined with one-hot y.

    Its first (linear) layer makes the one-hot vector a learned label embedding. A separate
    ``nn.Embedding`` (rows ~ N(0, 1)) made G learn one template per class and ignore z: every
    sample of a class came out the same.
    """

    def __init__(self, c: CGANConfig) -> None:
        super().__init__()
        self.num_classes = c.num_classes
        self.net = DCGANGenerator(c.latent_dim + c.num_classes, c.channels, c.image_size, c.ngf,
                                  c.norm)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, one_hot(labels, self.num_classes, z)], dim=1))


class ConvConditionalDiscriminator(nn.Module):
    """(x, y) -> logit: a DCGAN discriminator reading the image plus one constant one-hot
    plane per class."""

    def __init__(self, c: CGANConfig) -> None:
        super().__init__()
        self.num_classes = c.num_classes
        self.net = DCGANDiscriminator(c.channels + c.num_classes, c.image_size, c.ndf, c.norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        planes = one_hot(labels, self.num_classes, x)[:, :, None, None]
        return self.net(torch.cat([x, planes.expand(n, self.num_classes, h, w)], dim=1))


@register_model
class CGAN(GenerationModel):
    name = "cgan"
    Config = CGANConfig
    label_use = "all"
    conditional = True

    def __init__(self, config: CGANConfig) -> None:
        super().__init__(config)
        if config.net == "mlp":
            self.G: nn.Module = MLPConditionalGenerator(config)
            self.D: nn.Module = MLPConditionalDiscriminator(config)
            init_weights(self.G, "xavier", 1.0)
            init_weights(self.D, "xavier", 1.0)
        else:
            self.G = ConvConditionalGenerator(config)
            self.D = ConvConditionalDiscriminator(config)
            init_weights(self.G, "normal", 0.02)
            init_weights(self.D, "normal", 0.02)
        self.adversarial = AdversarialLoss("vanilla")

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = self.classes_in_turn(z.shape[0], z.device)
        return self.G(z, labels)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real, labels = batch["image"], batch["label"]
        z = self.noise(real.shape[0])
        # G is asked for the classes of the real batch, so D sees the same label mix on both
        # sides and cannot tell real from fake by the label alone.
        with self.autocast():
            fake = self.G(z, labels)
            loss_d = self.adversarial.d_loss(self.D(real, labels),
                                             self.D(fake.detach(), labels))
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_g = self.adversarial.g_loss(self.D(fake, labels))
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        return {"G": loss_g.detach(), "D": loss_d.detach()}
