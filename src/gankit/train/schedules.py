"""Learning-rate policies, stepped once per epoch by the engine."""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)

from gankit.train.config import TrainConfig


def linear_decay(epochs: int, epochs_decay: int) -> Callable[[int], float]:
    """The pix2pix/CycleGAN policy, exactly: in 1-based epoch E the rate is multiplied by
    ``1 - max(0, E + 1 - epochs) / (epochs_decay + 1)``.

    With 100 + 100 epochs: 1 up to epoch 99, 100/101 in epoch 100, 1/101 in epoch 199 and 0
    in epoch 200, as the reference gets by stepping its LambdaLR at the start of each epoch.
    The engine steps at epoch ends, so the scheduler's ``epoch`` counts the epochs done, E - 1.
    With ``epochs_decay=0`` the rate stays constant (the reference would train its last epoch
    at rate 0). Never negative, also past the end of the schedule. A plain function, so the
    scheduler's state dict holds no copy of the epoch counts and a resumed run with more
    epochs follows the new counts.
    """

    def factor(epoch: int) -> float:
        if epochs_decay == 0:
            return 1.0
        return max(0.0, 1.0 - max(0, epoch + 2 - epochs) / float(epochs_decay + 1))

    return factor


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LRScheduler | ReduceLROnPlateau:
    total = cfg.epochs + cfg.epochs_decay
    if cfg.lr_policy == "linear":
        return LambdaLR(optimizer, linear_decay(cfg.epochs, cfg.epochs_decay))
    if cfg.lr_policy == "step":
        return StepLR(optimizer, step_size=max(1, cfg.lr_step_epochs), gamma=0.1)
    if cfg.lr_policy == "cosine":
        return CosineAnnealingLR(optimizer, T_max=max(1, total), eta_min=0.0)
    if cfg.lr_policy == "plateau":
        return ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    return LambdaLR(optimizer, lambda _epoch: 1.0)  # constant


def step_scheduler(scheduler: LRScheduler | ReduceLROnPlateau, metric: float) -> None:
    """Step at an epoch end; the plateau policy watches ``metric`` (the epoch's mean G loss)."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(metric)
    else:
        scheduler.step()
