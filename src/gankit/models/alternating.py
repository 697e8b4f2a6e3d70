"""The classic alternating GAN step that gan, dcgan, lsgan, bgan and dragan share.

Each step: one D update on real images and detached fakes, then one G update through the
updated D (with D's parameters frozen, so G's backward pass does not fill D's gradients). The
models differ only in the hooks: ``d_loss`` and ``g_loss`` (the objective: vanilla GAN with the
non-saturating G loss unless replaced) and ``d_penalty`` (a term added to D's loss in the same
backward pass, such as DRAGAN's gradient penalty).
"""

from __future__ import annotations

from typing import Any

import torch

from gankit.losses import AdversarialLoss
from gankit.models.generation import GenerationModel


class AlternatingGAN(GenerationModel):
    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.adversarial = AdversarialLoss("vanilla")

    def d_loss(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        return self.adversarial.d_loss(real_pred, fake_pred)

    def g_loss(self, fake_pred: torch.Tensor) -> torch.Tensor:
        # non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))
        return self.adversarial.g_loss(fake_pred)

    def d_penalty(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted terms added to D's loss, by log name; none by default."""
        return {}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        real = batch["image"]
        z = self.noise(real.shape[0])
        with self.autocast():
            fake = self.G(z)
            # real and fake in separate batches, so each gets its own batch-norm statistics
            loss_d = self.d_loss(self.D(real), self.D(fake.detach()))
            penalties = self.d_penalty(real)
        self.optimize("D", loss_d + sum(penalties.values()))  # one backward pass for all terms

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_g = self.g_loss(self.D(fake))
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        return {"G": loss_g.detach(), "D": loss_d.detach(),
                **{k: v.detach() for k, v in penalties.items()}}
