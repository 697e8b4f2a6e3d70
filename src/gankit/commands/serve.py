"""``gankit serve``: the web service and drawing page for a trained translation model, or the
sampling service (``POST /sample``) of a generative one."""

from __future__ import annotations

import argparse


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value
    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a model over HTTP with a live drawing page",
        description="Serve a translation model: POST /translate (PNG or JPEG in, PNG out),\n"
        "GET /info, GET /health, and GET / for a page to draw on and see the output live.\n"
        "Serve a generative model (dcgan, cgan, ...): POST /sample?n=16&label=3&seed=0 (a PNG\n"
        "grid; format=zip or json for separate images), GET /info, GET /health, and GET / for\n"
        "a page to sample with.",
        epilog="examples:\n  gankit serve runs/demo\n  gankit serve demo.onnx --port 8080\n"
        "  gankit serve runs/horse2zebra --reverse --host 0.0.0.0\n"
        "  gankit serve runs/cgan-mnist   # then: curl -X POST "
        "'127.0.0.1:8000/sample?label=7' -o 7s.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="CHECKPOINT_OR_EXPORT",
                   help="checkpoint, run folder, release, .onnx or TorchScript file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=("auto", "torch", "onnxruntime"), default="auto",
                   help="auto: onnxruntime for .onnx, torch otherwise; onnxruntime with a "
                   "checkpoint exports it to ONNX in memory")
    p.add_argument("--reverse", action="store_true", help="serve the B to A generator")
    p.add_argument("--inference-mode", choices=("auto", "train", "eval"), default=None,
                   help="dropout/batch statistics at test time (default: the model's setting)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (torch backend)")
    p.add_argument("--threads", type=_positive(int), default=None,
                   help="CPU threads for inference (default: torch's, one per core)")
    p.add_argument("--max-batch", type=_positive(int), default=8,
                   help="most concurrent same-size requests run as one batch (1 turns "
                   "batching off)")
    p.add_argument("--max-queue", type=_positive(int), default=64,
                   help="requests waiting beyond this get 503")
    p.add_argument("--max-upload-mb", type=_positive(float), default=10.0,
                   help="largest upload accepted (413 above)")
    p.add_argument("--max-pixels", type=_positive(int), default=2048 * 2048,
                   help="largest image accepted, in pixels (413 above); for /sample, the "
                   "most pixels of all the images of one request")
    p.add_argument("--max-samples", type=_positive(int), default=64,
                   help="generative models: most images one /sample request may ask for "
                   "(413 above)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from gankit.serve import build_app, serve
    from gankit.serve.limits import Limits
    from gankit.serve.sampling import GeneratorBackend

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20),
                    max_pixels=args.max_pixels, max_samples=args.max_samples)
    app = build_app(args.model, backend=args.backend, reverse=args.reverse,
                    inference_mode=args.inference_mode, device=args.device, limits=limits,
                    max_batch=args.max_batch, max_queue=args.max_queue)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    what = "sample" if isinstance(app.state.backend, GeneratorBackend) else "draw"
    print(f"gankit serve: open http://{host}:{args.port}/ to {what} (Ctrl-C stops)", flush=True)
    serve(app, host=args.host, port=args.port)
    return 0
