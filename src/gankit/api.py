"""The Python API: create, load and train models; the CLI is a thin layer over these.

The wiring of options and data lives in :mod:`gankit.build`, the saved-model format in
:mod:`gankit.saved_model`; the names this module imports from them are part of the API.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from gankit import config as cfgmod
from gankit.build import (  # noqa: F401  (re-exported)
    Configs,
    build_dataset_for,
    build_model_and_data,
    create,
    data_stem,
    resolve_configs,
)
from gankit.data.config import DataConfig
from gankit.errors import CheckpointError, ConfigError
from gankit.models.base import GANModel
from gankit.saved_model import check_checkpoint, model_from_state  # noqa: F401
from gankit.train import distributed
from gankit.train.checkpoint import find_checkpoint, load_checkpoint
from gankit.train.config import TrainConfig
from gankit.train.engine import FitResult, Trainer
from gankit.train.init_from import apply_init_from
from gankit.train.runtime import configure_determinism, pick_device, seed_everything

# Changing these mid-run would change which samples the rest of the epoch holds.
FIXED_ON_RESUME = ("batch_size", "seed")


def load(path: str | Path, device: str = "auto") -> GANModel:
    """Load a trained model from a checkpoint file, run folder or release (a folder with
    model.safetensors + config.json, or one .safetensors file), ready for inference."""
    from gankit.export.release import is_release, load_release_state

    state = load_release_state(path) if is_release(path) else load_checkpoint(path)
    model = model_from_state(state, source=str(path))
    model.to(pick_device(device))
    model.eval()
    return model


def default_run_dir(model: str, data: str) -> Path:
    return Path("runs") / f"{model}-{data_stem(data)}-{time.strftime('%Y%m%d-%H%M%S')}"


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
    device = distributed.setup(configs.train.device)
    net, dataset = build_model_and_data(configs)
    if configs.train.init_from:
        apply_init_from(net, configs.train.init_from)
    net.to(device)
    run_dir = Path(run_dir) if run_dir else distributed.from_rank0(
        default_run_dir(net.name, configs.data.data))
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
    check_checkpoint(state, str(ckpt))
    if model and model != state["model"]:
        raise CheckpointError(
            f"{ckpt} holds a {state['model']} checkpoint, not {model}; resume it with "
            f"gankit train --resume {run} (no model name), or start a new {model} run"
        )
    if train_options.get("init_from"):
        raise ConfigError("--init-from starts a new run from another run's weights; it cannot "
                          "be combined with --resume, which continues this run exactly")
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
    device = distributed.setup(train_cfg.device)
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
