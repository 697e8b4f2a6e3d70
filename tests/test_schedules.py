"""Learning-rate policies, stepped as the engine steps them: once at the end of every epoch."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import gankit
from gankit.train.config import TrainConfig
from gankit.train.schedules import build_scheduler, step_scheduler

from conftest import TINY_PIX2PIX


def _rates(n: int, lr: float = 2e-4, **train: object) -> list[float]:
    """The rate in force during each 1-based epoch 1..n: read before training an epoch,
    stepped at its end, as gankit.train.engine does."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = build_scheduler(opt, TrainConfig(**train))
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        step_scheduler(sched, 0.0)
    return rates


def _official_rates(n_epochs: int, n_epochs_decay: int, lr: float = 2e-4) -> list[float]:
    """The reference's LambdaLR (epoch_count=1), stepped at the start of every epoch."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    rule = lambda e: 1.0 - max(0, e + 1 - n_epochs) / float(n_epochs_decay + 1)  # noqa: E731
    sched = LambdaLR(opt, rule)
    rates = []
    for _ in range(1, n_epochs + n_epochs_decay + 1):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    return rates


def test_linear_policy_is_the_papers_schedule():
    rates = _rates(200, epochs=100, epochs_decay=100, lr_policy="linear")
    # hand-computed: 2e-4 * (1 - max(0, E + 1 - 100) / 101) in 1-based epoch E
    assert rates[0] == rates[98] == pytest.approx(2e-4)  # epochs 1..99
    assert rates[99] == pytest.approx(2e-4 * 100 / 101)  # epoch 100: 1.980e-4
    assert rates[100] == pytest.approx(2e-4 * 99 / 101)
    assert rates[198] == pytest.approx(2e-4 / 101)  # epoch 199: 1.98e-6
    assert rates[199] == 0.0  # epoch 200
    assert rates == pytest.approx(_official_rates(100, 100), abs=1e-12)
    assert _rates(3, lr=1.0, epochs=1, epochs_decay=2) == pytest.approx([2 / 3, 1 / 3, 0])


def test_linear_policy_without_decay_epochs_stays_constant():
    assert _rates(5, lr=1.0, epochs=5, epochs_decay=0) == [1.0] * 5
    # past the end of the schedule (a resumed run with a larger --max-steps) it stays at 0
    assert _rates(6, lr=1.0, epochs=2, epochs_decay=2)[-2:] == [0.0, 0.0]


def test_step_and_cosine_epoch_boundaries():
    # step: x0.1 after every lr_step_epochs epochs (epochs 1-3 at 1, 4-6 at 0.1, 7 at 0.01)
    step = _rates(7, lr=1.0, epochs=4, epochs_decay=3, lr_policy="step", lr_step_epochs=3)
    assert step == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    # cosine over all epochs + epochs_decay: epoch E at (1 + cos(pi (E - 1) / total)) / 2
    cosine = _rates(4, lr=1.0, epochs=2, epochs_decay=2, lr_policy="cosine")
    assert cosine == pytest.approx([(1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])


def test_the_engine_trains_each_epoch_at_the_papers_rate(emoji_small, tmp_path):
    """12 pairs, batch 2: 6 steps in each of 2 + 1 epochs; 1 - max(0, E + 1 - 2) / 2."""
    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path, **TINY_PIX2PIX)
    with open(tmp_path / "log.csv") as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f) if row.get("lr")]
    base = 2e-4
    assert rates == pytest.approx([base] * 6 + [base / 2] * 6 + [0.0] * 6)
