"""Wiring a model to its options and its data.

Options come in layers (dataclass defaults, the model's defaults, a recipe, the user's); the
model class names its data kind (:mod:`gankit.data.kinds`), which builds the dataset. This
module sits below the engine, the evaluation and the API: it imports only the registry, the
models and the data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from gankit import config as cfgmod
from gankit.data.config import DataConfig
from gankit.data.kinds import BUILTIN_PREFIX, DataRequest, get_data_kind
from gankit.errors import ConfigError
from gankit.models.base import GANModel
from gankit.recipes import get_recipe
from gankit.registry import get_model_class
from gankit.train.config import TrainConfig


@dataclass
class Configs:
    model_cls: type[GANModel]
    model: Any
    data: DataConfig
    train: TrainConfig


def resolve_configs(
    model: str | None, options: dict[str, Any] | None = None, recipe: str | None = None
) -> Configs:
    """Lay the layers of options over each other: dataclass defaults, the model's own
    defaults, a recipe, then ``options``. Every key must be an option of one of the three."""
    options = dict(options or {})
    layers: list[tuple[str, dict[str, Any]]] = []
    if recipe:
        r = get_recipe(recipe)
        if model and model != r.model:
            raise ConfigError(f"recipe {recipe!r} is for model {r.model!r}, not {model!r}")
        model = r.model
        layers.append((f"recipe {recipe}", r.options))
    if not model:
        raise ConfigError("name a model (see gankit models) or a --recipe")
    cls = get_model_class(model)
    layers.append(("options", options))
    merged: dict[str, dict[str, Any]] = {
        "model": {},
        "data": dict(cls.data_defaults),
        "train": dict(cls.train_defaults),
    }
    owners = {"model": cls.Config, "data": DataConfig, "train": TrainConfig}
    field_owner = {f.name: part for part, c in owners.items() for f in dataclasses.fields(c)}
    for source, values in layers:
        unknown = sorted(k for k in values if k not in field_owner)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option(s) {', '.join(unknown)} for model {model!r}; "
                f"see gankit train {model} --help"
            )
        for key, value in values.items():
            merged[field_owner[key]][key] = value
    return Configs(
        cls,
        cfgmod.from_dict(cls.Config, merged["model"], source=model),
        cfgmod.from_dict(DataConfig, merged["data"], source="data options"),
        cfgmod.from_dict(TrainConfig, merged["train"], source="training options"),
    )


def build_model_and_data(configs: Configs) -> tuple[GANModel, Dataset]:
    """A new model and its training data. Where the data shapes the model (a generative
    model takes its image size and classes from it), the data comes first; otherwise the model
    does (its generator decides the sizes the data must have)."""
    cls = configs.model_cls
    if get_data_kind(cls.data_kind).shapes_model:
        dataset = build_dataset_for(configs, cls)
        net = cls(configs.model)
    else:
        net = cls(configs.model)
        dataset = build_dataset_for(configs, net)
    net.bind_data(dataset)
    return net, dataset


def build_dataset_for(configs: Configs, model: GANModel | type[GANModel], *,
                      train: bool = True) -> Dataset:
    """The dataset ``configs.data`` names, read as ``model`` needs it. Where the data shapes
    the model, ``configs.model`` is adapted to the data (an error if they conflict)."""
    cls = configs.model_cls
    kind = get_data_kind(cls.data_kind)
    instance = model if isinstance(model, GANModel) else None
    needs = cls.data_needs(configs.model, instance)
    dataset = kind.build(DataRequest(configs.data, needs, train=train, seed=configs.train.seed))
    if kind.shapes_model:
        configs.model = cls.adapt_config(configs.model, dataset.info)  # type: ignore[attr-defined]
    return dataset


def create(name: str, **options: Any) -> GANModel:
    """A new, untrained model with the paper's defaults and ``options`` laid over them."""
    cls = get_model_class(name)
    return cls(cfgmod.from_dict(cls.Config, options, source=name))


def data_stem(data: str) -> str:
    """A short name for a dataset in run-folder names."""
    from pathlib import Path

    return Path(data.replace(BUILTIN_PREFIX, "")).name or "data"
