"""L1, PSNR and SSIM: hand computations and scikit-image's structural_similarity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from gankit.data.image_io import read_image
from gankit.errors import DataError
from gankit.metrics import l1, psnr, ssim
from gankit.metrics.paired import gaussian_window, ssim_per_image


def skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """scikit-image on one (C, H, W) pair in [-1, 1], with Wang et al.'s settings."""
    x = ((a.double() + 1) / 2).permute(1, 2, 0).numpy()
    y = ((b.double() + 1) / 2).permute(1, 2, 0).numpy()
    return structural_similarity(x, y, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False)


def test_ssim_equals_scikit_image_on_real_and_random_images(shared_data):
    twitter = read_image(shared_data / "emoji" / "twitter" / "1f600.png", 3)
    google = read_image(shared_data / "emoji" / "google" / "1f600.png", 3)
    gen = torch.Generator().manual_seed(0)
    noisy = (twitter + 0.2 * torch.randn(twitter.shape, generator=gen)).clamp(-1, 1)
    random_a = torch.rand(3, 37, 53, generator=gen) * 2 - 1
    random_b = (random_a * 0.5 + torch.rand(3, 37, 53, generator=gen) - 0.5).clamp(-1, 1)
    for a, b in ((twitter, google), (twitter, noisy), (random_a, random_b)):
        assert ssim(a, b) == pytest.approx(skimage_ssim(a, b), abs=1e-9)
    gray_a, gray_b = twitter[:1], google[:1]  # one channel
    assert ssim(gray_a, gray_b) == pytest.approx(skimage_ssim(gray_a, gray_b), abs=1e-9)


def test_ssim_of_a_batch_is_the_mean_per_image_and_identity_is_one():
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(4, 3, 24, 24, generator=gen) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=gen)).clamp(-1, 1)
    per = ssim_per_image(a, b)
    assert per.shape == (4,)
    for i in range(4):
        assert per[i].item() == pytest.approx(skimage_ssim(a[i], b[i]), abs=1e-9)
    assert ssim(a, b) == pytest.approx(per.mean().item())
    assert ssim(a, a) == pytest.approx(1.0)


def test_gaussian_window_is_the_normalised_11_tap_sigma_1_5_kernel():
    w = gaussian_window()
    x = np.arange(-5, 6)
    ref = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    assert np.allclose(w.numpy(), ref / ref.sum())


def test_l1_and_psnr_by_hand():
    a = torch.full((1, 1, 4, 4), -1.0)  # 0 on the [0, 1] scale
    b = torch.full((1, 1, 4, 4), -1.0)
    b[..., :2, :] = 0.0  # half the pixels at 0.5
    assert l1(a, b) == pytest.approx(0.25)
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.125))
    two = torch.cat([a, a])
    other = torch.cat([b, a + 0.2])  # second pair: MSE 0.01 -> 20 dB
    assert psnr(two, other) == pytest.approx((10 * math.log10(8) + 20.0) / 2)
    assert psnr(a, a) == pytest.approx(100.0)  # identical images are capped, not infinite


def test_paired_metrics_refuse_mismatched_or_tiny_images():
    with pytest.raises(DataError, match="same shape"):
        l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(DataError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
