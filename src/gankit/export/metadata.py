"""The contract between a trained generator and whoever runs it outside gankit.

An exported file (ONNX metadata_props, TorchScript ``_extra_files``), a release's config.json
and the server's ``GET /info`` all carry the same fields, so a deployer needs no other
documentation to feed the network: pixel range, channels, layout and the sizes it accepts.
Generative models have a :class:`GeneratorContract` instead (``task`` generation): latent size
and prior, classes and their names, image shape.
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
    # The output is this many times the input's height and width (super-resolution: 4).
    output_scale: int = 1
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
            + (f"the output is {self.output_scale}x the input's height and width; "
               if self.output_scale != 1 else "")
            + f"{self.inference_mode} mode"
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
        output_scale=int(getattr(model, "output_scale", 1)),
        gankit_version=__version__,
    )


# --- generative models: noise (and a class label) -> images -----------------------------------
# Generator exports are format 2: a reader of format 1 (translation contracts only) refuses them
# as "exported by a newer gankit" instead of misreading them.
GENERATOR_FORMAT_VERSION = 2
Z_NAME = "z"
LABELS_NAME = "labels"
IMAGES_NAME = "images"
NORMAL_PRIOR: dict[str, Any] = {"distribution": "normal", "mean": 0.0, "std": 1.0}


@dataclass(frozen=True)
class GeneratorContract:
    """What a generative model's generator takes and gives, as exported or served.

    ``z`` is float32 (N, ``latent_dim``), a sample of ``prior`` (standard normal for every
    model but AAE with its mixture prior). Conditional models also take ``labels``, int64 (N,)
    in 0..``num_classes`` - 1; ``class_names[i]`` names class i. The output is float32 NCHW
    (N, ``channels``, ``image_size``, ``image_size``) in ``value_range``; 8-bit pixels are
    ``round((v + 1) * 127.5)``. Eval mode: the same z and labels always give the same images.
    """

    model: str
    latent_dim: int
    channels: int
    image_size: int
    conditional: bool = False
    num_classes: int = 0  # 0 when the generator takes no label
    class_names: tuple[str, ...] = ()
    prior: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(NORMAL_PRIOR))
    task: str = "generation"
    inference_mode: str = "eval"
    value_range: tuple[float, float] = (-1.0, 1.0)
    layout: str = "NCHW"
    dtype: str = "float32"
    label_dtype: str = "int64"
    input_name: str = Z_NAME
    label_name: str = ""  # LABELS_NAME when conditional
    output_name: str = IMAGES_NAME
    gankit_version: str = ""
    format: str = FORMAT
    format_version: int = GENERATOR_FORMAT_VERSION

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.image_size, self.image_size

    @property
    def out_order(self) -> str:
        return CHANNEL_ORDER.get(self.channels, f"{self.channels} channels")

    def describe(self) -> str:
        lo, hi = self.value_range
        prior = ("N(0, 1)" if self.prior.get("distribution") == "normal"
                 else f"the {self.prior.get('distribution')} prior")
        labels = ""
        if self.conditional:
            names = ", ".join(self.class_names[:12]) + (", ..." if self.num_classes > 12 else "")
            labels = (f" and {self.label_name} {self.label_dtype} (N,) in 0..{self.num_classes - 1}"
                      f" ({names})")
        c, h, w = self.image_shape
        return (f"{self.model}: {self.input_name} {self.dtype} (N, {self.latent_dim}) from "
                f"{prior}{labels} -> {self.output_name} {self.dtype} {self.layout} "
                f"(N, {c}, {h}, {w}) {self.out_order} in [{lo:g}, {hi:g}] "
                "(pixel = (v + 1) * 127.5)")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["class_names"] = list(self.class_names)
        out["value_range"] = list(self.value_range)
        out["image_shape"] = list(self.image_shape)
        out["channel_order"] = {"output": self.out_order}
        out["description"] = self.describe()
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "metadata") -> GeneratorContract:
        if values.get("format") != FORMAT or values.get("task") != "generation":
            raise CheckpointError(f"{source} has no gankit generator metadata; export the model "
                                  "with gankit export, or serve the checkpoint itself")
        if int(values.get("format_version", 0)) > GENERATOR_FORMAT_VERSION:
            raise CheckpointError(
                f"{source} was exported by a newer gankit (metadata format "
                f"{values['format_version']}, this version reads up to "
                f"{GENERATOR_FORMAT_VERSION}); upgrade gankit")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        known["value_range"] = tuple(float(v) for v in known.get("value_range", (-1, 1)))
        known["class_names"] = tuple(str(v) for v in known.get("class_names", ()))
        try:
            contract = cls(**known)
        except TypeError as exc:
            raise CheckpointError(f"{source}: incomplete gankit metadata ({exc}); export the "
                                  "model again with gankit export") from None
        if contract.conditional and len(contract.class_names) != contract.num_classes:
            raise CheckpointError(f"{source}: {contract.num_classes} classes but "
                                  f"{len(contract.class_names)} class names; export it again")
        return contract

    def to_strings(self) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in self.to_dict().items()}


def generator_contract_for(model: Any) -> GeneratorContract:
    """The contract of a :class:`~gankit.models.generation.GenerationModel`'s sampling."""
    from gankit import __version__

    c = model.config
    conditional = bool(model.conditional)
    return GeneratorContract(
        model=model.name,
        latent_dim=c.latent_dim,
        channels=c.channels,
        image_size=c.image_size,
        conditional=conditional,
        num_classes=c.num_classes if conditional else 0,
        class_names=tuple(model.class_names) if conditional else (),
        prior=dict(model.latent_prior()),
        label_name=LABELS_NAME if conditional else "",
        gankit_version=__version__,
    )


def contract_from_dict(
    values: dict[str, Any], source: str = "metadata"
) -> ModelContract | GeneratorContract:
    """The contract in export metadata: a generator's (``task`` generation) or a translator's."""
    if values.get("task") == "generation":
        return GeneratorContract.from_dict(values, source)
    return ModelContract.from_dict(values, source)


def contract_from_strings(
    props: dict[str, str], source: str = "metadata"
) -> ModelContract | GeneratorContract:
    """:func:`contract_from_dict` of ONNX metadata_props (JSON-encoded values)."""
    values: dict[str, Any] = {}
    for k, v in props.items():
        try:
            values[k] = json.loads(v)
        except (TypeError, ValueError):
            values[k] = v
    return contract_from_dict(values, source)
