"""PixelDA (Bousmalis et al. 2017): pixel-level domain adaptation with a task classifier.

Labelled source images are adapted to look like an unlabelled target domain, and a classifier
learns the task on the adapted images. Three networks, as in the paper:

- ``G(x, z)``: a source image and a noise vector ``z`` (10 numbers from U(-1, 1)) to an image
  with the target domain's look. ``z`` goes through a fully connected layer to one extra
  image-sized channel, concatenated to the source image; then a 3x3 conv, ``n_blocks`` (6)
  residual blocks at full resolution (conv-BN-ReLU-conv-BN plus the input) and a 1x1 conv with
  tanh. No down- or upsampling: the digit stays where it is.
- ``D``: target images against generated ones. Strided 3x3 convs with batch norm and leaky
  ReLU down to 4x4 and one logit; after every conv, dropout and Gaussian noise (the authors'
  keep probability 0.9 and std 0.2).
- ``T``: the task classifier (the DANN/DSN MNIST tower: two 5x5 conv + max-pool layers, two
  fully connected layers of 100, the class logits), trained on generated images with their
  source labels and on the source images themselves.

One step alternates, as the paper: D and T learn with G fixed (``alpha * L_d`` and
``beta * L_t``), then G learns with D and T fixed: ``alpha`` times the non-saturating
adversarial loss, plus ``beta`` times T's loss on its images (so G keeps the digit readable),
plus ``gamma`` times the content-similarity loss (PMSE to the source image; 0 by default, as
the authors did for digits). Adam with the authors' lr 0.001 and beta1 0.5.

What matters at the end is T: ``model.classify(images)`` and ``model.accuracy(images, labels)``
classify target-domain images. ``translate`` adapts source images with a fixed ``z`` (drawn
from ``noise_seed``), so ``gankit translate``, ``export`` and ``serve`` run G like any
image-to-image generator; ``adapt(images, seed=...)`` draws other ``z`` (other looks).

Data (the ``domain_adaptation`` kind, registered here): ``--data`` is the labelled source (MNIST
idx files or class folders), the model option ``--target`` the unlabelled target folder (class
sub-folders there are ignored: their labels are for evaluation only). Each sample is a source
image with its label and a target image drawn from the sample's own random generator, as the
unpaired folder dataset draws its B image.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from gankit.config import option
from gankit.data.datasets import parse_key
from gankit.data.image_sets import ImageSet, ImageSetInfo, build_image_set
from gankit.data.kinds import DataKind, DataNeeds, DataRequest, register_data_kind
from gankit.errors import ConfigError, DataError
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.base import GANModel
from gankit.models.translation import InferenceMode, TranslationConfig, TranslationModel
from gankit.nn import init_weights
from gankit.nn.norms import norm_layer, uses_bias
from gankit.nn.padding import run_any_size
from gankit.registry import register_model
from gankit.rng import per_sample

log = logging.getLogger(__name__)

UNSET_SIZE = 28  # a model created without data is built for MNIST's 28 x 28
UNSET_CLASSES = 10
_LUMA = (0.299, 0.587, 0.114)


# --- the data kind ------------------------------------------------------------------------------
class DomainAdaptationDataset(Dataset):
    """A labelled source image set and an unlabelled target image set.

    Sample ``i`` is source image ``i`` (``A``) with its ``label`` and, in training, a target
    image (``B``) drawn from the sample's generator (``parse_key``): the same key always gives
    the same pair, whichever worker reads it, so a resumed run continues exactly. With
    evaluation transforms the target is image ``i % len(target)``. Target labels, where the
    folder has class sub-folders, are never read.
    """

    data_kind = "domain_adaptation"

    def __init__(self, source: ImageSet, target: ImageSet, train: bool) -> None:
        self.source, self.target, self.train = source, target, train
        s, t = source.info, target.info
        if s.size != t.size:
            raise DataError(
                f"the source images ({source.source}) are {s.size}x{s.size} and the target "
                f"images ({target.source}) {t.size}x{t.size}; make them one size (gankit data "
                f"blend --size {s.size}, or --preprocess resize_and_crop --load-size N "
                "--crop-size N for both)")
        if source.labels is None:
            raise DataError(
                f"pixelda learns its task from labelled source images, but {source.source} "
                "has no labels; give MNIST idx files with their labels file or one sub-folder "
                "per class")
        self.labels = source.labels
        self.class_names = list(source.class_names)
        self.info = ImageSetInfo(channels=s.channels, size=s.size, num_classes=s.num_classes,
                                 class_names=list(s.class_names))

    def __len__(self) -> int:
        return len(self.source)

    @staticmethod
    def _where(images: ImageSet, index: int) -> str:
        paths = getattr(images, "paths", None)
        return str(paths[index]) if paths is not None else f"{images.source}[{index}]"

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, len(self))
        seed_a, seed_b = (int(s) for s in rng.integers(0, 2**63, size=2))
        j = int(rng.integers(len(self.target))) if self.train else index % len(self.target)
        a = self.source[(index, seed_a)]
        b = self.target[(j, seed_b)]
        return {"A": a["image"], "label": a["label"], "B": b["image"],
                "A_path": self._where(self.source, index), "B_path": self._where(self.target, j)}

    def describe(self) -> str:
        i = self.info
        return (f"domain adaptation: {len(self.source)} labelled source images "
                f"({self.source.source}, {i.num_classes} classes) and {len(self.target)} "
                f"unlabelled target images ({self.target.source}), {i.size}x{i.size}")


def build_domain_adaptation(request: DataRequest) -> DomainAdaptationDataset:
    """The ``domain_adaptation`` kind: ``--data`` the labelled source, the model's ``target``
    option the unlabelled target folder (read in its ``target_phase`` sub-folder if present)."""
    needs = request.needs
    target = str(needs.options.get("target", ""))
    if not target:
        raise ConfigError("pixelda adapts to an unlabelled target domain: pass --target FOLDER "
                          "(a folder of target images; for MNIST -> MNIST-M make one with "
                          "gankit data blend, see docs/data.md)")
    if not request.data.data:
        raise ConfigError("no source data given: pass --data (labelled source images: MNIST "
                          "idx files or one sub-folder per class)")
    source = build_image_set(request.data, channels=needs.in_channels, train=request.train)
    target_cfg = dataclasses.replace(request.data, data=target, max_items=None,
                                     phase=str(needs.options.get("target_phase", "train")))
    target_set = build_image_set(target_cfg, channels=needs.out_channels, train=request.train)
    dataset = DomainAdaptationDataset(source, target_set, request.train)
    log.info("%s", dataset.describe())
    return dataset


register_data_kind(DataKind(
    "domain_adaptation", "labelled source images and an unlabelled target image set",
    ("A", "label", "B", "A_path", "B_path"), has_targets=False, shapes_model=True,
    build=build_domain_adaptation))


# --- networks -----------------------------------------------------------------------------------
class NoiseChannel(nn.Module):
    """``z`` -> one image-sized channel: a fully connected layer to ``size`` x ``size``, batch
    norm and ReLU (the authors' projection), resized (bilinear) to the input's height and width
    when they differ from ``size``.

    The batch norm is what makes the channel matter: at the initial scale the projection of
    ``z`` is a few hundredths and G learns to ignore it. It normalises with the batch only in
    training and with more than one ``z``; a single ``z`` (the fixed one of ``translate``) and
    inference use the running statistics. It is a plain module, not a ``BatchNorm1d``, so the
    per-image statistics of train-mode inference and export never apply to it.
    """

    def __init__(self, latent_dim: int, size: int, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.size, self.eps, self.momentum = size, eps, momentum
        self.fc = nn.Linear(latent_dim, size * size, bias=False)
        self.weight = nn.Parameter(torch.ones(size * size))
        self.bias = nn.Parameter(torch.zeros(size * size))
        self.register_buffer("running_mean", torch.zeros(size * size))
        self.register_buffer("running_var", torch.ones(size * size))

    def forward(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        h = F.batch_norm(self.fc(z), self.running_mean, self.running_var, self.weight,
                         self.bias, self.training and z.shape[0] > 1, self.momentum, self.eps)
        noise = F.relu(h).view(z.shape[0], 1, self.size, self.size)
        if (height, width) != (self.size, self.size):
            noise = F.interpolate(noise, size=(height, width), mode="bilinear",
                                  align_corners=False)
        return noise


class ResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=bias), norm_layer(norm, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=bias), norm_layer(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualStack(nn.Module):
    """The paper's generator body: 3x3 conv + ReLU, residual blocks, 1x1 conv + tanh, all at
    the input's resolution (any height and width)."""

    size_multiple = 1

    def __init__(self, in_channels: int, out_channels: int, width: int, n_blocks: int,
                 norm: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            *[ResidualBlock(width, norm) for _ in range(n_blocks)],
            nn.Conv2d(width, out_channels, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelDAGenerator(nn.Module):
    """``(x, z)`` -> adapted image: ``body`` run on ``x`` with the noise channel of ``z``."""

    def __init__(self, body: nn.Module, latent_dim: int, size: int) -> None:
        super().__init__()
        self.noise = NoiseChannel(latent_dim, size)
        self.body = body

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.body, "size_multiple", 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        noise = self.noise(z, x.shape[-2], x.shape[-1])
        if noise.shape[0] != x.shape[0]:  # one z for the whole batch
            noise = noise.expand(x.shape[0], -1, -1, -1)
        return self.body(torch.cat([x, noise.to(x.dtype)], 1))


class WithNoise(nn.Module):
    """The generator with one fixed ``z`` for every image: an image-to-image network, which
    ``translate``, ``export`` and ``serve`` run like any other generator."""

    def __init__(self, generator: PixelDAGenerator, z: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("z", z.reshape(1, -1), persistent=False)

    @property
    def size_multiple(self) -> int:
        return self.generator.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x, self.z.to(x.device))


class GaussianNoise(nn.Module):
    """Adds N(0, std) noise in training mode (the authors' discriminator noise)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class PixelDADiscriminator(nn.Module):
    """Images -> one logit each: a stride-1 3x3 conv, then stride-2 3x3 convs with ``norm``
    doubling the width until the maps are at most 4x4, a linear layer; leaky ReLU (0.2), then
    dropout and Gaussian noise after every conv."""

    def __init__(self, channels: int, image_size: int, ndf: int, norm: str, dropout: float,
                 noise_std: float) -> None:
        super().__init__()

        def noisy() -> list[nn.Module]:
            return [nn.Dropout(dropout), GaussianNoise(noise_std)]

        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 3, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True), *noisy()]
        size, width = image_size, ndf
        while size > 4:
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1,
                                 bias=uses_bias(norm)),
                       norm_layer(norm, width * 2), nn.LeakyReLU(0.2, inplace=True), *noisy()]
            size, width = (size + 1) // 2, width * 2
        self.body = nn.Sequential(*layers)
        self.logit = nn.Linear(width * size * size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(self.body(x).flatten(1))


class TaskClassifier(nn.Module):
    """The MNIST tower of DANN/DSN, which the authors' code uses for digits: 5x5 conv (width)
    + 2x2 max-pool, 5x5 conv (1.5 x width) + max-pool, fully connected 100, 100, the logits;
    ReLU throughout, 'same' padding."""

    def __init__(self, channels: int, image_size: int, num_classes: int, width: int = 32,
                 hidden: int = 100) -> None:
        super().__init__()
        second = width * 3 // 2
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, second, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True))
        side = (image_size + 1) // 2
        side = (side + 1) // 2  # two 'same' max-pools
        self.head = nn.Sequential(
            nn.Linear(second * side * side, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def pmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise mean squared error (Eigen et al. 2014), the paper's content-similarity loss:
    per image ``mean(d^2) - mean(d)^2`` with ``d = a - b``, so a change of overall brightness
    or colour costs nothing and a change of shape does; averaged over the batch."""
    d = (a - b).float().flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


# --- the model ----------------------------------------------------------------------------------
@dataclass
class PixelDAConfig(TranslationConfig):
    target: str = option("", "the unlabelled target domain: a folder of images (class "
                         "sub-folders are read without their labels); e.g. made by gankit data "
                         "blend")
    target_phase: str = option("train", "sub-folder of --target to read, if it has one")
    in_channels: int = option(1, "channels of the source images (1: MNIST)", min=1)
    out_channels: int = option(3, "channels of the target images (3: MNIST-M)", min=1)
    generator: str = option(
        "residual", "residual = the paper's (a noise channel, 3x3 conv, --n-blocks residual "
        "blocks at full resolution, 1x1 conv + tanh); or a gankit generator (unet_N, "
        "resnet_Kblocks) given the image and the noise channel")
    n_blocks: int = option(6, "residual blocks of the residual generator", min=0)
    discriminator: str = option(
        "pixelda", "pixelda = the paper's (strided convs down to 4x4, dropout and noise, one "
        "logit); or a gankit discriminator (basic, n_layers, pixel)")
    ngf: int = shared.ngf(64, "generator width (the paper's 64)")
    ndf: int = shared.ndf(64, "discriminator width of its first conv (the paper's 64)")
    norm: shared.Norm = shared.norm("batch", "normalisation in G's blocks and D")
    latent_dim: int = option(10, "size of the noise vector z, drawn from U(-1, 1)", min=1)
    noise_seed: int = option(0, "seed of the fixed z that translate, export and serve use")
    image_size: int = option(0, "side of the images (G's noise channel, D's and T's last "
                             "layers); 0 = from the data", min=0)
    num_classes: int = option(0, "classes of the task; 0 = from the source labels", min=0)
    task_width: int = option(32, "filters of T's first conv (the MNIST tower's 32; then 1.5x)",
                             min=1)
    d_dropout: float = option(0.1, "dropout after each conv of D (the authors' keep "
                              "probability 0.9)", min=0.0)
    d_noise: float = option(0.2, "std of the Gaussian noise added after each conv of D",
                            min=0.0)
    alpha: float = option(1.0, "weight of the adversarial losses (the paper's alpha)", min=0.0)
    beta: float = option(1.0, "weight of the task losses (the paper's beta), in T's and G's "
                         "steps", min=0.0)
    gamma: float = option(0.0, "weight of the content-similarity loss (PMSE to the source "
                          "image, the paper's gamma; 0 = off, as for digits)", min=0.0)
    lambda_source: float = option(1.0, "weight of T's loss on the source images, relative to "
                                  "its loss on adapted ones (0: adapted images only)", min=0.0)
    lr: float = shared.lr(1e-3, "Adam learning rate of G, D and T (the authors' 0.001)")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")
    inference_mode: InferenceMode = option(
        "eval", "test time: eval = running batch-norm statistics (the default); train = each "
        "image normalised with its own statistics")


@register_model
class PixelDA(TranslationModel):
    name = "pixelda"
    Config = PixelDAConfig
    data_kind = "domain_adaptation"
    metrics = ("fid", "kid")
    generator_names = ("G",)
    data_defaults = {"preprocess": "none", "flip": False, "load_size": 28, "crop_size": 28}
    train_defaults = {"epochs": 10, "epochs_decay": 0, "lr_policy": "constant",
                      "batch_size": 32, "log_every": 50, "sample_every": 500,
                      "save_epoch_every": 1}

    def __init__(self, config: PixelDAConfig | None = None) -> None:
        config = config or PixelDAConfig()
        super().__init__(config)
        c = config
        if c.gan_mode in ("wgan", "wgan-gp"):
            raise ConfigError(f"pixelda's discriminator is trained with vanilla (the paper's), "
                              f"lsgan or hinge, not --gan-mode {c.gan_mode} (it has no clipping "
                              "or gradient penalty)")
        for what, ch in (("in", c.in_channels), ("out", c.out_channels)):
            if ch not in (1, 3):
                raise ConfigError(f"--{what}-channels {ch}: pixelda reads gray (1) or RGB (3) "
                                  "images")
        size = c.image_size or UNSET_SIZE
        self.G = PixelDAGenerator(self._generator_body(), c.latent_dim, size)
        init_weights(self.G, c.init, c.init_gain)
        if c.discriminator == "pixelda":
            self.D = init_weights(
                PixelDADiscriminator(c.out_channels, size, c.ndf, c.norm, c.d_dropout,
                                     c.d_noise), c.init, c.init_gain)
        else:
            self.D = self.build_discriminator(c.out_channels)
        self.T = init_weights(
            TaskClassifier(c.out_channels, size, c.num_classes or UNSET_CLASSES, c.task_width),
            c.init, c.init_gain)
        self.adversarial = AdversarialLoss(c.gan_mode)
        self.class_names = [str(i) for i in range(c.num_classes or UNSET_CLASSES)]
        self._fixed_z = self.uniform_noise(1, torch.Generator().manual_seed(c.noise_seed))

    def _generator_body(self) -> nn.Module:
        c = self.config
        if c.generator == "residual":
            return ResidualStack(c.in_channels + 1, c.out_channels, c.ngf, c.n_blocks, c.norm)
        return super().build_generator(c.in_channels + 1, c.out_channels)

    @property
    def image_size(self) -> int:
        return self.config.image_size or UNSET_SIZE

    # --- data ---------------------------------------------------------------------------------
    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        """Source and target channels, and where the target is (the kind's options)."""
        multiple = model.size_multiple if isinstance(model, PixelDA) else 1
        return DataNeeds(config.in_channels, config.out_channels, multiple,
                         options={"target": config.target, "target_phase": config.target_phase})

    @classmethod
    def adapt_config(cls, config: PixelDAConfig, info: ImageSetInfo) -> PixelDAConfig:
        """``config`` with the data's image size and number of classes."""
        wanted = {"image_size": info.size, "num_classes": info.num_classes}
        for key, value in wanted.items():
            given = getattr(config, key)
            if given and given != value:
                raise DataError(f"--{key.replace('_', '-')} {given} does not match the data, "
                                f"which has {value}; leave it out (it is taken from the data)")
        return dataclasses.replace(config, **wanted)

    def bind_data(self, dataset: Any) -> None:
        names = getattr(dataset, "class_names", None)
        if names and len(names) == len(self.class_names):
            self.class_names = list(names)

    def extra_state(self) -> dict[str, Any]:
        return {"class_names": list(self.class_names)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("class_names"):
            self.class_names = list(state["class_names"])

    # --- noise and inference ------------------------------------------------------------------
    def uniform_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z`` ~ U(-1, 1), (n, latent_dim): from the global RNG (part of the checkpoint; one
        row per sample across processes) unless ``generator`` is given."""
        dim = self.config.latent_dim
        if generator is not None:
            return torch.rand(n, dim, generator=generator) * 2 - 1
        device = self.device
        return per_sample(lambda k: torch.rand(k, dim, device=device) * 2 - 1, n)

    def generator(self, reverse: bool = False) -> nn.Module:
        """G with the fixed ``z`` of ``noise_seed``: what translate, export and serve run."""
        if reverse:
            raise ConfigError("pixelda adapts source images to the target domain only; leave "
                              "out --reverse")
        return WithNoise(self.G, self._fixed_z)

    def adapt(self, images: torch.Tensor, *, seed: int | None = None,
              z: torch.Tensor | None = None) -> torch.Tensor:
        """Source images (N, in_channels, H, W) in [-1, 1] adapted with noise ``z`` (one row,
        or one per image), or one ``z`` drawn from ``seed`` (default: ``noise_seed``, what
        :meth:`translate` uses). Other seeds give other looks of the same images."""
        if z is None:
            seed = self.config.noise_seed if seed is None else seed
            z = self.uniform_noise(1, torch.Generator().manual_seed(seed))
        z = z.reshape(-1, self.config.latent_dim).to(self.device)
        x = images.to(self.device, torch.float32)
        with self.inference(train_mode=False):
            out = self.generate(x, z)
        return out.clamp(-1, 1)

    def generate(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G on source images with noise ``z`` (one row per image, or one for all); a U-Net
        generator's images are padded to its size multiple and cropped back."""
        multiple = self.G.size_multiple
        if multiple == 1:
            return self.G(images, z)
        return run_any_size(lambda x: self.G(x, z), images, multiple)  # type: ignore[arg-type]

    def as_target_channels(self, images: torch.Tensor) -> torch.Tensor:
        """Source images with the target's channel count (gray repeated, or RGB to luma)."""
        c = self.config
        if images.shape[1] == c.out_channels:
            return images
        if images.shape[1] == 1:
            return images.expand(-1, c.out_channels, -1, -1)
        weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """T's logits for images (N, C, H, W) in [-1, 1] (target channels, or source ones)."""
        size = self.image_size
        if tuple(images.shape[-2:]) != (size, size):
            raise ConfigError(f"the task classifier takes {size}x{size} images, not "
                              f"{images.shape[-1]}x{images.shape[-2]}; resize them first")
        return self.T(self.as_target_channels(images))

    @torch.no_grad()
    def classify(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The class T gives each image (N, C, H, W) in [-1, 1]: (N,) labels on the CPU."""
        out = []
        with self.inference(train_mode=False):
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size].to(self.device, torch.float32)
                out.append(self.class_logits(chunk).argmax(1).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int]) -> float:
        """Share of ``images`` whose class T predicts right."""
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
        return float((self.classify(images) == labels).float().mean())

    # --- training -----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.adam(self.G.parameters()), "D": self.adam(self.D.parameters()),
                "T": self.adam(self.T.parameters())}

    def task_losses(self, adapted: torch.Tensor, source: torch.Tensor, labels: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
        """T's cross-entropy on adapted images and on the source images (each a batch mean)."""
        losses = {"T_adapted": F.cross_entropy(self.T(adapted), labels)}
        if self.config.lambda_source > 0:
            losses["T_source"] = F.cross_entropy(self.T(self.as_target_channels(source)),
                                                 labels)
        return losses

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        source, labels, target = batch["A"], batch["label"].long(), batch["B"]
        z = self.uniform_noise(source.shape[0])
        with self.autocast():
            adapted = self.generate(source, z)

        # D and T learn with G fixed (the paper's first step)
        with self.autocast():
            d_real = self.adversarial(self.D(target), True)
            d_fake = self.adversarial(self.D(adapted.detach()), False)
        self.optimize("D", c.alpha * (d_real + d_fake))
        with self.autocast():
            task = self.task_losses(adapted.detach(), source, labels)
            loss_t = task["T_adapted"] + c.lambda_source * task.get("T_source", 0.0)
        self.optimize("T", c.beta * loss_t)

        # G learns with D and T fixed
        self.set_requires_grad((self.D, self.T), False)
        with self.autocast():
            losses = {"G_GAN": self.adversarial.g_loss(self.D(adapted)),
                      "G_task": F.cross_entropy(self.T(adapted), labels)}
            loss_g = c.alpha * losses["G_GAN"] + c.beta * losses["G_task"]
            if c.gamma > 0:
                losses["G_content"] = pmse(adapted, self.as_target_channels(source))
                loss_g = loss_g + c.gamma * losses["G_content"]
        self.optimize("G", loss_g)
        self.set_requires_grad((self.D, self.T), True)
        losses.update({"D_real": d_real, "D_fake": d_fake, **task})
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        source = batch["A"]
        return {"source": self.as_target_channels(source),
                "adapted": self.adapt(source),
                "adapted_z2": self.adapt(source, seed=self.config.noise_seed + 1),
                "target": batch["B"]}
