"""The CycleGAN image history pool (Shrivastava et al. 2017).

Showing the discriminator some older generated images, not only the latest, damps
oscillation. Randomness comes from the global torch RNG, which checkpoints save, so a resumed
run draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from gankit.errors import DataError

log = logging.getLogger(__name__)


class ImagePool:
    """A buffer of up to ``size`` previously generated images (``size=0`` disables it)."""

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch like ``images`` mixing new images and stored ones.

        While the pool is filling, every image is stored and returned as is. Once full, each
        image has probability 0.5 of being swapped: a random stored image is returned in its
        place and the new one is stored instead. Stored copies are detached clones.
        """
        if self.size == 0:
            return images
        if self.images and self.images[0].shape != images.shape[1:]:
            raise DataError(
                f"ImagePool holds images of shape {tuple(self.images[0].shape)} but got "
                f"{tuple(images.shape[1:])}; the history pool needs one fixed training image "
                "size: set a fixed crop size, or disable the pool with a size of 0"
            )
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                index = int(torch.randint(0, self.size, ()).item())
                old = self.images[index].to(image.device)
                self.images[index] = image.clone()
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out).to(images.dtype)

    def state_dict(self) -> dict[str, Any]:
        """``{"size": int, "images": Tensor}`` (an empty tensor when the pool is empty)."""
        stored = torch.stack([i.cpu() for i in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore stored images; a pool made smaller since the save keeps the first ones."""
        saved = state["images"]
        images = list(saved.unbind(0)) if saved.numel() else []
        if int(state.get("size", self.size)) != self.size:
            log.warning(
                "image pool size changed from %s to %s; keeping %d stored images",
                state.get("size"), self.size, min(len(images), self.size),
            )
        self.images = [img.clone() for img in images[: self.size]]
