"""sRGB <-> CIE Lab (D65) for torch tensors, and the scaling the colorization model uses.

Formulas: sRGB transfer curve, the sRGB -> XYZ matrix of ITU-R BT.709 primaries (the same
coefficients as skimage.color), D65 white (0.95047, 1, 1.08883) and the CIE f(t) with its
exact constants epsilon = 216/24389, kappa = 24389/27.

Model scaling: L in [0, 100] -> L / 50 - 1 in [-1, 1]; a, b -> a / 110, b / 110. Every sRGB
colour has |a|, |b| < 110 (a in [-86.2, 98.3], b in [-107.9, 94.5]), so the ab targets stay
inside [-1, 1], the range of a tanh generator.
"""

from __future__ import annotations

import torch

AB_SCALE = 110.0
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_WHITE = (0.95047, 1.0, 1.08883)
_EPS = 216.0 / 24389.0  # (6/29)^3
_KAPPA = 24389.0 / 27.0
_DELTA = 6.0 / 29.0


def _working(t: torch.Tensor) -> torch.Tensor:
    """Half precision is too coarse for the cube roots: compute in float32 at least."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point() \
        else t


def _channel_dim(t: torch.Tensor) -> int:
    if t.dim() not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(f"expected (3, H, W) or (N, 3, H, W), got {tuple(t.shape)}")
    return t.dim() - 3


def _mix(t: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix along the channel dimension (always dimension -3)."""
    return torch.einsum("ij,...jhw->...ihw", matrix, t)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (3xHxW or Nx3xHxW) -> Lab with L in [0, 100]."""
    dim = _channel_dim(rgb)
    rgb = _working(rgb).clamp(0.0, 1.0)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_XYZ_FROM_RGB, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    xyz = _mix(linear, matrix) / white
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(dim)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (L in [0, 100]) -> sRGB clipped to [0, 1], the inverse of :func:`rgb_to_lab`."""
    dim = _channel_dim(lab)
    lab = _working(lab)
    lightness, a, b = lab.unbind(dim)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim)
    xyz = torch.where(f > _DELTA, f ** 3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    white = torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    matrix = torch.linalg.inv(torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64)).to(lab)
    linear = _mix(xyz * white, matrix).clamp_min(0.0)
    rgb = torch.where(linear <= 0.0031308, 12.92 * linear,
                      1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)
    return rgb.clamp(0.0, 1.0)


def lab_to_model(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab -> (L, ab) scaled to [-1, 1]: L / 50 - 1 and ab / 110 (see the module note)."""
    dim = _channel_dim(lab)
    lightness, ab = lab.split([1, 2], dim)
    return ((lightness / 50.0 - 1.0).clamp(-1.0, 1.0), (ab / AB_SCALE).clamp(-1.0, 1.0))


def model_to_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L, ab) in the model's [-1, 1] scaling -> Lab."""
    dim = lightness.dim() - 3
    return torch.cat([(lightness + 1.0) * 50.0, ab * AB_SCALE], dim)


def rgb_to_model(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [-1, 1] -> (L, ab) in [-1, 1]: a colorization sample from an image tensor."""
    return lab_to_model(rgb_to_lab((rgb + 1.0) * 0.5))


def rgb_to_model_l(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] -> the lightness input of the colorization model, in [-1, 1]."""
    return rgb_to_model(rgb)[0]


def model_to_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L, ab) in [-1, 1] -> RGB in [-1, 1], to show and save colorization results."""
    lightness = _working(lightness)
    return lab_to_rgb(model_to_lab(lightness, ab.to(lightness.dtype))) * 2.0 - 1.0
