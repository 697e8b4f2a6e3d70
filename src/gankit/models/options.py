"""Options that many models share, each defined once: its type, its limits and its usual help.
A model's Config gives its paper's default and, where the paper says more, its own help::

    lr: float = shared.lr(2e-4, "Adam learning rate of G and D (the paper's 0.0002)")
"""

from __future__ import annotations

from typing import Any, Literal

from gankit.config import option
from gankit.nn.norms import NormKind

Norm = NormKind
# Normalisations that treat each sample on its own: what a critic with a gradient penalty
# needs (batch norm would make each sample's gradient depend on the others).
PerSampleNorm = Literal["layer", "instance", "none"]


def lr(default: float, help: str = "Adam learning rate") -> Any:  # noqa: A002
    return option(default, help, min=0.0)


def beta1(default: float = 0.5, help: str = "Adam beta1") -> Any:  # noqa: A002
    return option(default, help, min=0.0)


def beta2(default: float = 0.999, help: str = "Adam beta2") -> Any:  # noqa: A002
    return option(default, help, min=0.0)


def ngf(default: int = 64, help: str = "generator width (filters of its widest layer)"  # noqa: A002
        ) -> Any:
    return option(default, help, min=1)


def ndf(default: int = 64,  # noqa: A002
        help: str = "discriminator width (filters of its first layer)") -> Any:  # noqa: A002
    return option(default, help, min=1)


def norm(default: str, help: str = "normalisation layers") -> Any:  # noqa: A002
    return option(default, help)
