"""Inception-v3 pool features (2048-d) of images, in batches, on any device.

Images arrive as tensors in [-1, 1] (model outputs, any size, 1/3/4 channels) or as files; each
is quantised to 8 bits and resized by the chosen protocol (see :mod:`gankit.metrics.resize`) in
a small thread pool while the network runs on the previous batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.data.image_io import read_image
from gankit.errors import DataError
from gankit.metrics.resize import check_protocol, describe_protocol, prepare, quantize
from gankit.metrics.weights import InceptionWeights, find_weights

log = logging.getLogger(__name__)

DIMS = 2048


class FeatureExtractor:
    """The FID Inception-v3 with a resize protocol, turning images into pool features.

    ``weights``: a path, or None for the lookup order of :mod:`gankit.metrics.weights`.
    ``device``: auto (cuda, then mps, then cpu), cpu, cuda, ... ``batch_size``: images per
    forward pass. ``workers``: threads that read and resize images (default: up to 4).
    """

    dims = DIMS

    def __init__(
        self,
        weights: str | os.PathLike | InceptionWeights | None = None,
        *,
        protocol: str = "clean",
        device: str | torch.device = "auto",
        batch_size: int = 50,
        workers: int | None = None,
        download: bool = True,
        verify: bool = True,
    ) -> None:
        from gankit.train.runtime import pick_device

        self.protocol = check_protocol(protocol)
        self.weights = (weights if isinstance(weights, InceptionWeights)
                        else find_weights(weights, download=download, verify=verify))
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.batch_size = batch_size
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.net = _load_network(self.weights.path, self.device)

    @property
    def key(self) -> str:
        """What the features depend on besides the images (for caches)."""
        return f"{self.protocol}-{self.weights.sha256}"

    def describe(self) -> str:
        return (f"resize protocol {self.protocol} ({describe_protocol(self.protocol)}); "
                f"Inception weights {self.weights.describe()}")

    # --- the network ------------------------------------------------------------------------
    def forward(self, batch: torch.Tensor) -> np.ndarray:
        """Prepared (N, 3, 299, 299) network input -> (N, 2048) float32 features."""
        # channels-last input: the convolutions run 10-20% faster on CPU (oneDNN), features
        # equal to 1e-5 (benchmarks/fid_throughput.py)
        batch = batch.to(self.device, non_blocking=True).contiguous(
            memory_format=torch.channels_last)
        with torch.inference_mode(), _exact_float32(self.device):
            out = self.net(batch)
        return out.reshape(out.shape[0], -1).float().cpu().numpy()

    # --- inputs -----------------------------------------------------------------------------
    def from_tensors(self, images: torch.Tensor | Iterable[torch.Tensor],
                     *, progress: bool = False) -> np.ndarray:
        """Features of images in [-1, 1]: one (N, C, H, W) tensor, or an iterable of
        (C, H, W) / (N, C, H, W) tensors of any sizes."""
        if isinstance(images, torch.Tensor):
            items: Iterable[torch.Tensor] = [images] if images.dim() == 3 else images.unbind(0)
        else:
            items = _single_images(images)
        return self._run(items, lambda image: image, progress=progress)

    def from_paths(self, paths: Sequence[str | os.PathLike], *, skip_bad: bool = False,
                   progress: bool = False) -> np.ndarray:
        """Features of image files (alpha composited onto white, gray as RGB); an unreadable
        file raises a :class:`DataError` naming it, or with ``skip_bad`` is left out."""
        bad: list[str] = []

        def read(path: str | os.PathLike) -> torch.Tensor | None:
            try:
                return read_image(path, 3)
            except DataError as exc:
                if not skip_bad:
                    raise
                bad.append(str(exc))
                return None

        feats = self._run(list(paths), read, progress=progress, total=len(paths))
        if bad:
            log.warning("left out %d unreadable image(s):\n  %s", len(bad), "\n  ".join(bad[:10]))
        return feats

    def _run(self, items: Iterable[Any], load: Callable[[Any], torch.Tensor | None],
             *, progress: bool, total: int | None = None) -> np.ndarray:
        protocol = self.protocol

        def make(item: Any) -> torch.Tensor | None:
            image = load(item)
            if image is None:
                return None
            return prepare(quantize(image)[0], protocol)

        chunks = []
        bar = _bar(progress, total)
        with ThreadPoolExecutor(self.workers) as pool:
            for prepared in _prefetch(pool, make, _chunked(items, self.batch_size)):
                kept = [p for p in prepared if p is not None]
                if kept:
                    chunks.append(self.forward(torch.stack(kept)))
                bar.update(len(prepared))
        bar.close()
        if not chunks:
            raise DataError("no images to compute Inception features of")
        return np.concatenate(chunks)


def _single_images(images: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    for item in images:
        if item.dim() == 4:
            yield from item.unbind(0)
        else:
            yield item


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prefetch(pool: ThreadPoolExecutor, fn: Callable[[Any], Any],
              chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """Map ``fn`` over each chunk in the pool, one chunk ahead of the consumer."""
    pending = None
    for chunk in chunks:
        futures = [pool.submit(fn, item) for item in chunk]
        if pending is not None:
            yield [f.result() for f in pending]
        pending = futures
    if pending is not None:
        yield [f.result() for f in pending]


_NETWORKS: dict[tuple[str, str], torch.nn.Module] = {}


def _load_network(path: Path, device: torch.device) -> torch.nn.Module:
    """The TorchScript Inception, loaded once per (file, device) in a process."""
    key = (str(path), str(device))
    if key not in _NETWORKS:
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any failure means an unusable file
            raise DataError(f"cannot load the Inception weights {path} ({type(exc).__name__}: "
                            f"{exc}); delete the file and let gankit fetch it again") from None
        _NETWORKS[key] = net.eval().to(device)
    return _NETWORKS[key]


@contextlib.contextmanager
def _exact_float32(device: torch.device) -> Iterator[None]:
    """No TF32 on CUDA while extracting features: standard FIDs come from float32 maths."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int | None) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="Inception features", leave=False)


def inception_features(
    images: torch.Tensor | Iterable[torch.Tensor] | Sequence[str | os.PathLike] | str | Path,
    **options: Any,
) -> np.ndarray:
    """(N, 2048) features of a tensor batch, an iterable of tensors, a list of image files or
    a folder; ``options`` go to :class:`FeatureExtractor`."""
    from gankit.data.layouts import list_images

    extractor = FeatureExtractor(**options)
    if isinstance(images, (str, Path)):
        return extractor.from_paths(list_images(Path(images)))
    if isinstance(images, torch.Tensor):
        return extractor.from_tensors(images)
    items = list(images)
    if items and isinstance(items[0], (str, os.PathLike)):
        return extractor.from_paths(items)  # type: ignore[arg-type]
    return extractor.from_tensors(items)  # type: ignore[arg-type]
