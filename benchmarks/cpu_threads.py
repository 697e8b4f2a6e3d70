"""CPU threads on a shared machine: how many, and how they wait.

Why: ``--fast`` on a CPU trains with as many threads as there are cores no other process
keeps busy (``gankit/cpu_threads.py``), and leaves OpenMP's wait policy at torch's default.
This script measures both choices on the machine at hand: training steps with two threads
under torch's default (spinning) wait policy and under ``OMP_WAIT_POLICY=PASSIVE``, and with
one thread, on an idle machine and with other processes busy on the cores (a shared machine, a
CI runner; here a Python loop or another torch job, started and stopped by this script).

How: each measurement is a fresh Python process (the policy is read once, when torch's OpenMP
runtime starts), in alternating order over several rounds; each process trains a few steps of
one workload and reports the median step time. Ratios within a round are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- cpu_threads:begin -->"
END = "<!-- cpu_threads:end -->"

WORKLOADS = {
    "pix2pix-256x1": ("pix2pix", {"generator": "unet_256"}, 256, 1, 4),
    "dcgan-28x64": ("dcgan", {"channels": 1, "image_size": 28}, 28, 64, 20),
}
QUICK_WORKLOADS = {
    "pix2pix-32x2": ("pix2pix", {"generator": "unet_32", "ngf": 8, "ndf": 8}, 32, 2, 4),
}
HOG_LABELS = {"python": "Python loop", "torch": "torch matmuls (2 threads, spinning)"}
SETTINGS = [("default", 2), ("PASSIVE", 2), ("default", 1)]  # (wait policy, torch threads)


def child(spec: dict) -> None:
    """In the fresh process: set the policy, then import torch, train, print the times."""
    if spec["policy"] == "default":
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = spec["policy"]
    import torch  # first, so gankit's own choice does not apply

    from gankit.api import resolve_configs

    torch.set_num_threads(spec["threads"])
    model_name, options, size, batch, steps = spec["workload"]
    if model_name == "pix2pix":
        options = {**options, "crop_size": size, "load_size": size}
    configs = resolve_configs(model_name, {**options, "batch_size": batch})
    torch.manual_seed(0)
    model = configs.model_cls(configs.model)
    model.setup_optimizers()  # fp32, channels-first: the default update strategy
    images = torch.rand(batch, getattr(configs.model, "channels", 3) or 3, size, size) * 2 - 1
    batch_dict = ({"image": images} if model.task == "generation"
                  else {"A": images, "B": images.flip(-1)})
    times: list[float] = []
    budget = time.perf_counter() + spec["seconds"]
    for i in range(steps + 1):
        t0 = time.perf_counter()
        losses = model.train_step(batch_dict)
        [float(v) for v in losses.values()]
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
        if time.perf_counter() > budget and len(times) >= 2:
            break
    print(json.dumps({"median": statistics.median(times), "steps": len(times)}))


HOGS = {
    "python": "while True: pass",
    # another torch job: small matmuls on torch's default threads, spinning as torch does
    "torch": "import torch\na = torch.rand(192, 192)\nwhile True: a @ a",
}


def measure(workload: tuple, policy: str, threads: int, busy: int, seconds: float,
            hog: str = "python") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    hogs = [subprocess.Popen([sys.executable, "-c", HOGS[hog]], env=env) for _ in range(busy)]
    try:
        spec = {"workload": workload, "policy": policy, "threads": threads, "seconds": seconds}
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                              capture_output=True, text=True, cwd=REPO, timeout=seconds + 300)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: dict, loads: list[tuple[int, str]]) -> str:
    lines = ["| workload | other busy processes | s/step, default wait, 2 threads "
             "| s/step, PASSIVE, 2 threads | s/step, default, 1 thread "
             "| PASSIVE speed / default | **1 thread speed / 2 threads** |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name in results:
        for busy, hog in loads:
            cell = results[name][(busy, hog)]
            med = {s: statistics.median(v) for s, v in cell.items()}
            d, p, one = med["default/2"], med["PASSIVE/2"], med["default/1"]
            what = "none" if not busy else f"{busy} x {HOG_LABELS[hog]}"
            lines.append(f"| {name} | {what} | {d:.3f} | {p:.3f} | {one:.3f} | {d / p:.2f} | "
                         f"**{d / one:.2f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one tiny workload, one busy process, 1 round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2],
                   help="numbers of competing busy processes to measure under")
    p.add_argument("--hog", choices=sorted(HOGS), nargs="+", default=["python", "torch"],
                   help="what the busy processes run: a Python loop (one core each) or "
                   "torch matmuls on torch's default threads (another training job)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="time budget of one measurement after its first step")
    p.add_argument("--output", type=Path)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    rounds = 1 if args.quick else args.rounds
    busy_counts = [1] if args.quick else args.busy
    hogs = ["python"] if args.quick else args.hog
    loads = [(0, "-")] * (0 in busy_counts) + [(b, h) for b in busy_counts if b for h in hogs]
    results: dict = {n: {load: {} for load in loads} for n in workloads}
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        for name, workload in workloads.items():
            for busy, hog in loads:
                for policy, threads in SETTINGS:
                    out = measure(workload, policy, threads, busy, args.seconds, hog)
                    results[name][(busy, hog)].setdefault(f"{policy}/{threads}", []).append(
                        out["median"])
                    print(f"round {r + 1}: {name}, {busy} busy ({hog}), {policy} wait, {threads} "
                          f"thread(s): {out['median']:.3f} s/step ({out['steps']} steps)",
                          file=sys.stderr, flush=True)
    text = table(results, loads)
    elapsed = time.perf_counter() - started
    print(text)
    print(f"\n{elapsed:.0f} s in all")
    output = args.output or (None if args.quick else DEFAULT_DOC)
    if output is not None and not args.no_write:
        from gankit.train.acceleration import cpu_info

        command = shlex.join(["python", "benchmarks/cpu_threads.py", *sys.argv[1:]])
        section = f"""{BEGIN}
## CPU threads on a shared machine: how many, and how they wait

Written by `benchmarks/cpu_threads.py`; every run overwrites this section only.

Command: `{command}`

{machine_table(machine_info())}

CPU features as gankit reads them: {cpu_info().summary}. {rounds} round(s), {elapsed:.0f} s in
all; load average (1 min) before: {load_before:.2f}.

{text}

Each cell is the median over the rounds of one fresh process's median step time (training
steps of the model on random images in memory, fp32, after one warm-up step). "Other busy
processes" are processes this script runs beside the measurement, standing in for whatever
else a shared machine or CI runner is doing: a `while True: pass` Python loop (one core each),
or another torch job (matmuls on torch's default threads and wait policy). Ratios above 1
mean faster than two threads with torch's default wait policy (what torch does unless told
otherwise). Where one thread wins with another process busy, `--fast` gets it: it trains with
the cores that no other process keeps busy when training starts. Results under both wait
policies are bit for bit the same; only how idle threads wait changes.
{END}
"""
        write_section(output, section, BEGIN, END)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
