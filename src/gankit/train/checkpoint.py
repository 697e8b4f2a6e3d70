"""Self-describing checkpoints, written atomically and loaded with ``weights_only=True``.

One file holds everything needed to rebuild the model and continue training exactly: format
version, model name, every config, all networks, optimizers, schedulers, grad scalers,
model-specific state (an image pool), RNG states, epoch and step.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from gankit.atomic import atomic_open
from gankit.errors import CheckpointError, GankitError

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 2  # 2: translation configs record conv_bias (gankit.nn.layout)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then rename.

    If writing fails (a full disk, say) the temporary file is removed and the previous file at
    ``path`` is left exactly as it was.
    """
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    try:
        with atomic_open(path, fsync=True) as f:
            torch.save(payload, f)
    except (OSError, RuntimeError) as exc:
        if _disk_full(exc):
            raise GankitError(
                f"disk full while saving checkpoint {path}; the previous checkpoint there is "
                "intact. Free some space and resume the run with --resume."
            ) from exc
        raise
    return path


def _disk_full(exc: BaseException | None) -> bool:
    """ENOSPC anywhere in the chain: torch's zip writer reports a full disk as a RuntimeError
    raised while handling the OSError."""
    while exc is not None:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a gankit checkpoint; anything else gets a clear CheckpointError."""
    path = Path(path)
    if path.is_dir():
        path = find_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; give a .pt file or a run folder from gankit train"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means "not a checkpoint"
        raise CheckpointError(
            f"{path} is not a readable gankit checkpoint: it is not a PyTorch file, or it was "
            f"cut short ({type(exc).__name__}). Give a file written by gankit train; if it was "
            "cut short, use an earlier numbered checkpoint of the run."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a gankit checkpoint (no '{FORMAT}' header); "
            "give a checkpoint written by gankit train"
        )
    version = state.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer gankit (checkpoint format {version}, this version "
            f"reads up to {FORMAT_VERSION}); upgrade gankit"
        )
    return state


def find_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint to continue from in a run folder (``checkpoints/latest.pt``)."""
    run_dir = Path(run_dir)
    for candidate in (run_dir / "checkpoints" / "latest.pt", run_dir / "latest.pt"):
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"no checkpoint found in {run_dir} (looked for checkpoints/latest.pt); give the run "
        "folder that gankit train printed, or a .pt file"
    )
