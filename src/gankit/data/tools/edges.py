"""Edge maps of photos (Canny, XDoG, HED) and the clean-up that makes them look drawn.

All maps are (H, W) float tensors on the CPU; masks are boolean, True on a line. Only torch
is needed (no OpenCV or scipy). The clean-up follows the post-processing of the official
pix2pix edges2shoes / edges2handbags datasets (HED, then non-maximum suppression along the
edge normal, a threshold, thinning to one pixel and removal of small pieces), so a model
trained on them can be fed edges made here:

``canny``  colour gradients of the Gaussian-smoothed image (per pixel, the channel with the
           strongest gradient), non-maximum suppression along the gradient, hysteresis between
           ``low`` and ``high`` (units: intensity change per pixel, image in [0, 1]).
``xdog``   Winnemoeller's eXtended difference of Gaussians on the luminance: the sharpened
           image ``(1 + p) G_sigma - p G_{k sigma}``, black where it falls below ``eps`` with
           a soft ``tanh`` ramp of steepness ``phi``; lines then keep their stroke width
           unless thinned.
``hed``    the holistically-nested edge network (:mod:`gankit.data.tools.hed`), then
           suppression along the normal from the Hessian of the smoothed map, the threshold
           25/255 of the official script, thinning and small-piece removal.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.image_io import convert_channels
from gankit.errors import ConfigError

METHODS = ("canny", "xdog", "hed")


# --- filters ---------------------------------------------------------------------------------
def _pad_mode(x: torch.Tensor, amount: int) -> str:
    return "reflect" if amount < min(x.shape[-2:]) else "replicate"


def separable(x: torch.Tensor, k_rows: torch.Tensor, k_cols: torch.Tensor) -> torch.Tensor:
    """Filter (..., H, W) with the column kernel ``k_rows`` (along H) and ``k_cols`` (along W);
    borders reflect, so a border is not an edge."""
    shape = x.shape
    x = x.reshape(-1, 1, *shape[-2:]).float()
    r, c = len(k_rows) // 2, len(k_cols) // 2
    x = F.pad(x, (c, c, 0, 0), mode=_pad_mode(x, c)) if c else x
    x = F.conv2d(x, k_cols.float().view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, r, r), mode=_pad_mode(x, r)) if r else x
    x = F.conv2d(x, k_rows.float().view(1, 1, -1, 1))
    return x.reshape(shape)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return torch.ones(1)
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = gaussian_kernel(sigma)
    return separable(x, k, k)


def triangle_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The triangle filter [1 2 .. r+1 .. 2 1] / (r+1)^2 of Dollar's toolbox (``convTri``)."""
    k = torch.cat([torch.arange(1, radius + 2), torch.arange(radius, 0, -1)]).float()
    k = k / k.sum()
    return separable(x, k, k)


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dx, d/dy) per pixel of (..., H, W): Sobel kernels scaled by 1/8 to derivatives."""
    deriv, smooth = torch.tensor([-0.5, 0.0, 0.5]), torch.tensor([0.25, 0.5, 0.25])
    return separable(x, smooth, deriv), separable(x, deriv, smooth)


def _sample(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of (H, W) at fractional positions (clamped to the image)."""
    h, w = x.shape
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    r0, c0 = rows.floor().long(), cols.floor().long()
    r1, c1 = (r0 + 1).clamp(max=h - 1), (c0 + 1).clamp(max=w - 1)
    fr, fc = rows - r0, cols - c0
    top = x[r0, c0] * (1 - fc) + x[r0, c1] * fc
    bottom = x[r1, c0] * (1 - fc) + x[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


# --- post-processing -------------------------------------------------------------------------
def non_max_suppression(strength: torch.Tensor, angle: torch.Tensor, *, slack: float = 1.0,
                        border: int = 0) -> torch.Tensor:
    """``strength`` where it is a maximum along the direction ``angle`` (radians, x = columns
    to the right, y = rows down) against its interpolated neighbours one pixel either way,
    else 0. ``slack`` multiplies the centre first (1.01 in Dollar's ``edgesNms``); ``border``
    fades the strength linearly to 0 over that many pixels at the image border."""
    h, w = strength.shape
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    dy, dx = torch.sin(angle), torch.cos(angle)
    centre = strength * slack
    keep = strength > 0
    for d in (-1.0, 1.0):
        keep &= centre >= _sample(strength, rows + d * dy, cols + d * dx)
    out = torch.where(keep, strength, torch.zeros_like(strength))
    if border > 0:
        ramp_r = (torch.minimum(rows, h - 1 - rows) / border).clamp(max=1)
        ramp_c = (torch.minimum(cols, w - 1 - cols) / border).clamp(max=1)
        out = out * ramp_r * ramp_c
    return out


def label_components(mask: torch.Tensor) -> torch.Tensor:
    """8-connected components of a boolean (H, W) mask: a label > 0 per component, 0 off it.

    Each pixel starts with its own index and takes the largest label around it, and jumps to
    the label of the pixel its label names (every label is the index of a pixel of the same
    component), until nothing changes: a few dozen vectorised steps for long curves.
    """
    h, w = mask.shape
    m = mask.to(torch.float64)
    lab = torch.arange(1, h * w + 1, dtype=torch.float64).view(h, w) * m
    while True:
        nxt = F.max_pool2d(lab[None, None], 3, stride=1, padding=1)[0, 0] * m
        pointer = (nxt.long() - 1).clamp_min(0).view(-1)
        nxt = torch.maximum(nxt, nxt.view(-1)[pointer].view(h, w) * m)
        if torch.equal(nxt, lab):
            return lab.long()
        lab = nxt


def hysteresis(strength: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Pixels at least ``low`` that are connected to a pixel at least ``high``."""
    if low > high:
        raise ConfigError(f"the low threshold ({low}) must not exceed the high one ({high})")
    weak = strength >= low
    labels = label_components(weak)
    seeds = torch.unique(labels[(strength >= high) & weak])
    return torch.isin(labels, seeds) & weak


def remove_small(mask: torch.Tensor, min_size: int) -> torch.Tensor:
    """``mask`` without its 8-connected pieces of fewer than ``min_size`` pixels."""
    if min_size <= 1 or not mask.any():
        return mask
    labels = label_components(mask)
    counts = torch.bincount(labels.view(-1))
    return mask & (counts[labels] >= min_size)


def thin(mask: torch.Tensor, max_iterations: int = 1000) -> torch.Tensor:
    """Guo-Hall thinning (two sub-iterations, 1989): strokes of a boolean mask reduced to
    8-connected one-pixel curves that keep their connectivity and end points (the role of
    MATLAB's ``bwmorph(E, 'thin', inf)`` in the official clean-up)."""
    x = mask.to(torch.uint8)
    h, w = x.shape
    for _ in range(max_iterations):
        changed = False
        for step in (0, 1):
            p = F.pad(x, (1, 1, 1, 1))
            # x1 .. x8: east, then counter-clockwise (north-east, north, ...); x9 = x1
            n = [p[1:h + 1, 2:w + 2], p[0:h, 2:w + 2], p[0:h, 1:w + 1], p[0:h, 0:w],
                 p[1:h + 1, 0:w], p[2:h + 2, 0:w], p[2:h + 2, 1:w + 1], p[2:h + 2, 2:w + 2]]
            b = [q.bool() for q in n] + [n[0].bool()]
            crossings = sum((~b[2 * i] & (b[2 * i + 1] | b[2 * i + 2])).int() for i in range(4))
            n1 = sum((b[2 * k] | b[2 * k + 1]).int() for k in range(4))
            n2 = sum((b[2 * k + 1] | b[2 * k + 2]).int() for k in range(4))
            least = torch.minimum(n1, n2)
            if step == 0:
                side = ((b[1] | b[2] | ~b[7]) & b[0]) == 0
            else:
                side = ((b[5] | b[6] | ~b[3]) & b[4]) == 0
            remove = (x == 1) & (crossings == 1) & (least >= 2) & (least <= 3) & side
            if remove.any():
                x = x.masked_fill(remove, 0)
                changed = True
        if not changed:
            break
    return x.bool()


def clean(mask: torch.Tensor, *, thin_lines: bool = True, min_component: int = 5
          ) -> torch.Tensor:
    """Thin to one pixel (optional), then drop pieces smaller than ``min_component``."""
    if thin_lines:
        mask = thin(mask)
    return remove_small(mask, min_component)


# --- detectors -------------------------------------------------------------------------------
def to_channels_first(photo: np.ndarray, channels: int) -> torch.Tensor:
    """An HxWxC [0, 1] array (alpha composited onto white) as a (C, H, W) float tensor."""
    arr = convert_channels(photo, channels)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))


def canny(photo: np.ndarray, *, sigma: float = 1.0, low: float = 0.04, high: float = 0.1
          ) -> torch.Tensor:
    """Canny edges of an HxWxC [0, 1] photo (any channels): a boolean (H, W) mask."""
    rgb = gaussian_blur(to_channels_first(photo, 3), sigma)
    gx, gy = sobel(rgb)
    magnitude = torch.hypot(gx, gy)
    best = magnitude.argmax(0, keepdim=True)  # the channel with the strongest gradient
    magnitude = magnitude.gather(0, best)[0]
    gx, gy = gx.gather(0, best)[0], gy.gather(0, best)[0]
    thin_strength = non_max_suppression(magnitude, torch.atan2(gy, gx))
    return hysteresis(thin_strength, low, high)


def xdog_image(photo: np.ndarray, *, sigma: float = 0.6, k: float = 1.6, p: float = 60.0,
               eps: float = 0.2, phi: float = 10.0) -> torch.Tensor:
    """The soft XDoG picture of a photo: (H, W) in [0, 1], 1 = white paper, 0 = ink."""
    gray = to_channels_first(photo, 1)[0]
    sharp = (1 + p) * gaussian_blur(gray, sigma) - p * gaussian_blur(gray, sigma * k)
    return torch.where(sharp >= eps, torch.ones_like(sharp),
                       1 + torch.tanh(phi * (sharp - eps)))


def xdog(photo: np.ndarray, **options: float) -> torch.Tensor:
    """XDoG lines of a photo: a boolean (H, W) mask where the soft picture is below 0.5."""
    return xdog_image(photo, **options) < 0.5


def hessian_orientation(edge_map: torch.Tensor, radius: int = 4) -> torch.Tensor:
    """The direction across the ridges of an edge-probability map: the eigenvector of the
    most negative curvature of the smoothed map (radians, x = columns, y = rows)."""
    smooth = triangle_blur(edge_map, radius)
    gy, gx = torch.gradient(smooth)
    gyy, gyx = torch.gradient(gy)
    _, gxx = torch.gradient(gx)
    return 0.5 * torch.atan2(2 * gyx, gxx - gyy) + math.pi / 2


def hed_lines(edge_map: torch.Tensor, *, threshold: float = 25 / 255) -> torch.Tensor:
    """HED probabilities -> a boolean mask: suppression along the ridge normal (slack 1.01,
    5-pixel border fade, as Dollar's ``edgesNms`` in the official script), then the threshold."""
    suppressed = non_max_suppression(edge_map, hessian_orientation(edge_map), slack=1.01,
                                     border=5)
    return suppressed >= max(threshold, 1e-6)


def edges_to_array(mask: torch.Tensor) -> np.ndarray:
    """A line mask as an HxWx1 [0, 1] image: black lines (0) on white (1)."""
    return (~mask).float().numpy()[..., None]


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown edge method {method!r}; use one of {', '.join(METHODS)}")
