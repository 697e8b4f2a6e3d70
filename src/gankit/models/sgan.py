"""SGAN (Odena 2016): a semi-supervised GAN whose discriminator is also a K-class classifier.

The discriminator has K + 1 outputs: the K classes of the data and "fake". As Salimans et al.
(2016) note, the softmax over K + 1 logits does not change when all of them are shifted, so the
fake logit is fixed at 0 and the network outputs only the K class logits: the (K + 1)-way
softmax of ``[l_1 .. l_K, 0]`` is exactly the paper's, with one redundant output removed. Then
``P(real | x) = sigmoid(logsumexp(l))``.

Only ``labelled`` examples (100 by default, the same number per class, chosen from the data by
``labelled_seed`` when training starts: ``bind_data``) are used with their labels; every image
of the data is used without its label. The discriminator's loss per step:

- labelled real images: cross-entropy over the K + 1 classes with the true class;
- unlabelled real images (the engine's batch; its labels are never read): ``-log(1 - P(fake))``;
- generated images: cross-entropy with the class "fake", ``-log P(fake)``.

Why the labelled images come from a batch of their own: with 100 labels among 60 000 images, a
batch of 64 from the whole data would hold a labelled image about every tenth step. As the
reference implementations of Salimans et al. do, every step instead draws ``labelled_batch``
images (without repeats) from the labelled subset, which the model holds in memory; the subset
(indices, images, labels) is part of the checkpoint, so a resumed run and ``gankit.load`` keep
exactly the same labelled examples.

The generator is unconditional; its loss is the non-saturating ``-log(1 - P(fake | G(z)))``
(Odena) or feature matching on the discriminator's trunk (Salimans et al., who found it better
for the classifier over long runs). ``classify`` and ``accuracy`` use the discriminator as the
classifier (argmax over the K class logits).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from gankit.config import option
from gankit.errors import ConfigError, DataError
from gankit.models import options as shared
from gankit.models.generation import GenerationConfig, GenerationModel
from gankit.models.labelled_subset import LabelledSubset, choose_labelled
from gankit.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn.init import init_weights
from gankit.registry import register_model

log = logging.getLogger(__name__)


@dataclass
class SGANConfig(GenerationConfig):
    labelled: int = option(100, "labelled examples used with their label (the same number per "
                           "class); every other image is used without its label", min=1)
    labelled_seed: int = option(0, "seed that picks the labelled examples from the data")
    labelled_batch: int = option(64, "labelled examples per step, drawn from the labelled subset "
                                 "(capped at its size)", min=1)
    ngf: int = shared.ngf(64, "generator width (DCGAN)")
    ndf: int = shared.ndf(64, "discriminator width (DCGAN)")
    norm_g: shared.Norm = shared.norm(
        "batch", "normalisation in G")
    norm_d: shared.Norm = shared.norm(
        "layer", "normalisation in D; per-image (layer) rather than batch norm, so the "
        "classifier's answer does not depend on which images share its batch")
    dropout_d: float = option(0.25, "dropout in D (a regulariser of the few-label classifier)",
                              min=0.0)
    g_loss: Literal["non_saturating", "feature_matching"] = option(
        "non_saturating", "generator objective: non_saturating (Odena) or feature_matching "
        "(Salimans et al. 2016)")
    lambda_unsup: float = option(1.0, "weight of the unlabelled real/fake terms of D's loss",
                                 min=0.0)
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")


def with_fake_logit(logits: torch.Tensor) -> torch.Tensor:
    """The K + 1 logits ``[l_1 .. l_K, 0]``: class K (the last) is "fake"."""
    return F.pad(logits, (0, 1))


def real_logit(logits: torch.Tensor) -> torch.Tensor:
    """log P(real) - log P(fake) = logsumexp of the class logits (the fake logit is 0)."""
    return torch.logsumexp(logits, dim=1)


@register_model
class SGAN(LabelledSubset, GenerationModel):
    name = "sgan"
    Config = SGANConfig
    label_use = "some"

    def __init__(self, config: SGANConfig) -> None:
        super().__init__(config)
        c = config
        self.G = DCGANGenerator(c.latent_dim, c.channels, c.image_size, c.ngf, c.norm_g)
        self.D = DCGANDiscriminator(c.channels, c.image_size, c.ndf, c.norm_d,
                                    out_features=c.num_classes, dropout=c.dropout_d)
        init_weights(self.G, "normal", 0.02)
        init_weights(self.D, "normal", 0.02)
        self.init_labelled(self.image_shape)  # chosen from the data by bind_data

    # --- data ---------------------------------------------------------------------------------
    def bind_data(self, dataset: Any) -> None:
        """Choose the labelled examples from the training data (balanced, by labelled_seed)."""
        super().bind_data(dataset)
        labels = getattr(dataset, "labels", None)
        if labels is None:
            labels = [dataset[i].get("label") for i in range(len(dataset))]
            if any(y is None for y in labels):
                raise DataError("sgan needs the class of its labelled examples, but the data has "
                                "no labels; use class sub-folders or MNIST with its labels file")
        labels = np.asarray(labels, dtype=np.int64)
        c = self.config
        if c.labelled > len(labels):
            raise ConfigError(f"--labelled {c.labelled} is more than the {len(labels)} images "
                              "of the data; lower it")
        indices = choose_labelled(labels, c.labelled, c.num_classes, c.labelled_seed)
        images = torch.stack([dataset[int(i)]["image"] for i in indices]).float()
        self.set_labelled(indices, images, labels[indices])
        log.info("sgan: %d labelled examples (%s per class); %d images used without labels",
                 len(indices), "/".join(str(int((labels[indices] == k).sum()))
                                        for k in range(c.num_classes)), len(labels))

    def check_labelled(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.shape[1:] != self.image_shape or len(images) != len(labels):
            raise ConfigError(f"labelled images {tuple(images.shape)} with {len(labels)} labels "
                              f"do not fit this model's images {self.image_shape}")

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), **self.labelled_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.load_labelled_state(state)

    def _labelled_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        drawn = self.draw_labelled()
        if drawn is None:
            raise ConfigError("sgan has no labelled examples: call model.bind_data(dataset) "
                              "before training (gankit.train does)")
        return drawn

    # --- networks -----------------------------------------------------------------------------
    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The K class logits of D (the fake logit is the constant 0)."""
        return self.D(images)

    def classify(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The class D gives each image (N, C, H, W) in [-1, 1]: argmax over the K classes."""
        return self.map_batches(lambda x: self.class_logits(x).argmax(dim=1), images, batch_size)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int]) -> float:
        """Share of ``images`` whose class is predicted right."""
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        return float((self.classify(images) == labels).float().mean())

    # --- training -----------------------------------------------------------------------------
    def d_losses(self, labelled: torch.Tensor, labels: torch.Tensor, unlabelled: torch.Tensor,
                 fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three terms of D's loss (see the module docstring), each a batch mean."""
        fake_class = torch.full((len(fake),), self.config.num_classes, device=fake.device)
        return {
            "D_sup": F.cross_entropy(with_fake_logit(self.D(labelled)), labels),
            # -log(1 - P(fake)) = softplus(-logsumexp(l))
            "D_real": F.softplus(-real_logit(self.D(unlabelled))).mean(),
            "D_fake": F.cross_entropy(with_fake_logit(self.D(fake)), fake_class),
        }

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Non-saturating ``-log(1 - P(fake | G(z)))``, or feature matching: the squared
        distance between the mean trunk features of real and generated images."""
        if self.config.g_loss == "feature_matching":
            real_features = self.D.features(real).mean(0).detach()
            return (self.D.features(fake).mean(0) - real_features).pow(2).mean()
        return F.softplus(-real_logit(self.D(fake))).mean()

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        real = batch["image"]  # used without its labels: only the labelled subset's count
        labelled, labels = self._labelled_batch()
        z = self.noise(real.shape[0])
        with self.autocast():
            fake = self.G(z)
            d = self.d_losses(labelled, labels, real, fake.detach())
            loss_d = d["D_sup"] + c.lambda_unsup * (d["D_real"] + d["D_fake"])
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_g = self.generator_loss(real, fake)
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        return {"G": loss_g.detach(), **{k: v.detach() for k, v in d.items()}}
