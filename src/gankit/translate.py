"""Translate files, folders or globs with a trained model and write an HTML index."""

from __future__ import annotations

import glob
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.data.image_io import (
    IMAGE_EXTENSIONS,
    array_to_tensor,
    convert_channels,
    load_array,
    read_image,
    save_image,
)
from gankit.errors import ConfigError, DataError
from gankit.models.translation import TranslationModel
from gankit.report.html import image_table

log = logging.getLogger(__name__)


@dataclass
class Item:
    path: Path
    name: str  # output name, relative to the output folder, without extension
    input: torch.Tensor
    target: torch.Tensor | None = None


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files, folders (searched recursively) and glob patterns -> (path, output name) pairs."""
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        text = str(raw)
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"no images found in folder {path}")
            found += [(p, str(p.relative_to(path).with_suffix(""))) for p in files]
        elif path.is_file():
            found.append((path, path.stem))
        elif any(ch in text for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(text, recursive=True)
                           if Path(p).suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"the pattern {text!r} matches no image files")
            found += [(p, p.stem) for p in files]
        else:
            raise DataError(f"input {text!r} does not exist; give image files, folders or globs")
    # Same names from different inputs get _2, _3, ...; never one that is already taken (a/x,
    # b/x and c/x_2 must not share x_2), nor one that differs only in case (macOS, Windows).
    taken: set[str] = set()
    unique = []
    for p, name in found:
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate.casefold())
        unique.append((p, candidate))
    return unique


def _load_item(
    model: TranslationModel, path: Path, name: str, aligned: bool, reverse: bool
) -> Item:
    in_channels, out_channels = model.io_channels(reverse)
    if not aligned:
        image = read_image(path, in_channels)
        return Item(path, name, image, model.implied_target(image))
    # An A|B pair, split at the middle, each half converted as training converts it. The input
    # half follows the training direction, and the other one with --reverse.
    pixels = load_array(path)
    width = pixels.shape[1]
    if width % 2:
        raise DataError(f"{path} is {width} pixels wide: an A|B pair needs an even width")
    source, target = pixels[:, : width // 2], pixels[:, width // 2 :]
    data_cfg = getattr(model, "data_config", None)
    if (data_cfg is not None and data_cfg.direction == "BtoA") != reverse:
        source, target = target, source
    return Item(path, name, array_to_tensor(convert_channels(source, in_channels)),
                array_to_tensor(convert_channels(target, out_channels)))


def translate_paths(
    model: TranslationModel,
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    reverse: bool = False,
    train_mode: bool | None = None,
    aligned: bool = False,
    bit_depth: int = 8,
) -> Path:
    """Translate every input image into ``out_dir``; returns the path of ``index.html``."""
    if aligned and model.pairing == "colorization":
        raise ConfigError(f"{model.name} translates whole colour images (its target is the "
                          "image itself): leave out --aligned")
    out_dir = Path(out_dir)
    pairs = expand_inputs(inputs)
    rows = []
    by_size: dict[tuple[int, ...], list[Item]] = defaultdict(list)
    for path, name in pairs:
        item = _load_item(model, path, name, aligned, reverse)
        by_size[tuple(item.input.shape)].append(item)
    for _shape, items in by_size.items():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            outputs = model.translate_tensor(
                torch.stack([i.input for i in chunk]), reverse=reverse, train_mode=train_mode
            ).cpu()
            for item, output in zip(chunk, outputs, strict=True):
                rows.append(_write_item(model, out_dir, item, output, bit_depth))
    rows.sort(key=lambda r: r["name"])
    columns = ["input", "output"] + (["target"] if any("target" in r for r in rows) else [])
    return image_table(out_dir / "index.html", f"gankit translate: {len(rows)} images",
                       rows, columns)


def _write_item(
    model: TranslationModel, out_dir: Path, item: Item, output: torch.Tensor, bit_depth: int
) -> dict[str, str]:
    save_image(output, out_dir / "outputs" / f"{item.name}.png", bit_depth=bit_depth)
    row = {"name": item.name, "output": f"outputs/{item.name}.png"}
    save_image(model.shown_input(item.input), out_dir / "inputs" / f"{item.name}.png")
    row["input"] = f"inputs/{item.name}.png"
    if item.target is not None:
        save_image(item.target, out_dir / "targets" / f"{item.name}.png")
        row["target"] = f"targets/{item.name}.png"
    return row
