"""Boundary-seeking GAN (Hjelm et al. 2017), the continuous-data version.

D is an ordinary GAN discriminator. G does not try to push D's output to "real"; it moves its
samples to D's decision boundary, where D(x) = 1/2 and the density ratio p_data/p_g it implies
is one: ``0.5 * E[(log D(G(z)) - log(1 - D(G(z))))^2]``. With D giving a logit ``l`` (no
sigmoid), ``log D - log(1 - D) = l`` exactly, so the loss is ``0.5 * E[l^2]``: computed that
way it is exact and finite for any logit, where the two logs of D's probability give
``-inf`` (and a NaN gradient) once D is sure: ``log(1 - D)`` from about l = 17 in float32,
``log D`` below about l = -100.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.models import options as shared
from gankit.models.alternating import AlternatingGAN
from gankit.models.generation import GenerationConfig
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model


def boundary_seeking_loss(logits: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean((log D - log(1 - D))^2)`` for D = sigmoid(``logits``): ``0.5 * mean(l^2)``,
    in float32 even under autocast."""
    return 0.5 * logits.float().pow(2).mean()


@dataclass
class BGANConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at the last layer (DCGAN nets; doubled per layer inward)")
    ndf: int = shared.ndf(64, "D's width at the first layer (doubled per layer)")
    norm_g: shared.Norm = shared.norm("batch", "normalisation in G")
    norm_d: shared.Norm = shared.norm("batch", "normalisation in D")
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D (DCGAN's)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")


@register_model
class BGAN(AlternatingGAN):
    name = "bgan"
    Config = BGANConfig

    def __init__(self, config: BGANConfig) -> None:
        super().__init__(config)
        c = config
        self.G = DCGANGenerator(c.latent_dim, c.channels, c.image_size, c.ngf, c.norm_g)
        self.D = DCGANDiscriminator(c.channels, c.image_size, c.ndf, c.norm_d)
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)

    def g_loss(self, fake_pred: torch.Tensor) -> torch.Tensor:
        return boundary_seeking_loss(fake_pred)
