"""Adversarial objectives and gradient penalties shared by every GAN.

Convention (the same for every mode):

* ``loss(pred, target_is_real)`` is one side's term, a mean over all elements of ``pred``
  (so a PatchGAN's logit map averages over patches).
* ``d_loss(real_pred, fake_pred)`` is the discriminator/critic loss and is always the SUM of
  the two terms, ``loss(real_pred, True) + loss(fake_pred, False)``. pix2pix and CycleGAN
  halve it (``0.5 * d_loss``) to slow D down; that scaling belongs to the caller.
* ``g_loss(fake_pred)`` is the generator's term. For vanilla, lsgan and wgan it equals
  ``loss(fake_pred, True)`` (vanilla is the non-saturating -log D(G(z))); for hinge it is
  ``-mean(fake_pred)``, not the D-side hinge, so generators should call ``g_loss``.

Predictions are raw logits/scores: no network ends in a sigmoid.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import ConfigError
from gankit.rng import per_sample

AdvMode = Literal["vanilla", "lsgan", "wgan", "wgan-gp", "hinge"]
ADV_MODES: tuple[str, ...] = get_args(AdvMode)


class AdversarialLoss(nn.Module):
    """The GAN objective for ``mode``.

    vanilla: BCE with logits against ``real_label``/``fake_label`` (set ``real_label=0.9`` for
    one-sided label smoothing); lsgan: mean squared error to the same labels; wgan and wgan-gp:
    the Wasserstein critic estimate (labels unused; add :func:`gradient_penalty` or weight
    clipping yourself); hinge: ``relu(1 - real) + relu(1 + fake)`` for D, ``-fake`` for G.
    """

    def __init__(self, mode: str, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in ADV_MODES:
            raise ConfigError(f"unknown GAN loss {mode!r}; use one of {', '.join(ADV_MODES)}")
        self.mode = mode
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(
        self, pred: torch.Tensor, target_is_real: bool, *, for_discriminator: bool = True
    ) -> torch.Tensor:
        """One side's term. ``for_discriminator=False`` only changes hinge (see ``g_loss``)."""
        if self.mode in ("vanilla", "lsgan"):
            label = self.real_label if target_is_real else self.fake_label
            target = torch.full_like(pred, label)
            if self.mode == "vanilla":
                return F.binary_cross_entropy_with_logits(pred, target)
            return F.mse_loss(pred, target)
        if self.mode == "hinge" and for_discriminator:
            return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
        # wgan, wgan-gp, and the hinge generator: raise real scores, lower fake ones
        return -pred.mean() if target_is_real else pred.mean()

    def d_loss(self, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        """Discriminator/critic loss: the sum of the real and the fake term (unscaled)."""
        return self(real_pred, True) + self(fake_pred, False)

    def g_loss(self, fake_pred: torch.Tensor) -> torch.Tensor:
        """Generator loss on D's scores of generated samples."""
        return self(fake_pred, True, for_discriminator=False)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, real_label={self.real_label}, fake_label={self.fake_label}"


def _input_gradient_penalty(
    critic: nn.Module, points: torch.Tensor, critic_args: tuple[Any, ...], target: float
) -> torch.Tensor:
    """mean over samples of (||d critic / d points||_2 - target)^2, differentiable."""
    points = points.requires_grad_(True)
    scores = critic(points, *critic_args)
    (grad,) = torch.autograd.grad(
        outputs=scores,
        inputs=points,
        grad_outputs=torch.ones_like(scores),
        create_graph=True,
    )
    grad = grad.float().flatten(1)  # norm in fp32 even under autocast
    # the tiny epsilon keeps the sqrt differentiable where the gradient is exactly zero
    norm = torch.sqrt(grad.pow(2).sum(dim=1) + 1e-12)
    return (norm - target).pow(2).mean()


def _per_sample_rand(x: torch.Tensor) -> torch.Tensor:
    """U[0,1) of shape (N, 1, 1, ...), one draw per sample, from the global torch RNG (as
    one process would draw them for the global batch: gankit.rng)."""
    tail = (1,) * (x.dim() - 1)
    return per_sample(lambda k: torch.rand((k, *tail), device=x.device, dtype=x.dtype),
                      x.shape[0])


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *critic_args: Any,
    target: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): mean((||grad D(x_hat)||_2 - target)^2).

    ``x_hat`` is a random per-sample interpolate of ``real`` and ``fake`` (both detached, so
    the penalty trains only the critic). The norm is per sample over all non-batch dims and
    the graph is kept, so ``(lam * gp).backward()`` reaches the critic's parameters.
    ``critic_args`` are passed after the input, e.g. labels or a condition image.
    Multiply by lambda (10 in the paper) yourself.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ"
        )
    real, fake = real.detach(), fake.detach()
    alpha = _per_sample_rand(real)
    x_hat = real + alpha * (fake - real)
    return _input_gradient_penalty(critic, x_hat, critic_args, target)


def dragan_penalty(
    critic: nn.Module, real: torch.Tensor, *critic_args: Any, k: float = 1.0, c: float = 0.5
) -> torch.Tensor:
    """DRAGAN penalty (Kodali et al. 2017): keeps ||grad D|| near ``k`` around the real data.

    As in the authors' code, ``x_p = x + c * std(x) * U[0,1)`` (std over the whole batch) and
    the gradient is taken at a random per-sample point between ``x`` and ``x_p``; the norm
    formula is that of :func:`gradient_penalty`. Multiply by lambda (10 in the paper) yourself.
    """
    real = real.detach()
    perturbed = real + c * real.std() * torch.rand_like(real)
    alpha = _per_sample_rand(real)
    x_hat = real + alpha * (perturbed - real)
    return _input_gradient_penalty(critic, x_hat, critic_args, k)
