"""CCGAN (Denton et al. 2016): in-painting GAN whose discriminator is a semi-supervised classifier.

A context-conditional GAN: the generator fills a square hole cut out of an image at a random
position, from the context around it; the discriminator tells real images from in-painted ones
and, on the labelled examples, is trained as a K-class classifier at the same time, so the
in-painting task regularises a classifier trained from few labels. What the paper does, and
this file does:

* the generator sees ``m * x``, the image with the hole set to 0 (m is 1 on the context, 0 in
  the hole), and its output is kept only inside the hole: ``x_I = (1 - m) * G(m * x) + m * x``
  (so the discriminator cannot tell in-painted images by their context); CC-GAN^2
  (``low_res``) also gives the generator a 4x smaller copy of the whole image (here: 4x4
  average-pooled, repeated back to full size and concatenated to its input);
* the discriminator has one trunk and two heads: a real/fake logit and K class logits. Its
  loss is ``-log D(x) - log(1 - D(x_I))`` on unlabelled images (every training image, labels
  unused) plus ``lambda_class`` times the cross-entropy of the K-way softmax on the labelled
  ones; the generator minimises the non-saturating ``-log D(x_I)``;
* the paper trains its generator with the adversarial loss alone (the aim is the classifier,
  not the in-painting); ``lambda_rec`` adds the context encoder's (Pathak et al. 2016) mean
  squared error inside the hole, 0 by default;
* the holes: a square of ``hole`` = 1/2 the image side at a random position per image (the
  paper's 48x48 holes in 96x96 STL-10 images); 1000 labelled images (an STL-10 fold).

Networks: the generator is a gankit U-Net (``--generator``), the discriminator stride-2 4x4
convs (``n_layers_d``, leaky ReLU, a norm after all but the first) whose last feature map is
average-pooled to ``d_pool`` x ``d_pool`` before the two linear heads, so that any image size
works; the paper's STL-10 discriminator is a VGG-A, whose width and depth these options set.

Batches (data kind ``inpainting``, registered below): ``A`` is the image with a mask channel
(1 = known context, -1 = the hole: an alpha channel whose transparent pixels are missing), ``B``
the whole image, ``label`` its class (-1 without one). The hole of a sample is drawn from its
key, so a key always gives the same hole. Inference takes RGBA (the transparent pixels are
the hole) and returns the in-painted image: ``gankit translate`` (``--mask FILE`` or ``--mask
centre`` cuts the hole in complete images), ``gankit export`` and ``gankit serve`` all work on
that contract. :meth:`CCGAN.classify` and :meth:`CCGAN.accuracy` use the discriminator as the
classifier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from gankit.config import option
from gankit.data.datasets import parse_key
from gankit.data.kinds import BUILTIN_PREFIX, DataKind, DataNeeds, DataRequest, register_data_kind
from gankit.errors import ConfigError, DataError
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.base import GANModel, adam
from gankit.models.labelled_subset import LabelledSubset, choose_labelled
from gankit.models.translation import InferenceMode, TranslationModel
from gankit.nn.factory import build_generator
from gankit.nn.init import init_weights
from gankit.nn.norms import norm_layer, uses_bias
from gankit.registry import register_model

log = logging.getLogger(__name__)

_HOLE_SALT = 0x686F6C65  # decorrelates a sample's hole from its crop and flip draws
_LUMA = (0.299, 0.587, 0.114)


# --- data: images with a hole -------------------------------------------------------------------
def hole_box(height: int, width: int, fraction: float,
             rng: np.random.Generator | None = None) -> tuple[int, int, int, int]:
    """(top, left, hole height, hole width): a ``fraction`` of each side, at a random position
    drawn from ``rng`` (every position equally likely), or centred without one."""
    hh = min(height, max(1, round(height * fraction)))
    hw = min(width, max(1, round(width * fraction)))
    if rng is None:
        return (height - hh) // 2, (width - hw) // 2, hh, hw
    return int(rng.integers(0, height - hh + 1)), int(rng.integers(0, width - hw + 1)), hh, hw


def with_hole(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """(C, H, W) image and (H, W) bool hole -> (C + 1, H, W): the image and its mask channel
    (1 on the context, -1 in the hole)."""
    mask = torch.where(hole, -1.0, 1.0).to(image.dtype)[None]
    return torch.cat([image, mask])


def random_holes(n: int, height: int, width: int, fraction: float, seed: int) -> torch.Tensor:
    """(n, H, W) bool: one hole per image (see :func:`hole_box`), drawn from ``seed`` (the
    held-out holes of the learning test and the zoo page)."""
    rng = np.random.default_rng(seed)
    holes = torch.zeros(n, height, width, dtype=torch.bool)
    for i in range(n):
        top, left, hh, hw = hole_box(height, width, fraction, rng)
        holes[i, top:top + hh, left:left + hw] = True
    return holes


class InpaintingDataset(Dataset):
    """An image set (:mod:`gankit.data.image_sets`: a folder, class folders or MNIST) with a
    hole in every image: ``{"A": image + mask channel, "B": image, "label", "index"}``."""

    data_kind = "inpainting"

    def __init__(self, images: Any, hole: float) -> None:
        self.images = images
        self.hole = hole
        self.labels = images.labels
        self.class_names = images.class_names
        self.info = images.info

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, _ = parse_key(key, len(self))
        item = self.images[key]
        image = item["image"]
        seed = int(key[1]) if isinstance(key, (tuple, list)) else index
        rng = np.random.default_rng([seed % 2**64, _HOLE_SALT])
        h, w = image.shape[-2:]
        top, left, hh, hw = hole_box(h, w, self.hole, rng)
        hole = torch.zeros(h, w, dtype=torch.bool)
        hole[top:top + hh, left:left + hw] = True
        return {"A": with_hole(image, hole), "B": image, "label": int(item.get("label", -1)),
                "index": index}

    def describe(self) -> str:
        size = self.info.size
        side = min(size, max(1, round(size * self.hole)))
        return f"{self.images.describe()}; a {side}x{side} hole at a random place in each"


def _inpainting_dataset(request: DataRequest) -> Dataset:
    from gankit.data.image_sets import build_image_set

    data = request.data
    if data.data.startswith(BUILTIN_PREFIX):
        raise ConfigError(f"{data.data} is a translation dataset; give an in-painting model a "
                          "folder of images, class sub-folders or MNIST")
    images = build_image_set(data, channels=request.needs.in_channels, train=request.train)
    dataset = InpaintingDataset(images, float(request.needs.options.get("hole", 0.5)))
    log.info("%s", dataset.describe())
    return dataset


register_data_kind(DataKind(
    "inpainting", "images with a random square hole each (and class labels where the data has "
    "them)", ("A", "B", "label", "index"), has_targets=True, build=_inpainting_dataset))


# --- networks -----------------------------------------------------------------------------------
class ContextInpainter(nn.Module):
    """(N, C + 1, H, W), an image and its mask channel (> 0 context, <= 0 hole) -> (N, C, H, W),
    the image with its hole filled by ``net``: ``(1 - m) * net(m * x [, low-res x]) + m * x``."""

    def __init__(self, net: nn.Module, low_res: bool = False) -> None:
        super().__init__()
        self.net = net
        self.low_res = low_res
        self.size_multiple = max(int(getattr(net, "size_multiple", 1)), 4 if low_res else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image, mask = x[:, :-1], x[:, -1:]
        known = (mask > 0).to(image.dtype)
        inputs = image * known
        if self.low_res:  # CC-GAN^2: a 4x smaller copy of the whole image
            small = F.interpolate(F.avg_pool2d(image, 4), scale_factor=4.0, mode="nearest")
            inputs = torch.cat([inputs, small], 1)
        return known * image + (1.0 - known) * self.net(inputs)


class ContextDiscriminator(nn.Module):
    """Images -> (real/fake logits (N,), class logits (N, K)) from one convolutional trunk."""

    def __init__(self, channels: int, num_classes: int, ndf: int = 64, n_layers: int = 4,
                 norm: str = "batch", pool: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = channels
        for i in range(n_layers):
            width = ndf * min(2**i, 8)
            layers.append(nn.Conv2d(prev, width, 4, 2, 1, bias=i == 0 or uses_bias(norm)))
            if i > 0:
                layers.append(norm_layer(norm, width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = width
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pool), nn.Flatten())
        features = prev * pool * pool
        self.real_fake = nn.Linear(features, 1)
        self.classes = nn.Linear(features, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.trunk(x)
        logits = self.classes(f) if self.classes is not None else None
        return self.real_fake(f)[:, 0], logits


# --- the model ----------------------------------------------------------------------------------
@dataclass
class CCGANConfig:
    in_channels: int = option(3, "image channels (1 gray, 3 RGB); inference reads RGBA, whose "
                              "transparent pixels are the hole", min=1)
    out_channels: int = option(3, "channels of the output (the same as --in-channels)", min=1)
    num_classes: int = option(10, "classes of the labelled images (the paper's STL-10 has 10); "
                              "0 = in-painting only, no classifier head", min=0)
    labelled: int = option(1000, "labelled images used with their label, the same number per "
                           "class (an STL-10 fold has 1000); every image is also used without "
                           "its label", min=0)
    labelled_seed: int = option(0, "seed that picks the labelled images from the data")
    labelled_batch: int = option(64, "labelled images per step, drawn from the labelled subset",
                                 min=1)
    lambda_class: float = option(1.0, "weight of the classification loss in D's loss", min=0.0)
    hole: float = option(0.5, "side of the square hole as a fraction of the image side (the "
                         "paper's 48 of 96 px), at a random position in each training image",
                         min=0.01)
    low_res: bool = option(False, "CC-GAN^2: the generator also gets a 4x smaller copy of the "
                           "whole image")
    lambda_rec: float = option(0.0, "weight of a mean squared error inside the hole (the "
                               "context encoder's; the paper uses the adversarial loss alone)",
                               min=0.0)
    generator: str = option("unet_32", "generator network: unet_N (N a power of 2; image sides "
                            "must be multiples of N) or resnet_Kblocks")
    ngf: int = shared.ngf(64, "generator filters in the first layer")
    ndf: int = shared.ndf(64, "discriminator filters in the first layer (doubled per layer, up "
                          "to 8x)")
    n_layers_d: int = option(4, "stride-2 convs of the discriminator", min=1)
    d_pool: int = option(4, "side of the feature grid the discriminator's heads see (its last "
                         "feature map is average-pooled to it)", min=1)
    norm: shared.Norm = shared.norm("batch", "normalisation in the generator")
    norm_d: shared.Norm = shared.norm("batch", "normalisation in the discriminator")
    dropout_d: float = option(0.0, "dropout after each discriminator layer", min=0.0)
    lr: float = shared.lr(2e-4, "Adam learning rate of G and D")
    beta1: float = shared.beta1(0.5, "Adam beta1")
    beta2: float = shared.beta2(0.999, "Adam beta2")
    inference_mode: InferenceMode = option(
        "eval", "test time: eval = batch norm with the running statistics; train = each image "
        "normalised with its own statistics; auto = train when training used batch size 1")

    def __post_init__(self) -> None:
        if not 0.0 < self.hole < 1.0:
            raise ConfigError(f"--hole {self.hole}: the hole's side is a fraction of the "
                              "image's, between 0 and 1 (the paper's 0.5)")


@register_model
class CCGAN(LabelledSubset, TranslationModel):
    name = "ccgan"
    Config = CCGANConfig
    data_kind = "inpainting"
    metrics = ("l1", "psnr", "ssim", "fid", "kid")
    data_defaults = {"preprocess": "resize_and_crop", "load_size": 96, "crop_size": 96,
                     "flip": True}
    train_defaults = {"epochs": 100, "epochs_decay": 0, "batch_size": 64,
                      "lr_policy": "constant"}

    def __init__(self, config: CCGANConfig | None = None) -> None:
        config = config or CCGANConfig()
        c = config
        if c.in_channels != c.out_channels:
            raise ConfigError(f"ccgan fills holes in images: --in-channels {c.in_channels} and "
                              f"--out-channels {c.out_channels} must be equal")
        if c.in_channels not in (1, 3):
            raise ConfigError(f"ccgan in-paints gray (1) or RGB (3) images, not {c.in_channels} "
                              "channels")
        super().__init__(config)
        net = build_generator(c.generator, c.in_channels * (2 if c.low_res else 1),
                              c.out_channels, ngf=c.ngf, norm=c.norm)
        self.G = ContextInpainter(init_weights(net, "normal", 0.02), c.low_res)
        self.D = init_weights(ContextDiscriminator(c.out_channels, c.num_classes, c.ndf,
                                                   c.n_layers_d, c.norm_d, c.d_pool,
                                                   c.dropout_d), "normal", 0.02)
        self.adversarial = AdversarialLoss("vanilla")
        self.init_labelled()  # chosen from the data by bind_data
        self._warned_no_hole = False

    # --- contract -------------------------------------------------------------------------------
    def generator(self, reverse: bool = False) -> nn.Module:
        if reverse:
            raise ConfigError("ccgan in-paints one way only: leave out --reverse")
        return self.G

    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        return DataNeeds(config.in_channels, config.out_channels, 1,
                         options={"hole": config.hole})

    def io_channels(self, reverse: bool = False) -> tuple[int, int]:
        return 4, self.config.out_channels  # RGBA in: the transparent pixels are the hole

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        """RGBA (N, 4, H, W) -> the generator's input: the image's channels and its mask."""
        if self.config.in_channels == 3:
            return images
        luma = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return torch.cat([(images[:, :3] * luma).sum(1, keepdim=True), images[:, 3:]], 1)

    def shown_input(self, image: torch.Tensor) -> torch.Tensor:
        """The input as the generator sees it: the hole in mid gray."""
        x = self.prepare_input(image[None])[0]
        return x[:-1] * (x[-1:] > 0).to(x.dtype)

    def implied_target(self, image: torch.Tensor) -> torch.Tensor | None:
        """A complete image (no transparent pixel; a hole is cut by ``--mask``) is its own
        target."""
        x = self.prepare_input(image[None])[0]
        return x[:-1] if bool((x[-1] > 0).all()) else None

    def mask_input(self, image: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
        """``image`` (4, H, W) with ``hole`` (H, W bool; None = a centred square of
        ``config.hole`` of each side) made transparent."""
        h, w = image.shape[-2:]
        if hole is None:
            top, left, hh, hw = hole_box(h, w, self.config.hole)
            hole = torch.zeros(h, w, dtype=torch.bool)
            hole[top:top + hh, left:left + hw] = True
        out = image.clone()
        out[-1][hole.to(out.device)] = -1.0
        return out

    def translate_tensor(self, images: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        alpha = images[..., -1, :, :]
        if not self._warned_no_hole and images.shape[-3] == 4 and bool((alpha > 0).all()):
            log.warning("the images have no transparent pixels, so there is no hole to fill: "
                        "give RGBA images whose hole is transparent, or cut one with "
                        "gankit translate --mask centre (or --mask FILE)")
            self._warned_no_hole = True
        return super().translate_tensor(images, **kwargs)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"G": adam(self.G.parameters(), c.lr, (c.beta1, c.beta2)),
                "D": adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))}

    # --- the labelled subset --------------------------------------------------------------------
    def bind_data(self, dataset: Any) -> None:
        """Choose the labelled images from the training data (balanced, by labelled_seed)."""
        c = self.config
        labels = getattr(dataset, "labels", None)
        if not c.num_classes or not c.labelled:
            return
        if labels is None:
            log.warning("ccgan: the data has no labels, so the discriminator learns in-painting "
                        "only (its classifier head is not trained); class sub-folders or MNIST "
                        "with its labels file give it labels")
            return
        labels = np.asarray(labels, dtype=np.int64)
        if labels.max() >= c.num_classes:
            raise DataError(f"the data has {int(labels.max()) + 1} classes, more than "
                            f"--num-classes {c.num_classes}; set --num-classes "
                            f"{int(labels.max()) + 1}")
        count = min(c.labelled, len(labels))
        if count < c.labelled:
            log.warning("ccgan: --labelled %d is more than the %d images; using all of them",
                        c.labelled, len(labels))
        indices = choose_labelled(labels, count, c.num_classes, c.labelled_seed)
        images = torch.stack([dataset[int(i)]["B"] for i in indices]).float()
        self.set_labelled(indices, images, labels[indices])
        log.info("ccgan: %d labelled images; %d used without labels", len(indices), len(labels))

    def extra_state(self) -> dict[str, Any]:
        return self.labelled_state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.load_labelled_state(state)

    def _labelled_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.draw_labelled() if self.D.classes is not None else None

    # --- the classifier -------------------------------------------------------------------------
    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The K class logits of D for images (N, C, H, W) in [-1, 1]."""
        logits = self.D(images)[1]
        if logits is None:
            raise ConfigError("this ccgan was built with --num-classes 0: it has no classifier")
        return logits

    def classify(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """The class D gives each image: argmax over its K class logits (eval mode)."""
        out = []
        with self.inference(train_mode=False):
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(self.device, torch.float32)
                out.append(self.class_logits(x).argmax(1).cpu())
        return torch.cat(out)

    def accuracy(self, images: torch.Tensor, labels: Any) -> float:
        """Share of ``images`` whose class D predicts right."""
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        return float((self.classify(images) == labels).float().mean())

    # --- training -------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        masked, real = batch["A"], batch["B"]
        hole = (masked[:, -1:] <= 0).to(real.dtype)
        with self.autocast():
            fake = self.G(masked)  # x_I: the context kept, the hole in-painted

        self.set_requires_grad(self.D, True)
        labelled = self._labelled_batch()
        with self.autocast():
            loss_d_real = self.adversarial(self.D(real)[0], True)
            loss_d_fake = self.adversarial(self.D(fake.detach())[0], False)
            loss_d = loss_d_real + loss_d_fake
            losses = {"D_real": loss_d_real, "D_fake": loss_d_fake}
            if labelled is not None:
                loss_class = F.cross_entropy(self.class_logits(labelled[0]), labelled[1])
                loss_d = loss_d + c.lambda_class * loss_class
                losses["D_class"] = loss_class
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_adv = self.adversarial.g_loss(self.D(fake)[0])  # -log D(x_I)
            area = hole.sum().clamp_min(1.0) * real.shape[1]
            loss_rec = ((fake.float() - real.float()) ** 2 * hole).sum() / area
            loss_g = loss_adv + c.lambda_rec * loss_rec if c.lambda_rec else loss_adv
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        hole_l1 = ((fake.detach().float() - real.float()).abs() * hole).sum() / area
        return {"G_adv": loss_adv.detach(), "G_hole_L1": hole_l1.detach(),
                **({"G_rec": loss_rec.detach()} if c.lambda_rec else {}),
                **{k: v.detach() for k, v in losses.items()}}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        masked = batch["A"]
        known = (masked[:, -1:] > 0).to(masked.dtype)
        return {"input": masked[:, :-1] * known, "output": self.run_generator(masked),
                "target": batch["B"]}
