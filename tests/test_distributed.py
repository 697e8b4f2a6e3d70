"""Training on 2 processes through the real launcher (torch.distributed.run, gloo on the CPU):
the processes agree, match one process trained on the same global batches, resume exactly,
stop together on a signal and do not hang when one of them dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_cli import flags

import gankit
from gankit.api import resume_trainer
from gankit.errors import ConfigError
from gankit.train.checkpoint import load_checkpoint

from conftest import TINY_PIX2PIX

pytestmark = pytest.mark.slow

# Instance norm and no dropout: nothing in a pix2pix step depends on how the batch is split.
PIX = {**TINY_PIX2PIX, "norm": "instance", "dropout": False, "batch_size": 2,
       "epochs": 50, "max_steps": 6}
WGAN_GP = {"ngf": 8, "ndf": 8, "phase": "test", "max_items": 32, "batch_size": 4, "n_critic": 1,
           "max_steps": 4, "progress": False, "log_every": 1, "sample_every": 0,
           "save_latest_every": 0, "save_epoch_every": 0, "workers": 0}


def torchrun(*args, wait: bool = True, nproc: int = 2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "gankit", "train", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
    r = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def networks(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "latest.pt")["networks"]


def assert_same_function(run_a: Path, run_b: Path, rtol: float) -> None:
    """Both runs' models give the same outputs, to ``rtol`` of their mean size. (Weights are
    not compared one by one: Adam turns float noise in gradients that are zero in exact
    arithmetic, such as those of a conv bias before instance norm, into steps of the full
    learning rate, which change no output.)"""
    a, b = gankit.load(run_a, device="cpu"), gankit.load(run_b, device="cpu")
    x = torch.rand(3, a.config.channels if a.task == "generation" else 3, 32, 32,
                   generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        if a.task == "generation":
            z = torch.randn(3, a.config.latent_dim, generator=torch.Generator().manual_seed(2))
            pairs = [(a.G(z), b.G(z)), (a.D(x[:, :, :28, :28]), b.D(x[:, :, :28, :28]))]
        else:
            fa, fb = a.G(x), b.G(x)
            pairs = [(fa, fb), (a.D(torch.cat([x, fa], 1)), b.D(torch.cat([x, fa], 1)))]
    for out_a, out_b in pairs:
        worst = ((out_a - out_b).abs().max() / out_a.abs().mean()).item()
        assert worst < rtol, worst


@pytest.fixture(scope="module")
def pix2pix_2proc(emoji_small, tmp_path_factory):
    run = tmp_path_factory.mktemp("dist") / "run"
    # with evaluation on rank 0 while rank 1 waits (it changes nothing in training)
    r = torchrun("pix2pix", "--data", emoji_small, "--run-dir", run, *flags(PIX),
                 "--eval-every", 3, "--eval-images", 4)
    return run, r


def test_two_processes_train_as_one_with_the_global_batch(pix2pix_2proc, emoji_small,
                                                          tmp_path):
    run, r = pix2pix_2proc
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["world_size"] == 2 and state["step"] == 6
    digests = state["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # bit-identical on both ranks
    assert "global batch 4" in r.stderr
    # rank 0 alone writes: one header, each logged step once
    lines = (run / "log.csv").read_text().splitlines()
    steps = [line.split(",")[0] for line in lines[1:]]
    assert len(steps) == len(set(steps)) == 6 and lines[0].startswith("step")
    assert (run / "checkpoints" / "best.pt").is_file() and "eval_l1" in lines[0]

    single = tmp_path / "single"
    gankit.train("pix2pix", data=str(emoji_small), run_dir=single,
                 **{**PIX, "batch_size": 4})
    trained, untrained = gankit.load(single, device="cpu"), gankit.create(
        "pix2pix", **{k: PIX[k] for k in ("generator", "ngf", "ndf", "norm", "dropout")})
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # training moved the outputs far more than the tolerance below
        assert (trained.G(x) - untrained.eval().G(x)).abs().max() > 1e-2
    # float noise alone (1 vs 2 threads) moves these outputs by 0.3% of their size; training
    # on half the batch at each step by 100%
    assert_same_function(run, single, rtol=0.03)


def test_stop_and_resume_on_two_processes_is_exact(pix2pix_2proc, emoji_small, tmp_path):
    full, _ = pix2pix_2proc
    run = tmp_path / "run"
    torchrun("pix2pix", "--data", emoji_small, "--run-dir", run,
             *flags({**PIX, "max_steps": 4}))
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--devices", "2", "--resume",
                        str(run), "--max-steps", "6"], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]  # --devices 2: the same, through torchrun
    a, b = networks(full), networks(run)
    assert all(torch.equal(a[k], b[k]) for k in a)

    with pytest.raises(ConfigError, match="trained on 2 process"):
        resume_trainer(run, max_steps=8)


def test_gradient_penalty_and_sync_bn_on_two_processes(shared_data, tmp_path):
    data = shared_data / "mnist"
    dist_run, single = tmp_path / "dist", tmp_path / "single"
    r = torchrun("wgan_gp", "--data", data, "--run-dir", dist_run, "--sync-bn",
                 *flags(WGAN_GP))
    assert "batch-norm layers compute statistics over the global batch" in r.stderr
    gankit.train("wgan_gp", data=str(data), run_dir=single, **{**WGAN_GP, "batch_size": 8})
    # half the batch at each step: 19%
    assert_same_function(dist_run, single, rtol=0.03)


def _rank_pid(launcher: subprocess.Popen, rank: int, timeout: float = 120) -> int:
    """The pid of the worker with RANK=rank among the launcher's children."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for child in Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split():
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ:
                return int(child)
        time.sleep(0.2)
    raise AssertionError("no worker process found")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not path.is_file():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    assert path.is_file()


def test_sigterm_to_one_rank_stops_all_and_a_killed_rank_ends_the_job(emoji_small, tmp_path):
    run = tmp_path / "run"
    # endless: the signals must come while it trains, however slow the machine
    opts = {**{k: v for k, v in PIX.items() if k != "max_steps"}, "epochs": 100000,
            "save_latest_every": 2}
    latest = run / "checkpoints" / "latest.pt"

    proc = torchrun("pix2pix", "--data", emoji_small, "--run-dir", run, *flags(opts),
                    wait=False)
    _wait_for(latest, proc)
    os.kill(_rank_pid(proc, 1), signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-2000:]  # the ranks report the stop with status 130
    assert "SIGTERM received" in err and "resume with: gankit train --resume" in err
    stopped = load_checkpoint(latest)
    assert stopped["step"] > 0 and len(set(stopped["parameter_digests"])) == 1

    proc = torchrun("--resume", run, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and load_checkpoint(latest)["step"] <= stopped["step"] + 2:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.5)
    os.kill(_rank_pid(proc, 1), signal.SIGKILL)
    started = time.time()
    proc.communicate(timeout=180)
    assert proc.returncode != 0 and time.time() - started < 180
    model = gankit.load(latest, device="cpu")  # the last checkpoint is whole
    assert model.name == "pix2pix"
