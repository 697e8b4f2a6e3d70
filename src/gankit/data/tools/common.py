"""What the data tools share: listing inputs, reading with bad files skipped, writing, reports.

Every tool reads through :mod:`gankit.data.image_io` (8/16-bit, gray, RGB, RGBA) and writes
through :func:`gankit.data.image_io.save_image`, which writes each file atomically: a stopped
run leaves only complete files, and the same command with ``skip_existing`` continues it. A
file that cannot be read is reported with its path and left out; the report at the end lists
every one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from gankit.data.image_io import array_to_tensor, load_array, save_image
from gankit.data.layouts import list_images
from gankit.data.transforms import resize
from gankit.errors import DataError

log = logging.getLogger(__name__)
T = TypeVar("T")
_SHOWN = 10


@dataclass
class ToolReport:
    """What a data tool did: files written, kept from an earlier run, and left out."""

    tool: str
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def skip(self, path: Path, reason: str) -> None:
        log.warning("skipped %s: %s", path, reason)
        self.bad.append((path, reason))

    def summary(self) -> str:
        lines = [f"{self.tool}: wrote {len(self.written)} images to {self.out_dir}"]
        if self.kept:
            lines[0] += f", kept {len(self.kept)} that an earlier run wrote"
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        lines += [f"  {note}" for note in self.notes]
        if self.bad:
            lines.append(f"  skipped {len(self.bad)} unreadable or unusable files:")
            lines += [f"    {p}: {why}" for p, why in self.bad[:_SHOWN]]
            if len(self.bad) > _SHOWN:
                lines.append(f"    ... and {len(self.bad) - _SHOWN} more")
        return "\n".join(lines)


def progress(items: Iterable[T], total: int, desc: str, enabled: bool) -> Iterator[T]:
    """``items`` with a tqdm progress bar on stderr (none when ``enabled`` is false)."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():  # warnings about bad files print above the bar
        yield from tqdm(items, total=total, desc=desc, unit="img", disable=not enabled,
                        dynamic_ncols=True, leave=False)


def input_images(folder: str | Path, what: str = "input") -> tuple[Path, list[Path]]:
    """A folder and its image files (recursive, sorted), or a clear error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{what} folder {folder} does not exist or is not a folder")
    files = list_images(folder)
    if not files:
        raise DataError(f"no images found in {what} folder {folder}")
    return folder, files


def read(path: Path, report: ToolReport) -> np.ndarray | None:
    """HxWxC float32 in [0, 1] (the file's own channels), or None after reporting it."""
    try:
        return load_array(path)
    except DataError as exc:
        report.skip(path, _reason(exc))
        return None


def _reason(exc: DataError) -> str:
    text = str(exc)
    return text.split(" (", 1)[1].split("); ", 1)[0] if " (" in text else text


def bit_depth_of(*arrays: np.ndarray) -> int:
    """16 when any pixel lies off the 8-bit grid (a 16-bit source), else 8."""
    for arr in arrays:
        scaled = arr * 255.0
        if np.abs(scaled - np.rint(scaled)).max(initial=0.0) > 1e-3:
            return 16
    return 8


def common_channels(*arrays: np.ndarray) -> int:
    """1, 3 or 4: the channels that hold every input without loss (gray, colour, + alpha)."""
    cs = [a.shape[2] for a in arrays]
    if any(c in (2, 4) for c in cs):
        return 4
    return 3 if any(c == 3 for c in cs) else 1


def resize_array(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic, antialiased resize of an HxWxC [0, 1] array, in float (16 bits survive)."""
    if arr.shape[:2] == (height, width):
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))) * 2 - 1
    out = (resize(t, height, width) + 1) * 0.5
    return out.clamp_(0, 1).permute(1, 2, 0).numpy()


def write(arr: np.ndarray, path: Path, bit_depth: int = 8) -> Path:
    """Write an HxWxC (C = 1, 3, 4) [0, 1] array atomically."""
    return save_image(array_to_tensor(arr), path, bit_depth=bit_depth)


def done_before(path: Path, skip_existing: bool, report: ToolReport) -> bool:
    """True (and counted as kept) when ``path`` exists and existing files are to be kept."""
    if skip_existing and path.exists():
        report.kept.append(path)
        return True
    return False


def describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())
