"""Image sets for generative models: one image per item, with a class label when the data has one.

Sources, chosen by what ``--data`` points at:
  MNIST idx files   FOLDER with {train,t10k}-images-idx3-ubyte[.gz] (+ labels), or one
                    images file; labels 0..9 from the labels file beside it
  class folders     FOLDER[/PHASE]/CLASS/*.png: one sub-folder per class, labels in sorted
                    folder-name order
  image folder      FOLDER[/PHASE]/*.png (recursive): unlabelled

Image size and channel count come from the data: every image must have the same size (or use a
cropping ``--preprocess``) and the same channel count (or set ``--channels`` to convert them all).
Items are ``{"image": (C, H, W) in [-1, 1], "index": int}`` plus ``"label"`` for labelled data;
``dataset[(i, seed)]`` draws the sample's random flip/crop from ``seed`` as the folder datasets do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gankit.data.config import DataConfig
from gankit.data.datasets import parse_key
from gankit.data.download import MARKER
from gankit.data.idx import read_idx
from gankit.data.image_io import array_to_tensor, convert_channels, load_array, scale_array
from gankit.data.layouts import list_images, phase_base
from gankit.data.scan import scan_sizes
from gankit.data.transforms import JointTransform
from gankit.errors import DataError

log = logging.getLogger(__name__)

IDX_PHASES = {"train": "train", "test": "t10k", "t10k": "t10k"}
IDX_CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_CROP_HINT = "--preprocess resize_and_crop --load-size N --crop-size N"


@dataclass
class ImageSetInfo:
    """What a model needs to know about its data to build its networks."""

    channels: int
    size: int
    num_classes: int  # 0 for unlabelled data
    class_names: list[str] = field(default_factory=list)


class ImageSet(Dataset):
    """Base of the image sets: transform, labels and the description shown before training."""

    data_kind = "images"

    def __init__(self, labels: np.ndarray | None, class_names: list[str],
                 transform: JointTransform, source: str) -> None:
        self.labels = None if labels is None else np.asarray(labels, np.int64)
        self.class_names = class_names
        self.transform = transform
        self.source = source
        self.info: ImageSetInfo

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def _image(self, index: int) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, rng = parse_key(key, len(self))
        image, where = self._image(index)
        (image,) = self.transform([image], rng, paths=[where])
        item: dict[str, Any] = {"image": image, "index": index}
        if self.labels is not None:
            item["label"] = int(self.labels[index])
        return item

    def describe(self) -> str:
        i = self.info
        what = (f"{i.num_classes} classes" if i.num_classes else "unlabelled")
        return (f"{self.source}: {len(self)} images, {i.size}x{i.size}x{i.channels}, {what}, "
                f"{self.transform.describe()}")


class ArrayImageSet(ImageSet):
    """Images held in memory as uint8 (N, H, W, C): the idx datasets."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, class_names: list[str],
                 transform: JointTransform, source: str) -> None:
        super().__init__(labels, class_names, transform, source)
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, index: int) -> tuple[torch.Tensor, Any]:
        return array_to_tensor(scale_array(self.images[index])), f"{self.source}[{index}]"


class FolderImageSet(ImageSet):
    """Images read from files on access (with worker processes, in parallel)."""

    def __init__(self, paths: list[Path], channels: int, labels: np.ndarray | None,
                 class_names: list[str], transform: JointTransform, source: str) -> None:
        super().__init__(labels, class_names, transform, source)
        self.paths = paths
        self.channels = channels

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, index: int) -> tuple[torch.Tensor, Any]:
        path = self.paths[index]
        return array_to_tensor(convert_channels(load_array(path), self.channels)), path


def build_image_set(cfg: DataConfig, *, channels: int = 0, train: bool = True) -> ImageSet:
    """The image set ``cfg.data`` names (see the module docstring); ``channels`` 0 = the data's."""
    if not cfg.data:
        raise DataError("no data given: pass --data FOLDER (an image folder, one sub-folder per "
                        "class, or MNIST idx files; gankit data download mnist)")
    root = Path(cfg.data).expanduser()
    if not root.exists():
        raise DataError(f"--data {root} does not exist; get MNIST with gankit data download "
                        "mnist, or point --data at a folder of images")
    transform = JointTransform(cfg, train)
    idx_file = _idx_images(root, cfg.phase)
    if idx_file is not None:
        dataset: ImageSet = _idx_set(idx_file, cfg, channels, transform)
    else:
        dataset = _folder_set(root, cfg, channels, transform)
    log.info("%s", dataset.describe())
    return dataset


def _idx_images(root: Path, phase: str) -> Path | None:
    if root.is_file():
        if "idx" in root.name:
            return root
        raise DataError(f"--data {root} is a file; give a folder of images or MNIST idx files")
    found = sorted(root.glob("*-images-idx3-ubyte*"))
    if not found:
        return None
    prefix = IDX_PHASES.get(phase, phase)
    for name in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"):
        if (root / name).is_file():
            return root / name
    have = ", ".join(p.name for p in found)
    hint = " (the 60000 training images: gankit data download mnist)" if phase == "train" else ""
    other = [p for p, q in IDX_PHASES.items() if q != prefix and any(q in f.name for f in found)]
    use = f"; use --phase {other[0]} to train on the set that is there" if other else ""
    raise DataError(f"{root} has no {phase} images ({prefix}-images-idx3-ubyte[.gz]){hint}; "
                    f"found: {have}{use}")


def _idx_set(path: Path, cfg: DataConfig, channels: int, transform: JointTransform
             ) -> ArrayImageSet:
    images = read_idx(path)
    if images.ndim != 3:
        raise DataError(f"{path} holds an array of shape {images.shape}, not images (N, H, W)")
    labels_path = path.with_name(path.name.replace("-images-idx3-", "-labels-idx1-"))
    if not labels_path.is_file():
        alternative = labels_path.with_name(labels_path.name.removesuffix(".gz")) \
            if labels_path.suffix == ".gz" else labels_path.with_name(labels_path.name + ".gz")
        labels_path = alternative
    labels = None
    if labels_path.is_file():
        labels = read_idx(labels_path)
        if labels.shape != (len(images),):
            raise DataError(f"{labels_path} has {labels.shape} labels for {len(images)} images "
                            f"in {path}; the two files do not belong together")
    else:
        log.warning("no labels file beside %s: the images are unlabelled", path)
    # the classes of the whole file, so that --max-items keeps the model's class count
    names = _idx_class_names(path.parent, int(labels.max()) + 1) if labels is not None else []
    n = cfg.max_items
    images = images[:n, :, :, None]
    labels = None if labels is None else labels[:n]
    if channels not in (0, 1):
        images = np.repeat(images, channels, axis=3) if channels == 3 else \
            _unsupported_channels(channels)
    dataset = ArrayImageSet(images, labels, names, transform, str(path))
    w, h = transform.output_size(images.shape[2], images.shape[1], path)
    dataset.info = _info(images.shape[3], w, h, names, path)
    return dataset


def _idx_class_names(folder: Path, count: int) -> list[str]:
    """Class names of a dataset that ``gankit data download`` put in ``folder`` (Fashion-MNIST's
    clothing names), else the class numbers."""
    try:
        name = json.loads((folder / MARKER).read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    known = IDX_CLASS_NAMES.get(name or "", [])
    return list(known) if len(known) == count else [str(i) for i in range(count)]


def _unsupported_channels(channels: int) -> np.ndarray:
    raise DataError(f"--channels {channels}: images are read with 1 (gray) or 3 (RGB) channels")


def _folder_set(root: Path, cfg: DataConfig, channels: int, transform: JointTransform
                ) -> FolderImageSet:
    base = phase_base(root, cfg.phase)
    class_dirs = _class_folders(base)
    if class_dirs:
        names = [d.name for d in class_dirs]
        per_class = [list_images(d) for d in class_dirs]
        paths = [p for files in per_class for p in files]
        labels: np.ndarray | None = np.concatenate(
            [np.full(len(files), i) for i, files in enumerate(per_class)]).astype(np.int64)
    else:
        names, paths, labels = [], list_images(base), None
    if not paths:
        raise DataError(f"no images in {base}; give a folder of images, one sub-folder per "
                        "class for conditional models, or MNIST idx files")
    if cfg.max_items:
        keep = _spread(len(paths), cfg.max_items) if labels is not None else \
            np.arange(min(len(paths), cfg.max_items))
        paths = [paths[i] for i in keep]
        labels = None if labels is None else labels[keep]
    sizes = scan_sizes(paths, skip_bad=cfg.skip_bad_files)
    keep_mask = [p in sizes for p in paths]
    paths = [p for p, k in zip(paths, keep_mask, strict=True) if k]
    if labels is not None:
        labels = labels[np.asarray(keep_mask, bool)]
    if not paths:
        raise DataError(f"none of the images in {base} can be read (--skip-bad-files left them "
                        "all out); replace them or point --data at another folder")
    out_sizes = {transform.output_size(*sizes[p], p) for p in paths}
    if len(out_sizes) > 1:
        examples = _examples(paths, lambda p: transform.output_size(*sizes[p], p))
        raise DataError(f"{base}: the images have different sizes ({examples}); a generative "
                        f"model makes images of one size: resize them with {_CROP_HINT}")
    (w, h), = out_sizes
    if not channels:
        channels = _common_channels(paths, base)
    dataset = FolderImageSet(paths, channels, labels, names, transform, str(base))
    dataset.info = _info(channels, w, h, names, base)
    return dataset


def _class_folders(base: Path) -> list[Path]:
    """The class sub-folders of ``base``: at least two folders with images, none loose."""
    if any(p.is_file() and not p.name.startswith(".") for p in base.iterdir()
           if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")):
        return []
    dirs = sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    with_images = [d for d in dirs if list_images(d)]
    return with_images if len(with_images) >= 2 else []


def _spread(n: int, k: int) -> np.ndarray:
    """``k`` of ``n`` indices spread evenly, so --max-items keeps every class of sorted data."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def _channels_of(path: Path) -> int:
    with Image.open(path) as im:
        return 1 if im.mode in _GRAY_MODES else 3


def _common_channels(paths: list[Path], base: Path) -> int:
    counts = {p: _channels_of(p) for p in paths}
    kinds = set(counts.values())
    if len(kinds) > 1:
        gray = [p for p, c in counts.items() if c == 1]
        colour = [p for p, c in counts.items() if c == 3]
        raise DataError(
            f"{base} mixes {len(gray)} gray images (e.g. {gray[0]}) and {len(colour)} colour "
            f"images (e.g. {colour[0]}); pass --channels 3 to read them all as RGB, or "
            "--channels 1 for gray")
    return kinds.pop()


def _examples(paths: list[Path], size_of: Any) -> str:
    seen: dict[tuple[int, int], Path] = {}
    for p in paths:
        seen.setdefault(size_of(p), p)
    return ", ".join(f"{w}x{h} ({p.name})" for (w, h), p in list(seen.items())[:3])


def _info(channels: int, width: int, height: int, names: list[str], where: Any) -> ImageSetInfo:
    if width != height:
        raise DataError(f"{where}: the images are {width}x{height}; the generative models make "
                        f"square images: crop them with {_CROP_HINT}")
    return ImageSetInfo(channels=channels, size=width, num_classes=len(names),
                        class_names=list(names))
