"""The contract between a trained generator and whoever runs it outside gankit.

An exported file (ONNX metadata_props, TorchScript ``_extra_files``), a release's config.json
and the server's ``GET /info`` all carry the same fields, so a deployer needs no other
documentation to feed the network: pixel range, channels, layout and the sizes it accepts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch

from gankit.errors import CheckpointError, ConfigError
from gankit.models.translation import TranslationModel

FORMAT = "gankit-export"
FORMAT_VERSION = 1
INPUT_NAME = "input"
OUTPUT_NAME = "output"
CHANNEL_ORDER = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
DEFAULT_IMAGE_SIZE = 256


@dataclass(frozen=True)
class ModelContract:
    """What goes into a generator and what comes out (one direction, one inference mode).

    Images are float32 NCHW tensors scaled from 8-bit pixels as ``v / 127.5 - 1`` to
    ``value_range``. Height and width must be multiples of ``size_multiple`` and at least
    ``min_size``; other sizes are padded at the bottom and right by reflection and the output
    cropped back, which is what ``gankit serve`` and ``gankit translate`` do.
    """

    model: str
    reverse: bool
    inference_mode: str  # "eval" or "train" (dropout on, per-image normalisation statistics)
    in_channels: int
    out_channels: int
    size_multiple: int
    min_size: int
    image_size: int  # the side the model was trained at: a good canvas size
    value_range: tuple[float, float] = (-1.0, 1.0)
    layout: str = "NCHW"
    dtype: str = "float32"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    gankit_version: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def in_order(self) -> str:
        return CHANNEL_ORDER.get(self.in_channels, f"{self.in_channels} channels")

    @property
    def out_order(self) -> str:
        return CHANNEL_ORDER.get(self.out_channels, f"{self.out_channels} channels")

    def describe(self) -> str:
        """One sentence for people: what to feed and what comes back."""
        lo, hi = self.value_range
        return (
            f"{self.model}{' (reverse)' if self.reverse else ''}: {self.in_order} in, "
            f"{self.out_order} out, {self.dtype} {self.layout} in [{lo:g}, {hi:g}] "
            f"(pixel / 127.5 - 1); height and width multiples of {self.size_multiple}, at "
            f"least {self.min_size} (pad bottom/right by reflection, crop the output back); "
            f"{self.inference_mode} mode"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["value_range"] = list(self.value_range)
        out["channel_order"] = {"input": self.in_order, "output": self.out_order}
        out["description"] = self.describe()
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "metadata") -> ModelContract:
        names = {f.name for f in dataclasses.fields(cls)}
        if values.get("format") != FORMAT:
            raise CheckpointError(
                f"{source} has no gankit export metadata (format {values.get('format')!r}); "
                "export the model with gankit export, or serve the checkpoint itself"
            )
        if int(values.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(
                f"{source} was exported by a newer gankit (metadata format "
                f"{values['format_version']}, this version reads up to {FORMAT_VERSION}); "
                "upgrade gankit"
            )
        known = {k: v for k, v in values.items() if k in names}
        known["value_range"] = tuple(float(v) for v in known.get("value_range", (-1, 1)))
        try:
            return cls(**known)
        except TypeError as exc:
            raise CheckpointError(f"{source}: incomplete gankit metadata ({exc}); export the "
                                  "model again with gankit export") from None

    def to_strings(self) -> dict[str, str]:
        """Flat string properties (ONNX metadata_props): each value JSON-encoded, so a viewer
        such as Netron shows them and a program reads them back with ``json.loads``."""
        return {k: json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_strings(cls, props: dict[str, str], source: str = "metadata") -> ModelContract:
        values: dict[str, Any] = {}
        for k, v in props.items():
            try:
                values[k] = json.loads(v)
            except (TypeError, ValueError):
                values[k] = v
        return cls.from_dict(values, source)


def resolve_train_mode(model: TranslationModel, inference_mode: str | None) -> bool:
    """``None`` keeps the model's own setting; ``auto`` follows the training batch size."""
    if inference_mode is None:
        return model.inference_train_mode
    if inference_mode not in ("auto", "train", "eval"):
        raise ConfigError(f"unknown inference mode {inference_mode!r}; use auto, train or eval")
    if inference_mode == "auto":
        return model.trained_batch_size == 1
    return inference_mode == "train"


def image_size_of(model: TranslationModel) -> int:
    """The side the model was trained at (its data config's crop size)."""
    size = model.data_config.crop_size if model.data_config is not None else None
    size = size or type(model).data_defaults.get("crop_size")
    return int(size or DEFAULT_IMAGE_SIZE)


@torch.no_grad()
def probe_min_size(net: torch.nn.Module, channels: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` the network runs on.

    A U-Net takes its multiple itself; a ResNet generator's reflection padding needs a
    bottleneck of at least 2 pixels, so twice its multiple. Found by trying, so that any
    generator gets a right answer.
    """
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    was_training = net.training
    net.eval()
    try:
        for factor in (1, 2, 4, 8):
            side = multiple * factor
            try:
                net(torch.zeros(1, channels, side, side, device=device))
            except (RuntimeError, ValueError):  # too small for a padding or a norm
                continue
            return side
    finally:
        net.train(was_training)
    return multiple * 16


def contract_for(
    model: TranslationModel, *, reverse: bool = False, train_mode: bool = False
) -> ModelContract:
    """The contract of ``model``'s generator as exported or served (pre/post-processing
    included, so channels are those a user's images have)."""
    from gankit import __version__

    net = model.generator(reverse)
    in_ch, out_ch = model.io_channels(reverse)
    net_in = model.config.out_channels if reverse else model.config.in_channels
    multiple = model.size_multiple
    min_size = probe_min_size(net, net_in, multiple)
    image = max(image_size_of(model), min_size)
    return ModelContract(
        model=model.name,
        reverse=reverse,
        inference_mode="train" if train_mode else "eval",
        in_channels=in_ch,
        out_channels=out_ch,
        size_multiple=multiple,
        min_size=min_size,
        image_size=image,
        gankit_version=__version__,
    )
