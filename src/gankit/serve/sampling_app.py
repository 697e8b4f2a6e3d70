"""The app of a generative model: ``POST /sample``, ``GET /info``, ``GET /health`` and ``GET /``
(a small page to sample with). Parameters and answers are described in
:mod:`gankit.serve.sampling`."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from gankit.serve.batching import MicroBatcher
from gankit.serve.limits import Limits, RequestError
from gankit.serve.sampling import (
    FORMATS,
    PARAMETERS,
    GeneratorBackend,
    encode,
    parse_request,
    read_parameters,
)
from gankit.serve.service import service_app, submit

PAGE = Path(str(resources.files("gankit.serve") / "static" / "sample.html"))


def create_sampling_app(
    backend: GeneratorBackend,
    *,
    limits: Limits | None = None,
    max_batch: int = 8,
    max_queue: int = 64,
    request_timeout: float = 120.0,
) -> FastAPI:
    """The app serving a generator: ``POST /sample``, ``GET /info``, ``GET /health``, ``GET /``
    (a page to sample with); ``max_batch`` is requests per forward pass."""
    limits = limits or Limits()
    contract = backend.contract
    batcher = MicroBatcher(backend.run_packed, max_batch=max_batch, max_queue=max_queue)

    app = service_app(backend, batcher, limits, max_batch=max_batch, max_queue=max_queue,
                      info_extra={"endpoints": {
                          "POST /sample": f"parameters {', '.join(PARAMETERS)}; format "
                                          f"{' | '.join(FORMATS)} (default grid)"}})

    @app.post("/sample", response_class=Response,
              responses={200: {"content": {"image/png": {}, "application/zip": {},
                                           "application/json": {}}}})
    async def sample(request: Request) -> Response:
        started = time.perf_counter()
        asked = parse_request(await read_parameters(request), contract, limits)
        z = backend.noise(asked["n"], asked["seed"])
        packed = z if asked["labels"] is None else torch.cat(
            [z, asked["labels"].to(z.dtype)[:, None]], dim=1)
        result = await submit(batcher, packed, request_timeout,
                              "the server is overloaded, or ask for fewer images")
        body, kind, headers = await run_in_threadpool(encode, result.output, asked, contract)
        labels = asked["labels"]
        return Response(body, media_type=kind, headers={
            **headers,
            "X-Gankit-Seed": str(asked["seed"]),
            "X-Gankit-Labels": "" if labels is None else ",".join(str(int(v)) for v in labels),
            "X-Gankit-Batch-Size": str(result.batch_size),
            "X-Gankit-Inference-Ms": f"{result.inference_s * 1000:.1f}",
            "X-Gankit-Total-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
            "Cache-Control": "no-store",
        })

    @app.post("/translate", include_in_schema=False)
    async def translate() -> None:
        raise RequestError(404, f"this server serves {contract.model}, a generative model: it "
                           "makes images from noise with POST /sample (see GET /info)")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    return app
