"""The release format: a trained model to share, safe to load from a stranger.

A release is a folder with two files::

    model.safetensors   every network's weights and buffers (safetensors: raw tensors and a
                        JSON header, no pickle, so loading runs no code from the file)
    config.json         the model record of gankit.saved_model (model name, model_config,
                        data_config, trained_batch_size, the plain-JSON extra state such as
                        class names), the preprocessing contract of each direction (the
                        sampling contract for a generative model) and the gankit version

A checkpoint of a run trained with ``--ema`` is exported with the moving average of its
generator(s) as their weights (what ``gankit.load`` uses for inference; config.json says so
under ``"ema"``), the discriminators as they were.

A single ``NAME.safetensors`` file is a release too: the same config JSON is stored in its
header metadata (key ``gankit_config``), and folder releases carry it there as well. There are
no optimizer, scheduler or RNG states: a release is for inference and fine-tuning from its
weights, not for resuming a run exactly (keep the checkpoint for that).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gankit.atomic import write_bytes_atomic
from gankit.errors import CheckpointError, ConfigError
from gankit.models.base import GANModel
from gankit.saved_model import json_extra, model_record

log = logging.getLogger(__name__)

FORMAT = "gankit-release"
FORMAT_VERSION = 2  # 2: translation configs record conv_bias (gankit.nn.layout)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METADATA_KEY = "gankit_config"


def is_release(path: str | Path) -> bool:
    """A release folder (it holds model.safetensors) or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        return (path / WEIGHTS_NAME).is_file()
    return path.suffix == ".safetensors"


def release_config(
    model: GANModel, source: dict[str, Any] | None = None, inference_mode: str | None = None
) -> dict[str, Any]:
    """The JSON config of a release of ``model`` (``inference_mode`` overrides its own)."""
    from gankit import __version__

    record = model_record(model)
    model_config = record["model_config"]
    if inference_mode is not None:
        if "inference_mode" not in model_config:
            raise ConfigError(f"{model.name} has no inference mode to set")
        model_config["inference_mode"] = inference_mode
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gankit_version": __version__,
        "model": record["model"],
        "model_config": model_config,
        "data_config": record["data_config"],
        "trained_batch_size": model.trained_batch_size,
        "extra": json_extra(record["extra"]),
        "source": source or {},
    }
    if model.ema_info is not None:  # the generator weights are the run's moving average
        config["ema"] = dict(model.ema_info)
    contracts = _contracts(model, inference_mode)
    if contracts:
        config["preprocessing"] = contracts
    if getattr(model, "task", None) == "generation":  # what z, labels and images are
        from gankit.export.metadata import generator_contract_for

        config["sampling"] = generator_contract_for(model).to_dict()
    return config


def _contracts(model: GANModel, inference_mode: str | None) -> dict[str, Any]:
    from gankit.export.metadata import contract_for, resolve_train_mode
    from gankit.models.translation import TranslationModel

    if not isinstance(model, TranslationModel):
        return {}
    out = {}
    train_mode = resolve_train_mode(model, inference_mode)
    for key, reverse in (("forward", False), ("reverse", True)):
        try:
            out[key] = contract_for(model, reverse=reverse, train_mode=train_mode).to_dict()
        except ConfigError:  # a model that translates one way only
            continue
    return out


def save_release(
    model: GANModel,
    out: str | Path,
    *,
    source: dict[str, Any] | None = None,
    inference_mode: str | None = None,
) -> Path:
    """Write ``model`` as a release: a folder, or one file if ``out`` ends in .safetensors."""
    from safetensors.torch import save

    out = Path(out)
    config = release_config(model, source, inference_mode)
    text = json.dumps(config, indent=2) + "\n"
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={METADATA_KEY: text, "format": FORMAT})
    if out.suffix == ".safetensors":
        write_bytes_atomic(out, data)
    else:
        if out.exists() and not out.is_dir():
            raise CheckpointError(f"{out} is a file; give a folder for the release, or a name "
                                  "ending in .safetensors for a single-file release")
        write_bytes_atomic(out / WEIGHTS_NAME, data)
        write_bytes_atomic(out / CONFIG_NAME, text.encode())
    n_params = sum(t.numel() for t in tensors.values())
    log.info("wrote release %s (%s, %.1fM values, %.1f MB)", out, model.name, n_params / 1e6,
             len(data) / 1e6)
    return out


def read_release_config(path: str | Path) -> dict[str, Any]:
    """The config of a release folder or file, checked for format and version."""
    path = Path(path)
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        source = path / CONFIG_NAME
        text = source.read_text(encoding="utf-8", errors="replace")
    else:
        source = weights
        text = _header_metadata(weights).get(METADATA_KEY, "")
        if not text:
            raise CheckpointError(f"{weights} holds weights but no gankit config (no "
                                  f"{CONFIG_NAME} beside it and no '{METADATA_KEY}' metadata); "
                                  "give a release written by gankit export --format release")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{source} is not valid JSON ({exc}); restore it from the "
                              "release as published") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a gankit release config (no format "
                              f"'{FORMAT}'); give a release written by gankit export")
    version = config.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{source} is a release of format {version!r}; this gankit reads "
                              f"up to {FORMAT_VERSION}: upgrade gankit")
    for key in ("model", "model_config"):
        if key not in config:
            raise CheckpointError(f"{source} has no {key!r}; the release config is incomplete")
    return config


def _header_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any header failure means "not safetensors"
        raise _unreadable(path, exc) from None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"release weights {path} not found; a release folder holds "
                              f"{WEIGHTS_NAME} and {CONFIG_NAME}")


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"{path} is not a readable safetensors file ({type(exc).__name__}: "
                           f"{str(exc)[:120]}); download the release again")


def load_release_state(path: str | Path) -> dict[str, Any]:
    """A release read into the model record that ``saved_model.model_from_state`` takes.

    Only safetensors and JSON are parsed: nothing in the files can run code.
    """
    from safetensors.torch import load_file

    path = Path(path)
    config = read_release_config(path)
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    _check_file(weights)
    try:
        networks = load_file(str(weights), device="cpu")
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(weights, exc) from None
    return {
        "format": FORMAT,
        "model": config["model"],
        "model_config": config["model_config"],
        "data_config": config.get("data_config", {}),
        "train_config": {"batch_size": config.get("trained_batch_size")},
        "networks": networks,
        "extra": config.get("extra", {}),
        "release": config,
    }

