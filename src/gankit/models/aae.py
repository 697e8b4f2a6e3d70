"""AAE (Makhzani et al. 2015): an autoencoder whose code is made to follow a chosen prior by a
discriminator on the code.

Each step has the paper's two phases on the same mini-batch:

1. reconstruction: encoder and decoder minimise the Euclidean (mean squared) error of
   ``decode(encode(x))``;
2. regularisation: the code discriminator learns to tell prior samples (real) from codes of
   data (fake), then the encoder, as the generator, learns to make its codes look like prior
   samples (non-saturating loss).

The decoder is then a generative model of the data: ``generate(z)`` decodes prior samples, so
``sample()`` draws z from the prior (``noise`` is overridden) and decodes it.

Priors: ``gaussian`` (standard normal, the default) or ``mixture``: ``components`` Gaussians
with means on a circle of radius ``mixture_radius`` in the first two code dimensions, each
stretched along its radius (std ``mixture_std``) and narrow across it (``mixture_std / 5``),
the paper's 2-D figure; further code dimensions, if any, are standard normal.

Paper settings kept: two hidden layers of 1000 ReLU units in encoder, decoder and
discriminator, a linear code, Euclidean reconstruction cost, batch 100. Changed, where the
paper's choice did not carry over to short runs: Adam (beta1 0.5) with a rate for each
update instead of momentum SGD, and He initialisation instead of N(0, 0.01), under which the
code discriminator barely learned (MNIST, 400 steps of batch 64, widths 256: squared MMD of
the codes to the prior about 0.06 with He initialisation, 0.4 to 1.7 with N(0, 0.01)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.nn import functional as F

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.base import adam
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.nn.init import init_weights
from gankit.nn.mlp import MLP, ImageMLP
from gankit.registry import register_model


@dataclass
class AAEConfig(GenerationConfig):
    latent_dim: int = option(8, "size of the code z (2 to plot it, as the paper's figures)",
                             min=1)
    prior: Literal["gaussian", "mixture"] = option(
        "gaussian", "distribution the codes are matched to: gaussian (standard normal) or "
        "mixture (Gaussians on a circle in the first two code dimensions)")
    components: int = option(10, "mixture prior: number of Gaussians", min=1)
    mixture_radius: float = option(4.0, "mixture prior: radius of the circle of means", min=0.0)
    mixture_std: float = option(1.0, "mixture prior: std along the radius (a fifth of it "
                                "across)", min=0.0)
    hidden: int = option(1000, "width of the two hidden layers of encoder and decoder (paper: "
                         "1000)", min=1)
    hidden_d: int = option(1000, "width of the two hidden layers of the code discriminator",
                           min=1)
    init: Literal["kaiming", "normal"] = option(
        "kaiming", "initial weights: kaiming (He), or normal with std --init-std (the paper's "
        "N(0, 0.01); with it the codes were still far from the prior after 400 steps)")
    init_std: float = option(0.01, "std of the normal initial weights (--init normal)", min=0.0)
    lr: float = shared.lr(1e-3, "Adam learning rate of the reconstruction phase")
    lr_d: float = option(1e-3, "Adam learning rate of the code discriminator")
    lr_g: float = option(2e-4, "Adam learning rate of the encoder's adversarial step (smaller "
                         "than the discriminator's, which keeps the game from oscillating)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")
    lambda_reg: float = option(1.0, "weight of the encoder's adversarial loss", min=0.0)


@register_model
class AAE(GenerationModel):
    name = "aae"
    Config = AAEConfig
    # sample() decodes prior codes; reconstruct() and encode_images() also run the encoder,
    # so both halves of the autoencoder are averaged (the code discriminator is not).
    generator_names = ("decoder", "encoder")
    train_defaults = {**GenerationModel.train_defaults, "batch_size": 100}  # the paper's

    def __init__(self, config: AAEConfig) -> None:
        super().__init__(config)
        c = config
        pixels = c.channels * c.image_size * c.image_size
        if c.prior == "mixture" and c.latent_dim < 2:
            raise ConfigError("the mixture prior lies in the first two code dimensions; use "
                              "--latent-dim 2 or more")
        self.encoder = MLP(pixels, [c.hidden, c.hidden], c.latent_dim, activation="relu")
        self.decoder = ImageMLP(c.latent_dim, [c.hidden, c.hidden], self.image_shape,
                                activation="relu")
        self.code_D = MLP(c.latent_dim, [c.hidden_d, c.hidden_d], 1, activation="relu")
        for net in (self.encoder, self.decoder, self.code_D):
            init_weights(net, c.init, c.init_std)
        self.adversarial = AdversarialLoss("vanilla")

    # --- prior --------------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples of the prior (n, latent_dim) on the device; from the global RNG (exact
        resume) unless ``generator`` is given."""
        c = self.config
        z = torch.randn(n, c.latent_dim, generator=generator)
        if c.prior == "mixture":
            k = torch.randint(c.components, (n,), generator=generator)
            z = mixture_from_normal(z, k, c.components, c.mixture_radius, c.mixture_std)
        return z.to(self.device)

    def latent_prior(self) -> dict[str, Any]:
        c = self.config
        if c.prior != "mixture":
            return super().latent_prior()
        return {"distribution": "mixture", "components": c.components,
                "radius": c.mixture_radius, "std": c.mixture_std,
                "description": "e ~ N(0, I), then k uniform in 0..components-1 (drawn after e "
                "from the same generator); z = e but for dimensions 0 and 1, which are "
                "(radius + std * e0, std / 5 * e1) rotated by the angle 2 pi k / components "
                "(gankit.models.aae.mixture_from_normal)"}

    # --- networks -----------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Codes (N, latent_dim) of images (N, C, H, W) in [-1, 1]."""
        return self.encoder(images)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)

    def encode_images(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Codes of ``images`` in eval mode, on the CPU."""
        return self.map_batches(self.encode, images, batch_size)

    def reconstruct(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """decode(encode(images)) in eval mode, on the CPU, in [-1, 1]."""
        return self.map_batches(lambda x: self.decoder(self.encode(x)).float(), images, batch_size)

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real = batch["image"]
        return {"real": real, "reconstructed": self.reconstruct(real).to(real.device),
                "sampled": self.sample(real.shape[0], seed=0)}

    # --- training -----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return {
            "AE": adam([*self.encoder.parameters(), *self.decoder.parameters()], c.lr, betas),
            "D": adam(self.code_D.parameters(), c.lr_d, betas),
            "G": adam(self.encoder.parameters(), c.lr_g, betas),
        }

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real = batch["image"]
        # 1. reconstruction phase
        with self.autocast():
            loss_rec = F.mse_loss(self.decoder(self.encode(real)), real)
        self.optimize("AE", loss_rec)

        # 2a. regularisation phase: the code discriminator, prior samples against data codes
        prior = self.noise(real.shape[0])
        with self.autocast():
            code = self.encode(real)
            loss_d = self.adversarial.d_loss(self.code_D(prior), self.code_D(code.detach()))
        self.optimize("D", loss_d)

        # 2b. the encoder as generator: codes that the discriminator takes for prior samples
        self.set_requires_grad(self.code_D, False)
        with self.autocast():
            loss_g = self.config.lambda_reg * self.adversarial.g_loss(self.code_D(code))
        self.optimize("G", loss_g)
        self.set_requires_grad(self.code_D, True)
        return {"G": loss_g.detach(), "recon": loss_rec.detach(), "D": loss_d.detach()}


def mixture_from_normal(z: torch.Tensor, component: torch.Tensor, components: int,
                        radius: float, std: float) -> torch.Tensor:
    """Standard normal ``z`` moved to mixture ``component``: in dimensions 0 and 1, scaled to
    std ``std`` along the radius and ``std / 5`` across it, rotated to the component's angle
    and shifted to its mean on the circle; other dimensions stay standard normal."""
    angle = 2 * math.pi * component.to(z.dtype) / components
    cos, sin = torch.cos(angle), torch.sin(angle)
    along = radius + std * z[:, 0]
    across = (std / 5) * z[:, 1]
    out = z.clone()
    out[:, 0] = along * cos - across * sin
    out[:, 1] = along * sin + across * cos
    return out


def mixture_means(components: int, radius: float, latent_dim: int = 2) -> torch.Tensor:
    """The means (components, latent_dim) of the mixture prior."""
    angle = 2 * math.pi * torch.arange(components, dtype=torch.float32) / components
    means = torch.zeros(components, latent_dim)
    means[:, 0], means[:, 1] = radius * torch.cos(angle), radius * torch.sin(angle)
    return means
