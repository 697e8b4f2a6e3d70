"""``gankit data blend DIGITS --backgrounds PHOTOS --out DIR``: a colour target domain made the
way MNIST-M was made.

Ganin and Lempitsky (2015) built MNIST-M by blending each MNIST digit over a patch cut at a
random place from a random colour photo of BSDS500: ``out = |patch - digit|`` per channel, so
the background keeps the photo's colours and texture and the stroke shows them inverted. The
pixel-level domain adaptation papers (PixelDA, Bousmalis et al. 2017) adapt MNIST to it. The
BSDS500 photos cannot be downloaded everywhere; this command does the same with any folder of
photos (facades, emoji, your own).

- ``DIGITS``: MNIST idx files (``--phase test`` for the t10k files), class folders
  (``DIGITS/0/*.png`` ...) or a folder of images: read as gray, white strokes on black
  (``--invert`` for black on white), resized to ``--size`` if given.
- Each digit ``i`` gets its photo and its crop from ``numpy.random.default_rng([seed, i])``: the
  output is the same for the same seed whatever ``--start``/``--count`` select, and a stopped run
  continues with ``--skip-existing``.
- Photos smaller than the digits are enlarged (short side to the digit size) and reported;
  unreadable ones are reported and left out.
- ``--test-fraction F`` writes ``DIR/train`` and ``DIR/test``: a seeded share F of the digits
  goes to test, blended onto a disjoint share F of the photos (when there are at least two).
- Output: ``DIR[/PHASE]/CLASS/NAME.png`` (RGB) with the digits' labels as class folders, kept
  for evaluation only (a domain-adaptation model reads the folder without them), or
  ``DIR[/PHASE]/NAME.png`` for unlabelled digits; and ``DIR/blend.json`` with the settings.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gankit.atomic import write_bytes_atomic
from gankit.data.config import DataConfig
from gankit.data.image_io import convert_channels
from gankit.data.layouts import list_images, phase_base
from gankit.data.tools.common import (
    ToolReport,
    done_before,
    input_images,
    progress,
    read,
    resize_array,
    write,
)
from gankit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BLEND_METHOD = "|patch - digit| per channel (Ganin and Lempitsky 2015, MNIST-M)"


@dataclass
class Digits:
    """The digits of a source: an image set read on access, labels (or None), output names."""

    dataset: Any
    labels: np.ndarray | None
    class_names: list[str]
    names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.names)

    def image(self, index: int) -> np.ndarray:
        """Digit ``index`` as a gray (H, W) array in [0, 1]."""
        return ((self.dataset[index]["image"][0].numpy() + 1.0) * 0.5).clip(0.0, 1.0)


def read_digits(digits: str | Path, *, phase: str = "train", size: int | None = None,
                report: ToolReport | None = None) -> Digits:
    """The digits of ``digits`` (MNIST idx files, class folders or an image folder), read as
    gray; unreadable files are reported (``report``) and left out."""
    from gankit.data.image_sets import ArrayImageSet, FolderImageSet, build_image_set

    root = Path(digits).expanduser()
    resize = size is not None
    cfg = DataConfig(data=str(root), phase=phase, preprocess="resize_and_crop" if resize
                     else "none", load_size=size or 1, crop_size=size or 1, flip=False,
                     skip_bad_files=True)
    try:
        dataset = build_image_set(cfg, channels=1, train=False)
    except DataError as exc:
        if "different sizes" in str(exc):
            raise DataError(f"{exc}; or give gankit data blend a --size") from None
        raise
    if isinstance(dataset, FolderImageSet):
        base = phase_base(root, phase)
        kept = set(dataset.paths)
        for path in list_images(base):
            if path not in kept and report is not None:
                report.skip(path, "not a readable image")
        names = [p.relative_to(base).with_suffix("").as_posix() for p in dataset.paths]
        if dataset.labels is not None:  # CLASS/NAME: the class folder is written anyway
            names = [n.split("/", 1)[1] if "/" in n else n for n in names]
        names = [n.replace("/", "_") for n in names]
    else:
        assert isinstance(dataset, ArrayImageSet)
        width = max(5, len(str(len(dataset) - 1)))
        names = [f"{i:0{width}d}" for i in range(len(dataset))]
    return Digits(dataset, dataset.labels, list(dataset.class_names), names, dataset.source)


def read_backgrounds(folders: Sequence[str | Path], size: int, report: ToolReport,
                     show_progress: bool = False) -> tuple[list[np.ndarray], list[Path]]:
    """Every readable photo under ``folders`` as RGB uint8 (HxWx3), at least ``size`` on its
    short side (smaller ones are enlarged, and counted in the report)."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    if not folders:
        raise ConfigError("give at least one folder of background photos (--backgrounds DIR)")
    photos: list[np.ndarray] = []
    paths: list[Path] = []
    enlarged = 0
    files = [f for folder in folders for f in input_images(folder, "backgrounds")[1]]
    for path in progress(files, len(files), "backgrounds", show_progress):
        arr = read(path, report)
        if arr is None:
            continue
        arr = convert_channels(arr, 3)
        h, w = arr.shape[:2]
        if min(h, w) < size:
            scale = size / min(h, w)
            arr = resize_array(arr, max(size, math.ceil(h * scale)),
                               max(size, math.ceil(w * scale)))
            enlarged += 1
        photos.append(np.rint(arr * 255.0).astype(np.uint8))
        paths.append(path)
    if not photos:
        raise DataError(f"none of the {len(files)} files under {', '.join(map(str, folders))} "
                        "is a readable image; give a folder of photos")
    if enlarged:
        report.notes.append(f"{enlarged} background photo(s) smaller than {size} px were "
                            "enlarged to it")
    return photos, paths


def blend(digit: np.ndarray, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``|patch - digit|`` per channel: ``digit`` (H, W) in [0, 1], ``photo`` uint8 (h, w, 3)
    at least as large; the patch is cut at a place drawn from ``rng``."""
    h, w = digit.shape
    top = int(rng.integers(0, photo.shape[0] - h + 1))
    left = int(rng.integers(0, photo.shape[1] - w + 1))
    patch = photo[top:top + h, left:left + w].astype(np.float32) / 255.0
    return np.abs(patch - digit[..., None])


def split(n: int, k: int, seed: int, salt: int) -> np.ndarray:
    """A boolean mask of ``n`` items with ``k`` of them True, chosen by ``seed``."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng([seed, salt]).permutation(n)[:k]] = True
    return mask


def blend_digits(
    digits: str | Path,
    backgrounds: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    size: int | None = None,
    phase: str = "train",
    start: int = 0,
    count: int | None = None,
    test_fraction: float = 0.0,
    seed: int = 0,
    invert: bool = False,
    skip_existing: bool = False,
    show_progress: bool = True,
) -> ToolReport:
    """Blend digits ``start .. start + count`` of ``digits`` onto random crops of the photos
    under ``backgrounds`` and write them under ``out_dir`` (see the module docstring)."""
    if size is not None and size < 1:
        raise ConfigError(f"--size must be at least 1, not {size}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be in [0, 1), not {test_fraction}")
    if start < 0 or (count is not None and count < 1):
        raise ConfigError("--start must be at least 0 and --count at least 1")
    out_dir = Path(out_dir)
    report = ToolReport("blend", out_dir)
    found = read_digits(digits, phase=phase, size=size, report=report)
    stop = len(found) if count is None else min(len(found), start + count)
    if start >= stop:
        raise ConfigError(f"--start {start} is past the {len(found)} digits of {found.source}")
    height, side = found.image(start).shape
    if height != side:
        raise DataError(f"the digits of {found.source} are {side}x{height}, not square; pass "
                        "--size N")
    photos, photo_paths = read_backgrounds(
        [backgrounds] if isinstance(backgrounds, (str, Path)) else list(backgrounds), side,
        report, show_progress)

    indices = np.arange(start, stop)
    test_digit = split(len(indices), round(test_fraction * len(indices)), seed, 1)
    # the test digits' photos: the same share of the photos, at least one, never all of them
    n_photos = min(len(photos) - 1, max(1, round(test_fraction * len(photos))))
    test_photo = split(len(photos), n_photos if test_fraction else 0, seed, 2)
    pools = {False: np.flatnonzero(~test_photo), True: np.flatnonzero(test_photo)}
    if test_fraction and len(photos) < 2:
        pools[True] = pools[False]
        report.notes.append("one background photo only: train and test digits share it")

    counts = {"train": 0, "test": 0}
    iterator = zip(indices.tolist(), test_digit.tolist(), strict=True)
    for i, is_test in progress(iterator, len(indices), "blend", show_progress):
        where = out_dir / ("test" if is_test else "train") if test_fraction else out_dir
        if found.labels is not None:
            where = where / found.class_names[int(found.labels[i])]
        dest = where / f"{found.names[i]}.png"
        counts["test" if is_test else "train"] += 1
        if done_before(dest, skip_existing, report):
            continue
        digit = found.image(i)
        if invert:
            digit = 1.0 - digit
        rng = np.random.default_rng([seed, i])
        pool = pools[bool(is_test)]
        photo = photos[int(pool[rng.integers(len(pool))])]
        report.written.append(write(blend(digit, photo, rng), dest))

    report.counts[f"digits {start}..{stop - 1} of {found.source}"] = len(indices)
    report.counts["background photos"] = len(photos)
    if test_fraction:
        report.counts["train digits"] = counts["train"]
        report.counts["test digits (on photos of their own)"] = counts["test"]
    report.notes.append(
        f"{side}x{side} RGB, {BLEND_METHOD}; "
        + ("labels as class folders (for evaluation only)" if found.labels is not None
           else "no labels"))
    settings = {
        "method": BLEND_METHOD, "digits": str(digits), "phase": phase, "size": side,
        "start": start, "stop": stop, "test_fraction": test_fraction, "seed": seed,
        "invert": invert, "backgrounds": [str(p) for p in photo_paths],
        "test_backgrounds": [str(photo_paths[j]) for j in np.flatnonzero(test_photo)]
        if test_fraction else [],
        "classes": found.class_names,
    }
    write_bytes_atomic(out_dir / "blend.json", (json.dumps(settings, indent=1) + "\n").encode())
    return report
