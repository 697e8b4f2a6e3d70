"""Paired metrics for translation with ground truth: L1, PSNR and SSIM.

Inputs are images in the model convention, (N, C, H, W) or (C, H, W) tensors in [-1, 1]; every
metric is computed on the [0, 1] scale (data range 1), per image, then averaged over images:

  L1    mean absolute difference (half of the pix2pix L1 loss, which works on [-1, 1])
  PSNR  10 log10(1 / MSE) in dB; identical images count as 100 dB (MSE floored at 1e-10)
  SSIM  Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, population
        statistics, averaged over the valid window positions and the channels; equal to
        ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gankit.errors import DataError

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_MSE = 1e-10


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches as float64 (N, C, H, W) on the [0, 1] scale, after checking shapes."""
    if a.dim() == 3:
        a = a[None]
    if b.dim() == 3:
        b = b[None]
    if a.shape != b.shape or a.dim() != 4:
        raise DataError(f"paired metrics need outputs and targets of the same shape "
                        f"(N, C, H, W), got {tuple(a.shape)} and {tuple(b.shape)}")
    a = (a.detach().to(torch.float64).clamp(-1, 1) + 1) * 0.5
    b = (b.detach().to(torch.float64).clamp(-1, 1) + 1) * 0.5
    return a, b.to(a.device)


def l1_per_image(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    a, b = _pair(outputs, targets)
    return (a - b).abs().flatten(1).mean(1)


def psnr_per_image(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    a, b = _pair(outputs, targets)
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(MIN_MSE)
    return -10.0 * torch.log10(mse)


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps (float64)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim_per_image(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    a, b = _pair(outputs, targets)
    n, c, h, w = a.shape
    if h < WINDOW or w < WINDOW:
        raise DataError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels (its Gaussian "
                        f"window), got {w}x{h}")
    g = gaussian_window().to(a.device)
    kh = g.view(1, 1, WINDOW, 1).expand(c, 1, WINDOW, 1)
    kw = g.view(1, 1, 1, WINDOW).expand(c, 1, 1, WINDOW)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable, "valid" positions only
        return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = K1 ** 2, K2 ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1)


def l1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean absolute difference on the [0, 1] scale, averaged over images."""
    return float(l1_per_image(outputs, targets).mean())


def psnr(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over images of the PSNR in dB (data range 1)."""
    value = float(psnr_per_image(outputs, targets).mean())
    return value if math.isfinite(value) else 100.0


def ssim(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean SSIM over images (see the module docstring for the exact definition)."""
    return float(ssim_per_image(outputs, targets).mean())
