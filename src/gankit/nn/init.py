"""Weight initialisation shared by every model (one function instead of a copy per script)."""

from __future__ import annotations

import logging
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from gankit.errors import ConfigError

log = logging.getLogger(__name__)

InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]
INIT_KINDS: tuple[str, ...] = get_args(InitKind)


def _weight_param(module: nn.Module) -> torch.Tensor | None:
    """The tensor that really holds a layer's weight, also under spectral/weight norm."""
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations["weight"].original  # torch.nn.utils.parametrizations
    if isinstance(getattr(module, "weight_orig", None), torch.Tensor):
        return module.weight_orig  # old hook-based torch.nn.utils.spectral_norm
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, nn.Parameter) else None


@torch.no_grad()
def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv, transposed-conv and linear layers of ``net`` in place; return ``net``.

    normal: N(0, gain); xavier: Xavier-normal with ``gain``; kaiming: Kaiming-normal (fan_in,
    ReLU; ``gain`` is ignored, as in the reference implementation); orthogonal: orthogonal with
    ``gain``. Biases become 0. Affine BatchNorm/InstanceNorm weights are drawn from N(1, gain)
    and their biases set to 0, the DCGAN/pix2pix recipe.
    """
    if kind not in INIT_KINDS:
        raise ConfigError(f"unknown init {kind!r}; use one of {', '.join(INIT_KINDS)}")
    for module in net.modules():
        if isinstance(module, (_ConvNd, nn.Linear)):
            weight = _weight_param(module)
            if weight is not None:
                if kind == "normal":
                    nn.init.normal_(weight, 0.0, gain)
                elif kind == "xavier":
                    nn.init.xavier_normal_(weight, gain=gain)
                elif kind == "kaiming":
                    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
                else:
                    nn.init.orthogonal_(weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (_BatchNorm, _InstanceNorm)) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    log.debug("initialised %s with %s (gain %g)", type(net).__name__, kind, gain)
    return net
