"""WGAN (Arjovsky et al. 2017): a critic that estimates the Wasserstein-1 distance.

What the paper's Algorithm 1 needs, and this file does:

* the critic ends in a plain linear layer (a score, no sigmoid) and is trained to raise
  E[D(x)] - E[D(G(z))], the Wasserstein estimate (logged as ``W_distance``);
* after EVERY critic update all its weights are clipped to [-0.01, 0.01] (``clip_value``);
* ``n_critic`` = 5 critic updates per generator update, each on a fresh mini-batch of real
  images: one training step's batch is split into ``n_critic`` parts, so the default batch of
  320 gives the paper's m = 64 (the generator's update also uses m samples);
* RMSprop with learning rate 5e-5 (momentum-based optimizers made the critic unstable).

The nets are DCGAN's (the paper's main architecture, batch norm in both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gankit.config import option
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model

PAPER_M = 64  # the papers' critic mini-batch size


@dataclass
class WGANConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at full resolution (doubled at each halving)")
    ndf: int = shared.ndf(64, "the critic's width at its first layer (doubled at each halving)")
    norm_d: shared.Norm = shared.norm(
        "batch", "the critic's normalisation (the paper's DCGAN critic used batch norm)")
    lr: float = shared.lr(5e-5, "RMSprop learning rate of G and the critic")
    clip_value: float = option(0.01, "clip the critic's weights to [-c, c] after each update",
                               min=0.0)
    n_critic: int = option(
        5, "critic updates per generator update; each step's batch is split into this many "
        "critic mini-batches (batch size 320 = 5 x 64, the paper's m)", min=1)


@register_model
class WGAN(GenerationModel):
    name = "wgan"
    Config = WGANConfig
    train_defaults: ClassVar[dict[str, Any]] = {
        **GenerationModel.train_defaults, "batch_size": 5 * PAPER_M}

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        c = config
        self.G = DCGANGenerator(c.latent_dim, c.channels, c.image_size, c.ngf, norm="batch")
        self.D = DCGANDiscriminator(c.channels, c.image_size, c.ndf, norm=c.norm_d)
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)
        self.adversarial = AdversarialLoss("wgan")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {"G": torch.optim.RMSprop(self.G.parameters(), lr=lr),
                "D": torch.optim.RMSprop(self.D.parameters(), lr=lr)}

    # --- what WGAN-GP changes ---------------------------------------------------------------
    def critic_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """A term added to the critic's loss (WGAN has none: it clips instead)."""
        return None

    @torch.no_grad()
    def after_critic_step(self) -> None:
        """Clip every critic weight to [-c, c], the paper's way of keeping it Lipschitz."""
        c = self.config.clip_value
        for p in self.D.parameters():
            p.clamp_(-c, c)

    # --- one step ---------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        n_critic = self.config.n_critic
        parts = critic_batches(batch["image"], n_critic)
        sums: dict[str, torch.Tensor] = {}
        for real in parts:
            with torch.no_grad(), self.autocast():  # the critic's update must not reach G
                fake = self.G(self.noise(real.shape[0]))
            with self.autocast():
                loss_d = self.adversarial.d_loss(self.D(real), self.D(fake))
                logs = {"W_distance": -loss_d.detach()}
                penalty = self.critic_penalty(real, fake)
                if penalty is not None:
                    logs["GP"] = penalty.detach()
                    loss_d = loss_d + penalty
            self.optimize("D", loss_d)
            self.after_critic_step()
            logs["D"] = loss_d.detach()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_g = self.adversarial.g_loss(self.D(self.G(self.noise(parts[0].shape[0]))))
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        means = {k: v / n_critic for k, v in sums.items()}
        return {"G": loss_g.detach(), "D": means["D"], "W_distance": means["W_distance"],
                **({"GP": means["GP"]} if "GP" in means else {})}


def critic_batches(images: torch.Tensor, n_critic: int) -> list[torch.Tensor]:
    """``n_critic`` mini-batches for the critic: the batch split into near-equal parts, or the
    whole batch each time when it has fewer images than ``n_critic`` (a short last batch)."""
    if images.shape[0] < n_critic:
        return [images] * n_critic
    return list(images.tensor_split(n_critic))
