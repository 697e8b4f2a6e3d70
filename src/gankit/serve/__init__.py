"""``gankit serve``: a web service and a drawing page for a trained translation model, or
``POST /sample`` and a sample page for a generative one (:mod:`gankit.serve.sampling`).

>>> from gankit.serve import build_app
>>> app = build_app("runs/demo")        # an ASGI app: run it with uvicorn, or call serve()

Needs the ``serve`` extra (fastapi, uvicorn, python-multipart; onnxruntime for .onnx files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.serve.backends import Backend, load_backend
from gankit.serve.limits import Limits

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

__all__ = ["Backend", "Limits", "build_app", "load_backend", "serve"]


def build_app(
    path: str | Path,
    *,
    backend: str = "auto",
    reverse: bool = False,
    inference_mode: str | None = None,
    device: str = "auto",
    limits: Limits | None = None,
    max_batch: int = 8,
    max_queue: int = 64,
) -> FastAPI:
    """The app for a checkpoint, run folder, release, ONNX or TorchScript file."""
    from gankit.serve.app import create_app

    runner = load_backend(path, backend=backend, reverse=reverse,
                          inference_mode=inference_mode, device=device)
    return create_app(runner, limits=limits, max_batch=max_batch, max_queue=max_queue)


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
