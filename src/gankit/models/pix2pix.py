"""pix2pix (Isola et al. 2017): a conditional GAN for paired image-to-image translation.

The discriminator is a PatchGAN that sees the (input, output) pair; the generator minimises the
adversarial loss plus ``lambda_l1`` times the L1 distance to the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import AdversarialLoss, gradient_penalty
from gankit.models.translation import InferenceMode, TranslationConfig, TranslationModel
from gankit.registry import register_model


@dataclass
class Pix2PixConfig(TranslationConfig):
    dropout: bool = option(True, "dropout in the generator (the paper's noise source)")
    lambda_l1: float = option(100.0, "weight of the L1 loss to the target")
    lambda_gp: float = option(10.0, "gradient-penalty weight (with --gan-mode wgan-gp)")
    inference_mode: InferenceMode = option(
        "auto", "test time: train = dropout on and each image normalised with its own "
        "statistics, as in the paper; eval = deterministic, running statistics; auto = train "
        "when training used batch size 1, else eval"
    )


@register_model
class Pix2Pix(TranslationModel):
    name = "pix2pix"
    Config = Pix2PixConfig
    data_kind = "paired"

    def __init__(self, config: Pix2PixConfig | None = None) -> None:
        config = config or Pix2PixConfig()
        if config.gan_mode == "wgan":
            raise ConfigError("pix2pix has no weight clipping for --gan-mode wgan; use wgan-gp "
                              "(a gradient penalty), vanilla, lsgan or hinge")
        super().__init__(config)
        self.G = self.build_generator(config.in_channels, config.out_channels)
        self.D = self.build_discriminator(config.in_channels + config.out_channels)
        self.adversarial = AdversarialLoss(config.gan_mode)

    def generator(self, reverse: bool = False) -> torch.nn.Module:
        if reverse:
            raise ConfigError("pix2pix translates one way only: leave out --reverse, or train "
                              "another model with --direction BtoA for the other way")
        return self.G

    def double_backward_networks(self) -> set[str]:
        return {"D"} if self.config.gan_mode == "wgan-gp" else set()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.adam(self.G.parameters()), "D": self.adam(self.D.parameters())}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        with self.autocast():
            fake_b = self.G(real_a)

        self.set_requires_grad(self.D, True)
        with self.autocast():
            real_pair = torch.cat([real_a, real_b], 1)
            fake_pair = torch.cat([real_a, fake_b.detach()], 1)
            loss_d_real = self.adversarial(self.D(real_pair), True)
            loss_d_fake = self.adversarial(self.D(fake_pair), False)
            loss_d = 0.5 * (loss_d_real + loss_d_fake)
            if c.gan_mode == "wgan-gp":
                loss_d = loss_d + c.lambda_gp * gradient_penalty(self.D, real_pair, fake_pair)
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_g_gan = self.adversarial.g_loss(self.D(torch.cat([real_a, fake_b], 1)))
            loss_g_l1 = F.l1_loss(fake_b, real_b) * c.lambda_l1
            loss_g = loss_g_gan + loss_g_l1
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        return {
            "G_GAN": loss_g_gan.detach(),
            "G_L1": loss_g_l1.detach(),
            "D_real": loss_d_real.detach(),
            "D_fake": loss_d_fake.detach(),
        }

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"input": batch["A"], "output": self.run_generator(batch["A"]),
                "target": batch["B"]}
