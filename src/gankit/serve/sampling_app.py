"""The app of a generative model: ``POST /sample``, ``GET /info``, ``GET /health`` and ``GET /``
(a small page to sample with). Parameters and answers are described in
:mod:`gankit.serve.sampling`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from gankit.serve.batching import MicroBatcher, QueueFull
from gankit.serve.limits import Limits, RequestError
from gankit.serve.sampling import (
    FORMATS,
    PARAMETERS,
    GeneratorBackend,
    encode,
    parse_request,
    read_parameters,
)

log = logging.getLogger(__name__)

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

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %s", contract.describe())
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="gankit", summary=contract.describe(), lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.backend = backend
    app.state.batcher = batcher
    app.state.limits = limits

    @app.exception_handler(RequestError)
    async def _refuse(_request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": contract.model, "pending": batcher.pending}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {**backend.info(), "limits": limits.as_dict(),
                "batching": {"max_batch": max_batch, "max_queue": max_queue,
                             "batches_run": batcher.batches_run,
                             "images_run": batcher.images_run},
                "endpoints": {"POST /sample": f"parameters {', '.join(PARAMETERS)}; format "
                              f"{' | '.join(FORMATS)} (default grid)"}}

    @app.post("/sample", response_class=Response,
              responses={200: {"content": {"image/png": {}, "application/zip": {},
                                           "application/json": {}}}})
    async def sample(request: Request) -> Response:
        started = time.perf_counter()
        asked = parse_request(await read_parameters(request), contract, limits)
        z = backend.noise(asked["n"], asked["seed"])
        packed = z if asked["labels"] is None else torch.cat(
            [z, asked["labels"].to(z.dtype)[:, None]], dim=1)
        try:
            result = await asyncio.wait_for(batcher.submit(packed), timeout=request_timeout)
        except QueueFull as exc:
            raise RequestError(503, f"the server is busy ({exc}); retry in a moment") from None
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise RequestError(503, f"no result within {request_timeout:g} s; the server is "
                               "overloaded, or ask for fewer images") from None
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
