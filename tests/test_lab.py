"""sRGB <-> Lab against scikit-image and known values; the colorization model scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color

from gankit.data.lab import (
    lab_to_model,
    lab_to_rgb,
    model_to_rgb,
    rgb_to_lab,
    rgb_to_model,
    rgb_to_model_l,
)


def _colours() -> np.ndarray:
    rng = np.random.default_rng(0)
    rgb = rng.random((3, 24, 24))
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, 8)  # cube corners
    rgb[:, 0, :8] = corners
    rgb[:, 1, :6] = 0.02  # the linear segment of the sRGB curve
    return rgb


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(dtype):
    rgb = _colours()
    ours = rgb_to_lab(torch.tensor(rgb, dtype=dtype))
    ref = color.rgb2lab(rgb.transpose(1, 2, 0)).transpose(2, 0, 1)
    np.testing.assert_allclose(ours.double().numpy(), ref, atol=1e-3)
    batch = rgb_to_lab(torch.tensor(rgb, dtype=dtype)[None].repeat(2, 1, 1, 1))
    assert batch.shape == (2, 3, 24, 24)
    torch.testing.assert_close(batch[1], ours)


def test_lab_to_rgb_matches_skimage_and_round_trips():
    rgb = _colours()
    lab = color.rgb2lab(rgb.transpose(1, 2, 0))
    ours = lab_to_rgb(torch.tensor(lab.transpose(2, 0, 1)))
    ref = color.lab2rgb(lab).transpose(2, 0, 1)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)
    back = lab_to_rgb(rgb_to_lab(torch.tensor(rgb)))
    np.testing.assert_allclose(back.numpy(), rgb, atol=1e-6)


def test_known_values():
    pixels = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T[:, :, None]
    lab = rgb_to_lab(pixels.double())[..., 0].T
    np.testing.assert_allclose(lab[0].numpy(), [100, 0, 0], atol=0.01)  # white
    np.testing.assert_allclose(lab[1].numpy(), [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(lab[2].numpy(), [53.24, 80.09, 67.20], atol=0.01)  # sRGB red


def test_model_scaling_covers_the_gamut_inside_unit_range():
    grid = torch.linspace(0, 1, 33, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1, 1)
    lightness, ab = lab_to_model(rgb_to_lab(cube))
    assert lightness.shape == (1, 33**3, 1) and ab.shape == (2, 33**3, 1)
    assert lightness.min() == -1 and abs(lightness.max().item() - 1) < 1e-6
    assert ab.abs().max() < 1 and ab.abs().max() > 0.95  # b of pure blue is -107.9 / 110


def test_model_round_trip_to_rgb():
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    lightness, ab = rgb_to_model(rgb)
    assert lightness.shape == (2, 1, 8, 8) and ab.shape == (2, 2, 8, 8)
    torch.testing.assert_close(rgb_to_model_l(rgb), lightness)
    torch.testing.assert_close(model_to_rgb(lightness, ab), rgb, atol=1e-4, rtol=0)
    gray = model_to_rgb(lightness, torch.zeros_like(ab))  # no colour -> equal channels
    torch.testing.assert_close(gray[:, 0], gray[:, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(gray[:, 1], gray[:, 2], atol=1e-4, rtol=0)
    half = model_to_rgb(lightness.half(), ab.half())
    assert half.dtype == torch.float32


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="3, H, W"):
        rgb_to_lab(torch.zeros(4, 8, 8))
