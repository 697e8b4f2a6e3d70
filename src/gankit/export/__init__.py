"""Ship a trained model: ONNX and TorchScript exports of a generator, and releases.

>>> from gankit.export import export
>>> export("runs/demo", "onnx", "demo.onnx")           # dynamic batch, height and width
>>> export("runs/demo", "release", "demo-release/")    # safetensors + config.json
>>> gankit.load("demo-release/")                       # rebuilt like a checkpoint

Every export carries a :class:`~gankit.export.metadata.ModelContract`: pixel range, channels,
the size multiple, the inference mode and the size the model was trained at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gankit.errors import ConfigError
from gankit.export.metadata import ModelContract, contract_for, resolve_train_mode
from gankit.export.release import is_release, load_release_state, save_release
from gankit.models.base import GANModel

Format = Literal["onnx", "torchscript", "release"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "release")

__all__ = ["FORMATS", "ModelContract", "contract_for", "export", "is_release",
           "load_release_state", "save_release"]


def export(
    source: str | Path | GANModel,
    fmt: str,
    out: str | Path,
    *,
    reverse: bool = False,
    inference_mode: str | None = None,
    exporter: str = "torchscript",
    opset: int | None = None,
) -> Path:
    """Export a checkpoint, run folder, release or model to ``out`` in format ``fmt``.

    ``inference_mode`` (auto, train, eval; default: the model's own) chooses dropout and
    normalisation statistics as ``gankit translate --inference-mode`` does; a release keeps it
    as the model's setting. ``reverse`` exports CycleGAN's B to A generator. A generative
    model's ONNX or TorchScript file maps noise (and labels) to images
    (:mod:`gankit.export.generator`).
    """
    from gankit import api
    from gankit.models.generation import GenerationModel
    from gankit.models.translation import TranslationModel

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    model = source if isinstance(source, GANModel) else api.load(source, device="cpu")
    if fmt == "release":
        origin = {} if isinstance(source, GANModel) else {"file": Path(source).name}
        return save_release(model, out, source=origin, inference_mode=inference_mode)
    if isinstance(model, GenerationModel):  # noise (and labels) -> images
        from gankit.export.generator import export_generator

        return export_generator(model, fmt, out, reverse=reverse, inference_mode=inference_mode,
                                exporter=exporter, opset=opset)
    if not isinstance(model, TranslationModel):
        raise ConfigError(f"{model.name} neither translates nor generates images; it exports "
                          "as a release only (--format release)")
    train_mode = resolve_train_mode(model, inference_mode)
    contract = contract_for(model, reverse=reverse, train_mode=train_mode)
    if fmt == "onnx":
        from gankit.export.onnx import DEFAULT_OPSET, export_onnx

        return export_onnx(model, out, contract, exporter=exporter,  # type: ignore[arg-type]
                           opset=opset or DEFAULT_OPSET)
    if exporter != "torchscript" or opset is not None:
        raise ConfigError("--onnx-exporter and --opset apply to --format onnx only")
    from gankit.export.torchscript import export_torchscript

    return export_torchscript(model, out, contract)
