"""SRGAN (Ledig et al. 2017): 4x super-resolution with an SRResNet, adversarial + content loss.

What the paper does, and this file does:

* the generator (SRResNet) is a 9x9 conv with PReLU, ``n_blocks`` = 16 residual blocks (3x3
  conv, batch norm, PReLU, 3x3 conv, batch norm, identity skip), a 3x3 conv with batch norm
  added to the first layer's output (a skip over all blocks), then per doubling of the size a
  3x3 conv to 4x the filters, a sub-pixel convolution (pixel shuffle x2) and PReLU, and a final
  9x9 conv; 64 filters throughout; no activation at the output (gankit clamps at inference);
* the discriminator has 8 3x3 convs with leaky ReLU (0.2), filters 64, 64, 128, 128, 256, 256,
  512, 512, the even ones with stride 2, batch norm on all but the first; then a dense layer of
  1024 units, leaky ReLU and a dense layer to one logit (the sigmoid is in the binary
  cross-entropy). The dense layers need a fixed grid: the last feature map is average-pooled
  to ``d_pool`` x ``d_pool`` (6, which a 96 px crop already has, so for the paper's crops the
  pooling does nothing and other crop sizes work too);
* the generator loss is the content loss plus ``adv_weight`` = 1e-3 times ``-log D(G(LR))``;
  the discriminator minimises the binary cross-entropy of real HR crops and generated ones;
* content loss: ``mse`` is the pixel MSE (SRResNet-MSE / SRGAN-MSE); ``vgg`` is the MSE of
  VGG19 features rescaled by 1/12.75 (VGG54: after the ReLU of the 4th conv before the 5th
  max-pooling; VGG22 the 2nd conv before the 2nd), the paper's SRGAN-VGG54. No trained VGG
  weights can be downloaded by gankit: ``--vgg-weights PATH`` loads a torchvision-layout
  ``vgg19`` state dict (``features.0.weight`` ...) into the plain-PyTorch network below;
* training: the generator is first trained alone with the MSE loss (SRResNet, the paper's 10^6
  updates, ``pretrain_steps``), then both networks adversarially; Adam with lr 1e-4 and beta1
  0.9, batch 16 of random 96x96 HR crops whose LR copies are 4x smaller (bicubic). The paper
  lowers the rate to 1e-5 for the second half of the adversarial updates; here the engine's
  ``--lr-policy`` decides (constant by default).

The data kind ``super_resolution`` (registered below) reads any folder of images (the B side
of a paired or unpaired folder, the A side with ``--direction BtoA``) and gives each HR crop
(``B``) with its antialiased bicubic copy ``scale`` times smaller (``A``): held-out samples have
targets, so ``--eval-every`` and ``gankit evaluate`` measure PSNR, SSIM and L1 of the
super-resolved images. ``gankit translate`` upscales images of any size 4x.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from gankit.config import option
from gankit.data.datasets import SingleDataset, Source
from gankit.data.kinds import BUILTIN_PREFIX, DataKind, DataNeeds, DataRequest, register_data_kind
from gankit.data.layouts import resolve
from gankit.data.scan import scan_sizes
from gankit.data.transforms import JointTransform, resize
from gankit.errors import ConfigError, DataError
from gankit.losses import AdversarialLoss
from gankit.models import options as shared
from gankit.models.base import GANModel, adam
from gankit.models.translation import InferenceMode, TranslationModel
from gankit.nn.norms import norm_layer, uses_bias
from gankit.registry import register_model

log = logging.getLogger(__name__)

VGG_RESCALE = 1.0 / 12.75  # the paper's rescaling of VGG feature maps
# torchvision's vgg19 ``features``: 3x3 convs (their widths) and max-pools ("M"); each conv is
# followed by a ReLU, so conv k of the list sits at index 2k + (pools before it) of features.
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M")
# features[:n] ends with the ReLU after conv2_2 (VGG22) or after conv5_4, before the 5th pool
VGG_LAYERS = {"22": 9, "54": 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- data: HR crops and their bicubic LR copies --------------------------------------------------
class SuperResolutionDataset(SingleDataset):
    """``{"A": LR, "B": HR, "A_path", "B_path"}``: the HR image after the transform (random crop
    and flip drawn from the sample's key, so a key always gives the same pair) and its
    antialiased bicubic copy ``scale`` times smaller."""

    data_kind = "super_resolution"

    def __init__(self, *args: Any, scale: int) -> None:
        super().__init__(*args)
        self.scale = scale

    def __getitem__(self, key: Any) -> dict[str, Any]:
        item = super().__getitem__(key)
        high, path = item["A"], item["A_path"]
        h, w = high.shape[-2:]
        low = resize(high, h // self.scale, w // self.scale)
        return {"A": low, "B": high, "A_path": path, "B_path": path}


def _super_resolution_dataset(request: DataRequest) -> Dataset:
    data, needs = request.data, request.needs
    scale = int(needs.options.get("scale", 4))
    if data.data.startswith(BUILTIN_PREFIX) or not data.data:
        raise ConfigError("super-resolution trains on a folder of images: pass --data FOLDER "
                          "(any images; the B side of a paired or unpaired folder)")
    channels = needs.out_channels
    if channels not in (1, 3, 4):
        raise ConfigError(f"images are read with 1, 3 or 4 channels, not {channels}")
    transform = JointTransform(data, request.train, needs.size_multiple * scale)
    files = resolve(data)
    side_b = data.direction == "AtoB"
    if files.kind == "aligned":
        sources = [Source(p, "right" if side_b else "left") for p in files.a]
    elif files.kind in ("paired", "unaligned"):
        sources = [Source(p) for p in (files.b if side_b else files.a)]
    else:
        sources = [Source(p) for p in files.a]
    sources = sources[:data.max_items]
    sizes = scan_sizes([s.path for s in sources], skip_bad=data.skip_bad_files)
    kept, problems = [], []
    for src in sources:
        if src.path not in sizes:
            continue
        w, h = sizes[src.path]
        try:
            transform.output_size(w // 2 if src.half != "full" else w, h, src.path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        kept.append(src)
    if problems:
        listing = "\n".join(f"  {p}" for p in problems[:10])
        summary = f"{len(problems)} of {len(sources)} images cannot be used:\n{listing}"
        if not data.skip_bad_files:
            raise DataError(f"{summary}\n(or pass --skip-bad-files to leave them out)")
        log.warning("%s\nleaving them out (--skip-bad-files)", summary)
    if not kept:
        raise DataError(f"{files.describe()}: no usable images for super-resolution")
    dataset = SuperResolutionDataset(kept, channels, files, transform, data.direction,
                                     scale=scale)
    log.info("%s; low-resolution inputs %dx smaller (bicubic)", dataset.describe(), scale)
    return dataset


register_data_kind(DataKind(
    "super_resolution", "high-resolution images (B) and their bicubic copies N times smaller (A)",
    ("A", "B", "A_path", "B_path"), has_targets=True, build=_super_resolution_dataset))


# --- networks -----------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """conv 3x3, norm, PReLU, conv 3x3, norm, plus the input."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        bias = uses_bias(norm)
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=bias), norm_layer(norm, width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1, bias=bias), norm_layer(norm, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """LR images (N, C, h, w) -> (N, C', scale h, scale w); any h and w."""

    size_multiple = 1

    def __init__(self, in_channels: int, out_channels: int, width: int = 64,
                 n_blocks: int = 16, scale: int = 4, norm: str = "batch") -> None:
        super().__init__()
        doublings = int(round(math.log2(scale)))
        if scale < 2 or 2**doublings != scale:
            raise ConfigError(f"--scale {scale}: the upscaling factor must be 2, 4, 8 ... (one "
                              "x2 sub-pixel block per doubling)")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*(ResidualBlock(width, norm) for _ in range(n_blocks)))
        self.join = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=uses_bias(norm)),
                                  norm_layer(norm, width))
        up: list[nn.Module] = []
        for _ in range(doublings):
            up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                   nn.PReLU(width)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(width, out_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.head(x)
        return self.tail(self.upsample(first + self.join(self.blocks(first))))


class SRGANDiscriminator(nn.Module):
    """HR images -> one real/fake logit each (see the module docstring)."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch", pool: int = 6,
                 dense: int = 1024) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i in range(8):
            width = ndf * min(2 ** (i // 2), 8)
            first = i == 0
            layers.append(nn.Conv2d(prev, width, 3, stride=1 + i % 2, padding=1,
                                    bias=first or uses_bias(norm)))
            if not first:
                layers.append(norm_layer(norm, width))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(prev * pool * pool, dense),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def vgg19_features(end: int) -> nn.Sequential:
    """``torchvision.models.vgg19().features[:end]`` in plain PyTorch: the same modules at the
    same indices, so a torchvision state dict's ``features.*`` weights load into it."""
    layers: list[nn.Module] = []
    prev = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(prev, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            prev = int(item)
    return nn.Sequential(*layers[:end])


class VGGContent(nn.Module):
    """The paper's VGG content loss: MSE of rescaled VGG19 feature maps of images in [-1, 1]
    (mapped to [0, 1] and normalised with the ImageNet statistics torchvision's weights
    expect; gray images are repeated to RGB)."""

    def __init__(self, path: str | Path, layer: str = "54") -> None:
        super().__init__()
        self.features = load_vgg19_features(path, layer)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        x = images[:, :3] if images.shape[1] >= 3 else images[:, :1].expand(-1, 3, -1, -1)
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        return self.features(x) * VGG_RESCALE

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.embed(target)
        return F.mse_loss(self.embed(output), wanted)


def load_vgg19_features(path: str | Path, layer: str = "54") -> nn.Sequential:
    """VGG19 ``features[:end]`` for ``layer`` with the weights of a torchvision-layout state
    dict at ``path``; a :class:`ConfigError` naming the file and what is wrong with it."""
    if layer not in VGG_LAYERS:
        raise ConfigError(f"unknown VGG layer {layer!r}; use one of {', '.join(VGG_LAYERS)}")
    path = Path(path).expanduser()
    layout = ("a torchvision-layout VGG19 state dict (torch.save(torchvision.models.vgg19("
              "weights=...).state_dict(), PATH): keys features.0.weight, features.0.bias, ... "
              "features.34.bias)")
    if not path.is_file():
        raise ConfigError(f"--vgg-weights {path} does not exist; give {layout}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a wrong file
        raise ConfigError(f"--vgg-weights {path} cannot be read as a PyTorch file "
                          f"({type(exc).__name__}: {str(exc)[:120]}); give {layout}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"--vgg-weights {path} holds no state dict of tensors; give {layout}")
    net = vgg19_features(VGG_LAYERS[layer])
    wanted = {f"features.{k}": v for k, v in net.state_dict().items()}
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ConfigError(f"--vgg-weights {path} is not a VGG19 state dict: it lacks "
                          f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                          f"({len(missing)} of the {len(wanted)} weights VGG{layer} needs); "
                          f"give {layout}")
    wrong = [f"{k} {tuple(state[k].shape)} (VGG19 has {tuple(v.shape)})"
             for k, v in wanted.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ConfigError(f"--vgg-weights {path}: weights of the wrong shape for VGG19: "
                          f"{'; '.join(wrong[:3])}; give {layout}")
    net.load_state_dict({k[len("features."):]: state[k].float() for k in wanted})
    return net


# --- the model ----------------------------------------------------------------------------------
@dataclass
class SRGANConfig:
    in_channels: int = option(3, "channels of the images (1 gray, 3 RGB)", min=1)
    out_channels: int = option(3, "channels of the output (the same as --in-channels)", min=1)
    scale: int = option(4, "upscaling factor, a power of 2 (the paper's 4: two x2 sub-pixel "
                        "blocks); the training data's inputs are this many times smaller",
                        min=2)
    n_blocks: int = option(16, "residual blocks of the SRResNet generator", min=1)
    ngf: int = shared.ngf(64, "generator filters (every layer of the SRResNet)")
    ndf: int = shared.ndf(64, "discriminator filters in its first two convs (doubled every "
                          "second conv, up to 8x)")
    norm: shared.Norm = shared.norm("batch", "normalisation in the residual blocks and the "
                                    "discriminator (the paper's batch norm)")
    d_pool: int = option(6, "side of the feature grid the discriminator's dense layers see (its "
                         "last feature map is average-pooled to it; 6 = what the paper's 96 px "
                         "crops give, where the pooling does nothing)", min=1)
    d_dense: int = option(1024, "units of the discriminator's hidden dense layer", min=1)
    content_loss: Literal["mse", "vgg"] = option(
        "mse", "content loss: mse = pixel MSE (runs everywhere); vgg = MSE of VGG19 feature maps "
        "/ 12.75 (the paper's SRGAN-VGG54), needs --vgg-weights")
    vgg_weights: str = option("", "with --content-loss vgg: a torchvision-layout VGG19 state "
                              "dict (features.0.weight ...); gankit downloads none")
    vgg_layer: Literal["54", "22"] = option(
        "54", "VGG feature map of the content loss: 54 = after conv5_4 (the paper's choice), "
        "22 = after conv2_2")
    adv_weight: float = option(1e-3, "weight of the adversarial loss -log D(G(LR)) beside the "
                               "content loss (the paper's 1e-3)", min=0.0)
    pretrain_steps: int = option(
        1_000_000, "first train the generator alone with the MSE loss for this many steps "
        "(SRResNet; the paper's 10^6), then adversarially; lower it for short runs", min=0)
    lr: float = shared.lr(1e-4, "Adam learning rate of G and D (the paper's 1e-4)")
    beta1: float = shared.beta1(0.9, "Adam beta1 (the paper's 0.9)")
    beta2: float = shared.beta2(0.999, "Adam beta2")
    inference_mode: InferenceMode = option(
        "eval", "test time: eval = batch norm with the running statistics; train = each image "
        "normalised with its own statistics; auto = train when training used batch size 1")


@register_model
class SRGAN(TranslationModel):
    name = "srgan"
    Config = SRGANConfig
    data_kind = "super_resolution"
    metrics = ("psnr", "ssim", "l1", "fid", "kid")
    data_defaults = {"preprocess": "crop", "crop_size": 96, "load_size": 96, "flip": False}
    train_defaults = {"epochs": 100, "epochs_decay": 0, "batch_size": 16,
                      "lr_policy": "constant"}

    def __init__(self, config: SRGANConfig | None = None) -> None:
        config = config or SRGANConfig()
        if config.in_channels != config.out_channels:
            raise ConfigError(f"srgan upscales images keeping their channels: --in-channels "
                              f"{config.in_channels} and --out-channels {config.out_channels} "
                              "must be equal")
        if config.content_loss == "vgg" and not config.vgg_weights:
            raise ConfigError("--content-loss vgg needs --vgg-weights PATH: a torchvision-layout "
                              "VGG19 state dict (gankit cannot download one); or use the pixel "
                              "loss, --content-loss mse")
        super().__init__(config)
        c = config
        self.output_scale = c.scale
        self.G = SRResNet(c.in_channels, c.out_channels, c.ngf, c.n_blocks, c.scale, c.norm)
        self.D = SRGANDiscriminator(c.out_channels, c.ndf, c.norm, c.d_pool, c.d_dense)
        self.adversarial = AdversarialLoss("vanilla")
        self.steps_done = 0  # training steps so far: pre-training runs while below pretrain_steps
        # The VGG19 of the content loss is a fixed tool, not part of the model: kept out of the
        # networks (a list is not registered), so checkpoints hold no copy of it and inference
        # never needs the file. Loaded at the first adversarial step (bind_data checks it).
        self._vgg: list[VGGContent] = []

    # --- contract -------------------------------------------------------------------------------
    def generator(self, reverse: bool = False) -> nn.Module:
        if reverse:
            raise ConfigError("srgan upscales one way only: leave out --reverse")
        return self.G

    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        return DataNeeds(config.in_channels, config.out_channels, 1,
                         options={"scale": config.scale})

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"G": adam(self.G.parameters(), c.lr, (c.beta1, c.beta2)),
                "D": adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))}

    def bind_data(self, dataset: Any) -> None:
        c = self.config
        if c.content_loss == "vgg":
            self.vgg()  # a wrong --vgg-weights file fails before training, not at step 10^6
        if self.steps_done < c.pretrain_steps:
            log.info("srgan: the first %d steps train the generator alone with the MSE loss "
                     "(SRResNet, --pretrain-steps), then G and D adversarially", c.pretrain_steps)

    def extra_state(self) -> dict[str, Any]:
        return {"steps_done": int(self.steps_done)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state.get("steps_done", 0))

    @property
    def pretraining(self) -> bool:
        """Whether the next step is an SRResNet (MSE-only) step."""
        return self.steps_done < self.config.pretrain_steps

    def vgg(self) -> VGGContent:
        if not self._vgg:
            self._vgg.append(VGGContent(self.config.vgg_weights, self.config.vgg_layer))
        net = self._vgg[0]
        if net.mean.device != self.device:
            net.to(self.device)
        return net

    def content(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The content loss of the config: pixel MSE, or the rescaled VGG feature MSE."""
        if self.config.content_loss == "vgg":
            return self.vgg()(output, target)
        return F.mse_loss(output, target)

    # --- training -------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        low, high = batch["A"], batch["B"]
        if self.pretraining:
            with self.autocast():
                loss = F.mse_loss(self.G(low), high)
            self.optimize("G", loss)
            if self.steps_done == 0 and "D" in self.optimizers:
                # D has no gradients yet, so this changes nothing; it only records that D's
                # optimizer has stepped, which its learning-rate schedule checks (and warns
                # about) at the end of an epoch of pre-training.
                self.optimizers["D"].step()
            self.steps_done += 1
            return {"G_MSE": loss.detach()}

        with self.autocast():
            fake = self.G(low)
        self.set_requires_grad(self.D, True)
        with self.autocast():
            loss_d_real = self.adversarial(self.D(high), True)
            loss_d_fake = self.adversarial(self.D(fake.detach()), False)
            loss_d = loss_d_real + loss_d_fake
        self.optimize("D", loss_d)

        self.set_requires_grad(self.D, False)
        with self.autocast():
            loss_adv = self.adversarial.g_loss(self.D(fake))  # -log D(G(LR))
            loss_content = self.content(fake, high)
            loss_g = loss_content + self.config.adv_weight * loss_adv
        self.optimize("G", loss_g)
        self.set_requires_grad(self.D, True)
        self.steps_done += 1
        out = {"G_content": loss_content.detach(), "G_adv": loss_adv.detach(),
               "D_real": loss_d_real.detach(), "D_fake": loss_d_fake.detach()}
        if self.config.content_loss != "mse":
            out["G_MSE"] = F.mse_loss(fake.detach(), high)
        return out

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        low, high = batch["A"], batch["B"]
        size = tuple(high.shape[-2:])
        return {
            "input": F.interpolate(low, size=size, mode="nearest"),
            "bicubic": F.interpolate(low, size=size, mode="bicubic",
                                     align_corners=False).clamp(-1, 1),
            "output": self.run_generator(low).clamp(-1, 1),
            "target": high,
        }
