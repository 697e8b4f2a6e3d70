"""An exponential moving average of the generator's weights (``gankit train --ema DECAY``).

Why: a GAN's generator keeps moving around a good solution as the discriminator and the
generator chase each other; the average of its recent weights is usually smoother and better
than any single iterate (Yazıcı et al. 2019, "The unusual effectiveness of averaging in GAN
training"; StyleGAN's ``G_ema``, BigGAN). Training is unchanged: the average is a passenger
that the engine updates after every step, uses for evaluation and sample grids, and saves in
the checkpoint beside the live weights; ``gankit.load`` then puts it into the generator for
inference.

Which networks are averaged is declared by the model (``GANModel.generator_names``), never
guessed by name here. Parameters are averaged; buffers (batch-norm running statistics, a
spectral norm's power-iteration vectors) are copied from the live network at every update, as
StyleGAN does: averaged running statistics would describe no network that ever ran.

The decay warms up: update ``n`` (counting from 0) uses ``min(decay, (1 + n) / (10 + n))``,
the schedule of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``. Without it the
average of a short run is dominated by the random initial weights (at decay 0.999 they still
weigh e^-1 after 1000 steps); with it the average covers roughly the last tenth of the steps
so far until that window reaches the ``1 / (1 - decay)`` steps the decay asks for (at step
~890 for 0.99, ~9000 for 0.999).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from gankit.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)


def warmed_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (0 for the first): ``decay``, held back early on."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def _networks(model: nn.Module, names: tuple[str, ...]) -> dict[str, nn.Module]:
    nets = {}
    for name in names:
        net = getattr(model, name, None)
        if not isinstance(net, nn.Module):
            raise ConfigError(
                f"{type(model).__name__}.generator_names names {name!r}, which is not one of its "
                "networks; fix the model's generator_names declaration")
        nets[name] = net
    return nets


class GeneratorEMA:
    """Averaged copies of a model's generator network(s), kept outside the model.

    The copies are plain tensors keyed like each network's ``state_dict()`` (so they load into
    the network with ``load_state_dict`` and survive the network being compiled in place),
    on the network's device, in its dtype and memory format.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"the EMA decay must be in [0, 1), not {decay}; 0.999 is usual")
        self.decay = float(decay)
        self.warmup = warmup
        self.names: tuple[str, ...] = tuple(getattr(model, "generator_names", ("G",)))
        self.updates = 0
        self.averaged: dict[str, dict[str, torch.Tensor]] = {}
        self.reset(model)

    def reset(self, model: nn.Module) -> None:
        """Start the average again from the model's current (live) weights."""
        self.averaged = {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
                         for name, net in _networks(model, self.names).items()}
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        return warmed_decay(self.decay, self.updates) if self.warmup else self.decay

    def _pairs(self, model: nn.Module) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        """(averaged, live, is_parameter) for every entry of every averaged network."""
        for name, net in _networks(model, self.names).items():
            averaged = self.averaged[name]
            live = net.state_dict(keep_vars=True)
            if live.keys() != averaged.keys():
                raise ConfigError(f"the EMA of {name} no longer matches the network's entries")
            for key, tensor in live.items():
                param = isinstance(tensor, nn.Parameter) and tensor.is_floating_point()
                yield averaged[key], tensor.detach(), param

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average: ``avg = d * avg + (1 - d) * live`` for the parameters
        (one fused ``lerp`` over all of them), a copy of the live buffers."""
        weight = 1.0 - self.current_decay()
        avg_params, live_params = [], []
        for avg, live, param in self._pairs(model):
            if param:
                avg_params.append(avg)
                live_params.append(live)
            else:
                avg.copy_(live)
        if avg_params:
            torch._foreach_lerp_(avg_params, live_params, weight)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Run the block with the averaged weights in the model's generator(s), then put the
        live weights back bit for bit (values are copied in place, so optimizers, compiled
        graphs and any reference to the networks stay valid)."""
        pairs = list(self._pairs(model))
        with torch.no_grad():
            saved = [live.clone() for _, live, _ in pairs]
            for avg, live, _ in pairs:
                live.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for (_, live, _), value in zip(pairs, saved, strict=True):
                    live.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """For the checkpoint: decay, number of updates and each averaged network's weights."""
        return {"decay": self.decay, "warmup": self.warmup, "updates": self.updates,
                "networks": {name: dict(sd) for name, sd in self.averaged.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the decay in use stays this object's)."""
        networks = state["networks"]
        if set(networks) != set(self.averaged):
            raise CheckpointError(f"the checkpoint averages {sorted(networks)}, this model "
                                  f"{sorted(self.averaged)}")
        with torch.no_grad():
            for name, averaged in self.averaged.items():
                saved = networks[name]
                if saved.keys() != averaged.keys():
                    raise CheckpointError(f"the checkpoint's EMA of {name} does not fit the "
                                          "network; the file may be damaged")
                for key, tensor in averaged.items():
                    tensor.copy_(saved[key])
        self.updates = int(state["updates"])
        self.warmup = bool(state.get("warmup", True))
        saved_decay = float(state.get("decay", self.decay))
        if saved_decay != self.decay:
            log.info("EMA decay %g from now on (the checkpoint's average used %g)", self.decay,
                     saved_decay)


def load_averaged_weights(model: nn.Module, state: dict[str, Any], source: str) -> None:
    """Put a checkpoint's averaged weights (its ``"ema"`` entry) into ``model``'s generator(s)
    for inference, and record it in ``model.ema_info``."""
    for name, weights in state["networks"].items():
        net = getattr(model, name, None)
        if not isinstance(net, nn.Module):
            raise CheckpointError(f"{source}: the averaged network {name!r} is not a network of "
                                  f"{type(model).__name__}; the file may be damaged")
        try:
            net.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{source}: the averaged weights of {name} do not fit the network "
                f"({str(exc).splitlines()[0][:200]}); the file may be damaged") from None
    model.ema_info = {"decay": float(state.get("decay", 0.0)),  # type: ignore[assignment]
                      "updates": int(state.get("updates", 0)),
                      "networks": list(state["networks"])}
    log.info("%s: inference uses the exponential moving average of %s (decay %g, %d updates)",
             source, ", ".join(state["networks"]), model.ema_info["decay"],  # type: ignore
             model.ema_info["updates"])  # type: ignore[index]
