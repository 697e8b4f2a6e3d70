"""ONNX export with dynamic batch, height and width, and the contract in metadata_props.

Exporter: torch 2.13's default (``dynamo=True``, torch.export based) needs the ``onnxscript``
package, took about 10 s for a 32 px U-Net here and wants each size constraint spelled out;
the TorchScript-based exporter (``dynamo=False``) is part of torch, takes about half a second,
keeps the batch, height and width symbolic through ``dynamic_axes`` and matches eager PyTorch
within 1e-6. It is the default; ``exporter="dynamo"`` uses the new one where onnxscript is
installed. Both are checked by the same parity tests (tests/test_export.py).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from gankit.atomic import write_bytes_atomic
from gankit.errors import ConfigError
from gankit.export.graph import InferenceGraph, example_input
from gankit.export.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    GeneratorContract,
    ModelContract,
    contract_from_strings,
)
from gankit.models.translation import TranslationModel

if TYPE_CHECKING:
    from onnx import ModelProto

log = logging.getLogger(__name__)

Exporter = Literal["torchscript", "dynamo"]
DEFAULT_OPSET = 17  # reflect Pad, InstanceNormalization, RandomUniformLike; ORT runs it


def onnx_bytes(
    model: TranslationModel,
    contract: ModelContract,
    *,
    exporter: Exporter = "torchscript",
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """The serialised ONNX model of ``model``'s generator as ``contract`` describes it."""

    graph = InferenceGraph(model, reverse=contract.reverse,
                           train_mode=contract.inference_mode == "train", mask_dropout=True)
    example = example_input(contract.in_channels, contract.min_size)
    if exporter == "torchscript":
        proto = _export_torchscript(graph, example, opset, contract.output_scale)
    elif exporter == "dynamo":
        proto = _export_dynamo(graph, example, contract, opset)
    else:
        raise ConfigError(f"unknown ONNX exporter {exporter!r}; use torchscript or dynamo")
    return finished_bytes(proto, contract)


def finished_bytes(proto: Any, contract: Any) -> bytes:
    """The model file: ``proto`` with ``contract`` as its metadata and description, checked."""
    import onnx

    del proto.metadata_props[:]
    for key, value in contract.to_strings().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = contract.describe()
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _export_torchscript(
    graph: InferenceGraph, example: torch.Tensor, opset: int, scale: int = 1
) -> ModelProto:
    import onnx

    axes = {0: "batch", 2: "height", 3: "width"}
    # A super-resolution output is larger than the input: other names for its sides.
    out_axes = axes if scale == 1 else {0: "batch", 2: "out_height", 3: "out_width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter's notice that it is the legacy one, and tracer notes about constants
        # (the Lab matrices of colorization) that are constants indeed.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # InstanceNorm always uses the statistics of its input, in either mode.
        warnings.filterwarnings("ignore", message=".*ONNX export mode is set to.*")
        warnings.filterwarnings("ignore", message=".*Constant folding.*")  # ReflectionPad
        torch.onnx.export(
            graph.set_modes(), (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: out_axes},
        )
    return onnx.load_from_string(buffer.getvalue())


def _export_dynamo(
    graph: InferenceGraph, example: torch.Tensor, contract: ModelContract, opset: int
) -> ModelProto:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("the dynamo ONNX exporter needs the onnxscript package "
                          "(pip install onnxscript), or use --onnx-exporter torchscript") from None
    from torch.export import Dim

    m = contract.size_multiple
    low = max(1, contract.min_size // m)
    shapes = {"images": {0: Dim("batch", min=1), 2: m * Dim("height_blocks", min=low),
                         3: m * Dim("width_blocks", min=low)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        program = torch.onnx.export(
            graph.set_modes(), (example,), dynamo=True, opset_version=max(opset, 18),
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=shapes,
            verbose=False,
        )
    return program.model_proto


def export_onnx(
    model: TranslationModel,
    out: str | Path,
    contract: ModelContract,
    *,
    exporter: Exporter = "torchscript",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write the ONNX file atomically; returns its path."""
    out = Path(out)
    data = onnx_bytes(model, contract, exporter=exporter, opset=opset)
    write_bytes_atomic(out, data)
    log.info("wrote %s (%.1f MB, %s exporter, opset %d)", out, len(data) / 1e6, exporter, opset)
    return out


def read_onnx_contract(path: str | Path) -> ModelContract | GeneratorContract:
    """The gankit contract stored in an ONNX file's metadata_props (a generator's for a
    generative model)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    return contract_from_strings(props, source=str(path))
