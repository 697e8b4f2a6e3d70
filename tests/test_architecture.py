"""The codebase's contracts: models declare their data kind and metrics, every model file is
registered, saved models round-trip everything (extra state included), layers point down."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest
import torch

import gankit
import gankit.models
from gankit.cli import main as cli
from gankit.data.kinds import get_data_kind, list_data_kinds
from gankit.evaluation import usable_metrics
from gankit.export import save_release
from gankit.models.base import GANModel
from gankit.registry import get_model_class, list_models
from gankit.saved_model import MODEL_RECORD, REQUIRED, TRAINING_STATE

SRC = Path(gankit.__file__).parent


def test_every_model_file_is_registered():
    """A model file nobody listed anywhere is still found, registered and so tested."""
    registered_modules = {get_model_class(n).__module__ for n in list_models()}
    for info in pkgutil.iter_modules(gankit.models.__path__):
        module = __import__(f"gankit.models.{info.name}", fromlist=["_"])
        defines_model = any(
            isinstance(v, type) and issubclass(v, GANModel) and "name" in vars(v)
            and v.__module__ == module.__name__ for v in vars(module).values())
        assert defines_model == (module.__name__ in registered_modules), info.name


@pytest.mark.parametrize("name", list_models())
def test_each_model_declares_a_known_data_kind_and_metrics(name):
    cls = get_model_class(name)
    kind = get_data_kind(cls.data_kind)
    assert cls.metrics and set(cls.metrics) <= {"l1", "psnr", "ssim", "fid", "kid"}
    if not kind.has_targets:
        assert usable_metrics_of(cls)[0] in ("fid", "kid")


def usable_metrics_of(cls):
    class Probe:  # usable_metrics reads only the class attributes and the task
        task, data_kind, metrics, name = cls.task, cls.data_kind, cls.metrics, cls.name

    return usable_metrics(Probe())  # type: ignore[arg-type]


def test_data_kinds_own_their_keys_and_targets():
    assert {"paired", "unpaired", "colorization", "single", "images"} <= set(list_data_kinds())
    assert get_data_kind("paired").has_targets and not get_data_kind("unpaired").has_targets
    assert get_data_kind("colorization").target_is_input
    assert get_data_kind("images").shapes_model
    assert usable_metrics_of(get_model_class("pix2pix"))[0] == "l1"
    assert usable_metrics_of(get_model_class("cyclegan")) == ("fid", "kid")
    with pytest.raises(gankit.errors.ConfigError, match="unknown data kind"):
        get_data_kind("triplets")


def test_release_keeps_extra_state(tmp_path, capsys):
    """A cgan whose classes are cat/dog/zebra comes back with those names, so --label dog
    works on the release as on the checkpoint."""
    torch.manual_seed(0)
    model = gankit.create("cgan", net="dcgan", ngf=8, ndf=8, image_size=16, channels=1,
                          num_classes=3)
    model.class_names = ["cat", "dog", "zebra"]
    out = save_release(model, tmp_path / "release")
    back = gankit.load(out, device="cpu")
    assert back.extra_state() == model.extra_state()
    assert back.label_index("dog") == 1
    assert cli(["sample", str(out), "--n", "2", "--label", "dog",
                "--out", str(tmp_path / "dogs.png")]) == 0
    assert (tmp_path / "dogs.png").is_file()


def test_cyclegan_release_leaves_training_state_out(tmp_path):
    model = gankit.create("cyclegan", generator="resnet_6blocks", ngf=8, ndf=8, pool_size=2)
    model.pool_fake_a.query(torch.zeros(1, 3, 8, 8))
    back = gankit.load(save_release(model, tmp_path / "r.safetensors"), device="cpu")
    assert len(model.pool_fake_a) == 1 and len(back.pool_fake_a) == 0  # training state only


def test_checkpoint_schema_is_declared_once():
    assert set(REQUIRED) <= set(MODEL_RECORD) | set(TRAINING_STATE)
    assert {"model", "model_config", "networks", "train_config", "rng", "step"} <= set(REQUIRED)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


# package -> modules it must never import (even inside a function): the layers point down.
FORBIDDEN = {
    "data": ("gankit.api", "gankit.build", "gankit.evaluation", "gankit.models", "gankit.train"),
    "nn": ("gankit.api", "gankit.build", "gankit.evaluation", "gankit.models", "gankit.train",
           "gankit.data"),
    "models": ("gankit.api", "gankit.build", "gankit.evaluation", "gankit.train.engine",
               "gankit.train.strategy"),
    "build.py": ("gankit.api", "gankit.evaluation", "gankit.train.engine"),
    "evaluation.py": ("gankit.api", "gankit.train.engine"),
    "saved_model.py": ("gankit.api", "gankit.train.engine", "gankit.export"),
    "train": ("gankit.api",),
}


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_layers_point_down(where):
    target = SRC / where
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    for path in files:
        bad = sorted(m for m in _imports(path)
                     if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[where]))
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
