"""HED, the holistically-nested edge detector (Xie and Tu, ICCV 2015), from a weights file.

The network: the 13 convolutions of VGG16 in five stages (2, 2, 3, 3, 3 convs of 3x3 with
ReLU, 2x2 max pooling between stages), a 1x1 "score" convolution on the last activation of
each stage (the five side outputs), each upsampled bilinearly to the input size, and a 1x1
convolution that fuses the five into one map, followed by a sigmoid. It is the network of the
pix2pix edges2shoes / edges2handbags datasets.

No trained weights ship with gankit. ``--hed-weights FILE`` reads a PyTorch state dict in the
layout of the widely used port github.com/sniklaus/pytorch-hed (converted from the authors'
Caffe model; its ``network-bsds500.pytorch`` file), which this module's attribute names follow:

  netVggOne.{0,2}      netVggTwo.{1,3}       netVggThr.{1,3,5}   (index 0 of the later stages
  netVggFou.{1,3,5}    netVggFiv.{1,3,5}                          is the max pooling)
  netScoreOne .. netScoreFiv              1x1 convs, 64/128/256/512/512 -> 1
  netCombine.0                            1x1 conv, 5 -> 1 (then the sigmoid)

each with ``.weight`` and ``.bias``. The older key prefix ``module`` (``moduleVggOne``...) and a
DataParallel ``module.`` prefix are accepted; ``.safetensors`` files too. Inputs are prepared
as the Caffe model expects: RGB in [0, 255] reordered to BGR minus the BSDS mean
(104.007, 116.669, 122.679), with a reflected border around the image so that the image's own
border is not taken for an edge (as the official batch script does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import DataError

BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
_STAGES = ("One", "Two", "Thr", "Fou", "Fiv")
_WIDTHS = (64, 128, 256, 512, 512)
_CONVS = (2, 2, 3, 3, 3)
_SHOWN = 8


def _stage(in_ch: int, out_ch: int, convs: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
    for i in range(convs):
        layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1),
                   nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


class HED(nn.Module):
    """VGG16 trunk, five side outputs, a fusion conv; RGB [0, 1] in, edge probability out."""

    def __init__(self) -> None:
        super().__init__()
        in_ch = 3
        for i, (name, width, convs) in enumerate(zip(_STAGES, _WIDTHS, _CONVS, strict=True)):
            setattr(self, f"netVgg{name}", _stage(in_ch, width, convs, pool=i > 0))
            setattr(self, f"netScore{name}", nn.Conv2d(width, 1, 1))
            in_ch = width
        self.netCombine = nn.Sequential(nn.Conv2d(5, 1, 1), nn.Sigmoid())
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def side_outputs(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """The five side scores (before the sigmoid), each at the input size."""
        x = rgb.flip(1) * 255.0 - self.mean  # RGB -> BGR, Caffe's mean subtraction
        size = x.shape[-2:]
        scores = []
        for name in _STAGES:
            x = getattr(self, f"netVgg{name}")(x)
            score = getattr(self, f"netScore{name}")(x)
            scores.append(F.interpolate(score, size=size, mode="bilinear", align_corners=False))
        return scores

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) fused edge probability in [0, 1]."""
        return self.netCombine(torch.cat(self.side_outputs(rgb), 1))


def _normalise_key(key: str) -> str:
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("module"):
        key = "net" + key[len("module"):]
    return key


def load_hed(path: str | Path, device: str | torch.device = "cpu") -> HED:
    """An :class:`HED` with the weights of ``path`` (see the module docstring for the layout)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"HED weights file {path} not found; give --hed-weights the "
                        "network-bsds500.pytorch file of sniklaus/pytorch-hed (or a state dict "
                        "of the same layout)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not weights
        raise DataError(f"cannot read HED weights {path} ({type(exc).__name__}: {exc}); give "
                        "a PyTorch state dict (.pth/.pytorch) or .safetensors file") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise DataError(f"{path} is not a state dict (a mapping of names to tensors)")
    state = {_normalise_key(k): v for k, v in state.items()}
    net = HED()
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected),
                           ("of the wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {what}: {', '.join(keys[:_SHOWN])}"
                             + (" ..." if len(keys) > _SHOWN else ""))
        raise DataError(f"{path} does not hold HED weights in the sniklaus/pytorch-hed layout "
                        f"({'; '.join(parts)}); see gankit.data.tools.hed for the layout")
    net.load_state_dict(state)
    return net.to(device).eval()


def hed_edge_map(net: HED, photo: np.ndarray, border: int = 128) -> torch.Tensor:
    """The fused HED map of an HxWxC [0, 1] photo (alpha on white): (H, W) in [0, 1]."""
    from gankit.data.tools.edges import to_channels_first

    rgb = to_channels_first(photo, 3)[None]
    h, w = rgb.shape[-2:]
    pad = min(border, h - 1, w - 1)
    device = next(net.parameters()).device
    with torch.no_grad():
        x = F.pad(rgb, (pad, pad, pad, pad), mode="reflect") if pad > 0 else rgb
        out = net(x.to(device))[0, 0].float().cpu()
    return out[pad:pad + h, pad:pad + w]
