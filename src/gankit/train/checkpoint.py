"""Self-describing checkpoints, written atomically and loaded with ``weights_only=True``.

One file holds everything needed to rebuild the model and continue training exactly: format
version, model name, every config, all networks, optimizers, schedulers, grad scalers,
model-specific state (an image pool), RNG states, epoch and step.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from gankit.errors import CheckpointError, GankitError

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then rename.

    If writing fails (a full disk, say) the temporary file is removed and the previous file at
    ``path`` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left" in str(exc):
            raise GankitError(
                f"disk full while saving checkpoint {path}; the previous checkpoint there is "
                "intact. Free some space and resume the run with --resume."
            ) from exc
        raise
    return path


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
            f"{path} is not a readable gankit checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Give a file written by gankit train; if it was "
            "cut short, use an earlier numbered checkpoint of the run."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a gankit checkpoint (no '{FORMAT}' header); "
            "give a file written by gankit train or gankit export --format release"
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
