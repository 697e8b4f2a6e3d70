"""Find the image files of a dataset folder in one of four layouts.

  aligned    FOLDER[/PHASE]/**/*.png       each image is A|B side by side (pix2pix datasets)
  paired     FOLDER[/PHASE]/A/**, .../B/**  A and B files matched by name without extension
  unaligned  FOLDER/PHASEA/**, FOLDER/PHASEB/**   two unrelated sets (CycleGAN: trainA, trainB)
  single     FOLDER[/PHASE]/**              one set of images

PHASE is ``DataConfig.phase`` (train, val, test); FOLDER/PHASE is used when it exists.

``layout="auto"`` decides, in this order:
  1. FOLDER/{phase}A and FOLDER/{phase}B exist      -> unaligned
  2. BASE/A and BASE/B exist (BASE = FOLDER/PHASE if it exists, else FOLDER) -> paired
  3. BASE holds images: aligned if every inspected image (all of them, or 64 spread evenly
     over a large folder) has an even width within 2% of twice its height, else single.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from gankit.data.config import DataConfig
from gankit.data.image_io import IMAGE_EXTENSIONS, is_image_file
from gankit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

KINDS = ("aligned", "paired", "unaligned", "single")
PHASES = ("train", "val", "test")
_INSPECT = 64
_SHOWN = 5
LAYOUT_HELP = (
    "expected one of these layouts:\n"
    "  aligned    FOLDER[/PHASE]/*.jpg               each image is A|B side by side\n"
    "  paired     FOLDER[/PHASE]/A/*, FOLDER[/PHASE]/B/*   A and B matched by file name\n"
    "  unaligned  FOLDER/PHASEA/*, FOLDER/PHASEB/*  two unrelated sets (trainA/, trainB/)\n"
    "  single     FOLDER[/PHASE]/*                   one folder of images\n"
    "(PHASE is --phase: train, val or test). Get a public dataset with "
    "`gankit data download NAME`."
)


@dataclass
class DatasetFiles:
    """The files of a dataset. ``a``/``b``: paired -> partners at the same index; unaligned ->
    two independent lists; aligned and single -> ``a`` only."""

    kind: str
    root: Path
    a: list[Path]
    b: list[Path] = field(default_factory=list)
    a_dir: Path | None = None
    b_dir: Path | None = None

    def describe(self) -> str:
        if self.kind == "paired":
            return f"paired folders {self.a_dir} and {self.b_dir}: {len(self.a)} pairs"
        if self.kind == "unaligned":
            return (f"unaligned folders {self.a_dir} ({len(self.a)} images) and "
                    f"{self.b_dir} ({len(self.b)} images)")
        what = "A|B images" if self.kind == "aligned" else "images"
        return f"{self.kind} folder {self.root}: {len(self.a)} {what}"


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden names skipped), sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / n for n in filenames
                  if not n.startswith(".") and is_image_file(n)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def phase_base(root: Path, phase: str) -> Path:
    """FOLDER/PHASE if it exists, else FOLDER, refusing a folder of other phases only."""
    if phase and (root / phase).is_dir():
        return root / phase
    others = [p for p in PHASES if (root / p).is_dir()]
    if others:
        raise DataError(
            f"{root} has the phase folder(s) {', '.join(others)} but no {phase!r}; pass "
            f"--phase {others[0]}, or point --data at the folder to read")
    return root


def find_files(root: str | os.PathLike, layout: str = "auto", phase: str = "train",
               *, drop_unmatched: bool = False) -> DatasetFiles:
    """Resolve ``layout`` (auto-detecting it) and list the files of ``root``.

    ``drop_unmatched``: paired files without a partner are left out with a warning instead of
    raising a :class:`DataError`.
    """
    if layout not in ("auto", *KINDS):
        raise ConfigError(f"unknown layout {layout!r}; use auto, {', '.join(KINDS)}")
    if not str(root):
        raise DataError(f"no dataset folder given: pass --data FOLDER. {LAYOUT_HELP}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist; {LAYOUT_HELP}")
    if not root.is_dir():
        raise DataError(f"--data {root} is a file, not a folder; {LAYOUT_HELP}")
    if layout == "auto":
        layout = detect_layout(root, phase)
        log.info("detected the %s layout in %s", layout, root)
    if layout == "unaligned":
        a_dir, b_dir = root / f"{phase}A", root / f"{phase}B"
        for d in (a_dir, b_dir):
            if not d.is_dir():
                raise DataError(f"unaligned layout: folder {d} does not exist (found: "
                                f"{_listing(root)}); {LAYOUT_HELP}")
        return DatasetFiles("unaligned", root, _images(a_dir), _images(b_dir), a_dir, b_dir)
    base = phase_base(root, phase)
    if layout == "paired":
        a_dir, b_dir = base / "A", base / "B"
        for d in (a_dir, b_dir):
            if not d.is_dir():
                raise DataError(f"paired layout: folder {d} does not exist (found: "
                                f"{_listing(base)}); {LAYOUT_HELP}")
        a, b = match_by_stem(_images(a_dir), _images(b_dir), a_dir, b_dir, drop=drop_unmatched)
        return DatasetFiles("paired", base, a, b, a_dir, b_dir)
    return DatasetFiles(layout, base, _images(base), a_dir=base)


def detect_layout(root: Path, phase: str) -> str:
    """The layout of ``root`` by the rules in the module docstring."""
    if (root / f"{phase}A").is_dir() and (root / f"{phase}B").is_dir():
        return "unaligned"
    if not (root / phase).is_dir():
        sets = sorted(p.name[:-1] for p in root.glob("*A")
                      if p.is_dir() and (root / (p.name[:-1] + "B")).is_dir() and p.name[:-1])
        if sets:
            raise DataError(f"{root} has the unaligned set(s) {', '.join(sets)} (A and B "
                            f"folders) but no {phase}A/{phase}B; pass --phase {sets[0]}")
    base = phase_base(root, phase)
    if (base / "A").is_dir() and (base / "B").is_dir():
        return "paired"
    files = _images(base)
    return "aligned" if looks_aligned(files) else "single"


def looks_aligned(files: list[Path]) -> bool:
    """True if every inspected image is about twice as wide as high, with an even width."""
    if len(files) > _INSPECT:
        step = len(files) / _INSPECT
        files = [files[int(i * step)] for i in range(_INSPECT)]
    sizes = []
    for path in files:
        try:
            with Image.open(path) as im:
                sizes.append(im.size)
        except Exception:  # noqa: BLE001, S112 - unreadable files are reported by the scan
            continue
    return bool(sizes) and all(w % 2 == 0 and abs(w - 2 * h) <= 0.02 * w for w, h in sizes)


def match_by_stem(a: list[Path], b: list[Path], a_dir: Path, b_dir: Path, *, drop: bool
                  ) -> tuple[list[Path], list[Path]]:
    """Pair files of two folders by relative path without extension (a.png <-> a.jpg)."""
    a_keys, b_keys = _keyed(a, a_dir), _keyed(b, b_dir)
    only_a = [a_keys[k] for k in a_keys if k not in b_keys]
    only_b = [b_keys[k] for k in b_keys if k not in a_keys]
    if only_a or only_b:
        parts = []
        for side, missing, own, other in (("A", only_a, a_dir, b_dir),
                                          ("B", only_b, b_dir, a_dir)):
            if missing:
                names = ", ".join(p.relative_to(own).as_posix() for p in missing[:_SHOWN])
                more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
                parts.append(f"{len(missing)} {side} file(s) with no partner in {other}: "
                             f"{names}{more}")
        message = "; ".join(parts)
        if not drop:
            raise DataError(f"paired layout: {message}. A and B files are matched by name "
                            "(without extension): add or rename the partners, or pass "
                            "--skip-bad-files to leave unmatched files out")
        log.warning("paired layout: %s; leaving them out (--skip-bad-files)", message)
    keys = [k for k in a_keys if k in b_keys]
    return [a_keys[k] for k in keys], [b_keys[k] for k in keys]


def _keyed(files: list[Path], folder: Path) -> dict[str, Path]:
    keyed: dict[str, Path] = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DataError(f"{keyed[key]} and {path} have the same name; paired files are "
                            "matched by name without extension, so keep only one of them")
        keyed[key] = path
    return keyed


def _images(folder: Path) -> list[Path]:
    files = list_images(folder)
    if not files:
        kinds = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise DataError(f"no images ({kinds}) found in {folder} (searched recursively; "
                        f"found: {_listing(folder)}); {LAYOUT_HELP}")
    return files


def _listing(folder: Path) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError:
        return "nothing"
    if not names:
        return "nothing, the folder is empty"
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def resolve(cfg: DataConfig) -> DatasetFiles:
    """:func:`find_files` with the options of ``cfg``."""
    return find_files(cfg.data, cfg.layout, cfg.phase, drop_unmatched=cfg.skip_bad_files)
