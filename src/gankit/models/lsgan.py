"""LSGAN (Mao et al. 2016): DCGAN-like nets trained with the least-squares objective.

    D: min 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
    G: min 1/2 E[(D(G(z)) - c)^2]

with the paper's a = 0 (fake), b = 1 (real), c = 1 (the value G wants D to give its samples);
its other setting a = -1, b = 1, c = 0 (the Pearson chi-squared case) is two options away.
D ends in a plain linear layer: its output is compared to the targets directly, no sigmoid.
Nets, initialisation, Adam settings and batch size are DCGAN's (:mod:`gankit.models.dcgan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.config import option
from gankit.models.dcgan import DCGAN, DCGANConfig
from gankit.registry import register_model


@dataclass
class LSGANConfig(DCGANConfig):
    fake_target: float = option(0.0, "a: D's target for generated images")
    real_target: float = option(1.0, "b: D's target for real images")
    g_target: float = option(1.0, "c: the value G wants D to give its images")


@register_model
class LSGAN(DCGAN):
    name = "lsgan"
    Config = LSGANConfig

    def d_loss(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        c = self.config
        return 0.5 * (_squared_error(real_pred, c.real_target)
                      + _squared_error(fake_pred, c.fake_target))

    def g_loss(self, fake_pred: torch.Tensor) -> torch.Tensor:
        return 0.5 * _squared_error(fake_pred, self.config.g_target)


def _squared_error(pred: torch.Tensor, target: float) -> torch.Tensor:
    """E[(pred - target)^2] over the batch."""
    return F.mse_loss(pred, torch.full_like(pred, target))
