"""The Python API: create, load and train models; the CLI is a thin layer over these."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from gankit import config as cfgmod
from gankit.data.config import DataConfig
from gankit.errors import CheckpointError, ConfigError
from gankit.models.base import GANModel
from gankit.recipes import get_recipe
from gankit.registry import get_model_class
from gankit.train.checkpoint import find_checkpoint, load_checkpoint
from gankit.train.config import TrainConfig
from gankit.train.ema import load_averaged_weights
from gankit.train.engine import FitResult, Trainer
from gankit.train.runtime import configure_determinism, pick_device, seed_everything

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = ("shapes",)
# Changing these mid-run would change which samples the rest of the epoch holds.
FIXED_ON_RESUME = ("batch_size", "seed")


@dataclasses.dataclass
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


def create(name: str, **options: Any) -> GANModel:
    """A new, untrained model with the paper's defaults and ``options`` laid over them."""
    cls = get_model_class(name)
    return cls(cfgmod.from_dict(cls.Config, options, source=name))


def model_from_state(state: dict[str, Any], source: str = "checkpoint", *,
                     use_ema: bool = True) -> GANModel:
    """Rebuild a model from a checkpoint's config and weights, with no other input.

    A run trained with ``--ema`` saved the moving average of its generator(s) beside the live
    weights; with ``use_ema`` (for inference) the generators get the average and
    ``model.uses_ema`` is true. Resuming passes False: training continues from the live ones.
    """
    try:
        cls = get_model_class(state["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    model = cls(cfgmod.from_dict(cls.Config, state["model_config"], source=source))
    try:
        model.load_state_dict(state["networks"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{source}: the weights do not fit a {cls.name} model with the saved config "
            f"({str(exc).splitlines()[0][:200]}); the file may be damaged"
        ) from None
    if use_ema and state.get("ema"):
        load_averaged_weights(model, state["ema"], source)
    elif state.get("release", {}).get("ema"):  # a release stores the average as the weights
        model.ema_info = dict(state["release"]["ema"])
        log.info("%s: the generator weights are an exponential moving average (decay %g)",
                 source, model.ema_info.get("decay", 0.0))
    model.load_extra_state(state.get("extra", {}))
    model.trained_batch_size = state.get("train_config", {}).get("batch_size")
    model.data_config = cfgmod.from_dict(  # type: ignore[attr-defined]
        DataConfig, state.get("data_config", {}), source=source
    )
    return model


def load(path: str | Path, device: str = "auto") -> GANModel:
    """Load a trained model from a checkpoint file, run folder or release (a folder with
    model.safetensors + config.json, or one .safetensors file), ready for inference."""
    from gankit.export.release import is_release, load_release_state

    state = load_release_state(path) if is_release(path) else load_checkpoint(path)
    model = model_from_state(state, source=str(path))
    model.to(pick_device(device))
    model.eval()
    return model


def build_model_and_data(configs: Configs) -> tuple[GANModel, Dataset]:
    """A new model and its training data. A generative model takes its image shape and classes
    from the data, so its data comes first; a translation model's generator decides the sizes
    its data must have, so it comes first."""
    cls = configs.model_cls
    if cls.task == "generation":
        dataset = build_dataset_for(configs, cls)
        net = cls(configs.model)
    else:
        net = cls(configs.model)
        dataset = build_dataset_for(configs, net)
    bind = getattr(net, "bind_data", None)
    if bind is not None:
        bind(dataset)
    return net, dataset


def build_dataset_for(configs: Configs, model: GANModel | type[GANModel], *,
                      train: bool = True) -> Dataset:
    """The dataset ``configs.data`` names, read as ``model`` needs it. For a generative model
    ``configs.model`` gets the data's image shape and classes (an error if they conflict)."""
    data = configs.data
    if configs.model_cls.task == "generation":
        from gankit.data.image_sets import build_image_set

        if data.data.startswith(BUILTIN_PREFIX):
            raise ConfigError(f"{data.data} is a translation dataset; give a generative model "
                              "an image folder or MNIST (gankit data download mnist)")
        image_set = build_image_set(data, channels=configs.model.channels, train=train)
        configs.model = configs.model_cls.adapt_config(configs.model, image_set.info)
        return image_set
    if data.data.startswith(BUILTIN_PREFIX):
        model_cfg = configs.model
        if (getattr(model_cfg, "in_channels", 3), getattr(model_cfg, "out_channels", 3)) != (3, 3):
            raise ConfigError(f"{data.data} has RGB images on both sides; leave --in-channels "
                              "and --out-channels at 3")
        return _builtin_dataset(data, configs.train.seed)
    if not data.data:
        raise ConfigError("no data given: pass --data FOLDER (or --data builtin:shapes)")
    from gankit.data.datasets import build_dataset

    mc = configs.model
    return build_dataset(
        data,
        pairing=getattr(configs.model_cls, "pairing", "single"),
        in_channels=getattr(mc, "in_channels", 3),
        out_channels=getattr(mc, "out_channels", 3),
        train=train,
        size_multiple=getattr(model, "size_multiple", 1),
    )


def _builtin_dataset(data: DataConfig, seed: int) -> Dataset:
    from gankit.data.shapes import ShapesDataset

    name = data.data[len(BUILTIN_PREFIX):]
    if name != "shapes":
        raise ConfigError(
            f"unknown built-in dataset {name!r}; available: "
            + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)
        )
    return ShapesDataset(n=data.max_items or 1000, size=data.crop_size, seed=seed)


def default_run_dir(model: str, data: str) -> Path:
    stem = Path(data.replace(BUILTIN_PREFIX, "")).name or "data"
    return Path("runs") / f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def trainer(
    model: str | None = None,
    *,
    run_dir: str | Path | None = None,
    recipe: str | None = None,
    **options: Any,
) -> Trainer:
    """Set up (but do not start) a new training run."""
    configs = resolve_configs(model, options, recipe)
    seed_everything(configs.train.seed, configs.train.deterministic)
    device = pick_device(configs.train.device)
    net, dataset = build_model_and_data(configs)
    net.to(device)
    run_dir = Path(run_dir) if run_dir else default_run_dir(net.name, configs.data.data)
    if (run_dir / "checkpoints" / "latest.pt").is_file():
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with gankit train --resume {run_dir}, "
            "or give another --run-dir"
        )
    return Trainer(net, dataset, train_cfg=configs.train, data_cfg=configs.data, run_dir=run_dir)


def resume_trainer(run: str | Path, *, model: str | None = None, **train_options: Any) -> Trainer:
    """Continue a run exactly where its latest checkpoint left off.

    Only training options (more epochs, a new ``max_steps``, another device) may change.
    """
    path = Path(run)
    ckpt = find_checkpoint(path) if path.is_dir() else path
    state = load_checkpoint(ckpt)
    if model and model != state["model"]:
        raise CheckpointError(
            f"{ckpt} holds a {state['model']} checkpoint, not {model}; resume it with "
            f"gankit train --resume {run} (no model name), or start a new {model} run"
        )
    not_training = sorted(set(train_options) - {f.name for f in dataclasses.fields(TrainConfig)})
    if not_training:
        raise ConfigError(
            f"only training options can change on resume, not {', '.join(not_training)}; "
            "start a new run to change the model or the data"
        )
    fixed = sorted(k for k in FIXED_ON_RESUME
                   if k in train_options and train_options[k] != state["train_config"].get(k))
    if fixed:
        raise ConfigError(
            f"{', '.join(fixed)} cannot change on resume: the data order and the position in "
            "the epoch depend on it; start a new run instead"
        )
    train_cfg = cfgmod.from_dict(TrainConfig, {**state["train_config"], **train_options},
                                 source=str(ckpt))
    data_cfg = cfgmod.from_dict(DataConfig, state["data_config"], source=str(ckpt))
    configure_determinism(train_cfg.deterministic)
    device = pick_device(train_cfg.device)
    net = model_from_state(state, source=str(ckpt), use_ema=False).to(device)
    configs = Configs(type(net), net.config, data_cfg, train_cfg)
    dataset = build_dataset_for(configs, net)  # a generative model checks its data's shape
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return Trainer(net, dataset, train_cfg=train_cfg, data_cfg=data_cfg, run_dir=run_dir,
                   resume_state=state)


def train(model: str | None = None, **kwargs: Any) -> FitResult:
    """Train a model end to end; see :func:`trainer` for the arguments."""
    return trainer(model, **kwargs).fit()


def resume(run: str | Path, **train_options: Any) -> FitResult:
    return resume_trainer(run, **train_options).fit()


def sample(model: str | Path | GANModel, n: int = 64, labels: Any = None, *,
           seed: int | None = None, device: str = "auto") -> Any:
    """``n`` images (N, C, H, W) in [-1, 1] from a generative model or its checkpoint/run."""
    net = model if isinstance(model, GANModel) else load(model, device=device)
    if not hasattr(net, "sample"):
        raise ConfigError(f"{net.name} translates images; use gankit.translate")
    return net.sample(n, labels, seed=seed)


def translate(model: str | Path | GANModel, image: Any, *, reverse: bool = False,
              device: str = "auto") -> Any:
    """Translate one image (path, PIL image, array or tensor) with a translation model or its
    checkpoint/run: a tensor gives a tensor, anything else a PIL image."""
    net = model if isinstance(model, GANModel) else load(model, device=device)
    if not hasattr(net, "translate"):
        raise ConfigError(f"{net.name} makes images from noise; use gankit.sample")
    return net.translate(image, reverse=reverse)
