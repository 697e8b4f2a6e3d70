"""WGAN-GP (Gulrajani et al. 2017): WGAN with a gradient penalty instead of weight clipping.

The critic's loss is E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2], with
x_hat a random per-sample interpolate of a real and a generated image and lambda = 10. What
must be right, and is:

* NO batch norm in the critic: the penalty is per sample, and batch norm makes each score
  depend on the whole batch (the paper suggests layer norm, the default here, or none);
* the generated images are detached in the critic's step (the critic's loss and its penalty
  train the critic only);
* Adam with learning rate 1e-4 and betas (0, 0.9); n_critic = 5 critic updates per generator
  update, each on a fresh mini-batch (see :mod:`gankit.models.wgan`). The 2e-4/0.5/0.999
  settings of a popular reference implementation are the ``wgan_gp_reference`` recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import gradient_penalty
from gankit.models import options as shared
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.models.wgan import WGAN
from gankit.nn.init import init_weights
from gankit.registry import register_model


@dataclass
class WGANGPConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at full resolution (doubled at each halving)")
    ndf: int = shared.ndf(64, "the critic's width at its first layer (doubled at each halving)")
    norm_d: shared.PerSampleNorm = shared.norm(
        "layer", "the critic's normalisation: per-sample only (no batch norm: the penalty is "
        "per sample)")
    lambda_gp: float = option(10.0, "weight of the gradient penalty", min=0.0)
    lr: float = shared.lr(1e-4, "Adam learning rate of G and the critic")
    beta1: float = shared.beta1(0.0, "Adam beta1")
    beta2: float = shared.beta2(0.9, "Adam beta2")
    n_critic: int = option(
        5, "critic updates per generator update; each step's batch is split into this many "
        "critic mini-batches (batch size 320 = 5 x 64, the paper's m)", min=1)


@register_model
class WGANGP(WGAN):
    name = "wgan_gp"
    Config = WGANGPConfig

    def __init__(self, config: WGANGPConfig) -> None:
        if config.norm_d == "batch":
            raise ConfigError("wgan_gp's critic cannot use batch norm (the gradient penalty is "
                              "per sample); use --norm-d layer (the paper's choice) or none")
        super().__init__(config)
        # DCGAN's N(0, 0.02) gives a critic without norm input gradients of norm ~0.01, and
        # the penalty then spends the first thousands of steps growing its weights; He init
        # starts near norm 1.
        init_weights(self.D, "kaiming")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return GenerationModel.configure_optimizers(self)  # Adam, not WGAN's RMSprop

    def double_backward_networks(self) -> set[str]:
        return {"D"}

    def critic_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        # gradient_penalty detaches both sides and interpolates per sample
        return self.config.lambda_gp * gradient_penalty(self.D, real, fake.detach())

    def after_critic_step(self) -> None:
        """No clipping: the penalty keeps the critic Lipschitz."""
