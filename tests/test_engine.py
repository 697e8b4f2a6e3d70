"""The engine: exact resume, Ctrl-C, NaN losses, schedules and run outputs."""

import csv
import os
import signal

import pytest
import torch

import gankit
from gankit.api import resume_trainer, trainer
from gankit.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from gankit.train.checkpoint import load_checkpoint
from gankit.train.config import TrainConfig
from gankit.train.engine import collate
from gankit.train.schedules import build_scheduler, step_scheduler

from conftest import TINY_PIX2PIX

TOTAL_STEPS = 18  # 12 pairs, batch 2, 3 epochs


def read_log(run):
    with open(run / "log.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def assert_same_weights(run_a, run_b):
    a = load_checkpoint(run_a / "checkpoints" / "latest.pt")
    b = load_checkpoint(run_b / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == TOTAL_STEPS
    for k in a["networks"]:
        assert torch.equal(a["networks"][k], b["networks"][k]), k
    for name in a["optimizers"]:
        for pid, s in a["optimizers"][name]["state"].items():
            assert torch.equal(s["exp_avg"], b["optimizers"][name]["state"][pid]["exp_avg"])


@pytest.fixture(scope="module")
def uninterrupted(emoji_small, tmp_path_factory):
    run = tmp_path_factory.mktemp("straight")
    torch.manual_seed(123)  # global state before the run must not matter
    result = gankit.train("pix2pix", data=str(emoji_small), run_dir=run, **TINY_PIX2PIX)
    assert result.step == TOTAL_STEPS and result.epoch == 3 and not result.interrupted
    return run


@pytest.mark.parametrize("stop_at", [7, 12])  # mid-epoch, and exactly at an epoch end
def test_resume_reproduces_an_uninterrupted_run(uninterrupted, emoji_small, tmp_path, stop_at):
    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path, max_steps=stop_at,
                 **TINY_PIX2PIX)
    torch.manual_seed(999)  # the resumed process may have consumed random numbers
    resumed = resume_trainer(tmp_path, max_steps=None)
    assert resumed.step == stop_at
    resumed.fit()
    assert read_log(tmp_path) == read_log(uninterrupted)
    assert_same_weights(uninterrupted, tmp_path)


# SIGTERM is what schedulers (SLURM) send before preemption: handled as the first Ctrl-C, and
# a repeat of it never stops at once without saving.
@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM, signal.SIGTERM)])
def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(uninterrupted, emoji_small,
                                                             tmp_path, signals):
    t = trainer("pix2pix", data=str(emoji_small), run_dir=tmp_path, **TINY_PIX2PIX)
    original = t.model.train_step

    def step_then_interrupt(batch):
        losses = original(batch)
        if t.step == 4:  # the 5th step is running: Ctrl-C arrives in the middle of it
            for sig in signals:
                os.kill(os.getpid(), sig)
        return losses

    t.model.train_step = step_then_interrupt
    result = t.fit()
    assert result.interrupted and result.step == 5
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 5
    resume_trainer(tmp_path).fit()
    assert_same_weights(uninterrupted, tmp_path)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(emoji_small,
                                                                          tmp_path):
    t = trainer("pix2pix", data=str(emoji_small), run_dir=tmp_path,
                **{**TINY_PIX2PIX, "save_latest_every": 1})
    original = t.model.train_step

    def diverge(batch):
        losses = original(batch)
        if t.step == 3:
            losses["G_L1"] = torch.tensor(float("nan"))
        return losses

    t.model.train_step = diverge
    with pytest.raises(TrainingDiverged, match="step 4.*G_L1=nan.*last good checkpoint"):
        t.fit()
    state = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["networks"].values() if v.is_floating_point())


def test_run_folder_has_config_log_samples_page_and_numbered_checkpoints(emoji_small, tmp_path):
    opts = {**TINY_PIX2PIX, "sample_every": 6, "save_epoch_every": 1}
    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path, **opts)
    assert (tmp_path / "config.json").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt", "latest.pt"]
    grids = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert grids == ["step_0000006.png", "step_0000012.png", "step_0000018.png"]
    page = (tmp_path / "index.html").read_text()
    assert "loss_curves.png" in page and "samples/step_0000018.png" in page
    rows = read_log(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(1, TOTAL_STEPS + 1))
    assert {"G_GAN", "G_L1", "D_real", "D_fake", "lr"} <= set(rows[0])


def test_linear_decay_matches_the_paper():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(opt, TrainConfig(epochs=3, epochs_decay=3, lr_policy="linear"))
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        step_scheduler(sched, 0.0)
    # the reference's schedule: 1 - max(0, E + 1 - 3) / 4 in 1-based epoch E (test_schedules.py)
    assert lrs == pytest.approx([1, 1, 0.75, 0.5, 0.25, 0])


@pytest.mark.parametrize("policy", ["step", "cosine", "plateau", "constant"])
def test_other_policies_build_and_step(policy):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(opt, TrainConfig(epochs=2, epochs_decay=2, lr_policy=policy,
                                             lr_step_epochs=1))
    if policy == "plateau":
        sched.patience = 0
    for _ in range(3):
        opt.step()
        step_scheduler(sched, 1.0)
    lr = opt.param_groups[0]["lr"]
    assert lr == 1.0 if policy == "constant" else lr < 1.0


def test_fewer_images_than_batch_size(emoji_small, tmp_path):
    with pytest.raises(DataError, match="fewer than the batch size 64"):
        trainer("pix2pix", data=str(emoji_small), run_dir=tmp_path,
                **{**TINY_PIX2PIX, "batch_size": 64})


def test_resume_refuses_another_model_and_model_options(uninterrupted):
    with pytest.raises(CheckpointError, match="holds a pix2pix checkpoint, not cyclegan"):
        resume_trainer(uninterrupted, model="cyclegan")
    with pytest.raises(ConfigError, match="only training options"):
        resume_trainer(uninterrupted, lambda_l1=3.0)
    with pytest.raises(ConfigError, match="batch_size cannot change on resume"):
        resume_trainer(uninterrupted, batch_size=4)


def test_a_new_run_never_overwrites_an_existing_one(uninterrupted, emoji_small):
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        trainer("pix2pix", data=str(emoji_small), run_dir=uninterrupted, **TINY_PIX2PIX)


def test_images_of_different_sizes_in_one_batch(emoji_small, tmp_path):
    t = trainer("pix2pix", data=str(emoji_small), run_dir=tmp_path,
                **{**TINY_PIX2PIX, "preprocess": "none", "crop_size": 64, "load_size": 64})
    small = {k: (v[:, :32, :32] if isinstance(v, torch.Tensor) else v)
             for k, v in t.dataset[0].items()}
    with pytest.raises(DataError, match="different sizes.*--preprocess"):
        collate([t.dataset[1], small])


def test_tensorboard_logs_the_same_scalars(emoji_small, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path, max_steps=3,
                 tensorboard=True, **TINY_PIX2PIX)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"G_GAN", "G_L1", "D_real", "D_fake"} <= set(events.Tags()["scalars"])
    steps = [e.step for e in events.Scalars("G_L1")]
    logged = [float(r["G_L1"]) for r in read_log(tmp_path)]
    assert steps == [1, 2, 3]
    assert [e.value for e in events.Scalars("G_L1")] == pytest.approx(logged, rel=1e-4)
