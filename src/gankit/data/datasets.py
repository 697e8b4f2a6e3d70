"""Datasets of image folders for the four folder kinds of :mod:`gankit.data.kinds`.

  paired        {"A", "B", "A_path", "B_path"}: aligned A|B images or A/ B/ folders
  unpaired      {"A", "B", "A_path", "B_path"}: two independent sets, len = max of the two
  colorization  {"A": L, "B": ab, "path", "A_path", "B_path"}: RGB images in Lab (see lab.py)
  single        {"A", "A_path"}: the input side only (inference, unconditional models)

"A" is always the model input: ``direction=BtoA`` swaps the sides.

Keys and randomness (exact resume): ``dataset[i]`` or ``dataset[(i, seed)]``. All random
choices of a sample (crop, flip, the B image of an unpaired sample) come from
``numpy.random.default_rng(seed)`` (``seed = i`` for a plain index), so a key always gives
the same tensors, whichever worker process reads it. Draw order: unpaired B index, then the
transform of A (crop top, left, flip), then that of B.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from gankit.data.config import DataConfig
from gankit.data.image_io import array_to_tensor, convert_channels, load_array
from gankit.data.lab import rgb_to_model
from gankit.data.layouts import DatasetFiles, resolve
from gankit.data.scan import scan_sizes
from gankit.data.transforms import JointTransform
from gankit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Pairing = Literal["paired", "unpaired", "colorization", "single"]
PAIRINGS = ("paired", "unpaired", "colorization", "single")
_SHOWN = 10


def parse_key(key: Any, length: int) -> tuple[int, np.random.Generator]:
    """``i`` or ``(i, seed)`` -> (index, the sample's generator); IndexError when out of range."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"a dataset key is an index or (index, seed), not {key!r}")
        index, seed = operator.index(key[0]), operator.index(key[1])
    else:
        index = seed = operator.index(key)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    if isinstance(key, (tuple, list)):
        return index, np.random.default_rng(seed % 2**64)
    return index, np.random.default_rng(index)


@dataclass(frozen=True)
class Source:
    """One image: a whole file, or the left/right half of an A|B file."""

    path: Path
    half: Literal["full", "left", "right"] = "full"


def read_sources(sources: list[Source], channels: list[int]) -> list[torch.Tensor]:
    """Read images as tensors in [-1, 1], decoding a file once for both halves of a pair."""
    cache: dict[Path, np.ndarray] = {}
    out = []
    for src, ch in zip(sources, channels, strict=True):
        if src.path not in cache:
            cache[src.path] = load_array(src.path)
        arr = cache[src.path]
        if src.half != "full":
            width = arr.shape[1]
            if width % 2:
                raise DataError(_odd_width(src.path, width))
            arr = arr[:, : width // 2] if src.half == "left" else arr[:, width // 2:]
        out.append(array_to_tensor(convert_channels(arr, ch)))
    return out


def _odd_width(path: Path, width: int) -> str:
    return (f"{path} is {width} pixels wide: an aligned A|B image must have an even width "
            "(two halves of the same size); fix the image, or choose another --layout")


class FolderDataset(Dataset):
    """Shared key handling and description of the folder datasets."""

    data_kind: str = ""  # the name of its kind in gankit.data.kinds

    def __init__(self, files: DatasetFiles, transform: JointTransform, direction: str) -> None:
        self.files = files
        self.transform = transform
        self.direction = direction

    def __len__(self) -> int:
        raise NotImplementedError

    def _counts(self) -> str:
        return f"{len(self)} images"

    def describe(self) -> str:
        """One line for the CLI: what was found where and how it is preprocessed."""
        direction = ", direction BtoA" if self.direction == "BtoA" else ""
        return (f"{self.data_kind} dataset: {self._counts()} from the {self.files.kind} "
                f"layout in {self.files.root}{direction}; preprocess {self.transform.describe()}")


class PairedDataset(FolderDataset):
    data_kind = "paired"

    def __init__(self, pairs: list[tuple[Source, Source]], channels: tuple[int, int],
                 files: DatasetFiles, transform: JointTransform, direction: str) -> None:
        super().__init__(files, transform, direction)
        self.pairs = pairs
        self.channels = channels

    def __len__(self) -> int:
        return len(self.pairs)

    def _counts(self) -> str:
        return f"{len(self)} pairs"

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, len(self))
        sa, sb = self.pairs[index]
        a, b = read_sources([sa, sb], list(self.channels))
        if a.shape[-2:] != b.shape[-2:]:
            raise DataError(_size_mismatch(sa.path, sb.path, a.shape, b.shape))
        a, b = self.transform([a, b], rng, paths=[sa.path, sb.path])
        return {"A": a, "B": b, "A_path": str(sa.path), "B_path": str(sb.path)}


class UnpairedDataset(FolderDataset):
    data_kind = "unpaired"

    def __init__(self, a: list[Source], b: list[Source], channels: tuple[int, int],
                 files: DatasetFiles, transform: JointTransform, direction: str) -> None:
        super().__init__(files, transform, direction)
        self.a, self.b = a, b
        self.channels = channels

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def _counts(self) -> str:
        return f"{len(self.a)} A and {len(self.b)} B images"

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, len(self))
        sa = self.a[index % len(self.a)]
        if self.transform.train:
            sb = self.b[int(rng.integers(len(self.b)))]
        else:
            sb = self.b[index % len(self.b)]
        a, b = read_sources([sa, sb], list(self.channels))
        (a,) = self.transform([a], rng, paths=[sa.path])
        (b,) = self.transform([b], rng, paths=[sb.path])
        return {"A": a, "B": b, "A_path": str(sa.path), "B_path": str(sb.path)}


class SingleDataset(FolderDataset):
    data_kind = "single"

    def __init__(self, sources: list[Source], channels: int, files: DatasetFiles,
                 transform: JointTransform, direction: str) -> None:
        super().__init__(files, transform, direction)
        self.sources = sources
        self.channels = channels

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, len(self))
        src = self.sources[index]
        (a,) = self.transform(read_sources([src], [self.channels]), rng, paths=[src.path])
        return {"A": a, "A_path": str(src.path)}


class ColorizationDataset(SingleDataset):
    """RGB images as (L, ab) in [-1, 1]: L / 50 - 1 and ab / 110 (see :mod:`gankit.data.lab`)."""

    data_kind = "colorization"

    def __getitem__(self, key: Any) -> dict[str, Any]:
        item = super().__getitem__(key)
        lightness, ab = rgb_to_model(item["A"])
        path = item["A_path"]
        return {"A": lightness, "B": ab, "path": path, "A_path": path, "B_path": path}


def _size_mismatch(a: Path, b: Path, size_a: Any, size_b: Any) -> str:
    def fmt(s: Any) -> str:
        return f"{s[-1]}x{s[-2]}" if len(s) > 2 else f"{s[0]}x{s[1]}"

    return (f"the two sides of a pair have different sizes: {a} is {fmt(size_a)} and {b} is "
            f"{fmt(size_b)}; resize one of them to match, or pass --skip-bad-files to leave "
            "the pair out")


def _sides(files: DatasetFiles, b_to_a: bool) -> tuple[list[Source], list[Source] | None, bool]:
    """(input side, other side or None, whether index i of both sides is a pair)."""
    if files.kind == "aligned":
        a = [Source(p, "left") for p in files.a]
        b = [Source(p, "right") for p in files.a]
    elif files.kind in ("paired", "unaligned"):
        a, b = [Source(p) for p in files.a], [Source(p) for p in files.b]
    else:
        return [Source(p) for p in files.a], None, False
    if b_to_a:
        a, b = b, a
    return a, b, files.kind != "unaligned"


class _Checker:
    """Collects the samples that cannot be used: raise them all together, or drop them."""

    def __init__(self, sizes: dict[Path, tuple[int, int]], transform: JointTransform) -> None:
        self.sizes = sizes
        self.transform = transform
        self.problems: list[str] = []

    def size(self, src: Source) -> tuple[int, int] | None:
        """The size of the image ``src`` after halving, or None if it cannot be used."""
        if src.path not in self.sizes:
            return None  # unreadable, already reported by the scan
        w, h = self.sizes[src.path]
        if src.half != "full":
            if w % 2:
                self.problems.append(_odd_width(src.path, w))
                return None
            w //= 2
        try:
            self.transform.output_size(w, h, src.path)
        except DataError as exc:
            self.problems.append(str(exc))
            return None
        return w, h

    def finish(self, skip: bool, total: int) -> None:
        self.problems = list(dict.fromkeys(self.problems))
        if not self.problems:
            return
        listing = "\n".join(f"  {p}" for p in self.problems[:_SHOWN])
        more = (f"\n  ... and {len(self.problems) - _SHOWN} more"
                if len(self.problems) > _SHOWN else "")
        summary = f"{len(self.problems)} of {total} samples cannot be used:\n{listing}{more}"
        if not skip:
            raise DataError(f"{summary}\n(or pass --skip-bad-files to leave them out)")
        log.warning("%s\nleaving them out (--skip-bad-files)", summary)


def build_dataset(
    cfg: DataConfig,
    *,
    pairing: Pairing,
    in_channels: int,
    out_channels: int,
    train: bool,
    size_multiple: int = 1,
) -> FolderDataset:
    """The dataset of ``cfg.data`` for a model that takes ``pairing`` input.

    Every file is decoded once up front (see :mod:`gankit.data.scan`): bad files, pair halves
    of different sizes and images too small for the crop raise one :class:`DataError` before
    training, or are left out with a warning when ``cfg.skip_bad_files`` is set.
    """
    if pairing not in PAIRINGS:
        raise ConfigError(f"unknown pairing {pairing!r}; use one of {', '.join(PAIRINGS)}")
    if pairing == "colorization":
        if (in_channels, out_channels) != (1, 2):
            raise ConfigError("colorization data is L (1 channel) -> ab (2 channels), got "
                              f"{in_channels} -> {out_channels} channels")
    else:
        for ch in (in_channels, out_channels):
            if ch not in (1, 3, 4):
                raise ConfigError(f"images are read with 1, 3 or 4 channels, not {ch}")
    transform = JointTransform(cfg, train, size_multiple)
    files = resolve(cfg)
    a, b, aligned = _sides(files, cfg.direction == "BtoA")
    n = cfg.max_items
    if n is not None and n < 1:
        raise ConfigError(f"max_items must be at least 1, not {n}")
    skip = cfg.skip_bad_files

    if pairing == "paired":
        if b is None or not aligned:
            raise DataError(
                f"{files.describe()}: this layout has no A-B pairs, which a paired model "
                "needs. Arrange the data as A|B images or as A/ and B/ folders with matching "
                "file names, or train an unpaired model (for example cyclegan)")
        pairs = list(zip(a, b, strict=True))[:n]
        sizes = scan_sizes([s.path for pair in pairs for s in pair], skip_bad=skip)
        check = _Checker(sizes, transform)
        kept = []
        for sa, sb in pairs:
            size_a, size_b = check.size(sa), check.size(sb)
            if size_a is None or size_b is None:
                continue
            if size_a != size_b:
                check.problems.append(_size_mismatch(sa.path, sb.path, size_a, size_b))
                continue
            kept.append((sa, sb))
        check.finish(skip, len(pairs))
        _nonempty(kept, files)
        dataset: FolderDataset = PairedDataset(kept, (in_channels, out_channels), files,
                                               transform, cfg.direction)
    elif pairing == "unpaired":
        if b is None:
            raise DataError(
                f"{files.describe()}: an unpaired model needs two sets of images, A and B; "
                "arrange them as FOLDER/trainA and FOLDER/trainB (or A/ and B/)")
        a, b = a[:n], b[:n]
        sizes = scan_sizes([s.path for s in a + b], skip_bad=skip)
        check = _Checker(sizes, transform)
        total = len(a) + len(b)
        a = [s for s in a if check.size(s) is not None]
        b = [s for s in b if check.size(s) is not None]
        check.finish(skip, total)
        _nonempty(a, files, "A")
        _nonempty(b, files, "B")
        dataset = UnpairedDataset(a, b, (in_channels, out_channels), files, transform,
                                  cfg.direction)
    else:
        # single: the input side; colorization: the target side (the colour images)
        chosen = b if pairing == "colorization" and b is not None else a
        chosen = chosen[:n]
        sizes = scan_sizes([s.path for s in chosen], skip_bad=skip)
        check = _Checker(sizes, transform)
        kept_sources = [s for s in chosen if check.size(s) is not None]
        check.finish(skip, len(chosen))
        _nonempty(kept_sources, files)
        if pairing == "colorization":
            dataset = ColorizationDataset(kept_sources, 3, files, transform, cfg.direction)
        else:
            dataset = SingleDataset(kept_sources, in_channels, files, transform, cfg.direction)
    log.info("%s", dataset.describe())
    return dataset


def _nonempty(items: list, files: DatasetFiles, side: str = "") -> None:
    if not items:
        which = f" on side {side}" if side else ""
        raise DataError(f"{files.describe()}: no usable images left{which} after leaving out "
                        "the bad files; fix or replace them")
