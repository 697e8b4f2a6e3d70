"""ONNX and TorchScript exports of a generative model: noise (and labels) -> images.

The exported graph is what :meth:`GenerationModel.sample` computes for given noise, in eval
mode: ``z`` float32 (N, latent_dim), for conditional models also ``labels`` int64 (N,), to
``images`` float32 (N, C, H, W) clamped to [-1, 1]. The batch is dynamic; the image size is
the model's. Drawing z from the model's prior is left to the caller (:func:`draw_noise` does
it as the model does, so a seed gives the same images in every backend); the
:class:`~gankit.export.metadata.GeneratorContract` in the file says which prior it is.

Only the networks that sampling runs go into the graph: they are found by running the model's
``generate`` once with hooks on its networks, so the discriminators (and AAE's encoder) stay
out of the file whatever the model calls them.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.atomic import write_bytes_atomic
from gankit.errors import CheckpointError, ConfigError
from gankit.export.metadata import GeneratorContract, generator_contract_for
from gankit.export.onnx import finished_bytes

log = logging.getLogger(__name__)

EXAMPLE_BATCH = 3  # not 0 or 1, which tracers may take for constants


def check_sampling_options(name: str, reverse: bool = False,
                           inference_mode: str | None = None) -> None:
    """A clear error for translation-only options given for a generative model."""
    if reverse:
        raise ConfigError(f"--reverse chooses CycleGAN's B to A generator; {name} is a "
                          "generative model with one generator: leave --reverse out")
    if inference_mode not in (None, "auto", "eval"):
        raise ConfigError(f"{name} samples in eval mode (as gankit sample does); --inference-mode "
                          f"{inference_mode} applies to translation models: leave it out")


@torch.no_grad()
def sampling_networks(model: Any) -> list[str]:
    """The names of ``model``'s networks that ``generate`` runs (found by running it once)."""
    used: list[str] = []
    handles = [m.register_forward_pre_hook(lambda _m, _a, n=name: used.append(n))
               for name, child in model.named_children() for m in child.modules()]
    z, labels = example_inputs(model)
    try:
        with model.inference(train_mode=False):
            model.generate(z.to(model.device), None if labels is None else labels.to(model.device))
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(used))


def example_inputs(model: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(EXAMPLE_BATCH, model.config.latent_dim, generator=gen)
    labels = (torch.arange(EXAMPLE_BATCH) % model.config.num_classes
              if model.conditional else None)
    return z, labels


class SamplingGraph(nn.Module):
    """``(z[, labels]) -> generate -> float -> clamp(-1, 1)``, on copies of the sampling
    networks only, in eval mode, on the CPU."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        names = sampling_networks(model)
        # A shallow copy of the model whose only networks are deep copies of those generate()
        # runs: generate() itself (labels to one-hot, reshapes) is traced as the model has it.
        shell = copy.copy(model)
        shell._modules = {n: copy.deepcopy(getattr(model, n)).cpu() for n in names}
        # Tensors of the model itself (none in gankit's models) are kept, as copies.
        shell._parameters = {k: None if v is None else nn.Parameter(v.detach().clone())
                             for k, v in model._parameters.items()}
        shell._buffers = {k: None if v is None else v.detach().clone()
                          for k, v in model._buffers.items()}
        for p in shell.parameters():
            p.requires_grad_(False)
        self.sampler = shell
        self.conditional = bool(model.conditional)
        self.eval()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.sampler.generate(z, labels if self.conditional else None).float().clamp(
            -1.0, 1.0)


def _trace_args(model: Any) -> tuple[torch.Tensor, ...]:
    z, labels = example_inputs(model)
    return (z,) if labels is None else (z, labels)


def _io_names(contract: GeneratorContract) -> tuple[list[str], list[str]]:
    inputs = [contract.input_name] + ([contract.label_name] if contract.conditional else [])
    return inputs, [contract.output_name]


def generator_onnx_bytes(
    model: Any, contract: GeneratorContract, *, exporter: str = "torchscript",
    opset: int | None = None,
) -> bytes:
    """The serialised ONNX model of ``model``'s sampling graph, ``contract`` in its metadata."""
    import onnx

    from gankit.export.onnx import DEFAULT_OPSET

    opset = opset or DEFAULT_OPSET
    graph = SamplingGraph(model)
    args = _trace_args(model)
    inputs, outputs = _io_names(contract)
    if exporter == "torchscript":
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter's notice
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(graph.eval(), args, buffer, dynamo=False, opset_version=opset,
                              input_names=inputs, output_names=outputs,
                              dynamic_axes={name: {0: "batch"} for name in inputs + outputs})
        proto = onnx.load_from_string(buffer.getvalue())
    elif exporter == "dynamo":
        proto = _export_dynamo(graph, args, inputs, outputs, opset)
    else:
        raise ConfigError(f"unknown ONNX exporter {exporter!r}; use torchscript or dynamo")
    return finished_bytes(proto, contract)


def _export_dynamo(graph: SamplingGraph, args: tuple[torch.Tensor, ...], inputs: list[str],
                   outputs: list[str], opset: int) -> Any:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("the dynamo ONNX exporter needs the onnxscript package "
                          "(pip install onnxscript), or use --onnx-exporter torchscript") from None
    from torch.export import Dim

    batch = Dim("batch", min=1)
    shapes = ({0: batch},) * len(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        program = torch.onnx.export(graph.eval(), args, dynamo=True,
                                    opset_version=max(opset, 18), input_names=inputs,
                                    output_names=outputs, dynamic_shapes=shapes, verbose=False)
    return program.model_proto


def generator_torchscript_bytes(model: Any, contract: GeneratorContract) -> bytes:
    from gankit.export.torchscript import EXTRA_FILE

    graph = SamplingGraph(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's deprecation notice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph.eval(), _trace_args(model))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer,
                       _extra_files={EXTRA_FILE: json.dumps(contract.to_dict(), indent=2)})
    return buffer.getvalue()


def export_generator(
    model: Any,
    fmt: str,
    out: str | Path,
    *,
    reverse: bool = False,
    inference_mode: str | None = None,
    exporter: str = "torchscript",
    opset: int | None = None,
) -> Path:
    """Write ``model``'s generator as ONNX or TorchScript (atomically); returns the path."""
    check_sampling_options(model.name, reverse, inference_mode)
    contract = generator_contract_for(model)
    if fmt == "onnx":
        data = generator_onnx_bytes(model, contract, exporter=exporter, opset=opset)
    elif fmt == "torchscript":
        if exporter != "torchscript" or opset is not None:
            raise ConfigError("--onnx-exporter and --opset apply to --format onnx only")
        data = generator_torchscript_bytes(model, contract)
    else:
        raise ConfigError(f"unknown export format {fmt!r} for a generator; use onnx or "
                          "torchscript")
    out = Path(out)
    write_bytes_atomic(out, data)
    log.info("wrote %s (%.1f MB, %s, %s)", out, len(data) / 1e6, fmt, contract.describe())
    return out


def draw_noise(contract: GeneratorContract, n: int, generator: torch.Generator) -> torch.Tensor:
    """z (n, latent_dim) on the CPU from the contract's prior, drawn from ``generator`` exactly
    as the model's ``noise`` draws it (so one seed gives the same images in every backend)."""
    prior = contract.prior
    kind = prior.get("distribution")
    z = torch.randn(n, contract.latent_dim, generator=generator)
    if kind == "normal":
        return z * float(prior.get("std", 1.0)) + float(prior.get("mean", 0.0))
    if kind == "mixture":
        from gankit.models.aae import mixture_from_normal

        components = int(prior["components"])
        k = torch.randint(components, (n,), generator=generator)
        return mixture_from_normal(z, k, components, float(prior["radius"]),
                                   float(prior["std"]))
    raise CheckpointError(f"{contract.model}: unknown prior {kind!r} in its export metadata; "
                          "this gankit draws normal and mixture priors: upgrade gankit")
