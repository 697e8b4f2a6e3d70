"""GAN (Goodfellow et al. 2014): fully connected G and D, the non-saturating generator loss."""

from __future__ import annotations

from dataclasses import dataclass

from gankit.config import option
from gankit.models import options as shared
from gankit.models.alternating import AlternatingGAN
from gankit.models.generation import GenerationConfig
from gankit.nn.init import init_weights
from gankit.nn.mlp import MLP, ImageMLP
from gankit.registry import register_model


@dataclass
class GANConfig(GenerationConfig):
    hidden_g: int = option(256, "width of G's first hidden layer (then x2, x4)", min=1)
    hidden_d: int = option(512, "width of D's first hidden layer (then /2)", min=1)
    batch_norm_g: bool = option(
        False, "batch norm in G's hidden layers (default eps): not in the paper; speeds up "
        "early learning")
    dropout_d: float = option(0.3, "dropout in D (the paper's D used dropout)", min=0.0)
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")


@register_model
class GAN(AlternatingGAN):
    name = "gan"
    Config = GANConfig

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        c = config
        pixels = c.channels * c.image_size * c.image_size
        self.G = ImageMLP(c.latent_dim, [c.hidden_g, 2 * c.hidden_g, 4 * c.hidden_g],
                          self.image_shape, activation="leaky_relu", batch_norm=c.batch_norm_g)
        self.D = MLP(pixels, [c.hidden_d, max(1, c.hidden_d // 2)], 1,
                     activation="leaky_relu", dropout=c.dropout_d)
        init_weights(self.G, "xavier", 1.0)
        init_weights(self.D, "xavier", 1.0)
