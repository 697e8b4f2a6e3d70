"""What every benchmark script writes around its numbers: the machine it ran on, and its own
marked section of ``docs/benchmarks.md`` (each script owns one and leaves the rest alone)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit() -> str:
    """Short commit hash, flagged when ``src/`` differs from it (the numbers may not be its)."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (src/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info(device: torch.device | None = None) -> dict[str, str]:
    info = {
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "CPU": f"{cpu_name()}, {os.cpu_count()} logical cores",
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "Python": platform.python_version(),
        "OS": platform.platform(),
        "gankit commit": git_commit(),
    }
    if device is not None and device.type == "cuda":
        info["GPU"] = torch.cuda.get_device_name(device)
        info["CUDA"] = str(torch.version.cuda)
    return info


def machine_table(info: dict[str, str]) -> str:
    return "| machine | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in info.items())


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the part of ``path`` between the ``begin`` and ``end`` markers with ``section``
    (which includes them), or append it; everything else in the file stays."""
    if path.is_file():
        text = path.read_text()
    else:
        text = ("# Benchmarks\n\nNumbers written by the scripts in `benchmarks/`; each script "
                "owns one marked section.\n")
    start, stop = text.find(begin), text.find(end)
    if start != -1 and stop > start:
        text = text[:start] + section.strip() + text[stop + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section.strip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
