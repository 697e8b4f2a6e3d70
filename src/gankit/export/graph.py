"""The module that gets exported: pre-processing, generator, post-processing, clamp.

It is exactly what :meth:`TranslationModel.translate_tensor` computes on an image whose sides
are multiples of the network's ``size_multiple`` (padding to such a size is left to the caller,
since it needs Python control flow that a traced graph cannot hold).

Train-mode inference (the pix2pix paper's test-time setting) keeps dropout on and normalises
each image with its own statistics. gankit runs such images one at a time; a graph has a batch
dimension, so here every BatchNorm becomes :class:`PerImageBatchNorm`, which is what BatchNorm
computes in training mode on a batch of one image, for each image of the batch.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from gankit.models.translation import TranslationModel


class PerImageBatchNorm(nn.Module):
    """BatchNorm in training mode applied to each image alone: per-image, per-channel mean and
    (biased) variance over height and width, then the BatchNorm's affine map."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        channels = bn.num_features
        weight = bn.weight.detach().clone() if bn.weight is not None else torch.ones(channels)
        bias = bn.bias.detach().clone() if bn.bias is not None else torch.zeros(channels)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.eps = bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class MaskDropout(nn.Module):
    """Dropout written as ``x * (uniform >= p) / (1 - p)``.

    ONNX Runtime's graph optimisations delete Dropout nodes even when their training_mode
    input is true, so a train-mode ONNX graph says what dropout does with ops that no runtime
    removes (RandomUniformLike, GreaterOrEqual, Mul).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep * (1.0 / (1.0 - self.p))


def _swap_layers(net: nn.Module, mask_dropout: bool) -> nn.Module:
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, PerImageBatchNorm(child))
        elif mask_dropout and isinstance(child, nn.modules.dropout._DropoutNd) and child.p > 0:
            setattr(net, name, MaskDropout(child.p))
        else:
            _swap_layers(child, mask_dropout)
    return net


class InferenceGraph(nn.Module):
    """``images -> prepare_input -> generator -> finish_output -> clamp(-1, 1)``.

    ``mask_dropout`` (train mode only) writes dropout as :class:`MaskDropout`, for ONNX.
    """

    def __init__(
        self, model: TranslationModel, *, reverse: bool, train_mode: bool,
        mask_dropout: bool = False,
    ) -> None:
        super().__init__()
        net = copy.deepcopy(model.generator(reverse)).cpu()
        for p in net.parameters():
            p.requires_grad_(False)
        if train_mode:
            net = _swap_layers(net, mask_dropout)
        self.generator = net
        # The model's hooks are plain tensor functions (colorization: RGB <-> Lab); keeping the
        # bound methods, not the model, leaves its discriminators out of the graph.
        self._prepare = model.prepare_input
        self._finish = model.finish_output
        self.train_mode = train_mode
        self.set_modes()

    def set_modes(self) -> InferenceGraph:
        """Eval everywhere, except dropout in train mode."""
        self.eval()
        if self.train_mode:
            for m in self.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(images)
        return self._finish(x, self.generator(x)).clamp(-1.0, 1.0)


def example_input(channels: int, min_size: int, batch: int = 2) -> torch.Tensor:
    """A tracing input: batch 2 and a non-square size of 2 and 3 times the smallest, so that no
    dimension is mistaken for a constant (torch.export specialises sizes 0 and 1)."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, channels, 2 * min_size, 3 * min_size, generator=gen) * 2 - 1
