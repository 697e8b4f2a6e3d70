"""ONNX and TorchScript exports of generative models: z (and labels) -> images, parity with the
PyTorch generator in eval mode, the metadata contract, the noise prior, releases, and
``gankit export`` on a generative checkpoint."""

from __future__ import annotations

import importlib.util
import json

import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import GENERATORS, save_generator_checkpoint, tiny_generator

import gankit
from gankit.cli import main as cli
from gankit.errors import CheckpointError, ConfigError
from gankit.export import export, save_release
from gankit.export.generator import draw_noise
from gankit.export.metadata import (
    GENERATOR_FORMAT_VERSION,
    GeneratorContract,
    ModelContract,
    generator_contract_for,
)
from gankit.export.onnx import read_onnx_contract
from gankit.export.torchscript import load_torchscript

TOL = 1e-4
NAMES = ["zero", "one", "two"]


def expected(model, z, labels):
    """What the model samples for this noise, in eval mode (gankit sample's path)."""
    return model.sample(len(z), labels, z=z)


def inputs(model, n, seed):
    z = model.noise(n, torch.Generator().manual_seed(seed)).cpu()
    labels = (torch.randint(model.config.num_classes, (n,), generator=torch.Generator()
                            .manual_seed(seed)) if model.conditional else None)
    return z, labels


def onnx_run(path, z, labels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z.numpy()}
    if labels is not None:
        feeds["labels"] = labels.numpy()
    return torch.from_numpy(session.run(["images"], feeds)[0])


def ts_run(path, z, labels):
    module, _ = load_torchscript(path)
    with torch.no_grad():
        return module(z) if labels is None else module(z, labels)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each case's model with its ONNX and TorchScript files, exported once."""
    out = {}
    for case in GENERATORS:
        folder = tmp_path_factory.mktemp(case)
        model = tiny_generator(case)
        out[case] = (model, export(model, "onnx", folder / "g.onnx"),
                     export(model, "torchscript", folder / "g.pt"))
    return out


@pytest.mark.parametrize("case", list(GENERATORS))
def test_exports_match_the_pytorch_generator_on_any_batch(exported, case):
    model, onnx_path, ts_path = exported[case]
    shape = model.image_shape
    for n in (1, 4, 7):  # the batch is dynamic
        z, labels = inputs(model, n, seed=n)
        want = expected(model, z, labels)
        assert want.std() > 0.05, "samples too flat to tell a wrong export apart"
        for label, got in (("onnx", onnx_run(onnx_path, z, labels)),
                           ("torchscript", ts_run(ts_path, z, labels))):
            assert got.shape == (n, *shape) and got.dtype == torch.float32, label
            err = (got - want).abs().max().item()
            assert err < TOL, f"{label} {case} batch {n}: max error {err}"
            assert got.min() >= -1.0 and got.max() <= 1.0
    if model.conditional:  # the label input is used, not constant-folded
        z, _ = inputs(model, 3, seed=0)
        zeros, ones = torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long)
        assert (onnx_run(onnx_path, z, zeros) - onnx_run(onnx_path, z, ones)).abs().max() > 0.05


def test_graph_inputs_and_outputs(exported):
    for case in ("dcgan", "acgan"):
        model, onnx_path, _ = exported[case]
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = {i.name: (i.type, i.shape) for i in session.get_inputs()}
        want = {"z": ("tensor(float)", ["batch", model.config.latent_dim])}
        if model.conditional:
            want["labels"] = ("tensor(int64)", ["batch"])
        assert got == want
        (out,) = session.get_outputs()
        assert out.name == "images" and out.shape == ["batch", *model.image_shape]


def test_only_the_networks_that_sample_are_exported(exported):
    for case, networks in (("acgan", {"G"}), ("aae-mixture", {"decoder"}),
                           ("cgan-mlp", {"G"})):
        module, _ = load_torchscript(exported[case][2])
        assert {k.split(".")[1] for k in module.state_dict()} == networks, case
        weights = sum(t.numel() for t in module.state_dict().values())
        assert weights == sum(p.numel() for n in networks
                              for p in getattr(exported[case][0], n).state_dict().values())


def test_metadata_says_what_a_deployer_needs(tmp_path):
    model = tiny_generator("cgan-mlp", class_names=NAMES)
    path = export(model, "onnx", tmp_path / "g.onnx")
    contract = read_onnx_contract(path)
    assert isinstance(contract, GeneratorContract)
    assert contract == generator_contract_for(model)
    assert contract.latent_dim == 10 and contract.conditional and contract.num_classes == 3
    assert contract.class_names == tuple(NAMES) and contract.image_shape == (1, 16, 16)
    assert contract.prior == {"distribution": "normal", "mean": 0.0, "std": 1.0}
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert props["task"] == "generation" and props["image_shape"] == [1, 16, 16]
    assert props["class_names"] == NAMES and props["label_name"] == "labels"
    assert props["format_version"] == GENERATOR_FORMAT_VERSION
    assert "labels int64 (N,) in 0..2 (zero, one, two)" in props["description"]
    _, ts_contract = load_torchscript(export(model, "torchscript", tmp_path / "g.pt"))
    assert ts_contract == contract
    # A gankit that reads translation contracts only says it is too old, not "incomplete".
    with pytest.raises(CheckpointError, match="newer gankit"):
        ModelContract.from_dict(props, source="g.onnx")
    unconditional = generator_contract_for(tiny_generator("dcgan"))
    assert not unconditional.conditional and unconditional.class_names == ()
    assert unconditional.label_name == "" and unconditional.num_classes == 0


@pytest.mark.parametrize("case", ["dcgan", "aae-mixture"])
def test_draw_noise_is_the_models_noise(case):
    """Exports leave z to the caller; gankit draws it from the prior in the metadata exactly
    as the model does, so a seed gives the same images with every backend."""
    model = tiny_generator(case)
    contract = generator_contract_for(model)
    for seed in (0, 5):
        want = model.noise(9, torch.Generator().manual_seed(seed)).cpu()
        got = draw_noise(contract, 9, torch.Generator().manual_seed(seed))
        assert torch.equal(got, want)
    if case == "aae-mixture":
        assert contract.prior["distribution"] == "mixture" and contract.prior["components"] == 10


def test_gankit_export_on_a_generative_checkpoint(tmp_path, capsys):
    model = tiny_generator("acgan", class_names=[f"c{i}" for i in range(5)])
    ckpt = save_generator_checkpoint(tmp_path / "latest.pt", model)
    out = tmp_path / "acgan.onnx"
    assert cli(["export", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert f"gankit serve {out}" in capsys.readouterr().out
    contract = read_onnx_contract(out)
    assert contract.class_names == tuple(f"c{i}" for i in range(5))
    z, labels = inputs(model, 4, seed=2)
    assert (onnx_run(out, z, labels) - expected(model, z, labels)).abs().max() < TOL
    for flags, words in ((["--reverse"], "leave --reverse out"),
                         (["--inference-mode", "train"], "samples in eval mode")):
        assert cli(["export", str(ckpt), "--format", "onnx", "--out",
                    str(tmp_path / "x.onnx"), *flags]) == 2
        assert words in capsys.readouterr().err
    with pytest.raises(ConfigError, match="apply to --format onnx only"):
        export(model, "torchscript", tmp_path / "x.pt", opset=17)


def test_generative_releases_keep_class_names_and_export(tmp_path):
    model = tiny_generator("cgan-conv", class_names=["cat", "dog", "owl", "fox"])
    release = save_release(model, tmp_path / "release")
    config = json.loads((release / "config.json").read_text())
    assert config["extra"]["class_names"] == ["cat", "dog", "owl", "fox"]
    assert config["sampling"] == generator_contract_for(model).to_dict()
    assert "preprocessing" not in config
    loaded = gankit.load(release, device="cpu")
    assert loaded.class_names == ["cat", "dog", "owl", "fox"]
    z, labels = inputs(model, 5, seed=3)
    assert torch.equal(expected(loaded, z, labels), expected(model, z, labels))
    onnx_path = export(release, "onnx", tmp_path / "g.onnx")
    assert read_onnx_contract(onnx_path).class_names == ("cat", "dog", "owl", "fox")
    assert (onnx_run(onnx_path, z, labels) - expected(model, z, labels)).abs().max() < TOL


@pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None,
                    reason="the dynamo ONNX exporter needs onnxscript")
def test_dynamo_exporter_matches_too(tmp_path):
    model = tiny_generator("acgan")
    path = export(model, "onnx", tmp_path / "g.onnx", exporter="dynamo")
    for n in (1, 4):
        z, labels = inputs(model, n, seed=n)
        assert (onnx_run(path, z, labels) - expected(model, z, labels)).abs().max() < TOL
