"""AC-GAN (Odena et al. 2016): a class-conditional G and a D with an auxiliary classifier.

G gets the one-hot class joined to z. D has two heads on one trunk: the source logit (real or
fake) and K class logits. With L_S the source log-likelihood and L_C the class log-likelihood,
D maximises L_S + L_C and G maximises L_C - L_S (non-saturating here), so:

* D: BCE(real, 1) + BCE(fake, 0) + CE(class(real), y) + CE(class(fake), y_fake)
* G: BCE(fake, 1) + CE(class(fake), y_fake)

The class head gives raw logits straight into ``cross_entropy`` (which applies log-softmax
itself); a softmax layer in front of it, as in a popular one-file version, squashes the
gradient and the loss can no longer approach zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import option
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model


@dataclass
class ACGANConfig(GenerationConfig):
    ngf: int = shared.ngf(64, "G's width at the last layer (DCGAN nets; doubled per layer inward)")
    ndf: int = shared.ndf(64, "D's width at the first layer (doubled per layer)")
    norm: shared.Norm = shared.norm("batch", "normalisation in G and D")
    dropout_d: float = option(0.5, "dropout after each of D's layers (the paper's D)", min=0.0)
    lambda_aux: float = option(1.0, "weight of the auxiliary class loss", min=0.0)
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D (the paper's)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")


class ACDiscriminator(nn.Module):
    """Images -> (source logit (N, 1), class logits (N, K)) from one DCGAN trunk."""

    def __init__(self, c: ACGANConfig) -> None:
        super().__init__()
        self.net = DCGANDiscriminator(c.channels, c.image_size, c.ndf, c.norm,
                                      dropout=c.dropout_d)
        self.classifier = nn.Linear(self.net.feature_dim, c.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net.features(x)
        return self.net.head(h), self.classifier(h)


@register_model
class ACGAN(GenerationModel):
    name = "acgan"
    Config = ACGANConfig
    label_use = "all"
    conditional = True
    train_defaults = {**GenerationModel.train_defaults, "batch_size": 100}  # the paper's

    def __init__(self, config: ACGANConfig) -> None:
        super().__init__(config)
        c = config
        self.G = DCGANGenerator(c.latent_dim + c.num_classes, c.channels, c.image_size, c.ngf,
                                c.norm)
        self.D = ACDiscriminator(c)
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)
        self.adversarial = AdversarialLoss("vanilla")

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = self.classes_in_turn(z.shape[0], z.device)
        onehot = F.one_hot(labels, self.config.num_classes).to(z.dtype)
        return self.G(torch.cat([z, onehot], dim=1))

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        real, labels = batch["image"], batch["label"]
        n = real.shape[0]
        z = self.noise(n)
        fake_labels = torch.randint(0, c.num_classes, (n,), device=real.device)
        with self.autocast():
            fake = self.generate(z, fake_labels)
            src_real, cls_real = self.D(real)
            src_fake, cls_fake = self.D(fake.detach())
            loss_src = self.adversarial.d_loss(src_real, src_fake)
            loss_cls = F.cross_entropy(cls_real, labels) + F.cross_entropy(cls_fake, fake_labels)
            loss_d = loss_src + c.lambda_aux * loss_cls
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            src_fake, cls_fake = self.D(fake)
            loss_g_src = self.adversarial.g_loss(src_fake)
            loss_g_cls = F.cross_entropy(cls_fake, fake_labels)
            loss_g = loss_g_src + c.lambda_aux * loss_g_cls
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        with torch.no_grad():
            accuracy = (cls_real.argmax(1) == labels).float().mean()
        return {"G": loss_g_src.detach(), "G_class": loss_g_cls.detach(),
                "D": loss_src.detach(), "D_class": loss_cls.detach(), "D_accuracy": accuracy}
