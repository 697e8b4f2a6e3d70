"""Load test of ``gankit serve``: requests per second and p50/p99 latency on loopback.

Why: the server adds HTTP, PNG decoding and encoding, a queue and a worker thread around the
network, and batches concurrent requests of the same size. This script measures what a client
sees at 1, 4 and 16 concurrent clients for a 256 px model (pix2pix ``unet_256``, ngf 64, the
paper's generator; untrained weights: speed does not depend on them), and sets it against
two baselines measured in the same invocation:

* direct in-process inference, ``Backend.translate`` on one image at a time (no HTTP, no PNG):
  the most a server could do without batching;
* the same server with batching off (``--max-batch 1``), so the table shows what batching buys.

How: the server is the real ``gankit serve`` command in a subprocess; clients are asyncio tasks
with httpx in this process, each sending its next request as soon as the previous one is
answered (closed loop), the same 256x256 PNG drawing every time, multipart as the page sends.
Each level runs for ``--seconds`` after a short warm-up; requests answered inside that window
count, with their whole latency. Results go to the marked section
``serve_load`` of docs/benchmarks.md (other sections are left alone).

Run ``python benchmarks/serve_load.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image, ImageDraw

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- serve_load:begin -->"
END = "<!-- serve_load:end -->"
SIZE = 256


@dataclass
class Level:
    """One concurrency level against one server configuration."""

    clients: int
    batching: str
    latencies: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def mean_batch(self) -> float:
        return statistics.fmean(self.batch_sizes) if self.batch_sizes else float("nan")


# --- the model and the request --------------------------------------------------------------
def make_release(folder: Path, generator: str) -> Path:
    """An untrained pix2pix with the paper's generator, eval mode, trained size 256."""
    import gankit
    from gankit.export import save_release

    torch.manual_seed(0)
    model = gankit.create("pix2pix", generator=generator, inference_mode="eval")
    model.data_config = gankit.api.DataConfig(crop_size=SIZE, load_size=SIZE)
    return save_release(model, folder / "release")


def drawing_png(size: int = SIZE) -> bytes:
    """A line drawing like the page sends: black strokes on white."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    rng = np.random.default_rng(0)
    for _ in range(12):
        points = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(4)]
        draw.line(points, fill="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- baseline: direct inference --------------------------------------------------------------
def direct_throughput(release: Path, backend: str, seconds: float) -> dict[str, float]:
    """Images/s of ``Backend.translate`` on one 256 px image at a time, in this process."""
    from gankit.serve.backends import load_backend

    runner = load_backend(release, backend=backend, device="cpu")
    with Image.open(io.BytesIO(drawing_png())) as im:
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    x = x[None].contiguous()
    for _ in range(2):
        runner.translate(x)
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        t0 = time.perf_counter()
        runner.translate(x)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"images_per_s": 1.0 / median, "median_ms": median * 1000, "runs": len(times)}


# --- the server and its clients ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``gankit serve`` in a subprocess, stopped on exit."""

    def __init__(self, release: Path, backend: str, max_batch: int, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gankit.cli", "serve", str(release), "--port",
             str(self.port), "--backend", backend, "--max-batch", str(max_batch),
             "--device", "cpu", "--threads", str(threads)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gankit serve exited: {self.proc.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("gankit serve did not start within 120 s")

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def run_level(url: str, level: Level, payload: bytes, seconds: float,
                    warmup: float) -> None:
    limits = httpx.Limits(max_connections=level.clients, max_keepalive_connections=level.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + seconds

        async def one_client() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                r = await client.post("/translate",
                                      files={"image": ("drawing.png", payload, "image/png")})
                t1 = time.perf_counter()
                if not measure_from <= t1 <= stop_at:
                    continue  # answered during the warm-up, or after the window closed
                if r.status_code != 200:
                    level.errors += 1
                    continue
                level.latencies.append(t1 - t0)
                level.batch_sizes.append(int(r.headers.get("X-Gankit-Batch-Size", "1")))

        await asyncio.gather(*(one_client() for _ in range(level.clients)))
        level.seconds = seconds


# --- report ------------------------------------------------------------------------------------
def serving_machine_info() -> dict[str, str]:
    import onnxruntime

    import gankit

    info = machine_info()
    info["torch"] += f" / onnxruntime {onnxruntime.__version__}"
    info["gankit"] = gankit.__version__
    return info


def results_table(levels: list[Level], direct: dict[str, dict[str, float]]) -> str:
    lines = [
        "| backend | batching | clients | requests/s | p50 ms | p99 ms | mean batch "
        "| **vs direct** | **vs batching off** | requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    off = {(lv.batching.split(":")[0], lv.clients): lv.rps for lv in levels
           if lv.batching.endswith("off")}
    for lv in levels:
        backend = lv.batching.split(":")[0]
        base = direct[backend]["images_per_s"]
        off_rps = off.get((backend, lv.clients))
        vs_off = f"**{lv.rps / off_rps:.2f}**" if off_rps and not lv.batching.endswith("off") \
            else "-"
        lines.append(
            f"| {backend} | {lv.batching.split(':')[1]} | {lv.clients} | {lv.rps:.2f} | "
            f"{lv.percentile(50):.0f} | {lv.percentile(99):.0f} | {lv.mean_batch:.2f} | "
            f"**{lv.rps / base:.2f}** | {vs_off} | {len(lv.latencies)}"
            + (f" ({lv.errors} errors)" if lv.errors else "") + " |"
        )
    return "\n".join(lines)


def render_section(info: dict[str, str], command: str, settings: str, generator: str,
                   params: int, levels: list[Level], direct: dict[str, dict[str, float]],
                   load: str) -> str:
    machine = machine_table(info)
    loads = [float(v) for v in load.split(" / ")]
    busy = ""
    if max(loads) > (os.cpu_count() or 1):
        busy = ("\n\nOther processes kept the machine busy during this run (load average above "
                "its core count, and changing): absolute numbers move between runs, and even "
                "the ratios by 10-30%; compare rows of one run.")
    baseline = "\n".join(
        f"- {backend}: {d['images_per_s']:.2f} images/s ({d['median_ms']:.0f} ms per image, "
        f"median of {d['runs']})" for backend, d in direct.items())
    return f"""{BEGIN}
## Serving: requests per second and latency of `gankit serve`

Written by `benchmarks/serve_load.py`; every run overwrites this section only.

Command: `{command}`

{machine}

Model: pix2pix `{generator}` (ngf 64, {params / 1e6:.1f} M generator parameters, untrained
weights, eval mode), one 256x256 PNG line drawing per request (multipart, as the drawing page
sends it), PNG back. {settings}. Load average (1 min) before / after: {load}.

Direct in-process inference (the baseline: `Backend.translate` on one image, no HTTP, no PNG):

{baseline}

{results_table(levels, direct)}

**vs direct** is the server's requests/s divided by the direct images/s of the same backend:
what the HTTP layer, PNG decoding and encoding and the queue cost (below 1) or what batching
gains (above 1). **vs batching off** compares the same backend and client count with
`--max-batch 1`. **mean batch** is the mean of the `X-Gankit-Batch-Size` response header: how
many requests shared a forward pass. The server and the clients share the machine's cores.{busy}
{END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured seconds per level (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--backends", nargs="+", default=["torch"],
                        choices=["torch", "onnxruntime"])
    parser.add_argument("--max-batch", type=int, default=8, help="batching-on setting")
    parser.add_argument("--generator", default="unet_256")
    parser.add_argument("--threads", type=int, default=None,
                        help="inference threads of the server and the direct baseline "
                        "(default: torch's, one per core)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: unet_64 at 2 s per level; prints only")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.generator, args.seconds, args.warmup = "unet_64", 2.0, 0.5

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = serving_machine_info()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    payload = drawing_png()
    levels: list[Level] = []
    direct: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        release = make_release(Path(tmp), args.generator)
        import gankit

        params = sum(p.numel() for p in gankit.load(release, device="cpu").G.parameters())
        for backend in args.backends:
            direct[backend] = direct_throughput(release, backend, max(args.seconds / 2, 2))
            log(f"direct {backend}: {direct[backend]['images_per_s']:.2f} images/s")
            for batching, max_batch in (("off", 1), (f"max {args.max_batch}", args.max_batch)):
                with Server(release, backend, max_batch, threads) as server:
                    for clients in args.clients:
                        level = Level(clients, f"{backend}:{batching}")
                        asyncio.run(run_level(server.url, level, payload, args.seconds,
                                              args.warmup))
                        log(f"{backend} batching {batching}, {clients} clients: "
                            f"{level.rps:.2f} req/s, p50 {level.percentile(50):.0f} ms, "
                            f"p99 {level.percentile(99):.0f} ms, mean batch "
                            f"{level.mean_batch:.2f}")
                        levels.append(level)
    elapsed = time.perf_counter() - started
    load = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    print(results_table(levels, direct))
    print(f"\n{elapsed:.0f} s in all; load average before / after {load}")
    output = args.output or (None if args.quick else DEFAULT_DOC)
    if output is not None and not args.no_write:
        command = shlex.join(["python", "benchmarks/serve_load.py", *(argv or sys.argv[1:])])
        settings = (f"{args.warmup:g} s warm-up then {args.seconds:g} s measured per level, "
                    f"closed-loop clients; {elapsed:.0f} s in all")
        write_section(output, render_section(info, command, settings, args.generator, params,
                                             levels, direct, load), BEGIN, END)
        log(f"wrote the serve_load section of {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
