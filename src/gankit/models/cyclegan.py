"""CycleGAN (Zhu et al. 2017): unpaired translation with two generators and cycle consistency.

``G_A`` maps A to B and ``G_B`` maps B to A; ``D_A`` judges images of domain B and ``D_B``
images of domain A. Discriminators see fakes drawn from a 50-image history pool.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import AdversarialLoss, AdvMode
from gankit.models import options as shared
from gankit.models.translation import TranslationConfig, TranslationModel, round_trip_visuals
from gankit.pool import ImagePool
from gankit.registry import register_model


@dataclass
class CycleGANConfig(TranslationConfig):
    generator: str = option("resnet_9blocks", "resnet_9blocks, resnet_6blocks or unet_N")
    norm: shared.Norm = shared.norm("instance", "normalisation layers: batch, instance, none")
    gan_mode: AdvMode = option("lsgan", "adversarial objective")
    lambda_a: float = option(10.0, "weight of the cycle loss A -> B -> A")
    lambda_b: float = option(10.0, "weight of the cycle loss B -> A -> B")
    lambda_identity: float = option(
        0.5, "identity loss weight, relative to the cycle weights (0 turns it off)"
    )
    pool_size: int = option(50, "history of generated images shown to the discriminators")


@register_model
class CycleGAN(TranslationModel):
    name = "cyclegan"
    Config = CycleGANConfig
    data_kind = "unpaired"
    generator_names = ("G_A", "G_B")  # translate() runs G_A, or G_B with reverse=True

    def __init__(self, config: CycleGANConfig | None = None) -> None:
        config = config or CycleGANConfig()
        super().__init__(config)
        c = config
        if c.gan_mode in ("wgan", "wgan-gp"):
            raise ConfigError(f"cyclegan is defined with vanilla, lsgan or hinge objectives, not "
                              f"--gan-mode {c.gan_mode} (its critics have no Lipschitz constraint)")
        if c.lambda_identity > 0 and c.in_channels != c.out_channels:
            raise ConfigError(
                f"the identity loss needs the same channel count on both sides (got "
                f"{c.in_channels} and {c.out_channels}); set --lambda-identity 0"
            )

        self.G_A = self.build_generator(c.in_channels, c.out_channels)
        self.G_B = self.build_generator(c.out_channels, c.in_channels)
        self.D_A = self.build_discriminator(c.out_channels)
        self.D_B = self.build_discriminator(c.in_channels)
        self.adversarial = AdversarialLoss(c.gan_mode)
        self.pool_fake_a = ImagePool(c.pool_size)
        self.pool_fake_b = ImagePool(c.pool_size)

    def generator(self, reverse: bool = False) -> torch.nn.Module:
        return self.G_B if reverse else self.G_A

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        g_params = itertools.chain(self.G_A.parameters(), self.G_B.parameters())
        d_params = itertools.chain(self.D_A.parameters(), self.D_B.parameters())
        return {"G": self.adam(g_params), "D": self.adam(d_params)}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        discriminators = (self.D_A, self.D_B)

        self.set_requires_grad(discriminators, False)
        with self.autocast():
            fake_b = self.G_A(real_a)
            rec_a = self.G_B(fake_b)
            fake_a = self.G_B(real_b)
            rec_b = self.G_A(fake_a)
            losses = {
                "G_A": self.adversarial.g_loss(self.D_A(fake_b)),
                "G_B": self.adversarial.g_loss(self.D_B(fake_a)),
                "cycle_A": F.l1_loss(rec_a, real_a) * c.lambda_a,
                "cycle_B": F.l1_loss(rec_b, real_b) * c.lambda_b,
            }
            if c.lambda_identity > 0:
                # G_A should leave an image that is already in domain B unchanged, and so on.
                losses["idt_A"] = F.l1_loss(self.G_A(real_b), real_b) * c.lambda_b * \
                    c.lambda_identity
                losses["idt_B"] = F.l1_loss(self.G_B(real_a), real_a) * c.lambda_a * \
                    c.lambda_identity
            loss_g = sum(losses.values())
        self.optimize("G", loss_g)

        self.set_requires_grad(discriminators, True)
        fake_b_seen = self.pool_fake_b.query(fake_b.detach())
        fake_a_seen = self.pool_fake_a.query(fake_a.detach())
        with self.autocast():
            loss_d_a = 0.5 * (self.adversarial(self.D_A(real_b), True)
                              + self.adversarial(self.D_A(fake_b_seen), False))
            loss_d_b = 0.5 * (self.adversarial(self.D_B(real_a), True)
                              + self.adversarial(self.D_B(fake_a_seen), False))
        self.optimize("D", loss_d_a + loss_d_b)
        losses["D_A"] = loss_d_a
        losses["D_B"] = loss_d_b
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return round_trip_visuals(self, batch)

    def extra_state(self) -> dict[str, Any]:
        return {"pool_fake_a": self.pool_fake_a.state_dict(),
                "pool_fake_b": self.pool_fake_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_fake_a" in state:
            self.pool_fake_a.load_state_dict(state["pool_fake_a"])
            self.pool_fake_b.load_state_dict(state["pool_fake_b"])
