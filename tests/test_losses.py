"""Adversarial losses against hand-computed values, and the WGAN-GP / DRAGAN penalties."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.losses import ADV_MODES, AdversarialLoss, dragan_penalty, gradient_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


# BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
EXPECTED = {
    # mode: (d_loss, g_loss)
    "vanilla": (
        (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2,
        (softplus(-0.5) + softplus(3.0)) / 2,
    ),
    "lsgan": ((1 + 4) / 2 + (0.25 + 9) / 2, (0.25 + 16) / 2),
    "wgan": (-1.25 - 0.5, 1.25),
    "wgan-gp": (-1.25 - 0.5, 1.25),
    "hinge": ((0 + 2) / 2 + (1.5 + 0) / 2, 1.25),
}


@pytest.mark.parametrize("mode", ADV_MODES)
def test_loss_values(mode):
    loss = AdversarialLoss(mode)
    d_expected, g_expected = EXPECTED[mode]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(g_expected, rel=1e-6)
    # d_loss is the unscaled sum of the two per-side terms
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(
        (loss(REAL, True) + loss(FAKE, False)).item(), rel=1e-6
    )


@pytest.mark.parametrize("mode", ADV_MODES)
def test_patch_maps_average_over_all_elements(mode):
    loss = AdversarialLoss(mode)
    real_map = REAL.repeat(3, 1, 4, 1)  # (3, 1, 4, 2): every row holds REAL
    fake_map = FAKE.repeat(3, 1, 4, 1)
    assert loss.d_loss(real_map, fake_map).item() == pytest.approx(EXPECTED[mode][0], rel=1e-6)
    assert loss.g_loss(fake_map).item() == pytest.approx(EXPECTED[mode][1], rel=1e-6)


def test_generator_side_of_call():
    """``loss(fake, True)`` is the generator loss except for hinge (which uses -mean)."""
    for mode in ("vanilla", "lsgan", "wgan"):
        loss = AdversarialLoss(mode)
        assert loss(FAKE, True).item() == pytest.approx(loss.g_loss(FAKE).item())
    hinge = AdversarialLoss("hinge")
    assert hinge(FAKE, True).item() == pytest.approx((0.5 + 4.0) / 2)
    assert hinge(FAKE, True, for_discriminator=False).item() == pytest.approx(1.25)


def test_label_smoothing():
    loss = AdversarialLoss("vanilla", real_label=0.9, fake_label=0.1)
    x = 2.0
    expected_real = 0.9 * softplus(-x) + 0.1 * softplus(x)
    expected_fake = 0.1 * softplus(-x) + 0.9 * softplus(x)
    assert loss(torch.tensor([x]), True).item() == pytest.approx(expected_real, rel=1e-6)
    assert loss(torch.tensor([x]), False).item() == pytest.approx(expected_fake, rel=1e-6)
    lsgan = AdversarialLoss("lsgan", real_label=0.9)
    assert lsgan(torch.tensor([2.0]), True).item() == pytest.approx(1.1**2)


def test_vanilla_generator_loss_is_non_saturating():
    """-log D(G(z)): the gradient stays ~-1 per sample when D confidently rejects the fake."""
    logits = torch.tensor([-10.0, -10.0], requires_grad=True)
    AdversarialLoss("vanilla").g_loss(logits).backward()
    assert logits.grad.tolist() == pytest.approx([-0.5, -0.5], rel=1e-3)


def test_unknown_mode():
    with pytest.raises(ConfigError, match="vanilla, lsgan, wgan, wgan-gp, hinge"):
        AdversarialLoss("bce")


# --- penalties ------------------------------------------------------------------------------
class LinearCritic(nn.Module):
    """D(x) = <w, x> + b per sample: its input gradient is w everywhere."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1) + self.bias


class QuadraticCritic(nn.Module):
    """D(x) = ||x||^2 / 2 per sample (input gradient x); records its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return 0.5 * x.pow(2).flatten(1).sum(1, keepdim=True)


def _weight_with_norm(norm: float, shape=(2, 3, 4)) -> torch.Tensor:
    w = torch.randn(shape)
    return w / w.norm() * norm


def test_gp_zero_for_unit_gradient_critic():
    torch.manual_seed(0)
    critic = LinearCritic(_weight_with_norm(1.0))
    real, fake = torch.randn(4, 2, 3, 4), torch.randn(4, 2, 3, 4)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gp_value_and_gradient_for_linear_critic():
    torch.manual_seed(0)
    critic = LinearCritic(_weight_with_norm(3.0))
    real, fake = torch.randn(4, 2, 3, 4), torch.randn(4, 2, 3, 4, requires_grad=True)
    gp = gradient_penalty(critic, real, fake)
    # per-sample norm is 3 (a whole-batch norm would be 6 and give 25)
    assert gp.item() == pytest.approx(4.0, rel=1e-5)
    assert gradient_penalty(critic, real, fake, target=3.0).item() == pytest.approx(0, abs=1e-8)
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 4 w / 3
    assert torch.allclose(critic.weight.grad, 4 * critic.weight.detach() / 3, atol=1e-5)
    assert fake.grad is None  # the fake side is detached: the penalty trains only the critic


def test_gp_passes_condition_to_critic():
    class ClassCritic(nn.Module):
        def __init__(self):
            super().__init__()
            weights = [_weight_with_norm(1.0), _weight_with_norm(3.0)]
            self.weight = nn.Parameter(torch.stack(weights))

        def forward(self, x, labels):
            return (x * self.weight[labels]).flatten(1).sum(1)

    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 0, 1])
    real, fake = torch.randn(4, 2, 3, 4), torch.randn(4, 2, 3, 4)
    # per-sample penalties 0, 4, 0, 4
    assert gradient_penalty(ClassCritic(), real, fake, labels).item() == pytest.approx(2.0)


def test_gp_uses_per_sample_interpolates():
    torch.manual_seed(0)
    critic = QuadraticCritic()
    real, fake = torch.randn(64, 1, 2, 2), torch.randn(64, 1, 2, 2)
    gradient_penalty(critic, real, fake)
    x_hat = critic.seen[0]
    t = (x_hat - real) / (fake - real)  # one interpolation factor per sample
    assert torch.allclose(t, t[:, :1, :1, :1].expand_as(t), atol=1e-4)
    assert t.min() >= -1e-6 and t.max() <= 1 and t.flatten().std() > 0.1
    # real == fake: the gradient is taken at real itself, penalty = mean((||x|| - 1)^2)
    same = torch.randn(5, 3, 2, 2)
    expected = (same.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert gradient_penalty(critic, same, same).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gp_works_with_patch_critic():
    """A PatchGAN-style map output: the gradient of the summed map, per sample."""
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 0.0, 0.0]).view(1, 3, 1, 1))
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    # d sum(map) / dx = 2 at each of 16 pixels of channel 0: norm 2 * 4 = 8
    assert gradient_penalty(conv, real, fake).item() == pytest.approx(49.0, rel=1e-5)
    gradient_penalty(conv, real, fake).backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_dragan_penalty():
    torch.manual_seed(0)
    critic = LinearCritic(_weight_with_norm(3.0))
    real = torch.randn(4, 2, 3, 4)
    assert dragan_penalty(critic, real).item() == pytest.approx(4.0, rel=1e-5)
    assert dragan_penalty(critic, real, k=3.0).item() == pytest.approx(0.0, abs=1e-8)
    dragan_penalty(critic, real).backward()
    assert torch.allclose(critic.weight.grad, 4 * critic.weight.detach() / 3, atol=1e-5)
    # a constant batch has std 0: no perturbation, penalty (||x|| - k)^2 at x itself
    quad = QuadraticCritic()
    flat = torch.full((3, 1, 2, 2), 1.5)  # ||x|| = 3
    assert dragan_penalty(quad, flat, k=1.0).item() == pytest.approx(4.0, rel=1e-5)
    # perturbation lies in [0, c * std(x)) per element
    x = torch.randn(16, 3, 4, 4)
    dragan_penalty(quad, x, c=0.5)
    delta = quad.seen[-1] - x
    assert delta.min() >= 0 and delta.max() < 0.5 * x.std() and delta.max() > 0.1 * x.std()


def test_dragan_passes_condition():
    class Cond(nn.Module):
        def forward(self, x, scale):
            return scale * x.flatten(1).sum(1)

    x = torch.randn(2, 1, 2, 2)  # gradient scale * ones(4): norm 2 * scale
    assert dragan_penalty(Cond(), x, 2.0, k=1.0).item() == pytest.approx(9.0, rel=1e-5)
