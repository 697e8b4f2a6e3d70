"""How the engine turns a model's losses into parameter updates.

Every update of every model goes through ``GANModel.optimize(name, loss)`` and every forward
pass that may run in reduced precision through ``GANModel.autocast()``; both hand over to the
strategy the engine installs with ``model.use_strategy``. This one runs in a single process:
autocast in the resolved precision (bf16, or fp16 with a loss scaler per optimizer on CUDA).
A strategy for several processes extends it (averaging gradients before the step) without
touching a model file.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from gankit.models.base import GANModel, PlainUpdates


class SingleProcessStrategy(PlainUpdates):
    def __init__(self, precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision {precision!r}")
        self.precision = precision
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    def attach(self, model: GANModel) -> None:
        """Called once the model's optimizers exist (fp16 needs one scaler per optimizer)."""
        if self.precision == "fp16" and model.device.type != "cuda":
            raise ValueError("fp16 autocast needs a CUDA device")
        self.scalers = {name: torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
                        for name in model.optimizers}

    def autocast(self, model: GANModel) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(model.device.type, dtype=dtype)

    def optimize(self, model: GANModel, name: str, loss: torch.Tensor) -> None:
        scaler = self.scalers.get(name)
        if scaler is None or not scaler.is_enabled():
            super().optimize(model, name, loss)
            return
        opt = model.optimizers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The loss scalers' state (checkpoint key ``scalers``); empty unless fp16."""
        return {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, s in state.items():
            if k in self.scalers and self.scalers[k].is_enabled():
                self.scalers[k].load_state_dict(s)
