"""Inference backends for the server: a gankit model (torch), a TorchScript export, or an
ONNX file (onnxruntime). Each runs one direction of one generator on batches of images;
generative models (noise -> images) get the backends of :mod:`gankit.serve.sampling`.

Every backend takes images of any size: they are padded at the bottom and right (reflection,
replication where an axis is too short to reflect) up to the network's size multiple and
smallest size, run, and cropped back, as ``gankit translate`` does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gankit.errors import CheckpointError, ConfigError
from gankit.export.metadata import (
    GeneratorContract,
    ModelContract,
    contract_for,
    contract_from_strings,
    resolve_train_mode,
)

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_for(x: torch.Tensor, multiple: int, min_size: int) -> torch.Tensor:
    """Pad NCHW ``x`` at the bottom and right to sides that are multiples of ``multiple`` and
    at least ``min_size``."""
    h, w = x.shape[-2:]
    for dim, side in ((-2, h), (-1, w)):
        amount = _round_up(max(side, min_size), multiple) - side
        if amount == 0:
            continue
        pad = (0, amount, 0, 0) if dim == -1 else (0, 0, 0, amount)
        mode = "reflect" if amount < x.shape[dim] else "replicate"
        x = F.pad(x, pad, mode=mode)
    return x


class Backend:
    """Runs a generator; subclasses implement :meth:`run` on padded batches."""

    kind = "base"

    def __init__(self, contract: ModelContract, source: str) -> None:
        self.contract = contract
        self.source = source

    def run(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1], any H and W -> outputs of the same height and width
        (times the contract's ``output_scale``: super-resolution)."""
        c = self.contract
        h, w = images.shape[-2:]
        out = self.run(pad_for(images.float(), c.size_multiple, c.min_size))
        s = c.output_scale
        return out[..., :h * s, :w * s].clamp(-1.0, 1.0).cpu()

    def info(self) -> dict[str, Any]:
        return {"backend": self.kind, "source": Path(self.source).name, **self.contract.to_dict()}


class TorchModelBackend(Backend):
    """A gankit model in PyTorch (checkpoint, run folder or release)."""

    kind = "torch"

    def __init__(self, model: Any, contract: ModelContract, source: str) -> None:
        super().__init__(contract, source)
        self.model = model
        self.train_mode = contract.inference_mode == "train"

    def run(self, x: torch.Tensor) -> torch.Tensor:
        # translate_tensor runs train-mode inference one image at a time, as gankit does.
        return self.model.translate_tensor(x, reverse=self.contract.reverse,
                                           train_mode=self.train_mode)


class TorchScriptBackend(Backend):
    kind = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, contract: ModelContract, source: str,
                 device: torch.device) -> None:
        super().__init__(contract, source)
        self.module = module
        self.device = device

    def run(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x.to(self.device))


class OnnxBackend(Backend):
    kind = "onnxruntime"

    def __init__(self, model: str | bytes, contract: ModelContract | None, source: str) -> None:
        """``contract`` None reads it from the model's metadata (no ``onnx`` package needed)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(model, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CheckpointError(f"{source} is not a readable ONNX model "
                                  f"({type(exc).__name__}: {str(exc)[:160]}); export it again "
                                  "with gankit export --format onnx") from None
        if contract is None:
            props = self.session.get_modelmeta().custom_metadata_map
            contract = contract_from_strings(props, source=source)  # type: ignore[assignment]
        super().__init__(contract, source)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        c = self.contract
        (out,) = self.session.run([c.output_name], {c.input_name: x.numpy()})
        return torch.from_numpy(out)


def load_backend(
    path: str | Path,
    *,
    backend: str = "auto",
    reverse: bool = False,
    inference_mode: str | None = None,
    device: str = "auto",
) -> Backend:
    """A backend for a checkpoint, run folder, release, ``.onnx`` or TorchScript file.

    ``backend="onnxruntime"`` with a checkpoint or release exports it to ONNX in memory.
    """
    from gankit.export.torchscript import is_torchscript, load_torchscript
    from gankit.train.runtime import pick_device

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; give a checkpoint, run folder, release, "
                              ".onnx or TorchScript file")
    source = str(path)
    if path.is_file() and path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ConfigError(f"{path} is an ONNX file: serve it with --backend onnxruntime "
                              "(or auto)")
        runner = OnnxBackend(str(path), None, source)
        if isinstance(runner.contract, GeneratorContract):  # noise -> images
            from gankit.export.generator import check_sampling_options
            from gankit.serve.sampling import OnnxGeneratorBackend

            check_sampling_options(runner.contract.model, reverse, inference_mode)
            return OnnxGeneratorBackend(runner)
        _check_fixed(runner.contract, path, reverse, inference_mode)
        return runner
    if path.is_file() and is_torchscript(path):
        if backend == "onnxruntime":
            raise ConfigError(f"{path} is a TorchScript file: serve it with --backend torch "
                              "(or auto), or export the checkpoint to ONNX")
        dev = pick_device(device)
        module, contract = load_torchscript(path, map_location=dev)
        if isinstance(contract, GeneratorContract):  # noise -> images
            from gankit.export.generator import check_sampling_options
            from gankit.serve.sampling import TorchScriptGeneratorBackend

            check_sampling_options(contract.model, reverse, inference_mode)
            return TorchScriptGeneratorBackend(module, contract, source, dev)
        contract = _check_fixed(contract, path, reverse, inference_mode)
        return TorchScriptBackend(module, contract, source, dev)

    from gankit import api
    from gankit.models.generation import GenerationModel
    from gankit.models.translation import TranslationModel

    model = api.load(path, device="cpu" if backend == "onnxruntime" else device)
    if isinstance(model, GenerationModel):  # POST /sample
        from gankit.serve.sampling import backend_for_model

        return backend_for_model(model, backend=backend, source=source, reverse=reverse,
                                 inference_mode=inference_mode)
    if not isinstance(model, TranslationModel):
        raise ConfigError(f"{path} holds a {model.name} model, which neither translates nor "
                          "generates images; gankit serve has nothing to serve for it")
    train_mode = resolve_train_mode(model, inference_mode)
    contract = contract_for(model, reverse=reverse, train_mode=train_mode)
    if backend == "onnxruntime":
        from gankit.export.onnx import onnx_bytes

        return OnnxBackend(onnx_bytes(model, contract), contract, source)
    return TorchModelBackend(model, contract, source)


def _check_fixed(
    contract: ModelContract, path: Path, reverse: bool, inference_mode: str | None
) -> ModelContract:
    """An export holds one direction and one mode; asking for another is an error."""
    if reverse != contract.reverse:
        raise ConfigError(
            f"{path} was exported {'with' if contract.reverse else 'without'} --reverse; "
            f"export the checkpoint again {'without' if contract.reverse else 'with'} "
            "--reverse, or serve the checkpoint itself"
        )
    if inference_mode not in (None, "auto", contract.inference_mode):
        raise ConfigError(
            f"{path} was exported in {contract.inference_mode} mode; export the checkpoint "
            f"again with --inference-mode {inference_mode}, or serve the checkpoint itself"
        )
    return contract
