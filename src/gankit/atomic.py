"""Atomic file writes: a temporary file beside the target, renamed over it when complete.

Readers (a browser refreshing a report, a resumed run) never see a half-written file, and a
crash or a full disk leaves the previous version in place with no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing; the file appears only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" rather than mkstemp, so the file gets the usual permissions.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)
