"""Checkpoints: self-describing, atomic, weights_only-loadable, and clear about bad files."""

import errno
import os

import pytest
import torch

import gankit
from gankit.errors import CheckpointError, GankitError
from gankit.train import checkpoint as ckpt_mod
from gankit.train.checkpoint import load_checkpoint, save_checkpoint

from conftest import TINY_PIX2PIX


@pytest.fixture(scope="module")
def trained_run(emoji_small, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    gankit.train("pix2pix", data=str(emoji_small), run_dir=run, max_steps=3, **TINY_PIX2PIX)
    return run


def test_checkpoint_holds_everything_and_loads_weights_only(trained_run):
    path = trained_run / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    assert state["format"] == "gankit-checkpoint" and state["model"] == "pix2pix"
    for key in ("model_config", "data_config", "train_config", "networks", "optimizers",
                "schedulers", "rng", "epoch", "step", "epoch_step"):
        assert key in state
    assert state["step"] == 3 and set(state["optimizers"]) == {"G", "D"}
    assert state["optimizers"]["G"]["state"], "Adam moments must be saved for exact resume"


def test_load_rebuilds_the_model_without_any_options(trained_run):
    model = gankit.load(trained_run, device="cpu")
    assert model.name == "pix2pix" and model.config.generator == "unet_32"
    assert model.trained_batch_size == 2 and model.inference_train_mode is False  # auto
    state = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["networks"][k]), k
    out = model.translate(torch.zeros(3, 45, 70))  # any size, non-square
    assert out.shape == (3, 45, 70)


def test_random_file_is_rejected_clearly(tmp_path):
    junk = tmp_path / "weights.pt"
    junk.write_bytes(os.urandom(1000))  # any random content must be refused cleanly
    with pytest.raises(CheckpointError, match="not a readable gankit checkpoint"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a gankit checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a readable gankit checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_checkpoint(tmp_path)


def test_truncated_checkpoint_is_rejected(trained_run, tmp_path):
    data = (trained_run / "checkpoints" / "latest.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="earlier numbered checkpoint"):
        load_checkpoint(cut)


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 1}, path)
    before = path.read_bytes()

    def full_disk(obj, f):
        # What torch does on a full disk: the OSError surfaces as a RuntimeError from its writer.
        f.write(b"partial data")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None

    monkeypatch.setattr(ckpt_mod.torch, "save", full_disk)
    with pytest.raises(GankitError, match="disk full.*previous checkpoint there is intact"):
        save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"], "temporary file left behind"


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"

    def interrupted(obj, f):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    assert list(tmp_path.iterdir()) == []
