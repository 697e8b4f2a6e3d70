"""Colorization: pix2pix from the lightness channel L to the colour channels ab of Lab space.

Training reads RGB images from any folder; results are shown and saved as RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gankit.config import option
from gankit.data.lab import model_to_rgb, rgb_to_model_l
from gankit.errors import ConfigError
from gankit.models.pix2pix import Pix2Pix, Pix2PixConfig
from gankit.registry import register_model


@dataclass
class ColorizationConfig(Pix2PixConfig):
    in_channels: int = option(1, "the L channel (fixed)")
    out_channels: int = option(2, "the ab channels (fixed)")


@register_model
class Colorization(Pix2Pix):
    name = "colorization"
    Config = ColorizationConfig
    data_kind = "colorization"

    def __init__(self, config: ColorizationConfig | None = None) -> None:
        config = config or ColorizationConfig()
        if (config.in_channels, config.out_channels) != (1, 2):
            raise ConfigError("colorization maps L (1 channel) to ab (2 channels); "
                              "leave --in-channels and --out-channels at 1 and 2")
        super().__init__(config)

    def io_channels(self, reverse: bool = False) -> tuple[int, int]:
        return 3, 3  # RGB in (its lightness is used), RGB out

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        return rgb_to_model_l(images)

    def finish_output(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return model_to_rgb(inputs, outputs)

    def shown_input(self, image: torch.Tensor) -> torch.Tensor:
        return rgb_to_model_l(image[None])[0]

    def implied_target(self, image: torch.Tensor) -> torch.Tensor | None:
        return image

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        lightness = batch["A"]
        return {
            "input": lightness,
            "output": model_to_rgb(lightness, self.run_generator(lightness)),
            "target": model_to_rgb(lightness, batch["B"]),
        }
