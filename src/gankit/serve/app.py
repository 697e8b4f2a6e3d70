"""The ASGI app: ``POST /translate``, ``GET /health``, ``GET /info`` and the drawing page.

``POST /translate`` takes one PNG or JPEG image, either as a multipart form field named
``image`` (what the page and ``curl -F image=@x.png`` send) or as the raw request body with
``Content-Type: image/png`` or ``image/jpeg`` (``curl --data-binary @x.png``), and answers with
the translated image as an 8-bit PNG of the same width and height. Decoding, inference and
encoding run off the event loop, so the server keeps answering /health while it computes.
"""

from __future__ import annotations

import io
import time
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from gankit.data.image_io import to_pil
from gankit.export.metadata import GeneratorContract
from gankit.serve.backends import Backend
from gankit.serve.batching import MicroBatcher
from gankit.serve.limits import (
    Limits,
    RequestError,
    check_declared_type,
    decode_image,
    media_type,
)
from gankit.serve.service import service_app, submit

FIELD_NAMES = ("image", "file")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
STATIC_DIR = Path(str(resources.files("gankit.serve") / "static"))


def create_app(
    backend: Backend,
    *,
    limits: Limits | None = None,
    max_batch: int = 8,
    max_queue: int = 64,
    request_timeout: float = 120.0,
) -> FastAPI:
    """The app serving ``backend``; ``max_batch=1`` turns micro-batching off. A generative
    model's backend gets the sampling app (:mod:`gankit.serve.sampling_app`: ``POST /sample``)."""
    if isinstance(backend.contract, GeneratorContract):
        from gankit.serve.sampling_app import create_sampling_app

        return create_sampling_app(backend, limits=limits,  # type: ignore[arg-type]
                                   max_batch=max_batch, max_queue=max_queue,
                                   request_timeout=request_timeout)
    limits = limits or Limits()
    batcher = MicroBatcher(backend.translate, max_batch=max_batch, max_queue=max_queue)

    app = service_app(backend, batcher, limits, max_batch=max_batch, max_queue=max_queue)

    @app.post("/translate", response_class=Response,
              responses={200: {"content": {"image/png": {}}}})
    async def translate(request: Request) -> Response:
        started = time.perf_counter()
        data, declared = await read_upload(request, limits)
        image = await run_in_threadpool(decode_image, data, declared, limits,
                                        backend.contract.in_channels)
        result = await submit(batcher, image, request_timeout,
                              "the server is overloaded or the image is very large")
        png = await run_in_threadpool(encode_png, result.output)
        total_ms = (time.perf_counter() - started) * 1000
        return Response(png, media_type="image/png", headers={
            "X-Gankit-Batch-Size": str(result.batch_size),
            "X-Gankit-Inference-Ms": f"{result.inference_s * 1000:.1f}",
            "X-Gankit-Total-Ms": f"{total_ms:.1f}",
            "Cache-Control": "no-store",
        })

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def read_upload(request: Request, limits: Limits) -> tuple[bytes, str | None]:
    """The image bytes and their declared type, from a multipart form or the raw body."""
    content_type = media_type(request.headers.get("content-type"))
    multipart = content_type == "multipart/form-data"
    if not multipart:
        check_declared_type(content_type)
    cap = limits.max_upload_bytes + (MULTIPART_OVERHEAD if multipart else 0)
    body = await _read_capped(request, cap, limits)
    if not multipart:
        return body, content_type
    return await _form_file(request, body)


async def _read_capped(request: Request, cap: int, limits: Limits) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise limits.too_large(int(length))
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise limits.too_large(total)
        chunks.append(chunk)
    return b"".join(chunks)


async def _form_file(request: Request, body: bytes) -> tuple[bytes, str | None]:
    """Parse a multipart body already read (and size-checked) into its image file."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=4, max_fields=16)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed form
        raise RequestError(400, f"the multipart form cannot be parsed ({exc}); send the image "
                           "as a form field named 'image'") from None
    upload = next((form[n] for n in FIELD_NAMES if n in form and hasattr(form[n], "read")),
                  None)
    if upload is None:
        upload = next((v for v in form.values() if hasattr(v, "read")), None)
    if upload is None:
        raise RequestError(400, "the form has no file; send the image as a form field named "
                           "'image' (curl -F image=@drawing.png)")
    try:
        data = await upload.read()
    finally:
        await form.close()
    return data, upload.content_type


def encode_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()
