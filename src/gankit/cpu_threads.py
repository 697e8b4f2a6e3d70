"""How many CPU threads a training run should use: the cores nothing else keeps busy.

torch starts one intra-op thread per core, and every operation waits for all of them. When
another process holds a core, the thread scheduled beside it runs only part of the time and
every operation waits for it: on two cores with one other busy process a training step took
1.2-2.3x as long with two threads as with one (``benchmarks/cpu_threads.py``), and passive
OpenMP waiting did not cure it (it cost small models more). ``--fast`` on a CPU therefore
trains with :func:`usable_cores` threads (``--threads N`` sets the count by hand). This module
reads /proc/stat only and imports nothing heavy.
"""

from __future__ import annotations

import os
import time


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; all of them where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields[:8]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


def usable_cores(seconds: float = 0.3) -> int:
    """The cores this process may use that nothing else is keeping busy right now, measured
    over ``seconds`` (at least 1). Where that cannot be measured: the cores it may use."""
    cores = available_cores()
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None or after[1] <= before[1]:
        return cores
    busy_fraction = (after[0] - before[0]) / (after[1] - before[1])
    all_cores = os.cpu_count() or cores
    busy = busy_fraction * all_cores
    return max(1, min(cores, round(all_cores - busy)))
