"""``gankit train --init-from PATH``: fine-tune from the network weights of a saved model.

Only the networks are taken; optimizers, schedules, the epoch and the RNG start afresh, on
whatever data the new run is given. The saved model must be the same model with the same
architecture; otherwise the error names the keys that differ and the options that do.
``--resume`` continues a run instead, and never re-applies this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from gankit.errors import CheckpointError
from gankit.models.base import GANModel
from gankit.nn.layout import state_mismatch, upgrade_model_config

log = logging.getLogger(__name__)


def read_saved_model(path: str | Path) -> dict[str, Any]:
    """A checkpoint (file or run folder) or release, as a checkpoint-shaped state whose
    ``model_config`` is upgraded to today's options."""
    from gankit.export.release import is_release, load_release_state
    from gankit.train.checkpoint import load_checkpoint

    state = load_release_state(path) if is_release(path) else load_checkpoint(path)
    version = int(state.get("release", {}).get("format_version",
                                                 state.get("format_version", 0)))
    for key in ("model", "model_config", "networks"):
        if key not in state:
            raise CheckpointError(f"{path} has no {key!r}: it is incomplete")
    state["model_config"] = upgrade_model_config(state["model"], state["model_config"],
                                                 version)
    return state


def apply_init_from(model: GANModel, path: str | Path) -> None:
    """Load the network weights saved at ``path`` into ``model`` (in place).

    Raises :class:`CheckpointError` when ``path`` holds another model or weights of another
    architecture (naming the mismatching keys and the saved options that differ).
    """
    state = read_saved_model(path)
    if state["model"] != model.name:
        raise CheckpointError(
            f"--init-from {path} holds a {state['model']} model, not {model.name}; fine-tune "
            f"it with gankit train {state['model']} --init-from {path}, or give a {model.name} "
            "checkpoint or release"
        )
    networks: dict[str, torch.Tensor] = state["networks"]
    expected = model.state_dict()
    problems = state_mismatch(expected, networks)
    if problems:
        raise CheckpointError(
            f"--init-from {path}: its weights do not fit this {model.name} ("
            + "; ".join(problems) + ")" + _differing_options(model, state["model_config"])
        )
    with torch.no_grad():
        model.load_state_dict(networks)
    log.info("initialised the networks of %s from %s (optimizers and schedule start afresh)",
             model.name, path)


def _differing_options(model: GANModel, saved: dict[str, Any]) -> str:
    """The saved options that change the networks' shapes, as flags to pass."""
    from gankit.config import to_dict

    current = to_dict(model.config)
    diffs = {k: v for k, v in saved.items() if k in current and current[k] != v}
    if not diffs:
        return ""
    shapes = _shapes(model.state_dict())
    architectural = {k: v for k, v in diffs.items()
                     if _shapes_with(model, {**current, k: v}) not in (None, shapes)}
    flags = " ".join(_flag(k, v) for k, v in (architectural or diffs).items())
    return f". The saved model was built with other options; to fine-tune it, pass {flags}"


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _shapes_with(model: GANModel, options: dict[str, Any]) -> dict[str, tuple] | None:
    """The state-dict shapes of ``model``'s class built with ``options`` (on the meta
    device: no memory, no time), or None if those options do not build."""
    from gankit.config import from_dict
    from gankit.errors import GankitError

    cls = type(model)
    try:
        with torch.device("meta"):
            return _shapes(cls(from_dict(cls.Config, options)).state_dict())
    except (GankitError, TypeError, ValueError, RuntimeError):
        return None


def _flag(name: str, value: Any) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    if isinstance(value, (list, tuple)):
        return f"{flag} {' '.join(str(v) for v in value)}"
    return f"{flag} {value}"
