"""What both apps share (translation: :mod:`gankit.serve.app`; sampling:
:mod:`gankit.serve.sampling_app`): the FastAPI app with its micro-batcher's lifespan, the
error answers, ``GET /health`` and ``GET /info``, and submitting work with the busy and
timeout answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gankit.serve.batching import MicroBatcher, QueueFull
from gankit.serve.limits import Limits, RequestError

log = logging.getLogger(__name__)


def service_app(backend: Any, batcher: MicroBatcher, limits: Limits, *, max_batch: int,
                max_queue: int, info_extra: dict[str, Any] | None = None) -> FastAPI:
    """An app serving ``backend`` (which has ``contract`` and ``info()``) through ``batcher``,
    with /health and /info; the caller adds its own endpoints."""
    contract = backend.contract

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %s", contract.describe())
        try:
            yield
        finally:
            await batcher.stop()

    # No /docs: FastAPI's API browser loads its scripts from a CDN, and this server must work
    # offline. The schema stays at /openapi.json.
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
                **(info_extra or {})}

    return app


async def submit(batcher: MicroBatcher, item: Any, timeout: float, too_slow: str) -> Any:
    """``batcher.submit(item)`` within ``timeout`` seconds; a full queue or a timeout is a 503
    (``too_slow`` says what may be the cause)."""
    try:
        return await asyncio.wait_for(batcher.submit(item), timeout=timeout)
    except QueueFull as exc:
        raise RequestError(503, f"the server is busy ({exc}); retry in a moment") from None
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        raise RequestError(503, f"no result within {timeout:g} s; {too_slow}") from None
