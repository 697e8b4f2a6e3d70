"""TorchScript export: the traced inference graph, with the contract in ``_extra_files``.

Tracing records the batch, height and width as symbols (there is no size-dependent Python in
the generators while tracing), so one file takes any batch and any multiple of the network's
``size_multiple``. torch 2.13 marks ``torch.jit`` as deprecated in favour of torch.export;
TorchScript files still load with plain ``torch.jit.load`` in C++ (libtorch) and Python, which
is why it is offered, but ONNX is the format to prefer for new deployments.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import torch

from gankit.atomic import write_bytes_atomic
from gankit.errors import CheckpointError
from gankit.export.graph import InferenceGraph, example_input
from gankit.export.metadata import GeneratorContract, ModelContract, contract_from_dict
from gankit.models.translation import TranslationModel

log = logging.getLogger(__name__)

EXTRA_FILE = "gankit.json"


def torchscript_bytes(model: TranslationModel, contract: ModelContract) -> bytes:
    graph = InferenceGraph(model, reverse=contract.reverse,
                           train_mode=contract.inference_mode == "train")
    example = example_input(contract.in_channels, contract.min_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's deprecation notice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # check_trace would run the graph again and compare: with dropout on, that differs.
        traced = torch.jit.trace(graph.set_modes(), (example,), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer,
                       _extra_files={EXTRA_FILE: json.dumps(contract.to_dict(), indent=2)})
    return buffer.getvalue()


def export_torchscript(model: TranslationModel, out: str | Path, contract: ModelContract) -> Path:
    """Write the TorchScript file atomically; returns its path."""
    out = Path(out)
    data = torchscript_bytes(model, contract)
    write_bytes_atomic(out, data)
    log.info("wrote %s (%.1f MB, TorchScript)", out, len(data) / 1e6)
    return out


def load_torchscript(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[torch.jit.ScriptModule, ModelContract | GeneratorContract]:
    """Load a gankit TorchScript export and its contract (a generator's for a generative model)."""
    extra = {EXTRA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
        except Exception as exc:  # noqa: BLE001 - any failure means "not a TorchScript file"
            raise CheckpointError(
                f"{path} is not a readable TorchScript file ({type(exc).__name__}); give a "
                "file written by gankit export --format torchscript"
            ) from None
    if not extra[EXTRA_FILE]:
        raise CheckpointError(f"{path} is a TorchScript file without gankit metadata; export "
                              "it with gankit export --format torchscript")
    try:
        values = json.loads(extra[EXTRA_FILE])
    except ValueError:
        raise CheckpointError(f"{path}: its gankit metadata is not JSON; export it "
                              "again") from None
    module.eval()
    return module, contract_from_dict(values, source=str(path))


def is_torchscript(path: str | Path) -> bool:
    """A zip archive holding TorchScript code (a checkpoint from torch.save holds none)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.endswith("/constants.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
