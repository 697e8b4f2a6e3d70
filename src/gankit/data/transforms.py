"""Joint resize / crop / flip of all images of one sample, so the sides of a pair stay aligned.

Images are float tensors (CxHxW in [-1, 1]); resizing is bicubic with antialiasing in float,
so 16-bit images keep their precision. The random choices of a sample (crop offset, flip) are
drawn once from the ``numpy.random.Generator`` given for that sample, in this order: crop top,
crop left, flip; then applied identically to every image.

Modes (``DataConfig.preprocess``), train / eval:
  resize_and_crop       resize to load_size x load_size, then a random / centre crop_size crop
  crop                  a random / centre crop_size crop, no resize
  scale_width           width -> load_size keeping the aspect ratio, no crop
  scale_width_and_crop  width -> load_size keeping the aspect ratio, random / centre crop
  none                  no resize or crop
Outputs that are not cropped are resized to the nearest multiple of ``size_multiple`` (the
generator's required multiple, 256 for unet_256) on each side, so any image size works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data.config import DataConfig
from gankit.errors import ConfigError, DataError

_CROPPING = ("resize_and_crop", "crop", "scale_width_and_crop")
_SMALL_HINT = ("use --preprocess resize_and_crop (which resizes before cropping) "
               "or a smaller --crop-size")


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic, antialiased resize of a CxHxW tensor in [-1, 1] (no-op at the same size)."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    out = F.interpolate(image[None].float(), size=(height, width), mode="bicubic",
                        align_corners=False, antialias=True)[0]
    return out.clamp_(-1.0, 1.0)


def round_to_multiple(value: int, multiple: int) -> int:
    """The nearest multiple of ``multiple`` to ``value`` (halves up), at least ``multiple``."""
    return max(multiple, (2 * value + multiple) // (2 * multiple) * multiple)  # halves round up


class JointTransform:
    """Resize, crop and flip every image of one sample with the same random choices."""

    def __init__(self, cfg: DataConfig, train: bool, size_multiple: int = 1) -> None:
        if size_multiple < 1:
            raise ValueError(f"size_multiple must be at least 1, not {size_multiple}")
        self.preprocess = cfg.preprocess
        self.load_size = cfg.load_size
        self.crop_size = cfg.crop_size
        self.flip = bool(cfg.flip and train)
        self.train = train
        self.size_multiple = size_multiple
        if self.preprocess != "none" and (self.load_size < 1 or self.crop_size < 1):
            raise ConfigError(f"load_size ({self.load_size}) and crop_size ({self.crop_size}) "
                              "must be positive")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") \
                and self.load_size < self.crop_size:
            raise ConfigError(
                f"load_size {self.load_size} is smaller than crop_size {self.crop_size}: "
                f"--preprocess {self.preprocess} resizes to load_size and then crops, so "
                "set --load-size at least as large as --crop-size")
        if self.preprocess in _CROPPING and self.crop_size % size_multiple:
            good = round_to_multiple(self.crop_size, size_multiple)
            raise ConfigError(
                f"crop_size {self.crop_size} is not a multiple of {size_multiple}, which the "
                f"generator needs; use --crop-size {good}")

    def describe(self) -> str:
        mode = self.preprocess
        if mode == "resize_and_crop":
            mode += f" {self.load_size}->{self.crop_size}"
        elif mode == "crop":
            mode += f" {self.crop_size}"
        elif mode.startswith("scale_width"):
            mode += f" {self.load_size}" + (f"->{self.crop_size}" if "crop" in mode else "")
        return mode + (", random flips" if self.flip else "")

    def output_size(self, width: int, height: int, path: object = None) -> tuple[int, int]:
        """(width, height) of the result for an input of this size; a :class:`DataError`
        naming ``path`` if the image is too small for the crop."""
        w, h = self._resized_size(width, height, path)
        if self.preprocess in _CROPPING:
            return self.crop_size, self.crop_size
        return w, h

    def _resized_size(self, width: int, height: int, path: object) -> tuple[int, int]:
        mode, crop = self.preprocess, self.crop_size
        name = f"{path}: " if path is not None else ""
        if mode == "resize_and_crop":
            return self.load_size, self.load_size
        if mode == "crop":
            if width < crop or height < crop:
                raise DataError(f"{name}image is {width}x{height} pixels, smaller than the crop "
                                f"size {crop}x{crop}; {_SMALL_HINT}")
            return width, height
        if mode in ("scale_width", "scale_width_and_crop"):
            new_h = int(round(self.load_size * height / width))
            if new_h < crop:
                raise DataError(
                    f"{name}image is {width}x{height} pixels; scaled to width {self.load_size} it "
                    f"is {new_h} pixels high, less than the crop size {crop}; {_SMALL_HINT}")
            if mode == "scale_width":
                m = self.size_multiple
                return round_to_multiple(self.load_size, m), round_to_multiple(new_h, m)
            return self.load_size, new_h
        # none
        m = self.size_multiple
        return round_to_multiple(width, m), round_to_multiple(height, m)

    def __call__(
        self,
        images: Sequence[torch.Tensor],
        rng: np.random.Generator | None = None,
        paths: Sequence[object] | None = None,
    ) -> list[torch.Tensor]:
        """Transform the images of one sample (same height and width, any channel counts).

        Without ``rng`` (or in eval mode) there is no randomness: centre crop, no flip.
        """
        if not images:
            return []
        height, width = images[0].shape[-2:]
        for i, img in enumerate(images[1:], 1):
            if tuple(img.shape[-2:]) != (height, width):
                names = f" ({paths[0]} and {paths[i]})" if paths else ""
                raise DataError(
                    f"the images of one sample have different sizes{names}: "
                    f"{width}x{height} and {img.shape[-1]}x{img.shape[-2]}; the two sides of a "
                    "pair must have the same size")
        new_w, new_h = self._resized_size(width, height, paths[0] if paths else None)
        random = self.train and rng is not None
        top = left = 0
        crop = self.crop_size if self.preprocess in _CROPPING else None
        if crop is not None:
            if random:
                top = int(rng.integers(0, new_h - crop + 1))
                left = int(rng.integers(0, new_w - crop + 1))
            else:
                top, left = (new_h - crop) // 2, (new_w - crop) // 2
        flip = self.flip and random and bool(rng.random() < 0.5)
        out = []
        for img in images:
            img = resize(img, new_h, new_w)
            if crop is not None:
                img = img[..., top:top + crop, left:left + crop]
            if flip:
                img = img.flip(-1)
            out.append(img.contiguous())
        return out
