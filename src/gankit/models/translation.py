"""What every image-to-image model shares: inference on any image size and input kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.config import option
from gankit.data.image_io import image_to_tensor, read_image, to_pil
from gankit.data.kinds import DataNeeds
from gankit.errors import ConfigError
from gankit.losses import AdvMode
from gankit.models import options as shared
from gankit.models.base import GANModel, adam
from gankit.nn import build_discriminator, build_generator, init_weights
from gankit.nn.init import InitKind
from gankit.nn.layout import ConvBias
from gankit.nn.padding import run_any_size

InferenceMode = Literal["auto", "train", "eval"]
ImageLike = torch.Tensor | Image.Image | np.ndarray | str | Path


@dataclass
class TranslationConfig:
    """The options every image-to-image model shares; each model overrides the defaults."""

    in_channels: int = option(3, "channels of the input images (1 gray, 3 RGB, 4 RGBA)", min=1)
    out_channels: int = option(3, "channels of the output images", min=1)
    generator: str = option("unet_256", "unet_32 .. unet_256 (or unet_N), resnet_6blocks, "
                            "resnet_9blocks")
    discriminator: str = option("basic", "basic (70x70 PatchGAN), n_layers, pixel (1x1)")
    ngf: int = shared.ngf(64, "generator filters in the first layer")
    ndf: int = shared.ndf(64, "discriminator filters in the first layer")
    n_layers_d: int = option(3, "discriminator layers (with --discriminator n_layers)", min=1)
    norm: shared.Norm = shared.norm("batch", "normalisation layers: batch, instance, none")
    dropout: bool = option(False, "dropout in the generator")
    init: InitKind = option("normal", "weight initialisation")
    init_gain: float = option(0.02, "scale of the initial weights")
    gan_mode: AdvMode = option("vanilla", "adversarial objective")
    lr: float = shared.lr(2e-4, "Adam learning rate of every network")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")
    inference_mode: InferenceMode = option(
        "eval", "test time: eval = deterministic, running statistics; train = dropout on and "
        "each image normalised with its own statistics; auto = train when training used batch "
        "size 1, else eval"
    )
    conv_bias: ConvBias = option(
        "official", "which convs have a bias: official = as in pix2pix/CycleGAN (only with "
        "instance norm), parameter for parameter; gankit1 = gankit 1's layout (files saved "
        "before this option existed are read with it)"
    )


class TranslationModel(GANModel):
    """A model that maps an image of one domain to another (pix2pix, CycleGAN, ...)."""

    task = "translation"
    data_kind: ClassVar[str] = "paired"
    metrics: ClassVar[tuple[str, ...]] = ("l1", "psnr", "ssim", "fid", "kid")
    # The schedule and preprocessing of the pix2pix and CycleGAN papers.
    data_defaults = {"load_size": 286, "crop_size": 256, "preprocess": "resize_and_crop"}
    train_defaults = {"epochs": 100, "epochs_decay": 100, "batch_size": 1, "lr_policy": "linear"}
    # How many times larger than its input the output is (super-resolution: 4). Inference
    # crops the output of a padded input back to this many times the input's size.
    output_scale: int = 1

    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        c = self.config
        net = build_generator(c.generator, in_channels, out_channels, ngf=c.ngf, norm=c.norm,
                              dropout=c.dropout, conv_bias=c.conv_bias)
        return init_weights(net, c.init, c.init_gain)

    def build_discriminator(self, in_channels: int) -> nn.Module:
        c = self.config
        net = build_discriminator(c.discriminator, in_channels, ndf=c.ndf,
                                  n_layers=c.n_layers_d, norm=c.norm, conv_bias=c.conv_bias)
        return init_weights(net, c.init, c.init_gain)

    def adam(self, params: Iterable[nn.Parameter]) -> torch.optim.Adam:
        return adam(params, lr=self.config.lr, betas=(self.config.beta1, self.config.beta2))

    def generator(self, reverse: bool = False) -> nn.Module:
        """The network used by :meth:`translate`; ``reverse`` asks for B to A where it exists."""
        raise NotImplementedError

    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        size_multiple = model.size_multiple if isinstance(model, TranslationModel) else 1
        return DataNeeds(config.in_channels, config.out_channels, size_multiple)

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.generator(), "size_multiple", 1))

    def io_channels(self, reverse: bool = False) -> tuple[int, int]:
        """Channels an input image is read with (before :meth:`prepare_input`) and channels of
        the images a user sees as output, for the forward or the reverse generator."""
        c = self.config
        return (c.out_channels, c.in_channels) if reverse else (c.in_channels, c.out_channels)

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        """Map images read with :meth:`io_channels` channels to the generator's input."""
        return images

    def finish_output(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """Map generator outputs to the images a user sees (colorization rebuilds RGB)."""
        return outputs

    def shown_input(self, image: torch.Tensor) -> torch.Tensor:
        """How an input image is shown beside its output (colorization shows it in gray)."""
        return image

    def implied_target(self, image: torch.Tensor) -> torch.Tensor | None:
        """A target implied by the input itself (colorization: the colour original)."""
        return None

    def mask_input(self, image: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
        """In-painting models: ``image`` (read with :meth:`io_channels`) with ``hole`` (H, W
        bool, True = missing; None = the model's default hole) marked as missing, for
        ``gankit translate --mask``. Other models have no hole to fill."""
        raise ConfigError(f"{self.name} does not in-paint: leave out --mask")

    def run_generator(
        self, x: torch.Tensor, *, reverse: bool = False, train_mode: bool | None = None
    ) -> torch.Tensor:
        """The generator on a batch of any size; in train-mode inference one image at a time,
        since batch statistics would otherwise mix the images of a batch."""
        net = self.generator(reverse)
        if self.inference_train_mode if train_mode is None else train_mode:
            return torch.cat([run_any_size(net, xi[None], self.size_multiple) for xi in x])
        return run_any_size(net, x, self.size_multiple)

    def translate_tensor(
        self, images: torch.Tensor, *, reverse: bool = False, train_mode: bool | None = None
    ) -> torch.Tensor:
        """(N, C, H, W) or (C, H, W) in [-1, 1], any H and W -> the translated images."""
        single = images.dim() == 3
        x = (images[None] if single else images).to(self.device, torch.float32)
        with self.inference(train_mode):
            model_in = self.prepare_input(x)
            out = self.run_generator(model_in, reverse=reverse, train_mode=train_mode)
            out = self.finish_output(model_in, out).clamp(-1, 1)
        return out[0] if single else out

    def translate(self, image: ImageLike, **kwargs: Any) -> torch.Tensor | Image.Image:
        """Translate a tensor (returns a tensor) or an image, array or path (returns PIL)."""
        if isinstance(image, torch.Tensor):
            return self.translate_tensor(image, **kwargs)
        channels = self.io_channels(kwargs.get("reverse", False))[0]
        if isinstance(image, (str, Path)):
            tensor = read_image(image, channels)
        else:
            tensor = image_to_tensor(image, channels)
        return to_pil(self.translate_tensor(tensor, **kwargs))


def round_trip_visuals(model: TranslationModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The sample-grid columns of a two-way unpaired model: each side, its translation and
    the translation back (CycleGAN, DiscoGAN, DualGAN)."""
    real_a, real_b = batch["A"], batch["B"]
    fake_b, fake_a = model.run_generator(real_a), model.run_generator(real_b, reverse=True)
    return {"real_A": real_a, "fake_B": fake_b,
            "rec_A": model.run_generator(fake_b, reverse=True),
            "real_B": real_b, "fake_A": fake_a, "rec_B": model.run_generator(fake_a)}
