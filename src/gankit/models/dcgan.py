"""DCGAN (Radford et al. 2015): convolutional G and D with batch norm, the non-saturating loss.

The paper's recipe: G projects z and doubles the feature map with fractionally-strided
convolutions (batch norm and ReLU, tanh at the output); D mirrors it with strided convolutions
(LeakyReLU 0.2, batch norm on every layer but the first); weights from N(0, 0.02); Adam with
learning rate 2e-4 and beta1 0.5; mini-batches of 128. Batch norm keeps PyTorch's default eps
(the popular one-file scripts pass 0.8 by accident). D returns logits; the loss applies the
sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gankit.models import options as shared
from gankit.models.alternating import AlternatingGAN
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model


@dataclass
class DCGANConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at full resolution (doubled at each halving)")
    ndf: int = shared.ndf(64, "D's width at its first layer (doubled at each halving)")
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D (the paper's 0.0002)")
    beta1: float = shared.beta1(0.5, "Adam beta1 (the paper lowered it from 0.9 to 0.5)")
    beta2: float = shared.beta2(0.999, "Adam beta2")


@register_model
class DCGAN(AlternatingGAN):
    name = "dcgan"
    Config = DCGANConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        **GenerationModel.train_defaults, "batch_size": 128}  # the paper's mini-batch size

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        c = config
        self.G = DCGANGenerator(c.latent_dim, c.channels, c.image_size, c.ngf, norm="batch")
        self.D = DCGANDiscriminator(c.channels, c.image_size, c.ndf, norm="batch")
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)
