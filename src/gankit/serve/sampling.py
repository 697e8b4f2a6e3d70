"""Serving a generative model (dcgan, cgan, acgan, aae, ...): ``POST /sample``.

``POST /sample`` takes its parameters from the query string (``/sample?n=16&label=3&seed=7``),
a JSON object body (``{"n": 16, "label": "cat", "seed": 7}``) or a urlencoded form:

  n       images to make (default 16, or fewer where the limits say; at most
          ``--max-samples``, and n x height x width at most ``--max-pixels``)
  label   conditional models only: a class number or class name for every image, or several
          (repeat the parameter, or a JSON list) used in turn; default: every class in turn
  seed    0 .. 2^63-1; the same seed, n and labels give the same images (default: a random
          seed, returned in the ``X-Gankit-Seed`` header and in JSON answers)
  format  grid (default: one PNG), zip (one PNG per image and samples.json) or json
          (base64 PNGs with their labels)
  nrow    images per grid row (default: one class per column for conditional models sampled
          by default, else a square)

The noise is drawn with a ``torch.Generator`` seeded by ``seed``, as ``model.sample(n, labels,
seed=seed)`` and ``gankit sample --seed`` draw it, so the server, the Python API and the CLI
give the same images, and so do the torch, TorchScript and ONNX Runtime backends (the export's
metadata names the prior the noise comes from).

Requests queue for one inference worker as translation requests do (``MicroBatcher``):
concurrent requests of the same ``n`` run as one forward pass.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import secrets
import zipfile
from typing import Any
from urllib.parse import parse_qsl

import torch

from gankit.errors import ConfigError
from gankit.export.generator import check_sampling_options, draw_noise
from gankit.export.metadata import GeneratorContract, generator_contract_for
from gankit.serve.backends import Backend, OnnxBackend
from gankit.serve.limits import Limits, RequestError, media_type

log = logging.getLogger(__name__)

PARAMETERS = ("n", "label", "seed", "format", "nrow")
FORMATS = ("grid", "zip", "json")
DEFAULT_N = 16
MAX_SEED = 2**63 - 1
MAX_BODY_BYTES = 16 * 1024  # parameters only


# --- backends -------------------------------------------------------------------------------
class GeneratorBackend(Backend):
    """Runs a generator: noise (and labels) -> images; subclasses implement :meth:`generate`."""

    contract: GeneratorContract

    def noise(self, n: int, seed: int) -> torch.Tensor:
        """z (n, latent_dim) on the CPU, drawn as the model draws it for this seed."""
        return draw_noise(self.contract, n, torch.Generator().manual_seed(seed))

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(N, C, H, W) float32 in [-1, 1] on the CPU."""
        raise NotImplementedError

    def run_packed(self, packed: torch.Tensor) -> torch.Tensor:
        """The micro-batcher's function: (requests, n, latent_dim [+ 1 label column]) ->
        (requests, n, C, H, W)."""
        k, n, width = packed.shape
        flat = packed.reshape(k * n, width)
        c = self.contract
        labels = flat[:, c.latent_dim].round().long() if c.conditional else None
        images = self.generate(flat[:, :c.latent_dim].contiguous(), labels)
        return images.float().clamp(-1.0, 1.0).reshape(k, n, *c.image_shape)

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        raise ConfigError(f"{self.contract.model} makes images from noise; use POST /sample")


class TorchGeneratorBackend(GeneratorBackend):
    """A gankit generative model in PyTorch (checkpoint, run folder or release)."""

    kind = "torch"

    def __init__(self, model: Any, contract: GeneratorContract, source: str) -> None:
        super().__init__(contract, source)
        self.model = model

    def noise(self, n: int, seed: int) -> torch.Tensor:
        return self.model.noise(n, torch.Generator().manual_seed(seed)).cpu()

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.model.sample(len(z), labels, z=z)  # eval mode, as gankit sample


class TorchScriptGeneratorBackend(GeneratorBackend):
    kind = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, contract: GeneratorContract, source: str,
                 device: torch.device) -> None:
        super().__init__(contract, source)
        self.module = module
        self.device = device

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            if labels is None:
                return self.module(z.to(self.device)).cpu()
            return self.module(z.to(self.device), labels.to(self.device)).cpu()


class OnnxGeneratorBackend(GeneratorBackend):
    kind = "onnxruntime"

    def __init__(self, runner: OnnxBackend) -> None:
        """Takes the ONNX Runtime session that :class:`OnnxBackend` opened."""
        super().__init__(runner.contract, runner.source)  # type: ignore[arg-type]
        self.session = runner.session

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        c = self.contract
        feeds = {c.input_name: z.numpy()}
        if c.conditional:
            assert labels is not None
            feeds[c.label_name] = labels.numpy()
        (out,) = self.session.run([c.output_name], feeds)
        return torch.from_numpy(out)


def backend_for_model(model: Any, *, backend: str, source: str, reverse: bool = False,
                      inference_mode: str | None = None) -> GeneratorBackend:
    """The torch backend of a loaded generative model, or (``backend="onnxruntime"``) its ONNX
    export made in memory."""
    check_sampling_options(model.name, reverse, inference_mode)
    contract = generator_contract_for(model)
    if backend == "onnxruntime":
        from gankit.export.generator import generator_onnx_bytes

        return OnnxGeneratorBackend(OnnxBackend(generator_onnx_bytes(model, contract), contract,
                                                source))
    return TorchGeneratorBackend(model, contract, source)


# --- requests -------------------------------------------------------------------------------
async def read_parameters(request: Any) -> dict[str, list[Any]]:
    """The request's parameters, each as a list of values (query string and body together)."""
    params: dict[str, list[Any]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes; "
                               "/sample takes a few parameters (n, label, seed, format, nrow)")
    if not body.strip():
        return params
    kind = media_type(request.headers.get("content-type"))
    if kind == "application/x-www-form-urlencoded":
        items: list[tuple[str, Any]] = parse_qsl(body.decode("utf-8", "replace"))
    elif kind in ("application/json", "", "text/plain"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RequestError(400, f"the body is not valid JSON ({exc}); send an object such "
                               'as {"n": 16, "seed": 0}, or use the query string') from None
        if not isinstance(data, dict):
            raise RequestError(400, 'the JSON body must be an object such as {"n": 16, '
                               '"label": 3, "seed": 0}')
        items = [(k, v) for k, vs in data.items()
                 for v in (vs if isinstance(vs, list) and k == "label" else [vs])]
    else:
        raise RequestError(415, f"content type {kind!r} is not accepted for /sample; send the "
                           "parameters in the query string, as JSON or as a urlencoded form")
    body_keys = set()
    for key, value in items:
        if key in params and key not in body_keys:
            raise RequestError(400, f"{key!r} is given both in the query string and in the "
                               "body; give it once")
        body_keys.add(key)
        params.setdefault(key, []).append(value)
    return params


def _one(params: dict[str, list[Any]], key: str) -> Any:
    values = params.get(key, [])
    if len(values) > 1:
        raise RequestError(400, f"{key!r} is given {len(values)} times; give it once")
    return values[0] if values else None


def _integer(value: Any, key: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if not isinstance(value, int):
        raise RequestError(400, f"{key} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise RequestError(400, f"{key} must be {bound}, not {value}")
    return value


def class_index(contract: GeneratorContract, value: Any) -> int:
    """A class number or class name (as ``gankit sample --label`` takes it) -> its number."""
    names = list(contract.class_names)
    known = (f"this model knows {contract.num_classes} classes: 0..{contract.num_classes - 1} "
             f"({', '.join(names[:20])}{', ...' if len(names) > 20 else ''})")
    if isinstance(value, str) and value in names:
        return names.index(value)
    index = value
    if isinstance(value, str):
        try:
            index = int(value.strip())
        except ValueError:
            raise RequestError(400, f"unknown class {value!r}; {known}") from None
    if isinstance(index, bool) or not isinstance(index, int):
        raise RequestError(400, f"label must be a class number or name, not {value!r}; {known}")
    if not 0 <= index < contract.num_classes:
        raise RequestError(400, f"label {index} is not a trained class; {known}")
    return index


def parse_request(params: dict[str, list[Any]], contract: GeneratorContract, limits: Limits
                  ) -> dict[str, Any]:
    """Checked parameters: n, labels (a tensor or None), seed, format, nrow."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise RequestError(400, f"unknown parameter {unknown[0]!r}; /sample takes "
                           f"{', '.join(PARAMETERS)}")
    c, h, w = contract.image_shape
    n = _one(params, "n")
    if n is None:  # the default stays within the limits
        n = max(1, min(DEFAULT_N, limits.max_samples, limits.max_pixels // (h * w)))
    n = _integer(n, "n", 1)
    if n > limits.max_samples:
        raise RequestError(413, f"n = {n} is more images than the limit of {limits.max_samples} "
                           "per request; ask for fewer, or start the server with a larger "
                           "--max-samples")
    if n * h * w > limits.max_pixels:
        raise RequestError(413, f"{n} images of {w}x{h} are {n * h * w} pixels; the limit is "
                           f"{limits.max_pixels} pixels: ask for fewer images, or start the "
                           "server with a larger --max-pixels")
    given = params.get("label", [])
    labels = None
    if given and not contract.conditional:
        raise RequestError(400, f"{contract.model} is not conditioned on a class; leave out "
                           "label")
    if given:
        if len(given) > n:
            raise RequestError(400, f"{len(given)} labels given for n = {n} images; give at "
                               "most one per image")
        indices = [class_index(contract, v) for v in given]
        labels = torch.tensor(indices).repeat(math.ceil(n / len(indices)))[:n]
    elif contract.conditional:
        labels = torch.arange(n) % contract.num_classes  # every class in turn
    seed = _one(params, "seed")
    seed = secrets.randbelow(2**31) if seed is None else _integer(seed, "seed", 0, MAX_SEED)
    fmt = _one(params, "format") or "grid"
    if fmt not in FORMATS:
        raise RequestError(400, f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    nrow = _one(params, "nrow")
    if nrow is not None:
        nrow = _integer(nrow, "nrow", 1)
    elif contract.conditional and not given:
        nrow = min(10, contract.num_classes)  # one class per column, as gankit sample
    else:
        nrow = math.ceil(math.sqrt(n))
    return {"n": n, "labels": labels, "seed": seed, "format": fmt, "nrow": nrow}


# --- answers --------------------------------------------------------------------------------
def png(image: torch.Tensor) -> bytes:
    from gankit.data.image_io import to_pil

    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def encode(images: torch.Tensor, request: dict[str, Any], contract: GeneratorContract
           ) -> tuple[bytes, str, dict[str, str]]:
    """The answer's body, media type and extra headers."""
    labels = None if request["labels"] is None else [int(v) for v in request["labels"]]
    names = None if labels is None else [contract.class_names[v] for v in labels]
    if request["format"] == "grid":
        from gankit.report.grid import make_grid

        return png(make_grid(images, nrow=request["nrow"])), "image/png", {}
    pngs = [png(image) for image in images]
    about = {"model": contract.model, "seed": request["seed"], "n": len(pngs),
             "labels": labels, "label_names": names}
    if request["format"] == "json":
        body = {**about, "media_type": "image/png",
                "images": [base64.b64encode(p).decode("ascii") for p in pngs]}
        return json.dumps(body).encode(), "application/json", {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:  # PNGs are compressed already
        for i, data in enumerate(pngs):
            z.writestr(f"sample_{i:05d}.png", data)
        z.writestr("samples.json", json.dumps(about, indent=2))
    return buffer.getvalue(), "application/zip", {
        "Content-Disposition": 'attachment; filename="samples.zip"'}
