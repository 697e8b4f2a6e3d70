"""DRAGAN (Kodali et al. 2017): a GAN whose discriminator is kept smooth around the real data.

D minimises the usual (vanilla) GAN loss PLUS ``lambda * (||grad D(x_hat)|| - k)^2`` at points
``x_hat`` between real images and noisy copies of them (:func:`gankit.losses.dragan_penalty`).
Both terms are one loss and one backward pass: a popular one-file version computes the
adversarial term but back-propagates only the penalty, so its D never learns to tell real from
fake. The penalty is per sample, so D has no batch norm (layer norm by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import dragan_penalty
from gankit.models import options as shared
from gankit.models.alternating import AlternatingGAN
from gankit.models.generation import GenerationConfig
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.nn.norms import check_norm
from gankit.registry import register_model


@dataclass
class DRAGANConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at the last layer (DCGAN nets; doubled per layer inward)")
    ndf: int = shared.ndf(64, "D's width at the first layer (doubled per layer)")
    norm_g: shared.Norm = shared.norm(
        "batch", "normalisation in G")
    norm_d: shared.PerSampleNorm = shared.norm(
        "layer", "normalisation in D; never batch norm: the penalty is per sample")
    lambda_dp: float = option(10.0, "weight of the DRAGAN gradient penalty", min=0.0)
    dp_k: float = option(1.0, "target norm k of D's gradient near the real data", min=0.0)
    dp_c: float = option(0.5, "perturbation scale c: x + c * std(x) * U[0,1) (authors' code)",
                         min=0.0)
    lr: float = shared.lr(1e-4, "Adam learning rate of G and D (authors' code)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.9, "Adam beta2")


@register_model
class DRAGAN(AlternatingGAN):
    name = "dragan"
    Config = DRAGANConfig

    def __init__(self, config: DRAGANConfig) -> None:
        super().__init__(config)
        c = config
        check_norm(c.norm_d)
        if c.norm_d == "batch":  # a config built by hand bypasses the option's choices
            raise ConfigError("dragan's D cannot use batch norm (the penalty is per sample); "
                              "use --norm-d layer, instance or none")
        self.G = DCGANGenerator(c.latent_dim, c.channels, c.image_size, c.ngf, c.norm_g)
        self.D = DCGANDiscriminator(c.channels, c.image_size, c.ndf, c.norm_d)
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)

    def double_backward_networks(self) -> set[str]:
        return {"D"}

    def d_penalty(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        return {"D_penalty": c.lambda_dp * dragan_penalty(self.D, real, k=c.dp_k, c=c.dp_c)}
