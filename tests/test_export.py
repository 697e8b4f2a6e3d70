"""ONNX and TorchScript exports: parity with eager PyTorch, dynamic sizes, train/eval mode,
the metadata contract, and ``gankit export`` on a real checkpoint."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import images, save_tiny_checkpoint, tiny

import gankit
from gankit.cli import main as cli
from gankit.errors import ConfigError
from gankit.export import contract_for, export
from gankit.export.metadata import ModelContract, resolve_train_mode
from gankit.export.onnx import read_onnx_contract
from gankit.export.torchscript import is_torchscript, load_torchscript

TOL = 1e-4


def onnx_run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["output"], {"input": x.numpy()})[0])


def ts_run(path, x):
    module, _ = load_torchscript(path)
    with torch.no_grad():
        return module(x)


UNET_SIZES = [(2, 64, 96), (1, 32, 160), (3, 128, 64)]  # batch, height, width
RESNET_SIZES = [(2, 36, 52), (1, 8, 100), (3, 64, 40)]
CASES = {  # model, reverse, sizes
    "pix2pix-unet": ("pix2pix", False, UNET_SIZES),
    "cyclegan-AtoB": ("cyclegan", False, RESNET_SIZES),
    "cyclegan-BtoA": ("cyclegan", True, RESNET_SIZES),
    "colorization": ("colorization", False, UNET_SIZES),  # RGB -> L -> ab -> RGB in the graph
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each case's model with its eval-mode ONNX and TorchScript files, exported once."""
    out = {}
    for case, (name, reverse, _sizes) in CASES.items():
        folder = tmp_path_factory.mktemp(case)
        model = tiny(name)
        if name == "colorization":
            model.data_config = gankit.api.DataConfig(crop_size=96)
        out[case] = (model,
                     export(model, "onnx", folder / "m.onnx", reverse=reverse,
                            inference_mode="eval"),
                     export(model, "torchscript", folder / "m.pt", reverse=reverse,
                            inference_mode="eval"))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_eval_exports_match_eager_on_several_sizes(exported, case):
    name, reverse, sizes = CASES[case]
    model, onnx_path, ts_path = exported[case]
    channels = model.io_channels(reverse)[0]
    for n, h, w in sizes:
        x = images((n, channels, h, w), seed=h + w)
        expected = model.translate_tensor(x, reverse=reverse, train_mode=False)
        assert expected.std() > 0.1, "outputs too flat to tell a wrong export apart"
        for label, got in (("onnx", onnx_run(onnx_path, x)), ("torchscript", ts_run(ts_path, x))):
            assert got.shape == (n, model.io_channels(reverse)[1], h, w), label
            err = (got - expected).abs().max().item()
            assert err < TOL, f"{label} {name} {(n, h, w)}: max error {err}"
    if name == "cyclegan":  # the two directions are different networks
        other = model.translate_tensor(x, reverse=not reverse, train_mode=False)
        assert (other - expected).abs().max() > 0.05


def test_onnx_axes_are_symbolic(exported):
    proto = onnx.load(str(exported["pix2pix-unet"][1]))
    for value in (*proto.graph.input, *proto.graph.output):
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", 3, "height", "width"]


def perturb_running_stats(model, seed=1):
    """Running statistics far from any batch's, so eval and train mode differ clearly."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 3 + 0.5)


def test_train_mode_batch_statistics_match_eager_one_image_at_a_time(tmp_path):
    # No dropout, so train mode is deterministic: each image normalised with its own
    # statistics (gankit runs train-mode inference one image at a time), in a batch of 3.
    model = tiny("pix2pix", dropout=False)
    perturb_running_stats(model)
    onnx_path = export(model, "onnx", tmp_path / "t.onnx", inference_mode="train")
    ts_path = export(model, "torchscript", tmp_path / "t.pt", inference_mode="train")
    eval_path = export(model, "onnx", tmp_path / "e.onnx", inference_mode="eval")
    assert read_onnx_contract(onnx_path).inference_mode == "train"
    for n, h, w in [(3, 64, 96), (2, 32, 64)]:
        x = images((n, 3, h, w), seed=n)
        expected = model.translate_tensor(x, train_mode=True)
        assert (model.translate_tensor(x, train_mode=False) - expected).abs().max() > 0.05
        assert (onnx_run(eval_path, x) - expected).abs().max() > 0.05
        assert (onnx_run(onnx_path, x) - expected).abs().max() < TOL
        assert (ts_run(ts_path, x) - expected).abs().max() < TOL
    # The running statistics of the model were not touched by exporting.
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.num_batches_tracked.item() == 0


def test_train_mode_keeps_dropout_on(tmp_path):
    model = tiny("pix2pix", dropout=True)
    x = images((1, 3, 64, 64))
    train_onnx = export(model, "onnx", tmp_path / "t.onnx", inference_mode="train")
    eval_onnx = export(model, "onnx", tmp_path / "e.onnx", inference_mode="eval")
    session = ort.InferenceSession(str(train_onnx), providers=["CPUExecutionProvider"])
    first, second = (session.run(None, {"input": x.numpy()})[0] for _ in range(2))
    assert np.abs(first - second).max() > 0.01  # random masks survive ORT's optimisations
    assert np.abs(onnx_run(eval_onnx, x).numpy() - onnx_run(eval_onnx, x).numpy()).max() == 0
    # TorchScript keeps torch's own dropout: with the same seed it draws the same masks as
    # eager train-mode inference of one image.
    ts_path = export(model, "torchscript", tmp_path / "t.pt", inference_mode="train")
    module, _ = load_torchscript(ts_path)
    torch.manual_seed(7)
    expected = model.translate_tensor(x, train_mode=True)  # forks the RNG: state unchanged
    with torch.no_grad():
        got = module(x)
    assert (got - expected).abs().max() < TOL
    with torch.no_grad():
        assert (module(x) - got).abs().max() > 0.01  # the next draw differs


def test_inference_mode_follows_the_model_unless_given():
    model = tiny("pix2pix")  # pix2pix's auto: train mode only after batch-size-1 training
    model.config.inference_mode = "auto"
    model.trained_batch_size = 1
    assert resolve_train_mode(model, None) is True
    assert resolve_train_mode(model, "eval") is False
    model.trained_batch_size = 4
    assert resolve_train_mode(model, None) is False
    assert resolve_train_mode(model, "train") is True
    with pytest.raises(ConfigError, match="unknown inference mode"):
        resolve_train_mode(model, "sometimes")


def test_metadata_contract_in_both_files(exported):
    model, onnx_path, ts_path = exported["colorization"]
    contract = contract_for(model, train_mode=False)
    assert (contract.in_channels, contract.out_channels) == (3, 3)  # RGB in, RGB out
    assert (contract.size_multiple, contract.min_size, contract.image_size) == (32, 32, 96)
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["value_range"]) == [-1.0, 1.0]
    assert json.loads(props["in_channels"]) == 3 and json.loads(props["size_multiple"]) == 32
    assert json.loads(props["model"]) == "colorization"
    assert json.loads(props["inference_mode"]) == "eval"
    assert read_onnx_contract(onnx_path) == contract
    assert load_torchscript(ts_path)[1] == contract
    assert is_torchscript(ts_path) and not is_torchscript(onnx_path)


def test_resnet_min_size_is_probed():
    contract = contract_for(tiny("cyclegan"))
    # 4x4 leaves a 1x1 bottleneck that reflection padding cannot pad; 8x8 works.
    assert (contract.size_multiple, contract.min_size) == (4, 8)
    assert ModelContract.from_dict(contract.to_dict()) == contract


def test_pix2pix_has_no_reverse():
    with pytest.raises(ConfigError, match="one way only"):
        contract_for(tiny("pix2pix"), reverse=True)


@pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None,
                    reason="the dynamo ONNX exporter needs onnxscript, which is not installed")
def test_dynamo_exporter_matches_eager(tmp_path):
    model = tiny("pix2pix")
    path = export(model, "onnx", tmp_path / "d.onnx", inference_mode="eval", exporter="dynamo")
    x = images((2, 3, 64, 96))
    assert (onnx_run(path, x) - model.translate_tensor(x, train_mode=False)).abs().max() < TOL


# --- the command line on a checkpoint -------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt",
                                tiny("pix2pix"), crop_size=64)


def test_cli_exports_a_checkpoint(checkpoint, tmp_path, capsys):
    assert cli(["export", str(checkpoint), "--format", "onnx", "--out",
                str(tmp_path / "m.onnx"), "--inference-mode", "eval"]) == 0
    assert "gankit serve" in capsys.readouterr().out
    assert cli(["export", str(checkpoint), "--format", "torchscript", "--out",
                str(tmp_path / "m.pt"), "--inference-mode", "eval"]) == 0
    model = gankit.load(checkpoint, device="cpu")
    x = images((1, 3, 32, 64))
    expected = model.translate_tensor(x, train_mode=False)
    assert (onnx_run(tmp_path / "m.onnx", x) - expected).abs().max() < TOL
    assert (ts_run(tmp_path / "m.pt", x) - expected).abs().max() < TOL
    assert read_onnx_contract(tmp_path / "m.onnx").image_size == 64  # the training crop size


def test_cli_export_errors(checkpoint, tmp_path, capsys):
    assert cli(["export", str(checkpoint), "--format", "onnx", "--out",
                str(tmp_path / "x.onnx"), "--reverse"]) == 2
    assert "one way only" in capsys.readouterr().err
    assert cli(["export", str(checkpoint), "--format", "torchscript", "--out",
                str(tmp_path / "x.pt"), "--opset", "13"]) == 2
    assert "--format onnx only" in capsys.readouterr().err
    assert cli(["export", str(tmp_path / "missing"), "--format", "onnx", "--out",
                str(tmp_path / "y.onnx")]) == 2
    assert "missing" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written
