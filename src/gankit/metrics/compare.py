"""FID and KID between two image sets: folders, lists of files, tensors or cached statistics.

One set of defaults is shared by the Python API and ``gankit evaluate``: the clean resize
protocol, the standard weights, the reference ("real") folder's statistics cached on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.data.layouts import list_images
from gankit.errors import DataError
from gankit.metrics.cache import cache_key, cached_stats, file_fingerprint
from gankit.metrics.features import FeatureExtractor
from gankit.metrics.frechet import fid_from_stats
from gankit.metrics.kid import KIDResult, kernel_inception_distance
from gankit.metrics.stats import FeatureStats

log = logging.getLogger(__name__)

ImageSet = (str | os.PathLike | Sequence[str | os.PathLike] | torch.Tensor
            | Iterable[torch.Tensor] | FeatureStats)
_EXTRACTOR_OPTIONS = ("weights", "protocol", "device", "batch_size", "workers", "download",
                      "verify")


@dataclass
class SetComparison:
    """The result of :func:`compare`: FID, optional KID, set sizes, protocol and weights."""

    fid: float
    kid: KIDResult | None
    n_real: int
    n_fake: int
    protocol: str
    weights: str
    weights_sha256: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fid": self.fid, "n_real": self.n_real, "n_fake": self.n_fake,
                               "protocol": self.protocol, "weights": self.weights,
                               "weights_sha256": self.weights_sha256}
        if self.kid is not None:
            out.update(kid_mean=self.kid.mean, kid_std=self.kid.std,
                       kid_subsets=self.kid.subsets, kid_subset_size=self.kid.subset_size)
        return out


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted), or a clear error."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of images; give a folder (searched "
                        "recursively for .png, .jpg, ... files)")
    files = list_images(folder)
    if not files:
        raise DataError(f"no image files found in {folder} (searched recursively)")
    return files


def make_extractor(extractor: FeatureExtractor | None = None, **options: Any
                   ) -> FeatureExtractor:
    if extractor is not None:
        return extractor
    unknown = sorted(set(options) - set(_EXTRACTOR_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}")
    return FeatureExtractor(**options)


def feature_stats(
    images: ImageSet,
    extractor: FeatureExtractor,
    *,
    cache: bool = False,
    skip_bad: bool = False,
    progress: bool = False,
    cache_folder: Path | None = None,
) -> FeatureStats:
    """Statistics (and features) of one image set; folders may use the disk cache."""
    if isinstance(images, FeatureStats):
        return images
    if isinstance(images, torch.Tensor):
        return FeatureStats.from_features(extractor.from_tensors(images, progress=progress),
                                          f"{images.shape[0]} tensors")
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images).expanduser()
        files = image_files(folder)
        key = cache_key(kind="folder", files=file_fingerprint(files), feature=extractor.key,
                        skip_bad=skip_bad)

        def compute() -> FeatureStats:
            feats = extractor.from_paths(files, skip_bad=skip_bad, progress=progress)
            return FeatureStats.from_features(feats, str(folder))

        return cached_stats(folder.name, key, compute, enabled=cache, folder=cache_folder)
    items = list(images)
    if items and all(isinstance(i, (str, os.PathLike)) for i in items):
        feats = extractor.from_paths(items, skip_bad=skip_bad, progress=progress)  # type: ignore
        return FeatureStats.from_features(feats, f"{len(items)} files")
    if items and all(isinstance(i, torch.Tensor) for i in items):
        feats = extractor.from_tensors(items, progress=progress)  # type: ignore[arg-type]
        return FeatureStats.from_features(feats, f"{len(feats)} tensors")
    raise DataError("an image set is a folder, a list of image files, a tensor (N, C, H, W) "
                    "in [-1, 1], an iterable of tensors, or FeatureStats")


def reference_stats(folder: str | os.PathLike, *, cache: bool = True,
                    extractor: FeatureExtractor | None = None, skip_bad: bool = False,
                    progress: bool = False, **options: Any) -> FeatureStats:
    """Mean, covariance and features of a folder of real images, cached on disk per file
    list, protocol and weights (see :mod:`gankit.metrics.cache`)."""
    return feature_stats(folder, make_extractor(extractor, **options), cache=cache,
                         skip_bad=skip_bad, progress=progress)


def compare(
    real: ImageSet,
    fake: ImageSet,
    *,
    kid: bool = False,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    cache_real: bool = True,
    extractor: FeatureExtractor | None = None,
    skip_bad: bool = False,
    progress: bool = False,
    **options: Any,
) -> SetComparison:
    """FID (and KID when asked) of ``fake`` against ``real``. Only ``real`` uses the disk
    cache; options: weights, protocol, device, batch_size, workers, download, verify."""
    ex = make_extractor(extractor, **options)
    real_stats = feature_stats(real, ex, cache=cache_real, skip_bad=skip_bad, progress=progress)
    fake_stats = feature_stats(fake, ex, cache=False, skip_bad=skip_bad, progress=progress)
    if real_stats.source == "":
        real_stats.source = "real"
    value = fid_from_stats(real_stats, fake_stats)
    kid_result = None
    if kid:
        kid_result = kid_from_stats(real_stats, fake_stats, subsets=kid_subsets,
                                    subset_size=kid_subset_size, seed=seed)
    return SetComparison(value, kid_result, real_stats.n, fake_stats.n, ex.protocol,
                         str(ex.weights.path), ex.weights.sha256)


def kid_from_stats(a: FeatureStats, b: FeatureStats, **options: Any) -> KIDResult:
    if a.features is None or b.features is None:
        raise DataError("KID needs the features of both sets, not only their mean and "
                        "covariance; compute the statistics with keep_features=True")
    return kernel_inception_distance(a.features, b.features, **options)


def fid(real: ImageSet, fake: ImageSet, **options: Any) -> float:
    """FID of ``fake`` against ``real`` (see :func:`compare` for the options)."""
    return compare(real, fake, **options).fid


def kid(real: ImageSet, fake: ImageSet, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0, **options: Any) -> KIDResult:
    """KID (mean and std over subsets) of ``fake`` against ``real``."""
    result = compare(real, fake, kid=True, kid_subsets=subsets, kid_subset_size=subset_size,
                     seed=seed, **options).kid
    assert result is not None
    return result

