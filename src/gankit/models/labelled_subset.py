"""The labelled subset of a semi-supervised model (sgan, ccgan): a few images with their class,
chosen from the training data when training starts, kept in memory and in checkpoints, and
drawn from at every step."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gankit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

STATE_KEYS = ("labelled_indices", "labelled_images", "labelled_labels")


def choose_labelled(labels: np.ndarray, count: int, num_classes: int, seed: int) -> np.ndarray:
    """``count`` indices, as many per class as possible (the first ``count % K`` classes get one
    more), drawn without replacement by ``seed``; sorted."""
    rng = np.random.default_rng(seed)
    per_class = [count // num_classes + (1 if k < count % num_classes else 0)
                 for k in range(num_classes)]
    chosen = []
    for k, want in enumerate(per_class):
        members = np.flatnonzero(labels == k)
        if len(members) < want:
            log.warning("class %d has %d images, fewer than the %d labelled ones wanted",
                        k, len(members), want)
        chosen.append(rng.choice(members, size=min(want, len(members)), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class LabelledSubset:
    """Mixin of a GANModel with ``config.num_classes`` and ``config.labelled_batch``."""

    labelled_indices: torch.Tensor
    labelled_images: torch.Tensor
    labelled_labels: torch.Tensor

    def init_labelled(self, image_shape: tuple[int, ...] = ()) -> None:
        self.labelled_indices = torch.zeros(0, dtype=torch.long)
        self.labelled_images = torch.zeros(0, *image_shape)
        self.labelled_labels = torch.zeros(0, dtype=torch.long)
        self._on_device: tuple[torch.Tensor, torch.Tensor] | None = None

    def check_labelled(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Refuse images that do not fit the model (the default checks only the count)."""
        if len(images) != len(labels):
            raise ConfigError(f"{len(images)} labelled images but {len(labels)} labels")

    def set_labelled(self, indices: Sequence[int] | torch.Tensor, images: torch.Tensor,
                     labels: Sequence[int] | torch.Tensor) -> None:
        """Use ``images`` with ``labels`` (dataset ``indices``) as the labelled subset."""
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
        self.check_labelled(images, labels)
        k = self.config.num_classes  # type: ignore[attr-defined]
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise DataError(f"labelled images have classes outside 0..{k - 1}")
        self.labelled_indices = torch.as_tensor(np.asarray(indices), dtype=torch.long).reshape(-1)
        self.labelled_images = images.detach().float().cpu()
        self.labelled_labels = labels
        self._on_device = None

    def labelled_state(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in STATE_KEYS}

    def load_labelled_state(self, state: dict[str, Any]) -> None:
        if "labelled_indices" in state:
            self.set_labelled(*(state[key] for key in STATE_KEYS))

    def draw_labelled(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A random mini-batch of the labelled subset (global RNG: part of the checkpoint),
        on the model's device; None while the subset is empty."""
        n = len(self.labelled_labels)
        if n == 0:
            return None
        device = self.device  # type: ignore[attr-defined]
        if self._on_device is None or self._on_device[0].device != device:
            self._on_device = (self.labelled_images.to(device), self.labelled_labels.to(device))
        images, labels = self._on_device
        pick = torch.randperm(n)[:min(n, self.config.labelled_batch)].to(device)  # type: ignore
        return images[pick], labels[pick]
