"""The generator's exponential moving average (``--ema``): the update math, exact resume, what
inference loads, releases, the flag, and that training itself is left bit for bit unchanged."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.api import model_from_state, resume_trainer
from gankit.cli import main as cli
from gankit.cli import train_parser
from gankit.errors import ConfigError
from gankit.export import export
from gankit.models.translation import TranslationModel
from gankit.registry import get_model_class, list_models
from gankit.train.checkpoint import load_checkpoint
from gankit.train.ema import GeneratorEMA, warmed_decay

from conftest import TINY_PIX2PIX

REPO = Path(__file__).resolve().parents[1]
DECAY = 0.5  # reached at update 8 of the warm-up, so 18 steps cover both regimes
# A constant rate: with the paper's linear decay the last of 2 + 1 epochs trains at rate 0,
# and the average would catch up with weights that no longer move.
RUN = {**TINY_PIX2PIX, "epochs": 3, "epochs_decay": 0, "sample_every": 9, "eval_every": 9,
       "eval_images": 4}
TOTAL_STEPS = 18  # 12 pairs, batch 2, 3 epochs


class Toy(nn.Module):
    """A generator with a parameter, a batch norm (buffers) and a network that is not averaged."""

    generator_names = ("G",)

    def __init__(self) -> None:
        super().__init__()
        self.G = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        self.D = nn.Linear(2, 1)


def latest(run: Path) -> dict:
    return load_checkpoint(run / "checkpoints" / "latest.pt")


def losses_in_log(run: Path) -> list[dict]:
    with open(run / "log.csv") as f:
        return [{k: v for k, v in row.items() if k.startswith(("G_", "D_"))}
                for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def ema_run(emoji_small, tmp_path_factory):
    run = tmp_path_factory.mktemp("ema")
    result = gankit.train("pix2pix", data=str(emoji_small), run_dir=run, ema=DECAY, **RUN)
    assert result.step == TOTAL_STEPS
    return run


@pytest.fixture(scope="module")
def plain_run(emoji_small, tmp_path_factory):
    run = tmp_path_factory.mktemp("plain")
    gankit.train("pix2pix", data=str(emoji_small), run_dir=run, **RUN)
    return run


# --- the update ------------------------------------------------------------------------------
def test_warm_up_schedule():
    assert warmed_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_decay(0.999, 90) == pytest.approx(0.91)
    assert warmed_decay(0.99, 890) == pytest.approx(0.99)
    assert warmed_decay(0.99, 100_000) == 0.99


@pytest.mark.parametrize("warmup", [True, False])
def test_update_matches_a_hand_computation(warmup):
    torch.manual_seed(0)
    model = Toy()
    ema = GeneratorEMA(model, 0.8, warmup=warmup)
    expected = {k: v.clone() for k, v in model.G.state_dict().items()}
    for n in range(12):
        with torch.no_grad():
            for p in model.G.parameters():
                p.add_(torch.randn_like(p))
        model.G(torch.randn(4, 3))  # train mode: the running statistics move
        d = min(0.8, (1 + n) / (10 + n)) if warmup else 0.8
        assert ema.current_decay() == pytest.approx(d)
        for k, live in model.G.state_dict().items():
            if k.endswith(("weight", "bias")):
                expected[k] = d * expected[k] + (1 - d) * live
            else:  # buffers are the live network's
                expected[k] = live.clone()
        ema.update(model)
    assert ema.updates == 12
    for k, v in ema.averaged["G"].items():
        assert torch.allclose(v, expected[k], atol=1e-6, rtol=0), k
    assert set(ema.averaged) == {"G"}  # D is not averaged


def test_applied_swaps_the_average_in_and_puts_the_live_weights_back_exactly():
    torch.manual_seed(0)
    model = Toy()
    ema = GeneratorEMA(model, 0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.7).add_(0.1)
    ema.update(model)
    live = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied(model):
        for k, v in model.G.state_dict().items():
            assert torch.equal(v, ema.averaged["G"][k]), k
        assert torch.equal(model.D.weight, live["D.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, live[k]), k


def test_invalid_decay_is_rejected(emoji_small, tmp_path):
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="ema"):
            gankit.trainer("pix2pix", data=str(emoji_small), run_dir=tmp_path, ema=bad,
                           **TINY_PIX2PIX)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        GeneratorEMA(Toy(), 1.0)


@pytest.mark.parametrize("name", list_models())
def test_generator_names_cover_what_inference_runs(name):
    """Inference reads only the declared generator networks: with every other network of the
    model set to NaN, samples and translations stay finite."""
    torch.manual_seed(0)
    cls = get_model_class(name)
    if issubclass(cls, TranslationModel):
        generator = "resnet_6blocks" if name == "cyclegan" else "unet_32"
        small = {"ngf": 8, "ndf": 8, "generator": generator}  # those of them it has
        fields = set(cls.Config.__dataclass_fields__)
        model = gankit.create(name, **{k: v for k, v in small.items() if k in fields})
    else:
        model = gankit.create(name, image_size=28, channels=1, num_classes=10)
    names = set(cls.generator_names)
    children = dict(model.named_children())
    assert names <= set(children), f"{name}: {sorted(names - set(children))} are not networks"
    with torch.no_grad():
        for child, net in children.items():
            if child not in names:
                for t in [*net.parameters(), *net.buffers()]:
                    if t.is_floating_point():
                        t.fill_(math.nan)
    if isinstance(model, TranslationModel):
        directions = (False, True) if name == "cyclegan" else (False,)
        outs = [model.translate_tensor(torch.rand(1, model.io_channels(r)[0], 32, 32) * 2 - 1,
                                       reverse=r) for r in directions]
    else:
        outs = [model.sample(4, seed=0)]
        if hasattr(model, "reconstruct"):
            outs.append(model.reconstruct(outs[0]))
    assert all(torch.isfinite(o).all() for o in outs), name


# --- the engine ------------------------------------------------------------------------------
def test_ema_off_saves_no_average_and_ema_on_leaves_training_unchanged(ema_run, plain_run):
    plain, averaged = latest(plain_run), latest(ema_run)
    assert "ema" not in plain
    assert not gankit.load(plain_run).uses_ema
    # The average is a passenger: the live weights, optimizer states and losses are the same.
    for k, v in plain["networks"].items():
        assert torch.equal(v, averaged["networks"][k]), k
    for pid, s in plain["optimizers"]["G"]["state"].items():
        assert torch.equal(s["exp_avg"], averaged["optimizers"]["G"]["state"][pid]["exp_avg"])
    assert losses_in_log(plain_run) == losses_in_log(ema_run)
    # ... while the evaluation (and best.pt) judged the average, not the live weights.
    assert averaged["ema"]["updates"] == TOTAL_STEPS
    assert averaged["eval"]["best"]["value"] != plain["eval"]["best"]["value"]
    assert "ema" in load_checkpoint(ema_run / "checkpoints" / "best.pt")


def test_resume_continues_the_average_exactly(ema_run, emoji_small, tmp_path):
    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path, ema=DECAY, max_steps=7,
                 **RUN)
    stopped = latest(tmp_path)
    torch.manual_seed(999)
    trainer = resume_trainer(tmp_path, max_steps=None)
    # training resumes from the live weights, and the average separately
    for k, v in trainer.model.G.state_dict().items():
        assert torch.equal(v, stopped["networks"][f"G.{k}"]), k
    assert trainer.ema is not None and trainer.ema.updates == 7
    for k, v in trainer.ema.averaged["G"].items():
        assert torch.equal(v, stopped["ema"]["networks"]["G"][k]), k
    trainer.fit()
    a, b = latest(ema_run), latest(tmp_path)
    assert a["ema"]["updates"] == b["ema"]["updates"] == TOTAL_STEPS
    for k, v in a["ema"]["networks"]["G"].items():
        assert torch.equal(v, b["ema"]["networks"]["G"][k]), k
    for k, v in a["networks"].items():
        assert torch.equal(v, b["networks"][k]), k


def test_resume_can_start_or_drop_the_average(plain_run, ema_run, tmp_path, caplog):
    started = resume_trainer(plain_run, ema=0.9)
    assert started.ema is not None and started.ema.updates == 0
    for k, v in started.ema.averaged["G"].items():
        assert torch.equal(v, started.model.G.state_dict()[k]), k
    dropped = resume_trainer(ema_run, ema=0.0)
    assert dropped.ema is None and "ema" not in dropped.state()
    assert "--ema is 0" in caplog.text


# --- inference -------------------------------------------------------------------------------
def test_load_uses_the_average_for_inference(ema_run):
    state = latest(ema_run)
    model = gankit.load(ema_run)
    assert model.uses_ema and model.ema_info["updates"] == TOTAL_STEPS
    for k, v in model.G.state_dict().items():
        assert torch.equal(v, state["ema"]["networks"]["G"][k]), k
    for k, v in model.D.state_dict().items():  # the discriminator stays as trained
        assert torch.equal(v, state["networks"][f"D.{k}"]), k

    live = model_from_state(state, use_ema=False).eval()
    by_hand = model_from_state(state, use_ema=False).eval()
    by_hand.G.load_state_dict(state["ema"]["networks"]["G"])
    assert not live.uses_ema
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model.translate(x)
    assert torch.equal(out, by_hand.translate(x))
    assert not torch.allclose(out, live.translate(x), rtol=0, atol=1e-5)


def test_release_carries_the_averaged_generator(ema_run, tmp_path):
    out = export(ema_run, "release", tmp_path / "release")
    config = json.loads((out / "config.json").read_text())
    assert config["ema"]["updates"] == TOTAL_STEPS and config["ema"]["networks"] == ["G"]
    released, checkpoint = gankit.load(out), gankit.load(ema_run)
    assert released.uses_ema
    for k, v in checkpoint.state_dict().items():
        assert torch.equal(v, released.state_dict()[k]), k


# --- the command line ------------------------------------------------------------------------
def test_ema_flag_and_info(ema_run, capsys):
    args = train_parser("pix2pix", None, False).parse_args(["pix2pix", "--ema", "0.999"])
    assert args.ema == 0.999
    resumed = train_parser(None, None, True).parse_args(["--resume", "run", "--ema", "0.99"])
    assert resumed.ema == 0.99
    assert cli(["info", str(ema_run)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ema"]["decay"] == DECAY and info["ema"]["networks"] == ["G"]
    assert info["train_config"]["ema"] == DECAY


@pytest.mark.slow
def test_quality_benchmark_quick_runs():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ema_quality.py"),
                           "--quick"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "live" in proc.stdout and "EMA" in proc.stdout
