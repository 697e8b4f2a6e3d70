"""--fast and its pieces: what each machine gets, explicit options winning, bf16 and
channels-last training that still learns and resumes exactly, and torch.compile."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import gankit
from gankit.cli import main as cli_main
from gankit.data.image_io import read_image
from gankit.errors import ConfigError
from gankit.train import acceleration
from gankit.train.acceleration import CpuInfo, parse_cpuinfo, resolve
from gankit.train.config import TrainConfig

from conftest import TINY_PIX2PIX, emoji_names, link_emoji_pairs

CPU = torch.device("cpu")

AMD_AVX2 = """processor : 0
model name : AMD EPYC 7B12
flags : fpu sse sse2 avx avx2 fma f16c
"""
INTEL_BF16 = """processor : 0
model name : Intel(R) Xeon(R) Platinum 8481C
flags : fpu avx avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile
"""


def fake_cpu(monkeypatch, bf16: bool) -> None:
    info = CpuInfo("test CPU", "AVX512" if bf16 else "AVX2", bf16, False, ())
    monkeypatch.setattr(acceleration, "cpu_info", lambda: info)


def test_cpuinfo_is_parsed_for_name_and_flags():
    name, flags = parse_cpuinfo(INTEL_BF16)
    assert name.startswith("Intel(R) Xeon") and {"avx512_bf16", "amx_tile"} <= flags
    name, flags = parse_cpuinfo(AMD_AVX2)
    assert name == "AMD EPYC 7B12" and "avx512_bf16" not in flags
    info = acceleration.cpu_info()  # the real machine: named, and in the benchmark tables
    assert info.name and info.summary.startswith(info.name)


@pytest.mark.parametrize("bf16", [True, False])
def test_fast_on_cpu_picks_bf16_only_where_the_cpu_has_it(monkeypatch, bf16):
    fake_cpu(monkeypatch, bf16)
    acc = resolve(TrainConfig(fast=True), CPU)
    assert acc.precision == ("bf16" if bf16 else "fp32")
    assert acc.channels_last and not acc.compile and not acc.tf32 and not acc.cuda_graphs
    plain = resolve(TrainConfig(), CPU)  # without --fast nothing changes
    assert plain == acceleration.Acceleration()


def test_explicit_options_win_over_fast(monkeypatch):
    fake_cpu(monkeypatch, True)
    acc = resolve(TrainConfig(fast=True, precision="fp32", channels_last=False, compile=True),
                  CPU)
    assert (acc.precision, acc.channels_last, acc.compile) == ("fp32", False, True)
    fake_cpu(monkeypatch, False)
    assert resolve(TrainConfig(precision="bf16"), CPU).precision == "bf16"  # emulated, warned


@pytest.mark.parametrize("options, message", [
    ({"precision": "fp16"}, "fp16 needs a CUDA GPU"),
    ({"cuda_graphs": True}, "--cuda-graphs needs a CUDA GPU"),
])
def test_gpu_only_settings_on_cpu_are_refused_with_the_fix(options, message):
    with pytest.raises(ConfigError, match=message):
        resolve(TrainConfig(**options), CPU)


def test_tf32_is_a_no_op_off_cuda():
    assert not resolve(TrainConfig(tf32=True), CPU).tf32


def test_fast_flags_come_from_the_config(capsys):
    assert cli_main(["train", "pix2pix", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--fast", "--precision", "--channels-last", "--no-channels-last", "--compile",
                 "--tf32", "--cuda-graphs"):
        assert flag in text


# --- training in bf16 + channels-last --------------------------------------------------------
def held_out_l1(model, shared: Path, names: list[str]) -> float:
    a = torch.stack([read_image(shared / "emoji" / "twitter" / n, 3) for n in names])
    b = torch.stack([read_image(shared / "emoji" / "google" / n, 3) for n in names])
    a, b = (torch.nn.functional.interpolate(t, size=32, mode="area") for t in (a, b))
    return (model.translate(a, train_mode=False) - b).abs().mean().item()


@pytest.mark.slow
def test_bf16_channels_last_training_learns_like_fp32(shared_data, tmp_path):
    """The same run in fp32 and in bf16 + channels-last (what --fast picks on a CPU with bf16;
    asked for explicitly so the test means the same on every CPU): both beat the untrained
    model clearly on held-out emoji, and bf16 ends close to fp32."""
    names = emoji_names(shared_data)
    held_out, train = names[5::60][:32], [n for n in names[::30] if n not in names[5::60]][:64]
    data = link_emoji_pairs(shared_data, tmp_path / "pairs", train)
    options = {**TINY_PIX2PIX, "generator": "unet_32", "ngf": 16, "ndf": 16, "lr": 1e-3,
               "batch_size": 8, "flip": False, "epochs": 6, "epochs_decay": 0,
               "lr_policy": "constant", "load_size": 32}
    l1 = {}
    for name, extra in (("fp32", {}), ("bf16", {"precision": "bf16", "channels_last": True})):
        trainer = gankit.api.trainer("pix2pix", data=str(data), run_dir=tmp_path / name,
                                     **options, **extra)
        if name == "bf16":
            assert trainer.acceleration.precision == "bf16" and trainer.model.channels_last
            convs = [m for m in trainer.model.G.modules() if isinstance(m, torch.nn.Conv2d)]
            assert convs[1].weight.is_contiguous(memory_format=torch.channels_last)
        trainer.fit()
        l1[name] = held_out_l1(gankit.load(tmp_path / name), shared_data, held_out)
    torch.manual_seed(0)
    untrained = held_out_l1(gankit.create("pix2pix", generator="unet_32", ngf=16, ndf=16),
                            shared_data, held_out)
    print(f"\nheld-out L1 after 48 steps: fp32 {l1['fp32']:.4f}, bf16 + channels-last "
          f"{l1['bf16']:.4f}, untrained {untrained:.4f}")
    assert l1["fp32"] < 0.6 * untrained and l1["bf16"] < 0.6 * untrained
    assert abs(l1["bf16"] - l1["fp32"]) < 0.15 * l1["fp32"]


def test_bf16_channels_last_run_resumes_exactly(tmp_path):
    options = {**TINY_PIX2PIX, "data": "builtin:shapes", "max_items": 8, "precision": "bf16",
               "channels_last": True}
    whole = gankit.train("pix2pix", run_dir=tmp_path / "whole", max_steps=6, **options)
    gankit.train("pix2pix", run_dir=tmp_path / "part", max_steps=3, **options)
    resumed = gankit.resume(tmp_path / "part", max_steps=6)
    assert resumed.step == whole.step == 6
    a = torch.load(whole.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    for key, tensor in a["networks"].items():
        assert torch.equal(tensor, b["networks"][key]), key
    assert b["train_config"]["precision"] == "bf16"


# --- torch.compile ---------------------------------------------------------------------------
def test_compile_skips_networks_that_need_a_double_backward():
    model = gankit.create("wgan_gp", image_size=16, channels=1, ngf=4, ndf=4)
    assert acceleration.compile_networks(model) == ["G"]
    assert model.D._compiled_call_impl is None and model.G._compiled_call_impl is not None
    pix = gankit.create("pix2pix", generator="unet_32", ngf=4, ndf=4, gan_mode="wgan-gp")
    assert acceleration.compile_networks(pix) == ["G"]
    pix = gankit.create("pix2pix", generator="unet_32", ngf=4, ndf=4)
    assert acceleration.compile_networks(pix) == ["G", "D"]


def test_compiled_training_matches_eager_and_saves_plain_checkpoints(shared_data, tmp_path,
                                                                     monkeypatch):
    """--compile: a few steps of the MLP gan through torch.compile's graphs give the losses
    of eager training, and the checkpoint loads into an uncompiled model. The aot_eager
    backend traces and builds the autograd graphs as inductor does, without its minutes of
    C++ code generation on this CPU (the benchmark runs inductor itself)."""
    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "aot_eager")
    options = {"data": str(shared_data / "mnist"), "phase": "test", "max_items": 256,
               "workers": 0, "progress": False, "batch_size": 64, "max_steps": 4,
               "log_every": 1, "sample_every": 0, "save_latest_every": 0,
               "save_epoch_every": 0, "hidden_g": 32, "hidden_d": 32}
    eager = gankit.train("gan", run_dir=tmp_path / "eager", **options)
    compiled_trainer = gankit.api.trainer("gan", run_dir=tmp_path / "compiled", compile=True,
                                          **options)
    assert compiled_trainer.acceleration.compile
    compiled = compiled_trainer.fit()
    for key, value in eager.losses.items():
        assert compiled.losses[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
    state = torch.load(compiled.checkpoint, weights_only=True)
    assert not any("_orig_mod" in k for k in state["networks"])
    model = gankit.load(compiled.run_dir)
    assert model.sample(4, seed=0).shape == (4, 1, 28, 28)


def test_acceleration_is_resolved_again_on_resume(tmp_path):
    options = {**TINY_PIX2PIX, "data": "builtin:shapes", "max_items": 4}
    gankit.train("pix2pix", run_dir=tmp_path / "run", max_steps=2, **options)
    trainer = gankit.api.resume_trainer(tmp_path / "run", max_steps=3, channels_last=True)
    assert trainer.acceleration.channels_last and trainer.model.channels_last
    assert replace(trainer.acceleration, channels_last=False) == acceleration.Acceleration()


# --- CPU threads -----------------------------------------------------------------------------
def test_usable_cores_leaves_out_the_cores_other_processes_keep_busy(monkeypatch):
    from gankit import cpu_threads

    samples = iter([(1000.0, 4000.0), (1000.0 + 50.0, 4000.0 + 100.0)])  # half the CPU busy
    monkeypatch.setattr(cpu_threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: {0, 1})
    assert cpu_threads.usable_cores(seconds=0.0) == 1
    samples = iter([(1000.0, 4000.0), (1000.0 + 100.0, 4000.0 + 100.0)])  # all busy: still 1
    assert cpu_threads.usable_cores(seconds=0.0) == 1
    samples = iter([(1000.0, 4000.0), (1000.0, 4000.0 + 100.0)])  # idle: every core
    assert cpu_threads.usable_cores(seconds=0.0) == 2


def test_fast_on_cpu_takes_the_free_cores_and_an_explicit_count_wins(monkeypatch):
    fake_cpu(monkeypatch, False)
    monkeypatch.setattr(acceleration, "usable_cores", lambda: 1)
    assert resolve(TrainConfig(fast=True), CPU).threads == 1
    assert resolve(TrainConfig(fast=True, threads=2), CPU).threads == 2
    assert resolve(TrainConfig(), CPU).threads is None  # torch's default without --fast


@pytest.mark.parametrize("cores, expected", [(1, 0), (2, 0), (4, 2), (8, 4), (64, 4)])
def test_loader_workers_default_leaves_small_machines_to_the_training_threads(
        monkeypatch, cores, expected):
    from gankit import cpu_threads
    from gankit.data import config as data_config

    monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert data_config.loader_workers(None) == expected
    assert data_config.loader_workers(3) == 3  # a count given by hand is kept
