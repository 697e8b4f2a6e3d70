"""A disk cache of reference statistics, so many checkpoints cost one pass over a dataset.

An entry is one ``.npz`` (see :class:`~gankit.metrics.stats.FeatureStats`) in
``$GANKIT_CACHE/stats/`` (default ``~/.cache/gankit/stats/``), named after the data and keyed by
a SHA-256 of everything the features depend on: the absolute path of each image file with its
size and modification time, the resize protocol, the SHA-256 of the Inception weights, any
preprocessing the caller names, and a format version. Touching, adding or removing an image,
or switching protocol or weights, therefore selects a different entry; stale entries are
simply never read again (delete the folder to reclaim the space, about 8 KB per image plus
32 MB per entry).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gankit.errors import DataError
from gankit.metrics.stats import FeatureStats
from gankit.metrics.weights import cache_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def file_fingerprint(paths: Sequence[str | os.PathLike]) -> str:
    """SHA-256 over (absolute path, size, mtime) of each file, in the given order."""
    digest = hashlib.sha256()
    for p in paths:
        path = Path(p).absolute()
        try:
            st = path.stat()
            entry = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n"
        except OSError:
            entry = f"{path}\0missing\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def cache_key(**parts: Any) -> str:
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stats_path(name: str, key: str, folder: Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:60] or "data"
    return (folder or cache_dir() / "stats") / f"{slug}-{key[:24]}.npz"


def cached_stats(name: str, key: str, compute: Callable[[], FeatureStats], *,
                 enabled: bool = True, folder: Path | None = None) -> FeatureStats:
    """The statistics stored under ``key``, or ``compute()`` them and store them."""
    if not enabled:
        return compute()
    path = stats_path(name, key, folder)
    if path.is_file():
        try:
            stats = FeatureStats.load(path)
        except DataError as exc:
            log.warning("%s; computing the statistics again", exc)
        else:
            log.info("using cached reference statistics %s (%d images)", path, stats.n)
            return stats
    stats = compute()
    try:
        stats.save(path)
        log.info("cached the reference statistics of %d images in %s", stats.n, path)
    except OSError as exc:
        log.warning("could not cache the statistics in %s (%s); continuing without", path, exc)
    return stats
