"""Feature statistics of an image set: mean, covariance and (for KID) the features themselves."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gankit.atomic import atomic_open
from gankit.errors import DataError

log = logging.getLogger(__name__)

_warned: set[tuple[int, int, str]] = set()
_CHUNK = 4096


@dataclass
class FeatureStats:
    """``mu`` (d,) and ``sigma`` (d, d) in float64 over ``n`` images; ``features`` (n, d)
    float32 when kept (KID needs them; FID of a small set uses them for an exact fast path)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray | None = None
    source: str = ""

    @property
    def dims(self) -> int:
        return int(self.mu.shape[0])

    @classmethod
    def from_features(cls, features: np.ndarray, source: str = "",
                      keep_features: bool = True) -> FeatureStats:
        features = np.asarray(features)
        if features.ndim != 2:
            raise DataError(f"features must be (N, D), got shape {features.shape}")
        n = features.shape[0]
        if n < 2:
            raise DataError(
                f"{source or 'the image set'} has {n} image(s); a covariance needs at least 2 "
                "(and FID a few thousand: see docs/metrics.md)")
        mu = features.mean(axis=0, dtype=np.float64)
        sigma = np.zeros((features.shape[1], features.shape[1]))
        for start in range(0, n, _CHUNK):  # float64 in chunks: 50k x 2048 would need 800 MB
            centered = features[start:start + _CHUNK].astype(np.float64) - mu
            sigma += centered.T @ centered
        sigma /= n - 1
        kept = features.astype(np.float32) if keep_features else None
        return cls(mu, sigma, n, kept, source)

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (mu, sigma, n, features if kept), atomically."""
        path = Path(path)
        arrays = {"mu": self.mu, "sigma": self.sigma, "n": np.array(self.n),
                  "source": np.array(self.source)}
        if self.features is not None:
            arrays["features"] = self.features
        with atomic_open(path) as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                features = data["features"] if "features" in data.files else None
                return cls(data["mu"], data["sigma"], int(data["n"]), features,
                           str(data["source"]) if "source" in data.files else "")
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path} is not a readable statistics file ({exc}); delete it and "
                            "compute the statistics again") from None


def warn_if_few(n: int, dims: int, what: str) -> None:
    """Warn (once per set size and name) when a covariance of ``dims`` dimensions is
    estimated from too few images to be full rank."""
    if n > dims or (n, dims, what) in _warned:
        return
    _warned.add((n, dims, what))
    log.warning(
        "FID from %d %s images: a %d-dimensional covariance needs at least %d images to be "
        "full rank, and papers use 10,000 to 50,000. With fewer, FID is biased upwards and "
        "depends on the number of images, so compare only FIDs computed from the same number; "
        "KID (--kid) is unbiased for small sets.", n, what, dims, dims + 1)
