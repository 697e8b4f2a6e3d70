"""Data kinds: what a model trains on, each one owning its dataset, its batch keys and whether
held-out data has targets to compare with.

A model names its kind (``data_kind = "paired"``); the builder (:mod:`gankit.build`), the
evaluation (:mod:`gankit.evaluation`) and ``gankit translate`` ask the kind, never the model's
name. A new kind of data (low/high-resolution pairs, a labelled source and an unlabelled
target) is one :func:`register_data_kind` call, usually in the model file that introduces it.

Built-in kinds:

  paired        {"A", "B", "A_path", "B_path"}  aligned A|B images or A/ B/ folders
  unpaired      {"A", "B", "A_path", "B_path"}  two independent sets (CycleGAN)
  colorization  {"A", "B", "path", ...}         RGB images as L -> ab; the target is the input
  single        {"A", "A_path"}                 the input side only
  images        {"image", "index"[, "label"]}   images (and class labels) for generative
                                                models, which take their shape from the data
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from gankit.data.config import DataConfig
from gankit.errors import ConfigError

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = ("shapes",)


@dataclass(frozen=True)
class DataNeeds:
    """What a model asks of its data: channels of each side and the size its generator
    divides images by (a U-Net's 2**depth)."""

    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    # Model options that the model's own data kind reads (an in-painting hole size, the
    # downscaling factor of super-resolution pairs); the built-in kinds ignore them.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataRequest:
    """Everything a kind's builder is given."""

    data: DataConfig
    needs: DataNeeds
    train: bool = True  # training transforms (random crops, flips) or evaluation ones
    seed: int = 0  # the run's seed (the built-in shapes are drawn from it)


@dataclass(frozen=True)
class DataKind:
    name: str
    description: str
    batch_keys: tuple[str, ...]
    # Held-out samples carry the image the output should equal (L1/PSNR/SSIM make sense).
    has_targets: bool
    build: Callable[[DataRequest], Dataset] = field(repr=False)
    # The target is the input image itself (colorization): an A|B pair means nothing.
    target_is_input: bool = False
    # The data decides the model's shape (image size, channels, classes): the dataset is
    # built before the model and the model's config is adapted to it.
    shapes_model: bool = False


_KINDS: dict[str, DataKind] = {}


def register_data_kind(kind: DataKind) -> DataKind:
    if kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise ValueError(f"data kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def get_data_kind(name: str) -> DataKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown data kind {name!r}; known kinds: "
                          f"{', '.join(sorted(_KINDS))}") from None


def list_data_kinds() -> list[str]:
    return sorted(_KINDS)


def data_kind_of(dataset: Any, default: str) -> DataKind:
    """The kind a dataset says it holds (``dataset.data_kind``), else ``default``."""
    return get_data_kind(getattr(dataset, "data_kind", "") or default)


# --- the built-in kinds ---------------------------------------------------------------------
def _builtin(request: DataRequest) -> Dataset:
    from gankit.data.shapes import ShapesDataset

    data, needs = request.data, request.needs
    name = data.data[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_DATASETS:
        raise ConfigError(
            f"unknown built-in dataset {name!r}; available: "
            + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)
        )
    if (needs.in_channels, needs.out_channels) != (3, 3):
        raise ConfigError(f"{data.data} has RGB images on both sides; leave --in-channels "
                          "and --out-channels at 3")
    return ShapesDataset(n=data.max_items or 1000, size=data.crop_size, seed=request.seed)


def _folder_builder(pairing: str) -> Callable[[DataRequest], Dataset]:
    def build(request: DataRequest) -> Dataset:
        data, needs = request.data, request.needs
        if data.data.startswith(BUILTIN_PREFIX):
            return _builtin(request)
        if not data.data:
            raise ConfigError("no data given: pass --data FOLDER (or --data builtin:shapes)")
        from gankit.data.datasets import build_dataset

        return build_dataset(data, pairing=pairing,  # type: ignore[arg-type]
                             in_channels=needs.in_channels, out_channels=needs.out_channels,
                             train=request.train, size_multiple=needs.size_multiple)

    return build


def _image_set(request: DataRequest) -> Dataset:
    from gankit.data.image_sets import build_image_set

    data = request.data
    if data.data.startswith(BUILTIN_PREFIX):
        raise ConfigError(f"{data.data} is a translation dataset; give a generative model "
                          "an image folder or MNIST (gankit data download mnist)")
    return build_image_set(data, channels=request.needs.in_channels, train=request.train)


_TRANSLATION_KEYS = ("A", "B", "A_path", "B_path")
register_data_kind(DataKind(
    "paired", "aligned A|B images or A/ and B/ folders", _TRANSLATION_KEYS, has_targets=True,
    build=_folder_builder("paired")))
register_data_kind(DataKind(
    "unpaired", "two independent image sets, A and B", _TRANSLATION_KEYS, has_targets=False,
    build=_folder_builder("unpaired")))
register_data_kind(DataKind(
    "colorization", "colour images, learnt as L -> ab", ("A", "B", "path", "A_path", "B_path"),
    has_targets=True, target_is_input=True, build=_folder_builder("colorization")))
register_data_kind(DataKind(
    "single", "one set of images, the input side only", ("A", "A_path"), has_targets=False,
    build=_folder_builder("single")))
register_data_kind(DataKind(
    "images", "images (and class labels) for generative models", ("image", "index"),
    has_targets=False, shapes_model=True, build=_image_set))
