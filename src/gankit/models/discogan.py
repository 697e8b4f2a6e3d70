"""DiscoGAN (Kim et al. 2017): two GANs coupled by a reconstruction loss, for unpaired domains.

``G_AB`` maps domain A to B and ``G_BA`` B to A; ``D_A`` judges images of domain A and
``D_B`` images of domain B. What the paper does, and this file does:

* each generator is an encoder-decoder with a bottleneck and no skip connections: 4 stride-2
  4x4 convs with leaky ReLU down, 4 stride-2 4x4 transposed convs with ReLU up, batch norm
  on every layer but the first and the last (``generator="encoder_decoder"``); the
  bottleneck is what lets a translation change shape (the paper's cars to faces), where a
  U-Net would hand the input's layout straight through;
* each discriminator is the same encoder followed by one 4x4 conv to a single score
  (``discriminator="discogan"``; a 64x64 image gives one logit, a larger one a map);
* the generator loss is ``L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B``: the standard GAN loss
  (non-saturating binary cross-entropy) on each side plus a reconstruction distance
  ``d(G_BA(G_AB(x_A)), x_A)`` both ways, with d the mean squared error (``reconstruction``),
  unweighted (``lambda_rec`` = 1); the discriminator loss is the sum of both sides' losses;
* Adam with learning rate 2e-4 and betas (0.5, 0.999), 64x64 images.

No paired term: the two images of a batch are independent draws from the two domains.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import option
from gankit.errors import ConfigError
from gankit.losses import AdversarialLoss, AdvMode
from gankit.models import options as shared
from gankit.models.translation import TranslationConfig, TranslationModel, round_trip_visuals
from gankit.nn.init import init_weights
from gankit.nn.layout import norm_bias
from gankit.nn.norms import check_norm, norm_layer
from gankit.nn.padding import check_multiple
from gankit.registry import register_model

PAPER_SIZE = 64  # the image size of every experiment in the paper


def _widths(base: int, layers: int) -> list[int]:
    """Filters of each stride-2 layer: ``base`` doubling up to 8 x ``base``."""
    return [base * min(2**i, 8) for i in range(layers)]


def _encoder(in_channels: int, width: int, layers: int, norm: str,
             conv_bias: str) -> tuple[list[nn.Module], int]:
    """``layers`` stride-2 4x4 convs with LeakyReLU(0.2), a norm after all but the first."""
    check_norm(norm)
    bias = norm_bias(norm, conv_bias)
    modules: list[nn.Module] = []
    prev = in_channels
    for i, w in enumerate(_widths(width, layers)):
        modules.append(nn.Conv2d(prev, w, 4, stride=2, padding=1, bias=True if i == 0 else bias))
        if i > 0:
            modules.append(norm_layer(norm, w))
        modules.append(nn.LeakyReLU(0.2, inplace=True))
        prev = w
    return modules, prev


class EncoderDecoderGenerator(nn.Module):
    """DiscoGAN's generator: an encoder of ``n_downs`` stride-2 convs and a mirrored decoder of
    transposed convs (norm and ReLU after each but the last, Tanh at the output), with no skip
    connections: everything passes through the ``H / 2**n_downs`` bottleneck."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_downs: int = 4,
                 norm: str = "batch", conv_bias: str = "official") -> None:
        super().__init__()
        if n_downs < 1:
            raise ConfigError(f"the encoder-decoder needs n_downs >= 1, got {n_downs}")
        self.size_multiple = 2**n_downs
        layers, prev = _encoder(in_channels, ngf, n_downs, norm, conv_bias)
        bias = norm_bias(norm, conv_bias)
        widths = _widths(ngf, n_downs)
        for i in range(n_downs - 1, -1, -1):
            if i == 0:
                layers += [nn.ConvTranspose2d(prev, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers += [nn.ConvTranspose2d(prev, widths[i - 1], 4, 2, 1, bias=bias),
                           norm_layer(norm, widths[i - 1]), nn.ReLU(inplace=True)]
                prev = widths[i - 1]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.size_multiple, f"EncoderDecoderGenerator({self.size_multiple})")
        return self.model(x)


class DiscoDiscriminator(nn.Module):
    """DiscoGAN's discriminator: the generator's encoder (``n_layers`` stride-2 convs), then a
    4x4 convolution without padding to one logit per 4x4 window of the last feature map: one
    score for an image of ``4 * 2**n_layers`` pixels (64 with the paper's 4 layers)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, norm: str = "batch",
                 conv_bias: str = "official") -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"the DiscoGAN discriminator needs n_layers >= 1, got {n_layers}")
        self.n_layers = n_layers
        self.min_size = 4 * 2**n_layers
        layers, prev = _encoder(in_channels, ndf, n_layers, norm, conv_bias)
        layers.append(nn.Conv2d(prev, 1, 4, stride=1, padding=0))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise ConfigError(
                f"the DiscoGAN discriminator with {self.n_layers} layers needs images of "
                f"at least {self.min_size}x{self.min_size}, got {tuple(x.shape[-2:])}; lower "
                "--n-layers-d (3 for 32x32 images) or use --crop-size "
                f"{self.min_size}")
        return self.model(x)


@dataclass
class DiscoGANConfig(TranslationConfig):
    generator: str = option(
        "encoder_decoder", "encoder_decoder (the paper's: n_downs stride-2 convs down and up, "
        "no skip connections), or a gankit generator: unet_N, resnet_Kblocks")
    n_downs: int = option(4, "downsamplings of the encoder-decoder generator (the paper's 4)",
                          min=1)
    discriminator: str = option(
        "discogan", "discogan (the paper's: the encoder, then one 4x4 conv to a score), or "
        "basic (70x70 PatchGAN), n_layers, pixel")
    n_layers_d: int = option(
        4, "stride-2 convs of the discriminator (the paper's 4, one score for 64x64 images; "
        "3 for 32x32); also the layers of --discriminator n_layers", min=1)
    norm: shared.Norm = shared.norm("batch", "normalisation layers (the paper's batch norm)")
    gan_mode: AdvMode = option("vanilla", "adversarial objective (the paper's: vanilla, the "
                               "standard GAN loss)")
    reconstruction: Literal["mse", "l1"] = option(
        "mse", "distance of the reconstruction loss (the paper's mse; l1 as in CycleGAN)")
    lambda_rec: float = option(
        1.0, "weight of each reconstruction loss (the paper adds them unweighted)", min=0.0)
    lr: float = shared.lr(2e-4, "Adam learning rate of every network (the paper's 0.0002)")
    beta1: float = shared.beta1(0.5, "Adam beta1 (the paper's 0.5)")
    beta2: float = shared.beta2(0.999, "Adam beta2 (the paper's 0.999)")
    weight_decay: float = option(1e-5, "Adam weight decay (L2) of every network (the "
                                 "authors' code: 1e-5)", min=0.0)


@register_model
class DiscoGAN(TranslationModel):
    name = "discogan"
    Config = DiscoGANConfig
    data_kind = "unpaired"
    metrics = ("fid", "kid")
    generator_names = ("G_AB", "G_BA")  # translate() runs G_AB, or G_BA with reverse=True
    data_defaults: ClassVar[dict[str, Any]] = {
        "load_size": PAPER_SIZE, "crop_size": PAPER_SIZE, "preprocess": "resize_and_crop"}
    train_defaults: ClassVar[dict[str, Any]] = {
        "epochs": 100, "epochs_decay": 0, "lr_policy": "constant", "batch_size": 64}

    def __init__(self, config: DiscoGANConfig | None = None) -> None:
        config = config or DiscoGANConfig()
        super().__init__(config)
        c = config
        if c.gan_mode in ("wgan", "wgan-gp"):
            raise ConfigError(f"discogan is defined with the standard GAN loss (vanilla; lsgan "
                              f"or hinge also work), not --gan-mode {c.gan_mode}: its "
                              "discriminators have no Lipschitz constraint (see dualgan)")
        self.G_AB = self.build_generator(c.in_channels, c.out_channels)
        self.G_BA = self.build_generator(c.out_channels, c.in_channels)
        self.D_A = self.build_discriminator(c.in_channels)
        self.D_B = self.build_discriminator(c.out_channels)
        self.adversarial = AdversarialLoss(c.gan_mode)

    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        c = self.config
        if c.generator != "encoder_decoder":
            return super().build_generator(in_channels, out_channels)
        net = EncoderDecoderGenerator(in_channels, out_channels, c.ngf, c.n_downs, c.norm,
                                      c.conv_bias)
        return init_weights(net, c.init, c.init_gain)

    def build_discriminator(self, in_channels: int) -> nn.Module:
        c = self.config
        if c.discriminator != "discogan":
            return super().build_discriminator(in_channels)
        net = DiscoDiscriminator(in_channels, c.ndf, c.n_layers_d, c.norm, c.conv_bias)
        return init_weights(net, c.init, c.init_gain)

    def generator(self, reverse: bool = False) -> nn.Module:
        return self.G_BA if reverse else self.G_AB

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config

        def adam(params: Any) -> torch.optim.Adam:
            return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2),
                                    weight_decay=c.weight_decay)

        return {"G": adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters())),
                "D": adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()))}

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The reconstruction distance d of the paper."""
        if self.config.reconstruction == "l1":
            return F.l1_loss(x, y)
        return F.mse_loss(x, y)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        discriminators = (self.D_A, self.D_B)
        with self.autocast():
            fake_b = self.G_AB(real_a)
            fake_a = self.G_BA(real_b)

        # The discriminators: real images of their domain against the other side's fakes.
        self.set_requires_grad(discriminators, True)
        with self.autocast():
            loss_d_a = self.adversarial.d_loss(self.D_A(real_a), self.D_A(fake_a.detach()))
            loss_d_b = self.adversarial.d_loss(self.D_B(real_b), self.D_B(fake_b.detach()))
        self.optimize("D", loss_d_a + loss_d_b)

        # The generators: fool the (updated) discriminators and reconstruct both ways.
        self.set_requires_grad(discriminators, False)
        with self.autocast():
            losses = {
                "G_AB": self.adversarial.g_loss(self.D_B(fake_b)),
                "G_BA": self.adversarial.g_loss(self.D_A(fake_a)),
                "rec_A": self.distance(self.G_BA(fake_b), real_a) * c.lambda_rec,
                "rec_B": self.distance(self.G_AB(fake_a), real_b) * c.lambda_rec,
            }
            loss_g = sum(losses.values())
        self.optimize("G", loss_g)
        self.set_requires_grad(discriminators, True)
        losses["D_A"] = loss_d_a
        losses["D_B"] = loss_d_b
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return round_trip_visuals(self, batch)
