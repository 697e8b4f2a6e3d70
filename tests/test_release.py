"""The release format: safetensors weights + config.json that gankit.load reads like a
checkpoint, with no optimizer state and nothing that unpickles."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from export_helpers import images, save_tiny_checkpoint, tiny
from safetensors import safe_open
from safetensors.torch import load_file

import gankit
from gankit.cli import main as cli
from gankit.errors import CheckpointError
from gankit.export import is_release, save_release
from gankit.export.release import CONFIG_NAME, METADATA_KEY, WEIGHTS_NAME


def assert_same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = tiny("cyclegan")
    for m in model.modules():  # buffers other than weights must survive too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.25)
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "c.pt", model,
                                crop_size=72, batch_size=1)


def test_cli_release_folder_loads_like_the_checkpoint(checkpoint, tmp_path, capsys):
    out = tmp_path / "release"
    assert cli(["export", str(checkpoint), "--format", "release", "--out", str(out)]) == 0
    assert "gankit serve" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert is_release(out) and is_release(out / WEIGHTS_NAME)

    original = gankit.load(checkpoint, device="cpu")
    released = gankit.load(out, device="cpu")
    assert type(released) is type(original)
    assert released.config == original.config
    assert released.data_config == original.data_config
    assert released.trained_batch_size == 1
    assert_same_model(released, original)
    x = images((1, 3, 16, 24))
    assert torch.equal(released.translate_tensor(x, reverse=True),
                       original.translate_tensor(x, reverse=True))

    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["format"] == "gankit-release" and config["model"] == "cyclegan"
    assert config["gankit_version"] == gankit.__version__
    assert config["data_config"]["crop_size"] == 72
    assert config["source"] == {"file": "c.pt"}
    forward, reverse = config["preprocessing"]["forward"], config["preprocessing"]["reverse"]
    assert forward["value_range"] == [-1.0, 1.0] and forward["layout"] == "NCHW"
    assert (forward["in_channels"], forward["size_multiple"], forward["min_size"]) == (3, 4, 8)
    assert reverse["reverse"] is True and forward["image_size"] == 72
    # Weights only: every network's tensors, and no optimizer, scheduler or RNG state.
    weights = load_file(str(out / WEIGHTS_NAME))
    assert set(weights) == set(original.state_dict())
    assert not any(k.startswith(("optim", "sched", "rng")) for k in weights)


def test_single_file_release_carries_its_config(tmp_path):
    model = tiny("colorization")
    model.trained_batch_size = 4
    path = save_release(model, tmp_path / "colorize.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colorize.safetensors"]
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()[METADATA_KEY])
    assert config["model"] == "colorization" and config["trained_batch_size"] == 4
    loaded = gankit.load(path, device="cpu")
    assert_same_model(loaded, model)
    assert loaded.trained_batch_size == 4


def test_loading_a_release_unpickles_nothing(tmp_path, monkeypatch):
    model = tiny("pix2pix")
    save_release(model, tmp_path / "r")

    def refuse(*_args, **_kwargs):
        raise AssertionError("a release must load without torch.load or pickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert_same_model(gankit.load(tmp_path / "r", device="cpu"), model)


def test_release_keeps_a_chosen_inference_mode(checkpoint, tmp_path):
    from gankit.export import export

    out = export(checkpoint, "release", tmp_path / "r", inference_mode="eval")
    loaded = gankit.load(out, device="cpu")
    assert loaded.config.inference_mode == "eval"
    assert json.loads((out / CONFIG_NAME).read_text())["preprocessing"]["forward"][
        "inference_mode"] == "eval"


def test_a_run_folder_is_not_taken_for_a_release(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    save_tiny_checkpoint(tmp_path / "checkpoints" / "latest.pt", tiny("pix2pix"))
    (tmp_path / "config.json").write_text("{}")  # as the engine writes into a run folder
    assert not is_release(tmp_path)
    assert gankit.load(tmp_path, device="cpu").name == "pix2pix"


def test_broken_releases_get_clear_errors(tmp_path):
    good = save_release(tiny("pix2pix"), tmp_path / "good")
    config = json.loads((good / CONFIG_NAME).read_text())

    bad_json = save_release(tiny("pix2pix"), tmp_path / "bad_json")
    (bad_json / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        gankit.load(bad_json)

    newer = save_release(tiny("pix2pix"), tmp_path / "newer")
    (newer / CONFIG_NAME).write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="upgrade gankit"):
        gankit.load(newer)

    cut = save_release(tiny("pix2pix"), tmp_path / "cut")
    data = (cut / WEIGHTS_NAME).read_bytes()
    (cut / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        gankit.load(cut)

    other = save_release(tiny("pix2pix"), tmp_path / "other")
    (other / CONFIG_NAME).write_text(json.dumps({**config, "model_config": {
        **config["model_config"], "ngf": 16}}))
    with pytest.raises(CheckpointError, match="do not fit"):
        gankit.load(other)

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        gankit.load(tmp_path / "junk.safetensors")
