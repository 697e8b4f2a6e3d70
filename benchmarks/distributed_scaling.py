"""Training throughput on 1 and N processes (torchrun): what distributed training buys here.

Why: ``torchrun --nproc-per-node N -m gankit train`` (or ``gankit train --devices N``) trains
on N processes, each with ``--batch-size`` images per step, their gradients averaged in
``GANModel.optimize`` (gankit/train/distributed.py). This script measures images per second
of the same workload on 1 process and on N, through the real launcher, so the ratio includes
everything a user pays: the gradient all-reduce, the per-step stop flag and RNG broadcast.

How: each run is a fresh ``gankit train`` on the built-in shapes (no files needed); its
``log.csv`` holds the engine's images/s (a sliding window over 20 steps, of the global batch)
at every step, of which the median over the second half of the run is taken. Runs alternate
1, N, 1, N, ... over several rounds, and the ratio is taken within each round (the machine is
shared and noisy). On a CPU the single process gets all the cores' threads and each of the N
processes 1/N of them (torchrun's OMP_NUM_THREADS), so the comparison is the same cores used
two ways; on GPUs (``--device cuda``) each process has a GPU of its own.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- distributed_scaling:begin -->"
END = "<!-- distributed_scaling:end -->"

WORKLOADS = {
    "pix2pix-128": {"model": "pix2pix", "generator": "unet_128", "crop_size": 128,
                    "load_size": 128, "batch_size": 4, "norm": "instance"},
    "dcgan-28": {"model": "dcgan", "batch_size": 64},
}
QUICK = {"pix2pix-32": {"model": "pix2pix", "generator": "unet_32", "ngf": 8, "ndf": 8,
                        "crop_size": 32, "load_size": 32, "batch_size": 2,
                        "norm": "instance"}}


def command(workload: dict, nproc: int, steps: int, run_dir: Path, device: str) -> list[str]:
    options = {k: v for k, v in workload.items() if k != "model"}
    data = "builtin:shapes"
    if workload["model"] == "dcgan":
        data = str(REPO.parent / "shared" / "data" / "mnist")
        options["phase"] = "test"
    flags = ["--data", data, "--run-dir", str(run_dir), "--max-steps", str(steps),
             "--log-every", "1", "--sample-every", "0", "--save-latest-every", "0",
             "--save-epoch-every", "0", "--no-progress", "--workers", "0", "--device", device,
             "--epochs", "1000", "--epochs-decay", "0"]
    for k, v in options.items():
        flags += [f"--{k.replace('_', '-')}", str(v)]
    head = [sys.executable, "-m", "gankit", "train"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "gankit", "train"]
    return head + [workload["model"], *flags]


def images_per_s(workload: dict, nproc: int, steps: int, device: str, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // nproc))}
        if device == "cuda" and nproc == 1:
            env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
        proc = subprocess.run(command(workload, nproc, steps, run, device), env=env,
                              capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"training on {nproc} process(es) failed:\n{proc.stderr[-3000:]}")
        with open(run / "log.csv") as f:
            rates = [float(r["images_per_s"]) for r in csv.DictReader(f)]
    tail = rates[len(rates) // 2:]
    return statistics.median(tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--nproc", type=int, default=None,
                        help="processes to compare with one (default: 2 on a CPU, every GPU)")
    parser.add_argument("--steps", type=int, default=40, help="steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads in all (split between the processes)")
    parser.add_argument("--quick", action="store_true", help="tiny workload (smoke test)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    args = parser.parse_args(argv)
    nproc = args.nproc or (torch.cuda.device_count() if args.device == "cuda" else 2)
    workloads = QUICK if args.quick else WORKLOADS

    rows = []
    for name, workload in workloads.items():
        ones, manys, ratios = [], [], []
        for _ in range(args.rounds):
            one = images_per_s(workload, 1, args.steps, args.device, args.threads)
            many = images_per_s(workload, nproc, args.steps, args.device, args.threads)
            ones.append(one)
            manys.append(many)
            ratios.append(many / one)
        b = workload["batch_size"]
        rows.append(f"| {name} | {b} | {b * nproc} | {statistics.median(ones):.1f} | "
                    f"{statistics.median(manys):.1f} | {statistics.median(ratios):.2f}x "
                    f"({min(ratios):.2f}-{max(ratios):.2f}) |")
        print(rows[-1], flush=True)

    device = torch.device("cuda") if args.device == "cuda" else None
    info = machine_info(device)
    info["torch threads"] = (f"{args.threads} in 1 process, {max(1, args.threads // nproc)} "
                             f"in each of {nproc}" if args.device == "cpu" else "default")
    unit = "GPU" if args.device == "cuda" else "process"
    table = (f"| workload | batch per {unit} | global batch on {nproc} | images/s, 1 {unit} | "
             f"images/s, {nproc} {unit}es | ratio (range over {args.rounds} rounds) |\n"
             "|---|---|---|---|---|---|\n" + "\n".join(rows))
    section = (f"{BEGIN}\n## Distributed training: 1 and {nproc} processes "
               f"({args.device})\n\n`python benchmarks/distributed_scaling.py"
               f"{' --device cuda' if args.device == 'cuda' else ''}`: the same workload "
               f"through `gankit train` on one process and through torchrun on {nproc}, each "
               "process with the batch shown (so the global batch grows with the processes); "
               "images/s of the global batch, the median over the second half of "
               f"{args.steps} steps; ratios taken within each round.\n\n"
               f"{machine_table(info)}\n\n{table}\n{END}")
    print()
    print(section)
    if not args.no_write:
        write_section(args.doc, section, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
