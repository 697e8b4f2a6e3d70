"""DualGAN (Yi et al. 2017): unpaired translation by two WGANs with clipped critics, closed by L1.

The paper's primal generator G_A maps domain U to V and its dual G_B maps V back to U; here U
is domain A and V domain B, so ``G_AB`` is the paper's G_A and ``G_BA`` its G_B. ``D_B``
(the paper's D_A) is the critic of domain B, ``D_A`` (the paper's D_B) of domain A. What the
paper does, and this file does:

* WGAN critics: each is trained to lower ``D(fake) - D(real)`` of its domain, and after every
  critic update all critic weights are clipped to [-c, c] (``clip_value`` 0.01);
* ``n_critic`` critic updates per generator update (the paper: 2 to 4), each on fresh images
  (Algorithm 1): one step's batch is split into ``n_critic + 1`` mini-batches, the first
  ``n_critic`` for the critics and the last for the generators, so the default batch of 3
  gives the paper's m = 1;
* the generators minimise ``lambda_u ||u - G_BA(G_AB(u))||_1 + lambda_v ||v - G_AB(G_BA(v))||_1
  - D_B(G_AB(u)) - D_A(G_BA(v))`` (L1 means over pixels; the paper sets both weights in
  [100, 1000]);
* U-Net generators (skip connections between mirrored layers; pix2pix's ``unet_256``) whose
  noise z is dropout, as in pix2pix and the authors' code; Markovian PatchGAN critics (70x70
  patches) with non-affine instance norm: batch norm's learned scale would be clipped to c
  like every other critic weight, shrinking the critic's scores (and the generators'
  adversarial term) by c per layer; RMSprop with learning rate 5e-5 for every network (the
  paper: momentum-based optimizers such as Adam made the training unstable), constant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import AdversarialLoss, AdvMode
from gankit.models import options as shared
from gankit.models.translation import (
    InferenceMode,
    TranslationConfig,
    TranslationModel,
    round_trip_visuals,
)
from gankit.nn import build_discriminator, init_weights
from gankit.registry import register_model


@dataclass
class DualGANConfig(TranslationConfig):
    dropout: bool = option(True, "dropout in the generators (the paper's noise z)")
    norm_d: shared.Norm = shared.norm(
        "instance", "the critics' normalisation: instance (what the PatchGAN's batch norm "
        "computes at the paper's batch size 1, without an affine scale for the clipping to "
        "shrink to c), batch, layer, none")
    gan_mode: AdvMode = option("wgan", "adversarial objective: wgan only (the paper's "
                               "clipped Wasserstein critics)")
    lambda_u: float = option(1000.0, "weight of the L1 reconstruction of domain A (the "
                             "paper's lambda_U, typically 100 to 1000)", min=0.0)
    lambda_v: float = option(1000.0, "weight of the L1 reconstruction of domain B (the "
                             "paper's lambda_V, typically 100 to 1000)", min=0.0)
    clip_value: float = option(0.01, "clip the critics' weights to [-c, c] after each update "
                               "(the paper: 0.01 to 0.1)", min=0.0)
    n_critic: int = option(
        2, "critic updates per generator update (the paper: 2 to 4); each step's batch is "
        "split into n_critic + 1 mini-batches, the last one for the generators", min=1)
    lr: float = shared.lr(5e-5, "RMSprop learning rate of every network (the paper's 5e-5)")
    inference_mode: InferenceMode = option(
        "auto", "test time: train = dropout on and each image normalised with its own "
        "statistics, as the paper's noise; eval = deterministic, running statistics; auto = "
        "train when the generators trained on mini-batches of one image (batch size < "
        "2 x (n_critic + 1)), else eval")


def mini_batches(images: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """``parts`` near-equal mini-batches of ``images``; with fewer images than parts (a short
    last batch) each part is one image, taken in turn."""
    n = images.shape[0]
    if n < parts:
        return [images[i % n: i % n + 1] for i in range(parts)]
    return list(images.tensor_split(parts))


@register_model
class DualGAN(TranslationModel):
    name = "dualgan"
    Config = DualGANConfig
    data_kind = "unpaired"
    metrics = ("fid", "kid")
    generator_names = ("G_AB", "G_BA")  # translate() runs G_AB, or G_BA with reverse=True
    train_defaults: ClassVar[dict[str, Any]] = {
        "epochs": 100, "epochs_decay": 0, "lr_policy": "constant", "batch_size": 3}

    def __init__(self, config: DualGANConfig | None = None) -> None:
        config = config or DualGANConfig()
        if config.gan_mode != "wgan":
            raise ConfigError(f"dualgan trains clipped Wasserstein critics (--gan-mode wgan), "
                              f"not --gan-mode {config.gan_mode}; for a GAN loss with "
                              "discriminators use cyclegan or discogan")
        super().__init__(config)
        c = config
        self.G_AB = self.build_generator(c.in_channels, c.out_channels)
        self.G_BA = self.build_generator(c.out_channels, c.in_channels)
        self.D_A = self.build_discriminator(c.in_channels)
        self.D_B = self.build_discriminator(c.out_channels)
        self.adversarial = AdversarialLoss("wgan")

    def build_discriminator(self, in_channels: int) -> nn.Module:
        c = self.config
        net = build_discriminator(c.discriminator, in_channels, ndf=c.ndf,
                                  n_layers=c.n_layers_d, norm=c.norm_d, conv_bias=c.conv_bias)
        return init_weights(net, c.init, c.init_gain)

    def generator(self, reverse: bool = False) -> nn.Module:
        return self.G_BA if reverse else self.G_AB

    @property
    def inference_train_mode(self) -> bool:
        """``auto`` looks at the generators' mini-batch, not the step's batch: a step of the
        default 3 images gives each generator update one image (train-mode inference)."""
        n = self.trained_batch_size
        if self.config.inference_mode == "auto" and n is not None:
            return n // (self.config.n_critic + 1) <= 1
        return super().inference_train_mode

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {"G": torch.optim.RMSprop(
                    itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), lr=lr),
                "D": torch.optim.RMSprop(
                    itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=lr)}

    @torch.no_grad()
    def clip_critics(self) -> None:
        """Clip every critic weight to [-c, c], the WGAN way of keeping the critics Lipschitz."""
        c = self.config.clip_value
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.clamp_(-c, c)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        parts = c.n_critic + 1
        parts_a = mini_batches(batch["A"], parts)
        parts_b = mini_batches(batch["B"], parts)
        critics = (self.D_A, self.D_B)

        sums = {"D_A": 0.0, "D_B": 0.0}
        for real_a, real_b in zip(parts_a[:-1], parts_b[:-1], strict=True):
            with torch.no_grad(), self.autocast():  # the critics' updates must not reach G
                fake_b = self.G_AB(real_a)
                fake_a = self.G_BA(real_b)
            with self.autocast():
                loss_d_a = self.adversarial.d_loss(self.D_A(real_a), self.D_A(fake_a))
                loss_d_b = self.adversarial.d_loss(self.D_B(real_b), self.D_B(fake_b))
            self.optimize("D", loss_d_a + loss_d_b)
            self.clip_critics()
            sums["D_A"] = sums["D_A"] + loss_d_a.detach()
            sums["D_B"] = sums["D_B"] + loss_d_b.detach()

        real_a, real_b = parts_a[-1], parts_b[-1]
        self.set_requires_grad(critics, False)
        with self.autocast():
            fake_b = self.G_AB(real_a)
            fake_a = self.G_BA(real_b)
            losses = {
                "G_AB": self.adversarial.g_loss(self.D_B(fake_b)),
                "G_BA": self.adversarial.g_loss(self.D_A(fake_a)),
                "rec_A": F.l1_loss(self.G_BA(fake_b), real_a) * c.lambda_u,
                "rec_B": F.l1_loss(self.G_AB(fake_a), real_b) * c.lambda_v,
            }
            loss_g = sum(losses.values())
        self.optimize("G", loss_g)
        self.set_requires_grad(critics, True)
        losses = {k: v.detach() for k, v in losses.items()}
        return {**losses, "D_A": sums["D_A"] / c.n_critic, "D_B": sums["D_B"] / c.n_critic}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return round_trip_visuals(self, batch)
