"""What every image-generating model shares: noise, labels, sampling and the data contract.

A generative model is built for one image shape (and number of classes), which comes from the
training data: ``adapt_config`` fills ``image_size``, ``channels`` and ``num_classes`` from the
:class:`~gankit.data.image_sets.ImageSetInfo` of the dataset, and a checkpoint keeps them, so
``gankit.load`` rebuilds the model with nothing else. Batches are ``{"image", "index"}`` plus
``"label"`` for labelled data (see :mod:`gankit.data.image_sets`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from gankit.config import option
from gankit.data.image_sets import ImageSetInfo
from gankit.data.kinds import DataNeeds
from gankit.errors import ConfigError, DataError
from gankit.models.base import GANModel, adam
from gankit.rng import per_sample

LabelUse = Literal["none", "all", "some"]
Labels = int | Sequence[int] | torch.Tensor | None
GRID_SEED = 1234  # the fixed noise of the training run's sample grids


@dataclass
class GenerationConfig:
    """Options every generative model has; each model adds its own (and its paper's optimizer)."""

    latent_dim: int = option(100, "size of the noise vector z", min=1)
    image_size: int = option(0, "image height and width; 0 = from the data", min=0)
    channels: int = option(0, "image channels (1 gray, 3 RGB); 0 = from the data", min=0)
    num_classes: int = option(0, "classes of labelled data; 0 = from the data", min=0)


class GenerationModel(GANModel):
    """Base of the models that make images from noise (and, when conditional, a class label)."""

    task = "generation"
    data_kind: ClassVar[str] = "images"
    # What the model needs from the data: no labels, labels on every image (conditional
    # models), or some labels (semi-supervised; unlabelled data is refused all the same).
    label_use: ClassVar[LabelUse] = "none"
    # Whether sample() takes class labels (the generator is conditioned on them).
    conditional: ClassVar[bool] = False
    data_defaults: ClassVar[dict[str, Any]] = {"preprocess": "none", "flip": False, "workers": 0}
    train_defaults: ClassVar[dict[str, Any]] = {
        "epochs": 20, "epochs_decay": 0, "lr_policy": "constant", "batch_size": 64,
        "log_every": 20, "sample_every": 200, "save_epoch_every": 0,
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        missing = [k for k in ("image_size", "channels") if not getattr(config, k)]
        if self.label_use != "none" and not config.num_classes:
            missing.append("num_classes")
        if missing:
            raise ConfigError(
                f"{self.name} needs {', '.join(missing)}: they come from the training data "
                f"(gankit train {self.name} --data ...), or pass them to gankit.create("
                f"{self.name!r}, image_size=28, channels=1"
                + (", num_classes=10" if "num_classes" in missing else "") + ")")
        self.class_names: list[str] = [str(i) for i in range(config.num_classes)]

    # --- data contract ------------------------------------------------------------------------
    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        """Images are read with ``--channels`` (0: as the data has them)."""
        return DataNeeds(config.channels, config.channels)

    @classmethod
    def adapt_config(cls, config: Any, info: ImageSetInfo) -> Any:
        """``config`` with the data's image shape and classes; an error if they conflict."""
        if cls.label_use != "none" and not info.num_classes:
            raise DataError(
                f"{cls.name} learns from class labels, but the data has none; put each class's "
                "images in a sub-folder of its own (DATA/0/, DATA/1/, ... or DATA/cat/, "
                "DATA/dog/), or use MNIST idx files with their labels file")
        wanted = {"image_size": info.size, "channels": info.channels,
                  "num_classes": info.num_classes if cls.label_use != "none" else 0}
        for key, value in wanted.items():
            given = getattr(config, key)
            if given and given != value:
                raise DataError(
                    f"--{key.replace('_', '-')} {given} does not match the data, which has "
                    f"{value}; leave it out (it is taken from the data)"
                    + (f", or resize the images with --preprocess resize_and_crop --load-size "
                       f"{given} --crop-size {given}" if key == "image_size" else ""))
        return dataclasses.replace(config, **wanted)

    def bind_data(self, dataset: Any) -> None:
        """Called with the training dataset before training; keeps the class names."""
        names = getattr(dataset, "class_names", None)
        if names and len(names) == self.config.num_classes:
            self.class_names = list(names)

    def extra_state(self) -> dict[str, Any]:
        return {"class_names": list(self.class_names)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("class_names"):
            self.class_names = list(state["class_names"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c = self.config
        return c.channels, c.image_size, c.image_size

    # --- defaults that most models keep --------------------------------------------------------
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] for noise ``z`` (and labels, when conditional).
        The default is an unconditional generator network ``self.G``."""
        return self.G(z)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam for ``self.G`` and ``self.D`` with the config's ``lr``, ``beta1`` and ``beta2``
        (DCGAN's choice, kept by most papers since)."""
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"G": adam(self.G.parameters(), c.lr, betas),
                "D": adam(self.D.parameters(), c.lr, betas)}

    def latent_prior(self) -> dict[str, Any]:
        """The distribution :meth:`noise` draws z from, as plain JSON (export metadata, for
        whoever feeds an exported generator): standard normal."""
        return {"distribution": "normal", "mean": 0.0, "std": 1.0}

    # --- provided -----------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal z (n, latent_dim) on the model's device; from the global RNG (part
        of the checkpoint, so resumed runs draw the same noise) unless ``generator`` is given."""
        if generator is None:  # one row per sample: a distributed run draws as one process
            device, dim = self.device, self.config.latent_dim
            return per_sample(lambda k: torch.randn(k, dim, device=device), n)
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def check_labels(self, labels: Labels, n: int | None = None) -> torch.Tensor | None:
        """Labels as a (N,) long tensor on the device; a clear error for any bad label."""
        if labels is None:
            return None
        if not self.conditional:
            raise ConfigError(f"{self.name} is not conditioned on a class; sample it without "
                              "labels")
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if n is not None and labels.numel() == 1:
            labels = labels.expand(n)
        if n is not None and labels.numel() != n:
            raise ConfigError(f"{labels.numel()} labels given for {n} samples")
        k = self.config.num_classes
        bad = labels[(labels < 0) | (labels >= k)]
        if bad.numel():
            raise ConfigError(f"label {int(bad[0])} is not a trained class; this model knows "
                              f"{k} classes: 0..{k - 1} ({', '.join(self.class_names[:12])})")
        return labels.to(self.device)

    def label_index(self, name: str) -> int:
        """The class number of a class name or number given as text (``--label 3``, ``cat``)."""
        if name in self.class_names:
            return self.class_names.index(name)
        try:
            return int(name)
        except ValueError:
            raise ConfigError(f"unknown class {name!r}; this model knows: "
                              f"{', '.join(self.class_names)}") from None

    def classes_in_turn(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Labels 0, 1, ..., K-1, 0, 1, ... for ``n`` images: the default of conditional models."""
        return torch.arange(n, device=device) % self.config.num_classes

    @torch.no_grad()
    def map_batches(self, fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                    batch_size: int = 500) -> torch.Tensor:
        """``fn`` applied to ``images`` in eval mode, batch by batch on the model's device;
        the results concatenated on the CPU."""
        out = []
        with self.inference(train_mode=False):
            for start in range(0, len(images), batch_size):
                out.append(fn(images[start:start + batch_size].to(self.device)).cpu())
        return torch.cat(out)

    def sample(self, n: int, labels: Labels = None, *, seed: int | None = None,
               z: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """``n`` new images (N, C, H, W) in [-1, 1] on the CPU, in eval mode.

        Conditional models take ``labels`` (one for all, or one per image; by default the
        classes in turn). ``seed`` makes the result repeatable without touching the global RNG.
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, not {n}")
        if self.conditional and labels is None:
            labels = self.classes_in_turn(n)
        label_tensor = self.check_labels(labels, n)
        if z is None:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            z = self.noise(n, gen)
        z = z.to(self.device)
        out = []
        with self.inference(train_mode=False):
            for start in range(0, n, batch_size):
                part = None if label_tensor is None else label_tensor[start:start + batch_size]
                out.append(self.generate(z[start:start + batch_size], part).float().cpu())
        return torch.cat(out).clamp(-1.0, 1.0)

    def interpolate(self, rows: int = 8, steps: int = 10, *, seed: int = 0,
                    labels: Labels = None) -> torch.Tensor:
        """``rows`` walks of ``steps`` images each between two random codes (spherical
        interpolation, which keeps Gaussian codes at a typical norm); row-major."""
        gen = torch.Generator().manual_seed(seed)
        ends = self.noise(2 * rows, gen).cpu().view(rows, 2, -1)
        t = torch.linspace(0.0, 1.0, steps)
        z = torch.stack([slerp(a, b, t) for a, b in ends]).reshape(rows * steps, -1)
        if self.conditional:
            labels = (self.classes_in_turn(rows) if labels is None
                      else torch.as_tensor(labels).reshape(-1).expand(rows))
            labels = labels.repeat_interleave(steps)
        return self.sample(rows * steps, labels, z=z)

    def grid_labels(self, rows: int) -> torch.Tensor | None:
        """Row-major labels for a grid with one class per column (at most 10 columns)."""
        if not self.conditional:
            return None
        cols = min(10, self.config.num_classes)
        return torch.arange(cols).repeat(rows)

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Any]) -> torch.Tensor:
        """Samples from fixed noise (the same at every step, so progress shows): 8 x 8, or for
        conditional models 8 rows with one class per column."""
        from gankit.report.grid import make_grid

        labels = self.grid_labels(8)
        n = 64 if labels is None else labels.numel()
        images = self.sample(n, labels, seed=GRID_SEED)
        cols = 8 if labels is None else min(10, self.config.num_classes)
        scale = max(1, math.ceil(48 / self.config.image_size))
        if scale > 1:
            images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
        return make_grid(images, nrow=cols)

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        n = batch["image"].shape[0]
        labels = batch.get("label") if self.conditional else None
        return {"real": batch["image"], "fake": self.sample(n, labels, seed=GRID_SEED)}


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from ``a`` to ``b`` at fractions ``t``: (len(t), dim)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t[:, None]
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
