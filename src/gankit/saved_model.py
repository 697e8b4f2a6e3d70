"""What a saved model is: the one definition of the contents of checkpoints, run configs and
releases, and the one way back from them to a model.

Three files carry a model, each a superset of the one before:

  run config   run/config.json          the model record's configs: what the run trains
  release      model.safetensors + JSON the model record: enough for inference anywhere
  checkpoint   run/checkpoints/*.pt     the model record + the training state: resumes exactly

The model record (:data:`MODEL_RECORD`) is what inference needs; the training state
(:data:`TRAINING_STATE`) is what continuing a run needs. The file formats themselves (atomic
writes, headers, versions) are in :mod:`gankit.train.checkpoint` and
:mod:`gankit.export.release`; they store exactly the dicts built here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gankit import config as cfgmod
from gankit.config import to_dict
from gankit.data.config import DataConfig
from gankit.errors import CheckpointError, ConfigError
from gankit.models.base import GANModel
from gankit.nn.layout import upgrade_model_config
from gankit.registry import get_model_class
from gankit.train.config import TrainConfig
from gankit.train.ema import load_averaged_weights

log = logging.getLogger(__name__)

# key -> what it holds. Keys marked "required" must be in every checkpoint.
MODEL_RECORD: dict[str, str] = {
    "model": "required: the registered model name",
    "model_config": "required: the model's Config as a dict",
    "data_config": "the DataConfig the model was trained with (image size, direction, ...)",
    "networks": "required: the model's state dict (every network's weights and buffers)",
    "extra": "model state that is not a network: GANModel.extra_state() (class names, "
             "CycleGAN's image pools); a release keeps its plain-JSON entries",
    "ema": "with --ema: the moving average of the generator(s) (gankit.train.ema), used for "
           "inference",
}
TRAINING_STATE: dict[str, str] = {
    "train_config": "required: the TrainConfig (its batch_size is what the model trained with)",
    "optimizers": "required: each optimizer's state dict, by name",
    "schedulers": "required: each learning-rate scheduler's state dict, by optimizer name",
    "scalers": "the update strategy's loss scalers (fp16 only)",
    "rng": "required: the Python, numpy, torch (and CUDA) RNG states",
    "epoch": "required: epochs completed",
    "epoch_step": "required: steps done in the current epoch",
    "step": "required: steps done in all",
    "epoch_sums": "the current epoch's loss sums (the plateau policy reads them)",
    "eval": "the best evaluation so far and the step of the last one",
    "world_size": "processes the run trains on (torchrun); a resume must use as many",
    "parameter_digests": "with torchrun: each process's parameter fingerprint when the "
                         "checkpoint was written (all equal)",
}
REQUIRED = tuple(k for k, v in {**MODEL_RECORD, **TRAINING_STATE}.items()
                 if v.startswith("required"))


def model_record(model: GANModel) -> dict[str, Any]:
    """The model record of ``model``: what inference needs."""
    return {
        "model": model.name,
        "model_config": to_dict(model.config),
        "data_config": to_dict(model.data_config or DataConfig()),
        "networks": model.state_dict(),
        "extra": model.extra_state(),
    }


def run_config(model: GANModel, train_cfg: TrainConfig) -> dict[str, Any]:
    """What ``run/config.json`` holds: the run's configs, without weights."""
    record = model_record(model)
    return {"model": record["model"], "model_config": record["model_config"],
            "data_config": record["data_config"], "train_config": to_dict(train_cfg)}


def checkpoint_state(model: GANModel, train_cfg: TrainConfig,
                     training: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's contents: the model record and the engine's ``training`` state (the
    keys of :data:`TRAINING_STATE` but ``train_config``, plus ``ema`` with --ema)."""
    unknown = sorted(set(training) - set(TRAINING_STATE) - {"ema"})
    if unknown:
        raise ValueError(f"not part of a checkpoint's schema: {', '.join(unknown)}")
    return {**model_record(model), "train_config": to_dict(train_cfg), **training}


def check_checkpoint(state: dict[str, Any], source: str) -> None:
    """A clear error for a checkpoint that lacks a required entry (cut or hand-edited)."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{source} lacks {', '.join(missing)}: it is not a complete "
                              "gankit checkpoint; use another checkpoint of the run")


def json_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The entries of a model's extra state that are plain JSON (what a release carries);
    tensors (image pools) are training state and stay in checkpoints."""
    kept = {}
    for key, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept


def model_from_state(state: dict[str, Any], source: str = "checkpoint", *,
                     use_ema: bool = True) -> GANModel:
    """Rebuild a model from a checkpoint's (or a release's) model record, with no other input.

    A record of an older format is upgraded first (format 1 translation models get the conv
    bias layout they were built with, gankit.nn.layout).

    A run trained with ``--ema`` saved the moving average of its generator(s) beside the live
    weights; with ``use_ema`` (for inference) the generators get the average and
    ``model.uses_ema`` is true. Resuming passes False: training continues from the live ones.
    """
    try:
        cls = get_model_class(state["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    version = state.get("format_version", state.get("release", {}).get("format_version", 0))
    model_config = upgrade_model_config(state["model"], state["model_config"], version)
    model = cls(cfgmod.from_dict(cls.Config, model_config, source=source))
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
    model.data_config = cfgmod.from_dict(DataConfig, state.get("data_config", {}),
                                         source=source)
    return model
